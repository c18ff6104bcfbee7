"""``report.md`` with plots, from a §7 results dict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PHYSICIANS = {"ddx_coverage": 0.7713, "fdx_accuracy": 0.7211}
"""Senior physicians, English subset, as reported in the MEDSYN paper (not reproduced here)."""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def fmt_num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def fmt_count(value: int | None) -> str:
    return "n/a" if value is None else str(value)


def write_report(results: dict[str, Any], out_dir: Path) -> Path:
    """Write ``out_dir/report.md`` and its two plots; return the report's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_coverage_vs_accuracy(results, out_dir / "ddx_vs_fdx.png")
    plot_evidence_sensitivity(results, out_dir / "evidence_sensitivity.png")
    model, dataset = results["model"], results["dataset"]
    lines = [
        f"# MEDSYN results: {model['name']}",
        "",
        f"Dataset {dataset['name']} (revision `{dataset['revision'][:12]}`), judge `{results['judge']}`, "
        f"image budget {results['image_budget']['max_pixels'] or 'model default'} pixels. Command: `{results['command']}`.",
        "",
        "| subset | cases | FDx accuracy [95 % CI] | parse failures | DDx coverage [95 % CI] | judge failures | DDx-FDx gap | ES image | ES text | ES gap [95 % CI] | ES parse failures |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for subset, b in results["results"].items():
        es_ci = "" if not b["es_gap_ci"] else f" [{fmt_num(b['es_gap_ci'][0])}, {fmt_num(b['es_gap_ci'][1])}]"
        lines.append(
            f"| {subset} | {b['n']} | {_pct(b['fdx_accuracy'])}{_ci(b['fdx_accuracy_ci'])} | {fmt_count(b['parse_failures'])} "
            f"| {_pct(b['ddx_coverage'])}{_ci(b['ddx_coverage_ci'])} | {fmt_count(b['judge_failures'])} | {_pct(b['ddx_fdx_gap'])} "
            f"| {fmt_num(b['es_image'])} | {fmt_num(b['es_text'])} | {fmt_num(b['es_gap'])}{es_ci} | {fmt_count(b['es_parse_failures'])} |"
        )
    lines += ["", "## FDx accuracy by condition", "", "| subset | " + " | ".join(results["results"]["overall"]["conditions"]) + " |"]
    lines.append("|---" * (1 + len(results["results"]["overall"]["conditions"])) + "|")
    for subset, b in results["results"].items():
        lines.append(f"| {subset} | " + " | ".join(_pct(v) for v in b["conditions"].values()) + " |")
    lines += ["", "## Evidence Sensitivity by CE type (overall, Jensen-Shannon)", "", "| CE type | image | text | gap |", "|---|---|---|---|"]
    for ce_type, v in results["results"]["overall"]["evidence_sensitivity"].items():
        lines.append(f"| {ce_type} | {fmt_num(v['image'])} | {fmt_num(v['text'])} | {fmt_num(v['gap'])} |")
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


def plot_coverage_vs_accuracy(results: dict[str, Any], path: Path) -> None:
    """DDx coverage against FDx accuracy per subset, with the diagonal and the physicians' point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot([0, 100], [0, 100], color="grey", linestyle="--", linewidth=1, label="DDx coverage = FDx accuracy")
    ax.scatter([100 * PHYSICIANS["fdx_accuracy"]], [100 * PHYSICIANS["ddx_coverage"]], marker="*", s=160,
               color="black", label="senior physicians (reported, en)")  # fmt: skip
    for subset, b in results["results"].items():
        if b["fdx_accuracy"] is not None and b["ddx_coverage"] is not None:
            ax.scatter([100 * b["fdx_accuracy"]], [100 * b["ddx_coverage"]], s=60, label=f"{results['model']['name']} ({subset})")
    ax.set(xlim=(0, 100), ylim=(0, 100), xlabel="FDx accuracy (%)", ylabel="DDx coverage (%)", title="DDx coverage vs FDx accuracy")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_evidence_sensitivity(results: dict[str, Any], path: Path) -> None:
    """ES as images vs as text findings, per CE type (overall)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    table = results["results"]["overall"]["evidence_sensitivity"]
    types = list(table)
    x = np.arange(len(types))
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(types) + 2), 4), dpi=100)
    ax.bar(x - 0.2, [table[t]["image"] for t in types], width=0.4, label="as images")
    ax.bar(x + 0.2, [table[t]["text"] for t in types], width=0.4, label="as text findings")
    ax.set_xticks(x, types, rotation=30, ha="right")
    ax.set(ylabel="Evidence Sensitivity (JS divergence)", title="Evidence Sensitivity per CE type")
    if not types:
        ax.text(0.5, 0.5, "no Evidence Sensitivity measured", ha="center", transform=ax.transAxes)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
