"""Padding-aware splitting of rows into forward passes (src/medsyn/backends/batching.py)."""

from __future__ import annotations

import random

from medsyn.eval.backends.batching import padding_aware_chunks


def _cost(lengths: list[int], chunks: list[list[int]], overhead: int) -> int:
    return sum(overhead + len(c) * max(lengths[i] for i in c) for c in chunks)


def test_every_row_once_within_the_row_cap_and_no_worse_than_fixed_chunks() -> None:
    rng = random.Random(0)
    for _ in range(200):
        lengths = [rng.randint(1, 4000) for _ in range(rng.randint(1, 40))]
        cap = rng.randint(1, 16)
        chunks = padding_aware_chunks(lengths, cap, overhead_tokens=512)
        assert sorted(i for c in chunks for i in c) == list(range(len(lengths)))
        assert all(1 <= len(c) <= cap for c in chunks)
        ordered = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        fixed = [ordered[k : k + cap] for k in range(0, len(ordered), cap)]
        assert _cost(lengths, chunks, 512) <= _cost(lengths, fixed, 512)


def test_similar_lengths_stay_together() -> None:
    assert padding_aware_chunks([1000, 1001, 999, 1002], 8) == [[3, 1, 0, 2]]
