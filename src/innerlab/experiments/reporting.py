"""Shared report helpers for experiments: row selection, intervals, and controls as checks.

    sel = select(rows, metric="follow_index", perturbation="swap", channel="prev")
    mean, low, high = ci(rows, "follow_index", perturbation="swap", channel="prev")
    checks = [Check("prev, p = 1: must follow", "follow index >= 0.8, CI low > 0.5",
                    format_ci(mean, low, high), mean >= 0.8 and low > 0.5)]
    section = controls_section(checks, "All controls pass: ...")

A `Check` with `passed=None` is reported without a threshold (a chance level, say). The slow
test tier requires every check of every experiment to PASS at its quick preset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from innerlab.report.document import Section
from innerlab.report.stats import bootstrap_ci, format_ci

PASS, FAIL, REPORTED = "PASS", "FAIL", "-"
CONTROL_COLUMNS = ("control", "criterion", "measured", "result")


@dataclass(frozen=True)
class Check:
    """One control: what it is, the criterion, the measurement (with its CI) and the verdict."""

    name: str
    criterion: str
    measured: str
    passed: bool | None
    """True / False, or None for a measurement reported with no threshold."""

    @property
    def result(self) -> str:
        return REPORTED if self.passed is None else PASS if self.passed else FAIL


def select(rows: pd.DataFrame, **where) -> pd.DataFrame:
    """Rows whose column `k` equals `v` for every `k=v` (a list, tuple or set `v` matches any
    of its values). An unknown column raises KeyError."""
    mask = np.ones(len(rows), bool)
    for column, value in where.items():
        col = rows[column]
        mask &= col.isin(list(value)).to_numpy() if isinstance(value, (list, tuple, set)) else (col == value).to_numpy()
    return rows[mask]


def ci(rows: pd.DataFrame, metric: str | None = None, **where) -> tuple[float, float, float]:
    """(mean, low, high): the 95% bootstrap interval over seeds of the selected rows' values
    (three NaNs if none)."""
    if metric is not None:
        where["metric"] = metric
    return bootstrap_ci(select(rows, **where)["value"].to_numpy())


def ci_text(rows: pd.DataFrame, metric: str | None = None, digits: int = 2, **where) -> str:
    """`ci` formatted: '0.83 [0.71, 0.92]' (or 'n/a')."""
    return format_ci(*ci(rows, metric, **where), digits=digits)


def checks_table(checks: list[Check]) -> pd.DataFrame:
    return pd.DataFrame([{"control": c.name, "criterion": c.criterion, "measured": c.measured,
                          "result": c.result} for c in checks], columns=list(CONTROL_COLUMNS))


def failed(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.passed is False]


def controls_section(checks: list[Check], pass_text: str, fail_text: str = "", extra: str = "") -> Section:
    """The report's "Controls" section: a verdict paragraph and the checks as a table.

    pass_text: what passing shows (the measurement can tell the hypotheses apart). fail_text
    follows the count of failures (default: a smoke run is expected to fail them)."""
    n_fail = len(failed(checks))
    if not checks:
        text = "No control could be evaluated with these conditions."
    elif n_fail == 0:
        text = pass_text
    else:
        text = (f"**{n_fail} control(s) FAIL: the measurement cannot be trusted at this scale** "
                + (fail_text or "(a smoke run is expected to fail them; it does not train long enough to learn)."))
    if extra:
        text += "\n\n" + extra
    return Section("Controls", text, tables=[checks_table(checks)])
