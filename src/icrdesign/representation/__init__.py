"""Invertible crystallographic representation (ICR): encode pymatgen Structures to fixed-size
float32 arrays and decode them back exactly.

>>> from icrdesign.representation import ICR
>>> icr = ICR(max_sites=20, max_elements=4, fourier=True)
>>> batch = icr.encode(structures)          # batch.array, batch.mask, batch.reasons
>>> decoded = icr.decode(batch.array)       # list[Structure | None]

Names are imported on first use, so the scaler (``icrdesign.representation.scaler``, numpy only)
loads without pymatgen, e.g. for benchmarks on a bare GPU machine.
"""

from __future__ import annotations

from icrdesign.lazy import lazy_exports

_EXPORTS = {
    "DESCRIPTOR_NAMES": "elements",
    "CanonicalizationError": "errors",
    "DegenerateLatticeError": "errors",
    "DisorderedStructureError": "errors",
    "EncodingError": "errors",
    "NonFiniteValueError": "errors",
    "NotAStructureError": "errors",
    "TooManyElementsError": "errors",
    "TooManySitesError": "errors",
    "UnknownElementError": "errors",
    "reason_code": "errors",
    "ICR": "icr",
    "EncodedBatch": "icr",
    "vocabulary_from_structures": "icr",
    "MinMaxScaler": "scaler",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = list(_EXPORTS)
