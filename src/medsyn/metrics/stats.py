"""Seeded bootstrap confidence intervals and the es_gap / FDx accuracy rank correlation.

Intervals are percentile bootstraps from :func:`scipy.stats.bootstrap`; ``es_gap`` is
resampled by case (all of a case's CE types move together), since its cases are the
independent units.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from medsyn.data.schema import VISUAL_CE_TYPES

N_RESAMPLES = 2000
CONFIDENCE = 0.95


def bootstrap_ci(
    values: Sequence[float | bool | None],
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the mean of ``values`` (None entries are left out); None if empty.

    >>> bootstrap_ci([True, False, True, True], seed=0) == bootstrap_ci([1, 0, 1, 1], seed=0)
    True
    """
    data = np.array([float(v) for v in values if v is not None])
    if data.size == 0:
        return None
    if np.all(data == data[0]):
        return (float(data[0]), float(data[0]))
    result = stats.bootstrap((data,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                             method="percentile", rng=np.random.default_rng(seed))
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


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


def spearman(x: Sequence[float], y: Sequence[float]) -> dict[str, float | int | None]:
    """Spearman's rho and its p-value (:func:`scipy.stats.spearmanr`); None below 3 points or for a constant input."""
    if len(x) != len(y):
        raise ValueError(f"length mismatch: x has {len(x)} values but y has {len(y)}")
    n = len(x)
    if n < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return {"rho": None, "p_value": None, "n": n}
    result = stats.spearmanr(x, y)
    return {"rho": float(result.statistic), "p_value": float(result.pvalue), "n": n}


def es_gap_accuracy_correlation(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Spearman correlation of ``es_gap`` and ``fdx_accuracy`` across models' results (one dict each).

    Results missing either value (None) are left out; ``n`` says how many were used.
    The paper's finding is a positive association of a *smaller* gap with accuracy.

    >>> es_gap_accuracy_correlation([{"es_gap": g, "fdx_accuracy": a} for g, a in [(0.3, 0.2), (0.1, 0.6), (0.2, 0.4)]])["rho"]
    -1.0
    """
    pairs = [(r["es_gap"], r["fdx_accuracy"]) for r in results
             if r.get("es_gap") is not None and r.get("fdx_accuracy") is not None]
    return spearman([p[0] for p in pairs], [p[1] for p in pairs])
