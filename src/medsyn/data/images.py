"""Image files of a raw case: format checks and DICOM rendering to 8-bit PNG.

PNG and JPEG bytes are kept exactly as they are on disk; a greyscale DICOM file is
rendered with its own window (or the 0.5-99.5 percentile range when it has none),
MONOCHROME1 inverted; colour keeps its RGB values (scaled only from more than 8 bits);
multi-frame files are reduced to their middle frame.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

JPEG_FORMATS = {"JPEG", "MPO"}
"""Pillow's names for JPEG files; MPO (a camera's multi-picture file) is a JPEG whose first frame is one."""
RASTER_FORMATS = {"PNG", *JPEG_FORMATS}
DICOM_SUFFIXES = {".dcm", ".dicom"}


class ImageError(ValueError):
    """An image file that cannot be used (the message says why)."""


def is_dicom(path: Path) -> bool:
    return path.suffix.lower() in DICOM_SUFFIXES


def check_image(path: Path) -> None:
    """Raise ImageError unless ``path`` decodes as PNG, JPEG or DICOM."""
    if is_dicom(path):
        render_dicom(path)
        return
    try:
        with Image.open(path) as img:
            fmt = img.format
            img.verify()  # PNG: every chunk's CRC, so a cut or corrupted PNG fails here (not bad data under
            # valid CRCs, an encoder's bug: decoding every PNG would double the build time)
        if fmt in JPEG_FORMATS:  # JPEG has no checksums: a cut JPEG passes verify(), so decode every pixel
            with Image.open(path) as img:
                img.load()
    except Exception as exc:  # PIL raises many types for broken files
        raise ImageError(f"cannot be decoded as an image ({type(exc).__name__}: {exc})") from exc
    if fmt not in RASTER_FORMATS:
        raise ImageError(f"is {fmt}, expected PNG, JPEG or DICOM")


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
    """Render a DICOM file to an 8-bit grey or RGB PIL image; raise ImageError naming what failed."""
    import pydicom

    try:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
    except Exception as exc:
        raise ImageError(f"cannot be decoded as DICOM ({type(exc).__name__}: {exc})") from exc
    try:
        return _render(ds, pixels)
    except Exception as exc:  # a malformed attribute (window, LUT, rescale) of a readable file
        raise ImageError(f"cannot be rendered from DICOM ({type(exc).__name__}: {exc})") from exc


def _render(ds, pixels: np.ndarray) -> Image.Image:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
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
