"""`innerlab run all`: every registered experiment into one directory, and an index page.

    out/suite.json                   the preset, the experiments, the command (not a run record)
    out/<experiment>/                one ordinary run directory per experiment (`innerlab report`,
                                     `innerlab.load_agent` and `--resume` work on each)
    out/index.md, out/index.html     each experiment's controls, headline numbers and a link to
                                     its report, on one page; rewritten after every experiment

Everything is checked (every config, every seed list, every sub-directory) before anything
runs. Experiments run one after another; each finished job is saved as it ends, so `--resume`
continues the whole suite where it stopped. An experiment that fails is reported on the index
and the next one runs; the command then exits non-zero. The index shows each experiment's time
in jobs (the sum of its job files' `seconds`: every finished job once, however often the run was
resumed) and the wall time of its last stretch.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from innerlab._io import atomic_write_bytes
from innerlab.experiments.base import ConfigError
from innerlab.runner import store

SUITE = "suite.json"
SUMMARY = "summary.json"  # written beside each report by runner.local.render_report
INDEX_MD, INDEX_HTML = "index.md", "index.html"


@dataclass(frozen=True)
class Planned:
    """One experiment of the suite, checked and ready to run."""

    experiment: Any
    config: Any
    seeds: tuple[int, ...]
    out: Path


def prepare_suite(planned: list[Planned], out: Path, resume: bool, preset: str, command: str) -> dict:
    """Check the suite directory and every experiment's run (runner.local.prepare) before anything
    is written; returns the suite record."""
    from innerlab.runner.local import prepare

    record = {"preset": preset, "experiments": [p.experiment.name for p in planned], "command": command}
    if out.exists() and not out.is_dir():
        raise ConfigError("out", f"{out} exists and is not a directory; allowed: a new or suite directory")
    if out.is_dir() and any(out.iterdir()):
        path = out / SUITE
        if not path.is_file():
            raise ConfigError("out", f"{out} is not empty and holds no `innerlab run all` suite; allowed: a new, "
                              "empty or suite directory")
        if not resume:
            raise ConfigError("out", f"{out} already holds a suite; pass --resume to continue it or choose another --out")
        old = json.loads(path.read_text())
        if old.get("preset") != preset or old.get("experiments") != record["experiments"]:
            raise ConfigError("resume", f"the suite in {out} ran preset {old.get('preset')!r} with "
                              f"{', '.join(old.get('experiments', []))}; resume with the same arguments or choose another --out")
    for p in planned:
        prepare(p.experiment, p.config, p.seeds, p.out, resume, "local", preset, command)
    return record


def run_suite(planned: list[Planned], out, resume: bool, preset: str, command: str,
              run_one: Callable[[Planned, bool], Any]) -> int:
    """Run every planned experiment (`run_one(planned, resume)`), writing the index after each.
    Returns the number of experiments that failed."""
    out = Path(out)
    record = prepare_suite(planned, out, resume, preset, command)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / SUITE).is_file():
        record["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        atomic_write_bytes(out / SUITE, store.to_json(record).encode())
    failures: dict[str, str] = {}
    for i, p in enumerate(planned):
        if (p.out / store.METRICS).is_file() and (p.out / "report.html").is_file():
            print(f"[{i + 1}/{len(planned)}] {p.experiment.name}: already finished", file=sys.stderr, flush=True)
            continue
        print(f"[{i + 1}/{len(planned)}] {p.experiment.name} -> {p.out}", file=sys.stderr, flush=True)
        start = time.monotonic()
        try:
            run_one(p, resume or (p.out / store.CONFIG).is_file())
        except (KeyboardInterrupt, SystemExit):
            write_index(out)
            raise
        except Exception as err:  # noqa: BLE001 - reported on the index; the suite goes on
            failures[p.experiment.name] = f"{type(err).__name__}: {err}"
            traceback.print_exc()
            print(f"innerlab: {p.experiment.name} failed ({failures[p.experiment.name]}); continuing with the next "
                  "experiment", file=sys.stderr, flush=True)
        else:
            _note_time(out, p.experiment.name, time.monotonic() - start)
        write_index(out, failures)
    path = write_index(out, failures)
    print(f"index: {path}")
    return len(failures)


def rerender(out) -> Path:
    """Re-render the report of every finished experiment of a suite, then its index (what
    `innerlab report SUITE_DIR` does)."""
    from innerlab.runner.local import render_report

    out = Path(out)
    for name in json.loads((out / SUITE).read_text())["experiments"]:
        if (out / name / store.METRICS).is_file():
            experiment, config, _seeds, rows = store.load_run(out / name)
            render_report(experiment, config, rows, out / name, store.read_record(out / name).get("command", ""))
    return write_index(out)


def _note_time(out: Path, name: str, seconds: float) -> None:
    """Wall seconds of each experiment's last (possibly resumed) stretch, for the index."""
    path = out / SUITE
    record = json.loads(path.read_text())
    record.setdefault("wall_seconds", {})[name] = round(seconds, 1)
    atomic_write_bytes(path, store.to_json(record).encode())


# --- the index page --------------------------------------------------------------------------

def write_index(out, failures: dict[str, str] | None = None) -> Path:
    """Write index.md and index.html of a suite directory from what its runs hold now."""
    from innerlab.experiments import base
    from innerlab.report.document import Report, Section
    from innerlab.report.render import render_html, render_markdown

    out = Path(out)
    record = json.loads((out / SUITE).read_text())
    failures = failures or {}
    sections, overview = [], []
    for name in record["experiments"]:
        run_dir = out / name
        experiment = base.get(name)
        section, status = _experiment_section(experiment, run_dir, failures.get(name),
                                              record.get("wall_seconds", {}).get(name))
        sections.append(section)
        overview.append(status)
    import pandas as pd

    report = Report(
        title=f"innerlab: every experiment, preset {record['preset']}",
        question="Each experiment's controls (a condition where the answer is known: if one fails, that "
                 "experiment's measurement cannot be trusted at this scale) and headline result, with a link "
                 "to its full report.",
        setup=f"Suite directory `{out}`; started {record.get('created', '?')}. Each experiment is an ordinary run "
              "directory below it.",
        sections=[Section("Overview", tables=[pd.DataFrame(overview)]), *sections],
        command=record.get("command", ""))
    md, html = render_markdown(report), render_html(report, {})
    atomic_write_bytes(out / INDEX_MD, md.encode())
    atomic_write_bytes(out / INDEX_HTML, html.encode())
    return out / INDEX_HTML


def _experiment_section(experiment, run_dir: Path, failure: str | None, seconds: float | None):
    from innerlab.report.document import Section

    name = experiment.name
    status = {"experiment": name, "state": "not started", "controls": "-", "time in jobs": _job_time(run_dir),
              "wall time (last stretch)": _duration(seconds)}
    text = [f"*{experiment.question}*", ""]
    tables = []
    finished = (run_dir / store.METRICS).is_file()
    if failure:
        status["state"] = "FAILED"
        text.append(f"**Failed:** `{failure}`. Continue with `--resume` once the cause is fixed.")
    elif finished:
        status["state"] = "finished"
    elif (run_dir / store.CONFIG).is_file():
        done = len(list((run_dir / store.JOBS).glob("*.json"))) if (run_dir / store.JOBS).is_dir() else 0
        status["state"] = f"running or stopped ({done} jobs saved)"
    summary_path = run_dir / SUMMARY
    if finished and summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        checks = summary.get("checks", [])
        passed = sum(c["result"] == "PASS" for c in checks)
        failed = sum(c["result"] == "FAIL" for c in checks)
        status["controls"] = f"{passed} PASS, {failed} FAIL" if checks else "none"
        text.append(f"[Full report]({name}/report.html) · [Markdown]({name}/report.md) · run directory `{name}/`")
        if checks:
            import pandas as pd

            tables.append(pd.DataFrame(checks)[["control", "measured", "result"]])
        headline = _headline_table(experiment, run_dir)
        if headline is not None:
            tables.append(headline)
    return Section(name, "\n".join(text), tables=tables), status


def _headline_table(experiment, run_dir: Path):
    """The experiment's headline metrics (runner.compare.headline_table) from its metrics, or None."""
    from innerlab.runner.compare import headline_table

    from innerlab.report.stats import format_ci

    table = headline_table(experiment, store.read_metrics(run_dir))
    if not len(table):
        return None
    table["mean [95% CI over seeds]"] = [format_ci(m, lo, hi, digits=3)
                                         for m, lo, hi in zip(table["mean"], table["low"], table["high"])]
    return table[["headline", "group", "mean [95% CI over seeds]", "seeds"]]


def _job_time(run_dir: Path) -> str:
    """The summed wall time of the experiment's finished jobs (each job file records its own, so
    a run resumed after a kill still counts every finished job once), or '-'."""
    jobs = sorted((run_dir / store.JOBS).glob("*.json")) if (run_dir / store.JOBS).is_dir() else []
    seconds = [json.loads(p.read_text()).get("seconds") for p in jobs]
    if not seconds or any(s is None for s in seconds):
        return "-"
    return _duration(sum(seconds))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}:{secs:02d}"
