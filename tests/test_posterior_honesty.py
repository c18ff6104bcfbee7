"""Answer posteriors that can be trusted (issue 18): letter mass, the same token variants in both
backends, posterior failures left out of ES, the sampling fallback's parsed share and identical
samples, reasoning templates refused, and the results-file records of all of it."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterator

import datasets
import pytest
import torch
from lighteval.models.custom.custom_model import CustomModelConfig
from support import http_server, load_module

from medsyn.data.schema import es_conditions
from medsyn.eval.backends.endpoint import EndpointModel
from medsyn.eval.backends.transformers_vlm import MedsynVLM, ReasoningTemplateError, VLMConfig, token_letters
from medsyn.eval.pipeline import Sample, posterior_fields
from medsyn.eval.results import load_metrics, posterior_block, score_block
from medsyn.eval.tasks import make_doc
from medsyn.eval.tiny_model import LETTER_BOOST, build_tiny_model
from medsyn.metrics.results_schema import validate_results
from medsyn.metrics.sensitivity import MIN_LETTER_MASS, letter_of_token, low_letter_mass, posterior_failed

RESULTS = Path(__file__).parent / "data" / "results"


def _endpoint_tests():
    return load_module("endpoint_tests", Path(__file__).with_name("test_endpoint_backend.py"))


_SERVER = _endpoint_tests()


class ScriptedEndpoint(_SERVER.FakeEndpoint):
    """Returns ``top`` as the top log-probabilities and ``samples`` as the sampled answers."""

    def __init__(self) -> None:
        super().__init__()
        self.top: list[tuple[str, float]] = []
        self.samples: list[str] = []

    def completion(self, body: dict) -> dict:
        reply = super().completion(body)
        if body.get("logprobs"):
            top = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in self.top]
            reply["choices"][0]["logprobs"] = {"content": [{**top[0], "top_logprobs": top}]}
            reply["choices"][0]["message"]["content"] = top[0]["token"]
        elif body.get("temperature") == 1.0:
            for i, choice in enumerate(reply["choices"]):
                choice["message"]["content"] = self.samples[i % len(self.samples)]
        return reply


@pytest.fixture
def scripted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    state = ScriptedEndpoint()
    monkeypatch.setenv("MEDSYN_TEST_KEY", "sk-test")
    with http_server(_SERVER.make_handler(state)) as port:

        def make(**options) -> EndpointModel:
            args = {"base_url": f"http://127.0.0.1:{port}/v1", "api_key_env": "MEDSYN_TEST_KEY",
                    "cache_dir": tmp_path / "cache", "retry_base": 0.001, **options}  # fmt: skip
            spec = ",".join(["model_name=test-vlm"] + [f"{k}={v}" for k, v in args.items()])
            return EndpointModel(CustomModelConfig(model_name=spec, model_definition_file_path="unused"))

        yield state, make


@pytest.fixture(scope="module")
def rows(built_fixture: Path) -> list[dict]:
    return [row for lang in ("en", "zh") for row in datasets.load_dataset(str(built_fixture), lang, split="test")]


@pytest.fixture
def vlm(tiny_model: Path, tmp_path: Path) -> MedsynVLM:
    return MedsynVLM(VLMConfig(model_name=str(tiny_model), batch_size=8, use_response_cache=False, response_cache_dir=str(tmp_path)))


def _es_docs(rows: list[dict]) -> list:
    return [make_doc(r, c, "es", "medsyn:es_en") for r in rows for c in es_conditions(r["evidence_types"])]


def _samples(docs: list, responses: list) -> list[Sample]:
    return [Sample(task="medsyn:es_en", specific={**d.specific, "language": "en"}, query=d.query, n_images=0, text=None,
                   logprobs=list(r.logprobs), **posterior_fields(r)) for d, r in zip(docs, responses)]  # fmt: skip


def test_the_letter_variants_are_defined_once() -> None:
    assert [letter_of_token(t) for t in ("A", " A", "(A", "**A", "Ａ", "\nB", "The", "AB", "<think>")] == \
        ["A", "A", "A", "A", "A", "B", None, None, None]  # fmt: skip


def test_both_backends_give_the_same_posterior_and_mass_for_the_same_logits(vlm: MedsynVLM, scripted) -> None:
    tokenizer = vlm.processor.tokenizer
    variants = token_letters(tokenizer)
    assert all(len(variants[letter]) == 2 for letter in "ABCDE")  # "A" and " A" in the tiny vocabulary
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(len(tokenizer), generator=generator, dtype=torch.float64)
    letter_ids = [i for letter in "ABCDE" for i in variants[letter]]
    logits[letter_ids] += 5.0 + torch.rand(len(letter_ids), generator=generator, dtype=torch.float64)
    other = max(set(range(len(tokenizer))) - set(letter_ids) - set(tokenizer.all_special_ids))
    logits[other] = 7.0  # a non-letter token holds the most probability
    logp = torch.log_softmax(logits, dim=0)
    local, local_mass = vlm.letter_posterior(logp, list("ABCDE"))

    state, make = scripted
    top = torch.topk(logp, 20).indices.tolist()
    assert set(letter_ids) <= set(top)
    state.top = [(tokenizer.decode([i]), float(logp[i])) for i in top]
    [response] = make().loglikelihood([_SERVER.make_doc()])
    assert response.logprobs == pytest.approx(local, abs=1e-9)
    assert response.letter_mass == pytest.approx(local_mass, abs=1e-9)
    assert 0.05 < local_mass < 0.95  # both measured the same partial mass, not 1 after renormalizing


def test_little_letter_mass_is_a_posterior_failure_left_out_of_es(vlm: MedsynVLM, rows: list[dict]) -> None:
    docs = _es_docs(rows[:1])
    honest = vlm.loglikelihood(docs)
    assert min(r.letter_mass for r in honest) > MIN_LETTER_MASS  # the tiny model answers with letters
    ids = [i for group in vlm.letter_token_ids(list("ABCD")) for i in group.tolist()]
    with torch.no_grad():
        vlm.model.lm_head.weight[ids, 0] = -LETTER_BOOST  # now its next token is never a letter
    chatty = vlm.loglikelihood(docs)
    assert [r.letter_mass < 0.01 and low_letter_mass(r) and not posterior_failed(r) for r in chatty] == [True] * len(docs), [r.letter_mass for r in chatty]
    metrics = load_metrics()
    block = score_block(_samples(docs, chatty), metrics, "lexical")
    assert block["posterior_failures"] == len(docs) and block["es_parse_failures"] == 0
    assert (block["es_image"], block["es_gap"]) == (None, None) and block["letter_mass"]["min"] < 0.01
    good = score_block(_samples(docs, honest), metrics, "lexical")
    assert good["posterior_failures"] == 0 and good["es_gap"] is not None
    assert good["letter_mass"]["min"] <= good["letter_mass"]["mean"] <= 1


def test_one_row_below_the_threshold_drops_only_its_pair(scripted) -> None:
    state, make = scripted
    state.top = [(" B", -0.2), ("A", -2.0), ("The", -3.0)]
    docs = [_SERVER.make_doc("c1", condition=c, history=c) for c in ("full", "absent:ct", "text:ct", "absent:laboratory", "text:laboratory")]
    for doc in docs:
        doc.specific |= {"answer": "B", "options": list("abcde"), "task": "es"}
    model = make()
    responses = model.loglikelihood(docs[:4])
    state.top = [("The", -0.05), (" B", -4.0), ("A", -5.0)]  # letter mass 0.025: a chatty answer
    responses += make().loglikelihood(docs[4:])
    assert [low_letter_mass(r) for r in responses] == [False] * 4 + [True]
    block = score_block(_samples(docs, responses), load_metrics(), "lexical")
    assert block["posterior_failures"] == 1 and block["es_parse_failures"] == 0
    assert set(block["evidence_sensitivity"]) == {"ct"}  # the laboratory pair is left out whole


def test_sampling_with_few_parsed_answers_is_a_posterior_failure(scripted) -> None:
    state, make = scripted
    state.samples = ["B"] + ["I would need more information."] * 9
    [response] = make(logprobs="false", samples=10).loglikelihood([_SERVER.make_doc()])
    assert (response.n_samples, response.unparseable_samples, response.letter_mass) == (10, 9, pytest.approx(0.1))
    assert low_letter_mass(response) and not posterior_failed(response)
    state.samples = ["B", "C", "B", "A", "B", "no idea"]
    [response] = make(logprobs="false", samples=6).loglikelihood([_SERVER.make_doc("en-2")])
    assert response.letter_mass == pytest.approx(5 / 6) and not low_letter_mass(response)


def test_identical_samples_are_warned_about_and_recorded(scripted, caplog) -> None:
    state, make = scripted
    state.samples = ["B"]  # a server that ignores the temperature
    docs = [_SERVER.make_doc(f"en-{i}") for i in range(3)]
    for doc in docs:
        doc.specific["task"] = "es"
    with caplog.at_level(logging.WARNING):
        responses = make(logprobs="false", samples=5).loglikelihood(docs)
    assert all(r.identical_samples for r in responses)
    assert "all 5 samples at temperature 1 are the same text" in caplog.text
    samples = _samples(docs, responses)
    assert posterior_block(samples) == {"method": "samples", "samples": 5, "temperature": 1.0, "identical_samples": 3}


def test_the_posterior_block_refuses_mixed_methods() -> None:
    def sample(method: dict | None) -> Sample:
        return Sample(task="medsyn:es_en", specific={"task": "es"}, query="", n_images=0, text=None, logprobs=[0.0, 0.0],
                      posterior_method=method)  # fmt: skip

    logprobs = {"method": "logprobs", "samples": None, "temperature": None, "identical_samples": False}
    sampled = {"method": "samples", "samples": 10, "temperature": 1.0, "identical_samples": False}
    assert posterior_block([sample(logprobs)]) == {"method": "logprobs", "samples": None, "temperature": None, "identical_samples": None}
    assert posterior_block([sample(None)]) is None
    with pytest.raises(ValueError, match="measured in 2 ways"):
        posterior_block([sample(logprobs), sample(sampled)])


def test_the_results_schema_checks_the_new_keys() -> None:
    results = json.loads((RESULTS / "example-open-7b.json").read_text(encoding="utf-8"))
    results["posterior"] = {"method": "samples", "samples": 10, "temperature": 1.0, "identical_samples": 0}
    for block in results["results"].values():
        block |= {"posterior_failures": 2, "letter_mass": {"mean": 0.9, "min": 0.3}}
    assert validate_results(results) == []
    results["posterior"] = {"method": "beam", "samples": 10, "temperature": 1.0, "identical_samples": 0}
    results["results"]["en"]["letter_mass"] = {"mean": 0.3, "min": 0.9}
    results["results"]["zh"]["posterior_failures"] = -1
    problems = validate_results(results)
    assert any(p.startswith("posterior.method: 'beam'") for p in problems)
    assert any(p.startswith("results.en.letter_mass.min: 0.9 is above the mean") for p in problems)
    assert any(p.startswith("results.zh.posterior_failures: must be a non-negative integer") for p in problems)


def test_a_reasoning_template_is_refused_for_the_posterior(tmp_path: Path, rows: list[dict]) -> None:
    folder = build_tiny_model(tmp_path / "thinking", think=True)
    model = MedsynVLM(VLMConfig(model_name=str(folder), max_new_tokens=4, use_response_cache=False))
    prompt = model.processor.apply_chat_template([{"role": "user", "content": "Q"}], add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|assistant|>\n<think>\n")
    doc = make_doc(rows[0], "full", "es", "medsyn:es_en")
    with pytest.raises(ReasoningTemplateError, match=rf"opens a <think> block.*{doc.specific['case_id']} \[full\]"):
        model.loglikelihood([doc])
    [generated] = model.greedy_until([make_doc(rows[0], "full", "fdx", "medsyn:fdx_en")])  # generation still runs
    assert isinstance(generated.text[0], str)
