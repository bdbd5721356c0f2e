"""Compare the headline metrics of two runs of the same experiment (e.g. before and after a
refactor). A thin wrapper around `innerlab compare`, which this script became part of: the
headlines are each experiment's `HEADLINES` (its config.py), and B - A is paired by seed.

    python benchmarks/compare_runs.py BEFORE_RUN_DIR AFTER_RUN_DIR [--out DIR]

A refactor that changes no number shows every difference as 0.000 [0.000, 0.000] and the note
"The two runs' metrics are identical, value for value."
"""

from __future__ import annotations

import sys

import innerlab  # noqa: F401  (before jax, as everywhere)
from innerlab.cli import main as innerlab_main


def main(argv=None) -> int:
    return innerlab_main(["compare", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
