"""Publishing to the Hugging Face Hub: the pre-upload check, the file plans and the uploads (``upload.py``).

Every Hub call goes through ``huggingface_hub.HfApi``. The token is the usual one (``hf auth login``
or ``HF_TOKEN``); it is never printed, and error messages are scrubbed of it. ``HF_ENDPOINT`` is honoured.
Every HTTP request of an upload is bounded (:func:`hub_timeout`): huggingface_hub's own client waits
without limit on most calls, so a server that accepts the connection and never answers would hang it.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import datasets
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, HfApi, SpaceCard, SpaceCardData, constants, get_token, set_client_factory
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from huggingface_hub.utils import filter_repo_objects

from medsyn.data.card import SPLIT, format_size
from medsyn.data.schema import FEATURES

try:  # not public API: the client huggingface_hub builds by default, which _bounded_requests extends
    from huggingface_hub.utils._http import default_client_factory
except ImportError:  # pragma: no cover - depends on the installed huggingface_hub
    default_client_factory = None

try:  # huggingface_hub >= 2 talks HTTP through httpx2, earlier releases through httpx
    from httpx2 import Request, TimeoutException, TransportError
except ImportError:  # pragma: no cover - depends on the installed huggingface_hub
    from httpx import Request, TimeoutException, TransportError

logger = logging.getLogger(__name__)

HUB_TIMEOUT_S = 60.0
"""Seconds an upload's HTTP request may wait to connect, or between two pieces of the server's answer
(not for the whole transfer: a large file that keeps moving is never cut)."""
TIMEOUT_ENV = "HF_HUB_DOWNLOAD_TIMEOUT"
"""huggingface_hub's own setting, which it also uses as the default timeout of calls that name none:
when set, it replaces HUB_TIMEOUT_S here."""

MAX_FILE_BYTES = 50 * 1000**3
"""The Hub refuses any single file above 50 GB (https://huggingface.co/docs/hub/storage-limits; 20 GB
is the recommended size). Files above 10 MB must go through Xet/LFS, which ``HfApi`` does by itself,
so only the hard limit is checked here."""

REQUIRED_CARD_KEYS = (
    "pretty_name",
    "language",
    "license",
    "license_name",
    "license_link",
    "task_categories",
    "tags",
    "size_categories",
    "configs",
    "dataset_info",
    "extra_gated_prompt",
    "extra_gated_fields",
)
GATING_AGREEMENTS = {"re-identify": "not re-identifying patients", "train": "not training on the test split"}
"""A word each gating checkbox must contain, and what the agreement is about (for error messages)."""

DATASET_EXTRA_FILES = ("README.md", "manifest.json", "SOURCES.md")
PACKAGE_DIR = Path(__file__).resolve().parents[1]
"""The medsyn package, shipped as ``medsyn/`` beside a Space's app.py: the Spaces import it, and it is not on PyPI."""
PACKAGE_SKIP = ("data/sample/",)
"""Package data no Space uses: MEDSYN-mini's raw cases (6 MB), which only ``medsyn demo`` and ``medsyn build`` read."""
SPACE_SKIP_DIRS = ("__pycache__",)
SPACE_SKIP_SUFFIXES = (".pyc",)
SPACE_IGNORE = ("pending/*",)
"""Never uploaded to a Space: the leaderboard keeps submissions awaiting review in ``pending/`` beside
its app.py (the default of ``MEDSYN_PENDING_DIR``)."""

SPACE_SDKS = ("gradio", "streamlit", "docker", "static")
SPACE_COLORS = ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray")
MAX_SHORT_DESCRIPTION = 60
"""The Hub's rules for a Space's front-matter (https://huggingface.co/docs/hub/spaces-config-reference):
it refuses a README that breaks them, so the Space plan checks them before anything is sent."""


class CheckError(Exception):
    """A folder failed the pre-upload check; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class HubError(Exception):
    """A Hub call failed; the message is one line, safe to print (no token)."""


@dataclass(frozen=True)
class PlannedFile:
    """One file to upload: its path in the repo, where it is here, and its size in bytes."""

    path_in_repo: str
    local_path: Path
    size: int


@dataclass(frozen=True)
class UploadPlan:
    """Everything an upload does: the repo, its settings, and the exact files."""

    repo_id: str
    repo_type: str  # "dataset" or "space"
    folder: Path
    files: list[PlannedFile]
    private: bool | None
    """The visibility to set; None leaves an existing repo's visibility as it is."""
    private_if_new: bool = False
    """The visibility a new repo gets when ``private`` is None."""
    gated: str | bool = False
    space_sdk: str | None = None
    delete_patterns: list[str] = field(default_factory=list)
    """Remote files matching these and not in ``files`` are deleted, so stale shards never linger."""

    @property
    def private_on_create(self) -> bool:
        """The visibility the repo gets if this upload creates it."""
        return self.private_if_new if self.private is None else self.private


# --- pre-upload check -------------------------------------------------------


def card_problems(text: str) -> list[str]:
    """Problems of a dataset card: YAML that does not parse, missing required keys, incomplete gating."""
    try:
        data = DatasetCard(text).data.to_dict()
    except Exception as err:  # yaml.YAMLError or ValueError from huggingface_hub's parser
        return [f"README.md: card YAML does not parse: {_first_line(err)}"]
    problems = [f"README.md: card YAML: missing key {key!r}" for key in REQUIRED_CARD_KEYS if not data.get(key)]
    fields = data.get("extra_gated_fields")
    if fields and not isinstance(fields, dict):
        problems.append("README.md: card YAML: extra_gated_fields must be a mapping of label to field type")
    elif fields:
        checkboxes = [label.lower() for label, kind in fields.items() if kind == "checkbox"]
        for word, what in GATING_AGREEMENTS.items():
            if not any(word in label for label in checkboxes):
                problems.append(f"README.md: card YAML: extra_gated_fields has no checkbox about {what} ({word!r})")
    return problems


def check_dataset_folder(folder: str | Path, max_file_bytes: int = MAX_FILE_BYTES) -> list[str]:
    """Check a built dataset folder before upload; return one line per problem (empty when it is fine).

    The card parses and has the required keys; every config's files exist, load with ``load_dataset``
    with the schema's features and the card's row counts; no image is stored as a path; no file is
    above the Hub's per-file limit.
    """
    folder = Path(folder)
    readme = folder / "README.md"
    if not readme.is_file():
        return [f"{folder}: no README.md (build the folder with `medsyn build`)"]
    text = readme.read_text(encoding="utf-8")
    problems = card_problems(text)
    try:
        card_data = DatasetCard(text).data
        configs = MetadataConfigs.from_dataset_card_data(card_data)
        infos = DatasetInfosDict.from_dataset_card_data(card_data)
    except Exception as err:  # YAML, or configs/dataset_info that datasets cannot read
        return problems if problems else [f"README.md: card configs/dataset_info unreadable: {_first_line(err)}"]
    problems += _manifest_problems(folder)
    for config in configs:
        files = _config_files(folder, configs[config])
        if not files:
            patterns = ", ".join(_config_patterns(configs[config]))
            problems.append(f"config {config}: no file matches {patterns}")
            continue
        for path in files:
            problems += _image_problems(folder, path)
        problems += _load_problems(folder, config, infos.get(config))
    for planned in _dataset_files(folder, configs):
        if planned.size > max_file_bytes:
            problems.append(
                f"{planned.path_in_repo}: {planned.size} bytes is above the Hub's per-file limit of {max_file_bytes}"
            )
    return problems


def _manifest_problems(folder: Path) -> list[str]:
    path = folder / "manifest.json"
    if not path.is_file():
        return ["manifest.json: missing"]
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        return [f"manifest.json: not valid JSON: {err}"]
    return []


def _config_patterns(config: dict) -> list[str]:
    patterns: list[str] = []
    for entry in config.get("data_files", []):
        paths = entry["path"] if isinstance(entry, dict) else entry
        patterns += [paths] if isinstance(paths, str) else list(paths)
    return patterns


def _config_files(folder: Path, config: dict) -> list[Path]:
    found = {folder / p for pattern in _config_patterns(config) for p in glob.glob(pattern, root_dir=folder)}
    return sorted(p for p in found if p.is_file())


def _image_columns() -> list[str]:
    return [
        name
        for name, feature in FEATURES.items()
        if isinstance(feature, datasets.Image) or isinstance(getattr(feature, "feature", None), datasets.Image)
    ]


def _image_problems(folder: Path, path: Path) -> list[str]:
    """Rows whose image has no bytes (it is stored as a path), read straight from the Parquet file."""
    rel = path.relative_to(folder).as_posix()
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow.ArrowInvalid and friends: not a Parquet file
        return [f"{rel}: not a readable Parquet file: {_first_line(err)}"]
    ids = table.column("case_id").to_pylist() if "case_id" in table.column_names else [None] * table.num_rows
    problems = []
    for column in _image_columns():
        if column not in table.column_names:
            continue  # the load check reports the missing column
        values = table.column(column).combine_chunks()
        is_list = not isinstance(FEATURES[column], datasets.Image)
        images = pc.list_flatten(values) if is_list else values
        rows = pc.list_parent_indices(values).to_pylist() if is_list else list(range(len(values)))
        starts = values.offsets.to_pylist() if is_list else [0] * (len(values) + 1)
        paths = pc.struct_field(images, "path").to_pylist()
        missing = pc.is_null(pc.struct_field(images, "bytes")).to_pylist()
        for k in (k for k, absent in enumerate(missing) if absent):
            row = rows[k]
            where = f"row {row}" + (f" (case {ids[row]})" if ids[row] else "")
            index = f"[{k - starts[row]}]" if is_list else ""
            problems.append(f"{rel}: {where}: {column}{index} is stored as a path ({paths[k]!r}), not as bytes")
    return problems


def _load_problems(folder: Path, config: str, info: datasets.DatasetInfo | None) -> list[str]:
    with tempfile.TemporaryDirectory() as cache_dir, _quiet_datasets():
        try:
            ds = datasets.load_dataset(
                str(folder), config, split=SPLIT, cache_dir=cache_dir, verification_mode="no_checks"
            )  # the row counts are compared below, with a clearer message
        except Exception as err:  # any failure to load is the problem reported
            return [f"config {config}: load_dataset fails: {type(err).__name__}: {_first_line(err)}"]
        problems = []
        if ds.features != FEATURES:
            problems.append(f"config {config}: features differ from medsyn.data.schema.FEATURES")
        if info is None or info.splits is None or SPLIT not in info.splits:
            problems.append(f"config {config}: card has no dataset_info split {SPLIT!r}")
        elif info.splits[SPLIT].num_examples != ds.num_rows:
            problems.append(
                f"config {config}: card says {info.splits[SPLIT].num_examples} rows, the files hold {ds.num_rows}"
            )
        del ds
    return problems


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    """No progress bars or info logs from ``datasets`` while the check loads a config."""
    bars, verbosity = datasets.is_progress_bar_enabled(), datasets.logging.get_verbosity()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    try:
        yield
    finally:
        datasets.logging.set_verbosity(verbosity)
        if bars:
            datasets.enable_progress_bars()


# --- file plans -------------------------------------------------------------


def _planned(folder: Path, path: Path) -> PlannedFile:
    return PlannedFile(path.relative_to(folder).as_posix(), path, path.stat().st_size)


def _dataset_files(folder: Path, configs: MetadataConfigs) -> list[PlannedFile]:
    files = [folder / name for name in DATASET_EXTRA_FILES if (folder / name).is_file()]
    for config in configs.values():
        files += _config_files(folder, config)
    return sorted({_planned(folder, p) for p in files}, key=lambda f: f.path_in_repo)


def plan_dataset(folder: str | Path, repo_id: str, private: bool | None = None) -> UploadPlan:
    """Check a built dataset folder and plan its upload: README.md, manifest.json and the configs' Parquet files.

    ``private`` sets the visibility; None keeps an existing repo's, and a new repo is private. Access is
    gated either way (the card's form asks for the agreements).
    Raises CheckError when the folder fails the pre-upload check.
    """
    folder = Path(folder)
    problems = check_dataset_folder(folder)
    if problems:
        raise CheckError(problems)
    configs = MetadataConfigs.from_dataset_card_data(DatasetCard.load(folder / "README.md").data)
    return UploadPlan(
        repo_id=repo_id,
        repo_type="dataset",
        folder=folder,
        files=_dataset_files(folder, configs),
        private=private,
        private_if_new=True,
        gated="auto",
        delete_patterns=["*.parquet"],
    )


def package_files(package: Path = PACKAGE_DIR) -> list[PlannedFile]:
    """What an install of the package holds (its modules and package data) but :data:`PACKAGE_SKIP`, as ``medsyn/...``."""
    paths = [
        p for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        and not p.relative_to(package).as_posix().startswith(PACKAGE_SKIP)
    ]  # fmt: skip
    return sorted(
        (PlannedFile(f"medsyn/{p.relative_to(package).as_posix()}", p, p.stat().st_size) for p in paths),
        key=lambda f: f.path_in_repo,
    )


def plan_space(folder: str | Path, repo_id: str, private: bool | None = None) -> UploadPlan:
    """Check a Space folder (metric module or leaderboard) and plan its upload.

    The plan holds every file of the folder but caches, dot-files and ``pending/`` (the leaderboard's
    submissions awaiting review), plus the medsyn package as ``medsyn/``. The Space mirrors the plan: remote
    files that are not in it are deleted. ``private`` sets the visibility; None keeps an existing
    Space's, and a new Space is public. Raises CheckError when the README's front-matter breaks the
    Hub's rules (:func:`space_card_problems`) or the folder has its own ``medsyn/``.
    """
    folder = Path(folder)
    card, problems = _space_card(folder)
    if (folder / "medsyn").exists():
        problems.append(f"{folder}: has its own medsyn/, which would shadow the package uploaded beside it")
    if problems:
        raise CheckError(problems)
    paths = [p for p in sorted(folder.rglob("*")) if p.is_file() and not _skipped(p.relative_to(folder))]
    kept = filter_repo_objects(
        paths, ignore_patterns=list(SPACE_IGNORE), key=lambda p: p.relative_to(folder).as_posix()
    )
    return UploadPlan(
        repo_id=repo_id,
        repo_type="space",
        folder=folder,
        files=[_planned(folder, path) for path in kept] + package_files(),
        private=private,
        private_if_new=False,
        space_sdk=card.sdk,
        delete_patterns=["*"],
    )


def space_card_problems(folder: str | Path) -> list[str]:
    """Problems of a Space README's front-matter that the Hub would refuse; empty when it is fine.

    It must parse and name an ``sdk`` among SPACE_SDKS; ``colorFrom``/``colorTo``, when given, are among
    SPACE_COLORS; ``short_description``, when given, is text of at most MAX_SHORT_DESCRIPTION characters;
    the app file (``app_file``, default ``app.py``) exists.
    """
    return _space_card(folder)[1]


def _space_card(folder: str | Path) -> tuple[SpaceCardData | None, list[str]]:
    """The Space README's front-matter (None when it cannot be read) and its problems (:func:`space_card_problems`)."""
    folder = Path(folder)
    readme = folder / "README.md"
    if not readme.is_file():
        return None, [f"{folder}: no README.md with the Space's front-matter"]
    try:
        data = SpaceCard(readme.read_text(encoding="utf-8")).data
    except Exception as err:  # yaml.YAMLError or ValueError from huggingface_hub's parser
        return None, [f"{readme}: front-matter does not parse: {_first_line(err)}"]
    problems = []
    if not data.sdk:
        problems.append(f"{readme}: front-matter has no 'sdk'")
    elif data.sdk not in SPACE_SDKS:
        problems.append(f"{readme}: front-matter sdk {data.sdk!r} is not one of {', '.join(SPACE_SDKS)}")
    for key in ("colorFrom", "colorTo"):
        color = data.get(key)
        if color is not None and color not in SPACE_COLORS:
            problems.append(f"{readme}: front-matter {key} {color!r} is not one of {', '.join(SPACE_COLORS)}")
    short = data.get("short_description")
    if short is not None and not isinstance(short, str):
        problems.append(f"{readme}: front-matter short_description must be text, got {short!r}")
    elif short is not None and len(short) > MAX_SHORT_DESCRIPTION:
        problems.append(
            f"{readme}: front-matter short_description is {len(short)} characters; "
            f"the Hub allows at most {MAX_SHORT_DESCRIPTION}: {short!r}"
        )
    app_file = data.app_file or "app.py"
    if not (folder / app_file).is_file():
        problems.append(f"{folder}: app file {app_file!r} (front-matter app_file) is missing")
    return data, problems


def _skipped(rel: Path) -> bool:
    return (
        any(part.startswith(".") or part in SPACE_SKIP_DIRS for part in rel.parts)
        or rel.suffix in SPACE_SKIP_SUFFIXES
    )


# --- dry run and upload -----------------------------------------------------


def endpoint() -> str:
    """The Hub endpoint in use (``HF_ENDPOINT``, else huggingface.co)."""
    return os.environ.get("HF_ENDPOINT") or constants.ENDPOINT


def describe(plan: UploadPlan) -> str:
    """The dry-run listing: repo settings, then every file with its size, then the total."""
    kind = {"dataset": "dataset", "space": f"Space (sdk {plan.space_sdk})"}[plan.repo_type]
    lines = [
        f"{kind} repo: {plan.repo_id}",
        f"endpoint: {endpoint()}",
        f"private: {_visibility(plan)}",
        f"gated: {plan.gated or 'no'}",
        f"remote files deleted when not listed below: {', '.join(plan.delete_patterns) or 'none'}",
        f"files ({len(plan.files)}):",
    ]
    width = max((len(format_size(f.size)) for f in plan.files), default=0)
    lines += [f"  {format_size(f.size):>{width}}  {f.path_in_repo}" for f in plan.files]
    lines.append(f"total: {format_size(sum(f.size for f in plan.files))}")
    return "\n".join(lines)


def _visibility(plan: UploadPlan) -> str:
    if plan.private is not None:
        return "yes" if plan.private else "no"
    flag = "--public" if plan.private_if_new else "--private"
    return f"{'yes' if plan.private_if_new else 'no'} if the repo is new; an existing one keeps its own ({flag} changes it)"


def preflight() -> str:
    """Fail early, before a long check, when no upload can work: offline mode or no token. Return the token."""
    if constants.HF_HUB_OFFLINE:
        raise HubError("HF_HUB_OFFLINE is set: unset it to upload")
    token = get_token()
    if not token:
        raise HubError("no Hugging Face token: log in with `hf auth login` or set HF_TOKEN")
    return token


def hub_timeout() -> float:
    """The timeout of every HTTP request of an upload: ``HF_HUB_DOWNLOAD_TIMEOUT`` when set, else HUB_TIMEOUT_S.

    huggingface_hub reads the variable itself, as whole seconds (it fails on import for anything else).
    """
    if not os.environ.get(TIMEOUT_ENV):
        return HUB_TIMEOUT_S
    seconds = constants.HF_HUB_DOWNLOAD_TIMEOUT
    if seconds <= 0:
        raise HubError(f"{TIMEOUT_ENV}={seconds} is not a positive number of seconds")
    return float(seconds)


@contextmanager
def _bounded_requests(seconds: float) -> Iterator[None]:
    """Every request of huggingface_hub's shared client gets ``seconds`` for each phase it leaves unbounded
    (its client has no timeout, and many calls pass ``timeout=None`` explicitly); the default client after."""

    def bound(request: Request) -> None:
        phases = request.extensions.get("timeout") or {}
        request.extensions = {**request.extensions, "timeout": {
            phase: seconds if phases.get(phase) is None else phases[phase] for phase in ("connect", "read", "write", "pool")}}

    def bounded_client():  # type: ignore[no-untyped-def]  # an httpx(2).Client
        client = default_client_factory()
        client.event_hooks = {**client.event_hooks, "request": [*client.event_hooks["request"], bound]}
        return client

    if default_client_factory is None:
        logger.warning("this huggingface_hub has no utils._http.default_client_factory: Hub requests are not bounded in time")
        yield
        return
    set_client_factory(bounded_client)
    try:
        yield
    finally:
        set_client_factory(default_client_factory)


def upload(plan: UploadPlan) -> str:
    """Create the repo or update its settings, then upload the plan's files; return the repo URL.

    An existing repo's visibility changes only when the plan sets ``private``.

    Idempotent: a rerun sends only files whose content changed (``upload_folder`` compares with the
    remote and resumes an interrupted upload). Raises HubError with a one-line message on failure.
    """
    with hub_session() as (api, token, seconds), _staged(plan) as folder:
        with hub_step("creating the repo", token, seconds):
            url = api.create_repo(  # an existing repo is left as it is
                plan.repo_id,
                repo_type=plan.repo_type,
                private=plan.private_on_create,
                exist_ok=True,
                space_sdk=plan.space_sdk,
            )
        if plan.private is not None or plan.gated:
            with hub_step("updating the repo settings", token, seconds):
                api.update_repo_settings(
                    plan.repo_id, repo_type=plan.repo_type, private=plan.private, gated=plan.gated or None
                )
        with hub_step("uploading the files", token, seconds):
            api.upload_folder(
                repo_id=plan.repo_id,
                repo_type=plan.repo_type,
                folder_path=folder,
                allow_patterns=[glob.escape(f.path_in_repo) for f in plan.files],
                delete_patterns=plan.delete_patterns or None,
                commit_message=f"Upload {plan.repo_type} with medsyn upload.py",
            )
    return str(url)


@contextmanager
def hub_step(step: str, token: str, seconds: float) -> Iterator[None]:
    """Turn any failure of the Hub calls inside into a HubError: one clean line naming ``step`` on a timeout,
    the Hub's refusal or the network problem otherwise, with ``token`` scrubbed from it."""
    try:
        yield
    except HubError:
        raise
    except TimeoutException:
        raise HubError(f"the Hub at {endpoint()} did not answer within {seconds:g} s while {step} "
                       f"({TIMEOUT_ENV} sets the limit)") from None
    except Exception as err:  # every failure becomes one clean line
        raise HubError(_redact(_describe_error(err), token)) from None


@contextmanager
def hub_session() -> Iterator[tuple[HfApi, str, float]]:
    """An ``HfApi`` with the usual token (:func:`preflight`), every request bounded by :func:`hub_timeout`;
    yields (api, token, seconds) for :func:`hub_step`."""
    token = preflight()
    seconds = hub_timeout()
    with _bounded_requests(seconds):
        yield HfApi(endpoint=endpoint(), token=token), token, seconds


@contextmanager
def _staged(plan: UploadPlan) -> Iterator[Path]:
    """The plan's folder when it holds every planned file in place; else a temporary tree of symlinks to them."""
    if all(f.local_path == plan.folder / f.path_in_repo for f in plan.files):
        yield plan.folder
        return
    with tempfile.TemporaryDirectory(prefix="medsyn-upload-") as tmp:
        for f in plan.files:
            link = Path(tmp) / f.path_in_repo
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(f.local_path.resolve())
        yield Path(tmp)


def _describe_error(err: Exception) -> str:
    if isinstance(err, OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE is set: unset it to upload"
    if isinstance(err, HfHubHTTPError):
        status = err.response.status_code if err.response is not None else "?"
        detail = err.server_message or _first_line(err)
        return f"the Hub at {endpoint()} refused the request (HTTP {status}): {_first_line(detail)}"
    if isinstance(err, (TransportError, OSError)):
        return f"cannot reach the Hugging Face Hub at {endpoint()} ({_first_line(err) or type(err).__name__}); check the network or HF_ENDPOINT"
    return f"{type(err).__name__}: {_first_line(err)}"


def _first_line(value: object) -> str:
    lines = str(value).strip().splitlines()
    return lines[0] if lines else ""


def _redact(message: str, token: str) -> str:
    return message.replace(token, "***") if token else message
