"""Test-split property MAE of the VAE for configuration variants trained side by side on one packed
training set; prints JSON (one entry per variant, the first is the baseline the others are compared to).

    # here, with pymatgen: pack a finished encode stage with its labels and the train stage's split
    .venv/bin/python benchmarks/model_sweep.py pack --encoded results/encoded \\
        --dataset results/data/dataset.parquet --out sweep.npz
    # anywhere with torch, numpy and pyyaml (a bare GPU machine too):
    python benchmarks/model_sweep.py run --data sweep.npz --variants variants.yaml

variants.yaml maps a variant name to overrides of config.yaml's ``model`` section, plus an optional
``n_train`` (train on the first N training crystals; validation and test stay the same, for
learning curves). The element accuracy is that of the decoded element one-hot block.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from icrdesign.model.training import TrainingData, device_name, fit  # noqa: E402
from icrdesign.representation.scaler import MinMaxScaler  # noqa: E402


def pack(encoded: Path, dataset: Path, out: Path, config_path: Path) -> None:
    """Scaled arrays, normalised labels, the seeded split and the row weights, as the train stage builds them."""
    from icrdesign.config import load_config
    from icrdesign.model.pipeline import EncodedDataset, prepare_training_data

    config = load_config(config_path)
    names = list(config["model"]["properties"])
    data = EncodedDataset.load(encoded, dataset, names)
    prepared = prepare_training_data(data, config)
    start, stop = data.icr.blocks["elements"]
    np.savez_compressed(
        out,
        arrays=prepared.training.arrays,
        targets=prepared.training.targets,
        split=prepared.training.split.astype(str),
        row_weights=prepared.training.row_weights,
        property_names=np.array(names),
        property_low=prepared.property_scaler.low,
        property_high=prepared.property_scaler.high,
        element_block=np.array([start, stop, data.icr.max_elements]),
    )


def _subset_train(split: np.ndarray, n_train: int | None) -> np.ndarray:
    if n_train is None:
        return split
    train_rows = np.flatnonzero(split == "train")
    if n_train > len(train_rows):
        raise ValueError(f"n_train {n_train} exceeds the {len(train_rows)} training crystals")
    subset = split.copy()
    subset[train_rows[n_train:]] = "unused"
    return subset


@torch.no_grad()
def evaluate(result: Any, packed: dict[str, np.ndarray]) -> dict[str, Any]:
    test = packed["split"] == "test"
    x = torch.from_numpy(packed["arrays"][test]).to(result.device)
    vae = result.vae.eval()
    mean, _ = vae.encode(x)
    predicted = vae.predict(mean).float().cpu().numpy()
    decoded = vae.decode(mean).float().cpu().numpy()
    scaler = MinMaxScaler(packed["property_low"], packed["property_high"])
    true_ev = scaler.inverse_transform(packed["targets"][test])
    predicted_ev = scaler.inverse_transform(predicted)
    out: dict[str, Any] = {"property_mae": {}, "property_r2": {}}
    for j, name in enumerate(packed["property_names"]):
        error = predicted_ev[:, j] - true_ev[:, j]
        out["property_mae"][str(name)] = float(np.abs(error).mean())
        out["property_r2"][str(name)] = float(1 - (error**2).sum() / ((true_ev[:, j] - true_ev[:, j].mean()) ** 2).sum())
    start, stop, columns = packed["element_block"]
    truth = packed["arrays"][test][:, start:stop, :columns]
    present = truth.max(axis=1) > 0.5
    hits = decoded[:, start:stop, :columns].argmax(axis=1) == truth.argmax(axis=1)
    out["element_accuracy"] = float(hits[present].mean())
    return out


def run(data_path: Path, variants: dict[str, dict[str, Any]], seed: int) -> dict[str, Any]:
    packed = dict(np.load(data_path))
    defaults = yaml.safe_load((REPO / "config.yaml").read_text())["model"]
    entries = []
    for name, overrides in variants.items():
        overrides = dict(overrides or {})
        split = _subset_train(packed["split"], overrides.pop("n_train", None))
        section = {**defaults, **overrides}
        data = TrainingData(packed["arrays"], packed["targets"], split, packed["row_weights"])
        with tempfile.TemporaryDirectory() as tmp:
            result = fit(data, section, seed=seed, out_dir=Path(tmp), metadata={}, show_progress=False)
        n_train = int((split == "train").sum())
        entry = {
            "variant": name,
            "overrides": overrides,
            "n_train": n_train,
            "device": device_name(result.device),
            "epochs": result.epochs,
            "best_epoch": result.checkpoint["best_epoch"],
            "train_seconds": round(result.train_seconds, 2),
            "samples_per_s": round(n_train * result.epochs / result.train_seconds, 1),
            **evaluate(result, packed),
        }
        print(json.dumps(entry), file=sys.stderr, flush=True)
        entries.append(entry)
    baseline = entries[0]["property_mae"]
    for entry in entries:
        entry["mae_ratio_vs_first"] = {k: v / baseline[k] for k, v in entry["property_mae"].items()}
    return {"benchmark": "model_sweep", "torch": torch.__version__, "n_test": int((packed["split"] == "test").sum()),
            "variants": entries}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    packer = commands.add_parser("pack", help="pack an encode stage's outputs for runs without pymatgen")
    packer.add_argument("--encoded", type=Path, required=True)
    packer.add_argument("--dataset", type=Path, required=True)
    packer.add_argument("--config", type=Path, default=REPO / "config.yaml")
    packer.add_argument("--out", type=Path, required=True)
    runner = commands.add_parser("run", help="train every variant and print JSON")
    runner.add_argument("--data", type=Path, required=True)
    runner.add_argument("--variants", type=Path, required=True)
    runner.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.command == "pack":
        pack(args.encoded, args.dataset, args.out, args.config)
    else:
        print(json.dumps(run(args.data, yaml.safe_load(args.variants.read_text()), args.seed), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
