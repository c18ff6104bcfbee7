"""Writing the Hub-style dataset folder (DESIGN §4) from a raw case folder.

``OUT/README.md`` (the dataset card with its ``configs:``), ``OUT/<config>/test-*.parquet``
with embedded image bytes, ``OUT/manifest.json``, and ``OUT/SOURCES.md`` when the raw folder
has one. The build validates first and writes nothing when any case is invalid. It writes only
into a new folder, an empty one (or one with only hidden entries) or an earlier build (a MEDSYN
manifest.json), never inside RAW. A rebuild replaces only these entries: other files of the folder
(a Hub clone's ``.git``, ``.gitattributes``, ``LICENSE``) stay. The install is atomic for
``load_dataset`` (see :func:`_install`), and a rerun removes what a killed build left behind. The
builder streams rows straight into the Parquet shards (no Arrow cache, no memory-mapped second
pass), so memory stays flat as the number of cases grows.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from medsyn.data.card import card_revision, render_card
from medsyn.data.hf_builder import BUILDER_VERSION, MedsynBuilder
from medsyn.data.raw_cases import CASE_FILE, InvalidDatasetError, validate_raw
from medsyn.data.schema import FEATURES, LANGUAGES

MANIFEST = "manifest.json"
CARD = "README.md"
SOURCES = "SOURCES.md"
"""Image provenance and licences: copied from the raw folder when it has one (MEDSYN-mini's rows point to it)."""
BUILD_ENTRIES = (MANIFEST, CARD, SOURCES, *LANGUAGES)
"""Everything a build writes into its folder (a rebuild replaces these and keeps any other file)."""
MANIFEST_CASE_KEYS = ("case_id", "language", "n_images", "sha256")
STAGING = ".medsyn-staging-"
"""Staging folders are ``.<OUT's name>.medsyn-staging-<pid>-<random>`` beside OUT (a rerun removes a dead run's)."""
INTERRUPTED = "medsyn-build-interrupted-run-it-again"
INSTALLING_CARD = (
    "---\nconfigs:\n"
    + "".join(f"- config_name: {lang}\n  data_files: {INTERRUPTED}/{lang}/*.parquet\n" for lang in LANGUAGES)
    + "---\nThis folder is being installed by `medsyn build`. If no build is running, the last one was "
    "interrupted: run it again.\n"
)
"""The card while a rebuild swaps entries: no config loads under it (its files never exist)."""
CARD_TEMPLATE = Path(__file__).with_name("dataset_card.md")
MAX_SHARD_BYTES = 500 * 2**20


@dataclass
class BuildSummary:
    out_dir: Path
    stats: dict[str, dict[str, Any]]
    revision: str


def build_dataset(
    raw_dir: str | Path,
    out_dir: str | Path,
    *,
    card_template: str | Path | None = None,
    progress: bool = True,
) -> BuildSummary:
    """Validate ``raw_dir`` and write the dataset folder ``out_dir``; raise InvalidDatasetError on any problem."""
    raw_dir, out_dir = Path(raw_dir).resolve(), Path(out_dir).resolve()
    _check_out_dir(raw_dir, out_dir)
    raw = validate_raw(raw_dir)
    if raw.problems:
        raise InvalidDatasetError(raw.problems)
    template = Path(card_template or CARD_TEMPLATE).read_text(encoding="utf-8")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out_dir)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}{STAGING}{os.getpid()}-", dir=out_dir.parent))
    os.chmod(staging, 0o755)  # mkdtemp makes it 0700; it becomes out_dir, which others must be able to read
    try:
        manifest = _manifest(raw_dir, raw.cases)
        revision = hashlib.sha256(manifest.encode()).hexdigest()
        cache = staging / ".cache"  # inside the staging folder: a killed build leaves one folder, removed on rerun
        with _progress_bars(progress):
            stats = {}
            for lang in LANGUAGES:
                if any(case["language"] == lang for case in raw.cases.values()):
                    stats[lang] = _write_config(raw_dir, staging, lang, str(cache))
        shutil.rmtree(cache)
        (staging / MANIFEST).write_text(manifest, encoding="utf-8")
        (staging / CARD).write_text(render_card(template, stats, revision), encoding="utf-8")
        if (raw_dir / SOURCES).is_file():
            shutil.copyfile(raw_dir / SOURCES, staging / SOURCES)
        _install(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BuildSummary(out_dir, stats, revision)


def dataset_revision(out_dir: str | Path) -> str:
    """The revision of a built folder: the sha256 of its manifest.json."""
    return hashlib.sha256((Path(out_dir) / MANIFEST).read_bytes()).hexdigest()


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    """manifest.json of a built folder; raise ValueError unless it is a MEDSYN manifest."""
    path = Path(out_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path} is not JSON ({type(exc).__name__}: {exc})") from None
    fields = manifest if isinstance(manifest, dict) else {}
    cases = fields.get("cases")
    if not (isinstance(fields.get("builder_version"), str) and isinstance(cases, list) and all(map(_is_entry, cases))):
        keys = ", ".join(MANIFEST_CASE_KEYS)
        raise ValueError(f"{path} is not a MEDSYN manifest (builder_version, and cases with {keys})")
    return manifest


def _is_entry(case: Any) -> bool:
    return isinstance(case, dict) and all(k in case for k in MANIFEST_CASE_KEYS) and case["language"] in LANGUAGES


def manifest_cases(out_dir: str | Path) -> dict[str, list[str]]:
    """The case ids of a built folder per language, in manifest (= dataset) order."""
    cases: dict[str, list[str]] = {}
    for case in read_manifest(out_dir)["cases"]:
        cases.setdefault(case["language"], []).append(case["case_id"])
    return cases


class RevisionMismatchError(ValueError):
    """A built folder whose card and manifest.json are of different builds, or not the revision expected."""


def checked_revision(out_dir: str | Path) -> str:
    """The revision of a built folder once its card names it for every config; raise RevisionMismatchError if not."""
    out_dir = Path(out_dir)
    revision = dataset_revision(out_dir)
    card = (out_dir / CARD).read_text(encoding="utf-8") if (out_dir / CARD).is_file() else ""
    for lang in manifest_cases(out_dir):
        found = card_revision(card, lang)
        if found != revision:
            raise RevisionMismatchError(
                f"{out_dir}: {CARD} gives config {lang} revision {found or '(none)'} but {MANIFEST} is revision "
                f"{revision}: the folder mixes two builds (a build cut short, or files copied by hand); "
                "run `medsyn build` again"
            )
    return revision


def load_split(out_dir: str | Path, lang: str, revision: str) -> datasets.Dataset:
    """The ``test`` split of config ``lang`` of a built folder that is still revision ``revision``.

    Raise RevisionMismatchError when the folder is another revision or mixes two builds.
    """
    found = checked_revision(out_dir)
    if found != revision:
        raise RevisionMismatchError(
            f"{out_dir} is now revision {found}, not {revision}: it was rebuilt meanwhile; start again"
        )
    return datasets.load_dataset(str(out_dir), lang, split="test")


class OutDirError(FileExistsError):
    """An output folder that ``build`` refuses to write (a FileExistsError, as callers expect of a taken folder)."""


def _check_out_dir(raw_dir: Path, out_dir: Path) -> None:
    """Refuse an OUT inside RAW, one that is (or lies under) a file, and a folder that is not a build and not empty."""
    if out_dir == raw_dir or raw_dir in out_dir.parents:
        raise OutDirError(f"{out_dir} lies inside the raw folder {raw_dir}; write the build elsewhere")
    existing = next(p for p in (out_dir, *out_dir.parents) if p.exists())
    if not existing.is_dir():
        raise OutDirError(f"{existing} is a file, not a folder; cannot write the build {out_dir}")
    if existing != out_dir or not any(not p.name.startswith(".") for p in out_dir.iterdir()):
        return
    if (out_dir / CARD).is_file() and (out_dir / CARD).read_text(encoding="utf-8", errors="replace") == INSTALLING_CARD:
        return  # a rebuild cut short before its manifest.json went in
    try:
        read_manifest(out_dir)
    except (FileNotFoundError, ValueError) as exc:
        why = f"no {MANIFEST}" if isinstance(exc, FileNotFoundError) else str(exc)
        raise OutDirError(f"{out_dir} exists and is not a MEDSYN build ({why}); refusing to replace it") from None


def _remove_leftovers(out_dir: Path) -> None:
    """Remove the staging folders of earlier builds of ``out_dir`` whose process is gone (killed builds)."""
    prefix = f".{out_dir.name}{STAGING}"
    for path in out_dir.parent.glob(glob.escape(prefix) + "*"):
        pid = path.name[len(prefix) :].partition("-")[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _running(pid: int) -> bool:
    """Whether process ``pid`` is alive (POSIX: signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _install(staging: Path, out_dir: Path) -> None:
    """Move the staged build into ``out_dir``, replacing only the entries a build writes; others (.git, LICENSE) stay.

    Atomic for ``load_dataset``: a new folder is one rename; in an existing one INSTALLING_CARD first
    replaces the card (no config loads under it), then manifest.json and the other entries are swapped,
    and the new card comes last. A build killed on the way leaves a folder that does not load and that
    a rerun takes for a build.
    """
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    installing = staging / f".{CARD}.installing"
    installing.write_text(INSTALLING_CARD, encoding="utf-8")
    os.replace(installing, out_dir / CARD)
    os.replace(staging / MANIFEST, out_dir / MANIFEST)
    for name in BUILD_ENTRIES:
        if name not in (MANIFEST, CARD):
            _remove(out_dir / name)
            if (staging / name).exists():
                os.replace(staging / name, out_dir / name)
    os.replace(staging / CARD, out_dir / CARD)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


class _progress_bars:
    """Turn datasets' progress bars on or off for the duration of a build."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __enter__(self) -> None:
        self.was_enabled = datasets.is_progress_bar_enabled()
        (datasets.enable_progress_bars if self.enabled else datasets.disable_progress_bars)()

    def __exit__(self, *exc: object) -> None:
        (datasets.enable_progress_bars if self.was_enabled else datasets.disable_progress_bars)()


def _write_config(raw_dir: Path, out_dir: Path, lang: str, cache_dir: str) -> dict[str, Any]:
    """Write ``out_dir/<lang>/test-*.parquet`` straight from the builder (streamed, no Arrow cache)."""
    # validated already, and cache_dir is fresh: no raw_digest is needed to keep a cache apart
    builder = MedsynBuilder(
        config_name=lang, data_dir=str(raw_dir), cache_dir=cache_dir, skip_validation=True, raw_digest=""
    )
    scratch = out_dir / f".{lang}-prepare"  # beside the final folder (moves are renames); holds datasets' lock files
    prepared = scratch / "parquet"
    builder.download_and_prepare(str(prepared), file_format="parquet", max_shard_size=MAX_SHARD_BYTES)
    shards = sorted(prepared.glob("*.parquet"))
    (out_dir / lang).mkdir()
    paths = [out_dir / lang / f"test-{i:05d}-of-{len(shards):05d}.parquet" for i in range(len(shards))]
    for shard, path in zip(shards, paths):
        shard.replace(path)
    shutil.rmtree(scratch)
    meta = [c for c in FEATURES if c != "images"]
    ds = datasets.Dataset(pa.concat_tables(pq.read_table(path, columns=meta) for path in paths))
    return _config_stats(ds, sum(path.stat().st_size for path in paths))


def _config_stats(ds: datasets.Dataset, n_bytes: int) -> dict[str, Any]:
    """Counts for the dataset card; ``ds`` holds only the non-image columns (no image is read)."""
    meta = ds.select_columns(["specialty", "evidence", "evidence_types", "image_evidence"])
    ce_types: Counter[str] = Counter()
    images_per_type: Counter[str] = Counter()
    specialties: Counter[str] = Counter()
    n_images = 0
    for row in meta:
        ce_types.update(row["evidence_types"])
        specialties[row["specialty"] or "unspecified"] += 1
        n_images += len(row["image_evidence"])
        images_per_type.update(row["evidence"][i]["type"] for i in row["image_evidence"])
    first = ds[0]
    example = {c: f"<{len(first['image_evidence'])} images>" if c == "images" else first[c] for c in FEATURES}
    return {
        "n_cases": len(ds),
        "n_images": n_images,
        "ce_types": dict(sorted(ce_types.items())),
        "images_per_type": dict(sorted(images_per_type.items())),
        "specialties": dict(sorted(specialties.items())),
        "n_bytes": n_bytes,
        "example": example,
    }


def _manifest(raw_dir: Path, cases: dict[str, dict[str, Any]]) -> str:
    """manifest.json: per case its id, language, image count and the sha256 of every source file."""
    entries = []
    for case_id in sorted(cases):
        case = cases[case_id]
        folder = raw_dir / case_id
        names = [CASE_FILE] + [n for item in case["visual_evidence"] for n in item["images"]]
        entries.append(
            {
                "case_id": case_id,
                "language": case["language"],
                "n_images": len(names) - 1,
                "sha256": {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in dict.fromkeys(names)},
            }
        )
    manifest = {"builder_version": BUILDER_VERSION, "cases": entries}
    return json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
