"""The encode stage: dataset table in; ICR arrays, index, representation, scaler (fitted on the
training split), rejected rows and summary out (:mod:`icrdesign.artefacts.encoded`)."""

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

from icrdesign.artefacts.encoded import EncodedArrays, write_encoded
from icrdesign.errors import InputError
from icrdesign.representation.errors import NotAStructureError, reason_code
from icrdesign.representation.icr import ICR
from icrdesign.representation.roundtrip import roundtrip_matches
from icrdesign.representation.scaler import MinMaxScaler
from icrdesign.split import dataset_split

log = logging.getLogger("icrdesign.encode")

#: The dataset table columns the encode stage reads.
INPUT_COLUMNS = ("material_id", "structure")


def _parse_structure_json(text: object) -> Structure | str:
    """A Structure, or the reason it could not be read."""
    try:
        return Structure.from_dict(json.loads(str(text)))
    except Exception as error:  # any malformed JSON / dict is one bad row, not a failed run
        return NotAStructureError(f"unreadable structure JSON ({type(error).__name__}: {error})").reason


def encode_dataset(table: pd.DataFrame, config: dict[str, Any], out_dir: Path, n_jobs: int | None = None) -> dict[str, Any]:
    """Encode a dataset table (columns :data:`INPUT_COLUMNS`) into ``out_dir``; return the summary.

    Reads the config's ``representation``, ``split`` and ``seed``. A table without one encodable
    training-split crystal (nothing to fit the scaler on) raises InputError.
    """
    parsed = [_parse_structure_json(text) for text in tqdm(table["structure"], desc="reading structures")]
    structures = [item if isinstance(item, Structure) else None for item in parsed]
    icr = ICR.from_config(config["representation"], structures=[s for s in structures if s is not None])
    log.info("%r", icr)

    batch = icr.encode(structures, n_jobs=n_jobs)
    reasons = [item if isinstance(item, str) else reason for item, reason in zip(parsed, batch.reasons)]
    material_ids = table["material_id"].astype(str).to_numpy()
    split = dataset_split(material_ids, config)

    train = batch.mask & (split == "train")
    if not train.any():
        raise InputError(f"none of the {len(table)} dataset rows is an encodable training-split structure; "
                         "cannot fit the scaler")
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
        "rejected_by_reason": dict(Counter(reason_code(reason) for _, reason in rejected)),
        "roundtrip_rate": float(matches.mean()) if n_encoded else 0.0,
        "roundtrip_failures": failed_roundtrip,
        "n_train_for_scaler": int(train.sum()),
        "shape": [icr.n_rows, icr.n_channels],
        "n_elements": len(icr.elements),
    }
    write_encoded(out_dir, EncodedArrays(icr=icr, scaler=scaler, array=batch.array, index=index), rejected_table, summary)
    log.info("encoded %d of %d structures (%d rejected: %s); round-trip rate %.4f", n_encoded, len(table),
             len(rejected), summary["rejected_by_reason"], summary["roundtrip_rate"])
    return summary
