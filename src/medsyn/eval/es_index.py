"""The Evidence Sensitivity index: one row per (case, condition) of the ES sweep, for lighteval.

lighteval makes one doc per dataset row, and the ES task needs 1 + 2·|types| docs per case.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import datasets

from medsyn.data.build import checked_revision, load_split, manifest_cases
from medsyn.data.locations import cache_root
from medsyn.data.schema import LANGUAGES, es_conditions


def es_index(dataset_dir: Path) -> Path:
    """A dataset folder with one row per (case, condition) of the ES sweep, configs ``en``/``zh``.

    lighteval makes one doc per dataset row, and the ES task needs 1 + 2·|types| docs per case:
    this index holds only ``case_id`` and ``condition``; the prompt function reads the case
    itself from the dataset. It is keyed by the dataset's revision (sha256 of manifest.json), which
    the folder's card must name (a folder mixing two builds is refused).
    """
    revision = checked_revision(dataset_dir)
    out = cache_root() / "es_index" / revision[:16]
    if (out / "README.md").is_file():
        return out
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    configs = []
    built = manifest_cases(dataset_dir)
    for lang in (lang for lang in LANGUAGES if lang in built):  # a config with no cases is omitted from the build
        ds = load_split(dataset_dir, lang, revision).select_columns(["case_id", "evidence_types"])
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
