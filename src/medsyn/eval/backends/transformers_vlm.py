"""A LightEval backend for transformers vision-language models, built for MEDSYN.

What lighteval's own vision path (``VLMTransformersModel``) does not do, this does:
images interleaved at their CE positions through the processor's chat template, checked on every
rendered prompt (:mod:`.placement`); what differs between model families (processor inputs, image
counts, forward inputs, which fast paths are tested) in one :class:`~.families.Family` each;
the answer posterior from the log-probabilities of the option letters in one
forward pass (no generation), merging every token variant of a letter
(:func:`medsyn.metrics.sensitivity.letter_of_token`, as the endpoint backend does) and
recording the letter mass before renormalizing; a loud error when images are dropped or a prompt
exceeds the context; a disk cache keyed by the model's content, the settings that change an
output (dtype, attention implementation, pixel budget, generation length) and the exact request
(the prompt as rendered),
so an interrupted run resumes and a rebuilt model, changed setting or changed dataset never
reuses stale outputs. The fast paths are not in the key: each is tested equal to the plain path.

Reasoning models: a chat template whose generation prompt opens a ``<think>`` block is refused
for the answer posterior (ES), since the next token there is reasoning, not an answer; a model
that starts reasoning on its own shows as low letter mass (a posterior failure).

Use it with ``lighteval custom "model_name=PATH,batch_size=8" lighteval_tasks/transformers_vlm.py ...``.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import math
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from lighteval.models.abstract_model import LightevalModel, ModelConfig
from lighteval.models.model_output import ModelResponse
from lighteval.tasks.requests import Doc
from PIL import Image
from torch.profiler import record_function
from tqdm.auto import tqdm
from transformers import DynamicCache

from medsyn.eval import distributed
from medsyn.eval.backends.aligned_mlp import use_aligned_vision_mlp
from medsyn.eval.backends.batching import padding_aware_chunks
from medsyn.eval.backends.cache import ResponseCache, image_digest, request_key, responses_dir
from medsyn.eval.backends.families import FAST_PATHS, UNVERIFIED, family_for
from medsyn.eval.backends.families.base import ImageEntry, single_bos
from medsyn.eval.backends.loading import parse_max_memory
from medsyn.eval.backends.packed_attention import use_packed_vision_attention
from medsyn.eval.backends.placement import PlacementError, Prompter, render
from medsyn.eval.backends.posterior import PosteriorResponse
from medsyn.eval.backends.prefix_sharing import identity_sequence, plan_prefix_sharing
from medsyn.eval.prompts import interleave
from medsyn.metrics.sensitivity import letter_of_token

logger = logging.getLogger(__name__)


class VLMConfig(ModelConfig):
    """Settings of the transformers backend (lighteval's model-args syntax: ``model_name=...,batch_size=8``)."""

    batch_size: int = 8
    device: str = "auto"
    dtype: str = "auto"
    attn_implementation: str = "sdpa"
    max_pixels: int | None = None
    max_new_tokens: int | None = None
    """Upper bound on generated tokens; by default each task's own generation size."""
    response_cache_dir: str | None = None
    """Default: $MEDSYN_CACHE/responses (~/.cache/medsyn/responses)."""
    use_response_cache: bool = True
    reuse_image_features: bool = True
    """Encode each distinct image once and reuse its features across prompts (the ES conditions of a case)."""
    share_prefix: bool = True
    """Run the text a case's prompts share once, and each prompt only from where it differs (posteriors)."""
    packed_vision_attention: bool = True
    """Window attention of Qwen2.5-VL's vision tower in one SDPA call per window size, not one per window."""
    aligned_vision_mlp: bool = True
    """Vision MLPs of an unaligned width (Qwen2.5-VL: 3,420) run zero-padded to a multiple of 8 (the same function)."""
    image_feature_cache_mb: int = 4096
    enable_thinking: bool | None = None
    """Passed to the chat template as ``enable_thinking`` (GLM-4.5V, Qwen3 and other hybrid-thinking templates: false
    closes the reasoning block, so ES reads an answer); None: not passed."""
    device_map: str | None = None
    """accelerate's big-model loading: ``auto`` spreads the layers over every GPU (then CPU); the model is not moved."""
    max_memory: str | None = None
    """With ``device_map``: the memory each device may hold, ``0:70GiB;1:70GiB;cpu:200GiB``."""

    @classmethod
    def from_model_name(cls, model_name: str) -> "VLMConfig":
        """Parse ``model_name`` as lighteval passes it: a bare path/id, or ``model_name=...,key=value``."""
        return cls.from_args(model_name) if "=" in model_name else cls(model_name=model_name)


class UnsupportedModel(ValueError):
    """A model family the backend cannot run correctly (refused with the reason)."""


class ReasoningTemplateError(ValueError):
    """The chat template opens a reasoning block where the answer posterior is read."""


class ImageTokenMismatch(ValueError):
    """The model's prompt does not carry one image slot per image shown (images would be dropped)."""


def model_fingerprint(path: str | Path) -> str:
    """A content fingerprint of a local model folder (config, processor, weights).

    Files up to 64 MiB are hashed whole; larger weight files by size plus their first and
    last MiB, which changes whenever a model is rebuilt or re-trained. A Hub id is fingerprinted
    by its resolved snapshot folder.
    """
    folder = Path(path)
    if not folder.is_dir():
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(str(path)))
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(folder)).encode())
        size = file.stat().st_size
        digest.update(str(size).encode())
        with open(file, "rb") as f:
            if size <= 64 * 2**20:
                digest.update(f.read())
            else:
                digest.update(f.read(2**20))
                f.seek(size - 2**20)
                digest.update(f.read())
    return digest.hexdigest()


def fit_to_budget(image: Image.Image, max_pixels: int | None) -> Image.Image:
    """Downscale ``image`` (keeping its aspect ratio) so that it has at most ``max_pixels`` pixels."""
    image = image.convert("RGB")
    if max_pixels is None or image.width * image.height <= max_pixels:
        return image
    scale = math.sqrt(max_pixels / (image.width * image.height))
    size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


class MedsynVLM(LightevalModel):
    """Transformers image-text-to-text models with interleaved images and option log-probabilities."""

    def __init__(self, config: ModelConfig, model=None, processor=None) -> None:
        """Load the model and processor from ``config.model_name``, or use the ``model``/``processor`` given
        (already on their device; ``model_name`` then names a folder with their config and processor)."""
        self.config = config if isinstance(config, VLMConfig) else VLMConfig.from_model_name(config.model_name)
        path = self.config.model_name
        model_type = model.config.model_type if model is not None else _model_type(path)
        self.family = family_for(model_type)
        if self.family.refusal:
            raise UnsupportedModel(f"{path}: {self.family.name} ({model_type}) is not supported: {self.family.refusal}")
        gpu = f"cuda:{distributed.local_rank()}" if distributed.world_size() > 1 else "cuda"  # a replica per GPU
        self.device = torch.device(
            (gpu if torch.cuda.is_available() else "cpu") if self.config.device == "auto" else self.config.device
        )
        dtype = self.config.dtype
        if dtype == "auto":
            dtype = "bfloat16" if self.device.type == "cuda" else "float32"
        self.processor = processor or self.family.load_processor(path)
        self.processor.tokenizer.padding_side = "left"
        loaded = model is None
        self.model = self._load(path, getattr(torch, dtype)) if loaded else model
        self.family.prepare_model(self.model)
        if self.config.device_map:
            self.device = _input_device(self.model)
        self.model.eval()
        template_kwargs = {} if self.config.enable_thinking is None else {"enable_thinking": self.config.enable_thinking}
        try:
            self.prompter = Prompter(self.processor, path, **template_kwargs)
        except PlacementError as error:
            raise UnsupportedModel(str(error)) from None
        self.fingerprint = model_fingerprint(path) if loaded else _weights_fingerprint(self.model)
        self.identity = {
            "backend": "transformers",
            "model": self.fingerprint,
            "max_pixels": self.config.max_pixels,
            "dtype": str(self.model.dtype),
            "attn_implementation": getattr(self.model.config, "_attn_implementation", None) or self.config.attn_implementation,
            "template": self.prompter.mode,
        }
        self._cache = ResponseCache(self.config.response_cache_dir or responses_dir(), Path(path).name or "model")
        self.image_token_id = self.family.image_token_id(self.model, self.processor)
        self.slot_id = _slot_token_id(self.processor)
        self.docs_per_rank = [0] * distributed.world_size()
        """Docs each rank computed (not read from the cache), by rank: one entry per process of the run."""
        self.stats = {"cache_hits": 0, "computed": 0, "images_encoded": 0, "images_reused": 0, "lm_tokens": 0, "lm_tokens_shared": 0, "lm_token_slots": 0}
        self._letter_ids: dict[tuple[str, ...], list[torch.Tensor]] = {}
        self._token_letters: dict[str, list[int]] | None = None
        self.features = ImageFeatureCache(self.config.image_feature_cache_mb * 2**20)
        self.fast_paths = self._switch_fast_paths(model_type)
        self.fast_path = self.fast_paths["reuse_image_features"] == "on"
        self.share_prefix = self.fast_paths["share_prefix"] == "on"
        self.setup = {"family": self.family.name, "model_type": model_type, "template": self.prompter.mode,
                      "image_slot": self.prompter.slot, "fast_paths": self.fast_paths}  # fmt: skip
        """What results record of how the model ran: its family, chat template mode and fast paths."""

    def _load(self, path: str, dtype: torch.dtype):
        """The model's weights: on ``self.device``, or spread by accelerate (``device_map``, ``max_memory``)."""
        kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": self.config.attn_implementation}
        if self.config.device_map:
            if distributed.world_size() > 1:
                raise ValueError("device_map spreads one model over every GPU: run one process (not torchrun) with it")
            kwargs["device_map"] = self.config.device_map
            kwargs["max_memory"] = parse_max_memory(self.config.max_memory)
            return self.family.load_model(path, **kwargs)
        if self.config.max_memory:
            raise ValueError("max_memory applies with device_map (e.g. device_map=auto,max_memory=0:70GiB;cpu:200GiB)")
        return self.family.load_model(path, **kwargs).to(self.device)

    def _switch_fast_paths(self, model_type: str) -> dict[str, str]:
        """Each fast path "on", or "off: <why>"; one log line says which and why."""
        family = self.family
        if family is UNVERIFIED:
            logger.warning(
                "%s: model type %r is not one of MEDSYN's tested families: it runs on the plain path (image placement "
                "is checked; its processor inputs, batching and posterior were not verified), every fast path off",
                self.config.model_name, model_type,
            )
        state: dict[str, str] = {}
        for name in FAST_PATHS:
            if not getattr(self.config, name):
                state[name] = "off: switched off in the model args"
            elif name not in family.fast_paths:
                state[name] = f"off: not tested for {family.name}"
            else:
                state[name] = "on"
        if state["reuse_image_features"] == "on" and not _accepts(self.model.forward, "mm_encoder_outputs"):
            state["reuse_image_features"] = "off: this transformers' forward takes no mm_encoder_outputs"
        missing = [name for name in family.processor_needs if not hasattr(self.processor, name)]
        if state["reuse_image_features"] == "on" and missing:
            state["reuse_image_features"] = f"off: this transformers' processor lacks {', '.join(missing)}"
        if state["share_prefix"] == "on":
            if state["reuse_image_features"] != "on":
                state["share_prefix"] = "off: needs image features reused"
            elif not _prefix_sharing_supported(self.model):
                state["share_prefix"] = "off: this transformers lacks what it calls"
        if state["packed_vision_attention"] == "on" and not use_packed_vision_attention(self.model):
            state["packed_vision_attention"] = "off: the vision tower failed its probe"
        if state["aligned_vision_mlp"] == "on" and not use_aligned_vision_mlp(self.model):
            state["aligned_vision_mlp"] = "off: no vision MLP of an unaligned width, or its self-check failed"
        logger.warning("%s: %s; fast paths: %s", self.config.model_name, family.name,
                       "; ".join(f"{name} {value}" for name, value in state.items()))  # fmt: skip
        return state

    # --- LightevalModel interface -------------------------------------------------

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    @property
    def add_special_tokens(self) -> bool:
        return False

    @property
    def max_length(self) -> int:
        text_config = getattr(self.model.config, "text_config", self.model.config)
        return int(getattr(text_config, "max_position_embeddings", 0) or self.processor.tokenizer.model_max_length)

    def greedy_until(self, docs: list[Doc]) -> list[ModelResponse]:
        """Greedy generation for each doc (FDx and DDx free text)."""
        return self._run(docs, "generate", self._generate_batch)

    def loglikelihood(self, docs: list[Doc]) -> list[ModelResponse]:
        """The answer posterior over ``doc.choices`` (option letters) from one forward pass per prompt.

        Raises ReasoningTemplateError when the chat template opens a ``<think>`` block after the prompt.
        """
        if docs and opens_reasoning(self.processor, **self.prompter.template_kwargs):
            raise ReasoningTemplateError(
                f"{self.config.model_name}: the chat template opens a <think> block after the prompt, so the next "
                f"token is reasoning, not the answer, and the option-letter posterior of ES (and of {_doc_name(docs[0])}) "
                "would be noise; use a chat template without thinking (e.g. Qwen3's enable_thinking=False) or leave "
                "the ES tasks out"
            )
        return self._run(docs, "posterior", self._posterior_batch)

    def loglikelihood_rolling(self, docs: list[Doc]) -> list[ModelResponse]:
        raise NotImplementedError("MEDSYN tasks need no rolling log-likelihood")

    # --- batching, caching -------------------------------------------------------------

    def _run(self, docs: list[Doc], kind: str, compute) -> list[ModelResponse]:
        """Answer ``docs`` from the response cache, else compute them in batches.

        Data parallel (:mod:`medsyn.eval.distributed`): the ranks pool their cache hits, plan the batches a
        single process would, and each computes whole batches (a case's prompts share a batch wherever prefix
        sharing applies); the results are gathered, so each doc's output is the one-process output.
        """
        use_cache = self.config.use_response_cache
        prompts = [self.rendered(doc) for doc in docs]
        keys = [self._key(doc, kind, prompt) for doc, prompt in zip(docs, prompts)] if use_cache else []  # hashing every image costs time
        results: list[dict | None] = [self._cache.get(k) for k in keys] if use_cache else [None] * len(docs)
        digest = _docs_digest(docs, kind)
        pooled = distributed.gather(lambda: (digest, {i: r for i, r in enumerate(results) if r is not None}))
        if any(their_digest != digest for their_digest, _ in pooled):
            raise distributed.RankFailure(f"the ranks hold different {kind} requests ({len(docs)} here): "
                                          "every rank must run the same tasks on the same dataset")  # fmt: skip
        for _, hits in pooled:
            for i, value in hits.items():
                results[i] = value
        todo = [i for i, r in enumerate(results) if r is None]
        self.stats["cache_hits"] += len(docs) - len(todo)
        batches = list(self._batches(docs, todo, kind))
        ranks = distributed.world_size()
        owners = distributed.assign([sum(self._approx_length(docs[i]) for i in batch) for batch in batches], ranks)
        mine = [batch for batch, owner in zip(batches, owners) if owner == distributed.rank()]
        for computed in distributed.gather(lambda: self._compute(docs, mine, kind, compute, keys)):
            for i, value in computed.items():
                results[i] = value
        for batch, owner in zip(batches, owners):
            self.docs_per_rank[owner] += len(batch)
        return [self._response(doc, kind, r, prompt) for doc, r, prompt in zip(docs, results, prompts)]

    def _compute(self, docs: list[Doc], batches: list[list[int]], kind: str, compute, keys: list[str]) -> dict[int, dict]:
        """Compute ``batches`` (indices into ``docs``) and cache each result as it comes; the results by index."""
        results: dict[int, dict] = {}
        bar = tqdm(total=sum(map(len, batches)), desc=f"medsyn {kind}", disable=not batches, leave=False)
        for batch in batches:
            for i, value in zip(batch, compute([docs[i] for i in batch])):
                results[i] = value
                if keys:
                    self._cache.put(keys[i], value)
            self.stats["computed"] += len(batch)
            bar.update(len(batch))
        bar.close()
        return results

    def _batches(self, docs: list[Doc], todo: list[int], kind: str) -> Iterator[list[int]]:
        """Longest first: similar lengths share a batch (little padding), and an out-of-memory error shows at once.
        With prefix sharing a case's prompts stay in one batch (groups are packed up to the batch size)."""
        todo = sorted(todo, key=lambda i: -self._approx_length(docs[i]))
        if kind != "posterior" or not self.share_prefix:
            yield from _chunks(todo, self.config.batch_size)
            return
        groups: dict[Any, list[int]] = {}
        for i in todo:
            groups.setdefault(_group_key(docs[i], i), []).append(i)
        batch: list[int] = []
        for members in groups.values():
            if batch and len(batch) + len(members) > self.config.batch_size:
                yield batch
                batch = []
            batch.extend(members)
        if batch:
            yield batch

    def _key(self, doc: Doc, kind: str, prompt: str) -> str:
        """The cache key of ``doc``: of its ``prompt`` as rendered (a template that writes the date, say, changes it)."""
        params = {"max_new_tokens": self._max_new_tokens(doc), "stop": list(doc.stop_sequences or [])} if kind == "generate" else {}
        return request_key(
            model=self.identity, kind=kind, query=prompt, images=doc.images or [], choices=doc.choices or [], params=params
        )

    def _max_new_tokens(self, doc: Doc) -> int:
        limits = [n for n in (doc.generation_size, self.config.max_new_tokens) if n]
        return min(limits) if limits else 512

    @staticmethod
    def _approx_length(doc: Doc) -> int:
        return len(doc.query) + 1000 * len(doc.images or [])

    def rendered(self, doc: Doc) -> str:
        """The prompt of ``doc`` as the model sees it: after the chat template, each image as its slot (before expansion)."""
        return self._prompts([doc])[0][0]

    def _response(self, doc: Doc, kind: str, value: dict, prompt: str) -> ModelResponse:
        if kind == "generate":
            return ModelResponse(input=prompt, text=[value["text"]], input_tokens=[], output_tokens=[[]])
        logprobs = value["logprobs"]
        best = max(range(len(logprobs)), key=logprobs.__getitem__)
        gold = doc.gold_index if isinstance(doc.gold_index, list) else [doc.gold_index]
        return PosteriorResponse(
            input=prompt,
            logprobs=logprobs,
            argmax_logits_eq_gold=[best in gold],
            input_tokens=[],
            output_tokens=[[] for _ in logprobs],
            letter_mass=value["letter_mass"],
        )

    # --- the model -----------------------------------------------------------------------

    def encode(self, docs: Sequence[Doc], reuse_images: bool = False) -> dict[str, Any]:
        """Chat-templated, interleaved, left-padded model inputs for ``docs``, with the checks of DESIGN §5.

        With ``reuse_images`` each distinct image is preprocessed and encoded once (then cached), and the
        inputs carry its features (``mm_encoder_outputs``) instead of pixels.
        """
        texts, images = self._prompts(docs)
        flat = [img for doc_images in images for img in doc_images]
        if reuse_images and flat:
            _, entries = self._image_entries(images)
            inputs = self._expanded(texts, entries)
            inputs["mm_encoder_outputs"] = self.family.features_input(entries)
        else:
            fitted = [[fit_to_budget(img, self.config.max_pixels) for img in doc_images] for doc_images in images]
            inputs = dict(self.family.processor_inputs(self.processor, texts, fitted))
        self._check(docs, images, inputs)
        inputs = self.family.forward_inputs(self.model, inputs)
        return {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}

    def _expanded(self, texts: list[str], entries: list[ImageEntry]) -> dict[str, Any]:
        try:
            return self.family.expanded_inputs(self.processor, self.slot_id, texts, entries)
        except ValueError as error:
            raise ImageTokenMismatch(str(error)) from None

    def _prompts(self, docs: Sequence[Doc]) -> tuple[list[str], list[list[Image.Image]]]:
        """The chat-templated text of each doc (one image slot per image, at its CE; without the template's BOS where
        the tokenizer adds its own, :func:`single_bos`) and its images (before the budget)."""
        texts, images = [], []
        for doc in docs:
            doc_images = list(doc.images or [])
            try:
                parts = interleave(doc.query, doc_images)
            except ValueError as exc:
                raise ImageTokenMismatch(f"{_doc_name(doc)}: {exc}") from None
            try:
                texts.append(self.prompter([None if isinstance(p, Image.Image) else p for p in parts]))
            except PlacementError as exc:
                raise PlacementError(f"{_doc_name(doc)}: {exc}") from None
            images.append(doc_images)
        return single_bos(self.processor.tokenizer, texts), images

    def _image_entries(self, images: list[list[Image.Image]]) -> tuple[list[str], list[ImageEntry]]:
        """Keys and vision-tower outputs of the images of each prompt, in order; images not in the feature cache are
        fitted to the pixel budget and go through the vision tower once. A key is the image's digest, with the
        family's context of the image in its prompt where its features depend on it (``Family.image_contexts``)."""
        digests: dict[int, str] = {}  # the conditions of a case often hold the same image objects
        keys, new = [], {}
        for doc_images in images:
            for img, context in zip(doc_images, self.family.image_contexts(doc_images)):
                digest = digests[id(img)] if id(img) in digests else digests.setdefault(id(img), image_digest(img))
                key = f"{digest}:{context}" if context else digest
                keys.append(key)
                if key not in self.features and key not in new.get(context, {}):
                    new.setdefault(context, {})[key] = fit_to_budget(img, self.config.max_pixels)
        for context, group in new.items():
            self._encode_images(group, context)
        encoded = sum(map(len, new.values()))
        self.stats["images_encoded"] += encoded
        self.stats["images_reused"] += len(keys) - encoded
        return keys, [self.features.get(key) for key in keys]

    def _encode_images(self, images: dict[str, Image.Image], context: str) -> None:
        """Run the image processor and the vision tower once on ``images`` (by key) and cache the features."""
        with record_function("medsyn.vision_tower"):  # a named region for torch.profiler tables
            entries = self.family.encode_in_context(self.model, self.processor, list(images.values()), self.device, context)
        for key, entry in zip(images, entries):
            self.features.put(key, entry)

    def _check(self, docs: Sequence[Doc], images: list[list[Image.Image]], inputs) -> None:
        n_tokens = inputs["attention_mask"].sum(-1)
        for row, doc in enumerate(docs):
            if int(n_tokens[row]) >= self.max_length:
                raise ValueError(
                    f"{_doc_name(doc)}: prompt of {int(n_tokens[row])} tokens exceeds the model's context of "
                    f"{self.max_length}; lower max_pixels or use a model with a longer context"
                )
            if self.image_token_id is None:
                continue
            shown = int((inputs["input_ids"][row] == self.image_token_id).sum())
            if images[row] and shown == 0 or not images[row] and shown:
                raise ImageTokenMismatch(
                    f"{_doc_name(doc)}: {len(images[row])} images given but the prompt has {shown} image tokens"
                )
        if "pixel_values" in inputs and self.image_token_id is not None:
            expected = sum(len(imgs) for imgs in images)
            got = self.family.images_reached(inputs)
            if got is not None and got != expected:
                raise ImageTokenMismatch(f"{len(docs)} prompts: {expected} images given, {got} reached the model")

    @torch.inference_mode()
    def _generate_batch(self, docs: list[Doc]) -> list[dict]:
        inputs = self.encode(docs)
        inputs.pop("position_ids", None)  # generate derives positions from the attention mask
        max_new = max(self._max_new_tokens(doc) for doc in docs)
        out = self.model.generate(**inputs, max_new_tokens=max_new, do_sample=False)
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        values = []
        for doc, tokens in zip(docs, new_tokens):
            text = self.processor.tokenizer.decode(tokens[: self._max_new_tokens(doc)], skip_special_tokens=True)
            for stop in doc.stop_sequences or []:
                if stop and stop in text:
                    text = text[: text.index(stop)]
            values.append({"text": text})
        return values

    @torch.inference_mode()
    def _posterior_batch(self, docs: list[Doc]) -> list[dict]:
        if self.share_prefix:
            logits = self._shared_prefix_logits(docs)
        else:
            inputs = self.encode(docs, reuse_images=self.fast_path)
            self.stats["lm_tokens"] += int(inputs["attention_mask"].sum())
            self.stats["lm_token_slots"] += inputs["attention_mask"].numel()
            logits = self.model(**inputs, logits_to_keep=1).logits[:, -1, :]
        logp = torch.log_softmax(logits.double(), dim=-1)
        values = []
        for row, doc in enumerate(docs):
            posterior, mass = self.letter_posterior(logp[row], doc.choices)
            values.append({"logprobs": posterior, "letter_mass": mass})
        return values

    def letter_posterior(self, logp: torch.Tensor, letters: Sequence[str]) -> tuple[list[float], float]:
        """Log posterior over ``letters`` from one row of next-token log-probabilities, and the letter mass
        (the probability of every token variant of the letters, before renormalizing)."""
        letter_logp = torch.stack([torch.logsumexp(logp[ids], 0) for ids in self.letter_token_ids(letters)])
        total = torch.logsumexp(letter_logp, 0)
        return (letter_logp - total).tolist(), float(total.exp())

    def _shared_prefix_logits(self, docs: list[Doc]) -> torch.Tensor:
        """Next-token logits after each prompt, with the prefix a case's prompts share computed once.

        Each group's anchor runs in full and keeps its key/value cache; each other prompt runs only
        its own suffix, right-padded, after the anchor's cache of the prefix they share, right-aligned
        (:mod:`.prefix_sharing`, :func:`_right_aligned_past`). Positions are those of the whole prompt;
        the family adds its own inputs (``Family.row_inputs``).
        """
        texts, images = self._prompts(docs)
        keys, entries = self._image_entries(images)
        inputs = self._expanded(texts, entries)
        self._check(docs, images, inputs)
        ids = [row[mask.bool()] for row, mask in zip(inputs["input_ids"], inputs["attention_mask"])]
        codes = {key: code for code, key in enumerate(dict.fromkeys(keys))}
        bounds = np.cumsum([0] + [len(doc_images) for doc_images in images])
        doc_images = [range(bounds[i], bounds[i + 1]) for i in range(len(docs))]
        identities = [
            identity_sequence(ids[i].tolist(), self.image_token_id, [codes[keys[j]] for j in doc_images[i]],
                              [entries[j].tokens for j in doc_images[i]])  # fmt: skip
            for i in range(len(docs))
        ]
        anchors, members = plan_prefix_sharing(identities, [_group_key(doc, i) for i, doc in enumerate(docs)])
        features = [[entries[j] for j in doc_images[i]] for i in range(len(docs))]
        grids = [[entries[j].grid for j in doc_images[i]] for i in range(len(docs))]
        positions = {a: self._positions(ids[a], grids[a]) for a in anchors}
        logits: list[torch.Tensor | None] = [None] * len(docs)

        anchor_logits, cache = self._forward_rows(
            [ids[a] for a in anchors], [positions[a] for a in anchors], [f for a in anchors for f in features[a]],
            past=DynamicCache() if members else None,  # every layer's cache whole (a sliding-window layer keeps its window)
            keep_cache=bool(members),
        )
        for row, a in enumerate(anchors):
            logits[a] = anchor_logits[row]
        self.stats["lm_tokens"] += sum(len(ids[a]) for a in anchors)
        anchor_row = {a: row for row, a in enumerate(anchors)}
        layers = [(layer.keys, layer.values) for layer in cache.layers] if members else []
        suffix_lengths = [len(ids[i]) - shared for i, _, shared in members]
        for rows_of_chunk in padding_aware_chunks(suffix_lengths, self.config.batch_size):
            chunk = [members[r] for r in rows_of_chunk]
            past_cache, past_mask = _right_aligned_past(layers, [anchor_row[a] for _, a, _ in chunk], [s for _, _, s in chunk])
            suffixes = [self._suffix(ids[i], features[i], grids[i], shared, positions[a]) for i, a, shared in chunk]
            member_logits, _ = self._forward_rows(
                [suffix_ids for suffix_ids, _, _ in suffixes],
                [suffix_positions for _, suffix_positions, _ in suffixes],
                [f for _, _, suffix_features in suffixes for f in suffix_features],
                past=past_cache,
                past_mask=past_mask,
            )
            for row, (i, _, shared) in enumerate(chunk):
                logits[i] = member_logits[row]
                self.stats["lm_tokens"] += len(ids[i]) - shared
                self.stats["lm_tokens_shared"] += shared
        return torch.stack(logits)

    def _suffix(
        self, ids: torch.Tensor, features: list[ImageEntry], grids: list[torch.Tensor | None], shared: int, anchor_positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, list[ImageEntry]]:
        """The ids, positions and image features of a prompt after its first ``shared`` tokens.

        The images after the prefix are whole (image codes differ per image, so a prefix never ends inside
        one). Positions continue from the prefix, whose positions are the anchor's: every position scheme
        here (0..n-1, Qwen's 3-axis one) continues at the prefix's largest position + 1.
        """
        spans = _image_spans(ids, self.image_token_id, features)
        kept = [k for k, (first, _) in enumerate(spans) if first >= shared]
        if any(first < shared <= last for first, last in spans):
            raise ValueError(f"a shared prefix of {shared} tokens ends inside an image: {spans}")
        offset = int(anchor_positions[:, :shared].max()) + 1 if shared else 0
        positions = self._positions(ids[shared:], [grids[k] for k in kept]) + offset
        return ids[shared:], positions, [features[k] for k in kept]

    def _positions(self, ids: torch.Tensor, grids: list[torch.Tensor | None]) -> torch.Tensor:
        """Position ids of a token sequence from 0, (axes, tokens): Qwen's 3-axis rotary positions, else 0..n-1."""
        return self.family.positions(self.model, ids, self.image_token_id, grids)

    def _forward_rows(
        self,
        ids: list[torch.Tensor],
        positions: list[torch.Tensor],
        features: list[ImageEntry],
        past: Any = None,
        past_mask: torch.Tensor | None = None,
        keep_cache: bool = False,
    ) -> tuple[torch.Tensor, Any]:
        """Right-padded rows (after ``past`` where given); the logits after each row's last token, and the cache."""
        batch, width = len(ids), max(len(x) for x in ids)
        input_ids = torch.full((batch, width), self.processor.tokenizer.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros((batch, width), dtype=torch.long)
        position_ids = torch.zeros((positions[0].shape[0], batch, width), dtype=torch.long)
        for row, (x, p) in enumerate(zip(ids, positions)):
            input_ids[row, : len(x)], mask[row, : len(x)], position_ids[:, row, : len(x)] = x, 1, p
        self.stats["lm_token_slots"] += batch * width
        last = torch.tensor([len(x) - 1 for x in ids])
        keep = torch.unique(last)
        kwargs: dict[str, Any] = {
            "input_ids": input_ids.to(self.device),
            "attention_mask": (mask if past_mask is None else torch.cat([past_mask, mask], dim=1)).to(self.device),
            "position_ids": (position_ids[0] if position_ids.shape[0] == 1 else position_ids).to(self.device),
            "use_cache": keep_cache,
            "logits_to_keep": keep.to(self.device),
        }
        if past is not None:
            kwargs["cache"] = past
        kwargs.update(self.family.row_inputs(self.model, input_ids, 0 if past_mask is None else past_mask.shape[1]))
        if features:
            kwargs["mm_encoder_outputs"] = self.family.features_input(features)
        with record_function("medsyn.language_model"):
            out = self.model(**kwargs)
        logits = out.logits[torch.arange(batch, device=self.device), torch.searchsorted(keep, last).to(self.device)]
        return logits, out.cache if keep_cache else None

    def letter_token_ids(self, letters: Sequence[str]) -> list[torch.Tensor]:
        """For each option letter, the ids of every token variant of it (:func:`letter_of_token`: "A", " A", "(A", ...)."""
        key = tuple(letters)
        if key not in self._letter_ids:
            if self._token_letters is None:
                self._token_letters = token_letters(self.processor.tokenizer)
            missing = [letter for letter in key if letter not in self._token_letters]
            if missing:
                raise ValueError(f"{self.config.model_name}: no token of this tokenizer is the option letter(s) {missing}")
            self._letter_ids[key] = [torch.tensor(self._token_letters[letter], device=self.device) for letter in key]
        return self._letter_ids[key]


class ImageFeatureCache:
    """Vision-tower outputs (:class:`ImageEntry`) by image digest, least recently used dropped beyond ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        from collections import OrderedDict

        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: "OrderedDict[str, ImageEntry]" = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def get(self, key: str) -> ImageEntry:
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: str, entry: ImageEntry) -> None:
        self._items[key] = entry
        self.bytes += entry.nbytes
        while self.bytes > self.max_bytes and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self.bytes -= old.nbytes


def token_letters(tokenizer) -> dict[str, list[int]]:
    """The ids of each letter's token variants in ``tokenizer`` (special tokens left out), by letter."""
    special = set(tokenizer.all_special_ids)
    ids = [i for i in range(len(tokenizer)) if i not in special]
    found: dict[str, list[int]] = {}
    for i, text in zip(ids, tokenizer.batch_decode([[i] for i in ids])):
        letter = letter_of_token(text)
        if letter is not None:
            found.setdefault(letter, []).append(i)
    return found


def opens_reasoning(processor, **template_kwargs: Any) -> bool:
    """Whether the chat template's generation prompt opens a ``<think>`` block it does not close."""
    marker = "\u2063medsyn-probe\u2063"
    prompt = render(processor, [marker], **template_kwargs)
    tail = prompt[prompt.rfind(marker) + len(marker) :]
    return tail.rfind("<think>") > tail.rfind("</think>")


def _weights_fingerprint(model) -> str:
    """A fingerprint of an in-memory model: a sample of every parameter's values (random models differ)."""
    digest = hashlib.sha256(model.config.to_json_string().encode())
    for name, parameter in model.named_parameters():
        digest.update(name.encode())
        digest.update(parameter.detach().flatten()[:64].float().cpu().numpy().tobytes())
    return digest.hexdigest()


def _accepts(function, name: str) -> bool:
    return name in inspect.signature(function).parameters


def _prefix_sharing_supported(model) -> bool:
    """Whether the installed transformers still offers what prefix sharing relies on: a ``cache`` argument, and
    for 3-axis rotary models a ``get_rope_index(input_ids, mm_token_type_ids=, image_grid_thw=)``; if not, one log line."""
    missing = [] if _accepts(model.forward, "cache") else ["forward(cache=...)"]
    rope_index = getattr(model.model, "get_rope_index", None)
    if rope_index is not None:
        missing += [f"get_rope_index({name}=...)" for name in ("mm_token_type_ids", "image_grid_thw") if not _accepts(rope_index, name)]
    if missing:
        logger.warning("prefix sharing off, each prompt runs whole: this transformers lacks %s", ", ".join(missing))
    return not missing


def _input_device(model) -> torch.device:
    """Where a model spread by accelerate takes its inputs: where its embeddings run (their accelerate hook's execution
    device where their weights are offloaded to the meta device), else their weights' device."""
    embeddings = model.get_input_embeddings()
    device = getattr(getattr(embeddings, "_hf_hook", None), "execution_device", None)
    return torch.device(device) if device is not None else embeddings.weight.device


def _model_type(path: str) -> str:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(path).model_type


def _slot_token_id(processor) -> int | None:
    """The id of the processor's image token (what the backend expands per image feature), or None."""
    token = getattr(processor, "image_token", None)
    return None if token is None else processor.tokenizer.convert_tokens_to_ids(token)


def _right_aligned_past(
    layers: list[tuple[torch.Tensor, torch.Tensor]], rows: list[int], shared: list[int]
) -> tuple[DynamicCache, torch.Tensor]:
    """A cache of the first ``shared[r]`` keys and values of anchor row ``rows[r]`` in each layer, right-aligned
    (left-padded) to the longest, and its attention mask: each row's suffix then follows its prefix directly, so
    key distances, and with them sliding windows, are those of the whole prompt."""
    past = max(shared)
    gap = torch.arange(past)[None, :] - (past - torch.tensor(shared))[:, None]  # the prefix token in each column; < 0: none
    mask, columns, anchor_rows = (gap >= 0).long(), gap.clamp(min=0), torch.tensor(rows)[:, None]

    def take(states: torch.Tensor) -> torch.Tensor:  # (rows, heads, past, head_dim)
        return states[anchor_rows.to(states.device), :, columns.to(states.device)].transpose(1, 2)

    return DynamicCache((take(k), take(v)) for k, v in layers), mask  # a layer at a time: one copy in memory


def _image_spans(ids: torch.Tensor, image_token_id: int, features: list[ImageEntry]) -> list[tuple[int, int]]:
    """For each image of a prompt, the positions of its first and last placeholder tokens (its placeholders are the
    next ``tokens`` ones, in one run or several: rows, tiles)."""
    placeholders = torch.nonzero(ids == image_token_id).flatten()
    counts = [f.tokens for f in features]
    if len(placeholders) != sum(counts):
        raise ValueError(f"{len(features)} images of {sum(counts)} placeholder tokens in all, "
                         f"but {len(placeholders)} in the prompt")  # fmt: skip
    ends = np.cumsum(counts)
    return [(int(placeholders[end - count]), int(placeholders[end - 1])) for count, end in zip(counts, ends)]


def _group_key(doc: Doc, index: int) -> Any:
    """Prompts that may share a prefix: those of one case."""
    case_id = (doc.specific or {}).get("case_id")
    return ("case", case_id) if case_id is not None else ("doc", index)


def _docs_digest(docs: Sequence[Doc], kind: str) -> str:
    """sha256 of the requests of ``docs`` (kind, query, choices, image count, in order): equal on every rank."""
    digest = hashlib.sha256(kind.encode())
    for doc in docs:
        digest.update(repr((doc.query, list(doc.choices or []), len(doc.images or []))).encode())
    return digest.hexdigest()


def _doc_name(doc: Doc) -> str:
    specific = doc.specific or {}
    return f"{specific.get('case_id', doc.id)} [{specific.get('condition', '?')}]"


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
