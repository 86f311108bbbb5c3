"""Bad input to the train stage (issue 21): refused rows carry their reason, refused inputs name
their file and exit with code 2, a second writer of the model folder is refused, and a model a run
cannot resume is moved aside, never overwritten."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from pymatgen.core import Lattice, Structure

from icrdesign.artefacts import encoded as encoded_files
from icrdesign.artefacts.dataset import DUPLICATE_MATERIAL_ID, INVALID_PROPERTY, MISSING_PROPERTY
from icrdesign.artefacts.model import (
    CHECKPOINT_FILE, LATENT_FILE, METRICS_FILE, MODEL_FILE, OUTPUT_FILES, REJECTED_FILE, REPLACED_SUFFIX, read_latent,
)
from icrdesign.cli import main as cli_main
from icrdesign.config import load_config
from icrdesign.io import LOCK_FILE, exclusive_lock
from icrdesign.representation.pipeline import encode_dataset

# A small network and two epochs: each training run takes a few seconds.
SMALL_MODEL = {"latent_dim": 8, "encoder_channels": [4, 8], "kernel_sizes": [3, 3], "strides": [2, 1],
               "dense_units": 16, "property_hidden": [8], "max_epochs": 2, "num_threads": 1, "batch_size": 16,
               "device": "cpu"}
SALTS = [("Na", "Cl"), ("K", "Br"), ("Mg", "O"), ("Li", "F"), ("Ca", "S"), ("Cs", "I")]
N_CRYSTALS = 48


def _dataset_table() -> pd.DataFrame:
    """CsCl-type salts in the dataset schema, with labels that vary with the salt and the cell."""
    rows = []
    for i in range(N_CRYSTALS):
        cation, anion = SALTS[i % len(SALTS)]
        a = 3.6 + 0.03 * i
        crystal = Structure(Lattice.cubic(a), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])
        rows.append({
            "material_id": f"s-{i:03d}", "formula": crystal.composition.reduced_formula,
            "structure": json.dumps(crystal.as_dict()), "nsites": 2, "nelements": 2, "spacegroup": "Pm-3m",
            "formation_energy_per_atom": -1.0 - 0.1 * (i % 6) + 0.01 * a, "band_gap": 0.5 + 0.2 * (i % 6),
            "energy_above_hull": 0.0, "source": "demo", "label_source": "test",
        })
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A dataset table, its encoded folder and a config for a small, fast model."""
    root = tmp_path_factory.mktemp("bad_input_train")
    table = _dataset_table()
    table.to_parquet(root / "dataset.parquet", index=False)
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump({"model": SMALL_MODEL}))
    encode_dataset(table, load_config(config), root / "encoded", n_jobs=1)
    return {"root": root, "dataset": root / "dataset.parquet", "encoded": root / "encoded", "config": config}


def _train(stage: dict[str, Path], out: Path, capsys: pytest.CaptureFixture[str], dataset: Path | None = None,
           config: Path | None = None, encoded: Path | None = None) -> tuple[int, str]:
    """Run `icrdesign train`; its exit code and the last line on stderr (the message of a refusal)."""
    code = cli_main(["train", "--encoded", str(encoded or stage["encoded"]),
                     "--dataset", str(dataset or stage["dataset"]), "--config", str(config or stage["config"]),
                     "--out", str(out), "--no-progress"])
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    return code, (stderr.strip().splitlines() or [""])[-1]


def _config(tmp_path: Path, name: str, **model: object) -> Path:
    """A config file ``name`` of the small model with ``model`` settings changed."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"model": {**SMALL_MODEL, **model}}))
    return path


# --- rows refused with a reason ------------------------------------------------------------------------


def test_implausible_and_textual_labels(stage: dict[str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    table = pd.read_parquet(stage["dataset"])
    gaps = [f"{value:.2f}" for value in table["band_gap"]]  # numeric text: read as numbers
    gaps[1], gaps[2], gaps[3] = "-3.0", "n/a", ""
    table["band_gap"] = gaps
    table.loc[4, "formation_energy_per_atom"] = np.inf
    dataset = tmp_path / "dataset.parquet"
    table.to_parquet(dataset, index=False)
    out = tmp_path / "model"
    assert _train(stage, out, capsys, dataset=dataset)[0] == 0

    rejected = pd.read_csv(out / REJECTED_FILE)
    assert rejected.to_dict("records") == [
        {"material_id": "s-001", "reason": INVALID_PROPERTY,
         "detail": "band_gap = -3 is outside the plausible range [0, inf]"},
        {"material_id": "s-002", "reason": INVALID_PROPERTY, "detail": "band_gap is not a number: 'n/a'"},
        {"material_id": "s-003", "reason": MISSING_PROPERTY, "detail": "band_gap"},
        {"material_id": "s-004", "reason": INVALID_PROPERTY, "detail": "formation_energy_per_atom is not finite: inf"},
    ]
    latent = read_latent(out / LATENT_FILE)
    gap = dict(zip(latent.material_ids, latent.properties["band_gap"]))
    assert gap["s-000"] == 0.5 and np.isnan([gap["s-001"], gap["s-002"], gap["s-003"]]).all()
    assert np.isnan(latent.properties["formation_energy_per_atom"][4])


def test_repeated_ids_train_on_the_first_row(stage: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    table = pd.read_parquet(stage["dataset"])
    repeated = table.iloc[[7]].assign(band_gap=4.4)  # same id, other label: the first row counts
    dataset = tmp_path / "dataset.parquet"
    pd.concat([table, repeated], ignore_index=True).to_parquet(dataset, index=False)
    encoded = tmp_path / "encoded"
    encode_dataset(pd.read_parquet(dataset), load_config(stage["config"]), encoded, n_jobs=1, source=dataset)
    assert pd.read_csv(encoded / encoded_files.REJECTED_FILE)["reason"].tolist() == [DUPLICATE_MATERIAL_ID]

    out = tmp_path / "model"
    assert _train(stage, out, capsys, dataset=dataset, encoded=encoded)[0] == 0
    latent = read_latent(out / LATENT_FILE)
    assert latent.material_ids.tolist() == table["material_id"].tolist()
    assert latent.properties["band_gap"][7] == table.loc[7, "band_gap"]

    # An encoded folder holding one id twice (written before ids were checked): the second is rejected.
    arrays = encoded_files.read_encoded(stage["encoded"])
    doubled = encoded_files.EncodedArrays(
        icr=arrays.icr, scaler=arrays.scaler, array=np.concatenate([arrays.array, arrays.array[[7]]]),
        index=pd.concat([arrays.index, arrays.index.iloc[[7]]], ignore_index=True))
    old_encoded = tmp_path / "old_encoded"
    encoded_files.write_encoded(old_encoded, doubled, pd.DataFrame(), {})
    out = tmp_path / "model_from_old"
    assert _train(stage, out, capsys, encoded=old_encoded)[0] == 0
    assert pd.read_csv(out / REJECTED_FILE).to_dict("records") == [{
        "material_id": "s-007", "reason": DUPLICATE_MATERIAL_ID,
        "detail": f"row {N_CRYSTALS} repeats the material_id of row 7, which is the one kept"}]
    assert read_latent(out / LATENT_FILE).material_ids.tolist() == table["material_id"].tolist()


# --- inputs refused, naming their file -----------------------------------------------------------------


def test_dataset_without_a_property_column_is_named(stage: dict[str, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    dataset = tmp_path / "dataset.parquet"
    pd.read_parquet(stage["dataset"]).drop(columns=["band_gap"]).to_parquet(dataset, index=False)
    code, error = _train(stage, tmp_path / "model", capsys, dataset=dataset)
    assert code == 2
    assert error.startswith(f"icrdesign train: {dataset}: missing columns ['band_gap'] (has ['material_id', ")


def test_dataset_without_usable_labels_is_named(stage: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    dataset = tmp_path / "dataset.parquet"
    pd.read_parquet(stage["dataset"]).assign(band_gap=-1.0).to_parquet(dataset, index=False)
    code, error = _train(stage, tmp_path / "model", capsys, dataset=dataset)
    assert code == 2
    assert error == (f"icrdesign train: {dataset}: of {N_CRYSTALS} encoded crystals, 0 training and 0 validation "
                     "ones have usable ['formation_energy_per_atom', 'band_gap'] labels "
                     f"(rejected: {{'{INVALID_PROPERTY}': {N_CRYSTALS}}}); training needs some of both")


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_unreadable_checkpoint_is_named_with_what_to_do(stage: dict[str, Path], tmp_path: Path, damage: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model"
    assert _train(stage, out, capsys)[0] == 0
    checkpoint = out / CHECKPOINT_FILE
    checkpoint.write_bytes(b"" if damage == "empty" else checkpoint.read_bytes()[:4096])
    code, error = _train(stage, out, capsys)
    assert code == 2
    assert error.startswith(f"icrdesign train: {checkpoint}: unreadable (")
    assert error.endswith("); delete it to train from scratch")
    checkpoint.unlink()  # as the message says: trains afresh, the model beside it set aside
    assert _train(stage, out, capsys)[0] == 0
    assert len(list(tmp_path.glob(f"model{REPLACED_SUFFIX}*"))) == 1


# --- one writer per model folder -----------------------------------------------------------------------


def test_second_writer_of_the_model_folder_is_refused(stage: dict[str, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model"
    with exclusive_lock(out):
        code, error = _train(stage, out, capsys)
    assert code == 2
    assert error.startswith(f"icrdesign train: {out} is locked by PID {os.getpid()} on host ")
    assert list(out.iterdir()) == []


def test_lock_of_a_killed_process_does_not_block(stage: dict[str, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model"
    holds_the_lock = (f"import time\nfrom icrdesign.io import exclusive_lock\nwith exclusive_lock({str(out)!r}):\n"
                      "    print('held', flush=True)\n    time.sleep(120)\n")
    holder = subprocess.Popen([sys.executable, "-c", holds_the_lock], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, error = _train(stage, out, capsys)
        assert code == 2 and f"{out} is locked by PID {holder.pid} on host " in error
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / LOCK_FILE).read_text().startswith(f"PID {holder.pid} ")  # left behind by the killed holder
    assert _train(stage, out, capsys)[0] == 0
    assert not (out / LOCK_FILE).exists()


# --- a model the run cannot resume is set aside --------------------------------------------------------


def test_model_of_other_settings_is_moved_aside_not_overwritten(stage: dict[str, Path], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str],
                                                                caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "model"
    assert _train(stage, out, capsys)[0] == 0
    before = {name: (out / name).read_bytes() for name in (*OUTPUT_FILES, CHECKPOINT_FILE)}

    # A resumable change (more epochs) continues the same model: nothing is moved.
    more_epochs = _config(tmp_path, "more_epochs.yaml", max_epochs=3)
    assert _train(stage, out, capsys, config=more_epochs)[0] == 0
    assert list(tmp_path.glob(f"model{REPLACED_SUFFIX}*")) == []
    assert json.loads((out / METRICS_FILE).read_text())["epochs"] == 3
    before = {name: (out / name).read_bytes() for name in (*OUTPUT_FILES, CHECKPOINT_FILE)}

    other_rate = _config(tmp_path, "other_rate.yaml", max_epochs=3, learning_rate=0.0001)
    with caplog.at_level(logging.WARNING, logger="icrdesign.model.training"):
        assert _train(stage, out, capsys, config=other_rate)[0] == 0
    [backup] = tmp_path.glob(f"model{REPLACED_SUFFIX}*")
    assert backup.name[len(f"model{REPLACED_SUFFIX}"):].endswith("Z")  # UTC time, e.g. 20250102T030405Z
    assert {name: (backup / name).read_bytes() for name in before} == before
    assert f"moved it to {backup} and training from scratch" in caplog.text
    assert {path.name for path in out.iterdir()} == {*OUTPUT_FILES, CHECKPOINT_FILE}
    assert (out / MODEL_FILE).read_bytes() != before[MODEL_FILE]

    # Under Snakemake only the checkpoint survives a rerun (outputs are deleted first): it is kept too.
    for name in OUTPUT_FILES:
        (out / name).unlink()
    checkpoint = (out / CHECKPOINT_FILE).read_bytes()
    time.sleep(1.1)  # a backup folder per second; a second one within it would be numbered
    assert _train(stage, out, capsys, config=more_epochs)[0] == 0
    newest = max(tmp_path.glob(f"model{REPLACED_SUFFIX}*"))
    assert newest != backup and [path.name for path in newest.iterdir()] == [CHECKPOINT_FILE]
    assert (newest / CHECKPOINT_FILE).read_bytes() == checkpoint
    shutil.rmtree(out)
