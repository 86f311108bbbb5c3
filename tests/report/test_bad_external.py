"""``icrdesign report --validation FILE.csv``: a row that cannot be trusted is rejected with its reason,
never counted; a file that holds no rows is refused naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import CASES, rocksalt, write_config

from icrdesign.cli import main as cli_main
from icrdesign.errors import InputError
from icrdesign.report.inputs import load_external


def write_external(path: Path, rows: list[dict[str, str]]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def reasons_by_id(rejected: list[dict[str, str]]) -> dict[str, list[str]]:
    by_id: dict[str, list[str]] = {}
    for row in rejected:
        by_id.setdefault(row["id"], []).append(row["reason"])
    return by_id


def test_duplicate_case_and_id_rejects_every_copy(tmp_path: Path) -> None:
    path = write_external(tmp_path / "ext.csv", [
        {"case": "Ef_-0.5", "id": "a", "E_f": "-0.5"},
        {"case": "Ef_-0.5", "id": "a", "E_f": "-0.9"},
        {"case": "Ef_-0.5", "id": "b", "E_f": "-0.45"},
        {"case": "Ef_-0.3", "id": "a", "E_f": "-0.3"},  # the same id in another case is another result
    ])
    frame, rejected = load_external(path, CASES)
    assert sorted(zip(frame["case"], frame["id"])) == [("Ef_-0.3", "a"), ("Ef_-0.5", "b")]
    assert [row["reason"] for row in rejected] == [
        f"line {line}: duplicate (case, id) ('Ef_-0.5', 'a') on 2 rows: none of them is counted" for line in (2, 3)
    ]
    assert all(row["source"] == str(path) for row in rejected)


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("E_g", "inf", "E_g: band_gap is not finite: inf"),
    ("E_g", "-0.2", "E_g: band_gap = -0.2 is outside the plausible range [0, inf]"),
    ("E_g", "wide", "E_g: band_gap is not a number: 'wide'"),
    ("E_f", "-inf", "E_f: formation_energy_per_atom is not finite: -inf"),
    ("E_f", "11.5", "E_f: formation_energy_per_atom = 11.5 is outside the plausible range [-10, 10]"),
    ("E_f", "-10.2", "E_f: formation_energy_per_atom = -10.2 is outside the plausible range [-10, 10]"),
    ("E_f", "", "E_f: formation_energy_per_atom is missing"),
])
def test_implausible_property_is_rejected(tmp_path: Path, column: str, value: str, reason: str) -> None:
    good = {"case": "Eg_1.5", "id": "good", "E_f": "-1.7", "E_g": "1.4"}
    path = write_external(tmp_path / "ext.csv", [good, {**good, "id": "bad", column: value}])
    frame, rejected = load_external(path, CASES)
    assert list(frame["id"]) == ["good"]
    assert reasons_by_id(rejected) == {"bad": [f"line 3: {reason}"]}


def test_plausible_edges_and_blank_gap_are_kept(tmp_path: Path) -> None:
    path = write_external(tmp_path / "ext.csv", [
        {"case": "Eg_1.5", "id": "metal", "E_f": "-10", "E_g": "0"},
        {"case": "Eg_1.5", "id": "no-gap", "E_f": " 10 ", "E_g": ""},
    ])
    frame, rejected = load_external(path, CASES)
    assert rejected == []
    assert frame["E_f"].tolist() == [-10.0, 10.0]
    assert frame["E_g"].iloc[0] == 0.0 and pd.isna(frame["E_g"].iloc[1])


def test_missing_structure_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "cifs").mkdir()
    rocksalt().to(filename=str(tmp_path / "cifs" / "here.cif"))
    path = write_external(tmp_path / "ext.csv", [
        {"case": "Ef_-0.5", "id": "here", "E_f": "-0.5", "structure": "cifs/here.cif"},
        {"case": "Ef_-0.5", "id": "gone", "E_f": "-0.5", "structure": "cifs/gone.cif"},
        {"case": "Ef_-0.5", "id": "none", "E_f": "-0.5", "structure": ""},
    ])
    frame, rejected = load_external(path, CASES)
    assert list(frame["id"]) == ["here", "none"]
    assert frame["structure"].tolist() == [str((tmp_path / "cifs" / "here.cif").resolve()), None]
    assert reasons_by_id(rejected) == {
        "gone": [f"line 3: structure file not found: 'cifs/gone.cif' ({(tmp_path / 'cifs' / 'gone.cif').resolve()})"]
    }


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty file; expected the columns ['case', 'id', 'E_f'] (optional: ['E_g', 'structure'])"),
    ("\n  \n", "empty file"),
    ("case,id,E_f\n", "no rows under the header ['case', 'id', 'E_f']"),
    ("case,E_f\nEf_-0.5,-0.5\n", "missing columns ['id']"),
])
def test_file_without_rows_or_columns_is_refused_naming_it(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "ext.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_external(path, CASES)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_cli_counts_only_trusted_rows_and_lists_the_rest(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", cases=["Ef_-0.5", "Eg_1.5"])
    external = write_external(tmp_path / "vasp.csv", [
        {"case": "Ef_-0.5", "id": "a", "E_f": "-0.5", "E_g": ""},
        {"case": "Ef_-0.5", "id": "a", "E_f": "-0.9", "E_g": ""},
        {"case": "Ef_-0.5", "id": "b", "E_f": "-0.45", "E_g": ""},
        {"case": "Eg_1.5", "id": "c", "E_f": "-1.7", "E_g": "inf"},
        {"case": "Eg_1.5", "id": "d", "E_f": "-1.7", "E_g": "1.5"},
    ])
    out = tmp_path / "out"
    assert cli_main(["report", "--validation", str(external), "--config", str(config), "--out", str(out),
                     "--results", str(tmp_path / "no-results"), "--figures", "S3_boxplots"]) == 0
    tiers = json.loads((out / "summary.json").read_text())["cases"]
    assert (tiers["Ef_-0.5"]["tiers"]["external"]["n"], tiers["Ef_-0.5"]["tiers"]["external"]["n_success"]) == (1, 1)
    assert (tiers["Eg_1.5"]["tiers"]["external"]["n"], tiers["Eg_1.5"]["tiers"]["external"]["n_success"]) == (1, 1)
    rejected = pd.read_csv(out / "rejected.csv")
    assert sorted(rejected["id"]) == ["a", "a", "c"]
    assert set(rejected["source"]) == {str(external)}


def test_cli_refuses_an_empty_file_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "config.yaml")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert cli_main(["report", "--validation", str(empty), "--config", str(config), "--out", str(tmp_path / "o"),
                     "--results", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"icrdesign report: {empty}: empty file")
