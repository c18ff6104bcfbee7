"""The LLM judge against a local OpenAI-compatible server on 127.0.0.1 (real HTTP, real `openai` client)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from medsyn.metrics.judges import JudgeError, get_judge, judge_record
from medsyn.metrics.judges.llm import (
    JUDGE_PROMPT_VERSION,
    REASONING_MAX_TOKENS,
    LLMJudge,
    default_cache_dir,
    judge_messages,
    parse_scores,
)
from medsyn.metrics.scoring import score_ddx

REFUSALS = {  # what OpenAI's reasoning-model APIs answer (HTTP 400) to a parameter they do not take
    "max_tokens": {"message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
                              "Use 'max_completion_tokens' instead.",
                   "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"},
    "temperature": {"message": "Unsupported value: 'temperature' does not support 0 with this model. "
                               "Only the default (1) value is supported.",
                    "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"},
}


class FakeServer:
    """Answers /v1/chat/completions from a script: a list of (status, content) per request, the last repeated;
    content None sends a reply with no choices. A request with a parameter in ``refuse`` gets that parameter's
    HTTP 400 of :data:`REFUSALS` instead (``bare``: the error names it in its message only)."""

    def __init__(self, script: list[tuple[int, str | None]], refuse: tuple[str, ...] = (), bare: bool = False) -> None:
        self.script, self.requests, self.answered = script, [], 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                refused = next((name for name in refuse if name in body), None)
                if refused is None:
                    status, content = server.script[min(server.answered, len(server.script) - 1)]
                    server.answered += 1
                if refused is not None:
                    error = REFUSALS[refused]
                    status, payload = 400, {"error": {"message": error["message"]} if bare else error}
                elif status == 200:
                    payload = {
                        "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                        "choices": [] if content is None else [
                            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                    }
                else:
                    payload = {"error": {"message": content, "type": "server_error"}}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator:
    servers: list[FakeServer] = []

    def start(script: list[tuple[int, str | None]], **kwargs: object) -> FakeServer:
        servers.append(FakeServer(script, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def judge_for(server: FakeServer, tmp_path: Path, **kwargs: object) -> LLMJudge:
    spec = {"model": "judge-model", "base_url": server.url, "api_key_env": "MEDSYN_TEST_KEY",
            "cache_dir": str(tmp_path / "cache"), "backoff_s": 0.01, **kwargs}
    judge = get_judge(spec)
    assert isinstance(judge, LLMJudge)
    return judge


def test_normal_answer_and_request_shape(serve, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MEDSYN_TEST_KEY", "sk-test")
    server = serve([(200, '{"scores": [5, 2, 0]}')])
    judge = judge_for(server, tmp_path)
    assert judge.score("Epidural hematoma", ["Epidural hematoma", "Subdural hematoma", "Migraine"]) == [5, 2, 0]
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer sk-test"
    assert request["body"]["temperature"] == 0
    assert request["body"]["model"] == "judge-model"
    assert request["body"]["messages"] == judge_messages("Epidural hematoma", ["Epidural hematoma", "Subdural hematoma", "Migraine"])
    assert "3. Migraine" in request["body"]["messages"][1]["content"]


def test_cache_hit_costs_no_request(serve, tmp_path) -> None:
    server = serve([(200, '{"scores": [4]}')])
    judge = judge_for(server, tmp_path)
    assert judge.score("Pneumonia", ["Aspiration pneumonia"]) == [4]
    assert judge.score("Pneumonia", ["Aspiration pneumonia"]) == [4]
    assert len(server.requests) == 1
    (cached,) = (tmp_path / "cache").rglob("*.json")
    record = json.loads(cached.read_text())
    assert record["prompt_version"] == JUDGE_PROMPT_VERSION and record["model"] == "judge-model"
    # another model, another candidate list or a fresh judge object: cache keyed accordingly
    judge_for(server, tmp_path).score("Pneumonia", ["Aspiration pneumonia"])
    assert len(server.requests) == 1
    judge.score("Pneumonia", ["Lung abscess"])
    judge_for(server, tmp_path, model="other-model").score("Pneumonia", ["Aspiration pneumonia"])
    assert len(server.requests) == 3


def test_cache_is_keyed_by_server(serve, tmp_path) -> None:
    # two servers serve different models under one name: each is asked, neither reuses the other's grades
    first, second = serve([(200, '{"scores": [5]}')]), serve([(200, '{"scores": [0]}')])
    assert judge_for(first, tmp_path).score("Pneumonia", ["Aspiration pneumonia"]) == [5]
    assert judge_for(second, tmp_path).score("Pneumonia", ["Aspiration pneumonia"]) == [0]
    assert len(first.requests) == len(second.requests) == 1


def test_default_cache_is_under_medsyn_cache(serve, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MEDSYN_CACHE", str(tmp_path / "medsyn-cache"))
    monkeypatch.setenv("MEDSYN_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "medsyn-cache" / "judge"
    server = serve([(200, '{"scores": [4]}')])
    LLMJudge(model="m", base_url=server.url, backoff_s=0.0).score("Pneumonia", ["Aspiration pneumonia"])
    assert len(list((tmp_path / "medsyn-cache" / "judge").rglob("*.json"))) == 1
    assert not (tmp_path / "elsewhere").exists()


def test_reply_without_choices_is_a_judge_failure(serve, tmp_path) -> None:
    server = serve([(200, None)])
    spec = {"model": "m", "base_url": server.url, "cache_dir": str(tmp_path), "backoff_s": 0.0}
    with pytest.raises(JudgeError, match="no message"):
        get_judge(spec).score("Sarcoidosis", ["Tuberculosis"])
    result = score_ddx(["1. Tuberculosis", "1. Gout"], ["Sarcoidosis", "Pseudogout"], judge=spec)
    assert result["judge_failures"] == 2 and result["ddx_coverage"] is None
    assert len(server.requests) == 3  # not retried: temperature 0 would repeat it


def test_fails_twice_then_answers(serve, tmp_path) -> None:
    server = serve([(500, "overloaded"), (503, "overloaded"), (200, '{"scores": [3, 5]}')])
    judge = judge_for(server, tmp_path, max_retries=3)
    assert judge.score("Sarcoidosis", ["Tuberculosis", "Sarcoidosis"]) == [3, 5]
    assert len(server.requests) == 3


def test_always_fails_is_a_judge_failure(serve, tmp_path) -> None:
    server = serve([(500, "down")])
    judge = judge_for(server, tmp_path, max_retries=2)
    with pytest.raises(JudgeError, match="after 3 attempt"):
        judge.score("Sarcoidosis", ["Tuberculosis"])
    assert len(server.requests) == 3
    assert not list((tmp_path / "cache").rglob("*.json"))  # failures are not cached


def test_client_error_is_not_retried(serve, tmp_path) -> None:
    server = serve([(404, "no such model")])
    with pytest.raises(JudgeError):
        judge_for(server, tmp_path).score("Sarcoidosis", ["Tuberculosis"])
    assert len(server.requests) == 1


@pytest.mark.parametrize("reply", ["I would give it a 4.", '{"scores": [4]}', '{"scores": [7, 1]}', '{"scores": ["high", 2]}', ""])
def test_unparseable_score_is_a_judge_failure(serve, tmp_path, reply) -> None:
    server = serve([(200, reply)])
    with pytest.raises(JudgeError, match="unparseable"):
        judge_for(server, tmp_path).score("Sarcoidosis", ["Tuberculosis", "Lymphoma"])


def test_score_ddx_reports_judge_failures_apart(serve, tmp_path) -> None:
    # the server grades the first case, then fails for good: one covered case, one judge failure, never a 0
    server = serve([(200, '{"scores": [5, 0]}'), (500, "down")])
    spec = {"model": "m", "base_url": server.url, "cache_dir": str(tmp_path), "backoff_s": 0.0, "max_retries": 1}
    result = score_ddx(["1. Sarcoidosis\n2. Lymphoma", "1. Gout"], ["Sarcoidosis", "Pseudogout"], judge=spec)
    assert result["judge_failures"] == 1
    assert result["best_score"] == [5, None] and result["covered"] == [True, None]
    assert result["ddx_coverage"] == 1.0 and result["n"] == 2 and result["n_judged"] == 1


def test_spec_strings() -> None:
    judge = get_judge("openai:Qwen/Qwen2.5-72B-Instruct@http://127.0.0.1:8000/v1")
    assert isinstance(judge, LLMJudge)
    assert (judge.model, judge.base_url) == ("Qwen/Qwen2.5-72B-Instruct", "http://127.0.0.1:8000/v1")
    assert judge.name == "openai:Qwen/Qwen2.5-72B-Instruct@http://127.0.0.1:8000/v1"
    assert get_judge("openai:gpt-4o").base_url is None
    assert get_judge(None).name == get_judge("lexical").name == "lexical"
    for bad in ["gpt-4o", "openai:", "vllm:x", "litellm:m@http://x", {"base_url": "http://x"}, {"model": "m", "temperature": 1}]:
        with pytest.raises(ValueError):
            get_judge(bad)


def test_parse_scores_accepts_integral_floats_only() -> None:
    assert parse_scores('{"scores": [4.0, 0]}', 2) == [4, 0]
    with pytest.raises(JudgeError):
        parse_scores('{"scores": [4.5, 0]}', 2)
    with pytest.raises(JudgeError):
        parse_scores('{"scores": [true, 0]}', 2)


@pytest.mark.parametrize("bare", [False, True], ids=["param-in-body", "message-only"])
def test_reasoning_model_api_that_refuses_temperature_and_max_tokens(serve, tmp_path, bare) -> None:
    # GPT-5 / o-series APIs answer HTTP 400 to temperature=0 and to max_tokens: the judge asks again without
    # each refused parameter (max_completion_tokens instead of max_tokens) and remembers it
    script = [(200, '{"scores": [5, 0]}'), (200, '{"scores": [4]}'), (200, '{"scores": [5]}')]
    server = serve(script, refuse=("temperature", "max_tokens"), bare=bare)
    judge = judge_for(server, tmp_path)
    assert judge.score("Sarcoidosis", ["Sarcoidosis", "Gout"]) == [5, 0]
    first, *_, last = server.requests
    assert first["body"]["temperature"] == 0 and first["body"]["max_tokens"] == 512
    assert "temperature" not in last["body"] and "max_tokens" not in last["body"]
    assert last["body"]["max_completion_tokens"] == REASONING_MAX_TOKENS
    assert len(server.requests) == 3 and judge.refused == {"temperature", "max_tokens"}
    # remembered per judge: another case, and another judge object of the same name, cost one request each
    assert judge.score("Gout", ["Pseudogout"]) == [4]
    assert len(server.requests) == 4
    result = score_ddx(["1. Lymphoma", "1. Gout"], ["Lymphoma", "Pseudogout"],
                       judge={"model": "judge-model", "base_url": server.url, "cache_dir": str(tmp_path / "c2"),
                              "api_key_env": "MEDSYN_TEST_KEY", "max_tokens": 300})
    assert result["judge_failures"] == 0 and result["n_judged"] == 2 and result["ddx_coverage"] == 1.0
    assert [r["body"]["max_completion_tokens"] for r in server.requests[4:]] == [300, 300]


def test_a_400_for_another_reason_is_still_a_judge_failure(serve, tmp_path) -> None:
    server = serve([(400, "Unsupported value: 'top_p' is not supported with this model.")])
    judge = judge_for(server, tmp_path)
    with pytest.raises(JudgeError, match="after 1 attempt"):
        judge.score("Sarcoidosis", ["Tuberculosis"])
    assert len(server.requests) == 1 and judge.refused == set()


def test_judge_record_names_model_and_prompt(serve, tmp_path) -> None:
    server = serve([(200, '{"scores": [5]}')])
    spec = {"model": "judge-model", "base_url": server.url, "cache_dir": str(tmp_path)}
    assert judge_record(spec) == {"name": f"openai:judge-model@{server.url}", "model": "judge-model",
                                  "prompt_version": JUDGE_PROMPT_VERSION}
    assert judge_record("lexical") == {"name": "lexical", "model": None, "prompt_version": None}
