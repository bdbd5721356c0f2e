"""Config fields for experiments: bounds declared with the field, one validator, shared groups.

This module never imports jax (nor numpy or pandas): `innerlab list` and `--help` import every
experiment's `config.py`, which builds on it, and must stay instant.

A field's bounds ride in its type annotation:

    @dataclass(frozen=True)
    class Config(PPOFields, SeedFields):       # fields in reverse MRO order: seeds first
        grid_size: Annotated[int, Min(3)] = 4
        \"\"\"Side of the grid.\"\"\"                      # the docstring is the --help text
        channel: Annotated[tuple[str, ...], OneOf(CHANNELS), NonEmpty()] = CHANNELS
        p: Annotated[tuple[float, ...], Min(0.0), Max(1.0), NonEmpty(), TRACED] = (0.0, 1.0)
        num_envs: int = 128                            # a new default; Min(1) is inherited

`validate_fields(config)` checks every bound and raises a `ConfigError` naming exactly one
field. A field re-declared in a subclass without an `Annotated` type keeps the bounds (and the
docstring) of the class that declared it first. On a tuple field a bound applies to each
element. Then any `cross_check(self)` method defined on a class of the config's MRO runs (base
classes first): rules that involve several fields, each raising a ConfigError that names the
one field to change.

`TRACED` marks a field that never changes what is compiled (a traced value such as a learning
rate, or a selection such as which conditions to run): `structure_key(config)` resets such
fields to their defaults, giving the cache key of compiled functions.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
import sys
import textwrap
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Callable

from innerlab.experiments.errors import ConfigError


# --- bounds ------------------------------------------------------------------------------------

class Bound:
    """One rule on a value. `check(value)` returns None if it holds, else what is allowed."""

    def check(self, value) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    element_wise = True  # applied to each element of a tuple field (else to the tuple)


@dataclass(frozen=True)
class Min(Bound):
    low: float

    def check(self, value):
        return None if value >= self.low else self.describe()

    def describe(self):
        return f">= {self.low:g}"


@dataclass(frozen=True)
class Max(Bound):
    high: float

    def check(self, value):
        return None if value <= self.high else self.describe()

    def describe(self):
        return f"<= {self.high:g}"


@dataclass(frozen=True)
class Gt(Bound):
    low: float

    def check(self, value):
        return None if value > self.low else self.describe()

    def describe(self):
        return f"> {self.low:g}"


@dataclass(frozen=True)
class Lt(Bound):
    high: float

    def check(self, value):
        return None if value < self.high else self.describe()

    def describe(self):
        return f"< {self.high:g}"


@dataclass(frozen=True)
class OneOf(Bound):
    choices: tuple

    def check(self, value):
        return None if value in self.choices else self.describe()

    def describe(self):
        return ", ".join(str(c) for c in self.choices)


@dataclass(frozen=True)
class Odd(Bound):
    def check(self, value):
        return None if value % 2 == 1 else self.describe()

    def describe(self):
        return "odd numbers"


@dataclass(frozen=True)
class NonEmpty(Bound):
    """A tuple field must list at least one value."""

    element_wise = False

    def check(self, value):
        return None if len(value) > 0 else self.describe()

    def describe(self):
        return "at least one value"


@dataclass(frozen=True)
class Satisfies(Bound):
    """A custom rule: `predicate(value)` must be true; `allowed` says what is allowed."""

    predicate: Callable[[Any], bool]
    allowed: str

    def check(self, value):
        return None if self.predicate(value) else self.allowed

    def describe(self):
        return self.allowed


class _Traced:
    """Marker: the field never changes the compiled program (see the module doc)."""

    def __repr__(self):
        return "TRACED"


TRACED = _Traced()


# --- reading the declarations ---------------------------------------------------------------------

@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: Any            # the plain type (Annotated stripped)
    bounds: tuple[Bound, ...]
    traced: bool
    doc: str


def _own_docs(cls) -> dict[str, str]:
    """Docstrings of the fields declared in `cls`'s own body (the string just after a field)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


_SPECS: dict[type, dict[str, FieldSpec]] = {}


def _own_hints(klass) -> dict[str, Any]:
    """The annotations written in `klass`'s own body, evaluated with extras kept. Evaluated in
    the class's module (not through typing.get_type_hints, which makes the class namespace the
    globals of a `Satisfies(lambda ...)`, so module-level names inside the lambda would fail)."""
    module = sys.modules.get(klass.__module__)
    globalns = dict(vars(module)) if module is not None else {}
    out = {}
    for name, annotation in klass.__dict__.get("__annotations__", {}).items():
        out[name] = eval(annotation, globalns, dict(vars(klass))) if isinstance(annotation, str) else annotation
    return out


def field_specs(cls) -> dict[str, FieldSpec]:
    """Every dataclass field of `cls` with its plain type, bounds, traced flag and docstring,
    each taken from the nearest class in the MRO that declares it (bounds: that annotates it
    with `Annotated`; doc: that gives it a docstring)."""
    if cls in _SPECS:
        return _SPECS[cls]
    plain = typing.get_type_hints(cls)
    per_class = []  # (own annotation names, resolved hints with extras, own docs), nearest first
    for klass in cls.__mro__:
        own = klass.__dict__.get("__annotations__", {})
        if not own or not dataclasses.is_dataclass(klass):
            continue
        per_class.append((set(own), _own_hints(klass), _own_docs(klass)))
    specs = {}
    for f in dataclasses.fields(cls):
        bounds, traced, doc = (), False, ""
        for own, hints, docs in per_class:
            if f.name in own and typing.get_origin(hints[f.name]) is Annotated:
                extras = hints[f.name].__metadata__
                bounds = tuple(x for x in extras if isinstance(x, Bound))
                traced = any(x is TRACED for x in extras)
                break
        for own, _, docs in per_class:
            if f.name in docs:
                doc = docs[f.name]
                break
        specs[f.name] = FieldSpec(f.name, plain[f.name], bounds, traced, doc)
    _SPECS[cls] = specs
    return specs


def field_docs(cls) -> dict[str, str]:
    """Each field's help text (its docstring, inherited if the field was re-declared)."""
    return {name: spec.doc for name, spec in field_specs(cls).items()}


def allowed_text(spec: FieldSpec) -> str:
    """'>= 1' / 'values in 0 .. 1' / 'lstm, gru': what the field's bounds allow, for --help."""
    parts = [b.describe() for b in spec.bounds]
    return "; ".join(parts)


# --- validation ----------------------------------------------------------------------------------

def _show(value) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    return str(value)


def _problem(bound: Bound, value, shown: str) -> str:
    if isinstance(bound, OneOf):
        return f"unknown value {shown}"
    if isinstance(bound, NonEmpty):
        return "is empty"
    if isinstance(bound, Satisfies):
        return f"{shown} is not allowed"
    return f"{shown} is out of range"


def check_field(spec: FieldSpec, value) -> None:
    """ConfigError naming `spec.name` unless `value` obeys every bound."""
    is_tuple = typing.get_origin(spec.type) is tuple
    for element in (value if is_tuple else (value,)):
        if isinstance(element, float) and not math.isfinite(element):
            raise ConfigError(spec.name, f"{element} is not a finite number")
    for bound in spec.bounds:
        for element in (value if is_tuple and bound.element_wise else (value,)):
            allowed = bound.check(element)
            if allowed is not None:
                raise ConfigError(spec.name, f"{_problem(bound, element, _show(element))}; allowed: {allowed}")


def validate_fields(config) -> None:
    """Check every field's declared bounds, then the config's cross-field rules (each
    `cross_check` of its MRO, base classes first). The first violation raises a ConfigError
    that names one field."""
    for name, spec in field_specs(type(config)).items():
        check_field(spec, getattr(config, name))
    for klass in reversed(type(config).__mro__):
        rule = klass.__dict__.get("cross_check")
        if rule is not None:
            rule(config)


def traced_fields(cls) -> tuple[str, ...]:
    """Names of the fields marked TRACED."""
    return tuple(name for name, spec in field_specs(cls).items() if spec.traced)


def structure_key(config):
    """`config` with its TRACED fields reset to their defaults: the cache key of compiled
    functions, so conditions that differ only in traced values (or in what they select) share
    one compile. Shape-setting fields are everything not marked TRACED, so a field forgotten
    here costs a compile, never a stale one."""
    defaults = type(config)()
    return dataclasses.replace(config, **{f: getattr(defaults, f) for f in traced_fields(type(config))})


# --- shared field groups -------------------------------------------------------------------------

PosInt = Annotated[int, Min(1)]


@dataclass(frozen=True)
class SeedFields:
    """The seeds of a run: every condition trains `num_seeds` seeds together (a vmap axis); and
    what each job keeps beside its metric rows (checkpoints, live curves)."""

    num_seeds: Annotated[int, Min(1), TRACED] = 8
    """Seeds per condition (a vmap axis: all seeds of a condition train together)."""
    seed_offset: Annotated[int, Min(0), TRACED] = 0
    """Seeds are seed_offset, seed_offset + 1, ..."""
    # What each job keeps beside its rows (innerlab.experiments.outputs); no effect on results.
    save_agents: Annotated[bool, TRACED] = True
    """Save each job's trained agents (every seed) in run_dir/checkpoints, for innerlab.load_agent."""
    log_curves: Annotated[bool, TRACED] = True
    """Write per-update training scalars as TensorBoard event files in run_dir/tb while jobs run."""


@dataclass(frozen=True)
class PPOFields:
    """Recurrent PPO's settings (innerlab.agents.PPOConfig), shared by every experiment that
    trains a PPO agent. Experiments re-declare a field to change its default."""

    total_steps: PosInt = 1_000_000
    """Training environment steps per seed."""
    num_envs: PosInt = 64
    """Parallel environments per seed."""
    rollout_len: PosInt = 32
    """Steps per environment per PPO update."""
    num_minibatches: PosInt = 4
    """Minibatches per epoch (must divide num_envs)."""
    update_epochs: PosInt = 4
    """Passes over each rollout per update."""
    lr: Annotated[float, Gt(0), TRACED] = 1e-3
    """Adam learning rate (annealed linearly to 0)."""
    ent_coef: Annotated[float, Min(0), TRACED] = 0.01
    """Entropy bonus coefficient."""
    gamma: Annotated[float, Gt(0), Max(1)] = 0.95
    """Discount factor."""
    progress_chunks: PosInt = 5
    """Training runs in this many jitted chunks (the last one may be shorter) so progress can be shown."""

    def cross_check(self) -> None:
        if self.num_envs % self.num_minibatches:
            raise ConfigError("num_minibatches", f"{self.num_minibatches} must divide num_envs ({self.num_envs})")
        if self.total_steps < self.num_envs * self.rollout_len:
            raise ConfigError("total_steps", f"{self.total_steps} is less than one update; allowed: >= num_envs * "
                              f"rollout_len = {self.num_envs * self.rollout_len}")

    def updates(self, total_steps: int | None = None) -> int:
        """PPO updates for `total_steps` (default the field) env steps per seed, rounded down."""
        steps = self.total_steps if total_steps is None else total_steps
        return steps // (self.num_envs * self.rollout_len)

    def ppo_kwargs(self) -> dict[str, Any]:
        """The PPOConfig keywords these fields set (total_steps excluded: experiments that train
        several lengths pass their own)."""
        return dict(num_envs=self.num_envs, rollout_len=self.rollout_len, update_epochs=self.update_epochs,
                    num_minibatches=self.num_minibatches, gamma=self.gamma)


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
