"""DDx judges: score each candidate diagnosis against the final diagnosis on the 0-5 scale.

Scale (DESIGN §1): 5 the exact diagnosis, 4 very close but not exact, 3 closely related
and possibly helpful, 2 related but unlikely helpful, 0 nothing close.

Judge specs accepted by :func:`get_judge`:

* ``None`` or ``"lexical"`` — the offline deterministic :class:`~medsyn.metrics.judges.lexical.LexicalJudge`;
* ``"openai:MODEL"`` — an OpenAI-compatible chat endpoint; ``"openai:MODEL@BASE_URL"`` names
  the server (a vLLM / SGLang / TGI server or an API), e.g.
  ``"openai:Qwen/Qwen2.5-72B-Instruct@http://127.0.0.1:8000/v1"``; the key is read from
  ``OPENAI_API_KEY`` (``"EMPTY"`` when unset, as local servers expect);
* ``"litellm:MODEL"`` — any LiteLLM model string (``pip install litellm``);
* a dict ``{"model": ..., "base_url": ..., "api_key_env": ..., "provider": "openai" | "litellm",
  "cache_dir": ..., "max_retries": ..., "backoff_s": ..., "timeout_s": ..., "max_tokens": ...}``.

:func:`judge_record` is the ``judge`` of a results file (DESIGN §7): ``{name, model, prompt_version}``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


class JudgeError(RuntimeError):
    """A judge could not score a case (endpoint down, unparseable reply). Reported, never scored 0.

    ``partial`` holds the grades of the items the judge could score (None for the others) when it
    scored some of them, for inspection only: the case is still not judged (a hit among them would
    count where a miss could not).
    """

    def __init__(self, message: str, partial: list[int | None] | None = None) -> None:
        super().__init__(message)
        self.partial = partial


@runtime_checkable
class Judge(Protocol):
    """Scores candidate diagnoses against a gold diagnosis."""

    name: str

    def score(self, gold: str, candidates: list[str], language: str = "en") -> list[int]:
        """One integer in 0..5 per candidate; raises JudgeError on failure."""
        ...


def get_judge(spec: str | dict[str, Any] | Judge | None = None) -> Judge:
    """The judge described by ``spec`` (see the module docstring); ``None`` is the lexical judge."""
    if spec is None or spec == "lexical":
        from medsyn.metrics.judges.lexical import LexicalJudge

        return LexicalJudge()
    if isinstance(spec, Judge) and not isinstance(spec, (str, dict)):
        return spec
    from medsyn.metrics.judges.llm import LLMJudge

    if isinstance(spec, dict):
        try:
            return LLMJudge(**spec)
        except TypeError as error:  # a missing or unknown key
            raise ValueError(f"judge spec {spec!r}: {error}") from None
    if isinstance(spec, str):
        provider, sep, rest = spec.partition(":")
        if sep and provider in ("openai", "litellm") and rest:
            model, at, base_url = rest.partition("@")
            if provider == "litellm" and at:
                raise ValueError(f"judge spec {spec!r}: 'litellm:MODEL' takes no '@BASE_URL'")
            return LLMJudge(model=model, base_url=base_url or None, provider=provider)
    raise ValueError(
        f"unknown judge spec {spec!r}: expected 'lexical', 'openai:MODEL[@BASE_URL]', "
        "'litellm:MODEL' or a dict with at least 'model'"
    )


def judge_record(spec: str | dict[str, Any] | Judge | None = None) -> dict[str, str | None]:
    """``{name, model, prompt_version}`` of the judge ``spec`` names; model and prompt are None for the lexical judge.

    >>> judge_record("lexical")
    {'name': 'lexical', 'model': None, 'prompt_version': None}
    """
    judge = get_judge(spec)
    return {"name": judge.name, "model": getattr(judge, "model", None),
            "prompt_version": getattr(judge, "prompt_version", None)}


__all__ = ["Judge", "JudgeError", "get_judge", "judge_record"]
