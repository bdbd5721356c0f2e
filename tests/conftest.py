"""Shared test set-up.

Importing innerlab first sets its XLA CPU flags (and the persistent compilation cache) before
jax loads. The example experiment (tests/example_experiment) is registered here, for the tests
only: adding an experiment is its package plus one registry line, and the contract test
(test_experiment_contract.py) then covers it.
"""

import os

import pytest

import innerlab  # noqa: F401
from innerlab.experiments import base

# The fast tier is mostly XLA compiles of tiny programs (smoke runs): compiled with LLVM's cheap
# settings they compile about twice as fast (cross-episodic's smoke run: 221 s -> 101 s on the
# 2-core machine) and run the same code. The slow tier (`-m slow`, learning at quick scale)
# keeps XLA's defaults, where running time matters more than compiling. Set
# INNERLAB_TEST_XLA_DEFAULTS=1 to test with the defaults everywhere. (XLA reads XLA_FLAGS when
# its backend starts, i.e. at the first computation, after this; subprocesses, xdist and Ray
# workers inherit it; the persistent cache keys programs by flags.)
FAST_COMPILE_FLAGS = ("--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true")


def pytest_configure(config):
    if os.environ.get("INNERLAB_TEST_XLA_DEFAULTS") or (config.option.markexpr or "").strip() == "slow":
        return
    flags = os.environ.get("XLA_FLAGS", "")
    for flag in FAST_COMPILE_FLAGS:
        if flag.split("=")[0] not in flags:
            flags = f"{flags} {flag}".strip()
    os.environ["XLA_FLAGS"] = flags

base.register("example", "example_experiment")


def seeds_of(config) -> tuple[int, ...]:
    return tuple(range(config.seed_offset, config.seed_offset + config.num_seeds))


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """smoke_run(name) -> the run directory of experiment `name`'s smoke preset, run once per
    test process and shared by every test that reads it (compiles dominate the suite)."""
    runs = {}

    def get(name: str):
        if name not in runs:
            from innerlab.runner.local import run_experiment

            experiment = base.get(name)
            config = experiment.preset("smoke")
            out = tmp_path_factory.mktemp(f"smoke-{name}") / "run"
            run_experiment(experiment, config, seeds_of(config), out, preset="smoke", progress=False,
                           command=f"innerlab run {name} --preset smoke --out {out}")
            runs[name] = out
        return runs[name]

    return get


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Group tests for `pytest -n 2 --dist loadgroup` (make test): each file is one group, except
    that an experiment's own test file and its cases of the contract test form one group, so the
    experiment's shared smoke run (and its compiles) happens once, on one worker. tryfirst: xdist
    reads the groups in its own hook of this name, which would otherwise run before this one."""
    experiment_files = {"test_" + name.replace("-", "_"): name for name in base.names()}
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue  # the test names its group itself (e.g. to share an experiment's smoke run)
        module = item.path.stem
        params = getattr(getattr(item, "callspec", None), "params", {})
        if module == "test_experiment_contract" and "name" in params:
            group = params["name"]
        else:
            group = experiment_files.get(module, module)
        item.add_marker(pytest.mark.xdist_group(group))
