"""The scale benchmark's quick mode runs end to end, so `benchmarks/build_scale.py` never rots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "build_scale.py"


def test_quick_mode_measures_both_sizes(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "peak RSS ratio 60/20" in proc.stdout
    result = json.loads(out.read_text(encoding="utf-8"))
    assert [row["n_cases"] for row in result["rows"]] == [20, 60]
    for row in result["rows"]:
        assert row["n_images"] == 8 * row["n_cases"]
        assert row["image_mb"] == pytest.approx(row["n_cases"] * 8 * 0.028, rel=0.3)  # ~28 KB PNGs
        assert row["output_mb"] >= row["image_mb"]  # every image is embedded in the Parquet files
        assert row["build_seconds"] > 0 and row["copy_seconds"] > 0 and row["concat_seconds"] > 0
        assert row["peak_rss_mb"] >= row["rss_after_import_mb"] > 0
    small, large = result["rows"]
    assert result["rss_ratio"] == pytest.approx(large["peak_rss_mb"] / small["peak_rss_mb"], abs=1e-3)
