"""``results/fingerprints/``: structural fingerprints as files, computed beside training and DFT.

* ``train/plan.json`` says how many shards the training split's fingerprints are cut into;
  ``train/shard-<i>.npz`` holds one shard (at most ``report.fingerprint_shard_size`` crystals);
* ``candidates/<case>.npz`` holds one design case's candidates;
* ``cache/`` holds every fingerprint computed so far, keyed per crystal (read by
  :class:`icrdesign.report.similarity.FingerprintCache`), so a rerun or a grown dataset computes
  only the crystals it has not seen.

A fingerprints file (:class:`Fingerprints`) is an npz of ``id`` (text), ``fingerprint`` (float64,
one row per id, NaN where it failed) and ``error`` (the failure's reason, empty when it worked).
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypedDict

import numpy as np

from icrdesign.errors import InputError
from icrdesign.io import atomic_path, read_json, write_json

FINGERPRINTS_FOLDER: Final[str] = "fingerprints"
TRAIN_FOLDER: Final[str] = "train"
CANDIDATES_FOLDER: Final[str] = "candidates"
CACHE_FOLDER: Final[str] = "cache"
PLAN_FILE: Final[str] = "plan.json"
FINGERPRINT_ARRAYS: Final[tuple[str, ...]] = ("id", "fingerprint", "error")


class ShardPlan(TypedDict):
    """``train/plan.json``: the training crystals and how they are cut into shards."""

    n_train: int
    shard_size: int
    n_shards: int


def shard_plan(n_train: int, shard_size: int) -> ShardPlan:
    """The plan for ``n_train`` crystals: at least one shard, so that an empty training set still gives a file."""
    if shard_size < 1:
        raise ValueError(f"shard size must be positive, got {shard_size}")
    return {"n_train": n_train, "shard_size": shard_size, "n_shards": max(1, math.ceil(n_train / shard_size))}


def shard_file(train_folder: str | os.PathLike[str], shard: int | str) -> Path:
    """Where shard ``shard`` of the training fingerprints lies (a wildcard such as ``"{shard}"`` gives the pattern)."""
    return Path(train_folder) / f"shard-{shard}.npz"


def write_plan(path: str | os.PathLike[str], plan: ShardPlan) -> None:
    write_json(path, plan)


def read_plan(path: str | os.PathLike[str]) -> ShardPlan:
    """plan.json; absent or malformed: InputError naming it."""
    try:
        plan = read_json(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; run `icrdesign fingerprints --dataset ... --plan {path}`") from None
    except ValueError as error:
        raise InputError(f"{path}: not JSON ({error})") from None
    if not isinstance(plan, dict) or not all(isinstance(plan.get(key), int) for key in ShardPlan.__annotations__):
        raise InputError(f"{path}: expected integers {list(ShardPlan.__annotations__)}, got {plan!r}")
    return plan  # type: ignore[return-value]


def shard_files(plan_path: str | os.PathLike[str]) -> list[Path]:
    """Every shard file the plan at ``plan_path`` asks for (they lie beside it)."""
    plan = read_plan(plan_path)
    return [shard_file(Path(plan_path).parent, shard) for shard in range(plan["n_shards"])]


@dataclass(frozen=True)
class Fingerprints:
    """Fingerprints of identified crystals: ``matrix[i]`` belongs to ``ids[i]``; ``errors[i]`` is
    None when it was computed, else why not (and the row is NaN)."""

    ids: np.ndarray  # str (N,)
    matrix: np.ndarray  # float64 (N, D)
    errors: list[str | None]

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, ids: Sequence[str]) -> tuple[np.ndarray, list[str | None]]:
        """The rows of ``ids`` (NaN with a reason for an id this table lacks)."""
        position = {identifier: i for i, identifier in enumerate(self.ids)}
        matrix = np.full((len(ids), self.matrix.shape[1]), np.nan)
        errors: list[str | None] = []
        for row, identifier in enumerate(ids):
            i = position.get(str(identifier))
            if i is None:
                errors.append(f"no fingerprint for id {identifier!r}")
                continue
            matrix[row] = self.matrix[i]
            errors.append(self.errors[i])
        return matrix, errors


def write_fingerprints(path: str | os.PathLike[str], fingerprints: Fingerprints) -> None:
    errors = np.array([error or "" for error in fingerprints.errors], dtype=str)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, id=np.asarray(fingerprints.ids, dtype=str),
                            fingerprint=np.asarray(fingerprints.matrix, dtype=float), error=errors)


def read_fingerprints(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> Fingerprints:
    """One fingerprints file, or several concatenated (an id in two files: InputError naming both).

    Files of different widths (another featurizer) or unreadable ones raise InputError naming the file.
    """
    paths = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    ids, matrices, errors, origin = [], [], [], {}
    for path in paths:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except FileNotFoundError:
            raise InputError(f"{path}: no such file; run `icrdesign fingerprints`") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise InputError(f"{path}: unreadable fingerprints ({error})") from None
        missing = [key for key in FINGERPRINT_ARRAYS if key not in arrays]
        if missing:
            raise InputError(f"{path}: missing arrays {missing} (has {sorted(arrays)})")
        for identifier in arrays["id"].astype(str):
            if identifier in origin:
                raise InputError(f"{path}: id {identifier!r} is also in {origin[identifier]}")
            origin[identifier] = path
        ids.append(arrays["id"].astype(str))
        matrices.append(arrays["fingerprint"].astype(float))
        errors += [str(error) or None for error in arrays["error"]]
    widths = {m.shape[1] for m in matrices if len(m)}
    if len(widths) > 1:
        raise InputError(f"{[str(p) for p in paths]}: fingerprints of different widths {sorted(widths)}")
    width = widths.pop() if widths else 0
    matrix = np.concatenate([m.reshape(len(m), width) for m in matrices]) if matrices else np.empty((0, 0))
    return Fingerprints(np.concatenate(ids) if ids else np.array([], dtype=str), matrix, errors)
