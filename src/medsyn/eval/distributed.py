"""Data-parallel runs: one model replica per process, launched by ``torchrun`` or ``accelerate launch``.

Every rank runs the whole lighteval pipeline (tasks, docs, metrics); only the model's requests are
shared out (:func:`assign`), and their results gathered in the original order, so every rank holds
every result and only rank 0 writes files. The ranks exchange Python objects only (never tensors),
over gloo, on CPU as on GPUs. A step that fails on one rank fails on every rank with that rank's
message (:func:`gather`); a rank that never answers fails the others after ``$MEDSYN_DIST_TIMEOUT``
seconds (default 3600), and ``torchrun`` ends the other workers of a rank that dies.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Callable, Sequence, TypeVar

import torch.distributed as dist

TIMEOUT_ENV = "MEDSYN_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 3600
"""Longest wait in one exchange: ranks wait there for the slowest rank's share of the requests."""

T = TypeVar("T")
logger = logging.getLogger(__name__)


class RankFailure(RuntimeError):
    """A rank failed in a data-parallel step; raised on every rank, with the failing rank's message."""


def launched_world_size() -> int:
    """The number of processes the launcher started (``$WORLD_SIZE``; 1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init() -> None:
    """Join the launcher's process group (gloo) when it started several processes; nothing otherwise."""
    if launched_world_size() > 1 and not dist.is_initialized():
        seconds = int(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
        dist.init_process_group("gloo", timeout=timedelta(seconds=seconds))


def finish() -> None:
    """Leave the process group, if joined."""
    if dist.is_initialized():
        dist.destroy_process_group()


def world_size() -> int:
    """Processes sharing the requests (1 unless :func:`init` joined a group)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 unless :func:`init` joined a group)."""
    return dist.get_rank() if dist.is_initialized() else 0


def local_rank() -> int:
    """This process's rank on its machine (``$LOCAL_RANK``): the GPU it uses."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def assign(costs: Sequence[float], ranks: int) -> list[int]:
    """The rank of each unit of work: in the order given, each to the least loaded rank (ties: lowest rank)."""
    load = [0.0] * ranks
    owners = []
    for cost in costs:
        owner = min(range(ranks), key=lambda r: (load[r], r))
        load[owner] += cost
        owners.append(owner)
    return owners


def gather(compute: Callable[[], T]) -> list[T]:
    """Run ``compute`` here and return every rank's result, by rank.

    When ``compute`` raises on any rank, every rank raises :class:`RankFailure` naming the first failing
    rank and its message (the failing rank also logs its traceback), rather than waiting for it.
    """
    try:
        outcome = (True, compute())
    except Exception as exc:  # every rank must reach the exchange, or the others wait for it
        if world_size() == 1:
            raise
        logger.exception("rank %d failed", rank())
        outcome = (False, f"{type(exc).__name__}: {exc}")
    if world_size() == 1:
        return [outcome[1]]
    gathered: list = [None] * world_size()
    dist.all_gather_object(gathered, outcome)
    for failed_rank, (ok, value) in enumerate(gathered):
        if not ok:
            raise RankFailure(f"rank {failed_rank} of {world_size()} failed: {value}")
    return [value for _, value in gathered]
