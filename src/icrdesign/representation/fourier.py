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
def _miller_box(h: int, k: int, l: int) -> tuple[np.ndarray, np.ndarray]:
    """All Miller indices with |h_i| <= bound_i, in lexicographic order, and their quadratic
    monomials (h^2, k^2, l^2, 2hk, 2hl, 2kl) as float64 columns (read-only, cached)."""
    axes = [np.arange(-bound, bound + 1) for bound in (h, k, l)]
    box = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    hkl = box.astype(np.float64)
    monomials = np.stack([hkl[:, 0] ** 2, hkl[:, 1] ** 2, hkl[:, 2] ** 2,
                          2 * hkl[:, 0] * hkl[:, 1], 2 * hkl[:, 0] * hkl[:, 2], 2 * hkl[:, 1] * hkl[:, 2]])
    for array in (box, monomials):
        array.setflags(write=False)
    return box, monomials


def batch_nearest_reciprocal_points(matrices: np.ndarray, n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_points`` reciprocal points nearest the origin (G = 0 included) of (N, 3, 3) lattices.

    Ordered by |G|, then by Miller index (h, k, l) ascending. Returns (N, K, 3) Miller indices
    and (N, K) |G|. A sphere of radius r holds about 4/3 pi r^3 V points, and |h_i| = |G . a_i|
    <= |G| |a_i| bounds the Miller box that contains it. Lattices needing the same box are
    processed together; one whose sphere holds fewer than ``n_points`` points is retried larger.
    |G|^2 of every box point is one matrix product of the box's quadratic monomials with the six
    independent entries of each reciprocal metric tensor.
    """
    n = len(matrices)
    reciprocal = np.linalg.inv(matrices).transpose(0, 2, 1)
    metric = reciprocal @ reciprocal.transpose(0, 2, 1)
    metric_entries = metric[:, [0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]]  # (N, 6), pairs with the monomials
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
            box, monomials = _miller_box(*box_bounds.tolist())
            squared = metric_entries[rows] @ monomials  # (m, M)
            complete = (squared <= (radius[rows, None] ** 2)).sum(axis=1) >= n_points
            if not complete.all():
                if not complete.any():
                    continue
                rows, members, squared = rows[complete], members[complete], squared[complete]
            norms = np.sqrt(np.maximum(squared, 0.0, out=squared), out=squared)
            # Order by rounded |G|, ties by the box's lexicographic Miller order: one unique key per point
            # that also carries the point's box index, so a partial sort of the keys alone (several
            # times faster than argpartition) picks exactly the points a full stable sort would. The keys
            # are integers below 2**53, exact in float64 (no conversion pass to int64 needed).
            keys = np.rint(np.multiply(norms, 10.0**_G_DECIMALS))
            keys *= len(box)
            keys += np.arange(len(box))
            nearest = np.sort(np.partition(keys, n_points - 1, axis=1)[:, :n_points], axis=1)
            order = (nearest % len(box)).astype(np.int64)
            line = np.arange(len(rows))[:, None]
            miller[rows] = np.take(box, order, axis=0)
            norms_out[rows] = norms[line, order]
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
