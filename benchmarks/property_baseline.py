"""How learnable are the property labels? A gradient-boosted tree ensemble on the flattened, scaled ICR
of the same train/test split as the VAE, side by side with the VAE's test metrics; prints JSON.

    .venv/bin/python benchmarks/property_baseline.py [--results results]

Reads RESULTS/encoded (arrays, scaler), RESULTS/data/dataset.parquet (labels) and RESULTS/model
(split.csv, metrics.json) of a finished run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

from icrdesign.artefacts.model import METRICS_FILE, SPLIT_FILE, read_split
from icrdesign.model.pipeline import EncodedDataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    metrics = json.loads((args.results / "model" / METRICS_FILE).read_text())
    names = list(metrics["property_mae"])
    data = EncodedDataset.load(args.results / "encoded", args.results / "data" / "dataset.parquet", names)
    split = read_split(args.results / "model" / SPLIT_FILE)
    part = pd.Series(split["split"].to_numpy(), index=split["material_id"].astype(str)).reindex(
        [str(m) for m in data.material_ids]).to_numpy()
    features = data.scaler.transform(data.raw).reshape(len(part), -1)
    train, test = part == "train", part == "test"
    result = {}
    for j, name in enumerate(names):
        labels = data.properties[:, j]
        known = np.isfinite(labels)
        start = time.perf_counter()
        model = HistGradientBoostingRegressor(max_iter=500, learning_rate=0.05, random_state=args.seed)
        model.fit(features[train & known], labels[train & known])
        error = np.abs(model.predict(features[test & known]) - labels[test & known])
        result[name] = {"gradient_boosting_test_mae": float(error.mean()), "vae_test_mae": metrics["property_mae"][name],
                        "label_std": float(np.nanstd(labels)), "fit_seconds": time.perf_counter() - start}
    print(json.dumps({"n_train": int(train.sum()), "n_test": int(test.sum()), "properties": result}, indent=2))


if __name__ == "__main__":
    main()
