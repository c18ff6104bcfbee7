"""Bad raw input, one case per rule of DESIGN §3, through `medsyn validate` and `medsyn build`.

Each rule breaks one case of a copy of the fixture folder and expects exactly the
listed problem lines, as ``<case_id>: <field>: <problem>``, exit status 1 from both
commands, and no output folder from ``build``.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest

from medsyn.cli import main
from medsyn.data.raw_cases import InvalidDatasetError, Problem, load_raw, validate_raw

LINE = re.compile(r"^(?P<case_id>.+?): (?P<field>[^\s:]+): (?P<problem>.+)$")


def edit_case(raw: Path, case_id: str, change: Callable[[dict], None]) -> None:
    path = raw / case_id / "case.json"
    case = json.loads(path.read_text(encoding="utf-8"))
    change(case)
    path.write_text(json.dumps(case, ensure_ascii=False, indent=2), encoding="utf-8")


def setter(case_id: str, *keys: str | int, value: object) -> Callable[[Path], None]:
    """A breaker that sets ``case[keys[0]][keys[1]]... = value`` in one case."""

    def change(case: dict) -> None:
        target = case
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return lambda raw: edit_case(raw, case_id, change)


def duplicate_folder(raw: Path) -> None:
    shutil.copytree(raw / "en-0001", raw / "en-0003")  # copied, id left unchanged


def duplicate_id_other_case(raw: Path) -> None:
    shutil.copytree(raw / "en-0001", raw / "EN-0001")
    edit_case(raw, "EN-0001", lambda case: case.update(case_id="EN-0001"))


def write_file(case_id: str, name: str, content: bytes) -> Callable[[Path], None]:
    return lambda raw: (raw / case_id / name).write_bytes(content)


def truncate(case_id: str, name: str) -> Callable[[Path], None]:
    """A breaker that cuts an image file to its first third."""

    def cut(raw: Path) -> None:
        path = raw / case_id / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])

    return cut


def dicom_edit(case_id: str, name: str, **attributes: object) -> Callable[[Path], None]:
    """A breaker that sets DICOM attributes of one image file."""

    def edit(raw: Path) -> None:
        path = raw / case_id / name
        ds = pydicom.dcmread(path)
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        ds.save_as(path)

    return edit


def replace_text(case_id: str, *replacements: tuple[str, str]) -> Callable[[Path], None]:
    """A breaker that edits the text of case.json (for what json.dumps cannot write)."""

    def edit(raw: Path) -> None:
        path = raw / case_id / "case.json"
        text = path.read_text(encoding="utf-8")
        for old, new in replacements:
            assert old in text
            text = text.replace(old, new, 1)
        path.write_text(text, encoding="utf-8")

    return edit


# (rule, breaker, expected problems as (case_id, field, regex on the problem text))
RULES = [
    ("missing image", setter("en-0002", "visual_evidence", 1, "images", 0, value="gone.png"),
     [("en-0002", "visual_evidence[1].images[0]", r"'gone.png' does not exist")]),
    ("undecodable PNG", write_file("en-0002", "smear.png", b"\x89PNG\r\n\x1a\ngarbage"),
     [("en-0002", "visual_evidence[1].images[0]", r"'smear.png' cannot be decoded as an image")]),
    ("truncated JPEG", truncate("en-0002", "fundus.jpg"),
     [("en-0002", "visual_evidence[0].images[0]", r"'fundus.jpg' cannot be decoded as an image .*truncated"),
      ("en-0002", "visual_evidence[2].images[0]", r"'fundus.jpg' cannot be decoded as an image .*truncated")]),
    ("undecodable DICOM", write_file("en-0001", "ct_chest.dcm", b"DICM? no"),
     [("en-0001", "visual_evidence[0].images[0]", r"'ct_chest.dcm' cannot be decoded as DICOM")]),
    ("DICOM that cannot be rendered", dicom_edit("en-0001", "ct_chest.dcm", PhotometricInterpretation="PALETTE COLOR"),
     [("en-0001", "visual_evidence[0].images[0]", r"'ct_chest.dcm' cannot be rendered from DICOM .*Palette Color")]),
    ("image path with ..", setter("en-0001", "visual_evidence", 1, "images", 0, value="../en-0002/smear.png"),
     [("en-0001", "visual_evidence[1].images[0]", r"escapes the case folder")]),
    ("absolute image path", setter("en-0001", "visual_evidence", 1, "images", 0, value="/etc/hostname"),
     [("en-0001", "visual_evidence[1].images[0]", r"escapes the case folder")]),
    ("duplicate case id (copied folder)", duplicate_folder,
     [("en-0003", "case_id", r"'en-0001' does not match its folder name 'en-0003'"),
      ("en-0003", "case_id", r"duplicate: 'en-0001' is also used by folder 'en-0001'")]),
    ("problems of a copied folder are its own", lambda raw: (duplicate_folder(raw), (raw / "en-0003/biopsy.png").unlink()),
     [("en-0003", "case_id", r"'en-0001' does not match its folder name 'en-0003'"),
      ("en-0003", "visual_evidence[1].images[0]", r"'biopsy.png' does not exist"),
      ("en-0003", "case_id", r"duplicate: 'en-0001' is also used by folder 'en-0001'")]),
    ("duplicate case id (case-folded)", duplicate_id_other_case,
     [("en-0001", "case_id", r"duplicate: 'en-0001' is also used by folder 'EN-0001'")]),
    ("id/folder mismatch", setter("zh-0001", "case_id", value="zh-0002"),
     [("zh-0001", "case_id", r"'zh-0002' does not match its folder name 'zh-0001'")]),
    ("case id with bad characters", setter("zh-0001", "case_id", value="zh 0001"),
     [("zh-0001", "case_id", r"must match")]),
    ("unknown CE type", setter("en-0001", "visual_evidence", 0, "type", value="xray"),
     [("en-0001", "visual_evidence[0].type", r"unknown CE type 'xray'")]),
    ("empty history", setter("zh-0001", "text_evidence", "history", value=" \n "),
     [("zh-0001", "text_evidence.history", r"must not be empty")]),
    ("empty title", setter("en-0002", "visual_evidence", 2, "title", value=""),
     [("en-0002", "visual_evidence[2].title", r"must not be empty")]),
    ("empty findings", setter("en-0001", "visual_evidence", 1, "findings", value="   "),
     [("en-0001", "visual_evidence[1].findings", r"must not be empty")]),
    ("duplicate options after folding", setter("en-0001", "options", 3, value="  lung   ADENOCARCINOMA "),
     [("en-0001", "options[3]", r"duplicate of options\[0\] after case and whitespace folding")]),
    ("too few options", setter("en-0002", "options", value=["Proliferative diabetic retinopathy"]),
     [("en-0002", "options", r"2 to 10")]),
    ("answer out of range", setter("en-0002", "answer", value="E"),
     [("en-0002", "answer", r"'E' must be a single letter in A..D")]),
    ("answer not a letter", setter("en-0002", "answer", value="b"),
     [("en-0002", "answer", r"'b' must be a single letter in A..D")]),
    ("answer text differs from final_diagnosis", setter("zh-0001", "answer", value="A"),
     [("zh-0001", "answer", r"options\[A\] is '非增殖性糖尿病视网膜病变', not the final_diagnosis")]),
    ("unknown top-level key", setter("en-0001", "diagnosis", value="typo"),
     [("en-0001", "diagnosis", r"unknown key")]),
    ("unknown nested key", setter("en-0002", "visual_evidence", 0, "caption", value="typo"),
     [("en-0002", "visual_evidence[0].caption", r"unknown key")]),
    ("missing required key", lambda raw: edit_case(raw, "en-0001", lambda case: case.pop("final_diagnosis")),
     [("en-0001", "final_diagnosis", r"missing")]),
    ("duplicate keys", replace_text("en-0001", ('"findings": "Glandular', '"findings": "typo",\n "findings": "Glandular'),
                                    ('"language": "en"', '"language": "en", "language": "en"')),
     [("en-0001", "language", r"duplicate key 'language'"),
      ("en-0001", "visual_evidence[1].findings", r"duplicate key 'findings'")]),
    ("malformed JSON", write_file("zh-0001", "case.json", b'{"case_id": "zh-0001",'),
     [("zh-0001", "case.json", r"malformed JSON")]),
    ("missing case.json", lambda raw: (raw / "en-0002" / "case.json").unlink(),
     [("en-0002", "case.json", r"missing")]),
    ("unsupported language", setter("zh-0001", "language", value="fr"),
     [("zh-0001", "language", r"unsupported language 'fr'")]),
    ("no visual evidence", setter("en-0001", "visual_evidence", value=[]),
     [("en-0001", "visual_evidence", r"at least one item")]),
    ("evidence item without images", setter("en-0001", "visual_evidence", 0, "images", value=[]),
     [("en-0001", "visual_evidence[0].images", r"non-empty list")]),
]  # fmt: skip


def problem_lines(err: str) -> list[str]:
    """The problem lines of a command's stderr, checking the summary line that closes them."""
    lines = err.strip().splitlines()
    *problems, summary = lines
    assert re.match(rf"^{len(problems)} problem\(s\) in ", summary), summary
    return problems


def assert_problems(lines: list[str], expected: list[tuple[str, str, str]]) -> None:
    parsed = []
    for line in lines:
        match = LINE.match(line)
        assert match, f"not '<case_id>: <field>: <problem>': {line!r}"
        parsed.append(match.groupdict())
    assert len(parsed) == len(expected), lines
    for got, (case_id, field, pattern) in zip(parsed, expected):
        assert (got["case_id"], got["field"]) == (case_id, field), lines
        assert re.search(pattern, got["problem"]), lines


@pytest.mark.parametrize(("rule", "breaker", "expected"), RULES, ids=[r[0] for r in RULES])
def test_each_rule_is_reported_by_validate_and_build(
    rule: str, breaker: Callable[[Path], None], expected: list, raw_copy: Path, tmp_path: Path, capsys
) -> None:
    breaker(raw_copy)

    assert main(["validate", str(raw_copy)]) == 1
    captured = capsys.readouterr()
    validate_lines = problem_lines(captured.err)
    assert_problems(validate_lines, expected)
    assert captured.out == ""

    out = tmp_path / "out"
    assert main(["build", str(raw_copy), str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert problem_lines(captured.err) == validate_lines
    assert "nothing was written" in captured.err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]  # no staging folder left behind either


def test_every_problem_of_a_folder_comes_out_in_one_run(raw_copy: Path, tmp_path: Path, capsys) -> None:
    setter("en-0001", "visual_evidence", 0, "type", value="xray")(raw_copy)
    setter("en-0001", "options", 1, value="LUNG adenocarcinoma")(raw_copy)
    setter("en-0002", "visual_evidence", 1, "images", 0, value="../zh-0001/angio.png")(raw_copy)
    setter("en-0002", "answer", value="A")(raw_copy)
    write_file("zh-0001", "case.json", b"[1, 2")(raw_copy)
    expected = [
        ("en-0001", "visual_evidence[0].type", "unknown CE type"),
        ("en-0001", "options[1]", "duplicate of options"),
        ("en-0002", "visual_evidence[1].images[0]", "escapes the case folder"),
        ("en-0002", "answer", "not the final_diagnosis"),
        ("zh-0001", "case.json", "malformed JSON"),
    ]
    assert main(["validate", str(raw_copy)]) == 1
    assert_problems(problem_lines(capsys.readouterr().err), expected)
    out = tmp_path / "out"
    assert main(["build", str(raw_copy), str(out), "--quiet"]) == 1
    assert_problems(problem_lines(capsys.readouterr().err), expected)
    assert not out.exists()


def test_an_empty_dicom_window_is_valid(raw_copy: Path, capsys) -> None:
    dicom_edit("en-0001", "ct_chest.dcm", WindowCenter=None, WindowWidth=None)(raw_copy)
    assert main(["validate", str(raw_copy)]) == 0, capsys.readouterr().err


def test_valid_folder_passes(fixture_raw: Path, capsys) -> None:
    assert main(["validate", str(fixture_raw)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.strip() == f"{fixture_raw}: 3 valid cases (en: 2, zh: 1)"


def test_api_collects_problems_and_load_raw_raises(raw_copy: Path) -> None:
    setter("en-0001", "language", value="de")(raw_copy)
    setter("zh-0001", "answer", value="Z")(raw_copy)
    result = validate_raw(raw_copy)
    assert not result.ok
    assert sorted(result.cases) == ["en-0002"]  # only the valid case is returned as a case
    assert [(p.case_id, p.field) for p in result.problems] == [("en-0001", "language"), ("zh-0001", "answer")]
    with pytest.raises(InvalidDatasetError) as info:
        load_raw(raw_copy)
    assert info.value.problems == result.problems
    assert str(info.value).splitlines() == [str(p) for p in result.problems]
    assert str(Problem("c", "f", "bad")) == "c: f: bad"


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_missing_or_empty_raw_folder(tmp_path: Path, capsys, make: str) -> None:
    raw = tmp_path / "raw"
    if make == "empty":
        raw.mkdir()
    assert main(["validate", str(raw)]) == 1
    lines = problem_lines(capsys.readouterr().err)
    assert len(lines) == 1 and LINE.match(lines[0].replace(str(raw), "raw")), lines
