"""Materials Project source: download summary documents with mp-api into the dataset table.

The query (filters from ``data.materials_project``) goes through ``mp_api.client.MPRester``'s summary
search, paged by ``chunk_size``. Every HTTP request, the heartbeat included, is retried with
exponential backoff on network errors, HTTP 429/5xx and a reply that is not JSON by the session
handed to the client (mp-api's own session retries only 429/502/504, three times, and its heartbeat
not at all). The raw documents are cached per query under the output directory, so a rerun with the
same query makes no request. Documents are screened by the rules every source shares: a repeated id
and a missing, non-numeric, non-finite or implausible property (``icrdesign.checks``) are rejected
rows, and a numeric string such as ``"1.5"`` is read as the number.

The reference convex hull of the stability check (:mod:`icrdesign.stability`) needs every stable
phase of a chemical system, whatever the dataset's filters: :func:`fetch_thermo` downloads them
from the thermo endpoint (GGA_GGA+U, MP2020-corrected formation energies) through the same client,
session and key handling, cached per chemical system.

The API key is read from ``MP_API_KEY`` and sent only as a request header: it is never logged,
cached, written to provenance or included in an error message.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import requests
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from requests.adapters import HTTPAdapter
from tqdm.auto import tqdm
from urllib3.util.retry import Retry

from icrdesign.artefacts.dataset import (
    MISSING_PROPERTY,
    PROPERTY_COLUMNS,
    REJECTED_COLUMNS,
    TABLE_COLUMNS,
    TABLE_DTYPES,
    screen_rows,
)
from icrdesign.checks import as_number
from icrdesign.errors import ConfigError, InputError
from icrdesign.io import atomic_path

log = logging.getLogger(__name__)

API_KEY_ENV = "MP_API_KEY"
ENDPOINT_ENV = "MP_API_ENDPOINT"
DEFAULT_ENDPOINT = "https://api.materialsproject.org/"
SUMMARY_FIELDS = (
    "material_id", "formula_pretty", "structure", "formation_energy_per_atom", "band_gap",
    "energy_above_hull", "symmetry",
)
RETRY_STATUSES = (429, 500, 502, 503, 504)
REQUEST_TIMEOUT_S = 60
CACHE_SUBDIR = "mp_cache"
#: The thermo data of the stability hull: MP's mixed GGA/GGA+U energies with the MP2020 corrections,
#: the scale the candidates' formation energies are on (not the r2SCAN mixing, MP's default).
THERMO_TYPE = "GGA_GGA+U"
THERMO_ROUTE = "materials/thermo"
#: Stable phases only (they alone make the hull), with the fields the hull reads.
THERMO_FIELDS = ("material_id", "formula_pretty", "chemsys", "thermo_type", "formation_energy_per_atom",
                 "energy_above_hull", "is_stable")
#: Asked for too when the phases are to be relaxed: the thermo route serves no ``structure`` field,
#: but its entries (one ComputedStructureEntry per run type, a few kB each) hold the structure.
THERMO_STRUCTURE_FIELD = "entries"
#: Chemical systems per thermo request: a comma-separated list, kept well inside URL limits.
THERMO_SYSTEMS_PER_REQUEST = 50
_API_KEY_PATTERN = re.compile(r"[A-Za-z0-9]{32}")


class APIKeyError(ConfigError):
    """MP_API_KEY is missing or malformed (the message never contains the key)."""


class MaterialsProjectError(InputError):
    """The Materials Project, the dataset stage's input, could not be read; the message says why and
    at which URL (never with the key). A command stops on it with one line and exit code 2."""


class _Rejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


def read_api_key(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """Return the key from ``MP_API_KEY``; raise APIKeyError when it is missing or malformed."""
    key = environ.get(API_KEY_ENV, "").strip()
    hint = (
        "Get a key at https://next-gen.materialsproject.org/api and export it, "
        "or set `data.source: demo` to build the offline demo dataset instead."
    )
    if not key:
        raise APIKeyError(f"data.source is materials_project but the environment variable {API_KEY_ENV} is not set. {hint}")
    if not _API_KEY_PATTERN.fullmatch(key):
        raise APIKeyError(
            f"the environment variable {API_KEY_ENV} is malformed: a Materials Project API key is "
            f"32 letters and digits, the value given has {len(key)} characters. {hint}"
        )
    return key


def resolve_endpoint(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """The API root: ``MP_API_ENDPOINT`` when set, else the public Materials Project API."""
    endpoint = environ.get(ENDPOINT_ENV, "").strip() or DEFAULT_ENDPOINT
    if not endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"the environment variable {ENDPOINT_ENV} must be an http(s) URL, got {endpoint!r}")
    return endpoint if endpoint.endswith("/") else endpoint + "/"


def search_criteria(settings: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``SummaryRester.search`` for the configured filters.

    The ranges are always sent: mp-api answers a search without any filter from a public S3
    bucket instead of the endpoint, which would bypass both the filters and MP_API_ENDPOINT.
    """
    criteria: dict[str, Any] = {
        "num_elements": (settings["min_elements"], settings["max_elements"]),
        "num_sites": (1, settings["max_sites"]),
        "energy_above_hull": (0.0, settings["max_energy_above_hull"]),
    }
    if settings["include_elements"]:
        criteria["elements"] = sorted(settings["include_elements"])
    if settings["exclude_elements"]:
        criteria["exclude_elements"] = sorted(settings["exclude_elements"])
    if settings["exclude_deprecated"]:
        criteria["deprecated"] = False
    return criteria


def query_record(settings: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """Everything that determines the downloaded documents (the cache key; recorded in provenance)."""
    return {
        "endpoint": endpoint,
        "route": "materials/summary",
        "criteria": {key: list(value) if isinstance(value, tuple) else value
                     for key, value in search_criteria(settings).items()},
        "fields": list(SUMMARY_FIELDS),
    }


def query_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def fetch_materials_project(
    settings: dict[str, Any], cache_dir: Path, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Download (or reuse the cached download of) the configured query and build the dataset table.

    Returns the table (dataset schema), the rejected documents (material_id, reason, detail) and
    provenance entries. ``seed`` is accepted for the common source interface; the download is
    deterministic and the table is sorted by material_id.
    """
    api_key = read_api_key()
    endpoint = resolve_endpoint()
    record = query_record(settings, endpoint)
    digest = query_hash(record)
    cache_path = Path(cache_dir) / CACHE_SUBDIR / f"summary_{digest}.json.gz"

    cached = _read_cache(cache_path, record)
    if cached is None:
        log.info("Materials Project: querying %s (query %s)", endpoint, digest)
        docs, db_version = download_summary(api_key, endpoint, settings)
        cached = {
            "query": record,
            "database_version": db_version,
            "retrieved": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "documents": docs,
        }
        _write_cache(cache_path, cached)
        cache_hit = False
    else:
        log.info("Materials Project: reusing cached download %s", cache_path)
        cache_hit = True

    table, rejected = documents_to_table(cached["documents"])
    counts = rejected["reason"].value_counts().to_dict() if len(rejected) else {}
    log.info("Materials Project: %d documents, %d kept, %d rejected %s", len(cached["documents"]), len(table),
             len(rejected), counts)
    provenance = {
        "database_version": cached["database_version"],
        "query": record,
        "query_hash": digest,
        "retrieved": cached["retrieved"],
        "cache_hit": cache_hit,
        "cache_file": cache_path.name,
        "n_docs": len(cached["documents"]),
        "n_accepted": len(table),
        "n_rejected": len(rejected),
        "rejected_by_reason": {str(k): int(v) for k, v in counts.items()},
        "mp_api_version": importlib.metadata.version("mp-api"),
    }
    return table, rejected, provenance


def download_summary(api_key: str, endpoint: str, settings: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """Run the summary search; return the raw documents and the database version (heartbeat)."""
    return _run_query(api_key, endpoint, settings, lambda rester: rester.materials.summary.search(
        **search_criteria(settings),
        fields=list(SUMMARY_FIELDS),
        all_fields=False,
        chunk_size=settings["chunk_size"],
    ))


def _run_query(api_key: str, endpoint: str, settings: dict[str, Any],
               search: Callable[[Any], Iterable[Any]]) -> tuple[list[dict[str, Any]], str]:
    """Run ``search(rester)`` with an ``MPRester`` on the retrying session; return the documents as
    dicts and the database version (heartbeat). Every failure is a MaterialsProjectError naming the
    endpoint, never the key."""
    from mp_api.client import MPRester  # heavy import: only when a download is needed
    from mp_api.client.core.exceptions import MPRestError

    session = _RetryingSession(api_key, settings["max_retries"], settings["retry_backoff"])
    try:
        db_version = _heartbeat_db_version(session, endpoint)
        with MPRester(api_key=api_key, endpoint=endpoint, session=session, use_document_model=False,
                      mute_progress_bars=False) as rester:
            docs = list(search(rester))
    except MaterialsProjectError as exc:
        message = str(exc)
    except (MPRestError, requests.RequestException) as exc:
        message = f"Materials Project query to {endpoint} failed after up to {settings['max_retries']} retries: {exc}"
    except (ValueError, KeyError) as exc:  # a JSON reply without the fields the client expects
        message = (f"Materials Project query to {endpoint} got a reply the client cannot read "
                   f"({type(exc).__name__}: {exc}); not retried")
    else:
        return [dict(doc) for doc in docs], db_version
    raise MaterialsProjectError(message.replace(api_key, "<MP_API_KEY>")) from None


def thermo_fields(with_structures: bool) -> list[str]:
    """The thermo fields asked for: :data:`THERMO_FIELDS`, and the entries for the structures."""
    return [*THERMO_FIELDS, THERMO_STRUCTURE_FIELD] if with_structures else list(THERMO_FIELDS)


def thermo_query_record(endpoint: str, chemical_system: str, with_structures: bool) -> dict[str, Any]:
    """Everything that determines one chemical system's thermo documents (its cache key)."""
    return {
        "endpoint": endpoint,
        "route": THERMO_ROUTE,
        "criteria": {"chemsys": chemical_system, "thermo_types": [THERMO_TYPE], "is_stable": True},
        "fields": thermo_fields(with_structures),
    }


def thermo_cache_path(cache_dir: Path, endpoint: str, chemical_system: str, with_structures: bool) -> Path:
    """``CACHE_DIR/mp_cache/thermo_<hash of endpoint and query>/<chemsys>.json.gz``."""
    shared = thermo_query_record(endpoint, "", with_structures)
    return Path(cache_dir) / CACHE_SUBDIR / f"thermo_{query_hash(shared)}" / f"{chemical_system}.json.gz"


def thermo_structure(doc: dict[str, Any]) -> Structure | None:
    """The structure of a thermo document fetched with structures (from its first entry that has one)."""
    for entry in (doc.get(THERMO_STRUCTURE_FIELD) or {}).values():
        if isinstance(entry, dict) and entry.get("structure"):
            return Structure.from_dict(entry["structure"])
    return None


def fetch_thermo(chemical_systems: Iterable[str], settings: dict[str, Any], cache_dir: Path,
                 with_structures: bool = False) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """The stable GGA_GGA+U thermo documents of each chemical system (exactly that system, not its
    sub-systems), downloaded once and cached per system under ``cache_dir``.

    A system with no stable phase is cached too (no documents), so a rerun, or a new candidate in a
    known system, makes no request; the key is read only when something must be downloaded.

    Args:
        chemical_systems: systems as ``"Cl-Na"`` (element symbols, any order, joined by ``-``).
        settings: the config's ``data.materials_project`` (chunk_size, max_retries, retry_backoff).
        cache_dir: the folder that holds ``mp_cache/``.
        with_structures: also download each phase's structure (:func:`thermo_structure`); cached
            apart from the documents without.

    Returns:
        The documents per system (sorted ``chemsys`` as key) and provenance: the database versions
        of the documents, the endpoint and the numbers of systems read from the cache and downloaded.

    Raises:
        APIKeyError: a download is needed and MP_API_KEY is missing or malformed.
        MaterialsProjectError: the download failed (the message names the endpoint, never the key).
    """
    endpoint = resolve_endpoint()
    systems = sorted({_normalised_system(system) for system in chemical_systems})
    payloads: dict[str, dict[str, Any]] = {}
    missing = []
    for system in systems:
        cached = _read_cache(thermo_cache_path(cache_dir, endpoint, system, with_structures),
                             thermo_query_record(endpoint, system, with_structures))
        if cached is None:
            missing.append(system)
        else:
            payloads[system] = cached
    if missing:
        api_key = read_api_key()
        log.info("Materials Project: downloading the %s thermo data of %d chemical systems from %s (%d cached)",
                 THERMO_TYPE, len(missing), endpoint, len(payloads))

        def search(rester: Any) -> Iterable[Any]:
            for start in range(0, len(missing), THERMO_SYSTEMS_PER_REQUEST):
                yield from rester.materials.thermo.search(
                    chemsys=missing[start:start + THERMO_SYSTEMS_PER_REQUEST], thermo_types=[THERMO_TYPE],
                    is_stable=True, fields=thermo_fields(with_structures), all_fields=False,
                    chunk_size=settings["chunk_size"])

        docs, db_version = _run_query(api_key, endpoint, settings, search)
        by_system: dict[str, list[dict[str, Any]]] = {system: [] for system in missing}
        for doc in docs:
            system = _normalised_system(str(doc.get("chemsys") or ""))
            if system in by_system:
                by_system[system].append(doc)
        retrieved = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        for system, system_docs in by_system.items():
            payloads[system] = {"query": thermo_query_record(endpoint, system, with_structures),
                                "database_version": db_version, "retrieved": retrieved, "documents": system_docs}
            _write_cache(thermo_cache_path(cache_dir, endpoint, system, with_structures), payloads[system])
    provenance = {
        "endpoint": endpoint,
        "thermo_type": THERMO_TYPE,
        "database_versions": sorted({payload["database_version"] for payload in payloads.values()}),
        "n_systems": len(systems),
        "n_downloaded": len(missing),
        "n_cached": len(systems) - len(missing),
    }
    return {system: payloads[system]["documents"] for system in systems}, provenance


def _normalised_system(chemical_system: str) -> str:
    """One spelling per chemical system (symbols sorted), as the cache key and MP's ``chemsys``."""
    return "-".join(sorted(chemical_system.split("-")))


class _RetryingSession(requests.Session):
    """The HTTP session handed to mp-api: the key as a header; retries with exponential backoff.

    Network errors and HTTP 429/5xx are retried by urllib3 in the adapter. A 200 reply whose body is
    not JSON (a proxy's error page, a body cut off in transit) is as transient, but only visible
    here, so it is retried with the same budget and backoff; if the last try is no better,
    MaterialsProjectError names the URL and what came back.
    """

    def __init__(self, api_key: str, max_retries: int, backoff: float) -> None:
        super().__init__()
        self.max_retries = max_retries
        self.backoff = backoff
        self.headers["x-api-key"] = api_key
        retry = Retry(
            total=max_retries,
            connect=max_retries,
            read=max_retries,
            status=max_retries,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}),
            backoff_factor=backoff,
            respect_retry_after_header=True,
            # Hand the last error response to mp-api so its message names the status code.
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        for attempt in range(self.max_retries + 1):
            response = super().send(request, **kwargs)
            if response.status_code != 200 or _is_json(response.content):
                return response
            if attempt < self.max_retries:
                log.warning("Materials Project: reply from %s is not JSON; retrying (%d of %d)", response.url,
                            attempt + 1, self.max_retries)
                time.sleep(self.backoff * 2**attempt)
        raise MaterialsProjectError(
            f"Materials Project reply from {response.url} is not JSON after {self.max_retries + 1} tries "
            f"(HTTP 200, {len(response.content)} bytes starting {response.content[:60]!r}); "
            "check the endpoint and any proxy between, or retry later")


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return False
    return True


def _heartbeat_db_version(session: requests.Session, endpoint: str) -> str:
    """The database version from ``heartbeat``, fetched with retries (mp-api's own call has none)."""
    response = session.get(endpoint + "heartbeat", timeout=REQUEST_TIMEOUT_S)
    if response.status_code != 200:
        raise MaterialsProjectError(f"heartbeat at {endpoint} answered HTTP {response.status_code}")
    return str(response.json()["db_version"])


def _read_cache(path: Path, record: dict[str, Any]) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            payload = json.load(handle)
    except (OSError, EOFError, ValueError) as exc:
        log.warning("Materials Project: ignoring unreadable cache %s (%s); downloading again", path, exc)
        return None
    if payload.get("query") != record:
        log.warning("Materials Project: cache %s holds another query; downloading again", path)
        return None
    return payload


def _write_cache(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp, gzip.open(tmp, "wt", encoding="utf-8") as handle:
        json.dump(payload, handle)


def documents_to_table(docs: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse summary documents into dataset rows; bad documents become rejected rows with a reason.

    A document without a structure, or with one pymatgen cannot read, is refused here; a repeated
    id and the property values are checked by the rules every source shares
    (:func:`icrdesign.artefacts.dataset.screen_rows`).
    """
    rows: list[dict[str, Any]] = []
    rejected: list[dict[str, str]] = []
    for doc in tqdm(docs, desc="Parsing Materials Project documents", unit="doc"):
        material_id = str(doc.get("material_id") or "")
        try:
            rows.append(_document_row(material_id, doc))
        except _Rejected as bad:
            rejected.append({"material_id": material_id, "reason": bad.reason, "detail": bad.detail})
    table, screened_out = screen_rows(pd.DataFrame(rows, columns=list(TABLE_COLUMNS)))
    table = table.sort_values("material_id", key=lambda ids: ids.map(_natural_key), ignore_index=True)
    table = table.astype(TABLE_DTYPES)
    return table, pd.concat([pd.DataFrame(rejected, columns=list(REJECTED_COLUMNS)), screened_out], ignore_index=True)


def _document_row(material_id: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The dataset row of one document, its property values as given (numbers or numeric text)."""
    missing = [name for name in ("material_id", "structure") if not doc.get(name)]
    if missing:
        raise _Rejected(MISSING_PROPERTY, ", ".join(missing))
    try:
        structure = Structure.from_dict(doc["structure"])
        if len(structure) == 0:
            raise ValueError("structure has no sites")
        spacegroup = (doc.get("symmetry") or {}).get("symbol") or SpacegroupAnalyzer(structure).get_space_group_symbol()
    except Exception as exc:  # noqa: BLE001 - any failure to parse untrusted input rejects only this row
        raise _Rejected("unparsable_structure", f"{type(exc).__name__}: {exc}"[:300]) from None
    e_hull = as_number(doc.get("energy_above_hull"))
    return {
        "material_id": material_id,
        "formula": structure.composition.reduced_formula,
        "structure": json.dumps(structure.as_dict()),
        "nsites": len(structure),
        "nelements": len(structure.composition.elements),
        "spacegroup": str(spacegroup),
        **{name: doc.get(name) for name in PROPERTY_COLUMNS},
        # Optional: unknown (NaN) when absent or not a finite number.
        "energy_above_hull": e_hull if e_hull is not None and math.isfinite(e_hull) else math.nan,
        "source": "materials_project",
        "label_source": "materials_project",
    }


def _natural_key(material_id: str) -> tuple[str, int]:
    """Sort mp-2 before mp-10."""
    prefix, _, number = material_id.rpartition("-")
    return (prefix, int(number)) if number.isdigit() else (material_id, -1)
