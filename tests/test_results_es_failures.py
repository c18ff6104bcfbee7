"""ES answer posteriors that rest on no parsed answer: counted, left out of ES with their pairs, never scored."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medsyn.eval.pipeline import Sample
from medsyn.eval.results import load_metrics, score_block
from medsyn.eval.tasks import evidence_sensitivity_corpus
from medsyn.metrics.sensitivity import evidence_sensitivity, posterior_failed, usable_es_rows

CONDITIONS = ["full", "absent:ct", "text:ct", "absent:laboratory", "text:laboratory"]
PROBS = {"full": [0.7, 0.2, 0.1], "absent:ct": [0.3, 0.4, 0.3], "text:ct": [0.6, 0.3, 0.1],
         "absent:laboratory": [0.5, 0.3, 0.2], "text:laboratory": [0.8, 0.1, 0.1]}  # fmt: skip


def _rows(failed: set[tuple[str, str]]) -> list[tuple[str, str, bool]]:
    return [(case, c, (case, c) in failed) for case in ("c1", "c2") for c in CONDITIONS]


def _sample(case: str, condition: str, failed: bool) -> Sample:
    shift = 0.05 if case == "c2" else 0.0
    probs = [PROBS[condition][0] - shift, PROBS[condition][1] + shift, PROBS[condition][2]]
    specific = {"case_id": case, "condition": condition, "language": "en", "task": "es", "answer": "A",
                "options": ["x", "y", "z"], "final_diagnosis": "x"}  # fmt: skip
    logprobs = [0.0, 0.0, 0.0] if failed else [math.log(p) for p in probs]  # failed: the backend's uniform fallback
    return Sample(task="medsyn:es_en", specific=specific, query="", n_images=0, text=None, logprobs=logprobs,
                  posterior_failed=failed)


def test_posterior_failed_reads_the_endpoint_counts() -> None:
    class Response:
        def __init__(self, unparseable: int, n: int) -> None:
            self.unparseable_samples, self.n_samples = unparseable, n

    assert posterior_failed(Response(1, 1)) and posterior_failed(Response(10, 10))
    assert not posterior_failed(Response(0, 1)) and not posterior_failed(Response(3, 10))
    assert not posterior_failed(object())  # backends that score letters directly never fail


def test_a_failed_posterior_drops_its_case_and_type_pair() -> None:
    rows = _rows({("c1", "text:ct"), ("c2", "full")})
    keep = usable_es_rows(*map(list, zip(*rows)))
    kept = [(case, c) for (case, c, _), k in zip(rows, keep) if k]
    assert kept == [("c1", "full"), ("c1", "absent:laboratory"), ("c1", "text:laboratory")]


@pytest.fixture(scope="module")
def metrics() -> dict:
    return load_metrics()


def test_score_block_leaves_failed_pairs_out_and_counts_them(metrics) -> None:
    samples = [_sample(*row) for row in _rows({("c1", "absent:ct")})]
    block = score_block(samples, metrics, "lexical")
    assert block["es_parse_failures"] == 1
    kept = [s for s in samples if not (s.specific["case_id"] == "c1" and s.specific["condition"].endswith(":ct"))]
    expected = evidence_sensitivity([np.exp(s.logprobs).tolist() for s in kept], [0] * len(kept),
                                    [s.specific["case_id"] for s in kept], [s.specific["condition"] for s in kept])  # fmt: skip
    assert block["es_gap"] == pytest.approx(expected["es_gap"])
    assert block["evidence_sensitivity"]["ct"]["image"] == pytest.approx(expected["evidence_sensitivity"]["ct"]["image"])


def test_score_block_with_every_posterior_failed_is_null_not_zero(metrics) -> None:
    samples = [_sample(case, c, True) for case, c, _ in _rows(set())]
    block = score_block(samples, metrics, "lexical")
    assert (block["es_image"], block["es_text"], block["es_gap"], block["es_gap_ci"]) == (None, None, None, None)
    assert block["es_parse_failures"] == len(samples) and block["evidence_sensitivity"] == {}


def test_lighteval_corpus_metric_counts_failures_and_scores_none() -> None:
    records = [{"case_id": case, "condition": c, "probs": [1 / 3] * 3, "gold": 0, "failed": True, "low_mass": False}
               for case, c, _ in _rows(set())]  # fmt: skip
    result = evidence_sensitivity_corpus(records)
    assert result["es_parse_failures"] == len(records)
    assert all(np.isnan(result[k]) for k in ("es_image", "es_text", "es_gap"))
