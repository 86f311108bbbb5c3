"""icrdesign.report: success-rate arithmetic, dissimilarity, summary and figures on hand-made results."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from report_fixtures import make_results, rocksalt, write_config, zincblende

from icrdesign.artefacts.candidates import CANDIDATES_FILE, read_candidates
from icrdesign.artefacts.design import METRICS_FILE, REJECTED_COLUMNS, write_metrics
from icrdesign.artefacts.model import LATENT_FILE
from icrdesign.cases import DesignCase, case_windows, evaluate, success_rate, wilson_interval
from icrdesign.cli import main as cli_main
from icrdesign.config import load_config
from icrdesign.report import FIGURES, build_report, dissimilarity, nearest_neighbours
from icrdesign.report import similarity as fp
from icrdesign.report.inputs import ReportPaths, load_inputs
from icrdesign.report.summary import build_summary

# ---------------------------------------------------------------- success rates and intervals


@pytest.mark.parametrize(
    ("k", "n", "expected"),
    [(5, 10, (0.2366, 0.7634)), (0, 10, (0.0, 0.2775)), (10, 10, (0.7225, 1.0)), (1, 3, (0.0615, 0.7923))],
)
def test_wilson_interval_known_values(k, n, expected):
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(expected[0], abs=1e-4)
    assert high == pytest.approx(expected[1], abs=1e-4)


def test_wilson_interval_rejects_impossible_counts():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="successes must lie in"):
        wilson_interval(4, 3)


@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
@settings(max_examples=200, deadline=None)
def test_wilson_interval_contains_rate_and_shrinks(kn):
    k, n = kn
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0
    low4, high4 = wilson_interval(4 * k, 4 * n)
    assert high4 - low4 < high - low


def test_windows_and_success_on_hand_made_table():
    ef = case_windows({"formation_energy_per_atom": {"target": -0.5, "tolerance": 0.1}})
    table = pd.DataFrame({"formation_energy_per_atom": [-0.4, -0.6, -0.39, -0.61, -0.5, np.nan]})
    assert evaluate(table, ef).tolist() == [True, True, False, False, True, pd.NA]
    stats = success_rate(evaluate(table, ef))
    assert (stats["n"], stats["n_success"], stats["rate"]) == (5, 3, 0.6)
    assert stats["ci95"] == pytest.approx(list(wilson_interval(3, 5)))

    gap = case_windows({"band_gap": {"target": 1.5, "tolerance": 0.25}, "formation_energy_per_atom": {"max": -1.5}})
    table = pd.DataFrame({
        "formation_energy_per_atom": [-1.6, -1.4, -2.0, -1.6],
        "band_gap": [1.3, 1.5, 1.8, np.nan],  # in both / E_f too high / E_g too high / E_g unknown
    })
    assert evaluate(table, gap).tolist() == [True, False, False, pd.NA]
    assert success_rate(evaluate(table.iloc[3:], gap)) is None


# ---------------------------------------------------------------- dissimilarity


def test_dissimilarity_identical_primitive_conventional_and_distinct_types():
    salt = rocksalt()
    assert dissimilarity(salt, salt.copy()) == pytest.approx(0.0, abs=1e-9)
    primitive = salt.get_primitive_structure()
    assert len(primitive) == 2 and len(salt) == 8
    assert dissimilarity(primitive, salt) == pytest.approx(0.0, abs=1e-9)
    # Same structure type, other chemistry and lattice: the fingerprint ignores species and scale.
    assert dissimilarity(salt, rocksalt("Mg", "O", 4.21)) == pytest.approx(0.0, abs=1e-9)
    assert dissimilarity(salt, zincblende()) > 0.75


@given(
    st.integers(1, 30), st.integers(1, 40), st.integers(1, 6), st.integers(0, 2**31 - 1),
)
@settings(max_examples=60, deadline=None)
def test_nearest_neighbours_matches_brute_force(n_query, n_ref, dim, seed):
    rng = np.random.default_rng(seed)
    queries, refs = rng.normal(size=(n_query, dim)), rng.normal(size=(n_ref, dim))
    refs[rng.random(n_ref) < 0.2] = np.nan  # failed training fingerprints are never chosen
    queries[0] = np.nan
    distances, indices = nearest_neighbours(queries, refs)
    assert np.isnan(distances[0]) and indices[0] == -1
    brute = np.linalg.norm(queries[:, None, :] - refs[None, :, :], axis=2)
    brute[:, np.isnan(refs).any(axis=1)] = np.inf
    for i in range(1, n_query):
        if np.isinf(brute[i]).all():
            assert indices[i] == -1
        else:
            assert distances[i] == pytest.approx(brute[i].min())
            assert brute[i, indices[i]] == pytest.approx(brute[i].min())


def test_one_fingerprint_per_geometry(tmp_path, monkeypatch):
    salt, other_salt = rocksalt(), rocksalt("Mg", "O", 4.21)
    strained = rocksalt()
    strained.apply_strain([0.03, 0.0, 0.0])
    assert fp.geometry_key(salt) == fp.geometry_key(other_salt)  # substituted and scaled: same geometry
    assert fp.geometry_key(salt) != fp.geometry_key(strained)
    calls = []
    real = fp._fingerprint_text
    monkeypatch.setattr(fp, "_fingerprint_text", lambda item: calls.append(item) or real(item))
    matrix, errors = fp.fingerprints_from_text([fp.serialise(s) for s in (salt, other_salt, strained)])
    assert len(calls) == 2 and errors == [None, None, None]
    # The shared row is exactly what the featurizer gives the second crystal on its own.
    np.testing.assert_allclose(matrix[1], fp.fingerprint(other_salt), atol=1e-12)
    assert np.linalg.norm(matrix[2] - matrix[0]) > 0


def test_fingerprint_cache_is_reused(tmp_path, monkeypatch):
    items = [fp.serialise(rocksalt()), fp.serialise(zincblende())]
    cache = tmp_path / "fp.npz"
    first, errors = fp.fingerprints_from_text(items + [("cif", "not a cif")], cache)
    assert errors[:2] == [None, None] and errors[2] is not None and np.isnan(first[2]).all()
    monkeypatch.setattr(fp, "_fingerprint_text", lambda item: pytest.fail("cache miss"))
    monkeypatch.setattr(fp, "_geometry_key_of_text", lambda item: pytest.fail("parsed a known text"))
    second, errors = fp.fingerprints_from_text(items + [("cif", "not a cif")], cache)
    np.testing.assert_array_equal(first, second)
    assert errors[2] is not None


# ---------------------------------------------------------------- the whole report on hand-made results


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    results = make_results(root)
    config = load_config(write_config(root / "config.yaml"))
    out = root / "out"
    summary = build_report(config, results, out)
    return out, summary


def test_summary_contract_and_numbers(report):
    out, summary = report
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["ci_method"] == "wilson"
    cases = on_disk["cases"]
    assert set(cases) == {"Ef_-0.5", "Ef_-0.3", "Eg_1.5"}
    for entry in cases.values():
        for stats in entry["tiers"].values():
            assert set(stats) >= {"n", "n_success", "rate", "ci95"}
            assert stats["ci95"][0] <= stats["rate"] <= stats["ci95"][1]

    ef = cases["Ef_-0.5"]
    # LiF -0.48 and FeS -0.52 in [-0.6, -0.4]; BaZrO3 -0.7 out; the duplicate AgMg is not unique.
    assert ef["tiers"]["surrogate"] | {"ci95": None} == {
        "n": 3, "n_success": 2, "rate": pytest.approx(2 / 3), "ci95": None,
        "lift_over_random": pytest.approx((2 / 3) / 0.5), "lift_over_training": pytest.approx((2 / 3) / 0.2)}
    assert (ef["tiers"]["mlip"]["n"], ef["tiers"]["mlip"]["n_success"]) == (3, 2)
    assert (ef["tiers"]["dft"]["n"], ef["tiers"]["dft"]["n_success"]) == (1, 1)  # the failed run is excluded
    assert ef["tiers"]["mlip"]["lift_over_random"] is None  # the baseline is not relaxed
    assert ef["training_base_rate"]["rate"] == pytest.approx(0.2)  # GaAs, AlP of 10
    assert ef["funnel"] == {"generated": 22, "valid": 6, "unique": 5, "novel": 5, "relaxed": 3, "dft_done": 1,
                            "failed": 1}
    assert ef["strategies"]["random"]["tiers"]["surrogate"]["n_success"] == 1

    gap = cases["Eg_1.5"]
    assert (gap["tiers"]["surrogate"]["n"], gap["tiers"]["surrogate"]["n_success"]) == (2, 1)
    assert "mlip" in gap["tiers_absent"]  # CHGNet gives no band gap: not evaluable, not a failure
    assert gap["tiers"]["dft"]["n_success"] == 1

    absent = cases["Ef_-0.3"]
    assert absent["tiers"] == {} and absent["funnel"]["generated"] is None
    assert "design/Ef_-0.3/candidates.csv" in on_disk["absent_inputs"]

    overall = on_disk["formation_energy_cases_overall"]["tiers"]
    assert (overall["surrogate"]["n"], overall["surrogate"]["n_success"]) == (3, 2)


def test_report_base_rate_and_lift_equal_the_sampling_metrics(tmp_path):
    """Per case, summary.json's training base rate and lift over random are metrics.json's: one
    definition (icrdesign.cases) on one split, whichever stage computes them."""
    from icrdesign.sampling.run import summarise
    from icrdesign.sampling.strategies import SeedPool

    results = make_results(tmp_path)
    config = load_config(write_config(tmp_path / "config.yaml"))
    pool = SeedPool.from_latent_file(results / "model" / LATENT_FILE, ["formation_energy_per_atom", "band_gap"])
    sampled = {}
    for name in config["sampling"]["cases"]:
        case_dir = results / "design" / name
        if not (case_dir / CANDIDATES_FILE).exists():
            continue
        candidates = read_candidates(case_dir / CANDIDATES_FILE)
        generated = {strategy: 10 for strategy in dict.fromkeys(candidates["strategy"])}
        case = DesignCase.from_config(name, config["sampling"])
        metrics, _ = summarise(candidates, pd.DataFrame(columns=list(REJECTED_COLUMNS)), generated, case, pool)
        write_metrics(case_dir / METRICS_FILE, metrics)
        sampled[name] = metrics
    inputs = load_inputs(ReportPaths.under(results), config["sampling"]["cases"])
    summary = build_summary(inputs, inputs.evaluations(), None, cutoff=0.5)

    assert set(sampled) == {"Ef_-0.5", "Eg_1.5"}
    for name, metrics in sampled.items():
        entry = summary["cases"][name]
        assert entry["training_base_rate"]["rate"] == metrics["training_base_rate"]
        assert entry["lift_over_random"] == metrics["lift_over_random"]
        assert entry["lift_reference_strategy"] == "local_perturbation"
    # The training split alone (GaAs, AlP of 10; the held-out crystals of latent.npz do not count).
    assert sampled["Ef_-0.5"]["training_base_rate"] == pytest.approx(0.2)
    # LiF of 2 designed vs KBr of 2 random; Eg_1.5's random baseline has no success, so no lift.
    assert sampled["Ef_-0.5"]["lift_over_random"] == pytest.approx(1.0)
    assert sampled["Eg_1.5"]["lift_over_random"] is None


def test_dissimilarity_table_and_gallery_counts(report):
    out, summary = report
    table = pd.read_csv(out / "dissimilarity.csv")
    assert len(table) == 8  # valid, unique, novel candidates of every strategy
    by_formula = table.set_index("formula")
    assert by_formula.loc["FeS", "min_dissimilarity"] > 0.75  # NiAs type is absent from training
    assert by_formula.loc["LiF", "min_dissimilarity"] == pytest.approx(0, abs=1e-6)
    assert by_formula.loc["LiF", "nearest_material_id"] in {"t-1", "t-2"}  # a rocksalt
    assert summary["dissimilarity"] == {"n": 5, "median": pytest.approx(0, abs=1e-6),
                                        "share_above_cutoff": pytest.approx(0.2)}
    gallery = summary["gallery"]
    assert (gallery["n_unique_novel"], gallery["n_structure_types"], gallery["n_elements"]) == (5, 4, 11)


def test_every_figure_and_table_written(report):
    out, _ = report
    for name in FIGURES:
        for fmt in ("png", "pdf"):
            assert (out / f"{name}.{fmt}").stat().st_size > 5000, name
    markdown = (out / "summary.md").read_text()
    assert "| Ef_-0.5 | designed | surrogate | 3 | 2 | 0.667 |" in markdown
    assert "<table" in (out / "summary.html").read_text()


def test_external_results_cli(tmp_path):
    config = write_config(tmp_path / "config.yaml", cases=["Ef_-0.5", "Eg_1.5"])
    external = tmp_path / "vasp.csv"
    pd.DataFrame({
        "case": ["Ef_-0.5", "Ef_-0.5", "Ef_-0.5", "Eg_1.5", "Eg_1.5", "Ef_-9", "Ef_-0.5"],
        "id": ["a", "b", "c", "d", "e", "f", "g"],
        "E_f": ["-0.45", "-0.8", "-0.58", "-1.7", "-1.6", "-0.5", "oops"],
        "E_g": ["", "", "", "1.4", "", "", ""],
    }).to_csv(external, index=False)
    out = tmp_path / "out"
    code = cli_main(["report", "--validation", str(external), "--config", str(config), "--out", str(out),
                        "--results", str(tmp_path / "no-results")])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    ef = summary["cases"]["Ef_-0.5"]["tiers"]
    assert list(ef) == ["external"]
    assert (ef["external"]["n"], ef["external"]["n_success"]) == (3, 2)
    assert ef["external"]["ci95"] == pytest.approx(list(wilson_interval(2, 3)))
    gap = summary["cases"]["Eg_1.5"]["tiers"]["external"]
    assert (gap["n"], gap["n_success"]) == (1, 1)  # the row without E_g is not evaluable
    rejected = pd.read_csv(out / "rejected.csv")
    assert sorted(rejected["id"]) == ["f", "g"]
    assert any("unknown case" in r for r in rejected["reason"])
    for name in FIGURES:
        assert (out / f"{name}.png").stat().st_size > 0
    assert set(summary["absent_inputs"]) >= {"model/latent.npz", "validation/validation.csv"}


def test_external_results_missing_column_is_a_clear_error(tmp_path, capsys):
    config = write_config(tmp_path / "config.yaml")
    bad = tmp_path / "bad.csv"
    bad.write_text("case,E_f\nEf_-0.5,-0.5\n")
    assert cli_main(["report", "--validation", str(bad), "--config", str(config), "--out", str(tmp_path / "o"),
                        "--results", str(tmp_path)]) == 2
    assert "missing columns ['id']" in capsys.readouterr().err


def test_bad_config_value_names_the_key(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("report: {formats: [png, gif]}\n")
    assert cli_main(["report", "--config", str(config), "--out", str(tmp_path / "o")]) == 2
    assert "report.formats" in capsys.readouterr().err


def test_nothing_present_gives_absent_panels(tmp_path):
    config = load_config(write_config(tmp_path / "config.yaml"))
    summary = build_report(config, tmp_path / "empty", tmp_path / "out")
    assert all(entry["tiers"] == {} for entry in summary["cases"].values())
    assert summary["dissimilarity"] is None
    for name in FIGURES:
        assert (tmp_path / "out" / f"{name}.pdf").stat().st_size > 0
    assert "data/dataset.parquet" in (tmp_path / "out" / "summary.md").read_text()
