"""Training throughput of the property-structured VAE: samples/s and peak memory per device.

Runs the real training loop (icrdesign.model.training.fit, default architecture from config.yaml)
on random arrays of the demo representation's shape, on the CPU and, when present, on CUDA in
float32 and with bf16 mixed precision, all in this process, and prints JSON with the ratios
against the CPU run. Needs only torch, numpy, pandas, pyyaml and tqdm (no pymatgen), so it also
runs on a bare GPU machine: ``python benchmarks/train.py`` from the repository root.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from icrdesign.model.training import TrainingData, device_name, fit  # noqa: E402


def _data(n: int, rows: int, channels: int, n_properties: int, seed: int) -> TrainingData:
    rng = np.random.default_rng(seed)
    split = np.array(["train"] * n + ["val"] * max(1, n // 8))
    total = len(split)
    return TrainingData(
        arrays=rng.random((total, rows, channels), dtype=np.float32),
        targets=rng.random((total, n_properties), dtype=np.float32),
        split=split,
    )


def run(settings: dict[str, Any], data: TrainingData, device: str, amp: bool, epochs: int) -> dict[str, Any]:
    """Train ``epochs`` epochs; the first one is warm-up, the rest are timed from the training history."""
    section = {**settings, "device": device, "mixed_precision": amp, "max_epochs": epochs,
               "early_stopping_patience": epochs + 1}
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    cpu_started = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(data, section, seed=0, out_dir=Path(tmp), metadata={}, show_progress=False)
    cpu_seconds = time.process_time() - cpu_started
    timed = result.history[1:] or result.history
    n_train = int((data.split == "train").sum())
    seconds = sum(row["seconds"] for row in timed)
    out = {
        "device": device_name(result.device),
        "mixed_precision": amp,
        "threads": torch.get_num_threads(),
        "epochs_timed": len(timed),
        "n_train": n_train,
        "seconds_per_epoch": seconds / len(timed),
        "samples_per_s": n_train * len(timed) / seconds,
        "process_cpu_seconds": round(cpu_seconds, 2),
        "final_train_loss": result.history[-1]["train_loss"],
    }
    if device == "cuda":
        out["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="training crystals (demo: ~4000)")
    parser.add_argument("--rows", type=int, default=140, help="ICR rows (demo vocabulary ~85 elements: ~140)")
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is not timed)")
    parser.add_argument("--gpu-epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--skip-cpu", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    settings = yaml.safe_load((REPO / "config.yaml").read_text())["model"]
    data = _data(args.n, args.rows, args.channels, len(settings["properties"]), seed=0)
    runs = []
    if not args.skip_cpu:
        runs.append(run(settings, data, "cpu", False, args.epochs))
    if torch.cuda.is_available():
        runs.append(run(settings, data, "cuda", False, args.gpu_epochs))
        runs.append(run(settings, data, "cuda", True, args.gpu_epochs))
    baseline = runs[0]["samples_per_s"]
    for entry in runs:
        entry["speedup_vs_first_run"] = entry["samples_per_s"] / baseline
    print(json.dumps({
        "benchmark": "train",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "shape": [args.rows, args.channels],
        "batch_size": settings["batch_size"],
        "runs": runs,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
