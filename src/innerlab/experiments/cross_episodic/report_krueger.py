"""The cross-episodic report's like-for-like section: Krueger et al.'s unit-test grid, run with
their learners (REINFORCE in PBT, bandit Q-learning) beside our PPO, in tables shaped like their
figure (rows: environment swapping x PBT interval; columns: population)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from innerlab.experiments.reporting import Check, ci, select  # noqa: E402
from innerlab.report.document import Figure, Section  # noqa: E402
from innerlab.report.stats import bootstrap_ci, format_ci  # noqa: E402

SOURCE = "capybaralet/HIDS_SIDS_code_release at edd14ea"
LEARNER_NAMES = {"reinforce": "REINFORCE in PBT (theirs)", "ppo": "PPO in PBT (ours)", "q": "Q-learning (theirs)"}
SWAP_OF = {"plain": "none", "pbt": "none", "pbt_weights": "none", "pbt_sym": "none", "plain_swap": "deterministic",
           "pbt_swap": "deterministic", "pbt_swap_sym": "deterministic"}
KRUEGER_REGIMES = tuple(SWAP_OF)


def krueger_rows(config, rows: pd.DataFrame, learner: str) -> pd.DataFrame:
    """A learner's rows on their grid (PPO's: the populations and intervals of the grid)."""
    if "learner" not in rows:
        return rows.iloc[:0]
    sel = rows[(rows.learner == learner) & (rows.env == "pd") & rows.regime.isin(KRUEGER_REGIMES)]
    if learner == "ppo":
        sel = sel[sel.population.isin(config.krueger_ppo_population) & sel.interval.isin(config.krueger_interval)
                  & (sel.regime != "pbt_weights")]
    return sel


def _final(rows: pd.DataFrame, metric: str = "exploitation_rate", **where):
    return ci(rows, metric, stage="final", **where)


def grid_table(config, rows: pd.DataFrame, learner: str) -> pd.DataFrame:
    """Rows (swapping, PBT interval[, no explore]); columns #agents = N; cells final P(cooperate)."""
    sel = krueger_rows(config, rows, learner)
    if not len(sel):
        return pd.DataFrame()
    populations = sorted(sel.population.unique())
    records = []
    order = [(swap, regime, interval) for swap in ("none", "deterministic") for regime in KRUEGER_REGIMES
             if SWAP_OF[regime] == swap for interval in sorted(sel.interval.unique())]
    for swap, regime, interval in order:
        group = sel[(sel.regime == regime) & (sel.interval == interval)]
        if not len(group):
            continue
        label = "no PBT" if interval == 0 else f"PBT interval {interval}"
        if regime == "pbt_weights":
            label += ", no explore (their PBT_no_EXPLORE)"
        if regime.endswith("_sym"):
            label += ", explore x1.25 / x0.8 (not theirs: no drift in log lr)"
        rec = {"env swapping": swap if learner != "ppo" else {"none": "none", "deterministic": "random shuffle"}[swap],
               "outer loop": label}
        for n in populations:
            rec[f"#agents={n}"] = format_ci(*_final(group, population=n))
        lr = [_final(group, "final_lr", population=n)[0] for n in populations]
        rec["final lr (geo. mean)"] = " / ".join(f"{v:.2g}" for v in lr)
        records.append(rec)
    return pd.DataFrame.from_records(records)


def q_table(config, rows: pd.DataFrame) -> pd.DataFrame:
    sel = krueger_rows(config, rows, "q")
    records = []
    for regime in ("plain", "plain_swap"):
        group = select(sel, regime=regime)
        if len(group):
            records.append({"env swapping": SWAP_OF[regime], "learners": int(group.population.iloc[0]),
                            "running share cooperating at the end": format_ci(*_final(group)),
                            "learners with Q(cooperate) > Q(defect)": format_ci(*_final(group, "exploiting_members"))})
    return pd.DataFrame.from_records(records)


MIN_EFFECT = 0.01
"""A direction needs the means to differ by more than this (the tables' resolution) as well as the CIs to separate."""


def _direction(cell, plain) -> str:
    """'+' / '-' when the cell's CI lies wholly above / below the no-PBT cell's and the means differ by
    more than MIN_EFFECT, '0' otherwise."""
    if np.isnan(cell[0]) or np.isnan(plain[0]):
        return "n/a"
    if abs(cell[0] - plain[0]) <= MIN_EFFECT:
        return "0"
    return "+" if cell[1] > plain[2] else "-" if cell[2] < plain[1] else "0"


def drift_lr(config, interval: int) -> float:
    """The geometric-mean learning rate their explore step alone leads to (no selection): lr starts at
    10^U(-2, 0) (geometric mean 0.1) and each of steps / interval explore steps adds 0.5 ln(1.2 x 0.8)
    to log lr on average."""
    return 0.1 * np.exp(config.krueger_steps // interval * 0.5 * np.log(1.2 * 0.8))


def ppo_rounds(config, interval: int) -> int:
    """PBT rounds PPO runs on their grid at `interval` updates."""
    return config.pd_steps // (config.pd_num_envs * config.pd_rollout_len) // interval if interval else 0


def explanation(config, rows: pd.DataFrame, disagree: list[dict]) -> tuple[str, pd.DataFrame | None]:
    """The measurements behind each disagreement: REINFORCE's learning rate against what their
    explore step's drift alone predicts; the same cells re-run with log-symmetric explore factors;
    each learner's floor without PBT; and how many PBT rounds each learner's interval gives."""
    if not disagree:
        return "", None
    reinforce, ppo = krueger_rows(config, rows, "reinforce"), krueger_rows(config, rows, "ppo")
    records, shrink = [], []
    for d in disagree:
        regime = "pbt" if d["env swapping"] == "none" else "pbt_swap"
        plain_regime = "plain" if regime == "pbt" else "plain_swap"
        interval, n = d["PBT interval"], d["#agents"]
        where = {"interval": interval, "population": n}
        theirs = _final(reinforce, regime=regime, **where)
        sym = _final(reinforce, regime=regime + "_sym", **where)
        plain = _final(reinforce, regime=plain_regime, population=n)
        ppo_plain = _final(ppo, regime=plain_regime, population=n)
        if not np.isnan(sym[0]):
            shrink.append((theirs[0] - plain[0], sym[0] - plain[0], d))
        records.append({
            "env swapping": d["env swapping"], "interval": interval, "#agents": n,
            "PBT rounds (REINFORCE / PPO)": f"{config.krueger_steps // interval} / {ppo_rounds(config, interval)}",
            "REINFORCE: no PBT / PBT": f"{plain[0]:.2f} / {format_ci(*theirs)}",
            "its final lr (drift alone)": f"{_final(reinforce, 'final_lr', regime=regime, **where)[0]:.2g} "
                                          f"({drift_lr(config, interval):.2g})",
            "REINFORCE, explore x1.25 / x0.8": f"{format_ci(*sym)} ({_direction(sym, plain)})",
            "its final lr": f"{_final(reinforce, 'final_lr', regime=regime + '_sym', **where)[0]:.2g}",
            "PPO: no PBT / PBT": f"{ppo_plain[0]:.2f} / {format_ci(*_final(ppo, regime=regime, **where))}",
            "PPO final lr": f"{_final(ppo, 'final_lr', regime=regime, **where)[0]:.2g}"})
    text = ("**What the disagreements come from (measured).** The last table below lists each cell where the "
            "learners disagree with three measurements. (1) *Learning-rate drift*: their explore step multiplies "
            "every lr by 1.2 or 0.8 with probability 1/2, a mean change in log lr of 0.5 ln 0.96 = -0.020 per "
            "explore step, so with no selection at all the lr falls by e^-20 over 1000 explore steps (interval "
            "1); a REINFORCE agent whose lr has collapsed stops learning wherever its P(cooperate) then is. Ours "
            "(x0.8 / x1.25) is symmetric in log. The table gives REINFORCE's final lr beside the drift-alone "
            "prediction, and REINFORCE re-run with x1.25 / x0.8 (all else theirs). (2) *Floors*: each learner's "
            "P(cooperate) without PBT (columns 'no PBT / PBT'): PBT can lower cooperation only by as much as the "
            "floor, so a '-' against a floor of 0.01-0.02 is a small effect. (3) *PBT rounds*: their interval "
            "counts steps of 1000; ours counts PPO updates of "
            f"{config.pd_steps // (config.pd_num_envs * config.pd_rollout_len)}, so the same interval gives PPO "
            "fewer exploit steps.\n\n")
    swapped = [x for x in shrink if x[2]["env swapping"] != "none"]
    if swapped:
        before = ", ".join(f"{x[0]:+.2f}" for x in swapped)
        after = ", ".join(f"{x[1]:+.2f}" for x in swapped)
        kept = sum(_direction(_final(reinforce, regime="pbt_swap_sym", interval=x[2]["PBT interval"],
                                     population=x[2]["#agents"]),
                              _final(reinforce, regime="plain_swap", population=x[2]["#agents"])) == "+"
                   for x in swapped)
        text += (f"Under swapping, REINFORCE's PBT effect in these cells is {before} with their explore factors and "
                 f"{after} with log-symmetric ones: the lr drift accounts for "
                 f"{_share(swapped):.0%} of it (summed over the cells). ")
        text += (f"{kept} cell(s) keep a positive effect without the drift; there the remaining difference is "
                 "between the learners themselves (or between their deterministic swapping and our random "
                 "shuffle), which this grid does not separate. " if kept else
                 "Without the drift no cell keeps a positive effect: the disagreement under swapping is their "
                 "explore step's, not REINFORCE's against PPO's. ")
    unswapped = [x for x in disagree if x["env swapping"] == "none"]
    for x in unswapped:
        interval, n = x["PBT interval"], x["#agents"]
        kept_r = kept_per_interval(reinforce, n, interval)
        kept_p = kept_per_interval(ppo, n, interval * config.pd_num_envs * config.pd_rollout_len)
        text += (f"Without swapping, interval {interval} at {n} agents (REINFORCE {x['REINFORCE direction']}, PPO "
                 f"{x['PPO direction']}): the two learners ran {config.krueger_steps // interval} and "
                 f"{ppo_rounds(config, interval)} PBT rounds. Between two exploit steps in the second half of "
                 f"training the no-PBT learner keeps {kept_r:.0%} (REINFORCE) and {kept_p:.0%} (PPO) of its "
                 "P(cooperate) (ratio along its curve, one interval apart): selection raises cooperation at each "
                 "exploit step, and the learner's own (myopic) updates erode it until the next; where they erode "
                 "less of it per interval, PBT keeps more. ")
    return text, pd.DataFrame.from_records(records)


def kept_per_interval(rows: pd.DataFrame, population: int, interval_steps: int) -> float:
    """P(cooperate) of the no-PBT learner (no swapping) one interval after the midpoint of training,
    as a fraction of its value at the midpoint (from its curve, nearest points; mean over seeds)."""
    curve = rows[(rows.regime == "plain") & (rows.population == population) & (rows.stage == "curve")
                 & (rows.metric == "exploitation_rate")].groupby("env_steps").value.mean()
    if len(curve) < 2:
        return float("nan")
    steps = curve.index.to_numpy()
    mid = steps[np.abs(steps - steps[-1] / 2).argmin()]
    later = steps[np.abs(steps - (mid + interval_steps)).argmin()]
    return float(curve[later] / curve[mid]) if curve[mid] > 0 else float("nan")


def _share(cells) -> float:
    """The fraction of the summed effect over cells that log-symmetric explore removes."""
    before = sum(b for b, _, _ in cells)
    return (before - sum(a for _, a, _ in cells)) / before if before > 0 else float("nan")


def direction_table(config, rows: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """For each (swapping, interval > 0, population) both learners ran: the direction of PBT's effect
    on final P(cooperate) against the same learner without PBT (same swapping and population), for
    REINFORCE and PPO side by side; and the cells where they disagree."""
    reinforce, ppo = krueger_rows(config, rows, "reinforce"), krueger_rows(config, rows, "ppo")
    records, disagree = [], []
    for regime in ("pbt", "pbt_swap"):
        plain_regime = "plain" if regime == "pbt" else "plain_swap"
        for interval in sorted(set(reinforce.interval) & set(ppo.interval) - {0}):
            for n in sorted(set(reinforce.population) & set(ppo.population)):
                rec = {"env swapping": SWAP_OF[regime], "PBT interval": interval, "#agents": n}
                for name, sel in (("REINFORCE", reinforce), ("PPO", ppo)):
                    cell = _final(sel, regime=regime, interval=interval, population=n)
                    plain = _final(sel, regime=plain_regime, population=n)
                    rec[f"{name}: PBT - no PBT"] = f"{cell[0] - plain[0]:+.2f}" if not np.isnan(cell[0] - plain[0]) \
                        else "n/a"
                    rec[f"{name} direction"] = _direction(cell, plain)
                records.append(rec)
                a, b = rec["REINFORCE direction"], rec["PPO direction"]
                if "n/a" not in (a, b) and a != b:
                    disagree.append(rec)
    return pd.DataFrame.from_records(records), disagree


def grid_figure(config, rows: pd.DataFrame, learner: str):
    """Their figure's layout: rows no swapping / swapping, columns #agents, a curve per interval."""
    sel = krueger_rows(config, rows, learner)
    curves = sel[(sel.stage == "curve") & (sel.metric == "exploitation_rate") & (sel.regime != "pbt_weights")
                 & ~sel.regime.str.endswith("_sym")]
    if not len(curves):
        return None
    populations = sorted(curves.population.unique())
    fig, axes = plt.subplots(2, len(populations), figsize=(3.2 * len(populations) + 0.6, 5.0), sharex=True,
                             sharey=True, squeeze=False)
    colours = dict(zip(sorted(curves.interval.unique()), ("tab:blue", "tab:orange", "tab:green", "tab:red",
                                                          "tab:purple", "tab:brown", "tab:pink")))
    for row, swapped in enumerate((False, True)):
        for col, n in enumerate(populations):
            ax = axes[row, col]
            group = curves[(curves.population == n) & (curves.regime.str.endswith("_swap") == swapped)]
            for interval, g in group.groupby("interval"):
                stats = [(x, *bootstrap_ci(v.value.to_numpy())) for x, v in g.groupby("env_steps")]
                x, mean, low, high = (np.array(v) for v in zip(*stats))
                ax.plot(x, mean, color=colours[interval], label="no PBT" if interval == 0 else f"interval {interval}")
                ax.fill_between(x, low, high, color=colours[interval], alpha=0.15)
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(f"#agents={n}", fontsize=9)
            if col == 0:
                ax.set_ylabel(("env swapping" if swapped else "no env swapping") + "\nP(cooperate)", fontsize=8)
            if row == 1:
                ax.set_xlabel("step" if learner == "reinforce" else "env steps per member", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(LEARNER_NAMES[learner], fontsize=10)
    fig.tight_layout()
    return fig


def control_checks(config, rows: pd.DataFrame) -> list[Check]:
    """Their REINFORCE with no outer loop and no swapping is a myopic learner: it must defect."""
    checks = []
    sel = krueger_rows(config, rows, "reinforce")
    for n in sorted(select(sel, regime="plain").population.unique()):
        mean, low, high = _final(sel, regime="plain", population=n)
        checks.append(Check(f"unit test, their REINFORCE, no PBT, no swapping, {n} agents: must defect",
                            "P(cooperate) <= 0.1", format_ci(mean, low, high), bool(mean <= 0.1)))
    return checks


def section(config, rows: pd.DataFrame) -> Section | None:
    learners = [name for name in ("reinforce", "ppo", "q") if len(krueger_rows(config, rows, name))]
    if not learners:
        return None
    tables, figures = [], []
    for learner in ("reinforce", "ppo"):
        table = grid_table(config, rows, learner)
        if len(table):
            tables.append(table.rename(columns={"outer loop": f"{LEARNER_NAMES[learner]}: outer loop"}))
            fig = grid_figure(config, rows, learner)
            if fig is not None:
                figures.append(Figure(f"krueger_{learner}", fig, f"{LEARNER_NAMES[learner]}: P(cooperate) over "
                                      "training, laid out like their figure (mean over trials, band = 95% CI)."))
    directions, disagree = direction_table(config, rows)
    if len(directions):
        tables.append(directions)
    q = q_table(config, rows)
    if len(q):
        tables.append(q)
    n_trials = config.num_seeds
    text = (
        f"**Like-for-like: their set-up, their learners.** Krueger, Maharaj and Leike's unit test as their code "
        f"runs it ({SOURCE}): `unit_test_meta_learning.py` (argparse defaults: `--n_agentss [10,100,1000]`, "
        "`--intervals [0,1,10,100]`, `--env_swaps [none,deterministic]`, `--n_trials 10`, `--n_steps 1000`, "
        "`--IL REINFORCE`, `--OL PBT`, `--b1s [0.5, 0, -0.5]`, `--permute 1`, `normal_init = 1`) and "
        "`unit_test_Q_learning.py` (`n_steps = 3000`, `n_learners = 5`, `eps = .1`, pseudo-rewards R0 = -.5, "
        "R1 = 0, initial state cooperate). Their reward is `state + beta x action - 0.5` with beta = "
        f"{config.krueger_beta:g} here (1 = cooperate; beta = -0.5 is the unit test: defecting wins each step, "
        "cooperating pays +1 on the next). REINFORCE: one logit per agent, param ~ N(0, 1), lr = 10^U(-2, 0) per "
        "agent, `param += lr x reward x (a - sigmoid(param))` with no baseline; PBT every `interval` steps: the "
        "bottom 20% by the last step's reward (random tie-break) copy param and lr from agents drawn with "
        "replacement from the top 20%, then every lr x 1.2 or x 0.8 (their PBT_no_EXPLORE skips this); "
        "deterministic swapping moves the params one agent along after every step. One trial = one seed here "
        f"(their trials are independent repetitions): {n_trials} trials"
        f"{'' if n_trials == 10 else ' (theirs: 10; --preset krueger runs 10)'}, {config.krueger_steps} steps; Q-learning "
        f"{config.q_learners} learners, {config.q_steps} steps. P(cooperate): REINFORCE, the mean over agents of "
        "sigmoid(param) at the last step (the end of their figure's curve); Q-learning, the mean over learners of "
        "each learner's running share of cooperation (what their script plots). Every cell: mean over trials, "
        "95% bootstrap CI.\n\n"
        f"**Our PPO on the same grid**: populations {', '.join(map(str, config.krueger_ppo_population))} (PPO is "
        "costlier than one logit; the paper preset runs 10, 100 and 1000), the same intervals counted in PPO updates "
        f"({config.pd_num_envs * config.pd_rollout_len} env steps each) over {config.pd_steps:,} steps per member, "
        "our PBT (bottom/top 25%, lr and entropy perturbed x0.8/x1.25, fitness = mean return over the interval) "
        "and our swapping (the previous move shuffled at random among members after every step); PPO observes "
        "the previous move, their learners do not. Our payoffs equal their beta = -0.5 up to a constant "
        "(+1 on every reward).\n\n"
        "**Their findings, in words.** The paper's abstract: meta-learning (PBT) and Q-learning *sometimes* fail "
        "the unit test (learn to cooperate, a non-myopic behaviour), and pass it with their mitigation, "
        "environment swapping. Their Q script's comment: when the two Q-values stay close the agent cooperates "
        "most of the time; sometimes they pull apart (Q(defect) > Q(cooperate)) and it never recovers. Their "
        "figure's numbers were not available to us offline; we compare directions, not values.\n\n")
    if disagree:
        cells = "; ".join(f"swapping {d['env swapping']}, interval {d['PBT interval']}, {d['#agents']} agents "
                          f"(REINFORCE {d['REINFORCE direction']}, PPO {d['PPO direction']})" for d in disagree)
        text += f"**Where REINFORCE and PPO disagree in direction** (PBT against no PBT): {cells}.\n\n"
    elif len(directions):
        text += "REINFORCE and PPO agree in the direction of every PBT effect both ran.\n\n"
    why, why_table = explanation(config, rows, disagree)
    text += why
    if why_table is not None:
        tables.append(why_table)
    return Section("Like-for-like: Krueger et al.'s unit-test grid, their learners beside our PPO", text,
                   tables=tables, figures=figures)
