"""The `innerlab` command.

    innerlab list
    innerlab run EXPERIMENT [--preset smoke|quick|paper] [--seeds N] [--out DIR] [--resume] [--FIELD VALUE ...]
    innerlab run EXPERIMENT ... --backend ray [--address HOST:PORT]   # jobs on a Ray cluster
    innerlab run EXPERIMENT --preset quick --help     # every config field, its help and its value
    innerlab run all [--preset P] [--only A,B] [--out DIR] [--resume]   # every experiment + an index page
    innerlab report RUN_DIR
    innerlab compare RUN_A RUN_B [--out DIR]

`--FIELD VALUE` sets any field of the experiment's Config, parsed by its type: int, float,
bool (true/false, yes/no, 1/0), str, and tuples as comma-separated values (`--p 0,0.25,1`).

Bad input exits with status 2 and one line on stderr, `innerlab: error: FIELD: what is allowed`,
before anything is written. jax and the experiments are imported only by the commands that
need them, so `list` and `--help` stay fast.

The parser is hand-written over the Config's dataclass fields rather than tyro: tyro's syntax
(space-separated sequences, `--no-FLAG`) and its multi-line errors differ from what we promise.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
import sys
import textwrap
import types
import typing
from pathlib import Path

PRESETS = ("smoke", "quick", "paper")
COMMANDS = ("list", "run", "report", "compare", "bench")
DEFAULT_PRESET = "quick"
# Options of `run` that take a value, and flags that take none. Everything else is a field.
RUN_OPTIONS = ("preset", "seeds", "out", "backend", "address", "only")
RUN_FLAGS = ("resume", "track")
TRUE, FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")

USAGE = """\
usage: innerlab [-h] {list,run,report,compare,bench} ...

Inner-alignment experiments in pure JAX.

commands:
  list                 experiments, their questions and presets
  run EXPERIMENT       train, evaluate, analyse and report an experiment
  run all              every experiment into one directory, with an index page
  report RUN_DIR       re-render a run's report from its store, without training
  compare RUN_A RUN_B  two runs of one experiment: each headline metric in both and the
                       difference paired by seed, with its CI (a table and a figure)
  bench                training throughput against sb3-contrib RecurrentPPO, env steps,
                       scaling with seeds and population size, memory (--help for options)

`innerlab run EXPERIMENT --help` lists the experiment's config fields.
"""

RUN_USAGE = """\
usage: innerlab run EXPERIMENT [--preset smoke|quick|paper] [--seeds N] [--out DIR] [--resume]
                               [--backend local|ray] [--address HOST:PORT] [--track] [--FIELD VALUE ...]
       innerlab run all [--preset smoke|quick|paper] [--only NAME,NAME] [--seeds N] [--out DIR]
                        [--resume] [--track] [--FIELD VALUE ...]

options:
  --preset NAME    smoke (seconds), quick (minutes on a laptop) or paper (default: quick)
  --seeds N        number of seeds (default: the config's num_seeds); seeds are
                   seed_offset, seed_offset + 1, ...
  --out DIR        run directory (default: runs/<experiment>-<preset>-<YYYYmmdd-HHMMSS>)
  --resume         continue the run in --out, skipping its finished jobs
  --backend NAME   where jobs run: local (default; one after another in this process) or ray
                   (Ray tasks, several at once; needs pip install 'innerlab[ray]')
  --address ADDR   with --backend ray: the cluster's address (default: $RAY_ADDRESS, else a
                   local cluster on this machine)
  --track          also log training curves to Weights & Biases (needs `pip install wandb`;
                   offline, into DIR/wandb, unless WANDB_API_KEY or WANDB_MODE is set). TensorBoard
                   event files are always written to DIR/tb (config field log_curves turns them off)
  --FIELD VALUE    set a config field; tuples as comma-separated values (--p 0,0.25,1)
  --only NAMES     run all: only these experiments (comma-separated; default: every one)

Each job saves its trained agents to DIR/checkpoints (config field save_agents turns it off);
load one with innerlab.load_agent(DIR, condition=..., seed=...).
`run all` writes DIR/<experiment>/ for each experiment and DIR/index.html linking their reports;
a field set with --FIELD must exist in every experiment run.
"""

REPORT_USAGE = """\
usage: innerlab report RUN_DIR

Re-render RUN_DIR/report.md and report.html from the run's stored metrics, without training.
For a directory of `innerlab run all`: every finished experiment's report, then the index.
"""

COMPARE_USAGE = """\
usage: innerlab compare RUN_A RUN_B [--out DIR]

Two finished runs of the same experiment, usually with one config field changed: per headline
metric and group, the mean and 95% bootstrap CI over seeds in each run, and B - A paired by seed
(the mean of the per-seed differences, its CI over the paired seeds). Prints the table and writes
DIR/compare.md and DIR/compare.png.

options:
  --out DIR    where to write (default: runs/compare-<RUN_A name>-vs-<RUN_B name>)
"""


class UsageError(Exception):
    """Bad command-line input; `str()` is 'FIELD: what is allowed'."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


# --- values by type annotation -----------------------------------------------------------------

def _type_name(annotation) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"{_type_name(args[0])},..."
        return ",".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return "|".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return "|".join("none" if a is type(None) else _type_name(a) for a in args)
    return {int: "INT", float: "FLOAT", str: "TEXT", bool: "true|false", Path: "PATH"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)).upper())


def parse_value(field: str, text: str, annotation):
    """`text` as a value of type `annotation`; UsageError naming `field` if it is not one."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is tuple:
        parts = [p.strip() for p in text.split(",")] if text.strip() else []
        if len(args) == 2 and args[1] is Ellipsis:
            element_types = [args[0]] * len(parts)
        else:
            element_types = list(args)
            if len(parts) != len(args):
                raise UsageError(field, f"expected {len(args)} comma-separated values ({_type_name(annotation)}), "
                                 f"got {text!r}")
        return tuple(parse_value(field, part, kind) for part, kind in zip(parts, element_types))
    if origin is typing.Literal:
        for choice in args:
            if str(choice) == text:
                return choice
        raise UsageError(field, f"unknown value {text!r}; allowed: {', '.join(str(a) for a in args)}")
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.lower() in ("none", "null"):
            return None
        for kind in args:
            if kind is not type(None):
                try:
                    return parse_value(field, text, kind)
                except UsageError:
                    pass
        raise UsageError(field, f"expected {_type_name(annotation)}, got {text!r}")
    if annotation is bool:
        if text.lower() in TRUE:
            return True
        if text.lower() in FALSE:
            return False
        raise UsageError(field, f"expected true or false (yes/no, 1/0), got {text!r}")
    if annotation is int:
        try:
            return int(text)
        except ValueError:
            pass
        try:  # 1e6 and 1000.0 are whole numbers too
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number) and number.is_integer():
            return int(number)
        raise UsageError(field, f"expected an integer, got {text!r}")
    if annotation is float:
        try:
            number = float(text)
        except ValueError:
            raise UsageError(field, f"expected a number, got {text!r}") from None
        if not math.isfinite(number):
            raise UsageError(field, f"expected a finite number, got {text!r}")
        return number
    if annotation is str:
        return text
    if annotation is Path:
        return Path(text)
    raise UsageError(field, f"cannot be set from the command line (type {annotation})")


def _show(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(_show(v) for v in value)
    return str(value)


def config_help(experiment, preset: str, config) -> str:
    from innerlab.experiments.fields import allowed_text, field_specs

    lines = [f"{experiment.name}: {experiment.question}", "",
             f"config fields (values of preset {preset}); set with --FIELD VALUE:"]
    for name, spec in field_specs(type(config)).items():
        allowed = allowed_text(spec)
        lines.append(f"  --{name} {_type_name(spec.type)}  = {_show(getattr(config, name))}"
                     + (f"  (allowed: {allowed})" if allowed else ""))
        lines += textwrap.wrap(spec.doc, width=88, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


# --- commands ------------------------------------------------------------------------------------

def _list(args: list[str]) -> int:
    if any(a in ("-h", "--help") for a in args):
        print("usage: innerlab list\n\nEach registered experiment with its question and presets.")
        return 0
    if args:
        raise UsageError("argument", f"unexpected {args[0]!r}; `innerlab list` takes no arguments")
    from innerlab.experiments import base

    for name in base.names():
        try:
            experiment = base.get(name)
            question, presets = experiment.question, tuple(experiment.presets)
        except Exception as err:  # an experiment that cannot be imported still gets listed
            question, presets = f"(cannot be loaded: {type(err).__name__}: {err})", PRESETS
        print(f"{name}\n    {question}\n    presets: {', '.join(presets)}")
    return 0


def _split_run_args(args: list[str]) -> tuple[str | None, dict[str, str], set[str], list[tuple[str, str]], bool]:
    """(experiment, options, flags, field overrides in order, help asked)."""
    experiment, options, flags, fields, wants_help = None, {}, set(), [], False
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if token in ("-h", "--help"):
            wants_help = True
            continue
        if not token.startswith("--") or token == "--":
            if experiment is None and not token.startswith("-"):
                experiment = token
                continue
            raise UsageError("argument", f"unexpected {token!r}; allowed: one EXPERIMENT, then --OPTION VALUE pairs")
        name, has_value, value = token[2:].partition("=")
        name = name.replace("-", "_")
        if name in RUN_FLAGS:
            if has_value:
                raise UsageError(name, "takes no value")
            flags.add(name)
            continue
        if not has_value:
            if i >= len(args):
                raise UsageError(name, "needs a value")
            value = args[i]
            i += 1
        if name in RUN_OPTIONS:
            options[name] = value
        else:
            fields.append((name, value))
    return experiment, options, flags, fields, wants_help


def _apply_overrides(config, overrides: list[tuple[str, str]]):
    hints = typing.get_type_hints(type(config))
    names = [f.name for f in dataclasses.fields(config)]
    changes = {}
    for name, text in overrides:
        if name not in names:
            raise UsageError(name, f"unknown field; allowed: {', '.join(names)} "
                             f"(and --{', --'.join(RUN_OPTIONS + RUN_FLAGS)})")
        changes[name] = parse_value(name, text, hints[name])
    return dataclasses.replace(config, **changes) if changes else config


def _seeds(config, text: str | None):
    """(config, seeds): `--seeds N` gives seed_offset .. seed_offset + N - 1 (and sets num_seeds)."""
    has_num_seeds = any(f.name == "num_seeds" for f in dataclasses.fields(config))
    if text is None:
        if not has_num_seeds:
            raise UsageError("seeds", "this experiment's config has no num_seeds; allowed: --seeds N with N >= 1")
        n = config.num_seeds
    else:
        try:
            n = int(text)
        except ValueError:
            raise UsageError("seeds", f"expected a whole number >= 1, got {text!r}") from None
        if n < 1:
            raise UsageError("seeds", f"{n} is out of range; allowed: >= 1")
        if has_num_seeds:
            config = dataclasses.replace(config, num_seeds=n)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError("num_seeds", f"{n!r} is out of range; allowed: >= 1")
    offset = getattr(config, "seed_offset", 0)
    return config, tuple(range(offset, offset + n))


def _run(args: list[str], argv: list[str], restart_on_stall: bool = False) -> int:
    name, options, flags, overrides, wants_help = _split_run_args(args)
    if name is None:
        if wants_help:
            print(RUN_USAGE)
            return 0
        from innerlab.experiments import base

        raise UsageError("experiment", f"missing; allowed: {', '.join(base.names())}")
    from innerlab.experiments import base

    if name == "all":
        return _run_all(options, flags, overrides, wants_help, argv, restart_on_stall)
    if "only" in options:
        raise UsageError("only", f"only with `innerlab run all` (experiment here: {name}); allowed: no --only")
    experiment = base.get(name)
    preset = options.get("preset", DEFAULT_PRESET)
    config = experiment.preset(preset)
    if wants_help:
        print(RUN_USAGE)
        print(config_help(experiment, preset, config))
        return 0
    config = _apply_overrides(config, overrides)
    config, seeds = _seeds(config, options.get("seeds"))
    experiment.validate(config)
    out = options.get("out")
    if out is None:
        import datetime as dt

        out = f"runs/{experiment.name}-{preset}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    if not out.strip():
        raise UsageError("out", "empty; allowed: a directory path")
    command = "innerlab " + shlex.join(argv)
    if "out" not in options:
        command += f" --out {shlex.quote(out)}"

    from innerlab.runner.local import prepare, run_experiment
    from innerlab.runner.ray_backend import RayOptions

    backend = options.get("backend", "local")
    if "address" in options and backend != "ray":
        raise UsageError("address", f"only with --backend ray (backend here: {backend}); allowed: "
                         "--backend ray --address HOST:PORT, or no --address")
    ray_options = RayOptions(address=options.get("address")) if backend == "ray" else None
    resume = "resume" in flags
    prepare(experiment, config, seeds, out, resume, backend, preset, command, ray_options)  # before writing
    # The stall watchdog watches this process's CPU, so it suits only jobs run in this process.
    local = backend == "local"
    on_stall = _restart_with_resume(argv, out) if restart_on_stall and local and _on_cpu() else None
    if "track" in flags:
        _check_wandb()
    run_experiment(experiment, config, seeds, out, resume=resume, command=command, preset=preset,
                   backend=backend, progress=True, on_stall=on_stall, ray_options=ray_options,
                   track="track" in flags)
    return 0


def _check_wandb() -> None:
    import importlib.util

    if importlib.util.find_spec("wandb") is None:
        raise UsageError("track", "Weights & Biases is not installed; allowed: pip install wandb, or no --track")


def _run_all(options: dict[str, str], flags: set[str], overrides, wants_help: bool, argv: list[str],
             restart_on_stall: bool) -> int:
    """`innerlab run all`: every registered experiment (or --only's) at one preset, into one
    directory with an index page (runner.suite)."""
    from innerlab.experiments import base

    if wants_help:
        print(RUN_USAGE)
        return 0
    if options.get("backend", "local") != "local" or "address" in options:
        raise UsageError("backend", "run all runs its experiments here, one after another; allowed: --backend local")
    names = base.names()
    if "only" in options:
        chosen = [n.strip() for n in options["only"].split(",") if n.strip()]
        unknown = [n for n in chosen if n not in names]
        if not chosen or unknown:
            raise UsageError("only", f"unknown experiment {unknown[0] if unknown else options['only']!r}; allowed: "
                             f"comma-separated names from {', '.join(names)}")
        names = [n for n in names if n in chosen]
    preset = options.get("preset", DEFAULT_PRESET)
    out = options.get("out")
    if out is None:
        import datetime as dt

        out = f"runs/all-{preset}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    if not out.strip():
        raise UsageError("out", "empty; allowed: a directory path")
    command = "innerlab " + shlex.join(argv) + ("" if "out" in options else f" --out {shlex.quote(out)}")

    from innerlab.runner.suite import Planned, run_suite

    planned = []
    for name in names:
        experiment = base.get(name)
        config = experiment.preset(preset)
        missing = [f for f, _ in overrides if f not in {x.name for x in dataclasses.fields(config)}]
        if missing:
            raise UsageError(missing[0], f"not a field of {name}; allowed with run all: fields every experiment has "
                             "(or --only the experiments that have it)")
        config = _apply_overrides(config, overrides)
        config, seeds = _seeds(config, options.get("seeds"))
        experiment.validate(config)
        planned.append(Planned(experiment, config, seeds, Path(out) / name))
    if "track" in flags:
        _check_wandb()

    from innerlab.runner.local import run_experiment

    on_stall = _restart_with_resume(argv, out) if restart_on_stall and _on_cpu() else None
    extra = (["--seeds", options["seeds"]] if "seeds" in options else []) + \
        [token for field, value in overrides for token in (f"--{field}", value)]

    def run_one(p, resume: bool) -> None:
        # The command that reruns this experiment alone, into the same directory.
        sub = shlex.join(["innerlab", "run", p.experiment.name, "--preset", preset, *extra, "--out", str(p.out)])
        run_experiment(p.experiment, p.config, p.seeds, p.out, resume=resume, command=sub, preset=preset,
                       progress=True, on_stall=on_stall, track="track" in flags)

    failed = run_suite(planned, Path(out), "resume" in flags, preset, command, run_one)
    return 1 if failed else 0


MAX_RESTARTS = 3


def _on_cpu() -> bool:
    import jax

    return jax.default_backend() == "cpu"


def _restart_with_resume(argv: list[str], out: str):
    """What the watchdog does on the XLA CPU deadlock: start this command again with --resume
    (finished jobs are kept, the stuck one is redone), at most MAX_RESTARTS times."""
    def restart() -> None:
        import os

        done = int(os.environ.get("INNERLAB_STALL_RESTARTS", "0"))
        if done >= MAX_RESTARTS:
            print(f"\ninnerlab: error: training stalled (XLA CPU deadlock) {done + 1} times; the finished "
                  f"jobs are saved in {out}; continue with --resume", file=sys.stderr, flush=True)
            os._exit(3)
        print(f"\ninnerlab: a job stalled with no CPU use (the XLA CPU deadlock, see runner/watchdog.py); "
              f"restarting with --resume ({done + 1} of {MAX_RESTARTS})", file=sys.stderr, flush=True)
        os.environ["INNERLAB_STALL_RESTARTS"] = str(done + 1)
        args = list(argv) + ([] if "--resume" in argv else ["--resume"])
        if not any(a == "--out" or a.startswith("--out=") for a in args):
            args += ["--out", out]
        os.execv(sys.executable, [sys.executable, "-m", "innerlab", *args])
    return restart


def _report(args: list[str]) -> int:
    if any(a in ("-h", "--help") for a in args):
        print(REPORT_USAGE)
        return 0
    if not args:
        raise UsageError("run_dir", "missing; allowed: a directory made by `innerlab run`")
    if len(args) > 1 or args[0].startswith("-"):
        bad = args[1] if not args[0].startswith("-") else args[0]
        raise UsageError("argument", f"unexpected {bad!r}; allowed: one RUN_DIR")
    from innerlab.runner.local import render_report
    from innerlab.runner.store import load_run, read_record

    run_dir = Path(args[0])
    if (run_dir / "suite.json").is_file():  # a `run all` directory: every finished run, then the index
        from innerlab.runner.suite import rerender

        print(f"index: {rerender(run_dir)}")
        return 0
    experiment, config, _seeds, rows = load_run(run_dir)
    md, html = render_report(experiment, config, rows, run_dir, read_record(run_dir).get("command", ""))
    print(f"report: {md}\n        {html}")
    return 0


def _compare(args: list[str]) -> int:
    if any(a in ("-h", "--help") for a in args):
        print(COMPARE_USAGE)
        return 0
    runs, out, i = [], None, 0
    while i < len(args):
        token = args[i]
        i += 1
        name, has_value, value = token.partition("=")
        if name == "--out":
            if not has_value:
                if i >= len(args):
                    raise UsageError("out", "needs a value; allowed: a directory path")
                value = args[i]
                i += 1
            if not value.strip():
                raise UsageError("out", "empty; allowed: a directory path")
            out = value
        elif token.startswith("-") or len(runs) == 2:
            raise UsageError("argument", f"unexpected {token!r}; allowed: RUN_A RUN_B [--out DIR]")
        else:
            runs.append(token)
    if len(runs) < 2:
        raise UsageError("run_b" if runs else "run_a", "missing; allowed: two directories made by `innerlab run`")
    from innerlab.runner.compare import compare_runs, comparison_markdown, write_comparison

    comparison = compare_runs(*runs)
    if out is None:
        out = f"runs/compare-{comparison.run_a.name}-vs-{comparison.run_b.name}"
    md, png = write_comparison(comparison, out)
    print(comparison_markdown(comparison))
    print(f"table:  {md}\nfigure: {png}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default sys.argv[1:]); returns the exit status."""
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or argv[0] in ("-h", "--help"):
            print(USAGE)
            return 0
        if argv[0] == "--version":
            from innerlab import __version__

            print(f"innerlab {__version__}")
            return 0
        command, rest = argv[0], argv[1:]
        if command == "list":
            return _list(rest)
        if command == "run":
            # Only the real command line (argv None) may re-execute itself on a stall; a caller
            # that passes argv (tests, notebooks) keeps its process.
            return _run(rest, argv, restart_on_stall=from_command_line)
        if command == "report":
            return _report(rest)
        if command == "compare":
            return _compare(rest)
        if command == "bench":
            from innerlab.bench.main import main as bench

            return bench(rest)
        raise UsageError("command", f"unknown command {command!r}; allowed: {', '.join(COMMANDS)}")
    except UsageError as err:
        return _fail(err)
    except KeyboardInterrupt:  # the runner has said what was saved and how to resume
        return 130
    except BrokenPipeError:  # `innerlab ... | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:
        base = sys.modules.get("innerlab.experiments.base")
        if base is not None and isinstance(err, base.ConfigError):  # bad input found by an experiment
            return _fail(err)
        raise


def _fail(err: Exception) -> int:
    message = " ".join(str(err).split())  # exactly one line
    print(f"innerlab: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
