"""Where MEDSYN finds its data: the dataset folder, the embedded MEDSYN-mini and the user cache.

The dataset is ``$MEDSYN_DATASET`` (a built folder or a Hub dataset id) or, by default,
MEDSYN-mini built from the raw sample that ships inside the package (``medsyn/data/sample``,
found through ``importlib.resources``) into the user cache. Every location is resolved to a
local folder, so lighteval reads it with ``load_dataset(folder, lang)``.
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path

DATASET_ENV = "MEDSYN_DATASET"
CACHE_ENV = "MEDSYN_CACHE"
SAMPLE_DIR = Path(str(resources.files("medsyn.data") / "sample"))
"""MEDSYN-mini's raw cases, package data of ``medsyn.data``."""


def cache_root() -> Path:
    """``$MEDSYN_CACHE``, by default ``~/.cache/medsyn``: built datasets, responses, judge replies."""
    return Path(os.environ.get(CACHE_ENV, "~/.cache/medsyn")).expanduser()


def resolve_dataset(spec: str | os.PathLike[str] | None = None) -> Path:
    """A local built-dataset folder for ``spec`` (folder, Hub dataset id, or None for the default)."""
    spec = spec or os.environ.get(DATASET_ENV)
    if not spec:
        return default_dataset()
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "manifest.json").is_file():
            raise FileNotFoundError(f"{path} is not a built MEDSYN dataset (no manifest.json); run `medsyn build`")
        return path.resolve()
    if path.exists() or str(spec).startswith((".", "/")) or "/" not in str(spec):
        hint = "" if "/" in str(spec) else " (nor is it a Hub dataset id, which has the form org/name)"
        raise FileNotFoundError(f"dataset folder {spec} does not exist{hint}")
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(str(spec), repo_type="dataset"))


def default_dataset(raw_dir: Path | None = None) -> Path:
    """MEDSYN-mini built into the cache, rebuilt whenever the raw sample, the builder or medsyn changes."""
    import medsyn
    from medsyn.data.hf_builder import BUILDER_VERSION, raw_digest

    raw_dir = raw_dir or SAMPLE_DIR
    if not raw_dir.is_dir():
        raise FileNotFoundError(
            f"the embedded MEDSYN-mini ({raw_dir}) is missing: the medsyn install is incomplete (reinstall it), "
            f"or pass --dataset or set {DATASET_ENV} to a built folder or a Hub dataset id"
        )
    key = f"{medsyn.__version__}\0{BUILDER_VERSION}\0{raw_digest(raw_dir)}"
    out = cache_root() / "datasets" / f"medsyn-mini-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    from medsyn.data.build import RevisionMismatchError, build_dataset, checked_revision

    try:
        checked_revision(out)
    except (FileNotFoundError, RevisionMismatchError):  # not built, cut short, or built before cards named revisions
        build_dataset(raw_dir, out, progress=False)
    return out
