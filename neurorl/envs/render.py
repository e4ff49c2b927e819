"""Rendering through Gymnasium's own classic-control renderers.

neurorl draws nothing itself: :class:`ClassicRenderer` keeps one instance of gymnasium's env class
for the same id (``CartPoleEnv``, ``AcrobotEnv``, ...), copies our state -- and the physical
parameters its drawing reads (CartPole's ``length`` and ``x_threshold``, Acrobot's link lengths,
the hill's bounds and goal) -- into it, and calls its ``render()``. A frame is therefore pixel
for pixel gymnasium's frame of the same state (``tests/envs/test_render.py``), including the
shifted pole length of a shifted CartPole.

Rendering needs pygame (``pip install "neurorl[render]"``); without it :class:`ClassicRenderer`
raises a one-line :class:`~neurorl.errors.ConfigError` naming that extra (instead of
gymnasium's ``DependencyNotInstalled`` at the first frame).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from neurorl.errors import ConfigError, import_optional

_CLASSES = {
    "CartPole-v1": "gymnasium.envs.classic_control.cartpole:CartPoleEnv",
    "Acrobot-v1": "gymnasium.envs.classic_control.acrobot:AcrobotEnv",
    "MountainCar-v0": "gymnasium.envs.classic_control.mountain_car:MountainCarEnv",
    "MountainCarContinuous-v0": (
        "gymnasium.envs.classic_control.continuous_mountain_car:Continuous_MountainCarEnv"
    ),
    "Pendulum-v1": "gymnasium.envs.classic_control.pendulum:PendulumEnv",
}


def _decimal(x: Any) -> float:
    """A float32 param as the shortest decimal that rounds to it (0.45f -> 0.45): the value the
    user wrote, so default params draw exactly gymnasium's (float64) geometry."""
    return float(str(np.float32(np.asarray(x))))


def _cartpole(g: Any, p: Any, last_action: Any) -> None:
    g.x_threshold = _decimal(p.x_threshold)
    g.length = _decimal(p.length)


def _acrobot(g: Any, p: Any, last_action: Any) -> None:
    g.LINK_LENGTH_1 = _decimal(p.link_length_1)
    g.LINK_LENGTH_2 = _decimal(p.link_length_2)


def _hill(g: Any, p: Any, last_action: Any) -> None:
    g.min_position = _decimal(p.min_position)
    g.max_position = _decimal(p.max_position)
    g.goal_position = _decimal(p.goal_position)


def _pendulum(g: Any, p: Any, last_action: Any) -> None:
    # gymnasium draws the applied (clipped) torque as an arrow; None before the first step
    if last_action is None:
        g.last_u = None
    else:
        u = float(np.reshape(np.asarray(last_action, np.float64), (-1,))[0])
        g.last_u = min(max(u, -_decimal(p.max_torque)), _decimal(p.max_torque))


_SETTERS: dict[str, Callable[[Any, Any, Any], None]] = {
    "CartPole-v1": _cartpole,
    "Acrobot-v1": _acrobot,
    "MountainCar-v0": _hill,
    "MountainCarContinuous-v0": _hill,
    "Pendulum-v1": _pendulum,
}


def gymnasium_class(env_id: str) -> type:
    """Gymnasium's own env class for a neurorl classic-control id."""
    from gymnasium.envs.registration import load_env_creator

    if env_id not in _CLASSES:
        raise ConfigError("render", env_id, f"one of the classic-control ids {sorted(_CLASSES)}")
    return load_env_creator(_CLASSES[env_id])


def render_fps(env_id: str) -> int:
    """Gymnasium's ``metadata["render_fps"]`` for ``env_id``."""
    return int(gymnasium_class(env_id).metadata["render_fps"])


class ClassicRenderer:
    """Draws a neurorl state with gymnasium's renderer of the same env.

    Args:
        env_id: neurorl / gymnasium classic-control id, e.g. ``"CartPole-v1"``.
        render_mode: ``"rgb_array"`` (returns frames) or ``"human"`` (a pygame window).
    """

    def __init__(self, env_id: str, render_mode: str) -> None:
        if render_mode not in ("rgb_array", "human"):
            raise ConfigError("render_mode", render_mode, "None, 'rgb_array' or 'human'")
        import_optional("pygame", "render", "render_mode", render_mode)
        self.env_id = env_id
        self.gym_env = gymnasium_class(env_id)(render_mode=render_mode)
        self._set = _SETTERS[env_id]

    def render(self, state: Any, params: Any, last_action: Any = None) -> np.ndarray | None:
        """Render ``state`` (the JAX state's float fields in order) under ``params``.

        Args:
            state: sequence of floats, e.g. CartPole's ``[x, x_dot, theta, theta_dot]``.
            params: the EnvParams in effect (or a namespace with the same fields).
            last_action: the last action (Pendulum draws its torque).

        Returns:
            An ``[H, W, 3]`` uint8 frame (``rgb_array``) or ``None`` (``human``).
        """
        g = self.gym_env
        self._set(g, params, last_action)
        g.state = np.asarray(state, dtype=np.float64)
        return g.render()

    def close(self) -> None:
        self.gym_env.close()


__all__ = ["ClassicRenderer", "gymnasium_class", "render_fps"]
