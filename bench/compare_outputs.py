#!/usr/bin/env python3
"""Compare two output trees of contactsync row for row: proof that a refactor changed nothing.

    python3 bench/compare_outputs.py BEFORE_DIR AFTER_DIR

Both trees hold the same commands' outputs (dedupe cluster and pair files, `contactsync demo`
run directories). Files are matched by relative path, with each run directory's id (its start
time) replaced by its position among the runs of its state directory. Compared:

- Parquet and CSV: the rows as a sorted multiset (row order is not part of any contract), every
  column, floats exactly;
- JSON: the parsed value, without wall-clock fields (timings, start and finish times);
- Markdown and other text: line for line.

Left out as they change from run to run whatever the code: wall-clock times (`extracted_at`,
`*_at` of manifests, `seconds_*`, `ms.*`), run ids (masked to their position), the SQLite ledger,
HTML reports and Prometheus files (timings). Exits 1 when anything differs, listing what.
"""

import csv
import json
import re
import sys
from pathlib import Path

import pyarrow.parquet as pq

RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{4}")
# Wall-clock columns and keys: when something ran, not what it produced.
CLOCK_KEY = re.compile(
    r"^(extracted_at|started_at|finished_at|created_at|generated_at|seconds_.*|ms\..*|ms_.*|"
    r".*_ms|elapsed.*|duration.*|scored_pairs_per_second)$"
)
SKIP_SUFFIXES = (".sqlite", ".html", ".prom", ".log")
SKIP_NAMES = {"tokens", "last_success"}


def run_names(root: Path) -> dict:
    """Run id → `RUN<n>` (its position among the runs of its state directory)."""
    names = {}
    for runs in root.rglob("runs"):
        if runs.is_dir():
            ids = sorted(p.name for p in runs.iterdir() if RUN_ID.fullmatch(p.name))
            names.update({rid: f"RUN{i}" for i, rid in enumerate(ids)})
    return names


def mask(text: str, names: dict) -> str:
    return RUN_ID.sub(lambda m: names.get(m.group(0), "RUN?"), text)


def files(root: Path, names: dict) -> dict:
    out = {}
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if not p.is_file() or p.suffix in SKIP_SUFFIXES or set(rel.parts) & SKIP_NAMES:
            continue
        out[mask(str(rel), names)] = p
    return out


def clean(value, names):
    if isinstance(value, dict):
        return {k: clean(v, names) for k, v in value.items() if not CLOCK_KEY.match(k)}
    if isinstance(value, list):
        return [clean(v, names) for v in value]
    if isinstance(value, str):
        return mask(value, names)
    return value


def rows_of(path: Path, names: dict):
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        keep = [c for c in table.column_names if not CLOCK_KEY.match(c)]
        header = keep
        rows = table.select(keep).to_pylist()
        body = [json.dumps(clean(r, names), sort_keys=True, default=str) for r in rows]
    else:
        with path.open(newline="") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            body = [mask(json.dumps(r), names) for r in reader]
    return header, sorted(body)


def compare(a: Path, b: Path, names_a: dict, names_b: dict):
    """None when equal, else a short description of the first differences."""
    if a.suffix in (".parquet", ".csv"):
        (ha, ra), (hb, rb) = rows_of(a, names_a), rows_of(b, names_b)
        if ha != hb:
            return f"columns differ: {ha} vs {hb}"
        if ra == rb:
            return None
        only_a = sorted(set(ra) - set(rb))[:3]
        only_b = sorted(set(rb) - set(ra))[:3]
        return f"{len(ra)} vs {len(rb)} rows; only before: {only_a}; only after: {only_b}"
    if a.suffix == ".json":
        ja = clean(json.loads(a.read_text()), names_a)
        jb = clean(json.loads(b.read_text()), names_b)
        return None if ja == jb else f"JSON differs: {json.dumps(ja)[:300]} vs {json.dumps(jb)[:300]}"
    la = mask(a.read_text(errors="replace"), names_a).splitlines()
    lb = mask(b.read_text(errors="replace"), names_b).splitlines()
    if la == lb:
        return None
    first = next((i for i, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))
    return f"line {first + 1} differs: {la[first:first + 1]} vs {lb[first:first + 1]}"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    before, after = Path(sys.argv[1]), Path(sys.argv[2])
    names_a, names_b = run_names(before), run_names(after)
    fa, fb = files(before, names_a), files(after, names_b)
    differ = 0
    for rel in sorted(set(fa) | set(fb)):
        if rel not in fa or rel not in fb:
            print(f"MISSING {'after' if rel in fa else 'before'}: {rel}")
            differ += 1
            continue
        problem = compare(fa[rel], fb[rel], names_a, names_b)
        if problem:
            print(f"DIFFER  {rel}: {problem}")
            differ += 1
        else:
            print(f"same    {rel}")
    print(f"{len(set(fa) | set(fb))} files compared, {differ} differ")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
