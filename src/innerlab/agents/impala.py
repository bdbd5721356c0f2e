"""The IMPALA-CNN (Espeholt et al. 2018, Fig. 3, "large" network, feed-forward) as a `Network`.

Built through `make_network(NetworkConfig(arch="impala", image_shape=(C, H, W), width=16, mlp_width=256))`.
The layers are those of the training code of Langosco et al. 2022 (jbkjr/train-procgen-pytorch
@ 2906e6f, `common/model.py`: `ImpalaModel`, `ImpalaBlock`, `ResidualBlock`; policy and value heads
in `common/policy.py`: `CategoricalPolicy`), itself Cobbe et al.'s procgen baseline:

    for channels in (w, 2w, 2w):             (16, 32, 32) at w = 16, theirs (`scale = 1`)
        x = conv3x3(x, channels)             stride 1, 'same' padding
        x = maxpool3x3(x, stride 2, pad 1)   H -> ceil(H / 2)
        x = x + conv3x3(relu(conv3x3(relu(x))))   twice (two residual blocks)
    h = relu(dense_256(flatten(relu(x))))
    logits = dense_A(h);  value = dense_1(h)

Their convolutions and the dense layer are initialised Xavier-uniform (gain 1) with zero biases
(`xavier_uniform_init`), the policy head orthogonal with gain 0.01 and the value head orthogonal
with gain 1 (`orthogonal_init`); so are ours. On a 64 x 64 image the last stack is 8 x 8 x 32, so
the dense layer has 2048 inputs: 626,256 parameters with procgen's 15 actions (counted in
tests/test_maze_paper.py).

The observation is a flat vector whose first C*H*W values are a channels-first image
(`NetworkConfig.image_shape`); any further values are ignored (procgen's observation is the image
alone). Convolutions are im2col times a dense kernel, as in `innerlab.agents.drc`, not
`lax.conv_general_dilated`: vmapping a convolution over seeds deadlocked jaxlib 0.10.2's CPU
runtime (see `networks._CNN`), and on the 2-core CPU XLA's own convolution trained this network
3x slower than im2col (its forward alone was 3.5x faster; its gradients were the cost; 15x15
world, 16 envs, one seed). Max pooling pads with -inf (as torch's `MaxPool2d(3, 2, padding=1)`).

Shapes: obs [obs_dim]; carry empty ([0]); logits [num_actions]; value []. `unroll`: obs_t
[T, B, obs_dim], is_first_t [T, B] -> logits [T, B, A], value [T, B]; `features` -> the last
stack's output [2w, H', W'] (H' = H / 8 rounded up).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from innerlab.agents.drc import _check, _conv, _dense, _Image, _init_dense
from innerlab.agents.networks import Network, NetworkConfig

# Observations pushed through the trunk at once in `unroll`: bounded, so that the im2col patches
# of a large minibatch (8,192 64x64 images in the paper's setting) never all live at once.
UNROLL_CHUNK = 1024


def stack_channels(width: int) -> tuple[int, int, int]:
    """Channels of the three stacks: (16, 32, 32) at width 16, as published."""
    return (width, 2 * width, 2 * width)


def pooled(size: int) -> int:
    """Side after a 3x3 max pool with stride 2 and padding 1."""
    return (size - 1) // 2 + 1


def max_pool(x: jax.Array) -> jax.Array:
    """[..., H, W, C] -> [..., ceil(H/2), ceil(W/2), C]: 3x3 windows, stride 2, padded with -inf."""
    *lead, h, w, c = x.shape
    oh, ow = pooled(h), pooled(w)
    pad = [(0, 0)] * len(lead) + [(1, 2 * oh - h), (1, 2 * ow - w), (0, 0)]
    padded = jnp.pad(x, pad, constant_values=-jnp.inf)
    taps = [padded[..., i:i + 2 * oh - 1:2, j:j + 2 * ow - 1:2, :] for i in range(3) for j in range(3)]
    return jnp.max(jnp.stack(taps), axis=0)


def _xavier_conv(key, c_in: int, c_out: int) -> dict:
    # torch's xavier_uniform_ on a [c_out, c_in, 3, 3] kernel: fan_in 9 c_in, fan_out 9 c_out.
    kernel = nn.initializers.glorot_uniform(in_axis=2, out_axis=3)(key, (3, 3, c_in, c_out))
    return {"kernel": kernel.reshape(9 * c_in, c_out), "bias": jnp.zeros((c_out,))}


class _Impala:
    """The IMPALA-CNN as pure functions of a parameter dict (any leading batch axes)."""

    def __init__(self, cfg: NetworkConfig, obs_dim: int, num_actions: int):
        self.image = _Image(_check(cfg, obs_dim))
        c, h, w = self.image.shape
        self.channels = stack_channels(cfg.width)
        for _ in self.channels:
            h, w = pooled(h), pooled(w)
        self.out_shape = (h, w, self.channels[-1])
        self.mlp_width, self.num_actions = cfg.mlp_width, num_actions

    def init(self, key) -> dict:
        keys = jax.random.split(key, 3 * len(self.channels) + 3)
        stacks, c_in = [], self.image.shape[0]
        for s, c_out in enumerate(self.channels):
            stacks.append({"conv": _xavier_conv(keys[3 * s], c_in, c_out),
                           "res": [[_xavier_conv(k, c_out, c_out) for k in jax.random.split(keys[3 * s + b + 1])]
                                   for b in range(2)]})
            c_in = c_out
        n_in = int(np.prod(self.out_shape))
        fc = {"kernel": nn.initializers.glorot_uniform()(keys[-3], (n_in, self.mlp_width)),
              "bias": jnp.zeros((self.mlp_width,))}
        return {"stacks": stacks, "fc": fc,
                "policy": _init_dense(keys[-2], self.mlp_width, self.num_actions, 0.01),
                "value": _init_dense(keys[-1], self.mlp_width, 1, 1.0)}

    def initial_carry(self):
        return jnp.zeros((0,))

    def trunk(self, params, obs):
        """obs [..., obs_dim] -> the last stack's output [..., H', W', 2w]."""
        x, _ = self.image(obs)
        for stack in params["stacks"]:
            x = max_pool(_conv(stack["conv"], x))
            for first, second in stack["res"]:
                x = x + _conv(second, jax.nn.relu(_conv(first, jax.nn.relu(x))))
        return x

    def heads(self, params, x):
        """trunk output [..., H', W', C] -> logits [..., A], value [...]."""
        flat = jax.nn.relu(x).reshape(*x.shape[:-3], -1)
        h = jax.nn.relu(_dense(params["fc"], flat))
        return _dense(params["policy"], h), _dense(params["value"], h)[..., 0]

    def apply(self, params, carry, obs, is_first):
        return carry, *self.heads(params, self.trunk(params, obs))

    def features(self, params, carry, obs, is_first):
        return jnp.moveaxis(self.trunk(params, obs), -1, -3)

    def unroll(self, params, carry0, obs_t, is_first_t):
        """Memoryless: all T x B observations, in chunks of at most UNROLL_CHUNK, each chunk's trunk
        rematerialised in the backward pass (only its output is kept)."""
        t, b = is_first_t.shape
        n = t * b
        chunk = max(d for d in range(1, min(n, UNROLL_CHUNK) + 1) if n % d == 0)
        flat = obs_t.reshape(n // chunk, chunk, -1)
        x = jax.lax.map(jax.checkpoint(lambda o: self.trunk(params, o)), flat)
        logits, value = self.heads(params, x.reshape(n, *self.out_shape))
        return carry0, logits.reshape(t, b, -1), value.reshape(t, b)


def make_impala(cfg: NetworkConfig, obs_dim: int, num_actions: int) -> Network:
    net = _Impala(cfg, obs_dim, num_actions)
    return Network(init=net.init, initial_carry=net.initial_carry, apply=net.apply, unroll=net.unroll,
                   features=net.features)
