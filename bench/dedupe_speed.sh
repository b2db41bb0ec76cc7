#!/usr/bin/env bash
# Dedupe speed: seeded contacts at several sizes through `contactsync dedupe` with the default
# contacts model, on this machine's cores. Wall time, peak RSS (GNU time), candidate and scored
# pairs per second, written to bench-output/dedupe_speed.{json,md}.
#
#   bench/dedupe_speed.sh [SIZES...]        default: 100000 1000000
#
# Uses target/release/contactsync (build it first: cargo build --release); CONTACTSYNC_BIN
# overrides. The seed export is written once per size under bench-output/dedupe-work/.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CONTACTSYNC_BIN:-target/release/contactsync}
[ -x "$BIN" ] || { echo "no $BIN: run cargo build --release first (or set CONTACTSYNC_BIN)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) is needed for peak RSS" >&2; exit 2; }
SIZES=("$@"); [ ${#SIZES[@]} -gt 0 ] || SIZES=(100000 1000000)
OUT=bench-output; WORK=$OUT/dedupe-work; mkdir -p "$WORK"
RESULTS=$OUT/dedupe_speed.jsonl; : > "$RESULTS"
for n in "${SIZES[@]}"; do
  dir=$WORK/$n
  if [ ! -f "$dir/contacts.csv" ]; then
    echo "seeding $n contacts..." >&2
    "$BIN" sandbox --seed 42 --contacts "$n" --messages 0 --export-seed "$dir" >/dev/null
  fi
  echo "deduping $n contacts..." >&2
  /usr/bin/time -f '%e %M' -o "$dir/time.txt" \
    "$BIN" dedupe --input "$dir/contacts.csv" --out "$dir/clusters.parquet" --json \
    > "$dir/report.json" 2> "$dir/stderr.log" || true
  read -r wall rss_kb < "$dir/time.txt"
  python3 - "$n" "$wall" "$rss_kb" "$dir/report.json" >> "$RESULTS" <<'PY'
import json, sys
n, wall, rss_kb, report = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
r = json.loads(open(report).read().strip().splitlines()[-1])
c = r["counts"]
print(json.dumps({
    "rows": n, "wall_seconds": wall, "peak_rss_mib": round(rss_kb / 1024, 1),
    "candidate_pairs": c.get("candidate_pairs"), "accepted_pairs": c.get("accepted_pairs"),
    "clusters_with_duplicates": c.get("clusters_with_duplicates"),
    "rows_per_second": round(n / wall), "candidate_pairs_per_second": round(c.get("candidate_pairs", 0) / wall),
    "phase_ms": {k[3:]: v for k, v in c.items() if k.startswith("ms.")},
    "scored_pairs_per_second": c.get("scored_pairs_per_second"),
}))
PY
  tail -1 "$RESULTS" >&2
done
python3 - "$RESULTS" > "$OUT/dedupe_speed.md" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
json.dump(rows, open(sys.argv[1].replace(".jsonl", ".json"), "w"), indent=2)
print("| contacts | wall s | peak RSS MiB | candidate pairs | scored pairs/s (scoring phase) | rows/s | phases (ms) |")
print("|--:|--:|--:|--:|--:|--:|---|")
for r in rows:
    phases = ", ".join(f"{k} {v}" for k, v in r["phase_ms"].items())
    print(f"| {r['rows']:,} | {r['wall_seconds']:.1f} | {r['peak_rss_mib']:,} | {r['candidate_pairs']:,} | {r['scored_pairs_per_second'] or 0:,} | {r['rows_per_second']:,} | {phases} |")
PY
cat "$OUT/dedupe_speed.md"
