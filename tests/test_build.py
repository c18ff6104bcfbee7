"""The built dataset folder (DESIGN §4): loading offline, row contents, determinism, output-folder rules."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from medsyn.cli import main
from medsyn.data import build as build_module
from medsyn.data import hf_builder as builder_module
from medsyn.data import locations
from medsyn.data.build import build_dataset, dataset_revision
from medsyn.data.hf_builder import BUILDER_VERSION, MedsynBuilder
from medsyn.data.images import render_dicom
from medsyn.data.schema import FEATURES

CASES = {"en": ["en-0001", "en-0002"], "zh": ["zh-0001"]}


def raw_case(raw: Path, case_id: str) -> dict:
    return json.loads((raw / case_id / "case.json").read_text(encoding="utf-8"))


def stored_images(out: Path, lang: str) -> dict[str, list[bytes]]:
    """Image bytes per case, read straight from the Parquet files (no decoding)."""
    table = pq.read_table(out / lang, columns=["case_id", "images"])
    return {row["case_id"]: [img["bytes"] for img in row["images"]] for row in table.to_pylist()}


def non_image_rows(out: Path, lang: str) -> list[dict]:
    return pq.read_table(out / lang, columns=[c for c in FEATURES if c != "images"]).to_pylist()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_load_dataset_returns_that_language_with_every_field_in_order(
    built_fixture: Path, fixture_raw: Path, lang: str
) -> None:
    ds = datasets.load_dataset(str(built_fixture), lang, split="test")
    assert ds.column_names == list(FEATURES)
    assert ds.features == FEATURES
    assert ds["case_id"] == CASES[lang]
    for row in ds:
        case = raw_case(fixture_raw, row["case_id"])
        assert row["language"] == lang
        assert (row["source"], row["specialty"]) == (case["source"], case["specialty"])
        assert row["history"] == case["text_evidence"]["history"]
        assert row["physical_exam"] == case["text_evidence"]["physical_exam"]
        assert row["evidence"] == [
            {k: item[k] for k in ("type", "title", "timepoint", "findings")} for item in case["visual_evidence"]
        ]
        assert row["image_evidence"] == [i for i, item in enumerate(case["visual_evidence"]) for _ in item["images"]]
        assert row["evidence_types"] == list(dict.fromkeys(item["type"] for item in case["visual_evidence"]))
        assert (row["final_diagnosis"], row["options"], row["answer"]) == (
            case["final_diagnosis"], case["options"], case["answer"],
        )  # fmt: skip
        assert len(row["images"]) == len(row["image_evidence"])
        for img in row["images"]:
            assert isinstance(img, Image.Image)
            img.load()


def test_stored_images_are_the_source_bytes_and_dicom_is_rendered(built_fixture: Path, fixture_raw: Path) -> None:
    images = stored_images(built_fixture, "en") | stored_images(built_fixture, "zh")
    for case_id, stored in images.items():
        names = [n for item in raw_case(fixture_raw, case_id)["visual_evidence"] for n in item["images"]]
        assert len(stored) == len(names)
        for name, data in zip(names, stored):
            if name.endswith(".dcm"):
                with Image.open(io.BytesIO(data)) as img:
                    assert img.format == "PNG"
                    assert np.array_equal(np.asarray(img), np.asarray(render_dicom(fixture_raw / case_id / name)))
            else:  # PNG and JPEG: byte-identical to the file on disk (the JPEG of en-0002 is stored twice)
                assert data == (fixture_raw / case_id / name).read_bytes(), f"{case_id}/{name}"
    assert images["en-0002"][0] == images["en-0002"][2]


def test_card_configs_and_manifest(built_fixture: Path, fixture_raw: Path) -> None:
    assert datasets.get_dataset_config_names(str(built_fixture)) == ["en", "zh"]
    assert sorted(p.name for p in built_fixture.iterdir()) == ["README.md", "en", "manifest.json", "zh"]
    for lang in ("en", "zh"):
        assert [p.name for p in (built_fixture / lang).iterdir()] == ["test-00000-of-00001.parquet"]
    manifest = json.loads((built_fixture / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["builder_version"] == BUILDER_VERSION
    assert [e["case_id"] for e in manifest["cases"]] == ["en-0001", "en-0002", "zh-0001"]
    for entry in manifest["cases"]:
        folder = fixture_raw / entry["case_id"]
        case = raw_case(fixture_raw, entry["case_id"])
        assert entry["language"] == case["language"]
        assert entry["n_images"] == sum(len(item["images"]) for item in case["visual_evidence"])
        names = {"case.json"} | {n for item in case["visual_evidence"] for n in item["images"]}
        assert entry["sha256"] == {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in names}
    assert dataset_revision(built_fixture) == hashlib.sha256((built_fixture / "manifest.json").read_bytes()).hexdigest()


def test_two_builds_are_identical(built_fixture: Path, fixture_raw: Path, tmp_path: Path) -> None:
    again = build_dataset(fixture_raw, tmp_path / "again", progress=False)
    assert again.revision == dataset_revision(built_fixture)
    for lang in ("en", "zh"):
        assert non_image_rows(again.out_dir, lang) == non_image_rows(built_fixture, lang)
        assert stored_images(again.out_dir, lang) == stored_images(built_fixture, lang)
    # With the same library versions the files themselves are byte-identical, card and Parquet included.
    for rel in ("README.md", "manifest.json", "en/test-00000-of-00001.parquet", "zh/test-00000-of-00001.parquet"):
        assert (again.out_dir / rel).read_bytes() == (built_fixture / rel).read_bytes(), rel


def test_a_language_without_cases_has_no_config(raw_copy: Path, tmp_path: Path) -> None:
    shutil.rmtree(raw_copy / "zh-0001")
    summary = build_dataset(raw_copy, tmp_path / "out", progress=False)
    assert list(summary.stats) == ["en"]
    assert datasets.get_dataset_config_names(str(summary.out_dir)) == ["en"]
    assert not (summary.out_dir / "zh").exists()
    assert datasets.load_dataset(str(summary.out_dir), "en", split="test")["case_id"] == CASES["en"]


def test_build_summary_stats(built_fixture: Path, fixture_raw: Path, tmp_path: Path) -> None:
    summary = build_dataset(fixture_raw, tmp_path / "out", progress=False)
    en = summary.stats["en"]
    assert (en["n_cases"], en["n_images"]) == (2, 5)
    assert en["ce_types"] == {"clinical_photo": 1, "ct": 1, "pathology": 2}
    assert en["images_per_type"] == {"clinical_photo": 2, "ct": 1, "pathology": 2}
    assert en["n_bytes"] == (summary.out_dir / "en" / "test-00000-of-00001.parquet").stat().st_size
    assert list(en["example"]) == list(FEATURES) and en["example"]["images"] == "<2 images>"
    assert (summary.stats["zh"]["n_cases"], summary.stats["zh"]["n_images"]) == (1, 2)


def test_large_configs_are_sharded_in_order(built_fixture: Path, fixture_raw: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(build_module, "MAX_SHARD_BYTES", 1)  # a new shard after every flushed batch ...
    monkeypatch.setattr(MedsynBuilder, "DEFAULT_WRITER_BATCH_SIZE", 1)  # ... of one row
    out = build_dataset(fixture_raw, tmp_path / "out", progress=False).out_dir
    assert sorted(p.name for p in (out / "en").iterdir()) == ["test-00000-of-00002.parquet", "test-00001-of-00002.parquet"]
    ds = datasets.load_dataset(str(out), "en", split="test")
    assert ds["case_id"] == CASES["en"]
    assert non_image_rows(out, "en") == non_image_rows(built_fixture, "en")
    assert stored_images(out, "en") == stored_images(built_fixture, "en")


def test_rebuild_replaces_only_what_the_build_writes(fixture_raw: Path, raw_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_dataset(fixture_raw, out, progress=False)
    (out / "en" / "stale.parquet").write_bytes(b"left over")
    theirs = {".gitattributes": b"*.parquet filter=lfs\n", ".git/HEAD": b"ref: refs/heads/main\n", "LICENSE": b"mine\n"}
    for rel, data in theirs.items():  # a clone of the Hub repo the build was uploaded to
        (out / rel).parent.mkdir(exist_ok=True)
        (out / rel).write_bytes(data)
    shutil.rmtree(raw_copy / "en-0002")
    shutil.rmtree(raw_copy / "zh-0001")
    build_dataset(raw_copy, out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [".git", ".gitattributes", "LICENSE", "README.md", "en", "manifest.json"]
    assert {rel: (out / rel).read_bytes() for rel in theirs} == theirs
    assert sorted(p.name for p in (out / "en").iterdir()) == ["test-00000-of-00001.parquet"]
    assert datasets.load_dataset(str(out), "en", split="test")["case_id"] == ["en-0001"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "raw"]  # no staging folder left behind


def test_the_raw_folders_sources_md_is_copied(fixture_raw: Path, raw_copy: Path, tmp_path: Path) -> None:
    (raw_copy / "SOURCES.md").write_text("# Provenance of every image\n", encoding="utf-8")
    out = build_dataset(raw_copy, tmp_path / "out", progress=False).out_dir
    assert (out / "SOURCES.md").read_bytes() == (raw_copy / "SOURCES.md").read_bytes()
    build_dataset(fixture_raw, out, progress=False)  # a raw folder without one: no stale copy stays
    assert not (out / "SOURCES.md").exists()


def test_a_folder_with_only_hidden_entries_is_used(fixture_raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "clone"  # a fresh clone of an empty Hub dataset repo
    (out / ".git").mkdir(parents=True)
    (out / ".gitattributes").write_text("*.parquet filter=lfs\n", encoding="utf-8")
    build_dataset(fixture_raw, out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [".git", ".gitattributes", "README.md", "en", "manifest.json", "zh"]


def test_a_rebuild_cut_short_can_be_run_again(fixture_raw: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    build_dataset(fixture_raw, out, progress=False)
    import medsyn.data.build

    real_replace, calls = os.replace, []

    def failing_replace(src, dst):  # the install's second move into out/ fails (Ctrl-C, a full disk)
        if Path(dst).parent == out:
            calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(medsyn.data.build.os, "replace", failing_replace)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(fixture_raw, out, progress=False)
    monkeypatch.setattr(medsyn.data.build.os, "replace", real_replace)
    with pytest.raises(FileNotFoundError, match="data files"):  # nothing loads while it is cut short
        datasets.load_dataset(str(out), "en", split="test")
    build_dataset(fixture_raw, out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "en", "manifest.json", "zh"]


def test_a_first_build_into_a_clone_cut_short_can_be_run_again(fixture_raw: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "clone"
    (out / ".git").mkdir(parents=True)
    real_replace = os.replace

    def failing_replace(src, dst):  # cut after the install's first move (the card saying it is installing)
        real_replace(src, dst)
        if Path(dst) == out / "README.md":
            raise KeyboardInterrupt

    monkeypatch.setattr(build_module.os, "replace", failing_replace)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(fixture_raw, out, progress=False)
    monkeypatch.setattr(build_module.os, "replace", real_replace)
    assert sorted(p.name for p in out.iterdir()) == [".git", "README.md"]  # no manifest.json yet: still medsyn's
    build_dataset(fixture_raw, out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [".git", "README.md", "en", "manifest.json", "zh"]


def test_an_empty_existing_folder_is_used(fixture_raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    build_dataset(fixture_raw, out, progress=False)
    assert (out / "manifest.json").is_file()


def test_a_folder_that_is_not_a_build_is_refused(fixture_raw: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not a MEDSYN build"):
        build_dataset(fixture_raw, out, progress=False)
    assert main(["build", str(fixture_raw), str(out), "--quiet"]) == 1
    assert "not a MEDSYN build" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_an_invalid_rebuild_leaves_the_earlier_build_untouched(
    built_fixture: Path, raw_copy: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    shutil.copytree(built_fixture, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (raw_copy / "en-0001" / "biopsy.png").unlink()
    assert main(["build", str(raw_copy), str(out), "--quiet"]) == 1
    assert "en-0001: visual_evidence[1].images[0]: 'biopsy.png' does not exist" in capsys.readouterr().err
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


# --- where the evaluation finds its dataset (medsyn.data.locations) ---------------------------------


def test_default_dataset_is_rebuilt_when_the_code_changes(fixture_raw: Path, tmp_path: Path, monkeypatch) -> None:
    import medsyn

    monkeypatch.setenv("MEDSYN_CACHE", str(tmp_path / "cache"))
    first = locations.default_dataset(fixture_raw)
    assert locations.default_dataset(fixture_raw) == first  # reused while nothing changes
    monkeypatch.setattr(builder_module, "BUILDER_VERSION", "99.0.0")
    monkeypatch.setattr(build_module, "BUILDER_VERSION", "99.0.0")
    bumped = locations.default_dataset(fixture_raw)
    assert bumped != first
    assert json.loads((bumped / "manifest.json").read_text(encoding="utf-8"))["builder_version"] == "99.0.0"
    monkeypatch.setattr(medsyn, "__version__", "99.0.0")
    assert locations.default_dataset(fixture_raw) not in (first, bumped)


def test_an_install_without_the_embedded_sample_says_what_to_do(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MEDSYN_DATASET", raising=False)
    monkeypatch.setattr(locations, "SAMPLE_DIR", tmp_path / "site-packages" / "medsyn" / "data" / "sample")
    with pytest.raises(FileNotFoundError, match=r"is missing: the medsyn install is incomplete.*--dataset.*MEDSYN_DATASET"):
        locations.resolve_dataset(None)


def test_a_missing_local_name_is_not_looked_up_on_the_hub(tmp_path: Path, monkeypatch) -> None:
    def no_hub(*args, **kwargs):
        raise AssertionError("looked up on the Hub")

    monkeypatch.setattr("huggingface_hub.snapshot_download", no_hub)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="dataset folder medsyn-mni does not exist"):
        locations.resolve_dataset("medsyn-mni")
