"""Analysis and report of the learned-search experiment: rows in, `Report` out (no training)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from innerlab.experiments.learned_search.config import ARCHS, DIFFICULTIES, PROBES  # noqa: E402
from innerlab.experiments.reporting import Check, ci, controls_section, select  # noqa: E402
from innerlab.report.document import Figure, Report, Section  # noqa: E402
from innerlab.report.stats import format_ci  # noqa: E402

GUEZ = ("Guez, Mirza, Gregor, Kabra, Racanière, Weber, Raposo, Santoro, Orseau, Eccles, Wayne, Silver and "
        "Lillicrap (2019), \"An investigation of model-free planning\", ICML 2019 (arXiv:1901.03559)")
TAUFEEQUE = ("Taufeeque, Quirke, Li, Cundy, Tucker, Gleave and Garriga-Alonso (2024), \"Planning in a recurrent "
             "neural network that plays Sokoban\" (arXiv:2407.15421)")
PUBLISHED = """\
Published findings (their set-up: Boxoban, 10x10 levels with 4 boxes, IMPALA/V-trace, DRC(3,3) with 32
channels trained for about 10^9 (Guez) or 2x10^9 (Taufeeque) steps; ours is PPO at the scale stated above):

- {guez}: DRC(3,3) solves more Boxoban levels than a ResNet or a CNN at equal steps and keeps improving
  with more ticks of computation; model-free recurrent agents show planning-like behaviour (data
  efficiency, benefit of extra computation).
- {taufeeque}: giving the DRC extra "thinking steps" (the first observation repeated, no action taken)
  before it acts raises the share of medium-difficulty validation levels solved; the ResNet gains nothing;
  the DRC "paces" (walks in cycles) at the start of hard levels, and thinking steps remove most of those
  cycles; linear probes read the agent's future box moves from its hidden state.
""".format(guez=GUEZ, taufeeque=TAUFEEQUE)


def published_table() -> pd.DataFrame:
    """The published numbers our measures sit beside (their scale, not ours: see PUBLISHED)."""
    t = "Taufeeque et al. 2024"
    rows = [
        (t, "DRC(3,3), 2e9 steps", "share of Boxoban valid-medium solved vs thinking steps 0/1/2/4/8/16",
         ".766 / .794 / .806 / .813 / .811 / .805"),
        (t, "DRC(3,3), 2e9 steps", "share of Boxoban hard solved, 0 -> 4 thinking steps", ".428 -> .494"),
        (t, "DRC(1,1)", "share of valid-medium solved, 0 -> best thinking steps", ".292 -> .368"),
        (t, "ResNet", "share solved, any thinking steps (valid-medium / hard)", ".594 / .262 (constant)"),
        (t, "DRC(3,3)", "share of Boxoban test-unfiltered solved", ".993"),
        ("Guez et al. 2019 (read off their figure, ~1e9 steps)", "DRC(3,3) / ResNet / DRC(1,1)",
         "share of Boxoban unfiltered test levels solved", "~.988 / ~.957 / ~.917"),
        ("Bush et al. 2025", "DRC(3,3)", "macro F1 of linear probes of the agent's / boxes' future directions, "
         "trained network vs observation-only baseline", "> 0.8 / 0.86 vs 0.2 / 0.25"),
    ]
    return pd.DataFrame(rows, columns=["source", "agent", "measure", "published"])


def _trained_archs(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """(arch, variant) of the trained conditions present, in a fixed order."""
    present = set(map(tuple, rows[["arch", "variant"]].drop_duplicates().to_numpy()))
    order = [(a, "fixed") for a in ARCHS] + [("drc", "think")]
    return [c for c in order if c in present]


def _label(arch: str, variant: str) -> str:
    return arch if variant == "fixed" else f"{arch}+think"


_ci = ci


def _fmt(rows, metric, **where) -> str:
    mean, low, high = _ci(rows, metric, **where)
    return format_ci(mean, low, high)


def control_checks(config, rows: pd.DataFrame) -> list[Check]:
    checks = []
    planner = rows[rows.arch == "planner"]
    budgets = sorted(b for b in planner.budget.unique() if b > 0)
    if len(budgets) >= 2:
        small = _ci(planner, "solved", budget=budgets[0], difficulty="all", split="test")
        large = _ci(planner, "solved", budget=budgets[-1], difficulty="all", split="test")
        checks.append(Check(f"planner: more budget, more solved ({budgets[0]} -> {budgets[-1]} simulations)",
                            "solved at the largest budget > at the smallest, CIs apart",
                            f"{format_ci(*small)} -> {format_ci(*large)}", bool(large[1] > small[2])))
    resnet = select(rows, arch="resnet", variant="fixed", metric="action_agreement")
    if len(resnet):
        low = float(resnet.value.min())
        checks.append(Check("resnet: thinking steps change nothing", "identical actions on every level, every n",
                            f"min share of levels with identical actions {low:.3f}", low == 1.0))
    for probe in PROBES:
        untrained = select(rows, arch="drc", variant="fixed", metric="probe_accuracy", probe=f"{probe} (untrained)")
        chance = select(rows, arch="drc", variant="fixed", metric="probe_chance", probe=probe)
        if len(untrained) and len(chance):
            u = _ci(untrained)
            c = float(chance.value.mean())
            # Near chance: closer to chance than to a perfect probe (fixed before any run).
            checks.append(Check(f"untrained drc: {probe} probe near chance",
                                f"closer to chance ({c:.2f}) than to 1", format_ci(*u), bool(u[0] < (c + 1) / 2)))
    random = rows[rows.arch == "random"]
    if len(random):
        floor = _ci(random, "solved", split="train", difficulty="all")
        checks.append(Check("random policy: share of training levels solved", "reported (the floor)",
                            format_ci(*floor), None))
        for arch, variant in _trained_archs(rows):
            got = _ci(rows, "solved", arch=arch, variant=variant, split="train", difficulty="all",
                      thinking_steps=0)
            checks.append(Check(f"{_label(arch, variant)}: beats random on training levels",
                                "solved CI low > random's CI high", format_ci(*got), bool(got[1] > floor[2])))
    return checks


def thinking_table(rows: pd.DataFrame) -> pd.DataFrame:
    out = []
    for arch, variant in _trained_archs(rows):
        sel = select(rows, arch=arch, variant=variant, split="test")
        for n in sorted(sel.thinking_steps.unique()):
            entry = {"agent": _label(arch, variant), "thinking steps": int(n)}
            for d in ("all", *DIFFICULTIES):
                entry[f"solved ({d})"] = _fmt(sel, "solved", thinking_steps=n, difficulty=d)
            entry["cycle rate"] = _fmt(sel, "cycle_rate", thinking_steps=n, difficulty="all")
            entry["cycle rate (solved levels)"] = _fmt(sel, "cycle_rate_solved", thinking_steps=n, difficulty="all")
            out.append(entry)
    random = select(rows, arch="random", split="test")
    if len(random):
        entry = {"agent": "random", "thinking steps": 0}
        for d in ("all", *DIFFICULTIES):
            entry[f"solved ({d})"] = _fmt(random, "solved", difficulty=d)
        entry["cycle rate"] = _fmt(random, "cycle_rate", difficulty="all")
        entry["cycle rate (solved levels)"] = _fmt(random, "cycle_rate_solved", difficulty="all")
        out.append(entry)
    return pd.DataFrame(out)


GAIN_STEPS = 4
"""The thinking steps of the headline gain, fixed before any run: where Taufeeque et al.'s DRC(3,3)
peaked (medium and hard levels). Picking the best n after the fact would bias the gain upwards."""


def gain_steps(rows: pd.DataFrame) -> int:
    """GAIN_STEPS, or the largest n > 0 below it when the run did not evaluate it (0: none)."""
    present = sorted(n for n in rows.thinking_steps.unique() if n > 0)
    if GAIN_STEPS in present:
        return GAIN_STEPS
    below = [n for n in present if n < GAIN_STEPS]
    return int(below[-1]) if below else (int(present[0]) if present else 0)


def thinking_gain(rows: pd.DataFrame, arch: str, variant: str = "fixed",
                  difficulty: str = "all") -> tuple[float, float, float]:
    """Per seed, solved at n = gain_steps(rows) minus solved at n = 0 (test levels of `difficulty`);
    CI over seeds."""
    sel = select(rows, arch=arch, variant=variant, split="test", difficulty=difficulty, metric="solved")
    n = gain_steps(rows)
    if not len(sel) or n == 0:
        return (np.nan, np.nan, np.nan)
    wide = sel.pivot_table(index="seed", columns="thinking_steps", values="value")
    return ci(pd.DataFrame({"value": (wide[n] - wide[0]).to_numpy()}))


def planner_table(rows: pd.DataFrame) -> pd.DataFrame:
    planner = rows[(rows.arch == "planner") & (rows.budget > 0)]
    out = []
    for budget in sorted(planner.budget.unique()):
        entry = {"simulations per step": int(budget)}
        for d in ("all", *DIFFICULTIES):
            entry[f"solved ({d})"] = _fmt(planner, "solved", budget=budget, difficulty=d, split="test")
        out.append(entry)
    return pd.DataFrame(out)


def probe_table(rows: pd.DataFrame) -> pd.DataFrame:
    out = []
    for arch, variant in _trained_archs(rows):
        sel = select(rows, arch=arch, variant=variant, split="valid")
        for probe in PROBES:
            trained = select(sel, metric="probe_accuracy", probe=probe)
            if not len(trained):
                continue
            out.append({"agent": _label(arch, variant), "probe": probe,
                        "trained": _fmt(sel, "probe_accuracy", probe=probe),
                        "untrained (floor)": _fmt(sel, "probe_accuracy", probe=f"{probe} (untrained)"),
                        "chance": _fmt(sel, "probe_chance", probe=probe)})
    return pd.DataFrame(out)


def pacing_table(rows: pd.DataFrame) -> pd.DataFrame:
    out = []
    for arch, variant in [*_trained_archs(rows), ("random", "fixed"), ("planner", "fixed")]:
        sel = select(rows, arch=arch, variant=variant, split="test", thinking_steps=0)
        if arch == "planner":
            sel = sel[sel.budget == sel.budget.max()] if len(sel) else sel
        if not len(sel):
            continue
        entry = {"agent": _label(arch, variant) if arch != "planner" else f"planner ({int(sel.budget.max())} sims)"}
        for d in ("all", *DIFFICULTIES):
            entry[f"cycle rate ({d})"] = _fmt(sel, "cycle_rate", difficulty=d)
        for d in ("all", "hard"):
            entry[f"on solved levels ({d})"] = _fmt(sel, "cycle_rate_solved", difficulty=d)
        out.append(entry)
    return pd.DataFrame(out)


def search_figure(rows: pd.DataFrame) -> plt.Figure:
    """Share of test levels solved vs computation before the first action: forward passes for the
    learned agents (1 + thinking steps), simulations per step for the planner; one log axis."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, difficulty in zip(axes, ("all", "hard")):
        for arch, variant in _trained_archs(rows):
            sel = select(rows, arch=arch, variant=variant, split="test", difficulty=difficulty, metric="solved")
            ns = sorted(sel.thinking_steps.unique())
            stats = np.array([_ci(sel, thinking_steps=n) for n in ns]).reshape(-1, 3)
            x = np.asarray(ns) + 1
            ax.plot(x, stats[:, 0], marker="o", label=_label(arch, variant))
            ax.fill_between(x, stats[:, 1], stats[:, 2], alpha=0.2)
        planner = select(rows, arch="planner", split="test", difficulty=difficulty, metric="solved")
        if len(planner):
            bs = sorted(planner.budget.unique())
            stats = np.array([_ci(planner, budget=b) for b in bs]).reshape(-1, 3)
            ax.plot(bs, stats[:, 0], marker="s", color="black", linestyle="--", label="MCTS planner (true model)")
            ax.fill_between(bs, stats[:, 1], stats[:, 2], color="black", alpha=0.1)
        random = select(rows, arch="random", split="test", difficulty=difficulty, metric="solved")
        if len(random):
            ax.axhline(_ci(random)[0], color="grey", linestyle=":", label="random policy")
        ax.set_xscale("log", base=2)
        ax.set_title(f"test levels: {difficulty}")
        ax.set_ylim(-0.02, 1.02)
    fig.supxlabel("computation before acting: 1 + thinking steps (agents) / simulations per step (planner)",
                  fontsize=10)
    axes[0].set_ylabel("share of levels solved (mean, 95% CI)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def build_report(config, rows: pd.DataFrame) -> Report:
    checks = control_checks(config, rows)
    controls = controls_section(
        checks, "All controls pass: the planner turns computation into solved levels, the ResNet cannot use "
        "thinking steps, the probes' floor is near chance, and every agent learned more than a random policy.")
    edges = []
    for d in DIFFICULTIES:
        length = select(rows, metric="optimal_length", difficulty=d)
        count = select(rows, metric="levels", difficulty=d)
        if len(length):
            edges.append(f"{d}: {int(count.value.iloc[0])} levels, mean optimal length {length.value.iloc[0]:.1f}")
    setup = (f"Sokoban {config.size}x{config.size} (outer walls included), {config.num_boxes} box(es); "
             f"{config.train_levels} training, {config.valid_levels} validation and {config.test_levels} test levels "
             f"(disjoint, reverse-play generator, level seed {config.level_seed}); episodes of at most {config.max_steps} "
             f"steps; Boxoban rewards (-0.1 a step, +1 / -1 box on / off target, +10 solved). Agents trained with PPO "
             f"for {config.updates() * config.num_envs * config.rollout_len:,} env steps per seed, {config.num_seeds} "
             f"seeds: DRC({config.drc_depth}, {config.ticks}) with {config.width} channels, a ResNet of "
             f"{config.resnet_blocks} blocks x {config.width} channels, an LSTM of {config.lstm_width}; MLP head "
             f"{config.mlp_width}; Adam lr {config.lr:g} (LSTM {config.lstm_lr:g}) annealed to 0, "
             f"{config.update_epochs} epochs x {config.num_minibatches} minibatches per update of {config.num_envs} "
             f"envs x {config.rollout_len} steps, discount {config.gamma:g}. Evaluation: {'greedy' if config.greedy_eval else 'sampled'} actions, first episode "
             f"of each level. Difficulty bins (tertiles of the exact solver's optimal length): {'; '.join(edges)}.")

    sections = [controls]
    findings = []
    n_gain = gain_steps(rows)
    for arch, variant in _trained_archs(rows):
        for difficulty in ("all", "hard"):
            gain = thinking_gain(rows, arch, variant, difficulty)
            if np.isnan(gain[0]):
                continue
            verdict = ("helps" if gain[1] > 0 else "hurts" if gain[2] < 0 else "makes no difference we can resolve")
            findings.append(f"- {_label(arch, variant)}, {difficulty} test levels: solved with {n_gain} thinking "
                            f"steps minus with none: {format_ci(*gain)} (thinking {verdict}).")
    thinking_text = ("Share of test levels solved after n extra forward passes on the first observation (a "
                     "DRC pass is N ticks), per difficulty bin, and the share of levels with a cycle in the first "
                     f"{config.pacing_window} steps.\n\n" + "\n".join(findings))
    sections.append(Section("Thinking steps (the headline)", thinking_text, tables=[thinking_table(rows)],
                            figures=[Figure("thinking_steps", search_figure(rows),
                                            "Solved vs computation before acting; the planner's budget on the "
                                            "same axis.")]))
    sections.append(Section("Pacing", "Share of test levels in which the agent returns to an earlier state without "
                            f"pushing a box within its first {config.pacing_window} steps (no thinking steps), over "
                            "all levels and over the levels it went on to solve (an agent that fails a level "
                            "wanders, so over all levels the rate mostly counts failures). Taufeeque et al. report "
                            "such cycles at the start of hard levels, and that thinking steps replace them; the "
                            "thinking-steps table above gives both rates vs n.",
                            tables=[pacing_table(rows)]))
    probe = probe_table(rows)
    if len(probe):
        claims = []
        for arch, variant in _trained_archs(rows):
            for name in PROBES:
                trained = _ci(rows, "probe_accuracy", arch=arch, variant=variant, probe=name)
                floor = _ci(rows, "probe_accuracy", arch=arch, variant=variant, probe=f"{name} (untrained)")
                if np.isnan(trained[0]):
                    continue
                beats = trained[1] > floor[2]
                claims.append(f"- {_label(arch, variant)}, {name}: trained {format_ci(*trained)} vs untrained "
                              f"{format_ci(*floor)}: " + ("the plan is readable beyond the floor."
                                                         if beats else "not above the floor: no claim."))
        sections.append(Section("Plans in the hidden state (linear probes)",
                                "Per-cell linear probes fitted on half the validation levels, scored on the other "
                                "half; `next_push` is the accuracy of naming the next push (box and direction), "
                                f"`push_within_k` the balanced accuracy of which boxes move within k = "
                                f"{config.probe_horizon} steps, `box_path` the balanced accuracy, over every floor "
                                "cell, of the direction a box will next be pushed out of it in the rest of the "
                                "episode (Taufeeque et al.'s box directions; chance 0.2). The floor is the same probe on an untrained network "
                                "of the same architecture fed the same observations (it reads what the observation "
                                "alone gives away).\n\n" + "\n".join(claims), tables=[probe]))
    if (rows.arch == "planner").any():
        sections.append(Section("Explicit search (the known answer)",
                                "MCTS (mctx, muzero_policy) over the true environment, uniform prior, leaves worth 0, "
                                f"paths of at most {config.planner_depth} edges, episode-bounded; one search per step.",
                                tables=[planner_table(rows)]))
    think = select(rows, arch="drc", variant="think")
    if len(think):
        corr = _ci(think, "think_length_corr", thinking_steps=0)
        rate = _ci(think, "think_rate", thinking_steps=0, split="test", difficulty="all")
        rate_bins = "; ".join(f"{d} {_fmt(think, 'think_rate', thinking_steps=0, split='test', difficulty=d)}"
                              for d in DIFFICULTIES)
        solved = _ci(think, "solved", thinking_steps=0, split="test", difficulty="all")
        fixed = _ci(rows, "solved", arch="drc", variant="fixed", thinking_steps=0, split="test", difficulty="all")
        sections.append(Section("Adaptive computation (a think action)",
                                "A DRC whose action set has a fifth action, think: the world does not move, the "
                                "clock and the step penalty do (plus `think_cost` = "
                                f"{config.think_cost:g}). Trained for the same env steps as the fixed DRC.\n\n"
                                f"- share of its steps spent thinking: {format_ci(*rate)} ({rate_bins});\n"
                                f"- correlation, across test levels, of its number of thinks with the level's optimal "
                                f"solution length: {format_ci(*corr)};\n"
                                f"- share of test levels solved: {format_ci(*solved)} vs the fixed-compute DRC "
                                f"{format_ci(*fixed)}."))
    sections.append(Section("Published findings beside ours", PUBLISHED, tables=[published_table()]))
    sections.append(Section("Not measured here", "Part two of the issue (an agent that must model a rival driven by "
                            "hard-coded search) is not built yet."))
    return Report(title="Learned search: is the trained agent itself an optimizer?", question="", setup=setup,
                  sections=sections, checks=checks)
