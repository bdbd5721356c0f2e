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
PROCGEN_AISC = "JacobPfau/procgenAISC @ 7821f2c"
TRAIN_PROCGEN = "jbkjr/train-procgen-pytorch @ 2906e6f"
# Maze as published: (setting, theirs, where it is stated, config field or None). Theirs is what the
# authors' Maze I command runs (Readme.md "Maze (Variant 1)": train.py --env_name maze_aisc
# --num_levels 100000 --distribution_mode hard --param_name hard-500 --num_timesteps 200000000).
PAPER_SETTINGS = (
    ("training env", "maze_aisc: cheese in the maze's top-right cell; --rand_region r: a random free cell of its "
     "top-right r x r region", f"{PROCGEN_AISC}, procgen/src/games/maze_aisc.cpp, mazegen.cpp deterministic_place",
     "maze_paper_regions"),
    ("test env", "maze (vanilla procgen): cheese on a random free cell other than the start",
     f"{PROCGEN_AISC}, procgen/src/games/maze.cpp place_objects; {TRAIN_PROCGEN} Readme.md (render.py --env_name "
     "maze)", None),
    ("world / maze sides", "hard: world 25, maze side uniform over 3, 5, ..., 25, centred, walls around",
     f"{PROCGEN_AISC}, maze_aisc.cpp choose_world_dim, game_reset; Readme.md --distribution_mode hard",
     "maze_paper_world"),
    ("maze generator", "Kruskal's algorithm (perfect maze)", f"{PROCGEN_AISC}, mazegen.cpp generate_maze", None),
    ("start", "the maze's bottom-left cell", "maze_aisc.cpp game_reset (agent->x = agent->y = margin + .5)", None),
    ("observation", "64x64 RGB render of the whole world", "procgen README (Environments)", "maze_paper_pixels"),
    ("actions", "15 (procgen's combos; 4 move, the rest stand still)", "procgen/env.py get_combos; "
     "basic-abstract-game.cpp game_step", None),
    ("episode limit, reward", "500 steps; 10 for the cheese, which ends the episode", "maze_aisc.cpp (timeout, REWARD)",
     "maze_paper_max_steps"),
    ("network", "IMPALA-CNN: stacks of 16, 32, 32 channels (conv3x3, maxpool 3/2, 2 residual blocks), dense 256",
     f"{TRAIN_PROCGEN}, common/model.py ImpalaModel; hyperparams/procgen/config.yml hard-500 (architecture: impala)",
     "maze_paper_width"),
    ("training steps", "200,000,000 (rand-region sweep: 80,000,000)", "Readme.md --num_timesteps 200000000; "
     "experiments/scripts/train-maze-I.sh n_steps=80*10**6", "maze_paper_total_steps"),
    ("training levels", "100,000", "Readme.md --num_levels 100000", "maze_paper_train_levels"),
    ("envs x rollout", "256 x 256", "config.yml hard-500 n_envs, n_steps", "maze_paper_num_envs"),
    ("epochs x minibatches", "3 x 8 (8,192 steps each)", "config.yml hard-500 epoch, mini_batch_per_epoch",
     "maze_paper_minibatches"),
    ("gamma, GAE lambda", "0.999, 0.95", "config.yml hard-500 gamma, lmbda", "maze_paper_gamma"),
    ("learning rate", "5e-4, Adam (eps 1e-5), annealed linearly to 0", "config.yml hard-500 learning_rate; "
     "agents/ppo.py; common/misc_util.py adjust_lr", "maze_paper_lr"),
    ("entropy, clip, value coef, grad norm", "0.01, 0.2, 0.5, 0.5", "config.yml hard-500", "maze_paper_ent_coef"),
    ("reward normalisation", "yes (VecNormalize(ob=False))", "config.yml normalize_rew; train.py", None),
)


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
    paper = rows[(rows.task == "maze_paper") & (rows.arch != "random")]
    for region, sel in (paper.groupby("rand_region", sort=True) if len(paper) else ()):
        mean, low, up = _ci(sel, "goal_share", "train")
        if not np.isnan(mean):
            checks.append(Check(f"maze as published, cheese region {region:g}: solves training-like mazes",
                                "cheese share on training-like mazes >= 0.7", format_ci(mean, low, up),
                                bool(mean >= 0.7)))
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
    if (rows.task == "maze_paper").any():
        sections.append(paper_maze_section(config, rows))
    return Report(title="Objective unidentifiability", question="", setup=setup, sections=sections,
                  checks=checks)


# --- Maze as published -------------------------------------------------------------------------

def paper_maze_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per training randomisation level (and the random policy): what the agents did in test mazes
    (cheese anywhere) and in fresh mazes drawn like their training ones."""
    paper = rows[rows.task == "maze_paper"]
    records = []
    for (arch, region), sel in paper.groupby(["arch", "rand_region"], sort=True):
        steps = sel[sel.metric == "env_steps"].value
        records.append({
            "agent": arch, "training cheese region": "corner cell" if region in (0, 1) else f"top-right {region:g}x{region:g}",
            "env steps per seed": f"{steps.iloc[0]:,.0f}" if len(steps) else "0",
            "seeds": int(sel.seed.nunique()),
            "reaches cheese (training-like mazes)": format_ci(*_ci(sel, "goal_share", "train")),
            "reaches cheese (test: cheese anywhere)": format_ci(*_ci(sel, "goal_share", "test")),
            "reaches top-right corner first (test)": format_ci(*_ci(sel, "corner_share", "test")),
            "efficiency when it reaches cheese (test)": format_ci(*_ci(sel, "efficiency", "test"))})
    return pd.DataFrame.from_records(records)


def paper_settings_table(config) -> pd.DataFrame:
    ours = {
        "maze_paper_regions": ", ".join(str(r) for r in config.maze_paper_regions),
        "maze_paper_world": f"world {config.maze_paper_world}, sides 3..{config.maze_paper_world}",
        "maze_paper_pixels": (f"{config.maze_paper_pixels}x{config.maze_paper_pixels}" if config.maze_paper_pixels
                              else f"{config.maze_paper_world}x{config.maze_paper_world} (one pixel per cell)")
        + ", 3 symbolic planes (walls, mouse, cheese)",
        "maze_paper_max_steps": f"{config.maze_paper_max_steps} steps; 1 for the cheese (no reward normalisation)",
        "maze_paper_width": ", ".join(str(c) for c in (config.maze_paper_width, 2 * config.maze_paper_width,
                                                        2 * config.maze_paper_width)) + " channels, dense 256",
        "maze_paper_total_steps": f"{config.maze_paper_total_steps:,}",
        "maze_paper_train_levels": f"{config.maze_paper_train_levels:,}",
        "maze_paper_num_envs": f"{config.maze_paper_num_envs} x {config.maze_paper_rollout_len}",
        "maze_paper_minibatches": f"{config.maze_paper_epochs} x {config.maze_paper_minibatches} (whole env sequences)",
        "maze_paper_gamma": f"{config.maze_paper_gamma:g}, 0.95",
        "maze_paper_lr": f"{config.maze_paper_lr:g}, Adam (eps 1e-5), annealed linearly to 0",
        "maze_paper_ent_coef": f"{config.maze_paper_ent_coef:g}, 0.2, 0.5, 0.5",
    }
    same = {"test env": "the same (our procgen_maze_levels, rand_region None)", "maze generator": "the same",
            "start": "the same", "actions": "the same 15", "reward normalisation": "no (cheese worth 1 instead)"}
    return pd.DataFrame([{"setting": name, "theirs": theirs, "source": source,
                          "this run": ours[field] if field else same[name]}
                         for name, theirs, source, field in PAPER_SETTINGS])


def paper_maze_section(config, rows: pd.DataFrame) -> Section:
    paper = rows[rows.task == "maze_paper"]
    trained = paper[paper.arch != "random"]
    steps = trained[trained.metric == "env_steps"].value
    seconds = trained[trained.metric == "train_seconds"]
    devices = sorted(set(paper["device"].dropna())) if "device" in paper else []
    theirs_steps = 200_000_000
    if len(steps):
        per_seed = float(steps.max())
        # Each condition's training wall time covers all its seeds (compiles included).
        per_condition = seconds.groupby("condition").value.first()
        total_steps = float(trained[trained.metric == "env_steps"].groupby("condition").value.sum().sum())
        rate = total_steps / per_condition.sum() if per_condition.sum() > 0 else float("nan")
        scale = (f"Largest run here: **{per_seed:,.0f} env steps per seed** ({100 * per_seed / theirs_steps:.3g}% of their "
                 f"200M), {config.maze_paper_num_envs} envs (theirs 256), world {config.maze_paper_world} (theirs 25), "
                 f"{'%dx%d' % ((config.maze_paper_pixels,) * 2) if config.maze_paper_pixels else 'one pixel per cell'} "
                 f"observations (theirs 64x64), on {', '.join(devices) or 'unrecorded hardware'}: training took "
                 f"{per_condition.sum() / 60:.1f} min over {len(per_condition)} condition(s), "
                 f"{rate:,.0f} env steps/s with compiles (theirs: about 30 V100-hours per training run, as the "
                 f"paper states).")
    else:
        scale = "No maze_paper agent was trained in this run (random policy only)."
    zero = trained[trained.rand_region == trained.rand_region.min()] if len(trained) else trained
    ours = (f"Our agents trained with the cheese {'in the corner cell' if len(zero) and zero.rand_region.iloc[0] in (0, 1) else 'near the corner'} "
            f"reached the cheese in {format_ci(*_ci(zero, 'goal_share', 'test'))} of test mazes and the top-right corner "
            f"first in {format_ci(*_ci(zero, 'corner_share', 'test'))}; on fresh mazes drawn like their training ones "
            f"they reached the cheese in {format_ci(*_ci(zero, 'goal_share', 'train'))}." if len(zero) else "")
    random = paper[paper.arch == "random"]
    chance = (f" A uniformly random policy reaches the cheese in {format_ci(*_ci(random, 'goal_share', 'test'))} and "
              f"the corner first in {format_ci(*_ci(random, 'corner_share', 'test'))} of test mazes." if len(random) else "")
    text = (
        f"Maze I of {LANGOSCO}, set up as the authors' code runs it (settings and their sources below): procgen-drawn "
        "mazes, a feed-forward IMPALA-CNN, their PPO settings. In training the cheese is in the maze's top-right cell "
        "(`maze_aisc`) or, for a randomisation level r, on a random free cell of its top-right r x r region; at test "
        "(vanilla `maze`) it is on any free cell. **Reaches top-right corner first**: test episodes in which the mouse "
        "enters the maze's top-right cell before (or without) reaching the cheese (0 where the cheese is in that "
        f"cell); **reaches cheese**: within the {config.maze_paper_max_steps}-step limit.\n\n"
        "**Their findings** (the paper's Maze experiment, variant I): trained with the cheese always in the top-right corner, the agent "
        "at test time often ignores the cheese and navigates competently to the top-right corner: its capabilities "
        "generalise, its goal does not (goal misgeneralisation). Their code also sweeps the size of the cheese's "
        "training region (experiments/scripts/train-maze-I.sh, 80M steps each); the agent later studied by Turner et "
        "al. (2023) was trained with the cheese in the top-right 5x5 region and at test goes sometimes to the cheese, "
        "sometimes to the corner. We do not quote numbers from their figures here.\n\n"
        f"**Ours**: {ours}{chance}\n\n**How far this run is from theirs**: {scale} Read nothing into a corner share "
        "unless the agents solve their training mazes (the first cheese column) far above the random policy.")
    return Section("Maze as published (Langosco et al. 2022, Maze I: procgen mazes, IMPALA-CNN, their PPO)", text,
                   tables=[paper_maze_table(rows), paper_settings_table(config)])
