"""A local stand-in for the Materials Project REST API, for tests of the mp-api download path.

It implements what ``mp_api.client.MPRester`` calls for a summary search: ``GET /heartbeat`` and
``GET /materials/summary/`` with ``_fields``, ``_limit``, ``_skip``, the summary filters the
pipeline sends and ``meta.total_doc``; and for a thermo search, ``GET /materials/thermo/`` with the
same paging and the ``chemsys`` (a comma-separated list of exact systems), ``thermo_types`` and
``is_stable`` filters. Documents are built from pymatgen structures in the Materials Project
summary and thermo schemas. The server records every request and can be told to fail the
next requests (an HTTP status or a dropped connection) to exercise the client's retries.
"""

from __future__ import annotations

import copy
import functools
import gzip
import json
import math
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pymatgen.core import Lattice, Structure
from pymatgen.entries.computed_entries import ComputedStructureEntry
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

SUMMARY_PATH = "/materials/summary/"
THERMO_PATH = "/materials/thermo/"
HEARTBEAT_PATH = "/heartbeat"
DB_VERSION = "2025.09.25"
EMMET_VERSION = "0.87.3"

# Filters the server understands: <field>_min / <field>_max ranges over these document fields.
RANGE_FIELDS = ("nelements", "nsites", "energy_above_hull", "formation_energy_per_atom", "band_gap")


def summary_doc(
    material_id: str,
    structure: Structure | Any,
    formation_energy_per_atom: float | None,
    band_gap: float | None,
    energy_above_hull: float | None,
    deprecated: bool = False,
) -> dict[str, Any]:
    """A summary document as the Materials Project serves it (the fields this pipeline reads).

    ``structure`` may be anything JSON-serialisable to model a corrupt record; the derived
    fields (formula, symmetry, counts) then have to be given by hand through the valid cases.
    """
    doc: dict[str, Any] = {
        "material_id": material_id,
        "formation_energy_per_atom": formation_energy_per_atom,
        "band_gap": band_gap,
        "energy_above_hull": energy_above_hull,
        "deprecated": deprecated,
        "builder_meta": {"license": "BY-4.0"},
    }
    if isinstance(structure, Structure):
        analyzer = SpacegroupAnalyzer(structure, symprec=0.1)
        elements = sorted(el.symbol for el in structure.composition.elements)
        doc.update(
            structure=structure.as_dict(),
            formula_pretty=structure.composition.reduced_formula,
            nsites=len(structure),
            nelements=len(elements),
            elements=elements,
            chemsys="-".join(elements),
            symmetry={
                "crystal_system": analyzer.get_crystal_system().capitalize(),
                "symbol": analyzer.get_space_group_symbol(),
                "number": analyzer.get_space_group_number(),
                "point_group": analyzer.get_point_group_symbol(),
                "symprec": 0.1,
                "version": "2.6.0",
            },
        )
    else:
        doc.update(structure=structure, formula_pretty="Xx", nsites=1, nelements=1, elements=["Fe"],
                   chemsys="Fe", symmetry=None)
    return doc


def thermo_doc(
    material_id: str,
    structure: Structure,
    formation_energy_per_atom: float,
    energy_above_hull: float,
    thermo_type: str = "GGA_GGA+U",
) -> dict[str, Any]:
    """A thermo document as the Materials Project serves it (the fields the stability hull reads)."""
    elements = sorted(el.symbol for el in structure.composition.elements)
    return {
        "material_id": material_id,
        "thermo_id": f"{material_id}_{thermo_type}",
        "thermo_type": thermo_type,
        "formula_pretty": structure.composition.reduced_formula,
        "composition": structure.composition.as_dict(),
        "chemsys": "-".join(elements),
        "elements": elements,
        "nelements": len(elements),
        "nsites": len(structure),
        "formation_energy_per_atom": formation_energy_per_atom,
        "energy_above_hull": energy_above_hull,
        "is_stable": energy_above_hull == 0.0,
        # The thermo route serves structures only inside its entries, one per run type.
        "entries": {"GGA": ComputedStructureEntry(
            structure, formation_energy_per_atom * len(structure), entry_id=f"{material_id}-GGA",
            parameters={"run_type": "GGA"}).as_dict()},
    }


@functools.cache
def _reference_thermo_documents() -> tuple[dict[str, Any], ...]:
    rocksalt = _fcc(5.64, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    perovskite = Structure(
        Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    sro = _fcc(5.16, ["Sr", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    fluorite_na2o = _fcc(5.55, ["O", "Na", "Na"], [[0, 0, 0], [0.25, 0.25, 0.25], [0.75, 0.75, 0.75]])
    sodium = Structure(Lattice.cubic(4.23), ["Na", "Na"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return (
        thermo_doc("mp-22862", rocksalt, -2.10, 0.0),
        thermo_doc("mp-573697", cscl, -2.19, 0.0),
        thermo_doc("mp-5229", perovskite, -3.56, 0.0),
        thermo_doc("mp-2472", sro, -3.07, 0.0),
        thermo_doc("mp-2352", fluorite_na2o, -1.41, 0.0),
        thermo_doc("mp-127", sodium, 0.0, 0.0),
        thermo_doc("mp-1185", cscl.copy().replace_species({"Cs": "Na"}), -1.95, 0.15),  # above the hull
        thermo_doc("mp-22862", rocksalt.copy(), -2.30, 0.0, thermo_type="R2SCAN"),  # another scale
    )


def reference_thermo_documents() -> list[dict[str, Any]]:
    """A fresh copy of the reference thermo documents: stable GGA_GGA+U phases of Cl-Na, Cl-Cs,
    O-Sr-Ti, O-Sr and Na-O and elemental Na; an unstable NaCl polymorph; NaCl on the r2SCAN scale.
    Cs-Na and Na-Sr have no compound."""
    return copy.deepcopy(list(_reference_thermo_documents()))


def _fcc(a: float, species: list[str], coords: list[list[float]]) -> Structure:
    """A primitive face-centred cubic cell of cubic lattice constant ``a``."""
    half = a / 2
    return Structure(Lattice([[0, half, half], [half, 0, half], [half, half, 0]]), species, coords)


@functools.cache
def _reference_documents() -> tuple[dict[str, Any], ...]:
    return tuple(_build_reference_documents())


def reference_documents() -> list[dict[str, Any]]:
    """A fresh copy of the twelve reference documents (built once per process)."""
    return copy.deepcopy(list(_reference_documents()))


def _build_reference_documents() -> list[dict[str, Any]]:
    """Twelve documents: eight match the default query, four do not.

    Default query (1-4 elements, <= 20 sites, E_hull <= 0.08, not deprecated) matches mp-1 ... mp-6,
    mp-9 and mp-10; mp-9 has no band gap and mp-10 an unparsable structure, so six are kept.
    """
    rocksalt = _fcc(5.64, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    silicon = _fcc(5.43, ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    rocksalt_conventional = Structure(
        Lattice.cubic(5.64), ["Na"] * 4 + ["Cl"] * 4,
        [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
         [0.5, 0.5, 0.5], [0, 0, 0.5], [0, 0.5, 0], [0.5, 0, 0]],
    )
    cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    perovskite = Structure(
        Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    gaas = _fcc(5.65, ["Ga", "As"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    pbte = Structure(Lattice.cubic(6.46), ["Pb", "Te"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    five_elements = Structure(
        Lattice.cubic(6.0), ["Li", "Na", "K", "Cl", "Br"],
        [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5], [0.5, 0.5, 0.5]],
    )
    return [
        summary_doc("mp-1", silicon, 0.0, 0.61, 0.0),
        summary_doc("mp-2", rocksalt, -2.09, 5.0, 0.0),
        summary_doc("mp-3", cscl, -2.15, 5.2, 0.012),
        summary_doc("mp-4", perovskite, -3.48, 1.77, 0.0),
        summary_doc("mp-5", gaas, -0.45, 0.19, 0.0),
        summary_doc("mp-6", pbte, -0.61, 0.7, 0.05),
        summary_doc("mp-7", rocksalt_conventional * (2, 2, 2), -2.0, 4.9, 0.0),  # 64 sites
        summary_doc("mp-8", cscl, -1.9, 4.0, 0.21),  # far above the hull
        summary_doc("mp-9", pbte.copy(), -0.55, None, 0.0),  # band gap missing
        summary_doc("mp-10", {"lattice": {"matrix": [[1, 0], [0, 1]]}, "sites": "corrupt"}, -1.0, 1.0, 0.0),
        summary_doc("mp-11", five_elements, -1.5, 3.0, 0.0),  # five elements
        summary_doc("mp-12", silicon, 0.01, 0.6, 0.0, deprecated=True),
    ]


@dataclass
class RecordedRequest:
    path: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class MPTestServer:
    """The fake API on 127.0.0.1 with an ephemeral port; use as a context manager."""

    documents: list[dict[str, Any]] = field(default_factory=reference_documents)
    thermo_documents: list[dict[str, Any]] = field(default_factory=reference_thermo_documents)
    db_version: str = DB_VERSION
    # When set, summary and thermo requests must carry this key in ``x-api-key`` (403 otherwise, as the real API).
    api_key: str | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    # Failures to inject, consumed in order by requests whose path starts with the given prefix:
    # (path prefix, HTTP status or 0 for a dropped connection).
    failures: list[tuple[str, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> MPTestServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def fail_next(self, path_prefix: str, status: int, times: int = 1) -> None:
        with self._lock:
            self.failures.extend([(path_prefix, status)] * times)

    def summary_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == SUMMARY_PATH]

    def thermo_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == THERMO_PATH]

    def _take_failure(self, path: str) -> int | None:
        with self._lock:
            for i, (prefix, status) in enumerate(self.failures):
                if path.startswith(prefix):
                    del self.failures[i]
                    return status
        return None

    def search(self, params: dict[str, str], documents: list[dict[str, Any]] | None = None,
               ) -> tuple[list[dict[str, Any]], int]:
        """Apply the filters, then ``_skip``/``_limit`` and the ``_fields`` projection, to
        ``documents`` (default: the summary documents)."""
        docs = [doc for doc in (self.documents if documents is None else documents) if _matches(doc, params)]
        skip = int(params.get("_skip", 0))
        limit = int(params.get("_limit", 1000))
        page = docs[skip : skip + limit]
        if "_fields" in params and not _is_true(params.get("_all_fields", "false")):
            wanted = params["_fields"].split(",")
            page = [{name: doc.get(name) for name in wanted} for doc in page]
        return page, len(docs)


def _is_true(value: str) -> bool:
    return value.strip().lower() in {"true", "1"}


def _matches(doc: dict[str, Any], params: dict[str, str]) -> bool:
    for name in RANGE_FIELDS:
        value = doc.get(name)
        low = params.get(f"{name}_min")
        high = params.get(f"{name}_max")
        if (low is not None or high is not None) and (value is None or (isinstance(value, float) and math.isnan(value))):
            return False
        if low is not None and value < float(low):
            return False
        if high is not None and value > float(high):
            return False
    elements = set(doc.get("elements") or [])
    if "elements" in params and not set(params["elements"].split(",")) <= elements:
        return False
    if "exclude_elements" in params and set(params["exclude_elements"].split(",")) & elements:
        return False
    if "deprecated" in params and doc["deprecated"] != _is_true(params["deprecated"]):
        return False
    if "chemsys" in params and doc.get("chemsys") not in params["chemsys"].split(","):
        return False
    if "thermo_types" in params and doc.get("thermo_type") not in params["thermo_types"].split(","):
        return False
    if "is_stable" in params and doc.get("is_stable") != _is_true(params["is_stable"]):
        return False
    return True


def _handler_for(server: MPTestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
            return

        def _reply(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            parts = urlsplit(self.path)
            params = {key: values[-1] for key, values in parse_qs(parts.query).items()}
            with server._lock:
                server.requests.append(RecordedRequest(parts.path, params, dict(self.headers.items())))
            failure = server._take_failure(parts.path)
            if failure == 0:
                self.close_connection = True
                self.connection.shutdown(2)  # no response at all: a network error for the client
                return
            if failure is not None:
                self._reply(failure, {"detail": f"injected failure {failure}"})
                return
            if parts.path == HEARTBEAT_PATH:
                self._reply(200, {"status": "OK", "version": EMMET_VERSION, "db_version": server.db_version,
                                  "access_controlled_batch_ids": []})
            elif (parts.path in (SUMMARY_PATH, THERMO_PATH) and server.api_key
                  and self.headers.get("x-api-key") != server.api_key):
                self._reply(403, {"detail": "Invalid API key"})
            elif parts.path in (SUMMARY_PATH, THERMO_PATH):
                documents = server.documents if parts.path == SUMMARY_PATH else server.thermo_documents
                page, total = server.search(params, documents)
                self._reply(200, {"data": page, "meta": {"total_doc": total, "max_limit": 1000}})
            else:
                self._reply(404, {"detail": "Not Found"})

    return Handler


def files_holding(root: Path, text: str) -> list[str]:
    """The files under ROOT (gzip ones read decompressed) that contain TEXT: where a secret leaked."""
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            if text.encode() in data:
                hits.append(str(path.relative_to(root)))
    return hits
