"""VASP through atomate2 with Materials Project settings, for clusters with a VASP licence.

The run command comes from ``VASP_CMD`` (atomate2's setting, read from the environment); atomate2's
VASP jobs run under custodian with its VASP error handlers. POTCARs need ``PMG_VASP_PSP_DIR``
(pymatgen's setting); without them ``write_vasp_inputs`` writes the POTCAR *spec* (symbols) only.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from jobflow import Maker
from pymatgen.core import Structure


def vasp_maker(relax: bool) -> Maker:
    """atomate2's MP GGA(+U) double relax + static maker, or its static maker alone when not ``relax``."""
    from atomate2.vasp.flows.mp import MPGGADoubleRelaxStaticMaker
    from atomate2.vasp.jobs.mp import MPGGAStaticMaker

    return MPGGADoubleRelaxStaticMaker() if relax else MPGGAStaticMaker()


def vasp_binary_missing() -> str | None:
    """Why VASP cannot run here (no VASP_CMD binary on PATH), or None when it can."""
    from atomate2 import SETTINGS

    command = os.environ.get("VASP_CMD", SETTINGS.VASP_CMD)
    executable = shlex.split(command)[0] if command else ""
    return None if executable and shutil.which(executable) else f"missing_binary: VASP_CMD={command!r} not found"


def write_vasp_inputs(structure: Structure, directory: Path) -> dict[str, Path]:
    """Write INCAR, KPOINTS, POSCAR and POTCAR (or POTCAR.spec without PMG_VASP_PSP_DIR) of the MP relax.

    Returns {file name: path}. Uses the input set generator of the flow's first relaxation.
    """
    from atomate2.vasp.flows.mp import MPGGADoubleRelaxMaker
    from pymatgen.core import SETTINGS as PMG_SETTINGS

    generator = MPGGADoubleRelaxMaker().relax_maker1.input_set_generator
    have_potcars = bool(PMG_SETTINGS.get("PMG_VASP_PSP_DIR")) and Path(PMG_SETTINGS["PMG_VASP_PSP_DIR"]).is_dir()
    input_set = generator.get_input_set(structure, potcar_spec=not have_potcars)
    directory.mkdir(parents=True, exist_ok=True)
    input_set.write_input(directory)
    return {path.name: path for path in sorted(directory.iterdir()) if path.is_file()}
