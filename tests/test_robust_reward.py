"""Robust reward learning: conditions, config validation, and a smoke run end to end."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from innerlab.experiments import get
from innerlab.experiments.base import ConfigError
from innerlab.experiments.robust_reward import config as rr_config

EXPERIMENT = get("robust-reward")


def test_conditions_are_the_training_distributions():
    config = EXPERIMENT.preset("quick")
    assert [c.fields for c in EXPERIMENT.conditions(config)] == [{"training": "novel"}, {"training": "covered"}]
    config = dataclasses.replace(config, training=("covered",))
    assert [c.id for c in EXPERIMENT.conditions(config)] == ["training-covered"]


@pytest.mark.parametrize("field, value, message", [
    ("training", ("mixed",), "unknown value 'mixed'"),
    ("adversaries", ("gradient",), "unknown value 'gradient'"),
    ("training", (), "is empty"),
    ("ensemble", 1, ">= 2"),
    ("queries", 1000, "<= pool"),
    ("num_objects", 7, "<= 6"),
    ("num_objects", 1, ">= 2"),
    ("discount", 1.0, "< 1"),
    ("discount", 0.0, "> 0"),
    ("rounds", 0, ">= 1"),
    ("buffer_len", 10, "rollout_len \\+ 9"),
    ("lr", 0.0, "> 0"),
    ("finetune_lr", -1e-3, "> 0"),
    ("latent_step_size", 0.0, "> 0"),
    ("latent_radius", 1.5, "<= 1"),
    ("total_steps", 64, "less than one update"),
])
def test_bad_config_names_the_field(field, value, message):
    config = dataclasses.replace(EXPERIMENT.preset("quick"), **{field: value})
    with pytest.raises(ConfigError, match=message) as err:
        EXPERIMENT.validate(config)
    assert err.value.field == field


def test_presets_are_valid_and_env_steps_round_down_to_whole_updates():
    for name in ("smoke", "quick", "paper"):
        EXPERIMENT.validate(EXPERIMENT.preset(name))
    quick = EXPERIMENT.preset("quick")
    assert rr_config.env_steps(quick, {"training": "novel"}) == 40_960  # 320 updates of 16 x 8
    # Fewer updates than progress chunks, and a total that is not a whole number of updates: accepted.
    odd = dataclasses.replace(quick, total_steps=3 * 128 + 5, progress_chunks=4)
    EXPERIMENT.validate(odd)
    assert rr_config.env_steps(odd, {"training": "novel"}) == 3 * 128


def test_cli_rejects_a_bad_value_with_one_line(capsys):
    from innerlab.cli import main

    assert main(["run", "robust-reward", "--preset", "smoke", "--adversaries", "gradient", "--out", "/tmp/never"]) != 0
    err = capsys.readouterr().err
    assert "adversaries" in err and "gradient" in err and "Traceback" not in err


def test_levels_shift_only_the_bad_colours():
    from innerlab.experiments.fields import structure_key
    from innerlab.experiments.robust_reward import train as impl

    config = dataclasses.replace(EXPERIMENT.preset("smoke"), eval_levels=2)
    assert impl.colours(config, "novel") == [0, 0, 1, 1]
    assert impl.colours(config, "covered") == [0, 0, 1, 2]
    assert impl.colours(config, "offdist") == [0, 0, 2, 2]
    env = impl.make_env(config)
    train, off = impl._levels(structure_key(config), "novel", -1.0)
    for level in (*train, *off):
        # Reachable states: the start, and nothing the env cannot reach; the true (s, a) reward
        # is +1 / -1 / 0 only.
        assert level.reachable[np.argmax(level.mdp.initial)]
        assert set(np.unique(level.true)) <= {-1.0, 0.0, 1.0}
        assert level.obs.shape == (level.mdp.num_states - 1, env.observation_space(None).shape[0])
    assert not (np.asarray(off[0].params.obj_colour) == 1).any()


def test_smoke_run_writes_tidy_metrics_and_report(smoke_run):
    out = smoke_run("robust-reward")  # the session's shared smoke run (conftest.py)
    rows = pd.read_parquet(out / "metrics.parquet")
    for column in ("experiment", "condition", "training", "adversary", "stage", "support", "seed", "metric", "value"):
        assert column in rows.columns
    assert set(rows.adversary.dropna()) == {"none", "random", "input", "latent"}
    assert set(rows[rows.stage == "curve"].metric) == {"epic", "training_return"}
    curves = rows[(rows.stage == "curve") & (rows.metric == "epic")]
    # EPIC after 0, 4 and 8 picked inputs (smoke: 2 rounds of 4), for every adversary and both supports.
    groups = curves.groupby(["adversary", "support"]).queries
    assert len(groups) == 8 and all(sorted(set(q)) == [0, 4, 8] for _, q in groups)
    main_rows = rows[rows.metric.isin(["epic", "regret"]) & (rows.stage != "curve")]
    assert set(main_rows.stage) == {"before", "after"}
    assert set(main_rows[main_rows.metric == "epic"].support) == {"visited", "all", "offdist"}
    assert set(main_rows[main_rows.metric == "regret"].support) == {"all", "offdist"}
    assert not main_rows.duplicated(["condition", "adversary", "stage", "support", "seed", "metric"]).any()
    epic = main_rows[main_rows.metric == "epic"].value.dropna()
    assert ((epic >= 0) & (epic <= 1)).all()
    assert (main_rows[main_rows.metric == "regret"].value >= -1e-9).all()
    # "before" is one trained agent: identical for every adversary.
    before = main_rows[main_rows.stage == "before"].pivot_table(index=["seed", "support", "metric"],
                                                                columns="adversary", values="value")
    np.testing.assert_allclose(before.to_numpy(), before[["none"]].to_numpy().repeat(before.shape[1], 1))
    control = rows[rows.metric == "control_epic"].value
    assert (control.abs() < 1e-6).all()
    assert (rows[rows.metric == "control_regret"].value == 0).all()
    html = (out / "report.html").read_text()
    for text in ("Controls", "EPIC", "regret", "Gleave", "data:image/png;base64,"):
        assert text in html
    assert (out / "figures" / "reward_error_novel.png").is_file()
    assert (out / "figures" / "epic_vs_queries_novel.png").is_file()
    # Measured training length: the agent's update counter x env steps per update.
    steps = rows[rows.metric == "env_steps"]
    smoke = EXPERIMENT.preset("smoke")
    assert len(steps) == smoke.num_seeds and set(steps.stage) == {"train"}
    assert (steps.value == rr_config.env_steps(smoke, {"training": "novel"})).all()
    objects = rows[rows.metric == "level_object_colour"]  # once per level, object and seed
    assert len(objects) == 2 * 4 * 2 and set(objects.adversary) == {"none"}
    # The last curve point is the "after" evaluation.
    last = curves[curves.queries == 8].set_index(["adversary", "support", "seed"]).value
    after = main_rows[(main_rows.stage == "after") & (main_rows.metric == "epic")
                      & main_rows.support.isin(["all", "offdist"])].set_index(["adversary", "support", "seed"]).value
    np.testing.assert_allclose(last.sort_index().to_numpy(), after.sort_index().to_numpy(), equal_nan=True)
