"""`medsyn eval` end to end, in-process, with the real endpoint backend against a local fake server.

A one-language run writes a valid results file of that language (a full run of it); a
``--max-samples`` smoke run records its subset and is refused as a full run; answer posteriors with no option letter are
counted as ES parse failures and left out of ES, never scored as a uniform guess.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from support import http_server, load_module

from medsyn.cli import main
from medsyn.data.build import dataset_revision
from medsyn.data.schema import es_conditions
from medsyn.metrics.results_schema import validate_results


def _endpoint_tests():
    """tests/test_endpoint_backend.py as a module: its fake OpenAI-compatible server."""
    return load_module("endpoint_tests", Path(__file__).with_name("test_endpoint_backend.py"))


_SERVER = _endpoint_tests()
FakeEndpoint, make_handler = _SERVER.FakeEndpoint, _SERVER.make_handler
LETTERLESS_TOP = [("The", -0.1), ("Based", -2.5), ("**", -3.0)]


class LetterlessEndpoint(FakeEndpoint):
    """Answers the log-probability request with top tokens that hold no option letter."""

    def completion(self, body: dict) -> dict:
        reply = super().completion(body)
        if body.get("logprobs"):
            top = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in LETTERLESS_TOP]
            reply["choices"][0]["logprobs"] = {"content": [{**top[0], "top_logprobs": top}]}
            reply["choices"][0]["message"]["content"] = top[0]["token"]
        return reply


def _serve(state: FakeEndpoint) -> Iterator[str]:
    with http_server(make_handler(state)) as port:
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def letterless_url() -> Iterator[str]:
    yield from _serve(LetterlessEndpoint())


@pytest.fixture
def letter_url() -> Iterator[str]:
    yield from _serve(FakeEndpoint())


@pytest.fixture
def run_eval(built_fixture: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setenv("MEDSYN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MEDSYN_TEST_KEY", "sk-test")
    monkeypatch.setenv("MEDSYN_JUDGE", "lexical")  # eval sets it; restored after the test

    def run(url: str, *args: str) -> tuple[dict, list[str], Path]:
        out = tmp_path / "out"
        model_args = f"base_url={url},api_key_env=MEDSYN_TEST_KEY,retry_base=0.001,cache_dir={tmp_path / 'responses'}"
        code = main(["eval", "--backend", "endpoint", "--model", "test-vlm", "--model-args", model_args,
                     "--dataset", str(built_fixture), "--out", str(out), *args])  # fmt: skip
        assert code == 0
        lines = capsys.readouterr().out.splitlines()
        return json.loads((out / "results.json").read_text(encoding="utf-8")), lines, out

    return run


def _known(built_fixture: Path) -> dict:
    return {dataset_revision(built_fixture): {"name": built_fixture.name, "n_cases": {"en": 2, "zh": 1}}}


def test_one_language_run_with_letterless_posteriors(run_eval, letterless_url, built_fixture: Path) -> None:
    results, lines, out = run_eval(letterless_url, "--tasks", "en")
    assert validate_results(results) == []
    assert results["dataset"]["n_cases"] == {"en": 2}
    assert set(results["results"]) == {"en", "overall"}
    assert validate_results(results, _known(built_fixture)) == []  # a full run of en

    import datasets

    types = datasets.load_dataset(str(built_fixture), "en", split="test")["evidence_types"]
    n_posteriors = sum(len(es_conditions(t)) for t in types)
    for subset in ("en", "overall"):
        block = results["results"][subset]
        assert block["es_parse_failures"] == n_posteriors
        assert (block["es_image"], block["es_text"], block["es_gap"], block["es_gap_ci"]) == (None, None, None, None)
        assert block["evidence_sensitivity"] == {}
        assert block["parse_failures"] == 0 and block["judge_failures"] == 0
    en_line = next(line for line in lines if line.startswith("en "))
    assert en_line.endswith(f"ES gap n/a (parse failures {n_posteriors})"), en_line
    assert f"| n/a | {n_posteriors} |" in (out / "report.md").read_text(encoding="utf-8")


def test_max_samples_smoke_run_records_its_subset(run_eval, letter_url, built_fixture: Path) -> None:
    results, _, _ = run_eval(letter_url, "--max-samples", "1")
    assert validate_results(results) == []
    assert results["dataset"]["n_cases"] == {"en": 1, "zh": 1}
    assert [results["results"][s]["n"] for s in ("en", "zh", "overall")] == [1, 1, 2]
    overall = results["results"]["overall"]
    assert overall["es_parse_failures"] == 0 and overall["es_gap"] is not None
    assert any("dataset.n_cases.en: 1 does not match the 2 en cases" in p
               for p in validate_results(results, _known(built_fixture)))  # fmt: skip
