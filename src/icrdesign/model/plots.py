"""Fig. S1: the latent space coloured by the target properties."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from icrdesign.io import atomic_path  # noqa: E402

PROPERTY_LABELS = {
    "formation_energy_per_atom": "$E_f$ (eV/atom)",
    "band_gap": "$E_g$ (eV)",
    "energy_above_hull": "$E_{hull}$ (eV/atom)",
}


def pca_2d(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project onto the two leading principal components; returns (N x 2 scores, explained variance ratios)."""
    centred = z - z.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    ratio = variance[:2] / variance.sum() if variance.sum() > 0 else np.zeros(2)
    return centred @ vt[:2].T, ratio


def plot_latent(z: np.ndarray, properties: dict[str, np.ndarray], paths: Sequence[Path], dpi: int = 150) -> None:
    """Rows: the first two latent dimensions and a 2D PCA; columns: one per property. Writes the figure
    to every path, in the format its suffix names (e.g. .png, .pdf)."""
    scores, ratio = pca_2d(z)
    views = [
        (z[:, :2], "$z_1$", "$z_2$", "first two latent dimensions"),
        (scores, f"PC1 ({ratio[0]:.0%})", f"PC2 ({ratio[1]:.0%})", "PCA of the latent means"),
    ]
    names = list(properties)
    fig, axes = plt.subplots(len(views), len(names), figsize=(4.6 * len(names), 4.0 * len(views)), squeeze=False)
    for row, (points, xlabel, ylabel, title) in enumerate(views):
        for col, name in enumerate(names):
            ax = axes[row, col]
            values = properties[name]
            shown = np.isfinite(values)
            scatter = ax.scatter(points[shown, 0], points[shown, 1], c=values[shown], s=4, cmap="viridis",
                                 rasterized=True)
            fig.colorbar(scatter, ax=ax, label=PROPERTY_LABELS.get(name, name))
            ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    fig.tight_layout()
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=Path(path).suffix[1:])
    plt.close(fig)
