"""Actor-critic networks behind two functions: `init` and `apply`.

Every network is written for ONE environment and ONE time step; batching over environments
is `jax.vmap` and time is `jax.lax.scan`, done by the caller. Code that uses a network (PPO,
evaluation, later PBT and planning) sees only a `Network`: it never imports flax.

    params = network.init(key)
    carry = network.initial_carry()                       # unbatched recurrent state
    carry, logits, value = network.apply(params, carry, obs, is_first)
        obs:      [obs_dim] float32
        is_first: [] bool, this observation begins an episode: the recurrent state is reset
                  to `initial_carry()` before the step, so memory never crosses episodes.
        logits:   [num_actions];  value: []

    carry, logits_t, value_t = network.unroll(params, carry0, obs_t, is_first_t)
        A whole batch of sequences at once: carry0 [B, ...], obs_t [T, B, obs_dim],
        is_first_t [T, B] -> logits_t [T, B, num_actions], value_t [T, B]. Equal (to float
        rounding) to scanning `apply` over time and vmapping it over the batch, but cheaper:
        layers that do not depend on the recurrent state (torso, heads) run once over all
        T x B inputs as one large matrix product, and only the recurrence is scanned (see
        `_lstm_unroll`). PPO's update replays rollouts with it; acting uses `apply`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ARCHS = ("mlp", "cnn", "lstm", "gru", "transformer", "drc", "resnet", "impala", "random")


@dataclass(frozen=True)
class NetworkConfig:
    arch: str = "lstm"
    """mlp | cnn | lstm | gru | transformer (causal, over the last `context` steps) | drc (DRC(D, N), Guez et al.
    2019) | resnet (feed-forward conv peer of the DRC) | impala (IMPALA-CNN, Espeholt et al. 2018, as in procgen's
    baselines; `innerlab.agents.impala`) | random (uniform policy, no parameters)"""
    width: int = 64
    """Hidden width of the torso, the recurrent cell and the attention (drc / resnet: conv channels; impala: the
    first stack's channels, the others twice that: 16 gives the published (16, 32, 32))."""
    depth: int = 1
    """Dense layers in the torso (mlp) or attention blocks (transformer)."""
    context: int = 8
    """Transformer only: how many most recent steps of the episode it attends over."""
    heads: int = 2
    """Transformer only: attention heads (must divide width)."""
    image_shape: tuple[int, int, int] | None = None
    """CNN / DRC / ResNet: the observation starts with an image [C, H, W] flattened; the rest (if
    any) is a feature vector joined after the convolutions (DRC / ResNet: joined to the MLP's input)."""
    drc_depth: int = 3
    """DRC only: D, stacked ConvLSTM layers."""
    ticks: int = 3
    """DRC only: N, ticks of the stack per step."""
    mlp_width: int = 256
    """DRC / ResNet / IMPALA: units of the MLP before the policy and value heads."""
    resnet_blocks: int = 9
    """ResNet only: residual blocks."""

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.width < 1 or self.depth < 1 or self.context < 1:
            raise ValueError("width, depth and context must be >= 1")
        if self.arch in ("cnn", "drc", "resnet", "impala") and self.image_shape is None:
            raise ValueError(f"arch {self.arch} needs image_shape (C, H, W) of the observation's image part")
        if min(self.drc_depth, self.ticks, self.mlp_width, self.resnet_blocks) < 1:
            raise ValueError("drc_depth, ticks, mlp_width and resnet_blocks must be >= 1")
        if self.arch == "transformer" and self.width % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide width ({self.width})")


class Network(NamedTuple):
    init: Callable[[jax.Array], Any]
    initial_carry: Callable[[], Any]
    apply: Callable[[Any, Any, jax.Array, jax.Array], tuple[Any, jax.Array, jax.Array]]
    unroll: Callable[[Any, Any, jax.Array, jax.Array], tuple[Any, jax.Array, jax.Array]] = None
    features: Callable[[Any, Any, jax.Array, jax.Array], jax.Array] | None = None
    """features(params, carry, obs, is_first) -> [F, H, W] per-cell activations after the step
    (conv archs, for probes); None for the others."""


def _dense(features: int, scale: float = np.sqrt(2.0)) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(scale),
                    bias_init=nn.initializers.zeros)


class _Heads(nn.Module):
    num_actions: int

    @nn.compact
    def __call__(self, h):
        # Small policy init keeps the initial policy near uniform (CleanRL/PureJaxRL practice).
        logits = _dense(self.num_actions, 0.01)(h)
        value = _dense(1, 1.0)(h)[..., 0]
        return logits, value


class _MLP(nn.Module):
    cfg: NetworkConfig
    num_actions: int

    @nn.compact
    def __call__(self, carry, obs, is_first):
        h = obs
        for _ in range(self.cfg.depth):
            h = nn.tanh(_dense(self.cfg.width)(h))
        return carry, *_Heads(self.num_actions)(h)


def _patches3x3(x: jax.Array) -> jax.Array:
    """[C, H, W] -> [9C, H, W]: each cell's 3x3 neighbourhood (zero padded), stacked on the
    channel axis, so that mixing channels per cell is a 3x3 'same' convolution."""
    _, h, w = x.shape
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1)))
    return jnp.concatenate([padded[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=0)


class _PixelMix(nn.Module):
    """[C_in, H, W] -> [C_out, H, W]: the same affine map of the channels at every cell."""

    features: int

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.initializers.orthogonal(np.sqrt(2.0)), (x.shape[0], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features, 1, 1))
        c, h, w = x.shape
        return (kernel.T @ x.reshape(c, h * w)).reshape(self.features, h, w) + bias


class _CNN(nn.Module):
    """`depth` 3x3 convolutions of max(8, width // 8) channels (same padding, ReLU) over the
    image part of the observation, flattened, joined with the rest of the observation, then one
    dense layer of `width`.

    The convolutions are written as patches x Dense (im2col), not `nn.Conv`: vmapping a
    convolution over seeds (different kernels per seed) becomes a grouped convolution, which
    deadlocked jaxlib 0.10.2's CPU runtime every time we ran it with 8 seeds (0% CPU, forever;
    one seed ran). A dense layer vmaps to a batched matmul, which is fine, and on these small
    grids it is no slower. Narrow channels: on a CPU a full-width conv stack costs an order of
    magnitude more than the MLP it is compared with.
    """

    cfg: NetworkConfig
    num_actions: int

    @nn.compact
    def __call__(self, carry, obs, is_first):
        c, h, w = self.cfg.image_shape
        x = obs[: c * h * w].reshape(c, h, w)  # channels first, as the env draws it: no transpose
        for _ in range(self.cfg.depth):
            x = nn.relu(_PixelMix(max(8, self.cfg.width // 8))(_patches3x3(x)))
        x = jnp.concatenate([x.reshape(-1), obs[c * h * w:]])
        x = nn.tanh(_dense(self.cfg.width)(x))
        return carry, *_Heads(self.num_actions)(x)


class _Recurrent(nn.Module):
    cfg: NetworkConfig
    num_actions: int

    @nn.compact
    def __call__(self, carry, obs, is_first):
        carry = jax.tree.map(lambda c: jnp.where(is_first, jnp.zeros_like(c), c), carry)
        h = nn.tanh(_dense(self.cfg.width)(obs))
        cell = nn.OptimizedLSTMCell(self.cfg.width) if self.cfg.arch == "lstm" else nn.GRUCell(self.cfg.width)
        carry, h = cell(carry, h)
        return carry, *_Heads(self.num_actions)(h)


class _Transformer(nn.Module):
    """Causal self-attention over the last `context` observations of the current episode.

    The carry holds the raw observations (not embeddings), so replaying a rollout during
    the update recomputes every embedding with the current parameters (no stale memory).
    """

    cfg: NetworkConfig
    num_actions: int

    @nn.compact
    def __call__(self, carry, obs, is_first):
        window, valid = carry  # [K, obs_dim], [K] bool
        valid = jnp.where(is_first, jnp.zeros_like(valid), valid)
        window = jnp.concatenate([window[1:], obs[None]], axis=0)
        valid = jnp.concatenate([valid[1:], jnp.ones((1,), bool)])
        k = self.cfg.context
        pos = self.param("position", nn.initializers.normal(0.02), (k, self.cfg.width))
        x = _dense(self.cfg.width)(window) + pos
        # Causal within the window and blind to slots before the episode began.
        mask = jnp.tril(jnp.ones((k, k), bool)) & valid[None, :] & valid[:, None]
        for _ in range(self.cfg.depth):
            y = nn.LayerNorm()(x)
            y = nn.MultiHeadDotProductAttention(num_heads=self.cfg.heads, qkv_features=self.cfg.width)(
                y, y, mask=mask[None])
            x = x + y
            y = nn.LayerNorm()(x)
            y = _dense(self.cfg.width)(nn.gelu(_dense(2 * self.cfg.width)(y)))
            x = x + y
        h = nn.LayerNorm()(x[-1])
        return (window, valid), *_Heads(self.num_actions)(h)


def _scan_unroll(apply):
    """The generic `unroll`: `apply` vmapped over the batch, scanned over time."""
    step = jax.vmap(apply, in_axes=(None, 0, 0, 0))

    def unroll(params, carry0, obs_t, is_first_t):
        def body(carry, inputs):
            carry, logits, value = step(params, carry, *inputs)
            return carry, (logits, value)

        carry, (logits_t, value_t) = jax.lax.scan(body, carry0, (obs_t, is_first_t))
        return carry, logits_t, value_t
    return unroll


def _feedforward_unroll(apply):
    """Memoryless networks: every (time, env) input at once, no scan."""
    def unroll(params, carry0, obs_t, is_first_t):
        t, b = is_first_t.shape
        flat = jax.vmap(lambda obs, first: apply(params, jnp.zeros((0,)), obs, first))
        _, logits, value = flat(obs_t.reshape(t * b, -1), is_first_t.reshape(-1))
        return carry0, logits.reshape(t, b, -1), value.reshape(t, b)
    return unroll


def _affine(p, x):
    return x @ p["kernel"] + p["bias"]


def _heads(p, h):
    return _affine(p["Dense_0"], h), _affine(p["Dense_1"], h)[..., 0]


def _lstm_unroll(params, carry0, obs_t, is_first_t):
    """`_Recurrent` (LSTM) over [T, B] with flax's `OptimizedLSTMCell` parameters.

    The torso is one [T*B, .] matrix product before the scan and the heads one after it.
    Inside the scan, all four gates come from one product [x_t, h] @ [W_i; W_h]. (Computing
    x_t @ W_i for all steps before the scan, as the GRU does, was ~8% slower at 1024 envs on
    the 2-core CPU: the [T, B, 4H] intermediate does not fit in cache.)"""
    p = params["params"]
    cell = p["OptimizedLSTMCell_0"]
    x_t = jnp.tanh(_affine(p["Dense_0"], obs_t))
    w_i = jnp.concatenate([cell[f"i{g}"]["kernel"] for g in "ifgo"], axis=-1)
    w_h = jnp.concatenate([cell[f"h{g}"]["kernel"] for g in "ifgo"], axis=-1)
    b_h = jnp.concatenate([cell[f"h{g}"]["bias"] for g in "ifgo"], axis=-1)
    w = jnp.concatenate([w_i, w_h], axis=0)  # [D + H, 4H]

    def step(carry, inputs):
        x, first = inputs
        c, h = jax.tree.map(lambda a: jnp.where(first[:, None], 0.0, a), carry)
        i, f, g, o = jnp.split(jnp.concatenate([x, h], axis=-1) @ w + b_h, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (c, h), h

    carry, h_t = jax.lax.scan(step, carry0, (x_t, is_first_t))
    return (carry, *_heads(p["_Heads_0"], h_t))


def _gru_unroll(params, carry0, obs_t, is_first_t):
    """`_Recurrent` (GRU) over [T, B] with flax's `GRUCell` parameters; as `_lstm_unroll`."""
    p = params["params"]
    cell = p["GRUCell_0"]
    x_t = jnp.tanh(_affine(p["Dense_0"], obs_t))
    w_i = jnp.concatenate([cell[f"i{g}"]["kernel"] for g in "rzn"], axis=-1)
    b_i = jnp.concatenate([cell[f"i{g}"]["bias"] for g in "rzn"], axis=-1)
    w_h = jnp.concatenate([cell[f"h{g}"]["kernel"] for g in "rzn"], axis=-1)
    b_hn = cell["hn"]["bias"]
    z_t = x_t @ w_i + b_i  # [T, B, 3H]

    def step(h, inputs):
        z_x, first = inputs
        h = jnp.where(first[:, None], 0.0, h)
        x_r, x_z, x_n = jnp.split(z_x, 3, axis=-1)
        h_r, h_z, h_n = jnp.split(h @ w_h, 3, axis=-1)
        r = jax.nn.sigmoid(x_r + h_r)
        z = jax.nn.sigmoid(x_z + h_z)
        n = jnp.tanh(x_n + r * (h_n + b_hn))
        h = (1.0 - z) * n + z * h
        return h, h

    carry, h_t = jax.lax.scan(step, carry0, (z_t, is_first_t))
    return (carry, *_heads(p["_Heads_0"], h_t))


def make_network(cfg: NetworkConfig, obs_dim: int, num_actions: int) -> Network:
    """Build the `Network` for observations of size `obs_dim` and `num_actions` actions."""
    if cfg.arch == "random":
        def apply_random(params, carry, obs, is_first):
            return carry, jnp.zeros((num_actions,)), jnp.zeros(())
        def unroll_random(params, carry0, obs_t, is_first_t):
            t, b = is_first_t.shape
            return carry0, jnp.zeros((t, b, num_actions)), jnp.zeros((t, b))
        return Network(init=lambda key: {}, initial_carry=lambda: jnp.zeros((0,)), apply=apply_random,
                       unroll=unroll_random)

    if cfg.arch in ("drc", "resnet"):
        return _conv_core_network(cfg, obs_dim, num_actions)

    if cfg.arch == "impala":
        from innerlab.agents.impala import make_impala  # imports drc, which imports this module

        return make_impala(cfg, obs_dim, num_actions)

    if cfg.arch in ("mlp", "cnn"):
        if cfg.arch == "cnn" and int(np.prod(cfg.image_shape)) > obs_dim:
            raise ValueError(f"image_shape {cfg.image_shape} is larger than the observation ({obs_dim})")
        module = _MLP(cfg, num_actions) if cfg.arch == "mlp" else _CNN(cfg, num_actions)
        def initial_carry():
            return jnp.zeros((0,))
    elif cfg.arch in ("lstm", "gru"):
        module = _Recurrent(cfg, num_actions)
        def initial_carry():
            h = jnp.zeros((cfg.width,))
            return (h, h) if cfg.arch == "lstm" else h
    else:
        module = _Transformer(cfg, num_actions)
        def initial_carry():
            return jnp.zeros((cfg.context, obs_dim)), jnp.zeros((cfg.context,), bool)

    def init(key):
        return module.init(key, initial_carry(), jnp.zeros((obs_dim,)), jnp.array(True))

    def apply(params, carry, obs, is_first):
        return module.apply(params, carry, obs, is_first)

    if cfg.arch in ("mlp", "cnn"):
        unroll = _feedforward_unroll(apply)
    elif cfg.arch == "lstm":
        unroll = _lstm_unroll
    elif cfg.arch == "gru":
        unroll = _gru_unroll
    else:
        unroll = _scan_unroll(apply)
    return Network(init=init, initial_carry=initial_carry, apply=apply, unroll=unroll)


def _conv_core_network(cfg: NetworkConfig, obs_dim: int, num_actions: int) -> Network:
    """The DRC or the ResNet of `innerlab.agents.drc` as a `Network` (imported here: drc imports
    this module)."""
    from innerlab.agents import drc

    return (drc.make_drc if cfg.arch == "drc" else drc.make_resnet)(cfg, obs_dim, num_actions)
