"""Running atomate2/jobflow flows locally with a per-candidate store, and collecting failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobflow import Flow, JobStore, run_locally

from icrdesign.io import read_json
from icrdesign.validation.gpaw import FAILURE_FILE


def make_store(directory: Path, store_uri: str | None = None) -> JobStore:
    """A JSON-backed maggma store in DIRECTORY (or a MongoDB store when ``store_uri`` is given)."""
    if store_uri:
        from maggma.stores import MongoURIStore

        return JobStore(MongoURIStore(store_uri, collection_name="icrdesign_outputs"),
                        additional_stores={"data": MongoURIStore(store_uri, collection_name="icrdesign_data")})
    from maggma.stores import JSONStore

    directory.mkdir(parents=True, exist_ok=True)
    docs = JSONStore(str(directory / "jobflow_outputs.json"), read_only=False)
    data = JSONStore(str(directory / "jobflow_data.json"), read_only=False)
    return JobStore(docs, additional_stores={"data": data})


def run_flow(flow: Flow, work_dir: Path, store_uri: str | None = None) -> dict[str, Any]:
    """Run FLOW in WORK_DIR (one folder per job); return {job uuid: output} of the jobs that finished."""
    work_dir.mkdir(parents=True, exist_ok=True)
    responses = run_locally(flow, store=make_store(work_dir, store_uri), create_folders=True,
                            root_dir=work_dir, ensure_success=False, log=False)
    return {uuid: max(by_index.items())[1].output for uuid, by_index in responses.items()}


def recorded_failures(work_dir: Path) -> list[dict[str, Any]]:
    """Failure records the DFT makers wrote under WORK_DIR (newest last)."""
    paths = sorted(work_dir.rglob(FAILURE_FILE), key=lambda path: path.stat().st_mtime)
    return [read_json(path) for path in paths]
