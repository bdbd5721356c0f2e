"""Pure-JAX environments (gymnax API). Envs never import agents, channels or experiments."""

from innerlab.envs.objectworld import ACTION_NAMES, EnvParams, EnvState, ObjectWorld, make_params

__all__ = ["ACTION_NAMES", "EnvParams", "EnvState", "ObjectWorld", "make_params"]
