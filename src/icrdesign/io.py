"""Atomic file output, and one writer per output folder.

Every result is written to a temporary file and renamed into place, so a killed run never leaves a
half-written file that a rerun would take as a result. A stage holds :func:`exclusive_lock` on its
output folder while it writes, so a second run on the same folder stops at once instead of
interleaving its files with the first one's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final

import pandas as pd

from icrdesign.errors import InputError

#: The file :func:`exclusive_lock` holds in the folder it guards; it names the holder.
LOCK_FILE: Final[str] = ".icrdesign.lock"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; it replaces ``path`` when the block exits cleanly."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_json(path: str | os.PathLike[str], obj: Any, **kwargs: Any) -> None:
    kwargs.setdefault("indent", 2)
    kwargs.setdefault("sort_keys", False)
    write_text(path, json.dumps(obj, **kwargs) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_csv(path: str | os.PathLike[str], frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_parquet(path: str | os.PathLike[str], frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


@contextlib.contextmanager
def exclusive_lock(directory: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold ``directory`` (created if absent) for this process alone while the block runs.

    The lock is an ``fcntl.flock`` on ``directory/.icrdesign.lock``, which records the holder's PID,
    host and start time. Another process asking for it gets InputError naming that holder. The kernel
    drops the lock when its holder exits, however it dies, so a killed run never blocks the next one
    (the file it leaves behind is locked afresh); a clean release removes the file.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd, held = _acquire(path, wait=False)
    if not held:
        holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process (PID not yet written)"
        os.close(fd)
        raise InputError(f"{folder} is locked by {holder}: another run is writing there; wait for it to "
                         f"finish or stop it (lock file {path})")
    try:
        started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()} on host {socket.gethostname()} since {started}\n".encode(), 0)
        yield path
    finally:
        _release(fd, path)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], wait: bool = True) -> Iterator[bool]:
    """Hold an ``fcntl.flock`` on ``path`` (created, and removed on release) while the block runs, so
    that processes sharing a folder do a piece of work once. Yields True once held; with ``wait``
    False, yields False at once, holding nothing, when another process holds it.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, held = _acquire(target, wait)
    if not held:
        os.close(fd)
        yield False
        return
    try:
        yield True
    finally:
        _release(fd, target)


def _acquire(path: Path, wait: bool) -> tuple[int, bool]:
    """Open ``path`` (created) and lock it: (fd, True) once held, (fd, False) when another process
    holds it and not ``wait``; the caller closes the fd."""
    while True:
        # O_RDWR, not a read: the file is the lock's, not an input of the stage.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return fd, False
        # The previous holder removes the file on release: if it did so between our open and our lock,
        # the lock is on a removed file that a third process could create again, so start over.
        if _same_file(fd, path):
            return fd, True
        os.close(fd)


def _release(fd: int, path: Path) -> None:
    path.unlink(missing_ok=True)  # while still locked, so that nobody locks a file about to vanish
    os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the file at ``path``."""
    try:
        at_path = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (opened.st_dev, opened.st_ino) == (at_path.st_dev, at_path.st_ino)
