#!/usr/bin/env python3
"""Copies pipelines/nightly.toml into deploy/kubernetes/configmap.yaml (tests/deploy.rs holds them
equal): run it after editing the pipeline file."""
from pathlib import Path

root = Path(__file__).resolve().parent.parent
configmap = root / "deploy/kubernetes/configmap.yaml"
lines = configmap.read_text().split("\n")
head = lines[: lines.index("  nightly.toml: |") + 1]
body = (root / "pipelines/nightly.toml").read_text().rstrip("\n").split("\n")
configmap.write_text("\n".join(head + [("    " + l) if l else "" for l in body]) + "\n")
