"""Population-based training (Jaderberg et al. 2017) over a vmapped population of PPO learners.

    pop = make_population(ppo_trainer, env, network, PBTConfig(...), population=P)
    state = pop.init(key, hparams, env_params)        # hparams: HParams with leaves [P]
    state, metrics = pop.run(state, env_params, num_rounds)

A round is `interval` PPO updates of every member (one vmapped update; with `swap_envs` the
members step together and the persistent parts of their environments are shuffled among
them after every environment step), then, if `exploit`, one exploit/explore step: members
are ranked by fitness; each of the bottom `truncation` fraction copies the parameters,
optimiser state and hyper-parameters of a uniformly chosen member of the top fraction, and
multiplies each copied hyper-parameter by a factor drawn from `perturb`. Environments,
recurrent state and random keys are never copied.

Fitness: "train" is the member's mean training episode return over the round (the reward
it received, cross-episodic bonuses included); "eval" is the mean episode return of a
separate rollout of `eval_steps` steps in `eval_envs` fresh environments.

Metrics: every per-update PPO metric with leading axes [rounds, interval, P], plus
"fitness" [rounds, P] and "source" [rounds, P] (which member each member copied from; its
own index if none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from innerlab.agents.evaluate import evaluate
from innerlab.agents.networks import Network
from innerlab.agents.ppo import RunnerState, Trainer, _set_lr
from innerlab.envs.persistent import swap_persistent
from innerlab.vocab import FITNESS



@dataclass(frozen=True)
class PBTConfig:
    interval: int = 10
    """PPO updates between exploit/explore steps."""
    truncation: float = 0.25
    """Fraction of the population replaced at each exploit step (at least one member when P >= 2)."""
    perturb: tuple[float, ...] = (0.8, 1.25)
    """Factors a copied hyper-parameter is multiplied by (one drawn uniformly per hyper-parameter)."""
    fitness: str = "train"
    """train (recent training return) | eval (a separate evaluation return)."""
    exploit: bool = True
    """False: the population trains with no selection (the plain baseline, same code path)."""
    swap_envs: bool = False
    """Shuffle the persistent environment state among members after every environment step."""
    eval_envs: int = 16
    eval_steps: int = 32
    lr_bounds: tuple[float, float] = (1e-5, 1e-1)
    ent_coef_bounds: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self):
        if self.interval < 1:
            raise ValueError(f"interval must be >= 1, got {self.interval}")
        if not 0.0 < self.truncation <= 0.5:
            raise ValueError(f"truncation must be in (0, 0.5], got {self.truncation}")
        if self.fitness not in FITNESS:
            raise ValueError(f"fitness must be one of {FITNESS}, got {self.fitness!r}")
        if min(self.perturb) <= 0:
            raise ValueError(f"perturb factors must be > 0, got {self.perturb}")


@struct.dataclass
class PopulationState:
    members: RunnerState
    """Every leaf has a leading [P] axis."""
    key: jax.Array


class Population(NamedTuple):
    init: Callable[..., PopulationState]
    run: Callable[..., tuple[PopulationState, dict]]
    update: Callable[..., tuple[RunnerState, dict]]


def exploit_explore(key, members: RunnerState, fitness, config: PBTConfig):
    """One PBT selection step. fitness [P] (nan counts as worst). Returns (members, source [P]).

    With n = max(1, floor(P * truncation)) (0 if P < 2): the n lowest-ranked members take
    params, opt_state and hparams from a uniformly drawn member of the n highest-ranked, and
    each copied hparam is multiplied by a factor drawn from `config.perturb` and clipped to
    its bounds. Ties rank by member index (stable sort).
    """
    size = fitness.shape[0]
    n = 0 if size < 2 else max(1, int(size * config.truncation))
    if n == 0:
        return members, jnp.arange(size)
    k_pick, k_lr, k_ent = jax.random.split(key, 3)
    order = jnp.argsort(jnp.where(jnp.isnan(fitness), -jnp.inf, fitness), stable=True)
    bottom, top = order[:n], order[size - n:]
    chosen = top[jax.random.randint(k_pick, (n,), 0, n)]
    source = jnp.arange(size).at[bottom].set(chosen)
    copied = source != jnp.arange(size)

    take = lambda tree: jax.tree.map(lambda x: x[source], tree)
    params, opt_state, hparams = take(members.params), take(members.opt_state), take(members.hparams)
    factors = jnp.asarray(config.perturb, jnp.float32)
    lr_factor = factors[jax.random.randint(k_lr, (size,), 0, len(config.perturb))]
    ent_factor = factors[jax.random.randint(k_ent, (size,), 0, len(config.perturb))]
    lr = jnp.where(copied, jnp.clip(hparams.lr * lr_factor, *config.lr_bounds), hparams.lr)
    ent = jnp.where(copied, jnp.clip(hparams.ent_coef * ent_factor, *config.ent_coef_bounds), hparams.ent_coef)
    hparams = hparams.replace(lr=lr, ent_coef=ent)
    opt_state = jax.vmap(_set_lr)(opt_state, lr)
    return members.replace(params=params, opt_state=opt_state, hparams=hparams), source


def make_population(trainer: Trainer, env, network: Network, config: PBTConfig, population: int,
                    rollout_len: int) -> Population:
    """A population of `population` members of `trainer` (built by `make_train` for `env`)."""
    vstep = jax.vmap(trainer.step, in_axes=(0, None))
    vlearn = jax.vmap(trainer.learn)
    obs_of = jax.vmap(jax.vmap(env.get_obs, in_axes=(0, None)), in_axes=(0, None))

    def init(key, hparams, env_params) -> PopulationState:
        key, k_members = jax.random.split(key)
        members = jax.vmap(trainer.init, in_axes=(0, 0, None))(
            jax.random.split(k_members, population), hparams, env_params)
        return PopulationState(members=members, key=key)

    def update(members: RunnerState, key, env_params):
        """One PPO update of every member; the rollout steps the members together."""
        carry0 = members.carry

        def body(members, k):
            members, out = vstep(members, env_params)
            if config.swap_envs:
                env_state = swap_persistent(k, members.env_state, population)
                members = members.replace(env_state=env_state, obs=obs_of(env_state, env_params))
            return members, out

        members, (traj, stats) = jax.lax.scan(body, members, jax.random.split(key, rollout_len))
        to_member_major = lambda tree: jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), tree)
        return vlearn(members, carry0, to_member_major(traj), to_member_major(stats))

    def fitness_of(key, members: RunnerState, metrics, env_params):
        if config.fitness == "train":
            return jnp.nanmean(metrics["episode_return"], axis=0)  # [interval, P] -> [P]; nan if none ended
        keys = jax.random.split(key, population)
        out = jax.vmap(lambda p, k: evaluate(env, network, p, env_params, k, config.eval_envs, config.eval_steps,
                                             lambda info, reward: {"return": reward}))(members.params, keys)
        return jnp.where(out["episodes"] > 0, out["return"], jnp.nan)

    def one_round(state: PopulationState, env_params):
        key, k_updates, k_fit, k_pbt = jax.random.split(state.key, 4)
        members, metrics = jax.lax.scan(lambda m, k: update(m, k, env_params), state.members,
                                        jax.random.split(k_updates, config.interval))
        fitness = fitness_of(k_fit, members, metrics, env_params)
        if config.exploit:
            members, source = exploit_explore(k_pbt, members, fitness, config)
        else:
            source = jnp.arange(population)
        return PopulationState(members=members, key=key), {**metrics, "fitness": fitness, "source": source}

    def run(state: PopulationState, env_params, num_rounds: int):
        return jax.lax.scan(lambda s, _: one_round(s, env_params), state, None, length=num_rounds)

    return Population(init=init, run=run, update=update)


def broadcast_hparams(hparams, population: int):
    """HParams with scalar leaves -> leaves of shape [population]."""
    return jax.tree.map(lambda x: jnp.full((population,), x, jnp.float32), hparams)

