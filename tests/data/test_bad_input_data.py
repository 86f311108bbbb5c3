"""Bad input to the dataset stage (issue 21): every refused document or row names its cause.

Implausible or non-numeric properties and repeated ids from any source are rejected rows with a typed
reason, numeric text is read as a number, a source without a usable row stops with exit code 2
naming rejected.csv, a Materials Project reply that is not JSON is retried and then named, and a
second writer on the same output folder is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from mp_server import SUMMARY_PATH, MPTestServer, reference_documents

import mp_server
from icrdesign.artefacts.dataset import (
    DUPLICATE_MATERIAL_ID,
    INVALID_PROPERTY,
    MISSING_MATERIAL_ID,
    MISSING_PROPERTY,
    screen_rows,
)
from icrdesign.cli import main as cli_main
from icrdesign.data import demo
from icrdesign.data.demo import build_demo_dataset
from icrdesign.data.materials_project import (
    API_KEY_ENV,
    ENDPOINT_ENV,
    MaterialsProjectError,
    documents_to_table,
    fetch_materials_project,
)
from icrdesign.config import load_config
from icrdesign.errors import InputError
from icrdesign.io import exclusive_lock

API_KEY = "Zq4TESTkeyNotReal0123456789abcdE"
#: A status the fake server is told to fail with that this module's handler answers with a 200
#: reply whose body is not JSON (a proxy's error page).
NOT_JSON = 299
NOT_JSON_BODY = b"<html><body>502 Bad Gateway (proxy)</body></html>"


def _documents(**changes: dict[str, Any]) -> list[dict[str, Any]]:
    """The six usable reference documents (mp-1 ... mp-6), some fields changed per material_id."""
    docs = [doc for doc in reference_documents() if doc["material_id"] in {f"mp-{i}" for i in range(1, 7)}]
    for doc in docs:
        doc.update(changes.get(doc["material_id"], {}))
    return docs


def test_implausible_and_textual_properties_from_materials_project() -> None:
    docs = _documents(**{
        "mp-1": {"band_gap": -3.0},
        "mp-2": {"band_gap": "1.5"},
        "mp-3": {"formation_energy_per_atom": "-2.15 eV"},
        "mp-4": {"formation_energy_per_atom": 55.0, "band_gap": float("inf")},
        "mp-5": {"band_gap": ""},
    })
    table, rejected = documents_to_table(docs)

    assert table["material_id"].tolist() == ["mp-2", "mp-6"]
    assert table.set_index("material_id").loc["mp-2", "band_gap"] == 1.5  # numeric text is a number
    assert table["band_gap"].dtype == np.float64
    reasons = rejected.set_index("material_id")
    assert reasons["reason"].to_dict() == {"mp-1": INVALID_PROPERTY, "mp-3": INVALID_PROPERTY,
                                           "mp-4": INVALID_PROPERTY, "mp-5": MISSING_PROPERTY}
    assert reasons.loc["mp-1", "detail"] == "band_gap = -3 is outside the plausible range [0, inf]"
    assert reasons.loc["mp-3", "detail"] == "formation_energy_per_atom is not a number: '-2.15 eV'"
    assert reasons.loc["mp-4", "detail"] == ("formation_energy_per_atom = 55 is outside the plausible range "
                                             "[-10, 10]; band_gap is not finite: inf")
    assert reasons.loc["mp-5", "detail"] == "band_gap"


def test_repeated_material_project_id_keeps_the_first_document() -> None:
    docs = _documents()
    repeat = dict(docs[1], band_gap=9.9)
    table, rejected = documents_to_table([*docs, repeat])
    assert table["material_id"].tolist() == ["mp-1", "mp-2", "mp-3", "mp-4", "mp-5", "mp-6"]
    assert table.set_index("material_id").loc["mp-2", "band_gap"] == 5.0
    assert rejected.to_dict("records") == [{
        "material_id": "mp-2", "reason": DUPLICATE_MATERIAL_ID,
        "detail": "row 6 repeats the material_id of row 1, which is the one kept"}]


def test_shared_row_checks_refuse_missing_ids_and_keep_the_first_of_an_id() -> None:
    table = pd.DataFrame({"material_id": ["a", None, "a", "b"], "formation_energy_per_atom": [-1.0, -1.0, -1.0, "0.5"],
                          "band_gap": [1.0, 1.0, 2.0, "0"]})
    kept, rejected = screen_rows(table)
    assert kept["material_id"].tolist() == ["a", "b"]
    assert kept["formation_energy_per_atom"].tolist() == [-1.0, 0.5] and kept["band_gap"].tolist() == [1.0, 0.0]
    assert rejected["reason"].tolist() == [MISSING_MATERIAL_ID, DUPLICATE_MATERIAL_ID]
    assert rejected["detail"].tolist() == ["row 1 has no material_id",
                                           "row 2 repeats the material_id of row 0, which is the one kept"]


def test_implausible_demo_label_is_a_rejected_row(monkeypatch: pytest.MonkeyPatch) -> None:
    real_predict = demo.predict_properties

    def negative_gap_for_every_other(structures, **kwargs):
        frame = real_predict(structures, **kwargs)
        frame.loc[frame.index % 2 == 0, "band_gap"] = -3.0
        return frame

    monkeypatch.setattr(demo, "predict_properties", negative_gap_for_every_other)
    settings = {"n_structures": 8, "max_sites": 20, "volume_predictor": "dls", "n_jobs": 1}
    table, rejected, provenance = build_demo_dataset(settings, seed=5)
    assert len(table) == 8 and (table["band_gap"] >= 0).all()
    implausible = rejected[rejected["reason"] == INVALID_PROPERTY]
    assert len(implausible) >= 4
    assert implausible["detail"].str.endswith("band_gap = -3 is outside the plausible range [0, inf]").all()
    assert provenance["rejected_by_reason"][INVALID_PROPERTY] == len(implausible)


# --- through the command line, against the fake Materials Project ------------------------------------


@pytest.fixture()
def not_json_server(monkeypatch: pytest.MonkeyPatch) -> type[MPTestServer]:
    """MPTestServer whose injected failure NOT_JSON answers HTTP 200 with an HTML page."""
    make_handler = mp_server._handler_for

    def handler_for(server: MPTestServer) -> type:
        class Handler(make_handler(server)):
            def _reply(self, status: int, payload: Any) -> None:
                if status != NOT_JSON:
                    super()._reply(status, payload)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(NOT_JSON_BODY)))
                self.end_headers()
                self.wfile.write(NOT_JSON_BODY)

        return Handler

    monkeypatch.setattr(mp_server, "_handler_for", handler_for)
    return MPTestServer


def _mp_settings(**overrides: Any) -> dict[str, Any]:
    section = load_config()["data"]["materials_project"]
    return {**section, "chunk_size": 3, "retry_backoff": 0.0, "max_retries": 2, **overrides}


def test_reply_that_is_not_json_is_retried(not_json_server: type[MPTestServer], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with not_json_server(api_key=API_KEY) as server:
        monkeypatch.setenv(API_KEY_ENV, API_KEY)
        monkeypatch.setenv(ENDPOINT_ENV, server.url)
        server.fail_next(SUMMARY_PATH, NOT_JSON)
        table, _, _ = fetch_materials_project(_mp_settings(), tmp_path, seed=0)
        assert table["material_id"].tolist() == [f"mp-{i}" for i in range(1, 7)]
        assert server.failures == [] and len(server.summary_requests()) == 3 + 1  # one page twice


def test_reply_that_stays_not_json_is_named_with_its_url(not_json_server: type[MPTestServer], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    with not_json_server(api_key=API_KEY) as server:
        monkeypatch.setenv(API_KEY_ENV, API_KEY)
        monkeypatch.setenv(ENDPOINT_ENV, server.url)
        server.fail_next(SUMMARY_PATH, NOT_JSON, times=10)
        with pytest.raises(MaterialsProjectError) as info:
            fetch_materials_project(_mp_settings(), tmp_path, seed=0)
        message = str(info.value)
        assert message.startswith(f"Materials Project reply from {server.url}materials/summary/?")
        expected = f"is not JSON after 3 tries (HTTP 200, {len(NOT_JSON_BODY)} bytes starting {NOT_JSON_BODY!r}); "
        assert expected in message
        assert "retries" not in message and API_KEY not in message
        assert len(server.summary_requests()) == 3  # one try + max_retries

        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({"data": {"source": "materials_project", "materials_project": {
            "retry_backoff": 0.0, "max_retries": 1}}}))
        assert cli_main(["dataset", "--config", str(config), "--out", str(tmp_path / "data")]) == 2
        stderr = capsys.readouterr().err
        error = stderr.strip().splitlines()[-1]
        assert "Traceback" not in stderr
        assert error.startswith("icrdesign dataset: Materials Project reply from ")
        assert "is not JSON after 2 tries" in error
        assert API_KEY not in error


def test_source_without_a_usable_row_stops_naming_rejected_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    docs = _documents(**{f"mp-{i}": {"band_gap": -1.0} for i in range(1, 7)})
    with MPTestServer(api_key=API_KEY, documents=docs) as server:
        monkeypatch.setenv(API_KEY_ENV, API_KEY)
        monkeypatch.setenv(ENDPOINT_ENV, server.url)
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({"data": {"source": "materials_project"}}))
        out = tmp_path / "data"
        assert cli_main(["dataset", "--config", str(config), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (f"icrdesign dataset: {out / 'rejected.csv'}: the materials_project source gave no usable row "
                     "(6 rejected: {'invalid_property': 6}); no dataset written")
    rejected = pd.read_csv(out / "rejected.csv")
    assert rejected["reason"].tolist() == [INVALID_PROPERTY] * 6
    assert rejected["detail"].str.startswith("band_gap = -1 is outside").all()
    assert not (out / "dataset.parquet").exists() and not (out / ".icrdesign.lock").exists()


def test_second_writer_of_the_dataset_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    with exclusive_lock(out):
        assert cli_main(["dataset", "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"icrdesign dataset: {out} is locked by PID {os.getpid()} on host ")
    assert f"lock file {out / '.icrdesign.lock'}" in error and "\n" not in error
    assert not (out / "dataset.parquet").exists()


def test_lock_file_names_its_holder_and_goes_with_it(tmp_path: Path) -> None:
    with exclusive_lock(tmp_path) as lock_file:
        assert lock_file.read_text().startswith(f"PID {os.getpid()} on host ")
        with pytest.raises(InputError, match=f"is locked by PID {os.getpid()} "):
            with exclusive_lock(tmp_path):
                pass
    assert not lock_file.exists()
    with exclusive_lock(tmp_path):  # released: free again
        pass
    assert list(tmp_path.iterdir()) == []
