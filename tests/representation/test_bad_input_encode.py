"""Bad input to the encode stage (issue 21): refused rows carry their reason, refused tables name
their file and exit with code 2, and a second writer of the output folder is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from icrdesign.artefacts import encoded as encoded_files
from icrdesign.artefacts.dataset import DUPLICATE_MATERIAL_ID, MISSING_MATERIAL_ID
from icrdesign.cli import main as cli_main
from icrdesign.config import load_config
from icrdesign.errors import InputError
from icrdesign.io import LOCK_FILE, exclusive_lock
from icrdesign.representation.pipeline import encode_dataset

SALTS = [("Na", "Cl"), ("K", "Br"), ("Mg", "O"), ("Li", "F"), ("Ca", "S"), ("Cs", "I")]


def _structure_json(index: int) -> str:
    """A CsCl-type crystal of one of six salts, its cell a little different for every index."""
    cation, anion = SALTS[index % len(SALTS)]
    crystal = Structure(Lattice.cubic(3.6 + 0.05 * index), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return json.dumps(crystal.as_dict())


def _write_dataset(path: Path, ids: list[str | None], structures: list[str] | None = None) -> Path:
    structures = structures or [_structure_json(i) for i in range(len(ids))]
    pd.DataFrame({"material_id": pd.Series(ids, dtype=object), "structure": structures}).to_parquet(path)
    return path


def _encode(dataset: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run `icrdesign encode`; its exit code and the last line on stderr (the message of a refusal)."""
    code = cli_main(["encode", "--dataset", str(dataset), "--out", str(out), "--jobs", "1"])
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    return code, (stderr.strip().splitlines() or [""])[-1]


def test_repeated_and_missing_ids_are_rejected_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = [f"m-{i}" for i in range(20)] + ["m-3", None]
    dataset = _write_dataset(tmp_path / "dataset.parquet", ids)
    out = tmp_path / "encoded"
    assert _encode(dataset, out, capsys)[0] == 0

    rejected = pd.read_csv(out / encoded_files.REJECTED_FILE)
    assert rejected.fillna("").to_dict("records") == [
        {"material_id": "m-3", "reason": DUPLICATE_MATERIAL_ID,
         "detail": "row 20 repeats the material_id of row 3, which is the one kept"},
        {"material_id": "", "reason": MISSING_MATERIAL_ID, "detail": "row 21 has no material_id"},
    ]
    encoded = encoded_files.read_encoded(out)
    assert encoded.encoded.tolist() == [True] * 20 + [False, False]
    assert encoded.index["reason"].iloc[20].startswith(f"{DUPLICATE_MATERIAL_ID}: row 20 repeats")
    summary = json.loads((out / encoded_files.SUMMARY_FILE).read_text())
    assert summary["n_encoded"] == 20
    assert summary["rejected_by_reason"] == {DUPLICATE_MATERIAL_ID: 1, MISSING_MATERIAL_ID: 1}
    assert sorted(path.name for path in out.iterdir()) == sorted(encoded_files.FILES)  # the lock is gone


def test_table_without_rows_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = _write_dataset(tmp_path / "empty.parquet", [], [])
    code, error = _encode(dataset, tmp_path / "encoded", capsys)
    assert code == 2
    assert error == (f"icrdesign encode: {dataset}: the table has no rows; nothing to encode "
                     "(re-run the dataset stage)")
    table = pd.read_parquet(dataset)
    with pytest.raises(InputError, match=f"^{dataset}: the table has no rows"):  # the library call too
        encode_dataset(table, load_config(), tmp_path / "encoded", n_jobs=1, source=dataset)


def test_table_without_a_readable_structure_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = _write_dataset(tmp_path / "dataset.parquet", ["a", "b", "a"], ["{not json", "[]", _structure_json(0)])
    code, error = _encode(dataset, tmp_path / "encoded", capsys)
    assert code == 2
    assert error == (f"icrdesign encode: {dataset}: no elements up to Pu found in the structures; cannot build a "
                     f"vocabulary (rejected: {{'not_a_structure': 2, '{DUPLICATE_MATERIAL_ID}': 1}})")


def test_table_without_an_encodable_training_crystal_is_named(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    disordered = Structure(Lattice.cubic(4.0), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"representation": {"elements": ["Fe", "Ni"]}}))
    dataset = _write_dataset(tmp_path / "dataset.parquet", ["a", "b"], [json.dumps(disordered.as_dict())] * 2)
    code = cli_main(["encode", "--dataset", str(dataset), "--config", str(config), "--out", str(tmp_path / "encoded"),
                     "--jobs", "1"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    assert error == (f"icrdesign encode: {dataset}: none of its 2 rows is an encodable training-split structure "
                     "(rejected: {'disordered': 2}); cannot fit the scaler")


def test_second_writer_of_the_encoded_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = _write_dataset(tmp_path / "dataset.parquet", [f"m-{i}" for i in range(6)])
    out = tmp_path / "encoded"
    with exclusive_lock(out):
        code, error = _encode(dataset, out, capsys)
    assert code == 2
    assert error.startswith(f"icrdesign encode: {out} is locked by PID {os.getpid()} on host ")
    assert error.endswith(f"wait for it to finish or stop it (lock file {out / LOCK_FILE})")
    assert list(out.iterdir()) == []
