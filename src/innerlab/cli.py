"""The `innerlab` command.

    innerlab list
    innerlab run EXPERIMENT --preset smoke|quick|paper [--seeds N] [--out DIR] [--resume] [--FIELD VALUE ...]
    innerlab run EXPERIMENT --preset quick --help     # every config field, with its help text
    innerlab report RUN_DIR

Bad input exits with status 2 and one line, `innerlab: error: FIELD: what is allowed`,
before anything is written. jax and the experiments are imported only by the commands that
need them, so `list` and `--help` are fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import typing
from pathlib import Path

PRESETS = ("smoke", "quick", "paper")


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="innerlab", description="Inner-alignment experiments in pure JAX.")
    sub = parser.add_subparsers(dest="command", metavar="{list,run,report}")
    sub.add_parser("list", help="experiments, their questions and presets")
    # No abbreviations: `--p` is a config field, not a prefix of `--preset`.
    run = sub.add_parser("run", help="train, evaluate, analyse and report an experiment", add_help=False,
                         allow_abbrev=False)
    run.add_argument("experiment")
    run.add_argument("--preset", default="quick", help="smoke | quick | paper (default quick)")
    run.add_argument("--seeds", type=str, default=None, help="number of seeds (default: the preset's num_seeds)")
    run.add_argument("--out", default=None, help="run directory (default runs/<experiment>-<preset>-<time>)")
    run.add_argument("--resume", action="store_true", help="continue a run, skipping finished jobs")
    run.add_argument("--backend", default="local", help="local (ray: a later release)")
    run.add_argument("-h", "--help", action="store_true", help="show the experiment's config fields")
    report = sub.add_parser("report", help="re-render a run's report from its store, without training")
    report.add_argument("run_dir")
    return parser


def _parse_value(field: str, text: str, annotation):
    """Parse `text` by the field's annotation: int, float, bool, str or tuple[...] (comma list)."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        element = typing.get_args(annotation)[0]
        return tuple(_parse_value(field, part.strip(), element) for part in text.split(",") if part.strip())
    if annotation is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise _FieldError(field, f"expected true or false, got {text!r}")
    try:
        return annotation(text)
    except (TypeError, ValueError):
        raise _FieldError(field, f"expected {annotation.__name__}, got {text!r}") from None


class _FieldError(Exception):
    def __init__(self, field, message):
        super().__init__(f"{field}: {message}")


def _apply_overrides(config, tokens: list[str]):
    hints = typing.get_type_hints(type(config))
    fields = {f.name for f in dataclasses.fields(config)}
    changes = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--"):
            raise _FieldError("argument", f"unexpected {token!r}; fields are given as --FIELD VALUE")
        name, _, value = token[2:].partition("=")
        name = name.replace("-", "_")
        if name not in fields:
            raise _FieldError(name, f"unknown field; allowed: {', '.join(sorted(fields))}")
        if not value:
            if i + 1 >= len(tokens):
                raise _FieldError(name, "needs a value")
            i += 1
            value = tokens[i]
        changes[name] = _parse_value(name, value, hints[name])
        i += 1
    return dataclasses.replace(config, **changes)


def _list() -> int:
    from innerlab.experiments import base

    for name in base.names():
        print(f"{name}\n    {base.QUESTIONS.get(name, '')}\n    presets: {', '.join(PRESETS)}")
    return 0


def _run(args, extra: list[str], argv: list[str]) -> int:
    from innerlab.experiments import base

    experiment = base.get(args.experiment)
    config = experiment.preset(args.preset)
    if args.help:
        import tyro

        tyro.cli(type(config), default=config, args=["--help"], prog=f"innerlab run {experiment.name} --preset {args.preset}")
        return 0
    config = _apply_overrides(config, extra)
    if args.seeds is not None:
        try:
            n = int(args.seeds)
        except ValueError:
            raise _FieldError("seeds", f"expected a positive integer, got {args.seeds!r}") from None
        if n < 1:
            raise _FieldError("seeds", f"{n} is out of range; allowed: >= 1")
        config = dataclasses.replace(config, num_seeds=n)
    experiment.validate(config)
    offset = getattr(config, "seed_offset", 0)
    seeds = tuple(range(offset, offset + config.num_seeds))
    out = args.out
    if out is None:
        import datetime as dt

        out = f"runs/{experiment.name}-{args.preset}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    from innerlab.runner import run_experiment
    from innerlab.runner.local import prepare

    prepare(experiment, config, seeds, out, args.resume, args.backend)  # validates before writing
    command = "innerlab " + " ".join(shlex.quote(a) for a in argv)
    if "--out" not in argv:
        command += f" --out {shlex.quote(str(out))}"
    run_experiment(experiment, config, seeds, out, resume=args.resume, command=command, preset=args.preset,
                   backend=args.backend, show_progress=True)
    return 0


def _report(args) -> int:
    from innerlab.report.render import write_report
    from innerlab.runner.store import load_run

    experiment, config, record, rows = load_run(Path(args.run_dir))
    report = experiment.analyze(config, rows)
    report.command = record.get("command", "")
    md, html = write_report(report, args.run_dir)
    print(f"report: {md}\n        {html}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        if args.command == "list":
            return _list()
        if args.command == "run":
            return _run(args, extra, argv)
        if extra:
            raise _FieldError("argument", f"unexpected {' '.join(extra)}")
        return _report(args)
    except (_UsageError, _FieldError) as err:
        print(f"innerlab: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # ConfigError from experiments/runner: one line, no traceback
        from innerlab.experiments.base import ConfigError

        if isinstance(err, ConfigError):
            print(f"innerlab: error: {err}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
