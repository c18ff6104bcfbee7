"""Bootstrap confidence intervals and the es_gap / accuracy rank correlation."""

from __future__ import annotations

import numpy as np
import pytest

from medsyn.metrics.sensitivity import evidence_sensitivity
from medsyn.metrics.stats import bootstrap_ci, es_gap_accuracy_correlation, es_gap_ci, es_gap_statistic, spearman


def test_bootstrap_ci_is_seeded_and_brackets_the_mean() -> None:
    values = [True] * 30 + [False] * 20
    a, b = bootstrap_ci(values, seed=1), bootstrap_ci(values, seed=1)
    assert a == b
    low, high = a
    assert 0.0 <= low < 0.6 < high <= 1.0
    # the binomial standard error is sqrt(.6*.4/50) = .069: a 95 % interval is about +-.136
    assert high - low == pytest.approx(2 * 1.96 * (0.6 * 0.4 / 50) ** 0.5, abs=0.04)
    continuous = np.random.default_rng(0).normal(size=40).tolist()
    assert bootstrap_ci(continuous, seed=1) == bootstrap_ci(continuous, seed=1)
    assert bootstrap_ci(continuous, seed=2) != bootstrap_ci(continuous, seed=1)  # another seed, another resample


def test_bootstrap_ci_edge_cases() -> None:
    assert bootstrap_ci([]) is None
    assert bootstrap_ci([None, None]) is None
    assert bootstrap_ci([1, 1, 1]) == (1.0, 1.0)
    assert bootstrap_ci([1, None, 0]) == bootstrap_ci([1, 0])  # None (judge failures) left out


def per_case_rows():
    # case a: ct gap +.2, mri gap -.1; case b: ct gap +.4; case c: mri gap +.3
    return {"case_id": ["a", "a", "b", "c"], "ce_type": ["ct", "mri", "ct", "mri"],
            "image": [0.1, 0.3, 0.0, 0.1], "text": [0.3, 0.2, 0.4, 0.4]}


def test_es_gap_statistic_by_hand() -> None:
    statistic, n = es_gap_statistic(per_case_rows())
    assert n == 3
    # all cases once: ct mean (.2+.4)/2 = .3, mri mean (-.1+.3)/2 = .1, macro .2
    assert statistic(np.array([0, 1, 2]))[0] == pytest.approx(0.2)
    # resample (a, a, b): ct (.2+.2+.4)/3, mri -.1 -> macro (.8/3 - .1)/2
    assert statistic(np.array([[0, 0, 1]]))[0] == pytest.approx((0.8 / 3 - 0.1) / 2)
    # resample (b, b, b): only ct present -> .4
    assert statistic(np.array([[1, 1, 1]]))[0] == pytest.approx(0.4)


def test_es_gap_statistic_matches_evidence_sensitivity_on_duplicated_cases() -> None:
    rng = np.random.default_rng(0)
    rows, cases = [], [f"k{i}" for i in range(6)]
    for i, case in enumerate(cases):
        types = ["ct", "mri"] if i % 2 else ["laboratory"]
        for condition in ["full"] + [f"{kind}:{t}" for t in types for kind in ("absent", "text")]:
            p = rng.dirichlet(np.ones(4))
            rows.append((case, condition, p.tolist()))
    result = evidence_sensitivity([r[2] for r in rows], [0] * len(rows), [r[0] for r in rows], [r[1] for r in rows])
    statistic, _ = es_gap_statistic(result["per_case"])
    draw = [0, 0, 3, 5, 5, 5]
    case_order = list(dict.fromkeys(result["per_case"]["case_id"]))
    duplicated = [(f"{case_order[d]}#{j}", c, p) for j, d in enumerate(draw) for case, c, p in rows if case == case_order[d]]
    expected = evidence_sensitivity([r[2] for r in duplicated], [0] * len(duplicated),
                                    [r[0] for r in duplicated], [r[1] for r in duplicated])["es_gap"]
    assert statistic(np.array([draw]))[0] == pytest.approx(expected, abs=1e-12)


def test_es_gap_ci() -> None:
    ci = es_gap_ci(per_case_rows(), seed=0)
    assert ci == es_gap_ci(per_case_rows(), seed=0)
    assert ci[0] <= 0.2 <= ci[1]
    assert es_gap_ci({"case_id": [], "ce_type": [], "image": [], "text": []}) is None
    one = {"case_id": ["a"], "ce_type": ["ct"], "image": [0.1], "text": [0.3]}
    assert es_gap_ci(one) == pytest.approx((0.2, 0.2))


def test_spearman_by_hand() -> None:
    # d = (0, 1, -1, 0): rho = 1 - 6 * 2 / (4 * 15) = 0.8
    result = spearman([1, 2, 3, 4], [1, 3, 2, 4])
    assert result["rho"] == pytest.approx(0.8) and result["n"] == 4 and 0 < result["p_value"] < 1
    assert spearman([1, 2], [2, 1])["rho"] is None
    assert spearman([1, 1, 1], [1, 2, 3])["rho"] is None
    with pytest.raises(ValueError):
        spearman([1, 2, 3], [1, 2])


def test_es_gap_accuracy_correlation_skips_missing() -> None:
    results = [
        {"es_gap": 0.30, "fdx_accuracy": 0.20},
        {"es_gap": 0.10, "fdx_accuracy": 0.60},
        {"es_gap": 0.20, "fdx_accuracy": 0.50},
        {"es_gap": 0.05, "fdx_accuracy": 0.40},
        {"es_gap": None, "fdx_accuracy": 0.90},
    ]
    # ranks of gap (4, 2, 3, 1) vs accuracy (1, 4, 3, 2): d = (3, -2, 0, -1), sum d^2 = 14, rho = 1 - 84/60
    result = es_gap_accuracy_correlation(results)
    assert result["n"] == 4 and result["rho"] == pytest.approx(1 - 6 * 14 / 60)
