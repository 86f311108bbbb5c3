"""Invertible crystallographic representation (ICR): encode pymatgen Structures to fixed-size
float32 arrays and decode them back exactly.

>>> from icrdesign.representation import ICR
>>> icr = ICR(max_sites=20, max_elements=4, fourier=True)
>>> batch = icr.encode(structures)          # batch.array, batch.mask, batch.reasons
>>> decoded = icr.decode(batch.array)       # list[Structure | None]
"""

from icrdesign.representation.elements import DESCRIPTOR_NAMES
from icrdesign.representation.errors import (
    CanonicalizationError,
    DegenerateLatticeError,
    DisorderedStructureError,
    EncodingError,
    NonFiniteValueError,
    NotAStructureError,
    TooManyElementsError,
    TooManySitesError,
    UnknownElementError,
    reason_code,
)
from icrdesign.representation.icr import ICR, EncodedBatch, vocabulary_from_structures
from icrdesign.representation.scaler import MinMaxScaler


def main(argv: list[str]) -> int:
    """``icrdesign encode``: see icrdesign.representation.cli."""
    from icrdesign.representation.cli import main as cli_main

    return cli_main(argv)


__all__ = [
    "DESCRIPTOR_NAMES",
    "ICR",
    "CanonicalizationError",
    "DegenerateLatticeError",
    "DisorderedStructureError",
    "EncodedBatch",
    "EncodingError",
    "MinMaxScaler",
    "NonFiniteValueError",
    "NotAStructureError",
    "TooManyElementsError",
    "TooManySitesError",
    "UnknownElementError",
    "main",
    "reason_code",
    "vocabulary_from_structures",
]
