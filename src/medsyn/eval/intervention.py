"""ES-guided intervention (``medsyn eval --intervention es-gap:K``): the project's formalization of the paper's
"this metric provides actionable guidance for targeted interventions".

From a model's own earlier ES result (a results file, DESIGN §7), per language the K visual CE types with the
largest image-vs-text gap (``evidence_sensitivity[type].gap``) are shown as text findings: FDx under the
condition ``text:<t1>+<t2>+…`` (task ``medsyn:fdx_<lang>_intervention``). A control converts K CE types drawn
at random (seeded) from the same measured types (``medsyn:fdx_<lang>_intervention_control``), which separates
choosing by ES from converting anything to text. Each is reported as its accuracy change against ``full``
with a paired case bootstrap (:func:`medsyn.metrics.stats.paired_difference_ci`).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from medsyn.data.schema import VISUAL_CE_TYPES
from medsyn.metrics.scoring import score_fdx
from medsyn.metrics.stats import paired_difference_ci

ES_GUIDED, CONTROL = "intervention", "intervention_control"
_SPEC = re.compile(r"es-gap:([1-9][0-9]*)")


def parse_spec(spec: str) -> int:
    """K of ``es-gap:K``; ValueError otherwise."""
    match = _SPEC.fullmatch(spec)
    if not match:
        raise ValueError(f"--intervention {spec!r}: expected es-gap:K with K a positive number of CE types")
    return int(match.group(1))


def measured_gaps(results: dict[str, Any], lang: str) -> dict[str, float]:
    """The per-type ES gaps of ``lang`` in a results file (types without a gap left out)."""
    block = results.get("results", {}).get(lang)
    if block is None:
        raise ValueError(f"ES results: no '{lang}' block (the run evaluated {sorted(results.get('results', {}))})")
    per_type = block.get("evidence_sensitivity") or {}
    return {t: per_type[t]["gap"] for t in VISUAL_CE_TYPES if per_type.get(t, {}).get("gap") is not None}


def choose_types(results: dict[str, Any], lang: str, k: int, seed: int = 0) -> dict[str, list[str]]:
    """``{"intervention": the K largest-gap types, "intervention_control": K random measured types}``, in schema order.

    Ties in the gap keep schema order. The control is drawn with ``random.Random(f"{seed}:{lang}")``.
    """
    gaps = measured_gaps(results, lang)
    if len(gaps) < k:
        raise ValueError(f"ES results ({lang}): K={k} but only {len(gaps)} CE types have a measured gap ({sorted(gaps)})")
    largest = sorted(gaps, key=lambda t: -gaps[t])[:k]
    control = random.Random(f"{seed}:{lang}").sample(sorted(gaps, key=VISUAL_CE_TYPES.index), k)
    return {ES_GUIDED: _in_schema_order(largest), CONTROL: _in_schema_order(control)}


def _in_schema_order(types: list[str]) -> list[str]:
    return sorted(types, key=VISUAL_CE_TYPES.index)


def text_condition(types: list[str]) -> str:
    """The contract condition showing ``types`` as text: ``text:<t1>+<t2>+…``."""
    return "text:" + "+".join(types)


def load_es_results(path: Path, run_out: Path) -> dict[str, Any]:
    """The earlier results file; refused when it is the evaluated run's own ``results.json`` or has no ES."""
    if Path(path).resolve() == (Path(run_out) / "results.json").resolve():
        raise ValueError(f"--es-results {path} is this run's own results file: give an earlier run's results.json")
    results = json.loads(Path(path).read_text(encoding="utf-8"))
    if not any((b or {}).get("evidence_sensitivity") for b in results.get("results", {}).values()):
        raise ValueError(f"{path}: no per-type Evidence Sensitivity (run medsyn eval with the es tasks first)")
    return results


def plan(results: dict[str, Any], languages: list[str], k: int, seed: int = 0) -> dict[str, dict[str, str]]:
    """For each language, the extra FDx tasks' conditions ``{suffix: condition}`` (medsyn.eval.tasks.INTERVENTION_ENV)."""
    return {lang: {suffix: text_condition(types) for suffix, types in choose_types(results, lang, k, seed).items()}
            for lang in languages}  # fmt: skip


def correct_by_case(samples: list[Any], task: str) -> dict[str, float]:
    """``{case_id: 1.0/0.0}`` FDx correctness in ``task`` (``medsyn:fdx_en_intervention``); a case answered twice is refused."""
    rows = [s for s in samples if s.task == task]
    scored = score_fdx([s.text for s in rows], [s.specific["answer"] for s in rows], [s.specific["options"] for s in rows])
    out: dict[str, float] = {}
    for s, ok in zip(rows, scored["correct"]):
        if s.specific["case_id"] in out:
            raise ValueError(f"{s.specific['case_id']}: answered twice in {task}")
        out[s.specific["case_id"]] = float(ok)
    return out


def report(samples: list[Any], planned: dict[str, dict[str, str]], seed: int = 0) -> dict[str, Any]:
    """Per language: accuracy under full, under each intervention, and the paired change against full."""
    out: dict[str, Any] = {}
    for lang, by_suffix in planned.items():
        full = correct_by_case(samples, f"medsyn:fdx_{lang}")
        block: dict[str, Any] = {"fdx_accuracy_full": sum(full.values()) / len(full) if full else None}
        for suffix, condition in by_suffix.items():
            treated = correct_by_case(samples, f"medsyn:fdx_{lang}_{suffix}")
            change = paired_difference_ci(full, treated, seed=seed)
            block[suffix] = {"condition": condition, "fdx_accuracy": sum(treated.values()) / len(treated),
                             "change": change["delta"], "change_ci": list(change["ci"]), "n": change["n"]}
        out[lang] = block
    return out
