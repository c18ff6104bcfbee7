"""Hostile data (issue 17, items 2, 3, 5 and 6): stale rebuilds, folders build does not own, unsafe images,
raw cases that only look valid, and output folders that break the raw one.

Every test here failed on the code before the fix (the DICOM bomb of full size ran validation to 6 GB;
its small twin with a lowered limit shows the same defect).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image, ImageFile
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from medsyn.cli import main
from medsyn.data import build as build_module
from medsyn.data.build import build_dataset, dataset_revision
from medsyn.data.images import ImageError, check_image, image_bytes
from medsyn.data.raw_cases import validate_raw


def problems(raw: Path) -> list[str]:
    return [str(p) for p in validate_raw(raw).problems]


def edit_case(raw: Path, folder: str, **changes) -> None:
    path = raw / folder / "case.json"
    case = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**case, **changes}, ensure_ascii=False), encoding="utf-8")


def move_answer(raw: Path, case_id: str) -> str:
    """Fix an answer key: the right option moves to the next letter. Returns the new letter."""
    case = json.loads((raw / case_id / "case.json").read_text(encoding="utf-8"))
    options, i = case["options"], "ABCDEFGHIJ".index(case["answer"])
    j = (i + 1) % len(options)
    options[i], options[j] = options[j], options[i]
    edit_case(raw, case_id, options=options, answer="ABCDEFGHIJ"[j])
    return "ABCDEFGHIJ"[j]


def answers(out: Path, lang: str, cache: Path) -> dict[str, str]:
    ds = datasets.load_dataset(str(out), lang, split="test", cache_dir=str(cache))
    return dict(zip(ds["case_id"], ds["answer"]))


# --- 2. a rebuilt dataset is never served stale ------------------------------------------------


def test_a_rebuilt_folder_loads_its_new_rows_in_this_process_and_a_new_one(raw_copy: Path, tmp_path: Path) -> None:
    out, cache = tmp_path / "out", tmp_path / "hf-cache"
    build_dataset(raw_copy, out, progress=False)

    def history(ds_path: Path) -> str:
        ds = datasets.load_dataset(str(ds_path), "en", split="test", cache_dir=str(cache))
        return dict(zip(ds["case_id"], ds["history"]))["en-0002"]

    assert history(out).startswith("A 52-year-old man")  # now in datasets' cache
    shard = out / "en" / "test-00000-of-00001.parquet"
    before = shard.stat()
    case = json.loads((raw_copy / "en-0002" / "case.json").read_text(encoding="utf-8"))
    corrected = case["text_evidence"]["history"].replace("52-year-old", "57-year-old")  # same length, same sizes
    edit_case(raw_copy, "en-0002", text_evidence={**case["text_evidence"], "history": corrected})
    build_dataset(raw_copy, out, progress=False)
    # a file system with coarse timestamps, or a copy that keeps them (rsync -a, cp -p): the shard keeps its
    # time and the card its counts, so only the revision the card names tells datasets' cache that rows changed
    os.utime(shard, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert history(out) == corrected
    code = (
        "import datasets, sys; ds = datasets.load_dataset(sys.argv[1], 'en', split='test', cache_dir=sys.argv[2]);"
        "print(dict(zip(ds['case_id'], ds['history']))['en-0002'])"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code, str(out), str(cache)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == corrected


def test_the_tasks_serve_the_rebuilt_rows_and_refuse_a_table_made_for_another_revision(
    raw_copy: Path, tmp_path: Path
) -> None:
    from medsyn.eval.tasks import task_table

    out = tmp_path / "out"
    build_dataset(raw_copy, out, progress=False)

    def es_doc(table, lang: str, case_id: str):
        (task,) = [t for t in table if t.name == f"medsyn:es_{lang}"]
        return task.prompt_function({"case_id": case_id, "condition": "full"}, task.name)

    old_table = task_table(out)
    assert es_doc(old_table, "en", "en-0002").specific["answer"] == "B"
    new = move_answer(raw_copy, "en-0002")
    move_answer(raw_copy, "zh-0001")
    build_dataset(raw_copy, out, progress=False)
    assert es_doc(task_table(out), "en", "en-0002").specific["answer"] == new  # not the rows cached in memory
    with pytest.raises(ValueError, match="rebuilt meanwhile"):  # the old table meets the new folder
        es_doc(old_table, "zh", "zh-0001")


def test_a_card_and_manifest_of_different_builds_are_refused(raw_copy: Path, tmp_path: Path) -> None:
    from medsyn.eval.tasks import task_table

    first = build_dataset(raw_copy, tmp_path / "first", progress=False)
    move_answer(raw_copy, "en-0002")
    second = build_dataset(raw_copy, tmp_path / "second", progress=False)
    shutil.copyfile(second.out_dir / "README.md", first.out_dir / "README.md")  # half of a copy by hand
    message = f"gives config en revision {second.revision} but manifest.json is revision {first.revision}"
    with pytest.raises(ValueError, match=message):
        build_module.checked_revision(first.out_dir)
    with pytest.raises(ValueError, match=message):
        build_module.load_split(first.out_dir, "en", first.revision)
    with pytest.raises(ValueError, match=message):
        task_table(first.out_dir)


def load_state(out: Path, cache: Path) -> dict[str, dict[str, str] | None]:
    """Per config, the answers plain load_dataset returns, or None when it refuses to load."""
    state: dict[str, dict[str, str] | None] = {}
    for lang in ("en", "zh"):
        try:
            state[lang] = answers(out, lang, cache)
        except (FileNotFoundError, ValueError):
            state[lang] = None
    return state


@pytest.mark.parametrize("cut_at", [1, 2, 3, 4, 5])
def test_a_rebuild_killed_at_any_step_never_leaves_a_mix_that_loads(
    raw_copy: Path, tmp_path: Path, monkeypatch, cut_at: int
) -> None:
    out, cache = tmp_path / "out", tmp_path / "hf-cache"
    build_dataset(raw_copy, out, progress=False)
    old = load_state(out, cache)
    move_answer(raw_copy, "en-0002")
    move_answer(raw_copy, "zh-0001")
    real_replace, moves = os.replace, []

    def cut_replace(src, dst):  # the cut_at-th move into out/ never happens (Ctrl-C, a full disk, a kill)
        if Path(dst).parent == out:
            moves.append(dst)
            if len(moves) == cut_at:
                raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(build_module.os, "replace", cut_replace)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(raw_copy, out, progress=False)
    monkeypatch.setattr(build_module.os, "replace", real_replace)
    state = load_state(out, cache)
    assert state == old or set(state.values()) == {None}, state  # the whole old build, or nothing loads
    if state != old:
        with pytest.raises(ValueError, match="run `medsyn build` again"):
            build_module.checked_revision(out)
    new = build_dataset(raw_copy, out, progress=False)
    assert build_module.checked_revision(out) == new.revision
    assert load_state(out, cache) != old and None not in load_state(out, cache).values()


KILLED_BUILD = """
import os, signal, sys
from medsyn.data import build
build._config_stats = lambda *args: os.kill(os.getpid(), signal.SIGKILL)  # killed while writing the shards
build.build_dataset(sys.argv[1], sys.argv[2], progress=False)
"""


def test_a_rerun_removes_what_a_killed_build_left_behind(raw_copy: Path, tmp_path: Path) -> None:
    out, scratch = tmp_path / "out", tmp_path / "tmp"
    scratch.mkdir()
    build_dataset(raw_copy, out, progress=False)
    move_answer(raw_copy, "en-0002")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TMPDIR": str(scratch)}
    proc = subprocess.run([sys.executable, "-c", KILLED_BUILD, str(raw_copy), str(out)], env=env, capture_output=True)
    assert proc.returncode == -9, proc.stderr
    assert len(list(tmp_path.glob(".out.*"))) == 1  # its staging folder
    alive = tmp_path / f".out{build_module.STAGING}{os.getpid()}-running"  # another build, still running
    alive.mkdir()
    build_dataset(raw_copy, out, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", "raw", "tmp", alive.name])
    assert not list(scratch.glob("medsyn-cache-*"))


# --- 3. build replaces only a folder it owns ---------------------------------------------------


@pytest.mark.parametrize(
    "manifest",
    [
        '{"name": "another tool", "files": ["data.csv"]}',
        "[1, 2]",
        "not JSON",
        '{"builder_version": "1", "cases": [{}]}',
    ],
)
def test_a_folder_with_another_tools_manifest_is_not_replaced(
    fixture_raw: Path, tmp_path: Path, capsys, manifest: str
) -> None:
    out = tmp_path / "theirs"
    out.mkdir()
    files = {"manifest.json": manifest, "README.md": "# Their project\n", "data.csv": "a,b\n1,2\n"}
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    assert main(["build", str(fixture_raw), str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {out} exists and is not a MEDSYN build"), err
    assert {p.name: p.read_text(encoding="utf-8") for p in out.iterdir()} == files


@pytest.mark.parametrize("where", ["inside", "same"])
def test_out_inside_raw_is_refused(raw_copy: Path, capsys, where: str) -> None:
    out = raw_copy / "medsyn" if where == "inside" else raw_copy
    before = sorted(p.name for p in raw_copy.iterdir())
    assert main(["build", str(raw_copy), str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: {out} lies inside the raw folder {raw_copy}; write the build elsewhere"]
    assert sorted(p.name for p in raw_copy.iterdir()) == before
    assert problems(raw_copy) == []  # the raw folder still validates


@pytest.mark.parametrize("where", ["out", "parent"])
def test_out_that_is_a_file_is_one_error_line(fixture_raw: Path, tmp_path: Path, capsys, where: str) -> None:
    file = tmp_path / "taken"
    file.write_text("a file\n", encoding="utf-8")
    out = file if where == "out" else file / "medsyn"
    assert main(["build", str(fixture_raw), str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: {file} is a file, not a folder; cannot write the build {out}"]
    assert file.read_text(encoding="utf-8") == "a file\n"


# --- 5. unsafe images ----------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["outside", "other case"])
def test_an_image_linked_out_of_its_case_folder_is_refused(raw_copy: Path, tmp_path: Path, target: str) -> None:
    secret = tmp_path / "secret.png" if target == "outside" else raw_copy / "en-0002" / "secret.png"
    shutil.copyfile(raw_copy / "en-0001" / "biopsy.png", secret)  # a valid image: only where it lies is wrong
    (raw_copy / "en-0001" / "biopsy.png").unlink()
    (raw_copy / "en-0001" / "biopsy.png").symlink_to(secret)
    assert problems(raw_copy) == [
        "en-0001: visual_evidence[1].images[0]: 'biopsy.png' is a symbolic link that leaves the case folder"
    ]
    with pytest.raises(ValueError, match="symbolic link"):
        build_dataset(raw_copy, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_link_inside_the_case_folder_is_fine(raw_copy: Path) -> None:
    folder = raw_copy / "en-0001"
    (folder / "biopsy.png").rename(folder / "original.png")
    (folder / "biopsy.png").symlink_to("original.png")
    assert problems(raw_copy) == []


def deflated_dicom(path: Path, rows: int, columns: int, *, padding: int = 0) -> Path:
    """A deflated DICOM of rows × columns 8-bit zeros, then ``padding`` zero bytes; written in slices."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, columns, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    head, body = DicomBytesIO(), DicomBytesIO()
    write_file_meta_info(head, meta)
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    zipper = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    with path.open("wb") as f:
        f.write(b"\0" * 128 + b"DICM" + head.getvalue() + zipper.compress(body.getvalue()))
        for group, element, size in ((0x7FE0, 0x0010, rows * columns), (0xFFFC, 0xFFFC, padding)):
            if size:  # Pixel Data, then Data Set Trailing Padding
                f.write(zipper.compress(struct.pack("<HH2sHI", group, element, b"OB", 0, size)))
                for start in range(0, size, 2**20):
                    f.write(zipper.compress(bytes(min(2**20, size - start))))
        f.write(zipper.flush())
    return path


def test_a_deflated_dicom_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    path = deflated_dicom(tmp_path / "bomb.dcm", 14_000, 14_000)  # 196 M pixels in about 200 KB
    assert path.stat().st_size < 400_000
    tracemalloc.start()
    try:
        with pytest.raises(ImageError, match=r"has 196,000,000 pixels \(Rows × Columns × frames in its header\)"):
            check_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20  # neither decoded nor inflated whole (before the fix: 6 GB)


def test_a_deflated_dicom_that_inflates_past_its_pixels_is_refused(tmp_path: Path) -> None:
    small = deflated_dicom(tmp_path / "small.dcm", 8, 8)
    check_image(small)
    padded = deflated_dicom(tmp_path / "padded.dcm", 8, 8, padding=50_000_000)  # 64 pixels, 50 MB inflated
    with pytest.raises(ImageError, match="inflates to more than the .* bytes that its header and 64 pixels need"):
        check_image(padded)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_with_stream(width: int, height: int, stream: bytes, *, interlace: int = 0) -> bytes:
    """An 8-bit grey PNG whose chunks all have valid CRCs, whatever ``stream`` holds."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, interlace)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", stream) + png_chunk(b"IEND", b"")


ROWS = b"".join(b"\0" + bytes(range(i, i + 40)) for i in range(30))  # 30 rows of 40 pixels, filter byte 0


@pytest.mark.parametrize(
    "stream",
    [
        zlib.compress(ROWS[: len(ROWS) // 2]),  # ends after 15 rows: PIL fills the rest with zeros
        zlib.compress(ROWS)[:-20] + b"\xff" * 20,  # corrupt
        zlib.compress(ROWS + bytes(41)),  # one row too many
    ],
    ids=["short", "corrupt", "long"],
)
def test_a_png_whose_pixels_do_not_decode_completely_is_refused(tmp_path: Path, stream: bytes) -> None:
    path = tmp_path / "img.png"
    path.write_bytes(png_with_stream(40, 30, zlib.compress(ROWS)))
    check_image(path)
    path.write_bytes(png_with_stream(40, 30, stream))
    with Image.open(path) as img:
        img.verify()  # every CRC is valid
    with pytest.raises(ImageError, match="cannot be decoded as an image"):
        check_image(path)


def adam7(pixels: np.ndarray) -> bytes:
    """The interlaced pixel stream of an 8-bit grey image (filter byte 0 on every row of every pass)."""
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    rows = []
    for x0, y0, dx, dy in passes:
        sub = pixels[y0::dy, x0::dx]
        if sub.size:
            rows += [b"\0" + row.tobytes() for row in sub]
    return b"".join(rows)


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (13, 7), (40, 30)])
def test_complete_pngs_of_every_layout_pass_and_are_kept_byte_for_byte(tmp_path: Path, size: tuple[int, int]) -> None:
    width, height = size
    pixels = (np.arange(width * height) % 251).astype(np.uint8).reshape(height, width)
    interlaced = tmp_path / "interlaced.png"
    interlaced.write_bytes(png_with_stream(width, height, zlib.compress(adam7(pixels)), interlace=1))
    with Image.open(interlaced) as img:
        assert np.array_equal(np.asarray(img), pixels)
    check_image(interlaced)
    for mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
        path = tmp_path / f"{mode.replace(';', '')}.png"
        Image.fromarray(pixels).convert(mode).save(path)
        check_image(path)
        assert image_bytes(path) == path.read_bytes()


def test_a_cut_jpeg_is_refused_even_where_pil_is_told_to_load_truncated_images(
    fixture_raw: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # some other library's global setting
    path = tmp_path / "cut.jpg"
    data = (fixture_raw / "en-0002" / "fundus.jpg").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cannot be decoded as an image"):
        check_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # PIL's own warning on opening it
def test_a_png_above_the_pixel_limit_is_refused_before_decoding(fixture_raw: Path, monkeypatch) -> None:
    path = fixture_raw / "en-0001" / "biopsy.png"
    with Image.open(path) as img:
        n_pixels = img.width * img.height
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", n_pixels - 1)
    with pytest.raises(ImageError, match=f"has {n_pixels:,} pixels, more than the limit of {n_pixels - 1:,}"):
        check_image(path)


# --- 6. raw cases that only look valid -------------------------------------------------------


@pytest.mark.parametrize(
    "first, second",
    [
        ("Lung adenocarcinoma(stage IV)", "Lung adenocarcinoma（stage IV）"),
        ("Organizing pneumonia", "Ｏｒｇａｎｉｚｉｎｇ ｐｎｅｕｍｏｎｉａ"),
        ("Organizing pneumonia", "Organizing\u200b pneumonia"),
        ("Organizing pneumonia", "Organ\u200dizing pneu\ufeffmonia"),
    ],
    ids=["parentheses", "full-width", "zero-width space", "joiner and BOM"],
)
def test_options_that_differ_only_in_unicode_forms_are_duplicates(raw_copy: Path, first: str, second: str) -> None:
    case = json.loads((raw_copy / "en-0001" / "case.json").read_text(encoding="utf-8"))
    edit_case(raw_copy, "en-0001", options=case["options"][:3] + [first, second])
    assert problems(raw_copy) == [
        "en-0001: options[4]: duplicate of options[3] after case and whitespace folding "
        "(NFKC, zero-width characters dropped)"
    ]


def test_an_answer_in_full_width_form_matches_its_diagnosis(raw_copy: Path) -> None:
    case = json.loads((raw_copy / "en-0001" / "case.json").read_text(encoding="utf-8"))
    full_width = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in case["final_diagnosis"])
    edit_case(raw_copy, "en-0001", options=[full_width] + case["options"][1:], answer="A")
    assert problems(raw_copy) == []


def test_a_case_id_with_a_trailing_newline_is_refused(raw_copy: Path) -> None:
    (raw_copy / "en-0001").rename(raw_copy / "en-0001\n")
    edit_case(raw_copy, "en-0001\n", case_id="en-0001\n")
    assert problems(raw_copy) == ["en-0001\n: case_id: 'en-0001\\n' must match ^[A-Za-z0-9][A-Za-z0-9_-]*$"]


def test_a_hidden_folder_holding_a_case_is_reported(raw_copy: Path, capsys) -> None:
    shutil.copytree(raw_copy / "en-0002", raw_copy / ".en-0003")
    (raw_copy / ".git").mkdir()  # hidden, no case.json: ignored
    assert main(["validate", str(raw_copy)]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        ".en-0003: case.json: in a hidden folder, which is never built (rename the folder)"
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply to parse"),
        ('{"a": ' * 500 + "1" + "}" * 500, "nested more than 16 levels deep"),
    ],
    ids=["100000 deep", "500 deep"],
)
def test_deeply_nested_json_is_one_problem_line(raw_copy: Path, capsys, text: str, message: str) -> None:
    (raw_copy / "en-0001" / "case.json").write_text(text, encoding="utf-8")
    assert main(["validate", str(raw_copy)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"en-0001: case.json: {message}") and len(err) == 2, err


def test_a_revision_is_the_sha256_of_the_manifest(fixture_raw: Path, tmp_path: Path) -> None:
    """The revision the card names is the one results.json records (dataset_revision)."""
    summary = build_dataset(fixture_raw, tmp_path / "out", progress=False)
    assert build_module.checked_revision(summary.out_dir) == dataset_revision(summary.out_dir) == summary.revision
