"""The contract every registered experiment keeps, checked over the registry: a new experiment
is covered by registering it (tests/conftest.py registers the tests' example experiment too).

- every preset validates, and has conditions with unique, filesystem-safe ids;
- every config field has help text; each declared bound rejects a bad value with one line
  naming exactly that field (through `validate` and through the command line);
- importing the experiment (what `innerlab list` does) imports no jax;
- a smoke run writes tidy metrics.parquet and a report with a controls table;
- the env steps each trained condition actually did (counted inside the jitted training) equal
  what its config asks for, rounded down to whole updates: the smoke presets' progress_chunks
  do not divide their update counts, so a chunked runner that drops its tail fails here.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import pandas as pd
import pytest

from innerlab.cli import main
from innerlab.experiments import base
from innerlab.experiments.errors import ConfigError
from innerlab.experiments.fields import Gt, Lt, Max, Min, NonEmpty, Odd, OneOf, field_specs

NAMES = base.names()
TESTS = Path(__file__).parent


def _config_module(experiment):
    return importlib.import_module(f"{experiment.package}.config")


@pytest.mark.parametrize("name", NAMES)
def test_presets_validate_and_have_conditions(name):
    experiment = base.get(name)
    assert {"smoke", "quick", "paper"} <= set(experiment.presets)
    for preset, config in experiment.presets.items():
        experiment.validate(config)
        conditions = experiment.conditions(config)
        assert conditions, f"{name} {preset}: no conditions"
        ids = [c.id for c in conditions]
        assert len(ids) == len(set(ids)), f"{name} {preset}: repeated condition ids"
        for c in conditions:
            assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._=+-]*", c.id), c.id
            assert set(c.fields) <= set(experiment.swept_fields), (c.id, experiment.swept_fields)


@pytest.mark.parametrize("name", NAMES)
def test_every_field_has_help(name):
    experiment = base.get(name)
    missing = [n for n, spec in field_specs(experiment.Config).items() if not spec.doc]
    assert not missing, f"{name}: fields without a docstring: {missing}"


def _bad_values(spec):
    """(bad value, its command-line text) for each bound of a field that has one."""
    is_tuple = typing.get_origin(spec.type) is tuple
    element = typing.get_args(spec.type)[0] if is_tuple else spec.type
    out = []
    for bound in spec.bounds:
        if isinstance(bound, NonEmpty):
            out.append(((), ""))
            continue
        if isinstance(bound, Min):
            bad = bound.low - 1
        elif isinstance(bound, Gt):
            bad = bound.low
        elif isinstance(bound, Max):
            bad = bound.high + 1
        elif isinstance(bound, Lt):
            bad = bound.high
        elif isinstance(bound, OneOf):
            bad = "no-such-value" if element is str else None
        elif isinstance(bound, Odd):
            bad = 2
        else:
            bad = None
        if bad is None:
            continue
        bad = int(bad) if element is int else float(bad) if element is float else bad
        out.append(((bad,) if is_tuple else bad, str(bad)))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_each_bad_value_names_its_field(name, capsys):
    experiment = base.get(name)
    config = experiment.preset("smoke")
    tried = 0
    for field, spec in field_specs(experiment.Config).items():
        for bad, text in _bad_values(spec):
            with pytest.raises(ConfigError) as err:
                experiment.validate(dataclasses.replace(config, **{field: bad}))
            assert err.value.field == field, (field, bad, str(err.value))
            assert "\n" not in str(err.value) and str(err.value).startswith(f"{field}: ")
            assert main(["run", name, "--preset", "smoke", f"--{field}", text]) == 2
            lines = capsys.readouterr().err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"innerlab: error: {field}: "), (field, text, lines)
            tried += 1
    assert tried >= 3, f"{name}: fewer than 3 declared bounds"


def test_listing_imports_no_jax():
    code = ("import sys, innerlab\n"
            "from innerlab.experiments import base\n"
            "base.register('example', 'example_experiment')\n"
            "for name in base.names():\n"
            "    e = base.get(name)\n"
            "    for preset in e.presets.values():\n"
            "        e.validate(preset); e.conditions(preset)\n"
            "heavy = [m for m in ('jax', 'flax', 'matplotlib', 'pandas') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("name", NAMES)
def test_smoke_run_writes_tidy_metrics_and_a_controls_table(name, smoke_run):
    run = smoke_run(name)
    experiment = base.get(name)
    rows = pd.read_parquet(run / "metrics.parquet")
    columns = list(rows.columns)
    assert columns[:2] == ["experiment", "condition"] and columns[-3:] == ["seed", "metric", "value"]
    assert set(rows.experiment) == {name}
    conditions = experiment.conditions(experiment.preset("smoke"))
    assert sorted(rows.condition.unique()) == sorted(c.id for c in conditions)
    for c in conditions:
        assert set(c.fields) <= set(columns)
    md = (run / "report.md").read_text()
    assert "## Controls" in md and "| control | criterion | measured | result |" in md
    assert experiment.question in md


@pytest.mark.parametrize("name", NAMES)
def test_trained_env_steps_equal_the_config(name, smoke_run):
    run = smoke_run(name)
    experiment = base.get(name)
    config = experiment.preset("smoke")
    rows = pd.read_parquet(run / "metrics.parquet")
    steps = rows[rows.metric == "env_steps"]
    expected_any = False
    for c in experiment.conditions(config):
        expected = _config_module(experiment).env_steps(config, c.fields)
        measured = steps[steps.condition == c.id].value
        if expected == 0:
            assert (measured == 0).all(), (c.id, measured.tolist())
            continue
        expected_any = True
        assert len(measured) == config.num_seeds, f"{c.id}: {len(measured)} env_steps rows"
        assert (measured == expected).all(), f"{c.id}: trained {sorted(set(measured))} env steps, config asks {expected}"
    assert expected_any, f"{name}: no trained condition in the smoke preset"


@pytest.mark.parametrize("name", NAMES)
def test_headlines_select_rows_of_the_smoke_run(name, smoke_run):
    experiment = base.get(name)
    assert experiment.headlines, f"{name}: its config declares no HEADLINES"
    rows = pd.read_parquet(smoke_run(name) / "metrics.parquet")
    for headline in experiment.headlines:
        assert len(headline.values(rows)), f"{name}: headline {headline.label!r} selects no row of the smoke run"


@pytest.mark.parametrize("name", NAMES)
def test_smoke_run_saves_loadable_agents_and_live_curves(name, smoke_run):
    """Every condition that trains leaves checkpoints (every seed) that `innerlab.load_agent`
    reads back without the training code, and some condition leaves TensorBoard curves."""
    import jax
    import numpy as np

    import innerlab
    from innerlab.loading import checkpoints

    experiment, run = base.get(name), smoke_run(name)
    config = experiment.preset("smoke")
    saved = checkpoints(run)
    trained = [c for c in experiment.conditions(config) if _config_module(experiment).env_steps(config, c.fields) > 0]
    assert trained and all(saved.get(c.id) for c in trained), f"{name}: trained conditions without checkpoints"
    seeds = list(range(config.seed_offset, config.seed_offset + config.num_seeds))
    condition = trained[0].id
    checkpoint = saved[condition][0]
    record = __import__("json").loads((run / "checkpoints" / condition / f"{checkpoint}.json").read_text())
    assert record["seeds"] == seeds
    member = 0 if record.get("members") else None
    agent = innerlab.load_agent(run, condition=condition, seed=seeds[-1], name=checkpoint, member=member)
    assert agent.seed == seeds[-1] and jax.tree.leaves(agent.params)
    if agent.network is not None:
        obs = np.zeros(record["network"]["obs_dim"], np.float32)
        action, _ = agent.policy(agent.params, obs, agent.initial_carry, jax.random.key(0))
        assert 0 <= int(action) < record["network"]["num_actions"]
    assert list((run / "tb").glob("*/seed-*/events.out.tfevents.*")), f"{name}: no TensorBoard curves"
