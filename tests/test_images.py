"""Image handling: PNG/JPEG kept byte for byte, DICOM rendered to 8-bit (DESIGN §3)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset

from medsyn.data.images import ImageError, check_image, image_bytes, render_dicom


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    *,
    window: tuple | None = None,
    rescale: tuple[float, float] | None = None,
) -> Path:
    """A minimal DICOM file holding ``pixels`` (frames first for multi-frame data)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # secondary capture
    ds.set_pixel_data(pixels, photometric, bits_stored=8 * pixels.dtype.itemsize)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.save_as(path, enforce_file_format=True)
    return path


def grey(path: Path) -> np.ndarray:
    img = render_dicom(path)
    assert img.mode == "L"
    return np.asarray(img)


def test_png_and_jpeg_are_kept_byte_for_byte(fixture_raw: Path) -> None:
    for name in ("en-0001/biopsy.png", "en-0002/fundus.jpg", "zh-0001/angio.png"):
        path = fixture_raw / name
        check_image(path)
        assert image_bytes(path) == path.read_bytes()


def test_ct_window_maps_hounsfield_units_to_8_bit(tmp_path: Path) -> None:
    hu = np.array([[-1000, -160, 40, 240, 1000, -60]], dtype=np.int16)
    path = write_dicom(tmp_path / "ct.dcm", (hu + 1024).astype(np.uint16), window=(40, 400), rescale=(1, -1024))
    # window 40/400 spans -160..240 HU: below is black, above is white, the centre mid-grey
    assert grey(path).tolist() == [[0, 0, 128, 255, 255, 64]]


def test_first_of_several_windows_is_used(tmp_path: Path) -> None:
    values = np.array([[0, 50, 100, 150, 200]], dtype=np.uint16)
    path = write_dicom(tmp_path / "w.dcm", values, window=([100, 1000], [200, 4000]))
    assert grey(path).tolist() == [[0, 64, 128, 191, 255]]


@pytest.mark.parametrize("window", [(None, None), (40, None), (None, 400), ([], [])])
def test_an_empty_window_is_no_window(tmp_path: Path, window: tuple) -> None:
    values = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 7
    path = write_dicom(tmp_path / "empty.dcm", values, window=window)
    assert "WindowCenter" in pydicom.dcmread(path)  # present, but (partly) empty
    assert np.array_equal(grey(path), grey(write_dicom(tmp_path / "nowin.dcm", values)))


def test_the_dicom_pixel_limit_is_pils_and_counts_frames(tmp_path: Path, monkeypatch) -> None:
    frames = write_dicom(tmp_path / "frames.dcm", np.zeros((3, 64, 64), dtype=np.uint8))
    check_image(frames)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3 * 64 * 64 - 1)
    with pytest.raises(ImageError, match=r"has 12,288 pixels \(Rows × Columns × frames in its header\), more than"):
        check_image(frames)


def test_a_failure_while_rendering_is_an_image_error(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "pal.dcm", np.zeros((4, 4), dtype=np.uint8), "PALETTE COLOR")  # no colour table
    with pytest.raises(ImageError, match="cannot be rendered from DICOM .*Palette Color Lookup Table"):
        check_image(path)


def test_without_a_window_the_percentile_range_is_used(tmp_path: Path) -> None:
    values = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 7
    out = grey(write_dicom(tmp_path / "nowin.dcm", values))
    assert out.min() == 0 and out.max() == 255
    assert np.all(np.diff(out.ravel().astype(int)) >= 0)  # monotone ramp stays monotone


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    values = np.tile(np.arange(0, 256, 16, dtype=np.uint16), (4, 1))
    normal = grey(write_dicom(tmp_path / "m2.dcm", values, "MONOCHROME2", window=(128, 256)))
    inverted = grey(write_dicom(tmp_path / "m1.dcm", values, "MONOCHROME1", window=(128, 256)))
    assert normal[0, 0] < normal[0, -1]
    assert np.array_equal(inverted, 255 - normal)


def test_real_monochrome1_radiograph_is_inverted(tmp_path: Path) -> None:
    src = get_testdata_file("RG1_UNCR.dcm")  # computed radiography, MONOCHROME1, window 15000/30000
    ds = pydicom.dcmread(src)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    rendered = grey(Path(src))
    assert rendered.shape == (ds.Rows, ds.Columns)
    ds.PhotometricInterpretation = "MONOCHROME2"
    flipped = tmp_path / "rg1_mono2.dcm"
    ds.save_as(flipped)
    assert np.array_equal(rendered, 255 - grey(flipped))
    assert rendered.std() > 10  # a real picture, not a flat field


def test_multi_frame_renders_the_middle_frame(tmp_path: Path) -> None:
    frames = np.stack([np.full((4, 5), v, dtype=np.uint8) for v in (10, 120, 230)])
    path = write_dicom(tmp_path / "mf.dcm", frames, window=(128, 256))
    out = grey(path)
    assert out.shape == (4, 5)
    assert set(out.ravel().tolist()) == {120}


def test_real_multi_frame_colour_file_gives_one_rgb_frame() -> None:
    src = Path(get_testdata_file("examples_ybr_color.dcm"))  # echocardiogram, 30 frames, YBR_FULL_422
    img = render_dicom(src)
    assert img.mode == "RGB" and img.size == (320, 240)
    frames = pydicom.dcmread(src).pixel_array  # converted to RGB by pydicom
    assert np.array_equal(np.asarray(img), frames[15])  # the middle frame, colours unchanged


def test_8_bit_rgb_is_kept_as_it_is(tmp_path: Path) -> None:
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[:4, :, 0] = 250  # red top half
    rgb[4:, :, 2] = 250  # blue bottom half
    rgb[0, :, 1] = np.arange(100, 108)  # colours carry meaning (Doppler): no contrast stretch
    img = render_dicom(write_dicom(tmp_path / "rgb.dcm", rgb, "RGB"))
    assert img.mode == "RGB"
    assert np.array_equal(np.asarray(img), rgb)


def test_rgb_of_more_than_8_bits_is_scaled_to_8(tmp_path: Path) -> None:
    rgb = np.zeros((1, 3, 3), dtype=np.uint16)
    rgb[0, :, 0] = [0, 32768, 65535]
    img = render_dicom(write_dicom(tmp_path / "rgb16.dcm", rgb, "RGB"))
    assert np.asarray(img)[0, :, 0].tolist() == [0, 128, 255]
    assert np.asarray(img)[0, :, 1:].max() == 0


def test_dicom_is_stored_as_deterministic_png(fixture_raw: Path) -> None:
    path = fixture_raw / "en-0001" / "ct_chest.dcm"
    data = image_bytes(path)
    assert data == image_bytes(path)
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG"
        assert np.array_equal(np.asarray(img), np.asarray(render_dicom(path)))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("scan.dcm", b"not a dicom file at all", "cannot be decoded as DICOM"),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "cannot be decoded as an image"),
        ("notes.jpg", b"plain text", "cannot be decoded as an image"),
    ],
)
def test_undecodable_files_are_rejected(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message):
        check_image(path)


@pytest.mark.parametrize("name", ["en-0002/fundus.jpg", "en-0001/biopsy.png"])
def test_truncated_files_are_rejected(fixture_raw: Path, tmp_path: Path, name: str) -> None:
    data = (fixture_raw / name).read_bytes()
    path = tmp_path / Path(name).name
    path.write_bytes(data[: len(data) // 3])  # verify() alone accepts a cut JPEG; only decoding finds it
    with pytest.raises(ImageError, match=r"(?i)cannot be decoded as an image .*truncated"):
        check_image(path)


def test_a_corrupted_png_fails_its_checksum(fixture_raw: Path, tmp_path: Path) -> None:
    data = bytearray((fixture_raw / "en-0001/biopsy.png").read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the image data: only the chunk CRC can tell (PNGs are not decoded)
    path = tmp_path / "biopsy.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="cannot be decoded as an image .*checksum"):
        check_image(path)


def test_a_camera_mpo_is_a_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue")]
    frames[0].save(path, format="MPO", save_all=True, append_images=frames[1:])  # as phone cameras write them
    with Image.open(path) as img:
        assert img.format == "MPO"
    check_image(path)
    assert image_bytes(path) == path.read_bytes()


def test_other_raster_formats_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    Image.new("L", (4, 4)).save(path, format="GIF")
    with pytest.raises(ImageError, match="is GIF, expected PNG, JPEG or DICOM"):
        check_image(path)
