"""Linear probes of plans in a network's per-cell features (Taufeeque et al. 2024 style).

A probe is one linear map applied to the feature vector of every grid cell (a 1x1 convolution),
fitted by full-batch Adam with a small L2 penalty on the validation levels' first half and
scored on the second half (levels never seen by the probe). Features are standardised with the
fitting half's statistics. Two probes:

- next_push: scores each (box cell, direction) pair with `W [F, 4]`; the prediction is the best
  pair over the cells that hold a box; accuracy = it is the box and direction of the agent's
  next push. Chance = 1 / (4 * boxes on the grid), averaged over the scored steps.
- push_within_k: scores each box cell with `w [F]`: will this box be pushed within the next k
  steps? Fitted with class-balanced logistic loss; the score is the balanced accuracy over box
  cells (mean of the true-positive and true-negative rates; chance 0.5).
- box_path: scores every floor cell with `W [F, 5]`: in which direction will a box next be pushed
  out of this cell (up, right, down, left, or never in the rest of the episode)? The "box
  directions" probe of Taufeeque et al. 2024: it reads the box's whole future path, not just the
  next push. Fitted with class-balanced softmax loss; the score is the balanced accuracy (mean
  recall over the classes present; chance 0.2).

The floor of each probe is the same probe on an untrained network of the same architecture fed
the same observations. With one box in a small room, whether the box moves within k steps is
largely readable from the observation (the player's distance to the box), so that probe's floor
is high there (measured 0.80 at the quick scale); the path over the rest of the episode is not.

Shapes: S seeds, T steps, L levels, F features, H x W grid, HW = H * W cells.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

PROBE_STEPS = 400
PROBE_LR = 0.05
PROBE_L2 = 1e-3
PATH_CLASSES = 5  # up, right, down, left, never (scoring.NO_PUSH)


def _split(array: np.ndarray, first: bool) -> np.ndarray:
    """The first (fit) or second (score) half of the levels axis (axis 2), steps and levels flattened."""
    half = array.shape[2] // 2
    part = array[:, :, :half] if first else array[:, :, half:]
    return part.reshape(part.shape[0], -1, *part.shape[3:])


def _standardise(x_fit, x_score, weight):
    """Per-feature mean and std over the weighted fitting cells. x [N, HW, F], weight [N, HW]."""
    w = weight[..., None]
    total = jnp.maximum(w.sum(), 1.0)
    mean = (x_fit * w).sum((0, 1)) / total
    std = jnp.sqrt((((x_fit - mean) ** 2) * w).sum((0, 1)) / total) + 1e-6
    return (x_fit - mean) / std, (x_score - mean) / std


def _fit(loss_fn, params, key):
    del key  # full-batch and deterministic; kept for a stochastic variant
    optimizer = optax.adam(PROBE_LR)

    def step(carry, _):
        params, state = carry
        grads = jax.grad(loss_fn)(params)
        updates, state = optimizer.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), None, length=PROBE_STEPS)
    return params


def _next_push_logits(params, x, box):
    """[N, HW * 4] scores of (cell, direction), -inf off box cells."""
    logits = x @ params["w"] + params["b"]                          # [N, HW, 4]
    logits = jnp.where(box[..., None], logits, -jnp.inf)
    return logits.reshape(logits.shape[0], -1)


@jax.jit
@jax.vmap
def _fit_score(x_fit, box_fit, target_fit, ok_fit, within_fit, path_fit, floor_fit, x_score, box_score,
               target_score, ok_score, within_score, path_score, floor_score, key):
    # Standardised over box cells for the two box probes; box_path standardises over floor cells.
    xb_fit, xb_score = _standardise(x_fit, x_score, box_fit.astype(jnp.float32))
    f = xb_fit.shape[-1]

    def next_loss(p):
        logp = jax.nn.log_softmax(_next_push_logits(p, xb_fit, box_fit), axis=-1)
        picked = jnp.take_along_axis(logp, jnp.maximum(target_fit, 0)[:, None], axis=-1)[:, 0]
        n = jnp.maximum(ok_fit.sum(), 1)
        return -jnp.where(ok_fit, picked, 0.0).sum() / n + PROBE_L2 * (p["w"] ** 2).sum()

    next_params = _fit(next_loss, {"w": jnp.zeros((f, 4)), "b": jnp.zeros((4,))}, key)
    predicted = _next_push_logits(next_params, xb_score, box_score).argmax(-1)
    n_score = jnp.maximum(ok_score.sum(), 1)
    next_accuracy = jnp.where(ok_score, predicted == target_score, False).sum() / n_score

    pos_w = jnp.where(box_fit & within_fit, 0.5 / jnp.maximum((box_fit & within_fit).sum(), 1), 0.0)
    neg_w = jnp.where(box_fit & ~within_fit, 0.5 / jnp.maximum((box_fit & ~within_fit).sum(), 1), 0.0)

    def within_loss(p):
        logit = xb_fit @ p["w"] + p["b"]                              # [N, HW]
        return (pos_w * jax.nn.softplus(-logit) + neg_w * jax.nn.softplus(logit)).sum() \
            + PROBE_L2 * (p["w"] ** 2).sum()

    within_params = _fit(within_loss, {"w": jnp.zeros((f,)), "b": jnp.zeros(())}, key)
    said = (xb_score @ within_params["w"] + within_params["b"]) > 0
    pos = box_score & within_score
    neg = box_score & ~within_score
    tpr = (said & pos).sum() / jnp.maximum(pos.sum(), 1)
    tnr = (~said & neg).sum() / jnp.maximum(neg.sum(), 1)
    balanced = jnp.where((pos.sum() > 0) & (neg.sum() > 0), 0.5 * (tpr + tnr), jnp.nan)
    return next_accuracy, balanced, _path_probe(x_fit, path_fit, floor_fit, x_score, path_score,
                                                floor_score, key)


def _path_probe(x_fit, path_fit, floor_fit, x_score, path_score, floor_score, key):
    """box_path: balanced accuracy over the classes present in the scored half, nan if none."""
    x_fit, x_score = _standardise(x_fit, x_score, floor_fit.astype(jnp.float32))
    onehot_fit = jax.nn.one_hot(path_fit, PATH_CLASSES) * floor_fit[..., None]      # [N, HW, C]
    count = onehot_fit.sum((0, 1))
    class_weight = jnp.where(count > 0, 1.0 / jnp.maximum(count, 1.0), 0.0) / jnp.maximum((count > 0).sum(), 1)

    def loss(p):
        logp = jax.nn.log_softmax(x_fit @ p["w"] + p["b"], axis=-1)
        return -(onehot_fit * logp * class_weight).sum() + PROBE_L2 * (p["w"] ** 2).sum()

    f = x_fit.shape[-1]
    params = _fit(loss, {"w": jnp.zeros((f, PATH_CLASSES)), "b": jnp.zeros((PATH_CLASSES,))}, key)
    guess = jax.nn.one_hot((x_score @ params["w"] + params["b"]).argmax(-1), PATH_CLASSES)
    truth = jax.nn.one_hot(path_score, PATH_CLASSES) * floor_score[..., None]
    support = truth.sum((0, 1))
    recall = (truth * guess).sum((0, 1)) / jnp.maximum(support, 1)
    present = (support > 0).sum()
    return jnp.where(present > 0, jnp.where(support > 0, recall, 0.0).sum() / jnp.maximum(present, 1), jnp.nan)


def _inputs(features: np.ndarray, labels: dict[str, np.ndarray], first: bool):
    s, t, lv, f, h, w = features.shape
    x = features.reshape(s, t, lv, f, h * w).transpose(0, 1, 2, 4, 3)  # [S, T, L, HW, F]
    box = labels["box"]
    target = labels["next_cell"] * 4 + labels["next_dir"]
    ok = labels["valid"] & (labels["next_cell"] >= 0)
    return tuple(_split(a, first) for a in (x, box, target, ok, labels["within"], labels["path"], labels["floor"]))


def fit_and_score(features: np.ndarray, labels: dict[str, np.ndarray], keys) -> dict[str, np.ndarray]:
    """{probe name: [S] score on the held-out half of the levels}. features [S, T, L, F, H, W]."""
    fit = _inputs(np.asarray(features, np.float32), labels, True)
    score = _inputs(np.asarray(features, np.float32), labels, False)
    next_accuracy, balanced, path_balanced = _fit_score(*fit, *score, keys)
    return {"next_push": np.asarray(next_accuracy), "push_within_k": np.asarray(balanced),
            "box_path": np.asarray(path_balanced)}


def chance(labels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{probe name: [S] chance score on the scored half}: a uniform guess over (box, direction)
    pairs for next_push, 0.5 for the balanced push_within_k."""
    _, box, _, ok, *_ = _inputs(np.zeros((*labels["box"].shape[:3], 1, 1, labels["box"].shape[3])), labels, False)
    boxes = box.sum(-1)
    per = np.where(ok, 1.0 / np.maximum(4 * boxes, 1), 0.0)
    return {"next_push": per.sum(1) / np.maximum(ok.sum(1), 1), "push_within_k": np.full(box.shape[0], 0.5),
            "box_path": np.full(box.shape[0], 1.0 / PATH_CLASSES)}
