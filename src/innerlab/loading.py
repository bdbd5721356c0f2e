"""Load a trained agent from a run directory: `innerlab.load_agent`.

    agent = innerlab.load_agent("runs/demo", condition="channel-prev_p-1.0_arch-lstm_transform-identity", seed=0)
    action, carry = agent.policy(agent.params, obs, agent.initial_carry, key)   # one environment
    totals = evaluate(agent.env, agent.network, agent.params, agent.env_params, key, 64, 300, stats)

Reads only JSON and msgpack (experiments.outputs writes them; nothing is unpickled). The agent
is rebuilt from what the checkpoint records: a network agent from its `NetworkConfig`, obs size
and action count (`make_network`), so loading needs no training code; its env and env params
come from the experiment's `train.agent_env(config, condition)` where the experiment has one.
Checkpoints of other kinds (MuZero, the builtin language model) load as parameters plus what
rebuilds them (`meta`); the builtin model also as a ready `BuiltinPolicy` (`model`).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
from pathlib import Path
from typing import Any

from innerlab.agents.policy import Agent
from innerlab.experiments.errors import ConfigError
from innerlab.experiments.outputs import CHECKPOINTS, checkpoint_dir


@dataclasses.dataclass(frozen=True)
class LoadedAgent(Agent):
    """An `Agent` (policy, params, initial_carry) loaded from a run, with where it came from.

    network: the innerlab `Network` (None for other kinds); env, env_params: the environment and
    parameters it was trained in (None where the experiment does not say); model: a kind's own
    object (the builtin model's `BuiltinPolicy`); meta: the checkpoint's JSON record."""

    network: Any = None
    env: Any = None
    env_params: Any = None
    model: Any = None
    kind: str = "network"
    name: str = "agent"
    experiment: str = ""
    config: Any = None
    condition: str = ""
    fields: dict = dataclasses.field(default_factory=dict)
    seed: int = 0
    member: int | None = None
    meta: dict = dataclasses.field(default_factory=dict)


def checkpoints(run_dir) -> dict[str, list[str]]:
    """{condition id: [checkpoint names]} of a run directory."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return {}
    return {d.name: sorted(p.stem for p in d.glob("*.json")) for d in sorted(root.iterdir()) if d.is_dir()}


def load_agent(run_dir, condition: str | dict | None = None, seed: int | None = None, name: str = "agent",
               member: int | None = None, with_env: bool = True) -> LoadedAgent:
    """The trained agent `name` of `condition` and `seed` in `run_dir`.

    condition: a condition id (the job file's name, e.g. 'channel-prev_p-1.0_arch-lstm_transform-identity')
    or a dict of field values that picks exactly one condition ({'channel': 'prev', 'p': 1.0});
    may be left out when one condition has checkpoints. seed: one of the run's seeds (default:
    the first). member: a PBT population's member (cross-episodic; required there).
    ConfigError (naming the argument and what is allowed) for anything that is not there."""
    from innerlab.experiments import base
    from innerlab.runner.store import read_record

    run_dir = Path(run_dir)
    record = read_record(run_dir)
    experiment = base.get(record["experiment"])
    config = base.config_from_dict(experiment.Config, record["config"])
    saved = checkpoints(run_dir)
    if not saved:
        off = record["config"].get("save_agents") is False
        raise ConfigError("run_dir", f"{run_dir} has no checkpoints ({'save_agents was off' if off else 'no job has finished, or the run predates checkpoints'}); "
                          "allowed: a run made with save_agents on")
    cond = _pick_condition(experiment, config, condition, saved)
    if name not in saved[cond.id]:
        raise ConfigError("name", f"condition {cond.id} has no checkpoint {name!r}; allowed: {', '.join(saved[cond.id])}")
    meta = json.loads((checkpoint_dir(run_dir, cond.id) / f"{name}.json").read_text())
    seeds = [int(s) for s in meta["seeds"]]
    seed = seeds[0] if seed is None else seed
    if seed not in seeds:
        raise ConfigError("seed", f"{seed} was not trained in {cond.id}; allowed: {', '.join(map(str, seeds))}")
    members = meta.get("members")
    if members is not None and (member is None or not 0 <= member < members):
        raise ConfigError("member", f"{member!r}: {cond.id} trained populations of {members}; allowed: 0..{members - 1}")
    if members is None and member is not None:
        raise ConfigError("member", f"{cond.id} has no population; allowed: member=None")

    index = (seeds.index(seed),) if members is None else (seeds.index(seed), member)
    params, network = _restore(checkpoint_dir(run_dir, cond.id) / f"{name}.msgpack", meta, index)
    kwargs: dict[str, Any] = {}
    if network is not None:
        from innerlab.agents.policy import network_initial_carry, network_policy

        kwargs = {"policy": network_policy(network), "initial_carry": network_initial_carry(network),
                  "network": network}
    else:
        kwargs = {"policy": _no_policy(meta["kind"]), "model": _model(meta, params)}
    if with_env:
        train = importlib.import_module(f"{experiment.package}.train") if hasattr(experiment, "package") else None
        if train is not None and hasattr(train, "agent_env"):
            kwargs["env"], kwargs["env_params"] = train.agent_env(config, cond)
    return LoadedAgent(params=params, kind=meta["kind"], name=name, experiment=experiment.name, config=config,
                       condition=cond.id, fields=dict(cond.fields), seed=seed, member=member, meta=meta, **kwargs)


def _pick_condition(experiment, config, condition, saved: dict[str, list[str]]):
    conditions = [c for c in experiment.conditions(config) if c.id in saved]
    allowed = ", ".join(c.id for c in conditions)
    if condition is None:
        if len(conditions) != 1:
            raise ConfigError("condition", f"the run has checkpoints for {len(conditions)} conditions; allowed: {allowed}")
        return conditions[0]
    if isinstance(condition, str):
        for c in conditions:
            if c.id == condition:
                return c
        raise ConfigError("condition", f"no checkpoint for {condition!r}; allowed: {allowed}")
    matches = [c for c in conditions if all(c.fields.get(k) == v for k, v in condition.items())]
    if len(matches) != 1:
        raise ConfigError("condition", f"{condition} matches {len(matches)} conditions with checkpoints; allowed: "
                          f"fields that pick one of {allowed}")
    return matches[0]


def _restore(path: Path, meta: dict, index: tuple[int, ...]):
    """(params of one seed [and member], Network or None) from a checkpoint."""
    import jax
    from flax import serialization

    state = serialization.msgpack_restore(path.read_bytes())
    network = None
    if meta["kind"] == "network" and "network" in meta:
        from innerlab.agents.networks import NetworkConfig

        spec = meta["network"]
        net_config = NetworkConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["config"].items()})
        network = _network(net_config, spec["obs_dim"], spec["num_actions"])
        template = jax.eval_shape(network.init, jax.random.key(0))
        params = serialization.from_state_dict(template, jax.tree.map(lambda x: x[index], state))
        return jax.tree.map(jax.numpy.asarray, params), network
    return jax.tree.map(lambda x: jax.numpy.asarray(x[index]), state), None


@functools.lru_cache(maxsize=32)
def _network(net_config, obs_dim: int, num_actions: int):
    """One `Network` per architecture: every seed's agent shares its functions, so what is
    compiled for one (a probe's rollout, `evaluate`) serves them all."""
    from innerlab.agents.networks import make_network

    return make_network(net_config, obs_dim, num_actions)


def _model(meta: dict, params):
    if meta["kind"] == "builtin_lm":
        import jax

        from innerlab.agents.lm import builtin

        tokenizer = builtin.Tokenizer.from_json(meta["tokenizer"])
        model_config = builtin.BuiltinConfig.from_json(meta["model"])
        stacked = jax.tree.map(lambda x: x[None], params)
        return builtin.BuiltinPolicy.for_seed(stacked, 0, tokenizer, model_config)
    return None


def _no_policy(kind: str):
    def policy(params, obs, carry, key):
        raise TypeError(f"a {kind} checkpoint has no (params, obs, carry, key) policy; use its params and meta "
                        "(and `model`, where there is one)")
    return policy
