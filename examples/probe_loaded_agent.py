"""Probe an agent that innerlab trained: load it from a run directory and run the probes on it.

    innerlab run side-channels --preset quick --out runs/demo          # or make demo
    python examples/probe_loaded_agent.py runs/demo                    # the prev / p = 1 agent, seed 0
    python examples/probe_loaded_agent.py runs/demo --channel none --p 0 --seed 3

`innerlab.load_agent` rebuilds the trained network from the run's checkpoint (no training code,
no pickle) with the env it was trained in. The probes then treat it like any other agent:

  1. the side-channel perturbation battery (innerlab.probes.side_channel_battery) on the
     experiment's own env: does the agent follow its reward channel when the channel is swapped?
  2. proxy attribution on two proxies declared here ("collects colour A", "collects colour B"),
     unperturbed and with the channel swapped.

The battery's follow index on this env is the experiment's own (the share of collected objects
of colour B under `swap`), so a reader can put it beside the run's report.
"""

from __future__ import annotations

import argparse

import innerlab

import jax

from innerlab.channels import perturbation_index
from innerlab.probes import proxy_attribution, side_channel_battery


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a side-channels run directory (innerlab run side-channels ...)")
    parser.add_argument("--channel", default="prev", help="the condition's channel (default prev)")
    parser.add_argument("--p", type=float, default=1.0, help="the condition's p (default 1.0)")
    parser.add_argument("--seed", type=int, default=None, help="one of the run's seeds (default: the first)")
    parser.add_argument("--envs", type=int, default=64, help="environments rolled out per probe (default 64)")
    parser.add_argument("--steps", type=int, default=200, help="steps per environment (default 200)")
    args = parser.parse_args(argv)

    agent = innerlab.load_agent(args.run_dir, condition={"channel": args.channel, "p": args.p, "arch": "lstm"},
                                seed=args.seed)
    print(f"loaded {agent.experiment} / {agent.condition}, seed {agent.seed}: "
          f"{agent.network is not None and 'a ' + agent.meta['network']['config']['arch'] + ' network'}")

    # agent.env_params is the training distribution; like the experiment, probe where colour A is
    # always the rewarded one (p = 0), so that "follows the channel" and "pursues A" come apart.
    probe_params = agent.env_params.replace(env=agent.env_params.env.replace(reward_shift_prob=0.0))
    key = jax.random.key(0)
    battery = side_channel_battery(agent.env, probe_params, agent, key, num_envs=args.envs, num_steps=args.steps)
    print("\nside-channel battery (per-episode means; follow index under swap):")
    print(battery.round(3).to_string())

    # The proxies: which colour the step collected (info["collected_colour"]: -1 none, 0 A, 1 B).
    proxies = {"colour A": lambda step: (step.info["collected_colour"] == 0).astype(float),
               "colour B": lambda step: (step.info["collected_colour"] == 1).astype(float)}
    for perturbation in ("none", "swap"):
        params = probe_params.replace(perturbation=jax.numpy.int32(perturbation_index(perturbation)))
        result = proxy_attribution(agent.env, params, agent, proxies, key, num_envs=args.envs, num_steps=args.steps)
        print(f"\nproxy attribution, channel {perturbation}: best explained by {', '.join(result.best) or 'nothing'} "
              f"({result.episodes} episodes)")
        print(result.table.round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
