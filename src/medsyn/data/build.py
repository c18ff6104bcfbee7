"""Writing the Hub-style dataset folder (DESIGN §4) from a raw case folder.

``OUT/README.md`` (the dataset card with its ``configs:``), ``OUT/<config>/test-*.parquet``
with embedded image bytes, ``OUT/manifest.json``, and ``OUT/SOURCES.md`` when the raw folder
has one. The build validates first and writes nothing when any case is invalid. A rebuild
replaces only these entries: other files of the folder (a Hub clone's ``.git``,
``.gitattributes``, ``LICENSE``) stay. The builder streams rows straight into the Parquet
shards (no Arrow cache, no memory-mapped second pass), so memory stays flat as the number
of cases grows.
"""

from __future__ import annotations

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

from medsyn.data.card import render_card
from medsyn.data.hf_builder import BUILDER_VERSION, MedsynBuilder
from medsyn.data.raw_cases import CASE_FILE, InvalidDatasetError, validate_raw
from medsyn.data.schema import FEATURES, LANGUAGES

MANIFEST = "manifest.json"
CARD = "README.md"
SOURCES = "SOURCES.md"
"""Image provenance and licences: copied from the raw folder when it has one (MEDSYN-mini's rows point to it)."""
BUILD_ENTRIES = (MANIFEST, CARD, SOURCES, *LANGUAGES)
"""Everything a build writes into its folder (a rebuild replaces these and keeps any other file)."""
INSTALLING = ".medsyn-installing"
"""Marks a build folder while a rebuild swaps its entries in (hidden: never uploaded)."""
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
    raw = validate_raw(raw_dir)
    if raw.problems:
        raise InvalidDatasetError(raw.problems)
    _check_out_dir(out_dir)
    template = Path(card_template or CARD_TEMPLATE).read_text(encoding="utf-8")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    os.chmod(staging, 0o755)  # mkdtemp makes it 0700; it becomes out_dir, which others must be able to read
    try:
        with _progress_bars(progress), tempfile.TemporaryDirectory(prefix="medsyn-cache-") as cache:
            stats = {}
            for lang in LANGUAGES:
                if any(case["language"] == lang for case in raw.cases.values()):
                    stats[lang] = _write_config(raw_dir, staging, lang, cache)
        manifest = _manifest(raw_dir, raw.cases)
        (staging / MANIFEST).write_text(manifest, encoding="utf-8")
        (staging / CARD).write_text(render_card(template, stats), encoding="utf-8")
        if (raw_dir / SOURCES).is_file():
            shutil.copyfile(raw_dir / SOURCES, staging / SOURCES)
        _install(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BuildSummary(out_dir, stats, hashlib.sha256(manifest.encode()).hexdigest())


def dataset_revision(out_dir: str | Path) -> str:
    """The revision of a built folder: the sha256 of its manifest.json."""
    return hashlib.sha256((Path(out_dir) / MANIFEST).read_bytes()).hexdigest()


def manifest_cases(out_dir: str | Path) -> dict[str, list[str]]:
    """The case ids of a built folder per language, in manifest (= dataset) order."""
    manifest = json.loads((Path(out_dir) / MANIFEST).read_text(encoding="utf-8"))
    cases: dict[str, list[str]] = {}
    for case in manifest["cases"]:
        cases.setdefault(case["language"], []).append(case["case_id"])
    return cases


def _check_out_dir(out_dir: Path) -> None:
    """Refuse a folder that is not an earlier build (or one cut short) and holds anything but hidden entries."""
    if not out_dir.exists() or (out_dir / MANIFEST).is_file() or (out_dir / INSTALLING).is_file():
        return
    if any(not p.name.startswith(".") for p in out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} exists and is not a MEDSYN build (no {MANIFEST}); refusing to replace it")


def _install(staging: Path, out_dir: Path) -> None:
    """Move the staged build into ``out_dir``, replacing only the entries a build writes; others (.git, LICENSE) stay.

    While entries are swapped the folder holds the INSTALLING marker and no manifest, so a manifest
    only ever sits beside a whole build, and a rebuild cut short is still taken for a build.
    """
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    (out_dir / INSTALLING).touch()
    _remove(out_dir / MANIFEST)
    for name in BUILD_ENTRIES:
        if name != MANIFEST:
            _remove(out_dir / name)
            if (staging / name).exists():
                os.replace(staging / name, out_dir / name)
    os.replace(staging / MANIFEST, out_dir / MANIFEST)
    (out_dir / INSTALLING).unlink()


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
