"""The process helpers: forked tasks that start processes of their own (as a GPAW calculation does)."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from icrdesign.parallel import fork_each


def _square_in_a_child(value: int) -> tuple[int, int]:
    """value squared, computed in a child process of the task's process (as GPAW's worker is started)."""
    receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=lambda: sender.send(value * value))
    child.start()
    result = receiver.recv()
    child.join()
    return value, result


def test_forked_tasks_may_start_processes_and_keep_item_order():
    items = list(range(7))
    assert fork_each(_square_in_a_child, items, jobs=2) == [(value, value * value) for value in items]
    # One job runs in this process.
    assert fork_each(lambda value: (value, os.getpid()), [3], jobs=2) == [(3, os.getpid())]
    assert fork_each(lambda value: os.getpid(), [1, 2], jobs=1) == [os.getpid(), os.getpid()]


def test_a_failed_or_dead_task_names_its_item():
    def fails_on_two(value: int) -> int:
        if value == 2:
            raise ValueError("no twos")
        return value

    with pytest.raises(RuntimeError, match=r"item 2 \(2\): ValueError: no twos"):
        fork_each(fails_on_two, [0, 1, 2, 3], jobs=2)
    with pytest.raises(RuntimeError, match=r"item 0 \('x'\): the process died without a result \(exit code 3\)"):
        fork_each(lambda value: os._exit(3) if value == "x" else value, ["x", "y"], jobs=2)
