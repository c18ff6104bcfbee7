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
* ``n_judged`` per block (DDx cases the judge scored; null when no DDx ran), ``ci`` at the top
  (the interval method per rate: ``{rate: {"method", "level", ...}}`` for ``fdx_accuracy``,
  ``ddx_coverage`` and ``es_gap``), and ``judge`` as ``{name, model, prompt_version}`` (DESIGN §7
  additions); older files may leave out ``n_judged`` and ``ci`` and give ``judge`` as a string.
* ``posterior_failures`` per block (ES posteriors whose letter mass is below
  :data:`medsyn.metrics.sensitivity.MIN_LETTER_MASS`, counted and left out of ES like
  ``es_parse_failures``), ``letter_mass`` = ``{"mean", "min"}`` over the ES posteriors (null when
  not measured), and ``posterior`` at the top: ``{"method": "logprobs" | "samples", "samples",
  "temperature", "identical_samples"}`` (null when no ES task ran; ``identical_samples`` may be left
  out); older files may leave them out.
* ``world_size`` (processes of a data-parallel run, DESIGN §7 additions) and ``docs_per_rank`` (null, or the
  docs each rank computed); older files may leave them out.
* ``model.setup`` (optional): how the transformers backend ran the model, ``{"family", "model_type", "template"
  ("shipped" or "medsyn-inline": images rendered in place through a template that moves them), "image_slot",
  "fast_paths": {name: "on" | "off: <why>"}}``; null for an endpoint.
* ``image_budget`` is ``{"max_pixels": positive integer or null}``; no value of a file may nest
  deeper than :data:`MAX_DEPTH` (a reader that recursed into it would fail).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from medsyn.data.schema import LANGUAGES, VISUAL_CE_TYPES, parse_condition

OVERALL = "overall"
RESULT_LANGUAGES: tuple[str, ...] = (*LANGUAGES, OVERALL)
MODEL_TYPES: tuple[str, ...] = ("open", "proprietary", "medical", "reference")

TOP_KEYS = (
    "medsyn_version", "dataset", "model", "judge", "image_budget", "results", "created_at", "command", "ci", "posterior",
    "random_history", "world_size", "docs_per_rank",
)  # fmt: skip
OPTIONAL_TOP_KEYS = ("ci", "posterior", "random_history", "world_size", "docs_per_rank")
"""Keys a file written before they existed may leave out."""
JUDGE_KEYS = ("name", "model", "prompt_version")
CI_RATES = ("fdx_accuracy", "ddx_coverage", "es_gap")
CI_METHODS = ("wilson", "case-bootstrap-percentile")
MAX_DEPTH = 16
"""The deepest nesting a results file may have (the schema itself needs 5)."""
DATASET_KEYS = ("name", "revision", "n_cases")
MODEL_KEYS = ("name", "type", "params_b", "setup")
SETUP_KEYS = ("family", "model_type", "template", "image_slot", "fast_paths")
RATE_KEYS = ("fdx_accuracy", "ddx_coverage")
"""Fractions in [0, 1], each with a ``<key>_ci`` interval."""
COUNT_KEYS = ("parse_failures", "judge_failures")
"""Failures counted per case (at most ``n``)."""
ES_FAILURES = "es_parse_failures"
"""Failed ES posteriors: at most ``n`` × (1 + 2 × CE types), one per case and condition."""
ES_KEYS = ("es_image", "es_text", "es_gap")
POSTERIOR_FAILURES = "posterior_failures"
"""ES posteriors with too little letter mass: bounded like ``es_parse_failures``."""
POSTERIOR_KEYS = ("method", "samples", "temperature", "identical_samples")
POSTERIOR_METHODS = ("logprobs", "samples")
BLOCK_KEYS = (
    "n", "fdx_accuracy", "fdx_accuracy_ci", "parse_failures", "ddx_coverage", "ddx_coverage_ci",
    "judge_failures", "ddx_fdx_gap", "es_image", "es_text", "es_gap", "es_gap_ci",
    ES_FAILURES, "evidence_sensitivity", "conditions", "n_judged", POSTERIOR_FAILURES, "letter_mass",
)
MAX_MODEL_NAME = 200
TOLERANCE = 1e-3
"""Allowed difference between a derived value and its recomputation (files round their numbers)."""

KnownDatasets = dict[str, dict[str, Any]]
"""revision -> {"name": str, "n_cases": {"en": int, "zh": int}}."""


def _is_number(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


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


def _letter_mass(value: Any, path: str, problems: list[str]) -> None:
    """``letter_mass``: null, or ``{"mean", "min"}``, fractions with min <= mean."""
    if value is None:
        return
    if not isinstance(value, dict):
        problems.append(f"{path}: must be an object {{mean, min}} or null, got {_short(value)}")
        return
    _keys(value, ("mean", "min"), path, problems)
    usable = [_rate(value.get(k), f"{path}.{k}", problems) for k in ("mean", "min")]
    if all(usable) and value["min"] > value["mean"] + TOLERANCE:
        problems.append(f"{path}.min: {value['min']} is above the mean {value['mean']}")


def _posterior(obj: dict, problems: list[str]) -> None:
    """Top-level ``posterior``: null, or how the ES posteriors were measured."""
    value = obj.get("posterior")
    if value is None:
        return
    if not isinstance(value, dict):
        problems.append(f"posterior: must be an object {{{', '.join(POSTERIOR_KEYS)}}} or null, got {_short(value)}")
        return
    _keys(value, POSTERIOR_KEYS, "posterior", problems, optional=("identical_samples",))  # DESIGN §7 names three
    method, n, temperature, identical = (value.get(k) for k in POSTERIOR_KEYS)
    if "method" in value and method not in POSTERIOR_METHODS:
        problems.append(f"posterior.method: {_short(method)} is not one of {', '.join(POSTERIOR_METHODS)}")
    if method == "samples":
        if not (_is_count(n) and n > 0):
            problems.append(f"posterior.samples: must be a positive integer for method samples, got {_short(n)}")
        if not (_is_number(temperature) and temperature >= 0):
            problems.append(f"posterior.temperature: must be a number >= 0 for method samples, got {_short(temperature)}")
        if "identical_samples" in value and not _is_count(identical):
            problems.append(f"posterior.identical_samples: must be a non-negative integer for method samples, got {_short(identical)}")
    elif method == "logprobs" and any(v is not None for v in (n, temperature, identical)):
        problems.append("posterior: samples, temperature and identical_samples must be null for method logprobs")


def _parallel(obj: dict, problems: list[str]) -> None:
    """Top-level ``world_size`` (the processes of a data-parallel run) and ``docs_per_rank`` (null, or the docs
    each computed: one count per process)."""
    size, counts = obj.get("world_size", 1), obj.get("docs_per_rank")
    if not (_is_count(size) and size > 0):
        problems.append(f"world_size: must be a positive integer, got {_short(size)}")
    elif counts is not None and not (isinstance(counts, list) and len(counts) == size and all(map(_is_count, counts))):
        problems.append(f"docs_per_rank: must be null or {size} non-negative integers (one per rank), got {_short(counts)}")


def _random_history(obj: dict, problems: list[str]) -> None:
    """Top-level ``random_history``: null, or ``{"tokenizer": str | null, "length_ratio": {mean, min, max}}``: the
    tokenizer the random text's length was matched in (null: a model-independent count) and its length over the
    textual CE's."""
    value = obj.get("random_history")
    if value is None:
        return
    if not isinstance(value, dict):
        problems.append(f"random_history: must be an object {{tokenizer, length_ratio}} or null, got {_short(value)}")
        return
    _keys(value, ("tokenizer", "length_ratio"), "random_history", problems)
    if value.get("tokenizer") is not None:
        _string(value, "tokenizer", "random_history", problems, max_len=1000)
    ratio = value.get("length_ratio")
    if not isinstance(ratio, dict):
        problems.append(f"random_history.length_ratio: must be an object {{mean, min, max}}, got {_short(ratio)}")
        return
    _keys(ratio, ("mean", "min", "max"), "random_history.length_ratio", problems)
    numbers = [ratio.get(k) for k in ("min", "mean", "max")]
    if not all(_is_number(x) and x >= 0 for x in numbers):
        problems.append(f"random_history.length_ratio: min, mean and max must be numbers >= 0, got {_short(ratio)}")
    elif not (numbers[0] <= numbers[1] + TOLERANCE and numbers[1] <= numbers[2] + TOLERANCE):
        problems.append(f"random_history.length_ratio: needs min <= mean <= max, got {_short(ratio)}")


def _block(block: Any, path: str, problems: list[str]) -> int | None:
    """Check one language's results; return its ``n`` when valid."""
    if not isinstance(block, dict):
        problems.append(f"{path}: must be an object")
        return None
    _keys(block, BLOCK_KEYS, path, problems, optional=(ES_FAILURES, "n_judged", POSTERIOR_FAILURES, "letter_mass"))
    n = block.get("n")
    if "n" in block and not (_is_count(n) and n > 0):
        problems.append(f"{path}.n: must be a positive integer (number of cases), got {n!r}")
        n = None
    for key in RATE_KEYS:
        _rate(block.get(key), f"{path}.{key}", problems)
        _interval(block, key, path, problems, is_rate=True)
    for key in (*COUNT_KEYS, ES_FAILURES, "n_judged", POSTERIOR_FAILURES):
        per_case = 1 + 2 * len(VISUAL_CE_TYPES) if key in (ES_FAILURES, POSTERIOR_FAILURES) else 1
        _count(block.get(key), f"{path}.{key}", n, per_case, problems)
    _letter_mass(block.get("letter_mass"), f"{path}.letter_mass", problems)
    judged, failed = block.get("n_judged"), block.get("judge_failures")
    if _is_count(judged) and _is_count(failed) and n is not None and judged + failed > n:
        problems.append(f"{path}.n_judged: {judged} judged + {failed} judge failures is more than n = {n}")
    if judged == 0 and _is_number(block.get("ddx_coverage")):
        problems.append(f"{path}.n_judged: 0 although ddx_coverage is given")
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
    _keys(model, MODEL_KEYS, "model", problems, optional=("setup",))
    _string(model, "name", "model", problems, max_len=MAX_MODEL_NAME)
    _setup(model.get("setup"), problems)
    if "type" in model and model["type"] not in MODEL_TYPES:
        problems.append(f"model.type: {model['type']!r} is not one of {', '.join(MODEL_TYPES)}")
    params = model.get("params_b")
    if params is not None and not (_is_number(params) and params > 0):
        problems.append(f"model.params_b: must be a positive number (billions of parameters) or null, got {params!r}")


def _setup(setup: Any, problems: list[str]) -> None:
    """``model.setup``: null (an endpoint) or how the transformers backend ran the model."""
    if setup is None:
        return
    if not isinstance(setup, dict):
        problems.append("model.setup: must be null or an object {" + ", ".join(SETUP_KEYS) + "}")
        return
    _keys(setup, SETUP_KEYS, "model.setup", problems)
    for key in ("family", "model_type", "template", "image_slot"):
        if key in setup:
            _string(setup, key, "model.setup", problems, max_len=200)
    fast_paths = setup.get("fast_paths")
    if "fast_paths" in setup and not (isinstance(fast_paths, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in fast_paths.items())):
        problems.append("model.setup.fast_paths: must map each fast path to a string (on, or off: why)")


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


def _too_deep(obj: Any) -> str | None:
    """The path of the first value nested deeper than MAX_DEPTH, else None; iterative, so any depth is safe."""
    stack: list[tuple[Any, str, int]] = [(obj, "<file>", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return path
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        stack += [(child, f"{path}.{key}" if isinstance(value, dict) else f"{path}[{key}]", depth + 1)
                  for key, child in items]
    return None


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for problem lines about untrusted values."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _judge(obj: dict, problems: list[str]) -> None:
    """``judge``: {name, model, prompt_version} (model and prompt_version null for the lexical judge), or a plain name."""
    judge = obj.get("judge")
    if isinstance(judge, str) or "judge" not in obj:
        _string(obj, "judge", "", problems, max_len=200)
        return
    if not isinstance(judge, dict):
        problems.append(f"judge: must be an object {{name, model, prompt_version}} or a string, got {_short(judge)}")
        return
    _keys(judge, JUDGE_KEYS, "judge", problems)
    _string(judge, "name", "judge", problems, max_len=300)
    for key in ("model", "prompt_version"):
        if judge.get(key) is not None:
            _string(judge, key, "judge", problems, max_len=200)


def _image_budget(obj: dict, problems: list[str]) -> None:
    """``image_budget``: {"max_pixels": a positive integer, or null for the model's default}."""
    if "image_budget" not in obj:
        return
    budget = obj["image_budget"]
    if not isinstance(budget, dict):
        problems.append(f"image_budget: must be an object such as {{\"max_pixels\": 1003520}}, got {_short(budget)}")
        return
    _keys(budget, ("max_pixels",), "image_budget", problems)
    pixels = budget.get("max_pixels")
    if pixels is not None and not (_is_count(pixels) and pixels > 0):
        problems.append(f"image_budget.max_pixels: must be a positive integer or null, got {_short(pixels)}")


def _ci(obj: dict, problems: list[str]) -> None:
    """``ci``: {rate: {"method": one of CI_METHODS, "level": a number in (0, 1), and the method's settings}}."""
    if "ci" not in obj:
        return
    ci = obj["ci"]
    if not isinstance(ci, dict):
        problems.append(f"ci: must be an object {{rate: {{method, level}}}}, got {_short(ci)}")
        return
    for rate, spec in ci.items():
        where = f"ci.{rate}"
        if rate not in CI_RATES:
            problems.append(f"{where}: unknown rate (expected one of {', '.join(CI_RATES)})")
        elif not isinstance(spec, dict):
            problems.append(f"{where}: must be an object {{method, level, ...}}, got {_short(spec)}")
        elif spec.get("method") not in CI_METHODS:
            problems.append(f"{where}.method: {_short(spec.get('method'))} is not one of {', '.join(CI_METHODS)}")
        elif not (_is_number(spec.get("level")) and 0 < spec["level"] < 1):
            problems.append(f"{where}.level: must be a number between 0 and 1, got {_short(spec.get('level'))}")
        else:
            for key, value in spec.items():
                if key not in ("method", "level") and not (_is_count(value) or isinstance(value, str) and len(value) <= 200):
                    problems.append(f"{where}.{key}: must be a non-negative integer or a short string, got {_short(value)}")


def validate_results(obj: Any, known_datasets: KnownDatasets | None = None) -> list[str]:
    """Every problem of a §7 results file, one line each; empty when valid.

    ``known_datasets`` maps a dataset revision to ``{"name", "n_cases": {lang: count}}``; when
    given, the file's revision must be one of them, and each language it reports must hold all of
    that language's cases at the revision (a run on one language is a full run of it; a run on
    some of a language's cases is refused).
    """
    if not isinstance(obj, dict):
        return [f"<file>: must be a JSON object, got {type(obj).__name__}"]
    deep = _too_deep(obj)
    if deep:
        return [f"{deep}: nested deeper than {MAX_DEPTH} levels (a results file needs 5)"]
    problems: list[str] = []
    _keys(obj, TOP_KEYS, "", problems, optional=OPTIONAL_TOP_KEYS)
    _string(obj, "medsyn_version", "", problems, max_len=200)
    _judge(obj, problems)
    if "command" in obj and not isinstance(obj["command"], str):
        problems.append(f"command: must be a string, got {_short(obj['command'])}")
    _image_budget(obj, problems)
    _ci(obj, problems)
    _posterior(obj, problems)
    _random_history(obj, problems)
    _parallel(obj, problems)
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
