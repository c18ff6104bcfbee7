"""upload.py and medsyn.hub: the pre-upload check, the dry-run file list, and failing cleanly with no network."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from medsyn.build import build_dataset
from medsyn.hub import CheckError, check_dataset_folder, plan_dataset, plan_space
from medsyn.schema import FEATURES

ROOT = Path(__file__).resolve().parents[1]
RAW_FOLDERS = {"fixtures": ROOT / "tests" / "fixtures" / "raw", "mini": ROOT / "dataset_builder" / "sample"}
TOKEN = "hf_medsynDummyToken0123456789"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The fixture cases built by `medsyn build`, shared read-only; tests copy it before changing it."""
    return build_dataset(RAW_FOLDERS["fixtures"], tmp_path_factory.mktemp("built") / "medsyn", progress=False).out_dir


@pytest.fixture
def folder(built, tmp_path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "medsyn"))


def _snapshot(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    base = {**base, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", **(env or {})}
    base = {k: v for k, v in base.items() if v is not None}  # None: unset
    return subprocess.run(
        [sys.executable, str(ROOT / "upload.py"), *args], capture_output=True, text=True, env=base, timeout=120
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _set_front_matter(folder: Path, old: str, new: str) -> None:
    readme = folder / "README.md"
    text = readme.read_text(encoding="utf-8")
    assert old in text
    readme.write_text(text.replace(old, new, 1), encoding="utf-8")


# --- the pre-upload check ---------------------------------------------------


def test_a_good_build_passes_and_the_check_writes_nothing(folder):
    before = _snapshot(folder)
    assert check_dataset_folder(folder) == []
    assert _snapshot(folder) == before


def test_missing_config_files(folder):
    for path in (folder / "zh").glob("*.parquet"):
        path.unlink()
    assert check_dataset_folder(folder) == ["config zh: no file matches zh/test-*.parquet"]


def test_image_stored_as_a_path(folder, tmp_path):
    """The datasets pitfall: rows given image file paths and written with to_parquet keep the path, not the bytes."""
    ds = datasets.load_dataset(str(folder), "en", split="test", cache_dir=str(tmp_path / "cache"))
    rows = ds.cast_column("images", datasets.List(datasets.Image(decode=False))).to_list()
    for row in rows:
        paths = []
        for i, image in enumerate(row["images"]):
            path = tmp_path / f"{row['case_id']}-{i}.png"
            path.write_bytes(image["bytes"])
            paths.append(str(path))
        row["images"] = paths
    (shard,) = (folder / "en").glob("*.parquet")
    datasets.Dataset.from_list(rows, features=FEATURES).to_parquet(str(shard))
    problems = check_dataset_folder(folder)
    assert problems, "an image stored as a path must be refused"
    assert all("stored as a path" in p for p in problems)
    assert problems[0].startswith(f"en/{shard.name}: row 0 (case en-0001): images[0] is stored as a path ('{tmp_path}")
    assert len(problems) == sum(len(r["images"]) for r in rows)


def test_invalid_card_yaml(folder):
    _set_front_matter(folder, "pretty_name: MEDSYN", "pretty_name: [MEDSYN")
    (problem,) = check_dataset_folder(folder)
    assert problem.startswith("README.md: card YAML does not parse:")


def test_missing_gating_keys(folder):
    _set_front_matter(folder, "extra_gated_prompt:", "gating_prompt_typo:")
    readme = folder / "README.md"
    readme.write_text(readme.read_text().replace("  I agree not to attempt to re-identify", "  I agree to re-use"))
    assert check_dataset_folder(folder) == [
        "README.md: card YAML: missing key 'extra_gated_prompt'",
        "README.md: card YAML: extra_gated_fields has no checkbox about not re-identifying patients ('re-identify')",
    ]


def test_missing_gating_fields_and_configs(folder):
    readme = folder / "README.md"
    text = readme.read_text()
    head, rest = text.split("extra_gated_fields:", 1)
    readme.write_text(head + "extra_gated_button_content:" + rest.split("extra_gated_button_content:", 1)[1])
    assert "README.md: card YAML: missing key 'extra_gated_fields'" in check_dataset_folder(folder)


def test_card_counts_that_drift_from_the_files(folder):
    _set_front_matter(folder, "num_examples: 2", "num_examples: 5")
    assert check_dataset_folder(folder) == ["config en: card says 5 rows, the files hold 2"]


def test_a_file_above_the_per_file_limit(folder):
    problems = check_dataset_folder(folder, max_file_bytes=20_000)
    assert any(p.startswith("en/test-00000-of-00001.parquet: ") and "per-file limit of 20000" in p for p in problems)
    assert not any(p.startswith("manifest.json") for p in problems)


def test_plan_refuses_a_broken_folder(folder):
    (folder / "manifest.json").unlink()
    with pytest.raises(CheckError) as err:
        plan_dataset(folder, "me/medsyn")
    assert err.value.problems == ["manifest.json: missing"]


# --- dry run ------------------------------------------------------------------


def _dry_run_files(stdout: str) -> set[str]:
    listing = stdout.split("files (", 1)[1].split("\ntotal:", 1)[0].splitlines()[1:]
    return {line.split()[-1] for line in listing}


def _files_load_dataset_needs(folder: Path) -> set[str]:
    needed = set()
    for config in datasets.get_dataset_config_names(str(folder)):
        builder = datasets.load_dataset_builder(str(folder), config)
        for files in builder.config.data_files.values():
            needed |= {Path(f).resolve().relative_to(folder.resolve()).as_posix() for f in files}
    return needed


@pytest.mark.parametrize("raw", sorted(RAW_FOLDERS))
def test_dry_run_lists_exactly_what_a_user_downloads(raw, tmp_path):
    if not RAW_FOLDERS[raw].is_dir():
        pytest.skip(f"{RAW_FOLDERS[raw]} is not there yet")
    folder = build_dataset(RAW_FOLDERS[raw], tmp_path / "medsyn", progress=False).out_dir
    # clutter a user must never download
    for junk in (".cache/huggingface/upload/x.lock", "en/.~lock.parquet#", "__pycache__/a.pyc", "notes.txt", "en/x.json"):
        (folder / junk).parent.mkdir(parents=True, exist_ok=True)
        (folder / junk).write_text("junk")
    before = _snapshot(folder)
    result = _run("dataset", "me/medsyn", "--folder", str(folder), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert _dry_run_files(result.stdout) == {"README.md", "manifest.json"} | _files_load_dataset_needs(folder)
    assert "private: yes" in result.stdout and "gated: auto" in result.stdout
    assert "endpoint: https://huggingface.co" in result.stdout
    for line in result.stdout.split("files (", 1)[1].splitlines()[1:-1]:
        size, unit, _ = line.split()
        assert float(size) > 0 and unit in ("B", "kB", "MB", "GB")
    assert _snapshot(folder) == before
    public = _run("dataset", "me/medsyn", "--folder", str(folder), "--dry-run", "--public")
    assert "private: no" in public.stdout and "gated: auto" in public.stdout


def test_dry_run_honours_hf_endpoint(built):
    result = _run("dataset", "me/medsyn", "--folder", str(built), "--dry-run", env={"HF_ENDPOINT": "http://127.0.0.1:1"})
    assert "endpoint: http://127.0.0.1:1" in result.stdout


# --- failing cleanly --------------------------------------------------------


def test_no_network_fails_with_one_line_and_leaves_nothing_behind(folder):
    before = _snapshot(folder)
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}", "HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": None}
    results = [_run("dataset", "me/medsyn", "--folder", str(folder), env=env) for _ in range(2)]
    for result in results:
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("upload.py: error: cannot reach the Hugging Face Hub at http://127.0.0.1:")
        assert TOKEN not in result.stdout + result.stderr
        assert _snapshot(folder) == before
    assert results[0].stderr == results[1].stderr


@pytest.mark.parametrize(
    "env, message",
    [
        ({"HF_TOKEN": TOKEN}, "upload.py: error: HF_HUB_OFFLINE is set: unset it to upload"),
        ({"HF_HUB_OFFLINE": None}, "upload.py: error: no Hugging Face token: log in with `hf auth login` or set HF_TOKEN"),
    ],
)
def test_offline_or_without_a_token_fails_with_one_line(built, tmp_path, env, message):
    result = _run("dataset", "me/medsyn", "--folder", str(built), env={"HF_HOME": str(tmp_path / "hf_home"), **env})
    assert result.returncode == 1 and result.stderr.strip() == message
    assert TOKEN not in result.stdout + result.stderr


def test_a_broken_folder_is_refused_before_any_hub_call(folder):
    shutil.rmtree(folder / "zh")
    result = _run("dataset", "me/medsyn", "--folder", str(folder), env={"HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": None})
    assert result.returncode == 1
    assert result.stderr.strip() == "upload.py: check failed: config zh: no file matches zh/test-*.parquet"


def test_help_lists_the_three_targets():
    result = _run("--help")
    assert result.returncode == 0
    for target in ("dataset", "metric", "leaderboard"):
        assert target in result.stdout
    assert "--dry-run" in _run("metric", "--help").stdout


# --- Spaces -------------------------------------------------------------------


def _space(tmp_path: Path, front_matter: str = "sdk: gradio\napp_file: app.py\n") -> Path:
    space = tmp_path / "space"
    for rel, text in {
        "README.md": f"---\ntitle: MEDSYN metric\n{front_matter}---\n# Card\n",
        "app.py": "print('app')\n",
        "requirements.txt": "medsyn\n",
        "medsyn_metric.py": "x = 1\n",
        "__pycache__/medsyn_metric.cpython-311.pyc": "",
        ".gradio/flagged/log.csv": "",
        "stray.pyc": "",
    }.items():
        (space / rel).parent.mkdir(parents=True, exist_ok=True)
        (space / rel).write_text(text)
    return space


def test_space_plan_skips_caches_and_mirrors_the_folder(tmp_path):
    plan = plan_space(_space(tmp_path), "me/medsyn_metric")
    assert [f.path_in_repo for f in plan.files] == ["README.md", "app.py", "medsyn_metric.py", "requirements.txt"]
    assert plan.repo_type == "space" and plan.space_sdk == "gradio" and not plan.private
    assert plan.delete_patterns == ["*"]


def test_space_without_sdk_or_app_is_refused(tmp_path):
    space = _space(tmp_path, front_matter="title: x\n")
    (space / "app.py").unlink()
    with pytest.raises(CheckError) as err:
        plan_space(space, "me/medsyn_metric")
    assert [p.split(": ", 1)[1] for p in err.value.problems] == [
        "front-matter has no 'sdk'",
        "app file 'app.py' (front-matter app_file) is missing",
    ]
