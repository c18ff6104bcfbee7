"""The endpoint backend against a hostile server on 127.0.0.1: replies that must never reach the cache or the scores.

Each test reproduces a defect of issue 17 (item 4): an empty ``choices`` list or a NaN
log-probability was cached and crashed every later run; a reply from another model was
accepted; a 401 echoing the API key printed the key.
"""

from __future__ import annotations

import logging
import math
import traceback
from pathlib import Path
from typing import Any, Iterator

import pytest
from lighteval.models.custom.custom_model import CustomModelConfig
from support import http_server, load_module

from medsyn.eval.backends.cache import ResponseCache
from medsyn.eval.backends.endpoint import EndpointModel, EndpointRequestError
from medsyn.eval.tasks import FdxScore
from medsyn.metrics.sensitivity import posterior_failed

SECRET = "sk-hostile-secret-4242"


def _endpoint_tests():
    """tests/test_endpoint_backend.py as a module: its fake OpenAI-compatible server and docs."""
    return load_module("endpoint_tests", Path(__file__).with_name("test_endpoint_backend.py"))


_SERVER = _endpoint_tests()
FakeEndpoint, make_handler, make_doc, expected_top_posterior = (
    _SERVER.FakeEndpoint, _SERVER.make_handler, _SERVER.make_doc, _SERVER.expected_top_posterior,
)  # fmt: skip


class HostileEndpoint(FakeEndpoint):
    """Replies badly (``mode``) to the first ``bad`` chat requests (all of them when None)."""

    def __init__(self) -> None:
        super().__init__()
        self.mode = "empty_choices"
        self.bad: int | None = None

    def handle_chat(self, body: dict, auth: str | None) -> tuple[int, dict, dict]:
        if self.mode == "echo_key_401":
            with self.lock:
                self.chat.append({"body": body, "auth": auth})
            message = f"Incorrect API key provided: {auth}. You can find your API key at https://example.invalid."
            return 401, {"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}}, {}
        return super().handle_chat(body, auth)

    def completion(self, body: dict) -> dict:
        reply = super().completion(body)
        if self.bad is not None and len(self.chat) > self.bad:
            return reply
        if self.mode == "empty_choices":
            reply["choices"] = []
        elif self.mode == "no_choices_key":  # a malformed body
            del reply["choices"]
        elif self.mode == "nan" and body.get("logprobs"):
            reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"][1]["logprob"] = math.nan
        elif self.mode.startswith("model:"):
            reply["model"] = self.mode.removeprefix("model:")
        return reply


@pytest.fixture
def hostile() -> Iterator[tuple[HostileEndpoint, str]]:
    state = HostileEndpoint()
    with http_server(make_handler(state)) as port:
        yield state, f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def make_model(hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MEDSYN_HOSTILE_KEY", SECRET)

    def make(**options: Any) -> EndpointModel:
        args = {"base_url": hostile[1], "api_key_env": "MEDSYN_HOSTILE_KEY", "cache_dir": tmp_path / "cache",
                "retry_base": 0.001, "max_retries": 2, **options}  # fmt: skip
        spec = ",".join(["model_name=test-vlm"] + [f"{k}={v}" for k, v in args.items()])
        return EndpointModel(CustomModelConfig(model_name=spec, model_definition_file_path="unused"))

    return make


def _cached(tmp_path: Path) -> int:
    return len(ResponseCache(tmp_path / "cache", "test-vlm"))


@pytest.mark.parametrize("mode", ["empty_choices", "no_choices_key", "nan"])
def test_a_bad_posterior_reply_is_retried_counted_and_never_cached(hostile, make_model, tmp_path: Path, mode: str) -> None:
    state, _ = hostile
    state.mode = mode
    [response] = make_model().loglikelihood([make_doc()])
    assert len(state.chat) == 3  # the first attempt and max_retries=2 retries
    assert posterior_failed(response) and response.letter_mass is None  # an ES parse failure, never a score
    assert all(math.isfinite(x) for x in response.logprobs)
    assert _cached(tmp_path) == 0
    make_model().loglikelihood([make_doc()])  # the rerun asks again instead of replaying the bad reply
    assert len(state.chat) == 6


def test_an_empty_generation_reply_is_a_parse_failure_not_a_crash(hostile, make_model, tmp_path: Path) -> None:
    state, _ = hostile
    doc = make_doc()
    doc.specific |= {"answer": "B", "options": ["a", "b", "c", "d", "e"]}
    [response] = make_model().greedy_until([doc])
    assert response.text == [""] and len(state.chat) == 3 and _cached(tmp_path) == 0
    assert FdxScore().compute(doc, response) == {"fdx_accuracy": 0.0, "parse_failures": 1.0}


def test_a_good_reply_after_bad_ones_is_used_and_cached(hostile, make_model, tmp_path: Path) -> None:
    state, _ = hostile
    state.mode, state.bad = "nan", 2
    [response] = make_model().loglikelihood([make_doc()])
    assert len(state.chat) == 3 and not posterior_failed(response)
    assert [math.exp(x) for x in response.logprobs] == pytest.approx(expected_top_posterior(), abs=1e-12)
    assert _cached(tmp_path) == 1
    make_model().loglikelihood([make_doc()])
    assert len(state.chat) == 3


def test_a_reply_from_another_model_is_refused(hostile, make_model) -> None:
    state, _ = hostile
    state.mode = "model:other-vlm"
    with pytest.raises(EndpointRequestError, match="from model 'other-vlm', not the requested 'test-vlm'"):
        make_model().greedy_until([make_doc()])
    state.mode = "model:test-vlm-2024-08-06"  # a dated snapshot of the requested model is the same model
    [response] = make_model().greedy_until([make_doc()])
    assert response.text == ["saw 3 images. Answer: B"]


def test_a_401_echoing_the_key_never_shows_it(hostile, make_model, caplog) -> None:
    state, _ = hostile
    state.mode = "echo_key_401"
    with caplog.at_level(logging.DEBUG), pytest.raises(EndpointRequestError) as info:
        make_model().greedy_until([make_doc()])
    shown = "".join(traceback.format_exception(info.value)) + caplog.text
    assert state.chat[0]["auth"] == f"Bearer {SECRET}"  # the server did receive (and echo) the key
    assert "HTTP 401" in shown and "Incorrect API key provided: Bearer ***" in shown
    assert SECRET not in shown
