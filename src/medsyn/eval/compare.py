"""Several models' results compared: the rank correlation of ``es_gap`` with FDx accuracy (``medsyn report --compare``).

The project's formalization of the paper's "a smaller image-text gap correlates with higher accuracy":
per language, Spearman's rho of ``es_gap`` against ``fdx_accuracy`` across models, its p-value, Fisher-z
interval and percentile bootstrap interval over models, and the number of models used
(:func:`medsyn.metrics.stats.es_gap_accuracy_correlation`, as on the leaderboard).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medsyn.metrics.stats import es_gap_accuracy_correlation

SUBSETS = ("en", "zh", "overall")


def load_results_dir(folder: Path) -> list[dict[str, Any]]:
    """Every results file (DESIGN §7) under ``folder``, recursively; other JSON files are refused by name."""
    paths = sorted(Path(folder).rglob("*.json"))
    if not paths:
        raise ValueError(f"{folder}: no results files (*.json) found")
    loaded = []
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("results"), dict) or "model" not in data:
            raise ValueError(f"{path}: not a MEDSYN results file (no 'results' and 'model')")
        loaded.append({**data, "path": str(path)})
    return loaded


def compare(results: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """Per subset: the models' (name, es_gap, fdx_accuracy) and the correlation; models missing either are left out."""
    names = [r["model"]["name"] for r in results]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"model(s) {twice} appear in more than one results file; keep one run per model")
    out: dict[str, Any] = {}
    for subset in SUBSETS:
        rows = [(r["model"]["name"], r["results"][subset].get("es_gap"), r["results"][subset].get("fdx_accuracy"))
                for r in results if subset in r["results"]]  # fmt: skip
        used = [row for row in rows if row[1] is not None and row[2] is not None]
        out[subset] = {
            **es_gap_accuracy_correlation([{"es_gap": g, "fdx_accuracy": a} for _, g, a in used], seed=seed),
            "models": [{"name": n, "es_gap": g, "fdx_accuracy": a} for n, g, a in used],
            "left_out": [n for n, g, a in rows if g is None or a is None],
        }
    return out


def compare_markdown(comparison: dict[str, Any]) -> str:
    """The multi-model report: one correlation line per subset, then each subset's models."""
    lines = ["# MEDSYN: ES gap against FDx accuracy across models", "",
             "Spearman's rho of `es_gap` against `fdx_accuracy` (the paper expects rho < 0: a smaller gap, "
             "higher accuracy). Fisher-z and bootstrap-over-models 95 % intervals.", "",
             "| subset | models | rho | p | Fisher-z CI | bootstrap CI | left out |", "|---|---|---|---|---|---|---|"]
    for subset, c in comparison.items():
        lines.append(f"| {subset} | {c['n']} | {_num(c['rho'])} | {_num(c['p_value'])} | {_ci(c['ci'])} | "
                     f"{_ci(c['bootstrap_ci'])} | {', '.join(c['left_out']) or '-'} |")
    for subset, c in comparison.items():
        lines += ["", f"## {subset}", "", "| model | es_gap | fdx_accuracy |", "|---|---|---|"]
        lines += [f"| {m['name']} | {m['es_gap']:.4f} | {m['fdx_accuracy']:.4f} |" for m in c["models"]]
    return "\n".join(lines) + "\n"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _ci(interval: tuple[float, float] | list[float] | None) -> str:
    return "n/a" if interval is None else f"[{interval[0]:.3f}, {interval[1]:.3f}]"
