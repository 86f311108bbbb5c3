"""The train stage: encoded dataset in; trained model, metrics, split, latent means, Fig. S1,
history, test reconstructions and rejected rows out (file names: :mod:`icrdesign.artefacts.model`)."""

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

from icrdesign.artefacts import model as model_files
from icrdesign.artefacts.dataset import id_rejections, property_values, rejected_table, write_rejected
from icrdesign.artefacts.encoded import read_encoded
from icrdesign.artefacts.tables import read_table
from icrdesign.errors import InputError
from icrdesign.io import exclusive_lock, write_csv, write_json
from icrdesign.model.metrics import match_summary, match_table, property_metrics, reconstruction_metrics
from icrdesign.model.plots import plot_latent
from icrdesign.model.trained import TrainedModel
from icrdesign.model.training import TrainingData, device_name, fit, save_model
from icrdesign.representation.icr import ICR
from icrdesign.representation.scaler import MinMaxScaler
from icrdesign.split import SPLIT_NAMES, dataset_split, given_split

log = logging.getLogger(__name__)


@dataclass
class EncodedDataset:
    """The encode stage's outputs joined with the property labels of the dataset table."""

    icr: ICR
    scaler: MinMaxScaler
    material_ids: np.ndarray  # encoded crystals only (the first of a repeated id), dataset order
    raw: np.ndarray  # unscaled ICR arrays of those crystals
    properties: np.ndarray  # N x n_properties, NaN where missing or implausible
    structures_json: np.ndarray  # the dataset's structure JSON of each crystal
    rejected: pd.DataFrame  # REJECTED_COLUMNS: encoded crystals not trained on (a repeated id, a bad label)
    dataset_path: Path  # the table the labels come from, named in messages
    given_split: np.ndarray | None  # the split the dataset table carries (data.file.splits), or None

    @classmethod
    def load(cls, encoded_dir: Path, dataset_path: Path, property_names: list[str]) -> EncodedDataset:
        """Read both; an encoded crystal absent from the dataset table raises InputError naming both.

        Rows are screened by the checks every stage shares (:mod:`icrdesign.artefacts.dataset`): of a
        repeated id only the first row counts, as in the encode stage; a missing, non-numeric,
        non-finite or implausible label is NaN here and a rejected row.
        """
        encoded = read_encoded(encoded_dir)
        encoded_ids = encoded.index["material_id"].to_numpy(dtype=object)[encoded.encoded]
        by_id = id_rejections(encoded_ids)
        first = np.array([rejection is None for rejection in by_id], dtype=bool)
        ids = encoded_ids[first]
        table = read_table(dataset_path, ("material_id", "structure", *property_names))
        table = table.loc[[rejection is None for rejection in id_rejections(table["material_id"])]]
        table = table.set_index(table["material_id"].astype(str))
        unknown = [str(mid) for mid in ids if mid not in table.index]
        if unknown:
            raise InputError(f"{dataset_path}: lacks {len(unknown)} crystals of {encoded_dir}, e.g. {unknown[:5]}; "
                             "re-run the encode stage on this dataset")
        table = table.reindex(ids)
        properties, by_property = property_values(table, property_names)
        return cls(
            icr=encoded.icr,
            scaler=encoded.scaler,
            material_ids=ids,
            raw=encoded.array[encoded.encoded][first],
            properties=properties,
            structures_json=table["structure"].to_numpy(),
            rejected=pd.concat([rejected_table(encoded_ids, by_id), rejected_table(ids, by_property)],
                               ignore_index=True),
            dataset_path=Path(dataset_path),
            given_split=given_split(table),
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


@dataclass
class PreparedData:
    """What the training loop gets from an encoded dataset, and how it was derived."""

    split: np.ndarray  # train / val / test of every encoded crystal
    labelled: np.ndarray  # bool: the crystals with every property label, the only ones trained on
    property_scaler: MinMaxScaler  # per property, fitted on the labelled training crystals
    training: TrainingData  # the labelled crystals: scaled arrays and targets, split, row weights


def prepare_training_data(data: EncodedDataset, config: dict[str, Any]) -> PreparedData:
    """Split (the split the dataset table carries, else config ``split`` and ``seed``), normalise and weight
    the encoded crystals for :func:`fit`.

    Too few labelled crystals to train on (none in the training or the validation split) raise
    InputError naming the dataset table and why its crystals were rejected.
    """
    split = dataset_split(data.material_ids, config, data.given_split)
    labelled = np.isfinite(data.properties).all(axis=1)
    names = list(config["model"]["properties"])
    usable = {name: int((labelled & (split == name)).sum()) for name in ("train", "val")}
    if not all(usable.values()):
        by_reason = data.rejected["reason"].value_counts().to_dict()
        raise InputError(f"{data.dataset_path}: of {len(labelled)} encoded crystals, {usable['train']} training and "
                         f"{usable['val']} validation ones have usable {names} labels (rejected: {by_reason}); "
                         "training needs some of both")
    property_scaler = MinMaxScaler().fit(data.properties[labelled & (split == "train")], names=names)
    training = TrainingData(
        arrays=data.scaler.transform(data.raw[labelled]),
        targets=property_scaler.transform(data.properties[labelled]),
        split=split[labelled],
        row_weights=reconstruction_row_weights(data.icr, config["model"]["reconstruction_weights"]),
    )
    return PreparedData(split=split, labelled=labelled, property_scaler=property_scaler, training=training)


def train_model(
    encoded_dir: Path, dataset_path: Path, config: dict[str, Any], out_dir: Path, show_progress: bool = True
) -> dict[str, Any]:
    """Train (resuming an interrupted run in ``out_dir``), evaluate on the test split, write all outputs.

    Reads the config's ``model``, ``split`` and ``seed``; holds ``out_dir``'s lock while it runs;
    returns the metrics written to metrics.json.
    """
    out_dir = Path(out_dir)
    settings = config["model"]
    names = list(settings["properties"])
    with exclusive_lock(out_dir):
        data = EncodedDataset.load(Path(encoded_dir), Path(dataset_path), names)
        prepared = prepare_training_data(data, config)
        split, labelled, property_scaler = prepared.split, prepared.labelled, prepared.property_scaler
        if len(data.rejected):
            log.warning("%d encoded crystals are left out of training (%s); see %s", len(data.rejected),
                        data.rejected["reason"].value_counts().to_dict(), out_dir / model_files.REJECTED_FILE)

        log.info("training on %d crystals (%s), representation %d x %d", labelled.sum(),
                 {name: int((prepared.training.split == name).sum()) for name in SPLIT_NAMES},
                 data.icr.n_rows, data.icr.n_channels)
        metadata = {
            "icr": data.icr.to_dict(),
            "scaler": data.scaler.to_dict(),
            "property_scaler": property_scaler.to_dict(),
            # The representation's settings are in "icr"; the train stage reads no other config section.
            "config": {"seed": config["seed"], "model": settings, "split": config["split"]},
        }
        # fit() sets aside a model of other settings in out_dir first, so the outputs are written after it.
        result = fit(prepared.training, settings, config["seed"], out_dir, metadata, show_progress)
        save_model(out_dir / model_files.MODEL_FILE, result)
        write_rejected(out_dir / model_files.REJECTED_FILE, data.rejected)
        write_csv(out_dir / model_files.HISTORY_FILE, pd.DataFrame(result.history))
        model_files.write_split(out_dir / model_files.SPLIT_FILE, data.material_ids, split)

        model = TrainedModel(data.icr, data.scaler, property_scaler, result.vae, result.device)
        z_mean = model.encode_mean(data.raw)
        labels = {name: data.properties[:, i] for i, name in enumerate(names)}
        latent = model_files.LatentMeans(z_mean=z_mean, material_ids=data.material_ids, split=split, properties=labels)
        model_files.write_latent(out_dir / model_files.LATENT_FILE, latent)
        plot_latent(z_mean, labels, [out_dir / name for name in model_files.LATENT_FIGURES])

        test = labelled & (split == "test")
        reconstructed = model.decode(z_mean[test])
        layout, per_column = reconstruction_metrics(data.icr, data.raw[test], reconstructed)
        log.info("element accuracy per element column: %s", per_column)
        matches = match_table(list(data.material_ids[test]), data.structures(test), data.icr.decode(reconstructed))
        write_csv(out_dir / model_files.TEST_RECONSTRUCTION_FILE, matches)
        predicted = model.predict_properties(z_mean[test])
        metrics = {
            **layout,
            **match_summary(matches),
            **property_metrics({name: values[test] for name, values in labels.items()}, predicted),
            "n_test": int(test.sum()),
            "device": device_name(result.device),
            "epochs": result.epochs,
            "train_seconds": round(result.train_seconds, 2),
        }
        metrics = _json_number(metrics)
        write_json(out_dir / model_files.METRICS_FILE, metrics)
    log.info("metrics: %s", json.dumps(metrics))
    return metrics
