"""Whole cases under ``--max-samples``: an incomplete ES case is counted and left out (never an abort), ES data
that cannot be scored leaves the other tasks' results standing, and lighteval's ``_average`` row averages
each metric over the tasks that measured it. The documented command is run in tests/test_demo.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medsyn.eval import lighteval_compat
from medsyn.eval.tasks import evidence_sensitivity_corpus, incomplete_cases
from medsyn.metrics.sensitivity import evidence_sensitivity

PROBS = {"full": [0.7, 0.2, 0.1], "absent:ct": [0.3, 0.4, 0.3], "text:ct": [0.6, 0.3, 0.1]}


def _records(case: str, conditions: list[str], expected: int | None = 3, shift: float = 0.0) -> list[dict]:
    return [{"case_id": case, "condition": c, "probs": [PROBS[c][0] - shift, PROBS[c][1] + shift, PROBS[c][2]],
             "gold": 0, "failed": False, "low_mass": False, "expected": expected} for c in conditions]  # fmt: skip


def test_incomplete_cases_are_counted_and_left_out(caplog: pytest.LogCaptureFixture) -> None:
    whole = _records("en-1", list(PROBS))
    partial = (_records("zh-0004", ["absent:ct", "text:ct"]) + _records("zh-5", ["full", "absent:ct"])
               + _records("zh-6", ["full"]))  # fmt: skip
    assert incomplete_cases(whole + partial) == {"zh-0004", "zh-5", "zh-6"}
    result = evidence_sensitivity_corpus(whole + partial)
    expected = evidence_sensitivity([r["probs"] for r in whole], [0] * 3, ["en-1"] * 3, list(PROBS))
    assert result["es_incomplete_cases"] == 3 and result["es_gap"] == pytest.approx(expected["es_gap"])
    assert "zh-0004, zh-5, zh-6" in caplog.text


def test_without_a_known_count_a_case_with_full_and_whole_pairs_is_complete() -> None:
    records = _records("c", ["full"], expected=None) + _records("d", ["full", "absent:ct", "text:ct"], expected=None)
    assert incomplete_cases(records) == set()


def test_es_data_that_cannot_be_scored_is_nan_not_an_abort(caplog: pytest.LogCaptureFixture) -> None:
    records = _records("c", list(PROBS), expected=None) + _records("c", ["text:ct"], expected=None)  # a duplicate row
    result = evidence_sensitivity_corpus(records)
    assert all(math.isnan(result[k]) for k in ("es_image", "es_text", "es_gap"))
    assert "Evidence Sensitivity not scored" in caplog.text and "duplicate condition" in caplog.text


def test_average_row_only_averages_measured_metrics() -> None:
    lighteval_compat.apply()
    from lighteval.logging.info_loggers import MetricsLogger

    logger = MetricsLogger()
    logger.metric_aggregated["medsyn:fdx_en|0"].update({"fdx_accuracy": 0.5, "parse_failures": 1.0})
    logger.metric_aggregated["medsyn:es_zh|0"].update({"es_image": 0.2, "es_gap": 0.1})
    logger.metric_aggregated["medsyn:es_en|0"].update({"es_image": 0.4, "es_gap": np.nan})
    logger.aggregate(task_dict={}, bootstrap_iters=0)
    average = logger.metric_aggregated["medsyn:_average|0"]
    assert average["fdx_accuracy"] == 0.5 and average["es_image"] == pytest.approx(0.3) and math.isnan(average["es_gap"])
    assert set(logger.metric_aggregated["medsyn:fdx_en|0"]) == {"fdx_accuracy", "parse_failures"}
    assert set(logger.metric_aggregated["medsyn:es_zh|0"]) == {"es_image", "es_gap"}


def test_the_average_fix_is_applied_once_and_only_while_upstream_zero_fills() -> None:
    lighteval_compat.apply()
    assert "average_only_measured_metrics" not in lighteval_compat.apply()
    assert not lighteval_compat._zero_filled_average()  # with the fix in place the probe sees no zero-filling


def test_a_lighteval_whose_get_docs_changed_is_refused_not_wrapped_blindly(monkeypatch: pytest.MonkeyPatch) -> None:
    from lighteval.tasks.lighteval_task import LightevalTask

    def get_docs(self, n_samples=None):  # a renamed argument: the wrapper would pass max_samples positionally
        return []

    monkeypatch.setattr(LightevalTask, "get_docs", get_docs)
    with pytest.raises(RuntimeError, match=r"get_docs\(self, n_samples=None\) no longer takes max_samples"):
        lighteval_compat._whole_cases_under_max_samples()
