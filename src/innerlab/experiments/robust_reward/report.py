"""Analysis and report of the robust-reward experiment: rows in, `Report` out (no training)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from innerlab.experiments.reporting import Check, controls_section, select  # noqa: E402
from innerlab.report.document import Figure, Report, Section  # noqa: E402
from innerlab.report.stats import bootstrap_ci, format_ci  # noqa: E402

ADVERSARY_ORDER = ["none", "random", "input", "latent"]
ADVERSARY_NAMES = {"none": "none (own replay only)", "random": "random labelled inputs (control)",
                   "input": "input-space adversary", "latent": "latent pseudo-inputs (no labels)"}
SUPPORTS = ["visited", "all", "offdist"]
SUPPORT_NAMES = {"visited": "states the agent visits", "all": "all states (training levels)",
                 "offdist": "off-distribution levels"}
COLOURS = {"none": "tab:grey", "random": "tab:blue", "input": "tab:red", "latent": "tab:purple"}
GLEAVE = ("Gleave, Dennis, Legg, Russell and Leike (2021), \"Quantifying Differences in Reward Functions\" "
          "(ICLR 2021)")


def _per_seed(rows, **where) -> pd.Series:
    """Per seed, the mean value of the selected rows (levels, cells... averaged)."""
    return select(rows, **where).groupby("seed").value.mean()


def _paired(a: pd.Series, b: pd.Series) -> tuple[float, float, float]:
    """Mean and CI of a - b over the seeds both have."""
    both = pd.concat([a, b], axis=1, keys=["a", "b"]).dropna()
    return bootstrap_ci((both.a - both.b).to_numpy())


def control_checks(config, rows: pd.DataFrame) -> list[Check]:
    checks = []
    ctrl = select(rows, metric="control_epic")
    if len(ctrl):
        worst = float(ctrl.value.abs().max())
        checks.append(Check("EPIC(true reward, potential-shaped x2 +0.5 copy) on a training level", "< 1e-6",
                            f"{worst:.1e}", worst < 1e-6))
    ctrl = select(rows, metric="control_regret")
    if len(ctrl):
        worst = float(ctrl.value.abs().max())
        checks.append(Check("regret of planning with 2 x the true reward", "= 0", f"{worst:.1e}", worst < 1e-9))
    for training in [t for t in ("novel", "covered") if (rows.training == t).any()]:
        sel = select(rows, training=training, support="all", adversary="none", stage="before")
        agent, random = _per_seed(sel, metric="episode_return"), _per_seed(sel, metric="random_return")
        mean, low, high = _paired(agent, random)
        a_mean, a_low, a_high = bootstrap_ci(agent.to_numpy())
        r_mean = float(random.mean())
        checks.append(Check(f"{training}: the agent learns (greedy search vs uniform random policy, "
                            "training distribution)",
                            "return gain over random, CI low > 0.5",
                            f"{format_ci(a_mean, a_low, a_high)} vs {r_mean:.2f}: gain {format_ci(mean, low, high)}",
                            bool(low > 0.5)))
    if {"novel", "covered"} <= set(rows.training):
        sel = select(rows, metric="epic", support="offdist", stage="before", adversary="none")
        novel, covered = _per_seed(sel, training="novel"), _per_seed(sel, training="covered")
        diff = bootstrap_ci(novel.to_numpy())[0] - bootstrap_ci(covered.to_numpy())[0]
        # Different seeds' agents are independent across conditions: compare intervals, not pairs.
        n_ci, c_ci = bootstrap_ci(novel.to_numpy()), bootstrap_ci(covered.to_numpy())
        checks.append(Check("colour 2 seen in training (covered) gives a reward closer to the truth off "
                            "distribution than never seen (novel), before adversarial training",
                            "EPIC offdist: covered CI high < novel CI low",
                            f"covered {format_ci(*c_ci, 3)} vs novel {format_ci(*n_ci, 3)} (diff {diff:.3f})",
                            bool(c_ci[2] < n_ci[1])))
    sel = select(rows, metric="query_disagreement", stage="after")
    adv, rnd = _per_seed(sel, adversary="input"), _per_seed(sel, adversary="random")
    if len(adv) and len(rnd):
        mean, low, high = _paired(adv, rnd)
        checks.append(Check("the input adversary finds inputs of higher ensemble disagreement than random inputs",
                            "paired difference, CI low > 0",
                            f"{adv.mean():.4f} vs {rnd.mean():.4f} (diff {format_ci(mean, low, high, 4)})",
                            bool(low > 0)))
    return checks


def metric_table(config, rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    records = []
    for training in [t for t in ("novel", "covered") if (rows.training == t).any()]:
        for support in SUPPORTS if metric == "epic" else ["all", "offdist"]:
            for adversary in [a for a in ADVERSARY_ORDER if (rows.adversary == a).any()]:
                sel = select(rows, training=training, metric=metric, support=support, adversary=adversary)
                before, after = _per_seed(sel, stage="before"), _per_seed(sel, stage="after")
                if before.empty:
                    continue
                records.append({"training": training, "support": support, "adversary": adversary,
                                "before": format_ci(*bootstrap_ci(before.to_numpy()), 3),
                                "after": format_ci(*bootstrap_ci(after.to_numpy()), 3),
                                "after - before": format_ci(*_paired(after, before), 3)})
    return pd.DataFrame.from_records(records)


def comparison_table(config, rows: pd.DataFrame) -> pd.DataFrame:
    """Paired differences (over seeds) between adversaries after training: input vs random,
    latent vs random, random vs none."""
    records = []
    for training in [t for t in ("novel", "covered") if (rows.training == t).any()]:
        for metric, supports in (("epic", SUPPORTS), ("regret", ["all", "offdist"])):
            for support in supports:
                sel = select(rows, training=training, metric=metric, support=support, stage="after")
                for a, b in (("input", "random"), ("latent", "random"), ("random", "none"), ("input", "none")):
                    x, y = _per_seed(sel, adversary=a), _per_seed(sel, adversary=b)
                    if x.empty or y.empty:
                        continue
                    records.append({"training": training, "metric": metric, "support": support,
                                    "comparison": f"{a} - {b}", "difference after": format_ci(*_paired(x, y), 3)})
    return pd.DataFrame.from_records(records)


def query_table(rows: pd.DataFrame) -> pd.DataFrame:
    records = []
    for training in [t for t in ("novel", "covered") if (rows.training == t).any()]:
        for adversary in [a for a in ADVERSARY_ORDER if (rows.adversary == a).any() and a != "none"]:
            sel = select(rows, training=training, adversary=adversary, stage="after")
            rec = {"training": training, "adversary": adversary}
            for metric in ("query_disagreement", "query_reward_rate"):
                rec[metric] = format_ci(*bootstrap_ci(_per_seed(sel, metric=metric).to_numpy()), 4)
            records.append(rec)
    return pd.DataFrame.from_records(records)


def bars_figure(rows: pd.DataFrame, training: str):
    adversaries = [a for a in ADVERSARY_ORDER if (rows.adversary == a).any()]
    panels = [("epic", s) for s in SUPPORTS] + [("regret", s) for s in ("all", "offdist")]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2))
    for ax, (metric, support) in zip(np.atleast_1d(axes), panels):
        sel = select(rows, training=training, metric=metric, support=support)
        before = bootstrap_ci(_per_seed(sel, stage="before", adversary="none").to_numpy())
        ax.axhspan(before[1], before[2], color="k", alpha=0.1)
        ax.axhline(before[0], color="k", lw=1, label="before")
        for i, adversary in enumerate(adversaries):
            mean, low, high = bootstrap_ci(_per_seed(sel, stage="after", adversary=adversary).to_numpy())
            ax.bar(i, mean, color=COLOURS[adversary])
            ax.errorbar(i, mean, yerr=[[mean - low], [high - mean]], color="k", capsize=3)
        ax.set_xticks(range(len(adversaries)), adversaries, rotation=30)
        ax.set_title(f"{metric}: {support}", fontsize=9)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def error_map_figure(config, rows: pd.DataFrame, training: str):
    sel = select(rows, training=training, metric="reward_error")
    if sel.empty:
        return None
    columns = [("before", "none")] + [("after", a) for a in ADVERSARY_ORDER if (sel.adversary == a).any()]
    levels = [lv for lv in ("train", "offdist") if (sel.level == lv).any()]
    fig, axes = plt.subplots(len(levels), len(columns), figsize=(2.4 * len(columns), 2.4 * len(levels)),
                             squeeze=False)
    top = float(np.nanmax(sel.groupby(["stage", "adversary", "level", "cell_row", "cell_col"]).value.mean()))
    objects = select(rows, training=training, metric="level_object_colour").drop_duplicates(
        ["level", "cell_row", "cell_col"])
    # Object cells are grey: the agent never stands there with the object present.
    cmap = plt.get_cmap("magma").with_extremes(bad="lightgrey")
    markers = {0: ("o", "tab:green", "colour 0 (+1)"), 1: ("x", "tab:blue", "colour 1 (-1)"),
               2: ("^", "tab:cyan", f"colour 2 ({config.novel_reward:+g})")}
    for i, level in enumerate(levels):
        for j, (stage, adversary) in enumerate(columns):
            part = select(sel, stage=stage, adversary=adversary, level=level)
            grid = np.full((config.grid_size, config.grid_size), np.nan)
            for (r, c), v in part.groupby(["cell_row", "cell_col"]).value.mean().items():
                grid[int(r), int(c)] = v
            ax = axes[i, j]
            im = ax.imshow(grid, vmin=0, vmax=max(top, 1e-6), cmap=cmap)
            for obj in select(objects, level=level).itertuples():
                marker, colour, label = markers[int(obj.value)]
                ax.scatter(obj.cell_col, obj.cell_row, marker=marker, color=colour, s=60, label=label)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{level}: {stage}" + ("" if stage == "before" else f" {adversary}"), fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.8, label="max_a |learned - true| reward")
    handles = {h.get_label(): h for ax in axes.ravel() for h in ax.collections}
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=3, fontsize=7, frameon=False)
    return fig


def query_curve_figure(rows: pd.DataFrame, training: str):
    """EPIC against the number of inputs picked, per adversary (all states; off distribution)."""
    sel = select(rows, training=training, metric="epic", stage="curve")
    if sel.empty or "queries" not in sel:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=False)
    for ax, support in zip(axes, ("all", "offdist")):
        for adversary in [a for a in ADVERSARY_ORDER if (sel.adversary == a).any()]:
            part = select(sel, support=support, adversary=adversary)
            stats = [(q, *bootstrap_ci(g.value.to_numpy())) for q, g in part.groupby("queries")]
            if not stats:
                continue
            q, mean, low, high = map(np.array, zip(*stats))
            ax.plot(q, mean, marker="o", ms=3, color=COLOURS[adversary], label=adversary)
            ax.fill_between(q, low, high, color=COLOURS[adversary], alpha=0.15)
        ax.set_xlabel("inputs picked (labelled, or pseudo-inputs)")
        ax.set_ylabel("EPIC to the true reward")
        ax.set_title(SUPPORT_NAMES[support], fontsize=9)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def curve_figure(rows: pd.DataFrame):
    sel = select(rows, metric="training_return", stage="curve")
    if sel.empty:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for training, colour in (("novel", "tab:red"), ("covered", "tab:green")):
        part = sel[sel.training == training]
        if part.empty:
            continue
        stats = [(steps, *bootstrap_ci(g.value.to_numpy())) for steps, g in part.groupby("env_steps")]
        steps, mean, low, high = map(np.array, zip(*stats))
        ax.plot(steps, mean, color=colour, label=training)
        ax.fill_between(steps, low, high, color=colour, alpha=0.2)
    ax.set_xlabel("env steps per seed")
    ax.set_ylabel("training episode return")
    ax.legend()
    fig.tight_layout()
    return fig


def _findings(config, rows: pd.DataFrame) -> str:
    lines = []
    for training in [t for t in ("novel", "covered") if (rows.training == t).any()]:
        sel = select(rows, training=training, stage="after")
        for metric, support in (("epic", "offdist"), ("regret", "offdist"), ("epic", "all")):
            part = select(sel, metric=metric, support=support)
            x, y = _per_seed(part, adversary="input"), _per_seed(part, adversary="random")
            if x.empty or y.empty:
                continue
            mean, low, high = _paired(x, y)
            verdict = ("lower with the input adversary" if high < 0 else "higher with the input adversary"
                       if low > 0 else "no difference resolved")
            lines.append(f"- `{training}`, {metric} on {SUPPORT_NAMES[support]}: input adversary - random control = "
                         f"{format_ci(mean, low, high, 3)} ({verdict}).")
        before = _per_seed(select(rows, training=training, metric="epic", support="offdist", stage="before",
                                   adversary="none"))
        lat = _per_seed(select(sel, metric="epic", support="offdist", adversary="latent"))
        if not lat.empty and not before.empty:
            lines.append(f"- `{training}`, latent pseudo-inputs: off-distribution EPIC {format_ci(*_paired(lat, before), 3)} "
                         "relative to before (agreement without labels).")
    return "\n".join(lines)


def build_report(config, rows: pd.DataFrame) -> Report:
    setup = (
        f"ObjectWorld {config.grid_size}x{config.grid_size}, {config.num_objects} objects at random cells, egocentric "
        f"view, episodes of at most {config.max_steps} steps; colour 0 +1, colour 1 -1, colour 2 "
        f"{config.novel_reward:+g}. Training levels: **novel** (colour 2 never shown) or **covered** (control: one "
        "bad object per level is colour 2). Off-distribution levels: every bad object is colour 2.\n\n"
        f"Agent: MuZero-style (learned representation, dynamics, value, policy, and an ensemble of "
        f"{config.ensemble} reward heads; Gumbel MuZero search in its own model, {config.num_simulations} "
        f"simulations), {config.total_steps:,} env steps per seed. Its objective is the heads' mean, read at every "
        f"(state, action) of {config.eval_levels} fixed levels per distribution and compared exactly with the true "
        f"reward: **EPIC** ({GLEAVE}; gamma {config.discount:g}, canonicalised over reachable states, Pearson "
        "distance over the support; 0 = same preferences up to shaping and scale, 1 = opposite) and **regret** "
        f"(true return lost from the level's start by a perfect planner, horizon {config.max_steps}, that optimises "
        "the learned reward instead of the true one).\n\n"
        f"Adversarial training, from the same trained agent: {config.rounds} rounds, each picking {config.queries} "
        f"inputs then {config.finetune_steps} gradient steps on the reward heads (and the representation) over the "
        f"agent's own replay plus everything picked so far. **input**: the {config.queries} valid inputs (levels "
        f"built through EnvParams + an action) of highest ensemble variance among {config.search_rounds} x "
        f"{config.pool} random ones, labelled with the true reward; **random**: as many random valid inputs, "
        f"labelled (the control); **latent**: latents moved {config.latent_steps} signed-gradient steps of "
        f"{config.latent_step_size:g} towards maximal disagreement, heads trained to agree there (no label); "
        "**none**: replay only, same steps.\n\nEvery number: mean over seeds with a 95% percentile-bootstrap "
        "interval; differences are paired by seed.")
    checks = control_checks(config, rows)
    sections = [controls_section(checks, "Every control passes.",
                                 "(a smoke run is expected to fail the learning controls).")]
    sections.append(Section("Findings: input adversary against the random control", _findings(config, rows),
                            tables=[comparison_table(config, rows)]))
    for training in [t for t in ("novel", "covered") if (rows.training == t).any()]:
        figures = [Figure(f"bars_{training}", bars_figure(rows, training),
                          "After adversarial training, per adversary (bars, 95% CI); line and band: before.")]
        queries = query_curve_figure(rows, training)
        if queries is not None:
            figures.append(Figure(f"epic_vs_queries_{training}", queries,
                                  "EPIC to the true reward as inputs are picked and trained on (mean, 95% CI over "
                                  "seeds); `none` gets the same gradient steps on its own replay only."))
        grid = error_map_figure(config, rows, training)
        if grid is not None:
            figures.append(Figure(f"reward_error_{training}", grid,
                                  "Where the learned reward errs: per agent cell, with every object of the first "
                                  "evaluation level present, max over actions of |learned - true| (mean over seeds); "
                                  "top: a training level, bottom: an off-distribution level."))
        sections.append(Section(f"Training `{training}`: EPIC and regret before and after", "",
                                tables=[metric_table(config, select(rows, training=training), "epic"),
                                        metric_table(config, select(rows, training=training), "regret")],
                                figures=figures))
    sections.append(Section("What the adversaries picked",
                            "Mean ensemble disagreement (variance over heads, under the reward model of the round) "
                            "of the picked inputs, and the share of picked inputs whose true reward is non-zero "
                            "(latent: disagreement at the pseudo-inputs after ascent; reward rate of the inputs "
                            "they started from).", tables=[query_table(rows)]))
    fig = curve_figure(rows)
    if fig is not None:
        sections.append(Section("Agent training", "", figures=[Figure("training_curves", fig,
                                                                       "Training episode return (mean, 95% CI).")]))
    return Report(title="Robust reward learning", question="", setup=setup, sections=sections, checks=checks)
