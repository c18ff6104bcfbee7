"""The ``medsyn`` command line (DESIGN §6)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["lighteval"]:  # every further argument, --help included, belongs to lighteval
        from medsyn.eval.lighteval_compat import lighteval_main

        return lighteval_main(argv[1:])
    parser = argparse.ArgumentParser(prog="medsyn", description="MEDSYN: build, validate and evaluate the benchmark.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("validate", help="check a raw case folder; print every problem")
    p.add_argument("raw", type=Path, help="raw folder: one sub-folder per case with case.json and images")
    p.set_defaults(func=_validate)

    p = commands.add_parser("build", help="validate a raw folder and write the Hub-style dataset folder")
    p.add_argument("raw", type=Path)
    p.add_argument("out", type=Path, nargs="?", default=Path("medsyn"), help="output folder (default: ./medsyn)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_build)

    _add_more_commands(commands)
    args = parser.parse_args(argv)
    return args.func(args)


def _add_more_commands(commands: argparse._SubParsersAction) -> None:
    """Commands whose implementations import the heavier evaluation stack lazily."""
    from medsyn import commands as more

    more.register(commands)


def _validate(args: argparse.Namespace) -> int:
    from medsyn.data.raw_cases import validate_raw

    raw = validate_raw(args.raw)
    for problem in raw.problems:
        print(problem, file=sys.stderr)
    if raw.problems:
        print(f"{len(raw.problems)} problem(s) in {args.raw}", file=sys.stderr)
        return 1
    by_lang = {}
    for case in raw.cases.values():
        by_lang[case["language"]] = by_lang.get(case["language"], 0) + 1
    print(f"{args.raw}: {len(raw.cases)} valid cases ({', '.join(f'{k}: {v}' for k, v in sorted(by_lang.items()))})")
    return 0


def _build(args: argparse.Namespace) -> int:
    from medsyn.data.build import build_dataset
    from medsyn.data.raw_cases import InvalidDatasetError

    try:
        summary = build_dataset(args.raw, args.out, progress=not args.quiet)
    except InvalidDatasetError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in {args.raw}; nothing was written", file=sys.stderr)
        return 1
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for lang, stats in summary.stats.items():
        print(f"{lang}: {stats['n_cases']} cases, {stats['n_images']} images")
    print(f"wrote {summary.out_dir} (revision {summary.revision[:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
