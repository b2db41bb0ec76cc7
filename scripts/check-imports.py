#!/usr/bin/env python3
"""Checks the crate's module graph: no import circle, no import the layering table forbids, no long
file without a stated reason.

Run from anywhere: `python3 scripts/check-imports.py` (exit 0 clean, 1 with findings, 2 on usage).

What is a node: one source file under src/. A folder's `mod.rs` is that folder's file, `lib.rs` is
the crate root; `main.rs` is its own node and its `contactsync::` paths count as `crate::` paths.

What is an arrow A -> B (A uses something B defines), read from A's code with comments and string
literals removed:
  * every path in a `use` declaration (brace groups expanded): `crate::`, `super::`, `self::`, and
    paths starting with a child module that A declares (`mod x;` / `pub mod x;`);
  * every inline path in the code: `crate::a::b::c`, `super::x`, `self::x::y`, `child::x`, and
    `alias::x` where `alias` is a module brought in by a `use` (e.g. `use crate::api;` then
    `api::http::ApiClient`).
A path is resolved to the deepest module file that exists along it: `crate::api::http::ApiClient`
is src/api/http.rs, `crate::api::ApiError` is src/api/mod.rs.

What is not an arrow:
  * anything a folder's `mod.rs` (or `lib.rs`) says about its own descendants: `mod x;`
    declarations, re-exports (`pub use x::Y`) and dispatch (`x::run()`). A folder contains its
    parts; it is the parts' arrows that matter. A child using its parent (`super::X`) IS an arrow,
    so a circle that passes through a folder's face still shows (child -> face -> elsewhere -> child);
  * paths into `std`, external crates, and `#[cfg(test)]` items (tests may import across the tree
    freely; the check is about the library's own structure).

Layering (this crate; another crate root is checked for layers only with `--layers TABLE.json`):
the table LAYERS below is docs/architecture.md's "What each module may import", by
top-level module (`src/<name>/` or `src/<name>.rs`; `main.rs` is `main`, `lib.rs` the crate face).
Every arrow from one top-level module to another must be allowed there, either as a whole module
(`"snapshot"`) or as one part of it (`"snapshot::atomic"`: that file or folder only). A top-level
module missing from the table is itself a finding, so a new one is placed in the layers when it is
made. Arrows inside one top-level module are free (a stage uses its own parts).

Long files: a file over 600 lines must say why within its first 10 lines, in a comment containing
`Over 600 lines because` (e.g. `//! Over 600 lines because the schema and its tests belong
together.`). The reason lives in the file; there is no allowlist here.

Output: each circle (a strongly connected component of more than one file) with the arrows inside
it as `from:line -> to (path)`, then each arrow the layering forbids, then each long file without a
reason.
"""

import json
import os
import re
import sys
from collections import defaultdict

MAX_LINES = 600
REASON_MARK = "Over 600 lines because"
REASON_WINDOW = 10

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"

# What each top-level module may import besides itself (docs/architecture.md keeps the same table,
# with the reasons). Leaves import nothing of the crate; the shared modules (normalize, matching)
# sit above snapshot and below the stages; a stage never imports another stage.
LEAVES = ["clock", "env_vars", "exit_code", "secret", "sms_encoding"]
STAGES = ["extract", "transform", "load", "audit", "migrate"]
LAYERS = {
    "clock": [],
    "env_vars": [],
    "exit_code": [],
    "sms_encoding": [],
    "secret": ["env_vars"],
    # The other side of the wire: knows nothing of the pipeline.
    "sandbox": LEAVES,
    # The HTTP layer; each client takes its own config section (api::config), never config.rs.
    "api": LEAVES + ["snapshot::atomic"],
    # Files between stages and their row types. The manifest records the HTTP metrics, the object
    # store follows the [http] retry policy, the ledger reader reads the Postgres ledger too.
    "snapshot": LEAVES + ["api::http", "api::config", "state::pg"],
    # Where a location's ledger and lock live. Opening the ledger writer of load/ is the one arrow
    # from a shared module into a stage; listed here so that it stays the only one.
    "state": LEAVES + ["snapshot", "load::ledger"],
    # Shared domain code: what a normalised phone, email or name is; the record matcher.
    "normalize": LEAVES + ["snapshot"],
    "matching": LEAVES + ["snapshot", "normalize"],
    # The stages.
    "extract": LEAVES + ["api", "snapshot", "state", "normalize"],
    "transform": LEAVES + ["snapshot", "normalize", "matching"],
    "load": LEAVES + ["api", "snapshot", "state", "normalize"],
    "audit": LEAVES + ["snapshot", "normalize"],
    "migrate": LEAVES + ["snapshot", "normalize", "matching"],
    # The webhook receiver: its own config section and GHL's auth section.
    "serve": LEAVES + ["api::config"],
    # The pipeline file: each stage's config section lives in its stage.
    "config": LEAVES + ["api", "snapshot", "state", "serve"] + STAGES,
    # Runs the stages; the CLI parses and prints around it.
    "pipeline": LEAVES
    + ["api", "snapshot", "state", "normalize", "matching", "config", "serve"]
    + STAGES,
    # The edge: parses, calls pipeline (or a stage for the commands that are not nightly stages),
    # prints; `demo` and `sandbox` start the sandbox.
    "cli": LEAVES
    + ["api", "snapshot", "state", "normalize", "matching", "config", "serve", "pipeline", "sandbox"]
    + STAGES,
    "logging": ["cli"],
    "main": ["cli", "exit_code", "logging", "snapshot::atomic"],
}


def strip_comments_and_strings(text):
    """Blanks comments, string and char literals, keeping newlines so line numbers hold."""
    out = []
    i = 0
    n = len(text)
    depth = 0
    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if depth:
            if c == "/" and nxt == "*":
                depth += 1
                out.append("  ")
                i += 2
            elif c == "*" and nxt == "/":
                depth -= 1
                out.append("  ")
                i += 2
            else:
                out.append("\n" if c == "\n" else " ")
                i += 1
            continue
        if c == "/" and nxt == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
            continue
        if c == "/" and nxt == "*":
            depth = 1
            out.append("  ")
            i += 2
            continue
        raw = re.match(r'r(#*)"', text[i:i + 10])
        if raw and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = raw.group(1)
            end = text.find('"' + hashes, i + len(raw.group(0)))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
            continue
        if c == "'":
            # A char literal ('a', '\n', '\u{1F600}'); a lifetime ('a) has no closing quote nearby.
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:i + 12])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
                continue
        out.append(c)
        i += 1
    return "".join(out)


def blank_test_modules(code):
    """Blanks the bodies of `#[cfg(test)]` items (test modules may import across the tree)."""
    chars = list(code)
    for m in re.finditer(r"#\[cfg\(test\)\]", code):
        start = code.find("{", m.end())
        semi = code.find(";", m.end())
        if start < 0 or (0 <= semi < start):
            continue
        depth = 0
        j = start
        while j < len(code):
            if code[j] == "{":
                depth += 1
            elif code[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        for k in range(m.start(), min(j + 1, len(code))):
            if chars[k] != "\n":
                chars[k] = " "
    return "".join(chars)


def module_of(rel):
    """src-relative file path -> module path tuple (() for the crate root)."""
    parts = rel[:-3].split("/")
    if parts == ["lib"] or parts == ["main"]:
        return ()
    if parts[-1] == "mod":
        parts = parts[:-1]
    return tuple(parts)


def expand_use_tree(tree):
    """`a::{b, c::{d, e as f}, self}` -> [([a,b],None), ([a,c,d],None), ([a,c,e],"f"), ([a],None)]."""
    tree = re.sub(r"\s+as\s+(" + IDENT + r")", r"@\1", tree)
    tree = re.sub(r"\s+", "", tree)
    results = []

    def split_top(s):
        items, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                items.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            items.append(cur)
        return items

    def walk(prefix, s):
        brace = s.find("{")
        if brace >= 0 and s.endswith("}"):
            head = s[:brace].rstrip(":")
            head_parts = [p for p in head.split("::") if p] if head else []
            for item in split_top(s[brace + 1:-1]):
                walk(prefix + head_parts, item)
            return
        alias = None
        if "@" in s:
            s, alias = s.split("@", 1)
        parts = [p for p in s.split("::") if p]
        if parts == ["self"]:
            results.append((prefix, alias))
        elif parts == ["*"]:
            results.append((prefix, alias))
        else:
            results.append((prefix + parts, alias))

    walk([], tree)
    return results


class Crate:
    def __init__(self, src):
        self.src = src
        self.files = {}  # rel -> module path
        self.modules = {}  # module path -> rel (lib.rs for ())
        for root, _, names in os.walk(src):
            for name in names:
                if name.endswith(".rs"):
                    rel = os.path.relpath(os.path.join(root, name), src).replace(os.sep, "/")
                    self.files[rel] = module_of(rel)
        for rel, mod in self.files.items():
            if rel != "main.rs":
                self.modules[mod] = rel

    def resolve(self, base, parts):
        """Absolute segment list -> the deepest existing module file along it."""
        best = None
        for k in range(len(parts), -1, -1):
            key = tuple(parts[:k])
            if key in self.modules:
                best = self.modules[key]
                break
        return best

    def is_descendant(self, rel, mod):
        """Whether file `rel` lies inside module `mod`'s folder (and is not `mod` itself)."""
        target = self.files[rel]
        return len(target) > len(mod) and target[: len(mod)] == mod

    def is_module(self, parts):
        return tuple(parts) in self.modules


def absolutize(crate, rel, mod, parts, child_mods, aliases):
    """A path as written in file `rel` (module `mod`) -> absolute segments, or None if external."""
    if not parts:
        return None
    head = parts[0]
    if head in ("crate", "contactsync"):
        if head == "contactsync" and rel != "main.rs":
            return None
        return list(parts[1:])
    if rel == "main.rs":
        return None
    own = list(mod)
    if head == "self":
        return own + list(parts[1:])
    if head == "super":
        base = own
        k = 0
        while k < len(parts) and parts[k] == "super":
            base = base[:-1]
            k += 1
        return base + list(parts[k:])
    if head in child_mods:
        return own + list(parts)
    if head in aliases:
        return list(aliases[head]) + list(parts[1:])
    return None


USE_RE = re.compile(r"\b(pub(?:\s*\([^)]*\))?\s+)?use\s+([^;]+);", re.S)
INLINE_RE = re.compile(r"(?<![A-Za-z0-9_:])((?:" + IDENT + r")(?:\s*::\s*(?:" + IDENT + r"))+)")
MOD_DECL_RE = re.compile(r"\b(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;")


def line_of(code, pos):
    return code.count("\n", 0, pos) + 1


def edges_of(crate, rel):
    path = os.path.join(crate.src, rel)
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    code = blank_test_modules(strip_comments_and_strings(text))
    mod = crate.files[rel]
    child_mods = set(MOD_DECL_RE.findall(code))
    is_face = os.path.basename(rel) in ("mod.rs", "lib.rs")
    aliases = {}
    edges = []  # (line, target rel, written path)
    use_spans = []

    for m in USE_RE.finditer(code):
        use_spans.append((m.start(), m.end()))
        is_pub = bool(m.group(1))
        line = line_of(code, m.start())
        for parts, alias in expand_use_tree(m.group(2)):
            absolute = absolutize(crate, rel, mod, parts, child_mods, aliases)
            if absolute is None:
                continue
            target = crate.resolve(mod, absolute)
            if target is None or target == rel:
                continue
            if crate.is_module(absolute) and parts:
                aliases[alias or parts[-1]] = tuple(absolute)
            if is_face and crate.is_descendant(target, mod):
                continue  # a folder's face re-exporting or dispatching to its own contents
            edges.append((line, target, "::".join(parts)))

    def inside_use(pos):
        return any(a <= pos < b for a, b in use_spans)

    for m in INLINE_RE.finditer(code):
        if inside_use(m.start()):
            continue
        parts = [p.strip() for p in m.group(1).split("::")]
        absolute = absolutize(crate, rel, mod, parts, child_mods, aliases)
        if absolute is None:
            continue
        target = crate.resolve(mod, absolute)
        if target is None or target == rel:
            continue
        if is_face and crate.is_descendant(target, mod):
            continue
        edges.append((line_of(code, m.start()), target, "::".join(parts)))
    return edges, text


def top_module(crate, rel):
    """The top-level module a file belongs to: `api`, `clock`, ...; `main` for main.rs, `` for lib.rs."""
    if rel == "main.rs":
        return "main"
    mod = crate.files[rel]
    return mod[0] if mod else ""


def layering_findings(crate, edges_by_file, layers):
    """Arrows between top-level modules that `layers` does not allow, and modules it does not list."""
    findings = []
    unlisted = set()
    for rel, edges in sorted(edges_by_file.items()):
        source = top_module(crate, rel)
        if source == "":
            continue  # lib.rs declares the modules; it is no layer
        if source not in layers:
            unlisted.add(source)
            continue
        allowed = [tuple(a.split("::")) for a in layers[source]]
        for line, target, written in edges:
            target_top = top_module(crate, target)
            if target_top in (source, ""):
                continue
            mod = crate.files[target]
            if any(mod[: len(a)] == a for a in allowed):
                continue
            findings.append(
                f"src/{rel}:{line} -> src/{target}  ({written}): `{source}` may not import "
                f"`{target_top}` (docs/architecture.md, \"What each module may import\")"
            )
    for module in sorted(unlisted):
        findings.append(
            f"src/{module}: a top-level module the layering table (LAYERS) does not list; add it "
            "there and to docs/architecture.md"
        )
    return findings


def strongly_connected(nodes, graph):
    index = {}
    low = {}
    on_stack = set()
    stack = []
    out = []
    counter = [0]

    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = argv[1:]
    layers = LAYERS
    if "--layers" in args:
        # Another crate's table (JSON: module -> allowed imports), for the script's own tests.
        i = args.index("--layers")
        if i + 1 >= len(args):
            print("usage: check-imports.py [crate root [--layers TABLE.json]]", file=sys.stderr)
            return 2
        with open(args[i + 1], encoding="utf-8") as fh:
            layers = json.load(fh)
        del args[i : i + 2]
    elif args:
        layers = None  # LAYERS is this crate's table; another crate has its own or none
    if len(args) > 1:
        print("usage: check-imports.py [crate root [--layers TABLE.json]]", file=sys.stderr)
        return 2
    if args:
        root = args[0]
    src = os.path.join(root, "src")
    if not os.path.isdir(src):
        print(f"check-imports: no src/ under {root}", file=sys.stderr)
        return 2
    crate = Crate(src)
    graph = defaultdict(set)
    first_edge = {}
    long_files = []
    edges_by_file = {}
    for rel in sorted(crate.files):
        edges, text = edges_of(crate, rel)
        edges_by_file[rel] = edges
        for line, target, written in edges:
            graph[rel].add(target)
            key = (rel, target)
            if key not in first_edge:
                first_edge[key] = (line, written)
        lines = text.splitlines()
        if len(lines) > MAX_LINES:
            head = lines[:REASON_WINDOW]
            if not any(REASON_MARK in l and l.lstrip().startswith("//") for l in head):
                long_files.append((rel, len(lines)))

    circles = [c for c in strongly_connected(crate.files.keys(), graph) if len(c) > 1]
    for comp in circles:
        members = set(comp)
        print(f"import circle of {len(comp)} files:")
        for a in comp:
            for b in sorted(graph[a] & members):
                line, written = first_edge[(a, b)]
                print(f"  src/{a}:{line} -> src/{b}  ({written})")
    layering = layering_findings(crate, edges_by_file, layers) if layers is not None else []
    for finding in layering:
        print(finding)
    for rel, count in long_files:
        print(
            f"src/{rel}: {count} lines (over {MAX_LINES}) and no `{REASON_MARK} ...` comment "
            f"in its first {REASON_WINDOW} lines"
        )
    if circles or layering or long_files:
        print(
            f"check-imports: {len(circles)} import circle(s), {len(layering)} import(s) across "
            f"the layers, {len(long_files)} long file(s) without a reason",
            file=sys.stderr,
        )
        return 1
    print(
        f"check-imports: {len(crate.files)} files, no import circle, no import across the layers, "
        "no unexplained long file"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
