"""The peer of `innerlab bench`: sb3-contrib RecurrentPPO on the numpy ObjectWorld, CPU only.

`sb3_recurrent_throughput(...)` trains `RecurrentPPO("MlpLstmPolicy")` on
`NumpyObjectWorld` (bench/np_objectworld.py, the same dynamics and observations as the JAX
ObjectWorld 7x7, 6 objects, 2 colours, 30 steps) and reports env-steps per second of
`learn()` (rollouts and updates together), with the same agent size and PPO settings as
innerlab's recurrent PPO (agents/ppo.py, agents/networks.py `_Recurrent`) as far as
sb3-contrib allows. It imports no jax.

The network
-----------
innerlab: obs -> Dense(hidden) tanh -> LSTM(hidden) -> {policy Dense(4), value Dense(1)};
one torso and one LSTM for actor and critic, trained by the whole PPO loss.

sb3-contrib's MlpLstmPolicy is features extractor -> LSTM -> `net_arch` MLP -> heads. The
equal-size configuration used here is:
  * features extractor `DenseTanh`: Linear(obs_dim, hidden) + tanh (a custom
    `BaseFeaturesExtractor`; sb3 orthogonally initialises it with gain sqrt(2), innerlab's
    Dense init),
  * `lstm_hidden_size=hidden`, one layer,
  * `net_arch=[]`: the heads read the LSTM output directly (sb3 initialises them
    orthogonally with gains 0.01 and 1, as innerlab does),
  * `lstm_critic=False` (closest): `shared_lstm=True, enable_critic_lstm=False`: the critic
    reads the actor's LSTM output. `lstm_critic=True`: sb3-contrib's default, a second LSTM
    for the critic (`shared_lstm=False, enable_critic_lstm=True`; the features extractor is
    still shared), so twice the recurrent compute.

Parameter counts (hidden 128, 4 actions; obs_dim 198 for the flat view, 199 with the `prev`
reward channel: +128 everywhere), counted with
`jax.eval_shape(network.init)` and `policy.parameters()` (tests/test_np_objectworld.py checks
the shared case):
  innerlab LSTM(128)                      157,701  (Dense 25,472 + LSTM 131,584 + heads 645)
  sb3 shared LSTM   (lstm_critic=False)   158,213  (+512: torch's LSTM has a bias on both the
                                                    input and the hidden side, flax on one)
  sb3 separate LSTM (lstm_critic=True)    290,309  (+ the critic's LSTM, 132,096)

What differs, and why it does not matter much for throughput:
  * With `shared_lstm=True` sb3-contrib detaches the critic's input (`latent_pi.detach()`),
    so the value loss trains only the value head, never the LSTM or the torso; innerlab
    back-propagates the value loss through both. Same forward and backward sizes otherwise.
  * LSTM init: torch's default uniform(+-1/sqrt(hidden)) for every LSTM weight and bias;
    flax's OptimizedLSTMCell uses lecun-normal input and orthogonal recurrent kernels, zero
    biases.
  * Minibatches: innerlab's hold whole rollouts of num_envs / num_minibatches envs;
    sb3-contrib splits the rollout into per-episode sequences and cuts `batch_size` steps
    (n_steps * num_envs / num_minibatches, so the same number of minibatches per epoch)
    from them, padding sequences.
  * Value loss: innerlab 0.5 * max(unclipped, clipped) squared error; sb3 the clipped squared
    error without the 0.5 (`clip_range_vf=clip`), so with the same `vf_coef` sb3 weights the
    value loss about twice as heavily.

What matches: gamma 0.95, GAE lambda 0.95, clip 0.2 (policy and value), ent_coef 0.01,
vf_coef 0.5, max_grad_norm 0.5, Adam lr 3e-4 with eps 1e-5 annealed linearly to 0 over the
run exactly as innerlab's `anneal_lr` does (sb3's progress counter runs one rollout ahead,
see `_linear_lr`), per-minibatch advantage normalisation, n_steps = rollout_len,
n_epochs = update_epochs, truncation bootstrapped from the final observation's value and
termination not, recurrent state reset when an episode begins.

Timing: the model is built and warmed up (one rollout and update) outside the clock; the
clock covers one `learn(total_steps)` call. torch uses every core (`torch.set_num_threads
(os.cpu_count())`, or `torch_threads`), device cpu. Measure on a quiet machine: the ops here
are small, and when other processes hold the cores torch's OpenMP threads wait on each other
for whole time slices. On the 2-core machine with another job running (load ~3.5,
2026-11-25, 8 envs, 20k steps) the shared-LSTM peer ran at 394 env-steps/s with 2 threads
and 2,209 with 1 (separate LSTMs: 309 and 1,366).

    python -m innerlab.bench.sb3_peer [--steps 20480] [--num-envs 8] [--prev-reward] [--torch-threads N] [--json]
"""

from __future__ import annotations

import os
import time

import numpy as np

from innerlab.bench.np_objectworld import make_vec_env


def _linear_lr(lr: float, num_updates: int):
    """sb3 schedule giving innerlab's lr * (1 - update / num_updates) at update 0, 1, ...

    sb3 reads the schedule in `train()`, after the update's rollout has been counted, so its
    progress_remaining there is 1 - (update + 1) / num_updates.
    """
    def schedule(progress_remaining: float) -> float:
        return lr * min(1.0, progress_remaining + 1.0 / num_updates)
    return schedule


def _dense_tanh_extractor():
    """The `DenseTanh` features extractor class (built lazily so this module imports without torch)."""
    import torch.nn as nn
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class DenseTanh(BaseFeaturesExtractor):
        """obs [B, obs_dim] -> tanh(Linear(obs)) [B, features_dim]: innerlab's torso."""

        def __init__(self, observation_space, features_dim: int = 128):
            super().__init__(observation_space, features_dim)
            self.net = nn.Sequential(nn.Linear(int(np.prod(observation_space.shape)), features_dim), nn.Tanh())

        def forward(self, observations):
            return self.net(observations.flatten(1))

    return DenseTanh


def build_model(num_envs: int = 8, hidden: int = 128, rollout_len: int = 128, update_epochs: int = 4,
                num_minibatches: int = 4, total_steps: int = 20_480, lstm_critic: bool = False, seed: int = 0,
                lr: float = 3e-4, env_kwargs: dict | None = None):
    """The RecurrentPPO model described in the module docstring, on a DummyVecEnv of
    `num_envs` Monitor-wrapped NumpyObjectWorld(**env_kwargs) (default: the bench config).

    `total_steps` sets the learning-rate annealing horizon (whole updates of
    num_envs * rollout_len steps).

    Raises:
        ValueError: num_minibatches does not divide num_envs * rollout_len into minibatches
            of at least 2 steps, or total_steps is less than one update.
    """
    from sb3_contrib import RecurrentPPO

    steps_per_update = num_envs * rollout_len
    if num_minibatches < 1 or steps_per_update % num_minibatches or steps_per_update // num_minibatches < 2:
        raise ValueError(f"num_minibatches ({num_minibatches}) must divide num_envs * rollout_len "
                         f"({steps_per_update}) into minibatches of >= 2 steps")
    if total_steps < steps_per_update:
        raise ValueError(f"total_steps ({total_steps}) must be at least one update ({steps_per_update})")
    env = make_vec_env(num_envs, seed, monitor=True, **(env_kwargs or {}))
    policy_kwargs = dict(
        features_extractor_class=_dense_tanh_extractor(), features_extractor_kwargs=dict(features_dim=hidden),
        lstm_hidden_size=hidden, n_lstm_layers=1, net_arch=[],
        shared_lstm=not lstm_critic, enable_critic_lstm=lstm_critic)
    return RecurrentPPO(
        "MlpLstmPolicy", env, learning_rate=_linear_lr(lr, total_steps // steps_per_update), n_steps=rollout_len,
        batch_size=steps_per_update // num_minibatches, n_epochs=update_epochs, gamma=0.95, gae_lambda=0.95,
        clip_range=0.2, clip_range_vf=0.2, normalize_advantage=True, ent_coef=0.01, vf_coef=0.5,
        max_grad_norm=0.5, policy_kwargs=policy_kwargs, seed=seed, device="cpu", verbose=0)


def sb3_recurrent_throughput(num_envs: int = 8, hidden: int = 128, rollout_len: int = 128, update_epochs: int = 4,
                             num_minibatches: int = 4, total_steps: int = 20_480, lstm_critic: bool = False,
                             seed: int = 0, warmup: bool = True, env_kwargs: dict | None = None,
                             torch_threads: int | None = None) -> dict:
    """Train RecurrentPPO on the numpy ObjectWorld and time it.

    `total_steps` is rounded down to whole updates (num_envs * rollout_len), as innerlab does.
    `warmup`: first run one rollout and update on the same model, untimed.
    `torch_threads`: torch's intra-op threads during the run (default every core,
    `os.cpu_count()`); the previous setting is restored afterwards.

    Returns a dict:
        steps_per_s: env steps of the timed `learn()` per wall-clock second.
        steps, seconds: its env steps and duration.
        params: trainable parameters of the policy (actor and critic).
        return_curve: [(env steps, mean return of the last <= 100 finished episodes)] at the
            end of each rollout; final_return: its last value (nan if no episode ended).
        peak_rss_mb: the process's resident memory, highest of the samples taken at the end
            of each rollout (psutil); process_peak_rss_mb: the kernel's lifetime peak.
        config: every setting used.
    """
    import psutil
    import sb3_contrib
    import stable_baselines3
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    class Record(BaseCallback):
        def __init__(self):
            super().__init__()
            self.curve, self.rss = [], []

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            self.rss.append(psutil.Process().memory_info().rss)
            buffer = self.model.ep_info_buffer
            if buffer:
                self.curve.append((int(self.model.num_timesteps), float(np.mean([e["r"] for e in buffer]))))

    steps_per_update = num_envs * rollout_len
    steps = (total_steps // steps_per_update) * steps_per_update
    threads = torch_threads or os.cpu_count()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = build_model(num_envs, hidden, rollout_len, update_epochs, num_minibatches, total_steps,
                            lstm_critic, seed, env_kwargs=env_kwargs)
        if warmup:
            model.learn(steps_per_update)
        record = Record()
        start = time.perf_counter()
        model.learn(steps, callback=record, reset_num_timesteps=True)
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads_before)
    import resource
    return {
        "steps_per_s": model.num_timesteps / seconds, "steps": int(model.num_timesteps), "seconds": seconds,
        "params": sum(p.numel() for p in model.policy.parameters() if p.requires_grad),
        "return_curve": record.curve, "final_return": record.curve[-1][1] if record.curve else float("nan"),
        "peak_rss_mb": max(record.rss, default=0) / 2**20,
        "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "config": {"algo": "sb3-contrib RecurrentPPO MlpLstmPolicy", "num_envs": num_envs, "hidden": hidden,
                   "rollout_len": rollout_len, "update_epochs": update_epochs, "num_minibatches": num_minibatches,
                   "batch_size": steps_per_update // num_minibatches, "lstm_critic": lstm_critic,
                   "shared_lstm": not lstm_critic, "net_arch": [], "features_extractor": f"Linear({hidden}) tanh",
                   "gamma": 0.95, "gae_lambda": 0.95, "clip_range": 0.2, "clip_range_vf": 0.2, "ent_coef": 0.01,
                   "vf_coef": 0.5, "max_grad_norm": 0.5, "lr": 3e-4, "lr_anneal": "linear to 0", "seed": seed,
                   "warmup": warmup, "env_kwargs": env_kwargs or {}, "device": "cpu",
                   "torch_threads": threads, "torch": torch.__version__,
                   "sb3": stable_baselines3.__version__, "sb3_contrib": sb3_contrib.__version__},
    }


def main():
    import argparse
    import json

    from innerlab.bench.np_objectworld import env_steps_per_s

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_480, help="timed env steps per variant")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--prev-reward", action="store_true", help="observe through the `prev` reward channel")
    parser.add_argument("--torch-threads", type=int, default=None, help="default: every core")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    env_kwargs = {"prev_reward": True} if args.prev_reward else None
    results = [sb3_recurrent_throughput(num_envs=args.num_envs, total_steps=args.steps, lstm_critic=lstm_critic,
                                        env_kwargs=env_kwargs, torch_threads=args.torch_threads)
               for lstm_critic in (False, True)]
    env_only = {n: env_steps_per_s(n, 20_000, **(env_kwargs or {})) for n in (1, args.num_envs)}
    if args.json:
        print(json.dumps({"results": results, "env_steps_per_s": env_only}))
        return
    channel = " + prev reward channel" if args.prev_reward else ""
    print(f"# sb3-contrib RecurrentPPO on numpy ObjectWorld 7x7{channel}, {args.num_envs} envs, rollout 128, "
          f"4 epochs x 4 minibatches, hidden 128, torch threads {results[0]['config']['torch_threads']}, CPU")
    print(f"{'critic':<14} {'params':>8} {'env-steps/s':>11} {'steps':>7} {'s':>6} {'final return':>12} {'peak MB':>8}")
    for r in results:
        name = "separate LSTM" if r["config"]["lstm_critic"] else "shared LSTM"
        print(f"{name:<14} {r['params']:>8,} {r['steps_per_s']:>11,.0f} {r['steps']:>7} {r['seconds']:>6.1f} "
              f"{r['final_return']:>12.2f} {r['peak_rss_mb']:>8.0f}")
        print(f"  return curve: {', '.join(f'{s}:{v:+.2f}' for s, v in r['return_curve'][::4])}")
    for n, rate in env_only.items():
        print(f"env only, numpy, {n} env(s){' (DummyVecEnv)' if n > 1 else ''}: {rate:,.0f} env-steps/s")


if __name__ == "__main__":
    main()
