"""``results/model/``: the train stage's files, named once; ``split.csv`` and ``latent.npz`` typed.

``model.pt`` is read through :func:`icrdesign.model.trained.load_trained` and ``checkpoint.pt`` only
by the training loop. No pymatgen and no torch here: the training loop imports the file names on a
bare GPU machine too.
"""

from __future__ import annotations

import datetime as dt
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from icrdesign.artefacts.tables import read_table, write_table
from icrdesign.errors import InputError
from icrdesign.io import atomic_path

#: The trained model (best weights, scalers, representation): what sampling loads.
#: The train stage's folder under the results folder.
MODEL_FOLDER: Final[str] = "model"
MODEL_FILE: Final[str] = "model.pt"
#: Rewritten every epoch; a restarted run resumes from it. Not a workflow output: Snakemake deletes
#: an incomplete job's outputs before rerunning it, which would defeat the resume.
CHECKPOINT_FILE: Final[str] = "checkpoint.pt"
METRICS_FILE: Final[str] = "metrics.json"
SPLIT_FILE: Final[str] = "split.csv"
LATENT_FILE: Final[str] = "latent.npz"
#: Fig. S1 (latent space coloured by the properties), one file per format.
LATENT_FIGURES: Final[tuple[str, ...]] = ("latent.png", "latent.pdf")
HISTORY_FILE: Final[str] = "history.csv"
#: Per test crystal: decoded, matched and the RMS distance of its reconstruction.
TEST_RECONSTRUCTION_FILE: Final[str] = "test_reconstruction.csv"
#: Encoded crystals left out of training (a repeated id, a property label missing or implausible).
REJECTED_FILE: Final[str] = "rejected.csv"
#: The files the workflow declares as the train rule's outputs (every file the stage writes but the checkpoint).
OUTPUT_FILES: Final[tuple[str, ...]] = (
    MODEL_FILE, METRICS_FILE, SPLIT_FILE, LATENT_FILE, *LATENT_FIGURES, HISTORY_FILE, TEST_RECONSTRUCTION_FILE,
    REJECTED_FILE,
)

#: Where :func:`set_aside` moves a model that a training run of other settings would replace: a
#: new folder beside the model folder, ``<model folder>.replaced-<UTC time>``, so that the model
#: folder holds one model and nothing else.
REPLACED_SUFFIX: Final[str] = ".replaced-"

#: One row per encoded crystal, in dataset order.
SPLIT_COLUMNS: Final[tuple[str, ...]] = ("material_id", "split")
#: The arrays of latent.npz besides one float64 array of labels per trained property (NaN: unknown),
#: each keyed by the property's name; one entry per encoded crystal, in dataset order.
LATENT_ARRAYS: Final[tuple[str, ...]] = ("z_mean", "material_id", "split")


@dataclass
class LatentMeans:
    """latent.npz: the latent mean, split and property labels of every encoded crystal."""

    z_mean: np.ndarray  # float32 (N, latent_dim)
    material_ids: np.ndarray  # str (N,)
    split: np.ndarray  # str (N,): train / val / test
    properties: dict[str, np.ndarray]  # name -> float64 (N,)


def write_split(path: str | os.PathLike[str], material_ids: np.ndarray, split: np.ndarray) -> None:
    write_table(path, pd.DataFrame({"material_id": material_ids, "split": split}), SPLIT_COLUMNS)


def read_split(path: str | os.PathLike[str]) -> pd.DataFrame:
    """split.csv, checked (material_id read as text)."""
    return read_table(path, SPLIT_COLUMNS)


def write_latent(path: str | os.PathLike[str], latent: LatentMeans) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, z_mean=latent.z_mean.astype(np.float32), material_id=latent.material_ids.astype(str),
                            split=latent.split.astype(str), **latent.properties)


def read_latent(path: str | os.PathLike[str]) -> LatentMeans:
    """latent.npz as :func:`write_latent` wrote it; absent, truncated or incomplete: InputError naming it."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; run the train stage") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(f"{path}: unreadable ({error})") from None
    missing = [key for key in LATENT_ARRAYS if key not in arrays]
    if missing:
        raise InputError(f"{path}: missing arrays {missing} (has {sorted(arrays)})")
    return LatentMeans(
        z_mean=arrays.pop("z_mean"),
        material_ids=arrays.pop("material_id").astype(str),
        split=arrays.pop("split").astype(str),
        properties=arrays,
    )


def set_aside(model_dir: str | os.PathLike[str]) -> Path | None:
    """Move the trained model in ``model_dir`` to a new dated folder beside it; return that folder.

    A model is there when ``model_dir`` holds the model or the checkpoint; both move, with every
    other output of the train stage present, into ``<model_dir>.replaced-<UTC time>``. Returns None,
    moving nothing, when there is no model.
    """
    model_dir = Path(model_dir).resolve()
    present = [name for name in (*OUTPUT_FILES, CHECKPOINT_FILE) if (model_dir / name).is_file()]
    if not {MODEL_FILE, CHECKPOINT_FILE} & set(present):
        return None
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    backup = model_dir.with_name(f"{model_dir.name}{REPLACED_SUFFIX}{stamp}")
    number = 1
    while True:  # two replacements within one second get numbered folders
        try:
            backup.mkdir()
            break
        except FileExistsError:
            number += 1
            backup = model_dir.with_name(f"{model_dir.name}{REPLACED_SUFFIX}{stamp}-{number}")
    for name in present:
        os.replace(model_dir / name, backup / name)
    return backup
