"""Trains the AI4I 2020 equipment-fault model and writes models/ai4i-fault/{model.onnx,reference.json,training-report.json}.

    /usr/bin/python3 models/training/train_ai4i.py

Chronological split in process (UDI) order, never shuffled across parts:
  rows    1-7000 (70 %) train
  rows 7001-8000 (10 %) validation: model-design choices and the alert threshold
  rows 8001-10000 (20 %) test: reported, never used for any choice

Model: the gateway feeds the six raw inputs z-scored with the statistics in the metadata. The graph un-normalises them,
computes physical features (temperature difference, mechanical power, wear x torque over the variant's strain limit),
standardises those and runs an
ensemble of small neural additive models (one 1-D shape function per feature, summed per output). Each failure mode gets
a sigmoid; the machine-failure probability is their noisy-OR.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
from torch import nn

import common

SEED = 20240607
NAME = "ai4i-fault"
VERSION = "1.0.0"
OUT_DIR = common.MODELS_DIR / NAME

TRAIN_END = 7000  # rows [0, 7000) train
VAL_END = 8000  # rows [7000, 8000) validation, [8000, 10000) test

MODES = ["HDF", "PWF", "OSF", "TWF"]  # RNF is random (0.1 %) and left out
MODE_DESCRIPTIONS = {
    "HDF": "heat dissipation failure",
    "PWF": "power failure",
    "OSF": "overstrain failure",
    "TWF": "tool wear failure (weak: only the wear-dependent base rate can be learnt)",
}

INPUTS = [
    ("air_temperature", "K", "Air temperature (AI4I 'Air temperature [K]')"),
    ("process_temperature", "K", "Process temperature (AI4I 'Process temperature [K]')"),
    ("rotational_speed", "rpm", "Spindle rotational speed (AI4I 'Rotational speed [rpm]')"),
    ("torque", "Nm", "Spindle torque (AI4I 'Torque [Nm]')"),
    ("tool_wear", "min", "Cumulative tool usage time since the last tool change (AI4I 'Tool wear [min]')"),
    ("product_type", "code", "Product quality variant as a number: L=0, M=1, H=2 (AI4I 'Type'); fed raw (mean 0, std 1)"),
]

FEATURES = ["rotational_speed", "torque", "tool_wear", "temperature_difference", "power", "overstrain_ratio"]
WEAR_FEATURE = FEATURES.index("tool_wear")
TWO_PI_OVER_60 = 2.0 * math.pi / 60.0

HIDDEN = 16  # units per shape function (two hidden layers)
MEMBERS = 5  # ensemble members (different initialisations), probabilities averaged
EPOCHS = 500
BATCH = 128
LR = 3e-3


def feature_stack(cat, air, proc, speed, torque, wear, ptype):
    """Physical features; `cat` is np.concatenate or torch.cat, the arguments are [N,1] columns in physical units."""
    temperature_difference = proc - air  # K; heat dissipation
    power = torque * speed * TWO_PI_OVER_60  # W; mechanical power
    # overstrain: tool wear x torque (min*Nm) relative to the variant's rated strain limit, 11/12/13 k min*Nm for L/M/H
    # (the variant's limit is machine data, like a rated load; the model still learns where the failures start)
    overstrain_ratio = wear * torque / (ptype * 1000.0 + 11000.0)
    # The product type enters only through the strain limit (and through the wear it causes): a separate type term
    # learnt from the few M/H overstrain failures in the train part shifted their boundary away from the limit.
    return cat([speed, torque, wear, temperature_difference, power, overstrain_ratio], 1)


def engineered(raw: np.ndarray) -> np.ndarray:
    return feature_stack(np.concatenate, *(raw[:, i:i + 1] for i in range(6)))


class FaultNet(nn.Module):
    """x' [B,1,6] -> un-normalise -> features [B,F] -> standardise -> ensemble of neural additive models.

    Shape functions are grouped 1x1 convolutions (one group per member and feature), so the exported graph is plain
    Conv/Relu/Gemm/Sigmoid. The last layer sums each member's shape functions into one logit per failure mode;
    its mask keeps members apart and lets the TWF logit see only the tool-wear shape function.
    """

    def __init__(self, in_mean, in_std, feat_mean, feat_std, hidden=HIDDEN, members=MEMBERS, n_modes=len(MODES)):
        super().__init__()
        self.register_buffer("in_mean", torch.tensor(in_mean, dtype=torch.float32))
        self.register_buffer("in_std", torch.tensor(in_std, dtype=torch.float32))
        self.register_buffer("feat_mean", torch.tensor(feat_mean, dtype=torch.float32))
        self.register_buffer("feat_inv_std", torch.tensor(1.0 / np.asarray(feat_std), dtype=torch.float32))
        nf = len(feat_mean)
        self.nf, self.members, self.n_modes = nf, members, n_modes
        # channel order after conv1: feature-major, then member, then hidden unit: c = (f*M + m)*H + h
        self.conv1 = nn.Conv1d(nf, nf * members * hidden, 1, groups=nf)
        self.conv2 = nn.Conv1d(nf * members * hidden, nf * members * hidden, 1, groups=nf * members)
        self.head = nn.Linear(nf * members * hidden, members * n_modes)
        mask = torch.zeros(members * n_modes, nf * members * hidden)
        for m in range(members):
            for k in range(n_modes):
                for f in range(nf):
                    if MODES[k] == "TWF" and f != WEAR_FEATURE:
                        continue
                    c0 = (f * members + m) * hidden
                    mask[m * n_modes + k, c0:c0 + hidden] = 1.0
        self.register_buffer("head_mask", mask)
        with torch.no_grad():
            self.head.weight.mul_(mask)
        self.export_mode = False

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raw = x[:, 0, :] * self.in_std + self.in_mean  # [B,6] in physical units
        f = feature_stack(torch.cat, *(raw[:, i:i + 1] for i in range(6)))
        return (f - self.feat_mean) * self.feat_inv_std

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv1(self.features(x).unsqueeze(2)))
        h = torch.relu(self.conv2(h))
        w = self.head.weight if self.export_mode else self.head.weight * self.head_mask
        return nn.functional.linear(h.flatten(1), w, self.head.bias)  # [B, M*K]

    def forward(self, x: torch.Tensor):
        p = torch.sigmoid(self.member_logits(x)).reshape(-1, self.members, self.n_modes)
        modes = p.mean(1)
        failure = 1.0 - torch.prod(1.0 - modes, dim=1, keepdim=True)
        return failure, modes


def threshold_for_best_f1(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Threshold maximising F1 on (y, p) over 0.02..0.98; among equal F1 the middle of the widest plateau."""
    grid = np.round(np.arange(0.02, 0.981, 0.01), 2)
    f1s = np.array([common.prf(*common.binary_counts(y, p, t))[2] for t in grid])
    idx = np.flatnonzero(np.isclose(f1s, f1s.max()))
    runs, start = [], idx[0]
    for a, b in zip(idx, idx[1:]):
        if b != a + 1:
            runs.append((start, a))
            start = b
    runs.append((start, idx[-1]))
    lo, hi = max(runs, key=lambda r: r[1] - r[0])
    return float(grid[(lo + hi) // 2]), float(f1s.max())


def split_report(y_fail, y_modes, p_fail, p_modes, threshold) -> dict:
    tp, fp, fn = common.binary_counts(y_fail, p_fail, threshold)
    precision, recall, f1 = common.prf(tp, fp, fn)
    out = {"rows": int(len(y_fail)), "failures": int(y_fail.sum()), "threshold": threshold, "tp": tp, "fp": fp,
           "fn": fn, "precision": precision, "recall": recall, "f1": f1,
           "prAuc": common.average_precision(y_fail, p_fail), "modes": {}}
    for k, m in enumerate(MODES):
        ym = y_modes[:, k]
        tpm, fpm, fnm = common.binary_counts(ym, p_modes[:, k], 0.5)
        prm, rcm, f1m = common.prf(tpm, fpm, fnm)
        out["modes"][m] = {"positives": int(ym.sum()), "tp": tpm, "fp": fpm, "fn": fnm, "precision": prm,
                           "recall": rcm, "f1": f1m,
                           "prAuc": common.average_precision(ym, p_modes[:, k]) if ym.sum() else None}
    return out


def rounded(obj, digits=4):
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v, digits) for v in obj]
    return obj


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--out", default=str(OUT_DIR), help="output folder (default models/ai4i-fault)")
    args = ap.parse_args()
    common.seed_everything(SEED)
    t0 = time.time()
    out_dir = common.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    d = common.load_ai4i()
    raw = d["x"]
    y_fail = d["machine_failure"]
    y_modes = np.stack([d[m] for m in MODES], axis=1)
    tr, va, te = slice(0, TRAIN_END), slice(TRAIN_END, VAL_END), slice(VAL_END, len(raw))

    # What the gateway applies: training-part mean/std of the five measurements; product type is fed raw.
    in_mean = [common.round_sig(v) for v in raw[tr, :5].mean(0)] + [0.0]
    in_std = [common.round_sig(v) for v in raw[tr, :5].std(0)] + [1.0]
    feats_tr = engineered(raw[tr])
    feat_mean = [common.round_sig(v) for v in feats_tr.mean(0)]
    feat_std = [common.round_sig(v) for v in feats_tr.std(0)]

    xn = ((raw - np.array(in_mean)) / np.array(in_std)).astype(np.float32)[:, None, :]  # [N,1,6], as the gateway
    X = torch.from_numpy(xn)
    Ytr = torch.from_numpy(y_modes[tr].astype(np.float32)).repeat(1, MEMBERS)  # member-major like the head

    model = FaultNet(in_mean, in_std, feat_mean, feat_std)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    loss_fn = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(SEED)
    Xtr = X[tr]
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(Xtr), generator=gen)
        total = 0.0
        for i in range(0, len(perm), BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            loss = loss_fn(model.member_logits(Xtr[idx]), Ytr[idx])
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        sched.step()
        if (epoch + 1) % 100 == 0:
            model.eval()
            with torch.no_grad():
                pv = model(X[va])[0][:, 0].numpy()
            print(f"[ai4i] epoch {epoch + 1:4d}  train loss {total / len(Xtr):.5f}  "
                  f"validation PR-AUC {common.average_precision(y_fail[va], pv):.4f}", flush=True)

    # Bake the mask into the weights for export (masked entries are exactly zero already; this makes it explicit).
    model.eval()
    with torch.no_grad():
        model.head.weight.mul_(model.head_mask)
    model.export_mode = True
    with torch.no_grad():
        p_fail, p_modes = (t.numpy() for t in model(X))
    p_fail = p_fail[:, 0]

    threshold, val_f1 = threshold_for_best_f1(y_fail[va], p_fail[va])
    clear_below = round(threshold / 2, 3)
    reports = {name: split_report(y_fail[sl], y_modes[sl], p_fail[sl], p_modes[sl], threshold)
               for name, sl in (("train", tr), ("validation", va), ("test", te))}

    # Ceiling for the test part: the generator's own HDF/PWF/OSF rules (PROVENANCE.md) used as a classifier.
    air, proc, speed, torque, wear, ptype = raw.T
    power = torque * speed * TWO_PI_OVER_60
    rule = (((proc - air) < 8.6) & (speed < 1380)) | (power < 3500) | (power > 9000) | (wear * torque > 11000 + 1000 * ptype)
    yt, rt = y_fail[te], rule[te]
    oracle = common.prf(int((rt & (yt == 1)).sum()), int((rt & (yt == 0)).sum()), int((~rt & (yt == 1)).sum()))

    test = reports["test"]
    metrics = {
        "split": "UDI order: rows 1-7000 train, 7001-8000 validation (threshold), 8001-10000 test",
        "testRows": test["rows"], "testFailures": test["failures"], "threshold": threshold,
        "precision": round(test["precision"], 4), "recall": round(test["recall"], 4), "f1": round(test["f1"], 4),
        "prAuc": round(test["prAuc"], 4),
        "modeF1": {m: round(v["f1"], 4) for m, v in test["modes"].items() if v["positives"]},
        "modePrAuc": {m: round(v["prAuc"], 4) for m, v in test["modes"].items() if v["positives"]},
        "ruleOracleF1": round(oracle[2], 4),
    }

    metadata = {
        "schema": common.SCHEMA_VERSION,
        "name": NAME,
        "version": VERSION,
        "task": "classification",
        "window": 1,
        "samplePeriod": "1 process",
        "inputs": [{"name": n, "unit": u, "mean": m, "std": s, "description": desc, **st}
                   for (n, u, desc), m, s, st in zip(INPUTS, in_mean, in_std, common.input_statistics(raw[tr]))],
        "outputs": [
            {"name": "failure_probability", "kind": "probability", "labels": ["machine_failure"], "unit": "1",
             "description": "Probability that this process ends in a machine failure (noisy-OR of the mode probabilities)"},
            {"name": "failure_mode_probabilities", "kind": "probabilities", "labels": MODES, "unit": "1",
             "description": "Independent per-mode probabilities: " + "; ".join(f"{m} = {MODE_DESCRIPTIONS[m]}" for m in MODES)},
        ],
        "recommendedAlert": {"output": "failure_probability", "raiseAbove": threshold, "clearBelow": clear_below},
        **common.sample_basis(NAME),
        "training": {
            "data": "AI4I 2020 Predictive Maintenance Dataset (UCI 601, doi:10.24432/C5HS5C), synthetic; models/data/ai4i2020",
            "license": "CC BY 4.0 (data: Stephan Matzka, HTW Berlin)",
            "metrics": metrics,
        },
    }
    doc = ("Lineguard ai4i-fault 1.0.0: machine-failure and failure-mode probabilities for one milling process from air/"
           "process temperature, speed, torque, tool wear and product type (AI4I 2020, synthetic). Input 'input' "
           "[batch,1,6] z-scored with the means/stds in metadata 'lineguard'. See models/ai4i-fault/README.md.")
    common.export_onnx(model, X[:2], out_dir / "model.onnx", ["failure_probability", "failure_mode_probabilities"],
                       metadata, doc)

    # Reference cases: raw values, the normalised tensor actually fed and torch's outputs.
    def first(cond, start=VAL_END):
        idx = np.flatnonzero(cond[start:])
        return int(idx[0]) + start if len(idx) else None

    picks = [
        ("normal process, L variant (test part)", first((y_fail == 0) & (ptype == 0))),
        ("normal process, H variant (test part)", first((y_fail == 0) & (ptype == 2))),
        ("power failure PWF (test part)", first(d["PWF"] == 1)),
        ("overstrain failure OSF (test part)", first(d["OSF"] == 1)),
        ("heat dissipation failure HDF (train part: the test part has none)", first(d["HDF"] == 1, 0)),
        ("tool wear failure TWF (test part; not detectable: expect a low probability)", first(d["TWF"] == 1)),
        ("no failure, highest predicted probability among test non-failures", VAL_END + int(np.argmax(np.where(y_fail[te] == 0, p_fail[te], -1)))),
        ("failure of an M-variant product (test part)", first((y_fail == 1) & (ptype == 1))),
    ]
    cases = []
    seen = set()
    for label, i in picks:
        if i is None or i in seen:
            continue
        seen.add(i)
        cases.append({
            "description": label, "udi": int(d["udi"][i]), "productId": str(d["product_id"][i]),
            "labels": {"machine_failure": int(y_fail[i]), **{m: int(d[m][i]) for m in ["TWF", "HDF", "PWF", "OSF", "RNF"]}},
            "raw": {n: float(raw[i, j]) for j, (n, _, _) in enumerate(INPUTS)},
            "input": common.f32list(xn[i]),
        })
    xs = torch.from_numpy(np.stack([np.array(c["input"], dtype=np.float32) for c in cases]))
    with torch.no_grad():
        rf, rm = model(xs)
    for c, a, b in zip(cases, rf.numpy(), rm.numpy()):
        c["expected"] = {"failure_probability": common.f32list(a), "failure_mode_probabilities": common.f32list(b)}
    common.write_json(out_dir / "reference.json", {
        "model": NAME, "version": VERSION, "inputShape": [len(cases), 1, 6], "tolerance": 1e-4,
        "note": "raw = physical values; input = (raw - mean) / std with the metadata's mean/std, as float32 [1,6] "
                "(window 1); expected = PyTorch outputs for input.",
        "cases": cases})

    report = {"metadataMetrics": metrics, "threshold": threshold, "clearBelow": clear_below, "validationF1": val_f1,
              "splits": rounded(reports), "ruleOracleTest": rounded(dict(zip(["precision", "recall", "f1"], oracle))),
              "config": {"seed": SEED, "epochs": args.epochs, "members": MEMBERS, "hidden": HIDDEN, "batch": BATCH,
                         "lr": LR, "features": FEATURES}}
    try:  # a reference point only; not part of the model
        from sklearn.ensemble import HistGradientBoostingClassifier
        base = {}
        for name, Xb in (("rawInputs", raw), ("physicalFeatures", engineered(raw))):
            g = HistGradientBoostingClassifier(random_state=SEED).fit(Xb[tr], y_fail[tr])
            pg = g.predict_proba(Xb)[:, 1]
            tg, _ = threshold_for_best_f1(y_fail[va], pg[va])
            pr, rc, f1 = common.prf(*common.binary_counts(yt, pg[te], tg))
            base[name] = {"threshold": tg, "precision": pr, "recall": rc, "f1": f1,
                          "prAuc": common.average_precision(yt, pg[te])}
        report["gradientBoostingBaselineTest"] = rounded(base)
    except ImportError:
        report["gradientBoostingBaselineTest"] = "skipped: scikit-learn not installed (apt-get install python3-sklearn)"
    report["trainingSeconds"] = round(time.time() - t0, 1)
    common.write_json(out_dir / "training-report.json", report)
    print(json.dumps({k: report[k] for k in ("metadataMetrics", "ruleOracleTest", "gradientBoostingBaselineTest")}, indent=1))
    print(f"[ai4i] wrote {out_dir}/model.onnx in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
