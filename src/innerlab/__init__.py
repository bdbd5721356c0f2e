"""innerlab: inner-alignment experiments in pure JAX.

Importing the package sets an XLA CPU flag before jax is first imported (see `_xla`).
Heavy modules (jax, flax, gymnax) are imported lazily by the subpackages that need them,
so `innerlab list` and `--help` stay fast.
"""

from innerlab import _xla

_xla.configure()

__version__ = "0.1.0"
