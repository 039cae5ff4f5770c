#!/usr/bin/env python3
"""Fit the same-language score offsets (English questions, Spanish questions) by 5-fold cross-validation
on the TUNING half of the unseen-style dev set, and report the held-out gain as mean ± spread across folds.

usage: python3 scripts/calibrate_language.py PODSEEK_BINARY INDEX_DIR

For every grid point it runs `podseek eval --split tune --same-language EN,ES --json` once and keeps the
per-query nDCG@10; folds are made from query ids (every 5th query), so each fold mixes languages and kinds.
"""
import itertools, json, statistics, subprocess, sys

GRID = [-0.03, -0.02, -0.01, 0.0, 0.01, 0.02, 0.03, 0.04]
binary, index = sys.argv[1], sys.argv[2]


def per_query(en, es):
    out = subprocess.run([binary, "eval", "--split", "tune", "--index", index, "--json",
                          f"--same-language={en},{es}"], capture_output=True, text=True, check=True).stdout
    return {q: m["ndcg_10"] for q, m in json.loads(out)["per_query"].items()}


runs = {(en, es): per_query(en, es) for en, es in itertools.product(GRID, GRID)}
ids = sorted(runs[(0.0, 0.0)])
folds = [ids[i::5] for i in range(5)]
gains, chosen = [], []
for held in folds:
    train = [q for q in ids if q not in held]
    best = max(runs, key=lambda p: (statistics.mean(runs[p][q] for q in train), -abs(p[0]) - abs(p[1])))
    chosen.append(best)
    gains.append(statistics.mean(runs[best][q] - runs[(0.0, 0.0)][q] for q in held))
overall = max(runs, key=lambda p: (statistics.mean(runs[p].values()), -abs(p[0]) - abs(p[1])))
print("per-fold choice (EN, ES):", chosen)
print(f"held-out nDCG@10 gain over no offset: {statistics.mean(gains):+.4f} ± {statistics.stdev(gains):.4f} "
      f"(folds: {', '.join(f'{g:+.3f}' for g in gains)})")
print(f"fit on the whole tuning half: EN {overall[0]:+.2f}, ES {overall[1]:+.2f}, "
      f"nDCG@10 {statistics.mean(runs[overall].values()):.4f} vs {statistics.mean(runs[(0.0, 0.0)].values()):.4f} without")
