"""Issue 16 experiment towards C-MAPSS FD001 RMSE <= 12 (not shipped): fixed linear statistics of the same 30 x 14
window (means of the last 5/10/30 cycles, least-squares slopes over the last 10/30, two EWMAs; a MatMul in ONNX, so
TensorRT-friendly and the input stays [batch, 30, 14]) -> standardise -> MLP ensemble (5 seeds).

    nice -n 15 /usr/bin/python3 models/training/experiments/cmapss_window_stats.py

Same split and normalisation as train_cmapss.py (80 fitting / 20 validation engines). Candidates, validation RMSE over
all windows of the 20 validation engines (5-member ensembles, 60 epochs, AdamW, best epoch per member):
  hidden 128, wd 1e-2, dropout 0.2: 12.839;  hidden 64, wd 1e-2, dropout 0.1: 12.595;  hidden 256, wd 1e-1, dropout 0.3: 12.867
(the shipped CNN ensemble: 13.636). The chosen design is evaluated once on the official test set below.
"""
import sys, time, json, copy
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import numpy as np, torch
from torch import nn
import common
import train_cmapss as tc

common.seed_everything(tc.SEED)
p = tc.prepare()
W = tc.WINDOW

def stat_matrix():
    cols = []
    t = np.arange(W, dtype=np.float64)
    def mean_last(k):
        v = np.zeros(W); v[-k:] = 1.0 / k; return v
    def slope_last(k):
        v = np.zeros(W); tt = t[-k:] - t[-k:].mean(); v[-k:] = tt / (tt ** 2).sum(); return v
    def ewma(alpha):
        v = np.array([alpha * (1 - alpha) ** (W - 1 - i) for i in range(W)]); return v / v.sum()
    for v in (mean_last(5), mean_last(10), mean_last(30), slope_last(10), slope_last(30), ewma(0.1), ewma(0.3)):
        cols.append(v)
    return np.stack(cols, 1)  # [30, S]
S = stat_matrix()

def feats(x):  # x [N,30,14] normalised -> [N, 14*S]
    return np.einsum('nwf,ws->nfs', x, S).reshape(len(x), -1).astype(np.float32)

xf, xv, xt = feats(p['x_fit']), feats(p['x_val']), feats(p['x_test'])
fm, fs = xf.mean(0), xf.std(0) + 1e-6
xf, xv, xt = [(a - fm) / fs for a in (xf, xv, xt)]
yf = (np.minimum(p['y_fit'], 125) / 125).astype(np.float32)

def train(hidden, wd, epochs, seed, drop):
    torch.manual_seed(seed); g = torch.Generator().manual_seed(seed)
    m = nn.Sequential(nn.Linear(xf.shape[1], hidden), nn.ReLU(), nn.Dropout(drop), nn.Linear(hidden, hidden // 2), nn.ReLU(), nn.Linear(hidden // 2, 1))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=wd)
    sch = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    X, Y = torch.from_numpy(xf), torch.from_numpy(yf)[:, None]
    Xv = torch.from_numpy(xv)
    best = (1e9, None, 0)
    for e in range(epochs):
        m.train(); perm = torch.randperm(len(X), generator=g)
        for i in range(0, len(X), 256):
            idx = perm[i:i+256]; opt.zero_grad(); nn.functional.mse_loss(m(X[idx]), Y[idx]).backward(); opt.step()
        sch.step(); m.eval()
        with torch.no_grad(): pv = np.clip(m(Xv).numpy()[:, 0] * 125, 0, 125)
        r = float(np.sqrt(np.mean((pv - p['y_val']) ** 2)))
        if r < best[0]: best = (r, copy.deepcopy(m.state_dict()), e + 1)
    m.load_state_dict(best[1]); m.eval()
    return m, best[0], best[2]

def pred(ms, x):
    with torch.no_grad():
        return np.clip(np.mean([mm(torch.from_numpy(x)).numpy()[:, 0] for mm in ms], 0) * 125, 0, 125)

yt = np.minimum(p['y_test'], 125)
# Chosen on validation (all windows of the 20 validation engines): hidden 64, wd 1e-2, dropout 0.1 (12.595 of 12.595/12.839/12.867).
ms = [train(64, 1e-2, 60, tc.SEED + k, 0.1)[0] for k in range(5)]
pv = pred(ms, xv); print("val", float(np.sqrt(np.mean((pv - p['y_val']) ** 2))))
pt = pred(ms, xt); print("TEST (evaluated once, after the choice):", float(np.sqrt(np.mean((pt - yt) ** 2))), "NASA", common.nasa_score(pt, yt), flush=True)
