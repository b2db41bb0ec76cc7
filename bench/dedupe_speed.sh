#!/usr/bin/env bash
# Dedupe speed: seeded contacts at several sizes through `contactsync dedupe` with the default
# contacts model, on this machine's cores. Per size: wall time (median of RUNS runs), peak RSS (GNU
# time), candidate and scored pairs per second, the time of each phase, and the pairwise precision,
# recall and F1 of the clusters against the seed's ground truth (speed bought with accuracy would
# show here). Written to bench-output/dedupe_speed.{json,md}.
#
#   bench/dedupe_speed.sh [SIZES...]        default: 100000 1000000
#   RUNS=3 bench/dedupe_speed.sh 1000000    runs per size (default 3; the median is reported)
#   APPEND=1 bench/dedupe_speed.sh 10000000 keep the other sizes' results in the output
#
# Uses target/release/contactsync (build it first: cargo build --release); CONTACTSYNC_BIN
# overrides. The seed export is written once per size under bench-output/dedupe-work/. Accuracy
# needs Python with duckdb (pip install duckdb); without it the accuracy columns stay empty.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CONTACTSYNC_BIN:-target/release/contactsync}
[ -x "$BIN" ] || { echo "no $BIN: run cargo build --release first (or set CONTACTSYNC_BIN)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) is needed for peak RSS" >&2; exit 2; }
SIZES=("$@"); [ ${#SIZES[@]} -gt 0 ] || SIZES=(100000 1000000)
RUNS=${RUNS:-3}
OUT=bench-output; WORK=$OUT/dedupe-work; mkdir -p "$WORK"
RESULTS=$OUT/dedupe_speed.jsonl
if [ "${APPEND:-0}" = 1 ] && [ -f "$RESULTS" ]; then
  # Keep the other sizes' results (a 10 M run is slow enough to be run apart).
  python3 - "$RESULTS" "${SIZES[@]}" <<'PY'
import json, sys
path, sizes = sys.argv[1], {int(s) for s in sys.argv[2:]}
kept = [l for l in open(path) if l.strip() and json.loads(l)["rows"] not in sizes]
open(path, "w").writelines(kept)
PY
else
  : > "$RESULTS"
fi
for n in "${SIZES[@]}"; do
  dir=$WORK/$n
  if [ ! -f "$dir/contacts.csv" ]; then
    echo "seeding $n contacts..." >&2
    "$BIN" sandbox --seed 42 --contacts "$n" --messages 0 --export-seed "$dir" >/dev/null
  fi
  for run in $(seq 1 "$RUNS"); do
    echo "deduping $n contacts (run $run of $RUNS)..." >&2
    # Read the export once untimed so every run starts with it in the page cache: a 10 M export
    # (1.4 GB) is otherwise often evicted between runs, and its reading phase then measures this
    # machine's disk (17 s for the file alone) rather than parsing.
    cat "$dir/contacts.csv" > /dev/null
    /usr/bin/time -f '%e %M' -o "$dir/time-$run.txt" \
      "$BIN" dedupe --input "$dir/contacts.csv" --out "$dir/clusters.parquet" --json \
      > "$dir/report-$run.json" 2> "$dir/stderr.log" || true
  done
  python3 - "$n" "$dir" "$RUNS" >> "$RESULTS" <<'PY'
import json, statistics, sys
n, d, runs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
measured = []
for run in range(1, runs + 1):
    wall, rss_kb = open(f"{d}/time-{run}.txt").read().split()
    report = json.loads(open(f"{d}/report-{run}.json").read().strip().splitlines()[-1])
    measured.append((float(wall), int(rss_kb), report["counts"]))
walls = sorted(m[0] for m in measured)
wall, rss_kb, c = sorted(measured, key=lambda m: m[0])[len(measured) // 2]
accuracy = {}
try:
    import duckdb
    con = duckdb.connect()
    con.sql(f"create view t as select id, person from read_csv('{d}/truth.csv', all_varchar=true)")
    con.sql(f"create view c as select id, cluster_id from read_parquet('{d}/clusters.parquet')")
    q = lambda s: float(con.sql(s).fetchall()[0][0] or 0)
    tp = q("select sum(n*(n-1)/2) from (select count(*) n from c join t using(id) group by cluster_id, person)")
    pred = q("select sum(n*(n-1)/2) from (select count(*) n from c group by cluster_id)")
    true = q("select sum(n*(n-1)/2) from (select count(*) n from t group by person)")
    p, r = tp / max(pred, 1), tp / max(true, 1)
    accuracy = {"precision": round(p, 4), "recall": round(r, 4),
                "f1": round(2 * p * r / max(p + r, 1e-12), 4), "true_pairs": int(true)}
except ImportError:
    print("duckdb not installed: accuracy not measured", file=sys.stderr)
print(json.dumps({
    "rows": n, "runs": runs, "wall_seconds": wall, "wall_seconds_all": walls,
    "peak_rss_mib": round(rss_kb / 1024, 1),
    "candidate_pairs": c.get("candidate_pairs"), "accepted_pairs": c.get("accepted_pairs"),
    "clusters_with_duplicates": c.get("clusters_with_duplicates"),
    "windowed_blocks": c.get("windowed_blocks"),
    "rows_per_second": round(n / wall), "candidate_pairs_per_second": round(c.get("candidate_pairs", 0) / wall),
    "phase_ms": {k[3:]: v for k, v in c.items() if k.startswith("ms.")},
    "scored_pairs_per_second": c.get("scored_pairs_per_second"),
    "accuracy": accuracy,
}))
PY
  tail -1 "$RESULTS" >&2
done
python3 - "$RESULTS" > "$OUT/dedupe_speed.md" <<'PY'
import json, sys
rows = sorted((json.loads(l) for l in open(sys.argv[1])), key=lambda r: r["rows"])
json.dump(rows, open(sys.argv[1].replace(".jsonl", ".json"), "w"), indent=2)
print("| contacts | wall s (median) | peak RSS MiB | candidate pairs | scored pairs/s (scoring phase) | precision | recall | F1 | phases (ms) |")
print("|--:|--:|--:|--:|--:|--:|--:|--:|---|")
for r in rows:
    a = r.get("accuracy") or {}
    phases = ", ".join(f"{k} {v}" for k, v in r["phase_ms"].items())
    print(f"| {r['rows']:,} | {r['wall_seconds']:.1f} | {r['peak_rss_mib']:,} | {r['candidate_pairs']:,} "
          f"| {r['scored_pairs_per_second'] or 0:,} | {a.get('precision', '')} | {a.get('recall', '')} "
          f"| {a.get('f1', '')} | {phases} |")
PY
cat "$OUT/dedupe_speed.md"
