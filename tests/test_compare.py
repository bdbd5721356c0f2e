"""`innerlab compare RUN_A RUN_B`: headline metrics of two runs, paired by seed.

- end to end: two side-channels smoke runs that differ only in `--p` (one channel, 2 seeds), then
  `innerlab compare A B --out C`: the follow index in both, B - A over the 2 paired seeds, a PNG;
- the pairing worked by hand on small frames (known differences give exact means), through
  `pair_headline` and through `compare_runs` on run directories written by hand;
- bad input (different experiments, a directory that is not a run, missing arguments): exit 2
  and one line naming the argument.

The whole file is one xdist group (tests/conftest.py groups by file), so the two runs happen once.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types

import pandas as pd
import pytest

from innerlab.cli import main
from innerlab.experiments import base
from innerlab.experiments.errors import ConfigError
from innerlab.experiments.headlines import Headline
from innerlab.report.stats import bootstrap_ci
from innerlab.runner import store
from innerlab.runner.compare import COMPARE_COLUMNS, compare_runs, headline_table, pair_headline

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SMALL = ["--preset", "smoke", "--seeds", "2", "--channel", "prev"]


@pytest.fixture(scope="module")
def side_channel_runs(tmp_path_factory):
    """(A, B): side-channels smoke runs with p = 0 and p = 1, nothing else different."""
    root = tmp_path_factory.mktemp("compare")
    runs = []
    for p in ("0", "1"):
        out = root / f"p{p}"
        assert main(["run", "side-channels", *SMALL, "--p", p, "--out", str(out)]) == 0
        runs.append(out)
    return tuple(runs)


def _follow_index(run, channel="prev", arch="lstm") -> pd.Series:
    rows = pd.read_parquet(run / "metrics.parquet")
    sel = rows[(rows.metric == "follow_index") & (rows.perturbation == "swap") & (rows.channel == channel)
               & (rows.arch == arch)]
    return sel.set_index("seed")["value"].sort_index()


def test_compare_two_smoke_runs_that_differ_in_p(side_channel_runs, tmp_path, capsys):
    a, b = side_channel_runs
    capsys.readouterr()
    out = tmp_path / "C"
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "config changed: p: 0 -> 1" in printed
    assert "## follow index (swap)" in printed

    # The trained agent: p changed, so p = 0 in A is paired with p = 1 in B, seed by seed.
    fa, fb = _follow_index(a), _follow_index(b)
    assert list(fa.index) == list(fb.index) == [0, 1]
    differences = (fb - fa).to_numpy()
    line = next(row for row in printed.splitlines() if row.startswith("| channel=prev, p=0 -> 1, arch=lstm |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1].startswith(f"{fa.mean():.3f} [") and cells[2].startswith(f"{fb.mean():.3f} [")
    mean, low, high = bootstrap_ci(differences)
    assert cells[3] == f"{mean:.3f} [{low:.3f}, {high:.3f}]"
    assert cells[4:] == ["2", "0"]  # 2 pairs, no seed left out

    # The random policy does not depend on p (it is p = 0 in both runs): a zero difference.
    table = compare_runs(a, b).table
    random = table[table.group == "channel=none, p=0, arch=random"].iloc[0]
    assert random.difference == 0.0 and random.pairs == 2
    prev = table[table.group == "channel=prev, p=0 -> 1, arch=lstm"].iloc[0]
    assert math.isclose(prev.difference, differences.mean(), rel_tol=0, abs_tol=1e-12)
    assert math.isclose(prev.difference, prev.mean_b - prev.mean_a, rel_tol=0, abs_tol=1e-12)

    md, png = out / "compare.md", out / "compare.png"
    assert f"table:  {md}\nfigure: {png}" in printed
    assert md.read_text().startswith("# side-channels: B vs A")
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 200 and height > 100
    import matplotlib.image

    assert matplotlib.image.imread(png).shape[:2] == (height, width)


def test_headline_table_of_one_run(side_channel_runs):
    a, _ = side_channel_runs
    experiment, _, _, rows = store.load_run(a)
    table = headline_table(experiment, rows)
    fa = _follow_index(a)
    line = table[table.group == "channel=prev, p=0, arch=lstm"].iloc[0]
    assert line.headline == "follow index (swap)" and line.seeds == 2
    assert (line["mean"], line.low, line.high) == bootstrap_ci(fa.to_numpy())


# --- the pairing by hand ---------------------------------------------------------------------------

def _frame(records, columns=("arm", "p")):
    return pd.DataFrame.from_records(records, columns=[*columns, "seed", "value"])


def test_pairing_by_hand():
    headline = Headline("score", "score", by=("arm", "p"))
    a = _frame([("x", 0.0, 0, 1.0), ("x", 0.0, 1, 2.0), ("x", 0.0, 2, 3.0),
                ("z", 0.0, 0, 10.0), ("z", 0.0, 1, 20.0)])
    b = _frame([("x", 1.0, 0, 1.5), ("x", 1.0, 1, 3.0), ("x", 1.0, 3, 9.0),
                ("z", 0.0, 0, 11.0), ("z", 0.0, 1, 19.0), ("z", 1.0, 0, 30.0), ("z", 1.0, 1, 40.0)])
    table = pair_headline(headline, a, b, changed={"p"}).set_index("group")
    assert list(table.columns) == [c for c in COMPARE_COLUMNS if c != "group"]
    assert list(table.index) == ["arm=x, p=0 -> 1", "arm=z, p=0", "arm=z, p=1"]
    # x: one p in each run, so p = 0 (A) pairs with p = 1 (B); seeds 0 and 1 pair (differences
    # 0.5 and 1.0), seed 2 is only in A and seed 3 only in B.
    x = table.loc["arm=x, p=0 -> 1"]
    assert (x.mean_a, x.mean_b, x.difference, x.pairs, x.unpaired) == (2.0, 4.5, 0.75, 2, 2)
    assert x.difference_low >= 0.5 and x.difference_high <= 1.0
    # z: B has two values of p, so only the value both runs have (p = 0) pairs: 11 - 10, 19 - 20.
    z0 = table.loc["arm=z, p=0"]
    assert (z0.mean_a, z0.mean_b, z0.difference, z0.pairs, z0.unpaired) == (15.0, 15.0, 0.0, 2, 0)
    z1 = table.loc["arm=z, p=1"]
    assert math.isnan(z1.mean_a) and z1.mean_b == 35.0 and math.isnan(z1.difference) and z1.pairs == 0
    # Without the changed field named, p is an ordinary key: nothing of x pairs.
    unchanged = pair_headline(headline, a, b).set_index("group")
    assert unchanged.loc["arm=x, p=0"].pairs == 0 and unchanged.loc["arm=x, p=1"].pairs == 0


def test_headline_values_average_within_a_seed_and_subtract_a_baseline():
    rows = pd.DataFrame.from_records(
        [("drc", 0, "ascii", 0, "solved", 0.25), ("drc", 0, "json", 0, "solved", 0.75),
         ("drc", 4, "ascii", 0, "solved", 1.0), ("drc", 4, "json", 0, "solved", 1.0),
         ("drc", 0, "ascii", 1, "solved", 0.5), ("drc", 4, "ascii", 1, "solved", 0.25),
         ("drc", 4, "ascii", 1, "other", 9.0)],
        columns=["arch", "thinking_steps", "encoding", "seed", "metric", "value"])
    plain = Headline("solved", "solved", by=("arch", "thinking_steps")).values(rows)
    assert plain.to_dict("records")[0] == {"arch": "drc", "thinking_steps": 0, "seed": 0, "value": 0.5}
    gain = Headline("gain", "solved", by=("arch", "thinking_steps"), baseline={"thinking_steps": 0}).values(rows)
    assert gain.to_dict("records") == [{"arch": "drc", "thinking_steps": 4, "seed": 0, "value": 0.5},
                                       {"arch": "drc", "thinking_steps": 4, "seed": 1, "value": -0.25}]
    only_json = Headline("json", "solved", where={"encoding": ("json",)}, by=("thinking_steps",)).values(rows)
    assert only_json.value.tolist() == [0.75, 1.0]
    with pytest.raises(TypeError, match="baseline"):
        Headline("bad", "solved", by=("arch",), baseline={"thinking_steps": 0})


def _example_run(path, gap: float, values: dict[int, float]):
    """A finished run of the tests' example experiment, written by hand: p_best per seed."""
    experiment = base.get("example")
    seeds = sorted(values)
    config = experiment.preset("smoke")
    config = dataclasses.replace(config, gap=(gap,), num_seeds=len(seeds), seed_offset=seeds[0])
    path.mkdir(parents=True)
    store.write_record(path, store.run_record(experiment, "smoke", config, seeds, "by hand"))
    condition = experiment.conditions(config)[0]
    rows = pd.DataFrame({"experiment": "example", "condition": condition.id, "gap": gap, "seed": seeds,
                         "metric": "p_best", "value": [values[s] for s in seeds]})
    store.write_metrics(path, rows)
    return path


def test_compare_runs_written_by_hand(tmp_path):
    a = _example_run(tmp_path / "a", 0.0, {0: 0.25, 1: 0.5})
    b = _example_run(tmp_path / "b", 0.4, {1: 0.75, 2: 1.0})
    comparison = compare_runs(a, b)
    assert {c[0] for c in comparison.changed} == {"gap", "seed_offset"}
    assert ("gap", [0.0], [0.4]) in comparison.changed
    line = comparison.table.iloc[0]
    assert line.group == "gap=0 -> 0.4"
    assert (line.mean_a, line.mean_b, line.difference, line.pairs, line.unpaired) == (0.375, 0.875, 0.25, 1, 2)
    assert (line.difference_low, line.difference_high) == (0.25, 0.25)  # one pair: nothing to resample
    assert any("Seeds in one run only" in note and "A 0" in note and "B 2" in note for note in comparison.notes)
    assert not any("config fields differ" in note for note in comparison.notes)  # the seeds do not count


def test_experiments_must_declare_headlines(monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class Config:
        x: int = 1

    module = types.ModuleType("headless_experiment.config")
    module.Config, module.SWEPT_FIELDS = Config, ()
    module.PRESETS = {name: Config() for name in ("smoke", "quick", "paper")}
    monkeypatch.setitem(sys.modules, "headless_experiment", types.ModuleType("headless_experiment"))
    monkeypatch.setitem(sys.modules, "headless_experiment.config", module)
    with pytest.raises(TypeError, match="HEADLINES"):
        base.PackageExperiment("headless", "?", "headless_experiment")
    module.HEADLINES = (Headline("x", "x"),)
    assert base.PackageExperiment("headless", "?", "headless_experiment").headlines == module.HEADLINES
    assert base.Experiment.headlines == ()


# --- bad input -------------------------------------------------------------------------------------

def _one_error_line(capsys, field: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"innerlab: error: {field}: "), lines
    return lines[0]


def test_compare_refuses_runs_of_different_experiments(side_channel_runs, tmp_path, capsys):
    a, _ = side_channel_runs
    other = _example_run(tmp_path / "example", 0.0, {0: 0.5, 1: 0.5})
    capsys.readouterr()
    assert main(["compare", str(a), str(other), "--out", str(tmp_path / "C")]) == 2
    line = _one_error_line(capsys, "run_b")
    assert "example" in line and "side-channels" in line and "same experiment" in line
    assert not (tmp_path / "C").exists()


@pytest.mark.parametrize("which", ["run_a", "run_b"])
def test_compare_refuses_a_directory_that_is_not_a_finished_run(which, tmp_path, capsys):
    good = _example_run(tmp_path / "good", 0.0, {0: 0.5})
    unfinished = _example_run(tmp_path / "unfinished", 0.4, {0: 0.5})
    (unfinished / store.METRICS).unlink()
    for bad, text in ((tmp_path / "empty", "no config.json"), (tmp_path / "absent", "does not exist"),
                      (unfinished, "unfinished run")):
        if bad.name == "empty":
            bad.mkdir(exist_ok=True)
        args = [str(bad), str(good)] if which == "run_a" else [str(good), str(bad)]
        assert main(["compare", *args, "--out", str(tmp_path / "C")]) == 2
        assert text in _one_error_line(capsys, which)
    with pytest.raises(ConfigError) as err:
        compare_runs(*([tmp_path / "absent", good] if which == "run_a" else [good, tmp_path / "absent"]))
    assert err.value.field == which


@pytest.mark.parametrize("args, field", [
    ([], "run_a"),
    (["only-one"], "run_b"),
    (["a", "b", "c"], "argument"),
    (["a", "b", "--bogus"], "argument"),
    (["a", "b", "--out"], "out"),
    (["a", "b", "--out="], "out"),
])
def test_compare_bad_arguments(args, field, capsys):
    assert main(["compare", *args]) == 2
    _one_error_line(capsys, field)


def test_compare_help(capsys):
    assert main(["compare", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: innerlab compare RUN_A RUN_B")
    assert main(["--help"]) == 0
    assert "compare RUN_A RUN_B" in capsys.readouterr().out
