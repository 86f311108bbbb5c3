"""The summary tables: funnel counts, success rates with 95% Wilson intervals, lifts, dissimilarity."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from icrdesign.cases import (
    BASELINE_STRATEGIES,
    RANDOM_BASELINE,
    case_windows,
    evaluate,
    is_target_case,
    lift,
    reference_strategy,
    success_rate,
    surrogate_lifts,
    training_base_rate,
)
from icrdesign.report.inputs import TIERS, ReportInputs

FUNNEL_KEYS = ("generated", "valid", "unique", "novel", "relaxed", "dft_done", "failed")
CI_METHOD = "wilson"


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def tier_rates(evaluations: pd.DataFrame, windows: dict) -> dict[str, dict[str, Any]]:
    """Success statistics per tier present among ``evaluations`` (rows with status ok only)."""
    rates = {}
    ok = evaluations[evaluations["status"].fillna("ok") == "ok"]
    for tier in TIERS:
        rows = ok[ok["tier"] == tier]
        if len(rows):
            stats = success_rate(evaluate(rows, windows))
            if stats is not None:
                rates[tier] = stats
    return rates


def strategies_run(inputs: ReportInputs, case: str) -> list[str]:
    """The strategies sampled for ``case``: metrics.json's, in run order, then any others in candidates.csv."""
    names = list(inputs.design_metrics.get(case, {}).get("strategies", {}))
    if not inputs.candidates.empty:
        names += sorted(set(inputs.candidates.loc[inputs.candidates["case"] == case, "strategy"]) - set(names))
    return names


def design_lift(inputs: ReportInputs, case: str) -> tuple[str | None, float | None]:
    """The case's reference strategy and its surrogate lift over random: what sampling's metrics.json reports."""
    names = strategies_run(inputs, case)
    reference = reference_strategy(names)
    if reference is None or inputs.candidates.empty:
        return reference, None
    lifts = surrogate_lifts(inputs.candidates[inputs.candidates["case"] == case], names)
    return reference, lifts.get(reference)


def funnel(inputs: ReportInputs, case: str, strategy: str | None = None) -> dict[str, int | None]:
    """Counts through the funnel for one case (all strategies, or one)."""
    counts: dict[str, int | None] = dict.fromkeys(FUNNEL_KEYS)
    candidates = inputs.candidates
    if not candidates.empty and (case in set(candidates["case"]) or case in inputs.design_metrics):
        rows = candidates[candidates["case"] == case]
        if strategy is not None:
            rows = rows[rows["strategy"] == strategy]
        per_strategy = inputs.design_metrics.get(case, {}).get("strategies", {})
        names = [strategy] if strategy is not None else sorted(set(rows["strategy"]) | set(per_strategy))
        # generated counts decoded rows that never reached candidates.csv, so metrics.json wins when present.
        for key, mask in (
            ("generated", np.ones(len(rows), bool)),
            ("valid", rows["valid"]),
            ("unique", rows["valid"] & rows["unique"]),
            ("novel", rows["valid"] & rows["unique"] & rows["novel"]),
        ):
            counts[key] = sum(
                int(per_strategy[name][key]) if key in per_strategy.get(name, {})
                else int(np.sum(np.asarray(mask)[rows["strategy"].to_numpy() == name]))
                for name in names
            )
    if inputs.validation is not None:
        rows = inputs.validation[inputs.validation["case"] == case]
        if strategy is not None and not candidates.empty:
            ids = set(candidates.loc[(candidates["case"] == case) & (candidates["strategy"] == strategy), "id"])
            rows = rows[rows["candidate_id"].isin(ids)]
        status = rows["status"].fillna("failed")
        counts["relaxed"] = int(((rows["tier"] == "mlip") & (status == "ok")).sum())
        counts["dft_done"] = int(((rows["tier"] == "dft") & (status == "ok")).sum())
        counts["failed"] = int((status != "ok").sum())
    return counts


def _with_lifts(rates: dict, random_rates: dict, base: dict | None) -> dict:
    for tier, stats in rates.items():
        baseline = random_rates.get(tier)
        stats["lift_over_random"] = lift(stats["rate"], baseline["rate"] if baseline else None)
        stats["lift_over_training"] = lift(stats["rate"], base["rate"] if base else None)
    return rates


def sun_blocks(funnel_summary: dict[str, Any] | None, base: dict | None) -> dict[str, dict[str, Any]]:
    """Each strategy's post-relaxation ``sun`` block (``validation.funnel.SUN_KEYS``), with the hull's
    source and the S.U.N.-on-target rate's lifts over the random baseline and the training base rate."""
    if not funnel_summary:
        return {}
    blocks = funnel_summary["strategies"]
    random_rate = blocks.get(RANDOM_BASELINE, {}).get("rate_sun_on_target")
    return {name: {**block, "hull": funnel_summary["hull"],
                   "lift_over_random": lift(block["rate_sun_on_target"], random_rate),
                   "lift_over_training": lift(block["rate_sun_on_target"], base["rate"] if base else None)}
            for name, block in blocks.items()}


def dft_success(inputs: ReportInputs, case: str, windows: dict) -> dict[str, int] | None:
    """The DFT-validated successes of a case's designed candidates, with both of the FTCP paper's
    denominators: the DFT calculations that completed, and the candidates sent to DFT (designed)."""
    if inputs.validation is None:
        return None
    rows = inputs.validation[(inputs.validation["case"] == case) & (inputs.validation["tier"] == "dft")]
    strategy = inputs.candidates.set_index("id")["strategy"] if not inputs.candidates.empty else pd.Series(dtype=str)
    rows = rows[~rows["candidate_id"].map(strategy).isin(BASELINE_STRATEGIES)]
    completed = rows[rows["status"] == "ok"]
    return {"n_success": int(evaluate(completed, windows).sum()) if len(completed) else 0,
            "n_completed": int(len(completed)), "n_designed": int(len(rows))}


def dft_agreement(validation: pd.DataFrame | None) -> dict[str, Any] | None:
    """MLIP against DFT formation energies (eV/atom) over every candidate both tiers computed: n, MAE,
    signed bias (MLIP minus DFT). The MLIP tier's rates carry this error."""
    if validation is None:
        return None
    ok = validation[validation["status"] == "ok"]
    energies = ok.pivot_table(index=["case", "candidate_id"], columns="tier", values="formation_energy_per_atom",
                              aggfunc="first")
    if not {"mlip", "dft"} <= set(energies.columns):
        return {"n": 0, "ef_mae": None, "ef_bias": None}
    both = energies[["mlip", "dft"]].dropna()
    difference = both["mlip"] - both["dft"]
    return {"n": int(len(both)), "ef_mae": float(difference.abs().mean()) if len(both) else None,
            "ef_bias": float(difference.mean()) if len(both) else None}


def _dissimilarity_stats(values: pd.Series, cutoff: float) -> dict[str, Any] | None:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return None
    return {
        "n": int(len(values)),
        "median": float(values.median()),
        "share_above_cutoff": float((values > cutoff).mean()),
    }


def build_summary(
    inputs: ReportInputs,
    evaluations: pd.DataFrame,
    dissimilarity: pd.DataFrame | None,
    cutoff: float,
    extras: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The summary.json document: ``{"cases": {CASE: {"tiers": {TIER: {n, n_success, rate, ci95}}}}}`` + extras."""
    cases: dict[str, Any] = {}
    pooled: list[pd.DataFrame] = []
    for case, spec in inputs.cases.items():
        windows = case_windows(spec["constraints"])
        rows = evaluations[evaluations["case"] == case]
        training = inputs.training_properties()
        base = None if training is None else training_base_rate(windows, training)
        reference, reference_lift = design_lift(inputs, case)
        random_rates = tier_rates(rows[rows["strategy"] == RANDOM_BASELINE], windows)
        designed = rows[~rows["strategy"].isin(BASELINE_STRATEGIES)]
        tiers = _with_lifts(tier_rates(designed, windows), random_rates, base)
        strategies = {}
        sun = sun_blocks(inputs.funnels.get(case), base)
        strategy_names = sorted(set(rows["strategy"]) - {"external"})
        if not inputs.candidates.empty:
            strategy_names = sorted(set(strategy_names) | set(inputs.candidates.loc[inputs.candidates["case"] == case, "strategy"]))
        for name in strategy_names:
            strategies[name] = {
                "funnel": funnel(inputs, case, name),
                "tiers": _with_lifts(tier_rates(rows[rows["strategy"] == name], windows), random_rates, base),
            }
            if name in sun:
                strategies[name]["sun"] = sun[name]
            if dissimilarity is not None:
                mask = (dissimilarity["case"] == case) & (dissimilarity["strategy"] == name)
                strategies[name]["dissimilarity"] = _dissimilarity_stats(dissimilarity.loc[mask, "min_dissimilarity"], cutoff)
        case_dissimilarity = None
        if dissimilarity is not None:
            mask = (dissimilarity["case"] == case) & ~dissimilarity["strategy"].isin(BASELINE_STRATEGIES)
            case_dissimilarity = _dissimilarity_stats(dissimilarity.loc[mask, "min_dissimilarity"], cutoff)
        cases[case] = {
            "constraints": spec["constraints"],
            "windows": {
                prop: {"low": _finite_or_none(w.low), "high": _finite_or_none(w.high), "target": w.target}
                for prop, w in windows.items()
            },
            "training_base_rate": base,
            "lift_reference_strategy": reference,
            "lift_over_random": reference_lift,
            "funnel": funnel(inputs, case),
            "tiers": tiers,
            "tiers_absent": [t for t in TIERS if t not in tiers],
            "strategies": strategies,
            "hull": inputs.funnels[case]["hull"] if case in inputs.funnels else None,
            "dft_success": dft_success(inputs, case, windows),
            "dissimilarity": case_dissimilarity,
        }
        if is_target_case(spec["constraints"]):
            pooled.append(designed.assign(success=evaluate(designed, windows)))
    overall: dict[str, Any] = {}
    if pooled:
        joined = pd.concat(pooled, ignore_index=True)
        joined = joined[joined["status"].fillna("ok") == "ok"]
        for tier in TIERS:
            stats = success_rate(joined.loc[joined["tier"] == tier, "success"])
            if stats is not None:
                overall[tier] = stats
    summary = {
        "ci_method": CI_METHOD,
        "baseline_strategy": RANDOM_BASELINE,
        "baseline_strategies": list(BASELINE_STRATEGIES),
        "dissimilarity_cutoff": cutoff,
        "cases": cases,
        "formation_energy_cases_overall": {"tiers": overall},
        "dissimilarity": None
        if dissimilarity is None
        else _dissimilarity_stats(
            dissimilarity.loc[~dissimilarity["strategy"].isin(BASELINE_STRATEGIES), "min_dissimilarity"], cutoff
        ),
        "dft_agreement": dft_agreement(inputs.validation),
        "absent_inputs": list(inputs.absent),
        "rejected_rows": len(inputs.rejected),
    }
    summary.update(extras or {})
    return summary


def rates_table(summary: dict[str, Any]) -> pd.DataFrame:
    """Flat table: one row per case, strategy ('designed' = all but the baselines) and tier."""
    rows = []
    for case, entry in summary["cases"].items():
        groups = [("designed", entry["tiers"])] + [(name, s["tiers"]) for name, s in entry["strategies"].items()]
        for strategy, tiers in groups:
            for tier, stats in tiers.items():
                rows.append(
                    {
                        "case": case,
                        "strategy": strategy,
                        "tier": tier,
                        "n": stats["n"],
                        "n_success": stats["n_success"],
                        "rate": stats["rate"],
                        "ci95_low": stats["ci95"][0],
                        "ci95_high": stats["ci95"][1],
                        "lift_over_random": stats.get("lift_over_random"),
                        "lift_over_training": stats.get("lift_over_training"),
                    }
                )
    return pd.DataFrame(
        rows,
        columns=["case", "strategy", "tier", "n", "n_success", "rate", "ci95_low", "ci95_high",
                 "lift_over_random", "lift_over_training"],
    )


def funnel_table(summary: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for case, entry in summary["cases"].items():
        rows.append({"case": case, "strategy": "all", **entry["funnel"]})
        rows += [{"case": case, "strategy": name, **s["funnel"]} for name, s in entry["strategies"].items()]
    return pd.DataFrame(rows, columns=["case", "strategy", *FUNNEL_KEYS])


#: The columns of the post-relaxation (S.U.N.) table: the funnel's counts, then the rates and RMSD.
SUN_TABLE_COLUMNS = ("case", "strategy", "n_valid", "n_single_element", "n_relaxed", "n_unique", "n_novel",
                     "n_stable", "n_stable_strict", "n_sun", "n_sun_on_target", "rate_sun", "rate_sun_on_target",
                     "ci95_sun_on_target", "lift_over_random", "lift_over_training", "rmsd_median_angstrom",
                     "n_rmsd_unmatched")


def sun_table(summary: dict[str, Any]) -> pd.DataFrame:
    """One row per case and strategy: what survives relaxation (MatterGen's S.U.N. protocol)."""
    rows = []
    for case, entry in summary["cases"].items():
        for name, strategy in entry["strategies"].items():
            if "sun" in strategy:
                block = strategy["sun"]
                interval = block["ci95_sun_on_target"]
                rows.append({**{key: block.get(key) for key in SUN_TABLE_COLUMNS}, "case": case, "strategy": name,
                             "ci95_sun_on_target": None if interval is None
                             else f"[{interval[0]:.3f}, {interval[1]:.3f}]"})
    return pd.DataFrame(rows, columns=list(SUN_TABLE_COLUMNS))


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) >= 10 else f"{value:.{digits}f}"
    return str(value)


def _markdown_table(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in frame.astype(object).where(frame.notna(), None).itertuples(index=False)]
    return "\n".join(lines)


def summary_markdown(summary: dict[str, Any]) -> str:
    """summary.md: per case the windows, base rate, funnel, success per tier and dissimilarity."""
    cutoff = summary["dissimilarity_cutoff"]
    parts = ["# icrdesign report", ""]
    if summary["absent_inputs"]:
        parts += [f"Absent inputs (shown as absent, not zero): {', '.join(summary['absent_inputs'])}", ""]
    parts += [
        f"Success rates: share of evaluable candidates inside the case window, 95% {summary['ci_method'].title()} "
        f"score interval. 'designed' pools every strategy but the baselines "
        f"({', '.join(f'`{name}`' for name in summary['baseline_strategies'])}); lifts are over "
        f"`{summary['baseline_strategy']}`.",
        "",
        "## Success rates",
        "",
    ]
    rates = rates_table(summary)
    if len(rates):
        rates["ci95"] = [f"[{lo:.3f}, {hi:.3f}]" for lo, hi in zip(rates.pop("ci95_low"), rates.pop("ci95_high"))]
        parts.append(_markdown_table(rates[["case", "strategy", "tier", "n", "n_success", "rate", "ci95",
                                            "lift_over_random", "lift_over_training"]]))
    else:
        parts.append("No tier has evaluable candidates.")
    overall = summary["formation_energy_cases_overall"]["tiers"]
    if overall:
        parts += ["", "E_f cases pooled (share within the target window): " + "; ".join(
            f"{tier} {s['n_success']}/{s['n']} = {s['rate']:.3f} [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]"
            for tier, s in overall.items())]
    parts += ["", "## Cases", ""]
    case_rows = []
    for case, entry in summary["cases"].items():
        windows = "; ".join(
            f"{prop} in [{_fmt(w['low'])}, {_fmt(w['high'])}]" for prop, w in entry["windows"].items()
        )
        base = entry["training_base_rate"]
        diss = entry["dissimilarity"]
        case_rows.append({
            "case": case,
            "window": windows,
            "training base rate": None if base is None else base["rate"],
            "surrogate lift over random": entry["lift_over_random"],
            "lift of": entry["lift_reference_strategy"],
            "dissimilarity median": None if diss is None else diss["median"],
            f"share > {cutoff:g}": None if diss is None else diss["share_above_cutoff"],
            "tiers absent": ", ".join(entry["tiers_absent"]) or "none",
        })
    parts.append(_markdown_table(pd.DataFrame(case_rows)))
    parts += ["", "## Funnel", "", _markdown_table(funnel_table(summary))]
    agreement = summary.get("dft_agreement")
    if agreement and agreement["n"]:
        parts += ["", f"MLIP vs DFT formation energies over the {agreement['n']} candidates both computed: "
                      f"MAE {agreement['ef_mae']:.3f} eV/atom, bias (MLIP - DFT) {agreement['ef_bias']:+.3f} eV/atom."]
    dft_rows = [{"case": case, **entry["dft_success"]} for case, entry in summary["cases"].items()
                if entry.get("dft_success")]
    if dft_rows:
        parts += ["", "DFT-validated successes of the designed candidates (FTCP's two denominators):", "",
                  _markdown_table(pd.DataFrame(dft_rows, columns=["case", "n_success", "n_completed", "n_designed"]))]
    sun = sun_table(summary)
    hulls = sorted({entry["hull"] for entry in summary["cases"].values() if entry.get("hull")})
    parts += ["", "## What survives relaxation (S.U.N.)", "",
              "Every valid candidate relaxed with the potential, then unique among the relaxed, novel against "
              "the dataset, stable (E_hull <= 0.1 eV/atom; strict: <= 0) and on target (the potential's E_f in "
              "the case window); rates over the valid candidates that are not single elements, RMSD decoded -> "
              "relaxed in Å. Hull: " + ("; ".join(hulls) or "absent") + ".", "",
              _markdown_table(sun) if len(sun) else "absent (no post-relaxation funnel)"]
    diss = summary["dissimilarity"]
    parts += ["", "## Structural dissimilarity to the training set", ""]
    parts.append(
        "absent (no training dataset or no candidate structures)" if diss is None else
        f"{diss['n']} designed crystals: median {diss['median']:.3f} (paper: 0.64), "
        f"share above {cutoff:g}: {diss['share_above_cutoff']:.3f}"
    )
    return "\n".join(parts) + "\n"


def summary_html(summary: dict[str, Any]) -> str:
    """A self-contained HTML page with the rates and funnel tables (embedded in the Snakemake report)."""
    style = (
        "<style>body{font-family:sans-serif;font-size:14px}table{border-collapse:collapse;margin:8px 0}"
        "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}th{background:#eee}</style>"
    )
    rates = rates_table(summary).to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="—")
    funnel = funnel_table(summary).to_html(index=False, na_rep="—")
    sun = sun_table(summary).to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="—")
    absent = ", ".join(summary["absent_inputs"]) or "none"
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>icrdesign summary</title>{style}</head><body>"
        f"<h2>Success rates (95% {summary['ci_method'].title()} interval)</h2>{rates}"
        f"<h2>Funnel</h2>{funnel}<h2>What survives relaxation (S.U.N.)</h2>{sun}"
        f"<p>Absent inputs: {absent}</p></body></html>\n"
    )
