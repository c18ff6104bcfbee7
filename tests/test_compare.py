"""The gap-accuracy correlation across models (medsyn.eval.compare, ``medsyn report --compare DIR``)."""

from __future__ import annotations

import json

import pytest
from support import load_module

from medsyn.cli import main
from medsyn.eval.compare import compare, load_results_dir
from medsyn.metrics.stats import spearman_bootstrap_ci

# en: gap ranks 1..5, accuracy ranks 5,3,4,2,1 -> sum d^2 = 16+1+1+4+16 = 38, rho = 1 - 6*38/(5*24) = -0.9
EN = [(0.1, 0.9), (0.2, 0.7), (0.3, 0.8), (0.4, 0.4), (0.5, 0.3)]
# zh: model m4 has no ES gap; the other four are monotone decreasing -> rho = -1 on 4 models
ZH = [(0.1, 0.8), (0.2, 0.6), (0.3, 0.5), (0.4, 0.2), (None, 0.1)]


def _write(folder, subsets=("en", "zh")):
    for i, (en, zh) in enumerate(zip(EN, ZH)):
        blocks = {"en": {"es_gap": en[0], "fdx_accuracy": en[1]}, "zh": {"es_gap": zh[0], "fdx_accuracy": zh[1]}}
        results = {"model": {"name": f"m{i}"}, "results": {s: blocks[s] for s in subsets}}
        (folder / f"m{i}").mkdir(parents=True)
        (folder / f"m{i}" / "results.json").write_text(json.dumps(results))


def test_correlation_on_hand_made_results_files(tmp_path):
    _write(tmp_path)
    c = compare(load_results_dir(tmp_path))
    assert c["en"]["rho"] == pytest.approx(-0.9) and c["en"]["n"] == 5
    assert c["zh"]["rho"] == pytest.approx(-1.0) and c["zh"]["n"] == 4 and c["zh"]["left_out"] == ["m4"]
    assert c["zh"]["bootstrap_ci"] == pytest.approx((-1.0, -1.0))  # every resample of a monotone set is rho -1 (or undefined)
    low, high = c["en"]["bootstrap_ci"]
    assert -1 <= low < -0.9 < high <= 1
    assert c["en"]["bootstrap_ci"] == compare(load_results_dir(tmp_path))["en"]["bootstrap_ci"]  # seeded
    assert c["overall"]["n"] == 0 and c["overall"]["rho"] is None


def test_bootstrap_over_models_needs_three():
    assert spearman_bootstrap_ci([0.1, 0.2], [0.3, 0.1]) is None
    assert spearman_bootstrap_ci([0.1, 0.2, 0.3], [0.3, 0.2, 0.1], seed=1) == pytest.approx((-1.0, -1.0))
    with pytest.raises(ValueError, match="length mismatch"):
        spearman_bootstrap_ci([0.1], [0.1, 0.2])


def test_report_compare_command(tmp_path, capsys):
    _write(tmp_path / "runs")
    assert main(["report", "--compare", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    saved = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert saved["en"]["rho"] == pytest.approx(-0.9)
    text = (tmp_path / "out" / "compare.md").read_text()
    assert "| en | 5 | -0.900 |" in text and "| zh | 4 | -1.000 |" in text and "| m4 |" not in text.split("## zh")[1]


def test_compare_refuses_foreign_files_and_duplicate_models(tmp_path, capsys):
    _write(tmp_path / "runs")
    (tmp_path / "runs" / "other.json").write_text("{}")
    assert main(["report", "--compare", str(tmp_path / "runs")]) == 1
    assert "other.json: not a MEDSYN results file" in capsys.readouterr().err
    (tmp_path / "runs" / "other.json").write_text((tmp_path / "runs" / "m0" / "results.json").read_text())
    with pytest.raises(ValueError, match=r"\['m0'\] appear in more than one results file"):
        compare(load_results_dir(tmp_path / "runs"))


def test_leaderboard_es_gap_plot_shows_the_correlation(tmp_path, monkeypatch):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    example = json.loads((root / "tests" / "data" / "results" / "example-open-7b.json").read_text(encoding="utf-8"))
    for i, (gap, accuracy) in enumerate(EN):
        example["model"]["name"] = f"m{i}"
        en = example["results"]["en"]
        en.update(fdx_accuracy=accuracy, fdx_accuracy_ci=None, ddx_fdx_gap=en["ddx_coverage"] - accuracy,
                  es_image=0.0, es_text=gap, es_gap=gap, es_gap_ci=None,
                  evidence_sensitivity={"ct": {"image": 0.0, "text": gap, "gap": gap}})
        (tmp_path / f"m{i}.json").write_text(json.dumps(example))
    monkeypatch.setenv("MEDSYN_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("MEDSYN_PENDING_DIR", str(tmp_path / "pending"))
    app = load_module("leaderboard_app_compare", root / "leaderboard" / "app.py")
    board = app.lb.load_folder(tmp_path)
    assert board.problems == []
    _, figure = app._plots(board, list(app.MODEL_TYPES), list(app.lb.SIZE_BUCKETS), "en")
    texts = [t.get_text() for t in figure.axes[0].texts if t.get_text().startswith("Spearman")]
    low, high = compare([{"model": {"name": f"m{i}"}, "results": {"en": {"es_gap": g, "fdx_accuracy": a}}}
                         for i, (g, a) in enumerate(EN)])["en"]["bootstrap_ci"]  # fmt: skip
    assert texts == [f"Spearman ρ = -0.90 (bootstrap 95 % CI over models {low:.2f} to {high:.2f}), n = 5"]
