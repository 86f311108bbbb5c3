"""Hand-made workflow outputs for the report tests (no other stage is run)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pymatgen.core import Lattice, Structure

from icrdesign.artefacts.candidates import CANDIDATES_FILE, write_candidates
from icrdesign.artefacts.design import METRICS_FILE, write_metrics
from icrdesign.artefacts.model import LATENT_FILE, SPLIT_FILE, LatentMeans, write_latent, write_split
from icrdesign.cases import BASELINE_STRATEGIES, case_windows, evaluate

CASES = {
    "Ef_-0.5": {"n_candidates": 4, "constraints": {"formation_energy_per_atom": {"target": -0.5, "tolerance": 0.1}}},
    "Ef_-0.3": {"n_candidates": 4, "constraints": {"formation_energy_per_atom": {"target": -0.3, "tolerance": 0.1}}},
    "Eg_1.5": {
        "n_candidates": 4,
        "constraints": {"band_gap": {"target": 1.5, "tolerance": 0.25}, "formation_energy_per_atom": {"max": -1.5}},
    },
}


def rocksalt(a: str = "Na", b: str = "Cl", lattice: float = 5.64) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])


def zincblende(a: str = "Zn", b: str = "S", lattice: float = 5.41) -> Structure:
    return Structure.from_spacegroup("F-43m", Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.25, 0.25, 0.25]])


def cscl(a: str = "Cs", b: str = "Cl", lattice: float = 4.12) -> Structure:
    return Structure(Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])


def perovskite(a: str = "Sr", b: str = "Ti", x: str = "O", lattice: float = 3.9) -> Structure:
    return Structure(Lattice.cubic(lattice), [a, b, x, x, x],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def fluorite(a: str = "Ca", b: str = "F", lattice: float = 5.46) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.25, 0.25, 0.25]])


def nickeline(a: str = "Ni", b: str = "As", a_len: float = 3.6, c_len: float = 5.0) -> Structure:
    """NiAs type: absent from TRAINING, so structurally novel."""
    return Structure.from_spacegroup("P6_3/mmc", Lattice.hexagonal(a_len, c_len), [a, b], [[0, 0, 0], [1 / 3, 2 / 3, 0.25]])


TRAINING = [  # material_id, structure, E_f (eV/atom), E_g (eV)
    ("t-1", rocksalt("Na", "Cl"), -2.1, 5.0),
    ("t-2", rocksalt("Mg", "O", 4.21), -3.0, 4.5),
    ("t-3", zincblende("Zn", "S"), -1.0, 2.1),
    ("t-4", zincblende("Ga", "As", 5.65), -0.45, 1.4),
    ("t-5", cscl(), -2.2, 5.1),
    ("t-6", perovskite(), -3.4, 1.6),
    ("t-7", fluorite(), -4.0, 7.0),
    ("t-8", cscl("Cu", "Zn", 2.95), -0.1, 0.0),
    ("t-9", rocksalt("Ti", "C", 4.33), -0.9, 0.0),
    ("t-10", zincblende("Al", "P", 5.46), -0.55, 1.6),
]


def write_dataset(results: Path) -> pd.DataFrame:
    rows = []
    for material_id, structure, e_f, e_g in TRAINING:
        rows.append({
            "material_id": material_id,
            "formula": structure.composition.reduced_formula,
            "structure": json.dumps(structure.as_dict()),
            "nsites": len(structure.get_primitive_structure()),
            "nelements": len(structure.composition.elements),
            "spacegroup": structure.get_space_group_info()[0],
            "formation_energy_per_atom": e_f,
            "band_gap": e_g,
            "energy_above_hull": 0.0,
            "source": "demo",
            "label_source": "hand-made",
        })
    frame = pd.DataFrame(rows)
    (results / "data").mkdir(parents=True, exist_ok=True)
    frame.to_parquet(results / "data" / "dataset.parquet", index=False)
    return frame


CANDIDATES = {  # case -> rows: (id suffix, strategy, structure, valid, unique, novel, surrogate E_f, surrogate E_g)
    "Ef_-0.5": [
        ("local_perturbation-00001", "local_perturbation", rocksalt("Li", "F", 4.03), True, True, True, -0.48, 3.0),
        ("local_perturbation-00002", "local_perturbation", perovskite("Ba", "Zr", "O", 4.19), True, True, True, -0.7, 2.0),
        ("gradient_ascent-00001", "gradient_ascent", nickeline("Fe", "S", 3.44, 5.88), True, True, True, -0.52, 0.0),
        ("gradient_ascent-00002", "gradient_ascent", cscl("Ag", "Mg", 3.3), True, False, True, -0.5, 0.0),
        ("random-00001", "random", zincblende("In", "P", 5.87), True, True, True, -0.2, 1.3),
        ("random-00002", "random", rocksalt("K", "Br", 6.6), True, True, True, -0.45, 4.0),
        ("random-00003", "random", cscl("Tl", "Br", 3.98), False, False, False, -1.0, 1.0),
    ],
    "Eg_1.5": [
        ("local_perturbation-00001", "local_perturbation", zincblende("Cd", "Te", 6.48), True, True, True, -1.6, 1.45),
        ("local_perturbation-00002", "local_perturbation", perovskite("Ca", "Ti", "O", 3.84), True, True, True, -3.5, 3.0),
        ("random-00001", "random", rocksalt("Ca", "O", 4.81), True, True, True, -3.2, 3.6),
    ],
}


def write_design(results: Path) -> pd.DataFrame:
    frames = []
    for case, rows in CANDIDATES.items():
        case_dir = results / "design" / case
        (case_dir / "cifs").mkdir(parents=True, exist_ok=True)
        table = []
        for suffix, strategy, structure, valid, unique, novel, e_f, e_g in rows:
            candidate_id = f"{case}-{suffix}"
            cif = ""
            if valid:
                cif = f"cifs/{candidate_id}.cif"
                structure.to(filename=str(case_dir / cif))
            windows = case_windows(CASES[case]["constraints"])
            surrogate_success = bool(novel and evaluate(pd.DataFrame(
                {"formation_energy_per_atom": [e_f], "band_gap": [e_g]}), windows).fillna(False).iloc[0])
            table.append({
                "id": candidate_id, "case": case, "strategy": strategy, "baseline": strategy in BASELINE_STRATEGIES,
                "seed": "t-1", "sigma": 0.1,
                "formula": structure.composition.reduced_formula, "spacegroup": structure.get_space_group_info()[0],
                "nsites": len(structure), "vae_formation_energy_per_atom": e_f, "vae_band_gap": e_g,
                "surrogate_formation_energy_per_atom": e_f, "surrogate_band_gap": e_g,
                "valid_structure": valid, "valid_composition": valid, "valid": valid, "unique": unique,
                "novel": novel, "surrogate_success": surrogate_success, "cif": cif,
            })
        frame = pd.DataFrame(table)
        write_candidates(case_dir / CANDIDATES_FILE, frame)
        strategies = {}
        for strategy in sorted(frame["strategy"].unique()):
            part = frame[frame["strategy"] == strategy]
            strategies[strategy] = {
                "generated": len(part) + 5,  # decoded rows that never became candidates
                "valid": int(part["valid"].sum()),
                "unique": int((part["valid"] & part["unique"]).sum()),
                "novel": int((part["valid"] & part["unique"] & part["novel"]).sum()),
                "surrogate_success": int(part["surrogate_success"].sum()),
                "surrogate_success_rate": float(part["surrogate_success"].sum() / max(1, part["novel"].sum())),
            }
        write_metrics(case_dir / METRICS_FILE, {"strategies": strategies, "lift_over_random": None,
                                                "training_base_rate": 0.1})
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


VALIDATION = [  # case, candidate suffix, tier, E_f, E_g, status
    ("Ef_-0.5", "local_perturbation-00001", "mlip", -0.45, None, "ok"),
    ("Ef_-0.5", "local_perturbation-00002", "mlip", -0.62, None, "ok"),
    ("Ef_-0.5", "gradient_ascent-00001", "mlip", -0.55, None, "ok"),
    ("Ef_-0.5", "local_perturbation-00001", "dft", -0.41, 5.1, "ok"),
    ("Ef_-0.5", "gradient_ascent-00001", "dft", None, None, "failed"),
    ("Eg_1.5", "local_perturbation-00001", "mlip", -1.7, None, "ok"),
    ("Eg_1.5", "local_perturbation-00002", "mlip", -3.4, None, "ok"),
    ("Eg_1.5", "local_perturbation-00001", "dft", -1.55, 1.6, "ok"),
]


def write_validation(results: Path) -> pd.DataFrame:
    rows = [{
        "case": case, "candidate_id": f"{case}-{suffix}", "formula": "X", "nsites": 2, "tier": tier,
        "engine": {"mlip": "CHGNet", "dft": "gpaw"}[tier], "energy_per_atom": -3.0,
        "formation_energy_per_atom": e_f, "band_gap": e_g, "status": status,
        "reason": "" if status == "ok" else "SCF did not converge", "corrections": 0, "wall_s": 1.0,
    } for case, suffix, tier, e_f, e_g, status in VALIDATION]
    frame = pd.DataFrame(rows)
    (results / "validation").mkdir(parents=True, exist_ok=True)
    frame.to_csv(results / "validation" / "validation.csv", index=False)
    return frame


def write_model(results: Path, n_held_out: int = 50, latent_dim: int = 8) -> None:
    """latent.npz: TRAINING as the training split, then ``n_held_out`` val/test crystals of random labels."""
    rng = np.random.default_rng(0)
    n = len(TRAINING) + n_held_out
    z = rng.normal(size=(n, latent_dim)).astype(np.float32)
    labels = {
        "formation_energy_per_atom": np.concatenate([[e_f for _, _, e_f, _ in TRAINING], z[len(TRAINING):, 0] - 1.0]),
        "band_gap": np.concatenate([[e_g for _, _, _, e_g in TRAINING], np.abs(z[len(TRAINING):, 1])]),
    }
    material_ids = np.array([material_id for material_id, *_ in TRAINING] + [f"m-{i}" for i in range(n_held_out)])
    split = np.array(["train"] * len(TRAINING) + ["val", "test"] * (n_held_out // 2) + ["test"] * (n_held_out % 2))
    (results / "model").mkdir(parents=True, exist_ok=True)
    write_latent(results / "model" / LATENT_FILE, LatentMeans(z, material_ids, split, labels))
    write_split(results / "model" / SPLIT_FILE, material_ids, split)
    (results / "model" / "metrics.json").write_text(json.dumps({"match_rate": 0.5, "n_test": 6}))


def write_config(path: Path, cases: list[str] | None = None, **report: object) -> Path:
    settings = {"dpi": 60, "gallery_max": 6, **report}
    chosen = {name: spec for name, spec in CASES.items() if cases is None or name in cases}
    path.write_text(yaml.safe_dump({"sampling": {"cases": chosen}, "report": settings}))
    return path


def write_fingerprints(results: Path) -> None:
    """What the workflow's fingerprint jobs leave, through the real command: the training split's plan
    and its one shard, and each design case's candidates."""
    from icrdesign.artefacts.fingerprints import shard_file
    from icrdesign.cli import main

    folder = results / "fingerprints"
    dataset = str(results / "data" / "dataset.parquet")
    assert main(["fingerprints", "--dataset", dataset, "--plan", str(folder / "train" / "plan.json"),
                 "--cache", str(folder / "cache")]) == 0
    assert main(["fingerprints", "--dataset", dataset, "--shard", "0", "--jobs", "1",
                 "--out", str(shard_file(folder / "train", 0))]) == 0
    for case in CANDIDATES:
        assert main(["fingerprints", "--structures", str(results / "design" / case / CANDIDATES_FILE), "--jobs", "1",
                     "--out", str(folder / "candidates" / f"{case}.npz")]) == 0


def write_funnels(results: Path) -> None:
    """Each case's post-relaxation funnel, with no relaxed candidate (the report shows no S.U.N. block)."""
    from icrdesign.validation.funnel import FUNNEL_COLUMNS, RELAXED_FOLDER, funnel_summary, write_funnel

    for case in CASES:
        folder = results / "validation" / case
        (folder / RELAXED_FOLDER).mkdir(parents=True, exist_ok=True)
        empty = pd.DataFrame({column: pd.Series(dtype=object) for column in FUNNEL_COLUMNS})
        write_funnel(folder, empty, {"case": case, **funnel_summary(empty, "test hull")})


def make_results(root: Path) -> Path:
    """A complete hand-made results/ folder under ``root``; returns its path."""
    results = root / "results"
    write_dataset(results)
    write_design(results)
    write_validation(results)
    write_model(results)
    write_fingerprints(results)
    write_funnels(results)
    return results
