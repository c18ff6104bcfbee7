"""FDx accuracy and DDx coverage over many rows (DESIGN §5-§6).

FDx: an output whose answer cannot be extracted is a parse failure — wrong in
``fdx_accuracy`` and counted in ``parse_failures``. DDx: a case the judge cannot score is a
judge failure — counted in ``judge_failures`` and left out of ``ddx_coverage`` and
``mean_best_score``, which are over the judged cases (``n_judged``); never scored 0. A case
whose top-``top_k`` list holds any item the judge cannot compare (the lexical judge across
languages) is a judge failure whether or not another item reaches the threshold; the grades
it could give are kept in ``scores`` for inspection (None for the others). An empty DDx list is judged "nothing close" (best score 0) and counted in
``empty_predictions``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from medsyn.data.schema import LANGUAGES, OPTION_LETTERS
from medsyn.metrics.answers import extract_answer
from medsyn.metrics.ddx import DDxInputError, parse_ddx
from medsyn.metrics.judges import Judge, JudgeError, get_judge


def _check_lengths(n: int, **columns: Sequence[Any] | None) -> None:
    for name, values in columns.items():
        if values is not None and len(values) != n:
            raise ValueError(f"length mismatch: predictions has {n} rows but {name} has {len(values)}")


def score_fdx(
    predictions: Sequence[str],
    references: Sequence[str],
    options: Sequence[Sequence[str] | None] | None = None,
) -> dict[str, Any]:
    """FDx accuracy of free-text ``predictions`` against gold letters ``references``.

    >>> r = score_fdx(["The answer is B.", "A", "I cannot tell."], ["B", "C", "A"])
    >>> r["fdx_accuracy"], r["parse_failures"], r["extracted"]
    (0.3333333333333333, 1, ['B', 'A', None])
    """
    n = len(predictions)
    _check_lengths(n, references=references, options=options)
    correct: list[bool] = []
    extracted: list[str | None] = []
    for i in range(n):
        row_options = options[i] if options is not None else None
        letters = OPTION_LETTERS[: len(row_options)] if row_options else OPTION_LETTERS
        gold, text = references[i], predictions[i]
        if not isinstance(gold, str) or gold not in letters or len(gold) != 1:
            raise ValueError(f"row {i}: references: {gold!r} is not an option letter {letters[0]}-{letters[-1]}")
        if not isinstance(text, str):
            raise ValueError(f"row {i}: predictions: expected text, got {type(text).__name__}")
        answer = text if len(text) == 1 and text in letters else extract_answer(text, list(row_options) if row_options else None)
        extracted.append(answer)
        correct.append(answer == gold)
    return {
        "fdx_accuracy": sum(correct) / n if n else None,
        "parse_failures": extracted.count(None),
        "n": n,
        "correct": correct,
        "extracted": extracted,
    }


def score_ddx(
    predictions: Sequence[str | Sequence[str]],
    references: Sequence[str],
    judge: str | dict[str, Any] | Judge | None = "lexical",
    top_k: int = 10,
    threshold: int = 4,
    languages: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """DDx coverage: share of judged cases whose top-``top_k`` list has an item scored >= ``threshold``.

    >>> r = score_ddx(["1. Subdural hematoma\\n2. Stroke", "Migraine"], ["Subdural hematoma", "Glioma"])
    >>> r["ddx_coverage"], r["best_score"], r["judge_failures"]
    (0.5, [5, 0], 0)
    """
    n = len(predictions)
    if isinstance(languages, str) or languages is None:
        languages = [languages or "en"] * n
    _check_lengths(n, references=references, languages=languages)
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 0 <= threshold <= 5:
        raise ValueError(f"threshold must be an integer 0..5, got {threshold!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    scorer = get_judge(judge)
    best: list[int | None] = []
    scores: list[list[int | None] | None] = []
    lists: list[list[str]] = []
    empty = 0
    for i in range(n):
        gold, language = references[i], languages[i]
        if not isinstance(gold, str) or not gold.strip():
            raise ValueError(f"row {i}: references: expected a non-empty final diagnosis, got {gold!r}")
        if language not in LANGUAGES:
            raise ValueError(f"row {i}: languages: {language!r} is not one of {', '.join(LANGUAGES)}")
        try:
            items = parse_ddx(predictions[i], top_k=top_k)
        except TypeError as error:
            raise ValueError(f"row {i}: predictions: {error}") from None
        except DDxInputError:  # too long to parse: the case cannot be judged, never judged on a truncation
            lists.append([])
            scores.append(None)
            best.append(None)
            continue
        lists.append(items)
        if not items:
            empty += 1
            scores.append([])
            best.append(0)
            continue
        try:
            row_scores = list(scorer.score(gold, items, language=language))
        except JudgeError as error:
            scores.append(error.partial)  # for inspection only: judging on them would count hits and drop misses
            best.append(None)
            continue
        scores.append(row_scores)
        best.append(max(row_scores))
    judged = [b for b in best if b is not None]
    covered = [None if b is None else b >= threshold for b in best]
    return {
        "ddx_coverage": sum(b >= threshold for b in judged) / len(judged) if judged else None,
        "mean_best_score": sum(judged) / len(judged) if judged else None,
        "judge_failures": n - len(judged),
        "n": n,
        "n_judged": len(judged),
        "empty_predictions": empty,
        "judge": scorer.name,
        "best_score": best,
        "covered": covered,
        "scores": scores,
        "ddx": lists,
    }


def ddx_fdx_gap(ddx_coverage: float | None, fdx_accuracy: float | None) -> float | None:
    """``ddx_coverage - fdx_accuracy`` (DESIGN §7), None when either is missing."""
    if ddx_coverage is None or fdx_accuracy is None:
        return None
    return ddx_coverage - fdx_accuracy
