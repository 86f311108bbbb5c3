"""Child process of one GPAW calculation, started by custodian (``GpawJob``).

Reads ``gpaw_input.json`` (structure, plain-dict calculator settings, relaxation settings), runs
atomate2's ``AseRelaxer`` with a GPAW calculator and writes ``gpaw_result.json`` (the atomate2
``AseResult`` plus band gap, SCF iterations and the seconds spent in GPAW). A non-metal's band gap is
also computed non-self-consistently on the k-sets of ``band_gap_kpts`` (a uniform grid, a line path)
and the smallest one is kept. It always writes
``gpaw_status.json`` so custodian's ``GpawErrorHandler`` can tell an unconverged SCF (correctable)
from a crash or a walltime (not correctable). Run serially as ``python -m icrdesign.validation.gpaw_worker DIR`` or under MPI as
``mpirun -np N gpaw python -m icrdesign.validation.gpaw_worker DIR``.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

INPUT_FILE = "gpaw_input.json"
RESULT_FILE = "gpaw_result.json"
STATUS_FILE = "gpaw_status.json"
TEXT_OUTPUT = "gpaw.txt"
NSCF_OUTPUT = "gpaw_band_gap_{kset}.txt"
#: The k-sets a band gap can come from: the calculation's own grid, or a non-self-consistent
#: calculation on a denser uniform grid or along the high-symmetry line path.
KSET_SCF = "scf"
KSET_UNIFORM = "uniform"
KSET_LINE = "line"
# Bands a non-self-consistent calculation leaves unconverged at the top (GPAW computes at least 4
# empty bands; the topmost converge slowly and the gap needs only the lowest empty ones).
NSCF_UNCONVERGED_TOP_BANDS = 2
# Residual (eV^2 per electron) a non-self-consistent calculation converges to: its eigenvalues, second
# order in the residual, are then exact to far below a meV; GPAW's SCF default (4e-8) doubles the cost.
NSCF_EIGENSTATES_TOLERANCE = 1e-6
# Gaps (eV) of two k-sets that agree to within this are the same band edges.
GAP_TIE_TOLERANCE = 1e-3


class WalltimeExceeded(RuntimeError):
    """The calculation ran past its walltime."""


def grid_kpts(size: list[int]) -> dict[str, Any]:
    """GPAW's kpts of a Gamma-centred grid of ``size``."""
    return {"size": size, "gamma": True}


def build_calculator(settings: dict[str, Any], spin_polarized: bool, txt: str | None = TEXT_OUTPUT) -> Any:
    """A GPAW calculator from plain-dict settings (see ``icrdesign.validation.gpaw.calculator_settings``)."""
    from gpaw import GPAW, PW, FermiDirac, Mixer, MixerSum

    mixer_cls = MixerSum if spin_polarized else Mixer
    return GPAW(
        mode=PW(settings["ecut"]),
        xc=settings["xc"],
        kpts=grid_kpts(settings["kpts"]),
        occupations=FermiDirac(settings["smearing_width"]),
        mixer=mixer_cls(**settings["mixer"]),
        maxiter=settings["max_scf_iterations"],
        spinpol=spin_polarized,
        setups=settings.get("setups", "paw"),
        txt=txt,
    )


def _on_alarm(signum: int, frame: Any) -> None:
    raise WalltimeExceeded("walltime exceeded")


def _band_gap(calculator: Any) -> float:
    """The band gap (eV), 0 for a metal.

    ASE refuses ("Too few bands!") when every computed band lies below the Fermi level at some
    k-point. GPAW computes at least 4 empty bands beyond the valence count, so an insulator always
    has empty bands above the Fermi level at every k-point: that case is a metal.
    """
    from ase.dft.bandgap import bandgap

    try:
        gap, _, _ = bandgap(calculator, output=None)
    except ValueError as error:
        if "Too few bands" not in str(error):
            raise
        return 0.0
    return float(gap)


def band_gaps(calculator: Any, ksets: dict[str, Any]) -> dict[str, float]:
    """The gap on the calculation's own grid and, for a non-metal, on each k-set of ``ksets`` ({'uniform':
    GPAW's kpts dict of a grid} and/or {'line': [[k1, k2, k3], ...]}, fractional), computed
    non-self-consistently on the converged density at the fixed Fermi level.

    A coarse grid can only miss band edges, never invent them, so a metal stays a metal and the
    smallest gap is the best estimate.
    """
    gaps = {KSET_SCF: _band_gap(calculator)}
    if gaps[KSET_SCF] <= 0:
        return gaps
    for kset, kpts in ksets.items():
        # An explicit k-point list must not be reduced by symmetry; a uniform grid may be.
        extra = {"kpts": kpts} if kset == KSET_UNIFORM else {"kpts": kpts, "symmetry": "off"}
        nscf = calculator.fixed_density(convergence={"bands": -NSCF_UNCONVERGED_TOP_BANDS,
                                                     "eigenstates": NSCF_EIGENSTATES_TOLERANCE},
                                        txt=NSCF_OUTPUT.format(kset=kset), **extra)
        gaps[kset] = _band_gap(nscf)
    return gaps


def run(directory: Path) -> dict[str, Any]:
    """Run the calculation described in DIRECTORY/gpaw_input.json; return the status dict."""
    from ase.parallel import world
    from atomate2.ase.utils import AseRelaxer
    from monty.serialization import dumpfn
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor
    from gpaw import KohnShamConvergenceError

    spec = json.loads((directory / INPUT_FILE).read_text())
    structure = Structure.from_dict(spec["structure"])
    atoms = AseAtomsAdaptor.get_atoms(structure)
    magmoms = spec["magmoms"]
    spin_polarized = any(abs(m) > 0 for m in magmoms)
    if spin_polarized:
        atoms.set_initial_magnetic_moments(magmoms)
    calculator = build_calculator(spec["calculator"], spin_polarized)
    relaxer = AseRelaxer(calculator, relax_cell=spec["relax_cell"], fix_symmetry=False)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(max(1, int(spec["walltime_s"])))
    started = time.perf_counter()
    try:
        result = relaxer.relax(atoms, fmax=spec["fmax"], steps=spec["steps"], final_atoms_object_file=None)
        scf_iterations = int(calculator.get_number_of_iterations())
        gaps = band_gaps(calculator, spec.get("band_gap_kpts") or {})
        gap = min(gaps.values())
        # The k-set credited is the first (scf, uniform, line) that reaches the gap: a band edge at a
        # point the static's own grid holds (Gamma, say) is found there, not by the denser sets.
        kset = next(name for name, value in gaps.items() if value <= gap + GAP_TIE_TOLERANCE)
        extras = {"band_gap": gap, "band_gap_kset": kset, "band_gaps": gaps, "scf_iterations": scf_iterations,
                  "calc_seconds": time.perf_counter() - started}
        status = {"status": "ok"}
    except KohnShamConvergenceError as error:
        status = {"status": "error", "error": "scf_not_converged", "detail": str(error)}
    except WalltimeExceeded as error:
        status = {"status": "error", "error": "walltime", "detail": str(error)}
    except Exception as error:  # noqa: BLE001 - any other failure is reported as a crash, with its traceback
        status = {"status": "error", "error": "crashed", "detail": f"{type(error).__name__}: {error}",
                  "traceback": traceback.format_exc()}
    finally:
        signal.alarm(0)
    if world.rank == 0:
        if status["status"] == "ok":
            dumpfn({"ase_result": result, **extras}, directory / RESULT_FILE)
        (directory / STATUS_FILE).write_text(json.dumps(status))
    return status


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    status = run(Path(args[0] if args else ".").resolve())
    return 0 if status["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
