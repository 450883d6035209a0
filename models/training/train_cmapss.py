"""Trains the NASA C-MAPSS FD001 remaining-useful-life model and writes models/cmapss-rul/{model.onnx,reference.json,
training-report.json}.

    /usr/bin/python3 models/training/train_cmapss.py

Split: the 100 training engines are split by engine (never by window) into 80 for fitting and 20 for validation
(checkpoint selection and the alert threshold). The official test set (test_FD001 + RUL_FD001) is used only for the
reported numbers: the last 30-cycle window of each of the 100 test engines.

Input windows: 30 consecutive cycles x 14 informative sensors, z-scored with the fitting engines' statistics (the
gateway does that from the metadata). Windows that would start before cycle 1 are padded by repeating the engine's
first cycle (edge padding); such windows are part of the training data, so edge padding is the supported way to feed an
engine with fewer than 30 cycles. Target: RUL = last cycle - current cycle, capped at 125 (piecewise-linear RUL).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import json
import multiprocessing
import os
import time

import numpy as np
import torch
from torch import nn

import common

SEED = 20240607
NAME = "cmapss-rul"
VERSION = "1.0.0"
OUT_DIR = common.MODELS_DIR / NAME

WINDOW = 30
RUL_CAP = 125.0
N_VAL_ENGINES = 20
EPOCHS = 60
BATCH = 512
LR = 1e-3
MEMBERS = 5  # ensemble members, seeds SEED..SEED+4, each with its own best-validation checkpoint
CHANNELS, KERNEL, DENSE, DROPOUT = 10, 9, 100, 0.5
ALERT_CANDIDATES = (15, 20, 25, 30, 35, 40, 45, 50)
MIN_LEAD = 20  # cycles of warning wanted before failure

# (sensor number, input name, unit, description). Sensors 1, 5, 6, 10, 16, 18, 19 are (almost) constant in FD001.
SENSORS = [
    (2, "t24", "degR", "sensor 2, T24: total temperature at LPC outlet"),
    (3, "t30", "degR", "sensor 3, T30: total temperature at HPC outlet"),
    (4, "t50", "degR", "sensor 4, T50: total temperature at LPT outlet"),
    (7, "p30", "psia", "sensor 7, P30: total pressure at HPC outlet"),
    (8, "nf", "rpm", "sensor 8, Nf: physical fan speed"),
    (9, "nc", "rpm", "sensor 9, Nc: physical core speed"),
    (11, "ps30", "psia", "sensor 11, Ps30: static pressure at HPC outlet"),
    (12, "phi", "pps/psi", "sensor 12, phi: ratio of fuel flow to Ps30"),
    (13, "nrf", "rpm", "sensor 13, NRf: corrected fan speed"),
    (14, "nrc", "rpm", "sensor 14, NRc: corrected core speed"),
    (15, "bpr", "1", "sensor 15, BPR: bypass ratio"),
    (17, "htbleed", "1", "sensor 17, htBleed: bleed enthalpy"),
    (20, "w31", "lbm/s", "sensor 20, W31: HPT coolant bleed"),
    (21, "w32", "lbm/s", "sensor 21, W32: LPT coolant bleed"),
]
SENSOR_COLS = [4 + s for s, *_ in SENSORS]  # 0-based columns: unit, cycle, 3 settings, sensor 1 at column 5


class RulCnn(nn.Module):
    """One member: x' [B,30,14] -> Transpose -> 4 x (Conv1d k9, 10 filters, tanh) -> Conv1d k3 to 1 channel, tanh
    -> Flatten [B,30] -> Dropout -> Dense 100 tanh -> Dense 1 (= RUL/125). After Li, Ding & Sun (RESS 2018)."""

    def __init__(self, n_features: int = len(SENSORS), window: int = WINDOW):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(n_features, CHANNELS, KERNEL, padding=KERNEL // 2), nn.Tanh(),
            nn.Conv1d(CHANNELS, CHANNELS, KERNEL, padding=KERNEL // 2), nn.Tanh(),
            nn.Conv1d(CHANNELS, CHANNELS, KERNEL, padding=KERNEL // 2), nn.Tanh(),
            nn.Conv1d(CHANNELS, CHANNELS, KERNEL, padding=KERNEL // 2), nn.Tanh(),
            nn.Conv1d(CHANNELS, 1, 3, padding=1), nn.Tanh(),
        )
        self.dense = nn.Sequential(
            nn.Flatten(), nn.Dropout(DROPOUT),
            nn.Linear(window, DENSE), nn.Tanh(),
            nn.Linear(DENSE, 1),
        )

    def scaled(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.conv(x.transpose(1, 2)))  # RUL / 125

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.scaled(x) * RUL_CAP, 0.0, RUL_CAP)


class MergedEnsemble(nn.Module):
    """The members fused into one graph: their convolutions side by side as grouped convolutions (group = member),
    the dense layers as grouped 1x1 convolutions, then the mean over members, *125 and Clip[0,125].
    Exactly the average of the members' outputs (checked after merging), in 9 plain ONNX nodes."""

    def __init__(self, members: list[RulCnn]):
        super().__init__()
        m = len(members)
        self.m = m
        convs = [[layer for layer in mem.conv if isinstance(layer, nn.Conv1d)] for mem in members]
        layers = []
        for j in range(len(convs[0])):
            ref = convs[0][j]
            groups = 1 if j == 0 else m
            merged = nn.Conv1d(ref.in_channels * (1 if j == 0 else m), ref.out_channels * m, ref.kernel_size[0],
                               padding=ref.padding[0], groups=groups)
            with torch.no_grad():
                merged.weight.copy_(torch.cat([c[j].weight for c in convs], 0))
                merged.bias.copy_(torch.cat([c[j].bias for c in convs], 0))
            layers += [merged, nn.Tanh()]
        self.conv = nn.Sequential(*layers)  # -> [B, m, 30]
        lin1 = [mem.dense[2] for mem in members]
        lin2 = [mem.dense[4] for mem in members]
        self.fc1 = nn.Conv1d(m * lin1[0].in_features, m * lin1[0].out_features, 1, groups=m)
        self.fc2 = nn.Conv1d(m * lin2[0].in_features, m, 1, groups=m)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.cat([l.weight for l in lin1], 0)[:, :, None])
            self.fc1.bias.copy_(torch.cat([l.bias for l in lin1], 0))
            self.fc2.weight.copy_(torch.cat([l.weight for l in lin2], 0)[:, :, None])
            self.fc2.bias.copy_(torch.cat([l.bias for l in lin2], 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x.transpose(1, 2))  # [B, m, 30]
        h = torch.tanh(self.fc1(h.reshape(-1, self.m * WINDOW, 1)))  # [B, m*100, 1]
        s = self.fc2(h).reshape(-1, self.m).mean(1, keepdim=True)  # [B, 1]
        return torch.clamp(s * RUL_CAP, 0.0, RUL_CAP)


def engines(table: np.ndarray) -> dict[int, np.ndarray]:
    """unit -> [cycles, 14 sensors] in cycle order."""
    out = {}
    for u in np.unique(table[:, 0]).astype(int):
        rows = table[table[:, 0] == u]
        assert (np.diff(rows[:, 1]) == 1).all() and rows[0, 1] == 1
        out[u] = rows[:, SENSOR_COLS]
    return out


def window_at(seq: np.ndarray, end: int) -> np.ndarray:
    """The WINDOW rows ending at row index `end` (inclusive); rows before the first are copies of the first."""
    start = end - WINDOW + 1
    if start >= 0:
        return seq[start:end + 1]
    return np.concatenate([np.repeat(seq[:1], -start, axis=0), seq[:end + 1]], axis=0)


def all_windows(eng: dict[int, np.ndarray], units) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs, ys, us = [], [], []
    for u in units:
        seq = eng[u]
        n = len(seq)
        for end in range(n):
            xs.append(window_at(seq, end))
            ys.append(min(n - 1 - end, RUL_CAP))
            us.append(u)
    return np.stack(xs), np.array(ys, dtype=np.float64), np.array(us)


def alert_simulation(pred_by_unit: dict[int, np.ndarray], raise_below: float, clear_above: float) -> dict:
    """Replays each run-to-failure trajectory: the alert raises when RUL < raise_below, clears when > clear_above.

    Returns the lead time (true RUL when the alert first raised and stayed raised to the end) per engine and the
    number of engines with an alert that later cleared (a flapping/early alert)."""
    leads, flaps, missed = [], 0, 0
    for u, pred in pred_by_unit.items():
        n = len(pred)
        active, last_raise, cleared = False, None, False
        for i, p in enumerate(pred):
            if not active and p < raise_below:
                active, last_raise = True, i
            elif active and p > clear_above:
                active, cleared = False, True
        if cleared:
            flaps += 1
        if active:
            leads.append(n - 1 - last_raise)
        else:
            missed += 1
    leads = np.array(leads)
    return {"engines": len(pred_by_unit), "missed": missed, "flapping": flaps,
            "leadMin": int(leads.min()) if len(leads) else None,
            "leadMedian": float(np.median(leads)) if len(leads) else None,
            "leadMax": int(leads.max()) if len(leads) else None}


def predict(model: nn.Module, x: np.ndarray, batch: int = 2048) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(model(torch.from_numpy(x[i:i + batch])).numpy()[:, 0])
    return np.concatenate(out).astype(np.float64)


def prepare() -> dict:
    """Loads the data and builds the (deterministic) split, normalisation and windows."""
    data = common.load_cmapss()
    train_eng, test_eng = engines(data["train"]), engines(data["test"])
    units = np.array(sorted(train_eng))
    rng = np.random.default_rng(SEED)
    val_units = np.sort(rng.choice(units, N_VAL_ENGINES, replace=False))
    fit_units = np.setdiff1d(units, val_units)

    fit_rows = np.concatenate([train_eng[u] for u in fit_units])
    mean = [common.round_sig(v) for v in fit_rows.mean(0)]
    std = [common.round_sig(v) for v in fit_rows.std(0)]
    mean_a, std_a = np.array(mean), np.array(std)

    def norm(x: np.ndarray) -> np.ndarray:
        return ((x - mean_a) / std_a).astype(np.float32)

    x_fit, y_fit, _ = all_windows(train_eng, fit_units)
    x_val, y_val, u_val = all_windows(train_eng, val_units)
    # Official test: last window of each test engine (every FD001 test engine has >= 31 cycles, so none is padded).
    test_units = [int(u) for u in sorted(test_eng)]
    x_test_raw = np.stack([window_at(test_eng[u], len(test_eng[u]) - 1) for u in test_units])
    return {"train_eng": train_eng, "test_eng": test_eng, "val_units": val_units, "fit_units": fit_units,
            "mean": mean, "std": std, "norm": norm, "x_fit": norm(x_fit), "y_fit": y_fit, "x_val": norm(x_val),
            "y_val": y_val, "u_val": u_val, "test_units": test_units, "x_test": norm(x_test_raw),
            "y_test": data["test_rul"]}


def train_member(k: int, epochs: int) -> dict:
    """Trains ensemble member k (seed SEED+k) on the fitting engines; keeps the best-validation-RMSE epoch."""
    common.seed_everything(SEED + k)
    p = prepare()
    x_val, y_val = p["x_val"], p["y_val"]
    model = RulCnn()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(SEED + k)
    Xf, Yf = torch.from_numpy(p["x_fit"]), torch.from_numpy((p["y_fit"] / RUL_CAP).astype(np.float32))[:, None]
    best = (float("inf"), -1, None)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(Xf), generator=gen)
        total = 0.0
        for i in range(0, len(perm), BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            loss = nn.functional.mse_loss(model.scaled(Xf[idx]), Yf[idx])
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        sched.step()
        pv = predict(model, x_val)
        val_rmse = float(np.sqrt(np.mean((pv - y_val) ** 2)))
        if val_rmse < best[0]:
            best = (val_rmse, epoch + 1, copy.deepcopy(model.state_dict()))
        if (epoch + 1) % 10 == 0:
            print(f"[cmapss] member {k} epoch {epoch + 1:3d}  train RMSE {np.sqrt(total / len(Xf)) * RUL_CAP:6.2f}  "
                  f"validation RMSE (all windows) {val_rmse:6.2f}", flush=True)
    print(f"[cmapss] member {k}: best epoch {best[1]} (validation RMSE {best[0]:.2f})", flush=True)
    return {"member": k, "bestEpoch": best[1], "validationRmse": round(best[0], 3), "state": best[2]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--members", type=int, default=MEMBERS)
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="members trained in parallel (the result does not depend on it)")
    ap.add_argument("--out", default=str(OUT_DIR), help="output folder (default models/cmapss-rul)")
    args = ap.parse_args()
    common.seed_everything(SEED)
    t0 = time.time()
    out_dir = common.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    p = prepare()
    test_eng, test_units = p["test_eng"], p["test_units"]
    x_val, y_val, u_val, val_units = p["x_val"], p["y_val"], p["u_val"], p["val_units"]
    x_test, y_test, norm, mean, std = p["x_test"], p["y_test"], p["norm"], p["mean"], p["std"]
    print(f"[cmapss] fit windows {len(p['x_fit'])} ({len(p['fit_units'])} engines), validation windows {len(x_val)} "
          f"({len(val_units)} engines), test engines {len(x_test)}; shortest test engine "
          f"{min(len(test_eng[u]) for u in test_units)} cycles; training {args.members} members", flush=True)

    if args.jobs > 1:
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
            results = list(pool.map(train_member, range(args.members), [args.epochs] * args.members))
    else:
        results = [train_member(k, args.epochs) for k in range(args.members)]
    members = []
    for r in results:
        m = RulCnn()
        m.load_state_dict(r["state"])
        m.eval()
        members.append(m)
    model = MergedEnsemble(members).eval()
    # The merged graph must equal the mean of the members.
    with torch.no_grad():
        xt = torch.from_numpy(x_test)
        mean_of_members = torch.clamp(torch.stack([m.scaled(xt) for m in members]).mean(0) * RUL_CAP, 0.0, RUL_CAP)
        assert torch.allclose(model(xt), mean_of_members, atol=1e-4), "merged ensemble differs from its members"
    member_test_rmse = [float(np.sqrt(np.mean((predict(m, x_test) - np.minimum(y_test, RUL_CAP)) ** 2))) for m in members]

    p_test = predict(model, x_test)
    y_test_capped = np.minimum(y_test, RUL_CAP)
    rmse = float(np.sqrt(np.mean((p_test - y_test_capped) ** 2)))
    rmse_uncapped = float(np.sqrt(np.mean((p_test - y_test) ** 2)))
    score = common.nasa_score(p_test, y_test_capped)
    score_uncapped = common.nasa_score(p_test, y_test)
    mae = float(np.mean(np.abs(p_test - y_test_capped)))

    # Validation: last-window metrics like the test protocol would be degenerate (RUL 0), so use all windows.
    p_val = predict(model, x_val)
    val_rmse = float(np.sqrt(np.mean((p_val - y_val) ** 2)))
    val_by_unit = {int(u): p_val[u_val == u] for u in val_units}

    # Alert threshold from the validation trajectories (replayed cycle by cycle, clear = raise + 10): the smallest
    # threshold that warns every validation engine at least MIN_LEAD cycles before its failure without flapping.
    candidates = {n: alert_simulation(val_by_unit, n, n + 10) for n in ALERT_CANDIDATES}
    ok = [n for n, c in candidates.items() if c["missed"] == 0 and c["flapping"] == 0 and c["leadMin"] >= MIN_LEAD]
    raise_below = ok[0] if ok else max(ALERT_CANDIDATES)
    clear_above = raise_below + 10
    alert_val = candidates[raise_below]

    # Test: the alert condition on the last window vs "fails within raise_below cycles" (RUL_FD001 <= raise_below).
    within = (y_test <= raise_below).astype(int)
    alarm = (p_test < raise_below).astype(int)
    tp = int((alarm & within).sum()); fp = int((alarm & (1 - within)).sum()); fn = int(((1 - alarm) & within).sum())
    a_prec, a_rec, a_f1 = common.prf(tp, fp, fn)

    metrics = {
        "protocol": "official test set: last 30-cycle window of each of the 100 test engines vs RUL_FD001 capped at 125",
        "testEngines": len(test_units),
        "rmse": round(rmse, 3), "nasaScore": round(score, 2), "mae": round(mae, 3),
        "rmseUncapped": round(rmse_uncapped, 3), "nasaScoreUncapped": round(score_uncapped, 2),
        "alertTest": {"condition": f"rul_cycles < {raise_below} vs true RUL <= {raise_below}", "tp": tp, "fp": fp, "fn": fn,
                      "precision": round(a_prec, 4), "recall": round(a_rec, 4)},
        "validationRmseAllWindows": round(val_rmse, 3),
    }
    metadata = {
        "schema": common.SCHEMA_VERSION,
        "name": NAME,
        "version": VERSION,
        "task": "regression",
        "window": WINDOW,
        "samplePeriod": "1 cycle",
        "inputs": [{"name": n, "unit": unit, "mean": m, "std": s, "description": desc, **st}
                   for (_, n, unit, desc), m, s, st in zip(SENSORS, mean, std, common.input_statistics(
                       np.concatenate([p["train_eng"][u] for u in p["fit_units"]])))],
        "outputs": [{"name": "rul_cycles", "kind": "regression", "unit": "cycles", "labels": ["remaining_useful_life"],
                     "description": "Remaining useful life in operating cycles, capped at 125 (0..125)"}],
        "recommendedAlert": {"output": "rul_cycles", "raiseBelow": raise_below, "clearAbove": clear_above},
        **common.sample_basis(NAME),
        "training": {
            "data": "NASA C-MAPSS turbofan degradation simulation, subset FD001 (Saxena et al. 2008), simulated; "
                    "models/data/nasa-cmapss-fd001",
            "license": "NASA open data, no explicit licence text (U.S. Government work, citation requested); see PROVENANCE.md",
            "metrics": metrics,
        },
    }
    doc = ("Lineguard cmapss-rul 1.0.0: remaining useful life (cycles, capped at 125) of a turbofan from the last 30 "
           "cycles of 14 sensors (NASA C-MAPSS FD001, simulated). Input 'input' [batch,30,14], oldest cycle first, "
           "z-scored with the means/stds in metadata 'lineguard'. See models/cmapss-rul/README.md.")
    common.export_onnx(model, torch.from_numpy(x_test[:2]), out_dir / "model.onnx", ["rul_cycles"], metadata, doc)

    # Reference cases: test engines across the RUL range, plus one padded window.
    order = np.argsort(y_test)
    chosen = [int(order[i]) for i in (0, 10, 30, 50, 70, 99)]
    cases = []
    for i in chosen:
        u = test_units[i]
        cases.append({"description": f"test engine {u}, last window (cycles {len(test_eng[u]) - WINDOW + 1}-"
                                     f"{len(test_eng[u])}); true RUL {int(y_test[i])}",
                      "unit": int(u), "trueRul": float(y_test[i]), "raw": test_eng[u][-WINDOW:].tolist(),
                      "input": common.f32list(x_test[i])})
    u0 = test_units[0]
    pad_raw = window_at(test_eng[u0], 9)
    cases.append({"description": f"test engine {u0} after only 10 cycles: rows 1-20 repeat cycle 1 (edge padding)",
                  "unit": u0, "trueRul": None, "raw": pad_raw.tolist(), "input": common.f32list(norm(pad_raw))})
    xs = torch.from_numpy(np.stack([np.array(c["input"], dtype=np.float32) for c in cases]))
    with torch.no_grad():
        ref = model(xs).numpy()
    for c, r in zip(cases, ref):
        c["expected"] = {"rul_cycles": common.f32list(r)}
    common.write_json(out_dir / "reference.json", {
        "model": NAME, "version": VERSION, "inputShape": [len(cases), WINDOW, len(SENSORS)], "tolerance": 1e-4,
        "featureOrder": [n for _, n, _, _ in SENSORS],
        "note": "raw = [30][14] sensor values, oldest cycle first, columns in featureOrder; input = (raw - mean) / std "
                "with the metadata's mean/std as float32; expected = PyTorch outputs for input.",
        "cases": cases})

    report = {"metadataMetrics": metrics,
              "members": [{k: v for k, v in r.items() if k != "state"} for r in results],
              "memberTestRmse": [round(v, 3) for v in member_test_rmse],
              "validationUnits": val_units.tolist(),
              "alertCandidatesValidation": {str(k): v for k, v in candidates.items()},
              "alertValidation": alert_val,
              "testPredictions": [{"unit": int(u), "trueRul": float(t), "predicted": round(float(p), 3)}
                                  for u, t, p in zip(test_units, y_test, p_test)],
              "config": {"seed": SEED, "epochs": args.epochs, "batch": BATCH, "lr": LR, "window": WINDOW,
                         "rulCap": RUL_CAP, "valEngines": N_VAL_ENGINES,
                         "members": args.members, "channels": CHANNELS, "kernel": KERNEL, "dense": DENSE,
                         "dropout": DROPOUT},
              "trainingSeconds": round(time.time() - t0, 1)}
    common.write_json(out_dir / "training-report.json", report)
    print(json.dumps({"metrics": metrics, "alertCandidatesValidation": candidates}, indent=1))
    print(f"[cmapss] wrote {out_dir}/model.onnx in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
