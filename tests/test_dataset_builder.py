"""dataset_builder/medsyn_builder.py: the GeneratorBasedBuilder driven from code, as datasets 5 allows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import load_module

from medsyn.data.raw_cases import InvalidDatasetError

ENTRY = Path(__file__).resolve().parents[1] / "dataset_builder" / "medsyn_builder.py"


@pytest.fixture(scope="module")
def entry():
    return load_module("medsyn_builder", ENTRY)


def test_builder_yields_one_language_per_config(entry, fixture_raw: Path, tmp_path: Path) -> None:
    for lang, ids in {"en": ["en-0001", "en-0002"], "zh": ["zh-0001"]}.items():
        builder = entry.MedsynBuilder(config_name=lang, data_dir=str(fixture_raw), cache_dir=str(tmp_path / lang))
        builder.download_and_prepare()
        ds = builder.as_dataset(split="test")
        assert ds["case_id"] == ids and set(ds["language"]) == {lang}


def test_builder_validates_on_its_own(entry, raw_copy: Path, tmp_path: Path) -> None:
    case = raw_copy / "en-0001" / "case.json"
    data = json.loads(case.read_text())
    data["visual_evidence"][0]["type"] = "xray"
    case.write_text(json.dumps(data))
    builder = entry.MedsynBuilder(config_name="en", data_dir=str(raw_copy), cache_dir=str(tmp_path))
    with pytest.raises(InvalidDatasetError, match=r"en-0001: visual_evidence\[0\]\.type: unknown CE type 'xray'"):
        builder.download_and_prepare()


def test_one_cache_follows_the_raw_folder_contents(entry, raw_copy: Path, tmp_path: Path) -> None:
    def build() -> list[str]:
        builder = entry.MedsynBuilder(config_name="en", data_dir=str(raw_copy), cache_dir=str(tmp_path / "cache"))
        builder.download_and_prepare()
        return builder.as_dataset(split="test")["history"]

    path = raw_copy / "en-0001" / "case.json"
    first = build()
    data = json.loads(path.read_text(encoding="utf-8"))
    data["text_evidence"]["history"] = "An edited history."
    path.write_text(json.dumps(data), encoding="utf-8")
    assert build() == ["An edited history.", first[1]]
    data["visual_evidence"][0]["type"] = "xray"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InvalidDatasetError, match=r"en-0001: visual_evidence\[0\]\.type: unknown CE type 'xray'"):
        build()


def test_hidden_files_do_not_change_the_cache_entry(raw_copy: Path) -> None:
    from medsyn.data.hf_builder import raw_digest

    before = raw_digest(raw_copy)
    (raw_copy / ".DS_Store").write_bytes(b"finder")
    (raw_copy / "en-0001" / ".DS_Store").write_bytes(b"finder")
    assert raw_digest(raw_copy) == before  # the builder never reads them
    (raw_copy / "en-0001" / "notes.txt").write_text("seen", encoding="utf-8")
    assert raw_digest(raw_copy) != before
