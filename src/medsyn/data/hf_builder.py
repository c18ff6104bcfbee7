"""The `datasets` builder for raw MEDSYN case folders (configs ``en`` and ``zh``).

Drive it from code (datasets 5 no longer runs loading scripts):

    builder = MedsynBuilder(config_name="en", data_dir=str(SAMPLE_DIR))  # from medsyn.data.locations
    builder.download_and_prepare()
    ds = builder.as_dataset(split="test")

Its cache entry is keyed on the raw folder's contents (``raw_digest``), so an edited case is
rebuilt and validated again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import datasets

from medsyn.data.citation import CITATION
from medsyn.data.images import image_bytes
from medsyn.data.raw_cases import CASE_FILE, load_raw
from medsyn.data.schema import FEATURES, LANGUAGES

BUILDER_VERSION = "1.1.0"
"""Bump whenever the rows built from the same raw files change (1.1.0: colour DICOMs keep their RGB values);
manifest.json records it, so the dataset revision changes with it."""


@dataclass
class MedsynConfig(datasets.BuilderConfig):
    """A language config. ``skip_validation`` is for callers that validated the folder already (the writer).

    ``raw_digest`` is the content digest of ``data_dir`` (see :func:`raw_digest`): as a config kwarg it is
    part of the config id, so datasets' cache follows the raw files, not only their folder's path.
    """

    skip_validation: bool = False
    raw_digest: str = ""


def raw_digest(root: str | Path) -> str:
    """sha256 over the relative path and the bytes of every file under ``root`` but hidden ones (.git,
    .DS_Store), which the builder never reads."""
    root = Path(root)
    digest = hashlib.sha256()
    files = (p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    for file in sorted(files):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


class MedsynBuilder(datasets.GeneratorBasedBuilder):
    """Builds the MEDSYN rows (DESIGN §4) of one language from a raw case folder (``data_dir``)."""

    VERSION = datasets.Version(BUILDER_VERSION)
    BUILDER_CONFIG_CLASS = MedsynConfig
    BUILDER_CONFIGS = [
        MedsynConfig(name=lang, version=BUILDER_VERSION, description=f"MEDSYN cases in {lang}") for lang in LANGUAGES
    ]
    DEFAULT_CONFIG_NAME = "en"

    def __init__(self, *args: Any, data_dir: str | None = None, **config_kwargs: Any):
        if data_dir is not None and "raw_digest" not in config_kwargs:
            config_kwargs["raw_digest"] = raw_digest(data_dir)
        super().__init__(*args, data_dir=data_dir, **config_kwargs)

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description="MEDSYN: complex clinical cases with interleaved multimodal evidence.",
            features=FEATURES,
            citation=CITATION,
        )

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        if not self.config.data_dir:
            raise ValueError("MedsynBuilder needs data_dir=<raw case folder>")
        if not self.config.skip_validation:
            load_raw(self.config.data_dir)  # raises InvalidDatasetError listing every problem, before any row
        return [datasets.SplitGenerator(name=datasets.Split.TEST, gen_kwargs={"raw_dir": self.config.data_dir})]

    def _generate_examples(self, raw_dir: str) -> Iterator[tuple[str, dict[str, Any]]]:
        root = Path(raw_dir)
        cases = {p.name: json.loads((p / CASE_FILE).read_text(encoding="utf-8")) for p in _case_folders(root)}
        for case_id in sorted(cases):
            case = cases[case_id]
            if case["language"] == self.config.name:
                yield case_id, case_to_row(case, root / case_id)


def _case_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def case_to_row(case: dict[str, Any], folder: Path) -> dict[str, Any]:
    """One validated raw case as a dataset row (DESIGN §4); images as embedded bytes."""
    images: list[dict[str, Any]] = []
    image_evidence: list[int] = []
    for index, item in enumerate(case["visual_evidence"]):
        for name in item["images"]:
            images.append({"bytes": image_bytes(folder / name), "path": None})
            image_evidence.append(index)
    evidence = [
        {"type": e["type"], "title": e["title"], "timepoint": e.get("timepoint", ""), "findings": e["findings"]}
        for e in case["visual_evidence"]
    ]
    text = case["text_evidence"]
    return {
        "case_id": case["case_id"],
        "language": case["language"],
        "source": case.get("source", ""),
        "specialty": case.get("specialty", ""),
        "history": text["history"],
        "physical_exam": text.get("physical_exam", ""),
        "images": images,
        "image_evidence": image_evidence,
        "evidence": evidence,
        "evidence_types": list(dict.fromkeys(e["type"] for e in evidence)),
        "final_diagnosis": case["final_diagnosis"],
        "options": list(case["options"]),
        "answer": case["answer"],
    }
