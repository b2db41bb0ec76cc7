#!/usr/bin/env python3
"""Checks the user docs: every relative link in README.md and docs/*.md reaches a file (and its
`#anchor`, when it names one, reaches a heading there), and README.md stays a guide (under
README_MAX_BYTES; detail belongs in docs/).

Run from anywhere: `python3 scripts/check-docs.py` (exit 0 clean, 1 with findings).
"""

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README_MAX_BYTES = 18_000
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`[^`]*`")


def anchor(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    found = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            found.add(anchor(line.lstrip("#")))
    return found


def findings():
    out = []
    readme = REPO / "README.md"
    size = readme.stat().st_size
    if size > README_MAX_BYTES:
        out.append(f"README.md: {size:,} bytes, over {README_MAX_BYTES:,}: move detail to docs/")
    for doc in [readme, *sorted((REPO / "docs").glob("*.md"))]:
        in_code = False
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("```"):
                in_code = not in_code
            if in_code:
                continue
            for target in LINK.findall(CODE_SPAN.sub("", line)):
                if re.match(r"^[a-z]+:", target):
                    continue  # http(s):, mailto: and the like
                file_part, _, fragment = target.partition("#")
                dest = (doc.parent / file_part).resolve() if file_part else doc
                where = f"{doc.relative_to(REPO)}:{number}"
                if not dest.exists():
                    out.append(f"{where}: link to {target}: no such file")
                elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
                    out.append(f"{where}: link to {target}: no heading #{fragment} in {file_part or doc.name}")
    return out


def main():
    problems = findings()
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
