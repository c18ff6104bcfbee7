"""The answer posterior as both backends return it: lighteval's ModelResponse plus how it was measured.

lighteval stores these fields in its details (the dataclass is serialized whole), and
:mod:`medsyn.eval.pipeline` copies them into the samples scored into ``results.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lighteval.models.model_output import ModelResponse


@dataclass
class PosteriorResponse(ModelResponse):
    """A ModelResponse for the answer posterior: ``logprobs`` is log p(letter) per choice, normalised.

    ``posterior_method``: "logprobs" or "samples"; ``n_samples``: the outputs it rests on;
    ``unparseable_samples``: those with no answer (for "logprobs": 1 when no option letter had
    any probability, and the posterior is then uniform); ``letter_mass``: the probability of the
    option letters before renormalizing, or the share of parsed samples
    (:data:`medsyn.metrics.sensitivity.MIN_LETTER_MASS`); ``temperature``: of the samples (None for
    "logprobs"); ``identical_samples``: all N > 1 samples were the same text (a server that ignores
    the temperature).
    """

    posterior_method: str = "logprobs"
    n_samples: int = 1
    unparseable_samples: int = 0
    letter_mass: float | None = None
    temperature: float | None = None
    identical_samples: bool = False
