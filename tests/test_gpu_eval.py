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
        "--gen-tokens", "2", "--lighteval-batch-sizes", "2", "--out", str(out),
    ])  # fmt: skip
    assert json.loads(out.read_text()) == report
    for key in ("es_speedup_vs_lighteval", "fdx_speedup_vs_lighteval", "mfu"):
        assert key in report
    assert report["posterior_max_abs_diff_vs_plain"] < 1e-3
    es = report["paths"]["ours"]["es_sweep"]
    assert es["prompts"] == 2 * (1 + 2 * 4) and es["images_encoded"] == 2 * 8  # each image once per case
    assert set(report["paths"]) == {"ours", "lighteval_bs2", "vlmevalkit"}
