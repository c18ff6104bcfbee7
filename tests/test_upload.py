"""upload.py and medsyn.publish.hub: the pre-upload check, the dry-run file list, and failing cleanly with no network."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import datasets
import huggingface_hub
import pytest
from support import load_module

from medsyn.data.build import build_dataset
from medsyn.data.locations import SAMPLE_DIR
from medsyn.data.schema import FEATURES
from medsyn.publish import leaderboard as lb
from medsyn.publish.hub import (
    CheckError,
    check_dataset_folder,
    describe,
    plan_dataset,
    plan_space,
    space_card_problems,
)

ROOT = Path(__file__).resolve().parents[1]
SPACES = {"metric": ROOT / "metrics" / "medsyn_metric", "leaderboard": ROOT / "leaderboard"}
RESULTS_EXAMPLE = ROOT / "tests" / "data" / "results" / "example-proprietary.json"
RAW_FOLDERS = {"fixtures": ROOT / "tests" / "fixtures" / "raw", "mini": SAMPLE_DIR}


def _hub_server():
    return load_module("hub_server", Path(__file__).with_name("hub_server.py"))


hub_server = _hub_server()
TOKEN, FakeHub, fake_hub = hub_server.TOKEN, hub_server.FakeHub, hub_server.fake_hub  # fake_hub: a fixture
HF_HOME = Path(tempfile.gettempdir()) / "medsyn-tests-hf-home"  # keeps huggingface_hub's own files out of ~/.cache


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
    # huggingface_hub also reads TRANSFORMERS_OFFLINE as offline mode
    base = {k: v for k, v in os.environ.items() if not k.startswith("HF_") and k != "TRANSFORMERS_OFFLINE"}
    base = {**base, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "HF_HOME": str(HF_HOME), **(env or {})}
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


def test_missing_gating_fields(folder):
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
    folder = build_dataset(RAW_FOLDERS[raw], tmp_path / "medsyn", progress=False).out_dir
    # clutter a user must never download
    for junk in (".cache/huggingface/upload/x.lock", "en/.~lock.parquet#", "__pycache__/a.pyc", "notes.txt", "en/x.json"):
        (folder / junk).parent.mkdir(parents=True, exist_ok=True)
        (folder / junk).write_text("junk")
    before = _snapshot(folder)
    result = _run("dataset", "me/medsyn", "--folder", str(folder), "--dry-run", env={"HF_ENDPOINT": "http://127.0.0.1:1"})
    assert result.returncode == 0, result.stderr
    extra = {"README.md", "manifest.json"} | ({"SOURCES.md"} if (RAW_FOLDERS[raw] / "SOURCES.md").is_file() else set())
    assert _dry_run_files(result.stdout) == extra | _files_load_dataset_needs(folder)
    assert "private: yes" in result.stdout and "gated: auto" in result.stdout
    assert "endpoint: http://127.0.0.1:1" in result.stdout  # HF_ENDPOINT is honoured
    for line in result.stdout.split("files (", 1)[1].splitlines()[1:-1]:
        size, unit, _ = line.split()
        assert float(size) > 0 and unit in ("B", "kB", "MB", "GB")
    assert _snapshot(folder) == before


def test_public_stays_gated(built):
    text = describe(plan_dataset(built, "me/medsyn", private=False))
    assert "private: no" in text and "gated: auto" in text


def test_dry_run_says_an_existing_repo_keeps_its_visibility(built):
    text = describe(plan_dataset(built, "me/medsyn"))
    assert "private: yes if the repo is new; an existing one keeps its own (--public changes it)" in text


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


def test_a_broken_folder_is_refused_before_any_hub_call(folder, capsys, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # as a real upload would run
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    shutil.rmtree(folder / "zh")
    assert _upload_main(["dataset", "me/medsyn", "--folder", str(folder)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == "upload.py: check failed: config zh: no file matches zh/test-*.parquet\n"


def _upload_main(argv: list[str]) -> int:
    return load_module("upload", ROOT / "upload.py").main(argv)


def test_help_lists_the_three_targets(capsys):
    for argv in (["--help"], ["metric", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            _upload_main(argv)
        assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(target in out for target in ("dataset", "metric", "leaderboard", "--dry-run"))


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


def test_space_plan_skips_caches_ships_the_package_and_mirrors_the_folder(tmp_path):
    plan = plan_space(_space(tmp_path), "me/medsyn_metric")
    own = [f.path_in_repo for f in plan.files if not f.path_in_repo.startswith("medsyn/")]
    assert own == ["README.md", "app.py", "medsyn_metric.py", "requirements.txt"]
    package = {f.path_in_repo for f in plan.files} - set(own)
    src = ROOT / "src" / "medsyn"
    assert {f"medsyn/{p.relative_to(src).as_posix()}" for p in src.rglob("*.py")} <= package
    assert {"medsyn/__init__.py", "medsyn/publish/leaderboard.py", "medsyn/metrics/judges/lexicon.json", "medsyn/data/dataset_card.md"} <= package
    assert not any(f.startswith("medsyn/data/sample/") for f in package)
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in package)
    assert plan.repo_type == "space" and plan.space_sdk == "gradio"
    assert plan.private is None and plan.private_on_create is False  # new: public; existing: left as it is
    assert plan.delete_patterns == ["*"]


def _leaderboard_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SPACES["leaderboard"], tmp_path / "leaderboard", ignore=shutil.ignore_patterns("pending")))


def test_pending_submissions_stay_off_the_space(tmp_path):
    space = _leaderboard_copy(tmp_path)
    dataset = json.loads(RESULTS_EXAMPLE.read_text(encoding="utf-8"))["dataset"]
    known = {dataset["revision"]: {"name": dataset["name"], "n_cases": dataset["n_cases"]}}
    accepted, message = lb.submit(RESULTS_EXAMPLE, space / "pending", known)  # what the app does by default
    assert accepted, message
    (space / "notes.md").write_text("x")
    result = _run("leaderboard", "me/lb", "--folder", str(space), "--dry-run")
    assert result.returncode == 0, result.stderr
    own = {p for p in _dry_run_files(result.stdout) if not p.startswith("medsyn/")}
    assert own == {"README.md", "app.py", "datasets.json", "requirements.txt", "notes.md"}


@pytest.mark.parametrize("name", sorted(SPACES))
def test_the_project_space_readmes_follow_the_hub_rules(name):
    assert space_card_problems(SPACES[name]) == []


def test_a_leaderboard_readme_breaking_the_hub_rules_is_refused(tmp_path):
    space = _leaderboard_copy(tmp_path)
    _set_front_matter(space, "colorFrom: blue", "colorFrom: teal")
    _set_front_matter(space, "sdk: gradio", "sdk: flask")
    text = (space / "README.md").read_text(encoding="utf-8")
    head, rest = text.split("short_description: ", 1)
    description = "DDx coverage, FDx accuracy and Evidence Sensitivity on MEDSYN"  # 61 characters
    (space / "README.md").write_text(head + f"short_description: {description}\n" + rest.split("\n", 1)[1])
    with pytest.raises(CheckError) as err:
        plan_space(space, "me/lb")
    assert [p.split(": ", 1)[1] for p in err.value.problems] == [
        "front-matter sdk 'flask' is not one of gradio, streamlit, docker, static",
        "front-matter colorFrom 'teal' is not one of red, yellow, green, blue, indigo, purple, pink, gray",
        f"front-matter short_description is 61 characters; the Hub allows at most 60: {description!r}",
    ]
    _set_front_matter(space, description, description[:60])
    assert len(space_card_problems(space)) == 2


def test_space_without_sdk_or_app_is_refused(tmp_path):
    space = _space(tmp_path, front_matter="title: x\n")
    (space / "app.py").unlink()
    (space / "medsyn").mkdir()
    with pytest.raises(CheckError) as err:
        plan_space(space, "me/medsyn_metric")
    assert [p.split(": ", 1)[1] for p in err.value.problems] == [
        "front-matter has no 'sdk'",
        "app file 'app.py' (front-matter app_file) is missing",
        "has its own medsyn/, which would shadow the package uploaded beside it",
    ]


# --- a real upload through HfApi, against the local Hub server of tests/hub_server.py ---------


def _upload(hub: FakeHub, *args: str) -> subprocess.CompletedProcess:
    env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": None, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    return _run(*args, env=env)


def test_upload_is_private_gated_idempotent_and_drops_stale_shards(fake_hub, folder):
    first = _upload(fake_hub, "dataset", "me/medsyn", "--folder", str(folder))
    assert first.returncode == 0, first.stderr
    repo = fake_hub.repos[("dataset", "me/medsyn")]
    assert repo["private"] is True and repo["gated"] == "auto"
    wanted = _files_load_dataset_needs(folder) | {"README.md", "manifest.json"}
    assert repo["files"] == {rel: (folder / rel).read_bytes() for rel in wanted}
    assert repo["commits"] == 1
    assert TOKEN not in first.stdout + first.stderr

    again = _upload(fake_hub, "dataset", "me/medsyn", "--folder", str(folder), "--public")
    assert again.returncode == 0, again.stderr
    assert repo["commits"] == 1  # nothing changed, nothing committed
    assert repo["private"] is False and repo["gated"] == "auto"

    repo["files"]["en/test-00001-of-00002.parquet"] = b"a shard of an earlier build"  # load_dataset would read it
    repo["files"]["LICENSE.md"] = b"added on the Hub by hand"
    third = _upload(fake_hub, "dataset", "me/medsyn", "--folder", str(folder), "--public")
    assert third.returncode == 0, third.stderr
    assert set(repo["files"]) == wanted | {"LICENSE.md"} and repo["commits"] == 2


def test_a_rerun_keeps_the_visibility_set_on_the_hub(fake_hub, folder, tmp_path):
    """The README's plain command on a published dataset, or a Space made private on the Hub, changes nothing."""
    for flags, private in (["--public"], False), ([], False), (["--private"], True), ([], True):
        result = _upload(fake_hub, "dataset", "me/medsyn", "--folder", str(folder), *flags)
        assert result.returncode == 0, result.stderr
        repo = fake_hub.repos[("dataset", "me/medsyn")]
        assert (repo["private"], repo["gated"]) == (private, "auto"), flags
    space = _space(tmp_path)
    assert _upload(fake_hub, "metric", "me/medsyn_metric", "--folder", str(space)).returncode == 0
    repo = fake_hub.repos[("space", "me/medsyn_metric")]
    assert repo["private"] is False  # a new Space is public
    repo["private"] = True  # made private on the Hub
    assert _upload(fake_hub, "metric", "me/medsyn_metric", "--folder", str(space)).returncode == 0
    assert repo["private"] is True
    assert _upload(fake_hub, "metric", "me/medsyn_metric", "--folder", str(space), "--public").returncode == 0
    assert repo["private"] is False


def test_a_refusal_from_the_hub_is_one_line_without_the_token(fake_hub, folder):
    env = {"HF_ENDPOINT": fake_hub.url, "HF_TOKEN": "hf_wrongToken0123456789", "HF_HUB_OFFLINE": None}
    result = _run("dataset", "me/medsyn", "--folder", str(folder), env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"upload.py: error: the Hub at {fake_hub.url} refused the request (HTTP 401): Invalid credentials in Authorization header"
    ]
    assert "hf_wrongToken0123456789" not in result.stdout + result.stderr


def test_space_upload_mirrors_the_folder(fake_hub, tmp_path):
    space = _space(tmp_path)
    assert _upload(fake_hub, "metric", "me/medsyn_metric", "--folder", str(space)).returncode == 0
    repo = fake_hub.repos[("space", "me/medsyn_metric")]
    expected = {f.path_in_repo: f.local_path.read_bytes() for f in plan_space(space, "me/medsyn_metric").files}
    assert repo["files"] == expected  # the package's files arrive through the symlinked staging tree
    (space / "app.py").unlink()
    (space / "app2.py").write_text("print(2)\n")
    (space / "README.md").write_text("---\nsdk: gradio\napp_file: app2.py\n---\n")
    assert _upload(fake_hub, "metric", "me/medsyn_metric", "--folder", str(space)).returncode == 0
    own = sorted(p for p in repo["files"] if not p.startswith("medsyn/"))
    assert own == ["README.md", "app2.py", "medsyn_metric.py", "requirements.txt"] and repo["commits"] == 2
