"""Process pools for the dataset stage (spawned, so torch thread pools are never forked)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def process_pool(n_jobs: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=n_jobs, mp_context=multiprocessing.get_context("spawn"))


def split_evenly(items: Sequence[T], n_chunks: int) -> list[list[T]]:
    """Contiguous chunks of nearly equal size, in order; no empty chunks."""
    n_chunks = max(1, min(n_chunks, len(items)))
    size, extra = divmod(len(items), n_chunks)
    chunks, start = [], 0
    for i in range(n_chunks):
        stop = start + size + (1 if i < extra else 0)
        chunks.append(list(items[start:stop]))
        start = stop
    return chunks
