"""Where the evaluation finds its data: the dataset folder and the Evidence Sensitivity index.

The dataset is ``$MEDSYN_DATASET`` (a built folder or a Hub dataset id) or, by default,
MEDSYN-mini built from the embedded raw sample (source checkouts only) into the user cache.
Every location is resolved to a local folder, so lighteval reads it with
``load_dataset(folder, lang)``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from .schema import LANGUAGES, es_conditions

DATASET_ENV = "MEDSYN_DATASET"
CACHE_ENV = "MEDSYN_CACHE"
SAMPLE_DIR = Path(__file__).resolve().parents[2] / "dataset_builder" / "sample"


def cache_root() -> Path:
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

    from .builder import BUILDER_VERSION, raw_digest

    raw_dir = raw_dir or SAMPLE_DIR
    if not raw_dir.is_dir():
        raise FileNotFoundError(
            f"the embedded MEDSYN-mini ({raw_dir}) ships only with a source checkout (`pip install -e .`); "
            f"otherwise pass --dataset or set {DATASET_ENV} to a built folder or a Hub dataset id"
        )
    key = f"{medsyn.__version__}\0{BUILDER_VERSION}\0{raw_digest(raw_dir)}"
    out = cache_root() / "datasets" / f"medsyn-mini-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if not (out / "manifest.json").is_file():
        from .build import build_dataset

        build_dataset(raw_dir, out, progress=False)
    return out


def es_index(dataset_dir: Path) -> Path:
    """A dataset folder with one row per (case, condition) of the ES sweep, configs ``en``/``zh``.

    lighteval makes one doc per dataset row, and the ES task needs 1 + 2·|types| docs per case:
    this index holds only ``case_id`` and ``condition``; the prompt function reads the case
    itself from the dataset. It is keyed by the dataset's revision (sha256 of manifest.json).
    """
    import datasets

    from .build import dataset_revision

    revision = dataset_revision(dataset_dir)
    out = cache_root() / "es_index" / revision[:16]
    if (out / "README.md").is_file():
        return out
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    configs = []
    for lang in LANGUAGES:
        try:
            ds = datasets.load_dataset(str(dataset_dir), lang, split="test").select_columns(["case_id", "evidence_types"])
        except ValueError:  # a config with no cases is omitted from the build
            continue
        rows = {"case_id": [], "condition": []}
        for case_id, types in zip(ds["case_id"], ds["evidence_types"]):
            for condition in es_conditions(types):
                rows["case_id"].append(case_id)
                rows["condition"].append(condition)
        (tmp / lang).mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_dict(rows).to_parquet(str(tmp / lang / "test.parquet"))
        configs.append(f"- config_name: {lang}\n  data_files:\n  - split: test\n    path: {lang}/test.parquet\n")
    (tmp / "README.md").write_text(f"---\nconfigs:\n{''.join(configs)}---\nMEDSYN ES index of {revision}\n")
    if out.exists():  # built meanwhile by another process
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, out)
    return out
