"""The contract between an experiment and the runner, and the registry of experiments.

An experiment is a typed, frozen `Config` with presets; `conditions(config)` is the grid of
treatments; `run_job(config, condition, seeds)` trains and evaluates one condition for a batch
of seeds (vmapped) and returns tidy metric rows; `analyze(config, rows)` turns the rows into a
`Report`. Jobs are pure functions of (config, condition, seeds): the same inputs on the same
machine give the same rows.

Each of innerlab's experiments is a package `innerlab/experiments/<name>/` (see
docs/adding-an-experiment.md):

    config.py    Config, PRESETS, SWEPT_FIELDS, HEADLINES, conditions(config) [, check(config)]  (no jax)
    train.py     run_job(config, condition, seeds, progress) -> rows                  (jax)
    report.py    build_report(config, rows) -> Report                                  (no experiment import)
    __init__.py  EXPERIMENT = PackageExperiment(name, question, __name__)             (no jax)

and one line in `_REGISTRY` below. `innerlab list` imports every `__init__.py`, which imports
only `config.py`: neither may import jax (a test checks it), so listing stays instant.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from innerlab.experiments.errors import ConfigError
from innerlab.experiments.fields import config_from_dict, config_to_dict, validate_fields

if TYPE_CHECKING:  # pandas and the report types load only when a report is built
    import pandas as pd

    from innerlab.report.document import Report

__all__ = ["Condition", "ConfigError", "Experiment", "PackageExperiment", "ProgressFn", "condition_id",
           "config_from_dict", "config_to_dict", "get", "names", "register"]

# Called by a job with the fraction of its work done (0..1) and a short status text.
ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class Condition:
    """One treatment. `id` is readable and filesystem-safe (used as the job file name);
    `fields` holds the swept fields' values, which become columns of metrics.parquet."""

    id: str
    fields: dict[str, Any]


def condition_id(fields: dict[str, Any]) -> str:
    """'channel-prev_p-0.25_arch-lstm' from {'channel': 'prev', 'p': 0.25, 'arch': 'lstm'}."""
    return "_".join(f"{k}-{v}" for k, v in fields.items())


def conditions_of(variants: list[dict[str, Any]]) -> list[Condition]:
    """Conditions from field dicts, in order, each distinct one once."""
    out, seen = [], set()
    for fields in variants:
        key = tuple(fields.items())
        if key not in seen:
            seen.add(key)
            out.append(Condition(condition_id(fields), fields))
    return out


class Experiment:
    """What the runner and the CLI use. Subclass it directly (tests do), or build one from a
    package with `PackageExperiment`."""

    name: ClassVar[str]
    question: ClassVar[str]
    Config: ClassVar[type]
    # Preset name -> Config. Every experiment has "smoke", "quick" and "paper".
    presets: ClassVar[dict[str, Any]]
    # Names of the Config fields (and derived columns) that appear as columns in the rows.
    swept_fields: ClassVar[tuple[str, ...]]
    # The metrics that sum up a run (experiments.headlines.Headline); `innerlab compare` uses them.
    headlines: ClassVar[tuple] = ()

    def preset(self, name: str):
        if name not in self.presets:
            raise ConfigError("preset", f"unknown preset {name!r}; allowed: {', '.join(self.presets)}")
        return self.presets[name]

    def validate(self, config) -> None:
        """Raise a ConfigError naming the first bad field: declared bounds, then cross-field rules."""
        validate_fields(config)

    def conditions(self, config) -> list[Condition]:
        raise NotImplementedError

    def run_job(self, config, condition: Condition, seeds: tuple[int, ...],
                progress: ProgressFn | None = None) -> list[dict[str, Any]]:
        """Train and evaluate `condition` for `seeds`; return rows with keys `seed`, `metric`,
        `value` and any extra columns (e.g. `perturbation`). The runner adds `experiment`,
        `condition` and the condition's fields."""
        raise NotImplementedError

    def analyze(self, config, rows: "pd.DataFrame") -> "Report":
        raise NotImplementedError


class PackageExperiment(Experiment):
    """An experiment whose parts are the modules of one package (see the module doc). `train`
    and `report` are imported only when a job runs or a report is built."""

    def __init__(self, name: str, question: str, package: str):
        self.name = name
        self.question = question
        self.package = package
        config = importlib.import_module(f"{package}.config")
        self._config_module = config
        self.Config = config.Config
        self.presets = dict(config.PRESETS)
        self.swept_fields = tuple(config.SWEPT_FIELDS)
        missing = {"smoke", "quick", "paper"} - set(self.presets)
        if missing:
            raise TypeError(f"{package}.config.PRESETS lacks {', '.join(sorted(missing))}")
        if not hasattr(config, "HEADLINES"):
            raise TypeError(f"{package}.config lacks HEADLINES (a tuple of experiments.headlines.Headline)")
        self.headlines = tuple(config.HEADLINES)

    def __repr__(self) -> str:
        return f"PackageExperiment({self.name!r}, package={self.package!r})"

    def conditions(self, config) -> list[Condition]:
        return self._config_module.conditions(config)

    def run_job(self, config, condition, seeds, progress=None):
        return importlib.import_module(f"{self.package}.train").run_job(config, condition, tuple(seeds), progress)

    def analyze(self, config, rows):
        report = importlib.import_module(f"{self.package}.report").build_report(config, rows)
        report.question = self.question  # written once, in the package's __init__
        return report


# --- the registry ------------------------------------------------------------------------------

_REGISTRY: dict[str, str] = {
    # name -> "module:attribute" (":EXPERIMENT" may be left out); imported on demand.
    "side-channels": "innerlab.experiments.side_channels",
    "unidentifiability": "innerlab.experiments.unidentifiability",
    "cross-episodic": "innerlab.experiments.cross_episodic",
    "robust-reward": "innerlab.experiments.robust_reward",
    "zero-shot": "innerlab.experiments.zero_shot",
    "learned-search": "innerlab.experiments.learned_search",
}


def names() -> list[str]:
    return list(_REGISTRY)


def register(name: str, spec: str) -> None:
    """Register experiment `name` as "module[:attribute]" (attribute default EXPERIMENT). For
    experiments that live outside innerlab (a user's own, or the tests' example)."""
    _REGISTRY[name] = spec


def resolve(spec: str) -> Experiment:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr or "EXPERIMENT")


def get(name: str) -> Experiment:
    """The registered experiment `name`; ConfigError listing the allowed names otherwise."""
    if name not in _REGISTRY:
        raise ConfigError("experiment", f"unknown experiment {name!r}; allowed: {', '.join(_REGISTRY)}")
    return resolve(_REGISTRY[name])
