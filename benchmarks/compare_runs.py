"""Compare the headline metrics of two runs of the same experiment (e.g. before and after a
refactor): mean and 95% bootstrap CI over seeds per group, and whether the new mean lies inside
the old run's CI.

    python benchmarks/compare_runs.py BEFORE_RUN_DIR AFTER_RUN_DIR [--markdown]

The headline metrics per experiment are the ones the experiment-kit issue (#15) named:
side-channels' follow index, unidentifiability's objective generalisation at diversity 0.2 and
Maze corner share, cross-episodic's P(cooperate) (unit test) per regime, robust-reward's EPIC per
adversary, zero-shot's EPIC to the truth per agent.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from innerlab.report.stats import bootstrap_ci

# experiment -> list of (label, row filter, group-by columns)
HEADLINES = {
    "side-channels": [("follow index (swap)", dict(metric="follow_index", perturbation="swap"), ["channel", "p", "arch"])],
    "unidentifiability": [
        ("objective generalisation, diversity 0.2 (pairs)",
         dict(metric="objective_generalisation", suite="pairs", task="proxies", diversity=0.2), ["arch", "width", "depth", "total_steps"]),
        ("Maze corner share (test)", dict(metric="corner_share", suite="test", task="maze"), ["arch", "diversity"]),
    ],
    "cross-episodic": [("P(cooperate), unit test", dict(metric="exploitation_rate", stage="final", env="pd"),
                        ["regime", "interval", "population"])],
    "robust-reward": [("EPIC after adversarial training", dict(metric="epic", stage="after"), ["training", "adversary", "support"])],
    "zero-shot": [("EPIC to the truth", dict(metric="epic_to_true"), ["agent", "env"])],
}


def _select(rows: pd.DataFrame, where: dict) -> pd.DataFrame:
    mask = np.ones(len(rows), bool)
    for column, value in where.items():
        mask &= np.isclose(rows[column], value) if isinstance(value, float) else (rows[column] == value).to_numpy()
    return rows[mask]


def compare(before: Path, after: Path) -> pd.DataFrame:
    name = json.loads((before / "config.json").read_text())["experiment"]
    other = json.loads((after / "config.json").read_text())["experiment"]
    if name != other:
        raise SystemExit(f"compare_runs: {before} is {name}, {after} is {other}")
    old, new = (pd.read_parquet(d / "metrics.parquet") for d in (before, after))
    records = []
    for label, where, by in HEADLINES[name]:
        a, b = _select(old, where), _select(new, where)
        for keys, group in a.groupby(by, sort=False):
            keys = keys if isinstance(keys, tuple) else (keys,)
            match = b
            for column, key in zip(by, keys):
                match = match[match[column] == key]
            m0, l0, h0 = bootstrap_ci(group.value.to_numpy())
            m1, l1, h1 = bootstrap_ci(match.value.to_numpy())
            inside = bool(l0 - 1e-12 <= m1 <= h0 + 1e-12) if np.isfinite(m1) and np.isfinite(m0) else None
            records.append({"experiment": name, "metric": label,
                            "group": ", ".join(f"{c}={k}" for c, k in zip(by, keys)),
                            "before": f"{m0:.3f} [{l0:.3f}, {h0:.3f}]", "after": f"{m1:.3f} [{l1:.3f}, {h1:.3f}]",
                            "after mean in before CI": {True: "yes", False: "NO", None: "n/a"}[inside],
                            "identical": bool(np.array_equal(np.sort(group.value.to_numpy()),
                                                             np.sort(match.value.to_numpy()), equal_nan=True))})
    return pd.DataFrame(records)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    table = compare(args.before, args.after)
    if args.markdown:
        from innerlab.report.render import markdown_table

        print(markdown_table(table))
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60):
            print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
