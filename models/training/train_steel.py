"""Trains the steel-plate surface-defect model and writes models/steel-defect/{model.onnx,reference.json,
training-report.json}.

    nice -n 15 /usr/bin/python3 models/training/train_steel.py

Data: UCI 198 "Steel Plates Faults" (models/data/uci-steel-plates-faults): 1,941 surface defects found by a steel plate
inspection system, 27 features each, one of 7 classes. The rows carry no time, so the split is stratified by class and
seeded (SEED), never by time:
  80 % development (1,552 rows): 5 stratified folds. Every design choice (input transform, width, weight decay, epochs)
       is taken on the mean out-of-fold accuracy; the shipped model is the ensemble of the 5 fold models, each
       stopped at its own fold's best epoch.
  20 % test (389 rows): reported only, never used for a choice.

Graph: x' [B,1,27] (z-scored by the gateway) -> Reshape [B,27] -> signed log1p (compresses the heavy tails of the
area/perimeter/luminosity features; Sign, Abs, Log, Mul) -> 5 MLPs side by side (one Gemm, then grouped 1x1 Conv, one
group per member) -> Softmax per member -> mean of the members' probabilities -> [B,7]. Plain ONNX ops only.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np
import torch
from torch import nn

import common

SEED = 20240611
NAME = "steel-defect"
VERSION = "1.0.0"
OUT_DIR = common.MODELS_DIR / NAME
TEST_FRACTION = 0.2
FOLDS = 5
MAX_EPOCHS = 200
BATCH = 64
LR = 3e-3

CLASSES = ["Pastry", "Z_Scratch", "K_Scatch", "Stains", "Dirtiness", "Bumps", "Other_Faults"]
# (column name in Faults27x7_var, input name, unit, description)
INPUTS = [
    ("X_Minimum", "x_minimum", "px", "left edge of the defect's bounding box (inspection image x)"),
    ("X_Maximum", "x_maximum", "px", "right edge of the bounding box"),
    ("Y_Minimum", "y_minimum", "px", "top of the bounding box (position along the plate)"),
    ("Y_Maximum", "y_maximum", "px", "bottom of the bounding box"),
    ("Pixels_Areas", "pixels_areas", "px", "defect area in pixels"),
    ("X_Perimeter", "x_perimeter", "px", "perimeter length along x"),
    ("Y_Perimeter", "y_perimeter", "px", "perimeter length along y"),
    ("Sum_of_Luminosity", "sum_of_luminosity", "1", "sum of the grey levels over the defect"),
    ("Minimum_of_Luminosity", "minimum_of_luminosity", "1", "darkest grey level in the defect"),
    ("Maximum_of_Luminosity", "maximum_of_luminosity", "1", "brightest grey level in the defect"),
    ("Length_of_Conveyer", "length_of_conveyer", "1", "conveyor length (inspection line setting)"),
    ("TypeOfSteel_A300", "type_of_steel_a300", "1", "1 if the plate is steel grade A300, else 0"),
    ("TypeOfSteel_A400", "type_of_steel_a400", "1", "1 if the plate is steel grade A400, else 0"),
    ("Steel_Plate_Thickness", "steel_plate_thickness", "1", "plate thickness as recorded by the line"),
    ("Edges_Index", "edges_index", "1", "closeness of the defect to the plate edges"),
    ("Empty_Index", "empty_index", "1", "share of the bounding box not covered by the defect"),
    ("Square_Index", "square_index", "1", "bounding-box aspect ratio (min/max side)"),
    ("Outside_X_Index", "outside_x_index", "1", "x extent relative to the plate"),
    ("Edges_X_Index", "edges_x_index", "1", "x extent relative to the x perimeter"),
    ("Edges_Y_Index", "edges_y_index", "1", "y extent relative to the y perimeter"),
    ("Outside_Global_Index", "outside_global_index", "1", "0, 0.5 or 1: where the defect lies relative to the plate"),
    ("LogOfAreas", "log_of_areas", "1", "log10 of the pixel area"),
    ("Log_X_Index", "log_x_index", "1", "log10 of the x extent"),
    ("Log_Y_Index", "log_y_index", "1", "log10 of the y extent"),
    ("Orientation_Index", "orientation_index", "1", "orientation of the defect (-1..1)"),
    ("Luminosity_Index", "luminosity_index", "1", "normalised mean luminosity (-1..1)"),
    ("SigmoidOfAreas", "sigmoid_of_areas", "1", "sigmoid of the area (0..1)"),
]

# Design grid, chosen on the mean out-of-fold accuracy of the development part.
GRID = [
    {"transform": t, "hidden": h, "weightDecay": wd, "dropout": dr}
    for t in ("none", "slog")
    for h in (64, 128)
    for wd in (1e-4, 1e-2)
    for dr in (0.1, 0.3)
]


def load_steel() -> tuple[np.ndarray, np.ndarray]:
    d = common.DATA_DIR / "uci-steel-plates-faults"
    common.verify_checksums(d)
    names = [l.strip() for l in (d / "Faults27x7_var").read_text(encoding="ascii").splitlines() if l.strip()]
    assert names[:27] == [c for c, *_ in INPUTS] and names[27:] == CLASSES, names
    rows = []
    for line in (d / "Faults.NNA").read_text(encoding="ascii").splitlines():
        line = line.strip().strip('"')
        if line:
            rows.append([float(v) for v in line.split("\t")])
    a = np.array(rows, dtype=np.float64)
    assert a.shape == (1941, 34), a.shape
    onehot = a[:, 27:]
    assert (onehot.sum(1) == 1).all(), "every defect has exactly one class"
    return a[:, :27], onehot.argmax(1)


def stratified_split(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (rest, part) with round(fraction * n_c) rows of every class c in `part`."""
    part = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        part.extend(idx[:int(round(fraction * len(idx)))])
    part = np.sort(np.array(part))
    return np.setdiff1d(np.arange(len(y)), part), part


def stratified_folds(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Fold number (0..k-1) of each row, classes dealt round-robin after a shuffle."""
    fold = np.empty(len(y), dtype=np.int64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % k
    return fold


def slog(z: torch.Tensor) -> torch.Tensor:
    """Signed log1p: sign(z) * log(1 + |z|). Exported as Sign, Abs, Add, Log, Mul."""
    return torch.sign(z) * torch.log1p(torch.abs(z))


class Mlp(nn.Module):
    def __init__(self, n_in: int, hidden: int, n_out: int, dropout: float, transform: str):
        super().__init__()
        self.transform = transform
        self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, n_out))

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # z: [B, 27] z-scored; returns logits
        return self.net(slog(z) if self.transform == "slog" else z)


class MergedEnsemble(nn.Module):
    """The fold models in one graph: the first layers side by side in one Gemm, the later layers as grouped 1x1
    convolutions (group = member, so no zero blocks are stored), softmax per member, mean of the probabilities.
    Equal to the average of the members (checked)."""

    def __init__(self, members: list[Mlp]):
        super().__init__()
        self.m = len(members)
        self.transform = members[0].transform
        lins = [[l for l in mem.net if isinstance(l, nn.Linear)] for mem in members]
        self.first = nn.Linear(lins[0][0].in_features, sum(l[0].out_features for l in lins))
        with torch.no_grad():
            self.first.weight.copy_(torch.cat([l[0].weight for l in lins], 0))
            self.first.bias.copy_(torch.cat([l[0].bias for l in lins], 0))
        self.rest = nn.ModuleList()
        for j in range(1, len(lins[0])):
            ref = lins[0][j]
            conv = nn.Conv1d(self.m * ref.in_features, self.m * ref.out_features, 1, groups=self.m)
            with torch.no_grad():
                conv.weight.copy_(torch.cat([l[j].weight for l in lins], 0)[:, :, None])
                conv.bias.copy_(torch.cat([l[j].bias for l in lins], 0))
            self.rest.append(conv)
        self.n_out = lins[0][-1].out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.reshape(-1, x.shape[-1])
        h = slog(z) if self.transform == "slog" else z
        h = torch.relu(self.first(h)).unsqueeze(2)  # [B, m*hidden, 1]
        for i, conv in enumerate(self.rest):
            h = conv(h)
            if i < len(self.rest) - 1:
                h = torch.relu(h)
        p = torch.softmax(h.reshape(-1, self.m, self.n_out), dim=2)
        return p.mean(1)


def train_one(cfg: dict, x_fit, y_fit, x_val, y_val, seed: int, epochs: int) -> tuple[Mlp, list[float]]:
    """Trains one MLP; returns the model at its best validation epoch and the validation accuracy per epoch."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = Mlp(x_fit.shape[1], cfg["hidden"], len(CLASSES), cfg["dropout"], cfg["transform"])
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=cfg["weightDecay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    Xf, Yf = torch.from_numpy(x_fit), torch.from_numpy(y_fit)
    Xv = torch.from_numpy(x_val)
    accs, best = [], (-1.0, None)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(Xf), generator=gen)
        for i in range(0, len(perm), BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            nn.functional.cross_entropy(model(Xf[idx]), Yf[idx]).backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            acc = float((model(Xv).argmax(1).numpy() == y_val).mean())
        accs.append(acc)
        if acc > best[0]:
            best = (acc, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[1])
    model.eval()
    return model, accs


def per_class_table(y: np.ndarray, pred: np.ndarray) -> dict:
    out = {}
    for c, name in enumerate(CLASSES):
        tp = int(((pred == c) & (y == c)).sum())
        fp = int(((pred == c) & (y != c)).sum())
        fn = int(((pred != c) & (y == c)).sum())
        p, r, f = common.prf(tp, fp, fn)
        out[name] = {"support": int((y == c).sum()), "tp": tp, "fp": fp, "fn": fn,
                     "precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=MAX_EPOCHS)
    ap.add_argument("--out", default=str(OUT_DIR))
    ap.add_argument("--grid", action="store_true", help="run the whole design grid (default: only the chosen design)")
    args = ap.parse_args()
    common.seed_everything(SEED)
    t0 = time.time()
    out_dir = common.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    raw, y = load_steel()
    rng = np.random.default_rng(SEED)
    dev, test = stratified_split(y, TEST_FRACTION, rng)
    fold = stratified_folds(y[dev], FOLDS, rng)
    mean = [common.round_sig(v) for v in raw[dev].mean(0)]
    std = [common.round_sig(v) for v in raw[dev].std(0)]
    xn = ((raw - np.array(mean)) / np.array(std)).astype(np.float32)
    x_dev, y_dev = xn[dev], y[dev]

    def cross_validate(cfg: dict) -> tuple[float, list[Mlp], list[dict]]:
        members, folds = [], []
        oof = np.empty(len(y_dev), dtype=np.int64)
        for k in range(FOLDS):
            fit, val = fold != k, fold == k
            m, accs = train_one(cfg, x_dev[fit], y_dev[fit], x_dev[val], y_dev[val], SEED + k, args.epochs)
            with torch.no_grad():
                oof[val] = m(torch.from_numpy(x_dev[val])).argmax(1).numpy()
            members.append(m)
            folds.append({"fold": k, "bestEpoch": int(np.argmax(accs)) + 1, "bestAccuracy": round(max(accs), 4)})
        return float((oof == y_dev).mean()), members, folds

    chosen = {"transform": "slog", "hidden": 128, "weightDecay": 1e-2, "dropout": 0.3}
    grid_results = []
    if args.grid:
        best = None
        for cfg in GRID:
            acc, members, folds = cross_validate(cfg)
            grid_results.append({**cfg, "outOfFoldAccuracy": round(acc, 4)})
            print(f"[steel] {cfg} out-of-fold accuracy {acc:.4f}  ({time.time() - t0:.0f}s)", flush=True)
            if best is None or acc > best[0]:
                best = (acc, cfg, members, folds)
        oof_acc, chosen, members, folds = best
    else:
        oof_acc, members, folds = cross_validate(chosen)
    print(f"[steel] chosen {chosen}: out-of-fold accuracy {oof_acc:.4f}", flush=True)

    model = MergedEnsemble(members).eval()
    with torch.no_grad():
        xt = torch.from_numpy(xn[test][:, None, :])
        avg = torch.stack([torch.softmax(m(xt[:, 0, :]), 1) for m in members]).mean(0)
        assert torch.allclose(model(xt), avg, atol=1e-6), "merged ensemble differs from its members"
        p_test = model(xt).numpy()
    pred = p_test.argmax(1)
    acc = float((pred == y[test]).mean())
    table = per_class_table(y[test], pred)
    macro_f1 = float(np.mean([v["f1"] for v in table.values()]))
    confusion = [[int(((y[test] == a) & (pred == b)).sum()) for b in range(len(CLASSES))] for a in range(len(CLASSES))]
    print(f"[steel] test accuracy {acc:.4f}, macro F1 {macro_f1:.4f}", flush=True)

    # Reference numbers on the same split (not shipped): gradient boosting and a random forest.
    refs = {}
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
        for name, est in (("histGradientBoosting", HistGradientBoostingClassifier(random_state=SEED)),
                          ("randomForest500", RandomForestClassifier(n_estimators=500, random_state=SEED, n_jobs=1))):
            est.fit(raw[dev], y[dev])
            refs[name] = round(float((est.predict(raw[test]) == y[test]).mean()), 4)
        print(f"[steel] reference accuracies on the test part: {refs}", flush=True)
    except ImportError:
        refs = {"note": "python3-sklearn not installed"}

    stats = common.input_statistics(raw[dev])
    metrics = {
        "split": f"stratified by class, seed {SEED}: {len(dev)} development rows (5 stratified folds), "
                 f"{len(test)} test rows never used for a choice",
        "testRows": int(len(test)), "accuracy": round(acc, 4), "macroF1": round(macro_f1, 4),
        "outOfFoldAccuracy": round(oof_acc, 4),
    }
    rules = recommended_rules()
    metadata = {
        "schema": common.SCHEMA_VERSION,
        "name": NAME,
        "version": VERSION,
        "task": "classification",
        "window": 1,
        "samplePeriod": "1 defect",
        **common.sample_basis(NAME),
        "inputs": [{"name": n, "unit": u, "mean": m, "std": s, "description": f"{desc} (UCI '{col}')", **st}
                   for (col, n, u, desc), m, s, st in zip(INPUTS, mean, std, stats)],
        "outputs": [{"name": "defect_class_probabilities", "kind": "probabilities", "labels": CLASSES, "unit": "1",
                     "description": "Probability of each surface-defect class for this defect (sums to 1)"}],
        "recommendedAlert": rules[0],
        "recommendedAlerts": rules,
        "training": {
            "data": "UCI 198 Steel Plates Faults (Buscema, Terzi, Tastle 2010; doi:10.24432/C5J88N), real inspection data; "
                    "models/data/uci-steel-plates-faults",
            "license": "CC BY 4.0 (Semeion, Research Center of Sciences of Communication, Rome)",
            "metrics": metrics,
        },
    }
    doc = ("Lineguard steel-defect 1.0.0: class probabilities of one steel-plate surface defect (Pastry, Z_Scratch, "
           "K_Scatch, Stains, Dirtiness, Bumps, Other_Faults) from the 27 features of the inspection system (UCI 198, "
           "real data). Input 'input' [batch,1,27] z-scored with the means/stds in metadata 'lineguard'. "
           "See models/steel-defect/README.md.")
    common.export_onnx(model, torch.from_numpy(xn[test[:2]][:, None, :]), out_dir / "model.onnx",
                       ["defect_class_probabilities"], metadata, doc)

    # Reference cases: one test defect of each class (the first in row order).
    cases = []
    for c, name in enumerate(CLASSES):
        i = int(test[np.flatnonzero(y[test] == c)[0]])
        cases.append({"description": f"test row {i + 1} of Faults.NNA, true class {name}",
                      "raw": {n: float(raw[i, j]) for j, (_, n, _, _) in enumerate(INPUTS)},
                      "input": [common.f32list(xn[i])]})
    xs = torch.from_numpy(np.stack([np.array(c["input"], dtype=np.float32) for c in cases]))
    with torch.no_grad():
        ref = model(xs).numpy()
    for c, r in zip(cases, ref):
        c["expected"] = {"defect_class_probabilities": common.f32list(r)}
    # At most 10 cases; 7 classes.
    common.write_json(out_dir / "reference.json", {
        "model": NAME, "version": VERSION, "inputShape": [len(cases), 1, len(INPUTS)], "tolerance": 1e-4,
        "featureOrder": [n for _, n, _, _ in INPUTS],
        "note": "raw = the 27 inspection features by input name; input = (raw - mean) / std with the metadata's "
                "mean/std as float32; expected = PyTorch outputs for input.",
        "cases": cases})

    report = {"metadataMetrics": metrics, "chosen": chosen, "grid": grid_results, "folds": folds,
              "testPerClass": table, "testConfusion": {"rows=true, columns=predicted": CLASSES, "matrix": confusion},
              "referenceModelsTestAccuracy": refs,
              "split": {"seed": SEED, "developmentRows": int(len(dev)), "testRows": int(len(test)),
                        "testIndices": (test + 1).tolist()},
              "config": {"folds": FOLDS, "maxEpochs": args.epochs, "batch": BATCH, "lr": LR},
              "trainingSeconds": round(time.time() - t0, 1)}
    common.write_json(out_dir / "training-report.json", report)
    print(json.dumps({"metrics": metrics, "perClass": table, "refs": refs}, indent=1))
    print(f"[steel] wrote {out_dir}/model.onnx in {time.time() - t0:.1f}s")


def recommended_rules() -> list[dict]:
    """The alert rules the card recommends: one per class that matters, kind quality_defect, its severity.

    One message is one defect, so a rule raises on the first defect whose class probability passes raiseAbove and
    clears at the next defect of another class (below clearBelow): an active alert means "the line is producing this
    defect now", and its label names the class."""
    severity = {"Pastry": "major", "Z_Scratch": "major", "K_Scatch": "major", "Bumps": "minor", "Stains": "minor",
                "Dirtiness": "minor", "Other_Faults": "warning"}
    return [{"name": c.lower(), "output": "defect_class_probabilities", "outputIndex": i, "raiseAbove": 0.6,
             "clearBelow": 0.4, "kind": "quality_defect", "severity": severity[c]}
            for i, c in enumerate(CLASSES)]


if __name__ == "__main__":
    main()
