"""GPAW in atomate2 and custodian.

``GpawRelaxMaker`` subclasses atomate2's ``AseRelaxMaker``: its calculator settings are plain dicts
(so makers and flows serialise), each calculation runs in a child process (a fork when serial) as a
custodian ``GpawJob`` watched by ``GpawErrorHandler`` (SCF not converged -> more iterations and slower
mixing, then wider smearing, then a longer mixing history; every correction is recorded), and the
result is an atomate2 ``AseStructureTaskDoc`` whose ``entry.data`` carries the band gap and the corrections.
A static is the same maker with one step and a fixed cell (``GpawStaticMaker``);
``GpawRelaxStaticMaker`` chains relax -> symmetrise -> static into one Flow.

Calculations are set up as the Materials Project's (:mod:`icrdesign.validation.mp_scale`): MP's initial
moments, and MP's U values on the d states of oxides and fluorides (GPAW's ``setups={'Ni': ':d,6.2'}``,
Dudarev's U_eff); the task document's ``entry.parameters`` say which (``run_type``, ``is_hubbard``,
``hubbards``), as a VASP task document's do, so MP2020 corrects both alike. A static of a non-metal takes
its band gap as MP does, from non-self-consistent calculations on its density: a denser uniform grid
and MP's high-symmetry line path; the smallest gap wins (a grid only ever misses band edges) and
``entry.data['band_gap_kset']`` says which k-set gave it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from atomate2.ase.jobs import AseRelaxMaker
from atomate2.ase.schemas import AseResult, AseStructureTaskDoc, AseTaskDoc
from custodian.custodian import Custodian, CustodianError, ErrorHandler, Job as CustodianJob
from jobflow import Flow, Job, Maker, OutputReference, job
from monty.serialization import loadfn
from pymatgen.core import Structure
from pymatgen.entries.computed_entries import ComputedEntry

from icrdesign.io import write_json
from icrdesign.tolerances import RELAXATION_UPHILL_EV_PER_ATOM, RELAXED_SYMPREC, SYMPREC
from icrdesign.validation.gpaw_worker import INPUT_FILE, KSET_LINE, KSET_UNIFORM, RESULT_FILE, STATUS_FILE, grid_kpts
from icrdesign.validation.mp_scale import (RUN_TYPE_GGA, RUN_TYPE_GGA_U, hubbard_orbital, initial_magmoms,
                                           mp_hubbard_table, mp_hubbards, mp_magmoms)

CORRECTIONS_FILE = "gpaw_corrections.json"
FAILURE_FILE = "calculation_failure.json"
WORKER_MODULE = "icrdesign.validation.gpaw_worker"
#: The calculator name the task documents record (what a GPAW calculator's ``name`` says).
GPAW_CALCULATOR_NAME = "gpaw"

#: The high-symmetry path convention of MP's band structures.
KPATH_TYPE: Final[str] = "setyawan_curtarolo"
# How far a cell may be from the standard primitive cell of its space group (relative lengths,
# degrees) for the path to be mapped onto it: a symmetrised relaxed cell is within both.
KPATH_LENGTH_TOL: Final[float] = 0.05
KPATH_ANGLE_TOL: Final[float] = 2.0
#: GPAW's DFT+U ``scale`` flag: 0 counts d occupations inside the PAW sphere as VASP does (see hubbard_setups).
HUBBARD_SCALE: Final[int] = 0
# GPAW's own default density mixer for periodic systems.
DEFAULT_MIXER: dict[str, float] = {"beta": 0.05, "nmaxold": 5, "weight": 50.0}


class CalculationFailed(RuntimeError):
    """A DFT calculation failed for good; ``reason`` is short and machine-readable."""

    def __init__(self, reason: str, detail: str = "", corrections: list[dict[str, Any]] | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.corrections = corrections or []


def calculator_settings(gpaw_section: dict[str, Any]) -> dict[str, Any]:
    """Plain-dict GPAW settings from the config's ``dft.gpaw`` section."""
    return {
        "xc": gpaw_section["xc"],
        "ecut": float(gpaw_section["ecut"]),
        "kpoint_density": float(gpaw_section["kpoint_density"]),
        "smearing_width": float(gpaw_section["smearing_width"]),
        "max_scf_iterations": int(gpaw_section["max_scf_iterations"]),
        "mixer": dict(DEFAULT_MIXER),
    }


def kpoint_grid(structure: Structure, density: float, molecule: bool = False) -> list[int]:
    """Gamma-centred grid with ``density`` points per reciprocal angstrom (Gamma only for molecules)."""
    if molecule:
        return [1, 1, 1]
    from ase.calculators.calculator import kptdensity2monkhorstpack
    from pymatgen.io.ase import AseAtomsAdaptor

    return [int(n) for n in kptdensity2monkhorstpack(AseAtomsAdaptor.get_atoms(structure), density, even=False)]


def line_kpoints(structure: Structure, line_density: float) -> list[list[float]] | None:
    """MP's high-symmetry path (Setyawan-Curtarolo, ``line_density`` points per reciprocal angstrom) in
    fractional coordinates of ``structure``'s reciprocal lattice, or None where the cell has none.

    The path is defined on the standard primitive cell, which may be rotated against ``structure``:
    the k-points are turned with the rotation that aligns the two lattices (a supercell samples the
    same k-points, folded).
    """
    from pymatgen.symmetry.bandstructure import HighSymmKpath

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "input structure does not match the standard primitive": mapped below
        kpath = HighSymmKpath(structure, path_type=KPATH_TYPE)
    if kpath.kpath is None:
        return None
    mapping = structure.get_primitive_structure().lattice.find_mapping(kpath.prim.lattice, ltol=KPATH_LENGTH_TOL,
                                                                        atol=KPATH_ANGLE_TOL)
    if mapping is None:
        return None
    _, rotation, _ = mapping
    cartesian, _ = kpath.get_kpoints(line_density=line_density, coords_are_cartesian=True)
    fractional = structure.lattice.reciprocal_lattice.get_fractional_coords(np.asarray(cartesian) @ rotation.T)
    return np.round(fractional, 10).tolist()


def hubbard_setups(structure: Structure, hubbards: dict[str, float]) -> dict[str, str]:
    """GPAW ``setups`` putting each U (eV) on MP's orbital: {'Ni': ':d,6.2,0'} (GPAW's DFT+U is Dudarev's).

    The trailing 0 counts the d occupations inside the PAW sphere, unnormalised, as VASP does; GPAW's
    default renormalises them to the whole atomic orbital, which lowers the U energy of NiO by 1.29 eV
    per Ni (400 eV, FM, a = 4.177 A) and puts NiO 0.44 eV/atom below experiment after MP2020, whose
    GGA/GGA+U mixing correction is fitted to VASP's U energies.
    """
    return {symbol: f":{hubbard_orbital(structure.composition, symbol)},{u:g},{HUBBARD_SCALE}"
            for symbol, u in sorted(hubbards.items())}


def worker_command(mpi_procs: int) -> list[str]:
    """Command line of the GPAW child process; raises CalculationFailed when a binary is missing."""
    if mpi_procs <= 1:
        return [sys.executable, "-m", WORKER_MODULE, "."]
    mpirun = shutil.which("mpirun")
    gpaw_exe = Path(sys.executable).with_name("gpaw")
    if mpirun is None or not gpaw_exe.exists():
        raise CalculationFailed("missing_binary", f"mpirun={mpirun}, gpaw={gpaw_exe if gpaw_exe.exists() else None}")
    return [mpirun, "-np", str(mpi_procs), str(gpaw_exe), "python", "-m", WORKER_MODULE, "."]


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _run_forked_worker(directory: Path, output_file: str) -> None:
    """Body of a forked serial worker: output to ``output_file``, single-threaded BLAS, then run."""
    from threadpoolctl import threadpool_limits

    from icrdesign.validation import gpaw_worker

    with open(directory / output_file, "a") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
    os.chdir(directory)
    with threadpool_limits(limits=1):
        status = gpaw_worker.run(directory)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if status["status"] == "ok" else 1)  # skip the parent's atexit handlers and buffers


class GpawJob(CustodianJob):
    """One GPAW calculation in a child process, with single-threaded BLAS (threaded OpenBLAS is slower).

    Serial runs fork this process, so the child starts with GPAW, ASE, pymatgen and atomate2
    already imported (a fresh interpreter spends seconds importing them, per calculation). A plain
    interpreter imports GPAW with its serial backend, so no MPI state exists to break in a fork;
    MPI runs start ``mpirun -np N gpaw python`` as a separate process.
    """

    def __init__(self, mpi_procs: int = 1, output_file: str = "gpaw_stdout.txt") -> None:
        self.mpi_procs = mpi_procs
        self.output_file = output_file

    def setup(self, directory: str = "./") -> None:
        (Path(directory) / RESULT_FILE).unlink(missing_ok=True)

    def run(self, directory: str = "./") -> subprocess.Popen | None:
        # A status file from an earlier attempt must never describe this one.
        (Path(directory) / STATUS_FILE).unlink(missing_ok=True)
        if self.mpi_procs <= 1 and "fork" in multiprocessing.get_all_start_methods():
            self._run_forked(Path(directory).resolve())
            return None
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        if self.mpi_procs > 1 and os.geteuid() == 0:
            env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        with open(Path(directory) / self.output_file, "a") as out:
            return subprocess.Popen(worker_command(self.mpi_procs), cwd=directory, stdout=out,
                                    stderr=subprocess.STDOUT, env=env)

    def _run_forked(self, directory: Path) -> None:
        """Run the worker in a fork and wait; a child that dies without a status is recorded as a crash
        (custodian does not wait on or inspect what is not a Popen, so the status file says it all)."""
        import atomate2.ase.utils  # noqa: F401 - imported once here, inherited by every fork
        import gpaw  # noqa: F401
        import pymatgen.io.ase  # noqa: F401

        sys.stdout.flush()
        sys.stderr.flush()
        child = multiprocessing.get_context("fork").Process(target=_run_forked_worker,
                                                            args=(directory, self.output_file))
        child.start()
        child.join()
        if child.exitcode != 0 and not (directory / STATUS_FILE).exists():
            write_json(directory / STATUS_FILE, {"status": "error", "error": "crashed",
                                                 "detail": f"GPAW worker died with exit code {child.exitcode}"})

    def postprocess(self, directory: str = "./") -> None:
        """Nothing to clean up: the worker writes its result atomically enough (one small JSON)."""


class GpawErrorHandler(ErrorHandler):
    """Reads the worker's status; corrects an unconverged SCF along a fixed ladder, each step recorded.

    Walltime, crashes and an exhausted ladder are not correctable (custodian then raises
    ``NonRecoverableError``).
    """

    is_monitor = False
    raises_runtime_error = True

    def check(self, directory: str = "./") -> bool:
        status = _read_json(Path(directory) / STATUS_FILE)
        return bool(status) and status["status"] == "error"

    def correct(self, directory: str = "./") -> dict[str, Any]:
        directory_path = Path(directory)
        status = _read_json(directory_path / STATUS_FILE)
        if status["error"] != "scf_not_converged":
            return {"errors": [f"{status['error']}: {status.get('detail', '')}"], "actions": None}
        spec = _read_json(directory_path / INPUT_FILE)
        settings = spec["calculator"]
        step = settings.get("scf_corrections", 0)
        if step == 0:
            changes = {"max_scf_iterations": 2 * settings["max_scf_iterations"],
                       "mixer": {**settings["mixer"], "beta": settings["mixer"]["beta"] / 2}}
        elif step == 1:
            changes = {"smearing_width": 2 * settings["smearing_width"]}
        elif step == 2:
            changes = {"max_scf_iterations": 2 * settings["max_scf_iterations"],
                       "mixer": {**settings["mixer"], "nmaxold": 8, "weight": 100.0}}
        else:
            return {"errors": ["scf_not_converged: correction ladder exhausted"], "actions": None}
        settings.update(changes, scf_corrections=step + 1)
        write_json(directory_path / INPUT_FILE, spec)
        record = {"error": "scf_not_converged", "changes": changes}
        write_json(directory_path / CORRECTIONS_FILE, (_read_json(directory_path / CORRECTIONS_FILE) or []) + [record])
        return {"errors": ["scf_not_converged"], "actions": [{"file": INPUT_FILE, "action": {"_set": changes}}]}


def run_gpaw_custodian(structure: Structure, spec: dict[str, Any], directory: Path, max_corrections: int,
                       mpi_procs: int) -> tuple[AseResult, dict[str, Any]]:
    """Run one GPAW calculation under custodian in DIRECTORY.

    Returns atomate2's result and what GPAW adds to it (band_gap, scf_iterations, calc_seconds,
    corrections). Raises ``CalculationFailed`` (and writes DIRECTORY/calculation_failure.json) on any failure.
    """
    write_json(directory / INPUT_FILE, {"structure": structure.as_dict(), **spec})
    # custodian stops once max_errors errors were seen, so N corrected reruns need N + 1.
    custodian = Custodian([GpawErrorHandler()], [GpawJob(mpi_procs)], max_errors=max_corrections + 1,
                          directory=str(directory), terminate_on_nonzero_returncode=True)
    try:
        custodian.run()
    except (CustodianError, CalculationFailed, OSError) as error:
        status = _read_json(directory / STATUS_FILE) or {}
        corrections = _read_json(directory / CORRECTIONS_FILE) or []
        if isinstance(error, CalculationFailed):
            failure = error
        elif status.get("status") == "error":
            failure = CalculationFailed(status["error"], status.get("detail", ""), corrections)
        else:
            failure = CalculationFailed("crashed", f"{type(error).__name__}: {error}", corrections)
        failure.corrections = corrections
        write_json(directory / FAILURE_FILE, {"reason": failure.reason, "detail": failure.detail,
                                              "corrections": corrections})
        raise failure from error
    result = loadfn(directory / RESULT_FILE)
    data = {key: result[key] for key in ("band_gap", "band_gap_kset", "band_gaps", "scf_iterations", "calc_seconds")}
    return result["ase_result"], {**data, "corrections": _read_json(directory / CORRECTIONS_FILE) or []}


def uphill(result: AseResult, nsites: int) -> str | None:
    """Why a relaxation is refused, or None: its last energy lies more than
    ``RELAXATION_UPHILL_EV_PER_ATOM`` above its first. GPAW's analytic stress can disagree with its
    energy (ScF3 at 400 eV: 42 GPa; the cell shrank by 9% while the energy rose by 2.7 eV), and such a
    cell must not pass for relaxed."""
    energies = [float(frame["energy"]) for frame in result.trajectory.frame_properties]
    if len(energies) < 2 or (energies[-1] - energies[0]) / nsites <= RELAXATION_UPHILL_EV_PER_ATOM:
        return None
    return (f"energy rose from {energies[0]:.4f} to {energies[-1]:.4f} eV over {len(energies)} steps "
            f"(the stress disagrees with the energy)")


@dataclass
class GpawRelaxMaker(AseRelaxMaker):
    """Relax positions and cell with GPAW (plane waves, PAW) at a k-grid fixed from the input cell.

    ``calculator_kwargs``: the plain dict of ``calculator_settings`` (+ ``molecule: True`` for a
    molecule in a box, Gamma point only). The calculation runs in a child process under custodian
    (``run_gpaw_custodian``), never with an in-process ASE calculator.
    """

    name: str = "GPAW relax"
    steps: int = 60
    relax_kwargs: dict = field(default_factory=lambda: {"fmax": 0.05})
    max_corrections: int = 3
    mpi_procs: int = 1
    walltime_s: float = 3600.0
    #: MP's U values (``mp_scale.mp_hubbards``) on the d states of oxides and fluorides.
    mp_hubbard_u: bool = True
    #: Band gap from a non-self-consistent uniform grid of this density (k-points per reciprocal
    #: angstrom, at least the calculation's own) and from MP's line path with this many points per
    #: reciprocal angstrom; None: not computed. Statics only: a relaxation's gap is not reported.
    band_gap_kpoint_density: float | None = None
    band_gap_line_density: float | None = None

    def hubbards(self, structure: Structure) -> dict[str, float]:
        """The U values (eV) this maker applies to ``structure``."""
        return mp_hubbards(structure.composition) if self.mp_hubbard_u else {}

    def scale_settings(self) -> dict[str, Any]:
        """The settings besides ``calculator_kwargs`` that change an energy (they key a reference cache)."""
        return {"initial_magmoms": mp_magmoms(),
                "hubbard_u": {**mp_hubbard_table(), "scale": HUBBARD_SCALE} if self.mp_hubbard_u else None}

    def band_gap_kpoints(self, structure: Structure, density: float, molecule: bool) -> dict[str, Any]:
        """The non-self-consistent k-sets of the band gap: {'uniform': grid, 'line': k-points} (those set)."""
        if molecule:
            return {}
        ksets: dict[str, Any] = {}
        if self.band_gap_kpoint_density is not None:
            ksets[KSET_UNIFORM] = grid_kpts(kpoint_grid(structure, max(float(self.band_gap_kpoint_density), density)))
        if self.band_gap_line_density is not None:
            path = line_kpoints(structure, float(self.band_gap_line_density))
            if path is not None:
                ksets[KSET_LINE] = path
        return ksets

    def calculation_spec(self, structure: Structure) -> dict[str, Any]:
        """The worker's input besides the structure: calculator (with MP's U values as GPAW setups),
        initial moments, relaxation settings and the band gap's k-sets."""
        settings = dict(self.calculator_kwargs)
        molecule = bool(settings.pop("molecule", False))
        hubbards = self.hubbards(structure)
        setups = hubbard_setups(structure, hubbards)
        return {
            "calculator": {**settings, "kpts": kpoint_grid(structure, settings["kpoint_density"], molecule),
                           **({"setups": setups} if setups else {})},
            "magmoms": initial_magmoms(structure),
            # GPAW's stress does not follow its DFT+U energy (NiO, 300 eV, U(Ni) = 6.2: 3*V*sigma = 49.6 eV
            # against a finite-difference dE/d(strain) of -2.2 eV; a cell relaxation raised the energy at
            # every step): with a U the cell keeps its shape and volume and only the positions relax.
            "relax_cell": self.relax_cell and not molecule and not hubbards,
            "steps": self.steps,
            "fmax": float(self.relax_kwargs.get("fmax", 0.05)),
            "walltime_s": self.walltime_s,
            "band_gap_kpts": self.band_gap_kpoints(structure, float(settings["kpoint_density"]), molecule),
        }

    @job(data=["trajectory"])
    def make(self, structure: Structure, prev_dir: str | Path | None = None) -> AseStructureTaskDoc:
        """Run the calculation in the job's folder; the task document's ``entry.data`` holds band_gap,
        band_gap_kset, band_gaps (per k-set), scf_iterations, calc_seconds (time inside GPAW) and
        corrections; ``entry.parameters`` the settings, ``run_type``, ``is_hubbard`` and ``hubbards``.
        ``prev_dir`` is unused (atomate2's maker signature)."""
        hubbards = self.hubbards(structure)
        spec = self.calculation_spec(structure)
        result, data = run_gpaw_custodian(structure, spec, Path.cwd(), self.max_corrections, self.mpi_procs)
        if (climb := uphill(result, len(structure))) is not None:
            write_json(Path.cwd() / FAILURE_FILE, {"reason": "relaxation_uphill", "detail": climb,
                                                   "corrections": data["corrections"]})
            raise CalculationFailed("relaxation_uphill", climb, data["corrections"])
        task_doc = AseTaskDoc.to_mol_or_struct_metadata_doc(
            GPAW_CALCULATOR_NAME, result, self.steps, relax_kwargs=self.relax_kwargs, relax_cell=spec["relax_cell"],
            ionic_step_data=self.ionic_step_data, store_trajectory=self.store_trajectory, tags=self.tags)
        task_doc.entry = ComputedEntry(task_doc.structure.composition, task_doc.output.energy,
                                       parameters={"engine": "gpaw", **self.calculator_kwargs,
                                                   "run_type": RUN_TYPE_GGA_U if hubbards else RUN_TYPE_GGA,
                                                   "is_hubbard": bool(hubbards), "hubbards": hubbards},
                                       data=data)
        return task_doc


@dataclass
class GpawStaticMaker(GpawRelaxMaker):
    """Single point (one step, fixed cell) with GPAW; its band gap is the reported one, taken as MP takes
    it: non-self-consistently on twice the default grid density and along MP's line path (its
    ``line_density`` of 20 per reciprocal angstrom)."""

    name: str = "GPAW static"
    steps: int = 1
    relax_cell: bool = False
    band_gap_kpoint_density: float | None = 5.0
    band_gap_line_density: float | None = 20.0


@job
def symmetrize_structure(structure: Structure, symprec: float) -> Structure:
    """Snap a structure onto its space group found within ``symprec`` (cell and positions)."""
    from ase.spacegroup.symmetrize import refine_symmetry
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    refine_symmetry(atoms, symprec=symprec)
    return AseAtomsAdaptor.get_structure(atoms)


@dataclass
class GpawRelaxStaticMaker(Maker):
    """Relax (optional), then a static on the symmetrised result: a Flow whose output is the static's
    task document, as atomate2's relax-and-static flows are.

    The start (typically a decoded, MLIP-relaxed cell) is first snapped onto the space group it
    nearly has (``tolerances.SYMPREC``): GPAW keeps that symmetry while relaxing and reduces the
    k-points by it (a P1 cell uses all). The relaxed cell is re-symmetrised with the tight
    ``RELAXED_SYMPREC``, which removes the relaxation's numerical noise but never a real distortion.
    ``relax_maker=None``: the static alone, on the structure as given.
    """

    name: str = "GPAW relax-static"
    relax_maker: GpawRelaxMaker | None = field(default_factory=GpawRelaxMaker)
    static_maker: GpawStaticMaker = field(default_factory=GpawStaticMaker)

    def make(self, structure: Structure) -> Flow:
        """The flow for ``structure``; its output is the static's task document."""
        jobs: list[Job] = []
        static_input: Structure | OutputReference = structure
        if self.relax_maker is not None:
            start = symmetrize_structure(structure, symprec=SYMPREC)
            relax_job = self.relax_maker.make(start.output)
            relaxed = symmetrize_structure(relax_job.output.structure, symprec=RELAXED_SYMPREC)
            jobs += [start, relax_job, relaxed]
            static_input = relaxed.output
        static_job = self.static_maker.make(static_input)
        return Flow([*jobs, static_job], output=static_job.output, name=self.name)
