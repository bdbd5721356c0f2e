"""Cross-episodic objectives: conditions, config validation, and a smoke run end to end."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from innerlab.experiments import get
from innerlab.experiments.base import ConfigError

EXPERIMENT = get("cross-episodic")


def test_conditions_cover_regimes_controls_planners_and_sweeps():
    config = EXPERIMENT.preset("quick")
    conditions = EXPERIMENT.conditions(config)
    ids = [c.id for c in conditions]
    assert len(ids) == len(set(ids))
    fields = [c.fields for c in conditions]
    assert {"env": "invest", "learner": "ppo", "regime": "plain", "pay": "same", "view": "visible", "interval": 0,
            "population": config.population} in fields
    for planner in ("planner_crossing", "planner_bounded"):
        assert any(f["regime"] == planner for f in fields)
    pd_pbt = [f for f in fields if f["env"] == "pd" and f["regime"] == "pbt" and f["learner"] == "ppo"]
    assert {f["interval"] for f in pd_pbt if f["population"] == config.population} == {1, 4, 16}
    assert {f["population"] for f in pd_pbt if f["interval"] == config.interval} == {4, 8, 16}
    for regime in ("plain", "pbt", "pbt_weights", "pbt_swap"):
        for view in ("visible", "hidden"):
            assert any(f == {**f, "env": "invest", "regime": regime, "pay": "next", "view": view} for f in fields)


@pytest.mark.parametrize("field, value, message", [
    ("env", ("chess",), "unknown value 'chess'"),
    ("regime", ("greedy",), "unknown value 'greedy'"),
    ("bonus", 0.1, "bonus > cost"),
    ("truncation", 0.75, "truncation"),
    ("pd_cooperation", 0.2, "pd_cooperation > pd_temptation"),
    ("population", 0, ">= 1"),
    ("fitness", "best", "unknown value 'best'"),
    ("num_minibatches", 3, "must divide num_envs"),
    ("pd_num_minibatches", 3, "must divide pd_num_envs"),
    ("cost", -0.1, "out of range"),
    ("pd_temptation", 0.0, "out of range"),
    ("perturb", (), "is empty"),
    ("perturb", (0.0, 1.25), "out of range"),
    ("pd_gamma", 1.5, "out of range"),
    ("pd_steps", 128 * 15, "less than one PBT round"),
    ("total_steps", 512 * 15, "less than one PBT round"),
    ("lr", 0.0, "out of range"),
    ("pd_lr", 0.0, "out of range"),
])
def test_bad_config_names_the_field(field, value, message):
    config = dataclasses.replace(EXPERIMENT.preset("quick"), **{field: value})
    with pytest.raises(ConfigError, match=message) as err:
        EXPERIMENT.validate(config)
    assert err.value.field == field


def test_nothing_to_run_names_regime():
    config = dataclasses.replace(EXPERIMENT.preset("quick"), regime=(), planners=False, control=False, krueger=False)
    with pytest.raises(ConfigError, match="nothing to run") as err:
        EXPERIMENT.validate(config)
    assert err.value.field == "regime"


def test_presets_are_valid_and_train_whole_rounds():
    from innerlab.experiments.cross_episodic.config import PRESETS, env_steps, rounds

    for name, config in PRESETS.items():
        EXPERIMENT.validate(config)
        for condition in EXPERIMENT.conditions(config):
            fields = condition.fields
            if fields["regime"].startswith("planner"):
                assert env_steps(config, fields) == 0
                continue
            if fields["learner"] != "ppo":
                assert env_steps(config, fields) == (config.krueger_steps if fields["learner"] == "reinforce"
                                                     else config.q_steps)
                continue
            per_update = config.pd_num_envs * config.pd_rollout_len if fields["env"] == "pd" \
                else config.num_envs * config.rollout_len
            interval = fields["interval"] or config.interval  # plain runs rounds of the base interval
            steps = config.pd_steps if fields["env"] == "pd" else config.total_steps
            assert rounds(config, fields) == steps // per_update // interval >= 1, (name, condition.id)
            assert env_steps(config, fields) == rounds(config, fields) * interval * per_update


def test_cli_rejects_a_bad_value_with_one_line(capsys):
    from innerlab.cli import main

    assert main(["run", "cross-episodic", "--preset", "smoke", "--regime", "greedy", "--out", "/tmp/never"]) != 0
    err = capsys.readouterr().err
    assert "regime" in err and "greedy" in err and "Traceback" not in err


def test_smoke_run_writes_tidy_metrics_and_report(smoke_run):
    # The session's shared smoke run (conftest.py): every regime of the unit test, the sweeps, and
    # the invest world's control and planners. (Its 2 progress chunks divide every condition's
    # rounds: one compile per structure. The kit's tail chunk is exercised by side-channels' smoke
    # run and tests/test_kit.py.)
    out = smoke_run("cross-episodic")
    rows = pd.read_parquet(out / "metrics.parquet")
    assert list(rows.columns) == ["experiment", "condition", "env", "learner", "regime", "pay", "view", "interval",
                                  "population", "stage", "env_steps", "seed", "metric", "value"]
    assert set(rows.learner) == {"ppo", "reinforce", "q"}
    assert {"exploitation_rate", "episode_return", "cross_episode_return"} <= set(rows.metric)
    assert {"plain", "pbt", "pbt_swap", "planner_crossing", "planner_bounded"} <= set(rows.regime)
    final = rows[rows.stage == "final"]
    assert not final.duplicated(["condition", "seed", "metric"]).any()
    rates = final[final.metric == "exploitation_rate"].value
    assert ((rates >= 0) & (rates <= 1)).all()
    curves = rows[(rows.stage == "curve") & (rows.metric == "exploitation_rate")]
    assert curves.groupby("condition").env_steps.nunique().min() >= 2, "a curve over training per condition"
    # Cross-episode return = episode return + what the episode pays into the next, in the pd world:
    # 0.5 [defect] + 1 [cooperate] = episode return + P(cooperate) per member and episode.
    pd_final = final[(final.env == "pd") & (final.learner == "ppo")].pivot_table(index=["condition", "seed"], columns="metric", values="value")
    np.testing.assert_allclose(pd_final.cross_episode_return,
                               pd_final.episode_return + pd_final.exploitation_rate, atol=1e-5)
    # Training did exactly the configured whole rounds (its update counter, per member); planners do not train.
    from innerlab.experiments.cross_episodic.config import env_steps

    config = EXPERIMENT.preset("smoke")
    measured = rows[rows.metric == "env_steps"]
    for condition in EXPERIMENT.conditions(config):
        sel = measured[measured.condition == condition.id]
        expected = env_steps(config, condition.fields)
        if expected == 0:
            assert sel.empty, condition.id
        else:
            assert len(sel) == config.num_seeds and (sel.value == expected).all(), (condition.id, sel.value, expected)
            assert (sel.stage == "train").all() and (sel.env_steps == expected).all()
    html = (out / "report.html").read_text()
    for text in ("Controls", "Krueger", "unit test", "Invest world", "data:image/png;base64,"):
        assert text in html
    assert (out / "figures" / "unit_test_curves.png").is_file()
    assert (out / "figures" / "krueger_reinforce.png").is_file() and "Like-for-like" in html


def test_live_curves_have_one_point_per_ppo_update(smoke_run):
    """PBT trains in rounds of `interval` updates; its curves still have one point per update
    (per-round metrics such as fitness repeated over their round), read back by TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from innerlab.experiments.cross_episodic.config import PRESETS, conditions, round_interval, rounds

    run, config = smoke_run("cross-episodic"), PRESETS["smoke"]
    condition = next(c for c in conditions(config) if c.fields["regime"] == "pbt")
    accumulator = EventAccumulator(str(run / "tb" / condition.id / "seed-0"), size_guidance={"scalars": 0})
    accumulator.Reload()
    updates = rounds(config, condition.fields) * round_interval(config, condition.fields)
    for tag in ("train/exploited", "train/fitness", "train/entropy"):
        assert [e.step for e in accumulator.Scalars(tag)] == list(range(1, updates + 1)), tag


def test_krueger_grid_conditions_are_theirs():
    """--learner reinforce runs their grid only: populations x intervals (0 = no PBT) x swapping, plus
    their PBT_no_EXPLORE at every PBT interval without swapping and (krueger_sym) PBT with log-symmetric
    explore factors at every PBT cell; q runs their Q script's two cells."""
    config = dataclasses.replace(EXPERIMENT.preset("quick"), learner=("reinforce", "q"))
    fields = [c.fields for c in EXPERIMENT.conditions(config)]
    reinforce = [f for f in fields if f["learner"] == "reinforce"]
    assert {f["learner"] for f in fields} == {"reinforce", "q"} and all(f["env"] == "pd" for f in fields)
    assert len(reinforce) == 3 * (4 * 2 + 3 + 3 * 2)  # + PBT_no_EXPLORE, + log-symmetric explore (krueger_sym)
    cells = {(f["regime"], f["interval"], f["population"]) for f in reinforce}
    assert ("plain", 0, 1000) in cells and ("plain_swap", 0, 10) in cells and ("pbt_swap", 100, 100) in cells
    assert ("pbt_weights", 10, 1000) in cells and not any(r == "pbt_weights" and i == 0 for r, i, _ in cells)
    assert ("pbt_swap_sym", 1, 10) in cells and ("pbt_sym", 100, 1000) in cells
    assert sorted((f["regime"], f["population"]) for f in fields if f["learner"] == "q") == [("plain", 5),
                                                                                            ("plain_swap", 5)]
    krueger = EXPERIMENT.preset("krueger")  # their grid alone, their 10 trials; PPO at 10 and 100 members
    assert krueger.num_seeds == 10 and {c.fields["env"] for c in EXPERIMENT.conditions(krueger)} == {"pd"}
    ppo = [c.fields for c in EXPERIMENT.conditions(krueger) if c.fields["learner"] == "ppo"]
    assert {(f["regime"], f["interval"]) for f in ppo if f["population"] == 100} == {
        ("plain", 0), ("plain_swap", 0), ("pbt", 1), ("pbt", 10), ("pbt", 100), ("pbt_swap", 1), ("pbt_swap", 10),
        ("pbt_swap", 100)}
    with pytest.raises(ConfigError, match=">= 5") as err:
        EXPERIMENT.validate(dataclasses.replace(config, krueger_population=(4,)))
    assert err.value.field == "krueger_population"
    off = dataclasses.replace(EXPERIMENT.preset("quick"), krueger=False)
    assert all(c.fields["learner"] == "ppo" and c.fields["regime"] != "plain_swap" for c in EXPERIMENT.conditions(off))


def test_krueger_jobs_run_their_learners_one_trial_per_seed():
    """A REINFORCE job is deterministic in its seeds, one trial per seed (a trial's result does not
    depend on which other seeds share the batch), and its control cell defects."""
    from innerlab.experiments.base import Condition
    from innerlab.experiments.cross_episodic.train import run_job

    config = EXPERIMENT.preset("quick")
    fields = {"env": "pd", "learner": "reinforce", "regime": "plain", "pay": "next", "view": "hidden",
              "interval": 0, "population": 50}
    condition = Condition("c", fields)

    def final(seeds):
        rows = pd.DataFrame(run_job(config, condition, seeds))
        return rows[(rows.stage == "final") & (rows.metric == "exploitation_rate")].set_index("seed").value

    both, alone = final((3, 4)), final((4,))
    assert both[4] == pytest.approx(alone[4], abs=1e-6)
    assert (both < 0.15).all()  # no outer loop: the myopic learner defects
    q = pd.DataFrame(run_job(config, Condition("q", {**fields, "learner": "q", "population": 5}), (0, 1)))
    assert {"exploitation_rate", "exploiting_members", "env_steps"} <= set(q.metric)


def test_krueger_direction_is_read_from_the_intervals():
    from innerlab.experiments.cross_episodic.report_krueger import _direction

    plain = (0.1, 0.05, 0.15)
    assert _direction((0.5, 0.4, 0.6), plain) == "+"
    assert _direction((0.02, 0.0, 0.04), plain) == "-"
    assert _direction((0.14, 0.1, 0.2), plain) == "0"
    assert _direction((float("nan"),) * 3, plain) == "n/a"


def test_krueger_disagreement_is_measured_not_guessed():
    """A REINFORCE PBT effect under swapping that PPO does not share is reported with the share of it
    that log-symmetric explore factors remove (here (0.20 - 0.08) / 0.20 = 60%)."""
    from innerlab.experiments.cross_episodic.report_krueger import direction_table, explanation

    config = dataclasses.replace(EXPERIMENT.preset("quick"), krueger_interval=(0, 1), krueger_swap=("deterministic",),
                                 krueger_population=(10,), krueger_ppo_population=(10,))
    cells = {("reinforce", "plain_swap", 0): 0.01, ("reinforce", "pbt_swap", 1): 0.21,
             ("reinforce", "pbt_swap_sym", 1): 0.09, ("ppo", "plain_swap", 0): 0.02, ("ppo", "pbt_swap", 1): 0.0}
    rows = pd.DataFrame([{"env": "pd", "learner": learner, "regime": regime, "interval": interval, "population": 10,
                          "stage": "final", "metric": metric, "seed": seed,
                          "value": value + 0.002 * seed if metric == "exploitation_rate" else 0.01}
                         for (learner, regime, interval), value in cells.items() for seed in range(5)
                         for metric in ("exploitation_rate", "final_lr")])
    table, disagree = direction_table(config, rows)
    assert [(d["REINFORCE direction"], d["PPO direction"]) for d in disagree] == [("+", "-")]
    text, why = explanation(config, rows, disagree)
    assert "+0.20 with their explore factors and +0.08 with log-symmetric ones" in text
    assert "accounts for 60%" in text and len(why) == 1
