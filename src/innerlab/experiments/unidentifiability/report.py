"""Analysis and report of the unidentifiability experiment: rows in, `Report` out (no training)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from innerlab.experiments.reporting import Check, ci, controls_section, select  # noqa: E402
from innerlab.experiments.unidentifiability.config import ATTRIBUTIONS, PROXIES, parse_capacity  # noqa: E402
from innerlab.report.document import Figure, Report, Section  # noqa: E402
from innerlab.report.stats import format_ci  # noqa: E402

LANGOSCO = ("Langosco, Koch, Sharkey, Pfau, Orseau and Krueger (2022), \"Goal Misgeneralization in Deep "
            "Reinforcement Learning\", ICML 2022 (arXiv:2105.14111)")
RAMANAUSKAS = ("Ramanauskas and Şimşek (2023), \"Colour versus Shape Goal Misgeneralization in "
               "Reinforcement Learning: A Case Study\" (arXiv:2312.03762)")


def _ci(rows: pd.DataFrame, metric: str, suite: str, proxy: str = "-", **where) -> tuple[float, float, float]:
    return ci(rows, metric, suite=suite, proxy=proxy, **where)


def _base(config) -> dict:
    return {"arch": config.arch, "width": config.width, "depth": config.depth,
            "diversity": float(config.diversity), "total_steps": int(config.total_steps)}


def sweeps(config, rows: pd.DataFrame) -> dict[str, list[tuple[str, pd.DataFrame]]]:
    """Each sweep's (label, rows) in order: one field varied from the base condition."""
    proxies = rows[rows.task == "proxies"]
    base = _base(config)
    out = {}
    specs = {
        "architecture": [(a, {**base, "arch": a}) for a in config.sweep_arch],
        "capacity (width x depth)": [(f"{w}x{d}", {**base, "width": w, "depth": d})
                                     for w, d in map(parse_capacity, config.sweep_capacity)],
        "training diversity": [(f"{v:g}", {**base, "diversity": float(v)}) for v in config.sweep_diversity],
        "training steps": [(f"{v:,}", {**base, "total_steps": int(v)}) for v in config.sweep_steps],
    }
    for name, entries in specs.items():
        found = [(label, select(proxies, **fields)) for label, fields in entries]
        found = [(label, sel) for label, sel in found if len(sel)]
        if found:
            out[name] = found
    return out


def heatmap_figure(config, rows: pd.DataFrame, suite: str = "pairs") -> plt.Figure | None:
    panels = sweeps(config, rows)
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, (name, entries) in zip(axes[0], panels.items()):
        grid = np.full((len(entries), len(ATTRIBUTIONS)), np.nan)
        text = [["" for _ in ATTRIBUTIONS] for _ in entries]
        for i, (label, sel) in enumerate(entries):
            for j, proxy in enumerate(ATTRIBUTIONS):
                mean, low, high = _ci(sel, "proxy_share", suite, proxy)
                grid[i, j] = mean
                text[i][j] = f"{mean:.2f}\n[{low:.2f},{high:.2f}]" if not np.isnan(mean) else ""
        ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for i in range(len(entries)):
            for j in range(len(ATTRIBUTIONS)):
                ax.text(j, i, text[i][j], ha="center", va="center", fontsize=6.5,
                        color="white" if (np.nan_to_num(grid[i, j]) < 0.6) else "black")
        ax.set_xticks(range(len(ATTRIBUTIONS)))
        ax.set_xticklabels(ATTRIBUTIONS, rotation=30, fontsize=8)
        ax.set_yticks(range(len(entries)))
        ax.set_yticklabels([label for label, _ in entries], fontsize=8)
        ax.set_title(name, fontsize=10)
    axes[0][0].set_ylabel("condition")
    fig.suptitle("Proxy attribution on the disambiguating levels (share of levels, mean [95% CI] over seeds)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def pair_figure(config, rows: pd.DataFrame) -> plt.Figure:
    """Per pair suite, what the base-condition agents and the random policy went to."""
    proxies = rows[rows.task == "proxies"]
    pairs = sorted(s for s in proxies.suite.unique() if s.startswith("pair:")) + ["none"]
    groups = [("base", select(proxies, **_base(config))), ("random", proxies[proxies.arch == "random"])]
    groups = [(name, sel) for name, sel in groups if len(sel)]
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 3.6), squeeze=False, sharey=True)
    for ax, (name, sel) in zip(axes[0], groups):
        bottom = np.zeros(len(pairs))
        for proxy in ATTRIBUTIONS:
            means = np.array([_ci(sel, "proxy_share", suite, proxy)[0] for suite in pairs])
            means = np.nan_to_num(means)
            ax.bar(range(len(pairs)), means, bottom=bottom, label=proxy)
            bottom += means
        ax.set_xticks(range(len(pairs)))
        ax.set_xticklabels([p.replace("pair:", "") for p in pairs], fontsize=8)
        ax.set_title(f"{name} agents" if name == "base" else "random policy")
        ax.set_ylim(0, 1.02)
    axes[0][0].set_ylabel("share of levels (mean over seeds)")
    axes[0][-1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def maze_figure(rows: pd.DataFrame) -> plt.Figure | None:
    maze = rows[(rows.task == "maze") & (rows.arch != "random")]
    if not len(maze):
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    levels = sorted(maze.diversity.unique())
    for metric, colour in (("corner_share", "tab:red"), ("goal_share", "tab:green")):
        stats = np.array([_ci(maze[maze.diversity == d], metric, "test") for d in levels])
        ax.errorbar(levels, stats[:, 0], yerr=[stats[:, 0] - stats[:, 1], stats[:, 2] - stats[:, 0]],
                    marker="o", capsize=3, color=colour, label=metric.replace("_", " ") + " (test)")
    random = rows[(rows.task == "maze") & (rows.arch == "random")]
    if len(random):
        ax.axhline(_ci(random, "corner_share", "test")[0], color="tab:red", linestyle=":", linewidth=1,
                   label="corner share, random policy")
    ax.set_xlabel("training diversity (share of mazes with the goal anywhere)")
    ax.set_ylabel("share of test episodes (95% CI)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def control_checks(config, rows: pd.DataFrame) -> list[Check]:
    checks = []
    proxies = rows[(rows.task == "proxies") & (rows.arch != "random")]
    high = proxies[np.isclose(proxies.diversity, 0.2)]
    for (arch, width, depth, steps), sel in high.groupby(["arch", "width", "depth", "total_steps"]):
        mean, low, up = _ci(sel, "objective_generalisation", "pairs")
        if np.isnan(mean):
            continue
        checks.append(Check(f"diversity 0.2 ({arch} {width}x{depth}, {steps:,} steps): proxies told apart in training",
                            "objective generalisation >= 0.8", format_ci(mean, low, up), bool(mean >= 0.8)))
    random = rows[(rows.task == "proxies") & (rows.arch == "random")]
    if len(random):
        parts = [f"{p} {format_ci(*_ci(random, 'proxy_share', 'pairs', p))}" for p in ATTRIBUTIONS]
        checks.append(Check("random policy (chance level)", "reported, no threshold", "; ".join(parts), None))
    # The maze's corner share means something only if the agent learned to solve training mazes.
    mazes = rows[(rows.task == "maze") & (rows.arch != "random")]
    corner_trained = mazes[np.isclose(mazes.diversity, 0.0)]
    if len(corner_trained):
        mean, low, up = _ci(corner_trained, "goal_share", "train")
        if not np.isnan(mean):
            checks.append(Check("maze, goal in the corner in training: solves training mazes",
                                "goal share on training mazes >= 0.7", format_ci(mean, low, up), bool(mean >= 0.7)))
    random_maze = rows[(rows.task == "maze") & (rows.arch == "random")]
    if len(random_maze):
        checks.append(Check("maze, random policy (chance level)", "reported, no threshold",
                            f"corner share {format_ci(*_ci(random_maze, 'corner_share', 'test'))}; goal share "
                            f"{format_ci(*_ci(random_maze, 'goal_share', 'test'))}", None))
    return checks


def condition_table(rows: pd.DataFrame) -> pd.DataFrame:
    proxies = rows[rows.task == "proxies"]
    records = []
    for keys, sel in proxies.groupby(["arch", "width", "depth", "diversity", "total_steps"], sort=False):
        rec = dict(zip(["arch", "width", "depth", "diversity", "steps"], keys))
        rec["train return"] = format_ci(*_ci(sel, "train_return", "train")) if (sel.metric == "train_return").any() else "-"
        rec["objective gen."] = format_ci(*_ci(sel, "objective_generalisation", "pairs"))
        rec["capability gen."] = format_ci(*_ci(sel, "capability_generalisation", "pairs"))
        rec["competent misgen."] = format_ci(*_ci(sel, "competent_misgeneralisation", "pairs"))
        rec["efficiency"] = format_ci(*_ci(sel, "efficiency", "pairs"))
        rec["no-feature suite: capability"] = format_ci(*_ci(sel, "capability_generalisation", "none"))
        records.append(rec)
    return pd.DataFrame.from_records(records)


def attribution_table(config, rows: pd.DataFrame) -> pd.DataFrame:
    proxies = rows[rows.task == "proxies"]
    records = []
    for name, sel in (("base", select(proxies, **_base(config))), ("random", proxies[proxies.arch == "random"])):
        if not len(sel):
            continue
        for suite in [s for s in ("train", "pairs") if s in set(sel.suite)] + sorted(
                s for s in sel.suite.unique() if s.startswith("pair:")) + ["none"]:
            rec = {"agent": name, "suite": suite}
            for proxy in ATTRIBUTIONS:
                rec[proxy] = format_ci(*_ci(sel, "proxy_share", suite, proxy))
            records.append(rec)
    return pd.DataFrame.from_records(records)


def maze_table(rows: pd.DataFrame) -> pd.DataFrame:
    maze = rows[rows.task == "maze"]
    records = []
    for (arch, diversity), sel in maze.groupby(["arch", "diversity"], sort=True):
        records.append({"agent": arch, "training diversity": f"{diversity:g}",
                        "corner share (test)": format_ci(*_ci(sel, "corner_share", "test")),
                        "goal share (test)": format_ci(*_ci(sel, "goal_share", "test")),
                        "goal share (train mazes)": format_ci(*_ci(sel, "goal_share", "train")),
                        "efficiency (test)": format_ci(*_ci(sel, "efficiency", "test"))})
    return pd.DataFrame.from_records(records)


def build_report(config, rows: pd.DataFrame) -> Report:
    base = _base(config)
    setup = (
        f"Proxy worlds: ObjectWorld {config.grid_size}x{config.grid_size}"
        f"{' with random maze walls' if config.maze_walls else ''}, {config.num_objects} objects, episodes of at "
        f"most {config.max_steps} steps that end when any object is touched. Three proxies: **colour** (colour 0), "
        f"**shape** (shape 0), **corner** (in the top-right {config.corner}x{config.corner} region). In a training "
        f"level the one rewarded object (+1) has all three features and the distractors none; the true objective "
        f"is **{config.true_proxy}**, which only tells the proxies apart off-distribution. A fraction `diversity` "
        f"of the {config.train_levels:,} training levels decorrelates them (each feature on its own object; the "
        f"{config.true_proxy} object is rewarded). Test suites of {config.test_levels} levels each: every pair of "
        f"proxies on two different objects (`pairs` pools them) and a suite with no featured object (`none`).\n\n"
        f"Agents: PPO, egocentric view, {config.num_seeds} seeds per condition (seeds {config.seed_offset}.."
        f"{config.seed_offset + config.num_seeds - 1}). Base condition: {base['arch']} {base['width']}x"
        f"{base['depth']}, diversity {base['diversity']:g}, {base['total_steps']:,} steps per seed; each sweep "
        f"varies one field from it.\n\n"
        "**Proxy attribution** (`proxy_share`): the share of levels in which the first object the agent touches "
        "has that proxy's feature (`featureless`: an object with none; `nothing`: no object within the time "
        "limit). **Objective generalisation**: touched the truly rewarded object, over levels that have one. "
        "**Capability generalisation**: touched a featured object (any object in the `none` suite); "
        "**efficiency**: shortest path / steps taken when it did. **Competent misgeneralisation**: capable and "
        "not aligned. Intervals are 95% percentile-bootstrap intervals over seeds."
    )
    checks = control_checks(config, rows)
    sections = [controls_section(
        checks, "Every control passes.",
        extra="The attribution metric itself is checked by a test: scripted agents that each pursue one proxy are "
              "attributed to that proxy in >= 95% of disambiguating levels.")]

    proxies = rows[rows.task == "proxies"]
    base_rows = select(proxies, **base)
    if len(base_rows):
        shares = {p: _ci(base_rows, "proxy_share", "pairs", p) for p in ATTRIBUTIONS}
        favourite = max(PROXIES, key=lambda p: np.nan_to_num(shares[p][0]))
        text = (f"On the disambiguating levels the base agents ({base['arch']}, diversity {base['diversity']:g}) "
                f"went to: " + "; ".join(f"{p} {format_ci(*shares[p])}" for p in ATTRIBUTIONS) + ". "
                f"The most pursued proxy is **{favourite}**. Objective generalisation "
                f"{format_ci(*_ci(base_rows, 'objective_generalisation', 'pairs'))}, capability generalisation "
                f"{format_ci(*_ci(base_rows, 'capability_generalisation', 'pairs'))}, competent misgeneralisation "
                f"{format_ci(*_ci(base_rows, 'competent_misgeneralisation', 'pairs'))}.")
        sections.append(Section("Which proxy is learned", text, tables=[attribution_table(config, rows)],
                                figures=[Figure("pairs", pair_figure(config, rows),
                                                "What the base agents and a random policy touched first in each "
                                                "pair suite (stacked shares, mean over seeds).")]))
    heat = heatmap_figure(config, rows)
    if heat is not None:
        sections.append(Section(
            "Sweeps: inductive bias, capacity, diversity, training length",
            "Each panel varies one field from the base condition; cells are the share of disambiguating levels "
            "attributed to each proxy. Published work found colour-vs-shape preferences that flip with the seed "
            f"alone ({RAMANAUSKAS}), so read a preference only where its interval excludes the others.",
            tables=[condition_table(rows)],
            figures=[Figure("proxy_heatmaps", heat, "Proxy-preference heatmaps over each sweep (mean and 95% CI "
                            "over seeds).")]))
    maze_rows = rows[rows.task == "maze"]
    if len(maze_rows):
        fig = maze_figure(rows)
        trained = maze_rows[maze_rows.arch != "random"]
        zero = trained[np.isclose(trained.diversity, trained.diversity.min())] if len(trained) else trained
        ours = (f"Our agents trained with diversity {trained.diversity.min():g} went to the corner instead of the "
                f"goal in {format_ci(*_ci(zero, 'corner_share', 'test'))} of test episodes and reached the goal in "
                f"{format_ci(*_ci(zero, 'goal_share', 'test'))}." if len(zero) else "")
        text = (
            f"A replication in the style of {LANGOSCO}, Maze I: random {config.maze_size}x{config.maze_size} mazes "
            f"({config.maze_openings:g} of inner walls removed), the goal in the top-right corner in training except "
            "in a fraction `diversity` of mazes where it is anywhere; at test the goal is anywhere but the corner. "
            "**Corner share**: test episodes in which the agent reaches the top-right cell before (or instead of) "
            "the goal.\n\n"
            "**The paper's findings** (procgen Maze, 64x64 RGB, a feed-forward IMPALA-style PPO agent): trained "
            "with the cheese always in the top-right corner, the agent at test often navigates competently to the "
            "top-right corner and ignores the cheese: its capabilities generalise, its goal does not. In CoinRun "
            "the paper also varies the share of training levels in which the coin is placed at random, and finds "
            "that a small share (a few percent) already sharply reduces goal misgeneralisation.\n\n"
            f"**Ours**: {ours} The table and figure give the corner share as training diversity rises.")
        sections.append(Section("Maze replication (Langosco et al. 2022, Maze I)", text,
                                tables=[maze_table(rows)],
                                figures=[Figure("maze_corner_share", fig, "Corner share and goal share on test mazes "
                                                "against training diversity (95% CIs over seeds).")] if fig else []))
    return Report(title="Objective unidentifiability", question="", setup=setup, sections=sections,
                  checks=checks)
