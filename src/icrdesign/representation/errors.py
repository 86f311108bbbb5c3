"""Typed reasons why a structure cannot be encoded or an array cannot be decoded.

Batch encoding never raises these: each rejected row carries one, so a run counts and reports
its bad rows and goes on. ``code`` is the short machine-readable reason written to rejected.csv.
"""

from __future__ import annotations


class EncodingError(ValueError):
    """A structure cannot be represented; ``code`` names the reason, the message gives detail."""

    code = "encoding_error"

    @property
    def reason(self) -> str:
        return f"{self.code}: {self}"


class NotAStructureError(EncodingError):
    code = "not_a_structure"


class DisorderedStructureError(EncodingError):
    code = "disordered"


class TooManySitesError(EncodingError):
    code = "too_many_sites"


class TooManyElementsError(EncodingError):
    code = "too_many_elements"


class UnknownElementError(EncodingError):
    code = "element_not_in_vocabulary"


class DegenerateLatticeError(EncodingError):
    code = "degenerate_lattice"


class NonFiniteValueError(EncodingError):
    code = "non_finite"


class CanonicalizationError(EncodingError):
    code = "canonicalization_failed"


ENCODING_ERRORS: tuple[type[EncodingError], ...] = (
    NotAStructureError,
    DisorderedStructureError,
    TooManySitesError,
    TooManyElementsError,
    UnknownElementError,
    DegenerateLatticeError,
    NonFiniteValueError,
    CanonicalizationError,
)
ERROR_BY_CODE: dict[str, type[EncodingError]] = {cls.code: cls for cls in ENCODING_ERRORS}


def reason_code(reason: str | None) -> str | None:
    """The short code of a ``"code: detail"`` reason string."""
    return None if reason is None else reason.split(":", 1)[0]
