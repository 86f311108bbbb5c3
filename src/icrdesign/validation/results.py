"""Per-candidate result files and the aggregate validation table."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from monty.json import jsanitize

from icrdesign.io import read_json, write_csv, write_json

VALIDATION_COLUMNS = ["case", "candidate_id", "formula", "nsites", "tier", "engine", "energy_per_atom",
                      "formation_energy_per_atom", "band_gap", "status", "reason", "corrections", "wall_s"]


def _json_ready(row: dict[str, Any]) -> dict[str, Any]:
    return {key: (None if isinstance(value, float) and math.isnan(value) else value) for key, value in row.items()}


def task_doc_json(task_doc: Any) -> Any:
    """A task document (pydantic) as plain JSON data."""
    return jsanitize(task_doc, strict=True, allow_bson=False, enum_values=True)


def write_result(result_path: Path, row: dict[str, Any], task_docs: dict[str, Any]) -> None:
    """Write the task documents beside RESULT_PATH first, the row last (the row marks completion).

    ``task_docs`` maps a file stem (e.g. ``dft_static_taskdoc``) to a task document.
    """
    for stem, doc in task_docs.items():
        write_json(result_path.parent / f"{stem}.json", task_doc_json(doc))
    write_json(result_path, _json_ready(row))


def _status(path: Path) -> str | None:
    """The ``status`` a result or reference file records; 'unreadable' for a corrupt file."""
    try:
        return read_json(path).get("status")
    except (json.JSONDecodeError, OSError):
        return "unreadable"


def failed_results(validation_dir: Path) -> list[Path]:
    """Result files (mlip.json / dft.json) not 'ok' and elemental references recorded as failed (or
    unreadable): a rerun recomputes them."""
    results = [*validation_dir.glob("*/*/mlip.json"), *validation_dir.glob("*/*/dft.json")]
    references = validation_dir.glob("references/*/*.json")
    return ([path for path in results if _status(path) != "ok"]
            + [path for path in references if _status(path) in ("failed", "unreadable")])


def validation_table(result_paths: Iterable[Path]) -> pd.DataFrame:
    """The rows of the result files, in VALIDATION_COLUMNS order (extra keys kept after them)."""
    rows = [read_json(path) for path in result_paths]
    table = pd.DataFrame(rows)
    for column in VALIDATION_COLUMNS:
        if column not in table:
            table[column] = pd.Series(dtype=object)
    extra = [column for column in table.columns if column not in VALIDATION_COLUMNS]
    return table[VALIDATION_COLUMNS + extra]


def write_validation_table(result_paths: Iterable[Path], out_path: Path) -> pd.DataFrame:
    table = validation_table(result_paths)
    write_csv(out_path, table)
    return table
