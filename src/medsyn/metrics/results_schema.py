"""The results file of DESIGN §7: its schema and the validator every writer and reader uses.

``validate_results`` returns every problem as one readable line ``<field path>: <problem>``
(empty list when the file is valid). ``medsyn demo``/``eval`` check their own output with it,
and the leaderboard checks every results file and every submission with it.

Beyond the example of DESIGN §7:

* ``dataset.n_cases`` counts the cases *evaluated* per language: a run on one language
  (``--tasks en``) records that language only, and is a full run of it; a run on the first N
  cases (``--max-samples N``) records N per language, so its file is valid but is refused
  against the known revision's counts.
  ``results.overall.n`` is always the sum of ``n_cases``.
* ``es_parse_failures`` (beside ``es_gap_ci``, like ``parse_failures`` and ``judge_failures``):
  the Evidence Sensitivity posteriors that rest on no parsed answer (the endpoint backend found
  no option letter). They are counted, never scored: their (case, CE type) pairs are left out
  of ES, and with nothing left the ES figures are null. Null when no ES task ran; a file written
  before the key existed may leave it out (its ES posteriors were not checked).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from medsyn.data.schema import LANGUAGES, VISUAL_CE_TYPES, parse_condition

OVERALL = "overall"
RESULT_LANGUAGES: tuple[str, ...] = (*LANGUAGES, OVERALL)
MODEL_TYPES: tuple[str, ...] = ("open", "proprietary", "medical", "reference")

TOP_KEYS = ("medsyn_version", "dataset", "model", "judge", "image_budget", "results", "created_at", "command")
DATASET_KEYS = ("name", "revision", "n_cases")
MODEL_KEYS = ("name", "type", "params_b")
RATE_KEYS = ("fdx_accuracy", "ddx_coverage")
"""Fractions in [0, 1], each with a ``<key>_ci`` interval."""
COUNT_KEYS = ("parse_failures", "judge_failures")
"""Failures counted per case (at most ``n``)."""
ES_FAILURES = "es_parse_failures"
"""Failed ES posteriors: at most ``n`` × (1 + 2 × CE types), one per case and condition."""
ES_KEYS = ("es_image", "es_text", "es_gap")
BLOCK_KEYS = (
    "n", "fdx_accuracy", "fdx_accuracy_ci", "parse_failures", "ddx_coverage", "ddx_coverage_ci",
    "judge_failures", "ddx_fdx_gap", "es_image", "es_text", "es_gap", "es_gap_ci",
    ES_FAILURES, "evidence_sensitivity", "conditions",
)
MAX_MODEL_NAME = 200
TOLERANCE = 1e-3
"""Allowed difference between a derived value and its recomputation (files round their numbers)."""

KnownDatasets = dict[str, dict[str, Any]]
"""revision -> {"name": str, "n_cases": {"en": int, "zh": int}}."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _keys(obj: dict, expected: tuple[str, ...], path: str, problems: list[str], optional: tuple[str, ...] = ()) -> None:
    """Report missing and unknown keys of ``obj`` (unknown keys are usually typos); ``optional`` keys may be missing."""
    for key in expected:
        if key not in obj and key not in optional:
            problems.append(f"{path}.{key}: missing" if path else f"{key}: missing")
    for key in obj:
        if key not in expected:
            where = f"{path}.{key}" if path else str(key)
            problems.append(f"{where}: unknown key (expected one of {', '.join(expected)})")


def _string(obj: dict, key: str, path: str, problems: list[str], max_len: int = 10_000) -> None:
    value = obj.get(key)
    if key not in obj:
        return
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{path}.{key}: must be a non-empty string, got {value!r}")
    elif len(value) > max_len:
        problems.append(f"{path}.{key}: longer than {max_len} characters")


def _rate(value: Any, path: str, problems: list[str]) -> bool:
    """Check a fraction in [0, 1] or null; True when it is a usable number."""
    if value is None:
        return False
    if not _is_number(value):
        problems.append(f"{path}: must be a number in [0, 1] or null, got {value!r}")
        return False
    if not 0.0 <= value <= 1.0:
        problems.append(f"{path}: {value} is out of range, expected a fraction in [0, 1] (not a percentage)")
        return False
    return True


def _finite(value: Any, path: str, problems: list[str]) -> bool:
    if value is None:
        return False
    if not _is_number(value):
        problems.append(f"{path}: must be a finite number or null, got {value!r}")
        return False
    return True


def _interval(block: dict, key: str, path: str, problems: list[str], is_rate: bool) -> None:
    """Check ``<key>_ci``: null when the value is null, else null or [lo, hi].

    A rate's interval must contain the rate. An ES-gap interval need not contain es_gap: its case
    bootstrap changes which CE types are present, so the point can fall outside on few cases.
    """
    value, ci, where = block.get(key), block.get(f"{key}_ci"), f"{path}.{key}_ci"
    if ci is None:
        return
    if value is None:
        problems.append(f"{where}: must be null when {key} is null")
        return
    if not (isinstance(ci, list) and len(ci) == 2 and all(_is_number(x) for x in ci)):
        problems.append(f"{where}: must be [low, high] (two finite numbers) or null, got {ci!r}")
        return
    low, high = ci
    if low > high:
        problems.append(f"{where}: low {low} is above high {high}")
    elif is_rate and not (0.0 <= low and high <= 1.0):
        problems.append(f"{where}: {ci} is out of range, expected fractions in [0, 1]")
    elif is_rate and _is_number(value) and not (low - TOLERANCE <= value <= high + TOLERANCE):
        problems.append(f"{where}: {ci} does not contain {key} = {value}")


def _evidence_sensitivity(value: Any, path: str, problems: list[str]) -> dict[str, dict]:
    """Check ``{ce_type: {image, text, gap}}``; return the valid entries."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{path}: must be an object {{ce_type: {{image, text, gap}}}} or null")
        return {}
    valid = {}
    for ce_type, entry in value.items():
        where = f"{path}.{ce_type}"
        if ce_type not in VISUAL_CE_TYPES:
            problems.append(f"{where}: unknown CE type (expected one of {', '.join(VISUAL_CE_TYPES)})")
            continue
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be an object {{image, text, gap}}")
            continue
        before = len(problems)
        _keys(entry, ("image", "text", "gap"), where, problems)
        image, text, gap = (entry.get(k) for k in ("image", "text", "gap"))
        usable = [_finite(x, f"{where}.{k}", problems) for k, x in (("image", image), ("text", text), ("gap", gap))]
        if all(usable) and abs(gap - (text - image)) > TOLERANCE:
            problems.append(f"{where}.gap: {gap} is not text - image = {text - image:.6g}")
        if len(problems) == before:
            valid[ce_type] = entry
    return valid


def _macro_check(block: dict, per_type: dict[str, dict], path: str, problems: list[str]) -> None:
    """es_image/es_text/es_gap are macro means over the CE types present (DESIGN §5)."""
    for key, part in (("es_image", "image"), ("es_text", "text"), ("es_gap", "gap")):
        values = [entry[part] for entry in per_type.values() if entry.get(part) is not None]
        if _is_number(block.get(key)) and values:
            mean = sum(values) / len(values)
            if abs(block[key] - mean) > TOLERANCE:
                problems.append(f"{path}.{key}: {block[key]} is not the macro mean over CE types ({mean:.6g})")


def _conditions(value: Any, path: str, problems: list[str]) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        problems.append(f"{path}: must be an object {{condition: accuracy}} or null")
        return
    for name, accuracy in value.items():
        try:
            parse_condition(name)
        except ValueError as error:
            problems.append(f"{path}.{name}: {error}")
            continue
        _rate(accuracy, f"{path}.{name}", problems)


def _count(count: Any, where: str, n: int | None, per_case: int, problems: list[str]) -> None:
    """A failure count: null, or a non-negative integer of at most ``per_case`` per case."""
    if count is None:
        return
    if not _is_count(count):
        problems.append(f"{where}: must be a non-negative integer or null, got {count!r}")
    elif n is not None and count > n * per_case:
        most = f"n = {n}" if per_case == 1 else f"{n * per_case} ({per_case} per case, n = {n})"
        problems.append(f"{where}: {count} is more than {most}")


def _block(block: Any, path: str, problems: list[str]) -> int | None:
    """Check one language's results; return its ``n`` when valid."""
    if not isinstance(block, dict):
        problems.append(f"{path}: must be an object")
        return None
    _keys(block, BLOCK_KEYS, path, problems, optional=(ES_FAILURES,))
    n = block.get("n")
    if "n" in block and not (_is_count(n) and n > 0):
        problems.append(f"{path}.n: must be a positive integer (number of cases), got {n!r}")
        n = None
    for key in RATE_KEYS:
        _rate(block.get(key), f"{path}.{key}", problems)
        _interval(block, key, path, problems, is_rate=True)
    for key in (*COUNT_KEYS, ES_FAILURES):
        per_case = 1 if key in COUNT_KEYS else 1 + 2 * len(VISUAL_CE_TYPES)
        _count(block.get(key), f"{path}.{key}", n, per_case, problems)
    ddx, fdx, gap = block.get("ddx_coverage"), block.get("fdx_accuracy"), block.get("ddx_fdx_gap")
    if _finite(gap, f"{path}.ddx_fdx_gap", problems):
        if not (_is_number(ddx) and _is_number(fdx)):
            problems.append(f"{path}.ddx_fdx_gap: must be null when ddx_coverage or fdx_accuracy is null")
        elif abs(gap - (ddx - fdx)) > TOLERANCE:
            problems.append(f"{path}.ddx_fdx_gap: {gap} is not ddx_coverage - fdx_accuracy = {ddx - fdx:.6g}")
    elif gap is None and _is_number(ddx) and _is_number(fdx) and 0 <= ddx <= 1 and 0 <= fdx <= 1:
        problems.append(f"{path}.ddx_fdx_gap: null although ddx_coverage and fdx_accuracy are both given")
    es = {key: _finite(block.get(key), f"{path}.{key}", problems) for key in ES_KEYS}
    if all(es.values()) and abs(block["es_gap"] - (block["es_text"] - block["es_image"])) > TOLERANCE:
        problems.append(f"{path}.es_gap: {block['es_gap']} is not es_text - es_image")
    _interval(block, "es_gap", path, problems, is_rate=False)
    per_type = _evidence_sensitivity(block.get("evidence_sensitivity"), f"{path}.evidence_sensitivity", problems)
    _macro_check(block, per_type, path, problems)
    _conditions(block.get("conditions"), f"{path}.conditions", problems)
    return n


def _dataset(obj: dict, known: KnownDatasets | None, problems: list[str]) -> dict[str, int]:
    """Check ``dataset``; return its valid per-language case counts."""
    dataset = obj.get("dataset")
    if not isinstance(dataset, dict):
        if "dataset" in obj:
            problems.append("dataset: must be an object {name, revision, n_cases}")
        return {}
    _keys(dataset, DATASET_KEYS, "dataset", problems)
    _string(dataset, "name", "dataset", problems, max_len=200)
    _string(dataset, "revision", "dataset", problems, max_len=200)
    n_cases, counts = dataset.get("n_cases"), {}
    if "n_cases" in dataset and not isinstance(n_cases, dict):
        problems.append(f"dataset.n_cases: must be an object {{language: count}}, got {n_cases!r}")
    elif isinstance(n_cases, dict):
        for lang, count in n_cases.items():
            if lang not in LANGUAGES:
                problems.append(f"dataset.n_cases.{lang}: unknown language (expected one of {', '.join(LANGUAGES)})")
            elif not _is_count(count):
                problems.append(f"dataset.n_cases.{lang}: must be a non-negative integer, got {count!r}")
            else:
                counts[lang] = count
    revision = dataset.get("revision")
    if known is not None and isinstance(revision, str):
        _known_revision(dataset, counts, known, problems)
    return counts


def _known_revision(dataset: dict, counts: dict[str, int], known: KnownDatasets, problems: list[str]) -> None:
    entry = known.get(dataset["revision"])
    if entry is None:
        names = ", ".join(f"{v.get('name')} @ {k}" for k, v in known.items()) or "none configured"
        problems.append(f"dataset.revision: {dataset['revision']!r} is not a known dataset revision (known: {names})")
        return
    if dataset.get("name") != entry.get("name"):
        problems.append(f"dataset.name: {dataset.get('name')!r} does not match revision's dataset {entry.get('name')!r}")
    expected = {lang: count for lang, count in entry.get("n_cases", {}).items() if count}
    if not any(counts.get(lang) for lang in expected):
        problems.append(f"dataset.n_cases: no cases of {entry.get('name')} at this revision ({_counts(expected)})")
    for lang, count in sorted(counts.items()):
        if count != expected.get(lang, 0):
            problems.append(
                f"dataset.n_cases.{lang}: {count} does not match the {expected.get(lang, 0)} {lang} cases of "
                f"{entry.get('name')} at this revision (a run on some of a language's cases is not a full run)"
            )


def _counts(n_cases: dict[str, int]) -> str:
    return ", ".join(f"{lang}: {count}" for lang, count in sorted(n_cases.items())) or "none"


def _model(obj: dict, problems: list[str]) -> None:
    model = obj.get("model")
    if not isinstance(model, dict):
        if "model" in obj:
            problems.append("model: must be an object {name, type, params_b}")
        return
    _keys(model, MODEL_KEYS, "model", problems)
    _string(model, "name", "model", problems, max_len=MAX_MODEL_NAME)
    if "type" in model and model["type"] not in MODEL_TYPES:
        problems.append(f"model.type: {model['type']!r} is not one of {', '.join(MODEL_TYPES)}")
    params = model.get("params_b")
    if params is not None and not (_is_number(params) and params > 0):
        problems.append(f"model.params_b: must be a positive number (billions of parameters) or null, got {params!r}")


def _results(obj: dict, counts: dict[str, int], problems: list[str]) -> None:
    results = obj.get("results")
    if not isinstance(results, dict):
        if "results" in obj:
            problems.append("results: must be an object {en, zh, overall}")
        return
    for lang in results:
        if lang not in RESULT_LANGUAGES:
            problems.append(f"results.{lang}: unknown language (expected one of {', '.join(RESULT_LANGUAGES)})")
    if OVERALL not in results:
        problems.append("results.overall: missing")
    ns = {lang: _block(results[lang], f"results.{lang}", problems) for lang in RESULT_LANGUAGES if lang in results}
    for lang in LANGUAGES:
        expected = counts.get(lang, 0)
        if lang in ns and ns[lang] is not None and ns[lang] != expected:
            problems.append(f"results.{lang}.n: {ns[lang]} does not match dataset.n_cases.{lang} = {expected}")
        if lang not in results and expected > 0:
            problems.append(f"results.{lang}: missing although dataset.n_cases.{lang} = {expected}")
    total = sum(counts.values())
    if ns.get(OVERALL) is not None and ns[OVERALL] != total:
        problems.append(f"results.overall.n: {ns[OVERALL]} is not the sum of dataset.n_cases ({total})")


def validate_results(obj: Any, known_datasets: KnownDatasets | None = None) -> list[str]:
    """Every problem of a §7 results file, one line each; empty when valid.

    ``known_datasets`` maps a dataset revision to ``{"name", "n_cases": {lang: count}}``; when
    given, the file's revision must be one of them, and each language it reports must hold all of
    that language's cases at the revision (a run on one language is a full run of it; a run on
    some of a language's cases is refused).
    """
    if not isinstance(obj, dict):
        return [f"<file>: must be a JSON object, got {type(obj).__name__}"]
    problems: list[str] = []
    _keys(obj, TOP_KEYS, "", problems)
    for key in ("medsyn_version", "judge"):
        _string(obj, key, "", problems, max_len=200)
    if "command" in obj and not isinstance(obj["command"], str):
        problems.append(f"command: must be a string, got {obj['command']!r}")
    if "image_budget" in obj and not isinstance(obj["image_budget"], dict):
        problems.append(f"image_budget: must be an object such as {{\"max_pixels\": 1003520}}, got {obj['image_budget']!r}")
    created = obj.get("created_at")
    if "created_at" in obj:
        try:
            datetime.fromisoformat(created)
        except (TypeError, ValueError):
            problems.append(f"created_at: must be an ISO 8601 time such as 2026-11-26T12:00:00Z, got {created!r}")
    _model(obj, problems)
    counts = _dataset(obj, known_datasets, problems)
    _results(obj, counts, problems)
    return [line.lstrip(".") for line in problems]
