"""Splitting work into video shards: balanced by size, deterministic, never splitting a video.

A video is the unit of resumption (its outputs are committed atomically), so it is
also the unit of distribution: a shard is a list of whole videos. Shards are
balanced by a cost per video (frames with a face for extraction, file size for
prediction) with the longest-processing-time-first rule, which keeps the slowest
shard within 4/3 of the optimum.
"""

from __future__ import annotations

import heapq
from typing import Sequence, TypeVar

T = TypeVar("T")


def balanced_shards(items: Sequence[T], costs: Sequence[float], n_shards: int) -> list[list[T]]:
    """Split ``items`` into at most ``n_shards`` non-empty shards of similar total cost.

    Deterministic (ties broken by position); items keep their input order inside a shard.
    """
    if len(items) != len(costs):
        raise ValueError(f"{len(items)} items but {len(costs)} costs")
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    n_shards = min(n_shards, len(items))
    if n_shards == 0:
        return []
    heap = [(0.0, s) for s in range(n_shards)]  # (total cost, shard)
    members: list[list[int]] = [[] for _ in range(n_shards)]
    for pos in sorted(range(len(items)), key=lambda i: (-float(costs[i]), i)):
        total, shard = heapq.heappop(heap)
        members[shard].append(pos)
        heapq.heappush(heap, (total + float(costs[pos]), shard))
    return [[items[i] for i in sorted(m)] for m in members if m]


def default_shard_count(n_items: int, parallel_slots: int, per_slot: int = 2) -> int:
    """Shards for ``parallel_slots`` concurrent tasks: ``per_slot`` each, so a slow shard does not idle the rest."""
    return max(1, min(n_items, parallel_slots * per_slot))
