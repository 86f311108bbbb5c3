"""Design cases and how success in them is measured: one definition for the config check, sampling and the report.

A case (config ``sampling.cases.<name>``) puts a window on each constrained property: ``target`` ±
``tolerance`` intersected with ``min`` / ``max``. Boundaries are inclusive, with a floating-point slack of
:data:`EDGE` so that e.g. -0.5 + 0.1 counts as inside [-0.6, -0.4]. A crystal lacking a constrained
property (a tier that computes no band gap, an unlabelled training crystal) is not evaluable: it is left
out of a rate's denominator rather than counted as a failure.

Strategies :data:`BASELINE_STRATEGIES` measure chance; every other strategy is *designed*. Rates over
designed candidates leave both baselines out, and lifts are taken over :data:`RANDOM_BASELINE`.

This module imports no torch, so the report and the config check use it without the model's stack.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Final

import numpy as np
import pandas as pd

from icrdesign.artefacts.model import LatentMeans
from icrdesign.errors import ConfigError

#: Floating-point slack at both ends of every window.
EDGE: Final[float] = 1e-9

#: Strategies that measure chance (prior draws; perturbed random training crystals), not design output.
BASELINE_STRATEGIES: Final[tuple[str, ...]] = ("random", "random_training")
#: The baseline every lift is taken over.
RANDOM_BASELINE: Final[str] = "random"
#: The strategy whose lift a case reports as ``lift_over_random`` (the published method), when it runs.
REFERENCE_STRATEGY: Final[str] = "local_perturbation"

#: Short name and unit of each property, for figure labels and the external-results CSV.
PROPERTY_LABELS: Final[dict[str, tuple[str, str]]] = {
    "formation_energy_per_atom": ("E_f", "eV/atom"),
    "band_gap": ("E_g", "eV"),
}


@dataclass(frozen=True)
class Window:
    """Closed interval ``[low, high]`` a property must fall in; an infinite end means unbounded.

    Attributes:
        low: Lower bound (``-inf`` when unbounded).
        high: Upper bound (``inf`` when unbounded).
        target: The constraint's ``target``, when it has one (for labels and plots; two windows with
            the same bounds are equal whatever their targets).
    """

    low: float = -math.inf
    high: float = math.inf
    target: float | None = field(default=None, compare=False)

    @classmethod
    def from_constraint(cls, constraint: Mapping[str, float]) -> Window:
        """The window of one constraint mapping: ``target`` ± ``tolerance`` intersected with ``min`` / ``max``."""
        low = float(constraint.get("min", -math.inf))
        high = float(constraint.get("max", math.inf))
        target = constraint.get("target")
        if target is not None:
            low = max(low, float(target) - float(constraint["tolerance"]))
            high = min(high, float(target) + float(constraint["tolerance"]))
        return cls(low, high, None if target is None else float(target))

    @property
    def empty(self) -> bool:
        """True when the constraint leaves no width (``low >= high``): no value can be designed for it."""
        return self.low >= self.high

    def contains(self, values: np.ndarray | pd.Series | Sequence[float]) -> np.ndarray:
        """Boolean mask of ``values`` inside the window (NaN is never inside)."""
        values = np.asarray(values, dtype=float)
        return (values >= self.low - EDGE) & (values <= self.high + EDGE)

    def tightened(self, margin: float) -> Window:
        """The window shrunk by ``margin`` on each finite side (never past its centre)."""
        if math.isfinite(self.low) and math.isfinite(self.high):
            margin = min(margin, 0.5 * (self.high - self.low))
        return Window(self.low + margin, self.high - margin, self.target)

    def label(self) -> str:
        """``target ± tolerance``, ``[low, high]``, ``≥ low`` or ``≤ high``."""
        if self.target is not None and math.isfinite(self.low) and math.isfinite(self.high):
            return f"{self.target:g} ± {(self.high - self.low) / 2:g}"
        if math.isfinite(self.low) and math.isfinite(self.high):
            return f"[{self.low:g}, {self.high:g}]"
        return f"≥ {self.low:g}" if math.isfinite(self.low) else f"≤ {self.high:g}"


def case_windows(constraints: Mapping[str, Mapping[str, float]]) -> dict[str, Window]:
    """One window per property from a case's ``constraints`` mapping (config ``sampling.cases.<case>``)."""
    return {prop: Window.from_constraint(constraint) for prop, constraint in constraints.items()}


def is_target_case(constraints: Mapping[str, Mapping[str, float]], prop: str = "formation_energy_per_atom") -> bool:
    """True for a case that targets ``prop`` alone (the paper's E_f cases)."""
    return set(constraints) == {prop} and "target" in constraints[prop]


def evaluate(frame: pd.DataFrame, windows: Mapping[str, Window]) -> pd.Series:
    """Per row: True (meets every window), False, or <NA> (a constrained property is missing or NaN)."""
    success = np.ones(len(frame), dtype=bool)
    evaluable = np.ones(len(frame), dtype=bool)
    for prop, window in windows.items():
        values = (pd.to_numeric(frame[prop], errors="coerce").to_numpy(dtype=float) if prop in frame
                  else np.full(len(frame), np.nan))
        evaluable &= np.isfinite(values)
        success &= window.contains(values)
    result = pd.Series(success, index=frame.index, dtype="boolean")
    result[~evaluable] = pd.NA
    return result


@dataclass(frozen=True)
class DesignCase:
    """A named design case: one window per constrained property and the number of candidates wanted."""

    name: str
    n_candidates: int
    windows: dict[str, Window]

    @classmethod
    def from_config(cls, name: str, sampling: Mapping[str, Any],
                    property_names: Sequence[str] | None = None) -> DesignCase:
        """Case ``name`` of config section ``sampling``.

        Args:
            name: A key of ``sampling["cases"]``.
            sampling: The config's ``sampling`` section.
            property_names: The trained model's properties; every constrained property must be one
                (None: not checked, e.g. in the report, which evaluates measured properties).

        Raises:
            ConfigError: ``name`` is not a case, or it constrains a property the model does not predict.
        """
        cases = sampling["cases"]
        if name not in cases:
            raise ConfigError(f"unknown design case {name!r}; allowed values: {sorted(cases)} (sampling.cases)")
        spec = cases[name]
        if property_names is not None:
            unknown = sorted(set(spec["constraints"]) - set(property_names))
            if unknown:
                raise ConfigError(
                    f"config key 'sampling.cases.{name}.constraints': properties {unknown} are not predicted by "
                    f"the trained model; allowed values: {list(property_names)}"
                )
        return cls(name=name, n_candidates=int(spec["n_candidates"]), windows=case_windows(spec["constraints"]))

    def meets(self, properties: Mapping[str, np.ndarray]) -> np.ndarray:
        """Boolean mask: every constrained property present in ``properties`` lies in its window.

        Constrained properties absent from ``properties`` (e.g. not predicted by the surrogate) are
        not tested; NaN values never meet a window.

        Raises:
            ValueError: none of the constrained properties is in ``properties``.
        """
        tested = [self.windows[prop].contains(properties[prop]) for prop in self.windows if prop in properties]
        if not tested:
            raise ValueError(f"case {self.name!r}: none of {sorted(self.windows)} is among {sorted(properties)}")
        return np.logical_and.reduce(tested)

    def window_distance(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """Sum over properties of the distance to each window, zero inside (for seed ranking)."""
        total = np.zeros(len(next(iter(values.values()))), dtype=float)
        for prop, window in self.windows.items():
            column = np.asarray(values[prop], dtype=float)
            total += np.clip(window.low - column, 0, None) + np.clip(column - window.high, 0, None)
        return total


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (good coverage even for small n or p near 0/1).

    Raises:
        ValueError: ``successes`` lies outside ``[0, n]``.
    """
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n={n}], got {successes}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At k = 0 (k = n) the bound is exactly 0 (1); rounding would otherwise leave it off by 1e-17.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def success_rate(outcomes: pd.Series) -> dict[str, Any] | None:
    """``{"n", "n_success", "rate", "ci95"}`` over the evaluable outcomes; None when none is evaluable."""
    known = outcomes.dropna().astype(bool)
    n = int(len(known))
    if n == 0:
        return None
    k = int(known.sum())
    low, high = wilson_interval(k, n)
    return {"n": n, "n_success": k, "rate": k / n, "ci95": [low, high]}


def training_rows(latent: LatentMeans) -> np.ndarray:
    """Mask of the training-split crystals of the model's ``latent.npz``: the seed pool and the base rate's sample."""
    return latent.split == "train"


def training_base_rate(windows: Mapping[str, Window], training_properties: Mapping[str, np.ndarray]
                       ) -> dict[str, Any] | None:
    """Share of training-split crystals inside ``windows``: the chance that a random training pick succeeds.

    Args:
        windows: The case's windows.
        training_properties: Each property's labels over the :func:`training_rows` of ``latent.npz``.

    Returns:
        :func:`success_rate` over the evaluable training crystals; None when there is none.
    """
    return success_rate(evaluate(pd.DataFrame(dict(training_properties)), windows))


def lift(rate: float | None, baseline: float | None) -> float | None:
    """``rate / baseline``: how many times more often than the baseline a strategy succeeds.

    The plain ratio of the two measured rates, so it agrees with the rates printed beside it. It is
    None when either rate is unknown (nothing evaluable) or the baseline rate is zero: a zero
    baseline gives no finite lift, and none is invented by smoothing.
    """
    if rate is None or baseline is None or baseline <= 0:
        return None
    return rate / baseline


def surrogate_lifts(candidates: pd.DataFrame, strategies: Iterable[str]) -> dict[str, float | None]:
    """Each strategy's :func:`lift` over :data:`RANDOM_BASELINE` in surrogate success, from candidates.csv rows.

    A strategy's rate is its ``surrogate_success`` candidates over its valid, unique and novel ones
    (None when it has none). Empty when ``random`` is not among ``strategies``.
    """
    strategies = list(strategies)
    if RANDOM_BASELINE not in strategies:
        return {}
    flags = candidates[["valid", "unique", "novel", "surrogate_success"]].astype(bool)
    novel = flags["valid"] & flags["unique"] & flags["novel"]
    rates: dict[str, float | None] = {}
    for name in strategies:
        chosen = novel & (candidates["strategy"] == name)
        n_novel = int(chosen.sum())
        rates[name] = int((chosen & flags["surrogate_success"]).sum()) / n_novel if n_novel else None
    return {name: lift(rate, rates[RANDOM_BASELINE]) for name, rate in rates.items()}


def reference_strategy(strategies: Iterable[str]) -> str | None:
    """The strategy a case's ``lift_over_random`` is reported for: :data:`REFERENCE_STRATEGY` when it ran,
    else the first designed strategy in run order, else None."""
    designed = [name for name in strategies if name not in BASELINE_STRATEGIES]
    if REFERENCE_STRATEGY in designed:
        return REFERENCE_STRATEGY
    return designed[0] if designed else None
