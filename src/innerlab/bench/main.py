"""`innerlab bench`: prints a table (or, with --json, one JSON object) of innerlab's training
throughput against sb3-contrib RecurrentPPO, measured side by side in one run.

    innerlab bench [--quick] [--json] [--skip-sb3] [--num-envs N] [--seeds 1,4,16]
                   [--populations 2,8] [--out FILE.json]

JSON keys (all rates are env steps per second of training, rollout and learning included):
    innerlab_steps_per_s         PPO-LSTM, hidden 128, `num_envs` envs, 1 seed (compile apart)
    sb3_recurrent_steps_per_s    sb3-contrib RecurrentPPO, same agent size and PPO settings,
                                 shared LSTM (the closest equal-size configuration), 8 envs,
                                 with torch on 1 thread or on every core, whichever is faster
                                 (on a busy machine torch's threads wait on each other)
    ratio_vs_sb3_recurrent       the first over the second
    matmul_gflops                this machine's float32 matmul rate, measured in this run
    innerlab_gflops, fraction_of_matmul_peak
                                 the PPO-LSTM's useful FLOP rate (analytic count, see
                                 `training.train_flops_per_step`) and its share of that peak
    innerlab_compile_s, innerlab_xla_mb, peak_rss_mb, sb3_peak_rss_mb
    logging_overhead             the time live curves (TensorBoard) take over the PPO-LSTM's
                                 training time, logged after every update (the worst case)
    training, sb3, env_only, seeds, populations: every row measured
    machine: where it ran
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

QUICK = {"num_envs": 1024, "updates": 1, "repeats": 2, "sb3_steps": 8192, "seeds": (1, 8, 32),
         "seed_envs": 16, "populations": (4, 16), "env_counts": (64, 1024, 16384), "sb3_critic": False,
         "log_updates": 4}
FULL = {"num_envs": 1024, "updates": 2, "repeats": 3, "sb3_steps": 20480, "seeds": (1, 4, 16, 64, 256),
        "seed_envs": 16, "populations": (2, 8, 32), "env_counts": (64, 1024, 16384), "sb3_critic": True,
        "log_updates": 8}
# On a CPU, 256 seeds x 16 envs takes over 10 minutes per timed call: ask for it with --seeds.
FULL_CPU_SEEDS = (1, 4, 16, 64)


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers, e.g. 1,4,16") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be >= 1")
    return values


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="innerlab bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about 3-5 minutes on a 2-core CPU)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--out", help="also write the JSON object to this file (updated after each measurement)")
    parser.add_argument("--skip-sb3", action="store_true", help="do not run the sb3-contrib peer")
    parser.add_argument("--num-envs", type=int, help="envs of the headline PPO-LSTM run (default 1024)")
    parser.add_argument("--seeds", type=_ints, help="vmapped seed counts for the scaling table")
    parser.add_argument("--seed-envs", type=int, help="envs per seed in the scaling table (default 16)")
    parser.add_argument("--populations", type=_ints, help="PBT population sizes (default 2,8,32)")
    args = parser.parse_args(argv)
    plan = dict(QUICK if args.quick else FULL)
    if not args.quick and _on_cpu():
        plan["seeds"] = FULL_CPU_SEEDS
    for key in ("num_envs", "seeds", "seed_envs", "populations"):
        if getattr(args, key) is not None:
            plan[key] = getattr(args, key)
    for key in ("num_envs", "seed_envs"):
        if plan[key] < 4 or plan[key] % 4:
            flag = "--" + key.replace("_", "-")
            parser.error(f"{flag} {plan[key]}: must be a multiple of 4 (4 minibatches of whole envs)")
    return args, plan


def _on_cpu() -> bool:
    import innerlab  # noqa: F401  (XLA flags before jax)
    import jax

    return jax.default_backend() == "cpu"


def _say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def _sb3(steps: int, lstm_critic: bool, threads: int) -> dict:
    """The peer in its own process: its memory is its own, and torch's threads never share the
    cores with XLA's."""
    code = ("import json; from innerlab.bench.sb3_peer import sb3_recurrent_throughput as f; "
            f"r = f(num_envs=8, total_steps={steps}, lstm_critic={lstm_critic}, torch_threads={threads}); "
            "r.pop('return_curve'); print(json.dumps(r))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"the sb3 peer failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _machine() -> dict:
    import jax

    device = jax.devices()[0]
    return {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "jax": jax.__version__, "backend": jax.default_backend(),
            "device": getattr(device, "device_kind", str(device)), "xla_flags": os.environ.get("XLA_FLAGS", "")}


def run(plan: dict, skip_sb3: bool = False, say=_say, save=lambda result: None) -> dict:
    """Measure everything in `plan`; `save(result so far)` is called after each measurement, so
    a killed run keeps what it had measured."""
    from innerlab.bench import training
    from innerlab.bench.np_objectworld import env_steps_per_s

    setup = training.TrainSetup()
    result = {"machine": _machine(), "plan": {k: list(v) if isinstance(v, tuple) else v for k, v in plan.items()}}
    t_start = time.perf_counter()

    say("matmul peak")
    result["matmul_gflops"] = training.matmul_peak()

    say(f"innerlab PPO-LSTM, {plan['num_envs']} envs x 1 seed")
    rows = [training.train_throughput(setup, plan["num_envs"], 1, plan["updates"], plan["repeats"])]
    say("innerlab PPO-MLP peer, same settings")
    rows.append(training.train_throughput(training.TrainSetup(arch="mlp"), plan["num_envs"], 1,
                                          plan["updates"], plan["repeats"]))
    result["training"] = rows
    head = rows[0]
    result["innerlab_steps_per_s"] = head["steps_per_s"]
    result["innerlab_compile_s"] = head["compile_s"]
    result["innerlab_xla_mb"] = None if head["xla_bytes"] is None else head["xla_bytes"] / 2**20
    result["innerlab_gflops"] = head["gflops"]
    result["fraction_of_matmul_peak"] = head["gflops"] / result["matmul_gflops"]
    result["innerlab_params"] = training.param_count(setup)
    save(result)

    if not skip_sb3:
        sb3 = []
        for threads in sorted({1, os.cpu_count() or 1}):
            say(f"sb3-contrib RecurrentPPO, shared LSTM, 8 envs, torch threads {threads}")
            sb3.append(_sb3(plan["sb3_steps"], False, threads))
        best = max(sb3, key=lambda r: r["steps_per_s"])
        if plan["sb3_critic"]:
            threads = best["config"]["torch_threads"]
            say(f"sb3-contrib RecurrentPPO, separate critic LSTM, 8 envs, torch threads {threads}")
            sb3.append(_sb3(plan["sb3_steps"], True, threads))
        result["sb3"] = sb3
        result["sb3_recurrent_steps_per_s"] = best["steps_per_s"]
        result["ratio_vs_sb3_recurrent"] = head["steps_per_s"] / best["steps_per_s"]
        # Sampled during learn(): the kernel's lifetime peak of a child process counts pages
        # of the parent it was forked from, which holds jax and the compiled trainers.
        result["sb3_peak_rss_mb"] = best["peak_rss_mb"]
        save(result)

    say(f"live-curve logging overhead, PPO-LSTM {plan['num_envs']} envs, a chunk per update")
    result["logging"] = training.logging_overhead(setup, plan["num_envs"], plan["log_updates"], plan["repeats"])
    result["logging_overhead"] = result["logging"]["overhead"]
    save(result)

    say("env steps alone")
    env_rows = [{"impl": "numpy", "num_envs": 1, "steps_per_s": env_steps_per_s(1, 20_000)}]
    env_rows.append({"impl": "numpy (sb3 DummyVecEnv)", "num_envs": 8, "steps_per_s": env_steps_per_s(8, 20_000)})
    env_rows += [training.jax_env_throughput(n) for n in plan["env_counts"]]
    result["env_only"] = env_rows
    save(result)

    result["seeds"] = []
    for n in plan["seeds"]:
        say(f"scaling: {n} vmapped seeds x {plan['seed_envs']} envs")
        result["seeds"].append(training.train_throughput(setup, plan["seed_envs"], n, 1, plan["repeats"]))
        save(result)
    result["populations"] = []
    for n in plan["populations"]:
        say(f"scaling: PBT population {n} x {plan['seed_envs']} envs")
        result["populations"].append(training.population_throughput(setup, plan["seed_envs"], n, 1, plan["repeats"]))
        save(result)

    result["device_peak_mb"] = (lambda b: None if b is None else b / 2**20)(training.device_peak_bytes())
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["wall_s"] = time.perf_counter() - t_start
    return result


def _mb(b):
    return "-" if b is None else f"{b / 2**20:,.0f}"


def table(r: dict) -> str:
    m = r["machine"]
    lines = [f"# innerlab bench on {m['device']} ({m['backend']}, {m['cpus']} CPUs, {m['machine']}), "
             f"jax {m['jax']}, {r['wall_s']:.0f} s",
             f"matmul peak (float32, 2048^2): {r['matmul_gflops']:,.0f} GFLOP/s", "",
             "## Training throughput (ObjectWorld 7x7, hidden 128, rollout 128, 4 epochs x 4 minibatches)", "",
             "| agent | envs x seeds | env-steps/s | vs sb3 RecurrentPPO | compile s | memory MB |",
             "| --- | --- | --- | --- | --- | --- |"]
    sb3 = r.get("sb3_recurrent_steps_per_s")
    ratio = lambda x: "-" if not sb3 else f"{x / sb3:.1f}x"
    for row in r["training"]:
        lines.append(f"| innerlab PPO-{row['arch'].upper()} | {row['num_envs']} x {row['seeds']} | "
                     f"{row['steps_per_s']:,.0f} | {ratio(row['steps_per_s'])} | {row['compile_s']:.1f} | "
                     f"{_mb(row['xla_bytes'])} (XLA plan) |")
    for row in r.get("sb3", []):
        critic = "separate critic LSTM" if row["config"]["lstm_critic"] else "shared LSTM"
        critic += f", torch threads {row['config']['torch_threads']}"
        lines.append(f"| sb3-contrib RecurrentPPO, {critic} | 8 x 1 | {row['steps_per_s']:,.0f} | "
                     f"{ratio(row['steps_per_s'])} | - | {row['peak_rss_mb']:,.0f} (peak RSS in learn) |")
    lines += ["", f"innerlab PPO-LSTM: {r['innerlab_gflops']:,.1f} GFLOP/s of useful work = "
              f"{100 * r['fraction_of_matmul_peak']:.0f}% of the matmul peak; {r['innerlab_params']:,} parameters"]
    if sb3:
        lines.append(f"ratio vs sb3-contrib RecurrentPPO (shared LSTM): {r['ratio_vs_sb3_recurrent']:.1f}x")
    if "logging" in r:
        log = r["logging"]
        lines += ["", f"live curves (TensorBoard, {log['scalars']} scalars written after each of {log['updates']} "
                  f"updates of {log['num_envs']} envs): logging {log['log_s']:.3f} s over {log['train_s']:.2f} s "
                  f"of training = overhead {100 * log['overhead']:.2f}% (whole runs with vs without: "
                  f"{100 * log['ab_overhead']:+.1f}%)"]
    lines += ["", "## Env steps alone (random actions)", "", "| env | envs | env-steps/s |", "| --- | --- | --- |"]
    numpy1 = r["env_only"][0]["steps_per_s"]
    for row in r["env_only"]:
        lines.append(f"| {row['impl']} | {row['num_envs']} | {row['steps_per_s']:,.0f} "
                     f"({row['steps_per_s'] / numpy1:.1f}x numpy) |")
    lines += ["", "## Scaling (PPO-LSTM)", "", "| vmapped | count | envs each | env-steps/s | compile s | memory MB |",
              "| --- | --- | --- | --- | --- | --- |"]
    for row in r["seeds"]:
        lines.append(f"| seeds | {row['seeds']} | {row['num_envs']} | {row['steps_per_s']:,.0f} | "
                     f"{row['compile_s']:.1f} | {_mb(row['xla_bytes'])} |")
    for row in r["populations"]:
        lines.append(f"| PBT population | {row['population']} | {row['num_envs']} | {row['steps_per_s']:,.0f} | "
                     f"{row['compile_s']:.1f} | {_mb(row['xla_bytes'])} |")
    lines += ["", f"peak RSS of this process: {r['peak_rss_mb']:,.0f} MB"
              + ("" if r.get("device_peak_mb") is None else f"; device peak: {r['device_peak_mb']:,.0f} MB")]
    return "\n".join(lines)


def main(argv=None) -> int:
    args, plan = parse_args(sys.argv[1:] if argv is None else argv)
    import innerlab  # noqa: F401  (XLA flags before jax)

    def save(result):
        if args.out:
            tmp = args.out + ".tmp"
            with open(tmp, "w") as f:
                f.write(json.dumps(result) + "\n")
            os.replace(tmp, args.out)

    result = run(plan, skip_sb3=args.skip_sb3, save=save)
    save(result)
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
