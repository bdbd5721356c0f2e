"""Headline tables, and the comparison of two runs of one experiment (`innerlab compare`).

    table = headline_table(experiment, rows)        # one run: mean and 95% CI per headline and group
    comparison = compare_runs("runs/p0", "runs/p1") # two runs: means and the paired difference B - A
    md, png = write_comparison(comparison, "runs/compare-p0-vs-p1")

The headlines are the experiment's `HEADLINES` (experiments/headlines.py). Two runs are compared
seed by seed: a headline's value in run B minus its value in run A for the same seed and group
(the same seed draws the same initial parameters and environment keys, so pairing removes much
of the seed-to-seed spread), with a percentile-bootstrap interval over the paired seeds. Seeds
that only one run has are left out of the difference and counted.

When the field that differs between the runs is also a column of the groups (a swept field,
e.g. side-channels' `p`) and each run has a single value of it in a group, the two values are
paired with each other (the group reads `p=0 -> 1`); where a run has several, only the values
both runs share are paired.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from innerlab._io import atomic_write_bytes
from innerlab.experiments.errors import ConfigError
from innerlab.experiments.headlines import group_text, show
from innerlab.report.stats import bootstrap_ci, format_ci

__all__ = ["COMPARE_COLUMNS", "Comparison", "HEADLINE_COLUMNS", "compare_runs", "comparison_figure",
           "comparison_markdown", "headline_table", "pair_headline", "write_comparison"]

HEADLINE_COLUMNS = ("headline", "group", "mean", "low", "high", "seeds")
COMPARE_COLUMNS = ("headline", "group", "mean_a", "low_a", "high_a", "mean_b", "low_b", "high_b",
                   "difference", "difference_low", "difference_high", "pairs", "unpaired")
SEED_FIELDS = ("num_seeds", "seed_offset", "save_agents", "log_curves")
"""Config fields that are not the treatment: the seeds (the pairing accounts for them) and what a
job keeps beside its rows (checkpoints, curves), which changes no number."""
MARKDOWN, FIGURE = "compare.md", "compare.png"
DIGITS = 3


# --- one run --------------------------------------------------------------------------------------

def headline_table(experiment, rows: pd.DataFrame) -> pd.DataFrame:
    """Per headline of `experiment` and group: the mean over seeds, its 95% bootstrap interval
    (low, high) and the number of seeds. Columns HEADLINE_COLUMNS; a headline with no rows (or
    a column these rows lack) has no line."""
    records = []
    for headline in experiment.headlines:
        values = _values(headline, rows)
        for keys, group in _groups(values, headline.by):
            mean, low, high = bootstrap_ci(group["value"].to_numpy())
            records.append({"headline": headline.label, "group": group_text(headline.by, keys),
                            "mean": mean, "low": low, "high": high, "seeds": int(group["value"].notna().sum())})
    return pd.DataFrame.from_records(records, columns=list(HEADLINE_COLUMNS))


def _values(headline, rows: pd.DataFrame) -> pd.DataFrame:
    try:
        return headline.values(rows)
    except KeyError:  # a run made before a column existed: nothing to show for this headline
        return pd.DataFrame(columns=[*headline.by, "seed", "value"])


def _groups(values: pd.DataFrame, by: tuple[str, ...]):
    """(key tuple, rows) per group of `by`, in first-seen order (one group when `by` is empty)."""
    if not by:
        if len(values):
            yield (), values
        return
    for keys, group in values.groupby(list(by), sort=False, dropna=False):
        yield (keys if isinstance(keys, tuple) else (keys,)), group


# --- two runs -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Comparison:
    """Two runs of one experiment, headline by headline."""

    experiment: str
    run_a: Path
    run_b: Path
    changed: tuple[tuple[str, Any, Any], ...]
    """Config fields that differ: (name, value in A, value in B), in the config's field order."""
    seeds_a: tuple[int, ...]
    seeds_b: tuple[int, ...]
    table: pd.DataFrame
    """Columns COMPARE_COLUMNS: per headline and group, each run's mean and 95% CI over its seeds,
    the mean of the per-seed differences B - A and its CI over the paired seeds, the number of
    pairs, and the seeds only one run has."""
    notes: tuple[str, ...]
    """What a reader must know before trusting the differences (one line each)."""


def compare_runs(run_a, run_b) -> Comparison:
    """Compare two finished runs of the same experiment. ConfigError('run_a' / 'run_b', ...) if a
    directory is not a finished run, or if the runs are of different experiments ('run_b')."""
    from innerlab.runner.store import load_run, read_record

    run_a, run_b = Path(run_a), Path(run_b)
    record_a, record_b = _read(read_record, run_a, "run_a"), _read(read_record, run_b, "run_b")
    if record_a["experiment"] != record_b["experiment"]:
        raise ConfigError("run_b", f"{run_b} is a run of {record_b['experiment']}, {run_a} of "
                          f"{record_a['experiment']}; allowed: two runs of the same experiment")
    experiment, _, seeds_a, rows_a = _read(load_run, run_a, "run_a")
    _, _, seeds_b, rows_b = _read(load_run, run_b, "run_b")
    changed = config_changes(record_a["config"], record_b["config"])
    changed_names = {name for name, _, _ in changed}
    tables = [pair_headline(h, _values(h, rows_a), _values(h, rows_b), changed_names) for h in experiment.headlines]
    tables = [t for t in tables if len(t)]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(COMPARE_COLUMNS))
    notes = _notes(experiment, changed, seeds_a, seeds_b, rows_a, rows_b, table)
    return Comparison(experiment.name, run_a, run_b, changed, seeds_a, seeds_b, table, notes)


def _read(reader, run_dir: Path, field: str):
    """`reader(run_dir)`, its ConfigError (named for the store's `run_dir`) renamed to `field`."""
    try:
        return reader(run_dir)
    except ConfigError as err:
        raise ConfigError(field, str(err).removeprefix(f"{err.field}: ")) from None


def config_changes(config_a: dict[str, Any], config_b: dict[str, Any]) -> tuple[tuple[str, Any, Any], ...]:
    """(field, value in A, value in B) for each field whose values differ (absent: None)."""
    names = list(config_a) + [k for k in config_b if k not in config_a]
    return tuple((n, config_a.get(n), config_b.get(n)) for n in names if config_a.get(n) != config_b.get(n))


def pair_headline(headline, values_a: pd.DataFrame, values_b: pd.DataFrame, changed=()) -> pd.DataFrame:
    """One headline's lines of the comparison (columns COMPARE_COLUMNS) from each run's
    `headline.values(rows)` (columns *by, seed, value). `changed`: names of the config fields
    that differ between the runs; those among `headline.by` are paired as the module doc says."""
    by = tuple(headline.by)
    swept = [i for i, c in enumerate(by) if c in set(changed)]
    other = [i for i in range(len(by)) if i not in swept]
    keyed_a, keyed_b = _keyed(values_a, by), _keyed(values_b, by)

    def split(keys):
        return tuple(keys[i] for i in other), tuple(keys[i] for i in swept)

    seen: dict[str, dict[tuple, set]] = {"a": {}, "b": {}}
    for side, keyed in (("a", keyed_a), ("b", keyed_b)):
        for keys, _, _ in keyed:
            rest, values = split(keys)
            seen[side].setdefault(rest, set()).add(values)

    def collapsed(rest) -> bool:
        # One value of the changed fields in each run: those two values are the comparison.
        return bool(swept) and len(seen["a"].get(rest, ())) == 1 and len(seen["b"].get(rest, ())) == 1

    groups: dict[tuple, dict[str, Any]] = {}
    for side, keyed in (("a", keyed_a), ("b", keyed_b)):
        for keys, seed, value in keyed:
            rest, _ = split(keys)
            key = rest if collapsed(rest) else keys
            label = _label(by, keys, swept, seen, rest, collapsed(rest))
            group = groups.setdefault(key, {"a": {}, "b": {}, "label": label})
            group[side][seed] = value

    records = []
    for group in groups.values():
        a, b = group["a"], group["b"]
        shared = sorted(set(a) & set(b))
        differences = np.array([b[s] - a[s] for s in shared], dtype=np.float64)
        mean_a, low_a, high_a = bootstrap_ci(list(a.values()))
        mean_b, low_b, high_b = bootstrap_ci(list(b.values()))
        diff, diff_low, diff_high = bootstrap_ci(differences)
        records.append({"headline": headline.label, "group": group["label"],
                        "mean_a": mean_a, "low_a": low_a, "high_a": high_a,
                        "mean_b": mean_b, "low_b": low_b, "high_b": high_b,
                        "difference": diff, "difference_low": diff_low, "difference_high": diff_high,
                        "pairs": int(np.isfinite(differences).sum()), "unpaired": len(set(a) ^ set(b))})
    return pd.DataFrame.from_records(records, columns=list(COMPARE_COLUMNS))


def _keyed(values: pd.DataFrame, by: tuple[str, ...]) -> list[tuple[tuple, int, float]]:
    """[(group key, seed, value)] with plain Python keys (NaN as None, so equal keys compare equal)."""
    columns = [values[c].tolist() for c in by]
    seeds, numbers = values["seed"].tolist(), values["value"].tolist()
    return [(tuple(_plain(column[i]) for column in columns), int(seeds[i]), float(numbers[i]))
            for i in range(len(values))]


def _plain(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _label(by, keys, swept, seen, rest, is_collapsed: bool) -> str:
    if not is_collapsed:
        return group_text(by, keys)
    (value_a,), (value_b,) = seen["a"][rest], seen["b"][rest]
    parts, position = [], 0
    for i, column in enumerate(by):
        if i in swept:
            a, b = value_a[position], value_b[position]
            position += 1
            parts.append(f"{column}={show(a)}" if a == b else f"{column}={show(a)} -> {show(b)}")
        else:
            parts.append(f"{column}={show(keys[i])}")
    return ", ".join(parts)


def _notes(experiment, changed, seeds_a, seeds_b, rows_a, rows_b, table) -> tuple[str, ...]:
    notes = []
    treatment = [c for c in changed if c[0] not in SEED_FIELDS]
    if not treatment:
        notes.append("The configs are identical: the differences show run-to-run variation only.")
    elif len(treatment) > 1:
        notes.append(f"{len(treatment)} config fields differ ({', '.join(c[0] for c in treatment)}): "
                     "a difference cannot be put down to one of them.")
    only_a, only_b = sorted(set(seeds_a) - set(seeds_b)), sorted(set(seeds_b) - set(seeds_a))
    if only_a or only_b:
        notes.append(f"Seeds in one run only, left out of the differences: A {_seed_text(only_a)}, "
                     f"B {_seed_text(only_b)}.")
    missing = [h.label for h in experiment.headlines if not (table["headline"] == h.label).any()]
    if missing:
        notes.append(f"No rows in either run for: {'; '.join(missing)}.")
    unmatched = table[(table["pairs"] == 0)]
    if len(unmatched):
        notes.append(f"{len(unmatched)} group(s) have no pairs (present in one run only, or no common seed).")
    if rows_a[["metric", "seed", "value"]].equals(rows_b[["metric", "seed", "value"]]):
        notes.append("The two runs' metrics are identical, value for value.")
    return tuple(notes)


def _seed_text(seeds) -> str:
    return ", ".join(map(str, seeds)) if seeds else "none"


# --- output ---------------------------------------------------------------------------------------

def _value_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_value_text(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return "(absent)" if value is None else show(value)


def comparison_markdown(comparison: Comparison) -> str:
    """The comparison as Markdown: what was compared, the notes, then one table per headline."""
    from innerlab.report.render import markdown_table

    changed = "; ".join(f"{n}: {_value_text(a)} -> {_value_text(b)}" for n, a, b in comparison.changed) or "nothing"
    lines = [f"# {comparison.experiment}: B vs A", "",
             f"- A: `{comparison.run_a}`", f"- B: `{comparison.run_b}`", f"- config changed: {changed}",
             f"- seeds: A {_seed_text(comparison.seeds_a)}; B {_seed_text(comparison.seeds_b)}",
             *[f"- **note**: {note}" for note in comparison.notes], "",
             "Mean and 95% bootstrap CI over seeds; B - A: the mean of the per-seed differences "
             "(same seed, same group) with its CI over the paired seeds."]
    for label, part in comparison.table.groupby("headline", sort=False):
        shown = pd.DataFrame({
            "group": part["group"],
            "A": [format_ci(*r, digits=DIGITS) for r in part[["mean_a", "low_a", "high_a"]].to_numpy()],
            "B": [format_ci(*r, digits=DIGITS) for r in part[["mean_b", "low_b", "high_b"]].to_numpy()],
            "B - A": [format_ci(*r, digits=DIGITS)
                      for r in part[["difference", "difference_low", "difference_high"]].to_numpy()],
            "pairs": part["pairs"], "unpaired seeds": part["unpaired"]})
        lines += ["", f"## {label}", "", markdown_table(shown)]
    return "\n".join(lines) + "\n"


def comparison_figure(comparison: Comparison):
    """Per headline, two panels: each group's A and B means with their CIs, and B - A with its
    CI beside a zero line. Returns a matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = list(comparison.table.groupby("headline", sort=False))
    heights = [max(1.2, 0.32 * len(part) + 0.8) for _, part in parts] or [1.0]
    fig, axes = plt.subplots(len(heights), 2, figsize=(11, sum(heights) + 0.6), squeeze=False,
                             gridspec_kw={"height_ratios": heights, "width_ratios": (3, 2)})
    for (label, part), (means, differences) in zip(parts, axes):
        y = np.arange(len(part))[::-1].astype(float)
        for offset, side, colour in ((0.15, "a", "tab:blue"), (-0.15, "b", "tab:orange")):
            mean, low, high = (part[f"{c}_{side}"].to_numpy(np.float64) for c in ("mean", "low", "high"))
            means.errorbar(mean, y + offset, xerr=_error(mean, low, high), fmt="o", color=colour, capsize=3,
                           label=side.upper())
        mean, low, high = (part[c].to_numpy(np.float64) for c in ("difference", "difference_low", "difference_high"))
        differences.errorbar(mean, y, xerr=_error(mean, low, high), fmt="o", color="black", capsize=3)
        differences.axvline(0.0, color="grey", linestyle=":")
        for ax in (means, differences):
            ax.set_yticks(y)
            ax.set_ylim(-0.6, len(part) - 0.4)
        means.set_yticklabels(part["group"], fontsize=8)
        differences.set_yticklabels([])
        means.set_title(label, fontsize=9, loc="left")
        differences.set_title("B - A (paired by seed)", fontsize=9)
    axes[0][0].legend(fontsize=8, loc="best")
    fig.suptitle(f"{comparison.experiment}: A = {comparison.run_a.name}, B = {comparison.run_b.name} "
                 "(mean, 95% CI)", fontsize=10)
    fig.tight_layout()
    return fig


def _error(mean, low, high):
    """Error-bar half-widths (0 where a value is missing, so matplotlib draws nothing there)."""
    return np.nan_to_num(np.stack([mean - low, high - mean]), nan=0.0)


def write_comparison(comparison: Comparison, out_dir) -> tuple[Path, Path]:
    """Write out_dir/compare.md and out_dir/compare.png; returns their paths."""
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    md = out_dir / MARKDOWN
    atomic_write_bytes(md, comparison_markdown(comparison).encode())
    fig = comparison_figure(comparison)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    png = out_dir / FIGURE
    atomic_write_bytes(png, buffer.getvalue())
    return md, png
