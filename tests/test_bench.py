"""`innerlab bench`: argument errors, the FLOP count, the table and JSON, and small real
measurements. The full quick run is in the slow tier."""

import json
import subprocess
import sys

import pytest

from innerlab.bench import main as bench_main
from innerlab.bench import training


def test_flop_count_by_hand():
    # obs 198 -> 128 (25,344 MACs), LSTM input and hidden products 2 x 128 x 512 (131,072),
    # heads 128 x (4 + 1) (640): 157,056 MACs = 314,112 FLOPs per forward step.
    assert training.forward_flops(198, 128, 4, "lstm") == 314_112
    assert training.forward_flops(198, 128, 4, "mlp") == 2 * (198 * 128 + 128 * 5)
    # Training: two forward steps in the rollout, and per epoch forward + backward (3x).
    assert training.train_flops_per_step(training.TrainSetup(), 198, 4) == 314_112 * (2 + 3 * 4)


@pytest.mark.parametrize("argv, message", [
    (["--num-envs", "6"], "--num-envs 6: must be a multiple of 4"),
    (["--seed-envs", "2"], "--seed-envs 2: must be a multiple of 4"),
    (["--seeds", "0,4"], "every value must be >= 1"),
    (["--populations", "two"], "expected comma-separated integers"),
])
def test_bad_arguments_are_clear_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as err:
        bench_main.parse_args(argv)
    assert err.value.code == 2
    assert message in capsys.readouterr().err


def test_quick_plan_and_overrides():
    _, plan = bench_main.parse_args(["--quick", "--seeds", "1,2", "--num-envs", "64"])
    assert plan["seeds"] == (1, 2) and plan["num_envs"] == 64 and plan["updates"] == bench_main.QUICK["updates"]
    _, plan = bench_main.parse_args([])
    assert plan == {**bench_main.FULL, "seeds": bench_main.FULL_CPU_SEEDS}  # the tests run on a CPU
    _, plan = bench_main.parse_args(["--seeds", "1,256"])
    assert plan["seeds"] == (1, 256)


def _fake_result():
    row = lambda arch, rate: {"arch": arch, "width": 128, "seeds": 1, "num_envs": 1024, "steps_per_s": rate,
                              "compile_s": 7.0, "xla_bytes": 64 * 2**20, "gflops": 100.0}
    sb3 = lambda rate, threads, critic: {"steps_per_s": rate, "peak_rss_mb": 350.0,
                                         "config": {"torch_threads": threads, "lstm_critic": critic}}
    return {"machine": {"device": "cpu", "backend": "cpu", "cpus": 2, "machine": "x86_64", "jax": "0"},
            "wall_s": 60.0, "matmul_gflops": 200.0, "training": [row("lstm", 25_000.0), row("mlp", 150_000.0)],
            "sb3": [sb3(2_000.0, 1, False), sb3(2_500.0, 2, False), sb3(1_250.0, 2, True)],
            "sb3_recurrent_steps_per_s": 2_500.0, "ratio_vs_sb3_recurrent": 10.0, "innerlab_gflops": 110.0,
            "fraction_of_matmul_peak": 0.55, "innerlab_params": 157_701,
            "env_only": [{"impl": "numpy", "num_envs": 1, "steps_per_s": 80_000.0},
                         {"impl": "jax", "num_envs": 1024, "steps_per_s": 1_000_000.0}],
            "seeds": [{"seeds": 4, "num_envs": 16, "steps_per_s": 9_000.0, "compile_s": 8.0, "xla_bytes": None}],
            "populations": [{"population": 2, "num_envs": 16, "steps_per_s": 8_000.0, "compile_s": 9.0,
                             "xla_bytes": 2**20}],
            "logging": {"num_envs": 1024, "updates": 8, "chunks": 8, "scalars": 9, "train_s": 4.0,
                        "log_s": 0.01, "overhead": 0.0025, "logged_s": 4.1, "ab_overhead": 0.025},
            "peak_rss_mb": 1_500.0, "device_peak_mb": None}


def test_table_shows_ratios_against_the_peer():
    text = bench_main.table(_fake_result())
    assert "| innerlab PPO-LSTM | 1024 x 1 | 25,000 | 10.0x |" in text
    assert "| innerlab PPO-MLP | 1024 x 1 | 150,000 | 60.0x |" in text
    assert "shared LSTM, torch threads 2 | 8 x 1 | 2,500 | 1.0x |" in text
    assert "separate critic LSTM, torch threads 2 | 8 x 1 | 1,250 | 0.5x |" in text
    assert "55% of the matmul peak" in text
    assert "| jax | 1024 | 1,000,000 (12.5x numpy) |" in text
    assert "| PBT population | 2 | 16 | 8,000 | 9.0 | 1 |" in text
    assert "logging 0.010 s over 4.00 s of training = overhead 0.25% (whole runs with vs without: +2.5%)" in text


def test_small_real_measurements():
    setup = training.TrainSetup(arch="mlp", width=8, rollout_len=8, update_epochs=1, num_minibatches=2)
    row = training.train_throughput(setup, num_envs=4, seeds=2, updates=1, repeats=1)
    assert row["steps_per_s"] > 0 and row["compile_s"] > 0 and row["seeds"] == 2
    assert row["xla_bytes"] is None or row["xla_bytes"] > 0
    assert row["gflops"] == pytest.approx(
        row["steps_per_s"] * training.train_flops_per_step(setup, 198, 4) / 1e9)
    env = training.jax_env_throughput(8, steps=16, repeats=1)
    assert env["steps_per_s"] > 0 and env["num_envs"] == 8
    assert training.matmul_peak(n=128, repeats=1) > 0
    log = training.logging_overhead(setup, num_envs=4, updates=3, repeats=1)
    assert log["train_s"] > 0 and log["logged_s"] > 0 and 0 < log["log_s"] and log["chunks"] == 3
    assert log["scalars"] >= 5 and log["overhead"] == pytest.approx(log["log_s"] / log["train_s"])


@pytest.mark.slow
def test_quick_bench_prints_one_json_object_with_the_keys():
    out = subprocess.run([sys.executable, "-m", "innerlab", "bench", "--quick", "--json"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    for key in ("innerlab_steps_per_s", "sb3_recurrent_steps_per_s", "ratio_vs_sb3_recurrent",
                "matmul_gflops", "fraction_of_matmul_peak"):
        assert result[key] > 0, key
    assert abs(result["logging_overhead"]) < 1  # a fraction; its size is recorded in benchmarks/README.md
    assert result["ratio_vs_sb3_recurrent"] == pytest.approx(
        result["innerlab_steps_per_s"] / result["sb3_recurrent_steps_per_s"])
    assert result["innerlab_steps_per_s"] > result["sb3_recurrent_steps_per_s"]
