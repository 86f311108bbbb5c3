"""Time and peak memory of each stage against the training-set size, up to Materials Project size; prints JSON.

Stages, each measured at every ``--sizes`` N (default 5k, 10k, 20k, 40k training crystals):

* ``encode``: ``encode_dataset`` (ICR encoding + round-trip check) of the N crystals, ``--jobs`` processes;
* ``train_epoch``: one epoch of the real training loop (``icrdesign.model.training.fit``) on their ICR;
* ``sampling_novelty``: what sampling does per training crystal: index the training set
  (``CompositionIndex``) and check ``--candidates`` candidates against it (half are copies of
  crystals of the smallest training set, so the matcher really compares at every size);
* ``training_fingerprints``: the ``icrdesign fingerprints`` shard code (fresh per-crystal cache) on
  ``--fingerprint-sample`` of the N crystals, scaled linearly to N (a fingerprint costs the same
  whatever N; at ~2 per second per core, 40k real ones take hours), or on all N with ``--fingerprint-sample 0``;
* ``report``: what the report does with N training crystals: read the dataset table and the training
  fingerprint shards and find each of ``--candidates`` candidates' nearest neighbour among them (the
  shards hold the sample's real fingerprints, repeated with noise up to N rows).

Crystals are the demo's prototype fills (``icrdesign.data.demo``), each strained and rattled so that
no two share a geometry (the fingerprint cache cannot share them) with random labels. Each
measurement runs in a forked process; ``peak_mb`` is its peak resident memory above what it started
with (the worker processes of encode and of fingerprints with ``--jobs`` > 1 are not counted). ``growth_exponent`` is the slope of log(seconds) against log(N); ``extrapolated_hours_40k``
sums each stage's fitted time at 40,000 crystals, on 2 cores and on 32 (the process-parallel stages,
encode and fingerprints, divided by 32 / ``--jobs``; the others as measured).

    nice -n 10 .venv/bin/python benchmarks/scale.py --sizes 500 1000 2000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pymatgen.core import Structure

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

# Everything a stage uses is imported here, so that no measurement pays for an import.
from icrdesign.artefacts.dataset import read_dataset, write_dataset  # noqa: E402
from icrdesign.artefacts.encoded import read_encoded  # noqa: E402
from icrdesign.artefacts.fingerprints import Fingerprints, read_fingerprints, shard_file, write_fingerprints  # noqa: E402
from icrdesign.config import load_config  # noqa: E402
from icrdesign.data.demo import build_candidate, draw_candidates, usable_templates  # noqa: E402
from icrdesign.model.training import TrainingData, fit  # noqa: E402
from icrdesign.report.similarity import compute_fingerprints, nearest_neighbours  # noqa: E402
from icrdesign.representation.pipeline import encode_dataset  # noqa: E402
from icrdesign.sampling.matching import CompositionIndex  # noqa: E402

STAGES = ("encode", "train_epoch", "sampling_novelty", "training_fingerprints", "report")
#: The stages that run in ``--jobs`` processes, so that more cores divide their time.
PARALLEL_STAGES = ("encode", "training_fingerprints")
TARGET_SIZE = 40_000
STRAIN = 0.04  # largest relative strain per axis
RATTLE = 0.05  # largest displacement per site (Angstrom)


def crystals(n: int, seed: int, max_sites: int) -> pd.DataFrame:
    """``n`` demo crystals of distinct geometry in the dataset table's schema, with random labels."""
    rng = np.random.default_rng(seed)
    templates = usable_templates(max_sites)
    by_name = {t.prototype.name: t for t in templates}
    rows: list[dict[str, Any]] = []
    drawn: set = set()
    while len(rows) < n:
        fills = draw_candidates(templates, n - len(rows), rng, len(rows), drawn)
        if not fills:  # every fill drawn once: the same fills again, strained differently
            drawn.clear()
            continue
        for fill in fills:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                built = build_candidate(by_name[fill.prototype], fill, "dls")
            if built.structure is None:
                continue
            structure = built.structure
            structure.apply_strain(rng.uniform(-STRAIN, STRAIN, 3))
            structure.perturb(RATTLE, min_distance=RATTLE / 2)
            rows.append({
                "material_id": f"scale-{len(rows):06d}", "formula": structure.composition.reduced_formula,
                "structure": structure.to_json(), "nsites": len(structure),
                "nelements": len(structure.composition.elements), "spacegroup": built.spacegroup,
                "formation_energy_per_atom": float(rng.uniform(-3, 0)), "band_gap": float(rng.uniform(0, 4)),
                "energy_above_hull": 0.0, "source": "demo", "label_source": "random",
            })
    return pd.DataFrame(rows[:n])


def measure(task: Callable[[], None]) -> tuple[float, float]:
    """(seconds, peak MB above the start) of ``task`` in a forked process."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()

    def child() -> None:
        with open("/proc/self/statm") as handle:
            start_mb = int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        started = time.perf_counter()
        task()
        seconds = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        queue.put((seconds, max(0.0, peak_mb - start_mb)))

    process = context.Process(target=child)
    process.start()
    seconds, peak = queue.get()
    process.join()
    if process.exitcode:
        raise RuntimeError(f"measurement failed with exit code {process.exitcode}")
    return seconds, peak


class Bench:
    """The stages on one training set of N crystals, in a scratch folder."""

    def __init__(self, table: pd.DataFrame, candidates: pd.DataFrame, sample: list[tuple[str, str]],
                 sample_fingerprints: np.ndarray, args: argparse.Namespace, folder: Path):
        self.table, self.candidates, self.args, self.folder = table, candidates, args, folder
        self.sample, self.sample_fingerprints = sample, sample_fingerprints
        self.config = load_config(None)
        self.config["split"] = [1.0, 0.0, 0.0]  # every crystal is a training crystal
        self.dataset = folder / "dataset.parquet"
        write_dataset(self.dataset, table)

    def encode(self) -> None:
        encode_dataset(self.table, self.config, self.folder / "encoded", n_jobs=self.args.jobs)

    def train_epoch(self) -> None:
        torch.set_num_threads(self.args.jobs)
        encoded = read_encoded(self.folder / "encoded")
        rows = encoded.index["encoded"].to_numpy(dtype=bool)
        arrays = encoded.array[rows].astype(np.float32)
        split = np.where(np.arange(len(arrays)) % 10 == 0, "val", "train")  # a validation pass, as in training
        targets = np.random.default_rng(0).random((len(arrays), len(self.config["model"]["properties"])),
                                                  dtype=np.float32)
        section = {**self.config["model"], "device": "cpu", "max_epochs": 1, "early_stopping_patience": 2}
        with tempfile.TemporaryDirectory() as out:
            fit(TrainingData(arrays, targets, split), section, seed=0, out_dir=Path(out), metadata={},
                show_progress=False)

    def sampling_novelty(self) -> None:
        index = CompositionIndex.from_table(read_dataset(self.dataset))
        for text in self.candidates["structure"]:
            index.find_match(Structure.from_str(text, fmt="json"))

    def training_fingerprints(self) -> None:
        n = len(self.table) if not self.args.fingerprint_sample else min(self.args.fingerprint_sample, len(self.table))
        items = [("json", text) for text in self.table["structure"].iloc[:n]]
        with tempfile.TemporaryDirectory() as cache:
            compute_fingerprints(items, cache, self.args.jobs, "scale fingerprints")

    def write_training_shards(self) -> list[Path]:
        """Shards of N rows: the sample's real fingerprints repeated with 1% noise."""
        rng = np.random.default_rng(1)
        picks = rng.integers(0, len(self.sample_fingerprints), len(self.table))
        matrix = self.sample_fingerprints[picks] * rng.normal(1.0, 0.01, (len(self.table), 1))
        size = self.config["report"]["fingerprint_shard_size"]
        paths = []
        for shard, start in enumerate(range(0, len(self.table), size)):
            paths.append(shard_file(self.folder / "train", shard))
            write_fingerprints(paths[-1], Fingerprints(self.table["material_id"].iloc[start:start + size].to_numpy(str),
                                                       matrix[start:start + size], [None] * len(matrix[start:start + size])))
        return paths

    def report(self, shards: list[Path], queries: np.ndarray) -> None:
        read_dataset(self.dataset)
        train = read_fingerprints(shards)
        nearest_neighbours(queries, train.matrix)


def growth_exponent(sizes: list[int], seconds: list[float]) -> float | None:
    """Slope of log(seconds) against log(size); None with fewer than two sizes."""
    if len(sizes) < 2:
        return None
    return float(np.polyfit(np.log(sizes), np.log(np.maximum(seconds, 1e-9)), 1)[0])


def at_target(sizes: list[int], seconds: list[float]) -> float:
    """A stage's seconds at TARGET_SIZE from its log-log fit (linear from the largest size with one size)."""
    slope = growth_exponent(sizes, seconds)
    if slope is None:
        return seconds[-1] * TARGET_SIZE / sizes[-1]
    intercept = np.polyfit(np.log(sizes), np.log(np.maximum(seconds, 1e-9)), 1)[1]
    return float(np.exp(intercept + slope * np.log(TARGET_SIZE)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000, 40000])
    parser.add_argument("--candidates", type=int, default=200, help="candidates checked for novelty / dissimilarity")
    parser.add_argument("--fingerprint-sample", type=int, default=100,
                        help="crystals fingerprinted per size, scaled to N (0: all N)")
    parser.add_argument("--jobs", type=int, default=2, help="processes / threads per stage")
    parser.add_argument("--max-sites", type=int, default=20, help="largest primitive cell drawn (demo: 20)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sizes = sorted(set(args.sizes))

    pool = crystals(max(sizes), args.seed, args.max_sites)
    rng = np.random.default_rng(args.seed + 1)
    # Half the candidates are copies of crystals of the smallest training set, so that every size holds
    # them (the matcher compares them fully), half are new crystals.
    known = pool.iloc[:sizes[0]].sample(min(args.candidates // 2, sizes[0]), random_state=args.seed)
    fresh = crystals(args.candidates - len(known), args.seed + 2, args.max_sites)
    candidates = pd.concat([known, fresh], ignore_index=True)
    sample = [("json", text) for text in pool["structure"].iloc[:max(1, args.fingerprint_sample or 100)]]
    sample_fingerprints = compute_fingerprints(sample, None, args.jobs, "sample fingerprints").matrix
    queries = compute_fingerprints([("json", text) for text in candidates["structure"].iloc[:20]], None, 1).matrix
    queries = queries[rng.integers(0, len(queries), args.candidates)]

    results: dict[str, dict[str, list[float]]] = {name: {"seconds": [], "peak_mb": []} for name in STAGES}
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="icrdesign-scale-") as folder:
            bench = Bench(pool.iloc[:n].reset_index(drop=True), candidates, sample, sample_fingerprints, args,
                          Path(folder))
            shards = bench.write_training_shards()
            tasks = {"encode": bench.encode, "train_epoch": bench.train_epoch,
                     "sampling_novelty": bench.sampling_novelty,
                     "training_fingerprints": bench.training_fingerprints,
                     "report": lambda: bench.report(shards, queries)}
            for name in STAGES:
                seconds, peak = measure(tasks[name])
                if name == "training_fingerprints" and args.fingerprint_sample:
                    seconds *= n / min(args.fingerprint_sample, n)
                results[name]["seconds"].append(round(seconds, 3))
                results[name]["peak_mb"].append(round(peak, 1))
                print(f"N={n} {name}: {seconds:.2f} s, +{peak:.0f} MB", file=sys.stderr)
    stages = {name: {"sizes": sizes, "seconds": entry["seconds"], "peak_mb": entry["peak_mb"],
                     "growth_exponent": growth_exponent(sizes, entry["seconds"])}
              for name, entry in results.items()}
    hours = {}
    for cores in (2, 32):
        total = sum(at_target(sizes, entry["seconds"]) * (args.jobs / cores if name in PARALLEL_STAGES else 1.0)
                    for name, entry in stages.items())
        hours[f"{cores}_cores"] = round(total / 3600, 3)
    if args.fingerprint_sample:
        print(f"training_fingerprints: {args.fingerprint_sample} crystals measured per size, scaled linearly to N",
              file=sys.stderr)
    print(json.dumps({"stages": stages, "extrapolated_hours_40k": hours}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
