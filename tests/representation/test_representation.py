"""ICR: exact round trips, canonical form, typed rejections, robust decoding, scaler, CLI."""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from workflow_runner import REPO
from icrdesign.representation import (
    DESCRIPTOR_NAMES,
    ICR,
    DegenerateLatticeError,
    DisorderedStructureError,
    EncodingError,
    MinMaxScaler,
    NonFiniteValueError,
    TooManyElementsError,
    TooManySitesError,
    UnknownElementError,
    reason_code,
)
from icrdesign.artefacts import encoded as encoded_files
from icrdesign.cli import main as cli_main
from icrdesign.representation.build import fast_construction_supported, structures_from_arrays
from icrdesign.representation.fourier import batch_nearest_reciprocal_points
from icrdesign.representation.roundtrip import roundtrip_matches, structures_match

SYMBOLS = ["H", "Li", "O", "Na", "Mg", "Si", "S", "Cl", "Ti", "Fe", "Cu", "Zn", "Sr", "Ba", "La", "U"]


def rocksalt() -> Structure:
    return known_crystals()[0]


def known_crystals() -> list[Structure]:
    """Fresh copies (tests may mutate them) of crystals built once: from_spacegroup costs ~1 s each."""
    return [crystal.copy() for crystal in _known_crystals()]


@functools.cache
def _known_crystals() -> tuple[Structure, ...]:
    return (
        Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]]),
        Structure.from_spacegroup("Pm-3m", Lattice.cubic(3.9), ["Sr", "Ti", "O"], [[0, 0, 0], [0.5] * 3, [0.5, 0.5, 0]]),
        Structure.from_spacegroup(
            "P4_2/mnm", Lattice.tetragonal(4.59, 2.96), ["Ti", "O"], [[0, 0, 0], [0.305, 0.305, 0]]
        ),
        Structure.from_spacegroup(
            "P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]]
        ),
        Structure.from_spacegroup(
            "I4/mmm", Lattice.tetragonal(3.98, 13.2), ["La", "Cu", "O", "O"],
            [[0, 0, 0.361], [0, 0, 0], [0, 0.5, 0], [0, 0, 0.183]],
        ),
    )


@st.composite
def random_structures(draw: st.DrawFn, max_sites: int, max_elements: int) -> Structure:
    n_sites = draw(st.integers(1, max_sites))
    n_elements = draw(st.integers(1, min(max_elements, n_sites)))
    elements = draw(st.lists(st.sampled_from(SYMBOLS), min_size=n_elements, max_size=n_elements, unique=True))
    species = elements + [draw(st.sampled_from(elements)) for _ in range(n_sites - n_elements)]
    angles = [draw(st.floats(65.0, 115.0)) for _ in range(3)]
    ratios = np.array([draw(st.floats(0.7, 1.4)) for _ in range(3)])
    cosines = np.cos(np.radians(angles))
    volume_factor = math.sqrt(max(1 - (cosines**2).sum() + 2 * cosines.prod(), 1e-12))
    assume(volume_factor > 0.3)
    volume = n_sites * draw(st.floats(15.0, 40.0))
    lengths = ratios * (volume / (ratios.prod() * volume_factor)) ** (1 / 3)
    lattice = Lattice.from_parameters(*lengths, *angles)
    coords = np.array([[draw(st.floats(0.0, 1.0, exclude_max=True)) for _ in range(3)] for _ in range(n_sites)])
    structure = Structure(lattice, species, coords)
    if n_sites > 1:
        distances = structure.distance_matrix[np.triu_indices(n_sites, 1)]
        assume(distances.min() > 0.7)
    return structure


ROUNDTRIP_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])


@pytest.mark.parametrize("canonical", ["as_given", "niggli_primitive"])
@ROUNDTRIP_SETTINGS
@given(data=st.data())
def test_roundtrip_random_structures(canonical: str, data: st.DataObject) -> None:
    icr = ICR(max_sites=20, max_elements=4, canonical=canonical, fourier=True)
    structure = data.draw(random_structures(20, 4))
    batch = icr.encode([structure], n_jobs=1)
    assert batch.mask.tolist() == [True], batch.reasons
    assert batch.array.dtype == np.float32 and batch.array.shape == (1, icr.n_rows, icr.n_channels)
    (decoded,) = icr.decode(batch.array)
    assert decoded is not None
    if canonical == "as_given":
        assert decoded.composition == structure.composition
        assert len(decoded) == len(structure)
    assert structures_match(structure, decoded)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(structure=random_structures(40, 4))
def test_roundtrip_up_to_40_sites(structure: Structure) -> None:
    icr = ICR(max_sites=40, canonical="niggli_primitive")
    batch = icr.encode([structure], n_jobs=1)
    assert batch.mask[0], batch.reasons
    assert structures_match(structure, icr.decode(batch.array)[0])


def test_forty_site_structure_fills_every_site_row() -> None:
    supercell = rocksalt().copy()  # 8 sites conventional -> 40 sites as a 5x1x1 supercell
    supercell.make_supercell([5, 1, 1])
    assert len(supercell) == 40
    icr = ICR(max_sites=40, canonical="as_given")
    batch = icr.encode([supercell], n_jobs=1)
    occupancy = icr.block(batch.array, "occupancy")[0]
    assert occupancy.sum() == 40 and (occupancy.max(axis=1) == 1).all()
    assert structures_match(supercell, icr.decode(batch.array)[0])
    assert not ICR(max_sites=39, canonical="as_given").encode([supercell]).mask[0]


@pytest.mark.parametrize("crystal", known_crystals(), ids=lambda s: s.composition.reduced_formula)
def test_canonical_form_is_invariant(crystal: Structure) -> None:
    analyzer = SpacegroupAnalyzer(crystal)
    conventional = analyzer.get_conventional_standard_structure()
    primitive = analyzer.get_primitive_standard_structure()
    rng = np.random.default_rng(0)
    permuted = Structure.from_sites([primitive[i] for i in rng.permutation(len(primitive))])
    translated = conventional.copy()
    translated.translate_sites(list(range(len(translated))), [0.137, 0.271, 0.319])

    icr = ICR(fourier=True)
    batch = icr.encode([conventional, primitive, permuted, translated], n_jobs=1)
    assert batch.mask.all(), batch.reasons
    np.testing.assert_array_equal(batch.array[0], batch.array[1])
    np.testing.assert_array_equal(batch.array[0], batch.array[2])
    for decoded in icr.decode(batch.array):
        assert structures_match(conventional, decoded)
    # The niggli cell is primitive: the conventional cell's extra sites are gone.
    assert icr.block(batch.array, "occupancy")[0].sum() == len(primitive)


def test_as_given_keeps_the_given_cell_and_order() -> None:
    crystal = known_crystals()[2]  # SrTiO3
    reversed_order = Structure.from_sites(list(crystal)[::-1])
    icr = ICR(canonical="as_given")
    batch = icr.encode([crystal, reversed_order], n_jobs=1)
    assert not np.array_equal(batch.array[0], batch.array[1])
    decoded = icr.decode(batch.array)
    assert [s.specie.symbol for s in decoded[1]] == [s.specie.symbol for s in reversed_order]
    np.testing.assert_allclose(decoded[0].lattice.matrix, crystal.lattice.matrix, atol=1e-5)


def test_bad_rows_get_typed_reasons_and_the_batch_goes_on() -> None:
    good = rocksalt()
    disordered = Structure(Lattice.cubic(4.0), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    many_sites = Structure(Lattice.cubic(12.0), ["Si"] * 25, np.random.default_rng(1).random((25, 3)))
    many_elements = Structure(
        Lattice.cubic(6.0), ["Na", "Cl", "Fe", "O", "S"], [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5]]
    )
    unknown_element = Structure(Lattice.cubic(4.0), ["Am"], [[0, 0, 0]])
    degenerate = Structure(Lattice([[4, 0, 0], [0, 4, 0], [4, 4, 1e-6]]), ["Na"], [[0, 0, 0]])
    nan_coords = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [np.nan, 0.5, 0.5]])
    batch = ICR().encode([good, disordered, many_sites, many_elements, unknown_element, degenerate, nan_coords, "CIF?", good])
    expected = [
        None,
        DisorderedStructureError.code,
        TooManySitesError.code,
        TooManyElementsError.code,
        UnknownElementError.code,
        DegenerateLatticeError.code,
        NonFiniteValueError.code,
        "not_a_structure",
        None,
    ]
    assert [reason_code(r) for r in batch.reasons] == expected
    assert batch.mask.tolist() == [code is None for code in expected]
    assert not batch.array[~batch.mask].any()
    assert "25 sites > max_sites 20" in batch.reasons[2]
    np.testing.assert_array_equal(batch.array[0], batch.array[-1])

    restricted = ICR(elements=["Na", "Cl"])
    assert reason_code(restricted.encode([known_crystals()[1]]).reasons[0]) == UnknownElementError.code
    with pytest.raises(TooManySitesError, match="max_sites"):
        ICR().encode_structure(many_sites)
    assert issubclass(TooManySitesError, EncodingError)


def test_decoded_structures_equal_publicly_constructed_ones() -> None:
    icr = ICR(canonical="as_given")
    crystals = known_crystals()
    for crystal, decoded in zip(crystals, icr.decode(icr.encode(crystals).array)):
        public = Structure(Lattice(decoded.lattice.matrix), [s.specie for s in decoded], decoded.frac_coords)
        assert decoded == public and decoded.as_dict() == public.as_dict()
        decoded.perturb(0.01)  # decoded structures are ordinary, mutable pymatgen Structures
        assert len(decoded.copy()) == len(crystal)


def test_fast_built_structures_behave_as_publicly_built_ones() -> None:
    """Decoding fills pymatgen's objects directly (benchmarks/decode_build.py: 2.4-2.7x faster decoding);
    this fails when a pymatgen change makes those objects differ from the public constructors' ones."""
    assert fast_construction_supported(), "the direct fill no longer matches pymatgen: decoding fell back to the slow path"
    crystals = known_crystals()
    matrices = np.stack([crystal.lattice.matrix for crystal in crystals])
    species = [Composition({site.specie.symbol: 1}) for crystal in crystals for site in crystal]
    frac = np.concatenate([np.mod(crystal.frac_coords, 1.0) for crystal in crystals])
    n_sites = [len(crystal) for crystal in crystals]
    fast_built = structures_from_arrays(matrices, species, frac, n_sites)
    offsets = np.cumsum([0, *n_sites])
    for i, fast in enumerate(fast_built):
        rows = slice(offsets[i], offsets[i + 1])
        public = Structure(Lattice(matrices[i]), species[rows], frac[rows])
        assert type(fast) is type(public) and type(fast.lattice) is type(public.lattice)
        for name in ("matrix", "abc", "angles", "volume", "inv_matrix", "metric_tensor", "pbc"):
            np.testing.assert_array_equal(getattr(fast.lattice, name), getattr(public.lattice, name), err_msg=name)
        np.testing.assert_array_equal(fast.lattice.reciprocal_lattice.matrix, public.lattice.reciprocal_lattice.matrix)
        np.testing.assert_allclose(fast.lattice.get_lll_reduced_lattice().matrix,
                                   public.lattice.get_lll_reduced_lattice().matrix)
        assert fast.species == public.species and fast.labels == public.labels
        np.testing.assert_array_equal(fast.frac_coords, public.frac_coords)
        np.testing.assert_array_equal(fast.cart_coords, public.cart_coords)
        assert fast.site_properties == public.site_properties and fast.properties == public.properties
        assert [site.properties for site in fast] == [site.properties for site in public]
        assert all(site.lattice is fast.lattice for site in fast)
        assert fast.charge == public.charge and fast.composition == public.composition
        assert fast.is_ordered and fast.density == public.density
        assert fast == public and fast.as_dict() == public.as_dict()
        assert Structure.from_dict(json.loads(json.dumps(fast.as_dict()))) == public
        assert pickle.loads(pickle.dumps(fast)) == public
        assert fast.to(fmt="poscar") == public.to(fmt="poscar")
        np.testing.assert_array_equal(fast.distance_matrix, public.distance_matrix)
        assert [len(n) for n in fast.get_all_neighbors(3.0)] == [len(n) for n in public.get_all_neighbors(3.0)]
        assert fast.get_primitive_structure() == public.get_primitive_structure()
        assert fast.get_reduced_structure() == public.get_reduced_structure()
        assert SpacegroupAnalyzer(fast).get_space_group_symbol() == SpacegroupAnalyzer(public).get_space_group_symbol()
        # Mutations act alike (and leave the later fast-built structures, compared next, untouched).
        for structure in (fast, public):
            structure.make_supercell([2, 1, 1])
            structure.perturb(0.05, seed=1)
            structure.replace(0, "Li")
            structure.append("H", [0.1, 0.2, 0.3])
            structure.translate_sites([1], [0.5, 0.5, 0.5])
        assert fast == public and fast.as_dict() == public.as_dict()


def test_decoding_garbage_returns_none_with_reasons() -> None:
    icr = ICR(elements=["Na", "Cl"], max_sites=4)
    good = icr.encode([rocksalt()]).array[0]
    zeros = np.zeros_like(good)
    with_nan = good.copy()
    with_nan[icr.blocks["coords"][0], 0] = np.nan
    negative = good.copy()
    negative[icr.blocks["lattice"][0], 1] = -3.0
    flat = good.copy()
    flat[icr.blocks["lattice"][0] + 1, :3] = [10.0, 10.0, 170.0]
    structures, reasons = icr.decode_with_reasons(np.stack([good, zeros, with_nan, negative, flat]))
    assert structures[0] is not None and reasons[0] is None
    assert structures[1:] == [None] * 4
    assert [reason_code(r) for r in reasons[1:]] == ["no_sites", "non_finite", "non_positive_length", "impossible_angles"]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1e-3, 1.0, 50.0, 1e6]))
def test_decoding_random_arrays_never_raises(seed: int, scale: float) -> None:
    icr = ICR(elements=["Na", "Cl", "O"], max_sites=6)
    rng = np.random.default_rng(seed)
    arrays = (rng.normal(size=(5, icr.n_rows, icr.n_channels)) * scale).astype(np.float32)
    arrays[0, 3, 1] = np.inf
    structures, reasons = icr.decode_with_reasons(arrays)
    assert len(structures) == len(reasons) == 5
    for structure, reason in zip(structures, reasons):
        assert (structure is None) != (reason is None)
        if structure is not None:
            assert all(0 <= f < 1 for site in structure for f in site.frac_coords)
            assert 1.0 <= min(structure.lattice.abc) and max(structure.lattice.abc) <= 200.0


def test_decoding_continuous_model_like_outputs() -> None:
    crystals = known_crystals()
    icr = ICR(max_sites=20)
    batch = icr.encode(crystals)
    noisy = batch.array.copy()
    rng = np.random.default_rng(3)
    for name in ("elements", "occupancy"):
        start, stop = icr.blocks[name]
        noisy[:, start:stop] = noisy[:, start:stop] * 0.8 + rng.uniform(-0.1, 0.1, noisy[:, start:stop].shape)
    start = icr.blocks["coords"][0]
    noisy[:, start : start + 20, :3] += rng.normal(0, 1e-5, (len(crystals), 20, 3))
    for crystal, decoded in zip(crystals, icr.decode(noisy)):
        assert structures_match(crystal, decoded)


def test_layout_shape_and_serialisation() -> None:
    icr = ICR(max_sites=20, max_elements=4, elements=["Cl", "Na"], fourier=True, n_reciprocal_points=59)
    d = len(DESCRIPTOR_NAMES)
    assert icr.elements == ("Na", "Cl")  # sorted by atomic number
    assert icr.n_channels == 4
    assert icr.n_rows == 2 + 2 + 20 + 20 + d + (1 + 2 * d) * 15
    assert ICR(max_elements=2).n_channels == 3 and ICR(max_elements=6).n_channels == 6
    restored = ICR.from_dict(json.loads(json.dumps(icr.to_dict())))
    crystals = [rocksalt()]
    np.testing.assert_array_equal(restored.encode(crystals).array, icr.encode(crystals).array)
    assert ICR().elements[-1] == "Pu" and len(ICR().elements) == 94
    with pytest.raises(ValueError, match="canonical"):
        ICR(canonical="conventional")


def test_from_config_builds_vocabulary_from_structures() -> None:
    section = {"max_sites": 10, "max_elements": 3, "elements": None, "fourier": False,
               "canonical": "niggli_primitive", "n_reciprocal_points": 59, "occupancy_threshold": 0.5}
    icr = ICR.from_config(section, structures=known_crystals())
    assert icr.elements == ("O", "Na", "Si", "Cl", "Ti", "Cu", "Zn", "Sr", "La")
    assert len(ICR.from_config(section).elements) == 94
    assert ICR.from_config({**section, "elements": ["O", "Ti"]}).elements == ("O", "Ti")


def test_fourier_block_known_values() -> None:
    # CsCl: F(G) = P_Cs + P_Cl exp(-i pi (h + k + l)); |G| = |hkl| / a for a cubic cell.
    a = 4.1
    cscl = Structure(Lattice.cubic(a), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    icr = ICR(elements=["Cl", "Cs"], max_elements=2, fourier=True, n_reciprocal_points=7, canonical="as_given")
    array = icr.encode([cscl]).array[0].astype(np.float64)
    d, per = len(DESCRIPTOR_NAMES), icr.fourier_rows_per_quantity
    start = icr.blocks["fourier"][0]
    quantities = array[start:].reshape(1 + 2 * d, per * icr.n_channels)[:, :7]
    np.testing.assert_allclose(quantities[0], [0] + [1 / a] * 6, rtol=1e-6)
    props = icr.block(array[None], "properties")[0, :, :2]  # columns: Cs, Cl (first appearance)
    real = quantities[1 : 1 + d]
    np.testing.assert_allclose(real[:, 0], props[:, 0] + props[:, 1], rtol=1e-5)
    np.testing.assert_allclose(real[:, 1:], np.repeat((props[:, 0] - props[:, 1])[:, None], 6, 1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(quantities[1 + d :], 0, atol=1e-4)


def _load_benchmark_module():
    spec = importlib.util.spec_from_file_location("bench_encode", REPO / "benchmarks" / "encode.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_batch_encoder_agrees_with_per_structure_reference() -> None:
    bench = _load_benchmark_module()
    crystals = known_crystals()
    icr = ICR(fourier=True, canonical="as_given", max_sites=20)
    batch = icr.encode(crystals, n_jobs=1)
    reference = np.stack([bench.reference_encode(icr, s) for s in crystals])
    np.testing.assert_allclose(batch.array, reference, rtol=1e-5, atol=1e-4)


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.tuples(*[st.floats(2.0, 15.0)] * 3),
    angles=st.tuples(*[st.floats(60.0, 120.0)] * 3),
    n_points=st.sampled_from([1, 7, 27, 59, 100]),
)
def test_batch_reciprocal_points_equal_box_growing_reference(
    lengths: tuple[float, float, float], angles: tuple[float, float, float], n_points: int
) -> None:
    lattice = Lattice.from_parameters(*lengths, *angles)
    assume(lattice.volume > 0.2 * math.prod(lengths))
    bench = _load_benchmark_module()
    # Batched with a cubic cell, so the lattice shares the call with another box size.
    miller, norms = batch_nearest_reciprocal_points(np.stack([lattice.matrix, np.eye(3) * 3.0]), n_points)
    expected_miller, expected_norms = bench.reference_reciprocal_points(lattice, n_points)
    np.testing.assert_array_equal(miller[0], expected_miller)
    np.testing.assert_allclose(norms[0], expected_norms, rtol=1e-12, atol=1e-12)


def test_parallel_parsing_matches_serial() -> None:
    rng = np.random.default_rng(5)
    crystals = []
    prototypes = known_crystals()
    for i in range(150):
        base = prototypes[i % 6].copy()
        base.perturb(0.05, min_distance=0.01, seed=i)
        base.apply_strain(rng.uniform(-0.05, 0.05))
        crystals.append(base)
    icr = ICR(fourier=True)
    serial, parallel = icr.encode(crystals, n_jobs=1), icr.encode(crystals, n_jobs=2)
    np.testing.assert_array_equal(serial.array, parallel.array)
    assert serial.reasons == parallel.reasons
    assert roundtrip_matches(icr, crystals, parallel.array, n_jobs=2).all()


def test_scaler_fit_transform_inverse() -> None:
    icr = ICR(fourier=True)
    array = icr.encode(known_crystals()).array
    train = array[:4]
    scaler = MinMaxScaler().fit(train)
    scaled = scaler.transform(train)
    assert scaled.dtype == np.float32 and scaled.min() >= 0.0 and scaled.max() <= 1.0 + 1e-6
    restored = MinMaxScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    back = restored.inverse_transform(restored.transform(array))
    np.testing.assert_allclose(back, array, rtol=1e-6, atol=1e-6 * np.abs(array).max())
    for crystal, decoded in zip(known_crystals(), icr.decode(back)):
        assert structures_match(crystal, decoded)
    with pytest.raises(RuntimeError, match="not fitted"):
        MinMaxScaler().transform(array)


def _write_table(path: Path, structures: list, ids: list[str]) -> None:
    rows = [
        {"material_id": mid, "structure": s if isinstance(s, str) else json.dumps(s.as_dict())}
        for mid, s in zip(ids, structures)
    ]
    pd.DataFrame(rows).to_parquet(path)


def test_encode_cli_writes_contract_outputs(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    good = []
    prototypes = known_crystals()
    for i in range(40):
        crystal = prototypes[i % 6].copy()
        crystal.apply_strain(rng.uniform(-0.03, 0.03))
        good.append(crystal)
    disordered = Structure(Lattice.cubic(4.0), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    structures = good + [disordered, "{not json"]
    ids = [f"m-{i}" for i in range(len(structures))]
    _write_table(tmp_path / "dataset.parquet", structures, ids)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"seed": 7, "representation": {"fourier": True}, "split": [0.6, 0.2, 0.2]}))
    out = tmp_path / "encoded"
    assert cli_main(["encode", "--dataset", str(tmp_path / "dataset.parquet"), "--config", str(config), "--out", str(out), "--jobs", "1"]) == 0

    icr = ICR.from_dict(json.loads((out / "icr.json").read_text()))
    array = np.load(out / "icr.npy")
    index = pd.read_csv(out / "index.csv")
    summary = json.loads((out / "summary.json").read_text())
    assert array.shape == (42, icr.n_rows, icr.n_channels) and array.dtype == np.float32
    assert index["material_id"].tolist() == ids
    assert index["encoded"].tolist() == [True] * 40 + [False, False]
    assert summary["n_total"] == 42 and summary["n_encoded"] == 40 and summary["n_rejected"] == 2
    assert summary["rejected_by_reason"] == {"disordered": 1, "not_a_structure": 1}
    assert summary["roundtrip_rate"] == 1.0
    rejected = pd.read_csv(out / "rejected.csv")
    assert rejected["material_id"].tolist() == ["m-40", "m-41"]
    assert icr.elements == ("O", "Na", "Si", "Cl", "Ti", "Cu", "Zn", "Sr", "La")
    train = (index["split"] == "train").to_numpy() & index["encoded"].to_numpy()
    expected = MinMaxScaler().fit(array[train]).to_dict()
    assert json.loads((out / "scaler.json").read_text()) == json.loads(json.dumps(expected))
    assert 0 < train.sum() < 40


def test_encode_writes_exactly_its_declared_files_and_names_a_bad_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_table(tmp_path / "dataset.parquet", known_crystals(), [f"m-{i}" for i in range(len(known_crystals()))])
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"split": [0.9, 0.05, 0.05]}))
    out = tmp_path / "encoded"
    assert cli_main(["encode", "--dataset", str(tmp_path / "dataset.parquet"), "--config", str(config),
                     "--out", str(out), "--jobs", "1"]) == 0
    assert sorted(path.name for path in out.iterdir()) == sorted(encoded_files.FILES)
    encoded = encoded_files.read_encoded(out)
    assert encoded.encoded.all() and encoded.index["material_id"].tolist() == [f"m-{i}" for i in range(6)]
    capsys.readouterr()  # the successful run's progress bars

    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"material_id": pd.Series([], dtype=str), "structure": pd.Series([], dtype=str)}).to_parquet(empty)
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes((tmp_path / "dataset.parquet").read_bytes()[:200])
    for dataset in (tmp_path / "absent.parquet", empty, truncated):
        assert cli_main(["encode", "--dataset", str(dataset), "--out", str(tmp_path / "out"), "--jobs", "1"]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("icrdesign encode: ") and str(dataset) in error and "\n" not in error


def test_demo_table_roundtrip(request: pytest.FixtureRequest) -> None:
    """Every encodable crystal of the demo dataset decodes back to itself."""
    try:
        table = request.getfixturevalue("demo_table")
    except pytest.FixtureLookupError:
        pytest.skip("demo_table fixture (tests/conftest.py, dataset stage) not available yet")
    structures = [Structure.from_dict(json.loads(text)) for text in table["structure"]]
    icr = ICR.from_config({"max_sites": 20, "max_elements": 4, "elements": None, "fourier": True,
                           "canonical": "niggli_primitive"}, structures)
    batch = icr.encode(structures)
    assert batch.mask.mean() > 0.9, batch.reasons
    encoded = [s for s, ok in zip(structures, batch.mask) if ok]
    assert roundtrip_matches(icr, encoded, batch.array[batch.mask]).all()
