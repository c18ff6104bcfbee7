"""Prompt rendering: a case under a condition becomes text with images interleaved (DESIGN §5)."""

from __future__ import annotations

from typing import Sequence, TypeVar

IMAGE_MARK = "<medsyn_image>"
"""Stands in a rendered query where one image goes; backends split on it to interleave images."""

T = TypeVar("T")


def interleave(query: str, images: Sequence[T]) -> list[str | T]:
    """Split ``query`` on IMAGE_MARK and put ``images`` in the gaps, in order.

    Raises ValueError when the number of marks differs from the number of images.

    >>> interleave("a<medsyn_image>b<medsyn_image>", ["I1", "I2"])
    ['a', 'I1', 'b', 'I2']
    """
    texts = query.split(IMAGE_MARK)
    if len(texts) - 1 != len(images):
        raise ValueError(f"prompt has {len(texts) - 1} image positions but {len(images)} images were given")
    parts: list[str | T] = []
    for i, text in enumerate(texts):
        if text:
            parts.append(text)
        if i < len(images):
            parts.append(images[i])
    return parts
