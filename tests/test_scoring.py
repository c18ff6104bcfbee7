"""FDx and DDx aggregate scoring, checked by hand."""

from __future__ import annotations

import pytest

from medsyn.metrics.judges import JudgeError
from medsyn.metrics.scoring import ddx_fdx_gap, score_ddx, score_fdx


def test_score_fdx_by_hand() -> None:
    result = score_fdx(
        ["B", "The answer is C.", "I am not sure.", "答案：A", "Epidural hematoma"],
        ["B", "A", "A", "A", "B"],
        options=[None, None, None, None, ["Subdural hematoma", "Epidural hematoma"]],
    )
    assert result["extracted"] == ["B", "C", None, "A", "B"]
    assert result["correct"] == [True, False, False, True, True]
    assert result["fdx_accuracy"] == pytest.approx(3 / 5)
    assert result["parse_failures"] == 1 and result["n"] == 5


def test_score_fdx_bad_input() -> None:
    with pytest.raises(ValueError, match="length mismatch: predictions has 2 rows but references has 1"):
        score_fdx(["A", "B"], ["A"])
    with pytest.raises(ValueError, match=r"row 1: references: 'C' is not an option letter A-B"):
        score_fdx(["A", "B"], ["A", "C"], options=[["x", "y"], ["x", "y"]])
    with pytest.raises(ValueError, match=r"row 0: references: 'AB'"):
        score_fdx(["A"], ["AB"])
    with pytest.raises(ValueError, match=r"row 0: predictions: expected text"):
        score_fdx([None], ["A"])  # type: ignore[list-item]


class ScriptedJudge:
    """Grades from a dict (gold, candidate) -> grade; a gold of 'FAIL' raises JudgeError."""

    name = "scripted"

    def __init__(self, grades: dict[tuple[str, str], int]) -> None:
        self.grades, self.calls = grades, []

    def score(self, gold: str, candidates: list[str], language: str = "en") -> list[int]:
        self.calls.append((gold, candidates, language))
        if gold == "FAIL":
            raise JudgeError("scripted failure")
        return [self.grades.get((gold, c), 0) for c in candidates]


def test_score_ddx_by_hand() -> None:
    judge = ScriptedJudge({("G1", "b"): 4, ("G1", "c"): 5, ("G2", "x"): 3, ("G4", "y"): 5})
    result = score_ddx(
        ["1. a\n2. b\n3. c", "x; y", "", "1. z", "1. q\n2. y"],
        ["G1", "G2", "G3", "FAIL", "G4"],
        judge=judge, top_k=2, threshold=4, languages=["en", "zh", "en", "en", "en"],
    )
    # row 0: top 2 = (a, b) -> best 4 (c is cut by top_k); row 1: best 3; row 2: empty -> 0;
    # row 3: judge failure; row 4: best 5
    assert result["ddx"] == [["a", "b"], ["x", "y"], [], ["z"], ["q", "y"]]
    assert result["best_score"] == [4, 3, 0, None, 5]
    assert result["covered"] == [True, False, False, None, True]
    assert result["ddx_coverage"] == pytest.approx(2 / 4)
    assert result["mean_best_score"] == pytest.approx((4 + 3 + 0 + 5) / 4)
    assert result["judge_failures"] == 1 and result["n"] == 5 and result["n_judged"] == 4
    assert result["empty_predictions"] == 1 and result["judge"] == "scripted"
    assert judge.calls[1] == ("G2", ["x", "y"], "zh")
    assert len(judge.calls) == 4  # the empty list is not sent to the judge


def test_score_ddx_threshold_and_all_failures() -> None:
    judge = ScriptedJudge({("G1", "b"): 4})
    assert score_ddx(["b"], ["G1"], judge=judge, threshold=5)["ddx_coverage"] == 0.0
    failed = score_ddx(["b", "c"], ["FAIL", "FAIL"], judge=judge)
    assert failed["ddx_coverage"] is None and failed["mean_best_score"] is None and failed["judge_failures"] == 2


def test_score_ddx_bad_input() -> None:
    with pytest.raises(ValueError, match="length mismatch: predictions has 1 rows but references has 2"):
        score_ddx(["a"], ["G", "H"])
    with pytest.raises(ValueError, match=r"row 0: languages: 'fr'"):
        score_ddx(["a"], ["G"], languages="fr")
    with pytest.raises(ValueError, match=r"row 1: references: expected a non-empty final diagnosis"):
        score_ddx(["a", "b"], ["G", ""], judge=ScriptedJudge({}))
    with pytest.raises(ValueError, match="threshold"):
        score_ddx(["a"], ["G"], threshold=6)
    with pytest.raises(ValueError, match=r"row 0: predictions"):
        score_ddx([3], ["G"], judge=ScriptedJudge({}))  # type: ignore[list-item]


def test_ddx_fdx_gap() -> None:
    assert ddx_fdx_gap(0.75, 0.5) == pytest.approx(0.25)
    assert ddx_fdx_gap(None, 0.5) is None and ddx_fdx_gap(0.5, None) is None
