"""The LLM DDx judge: any OpenAI-compatible chat endpoint, or a LiteLLM model string.

Temperature 0 and a reply budget ``max_tokens``, except where the model's API refuses them:
reasoning models (OpenAI's o-series and GPT-5 class) take only the default temperature, and
``max_completion_tokens``. When the server answers HTTP 400 naming ``temperature`` or
``max_tokens`` as unsupported, the judge asks again at once without it (``max_completion_tokens``
in place of ``max_tokens``), and remembers what the API refused for the rest of the process
(:attr:`LLMJudge.refused`, shared by judges of the same name), so each refusal costs one request.
One request per case grades every candidate; the prompt below is
published in the metric card and versioned (:data:`JUDGE_PROMPT_VERSION`). Replies are
cached on disk under ``$MEDSYN_CACHE/judge``, keyed by (judge name — provider, model and
server URL —, prompt version, gold, candidate list), so a rerun costs nothing. Transport errors, rate limits and server errors are retried with
exponential backoff; a reply that does not parse, or has no choices, is a judge failure at once
(temperature 0 would repeat it; a model without it is not given a second draw either). A failure raises :class:`~medsyn.metrics.judges.JudgeError`;
callers report it apart and never score it 0.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from medsyn.data.locations import cache_root
from medsyn.metrics.judges import JudgeError

JUDGE_PROMPT_VERSION = "medsyn-ddx-judge-v1"
"""Bump whenever JUDGE_SYSTEM or JUDGE_TEMPLATE changes: it is part of the cache key."""

JUDGE_SYSTEM = (
    "You are an expert physician. You grade a differential diagnosis list against the "
    "confirmed final diagnosis of a clinical case."
)
JUDGE_TEMPLATE = """Final diagnosis: {gold}

Differential diagnosis list:
{items}

Grade every item of the list against the final diagnosis on this scale:
5 = the exact diagnosis (a synonym or an equivalent name counts as exact)
4 = very close but not exact
3 = closely related and possibly helpful
2 = related but unlikely to be helpful
0 = nothing close
Items may be in English or Chinese; grade their meaning, not their wording.
Reply with JSON only, exactly in the form {{"scores": [s1, s2, ...]}}: one integer per item, in list order."""

_NO_RETRY_STATUS = {400, 401, 403, 404, 422}
ADJUSTABLE = ("temperature", "max_tokens")
"""The request parameters a judge drops (``max_tokens``: sends as ``max_completion_tokens``) when its API refuses them."""
DEFAULT_MAX_TOKENS = 512
REASONING_MAX_TOKENS = 8192
"""The default ``max_completion_tokens``: it also pays for the model's hidden reasoning, so 512 would leave no reply."""
_REFUSED: dict[str, set[str]] = {}
"""Judge name -> the parameters its API refused, shared by every LLMJudge of that name in this process."""


def refused_parameter(message: str, param: object = None, code: object = None) -> str | None:
    """The parameter of :data:`ADJUSTABLE` that an HTTP 400 reply refuses as unsupported, else None.

    >>> refused_parameter("Unsupported parameter: 'max_tokens' is not supported with this model. "
    ...                   "Use 'max_completion_tokens' instead.")
    'max_tokens'
    """
    if "unsupported" not in f"{message} {code}".lower():
        return None
    if param in ADJUSTABLE:
        return str(param)
    return next((name for name in ADJUSTABLE if f"'{name}'" in message), None)


def judge_messages(gold: str, candidates: list[str]) -> list[dict[str, str]]:
    """The chat messages sent to the judge for one case."""
    items = "\n".join(f"{i}. {c}" for i, c in enumerate(candidates, 1))
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": JUDGE_TEMPLATE.format(gold=gold, items=items)},
    ]


def parse_scores(reply: str, n: int) -> list[int]:
    """The ``n`` integer grades in a judge reply; JudgeError if the reply does not give exactly that.

    >>> parse_scores('```json\\n{"scores": [5, 0, 3]}\\n```', 3)
    [5, 0, 3]
    """
    match = re.search(r"\{.*\}", reply or "", re.S)
    try:
        scores = json.loads(match[0])["scores"] if match else None
    except (json.JSONDecodeError, KeyError, TypeError):
        scores = None
    if (
        not isinstance(scores, list)
        or len(scores) != n
        or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and s == int(s) and 0 <= s <= 5 for s in scores)
    ):
        raise JudgeError(f"unparseable judge reply (expected {n} integer scores 0-5): {str(reply)[:200]!r}")
    return [int(s) for s in scores]


def default_cache_dir() -> Path:
    """``judge/`` in MEDSYN's cache (``$MEDSYN_CACHE``, else ``~/.cache/medsyn``)."""
    return cache_root() / "judge"


class LLMJudge:
    """A chat-model judge; see the module docstring."""

    prompt_version = JUDGE_PROMPT_VERSION

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        provider: str = "openai",
        cache_dir: str | Path | None = None,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        timeout_s: float = 120.0,
        max_tokens: int | None = None,
    ) -> None:
        if not model:
            raise ValueError("an LLM judge needs a model name")
        if provider not in ("openai", "litellm"):
            raise ValueError(f"unknown judge provider {provider!r}: expected 'openai' or 'litellm'")
        if provider == "litellm" and importlib.util.find_spec("litellm") is None:
            raise ImportError("the 'litellm:' judge needs LiteLLM: pip install litellm")
        self.model, self.base_url, self.provider = model, base_url, provider
        self.api_key_env, self.max_retries, self.backoff_s = api_key_env, max_retries, backoff_s
        self.timeout_s, self.max_tokens = timeout_s, max_tokens
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.name = f"{provider}:{model}" + (f"@{base_url}" if base_url else "")
        self.refused = _REFUSED.setdefault(self.name, set())
        """The parameters of :data:`ADJUSTABLE` this judge's API refused."""
        self._client: Any = None

    def request_params(self) -> dict[str, Any]:
        """Temperature 0 and the reply budget, as the model's API takes them (see the module docstring)."""
        params: dict[str, Any] = {} if "temperature" in self.refused else {"temperature": 0}
        if "max_tokens" in self.refused:
            return params | {"max_completion_tokens": self.max_tokens or REASONING_MAX_TOKENS}
        return params | {"max_tokens": self.max_tokens or DEFAULT_MAX_TOKENS}

    def score(self, gold: str, candidates: list[str], language: str = "en") -> list[int]:
        """One grade in 0..5 per candidate (``language`` is not needed: the prompt is bilingual)."""
        if not candidates:
            return []
        key = hashlib.sha256(
            json.dumps([self.name, JUDGE_PROMPT_VERSION, gold, candidates], ensure_ascii=False).encode()
        ).hexdigest()
        path = self.cache_dir / key[:2] / f"{key}.json"
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))["scores"]
        reply = self._complete_with_retries(judge_messages(gold, candidates))
        scores = parse_scores(reply, len(candidates))
        record = {"judge": self.name, "model": self.model, "prompt_version": JUDGE_PROMPT_VERSION, "gold": gold,
                  "candidates": candidates, "scores": scores, "reply": reply, "request": self.request_params()}
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as tmp:
            json.dump(record, tmp, ensure_ascii=False)
        os.replace(tmp.name, path)
        return scores

    def _complete_with_retries(self, messages: list[dict[str, str]]) -> str:
        import openai  # LiteLLM's exceptions subclass openai's

        attempt = 0
        while True:
            try:
                return self._complete(messages)
            except openai.OpenAIError as error:
                status = getattr(error, "status_code", None)
                body = getattr(error, "body", None)
                body = body if isinstance(body, dict) else {}
                refused = refused_parameter(str(error), body.get("param"), body.get("code")) if status == 400 else None
                if refused is not None and refused not in self.refused:
                    self.refused.add(refused)  # the same request without it; at most once per parameter
                    continue
                if status in _NO_RETRY_STATUS or attempt >= self.max_retries:
                    raise JudgeError(f"judge {self.name} failed after {attempt + 1} attempt(s): {error}") from error
                time.sleep(self.backoff_s * 2**attempt)
                attempt += 1

    def _complete(self, messages: list[dict[str, str]]) -> str:
        if self.provider == "litellm":
            import litellm

            response = litellm.completion(model=self.model, messages=messages, timeout=self.timeout_s,
                                          **self.request_params())
        else:
            if self._client is None:
                import openai

                self._client = openai.OpenAI(
                    base_url=self.base_url, api_key=os.environ.get(self.api_key_env) or "EMPTY",
                    max_retries=0, timeout=self.timeout_s,
                )
            response = self._client.chat.completions.create(model=self.model, messages=messages, **self.request_params())
        choices = getattr(response, "choices", None)
        if not choices or choices[0].message is None:
            raise JudgeError(f"judge {self.name} sent a reply with no message: {str(response)[:200]!r}")
        return choices[0].message.content or ""
