"""The Materials Project source, run with the real mp-api client against a local fake API server."""

from __future__ import annotations

import copy
import json
import math
import os
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st
from mp_server import files_holding, DB_VERSION, HEARTBEAT_PATH, SUMMARY_PATH, MPTestServer, reference_documents
from pymatgen.core import Structure

from workflow_runner import REPO as REPO_ROOT

from icrdesign.artefacts.dataset import REJECTED_COLUMNS, TABLE_COLUMNS
from icrdesign.config import load_config
from icrdesign.data.materials_project import (
    API_KEY_ENV,
    ENDPOINT_ENV,
    APIKeyError,
    MaterialsProjectError,
    documents_to_table,
    fetch_materials_project,
    read_api_key,
)

API_KEY = "Zq4TESTkeyNotReal0123456789abcdE"  # 32 letters and digits, as a real key
DEFAULT_KEPT = ["mp-1", "mp-2", "mp-3", "mp-4", "mp-5", "mp-6"]
DEFAULT_MATCHED = 8  # six kept + mp-9 (no band gap) + mp-10 (corrupt structure)


@pytest.fixture()
def server() -> MPTestServer:
    with MPTestServer(api_key=API_KEY) as srv:
        yield srv


@pytest.fixture()
def mp_env(server: MPTestServer, monkeypatch: pytest.MonkeyPatch) -> MPTestServer:
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    monkeypatch.setenv(ENDPOINT_ENV, server.url)
    return server


@pytest.fixture()
def mp_settings() -> dict[str, Any]:
    """Defaults of config.yaml's data.materials_project, with pages of three and no backoff waits."""
    section = load_config()["data"]["materials_project"]
    return {**section, "chunk_size": 3, "retry_backoff": 0.0, "max_retries": 3}


def test_happy_path_table_rejections_and_provenance(mp_env: MPTestServer, mp_settings: dict, tmp_path: Path) -> None:
    table, rejected, provenance = fetch_materials_project(mp_settings, tmp_path, seed=0)

    assert list(table.columns) == list(TABLE_COLUMNS)
    assert table["material_id"].tolist() == DEFAULT_KEPT
    assert set(table["source"]) == {"materials_project"} and set(table["label_source"]) == {"materials_project"}
    originals = {doc["material_id"]: doc for doc in reference_documents()}
    for row in table.itertuples():
        structure = Structure.from_dict(json.loads(row.structure))
        assert structure == Structure.from_dict(originals[row.material_id]["structure"])
        assert row.nsites == len(structure) <= mp_settings["max_sites"]
        assert row.nelements == len(structure.composition.elements) <= mp_settings["max_elements"]
        assert row.formula == structure.composition.reduced_formula
        assert row.band_gap == originals[row.material_id]["band_gap"]
        assert row.energy_above_hull <= mp_settings["max_energy_above_hull"]
    assert table.set_index("material_id").loc["mp-2", "spacegroup"] == "Fm-3m"
    assert table.set_index("material_id").loc["mp-4", "formula"] == "SrTiO3"

    assert list(rejected.columns) == list(REJECTED_COLUMNS)
    assert rejected.set_index("material_id")["reason"].to_dict() == {
        "mp-9": "missing_property", "mp-10": "unparsable_structure"}
    assert rejected.set_index("material_id").loc["mp-9", "detail"] == "band_gap"

    assert provenance["database_version"] == DB_VERSION
    assert provenance["n_docs"] == DEFAULT_MATCHED
    assert (provenance["n_accepted"], provenance["n_rejected"]) == (6, 2)
    assert provenance["rejected_by_reason"] == {"missing_property": 1, "unparsable_structure": 1}
    assert provenance["query"]["criteria"]["num_sites"] == [1, 20]
    assert provenance["cache_hit"] is False

    # The filters reached the server, the pages were fetched with _limit/_skip, the key as a header.
    pages = mp_env.summary_requests()
    assert [page.params.get("_skip") for page in pages] == [None, "3", "6"]
    assert [page.params["_limit"] for page in pages] == ["3", "3", "2"]
    first = pages[0].params
    assert (first["nsites_min"], first["nsites_max"]) == ("1", "20")
    assert (first["nelements_min"], first["nelements_max"]) == ("1", "4")
    assert float(first["energy_above_hull_max"]) == pytest.approx(0.08)
    assert first["deprecated"].lower() == "false"
    assert set(first["_fields"].split(",")) >= {"material_id", "structure", "band_gap", "symmetry"}
    assert all(page.headers.get("x-api-key") == API_KEY for page in pages)


@pytest.mark.parametrize(
    ("overrides", "expected_ids", "param"),
    [
        ({"include_elements": ["O"]}, ["mp-4"], ("elements", "O")),
        ({"exclude_elements": ["Pb", "Cs"]}, ["mp-1", "mp-2", "mp-4", "mp-5"], ("exclude_elements", "Cs,Pb")),
        ({"exclude_deprecated": False, "max_sites": 2}, ["mp-1", "mp-2", "mp-3", "mp-5", "mp-6", "mp-12"],
         ("nsites_max", "2")),
        ({"max_elements": 5, "min_elements": 3}, ["mp-4", "mp-11"], ("nelements_min", "3")),
    ],
)
def test_filters_reach_the_server_and_the_table(
    mp_env: MPTestServer, mp_settings: dict, tmp_path: Path, overrides: dict, expected_ids: list, param: tuple
) -> None:
    table, _, provenance = fetch_materials_project({**mp_settings, **overrides}, tmp_path, seed=0)
    assert table["material_id"].tolist() == expected_ids
    assert mp_env.summary_requests()[0].params[param[0]] == param[1]
    if not overrides.get("exclude_deprecated", True):
        assert "deprecated" not in provenance["query"]["criteria"]


def test_missing_key_stops_before_any_request(
    server: MPTestServer, mp_settings: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    monkeypatch.setenv(ENDPOINT_ENV, server.url)
    with pytest.raises(APIKeyError, match=API_KEY_ENV) as info:
        fetch_materials_project(mp_settings, tmp_path, seed=0)
    assert "demo" in str(info.value)
    assert server.requests == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad_key", ["abc123", API_KEY + "0", API_KEY[:-1] + "!"])
def test_malformed_key_is_refused_without_echoing_it(
    server: MPTestServer, mp_settings: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad_key: str
) -> None:
    monkeypatch.setenv(API_KEY_ENV, bad_key)
    monkeypatch.setenv(ENDPOINT_ENV, server.url)
    with pytest.raises(APIKeyError, match="malformed") as info:
        fetch_materials_project(mp_settings, tmp_path, seed=0)
    message = str(info.value)
    assert API_KEY_ENV in message and "demo" in message and bad_key not in message
    assert server.requests == []


@given(key=st.text(alphabet=string.ascii_letters + string.digits + "-_#. ", min_size=12, max_size=64))
@hyp_settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_key_but_32_letters_and_digits_is_refused(key: str) -> None:
    if len(key.strip()) == 32 and key.strip().isalnum():
        assert read_api_key({API_KEY_ENV: key}) == key.strip()
        return
    with pytest.raises(APIKeyError) as info:
        read_api_key({API_KEY_ENV: key})
    assert key.strip() not in str(info.value)


@pytest.mark.parametrize(
    ("path", "status"), [(SUMMARY_PATH, 500), (SUMMARY_PATH, 429), (SUMMARY_PATH, 0), (HEARTBEAT_PATH, 503)],
    ids=["summary-500", "summary-429", "summary-dropped-connection", "heartbeat-503"],
)
def test_transient_failure_is_retried(
    mp_env: MPTestServer, mp_settings: dict, tmp_path: Path, path: str, status: int
) -> None:
    mp_env.fail_next(path, status)
    table, rejected, provenance = fetch_materials_project(mp_settings, tmp_path, seed=0)
    assert table["material_id"].tolist() == DEFAULT_KEPT and len(rejected) == 2
    assert provenance["database_version"] == DB_VERSION
    assert mp_env.failures == []
    assert len(mp_env.summary_requests()) == 3 + (path == SUMMARY_PATH)  # three pages, one of them twice
    assert len([r for r in mp_env.requests if r.path == HEARTBEAT_PATH]) >= 2


def test_persistent_failure_names_status_and_hides_key(
    mp_env: MPTestServer, mp_settings: dict, tmp_path: Path
) -> None:
    mp_env.fail_next(SUMMARY_PATH, 503, times=10)
    with pytest.raises(MaterialsProjectError, match="503") as info:
        fetch_materials_project({**mp_settings, "max_retries": 2}, tmp_path, seed=0)
    assert API_KEY not in str(info.value)
    assert len(mp_env.summary_requests()) == 3  # one try + two retries
    assert not (tmp_path / "mp_cache").exists() or not any((tmp_path / "mp_cache").iterdir())


def test_rejected_key_is_not_retried_and_not_echoed(
    server: MPTestServer, mp_settings: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_key = "A" * 16 + "b" * 16
    monkeypatch.setenv(API_KEY_ENV, other_key)
    monkeypatch.setenv(ENDPOINT_ENV, server.url)
    with pytest.raises(MaterialsProjectError, match="403") as info:
        fetch_materials_project(mp_settings, tmp_path, seed=0)
    assert other_key not in str(info.value)
    assert len(server.summary_requests()) == 1


def test_same_query_reuses_cache_changed_query_refetches(
    mp_env: MPTestServer, mp_settings: dict, tmp_path: Path
) -> None:
    first, first_rejected, first_prov = fetch_materials_project(mp_settings, tmp_path, seed=0)
    mp_env.requests.clear()
    mp_env.db_version = "2099.01.01"  # a new release must not be noticed by a cache hit

    again, again_rejected, again_prov = fetch_materials_project(copy.deepcopy(mp_settings), tmp_path, seed=1)
    assert mp_env.requests == []
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(first_rejected, again_rejected)
    assert again_prov["cache_hit"] is True
    assert again_prov["database_version"] == DB_VERSION
    assert again_prov["retrieved"] == first_prov["retrieved"]

    # Transport settings are not part of the query; a filter is.
    fetch_materials_project({**mp_settings, "chunk_size": 5, "max_retries": 1}, tmp_path, seed=0)
    assert mp_env.requests == []
    changed, _, changed_prov = fetch_materials_project(
        {**mp_settings, "max_energy_above_hull": 0.01}, tmp_path, seed=0)
    assert len(mp_env.summary_requests()) >= 1
    assert changed_prov["cache_hit"] is False and changed_prov["database_version"] == "2099.01.01"
    assert changed["material_id"].tolist() == ["mp-1", "mp-2", "mp-4", "mp-5"]
    assert changed_prov["query_hash"] != first_prov["query_hash"]
    assert len(list((tmp_path / "mp_cache").glob("summary_*.json.gz"))) == 2


def test_changed_endpoint_refetches(mp_env: MPTestServer, mp_settings: dict, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fetch_materials_project(mp_settings, tmp_path, seed=0)
    with MPTestServer(api_key=API_KEY, documents=reference_documents()[:3]) as other:
        monkeypatch.setenv(ENDPOINT_ENV, other.url)
        table, _, provenance = fetch_materials_project(mp_settings, tmp_path, seed=0)
        assert len(other.summary_requests()) == 1
    assert table["material_id"].tolist() == ["mp-1", "mp-2", "mp-3"]
    assert provenance["query"]["endpoint"] == other.url


def test_unreadable_cache_is_downloaded_again(mp_env: MPTestServer, mp_settings: dict, tmp_path: Path) -> None:
    _, _, provenance = fetch_materials_project(mp_settings, tmp_path, seed=0)
    (tmp_path / "mp_cache" / provenance["cache_file"]).write_bytes(b"not gzip")
    mp_env.requests.clear()
    table, _, again = fetch_materials_project(mp_settings, tmp_path, seed=0)
    assert again["cache_hit"] is False and len(mp_env.summary_requests()) == 3
    assert table["material_id"].tolist() == DEFAULT_KEPT


_POOL = reference_documents()


@given(
    picks=st.lists(st.integers(0, len(_POOL) - 1), max_size=15),
    blanks=st.lists(st.sampled_from(["band_gap", "formation_energy_per_atom", "structure", None]), max_size=15),
    nan_gap=st.booleans(),
)
@hyp_settings(max_examples=40, deadline=None)
def test_every_document_is_kept_or_rejected_with_a_reason(picks: list[int], blanks: list, nan_gap: bool) -> None:
    docs = []
    for i, pick in enumerate(picks):
        doc = copy.deepcopy(_POOL[pick])
        blank = blanks[i] if i < len(blanks) else None
        if blank:
            doc[blank] = None
        if nan_gap and i == 0:
            doc["band_gap"] = math.nan
        docs.append(doc)
    table, rejected = documents_to_table(docs)
    assert len(table) + len(rejected) == len(docs)
    assert table["material_id"].is_unique
    assert set(rejected["reason"]) <= {"missing_property", "unparsable_structure", "duplicate_material_id"}
    assert table[["formation_energy_per_atom", "band_gap"]].notna().all().all()
    assert set(table["material_id"]) == {d["material_id"] for d in docs} - (
        set(rejected["material_id"]) - set(table["material_id"]))


def test_cli_builds_dataset_and_key_never_reaches_a_file(mp_env: MPTestServer, tmp_path: Path) -> None:
    config = {"seed": 7, "data": {"source": "materials_project",
                                  "materials_project": {"chunk_size": 4, "retry_backoff": 0.0}}}
    config_path = tmp_path / "cfg.yaml"
    config_path.write_text(yaml.safe_dump(config))
    out = tmp_path / "results" / "data"
    out.mkdir(parents=True)
    env = {**os.environ, API_KEY_ENV: API_KEY, ENDPOINT_ENV: mp_env.url}
    mp_env.fail_next(SUMMARY_PATH, 500)  # the retry path's messages go to the log too
    with open(tmp_path / "results" / "dataset.log", "w") as log:
        done = subprocess.run(
            [sys.executable, "-m", "icrdesign.cli", "dataset", "--config", str(config_path), "--out", str(out)],
            env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=300, check=False,
        )
    log_text = (tmp_path / "results" / "dataset.log").read_text()
    assert done.returncode == 0, log_text

    table = pd.read_parquet(out / "dataset.parquet")
    assert table["material_id"].tolist() == DEFAULT_KEPT
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert pd.read_csv(out / "rejected.csv")["reason"].value_counts().to_dict() == {
        "missing_property": 1, "unparsable_structure": 1}
    provenance_files = list((tmp_path / "results").rglob("provenance.json"))
    assert provenance_files, "the dataset command writes provenance.json"
    provenance_text = provenance_files[0].read_text()
    assert DB_VERSION in provenance_text and "energy_above_hull" in provenance_text

    # A failing run logs its error too: no key there either.
    failing = subprocess.run(
        [sys.executable, "-m", "icrdesign.cli", "dataset", "--config", str(config_path), "--out", str(tmp_path / "results" / "other")],
        env={**env, ENDPOINT_ENV: "http://127.0.0.1:9/"}, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        check=False,
    )
    assert failing.returncode != 0
    (tmp_path / "results" / "failing.log").write_text(failing.stdout + failing.stderr)
    assert "127.0.0.1:9" in failing.stdout + failing.stderr
    assert files_holding(tmp_path / "results", API_KEY) == []


def test_cli_without_key_names_variable_and_demo(tmp_path: Path) -> None:
    config_path = tmp_path / "cfg.yaml"
    config_path.write_text(yaml.safe_dump({"data": {"source": "materials_project"}}))
    env = {k: v for k, v in os.environ.items() if k != API_KEY_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "icrdesign.cli", "dataset", "--config", str(config_path), "--out", str(tmp_path / "out")],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode != 0
    assert API_KEY_ENV in done.stderr and "demo" in done.stderr
    assert not (tmp_path / "out" / "dataset.parquet").exists()
