"""benchmarks/gpu_eval.py on the CPU with the tiny model, so the GPU benchmark never rots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


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
    assert set(report["paths"]) == {"ours", "ours_no_prefix_sharing", "ours_stock_vision_attention", "lighteval_bs2", "vlmevalkit"}
    assert "aten::" in (tmp_path / "profile.txt").read_text()
