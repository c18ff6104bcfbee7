"""The evaluation commands of the CLI: ``demo``, ``tiny-model`` and ``eval``."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    from .locations import SAMPLE_DIR

    p = commands.add_parser("demo", help="build MEDSYN-mini and evaluate a tiny local model end to end (offline, CPU)")
    p.add_argument("--out", type=Path, default=Path("results/demo"), help="output folder (default: results/demo)")
    p.add_argument("--raw", type=Path, default=SAMPLE_DIR, help="raw cases (default: the embedded MEDSYN-mini)")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    import datasets

    from .build import build_dataset

    summary = build_dataset(args.raw, args.out / "dataset")
    for lang in summary.stats:
        ds = datasets.load_dataset(str(summary.out_dir), lang, split="test")
        n_images = sum(len(x) for x in ds["image_evidence"])
        print(f"{lang}: {len(ds)} cases, {n_images} images, CE types: {sorted(set(t for ts in ds['evidence_types'] for t in ts))}")
    return 0
