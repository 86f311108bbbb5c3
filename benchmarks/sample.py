"""Throughput of the sampling funnel and scaling of the novelty check; prints JSON.

* ``candidates_per_min``: proposals through ICR decode + validity + uniqueness + novelty against a
  5,000-crystal training set (the VAE forward pass is excluded: the proposals are noisy ICR arrays).
* ``novelty``: seconds to index N training crystals and check the same candidates against them, for
  N = 1k, 5k, 20k, with the composition index and, as the side-by-side baseline, comparing every pair
  (measured on a few candidates and scaled up); the index should grow ~linearly with N.

Training crystals are distinct prototypes (rock salt, CsCl, zinc blende, perovskite, fluorite) with
random elements and lattice constants; candidates come from the same generator, so some are known.

    .venv/bin/python benchmarks/sample.py [--candidates 1000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import pandas as pd
import torch
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from icrdesign.cases import DesignCase, Window
from icrdesign.config import load_config
from icrdesign.representation import ICR
from icrdesign.sampling import CompositionIndex, LatentProposals, ValidityCriteria, process_strategy

CATIONS = ["Li", "Na", "K", "Rb", "Cs", "Be", "Mg", "Ca", "Sr", "Ba", "Zn", "Cd", "Hg", "Ni", "Co", "Fe", "Mn",
           "Cr", "V", "Cu", "Ag", "Al", "Ga", "In", "Tl", "Y", "Sc", "La", "Ce", "Nd", "Sm", "Gd", "Ti", "Zr",
           "Hf", "Nb", "Ta", "Mo", "W", "Sn", "Pb", "Bi", "Sb", "Ge", "Si"]
ANIONS = ["O", "S", "Se", "Te", "F", "Cl", "Br", "I", "N", "P"]
PROTOTYPES = ("rocksalt", "cscl", "zincblende", "perovskite", "fluorite")
FCC = (60, 60, 60)


def crystal(prototype: str, elements: tuple[str, ...], edge: float) -> Structure:
    """A prototype crystal; structures differing only in ``edge`` are the same crystal to StructureMatcher."""
    if prototype == "perovskite":
        a, b, x = elements
        return Structure(Lattice.cubic(edge * 0.7), [a, b, x, x, x],
                         [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    a, x = elements
    fcc = Lattice.from_parameters(edge, edge, edge, *FCC)
    if prototype == "rocksalt":
        return Structure(fcc, [a, x], [[0, 0, 0], [0.5, 0.5, 0.5]])
    if prototype == "cscl":
        return Structure(Lattice.cubic(edge * 0.7), [a, x], [[0, 0, 0], [0.5, 0.5, 0.5]])
    if prototype == "zincblende":
        return Structure(fcc, [a, x], [[0, 0, 0], [0.25, 0.25, 0.25]])
    return Structure(fcc, [a, x, x], [[0, 0, 0], [0.25] * 3, [0.75] * 3])  # fluorite


def all_kinds() -> list[tuple[str, tuple[str, ...]]]:
    """Every distinct (prototype, elements) pair: about 22,000 different crystals."""
    kinds = [(p, (a, x)) for p in PROTOTYPES if p != "perovskite" for a in CATIONS for x in ANIONS]
    kinds += [("perovskite", (a, b, x)) for a in CATIONS for b in CATIONS if a != b for x in ANIONS]
    return kinds


def random_crystals(n: int, rng: np.random.Generator, distinct: bool) -> list[Structure]:
    """``n`` crystals with random lattice constants; ``distinct``: no two are the same crystal."""
    kinds = all_kinds()
    picks = rng.permutation(len(kinds))[:n] if distinct else rng.integers(0, len(kinds), n)
    return [crystal(*kinds[i], float(rng.uniform(3.5, 6.5))) for i in picks]


def training_table(n: int, seed: int) -> pd.DataFrame:
    """A deduplicated training set of ``n`` crystals in the dataset table's schema."""
    structures = random_crystals(n, np.random.default_rng(seed), distinct=True)
    return pd.DataFrame({"material_id": [f"bench-{i}" for i in range(n)],
                         "formula": [s.composition.reduced_formula for s in structures],
                         "structure": [s.to_json() for s in structures]})


class ICRArrayModel:
    """Proposals are flattened raw ICR arrays: ``decode`` reshapes them, so the funnel's cost is measured."""

    def __init__(self, icr: ICR) -> None:
        self.icr, self.property_names, self.latent_dim = icr, ["band_gap"], icr.n_rows * icr.n_channels

    def decode(self, z: np.ndarray) -> np.ndarray:
        return z.reshape(len(z), self.icr.n_rows, self.icr.n_channels)

    def predict_properties(self, z: np.ndarray) -> dict[str, np.ndarray]:
        return {"band_gap": np.zeros(len(z))}

    def property_tensor(self, z: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(z), 1)


def candidate_proposals(icr: ICR, n: int, seed: int) -> LatentProposals:
    """ICR arrays of new random crystals plus noise, so some decode to invalid or garbage structures."""
    rng = np.random.default_rng(seed)
    encoded = icr.encode(random_crystals(n, rng, distinct=False), n_jobs=1)
    arrays = encoded.array[encoded.mask]
    arrays = arrays + rng.normal(0.0, 0.02, arrays.shape).astype(np.float32)
    flat = arrays.reshape(len(arrays), -1)
    return LatentProposals(flat, np.full(len(flat), "", dtype=object), np.full(len(flat), np.nan))


def novelty_seconds(table: pd.DataFrame, queries: list[Structure]) -> float:
    start = time.perf_counter()
    index = CompositionIndex.from_table(table)
    for structure in queries:
        index.find_match(structure)
    return time.perf_counter() - start


def all_pairs_seconds(table: pd.DataFrame, queries: list[Structure]) -> float:
    """Baseline: parse every training crystal and compare each query with all of them."""
    matcher = StructureMatcher()
    start = time.perf_counter()
    training = [Structure.from_str(s, fmt="json") for s in table["structure"]]
    for query in queries:
        next((True for known in training if matcher.fit(query, known)), False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a smoke run")
    args = parser.parse_args()
    torch.set_num_threads(2)
    sizes = [200, 500, 1000] if args.quick else [1000, 5000, 20000]
    training_size = 500 if args.quick else 5000
    config = load_config()
    tables = {n: training_table(n, seed=n) for n in sorted({*sizes, training_size})}
    icr = ICR.from_config({**config["representation"], "elements": sorted(set(CATIONS) | set(ANIONS))})
    proposals = candidate_proposals(icr, args.candidates, seed=12345)
    case = DesignCase("bench", len(proposals.z) + 1, {"band_gap": Window(-np.inf, np.inf)})

    start, cpu_start = time.perf_counter(), time.process_time()
    outcome = process_strategy("bench", proposals, ICRArrayModel(icr), case,
                               ValidityCriteria.from_config(config["sampling"]),
                               CompositionIndex.from_table(tables[training_size]), guided=False,
                               batch_size=config["sampling"]["batch_size"])
    funnel_seconds = time.perf_counter() - start
    funnel_cpu_seconds = time.process_time() - cpu_start
    reasons: dict[str, int] = {}
    for row in outcome.rejected:
        reasons[row["reason"]] = reasons.get(row["reason"], 0) + 1

    queries = [outcome.structures[row["id"]] for row in outcome.rows if row["valid"]][:500]
    baseline_queries = queries[:10]
    novelty = {}
    for n in sizes:
        indexed = novelty_seconds(tables[n], queries)
        pairs = all_pairs_seconds(tables[n], baseline_queries) * len(queries) / len(baseline_queries)
        novelty[str(n)] = {"indexed_s": round(indexed, 3), "all_pairs_s_estimated": round(pairs, 1),
                           "speedup": round(pairs / indexed, 1)}
    growth = novelty[str(sizes[-1])]["indexed_s"] / novelty[str(sizes[0])]["indexed_s"]
    print(json.dumps({
        "cores": os.cpu_count(),
        "training_crystals": training_size,
        "proposals": outcome.generated,
        "decoded": len(outcome.rows),
        "valid": sum(r["valid"] for r in outcome.rows),
        "unique": sum(r["unique"] for r in outcome.rows),
        "novel": outcome.novel,
        "dropped_by_reason": dict(sorted(reasons.items())),
        "funnel_seconds": round(funnel_seconds, 2),
        "candidates_per_min": round(60 * outcome.generated / funnel_seconds, 1),
        # CPU time of this (single-threaded) process: the rate on an otherwise idle core.
        "candidates_per_cpu_min": round(60 * outcome.generated / funnel_cpu_seconds, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "target_candidates_per_min": 2000,
        "novelty_queries": len(queries),
        "novelty": novelty,
        "novelty_growth": {"training_ratio": sizes[-1] / sizes[0], "time_ratio": round(growth, 2)},
    }, indent=2))


if __name__ == "__main__":
    main()
