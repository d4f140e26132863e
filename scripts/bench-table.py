#!/usr/bin/env python3
"""Prints the framework-versus-raw table of benches/README.md from criterion's saved estimates.

Usage: scripts/bench-table.py [CRITERION_DIR]   (default: $CARGO_TARGET_DIR/criterion, else
~/.cache/pinvault/target/criterion). Every group directory holding a `raw` function becomes one
row per other function: the median of each with criterion's 95% interval, and the ratio of the
medians (function / raw). Run it right after `cargo bench -p pinvault-benches`, so every row
comes from the same run.
"""

import json
import os
import sys
from pathlib import Path


def median(path: Path):
    est = json.loads((path / "new" / "estimates.json").read_text())["median"]
    ci = est["confidence_interval"]
    return est["point_estimate"], ci["lower_bound"], ci["upper_bound"]


def human(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def main() -> int:
    default = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/pinvault/target"))
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else default / "criterion"
    if not root.is_dir():
        print(f"no criterion results under {root}: run cargo bench -p pinvault-benches", file=sys.stderr)
        return 1
    print("| group | variant | median [95% CI] | raw median [95% CI] | ratio |")
    print("|---|---|---|---|---|")
    for group in sorted(p for p in root.iterdir() if (p / "raw" / "new").is_dir()):
        raw = median(group / "raw")
        for variant in sorted(p for p in group.iterdir() if (p / "new").is_dir() and p.name != "raw"):
            m = median(variant)
            print(
                f"| {group.name.replace('_', '/', 1)} | {variant.name} "
                f"| {human(m[0])} [{human(m[1])}, {human(m[2])}] "
                f"| {human(raw[0])} [{human(raw[1])}, {human(raw[2])}] "
                f"| {m[0] / raw[0]:.2f}× |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
