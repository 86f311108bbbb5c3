"""summary.json's post-relaxation blocks: S.U.N. per strategy with lifts, DFT successes, MLIP vs DFT."""

from __future__ import annotations

import pandas as pd
import pytest

from icrdesign.cases import case_windows
from icrdesign.report.inputs import ReportInputs
from icrdesign.report.summary import dft_agreement, dft_success, sun_blocks, sun_table


def _block(n_valid: int, n_on_target: int) -> dict:
    return {"n_valid": n_valid, "n_single_element": 0, "n_relaxed": n_valid, "n_unique": n_valid, "n_novel": n_valid,
            "n_stable": n_on_target, "n_stable_strict": 0, "n_sun": n_on_target, "n_sun_on_target": n_on_target,
            "rate_sun": n_on_target / n_valid, "rate_sun_on_target": n_on_target / n_valid,
            "ci95_sun_on_target": [0.0, 1.0], "rmsd_median_angstrom": 0.3, "n_rmsd_unmatched": 0, "drops": {}}


def test_sun_blocks_carry_the_hull_and_lifts_over_random_and_training():
    funnel = {"hull": "demo training table: 10 phases", "strategies": {
        "local_perturbation": _block(10, 4), "random": _block(10, 1)}}
    blocks = sun_blocks(funnel, {"rate": 0.2})
    assert blocks["local_perturbation"]["hull"] == "demo training table: 10 phases"
    assert blocks["local_perturbation"]["lift_over_random"] == pytest.approx(4.0)
    assert blocks["local_perturbation"]["lift_over_training"] == pytest.approx(2.0)
    assert blocks["random"]["lift_over_random"] == pytest.approx(1.0)
    table = sun_table({"cases": {"c": {"strategies": {name: {"sun": block} for name, block in blocks.items()}}}})
    assert table["n_sun_on_target"].tolist() == [4, 1] and table["ci95_sun_on_target"][0] == "[0.000, 1.000]"


def _validation(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"case": "Ef_-0.5", "candidate_id": candidate, "tier": tier, "status": status,
                          "formation_energy_per_atom": energy, "band_gap": float("nan")}
                         for candidate, tier, status, energy in rows])


def test_agreement_counts_only_candidates_computed_in_both_tiers():
    validation = _validation([("a", "mlip", "ok", -0.50), ("a", "dft", "ok", -0.40),
                              ("b", "mlip", "ok", -0.70), ("b", "dft", "ok", -0.90),
                              ("c", "mlip", "ok", -0.30),  # no DFT
                              ("d", "mlip", "ok", -0.10), ("d", "dft", "failed", float("nan"))])
    agreement = dft_agreement(validation)
    assert agreement["n"] == 2
    assert agreement["ef_mae"] == pytest.approx(0.15)
    assert agreement["ef_bias"] == pytest.approx((-0.1 + 0.2) / 2)


def test_dft_success_has_both_of_ftcps_denominators_and_leaves_the_baseline_out():
    validation = _validation([("a", "dft", "ok", -0.45), ("b", "dft", "ok", -0.9), ("c", "dft", "failed", float("nan")),
                              ("r", "dft", "ok", -0.5)])
    candidates = pd.DataFrame({"id": ["a", "b", "c", "r"], "case": "Ef_-0.5",
                               "strategy": ["local_perturbation", "gradient_ascent", "local_perturbation", "random"]})
    inputs = ReportInputs(cases={}, candidates=candidates, validation=validation)
    windows = case_windows({"formation_energy_per_atom": {"target": -0.5, "tolerance": 0.1}})
    assert dft_success(inputs, "Ef_-0.5", windows) == {"n_success": 1, "n_completed": 2, "n_designed": 3}
