"""Reciprocal lattice points and the Fourier transform of elemental properties (FTCP variant).

Convention: G = h b1 + k b2 + l b3 with b_i the reciprocal vectors without the 2 pi factor
(|G| in 1/angstrom), and F_d(G) = sum over sites of descriptor_d(element) * exp(-2 pi i h . f).
"""

from __future__ import annotations

import functools

import numpy as np

# |G| is rounded to this many decimals before ordering, so symmetry-equivalent points whose
# lengths differ only by floating-point noise are ordered by Miller index.
_G_DECIMALS = 6


@functools.lru_cache(maxsize=4096)
def _miller_box(h: int, k: int, l: int) -> np.ndarray:
    """All Miller indices with |h_i| <= bound_i, in lexicographic order (read-only, cached)."""
    axes = [np.arange(-bound, bound + 1) for bound in (h, k, l)]
    box = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    box.setflags(write=False)
    return box


def batch_nearest_reciprocal_points(matrices: np.ndarray, n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_points`` reciprocal points nearest the origin (G = 0 included) of (N, 3, 3) lattices.

    Ordered by |G|, then by Miller index (h, k, l) ascending. Returns (N, K, 3) Miller indices
    and (N, K) |G|. A sphere of radius r holds about 4/3 pi r^3 V points, and |h_i| = |G . a_i|
    <= |G| |a_i| bounds the Miller box that contains it. Lattices needing the same box are
    processed together; one whose sphere holds fewer than ``n_points`` points is retried larger.
    """
    n = len(matrices)
    reciprocal = np.linalg.inv(matrices).transpose(0, 2, 1)
    volumes = np.abs(np.linalg.det(matrices))
    lengths = np.linalg.norm(matrices, axis=2)
    radius = 1.2 * (3.0 * n_points / (4.0 * np.pi * volumes)) ** (1.0 / 3.0) + 1e-9
    miller = np.zeros((n, n_points, 3), dtype=np.int64)
    norms_out = np.zeros((n, n_points))
    pending = np.arange(n)
    while len(pending):
        bounds = np.floor(radius[pending, None] * lengths[pending]).astype(int)
        unique_bounds, group = np.unique(bounds, axis=0, return_inverse=True)
        done = np.zeros(len(pending), dtype=bool)
        for g, box_bounds in enumerate(unique_bounds):
            members = np.flatnonzero(group.ravel() == g)
            rows = pending[members]
            box = _miller_box(*box_bounds.tolist())
            points = box.astype(np.float64) @ reciprocal[rows]  # (m, M, 3)
            norms = np.sqrt(np.einsum("mki,mki->mk", points, points))
            complete = (norms <= radius[rows, None]).sum(axis=1) >= n_points
            if not complete.any():
                continue
            rows, norms, members = rows[complete], norms[complete], members[complete]
            # Order by rounded |G|, ties by the box's lexicographic Miller order: one unique integer key
            # per point, so a partial sort picks exactly the points a full stable sort would.
            keys = np.rint(norms * 10.0**_G_DECIMALS).astype(np.int64) * len(box) + np.arange(len(box))
            nearest = np.argpartition(keys, n_points - 1, axis=1)[:, :n_points]
            order = np.take_along_axis(nearest, np.argsort(np.take_along_axis(keys, nearest, axis=1), axis=1), axis=1)
            miller[rows] = box[order]
            norms_out[rows] = np.take_along_axis(norms, order, axis=1)
            done[members] = True
        radius[pending[~done]] *= 1.5
        pending = pending[~done]
    return miller, norms_out


def transformed_properties(
    miller: np.ndarray,
    frac_coords: np.ndarray,
    site_descriptors: np.ndarray,
    n_sites: np.ndarray,
    out: tuple[np.ndarray, np.ndarray],
) -> None:
    """Batch F_d(G) for (N, K, 3) Miller indices, (N, S, 3) coordinates, (N, S, D) descriptors, with
    the sites of crystal i in rows [0, n_sites[i]); real and imaginary parts are written into ``out``
    (two zeroed (N, D, K) arrays, e.g. views of the ICR array's Fourier block).

    Crystals are processed in groups of equal site count so that the cosines and sines, the
    costly part, are evaluated for real sites only. The phase h . f is formed in float64 and
    reduced to [-1/2, 1/2] turns there; only then are cosine and sine taken in float32 (about 10x
    faster than float64 here), so their error stays at float32 resolution, the precision the ICR
    array stores anyway.
    """
    real, imag = out
    for count in np.unique(n_sites[n_sites > 0]).tolist():
        rows = np.flatnonzero(n_sites == count)
        turns = frac_coords[rows, :count] @ miller[rows].transpose(0, 2, 1).astype(np.float64)
        turns -= np.rint(turns)
        phase = turns.astype(np.float32)
        phase *= np.float32(2.0 * np.pi)
        weights = site_descriptors[rows, :count].transpose(0, 2, 1).astype(np.float32)  # (m, D, count)
        real[rows] = weights @ np.cos(phase)
        imag[rows] = -(weights @ np.sin(phase))
