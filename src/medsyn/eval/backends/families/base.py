"""What the transformers backend needs to know about a model family, with the defaults most families share.

A :class:`Family` says how to load a family's model, how its processor takes a batch of interleaved prompts,
how many images reached the model, what the forward pass needs besides the processor's output, and, for the
fast paths, how to encode images once and feed their features back. ``fast_paths`` lists the fast paths a
test shows equal to the plain path for the family (``tests/test_families.py``); only those are switched on.
A model type no family claims gets :data:`UNVERIFIED`: the plain path, with a warning.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

FAST_PATHS = ("reuse_image_features", "share_prefix", "packed_vision_attention", "aligned_vision_mlp")
"""The backend's fast paths (VLMConfig switches of the same names)."""


@dataclass
class ImageEntry:
    """One image's vision-tower output, as the model's ``mm_encoder_outputs`` takes it back.

    ``features``: (tokens, hidden), one row per placeholder token the image takes in the prompt; ``grid``:
    Qwen-style (t, h, w) patch grid, or None; ``extras``: whatever else the family feeds back per image.
    """

    features: torch.Tensor
    grid: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return int(self.features.shape[0])

    @property
    def nbytes(self) -> int:
        tensors = [self.features, *(v for v in self.extras.values() if isinstance(v, torch.Tensor))]
        tensors += [t for v in self.extras.values() if isinstance(v, (list, tuple)) for t in v if isinstance(t, torch.Tensor)]
        return sum(t.numel() * t.element_size() for t in tensors)


def single_bos(tokenizer, texts: list[str]) -> list[str]:
    """``texts`` without the BOS the chat template wrote first, where the tokenizer adds its own (else as given).

    Rendering the template to text and tokenizing it would otherwise start the prompt with two BOS tokens
    (transformers' own ``apply_chat_template(tokenize=True)`` tokenizes without special tokens for this reason).
    """
    bos = tokenizer.bos_token
    adds_bos = bos is not None and tokenizer("")["input_ids"][:1] == [tokenizer.bos_token_id]
    return [text.removeprefix(bos) for text in texts] if adds_bos else texts


class Family:
    """A model family (one or more transformers model types) and how the backend runs it."""

    name = "unverified"
    model_types: tuple[str, ...] = ()
    auto_class = "AutoModelForImageTextToText"
    refusal: str | None = None
    """Why this family cannot run here (the backend refuses it with this message), or None."""
    fast_paths: frozenset[str] = frozenset()
    """The fast paths a test shows equal to the plain path for this family."""
    nested_images: bool = False
    """The processor takes one list of images per prompt (a list of lists), not one flat list."""
    note = ""
    """One line for the support table (what is special about this family)."""
    join_features = staticmethod(tuple)
    """How the batch's per-image features go back to the model: a tuple (most), or one tensor (``torch.stack``,
    ``torch.cat``) where the model's own tower gives one."""
    processor_needs: tuple[str, ...] = ()
    """Processor attributes (beyond the public call) the family's fast paths use; where one is missing in the
    installed transformers, the backend turns image-feature reuse off with a log line."""

    # --- loading -------------------------------------------------------------------------

    def load_processor(self, path: str):
        from medsyn.eval.backends.loading import load_processor

        return load_processor(path)

    def load_model(self, path: str, **kwargs: Any):
        import transformers

        return getattr(transformers, self.auto_class).from_pretrained(path, **kwargs)

    def prepare_model(self, model) -> None:
        """Fixes the family needs on a model, loaded or given (none by default)."""

    def image_token_id(self, model, processor) -> int | None:
        """The id of the placeholder token the model replaces with image features."""
        config = model.config
        found = getattr(config, "image_token_id", None)
        return found if found is not None else getattr(config, "image_token_index", None)

    # --- the plain path --------------------------------------------------------------------

    def processor_inputs(self, processor, texts: list[str], images: list[list[Image.Image]], **kwargs: Any) -> dict[str, Any]:
        """The processor's output for rendered ``texts`` and their images (one list per prompt); ``kwargs`` go to it."""
        flat = [img for doc_images in images for img in doc_images]
        given = (images if any(images) else None) if self.nested_images else (flat or None)
        return processor(text=texts, images=given, padding=True, return_tensors="pt", **kwargs)

    def images_reached(self, inputs: dict[str, Any]) -> int | None:
        """How many images (not tiles) the processor passed on; None when the layout is unknown."""
        if "image_grid_thw" in inputs:
            return int(inputs["image_grid_thw"].shape[0])
        if "image_sizes" in inputs:
            return int(inputs["image_sizes"].shape[0])
        pixel_values = inputs.get("pixel_values")
        if isinstance(pixel_values, torch.Tensor) and pixel_values.dim() == 4:
            return int(pixel_values.shape[0])
        return None

    def forward_inputs(self, model, inputs: dict[str, Any]) -> dict[str, Any]:
        """``inputs`` as the forward pass takes them: 1-D positions counted from the first real token (left
        padding), unless the model derives its own (Qwen's 3-axis rotary positions)."""
        if getattr(model.model, "get_rope_index", None) is None and "position_ids" not in inputs:
            inputs["position_ids"] = (inputs["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        return inputs

    # --- the fast paths: image features encoded once and fed back --------------------------

    @torch.inference_mode()
    def encode_images(self, model, processor, images: list[Image.Image], device: torch.device) -> list[ImageEntry]:
        """Each image's vision-tower output (processor, then ``get_image_features``), one entry per image."""
        processed = processor.image_processor(images=images, return_tensors="pt", device=device)
        encoded = vision_output(model, processed, device, len(images), self.name).pooler_output
        grids = processed.get("image_grid_thw")
        grids = None if grids is None else grids.cpu()  # positions are computed on the host
        return [ImageEntry(features, None if grids is None else grids[i]) for i, features in enumerate(encoded)]

    def image_contexts(self, prompt_images: list[Image.Image]) -> list[str]:
        """For each image of one prompt, what its features depend on besides its pixels ("" for nothing, the usual
        case): reused features are keyed by it, and images of one context are encoded together."""
        return [""] * len(prompt_images)

    def encode_in_context(self, model, processor, images: list[Image.Image], device: torch.device, context: str) -> list[ImageEntry]:
        """:meth:`encode_images` for images that share ``context``."""
        return self.encode_images(model, processor, images, device)

    def features_input(self, entries: Sequence[ImageEntry]) -> dict[str, Any]:
        """Precomputed image features as the model's ``mm_encoder_outputs`` argument (joined by :attr:`join_features`)."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        return {"image": BaseModelOutputWithPooling(pooler_output=self.join_features([e.features for e in entries]))}

    def expanded_inputs(self, processor, slot_id: int, texts: list[str], entries: Sequence[ImageEntry]) -> dict[str, Any]:
        """Tokenized ``texts`` (left-padded) with each image slot token repeated to its image's feature count.

        The slot token is special (split out before the text is tokenized), so expanding it among the ids gives
        the ids of the expanded text, without tokenizing thousands of placeholder tokens.
        """
        tokenizer = processor.tokenizer
        counts = np.array([entry.tokens for entry in entries], dtype=np.int64)
        rows, used = [], 0
        for ids in tokenizer(texts)["input_ids"]:
            ids = np.asarray(ids, dtype=np.int64)
            repeats = np.ones(len(ids), dtype=np.int64)
            slots = np.flatnonzero(ids == slot_id)
            if used + len(slots) > len(counts):
                raise ValueError(f"{len(texts)} prompts: {len(counts)} images given, more image slots in the text")
            repeats[slots] = counts[used : used + len(slots)]
            used += len(slots)
            rows.append(torch.from_numpy(np.repeat(ids, repeats)))
        if used != len(counts):
            raise ValueError(f"{len(texts)} prompts: {len(counts)} images given, {used} image slots in the text")
        width = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), width), tokenizer.pad_token_id or 0, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):  # left padding, as the processor pads
            input_ids[r, width - len(row) :] = row
            attention_mask[r, width - len(row) :] = 1
        inputs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if entries and entries[0].grid is not None:
            inputs["image_grid_thw"] = torch.stack([entry.grid for entry in entries])
        if getattr(processor, "return_mm_token_type_ids", False):
            inputs["mm_token_type_ids"] = torch.tensor(processor.create_mm_token_type_ids(inputs["input_ids"].tolist()))
        return inputs

    def row_inputs(self, model, input_ids: torch.Tensor, past: int) -> dict[str, Any]:
        """Forward inputs besides ids, positions and mask for right-padded ``input_ids`` that follow ``past`` cached
        columns (prefix sharing); none by default."""
        return {}

    def positions(self, model, ids: torch.Tensor, image_token_id: int, grids: list[torch.Tensor | None]) -> torch.Tensor:
        """Position ids of one unpadded token sequence from 0, (axes, tokens): 3-axis rotary positions where the
        model has ``get_rope_index``, else 0..n-1 (prefix sharing)."""
        rope_index = getattr(model.model, "get_rope_index", None)
        if rope_index is None:
            return torch.arange(len(ids))[None]
        types = (ids == image_token_id).int()[None]
        grid = torch.stack(grids) if grids else None
        return rope_index(ids[None], mm_token_type_ids=types, image_grid_thw=grid)[0][:, 0]


def vision_output(model, processed: dict[str, Any], device: torch.device, count: int, family: str):
    """``get_image_features`` on the image processor's output ``processed``: every input of it that the model's method
    names (on ``device``; floating ones in the model's dtype) and the feature-layer settings of the model's config it
    takes; a ValueError unless ``count`` feature blocks come back."""
    accepted = inspect.signature(model.model.get_image_features).parameters
    kwargs: dict[str, Any] = {name: getattr(model.config, name) for name in ("vision_feature_layer", "vision_feature_select_strategy")
                              if name in accepted}  # fmt: skip
    for name, value in processed.items():
        if name in accepted:
            is_tensor = isinstance(value, torch.Tensor)
            kwargs[name] = value.to(device, model.dtype if value.is_floating_point() else None) if is_tensor else value
    output = model.model.get_image_features(**kwargs, return_dict=True)
    if len(output.pooler_output) != count:
        raise ValueError(f"{family}: the vision tower gave {len(output.pooler_output)} feature blocks for {count} images")
    return output


class Unverified(Family):
    """A model type no family claims: the plain path only, with a warning."""


UNVERIFIED = Unverified()
