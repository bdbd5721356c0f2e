"""The contract between an experiment and the runner.

An experiment is a typed, frozen `Config` with presets; `conditions(config)` is the grid of
treatments; `run_job(config, condition, seeds)` trains and evaluates one condition for a batch
of seeds (vmapped) and returns tidy metric rows; `analyze(config, rows)` turns the rows into a
`Report`. Jobs are pure functions of (config, condition, seeds): the same inputs on the same
machine give the same rows.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import pandas as pd

from innerlab.report.document import Report

# Called by a job with the fraction of its work done (0..1) and a short status text.
ProgressFn = Callable[[float, str], None]


class ConfigError(ValueError):
    """Bad user input. `str(err)` is the one line shown to the user: it names the field and
    what is allowed."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Condition:
    """One treatment. `id` is readable and filesystem-safe (used as the job file name);
    `fields` holds the swept fields' values, which become columns of metrics.parquet."""

    id: str
    fields: dict[str, Any]


def structure_key(config, traced_fields: tuple[str, ...]):
    """`config` with `traced_fields` reset to their defaults: a cache key for compiled functions,
    so conditions that differ only in traced values (or in what they select) share a compile."""
    return dataclasses.replace(config, **{f: getattr(type(config)(), f) for f in traced_fields})


def check_choices(name: str, values, allowed, allow_empty: bool = False) -> None:
    """ConfigError naming `name` unless every value is in `allowed` (and, unless `allow_empty`,
    there is at least one)."""
    if not values and not allow_empty:
        raise ConfigError(name, f"must name at least one of {', '.join(allowed)}")
    for v in values:
        if v not in allowed:
            raise ConfigError(name, f"unknown value {v!r}; allowed: {', '.join(allowed)}")


def condition_id(fields: dict[str, Any]) -> str:
    """'channel-prev_p-0.25_arch-lstm' from {'channel': 'prev', 'p': 0.25, 'arch': 'lstm'}."""
    return "_".join(f"{k}-{v}" for k, v in fields.items())


class Experiment(abc.ABC):
    """Base class of every experiment module's experiment object."""

    name: ClassVar[str]
    question: ClassVar[str]
    Config: ClassVar[type]
    # Preset name -> Config. Every experiment has "smoke", "quick" and "paper".
    presets: ClassVar[dict[str, Any]]
    # Names of the Config fields (and derived columns) that appear as columns in the rows.
    swept_fields: ClassVar[tuple[str, ...]]

    def preset(self, name: str):
        if name not in self.presets:
            raise ConfigError("preset", f"unknown preset {name!r}; allowed: {', '.join(self.presets)}")
        return self.presets[name]

    def validate(self, config) -> None:
        """Raise ConfigError naming the first bad field. Default: none."""

    @abc.abstractmethod
    def conditions(self, config) -> list[Condition]:
        ...

    @abc.abstractmethod
    def run_job(
        self, config, condition: Condition, seeds: tuple[int, ...], progress: ProgressFn | None = None
    ) -> list[dict[str, Any]]:
        """Train and evaluate `condition` for `seeds`; return rows with keys
        `seed`, `metric`, `value` and any extra columns (e.g. `perturbation`). The runner adds
        `experiment`, `condition` and the condition's fields."""

    @abc.abstractmethod
    def analyze(self, config, rows: pd.DataFrame) -> Report:
        ...


def config_to_dict(config) -> dict[str, Any]:
    """A JSON-ready dict of a (frozen dataclass) config; tuples become lists."""
    return dataclasses.asdict(config)


def config_from_dict(cls, data: dict[str, Any]):
    """Inverse of `config_to_dict` for flat configs whose sequence fields are tuples."""
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            v = data[f.name]
            kwargs[f.name] = tuple(v) if isinstance(v, list) else v
    return cls(**kwargs)


_REGISTRY: dict[str, str] = {
    # name -> "module:attribute"; modules are imported on demand so `innerlab list` is fast.
    "side-channels": "innerlab.experiments.side_channels:EXPERIMENT",
    "unidentifiability": "innerlab.experiments.unidentifiability:EXPERIMENT",
    "cross-episodic": "innerlab.experiments.cross_episodic:EXPERIMENT",
    "robust-reward": "innerlab.experiments.robust_reward:EXPERIMENT",
    "zero-shot": "innerlab.experiments.zero_shot:EXPERIMENT",
}

# One-line questions for `innerlab list`, kept here so listing imports no heavy module.
QUESTIONS: dict[str, str] = {
    "side-channels": "Does an agent that sees its reward in its observation keep its trained objective, "
    "or follow the observed reward when it is changed at test time?",
    "unidentifiability": "When several simple objectives explain the training reward equally, which one does the "
    "agent learn, and does it pursue a proxy competently off-distribution?",
    "cross-episodic": "Does a learner trained on episode-bounded returns come to pursue reward in later episodes "
    "(through population-based training, or a planner whose horizon crosses episodes), and does "
    "environment swapping stop it?",
    "robust-reward": "How far is a model-based agent's learned objective from the true reward on and off its "
    "training distribution, and does adversarial training where a reward ensemble disagrees close the gap?",
    "zero-shot": "When a language model acts in games it was never trained on, what objective does inverse RL recover "
    "from its behaviour, how coherent is it, and how does it compare with a PPO agent trained on the true reward?",
}


def names() -> list[str]:
    return list(_REGISTRY)


def get(name: str) -> Experiment:
    """The registered experiment `name`; ConfigError listing the allowed names otherwise."""
    if name not in _REGISTRY:
        raise ConfigError("experiment", f"unknown experiment {name!r}; allowed: {', '.join(_REGISTRY)}")
    import importlib

    module, attr = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), attr)
