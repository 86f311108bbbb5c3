"""The project's process pools: one helper for each of the two ways work is shared out.

- :func:`fork_map` -- forked workers over index ranges, with :func:`shared_zeros` arrays they write
  into directly. Workers inherit the task (and the structures it reads) by fork, so nothing big is
  pickled on the way in. For numpy-only work (encoding, round trips).
- :func:`process_pool` -- a spawned ``ProcessPoolExecutor`` over picklable chunks
  (:func:`split_evenly`). Spawned, so a process holding torch's thread pools is never forked. For
  work that loads torch or matminer models (demo labels, fingerprints).
- :func:`fork_each` -- one forked, non-daemonic process per item, a few at once, for tasks that start
  processes of their own (a GPAW calculation runs in a child process; a pool's daemonic workers may
  not have children).
"""

from __future__ import annotations

import gc
import mmap
import multiprocessing
import multiprocessing.connection
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")

# The task of the current fork_map call, inherited by its workers.
_TASK: Callable[[int, int], object] | None = None


def n_workers(n_jobs: int | None) -> int:
    """Worker count for ``n_jobs`` (None: all cores); 1 where fork is unavailable."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, n_jobs if n_jobs is not None else (os.cpu_count() or 1))


def _run(bounds: tuple[int, int]) -> object:
    assert _TASK is not None
    return _TASK(*bounds)


def fork_map(task: Callable[[int, int], T], n: int, jobs: int, n_ranges: int) -> list[T]:
    """``task(start, stop)`` over ``n_ranges`` contiguous ranges of range(n) in ``jobs`` processes,
    results in range order. Runs in this process alone when jobs or n_ranges is 1; with no more
    ranges than jobs this process takes the first range itself (one fork fewer, no idle parent)."""
    global _TASK
    n_ranges = max(1, min(n_ranges, n))
    edges = np.linspace(0, n, n_ranges + 1).astype(int).tolist()
    bounds = list(zip(edges[:-1], edges[1:]))
    if jobs <= 1 or n_ranges == 1:
        return [task(start, stop) for start, stop in bounds]
    parent_takes_first = n_ranges <= jobs
    forked = bounds[1:] if parent_takes_first else bounds
    _TASK = task
    gc.freeze()  # keep the collector from touching (and so copying) inherited objects in the workers
    try:
        with multiprocessing.get_context("fork").Pool(min(jobs, len(forked))) as pool:
            pending = pool.map_async(_run, forked, chunksize=1)
            first = [task(*bounds[0])] if parent_takes_first else []
            return first + pending.get()  # type: ignore[operator]
    finally:
        gc.unfreeze()
        _TASK = None


def shared_zeros(shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
    """A zeroed array in anonymous shared memory: writes by forked workers are seen by the parent."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if nbytes == 0:
        return np.zeros(shape, dtype=dtype)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype).reshape(shape)


def process_pool(n_jobs: int) -> ProcessPoolExecutor:
    """``n_jobs`` spawned worker processes."""
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


def _send_result(task: Callable[[T], R], item: T, connection: multiprocessing.connection.Connection) -> None:
    """Run ``task(item)`` in a forked process and send (True, result) or (False, the error's text)."""
    try:
        outcome: tuple[bool, Any] = (True, task(item))
    except BaseException as error:  # noqa: BLE001 - re-raised in the parent with its text
        outcome = (False, f"{type(error).__name__}: {error}")
    connection.send(outcome)
    connection.close()


def fork_each(task: Callable[[T], R], items: Sequence[T], jobs: int) -> list[R]:
    """``task(item)`` for each item, each in its own forked process, at most ``jobs`` at once; results
    in item order. Runs in this process when jobs or the number of items is 1.

    The processes are not daemonic, so a task may start processes of its own. A task's exception, or a
    process that dies without a result, raises RuntimeError here, naming the item.
    """
    if jobs <= 1 or len(items) <= 1:
        return [task(item) for item in items]
    context = multiprocessing.get_context("fork")
    waiting = list(enumerate(items))
    running: dict[multiprocessing.connection.Connection, tuple[int, multiprocessing.process.BaseProcess]] = {}
    results: dict[int, R] = {}
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                index, item = waiting.pop(0)
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(target=_send_result, args=(task, item, sender))
                process.start()
                sender.close()
                running[receiver] = (index, process)
            for ready in multiprocessing.connection.wait(list(running)):
                index, process = running.pop(ready)  # type: ignore[arg-type]
                try:
                    succeeded, value = ready.recv()  # type: ignore[union-attr]
                except EOFError:
                    succeeded, value = False, "the process died without a result"
                process.join()
                if not succeeded:
                    raise RuntimeError(f"item {index} ({items[index]!r}): {value} (exit code {process.exitcode})")
                results[index] = value
    finally:
        for _, process in running.values():  # left over only when a task failed
            process.terminate()
            process.join()
    return [results[index] for index in range(len(items))]
