"""Images at their CE positions after the chat template: the check, and in-place rendering for templates that move them.

A chat template turns the interleaved content ``[text, image, text, ...]`` into text with one *image slot*
per image (the text it emits for an image: ``<image>\\n``, ``<|vision_start|><|image_pad|><|vision_end|>``,
``<start_of_image>``). Some templates place every slot first (llava-hf's "render all images first"), so the
images lose their CE positions. :class:`Prompter` finds the slot a template emits, checks every rendered prompt
(each slot between the texts around it), and where the shipped template moves images renders them *inline*: one
text part with the slot text at each image's place, which such templates pass through verbatim. The result is
checked again; a template that still moves images is refused.

>>> check_placement("U: a<i>b<i>c A:", ["a", None, "b", None, "c"], "<i>")
>>> check_placement("U: <i><i>abc A:", ["a", None, "b", None, "c"], "<i>")
Traceback (most recent call last):
...
medsyn.eval.backends.placement.PlacementError: 2 image slot(s) where 0 belong, before 'a'
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

logger = logging.getLogger(__name__)

SHIPPED = "shipped"
INLINE = "medsyn-inline"
"""The template modes: the model's own chat template, or images rendered inline as slot text through it."""
_PROBE = ["\u2063medsyn-a\u2063", None, "\u2063medsyn-b\u2063", None, None, "\u2063medsyn-c\u2063"]
_MARK = "\u2063medsyn-x\u2063"


class PlacementError(ValueError):
    """A rendered prompt does not carry each image slot at its image's place."""


def render(processor, parts: Sequence[str | None], inline_slot: str | None = None, **template_kwargs: Any) -> str:
    """The chat-templated text of one user turn of ``parts`` (``None`` is an image), with the generation prompt.

    ``inline_slot``: render the images as this text inside one text part (in-place rendering); ``template_kwargs``
    go to the template (``enable_thinking=False``).
    """
    if inline_slot is None:
        content = [{"type": "image"} if p is None else {"type": "text", "text": p} for p in parts]
    else:
        content = [{"type": "text", "text": "".join(inline_slot if p is None else p for p in parts)}]
    messages = [{"role": "user", "content": content}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **template_kwargs)


def image_slot(processor, **template_kwargs: Any) -> str:
    """The text the chat template emits for one image (the difference between a turn with and without it)."""
    without, with_image = render(processor, [_MARK], **template_kwargs), render(processor, [None, _MARK], **template_kwargs)
    start = 0
    while start < len(without) and without[start] == with_image[start]:
        start += 1
    end = 0
    while end < len(without) - start and without[-1 - end] == with_image[-1 - end]:
        end += 1
    slot = with_image[start : len(with_image) - end]
    if not slot:
        raise PlacementError("the chat template emits nothing for an image: images would never reach the model")
    return slot


def check_placement(text: str, parts: Sequence[str | None], slot: str) -> None:
    """Raise PlacementError unless ``text`` has exactly the images of ``parts`` between the texts around them.

    Runs in time linear in ``len(text)``: each text part is looked up after the previous one.
    """
    position, pending = 0, 0
    for part in parts:
        if part is None:
            pending += 1
            continue
        if slot in part or slot.strip() and slot.strip() in part:
            raise PlacementError(f"the prompt text itself contains the image slot {slot.strip()!r}, which would show as an image")
        key = part.strip()
        if not key:
            continue
        found_at = text.find(key, position)
        if found_at < 0:
            raise PlacementError(f"the chat template changed or reordered the prompt text near {key[:40]!r}")
        found = text.count(slot, position, found_at)
        if found != pending:
            raise PlacementError(f"{found} image slot(s) where {pending} belong, before {key[:40]!r}")
        position, pending = found_at + len(key), 0
    found = text.count(slot, position)
    if found != pending:
        raise PlacementError(f"{found} image slot(s) where {pending} belong, at the end of the prompt")


class Prompter:
    """Renders prompts through a processor's chat template with each image at its place, or refuses the template.

    ``mode`` is :data:`SHIPPED` or :data:`INLINE`; ``slot`` the text of one image slot; ``template_kwargs`` go to
    the chat template with every prompt.
    """

    def __init__(self, processor, name: str = "model", **template_kwargs: Any) -> None:
        self.processor = processor
        self.template_kwargs = template_kwargs
        self.slot = image_slot(processor, **template_kwargs)
        self.mode = SHIPPED
        try:
            check_placement(render(processor, _PROBE, **template_kwargs), _PROBE, self.slot)
            return
        except PlacementError as shipped_error:
            reason = str(shipped_error)
        self.mode = INLINE
        try:
            check_placement(render(processor, _PROBE, self.slot, **template_kwargs), _PROBE, self.slot)
        except PlacementError as error:
            raise PlacementError(
                f"{name}: the chat template moves images away from their CE positions ({reason}), and rendering "
                f"them inline does not keep them in place either ({error}); give the model a chat template that "
                "renders content parts in order"
            ) from None
        logger.warning(
            "%s: the shipped chat template moves images away from their CE positions (%s); rendering each image "
            "inline as %r at its place instead (template: %s)", name, reason, self.slot, INLINE,
        )

    def __call__(self, parts: Sequence[str | None]) -> str:
        """The rendered prompt of ``parts``, checked: each image slot sits at its image's place."""
        text = render(self.processor, parts, self.slot if self.mode == INLINE else None, **self.template_kwargs)
        check_placement(text, parts, self.slot)
        return text
