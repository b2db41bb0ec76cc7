#!/usr/bin/env python3
"""Load benchmark: about 10 k operations applied through GHL's real rate limit.

What it answers (the issue): with GHL's real limit on (100 requests / 10 s per location), how many
write calls does a changed contact cost, and how much of the rate limit does the load use while
applying ~10 k operations?

Steps:
  1. Start `contactsync sandbox` (GHL's rate limit on, the default) with seeded contacts, append a
     [load] and [migrate] section to the pipeline file it emits, and authorise (`auth ghl`).
  2. Build an export (~10 k rows) from the sandbox's own state and ground truth:
       - new people (unique invented names, bench.personNNNNN@example.org, valid US numbers),
       - the same new people again with reformatted email/phone (in-file duplicates: must merge),
       - rows matching existing contacts by exact email with a new tag and a Tier value (each one
         becomes add_tags + update_contact: 2 operations),
       - rows matching existing contacts with nothing new (must be left unchanged).
     Existing contacts are picked with a unique email and no planted duplicate (per
     /_sandbox/truth), so one row changes exactly one contact.
  3. `migrate` without --apply: extract (reads) + dedupe + plan; nothing is written.
  4. Reset the sandbox counters, then `load` the plan, timed on its own, while a thread samples
     /_sandbox/stats every 0.5 s (control routes are not counted) to see when 429s happen and how
     full GHL's 10-second windows get.
  5. Read the sandbox state back: every new person must exist exactly once (by email), every
     updated contact must carry the tag and the tier.

Outputs: bench-output/load.json (every number) and bench-output/load.md (the table); the work
files (pipeline, export, state dir with run directories) stay in bench-output/load-run/.

Binary: $CONTACTSYNC_BIN, else target/release/contactsync if it exists, else
target/debug/contactsync. The script never builds. The load is bound by the rate limit, not the
CPU, so the debug build gives the same figures. A run takes about 20 minutes (10 k writes at the
client's 9.5 requests/s).
"""
import argparse
import csv
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# GHL's published limit per location, which the sandbox enforces.
LIMIT_REQUESTS = 100
LIMIT_WINDOW_S = 10.0

# Appended to the pipeline file the sandbox emits. max_creates well above the plan so the safety
# limit does not refuse it; no sends; the mapping names the CSV columns written below.
PIPELINE_EXTRA = """
[load]
max_creates = 20000
max_sends = 0
concurrency = 8

[migrate]
tags_separator = ";"
source = "bench"

[migrate.mapping]
"First Name" = "first_name"
"Last Name" = "last_name"
"Email" = "email"
"Phone" = "phone"
"City" = "city"
"Labels" = "tags"
"Tier" = "custom.tier"
"""

NEW_TAG = "bench-new"
UPDATE_TAG = "bench-updated"
TIER_FIELD = "tier"

FIRST_NAMES = [
    "Avery", "Blake", "Casey", "Dana", "Elliot", "Frankie", "Gale", "Harper", "Indy", "Jules",
    "Kendall", "Logan", "Marlow", "Noel", "Oakley", "Parker", "Quinn", "Reese", "Sage", "Tatum",
    "Umber", "Vale", "Wren", "Xen", "Yael", "Zion",
]
# Invented surnames (prefix + middle + ending): alphabetic and unique per person, so neither the
# name normaliser (which may drop digits) nor the seeded real names make new people look alike.
SURNAME_PARTS = (
    ["Ash", "Bram", "Cor", "Dun", "Elm", "Fen", "Gar", "Hol", "Ivy", "Kest",
     "Lark", "Mor", "Nest", "Orl", "Pell", "Quarr", "Rook", "Sten", "Tarn", "Wex"],
    ["a", "e", "i", "o", "u", "ar", "en", "il", "on", "ur", "ey", "ow", "ith", "al", "ed"],
    ["brook", "croft", "dale", "field", "gate", "holm", "ley", "mere", "ridge", "stead",
     "thorpe", "ton", "well", "wick", "worth", "by", "combe", "ham", "hurst", "shaw"],
)
CITIES = ["San Francisco", "Oakland", "New York", "Brooklyn", "Chicago", "Evanston"]
# Area codes in service (San Francisco, New York, Chicago).
AREA_CODES = [415, 628, 212, 646, 312]


# --------------------------------------------------------------------------------------------
# The binary and the sandbox


def binary() -> str:
    if os.environ.get("CONTACTSYNC_BIN"):
        return os.environ["CONTACTSYNC_BIN"]
    release = REPO / "target/release/contactsync"
    return str(release if release.exists() else REPO / "target/debug/contactsync")


class Sandbox:
    """A `contactsync sandbox` child process and its control routes."""

    def __init__(self, work: Path, seed: int, contacts: int):
        self.pipeline = work / "pipeline.toml"
        self.log = open(work / "sandbox.log", "w")
        self.proc = subprocess.Popen(
            [binary(), "sandbox", "--seed", str(seed), "--contacts", str(contacts),
             "--messages", "200", "--emit-pipeline", str(self.pipeline)],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        # The ready line is printed once the pipeline file is written and the port is bound.
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"the sandbox exited before it was ready; see {work / 'sandbox.log'}")
        self.info = json.loads(line)
        self.base = self.info["control_url"]

    def control(self, path: str, post: bool = False):
        request = urllib.request.Request(
            f"{self.base}/_sandbox/{path}", method="POST" if post else "GET",
            data=b"{}" if post else None, headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def stop(self):
        # Our own child, by its handle: nothing else is touched.
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def contactsync(args: list, pipeline: Path, work: Path, name: str, timeout: float):
    """Runs one command with --json; returns (report, wall seconds, exit code).

    Exit code 3 (partial failure) still yields a report worth measuring; anything else stops."""
    started = time.monotonic()
    with open(work / f"{name}.log", "w") as log:
        done = subprocess.run([binary(), *args, "--pipeline", str(pipeline), "--json"],
                              stdout=subprocess.PIPE, stderr=log, text=True, timeout=timeout,
                              env={**os.environ, "RUST_LOG": "warn"})
    seconds = time.monotonic() - started
    if done.returncode not in (0, 3):
        tail = (work / f"{name}.log").read_text()[-3000:]
        sys.exit(f"contactsync {' '.join(args)} exited {done.returncode}:\n{tail}")
    lines = done.stdout.strip().splitlines()
    return (json.loads(lines[-1]) if lines else {}), seconds, done.returncode


# --------------------------------------------------------------------------------------------
# The export


def surname(i: int) -> str:
    a, b, c = SURNAME_PARTS
    if i >= len(a) * len(b) * len(c):
        raise ValueError("more new people than invented surnames; add parts")
    return a[i % len(a)] + b[(i // len(a)) % len(b)] + c[i // (len(a) * len(b))]


def us_numbers(rng: random.Random, taken: set):
    """Endless unique, valid NANP numbers as (area, exchange, line).

    Exchange 2xx-9xx (never 0/1 first), never N11 (service codes) and never 555 (its 01xx lines
    are fiction-only and the rest is directory assistance): every number passes validation."""
    while True:
        area = rng.choice(AREA_CODES)
        exchange = rng.randint(200, 999)
        if exchange % 100 == 11 or exchange == 555:
            continue
        line = rng.randint(0, 9999)
        e164 = f"+1{area}{exchange}{line:04d}"
        if e164 not in taken:
            taken.add(e164)
            yield area, exchange, line


def pick_existing(state: dict, truth: list) -> tuple:
    """Existing contacts a row can match by exact email: (clean, other).

    Clean ones have a unique email, both names and no planted duplicate of the same person, so a
    row carrying changes lands on that one record; the others (unique email and both names, but
    maybe a duplicate record of someone) only get rows with nothing new."""
    contacts = state["ghl"]["contacts"]
    person = {r["id"]: r["person"] for r in truth}
    records_per_person = Counter(person.values())
    emails = Counter((c.get("email") or "").strip().lower() for c in contacts)
    usable = [c for c in contacts
              if c.get("email") and emails[c["email"].strip().lower()] == 1
              and c.get("firstName") and c.get("lastName")
              and UPDATE_TAG not in (c.get("tags") or [])]
    clean = [c for c in usable if records_per_person[person.get(c["id"])] == 1]
    clean_ids = {c["id"] for c in clean}
    return clean, [c for c in usable if c["id"] not in clean_ids]


def build_export(path: Path, state: dict, truth: list, a, rng: random.Random) -> dict:
    """Writes the CSV; returns what the load should change (emails of new people, ids of
    contacts to update) for the check afterwards."""
    clean, other = pick_existing(state, truth)
    rng.shuffle(clean)
    rng.shuffle(other)
    to_update = clean[:a.updates]
    untouched = (clean[a.updates:] + other)[:a.unchanged]
    if len(to_update) < a.updates:
        print(f"warning: only {len(to_update)} clean existing contacts to update "
              f"(asked {a.updates}); seed more contacts", file=sys.stderr)
    taken = {c.get("phone") for c in state["ghl"]["contacts"] if c.get("phone")}
    numbers = us_numbers(rng, taken)
    new_people = []
    for i in range(a.new):
        area, exchange, line = next(numbers)
        new_people.append({
            "first": rng.choice(FIRST_NAMES), "last": surname(i),
            "email": f"bench.person{i:05d}@example.org",
            "phone": (area, exchange, line), "city": rng.choice(CITIES),
        })
    rows = []
    for p in new_people:
        area, exchange, line = p["phone"]
        rows.append([p["first"], p["last"], p["email"], f"+1 ({area}) {exchange}-{line:04d}",
                     p["city"], NEW_TAG, "bronze"])
    # The same people again, as another system would export them: the plan must merge these
    # into the first row, not create a second contact.
    for p in rng.sample(new_people, min(a.repeats, len(new_people))):
        area, exchange, line = p["phone"]
        rows.append([p["first"], p["last"], p["email"].upper(), f"{area}-{exchange}-{line:04d}",
                     p["city"], NEW_TAG, "bronze"])
    for c in to_update:
        rows.append([c["firstName"], c["lastName"], c["email"], "", "", UPDATE_TAG, "gold"])
    for c in untouched:
        rows.append([c["firstName"], c["lastName"], c["email"], "", "", "", ""])
    rng.shuffle(rows)  # a real export is not sorted by outcome
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["First Name", "Last Name", "Email", "Phone", "City", "Labels", "Tier"])
        writer.writerows(rows)
    return {
        "rows": len(rows),
        "new_emails": [p["email"] for p in new_people],
        "repeats": min(a.repeats, len(new_people)),
        "update_ids": [c["id"] for c in to_update],
        "unchanged_rows": len(untouched),
    }


# --------------------------------------------------------------------------------------------
# Sampling the sandbox's counters during the load


class StatsSampler(threading.Thread):
    """Polls /_sandbox/stats so 429s and requests can be placed in time (the counters alone
    only say how many)."""

    def __init__(self, sandbox: Sandbox, every: float = 0.5):
        super().__init__(daemon=True)
        self.sandbox, self.every = sandbox, every
        self.samples = []  # (epoch seconds, GHL requests, writes, 429s)
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                stats = self.sandbox.control("stats")
                self.samples.append((time.time(), ghl_requests(stats), stats["writes"],
                                     stats["rate_limited"]))
            except OSError:
                pass  # a missed sample only makes the time series coarser
            self.halt.wait(self.every)

    def stop(self):
        self.halt.set()
        self.join()


def ghl_requests(stats: dict) -> int:
    """GHL requests answered by the sandbox (routes are "<METHOD> /ghl/...")."""
    return sum(n for route, by_status in stats["requests"].items()
               if route.split(" ", 1)[-1].startswith("/ghl/") for n in by_status.values())


def at(samples: list, t: float, column: int) -> int:
    """The counter as of time t (the last sample taken at or before t)."""
    value = 0
    for s in samples:
        if s[0] > t:
            break
        value = s[column]
    return value


def timeline(samples: list, started: float) -> dict:
    """429s after the first 10 s, and how full GHL's windows got.

    The sandbox counts in fixed windows aligned to multiples of 10 s of its clock (real time, no
    offset), so per-window counts are read at those boundaries; with 0.5 s sampling each is
    accurate to about ±5 requests."""
    if len(samples) < 2:
        return {}
    first_429_after = next((s[0] - started for s in samples if s[3] > 0), None)
    late_429 = samples[-1][3] - at(samples, started + LIMIT_WINDOW_S, 3)
    windows = []
    edge = (samples[0][0] // LIMIT_WINDOW_S + 1) * LIMIT_WINDOW_S  # first full window
    while edge + LIMIT_WINDOW_S <= samples[-1][0]:
        windows.append(at(samples, edge + LIMIT_WINDOW_S, 1) - at(samples, edge, 1))
        edge += LIMIT_WINDOW_S
    busy = [w for w in windows if w > 0]
    return {
        "first_429_seconds_into_load": None if first_429_after is None else round(first_429_after, 1),
        "rate_limited_after_first_10s": late_429,
        "full_windows_seen": len(windows),
        "max_requests_in_a_10s_window": max(windows, default=0),
        "median_requests_per_10s_window": sorted(busy)[len(busy) // 2] if busy else 0,
    }


# --------------------------------------------------------------------------------------------
# Checks and results


def tagged_by_plan(run_dir: str, export_path: Path) -> set:
    """Existing contacts that rows carrying the update tag landed on, per the migration's
    rows.csv (every row's fate and the contact it matched); they must end up tagged and tiered."""
    with open(export_path, newline="") as f:
        labels = [r["Labels"] for r in csv.DictReader(f)]
    with open(Path(run_dir) / "migrate" / "rows.csv", newline="") as f:
        return {r["contact_id"] for r in csv.DictReader(f)
                if r["contact_id"] and labels[int(r["row"]) - 1] == UPDATE_TAG}


def verify(state: dict, expected: dict, tagged: set) -> dict:
    """Every new person exactly once (by email, case-insensitive); every existing contact an
    update row landed on carries the tag and the tier afterwards."""
    contacts = state["ghl"]["contacts"]
    by_email = Counter((c.get("email") or "").strip().lower() for c in contacts)
    copies = Counter(by_email[e] for e in expected["new_emails"])
    by_id = {c["id"]: c for c in contacts}
    tagged_ok = 0
    for cid in tagged:
        c = by_id.get(cid, {})
        tier = [f.get("value") for f in c.get("customFields") or [] if f.get("id") == TIER_FIELD]
        if UPDATE_TAG in (c.get("tags") or []) and tier == ["gold"]:
            tagged_ok += 1
    return {
        "new_people_expected": len(expected["new_emails"]),
        "new_people_exactly_once": copies.get(1, 0),
        "new_people_missing": copies.get(0, 0),
        "new_people_duplicated": sum(n for k, n in copies.items() if k > 1),
        "contacts_update_rows_landed_on": len(tagged),
        "of_which_with_tag_and_tier": tagged_ok,
        "contacts_in_sandbox": len(contacts),
    }


def load_errors(run_dir: str) -> dict:
    """result.json of the load: its metrics and the first failed operations' error texts."""
    path = Path(run_dir) / "load" / "result.json"
    if not path.exists():
        return {"result_json": None}
    result = json.loads(path.read_text())
    return {"result_json": str(path), "metrics": result.get("metrics"),
            "errors_total": len(result.get("errors") or []),
            "errors_first": (result.get("errors") or [])[:20]}


def summarise(plan, plan_s, plan_stats, load, load_s, load_stats, series, check, export, a):
    counts, load_counts = plan["counts"], load["counts"]
    kinds = {k.removeprefix("planned."): v for k, v in load_counts.items()
             if k.startswith("planned.")}
    changed = counts.get("creates", 0) + counts.get("updates", 0)
    writes = load_stats["writes"]
    ghl_total = ghl_requests(load_stats)
    rate = ghl_total / load_s if load_s else 0.0
    limit_rate = LIMIT_REQUESTS / LIMIT_WINDOW_S
    return {
        "binary": binary(),
        "sandbox_contacts": a.contacts,
        "export_rows": export["rows"],
        "rows_new_people": a.new, "rows_repeating_new_people": export["repeats"],
        "rows_updating_existing": len(export["update_ids"]),
        "rows_unchanged_existing": export["unchanged_rows"],
        "plan": {k: counts.get(k) for k in
                 ("rows", "creates", "updates", "unchanged", "merges", "rejects",
                  "planned_operations")},
        "planned_by_kind": kinds,
        "operations_planned": counts.get("planned_operations"),
        "operations_applied": load_counts.get("applied"),
        "operations_failed": load_counts.get("failed"),
        "operations_deferred": load_counts.get("deferred"),
        "operations_skipped": load_counts.get("skipped"),
        "changed_contacts": changed,
        "ghl_write_calls": writes,
        # One write per operation is the floor: 1 per create, 1 per tag add, 1 per update.
        "theoretical_min_write_calls": sum(kinds.values()),
        "write_calls_per_changed_contact": round(writes / changed, 3) if changed else None,
        "theoretical_min_per_changed_contact": round(sum(kinds.values()) / changed, 3) if changed else None,
        "ghl_requests_load_json": load["requests"].get("ghl"),
        "ghl_requests_sandbox": ghl_total,
        "sandbox_requests_by_route": load_stats["requests"],
        "load_wall_seconds": round(load_s, 1),
        "plan_wall_seconds_incl_extract": round(plan_s, 1),
        # What `migrate --apply` would take in one go: the plan, then the load.
        "migrate_apply_wall_seconds": round(plan_s + load_s, 1),
        "plan_ghl_requests_sandbox": ghl_requests(plan_stats),
        "plan_rate_limited_sandbox": plan_stats["rate_limited"],
        "ghl_requests_per_second": round(rate, 2),
        "share_of_limit": round(rate / limit_rate, 3),
        "rate_limited_load_json": load_counts.get("ghl.rate_limited"),
        "rate_limited_sandbox": load_stats["rate_limited"],
        "ghl_retries": load_counts.get("ghl.retries"),
        **series,
        "exit_code_load": load.get("exit_code"),
        "check": check,
        "load_errors": load_errors(load.get("run_dir") or plan.get("run_dir", "")),
        "run_dir": load.get("run_dir"),
    }


def markdown(r: dict) -> str:
    c = r["check"]
    rows = [
        ("sandbox contacts (seeded)", r["sandbox_contacts"]),
        ("export rows (new / repeated new / update / unchanged)",
         f'{r["export_rows"]} ({r["rows_new_people"]} / {r["rows_repeating_new_people"]} / '
         f'{r["rows_updating_existing"]} / {r["rows_unchanged_existing"]})'),
        ("plan: creates / updates / unchanged / merges / rejects",
         " / ".join(str(r["plan"][k]) for k in ("creates", "updates", "unchanged", "merges", "rejects"))),
        ("operations planned", f'{r["operations_planned"]} '
         f'({", ".join(f"{k} {v}" for k, v in sorted(r["planned_by_kind"].items()))})'),
        ("operations applied / failed / deferred",
         f'{r["operations_applied"]} / {r["operations_failed"]} / {r["operations_deferred"]}'),
        ("changed contacts (creates + updated)", r["changed_contacts"]),
        ("GHL write calls (sandbox)", r["ghl_write_calls"]),
        ("theoretical minimum write calls (1 per create, tag add, update)", r["theoretical_min_write_calls"]),
        ("write calls per changed contact", f'{r["write_calls_per_changed_contact"]} '
         f'(minimum {r["theoretical_min_per_changed_contact"]})'),
        ("GHL requests by the load (load JSON / sandbox)",
         f'{r["ghl_requests_load_json"]} / {r["ghl_requests_sandbox"]}'),
        ("load wall time", f'{r["load_wall_seconds"]} s ({r["load_wall_seconds"] / 60:.1f} min)'),
        ("achieved GHL request rate", f'{r["ghl_requests_per_second"]} req/s'),
        ("share of the 10 req/s limit", f'{100 * r["share_of_limit"]:.1f} %'),
        ("max / median requests in one GHL 10 s window (±5)",
         f'{r.get("max_requests_in_a_10s_window")} / {r.get("median_requests_per_10s_window")}'),
        ("429s (load JSON / sandbox)", f'{r["rate_limited_load_json"]} / {r["rate_limited_sandbox"]}'),
        ("429s after the first 10 s", r.get("rate_limited_after_first_10s")),
        ("new people in GHL exactly once / missing / duplicated",
         f'{c["new_people_exactly_once"]} / {c["new_people_missing"]} / {c["new_people_duplicated"]} '
         f'(of {c["new_people_expected"]})'),
        ("contacts the update rows landed on that now carry tag and tier",
         f'{c["of_which_with_tag_and_tier"]} of {c["contacts_update_rows_landed_on"]}'),
        ("plan (extract + dedupe + plan) wall time, GHL requests",
         f'{r["plan_wall_seconds_incl_extract"]} s, {r["plan_ghl_requests_sandbox"]}'),
        ("plan + load (= migrate --apply) wall time", f'{r["migrate_apply_wall_seconds"]} s'),
    ]
    lines = ["| metric | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    errors = r["load_errors"].get("errors_first") or []
    if errors:
        lines += ["", f'Failed operations ({r["load_errors"]["errors_total"]}), first ones:', ""]
        lines += [f"- {e}" for e in errors]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--contacts", type=int, default=6000, help="contacts seeded in the sandbox")
    p.add_argument("--seed", type=int, default=42, help="sandbox and export seed")
    p.add_argument("--new", type=int, default=5000, help="new people (1 create each)")
    p.add_argument("--repeats", type=int, default=1000,
                   help="extra rows repeating new people (must merge: 0 operations)")
    p.add_argument("--updates", type=int, default=2500,
                   help="rows adding a tag and a tier to an existing contact (2 operations each)")
    p.add_argument("--unchanged", type=int, default=1500,
                   help="rows for existing contacts with nothing new (0 operations)")
    p.add_argument("--work", type=Path, default=REPO / "bench-output/load-run",
                   help="work folder (emptied first)")
    p.add_argument("--out", type=Path, default=REPO / "bench-output",
                   help="where load.json and load.md go")
    p.add_argument("--plan-only", action="store_true",
                   help="stop after the plan (no writes): to tune the operation count")
    p.add_argument("--timeout", type=float, default=45 * 60, help="seconds allowed to the load")
    return p.parse_args()


def fresh_dir(path: Path):
    if path.exists():
        for child in sorted(path.rglob("*"), reverse=True):
            child.unlink() if child.is_file() or child.is_symlink() else child.rmdir()
    path.mkdir(parents=True, exist_ok=True)


def main():
    a = parse_args()
    fresh_dir(a.work)
    print(f"binary: {binary()}", file=sys.stderr)
    sandbox = Sandbox(a.work, a.seed, a.contacts)
    try:
        with open(sandbox.pipeline, "a") as f:
            f.write(PIPELINE_EXTRA)
        contactsync(["auth", "ghl"], sandbox.pipeline, a.work, "auth", 120)

        export_path = a.work / "export.csv"
        export = build_export(export_path, sandbox.control("state"), sandbox.control("truth"),
                              a, random.Random(a.seed))
        print(f"export: {export['rows']} rows in {export_path}", file=sys.stderr)

        # Plan only (reads GHL and BulkSMS, writes nothing), measured apart from the load.
        sandbox.control("stats/reset", post=True)
        plan, plan_s, _ = contactsync(["migrate", "--input", str(export_path)],
                                      sandbox.pipeline, a.work, "migrate", 30 * 60)
        plan_stats = sandbox.control("stats")
        ops = plan["counts"].get("planned_operations", 0)
        print(f"plan: {json.dumps(plan['counts'])} in {plan_s:.1f} s", file=sys.stderr)
        if not 9000 <= ops <= 11000:
            print(f"warning: {ops} operations planned, outside 9,000-11,000", file=sys.stderr)
        if a.plan_only:
            return

        # The load alone: fresh counters, then apply the latest run's plan.
        sandbox.control("stats/reset", post=True)
        sampler = StatsSampler(sandbox)
        sampler.start()
        started = time.time()
        print(f"load: applying {ops} operations (about {ops / 9.5 / 60:.0f} min at 9.5 req/s)",
              file=sys.stderr)
        load, load_s, _ = contactsync(["load"], sandbox.pipeline, a.work, "load", a.timeout)
        sampler.stop()
        load_stats = sandbox.control("stats")
        check = verify(sandbox.control("state"), export,
                       tagged_by_plan(plan["run_dir"], export_path))
    finally:
        sandbox.stop()

    result = summarise(plan, plan_s, plan_stats, load, load_s, load_stats,
                       timeline(sampler.samples, started), check, export, a)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "load.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (a.out / "load.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
