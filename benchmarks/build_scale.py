"""Scale benchmark of ``medsyn build``: throughput and peak memory at two sizes.

Generates N synthetic valid cases (8 PNG images each, ~25-35 KB of noise and
gradients, generated before any timing), then for each N runs, each in a fresh
Python process so that peak RSS belongs to that run alone:

* the build: ``medsyn.data.build.build_dataset(raw, out)`` timed in the child around
  the call (interpreter start-up and imports are reported apart);
* the peer baseline: ``shutil.copytree(raw, dst)``, the same bytes copied file by
  file, timed the same way in its own child;
* a stricter floor: the same image bytes read and appended to one file
  ("concat"), which has none of copytree's per-file create/metadata costs.

Both read the raw folder from a warm page cache (it was just written). Prints a
table and writes ``benchmarks/results/build_scale.json``.

    python benchmarks/build_scale.py            # N = 200 and 2000 (a few minutes on 2 cores)
    python benchmarks/build_scale.py --quick    # N = 20 and 60 (seconds; what the test runs)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMAGES_PER_CASE = 8
CE_TYPES = ("laboratory", "radiography", "ct", "mri", "pathology", "clinical_photo")
RESULTS = Path(__file__).parent / "results" / "build_scale.json"


def png_image(rng, size: int = 192) -> bytes:
    """A grey or RGB PNG of gradients plus noise (~25-35 KB), like a cropped figure panel."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    base = 110 + 80 * np.sin(x / rng.uniform(8, 40)) * np.cos(y / rng.uniform(8, 40))
    noise = rng.normal(0, rng.uniform(6, 14), (size, size))
    grey = np.clip(base + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        return _encode(Image.fromarray(grey, mode="L"))
    tint = rng.uniform(0.6, 1.0, 3)
    rgb = np.clip(grey[..., None] * tint, 0, 255).astype(np.uint8)
    return _encode(Image.fromarray(rgb[: size * 2 // 3, : size * 2 // 3], mode="RGB"))


def _encode(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def make_raw(root: Path, n_cases: int, seed: int = 0) -> int:
    """Write ``n_cases`` valid raw cases under ``root``; return the total image bytes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pool = [png_image(rng) for _ in range(64)]  # reused with a per-case suffix chunk so no two files are equal
    total = 0
    for i in range(n_cases):
        lang = "en" if i % 8 else "zh"
        case_id = f"{lang}-{i:05d}"
        folder = root / case_id
        folder.mkdir(parents=True)
        evidence = []
        for j in range(IMAGES_PER_CASE):
            data = _unique_png(pool[(i * IMAGES_PER_CASE + j) % len(pool)], f"{case_id}/{j}")
            (folder / f"img{j}.png").write_bytes(data)
            total += len(data)
            if j % 2 == 0:
                evidence.append(
                    {"type": CE_TYPES[(i + j) % len(CE_TYPES)], "title": f"Figure {j // 2 + 1}", "timepoint": "",
                     "images": [], "findings": f"Synthetic finding {j} of case {i}."}
                )  # fmt: skip
            evidence[-1]["images"].append(f"img{j}.png")
        case = {
            "case_id": case_id,
            "language": lang,
            "source": "synthetic (build_scale benchmark)",
            "specialty": "",
            "text_evidence": {"history": f"Synthetic patient {i}. " * 20, "physical_exam": "Unremarkable."},
            "visual_evidence": evidence,
            "final_diagnosis": f"Diagnosis {i}",
            "options": [f"Diagnosis {i}", f"Alternative {i}a", f"Alternative {i}b", f"Alternative {i}c"],
            "answer": "A",
        }
        (folder / "case.json").write_text(json.dumps(case, ensure_ascii=False, indent=1), encoding="utf-8")
    return total


def _unique_png(png: bytes, tag: str) -> bytes:
    """``png`` with a tEXt chunk inserted before IEND, so every file has its own bytes (still a valid PNG)."""
    import zlib

    payload = b"Comment\x00" + tag.encode()
    chunk = len(payload).to_bytes(4, "big") + b"tEXt" + payload + zlib.crc32(b"tEXt" + payload).to_bytes(4, "big")
    return png[:-12] + chunk + png[-12:]


def child(task: str, src: str, dst: str) -> None:
    """Run one timed task in this (fresh) process and print its figures as JSON."""
    t0 = time.perf_counter()
    if task == "build":
        from medsyn.data.build import build_dataset

        rss_after_import = _rss_mb()
        t1 = time.perf_counter()
        build_dataset(src, dst, progress=False)
    elif task == "copy":
        rss_after_import = _rss_mb()
        t1 = time.perf_counter()
        shutil.copytree(src, dst)
    else:  # "concat": the same image bytes read and written into one file, no per-file costs
        rss_after_import = _rss_mb()
        t1 = time.perf_counter()
        with open(dst, "wb") as out:
            for path in sorted(Path(src).glob("*/*.png")):
                out.write(path.read_bytes())
    t2 = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {
        "seconds": t2 - t1,
        "import_seconds": t1 - t0,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,  # whole process, imports included
        "rss_after_import_mb": rss_after_import,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }
    print(json.dumps(figures))


def _rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(task: str, src: Path, dst: Path) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", task, str(src), str(dst)], capture_output=True, text=True, env=env
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{task} child failed ({proc.returncode}):\n{proc.stderr}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "process_seconds": wall}


def measure(n_cases: int, work: Path) -> dict:
    raw = work / f"raw-{n_cases}"
    image_bytes = make_raw(raw, n_cases)
    copy = run_child("copy", raw, work / f"copy-{n_cases}")
    concat = run_child("concat", raw, work / f"concat-{n_cases}")
    build = run_child("build", raw, work / f"out-{n_cases}")
    out_bytes = sum(p.stat().st_size for p in (work / f"out-{n_cases}").rglob("*") if p.is_file())
    shutil.rmtree(raw)
    shutil.rmtree(work / f"copy-{n_cases}")
    (work / f"concat-{n_cases}").unlink()
    shutil.rmtree(work / f"out-{n_cases}")
    mb = image_bytes / 1e6
    return {
        "n_cases": n_cases,
        "n_images": n_cases * IMAGES_PER_CASE,
        "image_mb": round(mb, 2),
        "output_mb": round(out_bytes / 1e6, 2),
        "build_seconds": round(build["seconds"], 3),
        "build_process_seconds": round(build["process_seconds"], 3),
        "build_cpu_seconds": round(build["cpu_seconds"], 2),
        "cases_per_s": round(n_cases / build["seconds"], 1),
        "mb_per_s": round(mb / build["seconds"], 1),
        "peak_rss_mb": round(build["peak_rss_mb"], 1),
        "rss_after_import_mb": round(build["rss_after_import_mb"], 1),
        "copy_seconds": round(copy["seconds"], 4),
        "copy_mb_per_s": round(mb / copy["seconds"], 1),
        "build_copy_ratio": round(build["seconds"] / copy["seconds"], 2),
        "concat_seconds": round(concat["seconds"], 4),
        "build_concat_ratio": round(build["seconds"] / concat["seconds"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 20 and 60 instead of 200 and 2000")
    parser.add_argument("--sizes", type=int, nargs=2, metavar=("SMALL", "LARGE"), help="the two N to compare")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON results (default: {RESULTS}; --quick: none)")
    parser.add_argument("--child", nargs=3, metavar=("TASK", "SRC", "DST"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    sizes = args.sizes or ((20, 60) if args.quick else (200, 2000))
    out = args.out or (None if args.quick else RESULTS)
    with tempfile.TemporaryDirectory(prefix="medsyn-bench-") as tmp:
        rows = [measure(n, Path(tmp)) for n in sizes]
    small, large = rows
    summary = {
        "command": "python benchmarks/build_scale.py" + (" --quick" if args.quick else ""),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],  # other work on the machine skews timings
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "images_per_case": IMAGES_PER_CASE,
        "rows": rows,
        "rss_ratio": round(large["peak_rss_mb"] / small["peak_rss_mb"], 3),
        "max_build_copy_ratio": max(r["build_copy_ratio"] for r in rows),
        "targets": {"rss_ratio": 1.25, "build_copy_ratio": 5.0},
    }
    print_table(summary)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    return 0


def print_table(summary: dict) -> None:
    cols = ("n_cases", "build_seconds", "cases_per_s", "mb_per_s", "peak_rss_mb", "rss_after_import_mb",
            "copy_seconds", "build_copy_ratio", "concat_seconds", "build_concat_ratio")  # fmt: skip
    heads = ("N", "seconds", "cases/s", "MB/s", "peak RSS MB", "RSS imports", "copy s", "build/copy", "concat s", "build/concat")
    print("  ".join(f"{h:>12}" for h in heads))
    for row in summary["rows"]:
        print("  ".join(f"{row[c]:>12}" for c in cols))
    n_small, n_large = (r["n_cases"] for r in summary["rows"])
    print(f"peak RSS ratio {n_large}/{n_small}: {summary['rss_ratio']} (target <= {summary['targets']['rss_ratio']})")
    print(f"build/copy ratio, worst: {summary['max_build_copy_ratio']} (target <= {summary['targets']['build_copy_ratio']})")


if __name__ == "__main__":
    sys.exit(main())
