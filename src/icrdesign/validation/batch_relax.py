"""Batched relaxation with a machine-learned potential: many structures advance together.

Every structure runs the optimiser atomate2's ``ForceFieldRelaxMaker`` runs (ASE's FIRE on a
``FrechetCellFilter`` when the cell relaxes, the same ``fmax`` and step cap), so a structure relaxes
along the same path as it would alone. What changes is the potential's evaluation: at each optimiser
step, the structures still relaxing are evaluated in one batched prediction (CHGNet over a list of
graphs, forces and stress from one backward pass). Up to ``batch_size`` structures relax at once;
when one finishes, the next waiting one takes its place.

A structure that reaches the step cap or its wall-time limit is ``unconverged`` and keeps its last
structure; one the potential cannot evaluate is ``failed`` with the reason, and the others go on.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final, Protocol

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor
from tqdm import tqdm

from icrdesign.artefacts.validation import STATUS_FAILED, STATUS_OK, STATUS_UNCONVERGED

#: What a prediction holds: total energy (eV), forces (eV/Å, n x 3), stress (eV/Å^3, Voigt 6).
Prediction = dict[str, Any]


class BatchPredictor(Protocol):
    """A potential that evaluates a list of structures at once."""

    def predict(self, atoms: Sequence[Atoms]) -> list[Prediction]:
        ...


def voigt_stress(stress: np.ndarray) -> np.ndarray:
    """A stress as ASE's Voigt 6-vector (xx, yy, zz, yz, xz, xy), from a 3x3 tensor or a 6-vector."""
    from ase.stress import full_3x3_to_voigt_6_stress

    return full_3x3_to_voigt_6_stress(stress) if stress.shape == (3, 3) else stress


@dataclass(frozen=True)
class ChgnetPredictor:
    """CHGNet's batched prediction, with its ASE calculator's unit conversions.

    Forces and stress come from one backward pass through the batch's energy, with respect to each
    crystal's fractional coordinates and a strain of its lattice. CHGNet's own ``predict_graph``
    takes two backward passes that keep the graph for training (``create_graph``), twice the cost
    of the energy and its gradient; the values agree to float32 rounding (tested).
    """

    model: Any

    def predict(self, atoms: Sequence[Atoms]) -> list[Prediction]:
        import torch

        graphs = [self.model.graph_converter(AseAtomsAdaptor.get_structure(item)) for item in atoms]
        fractional, strains = [], []
        for graph in graphs:
            lattice = graph.lattice.detach()
            strain = torch.zeros_like(lattice, requires_grad=True)
            graph.lattice = lattice @ (torch.eye(3, dtype=lattice.dtype) + strain)
            graph.atom_frac_coord = graph.atom_frac_coord.detach().requires_grad_(True)
            fractional.append(graph.atom_frac_coord)
            strains.append(strain)
        energy = self.model(graphs, task="e")["e"]
        n_atoms = torch.tensor([len(item) for item in atoms], dtype=energy.dtype)
        total = energy * n_atoms if self.model.is_intensive else energy
        gradients = torch.autograd.grad(total.sum(), [*fractional, *strains])
        predictions = []
        for index, graph in enumerate(graphs):
            lattice = graph.lattice.detach()
            # Cartesian positions are fractional ones times the lattice (rows): dE/dr = dE/df L^-T.
            forces = -gradients[index] @ torch.linalg.inv(lattice.T)
            stress = gradients[len(graphs) + index] / torch.linalg.det(lattice).abs()
            predictions.append({"energy": float(total[index]),
                                "forces": forces.numpy().astype(float),
                                "stress": voigt_stress(stress.numpy().astype(float))})
        return predictions


@dataclass(frozen=True)
class CalculatorPredictor:
    """Any ASE calculator, one structure at a time (potentials without a batched prediction)."""

    calculator: Calculator

    def predict(self, atoms: Sequence[Atoms]) -> list[Prediction]:
        results = []
        for item in atoms:
            probe = item.copy()
            probe.calc = self.calculator
            results.append({"energy": float(probe.get_potential_energy()), "forces": probe.get_forces(),
                            "stress": voigt_stress(probe.get_stress())})
        return results


@lru_cache(maxsize=2)
def predictor_for(force_field: str) -> BatchPredictor:
    """The batched predictor of a configured potential (loaded once per process)."""
    if force_field == "CHGNet":
        from chgnet.model import CHGNet

        return ChgnetPredictor(CHGNet.load(verbose=False))
    from atomate2.forcefields.utils import ase_calculator

    return CalculatorPredictor(ase_calculator(force_field))


class _Evaluated(Calculator):
    """Holds the batch's prediction for one structure, for the optimiser to read.

    The batch loop evaluates every structure before its optimiser asks; a request for any other
    geometry is a bug in the loop, not a reason to evaluate one structure on its own.
    """

    implemented_properties: Final = ["energy", "free_energy", "forces", "stress"]

    def store(self, atoms: Atoms, prediction: Prediction) -> None:
        self.atoms = atoms.copy()
        self.results = {"energy": prediction["energy"], "free_energy": prediction["energy"],
                        "forces": np.asarray(prediction["forces"], dtype=float),
                        "stress": np.asarray(prediction["stress"], dtype=float)}

    def calculate(self, atoms: Atoms | None = None, properties: Any = None, system_changes: Any = all_changes) -> None:
        raise RuntimeError("the batch loop did not evaluate this geometry")


@dataclass
class RelaxOutcome:
    """One structure's relaxation: its last structure and energy, status and history."""

    structure: Structure
    energy: float
    status: str
    reason: str = ""
    steps: int = 0
    wall_s: float = 0.0
    #: Every evaluated frame: energy (eV), forces, stress, cell and fractional positions.
    frames: list[Prediction] = field(default_factory=list, repr=False)


class _FrechetCellFilterOncePerStep(FrechetCellFilter):
    """ASE's FrechetCellFilter, its generalised forces and positions computed once per geometry.

    FIRE asks for the forces twice per step (the convergence check, then the step), each time a
    matrix logarithm and nine Fréchet derivatives of the matrix exponential, and for the positions
    once, another logarithm: together more than the potential's batched prediction on 2 CPU cores.
    The forces are ASE's; the positions are the ones FIRE set, which ASE would recompute as the
    logarithm of the exponential it applied (equal to rounding).
    """

    _forces: np.ndarray | None = None
    _positions: np.ndarray | None = None

    def get_forces(self, **kwargs: Any) -> np.ndarray:
        if self._forces is None:
            self._forces = super().get_forces(**kwargs)
        return self._forces.copy()

    def get_positions(self) -> np.ndarray:
        if self._positions is None:
            self._positions = super().get_positions()
        return self._positions.copy()

    def set_positions(self, new: np.ndarray, **kwargs: Any) -> None:
        self._forces = None
        self._positions = np.array(new, dtype=float)
        super().set_positions(new, **kwargs)

    def forget_forces(self) -> None:
        """A new prediction was stored: the next request recomputes."""
        self._forces = None


@dataclass
class _Relaxing:
    index: int
    atoms: Atoms
    target: Atoms | _FrechetCellFilterOncePerStep
    optimizer: FIRE
    started: float
    frames: list[Prediction] = field(default_factory=list)


def _start(index: int, structure: Structure, relax_cell: bool) -> _Relaxing:
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = _Evaluated()
    # Molecules in a box keep their box: relaxing its cell would collapse it (as in atomate2).
    target = _FrechetCellFilterOncePerStep(atoms) if relax_cell and all(atoms.pbc) else atoms
    optimizer = FIRE(target, logfile=None)
    return _Relaxing(index, atoms, target, optimizer, time.perf_counter())


def _predict_isolating_failures(predictor: BatchPredictor, atoms: list[Atoms]) -> list[Prediction | Exception]:
    """The batch's predictions; when the batch fails, each structure alone, so one bad one fails alone."""
    try:
        return list(predictor.predict(atoms))
    except Exception:  # noqa: BLE001 - find which structure the potential cannot evaluate
        results: list[Prediction | Exception] = []
        for item in atoms:
            try:
                results.append(predictor.predict([item])[0])
            except Exception as error:  # noqa: BLE001 - recorded as the structure's failure
                results.append(error)
        return results


def _finite(prediction: Prediction) -> bool:
    return bool(np.isfinite(prediction["energy"]) and np.all(np.isfinite(prediction["forces"]))
                and np.all(np.isfinite(prediction["stress"])))


def relax_batch(structures: Sequence[Structure], relaxation: Mapping[str, Any],
                predictor: BatchPredictor | None = None, progress: bool = True) -> list[RelaxOutcome]:
    """Relax STRUCTURES with the configured potential, ``batch_size`` at a time in lockstep.

    Args:
        structures: the structures, in the order of the outcomes.
        relaxation: the config's ``relaxation`` section (force_field, fmax, steps, relax_cell,
            batch_size, candidate_timeout_s).
        predictor: the potential (default: :func:`predictor_for` the configured force field).
        progress: show a tqdm bar over finished structures.

    Returns:
        One :class:`RelaxOutcome` per structure.
    """
    predictor = predictor or predictor_for(relaxation["force_field"])
    fmax, steps = float(relaxation["fmax"]), int(relaxation["steps"])
    batch_size, timeout = int(relaxation["batch_size"]), float(relaxation["candidate_timeout_s"])
    relax_cell = bool(relaxation["relax_cell"])
    outcomes: list[RelaxOutcome | None] = [None] * len(structures)
    waiting, active = deque(range(len(structures))), []
    bar = tqdm(total=len(structures), desc=f"{relaxation['force_field']} relaxation", unit="structure",
               disable=not progress)

    def finish(item: _Relaxing, status: str, reason: str = "") -> None:
        last = AseAtomsAdaptor.get_structure(item.atoms)
        energy = item.frames[-1]["energy"] if item.frames else float("nan")
        outcomes[item.index] = RelaxOutcome(last, float(energy), status, reason, item.optimizer.nsteps,
                                            time.perf_counter() - item.started, item.frames)
        bar.update()

    while waiting or active:
        while waiting and len(active) < batch_size:
            index = waiting.popleft()
            active.append(_start(index, structures[index], relax_cell))
        predictions = _predict_isolating_failures(predictor, [item.atoms for item in active])
        still = []
        for item, prediction in zip(active, predictions, strict=True):
            if isinstance(prediction, Exception):
                finish(item, STATUS_FAILED, f"{type(prediction).__name__}: {prediction}"[:500])
                continue
            if not _finite(prediction):
                item.frames.append(prediction)
                finish(item, STATUS_FAILED, "the potential predicted a non-finite energy, force or stress")
                continue
            item.atoms.calc.store(item.atoms, prediction)
            if isinstance(item.target, _FrechetCellFilterOncePerStep):
                item.target.forget_forces()
            item.frames.append({**prediction, "cell": item.atoms.cell.array.copy(),
                                "positions": item.atoms.get_scaled_positions(wrap=False)})
            item.optimizer.fmax = fmax
            if item.optimizer.converged():
                finish(item, STATUS_OK)
            elif item.optimizer.nsteps >= steps:
                finish(item, STATUS_UNCONVERGED, f"not converged to fmax {fmax} eV/Å in {steps} steps")
            elif time.perf_counter() - item.started > timeout:
                finish(item, STATUS_UNCONVERGED,
                       f"not converged to fmax {fmax} eV/Å within {timeout:g} s ({item.optimizer.nsteps} steps)")
            else:
                item.optimizer.step()
                item.optimizer.nsteps += 1
                still.append(item)
        active = still
    bar.close()
    return [outcome for outcome in outcomes if outcome is not None]
