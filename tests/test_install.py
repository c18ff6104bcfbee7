"""A wheel of medsyn, installed into a fresh virtual environment outside the checkout, works from any folder.

The wheel is built offline (no build isolation, the dev extra's setuptools). The fresh environment reaches the
dependencies of this one through a ``.pth`` line (nothing is downloaded) but not its editable medsyn, whose
finder lives in a ``.pth`` file that a ``.pth`` line does not process: the medsyn that runs is the wheel's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(the fresh environment's bin/, a working folder outside the checkout, the environment variables)."""
    tmp = tmp_path_factory.mktemp("install")
    env = {
        **os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PIP_NO_INDEX": "1",
        "MEDSYN_CACHE": str(tmp / "cache"), "HF_HOME": str(tmp / "hf"), "PYTHONPATH": "",
    }  # fmt: skip
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"), str(REPO)], tmp, env)
    wheel = next((tmp / "dist").glob("medsyn-*.whl"))
    _run([sys.executable, "-m", "venv", str(tmp / "venv")], tmp, env)
    site = Path(_run([str(tmp / "venv" / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env).strip())
    (site / "medsyn_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(tmp / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], tmp, env)
    work = tmp / "work"
    work.mkdir()
    return tmp / "venv" / "bin", work, env


def test_the_wheel_holds_the_package_data_and_runs_outside_the_checkout(installed) -> None:
    bin_dir, work, env = installed
    code = (
        "import json, medsyn, medsyn.data.locations as l, medsyn.eval.results as r\n"
        "print(json.dumps([medsyn.__file__, str(l.SAMPLE_DIR), str(r.METRIC_DIR)]))"
    )
    paths = json.loads(_run([str(bin_dir / "python"), "-c", code], work, env))
    venv = bin_dir.parent
    assert all(Path(p).is_relative_to(venv) for p in paths), paths  # the wheel's files, not the checkout's
    assert len(list(Path(paths[1]).glob("*/case.json"))) == 24


def test_build_of_the_embedded_sample(installed) -> None:
    bin_dir, work, env = installed
    sample = _run([str(bin_dir / "python"), "-c", "from medsyn.data.locations import SAMPLE_DIR; print(SAMPLE_DIR)"], work, env).strip()
    _run([str(bin_dir / "medsyn"), "build", sample, "--quiet"], work, env)
    manifest = json.loads((work / "medsyn" / "manifest.json").read_text(encoding="utf-8"))
    assert len(manifest["cases"]) == 24


def test_evaluate_load_of_the_installed_metric_module_computes_fdx(installed) -> None:
    bin_dir, work, env = installed
    code = (
        "import evaluate\nfrom medsyn.eval.results import METRIC_DIR\n"
        "fdx = evaluate.load(str(METRIC_DIR), 'fdx')\n"
        "print(fdx.compute(predictions=['The answer is (B).', 'I cannot tell.'], references=['B', 'A']))"
    )
    out = _run([str(bin_dir / "python"), "-c", code], work, env)
    assert "{'fdx_accuracy': 0.5, 'parse_failures': 1, 'n': 2}" in out


@pytest.mark.slow
def test_demo_writes_scored_results(installed) -> None:
    bin_dir, work, env = installed
    _run([str(bin_dir / "medsyn"), "demo", "--out", str(work / "demo")], work, env)
    overall = json.loads((work / "demo" / "results.json").read_text(encoding="utf-8"))["results"]["overall"]
    assert overall["n"] == 24
    assert overall["fdx_accuracy"] is not None and overall["parse_failures"] is not None
    assert isinstance(overall["judge_failures"], int)  # DDx judged: a coverage, unless the judge failed on every case
    assert overall["ddx_coverage"] is not None or overall["judge_failures"] == overall["n"]
    assert overall["es_gap"] is not None and overall["evidence_sensitivity"]
