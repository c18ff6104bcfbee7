"""Evaluation speed on one GPU: the Evidence Sensitivity sweep and FDx, three ways, on the same prompts.

(a) lighteval's own vision path (``VLMTransformersModel``: generation, images after the text, the vision
    tower re-run for every prompt), at its best batch size;
(b) per-prompt generation as VLMEvalKit does it (batch 1, images interleaved);
(c) MEDSYN's backend: the answer posterior from one forward pass, length-sorted batches, bf16 + SDPA,
    each distinct image encoded once and reused across the conditions of its case, the prompt prefix a
    case's conditions share run once, Qwen2.5-VL's window attention batched and its vision MLP padded to an
    aligned width (``--ablations`` times it without the last three as well).

The model is a real-size architecture with random weights (``--arch qwen2_5_vl_7b``; nothing can be
downloaded on the GPU machine and the speed does not depend on the weights) or the tiny Llava
(``--arch tiny``, CPU, used by the test suite so the script never rots). The workload is synthetic and
MEDSYN-shaped: cases of 8 images at 448 px in 4 CE types and about 1,500 text tokens. Generation
paths generate ``--gen-tokens`` tokens (random weights never stop early).

MFU = necessary model FLOPs / (seconds x peak): the vision tower once per distinct image, the language
model over every prompt's tokens (2·params·tokens + causal attention), against the dense bf16 peak
(989 TFLOP/s for H100 and H200). Prefix sharing skips some of those tokens, so MFU credits it; ``hfu``
counts only the language-model tokens actually run (attention scaled by their share). The peers (a)
and (b) run the stock vision tower (SDPA per window, the MLP unpadded). It also checks that the fast path's posteriors
equal those of the plain one-prompt-at-a-time path (stock tower), in the run's dtype and in float32, and
what batching alone moves in the run's dtype (the plain path a case per batch against itself one prompt at
a time). ``--profile FILE`` writes a torch.profiler table of one ES batch of ours. A batch size that runs
out of GPU memory is recorded under ``skipped``.

``--end-to-end`` times every task of ``medsyn eval --tasks en`` instead (FDx under its four conditions, DDx
generation, the ES sweep) on ``--cases`` cases of 8.4 images on average, each task's docs made by the task
table's prompt functions and run through the MedsynVLM method lighteval's pipeline calls for it, against (a)
generating for every task and (b); each path's time per task and in total is extrapolated to 452 cases, with
HFU of ours on ES and FDx (``--peak-flops``; null on CPU, where the peak is unknown). On CPU it writes its
JSON only with ``--out``.

    python benchmarks/gpu_eval.py --arch qwen2_5_vl_7b --cases 8            # on the GPU
    python benchmarks/gpu_eval.py --arch tiny --cases 2 --device cpu        # anywhere
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from medsyn.data.schema import FULL, es_conditions
from medsyn.eval.backends.aligned_mlp import stock_vision_mlp
from medsyn.eval.backends.packed_attention import stock_vision_attention
from medsyn.eval.backends.transformers_vlm import MedsynVLM, VLMConfig
from medsyn.eval.pipeline import all_task_names
from medsyn.eval.prompts import IMAGE_MARK
from medsyn.eval.synthetic import CE_TYPES, QWEN_SIZES, build_model, synthetic_rows, workloads
from medsyn.eval.tasks import FDX_ABLATIONS, ddx_prompt, fdx_prompt, make_doc

PEAK_BF16_FLOPS = 989e12
RESULTS = Path(__file__).parent / "results"
# --- FLOPs --------------------------------------------------------------------------------


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def lm_flops(model, sequence_tokens: list[int]) -> float:
    """The language model over sequences of these lengths (2·params·tokens + causal attention)."""
    text_config = getattr(model.config, "text_config", model.config)
    language = model.model.language_model
    n_lm = _params(language) - language.get_input_embeddings().weight.numel()
    d_model, layers = text_config.hidden_size, text_config.num_hidden_layers
    return sum(2 * n_lm * t + 2 * layers * t * t * d_model for t in sequence_tokens)


def vision_flops(model, images: int, patches_per_image: int) -> float:
    """The vision tower over ``images`` images."""
    vision = getattr(model.model, "visual", None) or model.model.vision_tower
    return images * 2 * _params(vision) * patches_per_image


def necessary_flops(model, docs: list, prompt_tokens: list[int], patches_per_image: int, lm_share: float = 1.0) -> float:
    """Vision tower once per distinct image + language model over every prompt's tokens (causal attention).

    ``lm_share`` < 1 counts only that share of the language model's work (the tokens actually run).
    """
    distinct = {id(img) for d in docs for img in d.images}
    return lm_flops(model, prompt_tokens) * lm_share + vision_flops(model, len(distinct), patches_per_image)


def stock_vision_tower(model) -> None:
    """The vision tower as transformers runs it (undoes the backend's packed window attention and aligned MLPs)."""
    stock_vision_attention(model)
    stock_vision_mlp(model)


# --- the three paths ----------------------------------------------------------------------


def timed(fn: Callable[[], Any], device: str) -> tuple[Any, float, float | None]:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    return out, seconds, peak


def lighteval_path(folder: Path, model, batch_size: int, gen_tokens: int, device: str, dtype: str):
    """lighteval's VLMTransformersModel running the model already in memory (its own loading is skipped).

    Its collator hands the processor ``images=[[], ...]`` for a batch of text-only prompts (FDx ``text``), which
    fails in the vision tower; here such a batch goes without ``images``, the rest as lighteval does it.
    """
    from lighteval.models.transformers import vlm_transformers_model as vlm
    from lighteval.models.transformers.vlm_transformers_model import VLMTransformersModel, VLMTransformersModelConfig

    class TextOnlyBatches(vlm.BatchCollator):
        def __call__(self, requests: list) -> tuple:
            if any(r.images for r in requests):
                return super().__call__(requests)
            texts = [self.prompt_manager.prepare_prompt_multimodal(r) for r in requests]
            return self.processor(text=texts, **self.kwargs), requests, texts

    vlm.BatchCollator = TextOnlyBatches

    class Preloaded(VLMTransformersModel):
        def _create_auto_model(self):
            return model

    config = VLMTransformersModelConfig(
        model_name=str(folder), batch_size=batch_size, generation_size=gen_tokens, dtype=dtype, device=device
    )
    lighteval_model = Preloaded(config)
    lighteval_model._cache = None  # no sample cache: every timing computes
    return lighteval_model


def as_lighteval_doc(doc):
    """The same prompt for lighteval's path: same text, images after it (its prompt manager's layout)."""
    from lighteval.tasks.requests import Doc

    query = "\n".join(line for line in doc.query.split("\n") if line != IMAGE_MARK)
    return Doc(query=query, choices=doc.choices, gold_index=doc.gold_index, images=list(doc.images), specific=doc.specific)


def vlmevalkit_path(backend: MedsynVLM, docs: list, gen_tokens: int) -> list[str]:
    """One prompt at a time, images interleaved (``backend`` only builds the inputs), greedy generation
    (VLMEvalKit's loop)."""
    texts = []
    with torch.inference_mode():
        for doc in docs:
            inputs = backend.encode([doc])
            inputs.pop("position_ids", None)
            out = backend.model.generate(**inputs, max_new_tokens=gen_tokens, min_new_tokens=gen_tokens, do_sample=False)
            texts.append(backend.processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :]))
    return texts


def posteriors_of(responses: list) -> list[np.ndarray]:
    """The answer posterior of each loglikelihood response."""
    return [np.exp(r.logprobs) for r in responses]


def max_abs_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """The largest difference between paired posteriors."""
    return float(max(np.abs(x - y).max() for x, y in zip(a, b)))


def summarize(report: dict[str, Any]) -> None:
    """The headline keys from the paths measured so far (None where a path is missing)."""
    paths = report["paths"]
    rate = lambda path, name: paths[path][name]["prompts_per_s"]  # noqa: E731
    best = {}
    for name in ("fdx_full", "es_sweep"):
        measured = [p for p in paths if p.startswith("lighteval_bs") and name in paths[p]]
        best[name] = max(measured, key=lambda p: rate(p, name)) if measured else None

    def speedup(name: str, peer: str | None) -> float | None:
        measured = name in paths.get("ours", {}) and name in paths.get(peer, {})
        return round(rate("ours", name) / rate(peer, name), 2) if measured else None

    report["lighteval_best_batch_size"] = best
    report["es_speedup_vs_lighteval"] = speedup("es_sweep", best["es_sweep"])
    report["fdx_speedup_vs_lighteval"] = speedup("fdx_full", best["fdx_full"])
    report["es_speedup_vs_vlmevalkit"] = speedup("es_sweep", "vlmevalkit")
    report["mfu"] = paths.get("ours", {}).get("es_sweep", {}).get("mfu")
    report["hfu"] = paths.get("ours", {}).get("es_sweep", {}).get("hfu")


def write_json(report: dict[str, Any], out: Path | None) -> None:
    """``report`` as JSON at ``out`` (nothing where None)."""
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")


def save(report: dict[str, Any], out: Path) -> None:
    summarize(report)
    write_json(report, out)


def profile_batch(backend: MedsynVLM, docs: list, out: Path) -> None:
    """A torch.profiler table (top operators by device time, else host time) of one batch of ``docs``; the
    backend's named regions (``medsyn.vision_tower``, ``medsyn.language_model``, ...) are rows of it."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    backend.features = type(backend.features)(backend.features.max_bytes)  # the images are encoded inside the profile
    start = time.perf_counter()
    with profile(activities=activities, record_shapes=False) as prof:
        backend.loglikelihood(docs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    sort = "cuda_time_total" if torch.cuda.is_available() else "cpu_time_total"
    out.parent.mkdir(parents=True, exist_ok=True)
    table = prof.key_averages().table(sort_by=sort, row_limit=45)
    out.write_text(f"{len(docs)} prompts, {seconds:.3f} s wall (profiled)\n{table}\n")
    print(f"wrote {out}")


# --- end to end: every task of `medsyn eval --tasks en` -----------------------------------

MEDSYN_CASES = 452
"""Cases of the real benchmark in one language; the end-to-end figures are extrapolated to them."""


def e2e_rows(n_cases: int, image_px: int, text_words: int) -> list[dict[str, Any]]:
    """Synthetic rows at MEDSYN's shape: 4 CE types and 8.4 images per case on average (cases 1 and 3 of
    every five get a ninth image, in the first CE type)."""
    rows = synthetic_rows(n_cases, 8, image_px, text_words)
    for c, row in enumerate(rows):
        if c % 5 in (1, 3):
            noise = np.random.default_rng(10**6 + c).integers(0, 255, (image_px, image_px, 3), dtype=np.uint8)
            row["images"].append(Image.fromarray(noise))
            row["image_evidence"].append(0)
    return rows


def e2e_tasks(rows: list[dict], fdx_tokens: int, ddx_tokens: int) -> dict[str, tuple[str, list, int]]:
    """Every task of ``medsyn eval --tasks en`` in its pipeline order (generation, then log-likelihood):
    name -> (MedsynVLM method, docs as the task table's prompt functions make them, tokens a generation path
    generates). FDx and DDx generate ``fdx_tokens`` / ``ddx_tokens`` instead of their task's 1,024 / 512."""
    tasks = {}
    for name in all_task_names(["en"]):
        short = name.removeprefix("medsyn:")
        if short == "es_en":
            docs = [make_doc(r, c, "es", f"{name}|0") for r in rows for c in es_conditions(r["evidence_types"])]
            tasks[short] = ("loglikelihood", docs, fdx_tokens)
            continue
        if short == "ddx_en":
            docs, tokens = [ddx_prompt(r, f"{name}|0") for r in rows], ddx_tokens
        else:
            condition = FDX_ABLATIONS[short.removeprefix("fdx_en_")] if short != "fdx_en" else FULL
            docs, tokens = [fdx_prompt(r, f"{name}|0", condition) for r in rows], fdx_tokens
        for d in docs:
            d.generation_size = tokens
        tasks[short] = ("greedy_until", docs, tokens)
    return tasks


def time_tasks(path: str, tasks: dict[str, tuple[str, list, int]], run: Callable[[str], Any], device: str, cases: int) -> dict[str, Any]:
    """Each task through ``run(task name)``, timed in order, and the totals, measured on ``cases``
    cases and extrapolated to :data:`MEDSYN_CASES`."""
    scale, entry = MEDSYN_CASES / cases, {"tasks": {}}
    for name, (_, docs, _) in tasks.items():
        _, seconds, memory = timed(lambda: run(name), device)
        entry["tasks"][name] = {"seconds": round(seconds, 3), "prompts": len(docs), "seconds_452_cases": round(seconds * scale, 1),
                                "peak_gpu_mem_gib": None if memory is None else round(memory, 2)}  # fmt: skip
        print(f"{path:16s} {name:24s} {len(docs):4d} prompts {seconds:8.2f} s  ({seconds * scale:9.1f} s for {MEDSYN_CASES} cases)", flush=True)
    seconds = sum(t["seconds"] for t in entry["tasks"].values())
    memories = [t["peak_gpu_mem_gib"] for t in entry["tasks"].values() if t["peak_gpu_mem_gib"] is not None]
    entry.update(seconds=round(seconds, 3), seconds_452_cases=round(seconds * scale, 1), peak_gpu_mem_gib=max(memories, default=None))
    print(f"{path:16s} {'total':24s} {sum(len(t[1]) for t in tasks.values()):4d} prompts {seconds:8.2f} s  "
          f"({seconds * scale:9.1f} s for {MEDSYN_CASES} cases)", flush=True)  # fmt: skip
    return entry


def end_to_end(args, model, folder: Path, dtype_name: str, ours: Callable[..., MedsynVLM], plain: Callable[[], MedsynVLM],
               report: dict[str, Any], patches: int, peak: float | None, out: Path | None) -> dict[str, Any]:  # fmt: skip
    """Every task of ``medsyn eval --tasks en`` on ``--cases`` synthetic cases, three ways (the same cases for all),
    through the MedsynVLM methods lighteval's pipeline calls (greedy_until, loglikelihood), each path's time
    extrapolated to 452 cases; HFU of ours on ES and on FDx; peak memory."""
    rows = e2e_rows(args.cases, args.image_px, args.text_words)
    tasks = e2e_tasks(rows, args.gen_tokens, args.ddx_tokens)
    encoder = plain()
    tokens = {name: [int(encoder.encode([d])["attention_mask"].sum()) for d in docs] for name, (_, docs, _) in tasks.items()}
    n_images = [len(r["images"]) for r in rows]
    report["workload"] = {
        "cases_sampled": args.cases, "extrapolated_to_cases": MEDSYN_CASES, "images_per_case_mean": float(np.mean(n_images)),
        "image_px": args.image_px, "ce_types": len(CE_TYPES), "prompt_tokens_full_mean": float(np.mean(tokens["fdx_en"])),
        "prompts_per_task": {name: len(docs) for name, (_, docs, _) in tasks.items()},
        "fdx_gen_tokens": args.gen_tokens, "ddx_gen_tokens": args.ddx_tokens,
        "ours_method": "MedsynVLM.greedy_until / loglikelihood per task in the pipeline's order (one backend, as one run)",
    }  # fmt: skip
    report["peak_flops"] = peak
    paths: dict[str, Any] = report.setdefault("paths", {})
    warm = [tasks["fdx_en"][1][:1], tasks["es_en"][1][: 1 + 2 * len(CE_TYPES)]]

    # (c) ours: a fresh image-feature cache, each task's counters kept for its HFU
    backend = ours(batch_size=int(args.batch_size.split(",")[0]))
    backend.greedy_until(warm[0])
    backend.loglikelihood(warm[1])
    backend.features = type(backend.features)(backend.features.max_bytes)
    counts = []

    def run_ours(name: str) -> Any:
        method, docs, _ = tasks[name]
        backend.stats.update(images_encoded=0, lm_tokens=0, lm_tokens_shared=0)
        result = getattr(backend, method)(docs)
        counts.append(dict(backend.stats))
        return result

    paths["ours"] = time_tasks("ours", tasks, run_ours, args.device, args.cases)
    for name, stats in zip(tasks, counts):
        paths["ours"]["tasks"][name].update({k: stats[k] for k in ("images_encoded", "lm_tokens", "lm_tokens_shared")})
    es, fdx = paths["ours"]["tasks"]["es_en"], [n for n in tasks if n.startswith("fdx_")]
    es_flops = lm_flops(model, tokens["es_en"]) * es["lm_tokens"] / (es["lm_tokens"] + es["lm_tokens_shared"]) + vision_flops(model, es["images_encoded"], patches)
    fdx_flops = sum(lm_flops(model, [t + args.gen_tokens for t in tokens[n]]) + vision_flops(model, sum(len(d.images) for d in tasks[n][1]), patches) for n in fdx)
    fdx_seconds = sum(paths["ours"]["tasks"][n]["seconds"] for n in fdx)
    report["hfu_es"] = None if peak is None else round(es_flops / (es["seconds"] * peak), 4)
    report["hfu_fdx"] = None if peak is None else round(fdx_flops / (fdx_seconds * peak), 4)
    report["end_to_end_s"] = paths["ours"]["seconds_452_cases"]
    write_json(report, out)

    stock_vision_tower(model)  # the peers run the tower as transformers does
    peers = set(filter(None, args.peers.split(",")))
    # (a) lighteval's own vision path, generation for every task, at each batch size; the fastest counts
    for batch_size in [int(b) for b in args.lighteval_batch_sizes.split(",")] if "lighteval" in peers else []:
        lighteval_model = lighteval_path(folder, model, batch_size, args.gen_tokens, args.device, dtype_name)
        converted = {name: [as_lighteval_doc(d) for d in docs] for name, (_, docs, _) in tasks.items()}
        for name, (_, _, n) in tasks.items():
            for d in converted[name]:
                d.generation_size = n
        lighteval_model.greedy_until([as_lighteval_doc(d) for d in warm[0] + warm[1]])
        run = lambda name: lighteval_model.greedy_until(converted[name])  # noqa: E731
        paths[f"lighteval_bs{batch_size}"] = time_tasks(f"lighteval_bs{batch_size}", tasks, run, args.device, args.cases)
        write_json(report, out)
    # (b) VLMEvalKit's loop: one prompt at a time, generation for every task
    if "vlmevalkit" in peers:
        vlmevalkit_path(encoder, warm[0], args.gen_tokens)
        run = lambda name: vlmevalkit_path(encoder, tasks[name][1], tasks[name][2])  # noqa: E731
        paths["vlmevalkit"] = time_tasks("vlmevalkit", tasks, run, args.device, args.cases)

    measured = [p for p in paths if p.startswith("lighteval_bs")]
    best = min(measured, key=lambda p: paths[p]["seconds"]) if measured else None
    report["lighteval_best_batch_size"] = None if best is None else int(best.removeprefix("lighteval_bs"))
    speedup = lambda peer: round(paths[peer]["seconds"] / paths["ours"]["seconds"], 2) if peer in paths else None  # noqa: E731
    report["e2e_speedup_vs_lighteval"] = speedup(best)
    report["e2e_speedup_vs_vlmevalkit"] = speedup("vlmevalkit")
    report["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)  # this process's peak, model build included
    write_json(report, out)
    print(json.dumps({k: report[k] for k in ("end_to_end_s", "e2e_speedup_vs_lighteval", "e2e_speedup_vs_vlmevalkit", "hfu_es", "hfu_fdx",
                                              "peak_rss_gib")}))  # fmt: skip
    print(f"wrote {out}" if out else "no JSON written (on CPU only with --out)")
    return report


def metadata(args, model, dtype_name: str) -> dict[str, Any]:
    """What a report says about its run: model, device, dtype, versions."""
    return {
        "arch": args.arch, "device": args.device, "dtype": dtype_name,
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        "torch": torch.__version__, "transformers": __import__("transformers").__version__,
        "params_b": round(_params(model) / 1e9, 3),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=("tiny", *QWEN_SIZES), default="qwen2_5_vl_7b")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=("auto", "bfloat16", "float32"), default="auto", help="auto: bfloat16 on a GPU, else float32")
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--image-px", type=int, default=448)
    parser.add_argument("--text-words", type=int, default=1170, help="history length; ~1,500 text tokens in all")
    parser.add_argument("--gen-tokens", type=int, default=30)
    parser.add_argument("--batch-size", default="8", help="our path's batch size; several (16,32) time each, the best counts")
    parser.add_argument("--lighteval-batch-sizes", default="1,4,8")
    parser.add_argument("--vlmeval-cases", type=int, default=1, help="cases whose prompts path (b) runs (it is slow)")
    parser.add_argument("--check-cases", type=int, default=2, help="cases whose posteriors are checked against the plain path")
    parser.add_argument("--peers", default="lighteval,vlmevalkit", help="peer paths to time (comma-separated; '' for ours only)")
    parser.add_argument("--ablations", action="store_true", help="also time ours without prefix sharing / the vision tower's changes / its aligned MLP")
    parser.add_argument("--profile", type=Path, default=None, help="write a torch.profiler table of one ES batch of ours here")
    parser.add_argument("--max-fp32-diff", type=float, default=None,
                        help="exit with an error where the fast path's float32 posteriors differ from the plain path's by more")
    parser.add_argument("--backend-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="a VLMConfig setting for our path (repeatable), e.g. aligned_vision_mlp=false")
    parser.add_argument("--end-to-end", action="store_true",
                        help="every task of `medsyn eval --tasks en` on --cases cases (8.4 images per case), three ways, "
                             "extrapolated to 452 cases (--vlmeval-cases, --check-cases, --ablations, --profile do not apply)")
    parser.add_argument("--ddx-tokens", type=int, default=256, help="with --end-to-end: tokens each DDx generation generates")
    parser.add_argument("--peak-flops", type=float, default=None,
                        help="the device's peak FLOP/s for MFU/HFU (default: 989e12, bf16 dense, on a GPU; unknown on CPU: null)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    dtype_name = args.dtype if args.dtype != "auto" else "bfloat16" if args.device.startswith("cuda") else "float32"
    dtype = getattr(torch, dtype_name)
    folder = Path(tempfile.mkdtemp(prefix="medsyn-gpu-eval-"))
    model, processor = build_model(args.arch, folder, args.device, dtype)
    settings = dict(model_name=str(folder), device=args.device, dtype=dtype_name, use_response_cache=False)
    given = {arg.split("=")[0] for arg in args.backend_arg}
    ours_args = VLMConfig.from_args(",".join(["model_name=x", *args.backend_arg])).model_dump(include=given)
    rows = synthetic_rows(args.cases, args.images, args.image_px, args.text_words)
    work = workloads(rows)
    stock = dict(packed_vision_attention=False, aligned_vision_mlp=False)

    def make_backend(**changes) -> MedsynVLM:
        """The MEDSYN backend on the model in memory, with ``changes`` to the run's settings."""
        return MedsynVLM(VLMConfig(**{**settings, **changes}), model=model, processor=processor)

    def ours(**changes) -> MedsynVLM:
        """Our path: the ``--backend-arg`` settings, then ``changes``."""
        return make_backend(**{**ours_args, **changes})

    def plain_path(batch_size: int = 1, dtype: str = dtype_name) -> MedsynVLM:
        """The plain path: each prompt's images through the stock vision tower again, no prefix shared."""
        return make_backend(dtype=dtype, batch_size=batch_size, reuse_image_features=False, **stock)

    grid = args.image_px // 14 if args.arch != "tiny" else 32 // 8
    patches = grid * grid
    peak = args.peak_flops or (PEAK_BF16_FLOPS if args.device.startswith("cuda") else None)
    if args.end_to_end:
        report = metadata(args, model, dtype_name)
        gpu = report["gpu"]
        out = args.out or (RESULTS / f"gpu_e2e_{args.arch}_{gpu.replace(' ', '_')}.json" if gpu else None)
        return end_to_end(args, model, folder, dtype_name, ours, plain_path, report, patches, peak, out)

    encoder = make_backend(**stock)
    tokens = {name: [int(encoder.encode([d])["attention_mask"].sum()) for d in docs] for name, docs in work.items()}
    report: dict[str, Any] = metadata(args, model, dtype_name) | {
        "workload": {"cases": args.cases, "images_per_case": args.images, "image_px": args.image_px,
                     "ce_types": len(CE_TYPES), "prompt_tokens_full_mean": float(np.mean(tokens["fdx_full"])),
                     "es_prompts": len(work["es_sweep"]), "gen_tokens": args.gen_tokens},
        "paths": {},
    }  # fmt: skip
    out = args.out or RESULTS / f"gpu_eval_{args.arch}_{(report['gpu'] or 'cpu').replace(' ', '_')}.json"

    def record(path: str, name: str, docs: list, seconds: float, memory: float | None) -> dict:
        flops = necessary_flops(model, docs, tokens[name], patches)
        entry = report["paths"].setdefault(path, {})[name] = {
            "seconds": round(seconds, 3), "prompts": len(docs), "cases_per_s": round(len({d.specific["case_id"] for d in docs}) / seconds, 4),
            "prompts_per_s": round(len(docs) / seconds, 3), "prefill_tokens_per_s": round(sum(tokens[name][: len(docs)]) / seconds, 1),
            "peak_gpu_mem_gib": None if memory is None else round(memory, 2),
            "mfu": None if peak is None else round(flops / (seconds * peak), 4),
            "model_dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        }  # fmt: skip
        print(f"{path:28s} {name:9s} {len(docs):4d} prompts {seconds:8.2f} s  {len(docs) / seconds:7.2f} prompts/s", flush=True)
        save(report, out)  # a run cut short still leaves every figure measured so far
        return entry

    def unless_out_of_memory(path: str, fn: Callable[[], Any]) -> Any:
        """``fn()``, or None where it runs out of GPU memory: that batch size is recorded under ``skipped``."""
        try:
            return fn()
        except torch.OutOfMemoryError:
            report.setdefault("skipped", {})[path] = "out of GPU memory"
            torch.cuda.empty_cache()
            print(f"{path:28s} out of GPU memory, skipped", flush=True)
            save(report, out)
            return None

    def run_ours(path: str, backend: MedsynVLM) -> dict[str, list]:
        # warm-up, untimed: kernels, their heuristics for these shapes, the allocator (the first FDx batch timed
        # cold ran 1.8x slower on the H100, 2.73 s against 1.47 s; benchmarks/results)
        backend.loglikelihood(work["es_sweep"][: 1 + 2 * len(CE_TYPES)])
        backend.loglikelihood(work["fdx_full"])
        posteriors = {}
        for name, docs in work.items():
            backend.features = type(backend.features)(backend.features.max_bytes)  # nothing encoded before the timing
            backend.stats.update(images_encoded=0, lm_tokens=0, lm_tokens_shared=0, lm_token_slots=0)
            out, seconds, memory = timed(lambda: backend.loglikelihood(docs), args.device)
            entry = record(path, name, docs, seconds, memory)
            run, shared = backend.stats["lm_tokens"], backend.stats["lm_tokens_shared"]
            entry.update(images_encoded=backend.stats["images_encoded"], lm_tokens_run=run, lm_tokens_shared=shared,
                         lm_token_slots=backend.stats["lm_token_slots"])  # run + padding
            if peak is not None:
                executed = necessary_flops(model, docs, tokens[name], patches, lm_share=run / (run + shared))
                entry["hfu"] = round(executed / (seconds * peak), 4)
            posteriors[name] = posteriors_of(out)
        return posteriors

    # Order: what the targets need first (ours, lighteval, the bf16 check), then the rest, so a
    # run cut short by its time limit still has them (the JSON is rewritten after every measurement).
    sizes = [int(b) for b in args.batch_size.split(",")]
    names = {size: "ours" if len(sizes) == 1 else f"ours_bs{size}" for size in sizes}
    posteriors = {}  # (c)
    for size in sizes:
        backend = ours(batch_size=size)
        if (result := unless_out_of_memory(names[size], lambda: run_ours(names[size], backend))) is not None:
            posteriors[size] = result
    if not posteriors:
        raise SystemExit(f"every batch size of ours ran out of GPU memory: {sizes}")
    ours_batch = max(posteriors, key=lambda size: report["paths"][names[size]]["es_sweep"]["prompts_per_s"])
    report["paths"]["ours"] = report["paths"][names[ours_batch]]
    report["ours_batch_size"] = ours_batch
    report["ours_backend_args"] = ours_args
    fast = posteriors[ours_batch]["es_sweep"]

    stock_vision_tower(model)  # the peers and the plain reference run the tower as transformers does
    peers = set(filter(None, args.peers.split(",")))
    # (a) lighteval's own vision path at each batch size; the best counts
    def run_lighteval(batch_size: int) -> None:
        lighteval_model = lighteval_path(folder, model, batch_size, args.gen_tokens, args.device, dtype_name)
        lighteval_model.greedy_until([as_lighteval_doc(d) for d in work["fdx_full"]])  # warm-up, as ours
        for name, docs in work.items():
            le_docs = [as_lighteval_doc(d) for d in docs]
            for d in le_docs:
                d.generation_size = args.gen_tokens
            _, seconds, memory = timed(lambda: lighteval_model.greedy_until(le_docs), args.device)
            record(f"lighteval_bs{batch_size}", name, docs, seconds, memory)

    for batch_size in [int(b) for b in args.lighteval_batch_sizes.split(",")] if "lighteval" in peers else []:
        unless_out_of_memory(f"lighteval_bs{batch_size}", lambda: run_lighteval(batch_size))

    # posteriors of the plain path (one prompt at a time) on the same prompts
    check = work["es_sweep"][: args.check_cases * (1 + 2 * len(CE_TYPES))]
    plain = plain_path()
    reference = posteriors_of(plain.loglikelihood(check))
    report["posterior_max_abs_diff_vs_plain"] = max_abs_diff(fast, reference)
    # what batching alone moves in this dtype: the same plain path, a whole case per batch (padded, sorted)
    batched = posteriors_of(plain_path(batch_size=1 + 2 * len(CE_TYPES)).loglikelihood(check))
    report["posterior_max_abs_diff_plain_batched_vs_plain"] = max_abs_diff(batched, reference)
    save(report, out)

    # the same check in float32, which separates the algorithm from bf16 rounding (batch shapes change bf16 sums);
    # bf16 -> float32 -> bf16 is exact, so the timings after it run the same weights
    if dtype != torch.float32:
        model.float()
        fast32 = ours(batch_size=ours_batch, dtype="float32")
        fast_check = posteriors_of(fast32.loglikelihood(check))
        stock_vision_tower(model)
        report["posterior_max_abs_diff_vs_plain_fp32"] = max_abs_diff(fast_check, posteriors_of(plain_path(dtype="float32").loglikelihood(check)))
        model.to(dtype)
    else:
        report["posterior_max_abs_diff_vs_plain_fp32"] = report["posterior_max_abs_diff_vs_plain"]
    save(report, out)
    if args.max_fp32_diff is not None and not report["posterior_max_abs_diff_vs_plain_fp32"] <= args.max_fp32_diff:
        raise SystemExit(f"fast path's float32 posteriors differ from the plain path's by {report['posterior_max_abs_diff_vs_plain_fp32']:.3g}")

    # (b) VLMEvalKit-style per-prompt generation, on the first cases' prompts
    for name, docs in work.items() if "vlmevalkit" in peers else []:
        subset = [d for d in docs if int(d.specific["case_id"].split("-")[1]) < args.vlmeval_cases]
        _, seconds, memory = timed(lambda: vlmevalkit_path(plain, subset, args.gen_tokens), args.device)
        record("vlmevalkit", name, subset, seconds, memory)

    # (c) without its parts, and a profile of it
    if args.ablations:
        run_ours("ours_stock_vision_tower", ours(batch_size=ours_batch, **stock))
        run_ours("ours_unaligned_vision_mlp", ours(batch_size=ours_batch, aligned_vision_mlp=False))
        stock_vision_tower(model)
        run_ours("ours_no_prefix_sharing", ours(batch_size=ours_batch, share_prefix=False))
    if args.profile:  # one ES batch, and the FDx prompts of as many cases (FILE and FILE with "fdx" in its name)
        profiled = ours(batch_size=ours_batch)
        fdx_profile = args.profile.with_name(args.profile.name.replace("_es_", "_fdx_") if "_es_" in args.profile.name else f"fdx_{args.profile.name}")
        for docs, path in ((work["es_sweep"][:ours_batch], args.profile), (work["fdx_full"][:ours_batch], fdx_profile)):
            try:
                profile_batch(profiled, docs, path)
            except Exception as exc:  # the profiler's device tracing can be unavailable; the timings still count
                report.setdefault("profile_error", []).append(f"{path.name}: {type(exc).__name__}: {exc}")

    save(report, out)
    print(json.dumps({k: report.get(k) for k in ("es_speedup_vs_lighteval", "fdx_speedup_vs_lighteval", "es_speedup_vs_vlmevalkit",
                                                  "mfu", "hfu", "posterior_max_abs_diff_vs_plain", "posterior_max_abs_diff_plain_batched_vs_plain",
                                                  "posterior_max_abs_diff_vs_plain_fp32")}))  # fmt: skip
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
