#!/usr/bin/env python
"""Publish MEDSYN to the Hugging Face Hub: the built dataset, the metric Space and the leaderboard Space.

Every target is checked before anything is sent, and a rerun uploads only what changed.
The token comes from `hf auth login` or HF_TOKEN and is never printed; HF_ENDPOINT is honoured.

  python upload.py dataset ORG/medsyn --folder medsyn --dry-run
  python upload.py dataset ORG/medsyn --folder medsyn            # new: private, gated
  python upload.py dataset ORG/medsyn --folder medsyn --public   # public, still gated
  python upload.py metric ORG/medsyn_metric                      # new: public
  python upload.py leaderboard ORG/medsyn-leaderboard

A new dataset repo is private and a new Space public; a rerun keeps an existing repo's visibility
unless --public or --private is given. A dataset stays gated by its card's agreements either way.
Each Hub request waits at most 60 s to connect or for the next part of an answer (HF_HUB_DOWNLOAD_TIMEOUT,
in whole seconds, changes it); a Hub that does not answer in time fails with one line naming the step.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _parser() -> argparse.ArgumentParser:
    summary, details = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(
        prog="upload.py", description=summary, epilog=details, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    targets = parser.add_subparsers(dest="target", required=True, metavar="{dataset,metric,leaderboard}")
    dataset = targets.add_parser(
        "dataset", help="a built dataset folder to a Hub dataset repo (gated; created private unless --public)"
    )
    dataset.add_argument("repo_id", help="the dataset repo, e.g. ORG/medsyn")
    dataset.add_argument("--folder", default="medsyn", help="the folder written by `medsyn build` (default: medsyn)")
    for name, folder, what in (
        ("metric", ROOT / "metrics" / "medsyn_metric", "the evaluate metric module to a Gradio Space"),
        ("leaderboard", ROOT / "leaderboard", "the leaderboard to a Gradio Space"),
    ):
        space = targets.add_parser(name, help=what)
        space.add_argument("repo_id", help="the Space, e.g. ORG/" + ("medsyn_metric" if name == "metric" else name))
        space.add_argument("--folder", default=str(folder), help=f"the Space's files (default: {folder})")
    for sub in (dataset, *[targets.choices[n] for n in ("metric", "leaderboard")]):
        new = "private" if sub is dataset else "public"
        visibility = sub.add_mutually_exclusive_group()
        for flag, private in (("--public", False), ("--private", True)):
            visibility.add_argument(
                flag, dest="private", action="store_const", const=private, default=None,
                help=f"make the repo {flag[2:]} (without either flag: {new} when created, else left as it is)",
            )
        sub.add_argument(
            "--dry-run", action="store_true", help="check, then print the repo settings and every file; send nothing"
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run upload.py; return the exit status (0 ok, 1 check or Hub failure)."""
    args = _parser().parse_args(argv)
    from medsyn.publish.hub import CheckError, HubError, describe, plan_dataset, plan_space, preflight, upload  # slow imports

    try:
        if not args.dry_run:
            preflight()
        if args.target == "dataset":
            plan = plan_dataset(args.folder, args.repo_id, private=args.private)
        else:
            plan = plan_space(args.folder, args.repo_id, private=args.private)
        if args.dry_run:
            print(describe(plan))
            return 0
        print(f"uploading {len(plan.files)} files to {plan.repo_type} {plan.repo_id} ...", flush=True)
        print(upload(plan))
    except CheckError as err:
        for problem in err.problems:
            print(f"upload.py: check failed: {problem}", file=sys.stderr)
        return 1
    except HubError as err:
        print(f"upload.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
