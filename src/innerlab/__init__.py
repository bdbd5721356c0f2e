"""innerlab: inner-alignment experiments in pure JAX.

Importing the package sets an XLA CPU flag before jax is first imported (see `_xla`).
Heavy modules (jax, flax, gymnax) are imported lazily by the subpackages that need them,
so `innerlab list` and `--help` stay fast.
"""

from innerlab import _xla

_xla.configure()

__version__ = "0.1.0"


def load_agent(run_dir, condition=None, seed=None, name="agent", member=None, with_env=True):
    """A trained agent from a run directory (see `innerlab.loading.load_agent`)."""
    from innerlab.loading import load_agent as load

    return load(run_dir, condition=condition, seed=seed, name=name, member=member, with_env=with_env)
