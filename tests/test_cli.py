"""The `medsyn validate` / `medsyn build` command line (DESIGN §6), including the real exit status."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from medsyn.cli import main


def run_medsyn(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`medsyn ARGS` in a fresh interpreter, offline, as a user runs it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "medsyn.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def test_real_exit_status_and_problem_lines(raw_copy: Path, tmp_path: Path, capsys) -> None:
    (raw_copy / "en-0002" / "smear.png").write_bytes(b"not an image")
    (raw_copy / "zh-0001" / "case.json").write_text("{", encoding="utf-8")
    proc = run_medsyn("validate", str(raw_copy))
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert re.match(r"^en-0002: visual_evidence\[1\]\.images\[0\]: 'smear.png' cannot be decoded as an image", lines[0])
    assert re.match(r"^zh-0001: case\.json: malformed JSON", lines[1])
    assert lines[2:] == [f"2 problem(s) in {raw_copy}"]

    out = tmp_path / "out"  # build through main(): same lines, exit status 1, nothing written
    assert main(["build", str(raw_copy), str(out), "--quiet"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[:2] == lines[:2]
    assert not out.exists()


def test_build_defaults_to_medsyn_in_the_working_directory(fixture_raw: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["build", str(fixture_raw), "--quiet"]) == 0
    assert (tmp_path / "medsyn" / "manifest.json").is_file()
    # the release's promise: in that directory, load_dataset("medsyn", ...) loads the folder
    assert datasets.load_dataset("medsyn", "zh", split="test")["case_id"] == ["zh-0001"]


def test_build_reports_counts_and_revision(fixture_raw: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["build", str(fixture_raw), str(out), "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[:2] == ["en: 2 cases, 5 images", "zh: 1 cases, 2 images"]
    assert re.fullmatch(rf"wrote {re.escape(str(out.resolve()))} \(revision [0-9a-f]{{12}}\)", lines[2])


def test_help_lists_the_commands(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for command in ("validate", "build"):
        assert re.search(rf"^\s+{command}\s", text, re.M), text
