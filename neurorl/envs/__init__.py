"""JAX-native classic-control environments with traced parameters (gymnax-style API).

``make(env_id, **param_overrides) -> (env, params)``; ``ENVS`` maps gymnasium ids to classes.
Importing this package also registers ``neurorl/<id>`` with Gymnasium (idempotent).
"""

from __future__ import annotations

from typing import Any

from neurorl.envs.acrobot import Acrobot, AcrobotParams, AcrobotState
from neurorl.envs.base import Environment, EnvParamsBase
from neurorl.envs.cartpole import CartPole, CartPoleParams, CartPoleState
from neurorl.envs.mountain_car import (
    MountainCar,
    MountainCarContinuous,
    MountainCarContinuousParams,
    MountainCarParams,
    MountainCarState,
)
from neurorl.envs.pendulum import Pendulum, PendulumParams, PendulumState
from neurorl.errors import lookup

ENVS: dict[str, type[Environment]] = {
    "CartPole-v1": CartPole,
    "Acrobot-v1": Acrobot,
    "MountainCar-v0": MountainCar,
    "MountainCarContinuous-v0": MountainCarContinuous,
    "Pendulum-v1": Pendulum,
}


def make_params(env_id: str, **param_overrides: Any) -> Any:
    """Validated params of ``env_id`` with some fields changed (host side, before any trace).

    Raises:
        ConfigError: unknown env id (closest name), unknown field (closest name), or a
            physically invalid value (negative mass or length, zero time step, ...).
    """
    env_cls = lookup(ENVS, env_id, "environment", field="env_id")
    return env_cls.params_cls.create(**param_overrides)


def make(env_id: str, **param_overrides: Any) -> tuple[Environment, Any]:
    """Build an environment and its (validated) params.

    Args:
        env_id: a gymnasium id, e.g. ``"CartPole-v1"`` (case-insensitive; a ``neurorl/`` prefix
            is accepted), or ``"gymnax:<Id>"`` for one of gymnax's JAX envs
            (:mod:`neurorl.envs.gymnax_env`).
        **param_overrides: EnvParams fields to change, e.g. ``length=1.0``.

    Returns:
        ``(env, params)``.

    Raises:
        ConfigError: unknown id (with the closest valid name) or invalid params.
    """
    if isinstance(env_id, str) and env_id.startswith("neurorl/"):
        env_id = env_id[len("neurorl/") :]
    if isinstance(env_id, str) and env_id.startswith("gymnax:"):  # gymnax's JAX envs
        from neurorl.envs.gymnax_env import make_gymnax

        return make_gymnax(env_id, **param_overrides)
    env_cls = lookup(ENVS, env_id, "environment", field="env_id")
    params = env_cls.params_cls.create(**param_overrides)
    return env_cls(), params


# Importing neurorl.envs registers "neurorl/<id>" with gymnasium (idempotent).
from neurorl.envs.gym_registration import NeurorlGymEnv, register_envs  # noqa: E402

register_envs()

__all__ = [
    "ENVS",
    "Acrobot",
    "AcrobotParams",
    "AcrobotState",
    "CartPole",
    "CartPoleParams",
    "CartPoleState",
    "MountainCar",
    "MountainCarContinuous",
    "MountainCarContinuousParams",
    "MountainCarParams",
    "MountainCarState",
    "Pendulum",
    "PendulumParams",
    "PendulumState",
    "EnvParamsBase",
    "NeurorlGymEnv",
    "Environment",
    "make",
    "make_params",
    "register_envs",
]
