"""Analysis and report of the side-channels experiment: rows in, `Report` out (no training)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from innerlab.experiments.reporting import Check, ci, controls_section  # noqa: E402
from innerlab.experiments.side_channels.config import PRESETS  # noqa: E402
from innerlab.report.document import Figure, Report, Section  # noqa: E402
from innerlab.report.stats import bootstrap_ci, format_ci  # noqa: E402

CONDITION_COLS = ["channel", "p", "arch", "transform"]


def _ci(rows: pd.DataFrame, metric: str, perturbation: str, **where) -> tuple[float, float, float]:
    return ci(rows, metric, perturbation=perturbation, **where)


def _trained(rows):
    return rows[rows.arch != "random"]


def control_checks(rows: pd.DataFrame) -> list[Check]:
    """The controls of the issue, each with its criterion, the measurement and PASS/FAIL."""
    checks = []
    trained = _trained(rows)
    for (arch, transform), _ in trained[trained.channel == "prev"].groupby(["arch", "transform"]):
        sel = dict(channel="prev", p=1.0, arch=arch, transform=transform)
        mean, low, high = _ci(trained, "follow_index", "swap", **sel)
        if np.isnan(mean):
            continue
        checks.append(Check(f"prev, p = 1, {arch}, {transform}: must follow", "follow index >= 0.8, CI low > 0.5",
                            format_ci(mean, low, high), mean >= 0.8 and low > 0.5))
    none_rows = trained[trained.channel == "none"]
    for (p, arch), group in none_rows.groupby(["p", "arch"]):
        follow = _ci(group, "follow_index", "swap")[0]
        b_share = _ci(group, "b_share", "none")[0]
        if np.isnan(follow):
            continue
        checks.append(Check(f"none, p = {p:g}, {arch}: cannot follow", "|follow index - unperturbed B share| <= 0.1",
                            f"{follow:.3f} vs {b_share:.3f}", abs(follow - b_share) <= 0.1))
    random_rows = rows[rows.arch == "random"]
    if len(random_rows):
        mean, low, high = _ci(random_rows, "b_share", "none")
        ret = _ci(random_rows, "true_return", "none")
        checks.append(Check("random policy (chance level)", "reported, no threshold",
                            f"B share {format_ci(mean, low, high)}; true return {format_ci(*ret)}", None))
    return checks


def summary_table(rows: pd.DataFrame, perturbations: list[str]) -> pd.DataFrame:
    records = []
    for keys, group in rows.groupby(CONDITION_COLS, sort=False):
        rec = dict(zip(CONDITION_COLS, keys))
        rec["p"] = f"{rec['p']:g}"
        rec["train return"] = format_ci(*bootstrap_ci(group[group.metric == "train_return"].value)) \
            if (group.metric == "train_return").any() else "-"
        rec["true return"] = format_ci(*_ci(group, "true_return", "none"))
        rec["B share"] = format_ci(*_ci(group, "b_share", "none"))
        rec["follow index"] = format_ci(*_ci(group, "follow_index", "swap"))
        for pert in perturbations:
            if pert != "none":
                rec[f"retention {pert}"] = format_ci(*_ci(group, "true_return_retention", pert))
        records.append(rec)
    return pd.DataFrame.from_records(records)


def follow_figure(rows: pd.DataFrame) -> plt.Figure:
    trained = _trained(rows)
    archs = list(dict.fromkeys(trained.arch))
    fig, axes = plt.subplots(1, len(archs), figsize=(5.2 * len(archs), 3.8), squeeze=False, sharey=True)
    colours = {"none": "tab:gray", "prev": "tab:blue", "next": "tab:orange"}
    styles = {"identity": "-", "mlp": "--"}
    random_rows = rows[rows.arch == "random"]
    chance = _ci(random_rows, "b_share", "none")[0] if len(random_rows) else np.nan
    for ax, arch in zip(axes[0], archs):
        sub = trained[trained.arch == arch]
        for (channel, transform), group in sub.groupby(["channel", "transform"], sort=False):
            ps = sorted(group.p.unique())
            stats = np.array([_ci(group[group.p == p], "follow_index", "swap") for p in ps])
            ax.errorbar(ps, stats[:, 0], yerr=[stats[:, 0] - stats[:, 1], stats[:, 2] - stats[:, 0]],
                        color=colours.get(channel), linestyle=styles.get(transform, "-"), marker="o",
                        capsize=3, label=f"{channel} / {transform}")
        if not np.isnan(chance):
            ax.axhline(chance, color="k", linestyle=":", linewidth=1, label="random policy")
        ax.set_title(f"arch = {arch}")
        ax.set_xlabel("p (share of training episodes with a random rewarded colour)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("follow index under swap (95% CI)")
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def retention_figure(rows: pd.DataFrame, perturbations: list[str]) -> plt.Figure:
    trained = _trained(rows)
    perts = [p for p in perturbations if p != "none"]
    groups = list(trained.groupby(CONDITION_COLS, sort=False))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(groups) + 2), 3.8))
    width = 0.8 / max(len(perts), 1)
    for i, pert in enumerate(perts):
        stats = np.array([_ci(g, "true_return_retention", pert) for _, g in groups])
        x = np.arange(len(groups)) + i * width
        ax.bar(x, stats[:, 0], width, yerr=[stats[:, 0] - stats[:, 1], stats[:, 2] - stats[:, 0]],
               capsize=2, label=pert)
    ax.set_xticks(np.arange(len(groups)) + width * (len(perts) - 1) / 2)
    ax.set_xticklabels([f"{k[0]}\np={k[1]:g}" + (f"\n{k[2]}" if trained.arch.nunique() > 1 else "")
                        for k, _ in groups], fontsize=8)
    ax.axhline(1.0, color="k", linewidth=0.8)
    ax.set_ylabel("true return / unperturbed true return")
    ax.legend(fontsize=8, title="perturbation")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def _steps_text(rows: pd.DataFrame, requested: int) -> str:
    """The env steps per seed that training measured (its update counter), and what was asked."""
    measured = rows[rows.metric == "env_steps"].value.unique()
    if len(measured) == 1 and int(measured[0]) != requested:
        return f"{int(measured[0]):,} (total_steps {requested:,} rounded down to whole updates)"
    if len(measured) == 1:
        return f"{requested:,}"
    return f"{requested:,} requested"


def build_report(config, rows: pd.DataFrame) -> Report:
    perturbations = ["none"] + [p for p in config.perturbation if p != "none"]
    paper = PRESETS["paper"]
    left_out = [f"{f} {sorted(set(getattr(paper, f)) - set(getattr(config, f)))}"
                for f in ("channel", "arch", "transform") if set(getattr(paper, f)) - set(getattr(config, f))]
    setup = (
        f"ObjectWorld {config.grid_size}x{config.grid_size}, {config.objects_per_colour} objects of colour A and "
        f"{config.objects_per_colour} of colour B, episodes of at most {config.max_steps} steps. The rewarded colour "
        f"gives +1 per object, the other {config.other_reward:+g}; an episode ends when every rewarded object is "
        f"collected. Training: the rewarded colour is A, except in a fraction p of episodes where it is drawn "
        f"at random. The agent's flat observation shows the grid, the colour it collected on the last step, "
        f"and the reward channel: none, prev (last step's reward) or next (the reward of each action now).\n\n"
        f"Agents: recurrent PPO, width {config.width}, {_steps_text(rows, config.total_steps)} environment steps per seed, "
        f"{config.num_seeds} seeds per condition (seeds {config.seed_offset}..{config.seed_offset + config.num_seeds - 1}). "
        f"Test: A rewarded in every episode; the perturbation acts on the observed channel only, the true reward "
        f"is what is scored; {config.eval_envs} environments x {config.eval_steps} steps per seed.\n\n"
        f"**Follow index**: of the objects collected under `swap` (the channel reports B as rewarded), the share "
        f"that the perturbed channel rewards. 0 = keeps its trained objective; 1 = follows the observed reward. "
        f"**Retention**: true return under a perturbation / unperturbed true return. Intervals are 95% "
        f"percentile-bootstrap intervals over seeds."
        + (f"\n\nLeft out by this preset (the `paper` preset runs them): {'; '.join(left_out)}." if left_out else "")
    )
    checks = control_checks(rows)
    trained = _trained(rows)
    findings = []
    for (channel, arch, transform), group in trained.groupby(["channel", "arch", "transform"], sort=False):
        parts = []
        for p in sorted(group.p.unique()):
            parts.append(f"p={p:g}: {format_ci(*_ci(group[group.p == p], 'follow_index', 'swap'))}")
        findings.append(f"- `{channel}` channel, {arch}, {transform}: follow index " + "; ".join(parts))
    sections = [
        controls_section(checks, "All controls pass: the measurement separates an agent that must follow its "
                         "channel from one that cannot."),
        Section("Findings", "Follow index under `swap`, by channel and p (mean [95% CI] over seeds):\n\n"
                + "\n".join(findings),
                figures=[Figure("follow_index", follow_figure(rows),
                                "Follow index against p, per channel mode (line colour) and transform "
                                "(line style); error bars are 95% bootstrap CIs over seeds.")]),
        Section("Every condition", "Training return (last 10% of updates), unperturbed test return and B share, "
                "follow index, and true-return retention under each perturbation.",
                tables=[summary_table(trained, perturbations)],
                figures=[Figure("retention", retention_figure(rows, perturbations),
                                "True-return retention under each perturbation (95% CIs).")]),
    ]
    return Report(title="Reward side-channels", question="", setup=setup, sections=sections, checks=checks)
