"""The file source (``data.source: file``): users' own crystals from a CDVAE-style CSV, a folder of CIF
files with a properties table, or an extxyz file, with an optional given train / val / test split.

Unusable rows go to rejected.csv with their reason and the rest run through the dataset, encode and
train commands the workflow runs; a given split is the one the model is tested on.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, strategies as st
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from icrdesign.artefacts import model as model_files
from icrdesign.artefacts.dataset import (
    DUPLICATE_MATERIAL_ID,
    INVALID_PROPERTY,
    MISSING_PROPERTY,
    read_dataset,
    read_rejected,
    structures_from_table,
)
from icrdesign.cli import main as cli_main
from icrdesign.config import load_config
from icrdesign.data import build_dataset, file_source
from icrdesign.data.file_source import NOT_IN_SPLIT, UNPARSABLE_STRUCTURE, read_file_source
from icrdesign.errors import InputError
from icrdesign.io import read_json
from icrdesign.provenance import files_sha256
from icrdesign.split import SPLIT_COLUMN, SPLIT_NAMES, dataset_split
from icrdesign.wiring import dataset_input_files, dataset_sections

# A small network and one epoch: each training run takes seconds.
SMALL_MODEL = {"latent_dim": 8, "encoder_channels": [4, 8], "kernel_sizes": [3, 3], "strides": [2, 1],
               "dense_units": 16, "property_hidden": [8], "max_epochs": 1, "num_threads": 1, "batch_size": 8,
               "device": "cpu"}
SALTS = [("Na", "Cl"), ("K", "Br"), ("Mg", "O"), ("Li", "F"), ("Ca", "S"), ("Cs", "I"), ("Sr", "Se"), ("Rb", "Cl")]
N_CRYSTALS = 24
# CDVAE's mp_20 column names; this test's data file maps them as a user would.
CDVAE_PROPERTIES = {"formation_energy_per_atom": "formation_energy_per_atom", "band_gap": "band_gap"}
BROKEN_CIF = "data_broken\n_cell_length_a 4.0\n"


def _crystal(i: int) -> Structure:
    """Rocksalt (primitive fcc), CsCl and cubic perovskite cells in turn, their sizes varying with ``i``."""
    cation, anion = SALTS[i % len(SALTS)]
    a = 4.0 + 0.05 * i
    if i % 3 == 0:
        side = a / math.sqrt(2)
        return Structure(Lattice.from_parameters(side, side, side, 60, 60, 60), [cation, anion],
                         [[0, 0, 0], [0.5, 0.5, 0.5]])
    if i % 3 == 1:
        return Structure(Lattice.cubic(a * 0.85), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return Structure(Lattice.cubic(a), ["Sr", "Ti", "O", "O", "O"],
                     [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]])


def _labels(i: int) -> dict[str, float]:
    return {"formation_energy_per_atom": -1.0 - 0.1 * (i % 7), "band_gap": 0.3 * (i % 5)}


def _cdvae_rows(n: int = N_CRYSTALS) -> list[dict[str, Any]]:
    """Rows as CDVAE's mp_20 CSVs have them (material_id, properties, pretty_formula, cif, ...)."""
    rows = []
    for i in range(n):
        crystal = _crystal(i)
        rows.append({"material_id": f"mp-{i + 1}", **_labels(i), "pretty_formula": crystal.composition.reduced_formula,
                     "e_above_hull": 0.0, "cif": str(CifWriter(crystal)), "spacegroup.number": 221})
    return rows


def _write_cdvae_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    # CDVAE's CSVs carry pandas' unnamed index as their first column.
    pd.DataFrame(rows).to_csv(path, index=True)
    return path


def _settings(path: Path, **changes: Any) -> dict[str, Any]:
    """The data.file section for ``path`` (validated), with ``changes``."""
    config = load_config(overrides={"data": {"source": "file", "file": {"path": str(path), **changes}}})
    return config["data"]["file"]


def _representation(**changes: Any) -> dict[str, Any]:
    return {**load_config()["representation"], **changes}


def _write_config(path: Path, data_file: Path, **file_settings: Any) -> Path:
    config = {"seed": 3, "split": [0.6, 0.2, 0.2], "model": SMALL_MODEL,
              "data": {"source": "file", "file": {"path": str(data_file), "properties": CDVAE_PROPERTIES,
                                                  **file_settings}}}
    path.write_text(yaml.safe_dump(config))
    return path


def _run_stages(config: Path, root: Path) -> dict[str, Path]:
    """The dataset, encode and train commands as the workflow runs them; each must succeed."""
    paths = {"data": root / "data", "encoded": root / "encoded", "model": root / "model"}
    assert cli_main(["dataset", "--config", str(config), "--out", str(paths["data"])]) == 0
    dataset = paths["data"] / "dataset.parquet"
    assert cli_main(["encode", "--dataset", str(dataset), "--config", str(config), "--out", str(paths["encoded"]),
                     "--jobs", "1"]) == 0
    assert cli_main(["train", "--encoded", str(paths["encoded"]), "--dataset", str(dataset), "--config", str(config),
                     "--out", str(paths["model"]), "--no-progress"]) == 0
    return paths


def test_cdvae_csv_rejects_bad_rows_and_the_rest_train(tmp_path: Path) -> None:
    rows = _cdvae_rows()
    rows[4]["cif"] = BROKEN_CIF  # mp-5
    rows[6]["band_gap"] = float("nan")  # mp-7
    rows.append({**rows[2], "band_gap": 9.0})  # a second mp-3
    data_file = _write_cdvae_csv(tmp_path / "mp_20.csv", rows)
    paths = _run_stages(_write_config(tmp_path / "config.yaml", data_file), tmp_path)

    rejected = read_rejected(paths["data"] / "rejected.csv").set_index("material_id")
    assert rejected["reason"].to_dict() == {"mp-5": UNPARSABLE_STRUCTURE, "mp-7": MISSING_PROPERTY,
                                            "mp-3": DUPLICATE_MATERIAL_ID}
    assert rejected.loc["mp-7", "detail"] == "band_gap"
    assert "Invalid CIF" in rejected.loc["mp-5", "detail"]
    table = read_dataset(paths["data"] / "dataset.parquet")
    kept = [f"mp-{i + 1}" for i in range(N_CRYSTALS) if i not in (4, 6)]
    assert table["material_id"].tolist() == kept  # the input's order
    assert table.set_index("material_id").loc["mp-3", "band_gap"] == rows[2]["band_gap"]  # the first mp-3
    assert set(table["source"]) == {"file"} and set(table["label_source"]) == {"mp_20.csv"}
    assert SPLIT_COLUMN not in table.columns  # no given split: the hash decides
    for structure, i in zip(structures_from_table(table), [int(mid[3:]) - 1 for mid in kept]):
        assert structure.matches(_crystal(i))

    provenance = read_json(tmp_path / "provenance.json")
    assert provenance["data_source"] == "file"
    assert provenance["data_file"] == {"path": str(data_file),
                                       "sha256": hashlib.sha256(data_file.read_bytes()).hexdigest()}
    assert provenance["rejected_by_reason"] == {UNPARSABLE_STRUCTURE: 1, MISSING_PROPERTY: 1, DUPLICATE_MATERIAL_ID: 1}
    assert read_json(paths["encoded"] / "summary.json")["n_encoded"] == len(kept)
    metrics = read_json(paths["model"] / model_files.METRICS_FILE)
    assert metrics["epochs"] == 1
    split = model_files.read_split(paths["model"] / model_files.SPLIT_FILE)
    assert split["material_id"].tolist() == kept
    assert metrics["n_test"] == int((split["split"] == "test").sum()) > 0


def test_given_splits_are_the_model_s_train_val_and_test(tmp_path: Path) -> None:
    rows = _cdvae_rows()
    data_file = _write_cdvae_csv(tmp_path / "all.csv", rows)
    ids = [row["material_id"] for row in rows]
    # mp-24 is in no split file; mp-999 of train.csv is not in the data.
    parts = {"train": ids[:15] + ["mp-999"], "val": ids[15:19], "test": ids[19:23]}
    splits = {}
    for name, part in parts.items():
        splits[name] = str(_write_cdvae_csv(tmp_path / f"{name}.csv",
                                            [row for row in rows if row["material_id"] in part]
                                            + [{"material_id": mid} for mid in part if mid not in ids]))
    paths = _run_stages(_write_config(tmp_path / "config.yaml", data_file, splits=splits), tmp_path)

    rejected = read_rejected(paths["data"] / "rejected.csv")
    assert rejected[["material_id", "reason"]].values.tolist() == [["mp-24", NOT_IN_SPLIT]]
    provenance = read_json(tmp_path / "provenance.json")
    assert provenance["split_ids_not_in_data"] == {"train": 1, "val": 0, "test": 0}
    assert provenance["split_counts"] == {"train": 15, "val": 4, "test": 4}
    assert provenance["split_files"]["test"]["sha256"] == hashlib.sha256(Path(splits["test"]).read_bytes()).hexdigest()

    split = model_files.read_split(paths["model"] / model_files.SPLIT_FILE)
    for name in SPLIT_NAMES:
        assert sorted(split.loc[split["split"] == name, "material_id"]) == sorted(set(parts[name]) - {"mp-999"})
    encoded_index = pd.read_csv(paths["encoded"] / "index.csv", dtype={"material_id": str})
    by_id = split.set_index("material_id")["split"].to_dict()
    assert encoded_index.set_index("material_id")["split"].to_dict() == by_id
    reconstructed = pd.read_csv(paths["model"] / model_files.TEST_RECONSTRUCTION_FILE, dtype={"material_id": str})
    assert sorted(reconstructed["material_id"]) == sorted(parts["test"])
    assert read_json(paths["model"] / model_files.METRICS_FILE)["n_test"] == len(parts["test"])


def test_a_folder_of_cifs_and_an_extxyz_file_give_the_csv_s_table(tmp_path: Path) -> None:
    rows = _cdvae_rows(9)
    csv_table, csv_rejected, _ = read_file_source(_settings(_write_cdvae_csv(tmp_path / "crystals.csv", rows)),
                                                  _representation())

    folder = tmp_path / "cifs"
    folder.mkdir()
    for row in rows:
        (folder / f"{row['material_id']}.cif").write_text(row["cif"])
    # The properties table may sit in the folder: it is not read as a structure.
    labels = folder / "labels.csv"
    # A row without an id labels nothing; of a repeated id, the first row counts.
    extra = [{"material_id": None, "band_gap": 1.0}, {"material_id": "mp-1", "band_gap": 7.0}]
    pd.DataFrame(rows + extra).drop(columns="cif").to_csv(labels, index=False)
    folder_table, folder_rejected, folder_provenance = read_file_source(
        _settings(folder, properties_file=str(labels)), _representation())

    from ase.io import write

    frames = []
    for row, structure in zip(rows, structures_from_table(csv_table)):
        atoms = structure.to_ase_atoms()
        atoms.info.update({"material_id": row["material_id"], **_labels(int(row["material_id"][3:]) - 1)})
        frames.append(atoms)
    write(tmp_path / "crystals.extxyz", frames, format="extxyz")
    xyz_table, xyz_rejected, _ = read_file_source(_settings(tmp_path / "crystals.extxyz"), _representation())

    assert csv_rejected.empty and folder_rejected.empty and xyz_rejected.empty
    # Folder files are read in name order (mp-1, mp-2, ...), as the CSV lists them here.
    pd.testing.assert_frame_equal(folder_table.drop(columns="label_source"), csv_table.drop(columns="label_source"))
    assert set(folder_table["label_source"]) == {"labels.csv"}
    scalar = ["material_id", "formula", "nsites", "nelements", "spacegroup", "formation_energy_per_atom", "band_gap"]
    pd.testing.assert_frame_equal(xyz_table[scalar], csv_table[scalar])
    for from_xyz, from_csv in zip(structures_from_table(xyz_table), structures_from_table(csv_table)):
        np.testing.assert_allclose(from_xyz.lattice.matrix, from_csv.lattice.matrix, atol=1e-6)
        assert [str(site.specie) for site in from_xyz] == [str(site.specie) for site in from_csv]
        periodic_offset = (from_xyz.frac_coords - from_csv.frac_coords + 0.5) % 1 - 0.5
        np.testing.assert_allclose(periodic_offset, 0, atol=1e-6)

    # A folder's sha256 covers its structure files (names and contents), not the properties table.
    cifs = sorted(folder.glob("*.cif"))
    assert folder_provenance["data_file"]["sha256"] == files_sha256(cifs)
    (folder / "mp-1.cif").write_text(rows[1]["cif"])
    assert files_sha256(cifs) != folder_provenance["data_file"]["sha256"]


def test_extxyz_ids_default_to_the_frame_index(tmp_path: Path) -> None:
    from ase.io import write

    frames = [_crystal(i).to_ase_atoms() for i in range(3)]
    for i, atoms in enumerate(frames):
        atoms.info.update(_labels(i))
    frames[1].info["band_gap"] = "n/a"
    frames[2].pbc = [True, True, False]
    write(tmp_path / "frames.extxyz", frames, format="extxyz")
    table, rejected, _ = read_file_source(_settings(tmp_path / "frames.extxyz", id_column="name"), _representation())

    assert table["material_id"].tolist() == ["0"]
    # Structures are checked first, then the labels of the readable ones.
    assert rejected[["material_id", "reason"]].values.tolist() == [["2", UNPARSABLE_STRUCTURE], ["1", INVALID_PROPERTY]]


def test_disorder_and_crystals_too_big_for_the_representation_are_rejected(tmp_path: Path) -> None:
    disordered = _crystal(1)
    disordered.replace(0, {"Na": 0.5, "K": 0.5})
    five_elements = Structure(Lattice.cubic(6.0), ["Na", "K", "Cl", "Br", "I"],
                              [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5]])
    big = _crystal(1) * (3, 3, 3)
    big.translate_sites([0], [0.3, 0, 0], frac_coords=False)  # one displaced atom: no smaller primitive cell
    conventional = _crystal(0).to_conventional()  # 8 sites, a 2-site primitive cell
    crystals = {"dis-1": disordered, "five-1": five_elements, "big-1": big, "conv-1": conventional}
    rows = [{"material_id": mid, "cif": str(CifWriter(crystal)), **_labels(0)} for mid, crystal in crystals.items()]
    data_file = _write_cdvae_csv(tmp_path / "odd.csv", rows)

    table, rejected, _ = read_file_source(_settings(data_file), _representation(max_sites=4))

    assert table["material_id"].tolist() == ["conv-1"]
    assert table["nsites"].tolist() == [8]  # stored as given; the encoder reduces it
    reasons = rejected.set_index("material_id")
    assert reasons["reason"].to_dict() == {"dis-1": "disordered", "five-1": "too_many_elements",
                                           "big-1": "too_many_sites"}
    assert reasons.loc["big-1", "detail"] == "54 sites in the primitive cell > representation.max_sites 4"
    assert reasons.loc["five-1", "detail"] == "5 elements > representation.max_elements 4"
    _, as_given, _ = read_file_source(_settings(data_file), _representation(max_sites=4, canonical="as_given"))
    assert as_given.set_index("material_id").loc["conv-1", "detail"] == "8 sites > representation.max_sites 4"


def test_a_table_without_a_usable_row_stops_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _cdvae_rows(3)
    for row in rows:
        row["cif"] = BROKEN_CIF
    data_file = _write_cdvae_csv(tmp_path / "broken.csv", rows)
    config = load_config(overrides={"data": {"source": "file", "file": {"path": str(data_file)}}})
    message = (f"data file {data_file} gave no usable row (3 rejected: {{'unparsable_structure': 3}}); "
               "no dataset written")
    with pytest.raises(InputError, match=re.escape(message)):
        build_dataset(config, tmp_path / "data")
    assert len(read_rejected(tmp_path / "data" / "rejected.csv")) == 3
    assert not (tmp_path / "data" / "dataset.parquet").exists()

    missing_column = _write_cdvae_csv(tmp_path / "no_cif.csv", [{"material_id": "mp-1", **_labels(0)}])
    with pytest.raises(InputError, match=r"no_cif.csv: missing columns \['cif'\]"):
        read_file_source(_settings(missing_column), _representation())


def test_source_file_without_a_path_stops_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data": {"source": "file"}}))
    assert cli_main(["dataset", "--config", str(config), "--out", str(tmp_path / "data")]) == 2
    error = capsys.readouterr().err
    assert "config key 'data.file.path': required with data.source 'file'" in error
    assert "Traceback" not in error


def test_the_dataset_rule_reads_the_user_s_files(tmp_path: Path) -> None:
    folder = tmp_path / "cifs"
    folder.mkdir()
    for name in ("b.cif", "a.cif", ".hidden", "labels.csv"):
        (folder / name).write_text("")
    splits = {name: str(tmp_path / f"{name}.csv") for name in SPLIT_NAMES}
    config = load_config(overrides={"data": {"source": "file", "file": {
        "path": str(folder), "properties_file": str(folder / "labels.csv"), "splits": splits}}})

    assert dataset_sections(config) == ("data", "representation")
    assert dataset_input_files(config) == [str(folder / "a.cif"), str(folder / "b.cif"), str(folder / "labels.csv"),
                                           *splits.values()]
    demo = load_config()
    assert dataset_sections(demo) == ("data",)
    assert dataset_input_files(demo) == []


@given(st.lists(st.sampled_from(SPLIT_NAMES), max_size=30))
def test_a_given_split_wins_over_the_hash(labels: list[str]) -> None:
    ids = [f"id-{i}" for i in range(len(labels))]
    assert dataset_split(ids, {"split": [0.8, 0.1, 0.1], "seed": 1}, labels).tolist() == labels


def test_a_given_split_label_must_be_a_split_name() -> None:
    with pytest.raises(InputError, match=r"dataset table column 'split': labels \['holdout'\]"):
        dataset_split(["a", "b"], {"split": [0.8, 0.1, 0.1], "seed": 1}, ["train", "holdout"])


def test_provenance_sha256_of_a_folder_ignores_order_and_location(tmp_path: Path) -> None:
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        for name, text in (("b.cif", "B"), ("a.cif", "A")):
            (tmp_path / folder / name).write_text(text)
    first = files_sha256([tmp_path / "one" / "b.cif", tmp_path / "one" / "a.cif"])
    assert first == files_sha256(sorted((tmp_path / "two").iterdir()))
    (tmp_path / "two" / "a.cif").rename(tmp_path / "two" / "c.cif")
    assert files_sha256((tmp_path / "two").iterdir()) != first


def test_forked_workers_read_the_same_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _cdvae_rows(12)
    rows[5]["cif"] = BROKEN_CIF
    settings = _settings(_write_cdvae_csv(tmp_path / "crystals.csv", rows))
    alone = read_file_source(settings, _representation(), n_jobs=1)
    monkeypatch.setattr(file_source, "MIN_CRYSTALS_PER_RANGE", 2)  # ranges of 2 crystals: forks even this small input
    forked = read_file_source(settings, _representation(), n_jobs=2)

    pd.testing.assert_frame_equal(forked[0], alone[0])
    pd.testing.assert_frame_equal(forked[1], alone[1])
    assert forked[1]["material_id"].tolist() == ["mp-6"]
