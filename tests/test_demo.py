"""End to end: `medsyn demo` (MEDSYN-mini, tiny model, lighteval, evaluate module) and the
documented `medsyn lighteval custom ...` command, both offline in fresh processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import datasets
import pytest

from medsyn.data.schema import es_conditions
from medsyn.eval.prompts import IMAGE_MARK
from medsyn.metrics.results_schema import validate_results

REPO = Path(__file__).resolve().parents[1]
DEMO_LIMIT_S = 600


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "MEDSYN_CACHE": str(tmp / "cache")}
    env["HF_HOME"] = str(tmp / "hf")  # nothing cached from earlier runs
    return {**env, **extra}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    tmp = tmp_path_factory.mktemp("demo")
    start = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "medsyn.cli", "demo", "--out", str(tmp / "out")],
        cwd=tmp, env=_env(tmp), capture_output=True, text=True, timeout=DEMO_LIMIT_S + 60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "out", time.time() - start


def _details(out: Path, task: str) -> datasets.Dataset:
    path = out / "lighteval" / "details" / f"{task}.parquet"
    assert path.is_file(), f"no lighteval details for {task}"
    return datasets.load_dataset("parquet", data_files=[str(path)], split="train")


@pytest.mark.slow
def test_demo_writes_valid_results_in_time(demo: tuple[Path, float]) -> None:
    out, seconds = demo
    assert seconds < DEMO_LIMIT_S
    results = json.loads((out / "results.json").read_text())
    assert validate_results(results) == []
    assert results["dataset"]["name"] == "MEDSYN-mini" and results["dataset"]["n_cases"] == {"en": 16, "zh": 8}
    overall = results["results"]["overall"]
    assert overall["n"] == 24 and set(overall["conditions"]) == {"full", "text", "no_history", "random_history"}
    assert all(overall["conditions"][c] is not None for c in overall["conditions"])
    assert overall["es_gap"] is not None and overall["evidence_sensitivity"]
    length = results["random_history"]  # matched in the tiny model's own tokens, within a token per field
    assert length["tokenizer"] and 0.85 <= length["length_ratio"]["min"] <= length["length_ratio"]["max"] <= 1.0
    for name in ("report.md", "ddx_vs_fdx.png", "evidence_sensitivity.png"):
        assert (out / name).stat().st_size > 0
    assert "![DDx coverage vs FDx accuracy](ddx_vs_fdx.png)" in (out / "report.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_es_task_expands_every_case(demo: tuple[Path, float], lang: str) -> None:
    out, _ = demo
    cases = datasets.load_dataset(str(out / "dataset"), lang, split="test")
    expected = Counter({cid: 1 + 2 * len(types) for cid, types in zip(cases["case_id"], cases["evidence_types"])})
    details = _details(out, f"es_{lang}")
    got = Counter(doc["specific"]["case_id"] for doc in details["doc"])
    assert got == expected
    for doc in details["doc"]:
        assert sorted(d["specific"]["condition"] for d in details["doc"] if d["specific"]["case_id"] == doc["specific"]["case_id"]) == sorted(
            es_conditions(cases[cases["case_id"].index(doc["specific"]["case_id"])]["evidence_types"])
        )
        break


@pytest.mark.slow
def test_stored_prompts_interleave_the_images_shown(demo: tuple[Path, float]) -> None:
    out, _ = demo
    for task in ("fdx_en", "fdx_zh", "fdx_en_text", "es_en"):
        for doc in _details(out, task)["doc"]:
            marks = doc["query"].count(IMAGE_MARK)
            assert marks == len(doc["images"]) == doc["specific"]["n_images"]
            if doc["specific"]["condition"] == "text":
                assert marks == 0


def _lighteval(built: Path, model: Path, tmp_path: Path, tasks: str, *extra: str) -> dict:
    """Run the documented `medsyn lighteval custom ...` command; return its results file."""
    proc = subprocess.run(
        [
            sys.executable, "-m", "medsyn.cli", "lighteval", "custom",
            f"model_name={model},batch_size=4,max_new_tokens=4,response_cache_dir={tmp_path / 'rc'}",
            str(REPO / "lighteval_tasks" / "transformers_vlm.py"), tasks,
            "--custom-tasks", str(REPO / "lighteval_tasks" / "medsyn.py"), "--output-dir", str(tmp_path / "out"),
            "--save-details", *extra,
        ],
        cwd=tmp_path, env=_env(tmp_path, MEDSYN_DATASET=str(built)), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return json.loads(next((tmp_path / "out" / "results").rglob("results_*.json")).read_text())


def test_documented_lighteval_command_runs_offline(built_fixture: Path, tiny_model: Path, tmp_path: Path) -> None:
    """`medsyn lighteval custom MODEL lighteval_tasks/transformers_vlm.py TASKS --custom-tasks ...`."""
    results = _lighteval(built_fixture, tiny_model, tmp_path, "medsyn:es_zh|0,medsyn:fdx_en|0")
    assert set(results["results"]) >= {"medsyn:es_zh|0", "medsyn:fdx_en|0"}
    assert 0 <= results["results"]["medsyn:fdx_en|0"]["fdx_accuracy"] <= 1
    assert results["results"]["medsyn:es_zh|0"]["es_gap"] == results["results"]["medsyn:es_zh|0"]["es_gap"]  # not NaN
    assert (tmp_path / "rc").is_dir()


def test_documented_lighteval_command_with_max_samples_takes_whole_cases(
    built_fixture: Path, tiny_model: Path, tmp_path: Path
) -> None:
    """`--max-samples 2` on ES and FDx tasks together: results are written, each ES task gets every condition of
    its first 2 cases (lighteval alone would take 2 shuffled docs), and `_average` is not halved by FDx."""
    tasks = "medsyn:fdx_en|0,medsyn:es_zh|0,medsyn:es_en|0"
    results = _lighteval(built_fixture, tiny_model, tmp_path, tasks, "--max-samples", "2")["results"]
    for lang in ("en", "zh"):
        cases = datasets.load_dataset(str(built_fixture), lang, split="test")
        whole = Counter({cid: len(es_conditions(types)) for cid, types in zip(cases["case_id"][:2], cases["evidence_types"][:2])})
        details = datasets.load_dataset("parquet", data_files=[str(next((tmp_path / "out" / "details").rglob(f"*es_{lang}*.parquet")))], split="train")
        assert Counter(doc["specific"]["case_id"] for doc in details["doc"]) == whole
        assert results[f"medsyn:es_{lang}|0"]["es_incomplete_cases"] == 0
        assert results[f"medsyn:es_{lang}|0"]["es_gap"] == results[f"medsyn:es_{lang}|0"]["es_gap"]  # not NaN
    assert 0 <= results["medsyn:fdx_en|0"]["fdx_accuracy"] <= 1 and "es_gap" not in results["medsyn:fdx_en|0"]
    average = results["medsyn:_average|0"]
    assert average["fdx_accuracy"] == results["medsyn:fdx_en|0"]["fdx_accuracy"]
    es = [results[f"medsyn:es_{lang}|0"]["es_image"] for lang in ("en", "zh")]
    assert average["es_image"] == pytest.approx(sum(es) / 2)
