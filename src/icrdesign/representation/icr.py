"""The invertible crystallographic representation (ICR): a fixed-size float32 array per crystal.

Rows (each row holds one kind of quantity; channels = max(3, max_elements)):

- ``elements``   vocabulary rows: one-hot of the element of each element column
- ``lattice``    2 rows: (a, b, c) in angstrom, (alpha, beta, gamma) in degrees
- ``coords``     max_sites rows: fractional coordinates in [0, 1)
- ``occupancy``  max_sites rows: one-hot link from a site to its element column; padded sites zero
- ``properties`` one row per elemental descriptor, one value per element column
- ``fourier``    optional: |G| and the real and imaginary parts of every descriptor's Fourier
                 transform over the K nearest reciprocal points; each quantity's K values fill
                 ceil(K / channels) consecutive rows.

Only the first four blocks are needed to decode; properties and Fourier are derived features.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymatgen.core import Composition, Element, Structure

from icrdesign.representation.elements import (
    DESCRIPTOR_NAMES,
    MAX_Z,
    descriptor_table,
    normalize_vocabulary,
)
from icrdesign.representation.build import structures_from_arrays
from icrdesign.representation.errors import ERROR_BY_CODE, reason_code
from icrdesign.representation.fourier import transformed_properties
from icrdesign.parallel import fork_map, n_workers, shared_zeros
from icrdesign.representation.parse import (
    LENGTH_RANGE,
    ParsedChunk,
    ParseSettings,
    lattice_matrices,
    parse_chunk,
    representable,
)

CANONICAL_FORMS = ("niggli_primitive", "as_given")
FORMAT_NAME = "icrdesign.icr"
FORMAT_VERSION = 1
# The constructor's keywords: the keys of the ``representation`` config section and of icr.json.
SETTING_NAMES = (
    "max_sites", "max_elements", "elements", "fourier", "canonical", "n_reciprocal_points", "occupancy_threshold",
)
# Decoded angles are clipped into the range any cell's can take (degrees); lengths into
# parse.LENGTH_RANGE. Which cells are possible (and encodable) is parse.representable's call.
ANGLE_RANGE = (0.0, 180.0)
# Structures parsed and assembled per vectorised step (bounds the memory of the intermediates).
ASSEMBLY_CHUNK = 1024
MIN_PER_WORKER_AS_GIVEN = 25_000
MIN_PER_WORKER_CANONICAL = 8


@dataclass
class EncodedBatch:
    """Result of ICR.encode: ``array`` rows of rejected structures are zero."""

    array: np.ndarray  # float32 (N, n_rows, n_channels)
    mask: np.ndarray  # bool (N,), True where encoded
    reasons: list[str | None]  # "code: detail" for rejected rows, None for encoded ones

    def __len__(self) -> int:
        return len(self.reasons)


class ICR:
    """Encoder / decoder between pymatgen Structures and fixed-size ICR arrays."""

    def __init__(
        self,
        max_sites: int = 20,
        max_elements: int = 4,
        elements: Sequence[str] | None = None,
        fourier: bool = False,
        canonical: str = "niggli_primitive",
        n_reciprocal_points: int = 59,
        occupancy_threshold: float = 0.5,
    ) -> None:
        if canonical not in CANONICAL_FORMS:
            raise ValueError(f"canonical must be one of {list(CANONICAL_FORMS)}, got {canonical!r}")
        if max_sites < 1 or max_elements < 1 or n_reciprocal_points < 1:
            raise ValueError("max_sites, max_elements and n_reciprocal_points must be positive")
        if not 0.0 < occupancy_threshold < 1.0:
            raise ValueError(f"occupancy_threshold must lie in (0, 1), got {occupancy_threshold}")
        self.max_sites = int(max_sites)
        self.max_elements = int(max_elements)
        self.elements: tuple[str, ...] = normalize_vocabulary(None if elements is None else list(elements))
        self.fourier = bool(fourier)
        self.canonical = canonical
        self.n_reciprocal_points = int(n_reciprocal_points)
        self.occupancy_threshold = float(occupancy_threshold)

        self.vocabulary_z = np.array([Element(symbol).Z for symbol in self.elements], dtype=np.int64)
        self._vocab_index = np.full(MAX_Z + 1, -1, dtype=np.int64)
        self._vocab_index[self.vocabulary_z] = np.arange(len(self.vocabulary_z))
        self._descriptors = descriptor_table()  # (D, MAX_Z + 1)
        self.n_channels = max(3, self.max_elements)
        self.blocks = self._layout()
        self.n_rows = max(stop for _, stop in self.blocks.values())
        # One shared (immutable) Composition per element: decoding builds sites without re-parsing species.
        self._site_species = [Composition({Element(symbol): 1}) for symbol in self.elements]

    # ------------------------------------------------------------------ layout
    @property
    def n_descriptors(self) -> int:
        return len(DESCRIPTOR_NAMES)

    @property
    def fourier_rows_per_quantity(self) -> int:
        return math.ceil(self.n_reciprocal_points / self.n_channels)

    def _layout(self) -> dict[str, tuple[int, int]]:
        sizes = {
            "elements": len(self.elements),
            "lattice": 2,
            "coords": self.max_sites,
            "occupancy": self.max_sites,
            "properties": self.n_descriptors,
        }
        if self.fourier:
            sizes["fourier"] = (1 + 2 * self.n_descriptors) * self.fourier_rows_per_quantity
        blocks, start = {}, 0
        for name, size in sizes.items():
            blocks[name] = (start, start + size)
            start += size
        return blocks

    def block(self, array: np.ndarray, name: str) -> np.ndarray:
        """View of one block of an (N, rows, channels) array."""
        start, stop = self.blocks[name]
        return array[:, start:stop]

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            **{name: getattr(self, name) for name in SETTING_NAMES},
            "elements": list(self.elements),  # a JSON list, not the tuple
            "descriptor_names": list(DESCRIPTOR_NAMES),
            "n_rows": self.n_rows,
            "n_channels": self.n_channels,
            "blocks": {name: list(bounds) for name, bounds in self.blocks.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ICR:
        if data.get("format") != FORMAT_NAME or data.get("version") != FORMAT_VERSION:
            raise ValueError(f"not an ICR description (format {data.get('format')!r}, version {data.get('version')!r})")
        icr = cls(**{name: data[name] for name in SETTING_NAMES})
        if list(data["descriptor_names"]) != list(DESCRIPTOR_NAMES) or icr.n_rows != data["n_rows"]:
            raise ValueError("saved ICR layout differs from this version's descriptors; re-encode the dataset")
        return icr

    @classmethod
    def from_config(cls, section: dict[str, Any], structures: Iterable[object] | None = None) -> ICR:
        """Build from the ``representation`` config section; a null element list means the
        elements present in ``structures`` (or every element up to Pu without structures).

        The section's keys are the constructor's keywords; a key it leaves out takes the
        constructor's default (the configuration's defaults live in config.yaml alone).
        """
        settings = dict(section)
        if settings.get("elements") is None and structures is not None:
            settings["elements"] = vocabulary_from_structures(structures)
        return cls(**settings)

    def __repr__(self) -> str:
        return (
            f"ICR(max_sites={self.max_sites}, max_elements={self.max_elements}, n_elements={len(self.elements)}, "
            f"fourier={self.fourier}, canonical={self.canonical!r}, shape=({self.n_rows}, {self.n_channels}))"
        )

    # ------------------------------------------------------------------ encoding
    def _parse_settings(self) -> ParseSettings:
        return ParseSettings(
            max_sites=self.max_sites,
            max_elements=self.max_elements,
            canonical=self.canonical,
            n_reciprocal_points=self.n_reciprocal_points if self.fourier else None,
            vocabulary_z=frozenset(self.vocabulary_z.tolist()),
        )

    def encode(self, structures: Sequence[object], n_jobs: int | None = None) -> EncodedBatch:
        """Encode a batch; rejected structures get a zero array, mask False and a reason.

        ``n_jobs``: worker processes (None: all cores); each encodes a contiguous range straight
        into a shared output array.
        """
        structures = list(structures)
        n = len(structures)
        settings = self._parse_settings()
        jobs = n_workers(n_jobs)
        as_given = self.canonical == "as_given"
        # Forking costs 0.1-0.4 s: for as_given (~0.1 ms a structure) it did not pay on the shared 2-core
        # machine even at 20,000 structures, so only huge batches fork; canonicalisation (pymatgen,
        # milliseconds a structure) forks early, in more ranges to balance load.
        n_ranges = min(n // (MIN_PER_WORKER_AS_GIVEN if as_given else MIN_PER_WORKER_CANONICAL), jobs if as_given else 4 * jobs)
        parallel = jobs > 1 and n_ranges > 1
        shape = (n, self.n_rows, self.n_channels)
        array = shared_zeros(shape) if parallel else np.zeros(shape, dtype=np.float32)

        def encode_range(start: int, stop: int) -> list[str | None]:
            reasons: list[str | None] = []
            for low in range(start, stop, ASSEMBLY_CHUNK):
                high = min(low + ASSEMBLY_CHUNK, stop)
                chunk = parse_chunk(structures[low:high], settings)
                self._assemble(chunk, array[low:high])
                reasons.extend(chunk.reasons)
            return reasons

        parts = fork_map(encode_range, n, jobs, n_ranges if parallel else 1)
        reasons = [reason for part in parts for reason in part]
        mask = np.array([reason is None for reason in reasons], dtype=bool)
        array[~mask] = 0.0
        return EncodedBatch(array=array, mask=mask, reasons=reasons)

    def encode_structure(self, structure: Structure) -> np.ndarray:
        """Encode one structure; raises the EncodingError subclass naming why it cannot be."""
        batch = self.encode([structure], n_jobs=1)
        if not batch.mask[0]:
            reason = batch.reasons[0] or ""
            raise ERROR_BY_CODE[reason_code(reason) or ""](reason.split(": ", 1)[-1])
        return batch.array[0]

    def _assemble(self, chunk: ParsedChunk, out: np.ndarray) -> None:
        """Vectorised fill of ``out`` (the chunk's zeroed float32 ICR arrays)."""
        column_z = chunk.column_z  # (n, E)
        site_column = chunk.site_column  # (n, S)

        has_column = column_z > 0
        sample, column = np.nonzero(has_column)
        out[sample, self.blocks["elements"][0] + self._vocab_index[column_z[sample, column]], column] = 1.0

        lattice_start = self.blocks["lattice"][0]
        out[:, lattice_start, :3] = chunk.lattice_parameters[:, :3]
        out[:, lattice_start + 1, :3] = chunk.lattice_parameters[:, 3:]

        coords_start, coords_stop = self.blocks["coords"]
        out[:, coords_start:coords_stop, :3] = chunk.frac_coords

        occupied = site_column >= 0
        sample, site = np.nonzero(occupied)
        out[sample, self.blocks["occupancy"][0] + site, site_column[sample, site]] = 1.0

        column_descriptors = self._descriptors[:, column_z] * has_column  # (D, n, E); Z=0 column is zero
        props_start, props_stop = self.blocks["properties"]
        out[:, props_start:props_stop, : self.max_elements] = column_descriptors.transpose(1, 0, 2)

        if self.fourier:
            assert chunk.miller is not None and chunk.g_norm is not None
            site_z = np.take_along_axis(column_z, np.maximum(site_column, 0), axis=1) * occupied
            site_descriptors = self._descriptors[:, site_z].transpose(1, 2, 0)  # (n, S, D)
            fourier_start, fourier_stop = self.blocks["fourier"]
            # Each quantity's K values fill consecutive rows: view the block as (n, quantity, padded K).
            quantities = out[:, fourier_start:fourier_stop].reshape(
                len(out), 1 + 2 * self.n_descriptors, self.fourier_rows_per_quantity * self.n_channels, copy=False
            )  # copy=False: a view (writes reach out) or an error, never a silent copy
            k, d = self.n_reciprocal_points, self.n_descriptors
            quantities[:, 0, :k] = chunk.g_norm
            transformed_properties(
                chunk.miller,
                chunk.frac_coords,
                site_descriptors,
                occupied.sum(axis=1),
                out=(quantities[:, 1 : 1 + d, :k], quantities[:, 1 + d :, :k]),
            )

    # ------------------------------------------------------------------ decoding
    def decode(self, array: np.ndarray) -> list[Structure | None]:
        """Decode raw (unscaled) arrays; rows that describe no valid crystal give None."""
        return self.decode_with_reasons(array)[0]

    def decode_with_reasons(self, array: np.ndarray) -> tuple[list[Structure | None], list[str | None]]:
        """Decode raw arrays (N, rows, channels) or one (rows, channels) array.

        Robust to continuous model outputs: element of a column by argmax over the vocabulary
        rows, a site exists where its largest occupancy >= occupancy_threshold, lattice lengths
        clipped to the range the ICR holds and angles to [0, 180], coordinates wrapped into [0, 1).
        Every cell encoding accepts lies inside those ranges, so an encoded array decodes to its
        cell exactly (to float32 rounding), whatever its angles.
        """
        array = np.asarray(array)
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3 or array.shape[1:] != (self.n_rows, self.n_channels):
            raise ValueError(f"expected arrays of shape (N, {self.n_rows}, {self.n_channels}), got {array.shape}")
        needed = array[:, : self.blocks["occupancy"][1]].astype(np.float64)
        n = len(needed)
        reasons: list[str | None] = [None] * n

        finite = np.isfinite(needed).all(axis=(1, 2))
        needed = np.where(finite[:, None, None], needed, 0.0)
        column_vocab = self.block(needed, "elements")[:, :, : self.max_elements].argmax(axis=1)  # (N, E)
        occupancy = self.block(needed, "occupancy")[:, :, : self.max_elements]
        present = occupancy.max(axis=2) >= self.occupancy_threshold  # (N, S)
        site_column = occupancy.argmax(axis=2)
        site_vocab = np.take_along_axis(column_vocab, site_column, axis=1)  # (N, S)
        frac = np.mod(self.block(needed, "coords")[:, :, :3], 1.0)
        frac[frac >= 1.0] = 0.0  # mod of a tiny negative number rounds to 1.0

        lattice_block = self.block(needed, "lattice")
        lengths, angles = lattice_block[:, 0, :3], lattice_block[:, 1, :3]
        positive = (lengths > 0).all(axis=1)
        parameters = np.concatenate([np.clip(lengths, *LENGTH_RANGE), np.clip(angles, *ANGLE_RANGE)], axis=1)
        possible = representable(parameters)
        matrices = lattice_matrices(np.where(possible[:, None], parameters, [1, 1, 1, 90, 90, 90]))

        has_sites = present.any(axis=1)
        valid = finite & has_sites & positive & possible
        for i in np.flatnonzero(~valid).tolist():
            if not finite[i]:
                reasons[i] = "non_finite: NaN or infinity in the element, lattice, coordinate or occupancy rows"
            elif not has_sites[i]:
                reasons[i] = f"no_sites: no site occupancy reaches {self.occupancy_threshold}"
            elif not positive[i]:
                reasons[i] = f"non_positive_length: lattice lengths {np.round(lengths[i], 4).tolist()}"
            else:
                reasons[i] = f"impossible_angles: {np.round(parameters[i, 3:], 2).tolist()} describe no cell"

        # All sites of all valid crystals as flat arrays, in crystal then site order.
        owner, site = np.nonzero(present & valid[:, None])
        species = [self._site_species[v] for v in site_vocab[owner, site].tolist()]
        rows = np.flatnonzero(valid)
        built = structures_from_arrays(matrices[rows], species, frac[owner, site], np.bincount(owner, minlength=n)[rows].tolist())
        structures: list[Structure | None] = [None] * n
        for i, structure in zip(rows.tolist(), built):
            structures[i] = structure
        return structures, reasons


def vocabulary_from_structures(structures: Iterable[object]) -> list[str]:
    """Elements (Z <= 94) present in the ordered structures, sorted by atomic number.

    Disordered structures are skipped: they are rejected at encoding and must not widen the vocabulary.
    """
    found: set[int] = set()
    for structure in structures:
        if isinstance(structure, Structure) and structure.is_ordered:
            for element in structure.composition.elements:
                z = getattr(element, "Z", 0)
                if 0 < z <= MAX_Z:
                    found.add(z)
    if not found:
        raise ValueError("no elements up to Pu found in the structures; cannot build a vocabulary")
    return [Element.from_Z(z).symbol for z in sorted(found)]
