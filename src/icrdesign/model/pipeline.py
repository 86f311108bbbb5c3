"""The train stage: encoded dataset in, trained model, metrics, split, latent means and Fig. S1 out."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Structure

from icrdesign.io import atomic_path, read_json, write_csv, write_json
from icrdesign.model.metrics import match_summary, match_table, property_metrics, reconstruction_metrics
from icrdesign.model.plots import plot_latent
from icrdesign.model.trained import PropertyScaler, TrainedModel
from icrdesign.model.training import TrainingData, device_name, fit, save_model
from icrdesign.representation import ICR, MinMaxScaler
from icrdesign.split import split_ids

log = logging.getLogger(__name__)


@dataclass
class EncodedDataset:
    """The encode stage's outputs joined with the property labels of the dataset table."""

    icr: ICR
    scaler: MinMaxScaler
    material_ids: np.ndarray  # encoded crystals only, dataset order
    raw: np.ndarray  # unscaled ICR arrays of those crystals
    properties: np.ndarray  # N x n_properties, NaN where unknown
    structures_json: np.ndarray  # the dataset's structure JSON of each crystal

    @classmethod
    def load(cls, encoded_dir: Path, dataset_path: Path, property_names: list[str]) -> EncodedDataset:
        raw = np.load(encoded_dir / "icr.npy")
        index = pd.read_csv(encoded_dir / "index.csv", dtype={"material_id": str})
        if len(index) != len(raw):
            raise ValueError(f"{encoded_dir}: index.csv has {len(index)} rows but icr.npy {len(raw)}")
        encoded = index["encoded"].astype(bool).to_numpy()
        ids = index["material_id"].to_numpy()[encoded]
        table = pd.read_parquet(dataset_path, columns=["material_id", "structure", *property_names])
        table = table.set_index(table["material_id"].astype(str)).reindex(ids)
        return cls(
            icr=ICR.from_dict(read_json(encoded_dir / "icr.json")),
            scaler=MinMaxScaler.from_dict(read_json(encoded_dir / "scaler.json")),
            material_ids=ids,
            raw=raw[encoded],
            properties=table[property_names].to_numpy(dtype=np.float64),
            structures_json=table["structure"].to_numpy(),
        )

    def structures(self, rows: np.ndarray) -> list[Structure]:
        return [Structure.from_dict(json.loads(text)) for text in self.structures_json[rows]]


def _json_number(value: Any) -> Any:
    """NaN is not JSON: write null instead."""
    if isinstance(value, dict):
        return {key: _json_number(item) for key, item in value.items()}
    return None if isinstance(value, float) and not math.isfinite(value) else value


def reconstruction_row_weights(icr: ICR, block_weights: dict[str, float]) -> np.ndarray:
    """Loss weight of every representation row from the weight of its block (blocks not named: 1;
    a weight for a block this ICR lacks, e.g. fourier when it is off, is unused)."""
    weights = np.ones(icr.n_rows, dtype=np.float32)
    for name, (start, stop) in icr.blocks.items():
        weights[start:stop] = block_weights.get(name, 1.0)
    return weights


def train_model(
    encoded_dir: Path, dataset_path: Path, config: dict[str, Any], out_dir: Path, show_progress: bool = True
) -> dict[str, Any]:
    """Train (resuming an interrupted run in ``out_dir``), evaluate on the test split, write all outputs.

    Returns the metrics written to ``out_dir/metrics.json``.
    """
    settings = config["model"]
    names = list(settings["properties"])
    data = EncodedDataset.load(Path(encoded_dir), Path(dataset_path), names)
    split = split_ids(data.material_ids, settings["split"], config["seed"])
    labelled = np.isfinite(data.properties).all(axis=1)
    rejected = pd.DataFrame({
        "material_id": data.material_ids[~labelled],
        "reason": "missing_property",
        "detail": [f"no value for {[n for n, v in zip(names, row) if not np.isfinite(v)]}"
                   for row in data.properties[~labelled]],
    })
    if len(rejected):
        log.warning("%d encoded crystals lack a property label and are left out of training", len(rejected))
    write_csv(out_dir / "rejected.csv", rejected)

    property_scaler = PropertyScaler.fit(names, data.properties[labelled & (split == "train")])
    training_data = TrainingData(
        arrays=data.scaler.transform(data.raw[labelled]),
        targets=property_scaler.transform(data.properties[labelled]),
        split=split[labelled],
        row_weights=reconstruction_row_weights(data.icr, settings["reconstruction_weights"]),
    )
    log.info("training on %d crystals (%s), representation %d x %d", labelled.sum(),
             {name: int((training_data.split == name).sum()) for name in ("train", "val", "test")},
             data.icr.n_rows, data.icr.n_channels)
    metadata = {
        "icr": data.icr.to_dict(),
        "scaler": data.scaler.to_dict(),
        "property_scaler": property_scaler.to_dict(),
        "config": {"seed": config["seed"], "model": settings, "representation": config.get("representation")},
    }
    result = fit(training_data, settings, config["seed"], out_dir, metadata, show_progress)
    save_model(out_dir / "model.pt", result)
    write_csv(out_dir / "history.csv", pd.DataFrame(result.history))
    write_csv(out_dir / "split.csv", pd.DataFrame({"material_id": data.material_ids, "split": split}))

    model = TrainedModel(data.icr, data.scaler, property_scaler, result.vae, result.device)
    z_mean = model.encode_mean(data.raw)
    with atomic_path(out_dir / "latent.npz") as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, z_mean=z_mean.astype(np.float32), material_id=data.material_ids.astype(str),
                            split=split.astype(str), **{name: data.properties[:, i] for i, name in enumerate(names)})
    plot_latent(z_mean, {name: data.properties[:, i] for i, name in enumerate(names)}, out_dir / "latent")

    test = labelled & (split == "test")
    reconstructed = model.decode(z_mean[test])
    layout, per_column = reconstruction_metrics(data.icr, data.raw[test], reconstructed)
    log.info("element accuracy per element column: %s", per_column)
    matches = match_table(list(data.material_ids[test]), data.structures(test), data.icr.decode(reconstructed))
    write_csv(out_dir / "test_reconstruction.csv", matches)
    predicted = model.predict_properties(z_mean[test])
    metrics = {
        **layout,
        **match_summary(matches),
        **property_metrics({name: data.properties[test, i] for i, name in enumerate(names)}, predicted),
        "n_test": int(test.sum()),
        "device": device_name(result.device),
        "epochs": result.epochs,
        "train_seconds": round(result.train_seconds, 2),
    }
    metrics = _json_number(metrics)
    write_json(out_dir / "metrics.json", metrics)
    log.info("metrics: %s", json.dumps(metrics))
    return metrics
