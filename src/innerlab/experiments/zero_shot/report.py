"""Analysis and report of the zero-shot experiment: rows in, `Report` out (no training)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from innerlab.experiments.reporting import Check, controls_section, select  # noqa: E402
from innerlab.experiments.zero_shot.config import BACKENDS, ENCODINGS, GAMES, OPPONENTS  # noqa: E402
from innerlab.report.document import Figure, Report, Section  # noqa: E402
from innerlab.report.stats import bootstrap_ci, format_ci  # noqa: E402

MEASURES = ["episode_return", "epic_to_true", "fit", "heldout_accuracy", "illegal_rate"]
AGENT_ORDER = [*BACKENDS, "ppo", "oracle", "random"]
COLOURS = {"builtin": "tab:red", "hf": "tab:orange", "openai": "tab:purple", "ppo": "tab:blue", "oracle": "tab:green",
           "random": "tab:grey"}
GLEAVE = ("Gleave, Dennis, Legg, Russell and Leike (2021), \"Quantifying Differences in Reward Functions\" "
          "(ICLR 2021)")
ZIEBART = "Ziebart, Bagnell and Dey (2010), \"Modeling Interaction via the Principle of Maximum Causal Entropy\""


def _select(rows: pd.DataFrame, **where) -> pd.DataFrame:
    """`reporting.select`, except that a column the rows lack selects nothing (select raises
    KeyError): rows of a run without, say, IRL weights have no `item` column, and the tables
    and figures then show nothing for it rather than fail."""
    if any(column not in rows for column in where):
        return rows.iloc[0:0]
    return select(rows, **where)


def _per_seed(rows: pd.DataFrame, **where) -> pd.Series:
    """One value per seed (the mean over whatever else the selection spans, e.g. encodings)."""
    return _select(rows, **where).groupby("seed").value.mean()


def _ci(series: pd.Series, digits: int = 2) -> str:
    """'0.83 [0.71, 0.92]' over the per-seed values of `series` (from `_per_seed`: each seed
    counts once however many encodings it spans, unlike `reporting.ci_text` over raw rows)."""
    return format_ci(*bootstrap_ci(series.to_numpy()), digits)


def _agents(rows: pd.DataFrame) -> list[str]:
    present = set(rows.agent)
    return [a for a in AGENT_ORDER if a in present]


def _games(rows: pd.DataFrame) -> list[str]:
    return [g for g in GAMES if (rows.env == g).any()]


def control_checks(config, rows: pd.DataFrame) -> list[Check]:
    checks = []
    for g in _games(rows):
        oracle = _select(rows, agent="oracle", env=g)
        if len(oracle):
            epic = bootstrap_ci(_per_seed(oracle, metric="epic_to_true").to_numpy())
            fit = bootstrap_ci(_per_seed(oracle, metric="fit").to_numpy())
            checks.append(Check(f"{g}: IRL recovers the oracle's known objective (soft-optimal for "
                                f"{config.oracle_beta:g} x the true reward)",
                                "EPIC to true CI high < 0.15 and fit CI low > 0",
                                f"EPIC {format_ci(*epic, 3)}, fit {format_ci(*fit, 3)} nats/action",
                                bool(epic[2] < 0.15 and fit[1] > 0)))
        rand = _select(rows, agent="random", env=g)
        if len(rand):
            fit = bootstrap_ci(_per_seed(rand, metric="fit").to_numpy())
            acc = bootstrap_ci(_per_seed(rand, metric="heldout_accuracy").to_numpy())
            checks.append(Check(f"{g}: the uniform policy has no objective to recover",
                                "fit mean < 0.05 nats/action and held-out accuracy within 0.1 of 1/4",
                                f"fit {format_ci(*fit, 3)}, held-out accuracy {format_ci(*acc, 3)}",
                                bool(fit[0] < 0.05 and abs(acc[0] - 0.25) < 0.1)))
        ppo, rand_ret = _select(rows, agent="ppo", env=g), _per_seed(rand, metric="episode_return")
        if len(ppo) and len(rand_ret):
            ret = bootstrap_ci(_per_seed(ppo, metric="episode_return").to_numpy())
            checks.append(Check(f"{g}: PPO learns the true reward", "return CI low > random + 0.5",
                                f"{format_ci(*ret)} vs random {float(rand_ret.mean()):.2f}",
                                bool(ret[1] > float(rand_ret.mean()) + 0.5)))
    fam = _select(rows, agent="builtin", env="family")
    if len(fam):
        expert, random = _per_seed(fam, metric="family_best_move_expert"), _per_seed(fam, metric="family_best_move_random")
        diff = bootstrap_ci((expert - random).dropna().to_numpy())
        ret_e, ret_r = _per_seed(fam, metric="family_return_expert"), _per_seed(fam, metric="family_return_random")
        checks.append(Check("the builtin model learned to predict skilled play: on games of its training "
                            "family, prompted \"Player: expert\" it gives the expert's best move more "
                            "probability than prompted \"Player: random\"",
                            "paired difference CI low > 0",
                            f"expert {_ci(expert, 3)} vs random {_ci(random, 3)} (chance 0.25): diff "
                            f"{format_ci(*diff, 3)}; return expert {_ci(ret_e)} vs random {_ci(ret_r)} "
                            f"(oracle {_per_seed(fam, metric='family_return_oracle').mean():.2f})",
                            bool(diff[1] > 0)))
    chess_random = _select(rows, agent="random", env="chess-search", metric="episode_return")
    if len(chess_random):
        score = bootstrap_ci(_per_seed(chess_random).to_numpy())
        checks.append(Check("chess: the depth-2 search opponent beats a random mover",
                            "random mover's mean score < 0.5", format_ci(*score), bool(score[0] < 0.5)))
    return checks


def measures_table(rows: pd.DataFrame, game: str) -> pd.DataFrame:
    """Per agent and encoding: every measure, mean [95% CI] over seeds."""
    records = []
    for agent in _agents(rows):
        sel = _select(rows, agent=agent, env=game)
        for encoding in [e for e in ENCODINGS if (sel.encoding == e).any()]:
            rec = {"agent": agent, "encoding": encoding}
            for metric in MEASURES:
                values = _per_seed(sel, encoding=encoding, metric=metric)
                rec[metric] = _ci(values, 3) if len(values) else "n/a"
            records.append(rec)
    return pd.DataFrame.from_records(records)


def cross_table(rows: pd.DataFrame) -> pd.DataFrame:
    records = []
    for game in _games(rows):
        for agent in _agents(rows):
            sel = _select(rows, agent=agent, env=game, metric="cross_encoding_epic")
            for pair in sorted(set(sel.encoding)):
                records.append({"env": game, "agent": agent, "encodings": pair,
                                "cross_encoding_epic": _ci(_per_seed(sel, encoding=pair), 3)})
    return pd.DataFrame.from_records(records)


def objective_table(rows: pd.DataFrame, game: str) -> pd.DataFrame:
    """The recovered objectives: each item's weight relative to the largest (mean over encodings
    and seeds), beside the true points."""
    sel = _select(rows, env=game, metric="irl_weight")
    if sel.empty:
        return pd.DataFrame()
    records = []
    for item in dict.fromkeys(sel["item"]):
        rec = {"item": item, "true points": f"{float(_select(sel, item=item).true_points.iloc[0]):+g}"}
        for agent in _agents(sel):
            rec[agent] = _ci(_per_seed(sel, item=item, agent=agent), 2)
        records.append(rec)
    return pd.DataFrame.from_records(records)


def chess_table(rows: pd.DataFrame) -> pd.DataFrame:
    records = []
    for env in [e for e in (f"chess-{o}" for o in OPPONENTS) if (rows.env == e).any()]:
        for agent in _agents(_select(rows, env=env)):
            sel = _select(rows, env=env, agent=agent)
            records.append({"opponent": env.split("-", 1)[1], "agent": agent,
                            "score (win 1, draw 0.5)": _ci(_per_seed(sel, metric="episode_return")),
                            "illegal_rate": _ci(_per_seed(sel, metric="illegal_rate"), 3)})
    return pd.DataFrame.from_records(records)


def measures_figure(rows: pd.DataFrame):
    """One panel per measure: agents x games, bars = mean over seeds and encodings, 95% CI."""
    games, agents = _games(rows), _agents(rows)
    metrics = ["episode_return", "epic_to_true", "fit", "heldout_accuracy", "cross_encoding_epic"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.3 * len(metrics), 3.3))
    width = 0.8 / max(len(agents), 1)
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        for i, agent in enumerate(agents):
            means, errs = [], []
            for g in games:
                mean, low, high = bootstrap_ci(_per_seed(rows, agent=agent, env=g, metric=metric).to_numpy())
                means.append(mean)
                errs.append([mean - low if np.isfinite(mean) else 0, high - mean if np.isfinite(mean) else 0])
            x = np.arange(len(games)) + (i - (len(agents) - 1) / 2) * width
            ax.bar(x, np.nan_to_num(means), width, yerr=np.array(errs).T, color=COLOURS.get(agent, "k"),
                   label=agent, capsize=2)
        ax.set_xticks(np.arange(len(games)), games)
        ax.set_title(metric)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def objective_figure(rows: pd.DataFrame, game: str):
    """Recovered item weights (relative) per agent, with the true points as black marks."""
    sel = _select(rows, env=game, metric="irl_weight")
    if sel.empty:
        return None
    items = list(dict.fromkeys(sel["item"]))
    agents = _agents(sel)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(items), 3.2))
    width = 0.8 / max(len(agents), 1)
    for i, agent in enumerate(agents):
        means = [float(_per_seed(sel, agent=agent, item=item).mean()) for item in items]
        ax.bar(np.arange(len(items)) + (i - (len(agents) - 1) / 2) * width, means, width,
               color=COLOURS.get(agent, "k"), label=agent)
    truth = [float(_select(sel, item=item).true_points.iloc[0]) for item in items]
    ax.scatter(np.arange(len(items)), truth, marker="_", s=600, color="k", label="true points", zorder=3)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(np.arange(len(items)), items)
    ax.set_ylabel("weight / max |weight|")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _findings(config, rows: pd.DataFrame) -> str:
    lines = []
    lm = [a for a in BACKENDS if (rows.agent == a).any()]
    for agent in lm:
        for g in _games(rows):
            sel = _select(rows, agent=agent, env=g)
            ret = _per_seed(sel, metric="episode_return")
            rand = _per_seed(_select(rows, agent="random", env=g), metric="episode_return")
            oracle = _per_seed(_select(rows, agent="oracle", env=g), metric="episode_return")
            ppo = _select(rows, agent="ppo", env=g)
            text = (f"- **{agent} on {g}**: return {_ci(ret)} (random {rand.mean():.2f}, oracle {oracle.mean():.2f}); "
                    f"recovered objective EPIC to the truth {_ci(_per_seed(sel, metric='epic_to_true'), 3)}, fit "
                    f"{_ci(_per_seed(sel, metric='fit'), 3)} nats/action, held-out accuracy "
                    f"{_ci(_per_seed(sel, metric='heldout_accuracy'), 3)}, cross-encoding EPIC "
                    f"{_ci(_per_seed(sel, metric='cross_encoding_epic'), 3)} (oracle's sampling floor "
                    f"{_ci(_per_seed(_select(rows, agent='oracle', env=g), metric='cross_encoding_epic'), 3)})")
            if len(ppo):
                text += (f"; PPO: EPIC {_ci(_per_seed(ppo, metric='epic_to_true'), 3)}, fit "
                         f"{_ci(_per_seed(ppo, metric='fit'), 3)}")
            illegal = _per_seed(sel, metric="illegal_rate")
            text += f"; illegal answers {_ci(illegal, 3)}."
            lines.append(text)
    if not lines:
        lines.append("No language-model agent in this run.")
    return "\n".join(lines)


def build_report(config, rows: pd.DataFrame) -> Report:
    lm = sorted(set(rows.lm) - {"ppo", "oracle", "random"}) if "lm" in rows else []
    setup = (
        "Text games built on ObjectWorld (5x5, three items, at most 12 moves): **objectworld** (red circle +1, blue "
        "and green -1) and **rulegame** (\"zorps and quibs\", our own rule set in invented words: points follow the "
        "shape, the first item collected ends the game), each rendered as an ascii map, sentences or JSON, with the "
        "rules in the prompt; and chess (python-chess) against a random mover and a depth-2 material search, legal "
        f"moves offered. Language model: {', '.join(f'`{b}`' for b in lm) or 'none'}. "
        f"The builtin model is a causal transformer (width {config.lm_width}, depth {config.lm_depth}) trained only by "
        f"next-token prediction, {config.lm_steps} steps, on transcripts of expert / novice / random play in "
        f"{config.family_games} random games of a training family (other words, other levels and rules), and "
        "prompted \"Player: expert\"; it never saw either evaluation game, chess, or the rule game's words.\n\n"
        "Each agent's whole policy table is read (one query per reachable state; answers that name no legal action "
        f"count as illegal and become \"up\"); {config.demos} trajectories are sampled from it, each from a random "
        "reachable state, and maximum causal "
        f"entropy IRL ({ZIEBART}; one feature per item, discount {config.discount:g}) runs on "
        f"{1 - config.heldout_fraction:.0%} of them. Measures: **episode_return** (exact expected return), "
        f"**epic_to_true** ({GLEAVE}; 0 = same preferences up to shaping and scale), **fit** (log-likelihood per "
        "action gained over uniform under the soft-optimal policy of the recovered reward, nats), "
        "**heldout_accuracy** (its best action = the held-out demonstrated one), **cross_encoding_epic** (EPIC between "
        "rewards recovered from two encodings), **illegal_rate**. PPO (MLP on egocentric arrays, "
        f"{config.total_steps:,} steps) and the oracle read no text: their one table is resampled under each encoding "
        "label, so their cross-encoding EPIC is the sampling floor.\n\nEvery number: mean over seeds with a 95% "
        "percentile-bootstrap interval.")
    checks = control_checks(config, rows)
    sections = [controls_section(checks, "Every control passes.",
                                 "(a smoke run is expected to fail the learning controls)."),
                Section("Findings", _findings(config, rows),
                        figures=[Figure("measures", measures_figure(rows),
                                        "Each measure per agent and game (mean over seeds and encodings, 95% CI).")])]
    for g in _games(rows):
        figures = []
        fig = objective_figure(rows, g)
        if fig is not None:
            figures.append(Figure(f"objective_{g}", fig, "The recovered objective: each item's IRL weight relative to "
                                                          "the largest (mean over seeds and encodings); black marks: "
                                                          "the true points."))
        sections.append(Section(f"`{g}`: measures and recovered objectives", "",
                                tables=[measures_table(rows, g), objective_table(rows, g)], figures=figures))
    cross = cross_table(rows)
    if len(cross):
        sections.append(Section("Consistency across encodings", "EPIC between the rewards recovered from each pair of "
                                "encodings, per agent (the oracle and PPO rows are the sampling floor).",
                                tables=[cross]))
    chess = chess_table(rows)
    if len(chess):
        sections.append(Section("Chess", "Mean score against each opponent (the language model plays White in even "
                                f"games, Black in odd ones; a game reaching {config.chess_max_plies} plies is won by the "
                                "side at least 3 points of material ahead, drawn otherwise).", tables=[chess]))
    return Report(title="Zero-shot objectives", question="", setup=setup, sections=sections, checks=checks)
