"""One module per proposal; see `base` for the contract and the registry."""

from innerlab.experiments.base import Condition, ConfigError, Experiment, get, names

__all__ = ["Condition", "ConfigError", "Experiment", "get", "names"]
