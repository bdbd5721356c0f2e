"""Confidence intervals over seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd


def bootstrap_ci(
    values, confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap interval of the mean over independent samples (seeds).

    Returns (mean, low, high). NaNs are dropped; an empty input gives three NaNs and a single
    value gives a zero-width interval (there is nothing to resample).
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if x.size == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_resamples, x.size))
    means = x[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return mean, float(low), float(high)


def summarize(rows: pd.DataFrame, by: list[str], value: str = "value") -> pd.DataFrame:
    """Group tidy rows and give mean, 95% bootstrap interval and seed count per group."""
    records = []
    for keys, group in rows.groupby(by, sort=False, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        mean, low, high = bootstrap_ci(group[value].to_numpy())
        records.append({**dict(zip(by, keys)), "mean": mean, "low": low, "high": high,
                        "n": int(group[value].notna().sum())})
    return pd.DataFrame.from_records(records)


def format_ci(mean: float, low: float, high: float, digits: int = 2) -> str:
    """'0.83 [0.71, 0.92]' (or 'n/a' for a missing value)."""
    if np.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
