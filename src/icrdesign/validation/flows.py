"""Running atomate2/jobflow flows locally with a per-candidate store, and collecting failures."""

from __future__ import annotations

import logging
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from jobflow import Flow, JobStore, run_locally

from icrdesign.io import read_json
from icrdesign.validation.gpaw import FAILURE_FILE

# jobflow's local manager logs a failing job's traceback here (and nowhere else with log=False).
JOBFLOW_LOG = "jobflow.log"
LOG_RECORD = re.compile(r"^(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", re.MULTILINE)


def make_store(directory: Path, store_uri: str | None = None) -> JobStore:
    """A JSON-backed maggma store in DIRECTORY (or a MongoDB store when ``store_uri`` is given)."""
    if store_uri:
        from maggma.stores import MongoURIStore

        return JobStore(MongoURIStore(store_uri, collection_name="icrdesign_outputs"),
                        additional_stores={"data": MongoURIStore(store_uri, collection_name="icrdesign_data")})
    from maggma.stores import JSONStore

    # Absolute paths: jobflow runs each job inside its own folder, and maggma rewrites the JSON file
    # by its stored path after every job, so a relative path would point into the job folder.
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    docs = JSONStore(str(directory / "jobflow_outputs.json"), read_only=False)
    data = JSONStore(str(directory / "jobflow_data.json"), read_only=False)
    return JobStore(docs, additional_stores={"data": data})


@contextmanager
def _jobflow_log(path: Path) -> Iterator[None]:
    """Send jobflow's local-manager messages (job starts, failures with tracebacks) to PATH."""
    logger = logging.getLogger("jobflow.managers.local")
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False  # stdout carries the commands' one JSON line
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(level)
        logger.propagate = propagate


def run_flow(flow: Flow, work_dir: Path, store_uri: str | None = None) -> dict[str, Any]:
    """Run FLOW in WORK_DIR (one folder per job); return {job uuid: output} of the jobs that finished.

    Every file a job writes lands in its folder under WORK_DIR, never in the caller's working directory.
    WORK_DIR belongs to this flow: it is emptied first, so nothing an earlier attempt left there (a
    failure record, stored outputs) is ever taken for this attempt's.
    """
    work_dir = work_dir.resolve()
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    with _jobflow_log(work_dir / JOBFLOW_LOG):
        responses = run_locally(flow, store=make_store(work_dir, store_uri), create_folders=True,
                                root_dir=work_dir, ensure_success=False, log=False)
    return {uuid: max(by_index.items())[1].output for uuid, by_index in responses.items()}


def recorded_failures(work_dir: Path) -> list[dict[str, Any]]:
    """Failure records the DFT makers wrote under WORK_DIR (newest last)."""
    paths = sorted(work_dir.rglob(FAILURE_FILE), key=lambda path: path.stat().st_mtime)
    return [read_json(path) for path in paths]


def job_error(work_dir: Path) -> str:
    """'<job> failed with exception: <last exception line>' of the last job that failed in WORK_DIR, or ''."""
    path = work_dir / JOBFLOW_LOG
    records = LOG_RECORD.split(path.read_text()) if path.exists() else []
    failures = [record for record in records if "failed with exception:" in record]
    if not failures:
        return ""
    headline, *traceback = failures[-1].strip().splitlines()
    exception = next((line for line in reversed(traceback) if line and not line[0].isspace()
                      and not line.startswith("Traceback")), "")
    return f"{headline.split(' INFO ', 1)[-1]} {exception}".strip()
