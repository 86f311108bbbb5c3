"""The files of a design case beside ``candidates.csv``: ``metrics.json``, ``funnel.json`` and ``rejected.csv``.

``metrics.json`` is what the report reads from sampling, so its keys are named here once::

    {"strategies": {STRATEGY: {"generated", "valid", "unique", "novel", "surrogate_success",
                               "surrogate_success_rate"}},
     "lift_over_random": float | null, "training_base_rate": float | null}

``funnel.json`` (drops by reason, percentages, every strategy's lift) is for people and is written only.
"""

from __future__ import annotations

import json
import os
from typing import Any, Final, TypedDict

import pandas as pd

from icrdesign.artefacts.tables import read_table, write_table
from icrdesign.errors import InputError
from icrdesign.io import read_json, write_json

#: The folder under the results folder that holds one folder per design case.
DESIGN_FOLDER: Final[str] = "design"
METRICS_FILE: Final[str] = "metrics.json"
FUNNEL_FILE: Final[str] = "funnel.json"
REJECTED_FILE: Final[str] = "rejected.csv"

#: One row per proposal the funnel dropped: at which stage, why, and details for a person.
REJECTED_COLUMNS: Final[tuple[str, ...]] = ("id", "strategy", "seed", "stage", "reason", "detail")


class StrategyMetrics(TypedDict):
    """Counts of one strategy through the funnel (each a subset of the one before)."""

    generated: int
    valid: int
    unique: int
    novel: int
    surrogate_success: int
    #: surrogate_success / novel (0.0 when no candidate is novel).
    surrogate_success_rate: float


class DesignMetrics(TypedDict):
    """``metrics.json`` of one design case."""

    strategies: dict[str, StrategyMetrics]
    #: :func:`icrdesign.cases.lift` of the case's reference strategy over ``random``.
    lift_over_random: float | None
    #: :func:`icrdesign.cases.training_base_rate`'s rate.
    training_base_rate: float | None


METRICS_KEYS: Final[tuple[str, ...]] = ("strategies", "lift_over_random", "training_base_rate")
STRATEGY_METRICS_KEYS: Final[tuple[str, ...]] = (
    "generated", "valid", "unique", "novel", "surrogate_success", "surrogate_success_rate",
)


def _check_metrics(metrics: Any, path: str | os.PathLike[str]) -> None:
    if not isinstance(metrics, dict) or set(metrics) != set(METRICS_KEYS):
        found = sorted(metrics) if isinstance(metrics, dict) else type(metrics).__name__
        raise InputError(f"{path}: expected the keys {list(METRICS_KEYS)}, found {found}")
    for name, counts in metrics["strategies"].items():
        missing = [key for key in STRATEGY_METRICS_KEYS if key not in counts]
        if missing:
            raise InputError(f"{path}: strategy {name!r} lacks {missing}")


def write_metrics(path: str | os.PathLike[str], metrics: DesignMetrics) -> None:
    """Write ``metrics.json`` atomically, after checking its keys."""
    _check_metrics(metrics, path)
    write_json(path, metrics)


def read_metrics(path: str | os.PathLike[str]) -> DesignMetrics:
    """``metrics.json`` written by :func:`write_metrics`, checked.

    Raises:
        InputError: the file is missing, is not JSON or lacks a key.
    """
    try:
        metrics = read_json(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: unreadable ({error})") from None
    _check_metrics(metrics, path)
    return metrics


def write_rejected(path: str | os.PathLike[str], rejected: pd.DataFrame) -> None:
    write_table(path, rejected, REJECTED_COLUMNS)


def read_rejected(path: str | os.PathLike[str]) -> pd.DataFrame:
    return read_table(path, REJECTED_COLUMNS)
