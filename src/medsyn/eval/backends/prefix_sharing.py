"""Which prompts of a batch reuse which other prompt's key/value cache, and for how many tokens.

The Evidence Sensitivity conditions of a case are the same prompt up to the first CE they change:
``absent:mri`` equals ``full`` until the first MRI study, ``text:ct`` until the first CT study, and
all of them share the instructions, history and examination. Each group of prompts (a case) gets
one *anchor*, run in full with its cache kept; every other prompt of the group runs only the tokens
after its longest common prefix with the anchor and attends to the anchor's cache for the rest. For
a causal model this is exact: the keys and values of a token depend only on the tokens before it.

Prompts are compared by *identity sequences*: token ids, with each image placeholder token replaced
by a code for (which image, which of its tokens), so that two different images never count as a
shared prefix.

>>> anchors, members = plan_prefix_sharing([[1, 2, 3, 4], [1, 2, 9], [1, 2, 3, 7], [5, 6]], ["a", "a", "a", "b"])
>>> anchors
[0, 3]
>>> members  # (prompt, its anchor, tokens taken from the anchor's cache)
[(1, 0, 2), (2, 0, 3)]
"""

from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

_IMAGE_CODE_STRIDE = 1 << 20  # more tokens than any one image has


def identity_sequence(
    token_ids: Sequence[int], image_token_id: int | None, image_codes: Sequence[int], image_tokens: Sequence[int]
) -> np.ndarray:
    """``token_ids`` with the k-th placeholder token of the i-th image replaced by ``-(1 + image_codes[i]·2^20 + k)``.

    ``image_codes`` names each image of the prompt in order (the same code for the same image bytes) and
    ``image_tokens`` gives its number of placeholder tokens: the placeholders are assigned to the images in
    order by these counts, so an image whose placeholders come in several runs (rows, tiles) is one image.

    >>> identity_sequence([7, 0, 0, 8, 0, 9], 0, [5, 3], [2, 1]).tolist()
    [7, -5242881, -5242882, 8, -3145729, 9]
    >>> identity_sequence([7, 0, 0, 8, 0, 9], 0, [5], [3]).tolist()  # one image in two runs (a row break)
    [7, -5242881, -5242882, 8, -5242883, 9]
    """
    ids = np.asarray(token_ids, dtype=np.int64).copy()
    if len(image_codes) != len(image_tokens):
        raise ValueError(f"{len(image_codes)} image codes but {len(image_tokens)} placeholder counts")
    if image_token_id is None or not len(image_codes):
        return ids
    positions = np.flatnonzero(ids == image_token_id)
    if positions.size != sum(image_tokens):
        raise ValueError(f"{len(image_codes)} images of {sum(image_tokens)} placeholder tokens in all, "
                         f"but {positions.size} in the prompt")  # fmt: skip
    for placeholders, code in zip(np.split(positions, np.cumsum(image_tokens)[:-1]), image_codes):
        ids[placeholders] = -(1 + code * _IMAGE_CODE_STRIDE + np.arange(placeholders.size))
    return ids


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """The length of the longest common prefix of two identity sequences."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if differ.size else n


def plan_prefix_sharing(
    sequences: Sequence[Sequence[int]], groups: Sequence[Hashable]
) -> tuple[list[int], list[tuple[int, int, int]]]:
    """Anchors and members for prompts ``sequences`` (identity sequences), shared only within a group.

    A group's anchor is the prompt with the most prefix tokens in common with the others (the
    longest on ties). Each member takes ``min(common prefix, its length - 1)`` tokens from its anchor's
    cache, so at least its last token is computed (the answer is read there). Returns
    ``(anchor indices, [(member index, anchor index, shared tokens)])``, both in input order.
    """
    arrays = [np.asarray(s, dtype=np.int64) for s in sequences]
    by_group: dict[Hashable, list[int]] = {}
    for index, group in enumerate(groups):
        by_group.setdefault(group, []).append(index)
    anchors: list[int] = []
    members: list[tuple[int, int, int]] = []
    for indices in by_group.values():
        shared = {(i, j): common_prefix(arrays[i], arrays[j]) for i in indices for j in indices if i < j}
        total = {i: sum(shared[min(i, j), max(i, j)] for j in indices if j != i) for i in indices}
        anchor = max(indices, key=lambda i: (total[i], len(arrays[i]), -i))
        anchors.append(anchor)
        for i in indices:
            if i != anchor:
                members.append((i, anchor, min(shared[min(i, anchor), max(i, anchor)], len(arrays[i]) - 1)))
    return sorted(anchors), sorted(members)
