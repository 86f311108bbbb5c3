"""The encode stage: dataset table in; ICR arrays, index, representation, scaler (fitted on the
training split), rejected rows and summary out (:mod:`icrdesign.artefacts.encoded`).

Rows refused by the checks every stage shares (:func:`icrdesign.artefacts.dataset.id_rejections`)
and unencodable structures go to rejected.csv with their reason; the run goes on."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Structure
from tqdm import tqdm

from icrdesign.artefacts.dataset import id_rejections, id_texts
from icrdesign.artefacts.encoded import EncodedArrays, write_encoded
from icrdesign.errors import InputError
from icrdesign.io import exclusive_lock
from icrdesign.representation.errors import NotAStructureError, reason_code
from icrdesign.representation.icr import ICR
from icrdesign.representation.roundtrip import roundtrip_matches
from icrdesign.representation.scaler import MinMaxScaler
from icrdesign.split import dataset_split, given_split

log = logging.getLogger("icrdesign.encode")

#: The dataset table columns the encode stage reads.
INPUT_COLUMNS = ("material_id", "structure")


def _parse_structure_json(text: object) -> Structure | str:
    """A Structure, or the reason it could not be read."""
    try:
        return Structure.from_dict(json.loads(str(text)))
    except Exception as error:  # any malformed JSON / dict is one bad row, not a failed run
        return NotAStructureError(f"unreadable structure JSON ({type(error).__name__}: {error})").reason


def encode_dataset(table: pd.DataFrame, config: dict[str, Any], out_dir: Path, n_jobs: int | None = None,
                   source: str | Path = "dataset table") -> dict[str, Any]:
    """Encode a dataset table (columns :data:`INPUT_COLUMNS`) into ``out_dir``; return the summary.

    Reads the config's ``representation``, ``split`` and ``seed``; holds ``out_dir``'s lock while it
    runs. A row without a ``material_id``, or repeating an earlier row's, is rejected like an
    unencodable structure (the first row of an id is the one encoded). A table without one encodable
    training-split crystal (nothing to fit the scaler on) raises InputError naming ``source``, the
    table's file.
    """
    if table.empty:
        raise InputError(f"{source}: the table has no rows; nothing to encode (re-run the dataset stage)")
    with exclusive_lock(out_dir):
        material_ids = np.array(id_texts(table["material_id"]), dtype=str)
        # A row refused for its id is not read; its reason takes the encoder's ``code: detail`` form.
        parsed = [f"{by_id.reason}: {by_id.detail}" if by_id is not None else _parse_structure_json(text)
                  for by_id, text in zip(id_rejections(table["material_id"]),
                                         tqdm(table["structure"], desc="reading structures"))]
        structures = [item if isinstance(item, Structure) else None for item in parsed]
        try:
            icr = ICR.from_config(config["representation"], structures=[s for s in structures if s is not None])
        except ValueError as error:  # the element vocabulary comes from the rows: none holds an ordered structure
            raise InputError(f"{source}: {error} (rejected: {_count_reasons(parsed)})") from None
        log.info("%r", icr)

        batch = icr.encode(structures, n_jobs=n_jobs)
        reasons = [item if isinstance(item, str) else reason for item, reason in zip(parsed, batch.reasons)]
        split = dataset_split(material_ids, config, given_split(table))

        train = batch.mask & (split == "train")
        if not train.any():
            raise InputError(f"{source}: none of its {len(table)} rows is an encodable training-split structure "
                             f"(rejected: {_count_reasons(reasons)}); cannot fit the scaler")
        scaler = MinMaxScaler().fit(batch.array[train])

        encoded_idx = np.flatnonzero(batch.mask)
        matches = roundtrip_matches(icr, [structures[i] for i in encoded_idx], batch.array[encoded_idx], n_jobs=n_jobs)
        failed_roundtrip = material_ids[encoded_idx[~matches]].tolist()

        index = pd.DataFrame({"material_id": material_ids, "encoded": batch.mask, "reason": reasons, "split": split})
        rejected = [(mid, reason) for mid, reason in zip(material_ids, reasons) if reason is not None]
        rejected_table = pd.DataFrame({
            "material_id": [mid for mid, _ in rejected],
            "reason": [reason_code(reason) for _, reason in rejected],
            "detail": [reason.split(": ", 1)[-1] for _, reason in rejected],
        })
        n_encoded = int(batch.mask.sum())
        summary = {
            "n_total": len(table),
            "n_encoded": n_encoded,
            "n_rejected": len(rejected),
            "rejected_by_reason": _count_reasons(reasons),
            "roundtrip_rate": float(matches.mean()) if n_encoded else 0.0,
            "roundtrip_failures": failed_roundtrip,
            "n_train_for_scaler": int(train.sum()),
            "shape": [icr.n_rows, icr.n_channels],
            "n_elements": len(icr.elements),
        }
        write_encoded(out_dir, EncodedArrays(icr=icr, scaler=scaler, array=batch.array, index=index), rejected_table,
                      summary)
    log.info("encoded %d of %d structures (%d rejected: %s); round-trip rate %.4f", n_encoded, len(table),
             len(rejected), summary["rejected_by_reason"], summary["roundtrip_rate"])
    return summary


def _count_reasons(reasons: list[Any]) -> dict[str, int]:
    """How many rows each reason code refused (``reasons``: ``code: detail`` texts; other items skipped)."""
    return dict(Counter(reason_code(reason) for reason in reasons if isinstance(reason, str)))
