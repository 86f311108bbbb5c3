"""What the validation tiers refuse before any calculation starts: cells above the configured size limit
and elements the engine has no parameters for.

Each engine's elements come from the engine itself: the potential's from the model atomate2 loads
(CHGNet's atom embedding, SevenNet's type map), GPAW's from the PAW datasets GPAW finds on its setup
paths, VASP's from the POTCAR symbols of atomate2's Materials Project input set. A refusal is a
:class:`~icrdesign.structure_checks.StructureRefused` (reason ``too_many_sites`` or
``unknown_element``): a command run by hand ends with it (exit 2), the workflow records it as the
candidate's failed result (``refused_record``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, Final

from pymatgen.core import Element, Structure

from icrdesign.artefacts.validation import DFT, MLIP, STATUS_FAILED
from icrdesign.errors import ConfigError
from icrdesign.structure_checks import StructureProblem, StructureRefused

#: The config key of each tier's cell-size limit: the MLIP tier takes what the pipeline can generate
#: (the representation's cells), the DFT tier what ``dft.max_sites`` allows.
SITE_LIMIT_KEYS: Final[dict[str, tuple[str, str]]] = {MLIP: ("representation", "max_sites"),
                                                      DFT: ("dft", "max_sites")}


def check_site_limit(structure: Structure, source: str | os.PathLike[str], tier: str, config: Mapping[str, Any],
                     force: bool) -> None:
    """Refuse a cell above the tier's configured limit unless ``force``: the calculation would run for
    far longer than any cell the pipeline sends (GPAW and CHGNet take minutes on 200 atoms)."""
    section, key = SITE_LIMIT_KEYS[tier]
    limit = int(config[section][key])
    if force or len(structure) <= limit:
        return
    raise StructureRefused(source, StructureProblem(
        "too_many_sites", f"{len(structure)} sites, above {section}.{key} = {limit}; pass --force to compute it anyway"),
        structure)


@lru_cache(maxsize=None)
def force_field_elements(force_field: str) -> frozenset[str]:
    """The elements the potential has parameters for, read from the model atomate2's relaxation loads
    (loaded once per process; a relaxation in the same process loads it again in about 0.2 s).

    Raises:
        ConfigError: the potential's package is not installed.
    """
    from atomate2.forcefields.jobs import ForceFieldRelaxMaker
    from atomate2.forcefields.utils import ase_calculator

    # The calculator depends on the force field's name only: ``mlip.force_field_maker`` passes no
    # calculator settings, so atomate2 pads the same defaults (SevenNet: model 7net-0) here.
    maker = ForceFieldRelaxMaker(force_field_name=force_field)
    try:
        calculator = ase_calculator(maker.calculator_meta, **maker.calculator_kwargs)
    except ImportError as error:
        raise ConfigError(f"relaxation.force_field: {force_field} needs its package ({error})") from error
    if force_field == "CHGNet":
        # CHGNet embeds atomic number Z as row Z - 1 of its atom embedding.
        numbers: Iterable[int] = range(1, calculator.model.atom_embedding.embedding.num_embeddings + 1)
    elif force_field == "SevenNet":
        numbers = calculator.type_map  # {atomic number: the model's species index}
    else:
        raise ConfigError(f"relaxation.force_field: no element list known for {force_field}")
    return frozenset(Element.from_Z(int(number)).symbol for number in numbers)


def gpaw_missing_datasets(symbols: Iterable[str], xc: str) -> list[str]:
    """The symbols GPAW finds no PAW dataset of for functional ``xc`` on its setup paths: the file its
    default ``setups='paw'`` loads, ``<symbol>.<setup name of xc>[.gz]``."""
    from gpaw.setup_data import search_for_file
    from gpaw.xc import XC

    setup_name = XC(xc).get_setup_name()
    missing = []
    for symbol in symbols:
        try:
            search_for_file(f"{symbol}.{setup_name}")
        except FileNotFoundError:
            missing.append(symbol)
    return missing


@lru_cache(maxsize=1)
def vasp_potcar_elements() -> frozenset[str]:
    """The elements the POTCAR choice of atomate2's Materials Project input set covers."""
    from atomate2.vasp.jobs.mp import MPGGAStaticMaker

    return frozenset(MPGGAStaticMaker().input_set_generator.config_dict["POTCAR"])


def _names(symbols: Iterable[str]) -> str:
    """Element symbols in order of atomic number (anything else last), joined for a message."""
    return ", ".join(sorted(symbols, key=lambda symbol: Element(symbol).Z if Element.is_valid_symbol(symbol)
                            else math.inf))


def _unknown_element_problem(symbols: list[str], tier: str, config: Mapping[str, Any]) -> StructureProblem | None:
    """Which of ``symbols`` the tier's engine lacks, worded; None when it knows them all."""
    if tier == MLIP:
        force_field = config["relaxation"]["force_field"]
        known = force_field_elements(force_field)
        unknown = [symbol for symbol in symbols if symbol not in known]
        numbers = sorted(Element(symbol).Z for symbol in known)
        detail = (f"{_names(unknown)} not in {force_field}'s elements (its {len(known)}: "
                  f"{Element.from_Z(numbers[0]).symbol} to {Element.from_Z(numbers[-1]).symbol})")
    elif config["dft"]["engine"] == "gpaw":
        from gpaw import setup_paths

        xc = config["dft"]["gpaw"]["xc"]
        unknown = gpaw_missing_datasets(symbols, xc)
        detail = (f"{_names(unknown)}: no GPAW PAW dataset for {xc} "
                  f"(searched {', '.join(str(path) for path in setup_paths)})")
    else:
        unknown = [symbol for symbol in symbols if symbol not in vasp_potcar_elements()]
        detail = f"{_names(unknown)} not among VASP's POTCARs of the Materials Project input set"
    return StructureProblem("unknown_element", detail) if unknown else None


def check_elements(structure: Structure, source: str | os.PathLike[str], tier: str, config: Mapping[str, Any]) -> None:
    """Refuse a structure with an element the tier's engine (``relaxation.force_field`` for the MLIP
    tier, ``dft.engine`` for DFT) has no parameters for: the engine would fail obscurely, or late."""
    symbols = sorted({site.specie.symbol for site in structure})
    if (problem := _unknown_element_problem(symbols, tier, config)) is not None:
        raise StructureRefused(source, problem, structure)


def check_input(structure: Structure, source: str | os.PathLike[str], tier: str, config: Mapping[str, Any],
                force: bool = False) -> None:
    """Everything a tier refuses in a structure that :func:`icrdesign.structure_checks.read_structure`
    accepted: the size limit first (cheap), then the elements (may load the potential)."""
    check_site_limit(structure, source, tier, config, force)
    check_elements(structure, source, tier, config)


def engine_name(tier: str, config: Mapping[str, Any]) -> str:
    """The engine a tier's record names: the potential, or the DFT engine."""
    return config["relaxation"]["force_field"] if tier == MLIP else config["dft"]["engine"]


def refused_record(refusal: StructureRefused, tier: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The failed record of a refused structure: what was read of it, and the refusal as the reason."""
    structure = refusal.structure
    return {"formula": structure.composition.reduced_formula if structure is not None else "",
            "nsites": len(structure) if structure is not None else 0, "tier": tier,
            "engine": engine_name(tier, config), "energy_per_atom": math.nan, "formation_energy_per_atom": math.nan,
            "band_gap": math.nan, "status": STATUS_FAILED, "reason": refusal.record_reason[:500], "corrections": "",
            "wall_s": 0.0}
