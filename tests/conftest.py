"""Shared test set-up: import innerlab first so its XLA CPU flag is set before jax loads."""

import innerlab  # noqa: F401
