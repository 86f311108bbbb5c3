"""Reciprocal lattice points and the Fourier transform of elemental properties (FTCP variant).

Convention: G = h b1 + k b2 + l b3 with b_i the reciprocal vectors without the 2 pi factor
(|G| in 1/angstrom), and F_d(G) = sum over sites of descriptor_d(element) * exp(-2 pi i h . f).
"""

from __future__ import annotations

import numpy as np

# |G| is rounded to this many decimals before ordering, so symmetry-equivalent points whose
# lengths differ only by floating-point noise are ordered by Miller index.
_G_DECIMALS = 6


def nearest_reciprocal_points(lattice_matrix: np.ndarray, n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_points`` reciprocal lattice points nearest the origin (G = 0 included).

    Ordered by |G|, then by Miller index (h, k, l) ascending. Returns (int64 (n, 3) Miller
    indices, float64 (n,) |G|).
    """
    matrix = np.asarray(lattice_matrix, dtype=np.float64)
    reciprocal = np.linalg.inv(matrix).T
    volume = abs(np.linalg.det(matrix))
    lengths = np.linalg.norm(matrix, axis=1)
    # A sphere of radius r holds about 4/3 pi r^3 V points; enlarge until it surely holds n_points.
    radius = 1.2 * (3.0 * n_points / (4.0 * np.pi * volume)) ** (1.0 / 3.0) + 1e-9
    while True:
        # |h_i| = |G . a_i| <= |G| |a_i|, so this box contains every point of the sphere.
        bounds = np.floor(radius * lengths).astype(int)
        axes = [np.arange(-b, b + 1) for b in bounds]
        hkl = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        norms = np.linalg.norm(hkl @ reciprocal, axis=1)
        inside = norms <= radius
        if inside.sum() >= n_points:
            break
        radius *= 1.5
    hkl, norms = hkl[inside], norms[inside]
    order = np.lexsort((hkl[:, 2], hkl[:, 1], hkl[:, 0], np.round(norms, _G_DECIMALS)))[:n_points]
    return hkl[order], norms[order]


def transformed_properties(
    miller: np.ndarray, frac_coords: np.ndarray, site_descriptors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Batch F_d(G) for (N, K, 3) Miller indices, (N, S, 3) coordinates, (N, S, D) descriptors.

    Padded sites carry zero descriptors and so contribute nothing. Returns real and imaginary
    parts, each (N, D, K) float64.
    """
    phase = 2.0 * np.pi * np.einsum("nki,nsi->nks", miller.astype(np.float64), frac_coords)
    real = np.einsum("nks,nsd->ndk", np.cos(phase), site_descriptors)
    imag = -np.einsum("nks,nsd->ndk", np.sin(phase), site_descriptors)
    return real, imag
