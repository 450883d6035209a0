"""Adds the training statistics of every input (min, max, quantiles) and the sample-basis fields to the `lineguard`
metadata of an already trained model, without retraining: only metadata_props change, the graph and its weights stay
byte for byte the same, so the model's outputs do not change.

    /usr/bin/python3 models/training/add_input_statistics.py ai4i-fault
    /usr/bin/python3 models/training/add_input_statistics.py cmapss-rul

The training scripts write the same fields themselves (common.input_statistics, common.sample_basis), so a retrain
gives the same metadata. The statistics come from the rows the model's mean/std were computed on (its training part).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import onnx

import common


def training_rows(name: str) -> np.ndarray:
    if name == "ai4i-fault":
        import train_ai4i
        return common.load_ai4i()["x"][:train_ai4i.TRAIN_END]
    if name == "cmapss-rul":
        import train_cmapss
        p = train_cmapss.prepare()
        return np.concatenate([p["train_eng"][u] for u in p["fit_units"]])
    raise SystemExit(f"unknown model {name}")


def main() -> None:
    name = sys.argv[1]
    path = common.MODELS_DIR / name / "model.onnx"
    model = onnx.load(str(path))
    entry = next(e for e in model.metadata_props if e.key == "lineguard")
    meta = json.loads(entry.value)
    rows = training_rows(name)
    assert rows.shape[1] == len(meta["inputs"]), (rows.shape, len(meta["inputs"]))
    for inp, st in zip(meta["inputs"], common.input_statistics(rows)):
        inp.update(st)
    meta.update(common.sample_basis(name))
    entry.value = json.dumps(meta, separators=(",", ":"))
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    print(f"{path}: input statistics from {len(rows)} training rows added to the metadata")


if __name__ == "__main__":
    main()
