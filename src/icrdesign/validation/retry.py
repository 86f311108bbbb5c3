"""Retrying failed candidates: an explicit step (``icrdesign retry-failed``), never a side effect of a run.

A failed MLIP relaxation or DFT calculation is a result: its record says status 'failed' and why, the
workflow goes on, the report counts it, and a rerun with nothing changed does nothing. To retry,
:func:`forget_failed` removes the failed records -- every candidate record whose status a rerun would
not keep (failed or unreadable; an unconverged relaxation is a result), the index of its chunk, every
elemental reference recorded as failed, and the index of each references job that had a failure -- so
that the next ``snakemake`` run finds them missing and reruns those jobs, which redo exactly the
forgotten candidates (and the funnel, table and report after them). A dry run lists them and changes
nothing.
"""

from __future__ import annotations

from pathlib import Path

from icrdesign.artefacts.validation import (RECORD_FILES, STATUS_FAILED, STATUS_UNREADABLE, TIERS, chunk_name,
                                            record_status)
from icrdesign.validation.chunks import KEPT_STATUSES
from icrdesign.validation.references import INDEX_SUFFIX, REFERENCES_FOLDER


def failed_records(validation_folder: Path) -> list[Path]:
    """The candidate records a rerun would redo and their chunks' indexes, then the reference records and
    indexes recorded as failed (or unreadable)."""
    failed = [path for tier in TIERS
              for path in sorted(validation_folder.glob(f"*/{tier}/{chunk_name('*')}/*/{RECORD_FILES[tier]}"))
              if record_status(path) not in KEPT_STATUSES[tier]]
    indexes = sorted({path.parent.parent.with_suffix(".json") for path in failed})
    caches = validation_folder / REFERENCES_FOLDER
    references = sorted([*caches.glob("*/*.json"), *caches.glob(f"*{INDEX_SUFFIX}")])
    return ([*failed, *(path for path in indexes if path.exists())]
            + [path for path in references if record_status(path) in (STATUS_FAILED, STATUS_UNREADABLE)])


def forget_failed(validation_folder: Path, dry_run: bool = False) -> list[Path]:
    """Remove the :func:`failed_records` (unless ``dry_run``) so that the next run redoes them; returns them."""
    failed = failed_records(validation_folder)
    if not dry_run:
        for path in failed:
            path.unlink()
    return failed
