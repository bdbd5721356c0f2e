"""`innerlab bench`: training throughput against peers, measured side by side in one run.

    innerlab bench [--quick] [--json] [--skip-sb3] [--num-envs N] ...

What it measures (see `innerlab.bench.main` for the table and the JSON keys):
- innerlab's PPO-LSTM on ObjectWorld 7x7 (hidden 128, 128-step rollouts, 4 epochs x 4
  minibatches): env steps per second of training (rollout + GAE + update), compile time
  apart, and as a fraction of this machine's matmul peak (measured in the same run);
- the peer: sb3-contrib RecurrentPPO on `np_objectworld` (a numpy Gymnasium copy of the
  same ObjectWorld, tested step for step against the JAX one), at equal agent size and PPO
  settings (`sb3_peer`);
- env steps alone, numpy vs vmapped JAX; scaling with vmapped seeds and population size;
  memory (XLA's buffer plan per compiled trainer; the process's peak RSS).

Modules: `training` (the JAX measurements), `np_objectworld` and `sb3_peer` (the peer),
`main` (the command). Nothing here is imported by the experiments.
"""
