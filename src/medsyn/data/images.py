"""Image files of a raw case: format checks and DICOM rendering to 8-bit PNG.

PNG and JPEG bytes are kept exactly as they are on disk; a greyscale DICOM file is
rendered with its own window (or the 0.5-99.5 percentile range when it has none),
MONOCHROME1 inverted; colour keeps its RGB values (scaled only from more than 8 bits);
multi-frame files are reduced to their middle frame. An image is accepted only when it decodes
completely and has at most ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (a DICOM's count is read from its
header before any pixel is decoded).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

JPEG_FORMATS = {"JPEG", "MPO"}
"""Pillow's names for JPEG files; MPO (a camera's multi-picture file) is a JPEG whose first frame is one."""
RASTER_FORMATS = {"PNG", *JPEG_FORMATS}
DICOM_SUFFIXES = {".dcm", ".dicom"}


class ImageError(ValueError):
    """An image file that cannot be used (the message says why)."""


def is_dicom(path: Path) -> bool:
    return path.suffix.lower() in DICOM_SUFFIXES


def check_image(path: Path) -> None:
    """Raise ImageError unless ``path`` decodes completely as PNG, JPEG or DICOM of at most MAX_IMAGE_PIXELS pixels."""
    if is_dicom(path):
        render_dicom(path)
        return
    with _decoding():
        with Image.open(path) as img:
            fmt, n_pixels = img.format, img.width * img.height
    if fmt not in RASTER_FORMATS:
        raise ImageError(f"is {fmt}, expected PNG, JPEG or DICOM")
    _check_pixel_count(n_pixels)
    with _decoding():
        with Image.open(path) as img:
            img.verify()  # PNG: every chunk's CRC
        with Image.open(path) as img:
            img.load()  # every pixel: a JPEG has no checksums, a PNG's stream can be broken under valid CRCs
        if fmt == "PNG":
            _check_png_stream(path.read_bytes())


def _check_pixel_count(n_pixels: int, what: str = "") -> None:
    """Raise ImageError when ``n_pixels`` exceeds PIL's ``Image.MAX_IMAGE_PIXELS`` (None: no limit)."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and n_pixels > limit:
        raise ImageError(
            f"has {n_pixels:,} pixels{what}, more than the limit of {limit:,} (PIL's Image.MAX_IMAGE_PIXELS)"
        )


@contextmanager
def _decoding() -> Iterator[None]:
    """Decode strictly (no zero-filled truncated image) and turn PIL's many error types into one ImageError."""
    lenient, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    try:
        yield
    except ImageError:
        raise
    except Exception as exc:  # PIL and zlib raise many types for broken files
        raise ImageError(f"cannot be decoded as an image ({type(exc).__name__}: {exc})") from exc
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = lenient


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
"""Samples per pixel of each PNG colour type."""
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
"""The (x0, y0, dx, dy) of the seven passes of an interlaced PNG."""


def _check_png_stream(data: bytes) -> None:
    """Raise ImageError unless the PNG's pixel stream holds every row (PIL zero-fills a stream that ends early)."""
    expected, got, stream = 0, 0, zlib.decompressobj()
    offset = 8
    while offset < len(data) and got <= expected:  # chunks are well formed: verify() has checked them
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            expected = _png_stream_size(body)
        while kind == b"IDAT" and body and got <= expected:  # in slices: never more than 1 MiB in memory
            got += len(stream.decompress(body, 2**20))
            body = stream.unconsumed_tail
    got += len(stream.flush())
    if got != expected:
        raise ImageError(f"cannot be decoded as an image (its pixel stream has {got} bytes, its size needs {expected})")


def _png_stream_size(ihdr: bytes) -> int:
    """The decompressed size of a PNG's pixel stream: per row (of each pass) a filter byte and the row's bytes."""
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr[:13])
    bits = depth * _PNG_CHANNELS[colour]
    total = 0
    for x0, y0, dx, dy in _ADAM7 if interlace else ((0, 0, 1, 1),):
        columns, rows = max(0, -(-(width - x0) // dx)), max(0, -(-(height - y0) // dy))
        if columns:
            total += rows * (1 + -(-columns * bits // 8))
    return total


def image_bytes(path: Path) -> bytes:
    """The bytes stored for an image: PNG/JPEG as is, DICOM rendered to PNG."""
    if is_dicom(path):
        return png_bytes(render_dicom(path))
    return path.read_bytes()


def png_bytes(img: Image.Image) -> bytes:
    """Encode ``img`` as PNG deterministically (no metadata, fixed settings)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def render_dicom(path: Path) -> Image.Image:
    """Render a DICOM file to an 8-bit grey or RGB PIL image; raise ImageError naming what failed.

    Its size is checked from the header first (:func:`_check_dicom_size`): a small file can hold GBs.
    """
    import pydicom

    try:
        _check_dicom_size(path)
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"cannot be decoded as DICOM ({type(exc).__name__}: {exc})") from exc
    try:
        return _render(ds, pixels)
    except Exception as exc:  # a malformed attribute (window, LUT, rescale) of a readable file
        raise ImageError(f"cannot be rendered from DICOM ({type(exc).__name__}: {exc})") from exc


DICOM_HEADER_BYTES = 2**20
"""How much of a deflated DICOM data set is inflated to read its header (the elements before the pixels)."""
MAX_BYTES_PER_PIXEL = 8
"""The most bytes a pixel takes in a data set (64-bit grey, or 16-bit with 4 samples)."""
PIXELS_IN_HEADER = " (Rows × Columns × frames in its header)"


def _check_dicom_size(path: Path) -> None:
    """Raise ImageError when the header's Rows × Columns × frames is above the pixel limit, or when a deflated
    data set inflates to more than its header and pixels need (inflated in slices to tell, never whole)."""
    import pydicom
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import _at_pixel_data, _read_file_meta_info, read_dataset, read_preamble

    with open(path, "rb") as fp:
        read_preamble(fp, False)
        deflated = _read_file_meta_info(fp).get("TransferSyntaxUID") == pydicom.uid.DeflatedExplicitVRLittleEndian
        if not deflated:
            _check_pixel_count(_pixel_count(pydicom.dcmread(path, stop_before_pixels=True)), PIXELS_IN_HEADER)
            return
        stream = zlib.decompressobj(-zlib.MAX_WBITS)  # pydicom itself would inflate the whole data set at once
        head = stream.decompress(fp.read(), DICOM_HEADER_BYTES)
    n_pixels = _pixel_count(read_dataset(DicomBytesIO(head), False, True, stop_when=_at_pixel_data))
    _check_pixel_count(n_pixels, PIXELS_IN_HEADER)
    budget, size = len(head) + n_pixels * MAX_BYTES_PER_PIXEL, len(head)
    while stream.unconsumed_tail and size <= budget:
        size += len(stream.decompress(stream.unconsumed_tail, 2**20))
    if size > budget or size + len(stream.flush()) > budget:
        raise ImageError(f"inflates to more than the {budget:,} bytes that its header and {n_pixels:,} pixels need")


def _pixel_count(header) -> int:
    return int(header.Rows) * int(header.Columns) * _frames(header)


def _render(ds, pixels: np.ndarray) -> Image.Image:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    frames = _frames(ds)
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if frames > 1:
        pixels = pixels[frames // 2]
    if samples == 3:  # pydicom already converts YBR to RGB
        return Image.fromarray(_rgb_uint8(pixels, int(getattr(ds, "BitsStored", 8) or 8)), mode="RGB")
    if getattr(ds, "PhotometricInterpretation", "") == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        rgb = apply_color_lut(pixels, ds)
        return Image.fromarray(_to_uint8(rgb.astype(np.float64), 0, float(rgb.max()) or 1.0), mode="RGB")
    values = apply_modality_lut(pixels, ds).astype(np.float64)
    window = _window(ds)
    if window is not None:
        lo, hi = window
    elif "VOILUTSequence" in ds:
        values = apply_voi_lut(values, ds).astype(np.float64)
        lo, hi = float(values.min()), float(values.max())
    else:
        lo, hi = _percentiles(values)
    grey = _to_uint8(values, lo, hi)
    if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        grey = 255 - grey
    return Image.fromarray(grey, mode="L")


def _frames(ds) -> int:
    return int(getattr(ds, "NumberOfFrames", 1) or 1)


def _window(ds) -> tuple[float, float] | None:
    """The first (low, high) window of the file, if it has one (an empty or zero-width window is none)."""
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if center is None or width is None or width <= 0:
        return None
    return center - width / 2, center + width / 2


def _first(value) -> float | None:
    """The first of a possibly multi-valued DICOM number; None when absent or empty."""
    from pydicom.multival import MultiValue

    if isinstance(value, MultiValue):
        value = value[0] if len(value) else None
    return None if value is None or value == "" else float(value)


def _rgb_uint8(pixels: np.ndarray, bits: int) -> np.ndarray:
    """Colour kept as it is (it carries meaning, e.g. Doppler): 8 bits unchanged, more bits scaled linearly."""
    if bits <= 8:
        return pixels.astype(np.uint8)
    return _to_uint8(pixels.astype(np.float64), 0, float(2**bits - 1))


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(values, [0.5, 99.5])
    return float(lo), float(hi if hi > lo else lo + 1)


def _to_uint8(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    scaled = (np.clip(values, lo, hi) - lo) / (hi - lo) * 255.0
    return np.round(scaled).astype(np.uint8)
