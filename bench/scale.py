#!/usr/bin/env python3
"""Accuracy beside speed at every size, for every generator: does the matcher stay right as the
table grows?

    python3 bench/scale.py                          # 100 k and 1 M, every generator
    python3 bench/scale.py --sizes 10000000 --generators crowded --append
    python3 bench/scale.py --score-only DIR         # score DIR/clusters.parquet against DIR/truth.csv
    python3 bench/scale.py --generate-only --sizes 10000000   # tables now, timed runs later

Generators (each writes a table and its truth once per size, under bench-output/scale-work/):
- `seeded`: the sandbox's own contacts (`contactsync sandbox --seed 42 --export-seed`);
- `holdout`: bench/holdout.py (written apart from the sandbox's);
- `crowded`: bench/crowded.py (Zipf names in six cities: namesakes crowd every town).

Per generator and size: `--repeat` runs (default 3) of `contactsync dedupe --json` under GNU time
(the median wall seconds, the largest peak RSS, the median run's phase times and its user and
system CPU seconds),
then pairwise precision, recall and F1 of the clusters against the truth, the number of
candidate and accepted pairs and the largest cluster. Results go to bench-output/scale.jsonl and,
as one table, bench-output/scale.md. Needs duckdb (pip install duckdb) and a built binary
(target/release/contactsync; CONTACTSYNC_BIN overrides). A 10 M table takes a few minutes to
generate (holdout.py's: about 30 minutes and 3.4 GiB) and about 10 GiB to deduplicate.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench-output"
WORK = OUT / "scale-work"
# People per generator for a table of about `size` records (each makes ~1.5 records a person).
PEOPLE_PER_RECORD = {"holdout": 1 / 1.47, "crowded": 1 / 1.59}


# crowded.py holds one table in memory (about 1 GiB a million rows), so its tables of whole
# millions over 1 M are tiles of this size, each from its own seed, drawing phone numbers and
# email addresses from one pool (see crowded.py --tiles); the first tile is the 1 M table with
# `t0_` in front of its ids. holdout.py writes a million people at a time and keeps phones,
# mailboxes and domains unique across the whole table.
TILE = 1_000_000
# Written beside a tiled crowded table: its tiles drew from one pool. A table of tiles made apart
# (before bd50724) lacks it and is made again instead of timed as if it were the same data.
ONE_POOL = "one-pool"


def generate(generator, size, binary):
    """Writes data.csv and truth.csv (id, person) for one generator and size; returns the dir."""
    d = WORK / f"{generator}-{size}"
    tiles = size // TILE if generator == "crowded" and size > TILE and size % TILE == 0 else 1
    made = (d / "data.csv").exists() and (d / "truth.csv").exists()
    if made and (tiles == 1 or (d / ONE_POOL).exists()):
        return d
    d.mkdir(parents=True, exist_ok=True)
    print(f"generating {generator} at {size:,}...", file=sys.stderr)
    if generator == "seeded":
        subprocess.run([binary, "sandbox", "--seed", "42", "--contacts", str(size), "--messages", "0",
                        "--export-seed", str(d)], check=True, stdout=subprocess.DEVNULL)
        (d / "contacts.csv").rename(d / "data.csv")
    elif generator == "holdout":
        people = round(size * PEOPLE_PER_RECORD["holdout"])
        subprocess.run([sys.executable, str(REPO / "bench/holdout.py"), "generate", "--entities",
                        str(people), "--seed", "1", "--out", str(d)], check=True,
                       stdout=subprocess.DEVNULL)
        # holdout.py names the person entity_id.
        with open(d / "truth.csv") as src, open(d / "truth.tmp", "w") as dst:
            next(src)
            dst.write("id,person\n")
            dst.writelines(src)
        (d / "truth.tmp").rename(d / "truth.csv")
    elif generator == "crowded":
        people = round(size // tiles * PEOPLE_PER_RECORD["crowded"])
        subprocess.run([sys.executable, str(REPO / "bench/crowded.py"), "--people", str(people),
                        "--seed", "3", "--tiles", str(tiles), "--out", str(d)], check=True,
                       stdout=subprocess.DEVNULL)
        if tiles > 1:
            (d / ONE_POOL).write_text("tiles drew phone numbers and email addresses from one pool\n")
    else:
        sys.exit(f"unknown generator {generator}")
    return d


def accuracy(d):
    import duckdb
    con = duckdb.connect()
    con.sql(f"create view t as select id, person from read_csv('{d}/truth.csv', all_varchar=true)")
    con.sql(f"create view c as select id, cluster_id from read_parquet('{d}/clusters.parquet')")
    q = lambda s: float(con.sql(s).fetchall()[0][0] or 0)
    tp = q("select sum(n*(n-1)/2) from (select count(*) n from c join t using(id) group by cluster_id, person)")
    pred = q("select sum(n*(n-1)/2) from (select count(*) n from c group by cluster_id)")
    true = q("select sum(n*(n-1)/2) from (select count(*) n from t group by person)")
    largest = q("select max(n) from (select count(*) n from c group by cluster_id)")
    rows = q("select count(*) from c")
    p, r = tp / max(pred, 1), tp / max(true, 1)
    return {"rows": int(rows), "precision": round(p, 4), "recall": round(r, 4),
            "f1": round(2 * p * r / max(p + r, 1e-12), 4), "true_pairs": int(true),
            "predicted_pairs": int(pred), "largest_cluster": int(largest)}


def audit(d):
    """Which people share an email mailbox, a phone number or a company's email domain in DIR (a
    holdout table: data.csv, truth.csv and kinds.csv), and whether the generator planted it: two
    people sharing one are planted when they belong to one household, company, Jr./Sr. or twin
    group. Anything else is a repeat no matcher can tell apart from a duplicate."""
    import duckdb
    sys.path.insert(0, str(REPO / "bench"))
    from holdout import DOMAIN_TYPOS, EMAIL_DOMAINS
    free = sorted({m for t in EMAIL_DOMAINS.values() for m in t}
                  | {m for t in DOMAIN_TYPOS.values() for m in t} | {"googlemail.com"})
    con = duckdb.connect()
    # A 10 M table's keys fit in a few GiB; the rest spills to disk.
    con.sql("set preserve_insertion_order = false")
    con.sql("set memory_limit = '4GB'")
    con.sql(f"""create table r as select t.person, k.groups, lower(trim(d.email)) em,
        regexp_replace(regexp_replace(coalesce(d.phone, ''), '\\s*(ext\\.?|x)\\s*\\d+\\s*$', ''),
                       '\\D', '', 'g') ph
        from read_csv('{d}/data.csv', all_varchar=true) d
        join read_csv('{d}/truth.csv', all_varchar=true) t using (id)
        join read_csv('{d}/kinds.csv', all_varchar=true) k using (id)""")
    # The mailbox as holdout.py's email_key reads it; the number in E.164 digits, from the forms
    # holdout.py writes (national NANP, GB 0 + 10 digits, AU 0 + 9 digits, 00, +44 (0)).
    con.sql("""create table keys as
        with e as (select person, groups,
                regexp_replace(split_part(split_part(em, '@', 1), '+', 1), '\\.', '', 'g') || '@' ||
                replace(split_part(em, '@', 2), 'googlemail.com', 'gmail.com') k from r where em <> ''),
             p0 as (select person, groups, case when starts_with(ph, '00') then ph[3:] else ph end ph
                    from r where ph <> ''),
             p as (select person, groups, case
                    when starts_with(ph, '440') then '44' || ph[4:]
                    when length(ph) = 10 and ph[1] <> '0' then '1' || ph
                    when length(ph) = 11 and ph[1] = '0' then '44' || ph[2:]
                    when length(ph) = 10 and ph[1] = '0' then '61' || ph[2:]
                    else ph end k from p0)
        select distinct 'email' field, k, person, groups from e
        union all select distinct 'phone', k, person, groups from p
        union all select distinct 'company domain', split_part(k, '@', 2), person, groups from e""")
    con.sql(f"delete from keys where field = 'company domain' and k in {tuple(free)}")
    # Namesake groups are names, not planted shares.
    con.sql("""create table pairs as
        select a.field, a.k,
               list_has_any(list_filter(string_split(coalesce(a.groups, ''), ';'), lambda g: g <> '' and not starts_with(g, 'namesake')),
                            list_filter(string_split(coalesce(b.groups, ''), ';'), lambda g: g <> '' and not starts_with(g, 'namesake'))) planted
        from keys a join keys b on a.field = b.field and a.k = b.k and a.person < b.person""")
    people = con.sql("select count(distinct person) from r").fetchall()[0][0]
    out = {"people": people}
    for field, in con.sql("select distinct field from keys order by 1").fetchall():
        shared, planted, unplanted, sharers = con.sql(f"""select
            (select count(distinct k) from pairs where field = '{field}'),
            (select count(*) from pairs where field = '{field}' and planted),
            (select count(*) from pairs where field = '{field}' and not planted),
            (select count(distinct person) from keys where field = '{field}' and k in
                (select k from pairs where field = '{field}'))""").fetchall()[0]
        out[field] = {"keys_shared": shared, "planted_pairs": planted, "unplanted_pairs": unplanted,
                      "people_sharing": sharers, "share_of_people": round(sharers / people, 4)}
    return out


def run(generator, size, binary, model, repeat):
    """`repeat` timed dedupes of one table: the median wall time (a 10 M run on a shared virtual
    machine varies by a fifth from one run to the next), the largest peak RSS, and the phase
    times of the median run."""
    d = generate(generator, size, binary)
    subprocess.run(["cat", str(d / "data.csv")], stdout=subprocess.DEVNULL, check=True)
    cmd = ["/usr/bin/time", "-f", "%e %M %U %S", "-o", str(d / "time.txt"), binary, "dedupe", "--input",
           str(d / "data.csv"), "--out", str(d / "clusters.parquet"), "--json"]
    if model:
        cmd += ["--model", model]
    runs = []
    for _ in range(repeat):
        with open(d / "report.json", "w") as out, open(d / "stderr.log", "w") as err:
            code = subprocess.run(cmd, stdout=out, stderr=err).returncode
        wall, rss_kb, user, system = open(d / "time.txt").read().split()[-4:]
        report = json.loads(open(d / "report.json").read().strip().splitlines()[-1])
        runs.append((float(wall), int(rss_kb), code, report.get("counts", {}),
                     float(user), float(system)))
    walls = sorted(r[0] for r in runs)
    wall, _, code, counts, user, system = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
    result = {"generator": generator, "size": size, "exit": max(r[2] for r in runs),
              "wall_seconds": wall, "wall_seconds_all": walls,
              # CPU of the median run: system time is mostly the kernel handing out and zeroing
              # fresh pages, which a virtual machine can make cost far more than in proportion.
              "user_seconds": user, "system_seconds": system,
              "peak_rss_mib": round(max(r[1] for r in runs) / 1024), **accuracy(d),
              "candidate_pairs": counts.get("candidate_pairs"),
              "accepted_pairs": counts.get("accepted_pairs"),
              "clusters_refused": counts.get("clusters_refused"),
              "phase_ms": {k[3:]: v for k, v in counts.items() if k.startswith("ms.")}}
    if os.environ.get("CONTACTSYNC_COMMIT"):
        result["commit"] = os.environ["CONTACTSYNC_COMMIT"]
    print(json.dumps(result), file=sys.stderr)
    return result


def table(results):
    lines = ["| generator | rows | F1 | precision | recall | largest cluster | wall s | peak RSS MiB | candidate pairs |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in sorted(results, key=lambda r: (r["generator"], r["size"])):
        lines.append(f"| {r['generator']} | {r['rows']:,} | {r['f1']:.4f} | {r['precision']:.4f} | "
                     f"{r['recall']:.4f} | {r['largest_cluster']:,} | {r['wall_seconds']:.1f} | "
                     f"{r['peak_rss_mib']:,} | {r['candidate_pairs'] or 0:,} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--generators", default="seeded,holdout,crowded")
    ap.add_argument("--model", help="match model (default: the binary's, the contacts model)")
    ap.add_argument("--append", action="store_true", help="keep other results in scale.jsonl")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed runs per table; the median wall time is reported (default 3)")
    ap.add_argument("--score-only", help="score DIR/clusters.parquet against DIR/truth.csv")
    ap.add_argument("--audit", help="people sharing an email, phone or company domain in DIR, a "
                                    "holdout table, planted (household, company...) or not")
    ap.add_argument("--generate-only", action="store_true",
                    help="write the tables and truths only (to time the runs later on a quiet machine)")
    a = ap.parse_args()
    if a.audit:
        print(json.dumps(audit(Path(a.audit)), indent=1))
        return
    if a.score_only:
        print(json.dumps(accuracy(Path(a.score_only))))
        return
    binary = os.environ.get("CONTACTSYNC_BIN", str(REPO / "target/release/contactsync"))
    if not os.access(binary, os.X_OK):
        sys.exit(f"no {binary}: build it first (cargo build --release) or set CONTACTSYNC_BIN")
    OUT.mkdir(exist_ok=True)
    path = OUT / "scale.jsonl"
    wanted = [(g, int(s)) for g in a.generators.split(",") for s in a.sizes.split(",")]
    if a.generate_only:
        for g, s in wanted:
            print(generate(g, s, binary))
        return
    kept = []
    if a.append and path.exists():
        kept = [json.loads(l) for l in open(path) if l.strip()]
        kept = [r for r in kept if (r["generator"], r["size"]) not in wanted]
    results = kept + [run(g, s, binary, a.model, a.repeat) for g, s in wanted]
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in results)
    (OUT / "scale.md").write_text(table(results) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
