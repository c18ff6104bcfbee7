"""The evaluation commands of the CLI: ``demo``, ``eval``, ``tiny-model`` and ``lighteval``."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

DEMO_MAX_NEW_TOKENS = 24
"""The tiny demo model writes noise; a short generation keeps the CPU demo within minutes."""


def register(commands: argparse._SubParsersAction) -> None:
    from medsyn.data.locations import SAMPLE_DIR

    p = commands.add_parser("demo", help="build MEDSYN-mini and evaluate a tiny local model end to end (offline, CPU)")
    p.add_argument("--out", type=Path, default=Path("results/demo"), help="output folder (default: results/demo)")
    p.add_argument("--raw", type=Path, default=SAMPLE_DIR, help="raw cases (default: the embedded MEDSYN-mini)")
    p.set_defaults(func=_demo)

    p = commands.add_parser("eval", help="evaluate a model on MEDSYN through lighteval; write results.json and report.md")
    p.add_argument("--model", required=True, help="transformers: model folder or Hub id; endpoint: the served model name")
    p.add_argument("--backend", choices=("transformers", "endpoint"), default="transformers")
    p.add_argument("--model-args", default="", help="backend settings, e.g. 'batch_size=8,max_pixels=1003520' or "
                   "'base_url=http://127.0.0.1:8000/v1,concurrency=32'")  # fmt: skip
    p.add_argument("--tasks", default="all", help="'all', 'en', 'zh', or comma-separated task names (medsyn:fdx_en,...)")
    p.add_argument("--dataset", default=None, help="built dataset folder or Hub id (default: $MEDSYN_DATASET or MEDSYN-mini)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--judge", default="lexical", help="DDx judge: lexical, openai:MODEL[@BASE_URL] or litellm:MODEL")
    p.add_argument("--model-type", choices=("open", "proprietary", "medical"), default="open")
    p.add_argument("--params-b", type=float, default=None, help="parameters in billions (transformers: counted)")
    p.add_argument("--max-samples", type=_positive, default=None, metavar="N",
                   help="a smoke run on the first N cases of each language, in every task; its results record "
                        "the subset, which the leaderboard refuses unless it is every case")  # fmt: skip
    p.set_defaults(func=_eval)

    p = commands.add_parser("tiny-model", help="build the tiny random vision-language model (offline) into OUT")
    p.add_argument("out", type=Path)
    p.set_defaults(func=lambda args: print(_tiny_model(args.out)) or 0)

    # Dispatched by cli.main before argparse, so that every argument (--help too) reaches lighteval.
    commands.add_parser("lighteval", help="the lighteval CLI with MEDSYN's compatibility fixes (see lighteval_compat)")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number of cases, got {value}")
    return value


def _tiny_model(out: Path) -> Path:
    from medsyn.eval.tiny_model import build_tiny_model

    return build_tiny_model(out)


def _task_names(spec: str, dataset_languages: list[str]) -> list[str]:
    from medsyn.eval.pipeline import all_task_names

    if spec == "all":
        return all_task_names(dataset_languages)
    if spec in ("en", "zh"):
        return all_task_names([spec])
    return [name.split("|")[0] for name in spec.split(",") if name]


def _demo(args: argparse.Namespace) -> int:
    from medsyn.data.build import build_dataset
    from medsyn.eval.backends.transformers_vlm import MedsynVLM, VLMConfig
    from medsyn.eval.tiny_model import TINY_MODEL_NAME

    start = time.time()
    print(f"[1/4] building MEDSYN-mini from {args.raw}", flush=True)
    summary = build_dataset(args.raw, args.out / "dataset")
    print(f"[2/4] building the tiny random vision-language model ({TINY_MODEL_NAME})", flush=True)
    model_dir = _tiny_model(args.out / "model")
    model = MedsynVLM(
        VLMConfig(
            model_name=str(model_dir),
            batch_size=8,
            max_new_tokens=DEMO_MAX_NEW_TOKENS,
        )
    )
    print("[3/4] running FDx (full, text, no_history, random_history), DDx and ES through lighteval", flush=True)
    return _evaluate_and_write(
        model,
        tasks=_task_names("all", list(summary.stats)),
        dataset=summary.out_dir,
        dataset_name="MEDSYN-mini",
        out=args.out,
        judge="lexical",
        model_meta={"name": TINY_MODEL_NAME, "type": "open", "params_b": _params_b(model)},
        max_pixels=None,
        max_samples=None,
        start=start,
    )


def _eval(args: argparse.Namespace) -> int:
    from medsyn.data.locations import resolve_dataset

    start = time.time()
    dataset = resolve_dataset(args.dataset)
    settings = f"model_name={args.model}" + (f",{args.model_args}" if args.model_args else "")
    if args.backend == "transformers":
        from medsyn.eval.backends.transformers_vlm import MedsynVLM, VLMConfig

        model = MedsynVLM(VLMConfig.from_args(settings))
        max_pixels = model.config.max_pixels
        params_b = args.params_b or _params_b(model)
    else:
        from lighteval.models.custom.custom_model import CustomModelConfig

        from medsyn.eval.backends.endpoint import EndpointModel

        model = EndpointModel(CustomModelConfig(model_name=settings, model_definition_file_path=__file__))
        max_pixels, params_b = None, args.params_b
    languages = [p.name for p in sorted(dataset.iterdir()) if p.is_dir() and p.name in ("en", "zh")]
    return _evaluate_and_write(
        model,
        tasks=_task_names(args.tasks, languages),
        dataset=dataset,
        dataset_name=None,
        out=args.out,
        judge=args.judge,
        model_meta={"name": args.model, "type": args.model_type, "params_b": params_b},
        max_pixels=max_pixels,
        max_samples=args.max_samples,
        start=start,
    )


def _params_b(model) -> float:
    return round(sum(p.numel() for p in model.model.parameters()) / 1e9, 6)


def _evaluate_and_write(model, *, tasks, dataset, dataset_name, out, judge, model_meta, max_pixels, max_samples, start) -> int:
    import os

    from medsyn.eval.pipeline import run_lighteval
    from medsyn.eval.report import write_report
    from medsyn.eval.results import build_results, dataset_info, write_results
    from medsyn.eval.tasks import JUDGE_ENV

    os.environ[JUDGE_ENV] = judge
    samples, _ = run_lighteval(model, tasks, dataset, out / "lighteval", max_samples=max_samples)
    print(f"[4/4] scoring {len(samples)} samples with the evaluate module", flush=True)
    command = "medsyn " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    results = build_results(
        samples,
        dataset=dataset_info(Path(dataset), dataset_name, languages={s.specific["language"] for s in samples},
                             max_cases=max_samples),  # fmt: skip
        model=model_meta,
        judge=judge,
        max_pixels=max_pixels,
        command=command,
    )
    write_results(results, out / "results.json")
    report = write_report(results, out)
    for subset, block in results["results"].items():
        print(summary_line(subset, block))
    print(f"wrote {out / 'results.json'} and {report} in {time.time() - start:.0f} s")
    return 0


def summary_line(subset: str, block: dict) -> str:
    """One printed line per subset: each figure with its failure count (n/a where not measured)."""
    from medsyn.eval.report import fmt_count, fmt_num

    return (
        f"{subset:8s} n={block['n']:3d}  FDx {_fmt(block['fdx_accuracy'])} (parse failures {fmt_count(block['parse_failures'])})"
        f"  DDx {_fmt(block['ddx_coverage'])} (judge failures {fmt_count(block['judge_failures'])})"
        f"  ES gap {fmt_num(block['es_gap'])} (parse failures {fmt_count(block['es_parse_failures'])})"
    )


def _fmt(value: float | None) -> str:
    return "  n/a" if value is None else f"{100 * value:5.1f} %"
