"""Evidence Sensitivity (DESIGN §5): divergences and the per-type table, checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medsyn.metrics.sensitivity import evidence_sensitivity, pairwise_divergence


def one(p, q, kind, gold=0) -> float:
    return float(pairwise_divergence(np.array([p], float), np.array([q], float), np.array([gold]), kind)[0])


def test_js_by_hand() -> None:
    # m = (0.75, 0.25); JS = 0.5 * 0.5 ln(4/3) + 0.5 * ln(4/3) = 0.75 ln(4/3)
    assert one([0.5, 0.5], [1.0, 0.0], "js") == pytest.approx(0.75 * math.log(4 / 3), abs=1e-9)
    p, q = [0.7, 0.2, 0.1], [0.2, 0.5, 0.3]
    m = [(a + b) / 2 for a, b in zip(p, q)]
    expected = 0.5 * sum(a * math.log(a / c) for a, c in zip(p, m)) + 0.5 * sum(b * math.log(b / c) for b, c in zip(q, m))
    assert one(p, q, "js") == pytest.approx(expected, abs=1e-9)
    assert one(p, p, "js") == pytest.approx(0.0, abs=1e-12)
    assert one([1.0, 0.0], [0.0, 1.0], "js") == pytest.approx(math.log(2), abs=1e-9)  # the maximum, natural log


def test_kl_tv_gold_drop_by_hand() -> None:
    assert one([0.8, 0.2], [0.5, 0.5], "kl") == pytest.approx(0.8 * math.log(1.6) + 0.2 * math.log(0.4), abs=1e-9)
    assert one([0.5, 0.5], [1.0, 0.0], "kl") == math.inf  # p_without is 0 where p_with is not
    assert one([1.0, 0.0], [0.5, 0.5], "kl") == pytest.approx(math.log(2), abs=1e-9)
    assert one([0.8, 0.2], [0.5, 0.5], "tv") == pytest.approx(0.3, abs=1e-12)
    assert one([0.8, 0.2], [0.5, 0.5], "gold_drop", gold=1) == pytest.approx(-0.3, abs=1e-12)


def test_infinite_kl_raises_naming_the_rows() -> None:
    rows = [("c1", "full", [0.5, 0.5]), ("c1", "absent:ct", [0.5, 0.5]), ("c1", "text:ct", [0.5, 0.5]),
            ("c2", "full", [0.5, 0.5]), ("c2", "absent:ct", [1.0, 0.0]), ("c2", "text:ct", [1.0, 0.0])]
    with pytest.raises(ValueError, match=r"row 4 \(case 'c2', condition 'absent:ct'\).*from row 3 is infinite"):
        run(rows, divergence="kl")
    assert math.isfinite(run(rows, divergence="js")["es_image"])  # JS is bounded


def rows_two_cases():
    """Case c1 (ct, laboratory), case c2 (ct); plus global conditions that ES ignores."""
    return [
        ("c1", "full", [0.7, 0.2, 0.1]),
        ("c1", "absent:ct", [0.4, 0.4, 0.2]),
        ("c1", "text:ct", [0.6, 0.3, 0.1]),
        ("c1", "absent:laboratory", [0.7, 0.1, 0.2]),
        ("c1", "text:laboratory", [0.9, 0.05, 0.05]),
        ("c1", "no_history", [0.2, 0.2, 0.6]),
        ("c2", "text", [0.5, 0.5]),
        ("c2", "full", [0.9, 0.1]),
        ("c2", "absent:ct", [0.6, 0.4]),
        ("c2", "text:ct", [0.6, 0.4]),
    ]


def run(rows, golds=None, divergence="tv"):
    golds = golds if golds is not None else [0] * len(rows)
    return evidence_sensitivity([r[2] for r in rows], golds, [r[0] for r in rows], [r[1] for r in rows], divergence)


def test_table_by_hand_tv() -> None:
    result = run(rows_two_cases())
    # ct: c1 image tv((.7,.2,.1),(.4,.4,.2)) = .3, text tv((.6,.3,.1),(.4,.4,.2)) = .2
    #     c2 image tv((.9,.1),(.6,.4)) = .3, text 0
    # laboratory: c1 image tv((.7,.2,.1),(.7,.1,.2)) = .1, text tv((.9,.05,.05),(.7,.1,.2)) = .2
    table = result["evidence_sensitivity"]
    assert set(table) == {"ct", "laboratory"}
    assert table["ct"]["image"] == pytest.approx(0.3) and table["ct"]["text"] == pytest.approx(0.1)
    assert table["ct"]["gap"] == pytest.approx(-0.2)
    assert table["laboratory"]["image"] == pytest.approx(0.1) and table["laboratory"]["text"] == pytest.approx(0.2)
    assert table["laboratory"]["gap"] == pytest.approx(0.1)
    assert result["es_image"] == pytest.approx(0.2) and result["es_text"] == pytest.approx(0.15)
    assert result["es_gap"] == pytest.approx(-0.05)
    assert result["n_cases"] == 2 and result["n_cases_by_type"] == {"ct": 2, "laboratory": 1}
    per_case = result["per_case"]
    assert sorted(zip(per_case["case_id"], per_case["ce_type"])) == [("c1", "ct"), ("c1", "laboratory"), ("c2", "ct")]
    assert len(per_case["image"]) == len(per_case["text"]) == 3


def test_js_table_matches_row_by_row_and_order_does_not_matter() -> None:
    rows = rows_two_cases()
    result = run(rows, divergence="js")
    expected_ct_image = (one([0.7, 0.2, 0.1], [0.4, 0.4, 0.2], "js") + one([0.9, 0.1], [0.6, 0.4], "js")) / 2
    assert result["evidence_sensitivity"]["ct"]["image"] == pytest.approx(expected_ct_image, abs=1e-12)
    shuffled = run(rows[::-1], divergence="js")
    assert shuffled["es_gap"] == pytest.approx(result["es_gap"], abs=1e-12)


def test_gold_drop_uses_gold_index() -> None:
    rows = rows_two_cases()
    golds = [1 if r[0] == "c1" else 0 for r in rows]
    result = run(rows, golds, "gold_drop")
    # ct: c1 image .2-.4 = -.2, text .3-.4 = -.1; c2 image .9-.6 = .3, text 0
    assert result["evidence_sensitivity"]["ct"]["image"] == pytest.approx(0.05)
    assert result["evidence_sensitivity"]["ct"]["text"] == pytest.approx(-0.05)


def test_only_full_rows_gives_null_measurements() -> None:
    result = run([("c1", "full", [0.5, 0.5]), ("c1", "text", [0.6, 0.4])])
    assert result["es_gap"] is None and result["evidence_sensitivity"] == {} and result["n_cases"] == 0


def test_whole_case_conditions_together_are_ignored() -> None:
    base = [("c1", "full", [1.0, 0.0]), ("c1", "absent:ct", [0.5, 0.5]), ("c1", "text:ct", [0.75, 0.25])]
    extra = [("c1", "text", [0.6, 0.4]), ("c1", "no_history", [0.3, 0.7]), ("c1", "random_history", [0.2, 0.8])]
    assert run(base + extra, divergence="tv")["evidence_sensitivity"] == run(base, divergence="tv")["evidence_sensitivity"]
    with pytest.raises(ValueError, match=r"row 5 .*'no_history'.*duplicate condition"):
        run(base + extra[:2] + [("c1", "no_history", [0.3, 0.7])], divergence="tv")


def test_small_rounding_is_renormalized() -> None:
    result = run([("c1", "full", [0.50004, 0.5]), ("c1", "absent:ct", [0.5, 0.5]), ("c1", "text:ct", [0.5, 0.5])])
    assert result["es_image"] == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda r: [x for x in r if not (x[0] == "c2" and x[1] == "full")], r"case 'c2' has no 'full' row"),
        (lambda r: r + [("c3", "absent:ct", [0.5, 0.5])], r"case 'c3'.*no 'full' row"),
        (lambda r: r[:1] + [("c1", "absent:brain", [0.5, 0.3, 0.2])] + r[1:], r"row 1 .*unknown condition 'absent:brain'"),
        (lambda r: r[:2] + [("c1", "text:ct", [0.6, 0.3, 0.1])] + r[2:], r"duplicate condition"),
        (lambda r: [x for x in r if x[1] != "text:laboratory"], r"no 'text:laboratory' row"),
        (lambda r: [x for x in r if not (x[0] == "c2" and x[1] == "absent:ct")], r"case 'c2'.*no 'absent:ct' row"),
        (lambda r: r[:3] + [("c1", "absent:laboratory", [0.7, 0.1, 0.3])] + r[4:], r"row 3 .*sums to 1.1"),
        (lambda r: r[:3] + [("c1", "absent:laboratory", [1.2, -0.1, -0.1])] + r[4:], r"row 3 .*negative or non-finite"),
        (lambda r: r[:3] + [("c1", "absent:laboratory", [0.5, float("nan"), 0.5])] + r[4:], r"row 3 .*non-finite"),
        (lambda r: r[:3] + [("c1", "absent:laboratory", [0.5, 0.5])] + r[4:], r"row 3 .*option count or gold differs"),
        (lambda r: r[:3] + [("c1", "absent:laboratory", [1.0])] + r[4:], r"row 3 .*1 probabilities"),
        (lambda r: r[:3] + [("c1", "absent:laboratory", ["a", "b", "c"])] + r[4:], r"row 3 .*not a list of numbers"),
    ],
)
def test_bad_input_names_the_row(mutate, message) -> None:
    with pytest.raises(ValueError, match=message):
        run(mutate(rows_two_cases()))


def test_bad_columns() -> None:
    rows = rows_two_cases()
    probs, cases, conds = [r[2] for r in rows], [r[0] for r in rows], [r[1] for r in rows]
    with pytest.raises(ValueError, match="length mismatch: predictions has 10 rows but case_ids has 9"):
        evidence_sensitivity(probs, [0] * 10, cases[:-1], conds)
    with pytest.raises(ValueError, match=r"row 7 .*gold index 2 outside 0..1"):
        evidence_sensitivity(probs, [0] * 7 + [2] * 3, cases, conds)
    with pytest.raises(ValueError, match=r"row 0 .*must be an integer"):
        evidence_sensitivity(probs, [0.5] + [0] * 9, cases, conds)
    with pytest.raises(ValueError, match="unknown divergence 'hellinger'"):
        evidence_sensitivity(probs, [0] * 10, cases, conds, "hellinger")
    with pytest.raises(ValueError, match="no rows"):
        evidence_sensitivity([], [], [], [])
