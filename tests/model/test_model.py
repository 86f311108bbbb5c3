"""Tests of the property-structured VAE: network shapes, loss values, resumable training, the
train stage's outputs and the TrainedModel API used by sampling."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pymatgen.core import Element, Lattice, Structure

from workflow_runner import REPO
from icrdesign.artefacts import encoded as encoded_files
from icrdesign.artefacts.model import (
    CHECKPOINT_FILE, LATENT_FILE, MODEL_FILE, OUTPUT_FILES, SPLIT_FILE, read_latent, read_split,
)
from icrdesign.cli import main as cli_main
from icrdesign.config import load_config
from icrdesign.errors import InputError
from icrdesign.model import Architecture, PropertyVAE, TrainingData, fit, load_trained, vae_loss
from icrdesign.model.metrics import match_table, reconstruction_metrics
from icrdesign.model.pipeline import reconstruction_row_weights
from icrdesign.model.training import _optimizer, device_name, load_checkpoint, resolve_device
from icrdesign.representation import ICR, MinMaxScaler
from icrdesign.representation.pipeline import encode_dataset
from icrdesign.split import split_ids

METRIC_KEYS = {
    "element_accuracy", "site_count_accuracy", "lattice_abc_mape", "angle_mape", "coord_mae", "match_rate",
    "match_rmse", "property_mae", "property_r2", "n_test", "device", "epochs", "train_seconds",
}
# A small network so training steps take milliseconds; the default (paper) sizes run in the stage test.
SMALL = {"latent_dim": 8, "encoder_channels": [4, 8], "kernel_sizes": [3, 3], "strides": [2, 1],
         "dense_units": 16, "property_hidden": [8]}


def _model_section(**overrides: object) -> dict:
    section = load_config()["model"] | {"device": "cpu", "num_threads": 1}
    return section | overrides


def _prototype_table(n: int, seed: int = 0) -> pd.DataFrame:
    """Rock-salt, CsCl, perovskite and wurtzite-like crystals with property labels that depend on
    composition and cell, so the regression branch has something to learn."""
    rng = np.random.default_rng(seed)
    cations = ["Li", "Na", "K", "Mg", "Ca", "Sr", "Ba", "Al", "Zn", "Ti", "Fe", "Cu"]
    anions = ["O", "S", "F", "Cl", "N"]
    rows = []
    for i in range(n):
        m, x = str(rng.choice(cations)), str(rng.choice(anions))
        a = float(rng.uniform(3.5, 6.0))
        kind = i % 4
        if kind == 0:
            structure = Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [m, x], [[0, 0, 0], [0.5, 0.5, 0.5]])
        elif kind == 1:
            structure = Structure(Lattice.cubic(0.6 * a), [m, x], [[0, 0, 0], [0.5, 0.5, 0.5]])
        elif kind == 2:
            b = str(rng.choice([c for c in cations if c != m]))
            structure = Structure(Lattice.cubic(0.7 * a), [m, b, x, x, x],
                                  [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
        else:
            u = float(rng.uniform(0.35, 0.4))
            structure = Structure(Lattice.hexagonal(0.7 * a, 1.6 * 0.7 * a), [m, m, x, x],
                                  [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, u], [2 / 3, 1 / 3, 0.5 + u]])
        chi = abs(Element(m).X - Element(x).X)
        rows.append({
            "material_id": f"proto-{i:04d}", "formula": structure.composition.reduced_formula,
            "structure": json.dumps(structure.as_dict()), "nsites": len(structure),
            "nelements": len(structure.composition), "spacegroup": "P1",
            "formation_energy_per_atom": -0.8 * chi + 0.05 * a - 0.3, "band_gap": max(0.0, 2.0 * chi - 1.0),
            "energy_above_hull": 0.0, "source": "demo", "label_source": "test-prototypes",
        })
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- network and loss
@settings(max_examples=15, deadline=None)
@given(n_rows=st.integers(5, 90), n_channels=st.integers(1, 5), strides=st.lists(st.integers(1, 3), min_size=1,
                                                                                  max_size=3))
def test_network_reconstructs_input_shape_for_any_row_count(n_rows: int, n_channels: int, strides: list[int]) -> None:
    arch = Architecture(n_rows=n_rows, n_channels=n_channels, n_properties=2, latent_dim=4,
                        encoder_channels=tuple(4 * (i + 1) for i in range(len(strides))),
                        kernel_sizes=tuple(3 for _ in strides), strides=tuple(strides), dense_units=8,
                        property_hidden=(4,))
    vae = PropertyVAE(arch).eval()
    x = torch.rand(3, n_rows, n_channels)
    with torch.no_grad():
        recon, mean, logvar, predicted = vae(x)
    assert recon.shape == x.shape and mean.shape == logvar.shape == (3, 4) and predicted.shape == (3, 2)
    assert float(recon.min()) >= 0.0 and float(recon.max()) <= 1.0
    assert float(predicted.min()) >= 0.0 and float(predicted.max()) <= 1.0
    assert Architecture.from_dict(json.loads(json.dumps(arch.to_dict()))) == arch


def test_default_architecture_is_the_papers() -> None:
    arch = Architecture.from_settings(load_config()["model"], n_rows=140, n_channels=4)
    vae = PropertyVAE(arch)
    convs = [m for m in vae.encoder_conv if isinstance(m, torch.nn.Conv1d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [(32, 5, 2), (64, 3, 2), (128, 3, 1)]
    assert vae.encoder_dense[1].out_features == 1024 and vae.to_mean.out_features == 256
    assert [m.out_features for m in vae.property_head if isinstance(m, torch.nn.Linear)] == [128, 32, 2]
    assert arch.encoded_length() == 35  # ceil(ceil(140 / 2) / 2)


def test_loss_terms_have_known_values() -> None:
    x = torch.zeros(2, 5, 3)
    target = torch.tensor([[0.2, 0.4], [0.6, 0.8]])
    zero = torch.zeros(2, 4)
    terms = vae_loss(x, torch.ones_like(x), zero, zero, target, target, beta=2.0, property_weight=10.0)
    assert float(terms.reconstruction) == pytest.approx(15.0)  # SSE per crystal: 5 x 3 ones
    assert float(terms.kl) == pytest.approx(0.0) and float(terms.property) == pytest.approx(0.0)
    terms = vae_loss(x, x, torch.ones(2, 4), zero, target + 0.1, target, beta=2.0, property_weight=10.0)
    assert float(terms.kl) == pytest.approx(2.0)  # 0.5 * mean^2 summed over 4 dimensions
    assert float(terms.property) == pytest.approx(0.01)
    assert float(terms.total) == pytest.approx(2.0 * 2.0 + 10.0 * 0.01)


def test_row_weights_scale_each_rows_squared_error() -> None:
    x = torch.zeros(1, 3, 2)
    zero = torch.zeros(1, 4)
    weights = torch.tensor([10.0, 0.0, 1.0])
    terms = vae_loss(x, torch.ones_like(x), zero, zero, zero[:, :2], zero[:, :2], 0.0, 0.0, row_weights=weights)
    assert float(terms.reconstruction) == pytest.approx(2 * 10.0 + 0.0 + 2 * 1.0)


def test_reconstruction_row_weights_follow_the_icr_blocks() -> None:
    icr = ICR(elements=["Na", "Cl", "O"])
    weights = reconstruction_row_weights(icr, {"elements": 10.0, "occupancy": 5.0, "fourier": 3.0})
    assert weights.shape == (icr.n_rows,)
    for name, (start, stop) in icr.blocks.items():
        assert set(weights[start:stop]) == {{"elements": 10.0, "occupancy": 5.0}.get(name, 1.0)}


def test_property_dropout_and_weight_decay_touch_only_the_property_branch() -> None:
    section = _model_section(**SMALL, property_dropout=0.5, property_weight_decay=0.01, optimizer="adam")
    vae = PropertyVAE(Architecture.from_settings(section, n_rows=12, n_channels=4))
    assert sum(isinstance(m, torch.nn.Dropout) for m in vae.property_head) == len(SMALL["property_hidden"])
    assert not any(isinstance(m, torch.nn.Dropout) for m in vae.modules() if m not in set(vae.property_head))
    optimizer = _optimizer(vae, section)
    decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(p) for p in vae.property_head.parameters()}
    vae.eval()
    z = torch.randn(5, SMALL["latent_dim"])
    assert torch.equal(vae.predict(z), vae.predict(z))  # no dropout at inference


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(0, 8)), min_size=2, max_size=20))
def test_property_scaler_inverts_exactly(values: list[tuple[float, float]]) -> None:
    array = np.array(values)
    scaler = MinMaxScaler().fit(array, names=["formation_energy_per_atom", "band_gap"])
    restored = MinMaxScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_allclose(restored.inverse_transform(restored.transform(array)), array, atol=1e-5)


# ----------------------------------------------------------------------------- training loop
def _synthetic_data(n: int = 96, rows: int = 12, channels: int = 4) -> TrainingData:
    rng = np.random.default_rng(1)
    arrays = rng.random((n, rows, channels), dtype=np.float32)
    return TrainingData(arrays, arrays[:, 0, :2].copy(), np.array(["train", "train", "val", "test"] * (n // 4)))


def test_resumed_training_continues_at_the_next_epoch_and_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    data = _synthetic_data()
    straight = fit(data, _model_section(**SMALL, max_epochs=4), 7, tmp_path / "a", {"note": "x"}, False)
    first = fit(data, _model_section(**SMALL, max_epochs=2), 7, tmp_path / "b", {"note": "x"}, False)
    assert first.epochs == 2 and first.resumed_from == 0
    resumed = fit(data, _model_section(**SMALL, max_epochs=4), 7, tmp_path / "b", {"note": "x"}, False)
    assert resumed.resumed_from == 2 and [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]
    # Seeded, deterministic CPU training: the interrupted run is bit-identical to the straight one.
    assert [row["train_loss"] for row in resumed.history] == [row["train_loss"] for row in straight.history]
    for key, tensor in straight.vae.state_dict().items():
        assert torch.equal(tensor, resumed.vae.state_dict()[key]), key
    state = load_checkpoint(tmp_path / "b" / CHECKPOINT_FILE)
    assert state["epoch"] == 4 and state["metadata"] == {"note": "x"}


def test_learning_rate_warms_up_linearly_and_survives_a_restart(tmp_path: Path) -> None:
    data = _synthetic_data()
    section = _model_section(**SMALL, learning_rate=0.003, lr_warmup_epochs=3, gradient_clip_norm=1.0,
                             lr_patience=100)
    fit(data, section | {"max_epochs": 2}, 7, tmp_path, {}, False)
    resumed = fit(data, section | {"max_epochs": 4}, 7, tmp_path, {}, False)
    assert resumed.resumed_from == 2
    assert [row["lr"] for row in resumed.history] == pytest.approx([0.001, 0.002, 0.003, 0.003])


def test_checkpoint_of_other_settings_is_not_resumed(tmp_path: Path) -> None:
    data = _synthetic_data()
    fit(data, _model_section(**SMALL, max_epochs=2), 7, tmp_path, {}, False)
    other = fit(data, _model_section(**SMALL, max_epochs=2, learning_rate=0.001), 7, tmp_path, {}, False)
    assert other.resumed_from == 0 and len(other.history) == 2


def test_early_stopping_ends_training_without_validation_gain(tmp_path: Path) -> None:
    data = _synthetic_data()
    # The paper's optimiser and loss settings, under which a 1e-7 rate makes no validation progress.
    result = fit(data, _model_section(**SMALL, max_epochs=40, learning_rate=1e-7, early_stopping_patience=2,
                                      lr_patience=0, optimizer="rmsprop", lr_warmup_epochs=0, property_dropout=0.0,
                                      property_weight_decay=0.0, gradient_clip_norm=0, property_weight=10.0), 7, tmp_path, {},
                 False)
    assert result.epochs < 40
    assert result.checkpoint["stopped_early"]
    # Every epoch without gain also made ReduceLROnPlateau (patience 0) cut the rate.
    assert result.history[-1]["lr"] <= 1e-7 * 0.5**2 * 1.0001


# ----------------------------------------------------------------------------- metrics
def test_reconstruction_metrics_of_a_perfect_and_a_shifted_reconstruction(tmp_path: Path) -> None:
    table = _prototype_table(8)
    encode_dataset(table, load_config(), tmp_path, n_jobs=1)
    from icrdesign.representation import ICR

    icr = ICR.from_dict(json.loads((tmp_path / "icr.json").read_text()))
    raw = np.load(tmp_path / "icr.npy")
    perfect, per_column = reconstruction_metrics(icr, raw, raw.copy())
    assert perfect["element_accuracy"] == 1.0 and perfect["site_count_accuracy"] == 1.0
    assert perfect["lattice_abc_mape"] == 0.0 and perfect["angle_mape"] == 0.0 and perfect["coord_mae"] == 0.0
    assert per_column[0] == 1.0 and per_column[3] is None  # no test crystal has four elements
    shifted = raw.copy()
    start = icr.blocks["coords"][0]
    shifted[0, start, 0] += 0.98  # periodic: 0.02 away from the original coordinate
    shifted[:, icr.blocks["lattice"][0], :3] *= 1.1
    metrics, _ = reconstruction_metrics(icr, raw, shifted)
    assert metrics["lattice_abc_mape"] == pytest.approx(10.0, rel=1e-4)
    n_real_coords = 3 * int((icr.block(raw, "occupancy").max(axis=2) >= 0.5).sum())
    assert metrics["coord_mae"] == pytest.approx(0.02 / n_real_coords, rel=1e-3)

    originals = [Structure.from_dict(json.loads(s)) for s in table["structure"]]
    matches = match_table(list(table["material_id"]), originals, [*icr.decode(raw)[:-1], None])
    assert matches["matched"].tolist() == [True] * 7 + [False]
    assert matches["rms"].iloc[:7].max() < 1e-3


# ----------------------------------------------------------------------------- the train stage
@pytest.fixture(scope="module")
def trained_stage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Dataset -> encode -> `icrdesign train` with the paper's architecture for a few epochs."""
    root = tmp_path_factory.mktemp("train_stage")
    table = _prototype_table(80)
    table.loc[5, "band_gap"] = np.nan  # a crystal without a label is left out of training, not fatal
    dataset = root / "dataset.parquet"
    table.to_parquet(dataset, index=False)
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump({"model": {"max_epochs": 3, "num_threads": 1, "batch_size": 32}}))
    encode_dataset(table, load_config(config), root / "encoded", n_jobs=1)
    assert cli_main(["train", "--encoded", str(root / "encoded"), "--dataset", str(dataset), "--config", str(config),
                     "--out", str(root / "model"), "--no-progress"]) == 0
    return {"root": root, "model": root / "model", "dataset": dataset, "config": config}


def test_train_stage_writes_every_output(trained_stage: dict[str, Path]) -> None:
    out = trained_stage["model"]
    for name in ("model.pt", "metrics.json", "split.csv", "latent.npz", "latent.png", "latent.pdf", "history.csv"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == METRIC_KEYS
    # device: auto, so the stage trains on CUDA where there is one
    assert metrics["device"] == device_name(resolve_device("auto"))
    assert metrics["epochs"] == 3 and metrics["train_seconds"] > 0
    assert set(metrics["property_mae"]) == {"formation_energy_per_atom", "band_gap"}
    assert 0.0 <= metrics["element_accuracy"] <= 1.0 and 0.0 <= metrics["match_rate"] <= 1.0

    table = pd.read_parquet(trained_stage["dataset"])
    split = pd.read_csv(out / "split.csv", dtype={"material_id": str})
    expected = split_ids(table["material_id"], load_config()["split"], load_config()["seed"])
    assert split["split"].tolist() == expected.tolist()
    assert metrics["n_test"] == int(((split["split"] == "test") & table["band_gap"].notna()).sum())
    rejected = pd.read_csv(out / "rejected.csv")
    assert rejected["material_id"].tolist() == ["proto-0005"] and rejected["reason"].tolist() == ["missing_property"]

    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3]
    assert {"train_reconstruction", "train_kl", "train_property", "val_loss"} <= set(history.columns)
    assert history["val_reconstruction"].iloc[-1] < history["val_reconstruction"].iloc[0]  # it learns

    latent = np.load(out / "latent.npz")
    assert latent["z_mean"].shape == (len(table), 256) and latent["z_mean"].dtype == np.float32
    assert latent["material_id"].tolist() == table["material_id"].tolist()
    np.testing.assert_array_equal(latent["formation_energy_per_atom"], table["formation_energy_per_atom"])


def test_model_checkpoint_loads_with_weights_only(trained_stage: dict[str, Path]) -> None:
    state = torch.load(trained_stage["model"] / "model.pt", weights_only=True)
    assert state["epoch"] == 3 and {"model", "optimizer", "scheduler", "metadata"} <= set(state)
    assert state["metadata"]["config"]["model"]["beta"] == load_config()["model"]["beta"]
    assert state["metadata"]["property_scaler"]["names"] == ["formation_energy_per_atom", "band_gap"]


def test_load_trained_api_for_sampling(trained_stage: dict[str, Path]) -> None:
    model = load_trained(trained_stage["model"])
    raw = np.load(trained_stage["root"] / "encoded" / "icr.npy")[:6]
    z = model.encode_mean(raw)
    assert z.shape == (6, model.latent_dim) and model.latent_dim == 256
    # latent.npz comes from the device the stage trained on; cuDNN's convolutions (TF32 among them) differ
    # from the CPU's by float32 noise ~1e-5 (seen on an H100).
    stage_device = json.loads((trained_stage["model"] / "metrics.json").read_text())["device"]
    atol = 1e-5 if stage_device == "cpu" else 1e-4
    np.testing.assert_allclose(z, np.load(trained_stage["model"] / "latent.npz")["z_mean"][:6], atol=atol)
    decoded = model.decode(z)
    assert decoded.shape == raw.shape
    structures = model.icr.decode(decoded)
    assert len(structures) == 6 and all(s is None or isinstance(s, Structure) for s in structures)

    predicted = model.predict_properties(z)
    assert model.property_names == ["formation_energy_per_atom", "band_gap"]
    z_tensor = torch.tensor(z, requires_grad=True)
    physical = model.property_tensor(z_tensor)
    np.testing.assert_allclose(physical[:, 1].detach().numpy(), predicted["band_gap"], rtol=1e-5, atol=1e-5)
    physical[:, 0].sum().backward()
    assert z_tensor.grad is not None and float(z_tensor.grad.abs().sum()) > 0
    # Predictions stay within the training range (sigmoid output, min-max scaling).
    scaler = model.property_scaler
    assert np.all(predicted["band_gap"] >= scaler.low[1] - 1e-6) and np.all(predicted["band_gap"] <= scaler.high[1] + 1e-6)


def test_train_stage_writes_its_declared_outputs_and_the_checkpoint_only(trained_stage: dict[str, Path]) -> None:
    assert {path.name for path in trained_stage["model"].iterdir()} == {*OUTPUT_FILES, CHECKPOINT_FILE}
    split = read_split(trained_stage["model"] / SPLIT_FILE)
    latent = read_latent(trained_stage["model"] / LATENT_FILE)
    assert latent.material_ids.tolist() == split["material_id"].tolist()
    assert latent.split.tolist() == split["split"].tolist()
    assert set(latent.properties) == {"formation_energy_per_atom", "band_gap"}
    assert latent.z_mean.dtype == np.float32 and latent.properties["band_gap"].dtype == np.float64


def test_train_names_a_missing_or_damaged_input(trained_stage: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    encoded = tmp_path / "encoded"
    shutil.copytree(trained_stage["root"] / "encoded", encoded)
    command = ["train", "--encoded", str(encoded), "--dataset", str(trained_stage["dataset"]),
               "--out", str(tmp_path / "model"), "--no-progress"]

    def fails_naming(path: Path) -> None:
        assert cli_main(command) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("icrdesign train: ") and str(path) in error and "\n" not in error

    array = encoded / encoded_files.ARRAY_FILE
    intact = array.read_bytes()
    array.write_bytes(intact[: len(intact) // 2])
    fails_naming(array)
    array.write_bytes(intact)
    (encoded / encoded_files.SCALER_FILE).write_text("")
    fails_naming(encoded / encoded_files.SCALER_FILE)
    shutil.copy(trained_stage["root"] / "encoded" / encoded_files.SCALER_FILE, encoded)
    (encoded / encoded_files.INDEX_FILE).unlink()
    fails_naming(encoded / encoded_files.INDEX_FILE)
    shutil.copy(trained_stage["root"] / "encoded" / encoded_files.INDEX_FILE, encoded)
    command[command.index("--dataset") + 1] = str(tmp_path / "absent.parquet")
    fails_naming(tmp_path / "absent.parquet")

    with pytest.raises(InputError, match=str(tmp_path / MODEL_FILE)):
        load_trained(tmp_path)
    (tmp_path / MODEL_FILE).write_bytes((trained_stage["model"] / MODEL_FILE).read_bytes()[:1000])
    with pytest.raises(InputError, match="unreadable"):
        load_trained(tmp_path)
    (tmp_path / LATENT_FILE).write_bytes((trained_stage["model"] / LATENT_FILE).read_bytes()[:1000])
    with pytest.raises(InputError, match="unreadable"):
        read_latent(tmp_path / LATENT_FILE)


@pytest.mark.slow
def test_killed_training_resumes_from_its_checkpoint(trained_stage: dict[str, Path], tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"model": {**SMALL, "max_epochs": 400, "early_stopping_patience": 400,
                                                "num_threads": 1}}))
    command = [sys.executable, "-m", "icrdesign.cli", "train", "--encoded", str(trained_stage["root"] / "encoded"),
               "--dataset", str(trained_stage["dataset"]), "--config", str(config), "--out", str(tmp_path / "model"),
               "--no-progress"]
    src = str(REPO / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "model" / CHECKPOINT_FILE
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if checkpoint.exists() and load_checkpoint(checkpoint)["epoch"] >= 2:
            break
        time.sleep(0.2)
    process.kill()
    process.wait()
    killed_at = load_checkpoint(checkpoint)["epoch"]
    assert 2 <= killed_at < 400, "the run was not killed mid-training"
    assert not (tmp_path / "model" / "metrics.json").exists()

    config.write_text(yaml.safe_dump({"model": {**SMALL, "max_epochs": killed_at + 2, "early_stopping_patience": 400,
                                                "num_threads": 1}}))
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"resuming from {checkpoint} after epoch {killed_at}" in rerun.stderr
    history = pd.read_csv(tmp_path / "model" / "history.csv")
    assert history["epoch"].tolist() == list(range(1, killed_at + 3))
    assert json.loads((tmp_path / "model" / "metrics.json").read_text())["epochs"] == killed_at + 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_cuda_with_mixed_precision(tmp_path: Path) -> None:
    data = _synthetic_data()
    result = fit(data, _model_section(**SMALL, device="auto", mixed_precision=True, max_epochs=2), 7, tmp_path, {},
                 False)
    assert result.device.type == "cuda" and np.isfinite(result.history[-1]["train_loss"])
    state = load_checkpoint(tmp_path / CHECKPOINT_FILE, "cpu")
    assert state["model"]["to_mean.weight"].device.type == "cpu"
