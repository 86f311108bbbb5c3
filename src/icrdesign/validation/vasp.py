"""VASP through atomate2 with Materials Project settings, for clusters with a VASP licence.

The run command comes from ``VASP_CMD`` (atomate2's setting, read from the environment); atomate2's
VASP jobs run under custodian with its VASP error handlers. POTCARs need ``PMG_VASP_PSP_DIR``
(pymatgen's setting); without them ``write_vasp_inputs`` writes the POTCAR *spec* (symbols) only.
The input sets put MP's U values and initial moments in the INCAR; the task documents record the U
values in ``entry.parameters['hubbards']``, which MP2020 corrects with as it does GPAW's
(:func:`icrdesign.validation.mp_scale.mp2020_task_entry`); :func:`incar_hubbards` reads them from an INCAR.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from jobflow import Maker
from pymatgen.core import Structure

if TYPE_CHECKING:
    from pymatgen.io.vasp import Incar, Poscar


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


def incar_hubbards(incar: Incar, poscar: Poscar) -> dict[str, float]:
    """The U values (eV) an INCAR applies, by element (those above 0), as a VASP task document records them."""
    if not incar.get("LDAU", False):
        return {}
    return {symbol: float(u) for symbol, u in zip(poscar.site_symbols, incar["LDAUU"], strict=True) if float(u) > 0}


def write_vasp_inputs(structure: Structure, directory: Path, relax: bool = True) -> dict[str, Path]:
    """Write INCAR, KPOINTS, POSCAR and POTCAR (or POTCAR.spec without PMG_VASP_PSP_DIR) of the MP relax
    (the input set generator of the flow's first relaxation), or of the MP static when not ``relax``.

    Returns {file name: path}.
    """
    from atomate2.vasp.flows.mp import MPGGADoubleRelaxMaker
    from atomate2.vasp.jobs.mp import MPGGAStaticMaker
    from pymatgen.core import SETTINGS as PMG_SETTINGS

    generator = (MPGGADoubleRelaxMaker().relax_maker1 if relax else MPGGAStaticMaker()).input_set_generator
    have_potcars = bool(PMG_SETTINGS.get("PMG_VASP_PSP_DIR")) and Path(PMG_SETTINGS["PMG_VASP_PSP_DIR"]).is_dir()
    input_set = generator.get_input_set(structure, potcar_spec=not have_potcars)
    directory.mkdir(parents=True, exist_ok=True)
    input_set.write_input(directory)
    return {path.name: path for path in sorted(directory.iterdir()) if path.is_file()}
