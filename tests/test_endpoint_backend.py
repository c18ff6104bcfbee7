"""The OpenAI-compatible endpoint backend against a real HTTP server on 127.0.0.1.

The server (stdlib ``ThreadingHTTPServer``, started per test) records every
request, decodes the images of each message in order, returns top
log-probabilities (or none, or HTTP 400 "logprobs is not supported", forcing the
sampling fallback), and fails requests on demand. The backend talks to it through the real ``openai`` client.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import logging
import math
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Iterator

import pytest
from lighteval.models.abstract_model import LightevalModel
from lighteval.models.custom.custom_model import CustomModelConfig
from lighteval.tasks.requests import Doc
from PIL import Image
from pydantic import ValidationError
from support import http_server

from medsyn.cli import main
from medsyn.eval.backends.endpoint import (
    EndpointModel,
    EndpointRequestError,
    EndpointSettings,
    posterior_from_samples,
    posterior_from_top_logprobs,
)
from medsyn.eval.prompts import IMAGE_MARK

ROOT = Path(__file__).resolve().parents[1]
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
LETTERS = list("ABCDE")
# " B" and "B" are one answer; E is not listed, "The" is not a letter; listed mass 0.889
TOP = [(" B", -0.7), ("B", -2.3), ("A", -1.6), ("C", -3.0), ("The", -3.5), ("D", -4.5)]
SAMPLES = ["B", "Answer: B", "The answer is (C).", "I cannot tell.", "**B**", "(A)"]


class FakeEndpoint:
    """State and behaviour of the test server."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.chat: list[dict] = []  # every chat request: body, decoded parts, auth header
        self.fail_next: list[int] = []  # statuses for the next chat requests, in order
        self.fail_from: int | None = None  # chat request number (1-based) from which all fail with 500
        self.logprobs = True
        self.reject_logprobs = False  # answer requests asking for logprobs with HTTP 400, as several APIs do
        self.logprobs_cap: int | None = None  # answer more top_logprobs than this with vLLM's HTTP 400
        self.ignore_n = False
        self.max_images: int | None = None  # answer more images per prompt with vLLM's HTTP 400
        self.delay = 0.0
        self.root = "/models/test-vlm"
        self.in_flight = self.max_in_flight = 0

    def handle_chat(self, body: dict, auth: str | None) -> tuple[int, dict, dict]:
        with self.lock:
            self.chat.append({"body": body, "parts": decode_parts(body["messages"]), "auth": auth})
            number = len(self.chat)
            status = self.fail_next.pop(0) if self.fail_next else None
            if status is None and self.fail_from is not None and number >= self.fail_from:
                status = 500
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
        finally:
            with self.lock:
                self.in_flight -= 1
        if status is not None:
            headers = {"retry-after": "0"} if status == 429 else {}
            return status, {"error": {"message": f"injected {status}", "type": "test"}}, headers
        images = sum(p["type"] == "image_url" for p in body["messages"][-1]["content"])
        if self.max_images is not None and images > self.max_images:
            message = f"At most {self.max_images} image(s) may be provided in one prompt. (parameter=image)"
            return 400, {"error": {"message": message, "type": "BadRequestError", "param": "image", "code": 400}}, {}
        if body.get("logprobs") and self.logprobs_cap is not None and body.get("top_logprobs", 0) > self.logprobs_cap:
            message = f"Requested sample logprobs of {body['top_logprobs']}, which is greater than max allowed: {self.logprobs_cap}"
            return 400, {"error": {"message": message, "type": "BadRequestError", "param": None, "code": 400}}, {}
        if body.get("logprobs") and self.reject_logprobs:
            error = {"message": "logprobs is not supported with this model", "type": "invalid_request_error",
                     "param": "logprobs", "code": None}
            return 400, {"error": error}, {}
        return 200, self.completion(body), {}

    def completion(self, body: dict) -> dict:
        n = 1 if self.ignore_n else body.get("n") or 1
        if body.get("logprobs") and self.logprobs:
            top = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in TOP]
            first = top[0]
            logprobs = {"content": [{**first, "top_logprobs": top}]}
            choices = [{"index": 0, "message": {"role": "assistant", "content": first["token"]},
                        "finish_reason": "length", "logprobs": logprobs}]
        elif body.get("temperature") == 1.0:
            choices = [{"index": i, "message": {"role": "assistant", "content": SAMPLES[i % len(SAMPLES)]},
                        "finish_reason": "stop", "logprobs": None} for i in range(n)]
        else:
            images = sum(1 for p in body["messages"][-1]["content"] if p["type"] == "image_url")
            choices = [{"index": 0, "message": {"role": "assistant", "content": f"saw {images} images. Answer: B"},
                        "finish_reason": "stop", "logprobs": None}]
        return {"id": "cmpl-test", "object": "chat.completion", "created": 0, "model": body["model"],
                "system_fingerprint": "fp-test", "choices": choices,
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def decode_parts(messages: list[dict]) -> list[tuple]:
    """The last message's parts: ("text", str) or (mime, RGB of the top-left pixel)."""
    parts = []
    for part in messages[-1]["content"]:
        if part["type"] == "text":
            parts.append(("text", part["text"]))
            continue
        header, data = part["image_url"]["url"].split(",", 1)
        image = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
        parts.append((header.removeprefix("data:").removesuffix(";base64"), image.getpixel((0, 0))))
    return parts


def make_handler(state: FakeEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            return None

        def reply(self, status: int, payload: dict, headers: dict | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") != "/v1/models":
                return self.reply(404, {"error": {"message": "not found"}})
            model = {"id": "test-vlm", "object": "model", "created": int(time.time()), "owned_by": "test",
                     "root": state.root}
            self.reply(200, {"object": "list", "data": [model]})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path != "/v1/chat/completions":
                return self.reply(404, {"error": {"message": "not found"}})
            self.reply(*state.handle_chat(body, self.headers.get("Authorization")))

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[FakeEndpoint, str]]:
    state = FakeEndpoint()
    with http_server(make_handler(state)) as port:
        yield state, f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def make_model(server: tuple[FakeEndpoint, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MEDSYN_TEST_KEY", "sk-test-secret-7731")

    def make(**options: Any) -> EndpointModel:
        args = {"base_url": server[1], "api_key_env": "MEDSYN_TEST_KEY", "cache_dir": tmp_path / "cache",
                "retry_base": 0.001, "max_retries": 3, **options}
        spec = ",".join(["model_name=test-vlm"] + [f"{k}={v}" for k, v in args.items()])
        return EndpointModel(CustomModelConfig(model_name=spec, model_definition_file_path="unused"))

    return make


def solid(color: tuple[int, int, int], fmt: str = "PNG") -> Image.Image:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buffer, format=fmt)
    return Image.open(io.BytesIO(buffer.getvalue()))


def make_doc(case: str = "en-0001", colors=(RED, GREEN, BLUE), history: str | None = None,
             condition: str = "full", **extra: Any) -> Doc:
    history = history or f"A 70-year-old man ({case})."
    query = (f"History: {history}\nCT of the head:\n{IMAGE_MARK}\nLaboratory data:{IMAGE_MARK}{IMAGE_MARK}"
             "\nAnswer with the letter only.")
    specific = {"case_id": case, "condition": condition, "language": "en", "task": "fdx"}
    return Doc(query=query, choices=LETTERS, gold_index=1, images=[solid(c) for c in colors], specific=specific,
               **extra)


def expected_top_posterior() -> list[float]:
    listed = [math.exp(lp) for _, lp in TOP]
    p = {"A": math.exp(-1.6), "B": math.exp(-0.7) + math.exp(-2.3), "C": math.exp(-3.0), "D": math.exp(-4.5),
         "E": min(min(listed), 1 - sum(listed))}
    total = sum(p.values())
    return [p[letter] / total for letter in LETTERS]


def test_images_arrive_in_order_interleaved_in_one_user_message(server, make_model) -> None:
    state, _ = server
    jpeg = solid((200, 100, 50), "JPEG")
    doc = make_doc(colors=(RED, GREEN, BLUE), generation_size=64, stop_sequences=["\n\n"])
    doc.images[1] = jpeg
    [response] = make_model().greedy_until([doc])
    assert response.text == ["saw 3 images. Answer: B"] and response.input == doc.query
    [request] = state.chat
    assert [m["role"] for m in request["body"]["messages"]] == ["user"]
    parts = request["parts"]
    assert parts[0] == ("text", "History: A 70-year-old man (en-0001).\nCT of the head:\n")
    assert parts[1] == ("image/png", RED)
    assert parts[2] == ("text", "\nLaboratory data:")
    assert parts[3][0] == "image/jpeg" and all(abs(a - b) <= 3 for a, b in zip(parts[3][1], (200, 100, 50)))
    assert parts[4] == ("image/png", BLUE)
    assert parts[5] == ("text", "\nAnswer with the letter only.") and len(parts) == 6
    body = request["body"]
    assert (body["temperature"], body["max_tokens"], body["stop"]) == (0.0, 64, ["\n\n"])
    assert request["auth"] == "Bearer sk-test-secret-7731"


def test_default_generation_length_and_no_stop(server, make_model) -> None:
    make_model(max_new_tokens=77).greedy_until([make_doc()])
    body = server[0].chat[0]["body"]
    assert body["max_tokens"] == 77 and "stop" not in body


def test_image_count_mismatch_names_the_case(make_model) -> None:
    doc = make_doc(case="en-0042", colors=(RED, GREEN))
    with pytest.raises(ValueError, match=r"case en-0042, condition full .*3 image positions but 2 images"):
        make_model().greedy_until([doc])


def test_posterior_from_top_logprobs_sums_to_one_and_matches_the_server(server, make_model) -> None:
    [response] = make_model().loglikelihood([make_doc()])
    probs = [math.exp(lp) for lp in response.logprobs]
    assert abs(sum(probs) - 1) < 1e-9
    assert probs == pytest.approx(expected_top_posterior(), abs=1e-12)
    assert response.argmax_logits_eq_gold == [False, True, False, False, False]
    assert (response.posterior_method, response.n_samples, response.unparseable_samples) == ("logprobs", 1, 0)
    assert response.letter_mass == pytest.approx(sum(math.exp(lp) for t, lp in TOP if t != "The"), abs=1e-12)
    body = server[0].chat[0]["body"]
    assert (body["max_tokens"], body["logprobs"], body["top_logprobs"], body["temperature"]) == (1, True, 20, 0.0)


def test_posterior_helpers_merge_variants_and_handle_absent_letters() -> None:
    logp, mass = posterior_from_top_logprobs([("A", math.log(0.5)), (" A", math.log(0.2)), ("\n", math.log(0.3))],
                                             ["A", "B"])
    assert mass == pytest.approx(0.7) and [math.exp(x) for x in logp] == pytest.approx([0.7 / (0.7 + 1e-10), 1e-10 / 0.7], rel=1e-6)
    uniform, mass = posterior_from_top_logprobs([("The", -0.1), ("**", -3.0)], LETTERS)
    assert mass == 0 and [math.exp(x) for x in uniform] == pytest.approx([0.2] * 5)
    logp, bad = posterior_from_samples(["A", "A", None, "F"], ["A", "B", "C"])
    assert bad == 2 and [math.exp(x) for x in logp] == pytest.approx([3 / 5, 1 / 5, 1 / 5])


def test_retries_recover_from_500_and_429(server, make_model) -> None:
    state, _ = server
    state.fail_next = [500, 429, 503]
    [response] = make_model().loglikelihood([make_doc()])
    assert len(state.chat) == 4
    assert [math.exp(x) for x in response.logprobs] == pytest.approx(expected_top_posterior(), abs=1e-12)


def test_always_failing_raises_a_clear_error_and_never_an_answer(server, make_model) -> None:
    state, _ = server
    state.fail_from = 1
    with pytest.raises(EndpointRequestError) as info:
        make_model(max_retries=2).loglikelihood([make_doc(case="en-0007", condition="absent:ct")])
    message = str(info.value)
    assert "case en-0007, condition absent:ct (fdx)" in message and "3 attempt(s)" in message
    assert "HTTP 500" in message and "sk-test-secret" not in message
    assert len(state.chat) == 3


def test_client_errors_are_not_retried(server, make_model) -> None:
    state, _ = server
    state.fail_next = [400]
    with pytest.raises(EndpointRequestError, match="1 attempt"):
        make_model().greedy_until([make_doc()])
    assert len(state.chat) == 1


@pytest.mark.parametrize("kind", ["generate", "posterior"])
def test_too_many_images_for_the_server_is_refused_with_its_message(server, make_model, kind) -> None:
    """vLLM's 400 for more images than --limit-mm-per-prompt: no retry, no images dropped, the server's words."""
    state, _ = server
    state.max_images = 2
    model = make_model()
    with pytest.raises(EndpointRequestError) as error:
        model.greedy_until([make_doc()]) if kind == "generate" else model.loglikelihood([make_doc()])
    message = str(error.value)
    assert "case en-0001, condition full" in message and "refuses the 3 images" in message
    assert "At most 2 image(s) may be provided in one prompt" in message and "--limit-mm-per-prompt" in message
    assert [len(request["parts"]) - sum(kind == "text" for kind, _ in request["parts"]) for request in state.chat] == [3]


def test_sampling_fallback_gives_add_one_smoothed_frequencies(server, make_model) -> None:
    state, _ = server
    state.logprobs = False
    responses = make_model(samples=6).loglikelihood([make_doc("en-1"), make_doc("en-2")])
    # SAMPLES: B, B, C, unparseable, B, A -> counts A1 B3 C1 D0 E0 over 5 parsed answers
    expected = [(c + 1) / (5 + 5) for c in (1, 3, 1, 0, 0)]
    for response in responses:
        assert [math.exp(x) for x in response.logprobs] == pytest.approx(expected, abs=1e-12)
        assert (response.posterior_method, response.n_samples, response.unparseable_samples) == ("samples", 6, 1)
        assert response.text == SAMPLES and response.argmax_logits_eq_gold == [False, True, False, False, False]
    bodies = [r["body"] for r in state.chat]
    assert [b.get("logprobs") for b in bodies] == [True, None, None]  # only the first doc probes for logprobs
    assert [(b["temperature"], b["n"]) for b in bodies[1:]] == [(1.0, 6), (1.0, 6)]


def test_a_400_refusing_logprobs_switches_to_sampling(server, make_model, caplog) -> None:
    state, url = server
    state.reject_logprobs = True
    with caplog.at_level(logging.WARNING):
        responses = make_model(samples=6).loglikelihood([make_doc("en-1"), make_doc("en-2")])
    expected = [(c + 1) / (5 + 5) for c in (1, 3, 1, 0, 0)]  # as in the sampling fallback above
    for response in responses:
        assert [math.exp(x) for x in response.logprobs] == pytest.approx(expected, abs=1e-12)
        assert (response.posterior_method, response.n_samples, response.unparseable_samples) == ("samples", 6, 1)
    assert [r["body"].get("logprobs") for r in state.chat] == [True, None, None]  # one probe, then samples only
    assert f"{url} refused log-probabilities (HTTP 400: " in caplog.text and "not supported" in caplog.text
    assert "posteriors come from 6 samples" in caplog.text


def test_a_failing_probe_stops_the_other_requests_and_suggests_logprobs_false(server, make_model) -> None:
    state, _ = server
    state.fail_next = [400]  # a client error that is not about logprobs
    docs = [make_doc(f"en-{i}") for i in range(4)]
    with pytest.raises(EndpointRequestError) as info:
        make_model().loglikelihood(docs)
    message = str(info.value)
    assert "the first posterior request" in message and "the other 3 were not sent" in message
    assert "set logprobs=false" in message and "case en-0, condition full (fdx)" in message and "HTTP 400" in message
    assert len(state.chat) == 1


def test_a_400_capping_logprobs_is_no_refusal(server, make_model) -> None:
    """vLLM's --max-logprobs answers a larger top_logprobs with a 400: a limit, not a refusal, so no fallback."""
    state, _ = server
    state.logprobs_cap = 5
    with pytest.raises(EndpointRequestError, match="set top_logprobs to its cap") as info:
        make_model().loglikelihood([make_doc(f"en-{i}") for i in range(3)])
    assert "greater than max allowed: 5" in str(info.value) and len(state.chat) == 1
    [response] = make_model(top_logprobs=5).loglikelihood([make_doc("en-0")])
    assert response.posterior_method != "samples"


def test_sampling_when_disabled_and_server_ignores_n(server, make_model) -> None:
    state, _ = server
    state.ignore_n = True
    [response] = make_model(samples=3, logprobs="false").loglikelihood([make_doc()])
    assert [r["body"]["n"] for r in state.chat] == [3, 2, 1]
    assert response.text == [SAMPLES[0]] * 3 and response.unparseable_samples == 0


def test_a_second_run_makes_no_requests(server, make_model) -> None:
    state, _ = server
    docs = [make_doc(f"en-{i}") for i in range(3)]
    first = make_model().loglikelihood(docs), make_model().greedy_until(docs)
    assert len(state.chat) == 6
    second = make_model().loglikelihood(docs), make_model().greedy_until(docs)
    assert len(state.chat) == 6 and second == first


def test_an_interrupted_run_resumes_with_only_the_unfinished_samples(server, make_model) -> None:
    state, _ = server
    docs = [make_doc(f"en-{i}") for i in range(5)]
    state.fail_from = 3  # the server breaks for good on its 3rd request
    with pytest.raises(EndpointRequestError, match="3 of 5 posterior requests failed"):
        make_model(concurrency=1, max_retries=0).loglikelihood(docs)
    state.fail_from, state.chat = None, []
    responses = make_model(concurrency=1).loglikelihood(docs)
    asked = [r["parts"][0][1] for r in state.chat]
    assert len(asked) == 3 and sorted(asked) == sorted(docs[i].query.split(IMAGE_MARK)[0] for i in (2, 3, 4))
    assert len(responses) == 5 and all(abs(sum(math.exp(x) for x in r.logprobs) - 1) < 1e-9 for r in responses)


def test_changed_image_query_or_model_are_new_requests(server, make_model) -> None:
    state, _ = server
    make_model().loglikelihood([make_doc()])
    assert len(state.chat) == 1
    make_model().loglikelihood([make_doc(colors=(RED, GREEN, (0, 0, 254)))])  # one pixel value in one image
    make_model().loglikelihood([make_doc(history="A 71-year-old man.")])
    make_model(revision="weights-v2").loglikelihood([make_doc()])
    state.root = "/models/test-vlm-retrained"  # the server now reports a different model behind the name
    make_model().loglikelihood([make_doc()])
    assert len(state.chat) == 5
    make_model().loglikelihood([make_doc()])
    assert len(state.chat) == 5


def test_concurrency_limit_is_respected(server, make_model) -> None:
    state, _ = server
    state.delay = 0.05
    make_model(concurrency=3).greedy_until([make_doc(f"en-{i}") for i in range(12)])
    assert len(state.chat) == 12 and state.max_in_flight == 3


def test_settings_parsing_and_the_api_key_is_never_logged(server, make_model, monkeypatch, caplog) -> None:
    state, url = server
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    assert EndpointSettings.parse("test-vlm").model_name == "test-vlm"
    settings = EndpointSettings.parse("model_name=m,concurrency=16,logprobs=false,timeout=30")
    assert (settings.concurrency, settings.logprobs, settings.timeout) == (16, False, 30.0)
    with pytest.raises(ValidationError, match="concurency"):
        EndpointSettings.parse("model_name=m,concurency=16")
    with caplog.at_level(logging.DEBUG):
        state.fail_next = [500]
        model = EndpointModel("test-vlm")
        assert model.base_url == url and model.config.model_name == "test-vlm"
        model._cache._init_registry(None)  # what lighteval's Pipeline calls on every model
        model.greedy_until([make_doc()])
    assert "sk-test-secret" not in caplog.text


def test_an_unserved_model_name_fails_at_start(server, make_model) -> None:
    with pytest.raises(ValueError, match="does not serve model 'other'.*test-vlm"):
        EndpointModel(f"model_name=other,base_url={server[1]}")


def test_the_model_file_holds_exactly_one_lighteval_model() -> None:
    spec = importlib.util.spec_from_file_location("endpoint_model_file", ROOT / "lighteval_tasks/endpoint_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = [name for name in dir(module)
             if isinstance(getattr(module, name), type) and issubclass(getattr(module, name), LightevalModel)]
    assert found == ["EndpointModel"]


@pytest.mark.slow  # importing lighteval's model loader pulls in every backend (tens of seconds)
def test_lighteval_loads_the_backend_from_the_model_file(server, tmp_path) -> None:
    from lighteval.models.model_loader import load_model

    spec = f"model_name=test-vlm,base_url={server[1]},cache_dir={tmp_path}"
    model = load_model(CustomModelConfig(model_name=spec, model_definition_file_path=str(ROOT / "lighteval_tasks/endpoint_model.py")))
    assert type(model).__name__ == "EndpointModel" and model.tokenizer is None and model.max_length == 32768
    model._cache._init_registry(None)  # what lighteval's Pipeline calls on every model


def test_dataset_stats_prints_the_largest_number_of_images_in_one_case(built_fixture: Path, capsys) -> None:
    """The figure to serve with (--limit-mm-per-prompt): 3 images in en-0002, the fixture's largest case."""
    assert main(["dataset-stats", str(built_fixture)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["en: 2 cases, 5 images, at most 3 in one case (en-0002)",
                   "zh: 1 cases, 2 images, at most 2 in one case (zh-0001)",
                   "max_images_per_case: 3 (en-0002); vLLM: --limit-mm-per-prompt '{\"image\": 3}'"]  # fmt: skip
    assert main(["dataset-stats", str(built_fixture), "--max-images"]) == 0
    assert capsys.readouterr().out == "3\n"
