"""``icrdesign encode``: encode the dataset table, fit the scaler on the training split, write
results/encoded/{icr.npy, index.csv, icr.json, scaler.json, rejected.csv, summary.json}."""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Structure
from tqdm import tqdm

from icrdesign.config import load_config
from icrdesign.io import atomic_open, write_csv, write_json
from icrdesign.representation.errors import NotAStructureError, reason_code
from icrdesign.representation.icr import ICR
from icrdesign.representation.roundtrip import roundtrip_matches
from icrdesign.representation.scaler import MinMaxScaler
from icrdesign.split import split_ids

log = logging.getLogger("icrdesign.encode")


def _parse_structure_json(text: object) -> Structure | str:
    """A Structure, or the reason it could not be read."""
    try:
        return Structure.from_dict(json.loads(str(text)))
    except Exception as error:  # any malformed JSON / dict is one bad row, not a failed run
        return NotAStructureError(f"unreadable structure JSON ({type(error).__name__}: {error})").reason


def encode_dataset(table: pd.DataFrame, config: dict, out_dir: Path, n_jobs: int | None = None) -> dict:
    """Encode a dataset table (contract columns material_id, structure) into ``out_dir``; return the summary."""
    parsed = [_parse_structure_json(text) for text in tqdm(table["structure"], desc="reading structures")]
    structures = [item if isinstance(item, Structure) else None for item in parsed]
    icr = ICR.from_config(config["representation"], structures=[s for s in structures if s is not None])
    log.info("%r", icr)

    batch = icr.encode(structures, n_jobs=n_jobs)
    reasons = [item if isinstance(item, str) else reason for item, reason in zip(parsed, batch.reasons)]
    material_ids = table["material_id"].astype(str).to_numpy()
    split = split_ids(material_ids, config["model"]["split"], config["seed"])

    train = batch.mask & (split == "train")
    if not train.any():
        raise ValueError("no training-split structure could be encoded; cannot fit the scaler")
    scaler = MinMaxScaler().fit(batch.array[train])

    encoded_idx = np.flatnonzero(batch.mask)
    matches = roundtrip_matches(icr, [structures[i] for i in encoded_idx], batch.array[encoded_idx], n_jobs=n_jobs)
    failed_roundtrip = material_ids[encoded_idx[~matches]].tolist()

    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(out_dir / "icr.npy", "wb") as handle:
        np.save(handle, batch.array)
    write_csv(
        out_dir / "index.csv",
        pd.DataFrame({"material_id": material_ids, "encoded": batch.mask, "reason": reasons, "split": split}),
    )
    write_json(out_dir / "icr.json", icr.to_dict())
    write_json(out_dir / "scaler.json", scaler.to_dict())
    rejected = [(mid, reason) for mid, reason in zip(material_ids, reasons) if reason is not None]
    write_csv(
        out_dir / "rejected.csv",
        pd.DataFrame(
            {
                "material_id": [mid for mid, _ in rejected],
                "reason": [reason_code(reason) for _, reason in rejected],
                "detail": [reason.split(": ", 1)[-1] for _, reason in rejected],
            },
            columns=["material_id", "reason", "detail"],
        ),
    )
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
    write_json(out_dir / "summary.json", summary)
    return summary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="icrdesign encode", description=__doc__)
    parser.add_argument("--dataset", type=Path, required=True, help="dataset.parquet from the dataset stage")
    parser.add_argument("--config", type=Path, required=True, help="config YAML/JSON (representation, model, seed)")
    parser.add_argument("--out", type=Path, required=True, help="output directory (results/encoded)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_config(args.config)
    summary = encode_dataset(pd.read_parquet(args.dataset), config, args.out, n_jobs=args.jobs)
    log.info(
        "encoded %d of %d structures (%d rejected: %s); round-trip rate %.4f",
        summary["n_encoded"],
        summary["n_total"],
        summary["n_rejected"],
        summary["rejected_by_reason"],
        summary["roundtrip_rate"],
    )
    return 0
