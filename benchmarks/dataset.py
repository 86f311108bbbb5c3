"""Wall time to build the demo dataset (default 5,000 structures, 2 processes), as JSON.

Target: under 180 s on 2 cores including labelling. Also times the vectorised DLS volume rule
against pymatgen's DLSVolumePredictor side by side on the same candidates (ratio, same process).

    .venv/bin/python benchmarks/dataset.py [--n-structures 5000] [--n-jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np
from pymatgen.analysis.structure_prediction.volume_predictor import DLSVolumePredictor
from pymatgen.core import Structure

from icrdesign.data.demo import build_demo_dataset, dls_volume_factor, draw_candidates, usable_templates

TARGET_SECONDS = 180.0


def time_volume_rules(n: int, seed: int) -> dict[str, float]:
    templates = {t.prototype.name: t for t in usable_templates(20)}
    candidates = draw_candidates(list(templates.values()), n, np.random.default_rng(seed), 0, set())
    structures = [
        Structure(t.lattice, [c.elements[r] for r in t.site_roles], t.frac_coords)
        for c in candidates
        for t in [templates[c.prototype]]
    ]
    predictor = DLSVolumePredictor(min_scaling=None, max_scaling=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        reference = [predictor.predict(s) / s.volume for s in structures]
        pymatgen_s = time.perf_counter() - start
        start = time.perf_counter()
        vectorised = [dls_volume_factor(s) for s in structures]
        vectorised_s = time.perf_counter() - start
    return {
        "n_structures": n,
        "pymatgen_dls_s": round(pymatgen_s, 3),
        "vectorised_dls_s": round(vectorised_s, 3),
        "speedup": round(pymatgen_s / vectorised_s, 2),
        "max_relative_difference": float(np.max(np.abs(np.array(vectorised) / np.array(reference) - 1))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-structures", type=int, default=5000)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    settings = {"n_structures": args.n_structures, "max_sites": 20, "volume_predictor": "dls", "n_jobs": args.n_jobs}
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    table, rejected, provenance = build_demo_dataset(settings, args.seed)
    wall = time.perf_counter() - start
    result = {
        "benchmark": "demo_dataset",
        "n_structures": len(table),
        "n_jobs": args.n_jobs,
        "wall_s": round(wall, 1),
        "target_s": TARGET_SECONDS,
        "meets_target": wall < TARGET_SECONDS,
        "structures_per_s": round(len(table) / wall, 1),
        "n_candidates_drawn": provenance["n_candidates_drawn"],
        "rejected_by_reason": provenance["rejected_by_reason"],
        "cpu_count": os.cpu_count(),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "volume_rule": time_volume_rules(200, args.seed),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
