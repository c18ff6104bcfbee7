"""Leaderboard core: loading results, tables, filters, plots, submissions, and the app's layout."""

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from support import load_module

from medsyn.publish import leaderboard as lb
from medsyn.publish import review

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = Path(__file__).parent / "data" / "results"


def _example(name: str = "example-open-7b.json") -> dict:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def _known() -> dict:
    dataset = _example()["dataset"]
    return {dataset["revision"]: {"name": dataset["name"], "n_cases": dataset["n_cases"]}}


@pytest.fixture
def board() -> lb.Board:
    return lb.load_folder(EXAMPLES)


def test_load_folder_reads_every_valid_file(board):
    assert board.problems == []
    assert sorted(e.data["model"]["name"] for e in board.entries) == [
        "example-medical-8b", "example-open-7b", "example-proprietary"]
    assert len({e.key for e in board.entries}) == 3


def test_bad_files_are_left_out_and_listed(tmp_path):
    shutil.copy(EXAMPLES / "example-open-7b.json", tmp_path / "good.json")
    bad = _example()
    bad["results"]["zh"]["fdx_accuracy"] = 37.5
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "results.json").write_text(json.dumps(bad))
    (tmp_path / "broken.json").write_text("{not json")
    board = lb.load_folder(tmp_path)
    assert [e.source for e in board.entries] == ["good.json"]
    assert any(p.startswith("broken.json: not valid JSON (") for p in board.problems)
    assert "sub/results.json: results.zh.fdx_accuracy: 37.5 is out of range, expected a fraction in [0, 1] " \
           "(not a percentage)" in board.problems


def test_same_model_twice_gets_distinct_keys(tmp_path):
    for name in ("a.json", "b.json"):
        shutil.copy(EXAMPLES / "example-open-7b.json", tmp_path / name)
    keys = [e.key for e in lb.load_folder(tmp_path).entries]
    assert len(set(keys)) == 2 and keys[1].endswith("(2)")


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_empty_results_give_the_reference_row_only(tmp_path, folder):
    (tmp_path / "empty").mkdir()
    board = lb.load_folder(tmp_path / folder)
    assert board.entries == [] and board.problems == []
    english = lb.build_table(board, "en")
    assert english["Model"].tolist() == [lb.PHYSICIANS["name"]]
    row = english.iloc[0]
    # at the precision the paper reports (77.13 %, 72.11 %), not rounded to the table's one decimal
    assert (row["DDx coverage (%)"], row["FDx accuracy (%)"], row["DDx–FDx gap (pp)"]) == (77.13, 72.11, 5.02)
    assert row["Provenance"] == "reported in the paper (not reproduced)"
    assert lb.build_table(board, "zh").empty and lb.build_table(board, "overall").empty
    for figure in (lb.plot_ddx_vs_fdx(board, "en"), lb.plot_es_by_type(board, None, "en"),
                   lb.plot_es_gap_vs_fdx(board, "zh")):
        figure.savefig(tmp_path / "plot.png")


def test_table_values_are_percentages_with_intervals(board):
    english = lb.build_table(board, "en")
    assert english["FDx accuracy (%)"].tolist() == [72.11, 62.5, 43.8, 37.5]  # best first, physicians included
    row = english.set_index("Model").loc["example-open-7b"]
    assert (row["n"], row["DDx coverage (%)"], row["DDx CI (%)"]) == (16, 68.8, "43.8 – 93.8")
    assert (row["FDx CI (%)"], row["DDx–FDx gap (pp)"], row["Parse failures"]) == ("18.8 – 68.8", 25.0, 1)
    assert (row["ES gap"], row["ES gap CI"]) == (0.033, "0.000 – 0.067")
    assert row["Provenance"] == "results file example-open-7b.json"
    overall = lb.build_table(board, "overall")
    assert lb.PHYSICIANS["name"] not in overall["Model"].tolist()
    assert overall.set_index("Model").loc["example-medical-8b", "Parse failures"] == 3
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        lb.build_table(board, "fr")


def test_missing_measurements_stay_missing(tmp_path):
    obj = _example()
    obj["results"]["en"].update(ddx_coverage=None, ddx_coverage_ci=None, ddx_fdx_gap=None, judge_failures=None)
    (tmp_path / "r.json").write_text(json.dumps(obj))
    table = lb.build_table(lb.load_folder(tmp_path), "en")
    row = table[table["Model"] == "example-open-7b"].iloc[0]
    assert pd.isna(row["DDx coverage (%)"]) and pd.isna(row["Judge failures"]) and row["DDx CI (%)"] == ""
    shown = lb.display_table(table)
    assert shown.loc[table["Model"] == "example-open-7b", "DDx coverage (%)"].item() == ""


@pytest.mark.parametrize(("params", "bucket"), [(None, "size not reported"), (0.0002, "< 4B"), (4, "4–20B"),
                                                (78, "20–100B"), (100, "≥ 100B")])
def test_size_bucket(params, bucket):
    assert lb.size_bucket(params) == bucket


def test_filters_by_type_and_size(board):
    english = lb.build_table(board, "en")
    all_sizes = list(lb.SIZE_BUCKETS)
    assert lb.filter_table(english, ["medical"], all_sizes)["Model"].tolist() == ["example-medical-8b"]
    assert lb.filter_table(english, ["open", "proprietary", "medical", "reference"], ["4–20B"])["Model"].tolist() == [
        "example-open-7b", "example-medical-8b"]
    assert lb.filter_table(english, [], all_sizes).empty
    kept = lb.filter_board(board, ["proprietary"], all_sizes)
    assert [e.data["model"]["name"] for e in kept.entries] == ["example-proprietary"]


def test_plot_labels_are_literal_text(tmp_path):
    obj = _example()
    obj["model"]["name"] = "<script>alert(1)</script> $x^2$"
    (tmp_path / "r.json").write_text(json.dumps(obj))
    board = lb.load_folder(tmp_path)
    for figure in (lb.plot_ddx_vs_fdx(board, "en"), lb.plot_es_gap_vs_fdx(board, "overall")):
        labels = [t for t in figure.axes[0].texts if t.get_text() == obj["model"]["name"]]
        assert labels and not labels[0].get_parse_math()
        figure.savefig(tmp_path / "plot.png")
    figure = lb.plot_es_by_type(board, board.entries[0].key, "zh")
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["ct", "electrophysiology"]
    assert not figure.axes[0].title.get_parse_math()


def test_submission_accepted_goes_to_pending_only(tmp_path):
    pending = tmp_path / "pending"
    raw = (EXAMPLES / "example-proprietary.json").read_bytes()
    accepted, message = lb.submit(EXAMPLES / "example-proprietary.json", pending, _known(), note="first try")
    assert accepted, message
    sid = review.submission_id(raw)
    assert message.startswith(f"Accepted for review: example-proprietary on MEDSYN-mini was saved as submission {sid} "
                              f"(status PENDING) in the local folder {pending}.")
    [saved] = pending.glob("*/results.json")
    assert saved.read_bytes() == raw and saved.parent.name == sid
    record = json.loads((pending / sid / "request.json").read_text())
    assert (record["status"], record["note"], record["sha256"]) == ("PENDING", "first try", hashlib.sha256(raw).hexdigest())
    again, message = lb.submit(EXAMPLES / "example-proprietary.json", pending, _known())
    assert not again and message == f"Refused: this exact file was already submitted: submission {sid}, status PENDING."


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{\"a\": ", "Refused: not valid JSON (Expecting value at line 1, column 7)."),
        (b"\xff\xfe", "Refused: the file is not UTF-8 text."),
        (b"x" * 2001, "Refused: the file is 2,001 bytes; the limit is 2,000 bytes."),
    ],
)
def test_submission_refused_before_validation(tmp_path, content, expected):
    path = tmp_path / "upload.json"
    path.write_bytes(content)
    assert lb.submit(path, tmp_path / "pending", _known(), max_bytes=2000) == (False, expected)
    assert not (tmp_path / "pending").exists()


def test_submission_refused_with_every_problem(tmp_path):
    obj = _example()
    obj["results"]["en"]["fdx_accuracy"] = 43.75
    obj["dataset"]["revision"] = "f" * 64
    path = tmp_path / "upload.json"
    path.write_text(json.dumps(obj))
    accepted, message = lb.submit(path, tmp_path / "pending", _known())
    assert not accepted
    assert message.startswith("Refused: 4 problem(s) in the results file:\n")
    assert f"- dataset.revision: '{'f' * 64}' is not a known dataset revision (known: MEDSYN-mini @ " in message
    assert "- results.en.fdx_accuracy: 43.75 is out of range" in message
    assert lb.submit(None, tmp_path / "pending", _known()) == (False, "Refused: no file was uploaded.")
    assert not (tmp_path / "pending").exists()


def test_load_board_locations(tmp_path):
    """MEDSYN_RESULTS_DIR wins over MEDSYN_RESULTS_REPO (read from the local Hub server in test_leaderboard_hub.py)."""
    shutil.copy(EXAMPLES / "example-open-7b.json", tmp_path / "r.json")
    from_dir = lb.load_board({"MEDSYN_RESULTS_DIR": str(tmp_path), "MEDSYN_RESULTS_REPO": "org/results"})
    assert [e.source for e in from_dir.entries] == ["r.json"] and from_dir.problems == []
    assert lb.load_board({}, default_dir=tmp_path / "nothing").entries == []


def test_load_known_datasets(tmp_path):
    path = tmp_path / "datasets.json"
    path.write_text(json.dumps(_known()))
    assert lb.load_known_datasets(path) == _known()
    path.write_text(json.dumps({"abc": {"name": "MEDSYN-mini", "n_cases": {"en": -1}}}))
    with pytest.raises(ValueError, match="abc: must be"):
        lb.load_known_datasets(path)
    assert lb.load_known_datasets(ROOT / "leaderboard" / "datasets.json") is not None


def _load_app(monkeypatch, results: Path, tmp_path: Path):
    """Import leaderboard/app.py as the Space does, with the results location from the environment."""
    monkeypatch.setenv("MEDSYN_RESULTS_DIR", str(results))
    monkeypatch.setenv("MEDSYN_PENDING_DIR", str(tmp_path / "pending"))
    return load_module("leaderboard_app", ROOT / "leaderboard" / "app.py")


def _table_value(demo, elem_id: str) -> list[list]:
    [table] = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id]
    return table.value["data"]


def test_app_builds_from_the_results_location(tmp_path, monkeypatch):
    app = _load_app(monkeypatch, EXAMPLES, tmp_path)
    models = [row[0] for row in _table_value(app.demo, "table-en")]
    assert set(models) == {"example-medical-8b", "example-open-7b", "example-proprietary", lb.PHYSICIANS["name"]}
    empty = tmp_path / "empty"
    empty.mkdir()
    app = _load_app(monkeypatch, empty, tmp_path)
    assert [row[0] for row in _table_value(app.demo, "table-en")] == [lb.PHYSICIANS["name"]]
    assert _table_value(app.demo, "table-zh") == []


def test_intervals_that_exclude_their_point_still_plot(tmp_path, monkeypatch):
    """A valid file whose es_gap_ci excludes es_gap (percentile bootstrap) and whose rate sits just
    outside its interval (within the schema's rounding tolerance): error bars clip at 0, the Space starts."""
    obj = _example("example-medical-8b.json")
    en = obj["results"]["en"]
    en["es_gap_ci"] = [en["es_gap"] + 0.007, en["es_gap"] + 0.07]
    en["fdx_accuracy_ci"] = [en["fdx_accuracy"] + 0.0005, min(1.0, en["fdx_accuracy"] + 0.2)]
    assert lb.validate_results(obj, _known()) == []
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.json").write_text(json.dumps(obj))
    board = lb.load_folder(tmp_path / "results")
    assert board.problems == []
    for figure in (lb.plot_es_gap_vs_fdx(board, "en"), lb.plot_ddx_vs_fdx(board, "en")):
        figure.savefig(tmp_path / "plot.png")
    assert lb._errors(0.0833, [0.09, 0.15], 1.0) == [[0.0], [pytest.approx(0.0667)]]
    _load_app(monkeypatch, tmp_path / "results", tmp_path)


@pytest.mark.parametrize(
    ("edit", "refusal"),
    [
        ("no languages", "- dataset.n_cases: no cases of MEDSYN-mini at this revision (en: 16, zh: 8)"),
        ("some en cases", "- dataset.n_cases.en: 15 does not match the 16 en cases of MEDSYN-mini at this revision"),
        ("en only", None),  # a full run of one language is a full run
    ],
)
def test_submission_case_counts_must_be_whole_languages_of_the_revision(tmp_path, edit, refusal):
    obj = _example()
    del obj["dataset"]["n_cases"]["zh"], obj["results"]["zh"]
    obj["results"]["overall"] = dict(obj["results"]["en"])
    if edit == "no languages":
        del obj["dataset"]["n_cases"]["en"], obj["results"]["en"]
        obj["results"]["overall"]["n"] = 3
    elif edit == "some en cases":
        obj["dataset"]["n_cases"]["en"] = obj["results"]["en"]["n"] = obj["results"]["overall"]["n"] = 15
    path = tmp_path / "upload.json"
    path.write_text(json.dumps(obj))
    accepted, message = lb.submit(path, tmp_path / "pending", _known())
    assert accepted == (refusal is None), message
    if refusal is not None:
        assert refusal in message
        assert not (tmp_path / "pending").exists()


def test_a_one_language_run_is_on_its_language_board_not_overall(tmp_path):
    obj = _example()
    obj["model"]["name"] = "en-only-model"
    del obj["dataset"]["n_cases"]["zh"], obj["results"]["zh"]
    obj["results"]["overall"] = dict(obj["results"]["en"])
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "en-only.json").write_text(json.dumps(obj))
    (tmp_path / "results" / "both.json").write_text(json.dumps(_example()))
    board = lb.load_folder(tmp_path / "results")
    assert board.problems == []
    models = lambda language: set(lb.build_table(board, language)["Model"])  # noqa: E731
    assert {"en-only-model", _example()["model"]["name"]} <= models("en")
    assert "en-only-model" not in models("zh") | models("overall")
    assert _example()["model"]["name"] in models("overall")


def _with_es_gap(tmp_path, gaps_and_accuracies):
    """A results folder with one model per (es_gap, fdx_accuracy) pair on the English board."""
    for k, (gap, accuracy) in enumerate(gaps_and_accuracies):
        obj = _example()
        en = obj["results"]["en"]
        en["fdx_accuracy"], en["fdx_accuracy_ci"], en["ddx_fdx_gap"] = accuracy, None, en["ddx_coverage"] - accuracy
        en["es_image"], en["es_text"], en["es_gap"], en["es_gap_ci"] = 0.0, gap, gap, None
        en["evidence_sensitivity"] = {"ct": {"image": 0.0, "text": gap, "gap": gap}}
        obj["model"]["name"] = f"model-{k}"
        obj["model"]["type"] = "open" if k % 2 else "proprietary"
        (tmp_path / f"m{k}.json").write_text(json.dumps(obj))
    return lb.load_folder(tmp_path)


def test_correlation_line_over_the_rows_shown(tmp_path):
    board = _with_es_gap(tmp_path, [(0.30, 0.25), (0.10, 0.5), (0.20, 0.3125), (0.05, 0.4375), (0.15, 0.5625)])
    assert board.problems == []
    r = lb.correlation(board, "en")
    # gap ranks 5 2 4 1 3, accuracy ranks 1 4 2 3 5: d² = 16 + 4 + 4 + 4 + 4, rho = 1 - 6 * 32 / 120
    assert r["n"] == 5 and r["rho"] == pytest.approx(-0.6)
    line = lb.correlation_line(board, "en")
    assert line == (f"Spearman ρ of ES gap and FDx accuracy over the 5 models shown with both: -0.60 "
                    f"(95 % CI {r['ci'][0]:.2f} to {r['ci'][1]:.2f}; p = {r['p_value']:.2g}).")
    assert r["ci"][0] < -0.6 < r["ci"][1] and 0 < r["p_value"] < 1
    shown = lb.filter_board(board, ["open"], list(lb.SIZE_BUCKETS))  # models 1 and 3 only
    assert lb.correlation_line(shown, "en") == (
        "Spearman ρ of ES gap and FDx accuracy: n/a (2 model(s) shown with both; it needs at least 3, with differing values).")


def test_app_shows_the_correlation_under_each_table(tmp_path, monkeypatch):
    app = _load_app(monkeypatch, EXAMPLES, tmp_path)
    [line] = [b for b in app.demo.blocks.values() if getattr(b, "elem_id", None) == "correlation-en"]
    assert line.value == lb.correlation_line(lb.load_folder(EXAMPLES), "en")
    assert "over the 3 models shown with both: -1.00 (95 % CI n/a" in line.value
    assert app._correlations(lb.load_folder(EXAMPLES), ["open"], list(lb.SIZE_BUCKETS))[0].endswith(
        "n/a (1 model(s) shown with both; it needs at least 3, with differing values).")


def test_a_run_folder_is_a_results_folder(tmp_path):
    """`medsyn eval --out results/demo`: only its results.json is read; the dataset's manifest.json, lighteval's
    own JSON and a request record are other JSON, ignored without a problem line."""
    run = tmp_path / "demo"
    (run / "dataset").mkdir(parents=True)
    (run / "lighteval" / "results" / "tiny").mkdir(parents=True)
    shutil.copy(EXAMPLES / "example-open-7b.json", run / "results.json")
    (run / "dataset" / "manifest.json").write_text(json.dumps({"revision": "abc", "cases": []}))
    (run / "lighteval" / "results" / "tiny" / "results_2026-01-01T00-00-00.json").write_text(json.dumps({"results": {}}))
    (run / "lighteval" / "list.json").write_text("[1, 2]")
    board = lb.load_folder(run)
    assert [e.source for e in board.entries] == ["results.json"] and board.problems == []
    broken = _example()
    broken["results"]["en"]["n"] = -1
    (run / "sub").mkdir()
    (run / "sub" / "results.json").write_text(json.dumps(broken))  # a medsyn results file: checked, and listed
    assert lb.load_folder(run).problems[0].startswith("sub/results.json: ")


def test_column_groups_and_the_default_view():
    assert lb.visible_columns([]) == ["Model", "Type", "Size (B)", "DDx coverage (%)", "FDx accuracy (%)",
                                      "DDx–FDx gap (pp)", "ES gap"]
    shown = lb.visible_columns(lb.DEFAULT_GROUPS)
    assert not {"Provenance", "Dataset"} & set(shown) and {"DDx CI (%)", "Parse failures", "ES parse failures"} <= set(shown)
    table = lb.display_table(lb.build_table(lb.load_folder(EXAMPLES), "en"), ["Provenance"])
    assert list(table.columns) == lb.visible_columns(["Provenance"])


def test_model_detail(board):
    entry = next(e for e in board.entries if e.data["model"]["name"] == "example-open-7b")
    es = lb.es_detail(entry, "en")
    assert es["CE type"].tolist() == ["ct", "laboratory", "pathology", "macro mean"]
    assert es.iloc[0, 1:4].tolist() == ["0.080", "0.120", "0.040"]
    assert es.iloc[-1].tolist() == ["macro mean", "0.080", "0.113", "0.033", "0.000 – 0.067"]
    assert lb.conditions_detail(entry, "zh").values.tolist() == [
        ["full", "37.5"], ["text", "50.0"], ["no_history", "not run"], ["random_history", "not run"]]
    run = dict(lb.run_detail(entry, "en").values.tolist())
    assert (run["FDx parse failures"], run["DDx judge failures"], run["Judge"]) == ("1", "0", "lexical")
    assert run["Image budget"] == "max_pixels 1,003,520" and run["Command"] == entry.data["command"]
    assert run["Results file"] == "example-open-7b.json"
