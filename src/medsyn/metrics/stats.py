"""Confidence intervals, and the es_gap / FDx accuracy rank correlation across models.

Rates (``fdx_accuracy``, ``ddx_coverage``) get the Wilson score interval, which keeps its
coverage at 0 % and 100 % (a percentile bootstrap has zero width there). ``es_gap`` gets a
seeded percentile bootstrap from :func:`scipy.stats.bootstrap`, resampled by case (all of a
case's CE types move together), since its cases are the independent units. Spearman's rho
gets a Fisher-z interval with the Bonett-Wright standard error. :data:`RATE_CI` and
:data:`ES_GAP_CI` describe the methods as results files record them (DESIGN §7 ``ci``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from medsyn.data.schema import VISUAL_CE_TYPES

N_RESAMPLES = 2000
CONFIDENCE = 0.95
RATE_CI: dict[str, Any] = {"method": "wilson", "level": CONFIDENCE}
"""The interval of a rate (``fdx_accuracy_ci``, ``ddx_coverage_ci``)."""
ES_GAP_CI: dict[str, Any] = {"method": "case-bootstrap-percentile", "level": CONFIDENCE, "n_resamples": N_RESAMPLES}
"""The interval of ``es_gap`` (``es_gap_ci``); results files add the seed."""
SPEARMAN_CI: dict[str, Any] = {"method": "fisher-z-bonett-wright", "level": CONFIDENCE}
"""The interval of Spearman's rho across models."""


def wilson_ci(values: Sequence[float | bool | None], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Wilson score interval of the share of true ``values`` (None entries are left out); None if empty.

    >>> [round(x, 3) for x in wilson_ci([False] * 10)]
    [0.0, 0.278]
    """
    data = [v for v in values if v is not None]
    if not data:
        return None
    if any(v not in (0, 1) for v in data):
        raise ValueError("wilson_ci: values must be booleans or 0/1 (None for a missing one)")
    interval = stats.binomtest(int(sum(data)), len(data)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(interval.low), float(interval.high))


def es_gap_statistic(per_case: Mapping[str, Sequence[Any]]) -> tuple[Callable[[np.ndarray], np.ndarray], int]:
    """``es_gap`` as a function of resampled case indices (shape (..., n_cases)), and the number of cases.

    Row r of the argument lists the cases drawn for resample r; a case drawn k times counts k times.
    """
    case_index: dict[str, int] = {}
    case = np.array([case_index.setdefault(c, len(case_index)) for c in per_case["case_id"]], dtype=np.int64)
    type_code = {t: k for k, t in enumerate(VISUAL_CE_TYPES)}
    onehot = np.zeros((len(case), len(VISUAL_CE_TYPES)))
    onehot[np.arange(len(case)), [type_code[t] for t in per_case["ce_type"]]] = 1.0
    gap = np.asarray(per_case["text"], dtype=float) - np.asarray(per_case["image"], dtype=float)
    n_cases = len(case_index)

    def statistic(sample: np.ndarray, axis: int = -1) -> np.ndarray:
        sample = np.atleast_2d(sample)
        weights = np.zeros((sample.shape[0], n_cases))
        np.add.at(weights, (np.arange(sample.shape[0])[:, None], sample), 1.0)
        pair_weights = weights[:, case]
        counts = pair_weights @ onehot
        sums = (pair_weights * gap) @ onehot
        means = np.where(counts > 0, sums / np.where(counts > 0, counts, 1), np.nan)
        return np.nanmean(means, axis=1)

    return statistic, n_cases


def es_gap_ci(
    per_case: Mapping[str, Sequence[Any]],
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> tuple[float, float] | None:
    """Case-level percentile bootstrap CI of ``es_gap`` from ``evidence_sensitivity(...)["per_case"]``; None if empty."""
    if not per_case["case_id"]:
        return None
    statistic, n_cases = es_gap_statistic(per_case)
    cases = np.arange(n_cases)
    if n_cases == 1:
        point = float(statistic(cases)[0])
        return (point, point)
    result = stats.bootstrap((cases,), statistic, n_resamples=n_resamples, confidence_level=confidence,
                             method="percentile", vectorized=True, batch=200, rng=np.random.default_rng(seed))
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


EXACT_P_MAX_N = 8
"""Up to this many points the p-value of rho is exact (every pairing: 8! = 40320); above, scipy's t approximation."""


def spearman(x: Sequence[float], y: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Spearman's rho (:func:`scipy.stats.spearmanr`), its two-sided p-value and its interval ``ci`` (:func:`rho_ci`).

    rho and p are None below 3 points or for a constant input. The p-value is exact up to
    :data:`EXACT_P_MAX_N` points (the t approximation gives p = 0 for rho = 1 on 3 models).
    """
    if len(x) != len(y):
        raise ValueError(f"length mismatch: x has {len(x)} values but y has {len(y)}")
    n = len(x)
    if n < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return {"rho": None, "p_value": None, "ci": None, "n": n}
    result = stats.spearmanr(x, y)
    rho = float(result.statistic)
    p_value = _exact_p(x, y, rho) if n <= EXACT_P_MAX_N else float(result.pvalue)
    return {"rho": rho, "p_value": p_value, "ci": rho_ci(rho, n, confidence), "n": n}


def _exact_p(x: Sequence[float], y: Sequence[float], rho: float) -> float:
    """Share of the pairings of x with y whose |rho| reaches |``rho``| (rho is Pearson's r of the mid-ranks)."""
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    pairings = ry[np.array(list(itertools.permutations(range(len(ry)))))]
    rx, pairings = rx - rx.mean(), pairings - ry.mean()
    rhos = pairings @ rx / (np.linalg.norm(rx) * np.linalg.norm(pairings, axis=1))
    return float(np.mean(np.abs(rhos) >= abs(rho) - 1e-12))


def rho_ci(rho: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Fisher-z interval of Spearman's rho with Bonett and Wright's (2000) standard error sqrt((1 + rho²/2) / (n - 3)).

    None below 4 points (no standard error) and at |rho| = 1, where the interval would have no width.

    >>> [round(v, 2) for v in rho_ci(0.6, 10)]
    [-0.11, 0.9]
    """
    if n < 4 or abs(rho) >= 1.0:
        return None
    half = stats.norm.ppf(0.5 + confidence / 2) * math.sqrt((1 + rho**2 / 2) / (n - 3))
    z = math.atanh(rho)
    return (math.tanh(z - half), math.tanh(z + half))


def es_gap_accuracy_correlation(results: Sequence[Mapping[str, Any]], seed: int = 0) -> dict[str, Any]:
    """Spearman correlation of ``es_gap`` and ``fdx_accuracy`` across models' results (one dict each), with
    ``bootstrap_ci`` over models (:func:`spearman_bootstrap_ci`).

    Results missing either value (None) are left out; ``n`` says how many were used.
    The paper's finding is a positive association of a *smaller* gap with accuracy.

    >>> es_gap_accuracy_correlation([{"es_gap": g, "fdx_accuracy": a} for g, a in [(0.3, 0.2), (0.1, 0.6), (0.2, 0.4)]])["rho"]
    -1.0
    """
    pairs = [(r["es_gap"], r["fdx_accuracy"]) for r in results
             if r.get("es_gap") is not None and r.get("fdx_accuracy") is not None]
    gaps, accuracies = [p[0] for p in pairs], [p[1] for p in pairs]
    return {**spearman(gaps, accuracies), "bootstrap_ci": spearman_bootstrap_ci(gaps, accuracies, seed=seed)}


def spearman_bootstrap_ci(
    x: Sequence[float], y: Sequence[float], seed: int = 0, n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of Spearman's rho over models (pairs (x_i, y_i) resampled together).

    Resamples with a constant side (rho undefined) are left out; None below 3 models or when
    no resample has a defined rho.
    """
    if len(x) != len(y):
        raise ValueError(f"length mismatch: x has {len(x)} values but y has {len(y)}")
    if len(x) < 3:
        return None
    rng = np.random.default_rng(seed)
    rx, ry = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    draws = rng.integers(0, len(rx), size=(n_resamples, len(rx)))
    ranks_x = stats.rankdata(rx[draws], axis=1)
    ranks_y = stats.rankdata(ry[draws], axis=1)
    ranks_x -= ranks_x.mean(axis=1, keepdims=True)
    ranks_y -= ranks_y.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(ranks_x, axis=1) * np.linalg.norm(ranks_y, axis=1)
    defined = norm > 0
    if not defined.any():
        return None
    rhos = np.clip((ranks_x * ranks_y).sum(axis=1)[defined] / norm[defined], -1.0, 1.0)  # rounding can pass ±1
    tail = (1 - confidence) / 2 * 100
    return (float(np.percentile(rhos, tail)), float(np.percentile(rhos, 100 - tail)))


def paired_difference_ci(
    before: Mapping[str, float], after: Mapping[str, float], seed: int = 0, n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """Mean of ``after - before`` over cases (dicts keyed by case id) with a percentile bootstrap resampling cases.

    Both sides must hold the same cases: each resample draws case ids and takes both scores of each.
    """
    if set(before) != set(after):
        missing = sorted(set(before) ^ set(after))
        raise ValueError(f"paired comparison: cases {missing[:5]} are scored under one condition only")
    cases = sorted(before)
    if not cases:
        raise ValueError("paired comparison: no cases")
    diff = [float(after[c]) - float(before[c]) for c in cases]
    return {"delta": float(np.mean(diff)), "ci": mean_bootstrap_ci(diff, seed, n_resamples, confidence), "n": len(cases)}


def mean_bootstrap_ci(
    values: Sequence[float], seed: int = 0, n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one per independent unit, e.g. case)."""
    if not len(values):
        raise ValueError("mean_bootstrap_ci: no values")
    data = np.asarray(values, dtype=float)
    means = data[np.random.default_rng(seed).integers(0, len(data), size=(n_resamples, len(data)))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    return (float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail)))
