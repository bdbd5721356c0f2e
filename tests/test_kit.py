"""The experiment kit's own pieces on toy inputs with known answers: declared bounds and the
validator, inherited bounds and help, structure keys, chunked training that runs exactly the
requested updates, named seed streams, controls as checks."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from innerlab.experiments.errors import ConfigError
from innerlab.experiments.fields import (TRACED, Gt, Max, Min, NonEmpty, OneOf, PPOFields, SeedFields, field_docs,
                                         field_specs, structure_key, validate_fields)
from innerlab.experiments.reporting import FAIL, PASS, Check, ci, controls_section, select
from innerlab.experiments.training import compile_chunked, run_chunked, seed_keys, split_chunks


@dataclass(frozen=True)
class Toy(PPOFields, SeedFields):
    mode: Annotated[tuple[str, ...], OneOf(("a", "b")), NonEmpty(), TRACED] = ("a",)
    """Modes to run."""
    share: Annotated[float, Min(0.0), Max(1.0)] = 0.5
    """A share."""
    num_envs: int = 8
    """Environments (a new default)."""
    lr: float = 0.1

    def cross_check(self) -> None:
        if self.share > 0.9 and "b" in self.mode:
            raise ConfigError("share", "must be <= 0.9 with mode b")


@pytest.mark.parametrize("change, field, text", [
    (dict(num_seeds=0), "num_seeds", "0 is out of range; allowed: >= 1"),
    (dict(seed_offset=-1), "seed_offset", "allowed: >= 0"),
    (dict(num_envs=0), "num_envs", "allowed: >= 1"),          # bound inherited by the re-declared field
    (dict(lr=0.0), "lr", "allowed: > 0"),
    (dict(gamma=1.5), "gamma", "allowed: <= 1"),
    (dict(share=-0.1), "share", "allowed: >= 0"),
    (dict(share=float("nan")), "share", "not a finite number"),
    (dict(mode=("a", "c")), "mode", "unknown value 'c'; allowed: a, b"),
    (dict(mode=()), "mode", "is empty"),
    (dict(num_minibatches=3), "num_minibatches", "must divide num_envs (8)"),
    (dict(total_steps=10), "total_steps", "less than one update"),
    (dict(share=0.95, mode=("b",)), "share", "with mode b"),   # the config's own cross-field rule
])
def test_validator_names_one_field(change, field, text):
    with pytest.raises(ConfigError) as err:
        validate_fields(dataclasses.replace(Toy(), **change))
    assert err.value.field == field and text in str(err.value) and "\n" not in str(err.value)


def test_good_config_passes_and_redeclared_fields_keep_bounds_and_help():
    validate_fields(Toy())
    specs = field_specs(Toy)
    assert list(specs)[:2] == ["num_seeds", "seed_offset"]       # seeds first
    assert specs["lr"].traced and specs["lr"].bounds == (Gt(0),)  # inherited from PPOFields
    docs = field_docs(Toy)
    assert docs["num_envs"] == "Environments (a new default)."    # its own help wins
    assert docs["lr"].startswith("Adam learning rate")           # inherited help
    assert Toy().num_envs == 8 and PPOFields().num_envs == 64


def test_structure_key_resets_only_traced_fields():
    a = Toy(lr=0.3, mode=("b",), num_seeds=3, share=0.2)
    key = structure_key(a)
    assert key.lr == Toy().lr and key.mode == Toy().mode and key.num_seeds == Toy().num_seeds
    assert key.share == 0.2  # not traced: it keeps its value (it could change a compiled program)
    assert structure_key(dataclasses.replace(a, lr=0.9)) == key
    assert structure_key(dataclasses.replace(a, rollout_len=7)) != key


@pytest.mark.parametrize("updates, chunks", [(488, 10), (16, 3), (7, 7), (5, 10), (1, 1), (100, 3)])
def test_split_chunks_covers_every_update(updates, chunks):
    chunk, whole, tail = split_chunks(updates, chunks)
    assert chunk * whole + tail == updates and 0 <= tail < chunk and whole >= 1


def _counter_trainer():
    def init(key, start):
        return {"count": jnp.asarray(start, jnp.int32), "key": key}

    def run(state, increment, num_updates):
        def step(s, _):
            s = {"count": s["count"] + increment, "key": s["key"]}
            return s, {"count": s["count"]}
        return jax.lax.scan(step, state, None, length=num_updates)

    return init, run


@pytest.mark.parametrize("updates, chunks", [(488, 10), (16, 3), (12, 4), (5, 10)])
def test_run_chunked_trains_exactly_the_requested_updates(updates, chunks):
    init, run = _counter_trainer()
    compiled = compile_chunked(init, run, updates, chunks, init_axes=(0, None))
    state = compiled.init(jax.random.split(jax.random.key(0), 2), 0)
    seen = []
    state, metrics = run_chunked(compiled, state, 1, progress=lambda f, s: seen.append(f))
    assert np.asarray(state["count"]).tolist() == [updates, updates]
    assert metrics["count"].shape == (2, updates)
    assert metrics["count"][0].tolist() == list(range(1, updates + 1))
    assert seen[-1] == pytest.approx(1.0) and all(a < b for a, b in zip(seen, seen[1:]))
    assert (compiled.run_tail is None) == (updates % compiled.chunk == 0)


def test_seed_keys_streams_are_fold_ins_and_distinct():
    keys = seed_keys((3, 4), ("train", "eval"))
    expected = jax.random.fold_in(jax.random.key(3), 1)
    assert np.array_equal(jax.random.key_data(keys["eval"][0]), jax.random.key_data(expected))
    a, b = (jax.random.key_data(keys[n]) for n in ("train", "eval"))
    assert not np.array_equal(a, b)
    with pytest.raises(ValueError):
        seed_keys((0,), ("train", "train"))


def test_select_ci_and_controls():
    rows = pd.DataFrame({"metric": ["m"] * 4 + ["n"], "arm": ["x", "x", "y", "y", "x"],
                         "value": [1.0, 3.0, 10.0, 10.0, 5.0]})
    assert len(select(rows, metric="m", arm=("x", "y"))) == 4
    assert ci(rows, "m", arm="x")[0] == 2.0
    assert np.isnan(ci(rows, "m", arm="z")[0])
    checks = [Check("ok", "c", "1", True), Check("bad", "c", "0", False), Check("chance", "-", "0.5", None)]
    assert [c.result for c in checks] == [PASS, FAIL, "-"]
    section = controls_section(checks, "All pass.")
    assert "1 control(s) FAIL" in section.text and list(section.tables[0].result) == [PASS, FAIL, "-"]
    assert controls_section(checks[:1], "All pass.").text == "All pass."


def test_suite_groups_reach_xdist(request):
    # `make test` runs `-n 2 --dist loadgroup`: conftest.py groups each experiment's tests so its
    # shared smoke run happens once. xdist marks a grouped test by suffixing its node id with
    # '@group'; some pytest/xdist pairs silently drop that (pytest 9.2 with xdist 3.8), and every
    # smoke run would then compile twice.
    if not getattr(request.config.option, "loadgroup", False):  # set on xdist's workers
        pytest.skip("only under pytest -n N --dist loadgroup")
    assert request.node.nodeid.endswith("@test_kit"), (
        f"{request.node.nodeid}: xdist's loadgroup is not grouping tests with this pytest/pytest-xdist pair")
