"""Throughput of the learned-search agents (DRC(D, N), the ResNet) against the LSTM, on this machine.

    .venv/bin/python benchmarks/drc_throughput.py [--envs 64 256] [--size 8] [--loop-updates 1]
                                                  [--archs drc11 drc22 drc33 resnet lstm] [--no-loop]

For an H x W grid of 4 planes (Sokoban's observation, flat [4 H W]) and each number of envs B:

- act: env-steps/s of the jitted, vmapped `apply` (32 steps scanned inside one call, carry
  threaded). PPO's rollout calls `apply` twice per env step (the action, and V of the true next
  observation), so a rollout costs about twice this.
- update: samples/s of one gradient of PPO's loss (`ppo.ppo_loss`, through `unroll`) over a
  [T=32, B] batch: forward + backward. An update of PPO processes every sample
  `update_epochs` times (in `num_minibatches` pieces of B / num_minibatches envs).
- loop: env-steps/s of the whole PPO training loop (`ppo.make_train`'s `run`: rollouts + GAE +
  update_epochs x num_minibatches gradient steps), timed after compiling, on a dummy env with
  the right observation size (a player walking in a walled grid; its cost is negligible).

Each figure is also given as a ratio to the LSTM (width 64) measured in the same run, since the
machines are shared and noisy. Compile seconds are printed too (first call minus a timed call).
"""

from __future__ import annotations

import argparse
import os
import time

# Compile seconds mean nothing when the programs come from innerlab's persistent compilation
# cache (a second run of this script): off unless the caller chose a cache directory.
os.environ.setdefault("INNERLAB_CACHE_DIR", "off")

import innerlab  # noqa: E402,F401  (sets the XLA CPU flags before jax starts)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import struct  # noqa: E402
from gymnax.environments import environment, spaces  # noqa: E402

from innerlab.agents import HParams, NetworkConfig, PPOConfig, make_network, make_train  # noqa: E402
from innerlab.agents.drc import parameter_count  # noqa: E402
from innerlab.agents.ppo import Transition, ppo_loss  # noqa: E402

ARCHS = {
    "drc11": ("DRC(1,1) 16ch", dict(arch="drc", drc_depth=1, ticks=1, width=16)),
    "drc22": ("DRC(2,2) 16ch", dict(arch="drc", drc_depth=2, ticks=2, width=16)),
    "drc33": ("DRC(3,3) 32ch", dict(arch="drc", drc_depth=3, ticks=3, width=32)),
    "resnet": ("ResNet 9x32ch", dict(arch="resnet", resnet_blocks=9, width=32)),
    "lstm": ("LSTM 64", dict(arch="lstm", width=64)),
}
ROLLOUT = 32


@struct.dataclass
class WalkState(environment.EnvState):
    player: jax.Array
    time: jax.Array


@struct.dataclass
class WalkParams(environment.EnvParams):
    max_steps_in_episode: int = 40


class GridWalk(environment.Environment):
    """Dummy env with Sokoban's observation shape: a player walks in a walled H x W grid; planes
    wall, target (fixed), box (fixed), player; reward 1 on the target; truncated at 40 steps."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        walls = np.zeros((size, size), np.float32)
        walls[0], walls[-1], walls[:, 0], walls[:, -1] = 1, 1, 1, 1
        target = np.zeros_like(walls)
        target[1, size - 2] = 1
        box = np.zeros_like(walls)
        box[2, size - 3] = 1
        self.planes = jnp.asarray(np.stack([walls, target, box]))

    @property
    def default_params(self):
        return WalkParams()

    def reset_env(self, key, params):
        player = jax.random.randint(key, (2,), 1, self.size - 1)
        state = WalkState(player=player, time=jnp.int32(0))
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        move = jnp.array([[-1, 0], [0, 1], [1, 0], [0, -1]])[action]
        player = jnp.clip(state.player + move, 1, self.size - 2)
        state = WalkState(player=player, time=state.time + 1)
        reward = self.planes[1, player[0], player[1]]
        return self.get_obs(state), state, reward, jnp.bool_(False), {}

    def is_truncated(self, state, params):
        return state.time >= params.max_steps_in_episode

    def get_obs(self, state, params=None, key=None):
        player = jnp.zeros((self.size, self.size)).at[state.player[0], state.player[1]].set(1.0)
        return jnp.concatenate([self.planes, player[None]]).reshape(-1)

    @property
    def num_actions(self):
        return 4

    def action_space(self, params=None):
        return spaces.Discrete(4)

    def observation_space(self, params=None):
        return spaces.Box(0.0, 1.0, (4 * self.size * self.size,), jnp.float32)


def timed(fn, *args, repeats: int = 3) -> tuple[float, float]:
    """(compile seconds, best seconds per call)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return max(first - best, 0.0), best


def measure(name: str, spec: dict, size: int, envs: int, loop_updates: int, do_loop: bool) -> dict:
    obs_dim = 4 * size * size
    cfg = NetworkConfig(image_shape=(4, size, size), **spec)
    network = make_network(cfg, obs_dim, 4)
    params = network.init(jax.random.key(0))
    row = {"arch": name, "envs": envs, "params": parameter_count(params)}
    k_obs, k_act = jax.random.split(jax.random.key(1))
    # Distinct observations at every step: with one fixed observation XLA hoists the
    # carry-independent layers (encoder, the whole ResNet) out of the loop.
    obs_t = jax.random.bernoulli(k_obs, 0.2, (ROLLOUT, envs, obs_dim)).astype(jnp.float32)
    carry = jax.tree.map(lambda c: jnp.broadcast_to(c, (envs, *c.shape)), network.initial_carry())

    @jax.jit
    def act(params, carry, obs_t):
        step = jax.vmap(network.apply, in_axes=(None, 0, 0, 0))

        def body(carry, inputs):
            obs, t = inputs
            carry, logits, value = step(params, carry, obs, jnp.full((envs,), t == 0))
            return carry, logits.sum() + value.sum()

        return jax.lax.scan(body, carry, (obs_t, jnp.arange(ROLLOUT)))

    row["act compile s"], seconds = timed(act, params, carry, obs_t)
    row["act steps/s"] = ROLLOUT * envs / seconds

    ppo = PPOConfig(num_envs=envs, rollout_len=ROLLOUT, total_steps=envs * ROLLOUT * max(loop_updates, 1))
    t, b = ROLLOUT, envs
    batch = Transition(obs=obs_t, is_first=jnp.zeros((t, b), bool).at[0].set(True),
                       action=jax.random.randint(k_act, (t, b), 0, 4), log_prob=jnp.full((t, b), -np.log(4.0)),
                       value=jnp.zeros((t, b)), reward=jnp.zeros((t, b)), terminated=jnp.zeros((t, b)),
                       done=jnp.zeros((t, b)), next_value=jnp.zeros((t, b)))
    grad = jax.jit(jax.grad(lambda p, carry, batch: ppo_loss(network, ppo, p, 0.01, carry, batch, jnp.ones((t, b)),
                                                             jnp.ones((t, b)))[0]))
    row["update compile s"], seconds = timed(grad, params, carry, batch)
    row["update samples/s"] = t * b / seconds

    if do_loop:
        env = GridWalk(size)
        trainer = make_train(ppo, env, network)
        hp = HParams(lr=jnp.float32(3e-4), ent_coef=jnp.float32(0.01))
        state = jax.jit(trainer.init)(jax.random.key(2), hp, env.default_params)
        run = jax.jit(lambda s: trainer.run(s, env.default_params, loop_updates))
        row["loop compile s"], seconds = timed(run, state, repeats=1)
        row["loop steps/s"] = loop_updates * ppo.steps_per_update / seconds
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--archs", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    parser.add_argument("--loop-updates", type=int, default=1, help="PPO updates per timed loop call")
    parser.add_argument("--no-loop", action="store_true", help="skip the full PPO loop (slow for DRC(3,3))")
    args = parser.parse_args()
    print(f"backend {jax.default_backend()}, jax {jax.__version__}, grid {args.size}x{args.size}x4, "
          f"PPO: rollout {ROLLOUT}, {PPOConfig.update_epochs} epochs x {PPOConfig.num_minibatches} minibatches",
          flush=True)
    keys = ["act steps/s", "update samples/s"] + ([] if args.no_loop else ["loop steps/s"])
    archs = [a for a in args.archs if a != "lstm"] + ["lstm"]  # the peer last: ratios need it
    for envs in args.envs:
        rows = []
        for arch in archs:
            name, spec = ARCHS[arch]
            rows.append(measure(name, spec, args.size, envs, args.loop_updates, not args.no_loop))
            print({k: (round(v, 1) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
        peer = next((r for r in rows if r["arch"] == ARCHS["lstm"][0]), None)
        print(f"\n{envs} envs" + ("" if peer is None else " (x = ratio to the LSTM in this run)"))
        print("| arch | params | " + " | ".join(keys) + " |")
        print("|---" * (len(keys) + 2) + "|")
        for r in rows:
            cells = [f"{r[k]:,.0f}" + ("" if peer is None else f" ({r[k] / peer[k]:.3f}x)") for k in keys]
            print(f"| {r['arch']} | {r['params']:,} | " + " | ".join(cells) + " |")
        print(flush=True)


if __name__ == "__main__":
    main()
