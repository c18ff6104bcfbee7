"""LightEval backend for any OpenAI-compatible chat endpoint (vLLM, SGLang, TGI, API models).

Each doc becomes one user message whose content interleaves text parts and
``image_url`` parts (PNG data URLs; JPEG sources stay JPEG) in the order of the
query's image marks. Generation runs at temperature 0. The answer posterior
(``loglikelihood``) comes from the top log-probabilities of the first generated
token; an endpoint that returns none, or refuses ``logprobs`` with HTTP 400 (or
``logprobs=false``), gets N samples at temperature 1, read with
:func:`medsyn.metrics.answers.extract_answer`, and add-one smoothed frequencies. The
first posterior request probes for log-probabilities alone; when it fails, the
others are not sent. Requests run concurrently under a limit, are retried with
exponential backoff, and every finished output is written at once to a
:class:`~medsyn.eval.backends.cache.ResponseCache`, so an interrupted run resumes.

Hostile replies: a reply with no choices, a non-finite or positive log-probability, or a
malformed body is retried like a transient error and, still malformed after the last retry,
counted as a failure (an empty text: an FDx parse failure; a uniform posterior: an ES parse
failure), logged, and never cached, so a rerun asks again. A reply naming another model than
the one requested (other than a dated snapshot of it, ``gpt-4o`` -> ``gpt-4o-2024-08-06``) is
refused. The API key and any ``Bearer`` token are scrubbed from every error message and log line.
A request the server rejects for its number of images (vLLM: "At most 4 image(s) may be provided in one
prompt") fails with the server's message and the fix (``--limit-mm-per-prompt``); images are never dropped.
A model name that ``GET /models`` does not list is refused before any request (:class:`EndpointSetupError`).

Letter mass (:data:`medsyn.metrics.sensitivity.MIN_LETTER_MASS`): with log-probabilities, the
listed probability of the option letters' token variants; with samples, the share of samples
that parse to a letter. N samples at temperature 1 that are all the same text are logged and
flagged (``identical_samples``): the server is likely ignoring the temperature.

Configuration is the ``model_name`` lighteval passes, in its model-args syntax::

    medsyn lighteval custom "model_name=Qwen/Qwen2.5-VL-7B-Instruct,base_url=http://127.0.0.1:8000/v1,concurrency=16" \\
        lighteval_tasks/endpoint_model.py "medsyn:fdx_en|0" --custom-tasks lighteval_tasks/medsyn.py

A value without ``=`` is just the model name (``base_url`` then comes from
``OPENAI_BASE_URL``). See :class:`EndpointSettings` for every key.

Cache identity: model name, base URL, the served model's ``id``/``root``/
``parent``/``owned_by`` from ``GET /models`` and the ``revision`` label, plus the
full request. ``created`` is left out (vLLM and others report the request time
there). New weights redeployed under the same name and path are not detected:
set ``revision=`` to a new label when that happens.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import json
import math
import os
import random
import re
import threading
from typing import Any, Awaitable, Callable, Sequence

import openai
from lighteval.models.abstract_model import LightevalModel, ModelConfig
from lighteval.models.model_output import ModelResponse
from lighteval.tasks.requests import Doc
from PIL import Image
from pydantic import BaseModel, Field
from tqdm import tqdm

from medsyn.eval.backends.cache import ResponseCache, request_key, responses_dir
from medsyn.eval.backends.posterior import PosteriorResponse
from medsyn.eval.prompts import interleave
from medsyn.metrics.answers import extract_answer
from medsyn.metrics.sensitivity import letter_of_token

logger = logging.getLogger(__name__)

MAX_RETRY_DELAY = 60.0
PROBABILITY_FLOOR = 1e-10
SAMPLE_TEMPERATURE = 1.0
LOGPROB_TOLERANCE = 1e-6
"""A log-probability above this (a probability above 1) is a malformed reply."""


class EndpointSettings(BaseModel, extra="forbid"):
    """Backend options, parsed from lighteval's ``model_name`` string."""

    model_name: str
    base_url: str | None = None  # default: $OPENAI_BASE_URL, else OpenAI's API
    api_key_env: str = "OPENAI_API_KEY"  # name of the variable holding the key (never logged)
    concurrency: int = Field(8, ge=1)  # requests in flight at once
    max_retries: int = Field(5, ge=0)  # retries after the first attempt
    retry_base: float = Field(1.0, ge=0)  # seconds; delay = retry_base * 2**attempt, jittered, capped at 60
    timeout: float = Field(120.0, gt=0)  # seconds per request
    logprobs: bool = True  # false: always use N samples for the posterior
    top_logprobs: int = Field(20, ge=1, le=20)
    samples: int = Field(10, ge=1)  # N for the sampling fallback
    sample_max_tokens: int = Field(32, ge=1)
    max_new_tokens: int = Field(512, ge=1)  # when a doc sets no generation_size
    max_length: int = Field(32768, ge=1)
    cache_dir: str | None = None  # default: $MEDSYN_CACHE/responses (~/.cache/medsyn/responses)
    revision: str = ""  # label of the served weights; change it after redeploying new weights

    @classmethod
    def parse(cls, spec: str) -> "EndpointSettings":
        """Read ``key=value,...`` (lighteval's model-args syntax) or a bare model name."""
        if "=" not in spec:
            return cls(model_name=spec.strip())
        return cls(**ModelConfig._parse_args(spec))


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def posterior_from_top_logprobs(top: Sequence[tuple[str, float]], letters: Sequence[str]) -> tuple[list[float], float]:
    """Log posterior over ``letters`` from one position's top log-probabilities, and the listed letter mass.

    Tokens that are the same letter (:func:`~medsyn.metrics.sensitivity.letter_of_token`:
    ``"A"``, ``" A"``, ``"(A"``) are merged by log-sum-exp; the letter mass is their total probability.
    A letter missing from the list gets the largest probability the list allows:
    min(smallest listed probability, unlisted mass / number of missing letters),
    never below 1e-10 so every log p is finite. The result is renormalised over
    ``letters`` (its exps sum to 1); with no letter listed it is uniform.
    """
    if not top:
        raise ValueError("empty top log-probability list")
    found: dict[str, list[float]] = {}
    for token, logprob in top:
        letter = letter_of_token(token)
        if letter in letters:
            found.setdefault(letter, []).append(logprob)
    listed = [math.exp(lp) for _, lp in top]
    missing = [letter for letter in letters if letter not in found]
    floor = PROBABILITY_FLOOR
    if missing:
        floor = max(min(min(listed), max(0.0, 1.0 - sum(listed)) / len(missing)), PROBABILITY_FLOOR)
    raw = [_logsumexp(found[letter]) if letter in found else math.log(floor) for letter in letters]
    norm = _logsumexp(raw)
    mass = sum(math.exp(lp) for values in found.values() for lp in values)
    return [value - norm for value in raw], mass


def posterior_from_samples(answers: Sequence[str | None], letters: Sequence[str]) -> tuple[list[float], int]:
    """Log of the add-one smoothed answer frequencies over ``letters``, and the count of unparseable answers.

    An answer that is None or not one of ``letters`` is unparseable: it is counted
    and left out of the frequencies.
    """
    counts = [sum(answer == letter for answer in answers) for letter in letters]
    parsed = sum(counts)
    total = parsed + len(letters)
    return [math.log((count + 1) / total) for count in counts], len(answers) - parsed


def encode_image(image: Image.Image) -> tuple[str, bytes]:
    """(MIME type, bytes) to send: JPEG sources re-saved with their own quantisation tables, the rest as PNG."""
    buffer = io.BytesIO()
    if image.format == "JPEG":
        image.save(buffer, format="JPEG", quality="keep")
        return "image/jpeg", buffer.getvalue()
    image.save(buffer, format="PNG")
    return "image/png", buffer.getvalue()


def doc_label(doc: Doc) -> str:
    """'case X, condition Y (task)' from ``doc.specific``, for error messages."""
    specific = doc.specific or {}
    if "case_id" in specific:
        return f"case {specific['case_id']}, condition {specific.get('condition')} ({specific.get('task')})"
    return f"doc {doc.id!r} of task {doc.task_name!r}"


def build_messages(doc: Doc) -> tuple[list[dict], list[bytes]]:
    """The chat messages for ``doc`` (one user message, images interleaved) and the image bytes sent, in order."""
    if doc.fewshot_samples:
        raise ValueError(f"{doc_label(doc)}: few-shot docs are not supported by the endpoint backend")
    try:
        parts = interleave(doc.query, list(doc.images or []))
    except ValueError as exc:
        raise ValueError(f"{doc_label(doc)}: {exc}") from exc
    content: list[dict] = []
    sent: list[bytes] = []
    for part in parts:
        if isinstance(part, str):
            content.append({"type": "text", "text": part})
            continue
        mime, data = encode_image(part)
        sent.append(data)
        url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        content.append({"type": "image_url", "image_url": {"url": url}})
    messages = [{"role": "user", "content": content}]
    if doc.instruction:
        messages.insert(0, {"role": "system", "content": doc.instruction})
    return messages, sent


def is_retryable(exc: BaseException) -> bool:
    """Connection errors, timeouts, 408, 409, 429 and 5xx are retried (as the openai client itself does)."""
    if isinstance(exc, openai.APIConnectionError):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


def retry_delay(exc: BaseException, attempt: int, base: float) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): the server's Retry-After, else jittered 2**attempt * base."""
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            return min(max(float(response.headers.get("retry-after", "")), 0.0), MAX_RETRY_DELAY)
        except ValueError:
            pass
    return min(base * 2**attempt * random.uniform(0.5, 1.0), MAX_RETRY_DELAY)


_REFUSAL = re.compile(r"not supported|unsupported|does not support|not available|not allowed|disabled")
_LIMIT = re.compile(r"greater than|max(?:imum)? allowed|must be|at most|exceed|<=|less than")


def rejects_logprobs(exc: BaseException | None) -> bool:
    """An HTTP 400 that refuses log-probabilities ("logprobs is not supported with this model"), not one
    that only limits them ("Requested sample logprobs of 20, which is greater than max allowed: 5")."""
    if not isinstance(exc, openai.BadRequestError):
        return False
    text = f"{exc.message} {exc.body}".lower()
    return "logprob" in text and _REFUSAL.search(text) is not None and _LIMIT.search(text) is None


def describe(exc: BaseException) -> str:
    """A one-line description of a request error (scrub it with :func:`scrub` before showing it)."""
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret and every ``Bearer <token>`` replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _BEARER.sub(r"\1***", text)


def scrub_exception(exc: BaseException, secrets: Sequence[str]) -> BaseException:
    """Scrub ``exc`` in place (its arguments, and an API error's message and body), so a traceback shows no secret."""
    exc.args = tuple(scrub(a, secrets) if isinstance(a, str) else a for a in exc.args)
    if isinstance(exc, openai.APIError):
        exc.message = scrub(exc.message, secrets)
        if exc.body is not None:
            exc.body = json.loads(scrub(json.dumps(exc.body), secrets))
    return exc


_IMAGE_LIMIT = re.compile(r"(?i)at most \d+ image|too many images|limit[-_]mm[-_]per[-_]prompt")


def rejects_image_count(exc: BaseException) -> bool:
    """An HTTP 4xx about the number of images in one prompt (vLLM's ``--limit-mm-per-prompt``)."""
    return isinstance(exc, openai.APIStatusError) and 400 <= exc.status_code < 500 and \
        _IMAGE_LIMIT.search(f"{exc.message} {exc.body}") is not None  # fmt: skip


def count_images(messages: list[dict]) -> int:
    """The ``image_url`` parts in ``messages``."""
    return sum(isinstance(m["content"], list) and sum(p.get("type") == "image_url" for p in m["content"]) for m in messages)


def same_model(replied: str, requested: str) -> bool:
    """Whether a reply's ``model`` is the one requested, or a dated snapshot of it (``gpt-4o-2024-08-06``)."""
    return replied == requested or re.fullmatch(re.escape(requested) + r"-\d{4}-?\d{2}-?\d{2}", replied) is not None


class MalformedReply(ValueError):
    """A 200 reply that cannot be used (no choices, a non-finite log-probability); retried like a 5xx."""


def check_choices(response: Any) -> None:
    """Raise MalformedReply unless ``response`` holds a non-empty list of choices."""
    if not isinstance(getattr(response, "choices", None), list) or not response.choices:
        raise MalformedReply("the reply has no choices")


def check_logprobs(response: Any) -> None:
    """Raise MalformedReply unless the choices are there and every top log-probability is a finite number <= 0."""
    check_choices(response)
    logprobs = response.choices[0].logprobs
    for position in (logprobs.content or []) if logprobs else []:
        for entry in position.top_logprobs or []:
            value = entry.logprob
            if not isinstance(entry.token, str) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value > LOGPROB_TOLERANCE:  # fmt: skip
                raise MalformedReply(f"log-probability {value!r} of token {entry.token!r} is not a finite number <= 0")


class EndpointSetupError(ValueError):
    """The endpoint cannot be used as configured (unreachable, or not serving the model); one line, no request sent."""


class EndpointRequestError(RuntimeError):
    """Requests that still failed after every retry; finished samples are already cached."""


class MalformedReplyError(EndpointRequestError):
    """Replies still malformed after every retry: counted as failures, never cached."""


def _run_coroutine(coro: Awaitable[Any]) -> Any:
    """Run ``coro`` to completion from synchronous code, also when an event loop is already running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


Job = Callable[[openai.AsyncOpenAI, asyncio.Semaphore], Awaitable[ModelResponse]]


class EndpointModel(LightevalModel):
    """A LightevalModel that queries an OpenAI-compatible ``/chat/completions`` endpoint."""

    def __init__(self, config: Any) -> None:
        """``config``: lighteval's CustomModelConfig (or any object with ``model_name``), or the settings string."""
        spec = config if isinstance(config, str) else config.model_name
        self.settings = s = EndpointSettings.parse(spec)
        # lighteval logs ``config.model_name`` and names its output folders after it: the bare model name
        self.config = ModelConfig(model_name=s.model_name) if isinstance(config, str) else config.model_copy(
            update={"model_name": s.model_name}
        )
        self.base_url = s.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        self._api_key = os.environ.get(s.api_key_env)
        if not self._api_key:
            logger.warning("environment variable %s is not set: sending requests without an API key", s.api_key_env)
        self._client_args = {"api_key": self._api_key or "EMPTY", "base_url": self.base_url, "timeout": s.timeout}
        self.identity = {
            "model": s.model_name,
            "base_url": self.base_url,
            "served": self._served_model(),
            "revision": s.revision,
        }
        # lighteval's Pipeline calls ``model._cache._init_registry``; our cache keys need no registry
        self._cache = ResponseCache(s.cache_dir or responses_dir(), s.model_name)
        self._logprobs_available: bool | None = None if s.logprobs else False
        self._warned_identical = False

    def _describe(self, exc: BaseException) -> str:
        """:func:`describe` of ``exc``, scrubbed (and ``exc`` scrubbed in place) of the API key and bearer tokens."""
        return describe(scrub_exception(exc, [self._api_key or ""]))

    def _served_model(self) -> dict | None:
        """The served model's stable fields from ``GET /models``; None when the endpoint has no such route."""
        client = openai.OpenAI(**self._client_args, max_retries=self.settings.max_retries)
        try:
            models = list(client.models.list())
        except openai.APIStatusError as exc:
            if exc.status_code in (404, 405, 501):
                logger.warning("%s has no model list (%s); cache identity is the model name and URL", self.base_url, self._describe(exc))
                return None
            raise EndpointSetupError(f"listing models at {self.base_url} failed: {self._describe(exc)}") from exc
        except openai.APIConnectionError as exc:
            raise EndpointSetupError(f"cannot reach {self.base_url}: {self._describe(exc)}") from exc
        finally:
            client.close()
        match = [m for m in models if m.id == self.settings.model_name]
        if not match:
            served = ", ".join(m.id for m in models[:20]) or "nothing"
            raise EndpointSetupError(f"{self.base_url} does not serve model {self.settings.model_name!r}; it serves: {served}")
        extra = match[0].model_extra or {}
        return {"id": match[0].id, "root": extra.get("root"), "parent": extra.get("parent"), "owned_by": match[0].owned_by}

    @property
    def tokenizer(self) -> None:
        """Endpoint models expose no tokenizer; the MEDSYN tasks need none."""
        return None

    @property
    def add_special_tokens(self) -> bool:
        return False

    @property
    def max_length(self) -> int:
        return self.settings.max_length

    # requests ---------------------------------------------------------------

    async def _create(
        self, client: openai.AsyncOpenAI, limit: asyncio.Semaphore, doc: Doc, check: Callable[[Any], None], **kwargs: Any
    ) -> Any:
        """One chat completion that passes ``check``, retried on transient errors and malformed replies.

        Raises MalformedReplyError when the last reply is still malformed, EndpointRequestError naming
        the doc on any other failure, and on a reply from another model than the one requested.
        """
        requested = self.settings.model_name
        for attempt in range(self.settings.max_retries + 1):
            try:
                async with limit:
                    response = await client.chat.completions.create(model=requested, **kwargs)
                replied = getattr(response, "model", None)
                if isinstance(replied, str) and replied and not same_model(replied, requested):
                    raise EndpointRequestError(
                        f"{doc_label(doc)}: the reply comes from model {replied!r}, not the requested {requested!r} "
                        f"(is {self.base_url} a router or proxy serving another model?); refusing it"
                    )
                check(response)
                return response
            except (openai.APIConnectionError, openai.APIStatusError, MalformedReply) as exc:
                message = self._describe(exc)
                if isinstance(exc, MalformedReply) and attempt == self.settings.max_retries:
                    raise MalformedReplyError(f"{doc_label(doc)}: malformed reply after {attempt + 1} attempt(s): {message}") from exc
                if rejects_image_count(exc):
                    raise EndpointRequestError(
                        f"{doc_label(doc)}: the server refuses the {count_images(kwargs['messages'])} images of this "
                        f"request ({message}); images are never dropped: serve with a larger --limit-mm-per-prompt "
                        "(`medsyn dataset-stats DATASET --max-images` prints the largest number in one case)"
                    ) from exc
                if not isinstance(exc, MalformedReply) and (not is_retryable(exc) or attempt == self.settings.max_retries):
                    raise EndpointRequestError(f"{doc_label(doc)}: request failed after {attempt + 1} attempt(s): {message}") from exc
                delay = retry_delay(exc, attempt, self.settings.retry_base)
                logger.warning("%s: %s; retry %d in %.2fs", doc_label(doc), message, attempt + 1, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _run(self, docs: list[Doc], jobs: list[Job], desc: str, probe_first: bool = False) -> list[ModelResponse]:
        """Run ``jobs`` concurrently (``probe_first``: the first one alone, and the rest only if it succeeds).

        Raises one EndpointRequestError listing every doc that failed, after all jobs ended.
        """

        async def main() -> list[Any]:
            limit = asyncio.Semaphore(self.settings.concurrency)
            async with openai.AsyncOpenAI(**self._client_args, max_retries=0) as client:
                with tqdm(total=len(jobs), desc=desc, disable=self.disable_tqdm) as bar:

                    async def run_one(doc: Doc, job: Job) -> ModelResponse:
                        try:
                            return await job(client, limit)
                        except EndpointRequestError:
                            raise
                        except Exception as exc:
                            raise EndpointRequestError(f"{doc_label(doc)}: {self._describe(exc)}") from exc
                        finally:
                            bar.update()

                    head = 1 if probe_first else 0
                    pairs = list(zip(docs, jobs))
                    first = await asyncio.gather(*(run_one(*p) for p in pairs[:head]), return_exceptions=True)
                    if any(isinstance(r, BaseException) for r in first):
                        return first
                    rest = await asyncio.gather(*(run_one(*p) for p in pairs[head:]), return_exceptions=True)
                    return first + rest

        results = _run_coroutine(main()) if jobs else []
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors and len(results) < len(jobs):
            raise EndpointRequestError(
                f"the first {desc} request, which probes whether {self.base_url} returns log-probabilities, "
                f"failed, so the other {len(jobs) - 1} were not sent (if the endpoint cannot return "
                f"log-probabilities, set logprobs=false; if it caps them, set top_logprobs to its cap):\n  {errors[0]}"
            ) from errors[0]
        if errors:
            lines = "\n".join(f"  {e}" for e in errors[:10]) + ("\n  ..." if len(errors) > 10 else "")
            raise EndpointRequestError(
                f"{len(errors)} of {len(jobs)} {desc} requests failed; finished ones are cached in "
                f"{self._cache.path}, so a rerun redoes only these:\n{lines}"
            ) from errors[0]
        return results

    def _use_samples(self, reason: str) -> None:
        """From now on posteriors come from samples; the first time, say why in the log."""
        if self._logprobs_available is None:
            logger.warning(
                "%s %s: posteriors come from %d samples (set logprobs=false to skip the probe)",
                self.base_url, reason, self.settings.samples,
            )
        self._logprobs_available = False

    # lighteval API ----------------------------------------------------------

    def greedy_until(self, docs: list[Doc]) -> list[ModelResponse]:
        """Temperature-0 generation, up to ``doc.generation_size`` (default ``max_new_tokens``) tokens."""
        return self._run(docs, [self._generate_job(doc) for doc in docs], "generate")

    def loglikelihood(self, docs: list[Doc]) -> list[ModelResponse]:
        """The posterior over ``doc.choices`` (option letters) as normalised log-probabilities."""
        jobs = [self._posterior_job(doc) for doc in docs]
        # while unknown, the first doc shows whether the endpoint returns log-probabilities before the rest are sent
        return self._run(docs, jobs, "posterior", probe_first=self._logprobs_available is None)

    def loglikelihood_rolling(self, docs: list[Doc]) -> list[ModelResponse]:
        raise NotImplementedError("chat endpoints expose no prompt log-probabilities; MEDSYN tasks do not use perplexity")

    # jobs -------------------------------------------------------------------

    def _key(self, doc: Doc, kind: str, sent: list[bytes], params: dict) -> str:
        return request_key(
            model=self.identity,
            kind=kind,
            query=doc.query,
            images=sent,
            choices=list(doc.choices or []),
            params={**params, "instruction": doc.instruction},
        )

    async def _cached(self, key: str, compute: Callable[[], Awaitable[dict]]) -> dict:
        """The cached value of ``key``, else ``compute()``'s, cached once it returns (a raised error caches nothing)."""
        value = self._cache.get(key)
        if value is None:
            value = await compute()
            self._cache.put(key, value)
        return value

    def _malformed(self, exc: MalformedReplyError, counted_as: str) -> None:
        logger.warning("%s; counted as %s, not cached (a rerun asks again)", exc, counted_as)

    def _generate_job(self, doc: Doc) -> Job:
        messages, sent = build_messages(doc)
        params = {
            "temperature": 0.0,
            "max_tokens": doc.generation_size or self.settings.max_new_tokens,
            "n": doc.num_samples,
        }
        if doc.stop_sequences:
            params["stop"] = list(doc.stop_sequences)
        key = self._key(doc, "generate", sent, params)

        async def job(client: openai.AsyncOpenAI, limit: asyncio.Semaphore) -> ModelResponse:
            async def compute() -> dict:
                response = await self._create(client, limit, doc, check_choices, messages=messages, **params)
                choices = sorted(response.choices, key=lambda c: c.index)
                return {
                    "texts": [c.message.content or "" for c in choices],
                    "reasonings": [getattr(c.message, "reasoning_content", None) for c in choices],
                    "finish_reasons": [c.finish_reason for c in choices],
                    "system_fingerprint": response.system_fingerprint,
                }

            try:
                value = await self._cached(key, compute)
            except MalformedReplyError as exc:
                self._malformed(exc, "an empty answer")
                return ModelResponse(text=[""] * params["n"], input=doc.query)
            return ModelResponse(text=value["texts"], reasonings=value["reasonings"], input=doc.query)

        return job

    def _posterior_job(self, doc: Doc) -> Job:
        letters = list(doc.choices)
        if not letters or any(letter_of_token(c) != c for c in letters):
            raise ValueError(f"{doc_label(doc)}: choices must be option letters, got {letters!r}")
        messages, sent = build_messages(doc)
        s = self.settings
        lp_params = {"temperature": 0.0, "max_tokens": 1, "logprobs": True, "top_logprobs": s.top_logprobs}
        sample_params = {"temperature": SAMPLE_TEMPERATURE, "max_tokens": s.sample_max_tokens}

        async def ask_logprobs(client: openai.AsyncOpenAI, limit: asyncio.Semaphore) -> dict:
            response = await self._create(client, limit, doc, check_logprobs, messages=messages, **lp_params)
            choice = response.choices[0]
            content = choice.logprobs.content if choice.logprobs else None
            top = [[t.token, t.logprob] for t in content[0].top_logprobs] if content and content[0].top_logprobs else None
            return {"text": choice.message.content or "", "top_logprobs": top, "system_fingerprint": response.system_fingerprint}

        async def ask_samples(client: openai.AsyncOpenAI, limit: asyncio.Semaphore) -> dict:
            texts: list[str] = []
            while len(texts) < s.samples:  # servers that ignore ``n`` return fewer choices
                response = await self._create(
                    client, limit, doc, check_choices, messages=messages, n=s.samples - len(texts), **sample_params
                )
                texts += [c.message.content or "" for c in sorted(response.choices, key=lambda c: c.index)]
            return {"texts": texts[: s.samples], "system_fingerprint": response.system_fingerprint}

        async def logprobs_or_none(client: openai.AsyncOpenAI, limit: asyncio.Semaphore) -> dict | None:
            """The top log-probabilities answer; None when the probe is refused with a 400 about logprobs."""
            try:
                return await self._cached(self._key(doc, "logprobs", sent, lp_params), lambda: ask_logprobs(client, limit))
            except MalformedReplyError:
                raise
            except EndpointRequestError as exc:
                if self._logprobs_available is None and rejects_logprobs(exc.__cause__):
                    self._use_samples(f"refused log-probabilities ({self._describe(exc.__cause__)})")
                    return None
                raise

        async def posterior(client: openai.AsyncOpenAI, limit: asyncio.Semaphore) -> ModelResponse:
            value = await logprobs_or_none(client, limit) if self._logprobs_available is not False else None
            if value is not None:
                if value["top_logprobs"] is not None:
                    self._logprobs_available = True
                    logprobs, mass = posterior_from_top_logprobs(value["top_logprobs"], letters)
                    greedy = letter_of_token(value["text"])
                    return PosteriorResponse(
                        text=[value["text"]],
                        logprobs=logprobs,
                        argmax_logits_eq_gold=[letter == greedy for letter in letters],
                        input=doc.query,
                        posterior_method="logprobs",
                        n_samples=1,
                        unparseable_samples=0 if mass > 0 else 1,
                        letter_mass=mass,
                    )
                self._use_samples("returned no log-probabilities")
            key = self._key(doc, "samples", sent, {**sample_params, "n": s.samples})
            value = await self._cached(key, lambda: ask_samples(client, limit))
            texts = value["texts"]
            options = (doc.specific or {}).get("options")
            answers = [extract_answer(text, options) for text in texts]
            logprobs, unparseable = posterior_from_samples(answers, letters)
            counts = [answers.count(letter) for letter in letters]
            mode = [count == max(counts) and counts.count(count) == 1 and count > 0 for count in counts]
            identical = len(texts) > 1 and len(set(texts)) == 1
            if identical and not self._warned_identical:
                self._warned_identical = True
                logger.warning(
                    "%s: all %d samples at temperature %g are the same text: %s may ignore the temperature "
                    "(recorded as identical_samples in results.json)", doc_label(doc), len(texts), SAMPLE_TEMPERATURE, self.base_url,
                )  # fmt: skip
            return PosteriorResponse(
                text=texts,
                logprobs=logprobs,
                argmax_logits_eq_gold=mode,
                input=doc.query,
                posterior_method="samples",
                n_samples=len(texts),
                unparseable_samples=unparseable,
                letter_mass=(len(texts) - unparseable) / len(texts),
                temperature=SAMPLE_TEMPERATURE,
                identical_samples=identical,
            )

        async def job(client: openai.AsyncOpenAI, limit: asyncio.Semaphore) -> ModelResponse:
            try:
                return await posterior(client, limit)
            except MalformedReplyError as exc:
                self._malformed(exc, "an ES parse failure")
                sampled = self._logprobs_available is False
                n = s.samples if sampled else 1
                return PosteriorResponse(
                    text=[""], logprobs=[-math.log(len(letters))] * len(letters), argmax_logits_eq_gold=[False] * len(letters),
                    input=doc.query, posterior_method="samples" if sampled else "logprobs", n_samples=n, unparseable_samples=n,
                    temperature=SAMPLE_TEMPERATURE if sampled else None,
                )  # fmt: skip

        return job
