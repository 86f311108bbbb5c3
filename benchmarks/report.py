"""Benchmark the report's dissimilarity step; prints JSON.

Measures (1) fingerprints/s in one process and in ``--jobs`` processes (cold training cache build),
(2) the time to compare ``--n-candidates`` new crystals against ``--n-train`` training crystals once
the training cache exists (cache load + candidate fingerprints + vectorised nearest-neighbour search;
target < 120 s on 2 cores for 100 vs 10,000), and (3) the vectorised search against a per-pair loop
run side by side on the same fingerprints.

Structures are real pymatgen crystals: the dataset table when ``--dataset`` is given, else common
prototypes with random elements, strained and rattled so that every fingerprint is distinct.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure

from icrdesign.report.similarity import fingerprints_from_text, nearest_neighbours, serialise

PROTOTYPES = {  # space group, lattice builder, species slots, fractional coordinates
    "rocksalt": ("Fm-3m", lambda a: Lattice.cubic(a), 2, [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "zincblende": ("F-43m", lambda a: Lattice.cubic(a), 2, [[0, 0, 0], [0.25, 0.25, 0.25]]),
    "fluorite": ("Fm-3m", lambda a: Lattice.cubic(a), 2, [[0, 0, 0], [0.25, 0.25, 0.25]]),
    "cscl": ("Pm-3m", lambda a: Lattice.cubic(a * 0.7), 2, [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "wurtzite": ("P6_3mc", lambda a: Lattice.hexagonal(a * 0.6, a), 2, [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.375]]),
    "nickeline": ("P6_3/mmc", lambda a: Lattice.hexagonal(a * 0.65, a * 0.9), 2, [[0, 0, 0], [1 / 3, 2 / 3, 0.25]]),
    "perovskite": ("Pm-3m", lambda a: Lattice.cubic(a * 0.7), 3, [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]),
}
CATIONS = ["Li", "Na", "K", "Mg", "Ca", "Sr", "Ba", "Zn", "Cd", "Ga", "In", "Al", "Ti", "Zr", "Fe", "Ni", "Cu"]
ANIONS = ["O", "S", "Se", "Te", "F", "Cl", "Br", "N", "P", "As"]


def synthetic_structures(n: int, seed: int) -> list[Structure]:
    rng = np.random.default_rng(seed)
    names = list(PROTOTYPES)
    structures = []
    while len(structures) < n:
        group, lattice, slots, coords = PROTOTYPES[names[rng.integers(len(names))]]
        species = [*rng.choice(CATIONS, slots - 1, replace=False), rng.choice(ANIONS)]
        structure = Structure.from_spacegroup(group, lattice(rng.uniform(4.0, 6.5)), species, coords)
        structure.apply_strain(rng.uniform(-0.05, 0.05, 3))
        structure.perturb(0.05, min_distance=0.0)
        structures.append(structure)
    return structures


def dataset_items(path: Path, n: int) -> list[tuple[str, str]]:
    import pandas as pd

    table = pd.read_parquet(path, columns=["structure"])
    return [("json", text) for text in table["structure"].iloc[:n]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=10000)
    parser.add_argument("--n-candidates", type=int, default=100)
    parser.add_argument("--n-rate", type=int, default=40, help="structures for the single-process rate")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=None, help="keep the training cache here (reused)")
    parser.add_argument("--dataset", type=Path, default=None, help="dataset.parquet for training crystals")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    cache_dir = args.cache_dir or Path(tempfile.mkdtemp(prefix="report-bench-"))
    cache_dir.mkdir(parents=True, exist_ok=True)
    if args.dataset is not None:
        train_items = dataset_items(args.dataset, args.n_train)
    else:
        train_items = [serialise(s) for s in synthetic_structures(args.n_train, args.seed)]
    candidate_items = [serialise(s) for s in synthetic_structures(args.n_candidates, args.seed + 1)]

    # Warm up matminer in this process so the single-process rate excludes its import.
    fingerprints_from_text(candidate_items[:1])
    start = time.perf_counter()
    fingerprints_from_text(train_items[: args.n_rate], None, n_jobs=1, description="serial rate")
    serial_rate = args.n_rate / (time.perf_counter() - start)

    train_cache = cache_dir / "fingerprints_train.npz"
    cached_before = train_cache.exists()
    start = time.perf_counter()
    fingerprints_from_text(train_items, train_cache, n_jobs=args.jobs, description="training cache")
    build_s = time.perf_counter() - start

    # After the cache exists: what `icrdesign report` does for new candidates.
    start = time.perf_counter()
    train, _ = fingerprints_from_text(train_items, train_cache, n_jobs=args.jobs)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    queries, _ = fingerprints_from_text(candidate_items, None, n_jobs=args.jobs, description="candidates")
    candidate_s = time.perf_counter() - start
    start = time.perf_counter()
    distances, _ = nearest_neighbours(queries, train)
    search_s = time.perf_counter() - start

    # Baseline: one norm per (candidate, training) pair, on a slice, scaled to the full comparison.
    n_pairs_slice = min(len(train), 2000)
    start = time.perf_counter()
    loop = [min(np.linalg.norm(q - t) for t in train[:n_pairs_slice]) for q in queries[:10]]
    loop_s = (time.perf_counter() - start) * (len(queries) / 10) * (len(train) / n_pairs_slice)
    vector_slice, _ = nearest_neighbours(queries[:10], train[:n_pairs_slice])
    assert np.allclose(loop, vector_slice)

    warm_s = load_s + candidate_s + search_s
    print(json.dumps({
        "n_train": len(train_items),
        "n_candidates": len(candidate_items),
        "jobs": args.jobs,
        "cpu_count": os.cpu_count(),
        "fingerprints_per_s_serial": round(serial_rate, 2),
        "training_cache": {"existed_before": cached_before, "build_s": round(build_s, 2),
                           "fingerprints_per_s_parallel": None if cached_before else round(len(train_items) / build_s, 2)},
        "after_cache": {"total_s": round(warm_s, 2), "cache_load_s": round(load_s, 2),
                        "candidate_fingerprints_s": round(candidate_s, 2), "nearest_neighbour_s": round(search_s, 4),
                        "target_s": 120, "meets_target": warm_s < 120},
        "nearest_neighbour_speedup_vs_pair_loop": round(loop_s / max(search_s, 1e-9), 1),
        "median_min_dissimilarity": float(np.nanmedian(distances)),
        "cache_dir": str(cache_dir),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
