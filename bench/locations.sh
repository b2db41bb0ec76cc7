#!/bin/sh
# Many locations in one run against one location alone, with GHL's real rate limits on: a sandbox
# with LOCATIONS locations of CONTACTS contacts each (one BulkSMS account), one `contactsync run`
# over all of them, then the same on a sandbox with one location. Writes
# bench-output/locations.json: both wall times, their ratio, and per location its exit code, GHL
# requests and 429 responses.
#
#   bench/locations.sh                                   # debug build, 50 x 2,000
#   PROFILE=release bench/locations.sh
#   LOCATIONS=5 CONTACTS=200 bench/locations.sh          # a quick check of the script
#   PARALLEL=8 bench/locations.sh                        # [pipeline] max_parallel_locations
set -eu
cd "$(dirname "$0")/.."
LOCATIONS="${LOCATIONS:-50}"
CONTACTS="${CONTACTS:-2000}"
PARALLEL="${PARALLEL:-$LOCATIONS}"
CARGO="${CARGO:-cargo}"
profile_flag=""
profile_dir=debug
if [ "${PROFILE:-dev}" = release ]; then profile_flag="--release"; profile_dir=release; fi
$CARGO build $profile_flag --bin contactsync
bin="${CARGO_TARGET_DIR:-target}/$profile_dir/contactsync"
out=bench-output
mkdir -p "$out"
work="$(mktemp -d)"
sandbox_pid=""
cleanup() {
  if [ -n "$sandbox_pid" ]; then kill "$sandbox_pid" 2>/dev/null || true; fi
  if [ -n "${KEEP:-}" ]; then echo "scratch kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM

# run_case NAME N: a sandbox with N locations, one run over all of them; leaves
# $work/NAME/{report.json,seconds}.
run_case() {
  name="$1"
  n="$2"
  dir="$work/$name"
  mkdir -p "$dir"
  "$bin" sandbox --locations "$n" --contacts "$CONTACTS" --messages "$CONTACTS" \
    --emit-pipeline "$dir/single.toml" >"$dir/ready.json" 2>"$dir/sandbox.log" &
  sandbox_pid=$!
  while [ ! -s "$dir/ready.json" ]; do
    if ! kill -0 "$sandbox_pid" 2>/dev/null; then cat "$dir/sandbox.log" >&2; exit 1; fi
    sleep 0.2
  done
  # The emitted file runs location 0; name every location, each with its own token.
  python3 - "$dir" "$PARALLEL" <<'PY'
import json, re, sys
d, parallel = sys.argv[1], sys.argv[2]
ready = json.loads(open(f"{d}/ready.json").read().splitlines()[0])
text = open(f"{d}/single.toml").read()
ids = [l["id"] for l in ready["ghl_locations"]]
tokens = ", ".join(f'"{l["id"]}" = "{l["private_token"]}"' for l in ready["ghl_locations"])
text = re.sub(r'(?m)^location_id = .*$',
              "locations = [" + ", ".join(f'"{i}"' for i in ids) + "]", text, count=1)
text = re.sub(r'(?m)^auth = .*$',
              'auth = { kind = "private_token", tokens = { ' + tokens.replace("\\", "\\\\") + ' } }',
              text, count=1)
text = text.replace("[pipeline]\n", f"[pipeline]\nmax_parallel_locations = {parallel}\n", 1)
open(f"{d}/pipeline.toml", "w").write(text)
PY
  start=$(date +%s.%N)
  set +e
  "$bin" run --json --pipeline "$dir/pipeline.toml" >"$dir/report.json" 2>"$dir/run.log"
  code=$?
  set -e
  end=$(date +%s.%N)
  echo "$start $end $code" >"$dir/seconds"
  kill "$sandbox_pid" 2>/dev/null || true
  wait "$sandbox_pid" 2>/dev/null || true
  sandbox_pid=""
}

echo "One location of $CONTACTS contacts..." >&2
run_case one 1
echo "$LOCATIONS locations of $CONTACTS contacts, $PARALLEL at a time..." >&2
run_case many "$LOCATIONS"

python3 - "$work" "$out/locations.json" "$LOCATIONS" "$CONTACTS" "$PARALLEL" "${PROFILE:-dev}" \
  "$(git rev-parse --short HEAD)" "$(nproc)" <<'PY'
import json, sys
work, path, locations, contacts, parallel, profile, commit, cores = sys.argv[1:]
def case(name):
    start, end, code = open(f"{work}/{name}/seconds").read().split()
    report = json.loads(open(f"{work}/{name}/report.json").read().strip().splitlines()[-1])
    if "locations" not in report:
        sys.exit(f"the {name} run failed (exit {code}): {report.get('errors')}\n"
                 + open(f"{work}/{name}/run.log").read()[-3000:])
    per = [{
        "location": l["location"],
        "exit_code": l["exit_code"],
        "contacts": l["counts"].get("ghl/contacts.rows", 0),
        "ghl_requests": l["requests"].get("ghl", 0),
        "ghl_429": l["counts"].get("ghl.rate_limited", 0),
        "applied": l["counts"].get("applied", 0),
    } for l in report["locations"]]
    return {
        "wall_seconds": round(float(end) - float(start), 2),
        "exit_code": int(code),
        "locations_ok": report["totals"]["locations_ok"],
        "locations_failed": report["totals"]["locations_failed"],
        "ghl_requests": sum(p["ghl_requests"] for p in per),
        "ghl_429": sum(p["ghl_429"] for p in per),
        "bulksms_requests": report["totals"]["requests"].get("bulksms", 0),
        "per_location": per,
    }
one, many = case("one"), case("many")
result = {
    "locations": int(locations), "contacts_per_location": int(contacts),
    "max_parallel_locations": int(parallel), "profile": profile, "commit": commit,
    "cores": int(cores), "one_location": one, "many_locations": many,
    "wall_ratio": round(many["wall_seconds"] / max(one["wall_seconds"], 1e-9), 2),
    "locations_with_429": sum(1 for p in many["per_location"] if p["ghl_429"] > 0),
}
json.dump(result, open(path, "w"), indent=2)
print(f'one location: {one["wall_seconds"]} s; {locations} locations: {many["wall_seconds"]} s '
      f'(x{result["wall_ratio"]}); 429s: {many["ghl_429"]} in {result["locations_with_429"]} locations; '
      f'exit {many["exit_code"]}; written to {path}')
PY
