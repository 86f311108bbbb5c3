"""One design case end to end: strategies -> funnel -> surrogate check -> files under results/design/<case>/."""

from __future__ import annotations

import logging
import shutil
import sys
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

from icrdesign.io import write_csv, write_json
from icrdesign.sampling.cases import DesignCase
from icrdesign.sampling.funnel import Surrogate, apply_surrogate, candidate_columns, drop_counts, process_strategy
from icrdesign.sampling.matching import CompositionIndex
from icrdesign.sampling.strategies import (
    BASELINES,
    STRATEGIES,
    SeedPool,
    StrategySettings,
    TrainedModelLike,
    expand_strategies,
)
from icrdesign.sampling.validity import ValidityCriteria

log = logging.getLogger(__name__)

REJECTED_COLUMNS = ["id", "strategy", "seed", "stage", "reason", "detail"]
#: The strategy whose lift is reported as ``lift_over_random`` (the published method) when it runs.
REFERENCE_STRATEGY = "local_perturbation"


@dataclass(frozen=True)
class CaseResult:
    candidates: pd.DataFrame
    rejected: pd.DataFrame
    metrics: dict[str, Any]
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
                                   guided=name not in BASELINES, batch_size=sampling["batch_size"])
        log.info("case %s, %s: %d generated, %d decoded, %d valid+unique+novel", case.name, name,
                 outcome.generated, len(outcome.rows), outcome.novel)
        rows += outcome.rows
        rejected += outcome.rejected
        structures.update(outcome.structures)
        generated[name] = outcome.generated
    candidates = apply_surrogate(pd.DataFrame(rows, columns=candidate_columns(model.property_names)), structures,
                                 case, surrogate)
    rejected_frame = pd.DataFrame(rejected, columns=REJECTED_COLUMNS)
    metrics, funnel = summarise(candidates, rejected_frame, generated, case, pool)
    return CaseResult(candidates, rejected_frame, metrics, funnel), structures


def _laplace_rate(successes: int, trials: int) -> float:
    return (successes + 1) / (trials + 2)


def summarise(candidates: pd.DataFrame, rejected: pd.DataFrame, generated: Mapping[str, int], case: DesignCase,
              pool: SeedPool) -> tuple[dict[str, Any], dict[str, Any]]:
    """``metrics.json`` (the issue's keys) and ``funnel.json`` (drops by reason, percentages, lifts)."""
    strategies: dict[str, dict[str, Any]] = {}
    for name, n_generated in generated.items():
        rows = candidates[candidates["strategy"] == name]
        count = {flag: int(rows[flag].astype(bool).sum()) for flag in ("valid", "unique", "novel", "surrogate_success")}
        strategies[name] = {"generated": int(n_generated), **count,
                            "surrogate_success_rate": count["surrogate_success"] / count["novel"] if count["novel"] else 0.0}
    lifts = {}
    if "random" in strategies:
        baseline = strategies["random"]
        baseline_rate = _laplace_rate(baseline["surrogate_success"], baseline["novel"])
        lifts = {name: _laplace_rate(s["surrogate_success"], s["novel"]) / baseline_rate for name, s in strategies.items()}
    guided = [name for name in strategies if name not in BASELINES]
    reference = REFERENCE_STRATEGY if REFERENCE_STRATEGY in guided else (guided[0] if guided else None)
    metrics = {
        "strategies": strategies,
        "lift_over_random": lifts.get(reference) if reference else None,
        "training_base_rate": float(case.meets(pool.properties).mean()) if len(pool) else 0.0,
    }
    drops = drop_counts(rejected)
    funnel = {
        "case": case.name,
        "n_candidates": case.n_candidates,
        "windows": {prop: [w.low, w.high] for prop, w in case.windows.items()},
        "lift_reference_strategy": reference,
        "lift_definition": "Laplace-smoothed surrogate success rate (s+1)/(novel+2) over that of `random`",
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
    staging = Path(tempfile.mkdtemp(prefix=".cifs.", dir=out_dir))
    try:
        for position in candidates.index[candidates["valid"].astype(bool)]:
            candidate_id = candidates.at[position, "id"]
            CifWriter(structures[candidate_id]).write_file(staging / f"{candidate_id}.cif")
            candidates.at[position, "cif"] = f"cifs/{candidate_id}.cif"
        final = out_dir / "cifs"
        retired = out_dir / f".cifs.old.{staging.name}"
        if final.exists():
            final.rename(retired)
        staging.rename(final)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_csv(out_dir / "candidates.csv", candidates)
    write_csv(out_dir / "rejected.csv", result.rejected)
    write_json(out_dir / "funnel.json", result.funnel)
    write_json(out_dir / "metrics.json", result.metrics)


def load_candidates(case_dir: str | Path) -> pd.DataFrame:
    """Read ``<case_dir>/candidates.csv`` with boolean flags as bool and empty strings for missing text."""
    frame = pd.read_csv(Path(case_dir) / "candidates.csv", dtype={"id": str, "seed": str, "cif": str, "spacegroup": str})
    for column in ("seed", "cif", "spacegroup"):
        if column in frame:
            frame[column] = frame[column].fillna("")
    for column in ("valid_structure", "valid_composition", "valid", "unique", "novel", "surrogate_success"):
        if column in frame:
            frame[column] = frame[column].astype(bool)
    return frame


def sample_case(model_dir: Path, dataset_path: Path, config: Mapping[str, Any], case_name: str, out_dir: Path,
                device: str = "cpu", surrogate: Surrogate | None = None) -> CaseResult:
    """Load the trained model and the dataset, sample ``case_name``, write ``out_dir``; the notebook entry point."""
    from icrdesign.model import load_trained

    model = load_trained(model_dir, device=device)
    case = DesignCase.from_config(case_name, config["sampling"], model.property_names)
    if surrogate is None:
        from icrdesign.data.surrogate import predict_properties as surrogate
    pool = SeedPool.from_latent_file(model_dir / "latent.npz", model.property_names)
    table = pd.read_parquet(dataset_path, columns=["material_id", "formula", "structure"])
    result, structures = run_case(model, pool, table, case, config["sampling"], config["seed"], surrogate)
    write_case(out_dir, result, structures)
    return result


def main(argv: list[str] | None = None) -> int:
    import argparse

    import torch

    from icrdesign.config import ConfigError, load_config

    parser = argparse.ArgumentParser(prog="icrdesign sample", description="Sample candidates for one design case.")
    parser.add_argument("--model", type=Path, required=True, help="trained model folder (results/model)")
    parser.add_argument("--dataset", type=Path, required=True, help="dataset table (results/data/dataset.parquet)")
    parser.add_argument("--config", type=Path, default=None, help="config layered over config.yaml")
    parser.add_argument("--case", required=True, help="design case name from sampling.cases")
    parser.add_argument("--out", type=Path, required=True, help="output folder (results/design/CASE)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        if args.case not in config["sampling"]["cases"]:
            raise ConfigError(f"unknown design case {args.case!r}; allowed values: "
                              f"{sorted(config['sampling']['cases'])} (sampling.cases)")
        device = config["model"]["device"]
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        result = sample_case(args.model, args.dataset, config, args.case, args.out, device=device)
    except ConfigError as error:
        print(f"icrdesign sample: {error}", file=sys.stderr)
        return 2
    for name, counts in result.metrics["strategies"].items():
        log.info("%s: %s", name, counts)
    log.info("lift over random: %s; training base rate: %.3f", result.metrics["lift_over_random"],
             result.metrics["training_base_rate"])
    return 0
