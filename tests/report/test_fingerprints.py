"""`icrdesign fingerprints`: training shards, the per-crystal cache, structure tables, and the report
reading the files instead of computing fingerprints."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from report_fixtures import make_results, rocksalt, write_config, zincblende

from icrdesign.artefacts.dataset import read_dataset
from icrdesign.artefacts.fingerprints import read_fingerprints, read_plan, shard_file, shard_files
from icrdesign.cli import main as cli_main
from icrdesign.config import load_config
from icrdesign.report import build_report
from icrdesign.report import similarity as fp
from icrdesign.report.build import generated_structures
from icrdesign.report.inputs import ReportPaths, load_inputs


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The hand-made results folder, fingerprints written by the real command (report_fixtures)."""
    return make_results(tmp_path_factory.mktemp("fingerprints"))


def test_union_of_shards_equals_unsharded_fingerprints(results, tmp_path):
    dataset = results / "data" / "dataset.parquet"
    plan = tmp_path / "train" / "plan.json"
    assert cli_main(["fingerprints", "--dataset", str(dataset), "--shard-size", "4", "--plan", str(plan),
                     "--cache", str(tmp_path / "cache")]) == 0
    train = fp.training_crystals(read_dataset(dataset), load_config(None))
    assert read_plan(plan) == {"n_train": len(train), "shard_size": 4, "n_shards": math.ceil(len(train) / 4)}
    for shard in range(read_plan(plan)["n_shards"]):
        assert cli_main(["fingerprints", "--dataset", str(dataset), "--shard-size", "4", "--shard", str(shard),
                         "--cache", str(tmp_path / "cache"), "--jobs", "1",
                         "--out", str(shard_file(plan.parent, shard))]) == 0
    sharded = read_fingerprints(shard_files(plan))
    whole = fp.compute_fingerprints([("json", text) for text in train["structure"]])
    assert list(sharded.ids) == list(train["material_id"])
    np.testing.assert_allclose(sharded.matrix, whole.matrix, atol=1e-12)
    assert sharded.errors == whole.errors == [None] * len(train)
    # The workflow's one shard of 2000 holds the same crystals.
    np.testing.assert_allclose(read_fingerprints(shard_file(results / "fingerprints" / "train", 0)).matrix,
                               whole.matrix, atol=1e-12)
    # Shard 3 of a 9-crystal split in 4s does not exist: a clear message, exit 2.
    assert cli_main(["fingerprints", "--dataset", str(dataset), "--shard-size", "4", "--shard", "3",
                     "--out", str(tmp_path / "x.npz")]) == 2


def test_rerun_with_one_more_crystal_computes_only_that_crystal(tmp_path):
    strained = rocksalt()
    strained.apply_strain([0.02, 0.0, 0.0])
    crystals = [rocksalt(), zincblende(), strained]
    cache = tmp_path / "cache"
    first = fp.compute_fingerprints([fp.serialise(s) for s in crystals], cache)
    assert first.n_computed == 3
    extra = zincblende()
    extra.apply_strain([0.0, 0.03, 0.0])
    second = fp.compute_fingerprints([fp.serialise(s) for s in [*crystals, extra]], cache)
    assert second.n_computed == 1  # only the new crystal; the three others come from the cache
    np.testing.assert_array_equal(second.matrix[:3], first.matrix)
    # The key is the structure, not an id: the same list with one crystal changed computes that one again.
    changed = rocksalt()
    changed.perturb(0.05, min_distance=0.01)
    assert fp.compute_fingerprints([fp.serialise(s) for s in [changed, *crystals[1:], extra]], cache).n_computed == 1
    assert fp.compute_fingerprints([fp.serialise(s) for s in [changed, *crystals, extra]], cache).n_computed == 0


def test_structure_table_resolves_paths_skips_empty_and_records_missing_files(tmp_path):
    (tmp_path / "cifs").mkdir()
    rocksalt().to(filename=str(tmp_path / "cifs" / "a.cif"))
    table = tmp_path / "funnel.csv"
    pd.DataFrame({"candidate_id": ["a", "b", "c"], "relaxed_cif": ["cifs/a.cif", "", "cifs/gone.cif"]}).to_csv(
        table, index=False)
    out = tmp_path / "x.npz"
    assert cli_main(["fingerprints", "--structures", str(table), "--id-column", "candidate_id",
                     "--cif-column", "relaxed_cif", "--out", str(out), "--jobs", "1"]) == 0
    result = read_fingerprints(out)
    assert list(result.ids) == ["a", "c"]  # b has no structure file
    np.testing.assert_allclose(result.matrix[0], fp.fingerprint(rocksalt()), atol=1e-12)
    assert result.errors[0] is None and "gone.cif" in result.errors[1] and np.isnan(result.matrix[1]).all()


def test_structure_table_with_one_id_for_two_files_is_refused(tmp_path, capsys):
    table = tmp_path / "t.csv"
    pd.DataFrame({"id": ["a", "a"], "cif": ["x.cif", "y.cif"]}).to_csv(table, index=False)
    assert cli_main(["fingerprints", "--structures", str(table), "--out", str(tmp_path / "x.npz")]) == 2
    assert "'a' names two structures" in capsys.readouterr().err


def test_report_reads_the_files_and_gives_the_dissimilarity_computed_in_process(results, tmp_path, monkeypatch):
    config = load_config(write_config(tmp_path / "config.yaml"))
    # The report computes nothing: any fingerprint computation fails the test.
    monkeypatch.setattr(fp, "compute_fingerprints", lambda *args, **kwargs: pytest.fail("report computed"))
    build_report(config, results, tmp_path / "out", figure_names=["S4_dissimilarity"])
    table = pd.read_csv(tmp_path / "out" / "dissimilarity.csv").set_index("id")
    monkeypatch.undo()

    # What the report computed itself before: training split and candidate CIFs fingerprinted in process.
    inputs = load_inputs(ReportPaths.under(results), config["sampling"]["cases"])
    generated = generated_structures(inputs)
    train = fp.training_crystals(inputs.dataset, config)
    references, _ = fp.fingerprints_from_text([("json", text) for text in train["structure"]])
    queries, _ = fp.fingerprints_from_text([fp.structure_file_item(path) for path in generated["path"]])
    distances, nearest = fp.nearest_neighbours(queries, references)
    assert sorted(table.index) == sorted(generated["id"])
    np.testing.assert_allclose(table.loc[generated["id"], "min_dissimilarity"], distances, atol=1e-9)
    assert list(table.loc[generated["id"], "nearest_material_id"]) == list(train["material_id"].iloc[nearest])
    assert table["error"].isna().all()
