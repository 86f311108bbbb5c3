"""The Materials Project's energy scale: its U values, its initial magnetic moments and its MP2020
corrections, every number read from pymatgen (MP's input-set configuration and compatibility scheme).

MP computes with PBE, adding a Hubbard U (Dudarev, U_eff = U - J with J = 0) on the d states of the
transition metals in ``LDAUU`` when the compound's most electronegative element is O or F, and corrects
the energies with ``MaterialsProject2020Compatibility``: fitted anion corrections (oxide, fluoride,
chloride, sulfide, nitride, ...) and a per-metal correction that puts GGA+U energies on the GGA scale.
Both DFT engines and the MLIP tier reach that scale through :func:`mp2020_entry`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final

import yaml
from pymatgen.core import Composition, Element, Structure
from pymatgen.entries.computed_entries import CompositionEnergyAdjustment, ComputedEntry, ComputedStructureEntry

from icrdesign.config import DEFAULTS_DIR
from icrdesign.io import write_text

#: ``run_type`` of a ComputedEntry without / with a Hubbard U, as MP2020 expects it.
RUN_TYPE_GGA: Final[str] = "GGA"
RUN_TYPE_GGA_U: Final[str] = "GGA+U"
#: Orbital letters of VASP's LDAUL numbers (MP puts U on the d states, LDAUL = 2).
ORBITALS: Final[str] = "spdf"
#: GPAW's refit of the GGA/GGA+U mixing corrections, per +U metal (see the module's docstring).
GPAW_MIXING_REFIT_PATH: Final[Path] = DEFAULTS_DIR / "gpaw_mixing_refit.yaml"
#: The name of a refit's energy adjustment, with the metal's symbol in the brackets as MP2020 names its own.
GPAW_REFIT_NAME: Final[str] = "GPAW GGA/GGA+U mixing refit"
#: The names MP2020 gives the kinds of oxygen anion it corrects (per O atom).
OXIDE_TYPES: Final[frozenset[str]] = frozenset({"oxide", "peroxide", "superoxide", "ozonide"})


def _incar_config() -> dict[str, Any]:
    from pymatgen.io.vasp.sets import MPRelaxSet

    return MPRelaxSet.CONFIG["INCAR"]


def mp_hubbards(composition: Composition) -> dict[str, float]:
    """MP's U values (eV) for the elements of ``composition`` that get one, else {}.

    As MPRelaxSet decides: the table of the composition's most electronegative element (O and F have
    one), elements with U > 0 only.
    """
    incar = _incar_config()
    if not incar.get("LDAU", False):
        return {}
    elements = sorted(composition.elements, key=lambda element: element.X)
    table = incar["LDAUU"].get(elements[-1].symbol)
    if not isinstance(table, dict):
        return {}
    return {element.symbol: float(table[element.symbol]) for element in elements
            if float(table.get(element.symbol, 0)) > 0}


def mp_hubbard_table() -> dict[str, Any]:
    """MP's U values and orbitals by anion and element (``LDAUU``, ``LDAUL``), as its configuration has them."""
    incar = _incar_config()
    return {"LDAUU": incar["LDAUU"], "LDAUL": incar["LDAUL"]}


def hubbard_orbital(composition: Composition, symbol: str) -> str:
    """The orbital ('d') MP puts ``symbol``'s U on in ``composition`` (its ``LDAUL``)."""
    anion = max(composition.elements, key=lambda element: element.X).symbol
    return ORBITALS[int(_incar_config()["LDAUL"][anion][symbol])]


@cache
def mp_magmoms() -> dict[str, float]:
    """MP's initial moments (mu_B) of the elements its configuration names (neutral symbols only).

    MP starts every other element at 0.6 mu_B; here they start non-magnetic, which halves the cost of
    the many compounds without a magnetic element and loses nothing: their moment vanishes anyway.
    """
    magmoms = _incar_config()["MAGMOM"]
    return {symbol: float(value) for symbol, value in magmoms.items() if Element.is_valid_symbol(symbol)}


def initial_magmoms(structure: Structure) -> list[float]:
    """Site moments: the structure's ``magmom`` site property, else MP's (:func:`mp_magmoms`), else 0."""
    if "magmom" in structure.site_properties:
        return [float(m) for m in structure.site_properties["magmom"]]
    table = mp_magmoms()
    return [table.get(site.specie.symbol, 0.0) for site in structure]


def mp2020_entry(composition: Composition, energy: float, hubbards: Mapping[str, float],
                 structure: Structure | None = None) -> ComputedEntry:
    """A GGA or GGA+U entry (``hubbards``: the U values the calculation used) with MP2020 applied.

    With ``structure`` the oxide type (oxide, peroxide, superoxide) is read from the bonds, as MP does;
    without it the oxygen counts as oxide. Raises ValueError when MP2020 refuses the entry (U values
    other than MP's, or an unsupported element).
    """
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

    used = {symbol: float(u) for symbol, u in hubbards.items() if float(u) > 0}
    parameters = {"run_type": RUN_TYPE_GGA_U if used else RUN_TYPE_GGA, "is_hubbard": bool(used), "hubbards": used}
    entry = (ComputedStructureEntry(structure, energy, parameters=parameters) if structure is not None
             else ComputedEntry(composition, energy, parameters=parameters))
    processed = MaterialsProject2020Compatibility(check_potcar=False).process_entry(entry)
    if processed is None:
        raise ValueError(f"MaterialsProject2020Compatibility refused {composition.reduced_formula} "
                         f"with U values {used or 'none'}")
    return processed


def mp2020_corrected_energy(composition: Composition, energy: float, hubbards: Mapping[str, float] | None = None,
                            structure: Structure | None = None) -> float:
    """Total energy (eV) with MP2020's corrections; ``hubbards`` defaults to MP's for the composition
    (right for a potential trained on MP's GGA(+U) energies)."""
    used = mp_hubbards(composition) if hubbards is None else hubbards
    return float(mp2020_entry(composition, energy, used, structure).energy)


@cache
def gpaw_mixing_refit() -> dict[str, Any]:
    """GPAW's mixing refit as ``defaults/gpaw_mixing_refit.yaml`` holds it: ``corrections`` (eV per atom
    of each +U metal, added to MP2020's), the ``fit_set`` and the GPAW ``settings`` of the fit."""
    return yaml.safe_load(GPAW_MIXING_REFIT_PATH.read_text(encoding="utf-8"))


def write_gpaw_mixing_refit(corrections: Mapping[str, float], fit_set: list[str], settings: Mapping[str, Any],
                            path: Path = GPAW_MIXING_REFIT_PATH) -> None:
    """Write the refit (see :func:`gpaw_mixing_refit`); only the fitting benchmark calls this."""
    document = {"corrections": {symbol: round(float(value), 4) for symbol, value in sorted(corrections.items())},
                "fit_set": list(fit_set), "settings": dict(settings)}
    write_text(path, "# Written by `python benchmarks/experiment.py --fit-mixing`; see icrdesign.validation.mp_scale.\n"
               + yaml.safe_dump(document, sort_keys=False))
    gpaw_mixing_refit.cache_clear()


def with_gpaw_mixing_refit(entry: ComputedEntry) -> ComputedEntry:
    """``entry`` (MP2020 applied) plus GPAW's refit for each metal it treated with +U; a metal without a
    refit keeps MP2020's correction alone."""
    refit = gpaw_mixing_refit()["corrections"]
    hubbards = entry.parameters.get("hubbards") or {}
    for symbol in sorted(hubbards):
        if hubbards[symbol] > 0 and symbol in refit:
            amount = entry.composition[symbol]
            entry.energy_adjustments.append(CompositionEnergyAdjustment(
                float(refit[symbol]), amount, name=f"{GPAW_REFIT_NAME} ({symbol})",
                description=f"GPAW's GGA+U energy of {symbol} refitted on {gpaw_mixing_refit()['fit_set']}"))
    return entry


def mp2020_task_entry(task_doc: Any, engine: str) -> ComputedEntry:
    """A DFT task document's final energy with MP2020 applied, at the U values its entry records
    (``entry.parameters['hubbards']``: GPAW's task documents and atomate2's VASP ones both carry them),
    plus, for ``engine`` 'gpaw', GPAW's mixing refit."""
    hubbards = task_doc.entry.parameters.get("hubbards") or {}
    entry = mp2020_entry(task_doc.structure.composition, float(task_doc.output.energy), hubbards, task_doc.structure)
    return with_gpaw_mixing_refit(entry) if engine == "gpaw" else entry


def corrections_summary(entry: ComputedEntry) -> str:
    """What put an MP2020-processed entry on MP's scale, e.g. ``MP2020: oxide -0.687 eV/O, GGA/GGA+U
    mixing -2.541 eV/Ni; U(Ni)=6.2``; empty when nothing did."""
    hubbards = entry.parameters.get("hubbards") or {}
    parts, refits = [], []
    for adjustment in entry.energy_adjustments:
        # MP2020 names its corrections "MP2020 anion correction (oxide|F|S|...)" and
        # "MP2020 GGA/GGA+U mixing correction (Ni)"; the count of atoms it applies to is n_atoms.
        what = adjustment.name[adjustment.name.find("(") + 1:adjustment.name.rfind(")")]
        element = "O" if what in OXIDE_TYPES else what
        kind = what if "anion" in adjustment.name else "GGA/GGA+U mixing"
        text = f"{kind} {adjustment.value / adjustment.n_atoms:+.3f} eV/{element}"
        (refits if adjustment.name.startswith(GPAW_REFIT_NAME) else parts).append(text)
    u_text = ", ".join(f"U({symbol})={u:g}" for symbol, u in sorted(hubbards.items()) if u > 0)
    return "; ".join(part for part in (f"MP2020: {', '.join(parts)}" if parts else "",
                                       f"GPAW refit: {', '.join(refits)}" if refits else "", u_text) if part)
