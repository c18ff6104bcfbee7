"""``report.md`` with plots, from a §7 results dict and the run's samples."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from medsyn.data.schema import LANGUAGES, OPTION_LETTERS
from medsyn.eval.tiny_model import TINY_MODEL_NAME

if TYPE_CHECKING:
    from medsyn.eval.pipeline import Sample

PHYSICIANS = {"ddx_coverage": 0.7713, "fdx_accuracy": 0.7211}
"""Senior physicians, English subset, as reported in the MEDSYN paper (not reproduced here)."""
MINI_DATASET = "MEDSYN-mini"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def fmt_num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def fmt_count(value: int | None) -> str:
    return "n/a" if value is None else str(value)


def banner(results: dict[str, Any]) -> str | None:
    """Why the figures are no finding (the built-in random model, MEDSYN-mini), or None."""
    reasons = []
    if results["model"]["name"] == TINY_MODEL_NAME:
        reasons.append(f"the model is {TINY_MODEL_NAME}, a random untrained model: its scores are noise")
    if results["dataset"]["name"] == MINI_DATASET:
        n = sum(results["dataset"]["n_cases"].values())
        reasons.append(f"the dataset is {MINI_DATASET}, {n} sample cases whose images do not depict the patients: not a benchmark")
    if not reasons:
        return None
    return ("Not a finding: " + "; ".join(reasons) + ". Gaps, intervals that exclude 0 and the plots show that the "
            "pipeline runs, not how a model performs.")  # fmt: skip


def image_budget(results: dict[str, Any]) -> str:
    """The run's image budget in words."""
    max_pixels = results["image_budget"]["max_pixels"]
    return "images as stored, resized only by the model's processor" if max_pixels is None else f"images downscaled to at most {max_pixels} pixels"


def setup_text(results: dict[str, Any]) -> str | None:
    """How the transformers backend ran the model (``model.setup``) in words, or None (an endpoint, an older file).

    >>> setup_text({"model": {"setup": {"family": "LLaVA-Next", "model_type": "llava_next", "template": "medsyn-inline",
    ...     "image_slot": "<image>\\n", "fast_paths": {"reuse_image_features": "on", "share_prefix": "off: not tested"}}}})
    'Ran as LLaVA-Next (`llava_next`); chat template: images rendered inline at their CE positions (the shipped template moves them); fast paths: reuse_image_features on; share_prefix off: not tested.'
    """
    setup = results["model"].get("setup")
    if not setup:
        return None
    template = ("images rendered inline at their CE positions (the shipped template moves them)"
                if setup["template"] == "medsyn-inline" else "as shipped, images in place")  # fmt: skip
    paths = "; ".join(f"{name} {state}" for name, state in setup["fast_paths"].items())
    return f"Ran as {setup['family']} (`{setup['model_type']}`); chat template: {template}; fast paths: {paths}."


def subset_counts(specifics: Iterable[dict[str, Any]]) -> dict[str, Counter]:
    """Per subset (each language and ``overall``): the number of FDx (condition full) and DDx samples,
    from the samples' ``specific`` dicts."""
    counts: dict[str, Counter] = {}
    for spec in specifics:
        if spec["task"] == "fdx" and spec["condition"] != "full":
            continue
        for subset in (spec["language"], "overall"):
            counts.setdefault(subset, Counter())[spec["task"]] += 1
    return counts


SUMMARY_COLUMNS = (
    "subset", "cases", "FDx accuracy (correct/cases) [95 % CI]", "parse failures",
    "DDx coverage (covered/judged) [95 % CI]", "judge failures", "DDx-FDx gap", "ES image", "ES text",
    "ES gap [95 % CI]", "ES parse failures", "ES low letter mass",
)  # fmt: skip


def summary_cells(subset: str, b: dict[str, Any], n: Counter) -> list[str]:
    """One row of the summary table (SUMMARY_COLUMNS) for a results block; ``n``: its subset_counts entry."""
    es_ci = "" if not b["es_gap_ci"] else f" [{fmt_num(b['es_gap_ci'][0])}, {fmt_num(b['es_gap_ci'][1])}]"
    return [
        subset, str(b["n"]), f"{_pct(b['fdx_accuracy'])}{_share(b['fdx_accuracy'], n['fdx'])}{_ci(b['fdx_accuracy_ci'])}",
        fmt_count(b["parse_failures"]), f"{_pct(b['ddx_coverage'])}{_judged(b, n['ddx'])}{_ci(b['ddx_coverage_ci'])}",
        fmt_count(b["judge_failures"]), _pct(b["ddx_fdx_gap"]), fmt_num(b["es_image"]), fmt_num(b["es_text"]),
        f"{fmt_num(b['es_gap'])}{es_ci}", fmt_count(b["es_parse_failures"]), fmt_count(b.get("posterior_failures")),
    ]  # fmt: skip


@dataclass
class DdxJudgement:
    """A DDx output's items, their grades (None: not re-judged) and the judge's failure message (None: judged)."""

    items: list[str]
    grades: list[int | None] | None
    failure: str | None


def judge_ddx(text: str | None, gold: str, language: str, judge: str) -> DdxJudgement:
    """Parse and grade a DDx output again, offline: only the lexical judge is re-run (others would call a server)."""
    from medsyn.metrics.ddx import parse_ddx
    from medsyn.metrics.judges import JudgeError, get_judge

    items = parse_ddx(text or "")
    if not items or judge != "lexical":
        return DdxJudgement(items, [] if not items else None, None)
    try:
        return DdxJudgement(items, list(get_judge(judge).score(gold, items, language=language)), None)
    except JudgeError as error:
        return DdxJudgement(items, error.partial, str(error))


def failure_cause(message: str) -> str:
    """A judge failure message without its case-specific parts (quoted texts, numbers), to group failures by cause."""
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'|\"[^\"]*\"", "…", message))


def judge_failure_causes(samples: Sequence[Sample], judge: str) -> dict[str, Counter]:
    """Per subset, the judge failures of the DDx samples by cause (lexical judge; other judges record none)."""
    causes: dict[str, Counter] = {}
    for s in samples:
        if s.specific["task"] == "ddx":
            failure = judge_ddx(s.text, s.specific["final_diagnosis"], s.specific["language"], judge).failure
            for subset in (s.specific["language"], "overall"):
                if failure:
                    causes.setdefault(subset, Counter())[failure_cause(failure)] += 1
    return causes


def es_type_intervals(results: dict[str, Any], samples: Sequence[Sample]) -> dict[str, dict[str, list[float] | None]]:
    """Per CE type (overall), the 95 % intervals of ES image and text: from results.json where it has them
    (``image_ci``, ``text_ci``), else a case-level bootstrap (:func:`medsyn.metrics.stats.es_gap_ci` of the
    per-case values) over the usable ES samples.
    """
    table = results["results"]["overall"]["evidence_sensitivity"]
    if any("image_ci" in v for v in table.values()):
        return {t: {"image": v.get("image_ci"), "text": v.get("text_ci")} for t, v in table.items()}
    from medsyn.metrics.sensitivity import evidence_sensitivity, posterior, usable_es_rows
    from medsyn.metrics.stats import es_gap_ci

    es = [s for s in samples if s.specific["task"] == "es"]
    keep = usable_es_rows([s.specific["case_id"] for s in es], [s.specific["condition"] for s in es],
                          [s.posterior_failed for s in es])  # fmt: skip
    es = [s for s, k in zip(es, keep) if k]
    if not es:
        return {}
    per_case = evidence_sensitivity(
        [posterior(s.logprobs) for s in es], [OPTION_LETTERS.index(s.specific["answer"]) for s in es],
        [s.specific["case_id"] for s in es], [s.specific["condition"] for s in es],
    )["per_case"]  # fmt: skip
    intervals = {}
    for ce_type in table:
        rows = [i for i, t in enumerate(per_case["ce_type"]) if t == ce_type]
        cases = [per_case["case_id"][i] for i in rows]
        intervals[ce_type] = {  # es_gap_ci of (text = the values, image = 0) is the case-level bootstrap of their mean
            key: es_gap_ci({"case_id": cases, "ce_type": [ce_type] * len(rows), "image": [0.0] * len(rows),
                            "text": [per_case[key][i] for i in rows]})  # fmt: skip
            for key in ("image", "text")
        }
    return intervals


def judge_name(judge: str | dict[str, Any]) -> str:
    """The judge's name (its spec for :func:`medsyn.metrics.judges.get_judge`): ``judge`` is {name, model,
    prompt_version}, or a plain name in older files."""
    return judge if isinstance(judge, str) else judge["name"]


def judge_text(judge: str | dict[str, Any]) -> str:
    """The judge for the report: its name, and its prompt version where it has one."""
    version = None if isinstance(judge, str) else judge.get("prompt_version")
    return f"`{judge_name(judge)}`" + (f" (prompt `{version}`)" if version else "")


def ci_text(ci: dict[str, dict[str, Any]] | None) -> str:
    """The interval method of each rate; a file written before ``ci`` existed does not record them.

    The report covers one model: the Spearman correlation of ES gap and FDx accuracy across models is
    the leaderboard's (:func:`medsyn.publish.leaderboard.correlation_line`).
    """
    if not ci:
        return "Interval methods: not recorded in this results file."
    return "Interval methods: " + "; ".join(f"{rate} {spec['method']} ({100 * spec['level']:g} %)" for rate, spec in ci.items()) + "."


def write_report(results: dict[str, Any], out_dir: Path, samples: Sequence[Sample]) -> Path:
    """Write ``out_dir/report.md`` and its two plots from ``results`` and the samples it was scored from."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = subset_counts(s.specific for s in samples)
    intervals = es_type_intervals(results, samples)
    plot_coverage_vs_accuracy(results, out_dir / "ddx_vs_fdx.png", counts)
    plot_evidence_sensitivity(results, out_dir / "evidence_sensitivity.png", intervals)
    model, dataset = results["model"], results["dataset"]
    warning = banner(results)
    lines = [f"# MEDSYN results: {model['name']}", ""]
    if warning:
        lines += [f"> **{warning}**", ""]
    lines += [
        f"Dataset {dataset['name']} (revision `{dataset['revision'][:12]}`), judge {judge_text(results['judge'])}, "
        f"{image_budget(results)}. Command: `{results['command']}`.",
        "",
        *([text, ""] if (text := setup_text(results)) else []),
        ci_text(results.get("ci")),
        "",
        "| " + " | ".join(SUMMARY_COLUMNS) + " |",
        "|---" * len(SUMMARY_COLUMNS) + "|",
    ]
    for subset, block in results["results"].items():
        lines.append("| " + " | ".join(summary_cells(subset, block, counts.get(subset, Counter()))) + " |")
    lines += _judge_failure_lines(results, samples)
    lines += ["", "## FDx accuracy by condition", "", "| subset | " + " | ".join(results["results"]["overall"]["conditions"]) + " |"]
    lines.append("|---" * (1 + len(results["results"]["overall"]["conditions"])) + "|")
    for subset, b in results["results"].items():
        lines.append(f"| {subset} | " + " | ".join(_pct(v) for v in b["conditions"].values()) + " |")
    lines += ["", "## Evidence Sensitivity by CE type (overall, Jensen-Shannon) [95 % CI]", "",
              "| CE type | image | text | gap |", "|---|---|---|---|"]  # fmt: skip
    for ce_type, v in results["results"]["overall"]["evidence_sensitivity"].items():
        ci = intervals.get(ce_type, {})
        lines.append(f"| {ce_type} | {fmt_num(v['image'])}{_num_ci(ci.get('image'))} | {fmt_num(v['text'])}{_num_ci(ci.get('text'))} | {fmt_num(v['gap'])} |")
    lines += [
        "",
        "![DDx coverage vs FDx accuracy](ddx_vs_fdx.png)",
        "",
        "![Evidence Sensitivity, image vs text](evidence_sensitivity.png)",
        "",
        "Parse failures count as wrong answers; judge failures are left out of DDx coverage and counted apart;",
        "ES parse failures (answer posteriors with no option letter) are left out of ES with their (case, CE type) pairs.",
        "The physicians' point (DDx 77.13 %, FDx 72.11 %, English subset) is as reported in the paper, not reproduced.",
    ]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _share(rate: float | None, n: int) -> str:
    return "" if rate is None or not n else f" ({round(rate * n)}/{n})"


def _judged(block: dict[str, Any], n_ddx: int) -> str:
    """``(covered/judged)``, or ``(0 of N judged)`` when no case could be judged."""
    if not n_ddx or block["judge_failures"] is None:
        return ""
    judged = n_ddx - block["judge_failures"]
    return f" (0 of {n_ddx} judged)" if not judged else f" ({round(block['ddx_coverage'] * judged)}/{judged})"


def _num_ci(ci: Sequence[float] | None) -> str:
    return "" if not ci else f" [{fmt_num(ci[0])}, {fmt_num(ci[1])}]"


def _judge_failure_lines(results: dict[str, Any], samples: Sequence[Sample]) -> list[str]:
    """The judge failures of each subset grouped by cause (a judge failure is left out of DDx coverage)."""
    failing = {s: b["judge_failures"] for s, b in results["results"].items() if b["judge_failures"]}
    if not failing:
        return []
    lines = ["", "## Judge failures by cause", ""]
    judge = judge_name(results["judge"])
    causes = judge_failure_causes(samples, judge)
    for subset, n in failing.items():
        found = causes.get(subset, Counter())
        detail = "; ".join(f"{k} ({cause})" for cause, k in found.most_common())
        if sum(found.values()) != n:
            detail = f"cause unknown: only the lexical judge is re-run offline to find it (judge `{judge}`)"
        lines.append(f"* {subset}: {n} — {detail}")
    return lines


def _plot_title(results: dict[str, Any], what: str) -> str:
    return f"{what}\n{results['model']['name']} on {results['dataset']['name']}"


def _banner_note(fig, results: dict[str, Any]) -> None:
    if banner(results):
        fig.text(0.5, 0.005, "not a finding: random model or MEDSYN-mini (see report.md)", ha="center", va="bottom",
                 fontsize=8, color="firebrick")  # fmt: skip


def plot_coverage_vs_accuracy(results: dict[str, Any], path: Path, counts: dict[str, Counter]) -> None:
    """DDx coverage against FDx accuracy per subset, with the diagonal and the physicians' point.

    Points that fall on one another are drawn as nested markers and labelled one under another;
    a subset without both values is listed in the legend with the reason.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    ax.plot([0, 100], [0, 100], color="grey", linestyle="--", linewidth=1, label="DDx coverage = FDx accuracy")
    ax.scatter([100 * PHYSICIANS["fdx_accuracy"]], [100 * PHYSICIANS["ddx_coverage"]], marker="*", s=160,
               color="black", label="senior physicians (reported, en)")  # fmt: skip
    placed: list[tuple[float, float]] = []
    for subset, b in results["results"].items():
        if b["fdx_accuracy"] is None or b["ddx_coverage"] is None:
            n_ddx = counts.get(subset, Counter())["ddx"]
            why = f"no DDx case judged (0 of {n_ddx})" if b["ddx_coverage"] is None and n_ddx else "not measured"
            ax.plot([], [], " ", label=f"{subset}: no point, {why}")
            continue
        x, y = 100 * b["fdx_accuracy"], 100 * b["ddx_coverage"]
        same = sum(abs(x - px) < 2 and abs(y - py) < 2 for px, py in placed)
        placed.append((x, y))
        ax.scatter([x], [y], s=max(20, 160 - 60 * same), marker="os^D"[same % 4], zorder=3 + same,
                   label=f"{subset}: FDx {x:.1f} %, DDx {y:.1f} %")  # fmt: skip
        ax.annotate(subset, (x, y), xytext=(9, 9 + 11 * same), textcoords="offset points", fontsize=8)
    ax.set(xlim=(-5, 105), ylim=(-5, 105), xlabel="FDx accuracy (%)", ylabel="DDx coverage (%)",
           title=_plot_title(results, "DDx coverage vs FDx accuracy"))  # fmt: skip
    ax.legend(fontsize=7, loc="upper left")
    _banner_note(fig, results)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path)
    plt.close(fig)


def plot_evidence_sensitivity(results: dict[str, Any], path: Path, intervals: dict[str, dict[str, Any]]) -> None:
    """ES as images vs as text findings, per CE type (overall), with 95 % intervals where there are any."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    table = results["results"]["overall"]["evidence_sensitivity"]
    types = list(table)
    x = np.arange(len(types))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(types) + 2), 4.5), dpi=100)
    for offset, key, label in ((-0.2, "image", "as images"), (0.2, "text", "as text findings")):
        values = [table[t][key] for t in types]
        cis = [intervals.get(t, {}).get(key) or (v, v) for t, v in zip(types, values)]
        errors = np.array([[v - lo for v, (lo, _) in zip(values, cis)], [hi - v for v, (_, hi) in zip(values, cis)]])
        ax.bar(x + offset, values, width=0.4, label=label, yerr=errors if intervals else None, capsize=3)
    ax.set_xticks(x, types, rotation=30, ha="right")
    languages = "+".join(lang for lang in LANGUAGES if lang in results["results"])
    what = f"Evidence Sensitivity per CE type, overall ({languages}, {results['results']['overall']['n']} cases)"
    what += ", 95 % case-bootstrap intervals" if intervals else ", no intervals"
    ax.set(ylabel="Evidence Sensitivity (JS divergence)", title=_plot_title(results, what))
    if not types:
        ax.text(0.5, 0.5, "no Evidence Sensitivity measured", ha="center", transform=ax.transAxes)
    ax.legend()
    _banner_note(fig, results)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path)
    plt.close(fig)
