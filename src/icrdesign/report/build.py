"""Assemble the report: dissimilarity table, gallery, figures S1-S5 and the summary files."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from icrdesign.artefacts.candidates import CIF_PATH_COLUMN
from icrdesign.cases import BASELINE_STRATEGIES
from icrdesign.errors import InputError
from icrdesign.io import write_csv, write_json, write_text
from icrdesign.report import figures
from icrdesign.report.inputs import ReportInputs, ReportPaths, load_inputs
from icrdesign.report.similarity import nearest_neighbours
from icrdesign.report.summary import build_summary, summary_html, summary_markdown
from icrdesign.tolerances import SYMPREC
from icrdesign.validation.funnel import RELAXED_CIF_PATH

log = logging.getLogger(__name__)

FIGURES = ("S1_latent", "S2_gallery", "S3_boxplots", "S4_dissimilarity", "S5_training_distributions")
DISSIMILARITY_COLUMNS = ["case", "id", "strategy", "formula", "min_dissimilarity", "nearest_material_id",
                         "nearest_formula", "error"]


def generated_structures(inputs: ReportInputs) -> pd.DataFrame:
    """The generated crystals the figures show (+ external rows with a structure file).

    With the post-relaxation funnels: every relaxed candidate that is unique and novel after
    relaxation, as relaxed (the decoded cells are an intermediate). Without them: the valid, unique,
    novel decoded candidates with a readable CIF.
    """
    rows = []
    if not inputs.funnel_table.empty:
        table = inputs.funnel_table
        for _, row in table[table["relaxed"] & table["unique"] & table["novel"]].iterrows():
            if Path(row[RELAXED_CIF_PATH]).is_file():
                # The relaxed cell's space group is found when drawn (spacegroup left empty).
                rows.append({"case": row["case"], "id": row["candidate_id"], "strategy": row["strategy"],
                             "formula": row["formula"], "spacegroup": "", "path": row[RELAXED_CIF_PATH]})
    novel = inputs.novel_candidates() if inputs.funnel_table.empty else inputs.candidates.iloc[0:0]
    for _, row in novel.iterrows():
        if not row[CIF_PATH_COLUMN] or not Path(row[CIF_PATH_COLUMN]).is_file():
            continue
        rows.append({"case": row["case"], "id": row["id"], "strategy": row["strategy"],
                     "formula": row["formula"], "spacegroup": row["spacegroup"], "path": row[CIF_PATH_COLUMN]})
    if inputs.external is not None and "structure" in inputs.external:
        for _, row in inputs.external.dropna(subset=["structure"]).iterrows():
            if Path(row["structure"]).is_file():
                rows.append({"case": row["case"], "id": row["id"], "strategy": "external", "formula": "",
                             "spacegroup": "", "path": row["structure"]})
    return pd.DataFrame(rows, columns=["case", "id", "strategy", "formula", "spacegroup", "path"])


def dissimilarity_table(inputs: ReportInputs, generated: pd.DataFrame) -> pd.DataFrame | None:
    """Each generated crystal's minimum fingerprint distance to every training crystal.

    Reads the fingerprints ``icrdesign fingerprints`` wrote (the training split's shards, the
    candidates' and the external structures' files, by id); a generated crystal without one gets
    NaN and the reason in ``error``. None when the training fingerprints or the generated
    structures are absent.
    """
    train = inputs.train_fingerprints
    if train is None or generated.empty:
        return None
    n_failed = sum(error is not None for error in train.errors)
    if n_failed:
        log.warning("%d of %d training crystals have no fingerprint", n_failed, len(train))
    external = generated["strategy"] == "external"
    queries = np.full((len(generated), train.matrix.shape[1]), np.nan)
    errors: list[str | None] = [None] * len(generated)
    for mask, source, what in ((~external, inputs.candidate_fingerprints, "candidate"),
                               (external, inputs.external_fingerprints, "external")):
        rows = np.flatnonzero(mask.to_numpy())
        if not len(rows):
            continue
        if source is None:
            for row in rows:
                errors[row] = f"no {what} fingerprints file"
            continue
        if len(source) and len(train) and source.matrix.shape[1] != train.matrix.shape[1]:
            raise InputError(f"fingerprint widths differ: training {train.matrix.shape[1]}, "
                             f"{what}s {source.matrix.shape[1]}")
        matrix, found = source.rows(list(generated["id"].iloc[rows]))
        if matrix.shape[1]:
            queries[rows] = matrix
        for row, error in zip(rows, found, strict=True):
            errors[row] = error
    distances, nearest = nearest_neighbours(queries, train.matrix)
    formula_of = {} if inputs.dataset is None else dict(zip(inputs.dataset["material_id"], inputs.dataset["formula"]))
    table = generated[["case", "id", "strategy", "formula"]].copy()
    table["min_dissimilarity"] = distances
    table["nearest_material_id"] = [train.ids[i] if i >= 0 else None for i in nearest]
    table["nearest_formula"] = [formula_of.get(train.ids[i], "") if i >= 0 else None for i in nearest]
    table["error"] = errors
    return table[DISSIMILARITY_COLUMNS]


def structure_type(structure: Structure, symprec: float = SYMPREC) -> str:
    """Prototype label: anonymised formula, space-group number and the occupied Wyckoff orbits
    (the ingredients of an AFLOW prototype label); same label = same structure type."""
    anonymous = structure.composition.reduced_composition.anonymized_formula
    try:
        symmetrized = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetrized_structure()
        number = symmetrized.spacegroup.int_number
        wyckoffs = "".join(sorted(symmetrized.wyckoff_symbols))
    except Exception:  # noqa: BLE001 - spglib may fail on distorted cells; fall back to P1
        number, wyckoffs = 1, f"{len(structure)}a"
    return f"{anonymous}_{number}_{wyckoffs}"


def gallery(generated: pd.DataFrame, limit: int) -> tuple[list[figures.GalleryEntry], dict[str, Any] | None]:
    """Gallery entries (one per structure type first, then the rest) and counts over all crystals."""
    designed = generated[~generated["strategy"].isin(BASELINE_STRATEGIES)]
    if designed.empty:
        return [], None
    parsed = []
    for _, row in designed.iterrows():
        try:
            structure = Structure.from_str(Path(row["path"]).read_text(encoding="utf-8"), fmt=row["path"].rsplit(".", 1)[-1])
        except Exception as error:  # noqa: BLE001 - an unreadable CIF is skipped and logged
            log.warning("gallery: cannot read %s: %s", row["path"], error)
            continue
        parsed.append((row, structure, structure_type(structure)))
    elements = sorted({el.symbol for _, s, _ in parsed for el in s.composition.elements})
    stats = {
        "n_unique_novel": len(parsed),
        "n_structure_types": len({t for _, _, t in parsed}),
        "n_elements": len(elements),
        "elements": elements,
    }
    # One crystal per structure type first, so the gallery shows the variety; then the others.
    seen: set[str] = set()
    first_of_type = []
    for kind in (t for _, _, t in parsed):
        first_of_type.append(kind not in seen)
        seen.add(kind)
    order = sorted(range(len(parsed)), key=lambda i: not first_of_type[i])
    chosen = [parsed[i] for i in order[:limit]]
    entries = [
        figures.GalleryEntry(
            structure=s,
            formula=Composition(str(row["formula"])).reduced_formula if row["formula"] else s.composition.reduced_formula,
            spacegroup=str(row["spacegroup"]) if row["spacegroup"] else s.get_space_group_info(symprec=SYMPREC)[0],
            label=str(row["case"]),
        )
        for row, s, _ in chosen
    ]
    return entries, stats


def build_report(
    config: dict[str, Any],
    results: str | os.PathLike[str] | ReportPaths,
    out_dir: str | os.PathLike[str],
    external: str | os.PathLike[str] | None = None,
    figure_names: Sequence[str] = FIGURES,
) -> dict[str, Any]:
    """Write figures, summary.json/.md/.html, rates.csv, dissimilarity.csv and rejected.csv to ``out_dir``.

    ``results`` is either the paths of every input or a results folder in the workflow's layout.
    Fingerprints are read, never computed (``icrdesign fingerprints`` writes them).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = config["report"]
    cutoff = float(settings["dissimilarity_cutoff"])
    paths = results if isinstance(results, ReportPaths) else ReportPaths.under(results)
    inputs = load_inputs(paths, config["sampling"]["cases"], None if external is None else Path(external))
    evaluations = inputs.evaluations()
    generated = generated_structures(inputs)
    table = dissimilarity_table(inputs, generated)
    entries, gallery_stats = gallery(generated, settings["gallery_max"])
    summary = build_summary(inputs, evaluations, table, cutoff, extras={
        "gallery": gallery_stats,
        "model_metrics": inputs.model_metrics,
        "external_validation": None if external is None else str(external),
    })
    write_json(out / "summary.json", _json_safe(summary), allow_nan=False)
    write_text(out / "summary.md", summary_markdown(summary))
    write_text(out / "summary.html", summary_html(summary))
    write_csv(out / "evaluations.csv", evaluations)
    write_csv(out / "dissimilarity.csv", table if table is not None else pd.DataFrame(columns=DISSIMILARITY_COLUMNS))
    write_csv(out / "rejected.csv", pd.DataFrame(inputs.rejected, columns=["source", "id", "reason"]))
    makers = {
        "S1_latent": lambda: figures.latent_figure(inputs.latent),
        "S2_gallery": lambda: figures.gallery_figure(entries, gallery_stats),
        "S3_boxplots": lambda: figures.boxplot_figure(evaluations, inputs.cases),
        "S4_dissimilarity": lambda: figures.dissimilarity_figure(table, cutoff),
        "S5_training_distributions": lambda: figures.training_figure(inputs.dataset, inputs.cases, summary),
    }
    for name in figure_names:
        figures.save_figure(makers[name](), out / name, settings["formats"], settings["dpi"])
    return summary


def _json_safe(value: Any) -> Any:
    """Plain JSON types; NaN and infinities (e.g. in model metrics) become null."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
