"""Evidence Sensitivity (DESIGN §5): how much each visual CE type moves the answer posterior.

For a case with visual CE type c and divergence D:

* image(c) = D(p_full, p_absent:c) — the CE shown as images versus removed;
* text(c)  = D(p_text:c, p_absent:c) — the CE shown as text findings versus removed;

averaged over the cases having c, then gap(c) = text(c) - image(c); ``es_image``,
``es_text`` and ``es_gap`` are macro means over the CE types present. Divergences
(natural log): ``js`` Jensen-Shannon; ``kl`` KL(p_with || p_without) — a ValueError where
p_without is 0 and p_with is not (KL is infinite there; no smoothing is applied); ``tv`` total variation; ``gold_drop``
p_with[gold] - p_without[gold] (signed). This formalization is the project's: the
paper's exact formula is not public.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np
from scipy.special import rel_entr

from medsyn.data.schema import FULL, MAX_OPTIONS, MIN_OPTIONS, VISUAL_CE_TYPES, parse_condition

DIVERGENCES = ("js", "kl", "tv", "gold_drop")
SUM_TOLERANCE = 1e-4
"""A row whose probabilities sum further than this from 1 is not a distribution; closer rows are renormalized."""


MIN_LETTER_MASS = 0.5
"""A posterior whose letter mass is below this is a *posterior failure*, left out of ES.

Letter mass: with log-probabilities, the total probability of every token variant of the
option letters (:func:`letter_of_token`) before renormalizing over the letters; with sampled
answers, the share of samples that parse to an option letter. Below one half the model mostly
answers something else ("The", ``**``, ``<think>``) and the renormalized letters are noise."""


def letter_of_token(token: str) -> str | None:
    """The capital letter a token stands for once whitespace and punctuation are stripped (" A", "(A", "**A", "Ａ").

    The one definition of a letter's token variants: both backends merge exactly these tokens.

    >>> [letter_of_token(t) for t in ("A", " B", "(C", "**D", "The", "AB")]
    ['A', 'B', 'C', 'D', None, None]
    """
    kept = [ch for ch in unicodedata.normalize("NFKC", token) if unicodedata.category(ch)[0] not in "PZC"]
    text = "".join(ch for ch in kept if unicodedata.category(ch) != "Sk")
    return text if len(text) == 1 and "A" <= text <= "Z" else None


def posterior_failed(response: Any) -> bool:
    """True when a log-likelihood response's posterior rests on no parsed answer.

    The endpoint backend counts ``unparseable_samples`` out of ``n_samples`` (no option letter
    among the top tokens, or no sampled answer with a letter) and falls back to a uniform
    posterior: that posterior is a guess, not the model's answer. Other backends never fail.
    """
    return getattr(response, "unparseable_samples", 0) >= getattr(response, "n_samples", 1) > 0


def low_letter_mass(response: Any) -> bool:
    """True for a *posterior failure*: a parsed posterior whose ``letter_mass`` is below :data:`MIN_LETTER_MASS`.

    A response without ``letter_mass`` (not measured) never fails here; one that failed to
    parse at all counts as a parse failure (:func:`posterior_failed`), not here.
    """
    mass = getattr(response, "letter_mass", None)
    return mass is not None and mass < MIN_LETTER_MASS and not posterior_failed(response)


def usable_es_rows(case_ids: list[str], conditions: list[str], failed: list[bool]) -> list[bool]:
    """Which Evidence Sensitivity rows to score: a (case, CE type) pair whose ``full``,
    ``absent:<type>`` or ``text:<type>`` posterior failed is left out whole, so no ES value
    rests on a guessed posterior; a case whose ``full`` posterior failed is left out whole.
    """
    types = [parse_condition(name).ce_type for name in conditions]
    lost_case = {c for c, name, bad in zip(case_ids, conditions, failed) if bad and name == FULL}
    lost_pair = {(c, t) for c, t, bad in zip(case_ids, types, failed) if bad and t is not None}
    return [
        not bad and c not in lost_case and (c, t) not in lost_pair
        for c, t, bad in zip(case_ids, types, failed)
    ]


def posterior(logprobs: Sequence[float]) -> list[float]:
    """The option distribution from option log-probabilities (normalised, numerically stable softmax).

    >>> posterior([0.0, 0.0])
    [0.5, 0.5]
    """
    logp = np.asarray(logprobs, dtype=np.float64)
    p = np.exp(logp - logp.max())
    return (p / p.sum()).tolist()


def pairwise_divergence(p: np.ndarray, q: np.ndarray, gold: np.ndarray, kind: str = "js") -> np.ndarray:
    """Row-wise divergence between distributions ``p`` (with the CE) and ``q`` (without it).

    >>> round(float(pairwise_divergence(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]), np.array([0]), "tv")[0]), 3)
    0.5
    """
    if kind == "js":
        m = (p + q) / 2
        return 0.5 * rel_entr(p, m).sum(axis=1) + 0.5 * rel_entr(q, m).sum(axis=1)
    if kind == "kl":
        return rel_entr(p, q).sum(axis=1)
    if kind == "tv":
        return 0.5 * np.abs(p - q).sum(axis=1)
    if kind == "gold_drop":
        rows = np.arange(len(p))
        return p[rows, gold] - q[rows, gold]
    raise ValueError(f"unknown divergence {kind!r}: expected one of {', '.join(DIVERGENCES)}")


def _row(i: int, case_ids: Sequence[str], conditions: Sequence[str]) -> str:
    return f"row {i} (case {case_ids[i]!r}, condition {conditions[i]!r})"


def _matrix(probabilities: Sequence[Sequence[float]], case_ids: Sequence[str], conditions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded (rows, max options) array of distributions, and each row's option count."""
    n = len(probabilities)
    try:
        lengths = np.fromiter(map(len, probabilities), dtype=np.int64, count=n)
        flat = np.fromiter(chain.from_iterable(probabilities), dtype=np.float64, count=int(lengths.sum()))
    except (TypeError, ValueError):
        for i, row in enumerate(probabilities):
            try:
                np.asarray(row, dtype=np.float64).reshape(-1)[: len(row)]
            except (TypeError, ValueError):
                raise ValueError(f"{_row(i, case_ids, conditions)}: predictions: not a list of numbers: {row!r}") from None
        raise
    bad = np.flatnonzero((lengths < MIN_OPTIONS) | (lengths > MAX_OPTIONS))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{_row(i, case_ids, conditions)}: predictions: {lengths[i]} probabilities, expected {MIN_OPTIONS} to {MAX_OPTIONS}")
    row_of = np.repeat(np.arange(n), lengths)
    bad = np.flatnonzero(~np.isfinite(flat) | (flat < 0))
    if bad.size:
        i = int(row_of[bad[0]])
        raise ValueError(f"{_row(i, case_ids, conditions)}: predictions: not a distribution (negative or non-finite value {flat[bad[0]]!r})")
    matrix = np.zeros((n, int(lengths.max())))
    matrix[np.arange(matrix.shape[1]) < lengths[:, None]] = flat
    sums = matrix.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1) > SUM_TOLERANCE)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{_row(i, case_ids, conditions)}: predictions: not a distribution (sums to {sums[i]:.6g})")
    return matrix / sums[:, None], lengths


def evidence_sensitivity(
    probabilities: Sequence[Sequence[float]],
    golds: Sequence[int],
    case_ids: Sequence[str],
    conditions: Sequence[str],
    divergence: str = "js",
) -> dict:
    """Evidence Sensitivity over rows of (option distribution, gold index, case id, condition).

    Rows of conditions other than ``full``, ``absent:<type>`` and ``text:<type>`` are
    checked and ignored. Every case needs a ``full`` row; a case with ``absent:c`` needs
    ``text:c`` and the reverse. Raises ValueError naming the first bad row.

    Returns ``evidence_sensitivity`` ({type: {"image", "text", "gap"}}), ``es_image``,
    ``es_text``, ``es_gap`` (None when no case has a type pair), ``n_cases`` (cases with a
    pair), ``n_cases_by_type``, ``divergence`` and ``per_case`` (one entry per case and
    type: ``case_id``, ``ce_type``, ``image``, ``text``) for a case-level bootstrap.

    >>> r = evidence_sensitivity([[1.0, 0.0], [0.5, 0.5], [0.75, 0.25]], [0, 0, 0],
    ...                          ["c1", "c1", "c1"], ["full", "absent:ct", "text:ct"], "tv")
    >>> r["evidence_sensitivity"], r["es_gap"]
    ({'ct': {'image': 0.5, 'text': 0.25, 'gap': -0.25}}, -0.25)
    """
    kind = divergence
    if kind not in DIVERGENCES:
        raise ValueError(f"unknown divergence {kind!r}: expected one of {', '.join(DIVERGENCES)}")
    n = len(probabilities)
    for name, values in (("references", golds), ("case_ids", case_ids), ("conditions", conditions)):
        if len(values) != n:
            raise ValueError(f"length mismatch: predictions has {n} rows but {name} has {len(values)}")
    if n == 0:
        raise ValueError("no rows to score")

    parsed = {}
    for i, name in enumerate(conditions):
        if name not in parsed:
            try:
                parsed[name] = parse_condition(name)
            except (ValueError, TypeError, AttributeError) as error:
                raise ValueError(f"{_row(i, case_ids, conditions)}: conditions: {error}") from None
    matrix, lengths = _matrix(probabilities, case_ids, conditions)

    gold = np.asarray(golds)
    if gold.dtype.kind not in "iu":
        i = next(i for i, g in enumerate(golds) if isinstance(g, bool) or not isinstance(g, (int, np.integer)))
        raise ValueError(f"{_row(i, case_ids, conditions)}: references: gold option index must be an integer, got {golds[i]!r}")
    bad = np.flatnonzero((gold < 0) | (gold >= lengths))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{_row(i, case_ids, conditions)}: references: gold index {gold[i]} outside 0..{lengths[i] - 1}")

    case_index: dict[str, int] = {}
    case = np.fromiter((case_index.setdefault(c, len(case_index)) for c in case_ids), dtype=np.int64, count=n)
    first = np.full(len(case_index), -1)
    first[case[::-1]] = np.arange(n)[::-1]  # first row of each case
    bad = np.flatnonzero((lengths != lengths[first[case]]) | (gold != gold[first[case]]))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{_row(i, case_ids, conditions)}: option count or gold differs from the case's row {first[case[i]]}")

    n_types = len(VISUAL_CE_TYPES)
    type_code = {t: k for k, t in enumerate(VISUAL_CE_TYPES)}
    # condition code per row: 0 full, 1 absent:c, 2 text:c, 3+ one per other condition (text, no_history,
    # random_history: checked, never paired); with its CE type
    others: dict[str, int] = {}
    code_of = {name: (0 if c.name == FULL else 1 if c.kind == "absent" else 2 if c.kind == "text_type"
                      else 3 + others.setdefault(name, len(others)), type_code.get(c.ce_type, 0))
               for name, c in parsed.items()}
    codes = np.array([code_of[name] for name in conditions], dtype=np.int64).reshape(n, 2)
    kind_code, ce = codes[:, 0], codes[:, 1]

    key = (case * (3 + len(others)) + kind_code) * n_types + ce
    order = np.argsort(key, kind="stable")
    dup = np.flatnonzero(key[order][1:] == key[order][:-1])
    if dup.size:
        i = int(order[dup[0] + 1])
        raise ValueError(f"{_row(i, case_ids, conditions)}: duplicate condition for this case")

    full_row = np.full(len(case_index), -1)
    is_full = np.flatnonzero(kind_code == 0)
    full_row[case[is_full]] = is_full
    missing = np.flatnonzero(full_row < 0)
    if missing.size:
        i = int(first[missing[0]])
        raise ValueError(f"{_row(i, case_ids, conditions)}: case {case_ids[i]!r} has no 'full' row")

    pair_keys = {}
    for kind_value in (1, 2):
        rows = np.flatnonzero(kind_code == kind_value)
        pair_keys[kind_value] = (case[rows] * n_types + ce[rows], rows)
    absent_keys, absent_rows = pair_keys[1]
    text_keys, text_rows = pair_keys[2]
    for keys, rows, other_keys, needed in ((absent_keys, absent_rows, text_keys, "text"), (text_keys, text_rows, absent_keys, "absent")):
        lonely = np.flatnonzero(~np.isin(keys, other_keys))
        if lonely.size:
            i = int(rows[lonely[0]])
            raise ValueError(f"{_row(i, case_ids, conditions)}: no '{needed}:{VISUAL_CE_TYPES[ce[i]]}' row for this case")
    a_order, t_order = np.argsort(absent_keys), np.argsort(text_keys)
    a, t = absent_rows[a_order], text_rows[t_order]
    pair_case, pair_type = case[a], ce[a]
    f = full_row[pair_case]

    image = pairwise_divergence(matrix[f], matrix[a], gold[a], kind)
    text = pairwise_divergence(matrix[t], matrix[a], gold[a], kind)
    for values, with_rows in ((image, f), (text, t)):
        infinite = np.flatnonzero(~np.isfinite(values))
        if infinite.size:
            k = int(infinite[0])
            raise ValueError(
                f"{_row(int(a[k]), case_ids, conditions)}: predictions: KL divergence from row {int(with_rows[k])} is "
                "infinite (an option with probability 0 here has probability > 0 there); "
                "smooth the posteriors or use divergence 'js'"
            )

    counts = np.bincount(pair_type, minlength=n_types)
    image_mean = np.bincount(pair_type, weights=image, minlength=n_types)
    text_mean = np.bincount(pair_type, weights=text, minlength=n_types)
    present = np.flatnonzero(counts)
    table = {}
    for k in present:
        im, tx = float(image_mean[k] / counts[k]), float(text_mean[k] / counts[k])
        table[VISUAL_CE_TYPES[k]] = {"image": im, "text": tx, "gap": tx - im}
    macro = {key_: (float(np.mean([row[key_] for row in table.values()])) if table else None) for key_ in ("image", "text", "gap")}
    case_names = list(case_index)
    return {
        "evidence_sensitivity": table,
        "es_image": macro["image"],
        "es_text": macro["text"],
        "es_gap": macro["gap"],
        "n_cases": int(np.unique(pair_case).size),
        "n_cases_by_type": {VISUAL_CE_TYPES[k]: int(counts[k]) for k in present},
        "divergence": kind,
        "per_case": {
            "case_id": [case_names[c] for c in pair_case.tolist()],
            "ce_type": [VISUAL_CE_TYPES[k] for k in pair_type.tolist()],
            "image": image.tolist(),
            "text": text.tolist(),
        },
    }
