"""The evaluation commands of the CLI: ``demo``, ``eval``, ``view``, ``report``, ``analyze``, ``tiny-model``, ``leaderboard``
and ``lighteval``."""

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
    p.add_argument("--intervention", default=None, metavar="es-gap:K",
                   help="also run FDx with the K CE types of largest ES gap (from --es-results) shown as text, and a "
                        "seeded control converting K random CE types; writes intervention.json")  # fmt: skip
    p.add_argument("--es-results", type=Path, default=None, help="an earlier results.json of this model with ES")
    p.add_argument("--intervention-seed", type=int, default=0, help="seed of the random control and the bootstrap")
    p.set_defaults(func=_eval)

    p = commands.add_parser("report", help="a multi-model report: ES gap against FDx accuracy across results files")
    p.add_argument("--compare", type=Path, required=True, metavar="DIR", help="a folder of results files (recursive)")
    p.add_argument("--out", type=Path, default=None, help="write the report (markdown) and DIR/compare.json here")
    p.set_defaults(func=_compare)

    p = commands.add_parser("analyze", help="analyses of a model beyond the scores")
    analyses = p.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    q = analyses.add_parser("attention", help="attention shares of the answer position: image, textual CE, rest")
    q.add_argument("--model", required=True, help="transformers model folder or Hub id")
    q.add_argument("--dataset", default=None, help="built dataset folder or Hub id (default: MEDSYN-mini)")
    q.add_argument("--out", type=Path, required=True)
    q.add_argument("--max-samples", type=_positive, default=None, metavar="N", help="first N cases of each language")
    q.set_defaults(func=_attention)

    p = commands.add_parser("view", help="write RUN_DIR/view.html: every sample of a run, one self-contained page")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the --out folder of medsyn eval or medsyn demo")
    p.add_argument("--dataset", default=None, help="the run's dataset folder or Hub id (default: RUN_DIR/dataset, "
                   "else $MEDSYN_DATASET or MEDSYN-mini); its revision must be the run's")  # fmt: skip
    p.set_defaults(func=_view)

    p = commands.add_parser("dataset-stats", help="cases and images per language of a built dataset, and the "
                            "largest number of images in one case (a served model's --limit-mm-per-prompt)")  # fmt: skip
    p.add_argument("dataset", nargs="?", default=None, help="built dataset folder or Hub id (default: MEDSYN-mini)")
    p.add_argument("--max-images", action="store_true", help="print only the largest number of images in one case")
    p.set_defaults(func=_dataset_stats)

    p = commands.add_parser("tiny-model", help="build the tiny random vision-language model (offline) into OUT")
    p.add_argument("out", type=Path)
    p.set_defaults(func=lambda args: print(_tiny_model(args.out)) or 0)

    _register_leaderboard(commands)

    # Dispatched by cli.main before argparse, so that every argument (--help too) reaches lighteval.
    p = commands.add_parser("families", help="the model families the transformers backend runs, and their fast paths "
                            "(the README's support table, as markdown)")  # fmt: skip
    p.set_defaults(func=_families)

    commands.add_parser("lighteval", help="the lighteval CLI with MEDSYN's compatibility fixes (see lighteval_compat)")


LOCATIONS = {"--requests-repo": "MEDSYN_REQUESTS_REPO", "--requests-dir": "MEDSYN_PENDING_DIR",
             "--results-repo": "MEDSYN_RESULTS_REPO", "--results-dir": "MEDSYN_RESULTS_DIR", "--datasets": "MEDSYN_DATASETS"}


def _register_leaderboard(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("leaderboard", help="review leaderboard submissions: list them, accept or reject one by id")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, what in (("list", "every submission with its status"),
                         ("accept", "check a PENDING submission again and copy it into the results dataset"),
                         ("reject", "reject a PENDING submission; the reason shows in the Space's Submissions tab")):
        q = actions.add_parser(action, help=what)
        if action != "list":
            q.add_argument("id", help="the submission id (the Submissions tab, or `medsyn leaderboard list`)")
            q.add_argument("--reason", required=action == "reject", default="", help="why (required to reject)")
        for flag, variable in LOCATIONS.items():
            q.add_argument(flag, dest=variable, default=None, metavar="ORG/NAME" if flag.endswith("repo") else "PATH",
                           help=f"default: ${variable}")
        q.set_defaults(func=_leaderboard)


def _leaderboard(args: argparse.Namespace) -> int:
    import os

    from medsyn.publish.hub import HubError
    from medsyn.publish.leaderboard import load_known_datasets
    from medsyn.publish.review import ReviewError, run_review

    given = {v: getattr(args, v) for v in LOCATIONS.values() if getattr(args, v) is not None}
    pairs = [("MEDSYN_REQUESTS_REPO", "MEDSYN_PENDING_DIR"), ("MEDSYN_RESULTS_REPO", "MEDSYN_RESULTS_DIR")]
    overridden = {v for pair in pairs if set(pair) & set(given) for v in pair}  # a flag beats the variables
    env = {**{k: v for k, v in os.environ.items() if k not in overridden}, **given}
    try:
        known = None
        if args.action == "accept":
            if not env.get("MEDSYN_DATASETS"):
                raise ReviewError("accepting checks the file against the known dataset revisions: "
                                  "pass --datasets (the leaderboard's datasets.json) or set MEDSYN_DATASETS")
            known = load_known_datasets(env["MEDSYN_DATASETS"])
        print(run_review(env, getattr(args, "id", None), args.action, getattr(args, "reason", ""), known))
    except (HubError, ReviewError, OSError, ValueError) as error:
        print(f"medsyn leaderboard {args.action}: error: {error}", file=sys.stderr)
        return 1
    return 0


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
        model_meta={"name": TINY_MODEL_NAME, "type": "open", "params_b": _params_b(model), "setup": model.setup},
        max_pixels=None,
        max_samples=None,
        start=start,
        view=True,
    )


def _view(args: argparse.Namespace) -> int:
    from medsyn.eval.viewer import write_view

    start = time.time()
    try:
        path = write_view(args.run_dir, args.dataset)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) in {time.time() - start:.1f} s")
    return 0


def _families(args: argparse.Namespace) -> int:
    from medsyn.eval.backends.families import support_table

    print(support_table(), end="")
    return 0


def _dataset_stats(args: argparse.Namespace) -> int:
    from medsyn.data.build import checked_revision, load_split
    from medsyn.data.locations import resolve_dataset

    dataset = resolve_dataset(args.dataset)
    revision = checked_revision(dataset)
    lines, largest = [], (0, "")
    for lang in [p.name for p in sorted(dataset.iterdir()) if p.is_dir() and p.name in ("en", "zh")]:
        ds = load_split(dataset, lang, revision)
        counts = [len(images) for images in ds["image_evidence"]]
        top = max(range(len(counts)), key=counts.__getitem__)
        largest = max(largest, (counts[top], ds["case_id"][top]))
        lines.append(f"{lang}: {len(counts)} cases, {sum(counts)} images, at most {counts[top]} in one case ({ds['case_id'][top]})")
    if args.max_images:
        print(largest[0])
        return 0
    print("\n".join(lines))
    print(f"max_images_per_case: {largest[0]} ({largest[1]}); vLLM: --limit-mm-per-prompt '{{\"image\": {largest[0]}}}'")
    return 0


def _eval(args: argparse.Namespace) -> int:
    """Evaluate in this process, or as one rank of a data-parallel run (``torchrun``, ``accelerate launch``)."""
    from medsyn.eval import distributed

    if args.backend == "endpoint" and distributed.launched_world_size() > 1:
        print("medsyn eval: error: data parallel (torchrun, accelerate launch) is for the transformers backend; "
              "an endpoint's server runs its own replicas, so run one process", file=sys.stderr)  # fmt: skip
        return 1
    distributed.init()
    try:
        return _eval_in_process(args)
    except distributed.RankFailure as error:
        print(f"medsyn eval: error: {error}", file=sys.stderr)
        return 1
    finally:
        distributed.finish()


def _eval_in_process(args: argparse.Namespace) -> int:
    from medsyn.data.locations import resolve_dataset

    start = time.time()
    dataset = resolve_dataset(args.dataset)
    settings = f"model_name={args.model}" + (f",{args.model_args}" if args.model_args else "")
    if args.backend == "transformers":
        from medsyn.eval.backends.transformers_vlm import MedsynVLM, VLMConfig

        from medsyn.eval.backends.loading import ProcessorUnavailable
        from medsyn.eval.backends.transformers_vlm import UnsupportedModel

        try:
            model = MedsynVLM(VLMConfig.from_args(settings))
        except (UnsupportedModel, ProcessorUnavailable) as error:
            print(f"medsyn eval: error: {error}", file=sys.stderr)
            return 1
        max_pixels = model.config.max_pixels
        params_b = args.params_b or _params_b(model)
        setup = model.setup
    else:
        from lighteval.models.custom.custom_model import CustomModelConfig

        from medsyn.eval.backends.endpoint import EndpointModel, EndpointSetupError

        try:
            model = EndpointModel(CustomModelConfig(model_name=settings, model_definition_file_path=__file__))
        except EndpointSetupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        max_pixels, params_b, setup = None, args.params_b, None
    languages = [p.name for p in sorted(dataset.iterdir()) if p.is_dir() and p.name in ("en", "zh")]
    tasks, after = _task_names(args.tasks, languages), None
    if args.intervention:
        tasks, after = _with_intervention(args, languages, tasks)
    return _evaluate_and_write(
        model,
        tasks=tasks,
        dataset=dataset,
        dataset_name=None,
        out=args.out,
        judge=args.judge,
        model_meta={"name": args.model, "type": args.model_type, "params_b": params_b, "setup": setup},
        max_pixels=max_pixels,
        max_samples=args.max_samples,
        start=start,
        after=after,
    )


def _with_intervention(args: argparse.Namespace, languages: list[str], tasks: list[str]):
    """The task list with the intervention FDx tasks (and ``full``), and the step writing intervention.json."""
    import json
    import os

    from medsyn.eval import intervention
    from medsyn.eval.tasks import INTERVENTION_ENV

    if args.es_results is None:
        raise SystemExit("medsyn eval: --intervention needs --es-results (an earlier results.json of this model)")
    requested = [lang for lang in languages if any(t.split(":")[-1].split("_")[1] == lang for t in tasks)]
    try:
        planned = intervention.plan(intervention.load_es_results(args.es_results, args.out), requested,
                                    intervention.parse_spec(args.intervention), args.intervention_seed)  # fmt: skip
    except (OSError, ValueError) as error:
        raise SystemExit(f"medsyn eval: error: {error}") from error
    os.environ[INTERVENTION_ENV] = json.dumps(planned)
    extra = [f"medsyn:fdx_{lang}" + (f"_{suffix}" if suffix else "") for lang in planned
             for suffix in ("", *planned[lang])]  # fmt: skip
    tasks = tasks + [t for t in extra if t not in tasks]

    def write(samples, out: Path) -> None:
        result = {"spec": args.intervention, "es_results": str(args.es_results), "seed": args.intervention_seed,
                  "languages": intervention.report(samples, planned, args.intervention_seed)}  # fmt: skip
        (out / "intervention.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        for lang, block in result["languages"].items():
            for suffix in planned[lang]:
                b = block[suffix]
                print(f"{lang} {suffix:20s} {b['condition']}: FDx change {b['change']:+.3f} "
                      f"[{b['change_ci'][0]:+.3f}, {b['change_ci'][1]:+.3f}] on {b['n']} cases")
        print(f"wrote {out / 'intervention.json'}")

    return tasks, write


def _compare(args: argparse.Namespace) -> int:
    import json

    from medsyn.eval.compare import compare, compare_markdown, load_results_dir

    try:
        comparison = compare(load_results_dir(args.compare))
    except (OSError, ValueError, KeyError) as error:
        print(f"medsyn report: error: {error}", file=sys.stderr)
        return 1
    text = compare_markdown(comparison)
    if args.out is None:
        print(text, end="")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare.md").write_text(text, encoding="utf-8")
    (args.out / "compare.json").write_text(json.dumps(comparison, indent=2), encoding="utf-8")
    print(f"wrote {args.out / 'compare.md'} and {args.out / 'compare.json'}")
    return 0


def _attention(args: argparse.Namespace) -> int:
    from medsyn.data.locations import resolve_dataset
    from medsyn.eval.attention import AttentionUnavailable, analyze

    try:
        written = analyze(args.model, resolve_dataset(args.dataset), args.out, max_cases=args.max_samples)
    except (AttentionUnavailable, ValueError) as error:
        print(f"medsyn analyze attention: error: {error}", file=sys.stderr)
        return 1
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _params_b(model) -> float:
    return round(sum(p.numel() for p in model.model.parameters()) / 1e9, 6)


def _evaluate_and_write(model, *, tasks, dataset, dataset_name, out, judge, model_meta, max_pixels, max_samples, start,
                        view=False, after=None) -> int:  # fmt: skip
    import os

    from medsyn.data.build import checked_revision
    from medsyn.eval import distributed
    from medsyn.eval.backends.transformers_vlm import MedsynVLM
    from medsyn.eval.pipeline import run_lighteval
    from medsyn.eval.report import write_report
    from medsyn.eval.results import build_results, dataset_info, write_results
    from medsyn.eval.tasks import JUDGE_ENV, LENGTH_TOKENIZER_ENV

    os.environ[JUDGE_ENV] = judge
    user_tokenizer = os.environ.get(LENGTH_TOKENIZER_ENV)  # else random_history is matched in the model's own tokens
    length_tokenizer = user_tokenizer or (model.config.model_name if isinstance(model, MedsynVLM) else None)
    revision = checked_revision(Path(dataset))
    os.environ[LENGTH_TOKENIZER_ENV] = length_tokenizer or ""
    try:
        samples, _ = run_lighteval(model, tasks, dataset, out / "lighteval", max_samples=max_samples)
    finally:
        if user_tokenizer is None:
            del os.environ[LENGTH_TOKENIZER_ENV]
    if distributed.rank() != 0:  # every rank holds every sample; rank 0 writes
        return 0
    print(f"[4/4] scoring {len(samples)} samples with the evaluate module", flush=True)
    command = "medsyn " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    info = dataset_info(Path(dataset), dataset_name, languages={s.specific["language"] for s in samples}, max_cases=max_samples)
    if info["revision"] != revision:
        raise RuntimeError(f"{dataset} was rebuilt while the run read it (revision {revision[:12]} then {info['revision'][:12]}): "
                           "its results would name a revision they were not scored on; run again")  # fmt: skip
    results = build_results(
        samples,
        dataset=info,
        model=model_meta,
        judge=judge,
        max_pixels=max_pixels,
        command=command,
        length_tokenizer=length_tokenizer,
        world_size=distributed.world_size(),
        docs_per_rank=model.docs_per_rank if isinstance(model, MedsynVLM) else None,
    )
    write_results(results, out / "results.json")
    report = write_report(results, out, samples)
    for subset, block in results["results"].items():
        print(summary_line(subset, block))
    print(f"wrote {out / 'results.json'} and {report} in {time.time() - start:.0f} s")
    if after is not None:
        after(samples, out)
    if view:
        from medsyn.eval.viewer import write_view

        print(f"every sample, case by case (open it in a browser): {write_view(out, dataset)}")
    return 0


def summary_line(subset: str, block: dict) -> str:
    """One printed line per subset: each figure with its failure count (n/a where not measured)."""
    from medsyn.eval.report import fmt_count, fmt_num

    return (
        f"{subset:8s} n={block['n']:3d}  FDx {_fmt(block['fdx_accuracy'])} (parse failures {fmt_count(block['parse_failures'])})"
        f"  DDx {_fmt(block['ddx_coverage'])} (judge failures {fmt_count(block['judge_failures'])})"
        f"  low-mass posteriors {fmt_count(block.get('posterior_failures'))}"
        f"  ES gap {fmt_num(block['es_gap'])} (parse failures {fmt_count(block['es_parse_failures'])})"
    )


def _fmt(value: float | None) -> str:
    return "  n/a" if value is None else f"{100 * value:5.1f} %"
