"""A LightEval backend for transformers vision-language models, built for MEDSYN.

What lighteval's own vision path (``VLMTransformersModel``) does not do, this does:
images interleaved at their CE positions through the processor's chat template;
the answer posterior from the log-probabilities of the option letters in one
forward pass (no generation); a loud error when images are dropped or a prompt
exceeds the context; a disk cache keyed by the model's content and the exact
request, so an interrupted run resumes and a rebuilt model or changed dataset
never reuses stale outputs.

Use it with ``lighteval custom "model_name=PATH,batch_size=8" lighteval_tasks/transformers_vlm.py ...``.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import math
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from lighteval.models.abstract_model import LightevalModel, ModelConfig
from lighteval.models.model_output import ModelResponse
from lighteval.tasks.requests import Doc
from PIL import Image
from tqdm.auto import tqdm

from ..prompts import interleave
from .cache import ResponseCache, image_digest, request_key, responses_dir

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
    image_feature_cache_mb: int = 4096

    @classmethod
    def from_model_name(cls, model_name: str) -> "VLMConfig":
        """Parse ``model_name`` as lighteval passes it: a bare path/id, or ``model_name=...,key=value``."""
        return cls.from_args(model_name) if "=" in model_name else cls(model_name=model_name)


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
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.config = config if isinstance(config, VLMConfig) else VLMConfig.from_model_name(config.model_name)
        path = self.config.model_name
        self.device = torch.device(
            ("cuda" if torch.cuda.is_available() else "cpu") if self.config.device == "auto" else self.config.device
        )
        dtype = self.config.dtype
        if dtype == "auto":
            dtype = "bfloat16" if self.device.type == "cuda" else "float32"
        self.processor = processor or AutoProcessor.from_pretrained(path)
        self.processor.tokenizer.padding_side = "left"
        self.model = model or AutoModelForImageTextToText.from_pretrained(
            path, dtype=getattr(torch, dtype), attn_implementation=self.config.attn_implementation
        ).to(self.device)
        self.model.eval()
        self.fingerprint = model_fingerprint(path) if model is None else _weights_fingerprint(self.model)
        self.identity = {"backend": "transformers", "model": self.fingerprint, "max_pixels": self.config.max_pixels}
        self._cache = ResponseCache(self.config.response_cache_dir or responses_dir(), Path(path).name or "model")
        self.image_token_id = getattr(self.model.config, "image_token_id", None) or getattr(
            self.model.config, "image_token_index", None
        )
        self.stats = {"cache_hits": 0, "computed": 0, "images_encoded": 0, "images_reused": 0}
        self._letter_ids: dict[tuple[str, ...], list[torch.Tensor]] = {}
        self.features = ImageFeatureCache(self.config.image_feature_cache_mb * 2**20)
        self.fast_path = self.config.reuse_image_features and _accepts(self.model.forward, "mm_encoder_outputs")

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
        """The answer posterior over ``doc.choices`` (option letters) from one forward pass per prompt."""
        return self._run(docs, "posterior", self._posterior_batch)

    def loglikelihood_rolling(self, docs: list[Doc]) -> list[ModelResponse]:
        raise NotImplementedError("MEDSYN tasks need no rolling log-likelihood")

    # --- batching, caching -------------------------------------------------------------

    def _run(self, docs: list[Doc], kind: str, compute) -> list[ModelResponse]:
        use_cache = self.config.use_response_cache
        keys = [self._key(doc, kind) for doc in docs] if use_cache else []  # hashing every image costs time
        results: list[dict | None] = [self._cache.get(k) for k in keys] if use_cache else [None] * len(docs)
        todo = [i for i, r in enumerate(results) if r is None]
        self.stats["cache_hits"] += len(docs) - len(todo)
        # Longest first: similar lengths share a batch (little padding), and an out-of-memory error shows at once.
        todo.sort(key=lambda i: -self._approx_length(docs[i]))
        bar = tqdm(total=len(todo), desc=f"medsyn {kind}", disable=not todo, leave=False)
        for batch in _chunks(todo, self.config.batch_size):
            for i, value in zip(batch, compute([docs[i] for i in batch])):
                results[i] = value
                if use_cache:
                    self._cache.put(keys[i], value)
            self.stats["computed"] += len(batch)
            bar.update(len(batch))
        bar.close()
        return [self._response(doc, kind, r) for doc, r in zip(docs, results)]

    def _key(self, doc: Doc, kind: str) -> str:
        params = {"max_new_tokens": self._max_new_tokens(doc), "stop": list(doc.stop_sequences or [])} if kind == "generate" else {}
        return request_key(
            model=self.identity, kind=kind, query=doc.query, images=doc.images or [], choices=doc.choices or [], params=params
        )

    def _max_new_tokens(self, doc: Doc) -> int:
        limits = [n for n in (doc.generation_size, self.config.max_new_tokens) if n]
        return min(limits) if limits else 512

    @staticmethod
    def _approx_length(doc: Doc) -> int:
        return len(doc.query) + 1000 * len(doc.images or [])

    def _response(self, doc: Doc, kind: str, value: dict) -> ModelResponse:
        if kind == "generate":
            return ModelResponse(input=doc.query, text=[value["text"]], input_tokens=[], output_tokens=[[]])
        logprobs = value["logprobs"]
        best = max(range(len(logprobs)), key=logprobs.__getitem__)
        gold = doc.gold_index if isinstance(doc.gold_index, list) else [doc.gold_index]
        return ModelResponse(
            input=doc.query,
            logprobs=logprobs,
            argmax_logits_eq_gold=[best in gold],
            input_tokens=[],
            output_tokens=[[] for _ in logprobs],
        )

    # --- the model -----------------------------------------------------------------------

    def encode(self, docs: Sequence[Doc], reuse_images: bool = False) -> tuple[dict[str, Any], list[Image.Image]]:
        """Chat-templated, interleaved, left-padded model inputs for ``docs``, with the checks of DESIGN §5,
        and the images they show (after the pixel budget), in prompt order.

        With ``reuse_images`` each distinct image is preprocessed and encoded once (then cached), and the
        inputs carry its features (``mm_encoder_outputs``) instead of pixels.
        """
        texts, images = [], []
        for doc in docs:
            doc_images = [fit_to_budget(img, self.config.max_pixels) for img in (doc.images or [])]
            try:
                parts = interleave(doc.query, doc_images)
            except ValueError as exc:
                raise ImageTokenMismatch(f"{_doc_name(doc)}: {exc}") from None
            content = [{"type": "image"} if isinstance(p, Image.Image) else {"type": "text", "text": p} for p in parts]
            texts.append(
                self.processor.apply_chat_template(
                    [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
                )
            )
            images.append(doc_images)
        flat = [img for doc_images in images for img in doc_images]
        if reuse_images and flat:
            inputs = self._encode_reusing_images(texts, flat)
        else:
            inputs = self.processor(text=texts, images=flat or None, padding=True, return_tensors="pt")
        self._check(docs, images, inputs)
        if "image_grid_thw" not in inputs:  # 1-D rotary positions: count from the first real token (left padding)
            inputs["position_ids"] = (inputs["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        return {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}, flat

    def _encode_reusing_images(self, texts: list[str], images: list[Image.Image]) -> dict[str, Any]:
        """Tokenize ``texts`` with each image slot expanded to its feature count, from the image cache."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        keys = [image_digest(img) for img in images]
        new = {key: img for key, img in zip(keys, images) if key not in self.features}
        if new:
            self._encode_images(new)
        self.stats["images_encoded"] += len(new)
        self.stats["images_reused"] += len(keys) - len(new)
        entries = [self.features.get(key) for key in keys]
        token, slots = self.processor.image_token, iter(entries)
        expanded = []
        for text in texts:
            pieces = text.split(token)
            expanded.append(pieces[0] + "".join(token * next(slots)[0].shape[0] + piece for piece in pieces[1:]))
        inputs = dict(self.processor.tokenizer(expanded, padding=True, return_tensors="pt"))
        if entries[0][1] is not None:
            inputs["image_grid_thw"] = torch.stack([grid for _, grid in entries])
        if getattr(self.processor, "return_mm_token_type_ids", False):
            inputs["mm_token_type_ids"] = torch.tensor(self.processor.create_mm_token_type_ids(inputs["input_ids"].tolist()))
        inputs["mm_encoder_outputs"] = {"image": BaseModelOutputWithPooling(pooler_output=tuple(f for f, _ in entries))}
        return inputs

    @torch.inference_mode()
    def _encode_images(self, images: dict[str, Image.Image]) -> None:
        """Run the image processor and the vision tower once on ``images`` (by digest) and cache the features."""
        # device: torchvision-backed processors then resize and normalize on the GPU rather than the CPU
        processed = self.processor.image_processor(images=list(images.values()), return_tensors="pt", device=self.device)
        kwargs = {"pixel_values": processed["pixel_values"].to(self.device, self.model.dtype)}
        grids = processed.get("image_grid_thw")
        if grids is not None:
            kwargs["image_grid_thw"] = grids.to(self.device)
        for name in ("vision_feature_layer", "vision_feature_select_strategy"):
            if _accepts(self.model.model.get_image_features, name):
                kwargs[name] = getattr(self.model.config, name)
        encoded = self.model.model.get_image_features(**kwargs, return_dict=True).pooler_output
        for i, (key, features) in enumerate(zip(images, encoded)):
            self.features.put(key, (features, None if grids is None else grids[i]))

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
            got = _count_images(inputs)
            if got is not None and got != expected:
                raise ImageTokenMismatch(f"{len(docs)} prompts: {expected} images given, {got} reached the model")

    @torch.inference_mode()
    def _generate_batch(self, docs: list[Doc]) -> list[dict]:
        inputs, _ = self.encode(docs)
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
        inputs, _ = self.encode(docs, reuse_images=self.fast_path)
        logits = self.model(**inputs, logits_to_keep=1).logits[:, -1, :].double()
        logp = torch.log_softmax(logits, dim=-1)
        values = []
        for row, doc in enumerate(docs):
            letter_logp = torch.stack([torch.logsumexp(logp[row, ids], 0) for ids in self.letter_token_ids(doc.choices)])
            posterior = torch.log_softmax(letter_logp, dim=0)
            values.append({"logprobs": posterior.tolist()})
        return values

    def letter_token_ids(self, letters: Sequence[str]) -> list[torch.Tensor]:
        """For each option letter, the ids of the tokens that start it ("A" and " A" where they differ)."""
        key = tuple(letters)
        if key not in self._letter_ids:
            self._letter_ids[key] = self._letter_token_ids(key)
        return self._letter_ids[key]

    def _letter_token_ids(self, letters: tuple[str, ...]) -> list[torch.Tensor]:
        tokenizer = self.processor.tokenizer
        ids = []
        for letter in letters:
            variants = {tokenizer.encode(v, add_special_tokens=False)[0] for v in (letter, f" {letter}")}
            ids.append(sorted(variants))
        flat = [i for group in ids for i in group]
        if len(flat) != len(set(flat)):
            raise ValueError(f"option letters {list(letters)} share a first token in this tokenizer")
        return [torch.tensor(group, device=self.device) for group in ids]


class ImageFeatureCache:
    """Vision-tower outputs by image digest, least recently used dropped beyond ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        from collections import OrderedDict

        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: "OrderedDict[str, tuple[torch.Tensor, torch.Tensor | None]]" = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def get(self, key: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: str, value: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        """Store (features, grid or None) for an image."""
        self._items[key] = value
        self.bytes += value[0].numel() * value[0].element_size()
        while self.bytes > self.max_bytes and len(self._items) > 1:
            _, (old, _) = self._items.popitem(last=False)
            self.bytes -= old.numel() * old.element_size()


def _weights_fingerprint(model) -> str:
    """A fingerprint of an in-memory model: a sample of every parameter's values (random models differ)."""
    digest = hashlib.sha256(model.config.to_json_string().encode())
    for name, parameter in model.named_parameters():
        digest.update(name.encode())
        digest.update(parameter.detach().flatten()[:64].float().cpu().numpy().tobytes())
    return digest.hexdigest()


def _accepts(function, name: str) -> bool:
    return name in inspect.signature(function).parameters


def _count_images(inputs) -> int | None:
    """How many images the processor passed on (None when the processor's layout is unknown)."""
    if "image_grid_thw" in inputs:
        return int(inputs["image_grid_thw"].shape[0])
    pixel_values = inputs["pixel_values"]
    return int(pixel_values.shape[0]) if pixel_values.dim() == 4 else None


def _doc_name(doc: Doc) -> str:
    specific = doc.specific or {}
    return f"{specific.get('case_id', doc.id)} [{specific.get('condition', '?')}]"


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
