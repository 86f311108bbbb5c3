"""Your own crystals (``data.source: file``): a table of CIF text, an extxyz file or a folder of
structure files, with their property labels, into the dataset table.

``data.file.path`` is one of:

- a ``.csv`` / ``.parquet`` / ``.json`` table: one crystal per row, its CIF text in
  ``structure_column``, its id in ``id_column`` and each target property in the column that
  ``properties`` maps it to (CDVAE's and MatterGen's ``mp_20`` CSVs are such tables);
- an ``.extxyz`` (or ``.xyz``) file read through ASE: one crystal per frame, its properties and id
  from the frame's ``info`` (a key ASE files under the frame's calculator results, e.g. ``energy``,
  is read from there), the id being the frame index where ``info`` lacks ``id_column``;
- a folder of CIF / POSCAR files, one crystal per file, its id the file name without extension and
  its properties from the rows of ``properties_file`` with that id.

Every crystal passes the checks of the other sources, in this order, and a crystal that fails one is
a row of ``rejected.csv`` with the reason: a structure that cannot be read (``unparsable_structure``),
one no engine can compute (:func:`icrdesign.structure_checks.structure_problem`: ``disordered``,
``overlapping_atoms``, ...), one the representation cannot hold (``too_many_elements`` or
``too_many_sites`` against ``representation.max_elements`` / ``max_sites``, counted in the canonical
primitive cell as the encoder does), then the checks every source shares
(:func:`icrdesign.artefacts.dataset.screen_rows`: a missing or repeated id, a missing, non-numeric or
implausible property). With ``splits``, each crystal's part comes from the given train / val / test
files (by id) into the table's :data:`icrdesign.split.SPLIT_COLUMN`: a crystal in none of them is
rejected (``not_in_split``), one in several too (``conflicting_split``), and an id of a split file
that the data lacks is logged and counted in provenance.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from tqdm import tqdm

from icrdesign.artefacts.dataset import (
    PROPERTY_COLUMNS,
    TABLE_COLUMNS,
    TABLE_DTYPES,
    Rejection,
    rejected_table,
    screen_rows,
)
from icrdesign.artefacts.tables import require_columns
from icrdesign.checks import is_missing
from icrdesign.errors import ConfigError, InputError
from icrdesign.parallel import fork_map, n_workers
from icrdesign.provenance import file_sha256, files_sha256
from icrdesign.representation.errors import CanonicalizationError, TooManyElementsError, TooManySitesError
from icrdesign.representation.parse import canonical_sites
from icrdesign.split import SPLIT_COLUMN, SPLIT_NAMES
from icrdesign.structure_checks import StructureRefused, read_structure, structure_problem
from icrdesign.tolerances import SYMPREC

log = logging.getLogger(__name__)

#: The dataset table's ``source`` of these crystals.
SOURCE: Final[str] = "file"
TABLE_SUFFIXES: Final[tuple[str, ...]] = (".csv", ".parquet", ".json")
EXTXYZ_SUFFIXES: Final[tuple[str, ...]] = (".extxyz", ".xyz")
#: The labels a crystal can carry in the dataset table: the target names ``data.file.properties`` allows.
LABEL_COLUMNS: Final[tuple[str, ...]] = (*PROPERTY_COLUMNS, "energy_above_hull")

#: Reasons (rejected.csv ``reason``) of this source, besides the structure checks' and the shared ones.
UNPARSABLE_STRUCTURE: Final[str] = "unparsable_structure"
NOT_IN_SPLIT: Final[str] = "not_in_split"
CONFLICTING_SPLIT: Final[str] = "conflicting_split"
#: A parser's message is cut to this length in rejected.csv (some quote the whole input).
MAX_DETAIL_CHARS: Final[int] = 300
#: Inputs smaller than this many crystals per worker range are read in this process (a fork costs more).
MIN_CRYSTALS_PER_RANGE: Final[int] = 200
#: Ranges per worker, so that a worker given slow crystals does not hold up the rest.
RANGES_PER_JOB: Final[int] = 4


class _Unusable(Exception):
    """A crystal refused while it is read, with the rejection to record."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.detail)
        self.rejection = rejection


@dataclass(frozen=True)
class _Entry:
    """One crystal of the input as given: its id, how to read its structure and its raw labels."""

    material_id: str | None
    read: Callable[[], Structure]  # raises _Unusable, or any error for a structure that cannot be read
    values: dict[str, Any]  # target name -> the value as given (number, numeric text, missing ...)


def read_file_source(settings: Mapping[str, Any], representation: Mapping[str, Any], n_jobs: int | None = None
                     ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Read the crystals of ``data.file`` (``settings``) into the dataset table.

    Args:
        settings: the ``data.file`` config section.
        representation: the ``representation`` config section (site and element limits, canonical cell).
        n_jobs: processes reading the structures (None: all cores); a small input is read in this one.

    Returns:
        The table (dataset schema, plus :data:`~icrdesign.split.SPLIT_COLUMN` with ``splits``, in the
        input's order), the rejected rows (material_id, reason, detail) and provenance entries (each
        input file's path and sha256, counts).

    Raises:
        ConfigError: no ``path``, a target name the dataset has no column for, a folder without
            ``properties_file`` or a ``properties_file`` beside a single file.
        InputError: an input file that does not exist, cannot be read, or lacks a configured column.
    """
    path = _data_path(settings)
    _check_targets(settings["properties"])
    entries, label_file = _entries(path, settings)
    rows: list[dict[str, Any]] = []
    refused: list[tuple[str | None, Rejection]] = []
    for entry, read in zip(entries, _read_all(entries, representation, label_file.name, n_jobs)):
        if isinstance(read, Rejection):
            refused.append((entry.material_id, read))
        else:
            rows.append(read)
    table, screened_out = screen_rows(pd.DataFrame(rows, columns=list(TABLE_COLUMNS)), list(settings["properties"]))
    rejected = [rejected_table([mid for mid, _ in refused], [rejection for _, rejection in refused]), screened_out]
    provenance: dict[str, Any] = {"data_file": _file_record(path, settings)}
    if path.is_dir():
        provenance["properties_file"] = _file_record(label_file, settings)
    if settings["splits"]:
        table, split_rejected, split_record = _apply_splits(table, settings, {entry.material_id for entry in entries})
        rejected.append(split_rejected)
        provenance.update(split_record)
    rejected_rows = pd.concat(rejected, ignore_index=True)
    counts = {str(reason): int(count) for reason, count in rejected_rows["reason"].value_counts().items()}
    log.info("file source %s: %d crystals, %d kept, %d rejected %s", path, len(entries), len(table),
             len(rejected_rows), counts)
    provenance.update({"n_rows": len(entries), "n_accepted": len(table), "n_rejected": len(rejected_rows),
                       "rejected_by_reason": counts})
    return table.astype(TABLE_DTYPES), rejected_rows, provenance


def input_files(settings: Mapping[str, Any]) -> list[Path]:
    """Every file :func:`read_file_source` reads: the data file (or each structure file of the folder),
    the properties file of a folder and the split files. The dataset rule's inputs, so that Snakemake
    reruns it when one changes; a path that does not exist is listed as given, for Snakemake to name."""
    path = _data_path(settings)
    files = _structure_files(path, settings) if path.is_dir() else [path]
    if path.is_dir() and settings["properties_file"]:
        files.append(Path(settings["properties_file"]))
    files += [Path(settings["splits"][name]) for name in SPLIT_NAMES] if settings["splits"] else []
    return files


def _data_path(settings: Mapping[str, Any]) -> Path:
    if not settings["path"]:  # validate_config refuses this; a hand-made settings dict may not
        raise ConfigError("config key 'data.file.path': required with data.source 'file'")
    return Path(settings["path"])


def _check_targets(properties: Mapping[str, str]) -> None:
    unknown = sorted(set(properties) - set(LABEL_COLUMNS))
    if unknown:
        raise ConfigError(f"config key 'data.file.properties': unknown target properties {unknown}; "
                          f"allowed values: {list(LABEL_COLUMNS)}")


def _entries(path: Path, settings: Mapping[str, Any]) -> tuple[list[_Entry], Path]:
    """The crystals of ``path`` as given, and the file their labels come from."""
    if path.is_dir():
        return _folder_entries(path, settings), _properties_file(path, settings)
    if settings["properties_file"]:
        raise ConfigError(f"config key 'data.file.properties_file' ({settings['properties_file']}): only used with "
                          f"a folder of structure files, but 'data.file.path' ({path}) is a file; its labels are "
                          "read from it (data.file.properties)")
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder (config key 'data.file.path')")
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return _table_entries(path, settings), path
    if suffix in EXTXYZ_SUFFIXES:
        return _extxyz_entries(path, settings), path
    raise InputError(f"{path}: unknown kind of data file (config key 'data.file.path'); allowed: a "
                     f"{' / '.join(TABLE_SUFFIXES)} table, an {' / '.join(EXTXYZ_SUFFIXES)} file or a folder of "
                     "CIF / POSCAR files")


def _table_entries(path: Path, settings: Mapping[str, Any]) -> list[_Entry]:
    id_column, structure_column = settings["id_column"], settings["structure_column"]
    properties: Mapping[str, str] = settings["properties"]
    frame = _read_user_table(path, id_column)
    require_columns(frame, [id_column, structure_column, *dict.fromkeys(properties.values())], path)
    values = {target: frame[column].tolist() for target, column in properties.items()}
    return [_Entry(_id_text(material_id), lambda text=text: _structure_from_cif(text),
                   {target: column[row] for target, column in values.items()})
            for row, (material_id, text) in enumerate(zip(frame[id_column].tolist(), frame[structure_column].tolist()))]


def _extxyz_entries(path: Path, settings: Mapping[str, Any]) -> list[_Entry]:
    from ase.io import read  # ASE only for this format

    try:
        frames = read(path, index=":", format="extxyz")
    except Exception as error:  # noqa: BLE001 - ASE raises assorted errors on a malformed file
        raise InputError(f"{path}: unreadable as extended XYZ ({type(error).__name__}: {error})") from None
    entries = []
    for index, atoms in enumerate(frames):
        # ASE files the standard quantities (energy, stress, ...) under the calculator, the rest in info.
        found = {**(atoms.calc.results if atoms.calc is not None else {}), **atoms.info}
        entries.append(_Entry(
            _id_text(found.get(settings["id_column"], index)),
            lambda atoms=atoms: _structure_from_atoms(atoms),
            {target: found.get(key) for target, key in settings["properties"].items()},
        ))
    return entries


def _folder_entries(folder: Path, settings: Mapping[str, Any]) -> list[_Entry]:
    id_column = settings["id_column"]
    properties: Mapping[str, str] = settings["properties"]
    labels_path = _properties_file(folder, settings)
    labels = _read_user_table(labels_path, id_column)
    require_columns(labels, [id_column, *dict.fromkeys(properties.values())], labels_path)
    labels.index = pd.Index([_id_text(material_id) for material_id in labels[id_column]])
    labels = labels.loc[labels.index.notna()]  # a row without an id labels no file
    repeated = labels.index.duplicated()
    if repeated.any():
        log.warning("%s: %d rows repeat an earlier row's %s (the first is used), e.g. %s", labels_path,
                    repeated.sum(), id_column, sorted(set(labels.index[repeated]))[:5])
        labels = labels.loc[~repeated]
    files = _structure_files(folder, settings)
    unmatched = sorted(set(labels.index) - {path.stem for path in files})
    if unmatched:
        log.warning("%s: %d ids have no structure file in %s, e.g. %s", labels_path, len(unmatched), folder,
                    unmatched[:5])
    return [_Entry(path.stem, lambda path=path: _structure_from_file(path),
                   {target: labels.at[path.stem, column] if path.stem in labels.index else None
                    for target, column in properties.items()})
            for path in files]


def _properties_file(folder: Path, settings: Mapping[str, Any]) -> Path:
    if not settings["properties_file"]:
        raise ConfigError(f"config key 'data.file.properties_file': required when 'data.file.path' ({folder}) is a "
                          f"folder: a table with the {settings['id_column']!r} column (each file's name without "
                          "extension) and the property columns")
    return Path(settings["properties_file"])


def _structure_files(folder: Path, settings: Mapping[str, Any]) -> list[Path]:
    """The files of ``folder`` read as structures, by name: all but hidden ones and the properties file."""
    labels = Path(settings["properties_file"]).resolve() if settings["properties_file"] else None
    return sorted((path for path in folder.iterdir()
                   if path.is_file() and not path.name.startswith(".") and path.resolve() != labels),
                  key=lambda path: path.name)


def _read_user_table(path: Path, id_column: str) -> pd.DataFrame:
    """A user's .csv / .parquet / .json table (``id_column`` as text in a CSV)."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".json":
            return pd.read_json(path, dtype=False, convert_dates=False)
        if suffix == ".csv":
            return pd.read_csv(path, dtype={id_column: str}, float_precision="round_trip")
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise InputError(f"{path}: unreadable ({' '.join(str(error).split())})") from None
    raise InputError(f"{path}: unknown kind of table; allowed: {' / '.join(TABLE_SUFFIXES)}")


def _id_text(material_id: Any) -> str | None:
    """An id as text (an integral float, as a table with gaps stores integer ids, without ``.0``), or None."""
    if is_missing(material_id):
        return None
    if isinstance(material_id, float) and material_id.is_integer():
        return str(int(material_id))
    return str(material_id)


def _structure_from_cif(text: Any) -> Structure:
    if is_missing(text):
        raise _Unusable(Rejection(UNPARSABLE_STRUCTURE, "no CIF text"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns about every CIF oddity; a refusal says what matters
        return Structure.from_str(str(text), fmt="cif")


def _structure_from_file(path: Path) -> Structure:
    try:
        return read_structure(path)
    except StructureRefused as refused:
        reason = refused.reason if refused.structure is not None else UNPARSABLE_STRUCTURE
        raise _Unusable(Rejection(reason, refused.detail[:MAX_DETAIL_CHARS])) from None


def _structure_from_atoms(atoms: Any) -> Structure:
    if not atoms.pbc.all():
        raise _Unusable(Rejection(UNPARSABLE_STRUCTURE, f"not periodic in every direction (pbc {atoms.pbc.tolist()})"))
    # Species and positions only: the frame's info and per-atom arrays are not part of the crystal.
    return Structure(Lattice(atoms.cell.array), atoms.get_chemical_symbols(), atoms.get_positions(),
                     coords_are_cartesian=True)


def _read_all(entries: list[_Entry], representation: Mapping[str, Any], label_source: str,
              n_jobs: int | None) -> list[dict[str, Any] | Rejection]:
    """Per entry, its dataset row or why it is refused, in order; forked workers share large inputs
    (a CIF costs pymatgen and spglib some 50 ms)."""
    jobs = n_workers(n_jobs)
    n_ranges = max(1, min(jobs * RANGES_PER_JOB, len(entries) // MIN_CRYSTALS_PER_RANGE))

    def read_range(start: int, stop: int) -> list[dict[str, Any] | Rejection]:
        read: list[dict[str, Any] | Rejection] = []
        for index in tqdm(range(start, stop), desc=f"Reading crystals [{start}:{stop}]", unit="crystal"):
            try:
                read.append(_table_row(entries[index], representation, label_source))
            except _Unusable as unusable:
                read.append(unusable.rejection)
        return read

    return [item for chunk in fork_map(read_range, len(entries), jobs, n_ranges) for item in chunk]


def _table_row(entry: _Entry, representation: Mapping[str, Any], label_source: str) -> dict[str, Any]:
    """The dataset row of one crystal (labels as given; :func:`screen_rows` checks them), or _Unusable."""
    try:
        structure = entry.read()
        problem = structure_problem(structure)
        if problem is not None:
            raise _Unusable(Rejection(problem.reason, problem.detail))
        if (too_big := _size_rejection(structure, representation)) is not None:
            raise _Unusable(too_big)
        spacegroup = SpacegroupAnalyzer(structure, symprec=SYMPREC).get_space_group_symbol()
    except _Unusable:
        raise
    except Exception as error:  # noqa: BLE001 - any failure to read untrusted input rejects only this row
        detail = f"{type(error).__name__}: {error}"[:MAX_DETAIL_CHARS]
        raise _Unusable(Rejection(UNPARSABLE_STRUCTURE, detail)) from None
    return {
        "material_id": entry.material_id,
        "formula": structure.composition.reduced_formula,
        "structure": json.dumps(structure.as_dict()),
        "nsites": len(structure),
        "nelements": len(structure.composition.elements),
        "spacegroup": str(spacegroup),
        # A label the config does not map is unknown (NaN), as an absent one is for the other sources.
        **{name: entry.values.get(name, math.nan) for name in LABEL_COLUMNS},
        "source": SOURCE,
        "label_source": label_source,
    }


def _size_rejection(structure: Structure, representation: Mapping[str, Any]) -> Rejection | None:
    """Too many elements or sites for the representation, or None."""
    n_elements, max_elements = len(structure.composition.elements), representation["max_elements"]
    if n_elements > max_elements:
        return Rejection(TooManyElementsError.code,
                         f"{n_elements} elements > representation.max_elements {max_elements}")
    n_sites, max_sites = len(structure), representation["max_sites"]
    primitive = n_sites > max_sites and representation["canonical"] == "niggli_primitive"
    if primitive:
        # The encoder holds the canonical primitive cell, which can be smaller than the cell as given.
        try:
            n_sites = len(canonical_sites(structure)[2])
        except CanonicalizationError as error:
            return Rejection(error.code, str(error)[:MAX_DETAIL_CHARS])
    if n_sites > max_sites:
        cell = "in the primitive cell " if primitive else ""
        return Rejection(TooManySitesError.code, f"{n_sites} sites {cell}> representation.max_sites {max_sites}")
    return None


def _apply_splits(table: pd.DataFrame, settings: Mapping[str, Any], input_ids: set[str | None]
                  ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The table's rows that one split file names, with :data:`SPLIT_COLUMN`; the rejected rows; provenance."""
    id_column = settings["id_column"]
    parts: dict[str, list[str]] = {}
    for name in SPLIT_NAMES:
        path = Path(settings["splits"][name])
        frame = _read_user_table(path, id_column)
        require_columns(frame, [id_column], path)
        parts[name] = [text for text in map(_id_text, frame[id_column]) if text is not None]
    members: dict[str, list[str]] = {}
    for name, ids in parts.items():
        for material_id in dict.fromkeys(ids):
            members.setdefault(material_id, []).append(name)
    absent = {name: sorted(set(ids) - input_ids) for name, ids in parts.items()}
    if any(absent.values()):
        log.warning("%d ids of the split files are not in %s (%s), e.g. %s", sum(map(len, absent.values())),
                    settings["path"], {name: len(ids) for name, ids in absent.items()},
                    [material_id for ids in absent.values() for material_id in ids][:5])
    labels, rejections = [], []
    for material_id in table["material_id"]:
        found = members.get(material_id, [])
        labels.append(found[0] if len(found) == 1 else None)
        if not found:
            rejections.append(Rejection(NOT_IN_SPLIT, f"in none of the split files {list(SPLIT_NAMES)}"))
        elif len(found) > 1:
            rejections.append(Rejection(CONFLICTING_SPLIT, f"in the split files of {found}"))
        else:
            rejections.append(None)
    kept = [rejection is None for rejection in rejections]
    split_table = table.assign(**{SPLIT_COLUMN: labels}).loc[kept].reset_index(drop=True)
    record = {
        "split_files": {name: _file_record(Path(settings["splits"][name]), settings) for name in SPLIT_NAMES},
        "split_counts": {name: int((split_table[SPLIT_COLUMN] == name).sum()) for name in SPLIT_NAMES},
        "split_ids_not_in_data": {name: len(ids) for name, ids in absent.items()},
    }
    return split_table, rejected_table(table["material_id"].tolist(), rejections), record


def _file_record(path: Path, settings: Mapping[str, Any]) -> dict[str, Any]:
    """A data file's path (as configured) and sha256; a folder's over its structure files."""
    digest = files_sha256(_structure_files(path, settings)) if path.is_dir() else file_sha256(path)
    return {"path": str(path), "sha256": digest}

