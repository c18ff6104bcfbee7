"""Where the answer position looks: attention shares to image tokens, textual CE and the rest (``medsyn analyze attention``).

The project's formalization of the paper's "removing [textual] evidence increases attention to image tokens":
for each case under ``full``, ``no_history`` and ``random_history`` (FDx prompt), one forward pass with eager
attention; at every language-model layer the attention row of the last prompt position (the one that predicts
the answer's first token), averaged over heads, is split into the mass on image tokens, on textual-CE tokens
(the History and Physical examination blocks) and on everything else (these three sum to 1), and also into the
mass on each visual CE type's block (its title and its image tokens). Each layer's map is reduced inside a
forward hook and dropped, so memory stays at one layer's map.
"""

from __future__ import annotations

import bisect
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from medsyn.data.build import checked_revision, load_split, manifest_cases
from medsyn.data.schema import FULL, LANGUAGES, NO_HISTORY, RANDOM_HISTORY, TEXT_CE_TYPES, VISUAL_CE_TYPES
from medsyn.eval.prompts import IMAGE_MARK, render
from medsyn.eval.tasks import make_doc
from medsyn.metrics.stats import mean_bootstrap_ci

CONDITIONS = (FULL, NO_HISTORY, RANDOM_HISTORY)
CATEGORIES = ("image", "text_ce", "rest")


class AttentionUnavailable(RuntimeError):
    """The model family's attention weights cannot be read."""


@contextmanager
def eager_attention(model) -> Iterator[None]:
    """Switch ``model`` to eager attention (which returns its weights) and restore its implementation after."""
    previous = model.config._attn_implementation
    try:
        model.set_attn_implementation("eager")
    except (ValueError, AttributeError) as error:
        raise AttentionUnavailable(f"{type(model).__name__}: cannot switch to eager attention ({error})") from error
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


def attention_modules(model) -> list[torch.nn.Module]:
    """The self-attention module of each language-model layer; refused when the family has none to hook."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    layers = getattr(decoder, "layers", None)
    modules = [getattr(layer, "self_attn", None) for layer in layers or []]
    if not modules or any(m is None for m in modules):
        raise AttentionUnavailable(f"{type(model).__name__}: no decoder layers with a self_attn module to read")
    return modules


def token_groups(vlm, row: dict[str, Any], condition: str, inputs: dict[str, Any]) -> tuple[np.ndarray, list[str]]:
    """A 0/1 matrix (groups × tokens): rows ``CATEGORIES`` (a partition) then one per visual CE type of the case.

    Tokens are mapped to the rendered prompt's blocks through the tokenizer's offsets on the chat-templated
    text, each image slot expanded to its run of image tokens in ``inputs``; any disagreement is refused.
    """
    prompt = render(row, condition, "fdx")
    doc = make_doc(row, condition, "fdx", "attention")
    (text,), _ = vlm._prompts([doc])
    block_of = _char_blocks(prompt, text)
    encoded = vlm.processor.tokenizer(text, return_offsets_mapping=True)
    ids, image_id = inputs["input_ids"][0].tolist(), vlm.image_token_id
    image_labels = [label for s, e, label in prompt.spans for _ in range(prompt.query.count(IMAGE_MARK, s, e))]
    labels, slot, j = [], 0, 0
    for token, (start, _end) in zip(encoded["input_ids"], encoded["offset_mapping"]):
        if token == image_id:
            run = 0
            while j < len(ids) and ids[j] == image_id:
                run, j = run + 1, j + 1
            if run == 0 or slot >= len(image_labels):
                break
            labels += [("image", image_labels[slot])] * run
            slot += 1
            continue
        if j >= len(ids) or ids[j] != token:
            break
        labels.append(("block", block_of[start] if start < len(block_of) else "rest"))
        j += 1
    if j != len(ids) or len(labels) != len(ids) or slot != len(image_labels):
        raise AttentionUnavailable(f"{row['case_id']} ({condition}): the tokenized prompt does not align with the "
                                   "model inputs (image tokens or tokenizer offsets differ); cannot map attention")
    types = [t for t in VISUAL_CE_TYPES if t in set(row["evidence_types"])]
    groups = np.zeros((len(CATEGORIES) + len(types), len(ids)))
    for k, (kind, block) in enumerate(labels):
        groups[0 if kind == "image" else 1 if block in TEXT_CE_TYPES else 2, k] = 1
        if block in types:
            groups[len(CATEGORIES) + types.index(block), k] = 1
    return groups, types


def _char_blocks(prompt, text: str) -> list[str]:
    """For each character of the chat-templated ``text``, the label of the prompt block it belongs to ("rest" outside)."""
    labels = ["rest"] * len(text)
    starts = [s for s, _, _ in prompt.spans]
    cursor, offset = 0, 0
    for part in prompt.query.split(IMAGE_MARK):
        at = text.find(part, cursor)
        if at < 0:
            raise AttentionUnavailable("the chat template changed the prompt text; cannot map attention to its blocks")
        for i in range(len(part)):
            k = bisect.bisect_right(starts, offset + i) - 1
            _, end, label = prompt.spans[k]
            if offset + i < end:
                labels[at + i] = label
        cursor, offset = at + len(part), offset + len(part) + len(IMAGE_MARK)
    return labels


def case_shares(vlm, row: dict[str, Any], condition: str) -> dict[str, Any]:
    """Per layer, the answer position's attention shares (head mean): ``categories`` (layers × 3) and ``types``."""
    inputs = vlm.encode([make_doc(row, condition, "fdx", "attention")])
    groups, types = token_groups(vlm, row, condition, inputs)
    weights = torch.as_tensor(groups, dtype=torch.float32)
    per_layer: list[np.ndarray] = []

    def reduce(module, args, output):
        maps = output[1] if isinstance(output, tuple) and len(output) > 1 else None
        if maps is None:
            raise AttentionUnavailable(f"{type(module).__name__} returns no attention weights under eager attention")
        per_layer.append((weights @ maps[0, :, -1, :].float().mean(0).cpu()).numpy())
        return (output[0], None, *output[2:])

    handles = [m.register_forward_hook(reduce) for m in attention_modules(vlm.model)]
    try:
        with eager_attention(vlm.model), torch.no_grad():
            vlm.model(**inputs, logits_to_keep=1)
    finally:
        for handle in handles:
            handle.remove()
    shares = np.stack(per_layer)
    return {"case_id": row["case_id"], "language": row["language"], "condition": condition,
            "categories": shares[:, : len(CATEGORIES)].tolist(),
            "types": {t: shares[:, len(CATEGORIES) + k].tolist() for k, t in enumerate(types)}}  # fmt: skip


def analyze(model: str, dataset: Path, out: Path, max_cases: int | None = None, seed: int = 0) -> list[Path]:
    """Every case of ``dataset`` under :data:`CONDITIONS`: writes attention.json, attention_summary.csv and two plots."""
    from medsyn.eval.backends.transformers_vlm import MedsynVLM, VLMConfig

    vlm = MedsynVLM(VLMConfig(model_name=model, batch_size=1, use_response_cache=False))
    cases, revision = manifest_cases(dataset), checked_revision(dataset)
    records = []
    for lang in LANGUAGES:
        if lang not in cases:
            continue
        split = load_split(dataset, lang, revision)
        keep = set(cases[lang][:max_cases] if max_cases else cases[lang])
        for row in split:
            if row["case_id"] in keep:
                records += [case_shares(vlm, row, condition) for condition in CONDITIONS]
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(records, seed)
    (out / "attention.json").write_text(json.dumps({"model": model, "summary": summary, "cases": records}, indent=1))
    csv = ["language,condition,share,layer,mean,ci_low,ci_high,n_cases"]
    csv += [f"{s['language']},{s['condition']},{s['share']},{s['layer']},{s['mean']:.6f},{s['ci'][0]:.6f},"
            f"{s['ci'][1]:.6f},{s['n']}" for s in summary]  # fmt: skip
    (out / "attention_summary.csv").write_text("\n".join(csv) + "\n")
    return [out / "attention.json", out / "attention_summary.csv", *plot(summary, out)]


def summarize(records: list[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """Mean share over cases with a case bootstrap interval, per language, condition, share and layer
    (``layer`` ``"mean"``: the layer average); shares are the three categories and ``ce:<type>``."""
    rows = []
    for lang in sorted({r["language"] for r in records}):
        for condition in CONDITIONS:
            chosen = [r for r in records if r["language"] == lang and r["condition"] == condition]
            if not chosen:
                continue
            series = {name: [np.asarray(r["categories"])[:, k] for r in chosen] for k, name in enumerate(CATEGORIES)}
            for t in VISUAL_CE_TYPES:
                series[f"ce:{t}"] = [np.asarray(r["types"][t]) for r in chosen if t in r["types"]]
            for name, per_case in series.items():
                if not per_case:
                    continue
                matrix = np.stack(per_case)
                columns = [("mean", matrix.mean(axis=1))] + [(k, matrix[:, k]) for k in range(matrix.shape[1])]
                rows += [{"language": lang, "condition": condition, "share": name, "layer": layer,
                          "mean": float(values.mean()), "ci": mean_bootstrap_ci(values, seed), "n": len(values)}
                         for layer, values in columns]  # fmt: skip
    return rows


def plot(summary: list[dict[str, Any]], out: Path) -> list[Path]:
    """``attention_by_condition.png`` (layer-mean image share per condition, 95 % case-bootstrap bars) and
    ``attention_layers.png`` (image share per layer, one line per condition)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = sorted({s["language"] for s in summary})
    fig, axes = plt.subplots(1, len(langs), figsize=(4 * len(langs), 3.5), squeeze=False)
    for ax, lang in zip(axes[0], langs):
        bars = [s for c in CONDITIONS for s in summary
                if (s["language"], s["condition"], s["share"], s["layer"]) == (lang, c, "image", "mean")]  # fmt: skip
        ax.bar([b["condition"] for b in bars], [b["mean"] for b in bars],
               yerr=np.array([[b["mean"] - b["ci"][0] for b in bars], [b["ci"][1] - b["mean"] for b in bars]]), capsize=4)
        ax.set_title(f"{lang}: image-token share (layer mean)")
        ax.set_ylabel("share of the answer position's attention")
    fig.tight_layout()
    fig.savefig(out / "attention_by_condition.png", dpi=120)
    fig, axes = plt.subplots(1, len(langs), figsize=(4 * len(langs), 3.5), squeeze=False)
    for ax, lang in zip(axes[0], langs):
        for c in CONDITIONS:
            line = [s for s in summary if (s["language"], s["condition"], s["share"]) == (lang, c, "image")
                    and s["layer"] != "mean"]  # fmt: skip
            ax.plot([s["layer"] for s in line], [s["mean"] for s in line], marker="o", label=c)
        ax.set_title(f"{lang}: image-token share per layer")
        ax.set_xlabel("layer")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "attention_layers.png", dpi=120)
    plt.close("all")
    return [out / "attention_by_condition.png", out / "attention_layers.png"]
