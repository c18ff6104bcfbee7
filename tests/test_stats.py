"""Confidence intervals (Wilson, case bootstrap, Fisher z) and the es_gap / accuracy rank correlation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from medsyn.metrics.sensitivity import evidence_sensitivity
from medsyn.metrics.stats import es_gap_accuracy_correlation, es_gap_ci, es_gap_statistic, rho_ci, spearman, wilson_ci


def test_wilson_ci_brackets_the_rate_and_matches_the_formula() -> None:
    values = [True] * 30 + [False] * 20
    low, high = wilson_ci(values)
    # Wilson: (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), p = .6, n = 50
    z, n, p = 1.959963984540054, 50, 0.6
    centre, half = p + z**2 / (2 * n), z * (p * (1 - p) / n + z**2 / (4 * n**2)) ** 0.5
    assert (low, high) == pytest.approx(((centre - half) / (1 + z**2 / n), (centre + half) / (1 + z**2 / n)))
    assert wilson_ci([1, None, 0]) == wilson_ci([1, 0])  # None (judge failures) left out


def test_wilson_ci_keeps_its_width_at_0_and_100_percent() -> None:
    # a percentile bootstrap gives [0, 0] and [1, 1] here: no uncertainty from 8 cases
    assert wilson_ci([False] * 8) == pytest.approx((0.0, 0.3244), abs=1e-4)
    assert wilson_ci([True] * 8) == pytest.approx((0.6756, 1.0), abs=1e-4)
    assert wilson_ci([]) is None and wilson_ci([None, None]) is None
    with pytest.raises(ValueError, match="booleans or 0/1"):
        wilson_ci([0.5, 1])


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
    assert result["ci"] == pytest.approx(rho_ci(0.8, 4))
    assert spearman([1, 2], [2, 1])["rho"] is None and spearman([1, 2], [2, 1])["ci"] is None
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


def test_rho_ci_fisher_z_with_bonett_wright_error() -> None:
    # z = atanh(.6) = .6931, se = sqrt((1 + .18) / 7) = .4106, z ± 1.96 se -> tanh(-.1117), tanh(1.4979)
    assert rho_ci(0.6, 10) == pytest.approx((-0.1112, 0.9048), abs=1e-4)
    low, high = rho_ci(-0.3, 50)
    assert low < -0.3 < high and rho_ci(-0.3, 500)[1] - rho_ci(-0.3, 500)[0] < high - low
    assert rho_ci(0.5, 3) is None  # no standard error below 4 points
    assert rho_ci(1.0, 6) is None and spearman([1, 2, 3, 4], [2, 4, 6, 8])["ci"] is None  # |rho| = 1: no width


def test_spearman_p_value_is_exact_on_few_models() -> None:
    # 3 models in reverse order: 2 of the 3! pairings reach |rho| = 1, so p = 1/3 (the t approximation says 0)
    result = spearman([0.3, 0.2, 0.1], [0.2, 0.4, 0.6])
    assert result["rho"] == pytest.approx(-1.0) and result["p_value"] == pytest.approx(1 / 3) and result["ci"] is None
    # 4 points, rho = .8: pairings with |rho| >= .8 are 1 + 3 + 3 + 1 of 24
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4])["p_value"] == pytest.approx(8 / 24)
    many = np.random.default_rng(0).normal(size=(2, 12))
    assert spearman(*many.tolist())["p_value"] == pytest.approx(scipy_stats.spearmanr(*many).pvalue)
