"""Headline metrics: the few numbers that sum up a run of an experiment.

Each experiment's `config.py` declares `HEADLINES`, a tuple of `Headline`s; `innerlab compare`
(runner/compare.py) tabulates them for one run and pairs them by seed across two runs.

    HEADLINES = (Headline("follow index (swap)", "follow_index", where={"perturbation": "swap"},
                          by=("channel", "p", "arch")),)

A headline's value for one group and seed is the mean of its selected rows of that group and
seed (rows that differ in a column outside `by`, e.g. zero-shot's text encodings, are averaged
first), so the seeds stay the independent samples of the interval.

No imports beyond the standard library: config modules import this, and `innerlab list` must not
load jax or pandas. The functions take a pandas DataFrame and use only its methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Headline", "group_text"]

FLOAT_TOLERANCE = 1e-9
"""Float values of `where` match a column's value within this (0.2 written in a config and 0.2
read back from parquet are the same number, but a sum of floats may not be)."""


@dataclass(frozen=True)
class Headline:
    """One headline metric of an experiment.

    Per group (the distinct values of `by`) and seed: the mean of `metric`'s values in the rows
    whose column `k` equals `v` for every `k: v` of `where` (a tuple or list `v` matches any of
    its values). With `baseline`, the value is a difference: the group's value minus the value
    of the group that has `baseline`'s values instead (per seed), and the baseline groups
    themselves are left out; every key of `baseline` must be in `by`.
    """

    label: str
    """What the number is, as the tables show it: 'follow index (swap)'."""
    metric: str
    """The `metric` of the rows."""
    where: dict[str, Any] = field(default_factory=dict)
    """Other columns the rows must match."""
    by: tuple[str, ...] = ()
    """Columns whose values make the groups (usually swept fields)."""
    baseline: dict[str, Any] = field(default_factory=dict)
    """Values of some `by` columns that the other groups are measured from (e.g. thinking_steps 0)."""

    def __post_init__(self):
        outside = [k for k in self.baseline if k not in self.by]
        if outside:
            raise TypeError(f"Headline {self.label!r}: baseline columns {outside} are not in by {self.by}")

    def select(self, rows):
        """The rows of this headline's metric that match `where` (KeyError: a column is absent)."""
        mask = (rows["metric"] == self.metric).to_numpy()
        for column, value in self.where.items():
            mask = mask & _matches(rows[column], value)
        return rows[mask]

    def values(self, rows):
        """DataFrame with columns *by, seed, value: one value per group and seed, groups in the
        order the rows first show them. Empty when no row matches."""
        keys = [*self.by, "seed"]
        per_seed = (self.select(rows).groupby(keys, sort=False, dropna=False)["value"].mean().reset_index())
        if not self.baseline:
            return per_seed
        is_base = _all_match(per_seed, self.baseline)
        rest = [c for c in self.by if c not in self.baseline]
        base = per_seed[is_base].drop(columns=list(self.baseline)).rename(columns={"value": "base"})
        out = per_seed[~is_base].merge(base, on=[*rest, "seed"], how="inner", sort=False)
        out["value"] = out["value"] - out.pop("base")
        return out[[*keys, "value"]]


def group_text(columns, values) -> str:
    """'channel=prev, p=0.25' (floats in their shortest form; '' for no columns)."""
    return ", ".join(f"{c}={show(v)}" for c, v in zip(columns, values))


def show(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _matches(column, value):
    if isinstance(value, (tuple, list)):
        out = column.isin([]).to_numpy()
        for v in value:
            out = out | _matches(column, v)
        return out
    if isinstance(value, float) and column.dtype.kind == "f":
        return ((column - value).abs() <= FLOAT_TOLERANCE).to_numpy()
    return (column == value).to_numpy()


def _all_match(frame, where: dict):
    mask = frame["seed"].notna().to_numpy()
    for column, value in where.items():
        mask = mask & _matches(frame[column], value)
    return mask
