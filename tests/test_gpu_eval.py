"""benchmarks/gpu_eval.py on the CPU with the tiny model, so the GPU benchmark never rots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from support import load_module

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_eval.py"


@pytest.fixture(scope="module")
def gpu_eval():
    """benchmarks/gpu_eval.py as a module: the script under test."""
    
    return load_module("gpu_eval", SCRIPT)


@pytest.mark.slow
def test_gpu_eval_runs_on_cpu_with_the_tiny_model(gpu_eval, tmp_path: Path) -> None:
    out = tmp_path / "gpu_eval.json"
    report = gpu_eval.main([
        "--arch", "tiny", "--device", "cpu", "--cases", "2", "--image-px", "64", "--text-words", "60",
        "--gen-tokens", "2", "--lighteval-batch-sizes", "2", "--ablations", "--profile", str(tmp_path / "profile.txt"),
        "--out", str(out),
    ])  # fmt: skip
    assert json.loads(out.read_text()) == report
    for key in ("es_speedup_vs_lighteval", "fdx_speedup_vs_lighteval", "mfu"):
        assert key in report
    assert report["posterior_max_abs_diff_vs_plain"] < 1e-3
    es = report["paths"]["ours"]["es_sweep"]
    assert es["prompts"] == 2 * (1 + 2 * 4) and es["images_encoded"] == 2 * 8  # each image once per case
    assert es["lm_tokens_shared"] > 0 and es["lm_tokens_run"] + es["lm_tokens_shared"] == sum(
        report["paths"]["ours_no_prefix_sharing"]["es_sweep"][k] for k in ("lm_tokens_run", "lm_tokens_shared")
    )
    assert set(report["paths"]) == {"ours", "ours_no_prefix_sharing", "ours_stock_vision_tower", "ours_unaligned_vision_mlp", "lighteval_bs2", "vlmevalkit"}
    for profile in ("profile.txt", "fdx_profile.txt"):  # one ES batch, then the FDx prompts; the backend's regions named
        table = (tmp_path / profile).read_text()
        assert "aten::" in table and "medsyn.language_model" in table and "medsyn.vision_tower" in table


@pytest.mark.slow
def test_gpu_eval_bfloat16_checks_equality_in_float32_too(gpu_eval, tmp_path: Path) -> None:
    """The GPU run's branch: bf16 timings, the equality checked again in float32, then back to bf16 for the rest."""
    report = gpu_eval.main([
        "--arch", "tiny", "--device", "cpu", "--dtype", "bfloat16", "--cases", "2", "--image-px", "64",
        "--text-words", "60", "--peers", "", "--ablations", "--out", str(tmp_path / "gpu_eval.json"),
    ])  # fmt: skip
    assert report["dtype"] == "bfloat16"
    assert report["posterior_max_abs_diff_vs_plain_fp32"] < 1e-5  # the algorithm is exact
    assert report["posterior_max_abs_diff_vs_plain_fp32"] != report["posterior_max_abs_diff_vs_plain"]  # measured apart
    assert report["posterior_max_abs_diff_plain_batched_vs_plain"] >= 0  # bf16's own batching noise, reported beside it
    # every timing, the ablations after the float32 check included, ran on the bf16 weights
    dtypes = {entry["model_dtype"] for path in report["paths"].values() for entry in path.values()}
    assert dtypes == {"bfloat16"} and "ours_no_prefix_sharing" in report["paths"]


def test_gpu_eval_records_a_batch_size_that_runs_out_of_memory_and_goes_on(gpu_eval, tmp_path: Path, monkeypatch) -> None:
    """A batch size too large for the GPU is recorded under ``skipped``; the best of the others counts."""
    loglikelihood = gpu_eval.MedsynVLM.loglikelihood

    def out_of_memory_at_4(self, docs):
        if self.config.batch_size == 4:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return loglikelihood(self, docs)

    monkeypatch.setattr(gpu_eval.MedsynVLM, "loglikelihood", out_of_memory_at_4)
    out = tmp_path / "gpu_eval.json"
    report = gpu_eval.main([
        "--arch", "tiny", "--device", "cpu", "--cases", "1", "--image-px", "64", "--text-words", "30",
        "--peers", "", "--batch-size", "2,4", "--out", str(out),
    ])  # fmt: skip
    assert report["skipped"] == {"ours_bs4": "out of GPU memory"}
    assert report["ours_batch_size"] == 2 and "ours_bs4" not in report["paths"]
    assert json.loads(out.read_text())["skipped"] == report["skipped"]


@pytest.mark.slow
def test_gpu_eval_end_to_end_runs_every_task_three_ways_on_cpu(gpu_eval, tmp_path: Path, monkeypatch) -> None:
    """--end-to-end: every task of `medsyn eval --tasks en` through ours, lighteval's path and VLMEvalKit's loop on the
    same 2 cases, each figure present, extrapolated to 452 cases; on CPU no JSON unless --out is given."""
    monkeypatch.setattr(gpu_eval, "RESULTS", tmp_path / "results")
    args = ["--arch", "tiny", "--device", "cpu", "--end-to-end", "--cases", "2", "--image-px", "64", "--text-words", "30",
            "--gen-tokens", "2", "--ddx-tokens", "3", "--lighteval-batch-sizes", "4"]  # fmt: skip
    report = gpu_eval.main(args)
    assert not (tmp_path / "results").exists()  # on CPU the JSON is written only when asked
    assert report["hfu_es"] is None and report["hfu_fdx"] is None and report["peak_flops"] is None  # CPU peak unknown
    tasks = ["fdx_en", "fdx_en_text", "fdx_en_no_history", "fdx_en_random_history", "ddx_en", "es_en"]
    assert set(report["paths"]) == {"ours", "lighteval_bs4", "vlmevalkit"}
    for path in report["paths"].values():
        assert list(path["tasks"]) == tasks
        assert path["seconds"] == pytest.approx(sum(t["seconds"] for t in path["tasks"].values()), abs=1e-2)
        assert path["seconds_452_cases"] == pytest.approx(path["seconds"] * 452 / 2, rel=1e-2)
        assert path["tasks"]["es_en"]["prompts"] == 2 * (1 + 2 * 4) and path["tasks"]["ddx_en"]["prompts"] == 2
    assert report["workload"]["images_per_case_mean"] == 8.5  # cases 1 and 3 of every five have a ninth image
    assert report["paths"]["ours"]["tasks"]["es_en"]["images_encoded"] == 8 + 9  # each image once per case
    assert report["end_to_end_s"] == report["paths"]["ours"]["seconds_452_cases"]
    expected = report["paths"]["lighteval_bs4"]["seconds"] / report["paths"]["ours"]["seconds"]
    assert report["lighteval_best_batch_size"] == 4 and report["e2e_speedup_vs_lighteval"] == pytest.approx(expected, rel=0.02)
    assert report["e2e_speedup_vs_vlmevalkit"] > 0 and report["peak_rss_gib"] > 0

    out = tmp_path / "e2e.json"  # with --out, and a stated peak, the HFUs are figures
    report = gpu_eval.main([*args, "--peers", "", "--peak-flops", "1e12", "--out", str(out)])
    assert json.loads(out.read_text()) == report
    assert 0 < report["hfu_es"] and 0 < report["hfu_fdx"] and report["e2e_speedup_vs_lighteval"] is None
