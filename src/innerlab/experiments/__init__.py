"""One package per experiment, built on the kit: `base` (the contract and the registry),
`fields` (config fields with bounds, one validator), `training` (chunked jitted training, seed
keys) and `reporting` (controls as checks, intervals). See docs/adding-an-experiment.md."""

from innerlab.experiments.base import Condition, ConfigError, Experiment, get, names, register

__all__ = ["Condition", "ConfigError", "Experiment", "get", "names", "register"]
