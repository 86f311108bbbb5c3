"""Child process of one GPAW calculation, started by custodian (``GpawJob``).

Reads ``gpaw_input.json`` (structure, plain-dict calculator settings, relaxation settings), runs
atomate2's ``AseRelaxer`` with a GPAW calculator and writes ``gpaw_result.json`` (the atomate2
``AseResult`` plus band gap, SCF iterations and the seconds spent in GPAW). It always writes
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


class WalltimeExceeded(RuntimeError):
    """The calculation ran past its walltime."""


def build_calculator(settings: dict[str, Any], spin_polarized: bool, txt: str | None = TEXT_OUTPUT) -> Any:
    """A GPAW calculator from plain-dict settings (see ``icrdesign.validation.gpaw.calculator_settings``)."""
    from gpaw import GPAW, PW, FermiDirac, Mixer, MixerSum

    mixer_cls = MixerSum if spin_polarized else Mixer
    return GPAW(
        mode=PW(settings["ecut"]),
        xc=settings["xc"],
        kpts={"size": settings["kpts"], "gamma": True},
        occupations=FermiDirac(settings["smearing_width"]),
        mixer=mixer_cls(**settings["mixer"]),
        maxiter=settings["max_scf_iterations"],
        spinpol=spin_polarized,
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
        extras = {"band_gap": _band_gap(calculator), "scf_iterations": int(calculator.get_number_of_iterations()),
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
