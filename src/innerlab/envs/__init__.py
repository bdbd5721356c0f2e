"""Pure-JAX environments (gymnax API). Envs never import agents, channels or experiments."""

from innerlab.envs.objectworld import ACTION_NAMES, EnvParams, EnvState, ObjectWorld, make_params
from innerlab.envs.persistent import InvestWorld, MyopiaPD, PersistentEnv, swap_persistent
from innerlab.envs.tabular import TabularMDP, state_batch, tabulate

__all__ = ["ACTION_NAMES", "EnvParams", "EnvState", "InvestWorld", "MyopiaPD", "ObjectWorld", "PersistentEnv",
           "TabularMDP", "make_params", "state_batch", "swap_persistent", "tabulate"]
