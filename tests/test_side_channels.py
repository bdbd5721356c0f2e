"""The side-channels experiment end to end on the smoke preset: determinism, resume after a
SIGKILL, the store's format, and re-rendering a report."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from innerlab.cli import main
from innerlab.experiments import get

SMOKE = ["run", "side-channels", "--preset", "smoke"]


def _cli(args, cwd=None, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "innerlab", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)


@pytest.fixture(scope="module")
def smoke_run(smoke_run):  # the session's shared smoke run (conftest.py)
    return smoke_run("side-channels")


def test_store_layout_and_tidy_metrics(smoke_run):
    record = json.loads((smoke_run / "config.json").read_text())
    assert record["experiment"] == "side-channels" and record["seeds"] == [0, 1]
    assert record["versions"]["jax"] and record["command"].startswith("innerlab run side-channels")
    rows = pd.read_parquet(smoke_run / "metrics.parquet")
    assert list(rows.columns) == ["experiment", "condition", "channel", "p", "arch", "transform",
                                  "perturbation", "seed", "metric", "value"]
    conditions = get("side-channels").conditions(get("side-channels").presets["smoke"])
    assert sorted(rows.condition.unique()) == sorted(c.id for c in conditions)
    assert len(list((smoke_run / "jobs").glob("*.json"))) == len(conditions)
    follow = rows[rows.metric == "follow_index"]
    assert set(follow.perturbation) == {"swap"} and follow.value.between(0, 1).all()
    # one row per condition x seed x perturbation x metric
    assert not rows.duplicated(["condition", "perturbation", "seed", "metric"]).any()
    for name in ("report.md", "report.html", "figures/follow_index.png"):
        assert (smoke_run / name).is_file()
    html = (smoke_run / "report.html").read_text()
    assert "data:image/png;base64," in html and "Controls" in html


def test_same_command_twice_gives_identical_metrics(smoke_run, tmp_path):
    again = tmp_path / "again"
    assert main([*SMOKE, "--out", str(again)]) == 0
    assert (again / "metrics.parquet").read_bytes() == (smoke_run / "metrics.parquet").read_bytes()


def test_report_rerenders_without_training(smoke_run):
    (smoke_run / "report.md").unlink()
    start = time.time()
    assert main(["report", str(smoke_run)]) == 0
    assert (smoke_run / "report.md").is_file() and time.time() - start < 30


def test_sigkill_then_resume_matches_uninterrupted(smoke_run, tmp_path):
    out = tmp_path / "killed"
    proc = _cli([*SMOKE, "--out", str(out)], start_new_session=True)
    jobs = out / "jobs"
    deadline = time.time() + 240
    while time.time() < deadline and not (jobs.is_dir() and any(jobs.glob("*.json"))):
        time.sleep(0.05)
        assert proc.poll() is None, proc.stdout.read().decode()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in jobs.glob("*.json")}
    total = len(get("side-channels").conditions(get("side-channels").presets["smoke"]))
    assert 1 <= len(finished) < total, "the kill should land part-way"
    assert not (out / "metrics.parquet").exists()

    resumed = _cli([*SMOKE, "--out", str(out), "--resume"])
    output = resumed.communicate(timeout=300)[0].decode()
    assert resumed.returncode == 0, output
    for name, mtime in finished.items():  # finished jobs were not retrained
        assert (jobs / name).stat().st_mtime_ns == mtime
    assert (out / "metrics.parquet").read_bytes() == (smoke_run / "metrics.parquet").read_bytes()


# --- checkpoints and live curves (experiments.outputs) -------------------------------------------

RELOAD = """
import json, sys
import innerlab
import jax
from innerlab.experiments.base import Condition
from innerlab.experiments.side_channels.train import evaluate_agents

run, condition = sys.argv[1], sys.argv[2]
out = {}
for seed in (0, 1):
    agent = innerlab.load_agent(run, condition=condition, seed=seed)
    params = jax.tree.map(lambda x: x[None], agent.params)   # one seed, as a seed axis of 1
    rows = evaluate_agents(agent.config, Condition(agent.condition, agent.fields), params, (seed,))
    out[seed] = [r["value"] for r in rows if r["metric"] == "follow_index"]
print(json.dumps(out))
"""


def test_load_agent_in_a_fresh_python_reproduces_the_stored_follow_index(smoke_run):
    """The acceptance check: the prev/p=1 agents, loaded from their checkpoint in a new process,
    give exactly the follow index the run stored (same seeds, same number)."""
    condition = "channel-prev_p-1.0_arch-lstm_transform-identity"
    done = subprocess.run([sys.executable, "-c", RELOAD, str(smoke_run), condition], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    reloaded = json.loads(done.stdout.strip().splitlines()[-1])
    rows = pd.read_parquet(smoke_run / "metrics.parquet")
    stored = rows[(rows.condition == condition) & (rows.metric == "follow_index")].set_index("seed")["value"]
    assert {int(k): v for k, v in reloaded.items()} == {0: [stored[0]], 1: [stored[1]]}


def test_load_agent_acts_and_names_what_is_wrong(smoke_run):
    import jax

    import innerlab
    from innerlab.experiments import ConfigError

    agent = innerlab.load_agent(smoke_run, condition={"channel": "prev", "p": 0.0}, seed=1)
    assert agent.condition == "channel-prev_p-0.0_arch-lstm_transform-identity" and agent.seed == 1
    obs, _ = agent.env.reset(jax.random.key(0), agent.env_params)
    action, carry = agent.policy(agent.params, obs, agent.initial_carry, jax.random.key(1))
    assert 0 <= int(action) < agent.env.num_actions
    assert not bool(carry[1]) and bool(agent.initial_carry[1])  # is_first: True only at the start
    with pytest.raises(ConfigError, match="seed: 7 was not trained"):
        innerlab.load_agent(smoke_run, condition=agent.condition, seed=7)
    with pytest.raises(ConfigError, match="condition: .*matches 2 conditions"):
        innerlab.load_agent(smoke_run, condition={"channel": "prev"})
    with pytest.raises(ConfigError, match="condition: no checkpoint for 'channel-none_p-0.0_arch-random"):
        innerlab.load_agent(smoke_run, condition="channel-none_p-0.0_arch-random_transform-identity")
    with pytest.raises(ConfigError, match="name: .*allowed: agent"):
        innerlab.load_agent(smoke_run, condition=agent.condition, name="critic")


def test_checkpoints_hold_no_pickle_and_every_seed(smoke_run):
    from flax import serialization

    path = smoke_run / "checkpoints" / "channel-prev_p-1.0_arch-lstm_transform-identity" / "agent.msgpack"
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["seeds"] == [0, 1] and record["kind"] == "network"
    assert record["network"]["config"]["arch"] == "lstm" and record["network"]["config"]["width"] == 16
    assert not path.read_bytes().startswith(b"\x80")  # a pickle's first byte
    state = serialization.msgpack_restore(path.read_bytes())
    import jax

    assert {leaf.shape[0] for leaf in jax.tree.leaves(state)} == {2}


def test_tensorboard_event_files_read_back_with_tensorboards_reader(smoke_run):
    """Every trained condition and seed has one curve per training scalar, one point per PPO
    update (16 in the smoke preset, run as chunks of 5, 5, 5 and a tail of 1), readable by
    TensorBoard's own EventAccumulator."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = sorted((smoke_run / "tb").glob("*/seed-*"))
    trained = [p for p in runs if "arch-lstm" in p.parent.name]
    assert len(trained) == 8 and len(runs) == 8  # 4 trained conditions x 2 seeds; the random arch trains nothing
    accumulator = EventAccumulator(str(runs[0]))
    accumulator.Reload()
    tags = accumulator.Tags()["scalars"]
    assert {"train/episode_return", "train/entropy", "train/episodes"} <= set(tags)
    steps = [e.step for e in accumulator.Scalars("train/episodes")]
    assert steps == list(range(1, 17))
    assert all(e.value >= 0 for e in accumulator.Scalars("train/episodes"))
