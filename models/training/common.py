"""Shared helpers for the Lineguard model training scripts.

Everything here reads only the committed copies under models/data/ and writes only under models/.
Run with Debian's interpreter, /usr/bin/python3 (python3-torch 1.13, python3-onnx 1.12, python3-numpy).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import random
from pathlib import Path

import numpy as np
import torch

MODELS_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = MODELS_DIR / "data"

# ONNX opset used for every export: old enough for TensorRT 8.x and every onnxruntime since 1.7.
OPSET = 13
SCHEMA_VERSION = 1


def seed_everything(seed: int) -> None:
    """Fixed seeds, one intra-op thread and deterministic kernels: two runs give the same bytes."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify_checksums(dataset_dir: Path) -> None:
    """Checks the committed files against the dataset's SHA256SUMS (lines `hash  name`; `#` starts a comment)."""
    sums = dataset_dir / "SHA256SUMS"
    for line in sums.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        digest, name = line.split(None, 1)
        name = name.lstrip("*")
        target = dataset_dir / name
        if not target.exists():
            continue  # SHA256SUMS also lists the uncompressed originals, which are committed only gzipped
        actual = sha256_of(target)
        if actual != digest:
            raise SystemExit(f"checksum mismatch for {target}: {actual} != {digest}")


# --------------------------------------------------------------------------------------------------------------
# AI4I 2020

AI4I_TYPE_CODE = {"L": 0, "M": 1, "H": 2}


def load_ai4i() -> dict[str, np.ndarray]:
    """Rows in UDI (process) order. The file is UTF-8 with a BOM and CRLF line endings."""
    d = DATA_DIR / "ai4i2020"
    verify_checksums(d)
    with open(d / "ai4i2020.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["UDI", "Product ID", "Type"], header
    udi = np.array([int(r[0]) for r in body])
    assert (udi == np.arange(1, len(body) + 1)).all(), "rows must be in UDI order"
    product_type = np.array([AI4I_TYPE_CODE[r[2]] for r in body], dtype=np.float64)
    raw = np.array([[float(v) for v in r[3:8]] for r in body], dtype=np.float64)
    labels = np.array([[int(v) for v in r[8:14]] for r in body], dtype=np.int64)
    x = np.concatenate([raw, product_type[:, None]], axis=1)  # air, process, speed, torque, wear, type
    return {
        "udi": udi,
        "product_id": np.array([r[1] for r in body]),
        "x": x,
        "machine_failure": labels[:, 0],
        "TWF": labels[:, 1],
        "HDF": labels[:, 2],
        "PWF": labels[:, 3],
        "OSF": labels[:, 4],
        "RNF": labels[:, 5],
    }


# --------------------------------------------------------------------------------------------------------------
# NASA C-MAPSS FD001

def _read_cmapss_table(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="ascii") as f:
        # Lines end with trailing spaces: split on runs of whitespace.
        return np.array([[float(v) for v in line.split()] for line in f if line.strip()], dtype=np.float64)


def load_cmapss() -> dict[str, np.ndarray]:
    d = DATA_DIR / "nasa-cmapss-fd001"
    verify_checksums(d)
    train = _read_cmapss_table(d / "train_FD001.txt.gz")
    test = _read_cmapss_table(d / "test_FD001.txt.gz")
    rul = _read_cmapss_table(d / "RUL_FD001.txt")[:, 0]
    assert train.shape == (20631, 26) and test.shape == (13096, 26) and rul.shape == (100,)
    return {"train": train, "test": test, "test_rul": rul}


# --------------------------------------------------------------------------------------------------------------
# Metrics (the same definitions as models/evaluate.mjs)

def binary_counts(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[int, int, int]:
    pred = p >= threshold
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    return tp, fp, fn


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """PR-AUC as average precision (sklearn's definition: sum over thresholds of (R_n - R_{n-1}) * P_n; ties grouped)."""
    y = np.asarray(y).astype(np.int64)
    npos = int(y.sum())
    if npos == 0:
        return float("nan")
    order = np.argsort(-p, kind="mergesort")
    ps, ys = p[order], y[order]
    ap, tp, fp, prev_recall, i = 0.0, 0, 0, 0.0, 0
    n = len(ps)
    while i < n:
        j = i
        while j < n and ps[j] == ps[i]:
            tp += int(ys[j])
            fp += 1 - int(ys[j])
            j += 1
        recall = tp / npos
        precision = tp / (tp + fp)
        ap += (recall - prev_recall) * precision
        prev_recall = recall
        i = j
    return ap


def nasa_score(pred: np.ndarray, true: np.ndarray) -> float:
    d = pred - true
    return float(np.where(d < 0, np.exp(-d / 13.0) - 1.0, np.exp(d / 10.0) - 1.0).sum())


# --------------------------------------------------------------------------------------------------------------
# ONNX export helpers

def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path, output_names: list[str],
                metadata: dict, doc_string: str) -> None:
    """Exports with one input `input` [batch, window, features] (batch dynamic) and writes the Lineguard metadata."""
    import onnx

    module.eval()
    tmp = path.with_suffix(".tmp.onnx")
    torch.onnx.export(
        module,
        example,
        str(tmp),
        input_names=["input"],
        output_names=output_names,
        dynamic_axes={"input": {0: "batch"}, **{n: {0: "batch"} for n in output_names}},
        opset_version=OPSET,
        do_constant_folding=True,
    )
    model = onnx.load(str(tmp))
    tmp.unlink()
    # Declare every output as [batch, k] with a static k (the exporter may leave k symbolic after a reduction).
    with torch.no_grad():
        outs = module(example)
    outs = outs if isinstance(outs, (tuple, list)) else (outs,)
    for out, value in zip(model.graph.output, outs):
        dims = out.type.tensor_type.shape.dim
        assert len(dims) == 2 == value.dim(), (out.name, value.shape)
        dims[0].Clear()
        dims[0].dim_param = "batch"
        dims[1].Clear()
        dims[1].dim_value = int(value.shape[1])
    model.producer_name = "lineguard-training"
    model.producer_version = f"torch-{torch.__version__}"
    model.doc_string = doc_string
    model.model_version = int(metadata["version"].split(".")[0])
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key = "lineguard"
    entry.value = json.dumps(metadata, separators=(",", ":"))
    onnx.checker.check_model(model)
    # Static check of the contract before writing.
    inp = model.graph.input
    assert [i.name for i in inp] == ["input"], [i.name for i in inp]
    dims = inp[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and all(d.dim_value > 0 for d in dims[1:]), dims
    assert [o.name for o in model.graph.output] == output_names
    for o in model.graph.output:
        d = o.type.tensor_type.shape.dim
        assert d[0].dim_param == "batch" and d[1].dim_value > 0, o
    path.write_bytes(model.SerializeToString())


def round_sig(x: float, sig: int = 7) -> float:
    """Rounds to `sig` significant digits so the metadata JSON and the constants in the graph are the same numbers."""
    if x == 0 or not np.isfinite(x):
        return float(x)
    return float(f"{x:.{sig}g}")


QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def input_statistics(x: np.ndarray) -> list[dict]:
    """Training statistics of each input column of x [rows, features], in raw units, for the metadata's inputs[i]:
    min, max and the QUANTILES (linear interpolation), 7 significant digits. Extra fields next to mean/std, so that the
    gateway can later compare live inputs with what the model was trained on (the metadata parser allows them)."""
    out = []
    for j in range(x.shape[1]):
        col = np.asarray(x[:, j], dtype=np.float64)
        qs = np.quantile(col, QUANTILES)
        out.append({"min": round_sig(col.min()), "max": round_sig(col.max()),
                    "quantiles": {f"p{int(round(q * 100)):02d}": round_sig(v) for q, v in zip(QUANTILES, qs)}})
    return out


# What one row of each model's window is, how the gateway should frame it, and that tag order is feature order.
# `samplePeriodMs` (read by check-config as a hint) is given only where the model was trained on a time grid: none of
# the shipped models was (AI4I: one row per process; C-MAPSS: one row per flight cycle; steel: one row per defect).
SAMPLE_BASIS = {
    "ai4i-fault": "one row per machining process (a product); no time grid: window 1, any period",
    "cmapss-rul": "one row per engine flight cycle; no fixed time period: feed one window row per cycle "
                  "(window.periodMs = the time between cycles on the gateway, or one MQTT message per cycle)",
    "steel-defect": "one row per detected surface defect (one message per defect); no time grid: window 1",
}


def sample_basis(name: str) -> dict:
    return {"samplePeriodMs": None, "sampleBasis": SAMPLE_BASIS[name],
            "inputOrder": "the config's inputs[i] feeds inputs[i] of this list: tag order = feature order"}


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")


def f32list(a: np.ndarray) -> list:
    """Float32 values as the shortest decimal that round-trips to the same float32 (so JSON stays exact)."""
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 0:
        return float(np.format_float_positional(a, unique=True, trim="-"))
    return [f32list(v) for v in a]
