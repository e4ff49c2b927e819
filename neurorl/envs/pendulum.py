"""Pendulum-v1 in JAX, step-for-step equal to ``gymnasium.envs.classic_control.PendulumEnv``.

A uniform rod (mass m, length l, pivot at one end) swung up by a torque u; with
``u = clip(u, -max_torque, max_torque)`` and semi-implicit Euler (gymnasium's update)::

    thdot' = clip(thdot + (3 g / (2 l) sin(th) + 3 / (m l^2) u) dt, -max_speed, max_speed)
    th'    = th + thdot' dt

The coefficients ``3 g / (2 l)`` and ``3 / (m l^2)`` (uniform rod about its end, I = m l^2 / 3)
are derived inside :meth:`Pendulum.step_env`. Reward ``-(angle_normalize(th)^2 + 0.1 thdot^2 +
0.001 u^2)`` on the PRE-step state; never terminates; truncated at 200 steps.

References:
    Gymnasium ``Pendulum-v1`` (classic inverted-pendulum swing-up; e.g. Doya, K. (2000).
    Reinforcement learning in continuous time and space. Neural Computation 12(1), 219-245).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from neurorl.envs import spaces
from neurorl.envs.base import (
    FINITE,
    POSITIVE,
    POSITIVE_INT,
    Array,
    Environment,
    EnvParamsBase,
    StepResult,
)


@struct.dataclass
class PendulumParams(EnvParamsBase):
    """Pendulum constants (gymnasium defaults) and episode limit.

    Attributes:
        max_speed: |theta_dot| bound (rad/s).
        max_torque: |u| bound (N m); also the action-space bound.
        dt: time step (s).
        g: gravitational acceleration (m/s^2).
        m: rod mass (kg).
        l: rod length (m).
        reset_theta: initial theta ~ U(-reset_theta, reset_theta) (rad; pi).
        reset_theta_dot: initial theta_dot ~ U(-reset_theta_dot, reset_theta_dot) (rad/s; 1).
        max_steps_in_episode: time limit (steps; 200).
    """

    max_speed: Any = 8.0
    max_torque: Any = 2.0
    dt: Any = 0.05
    g: Any = 10.0
    m: Any = 1.0
    l: Any = 1.0  # noqa: E741 (gymnasium's name)
    reset_theta: Any = math.pi
    reset_theta_dot: Any = 1.0
    max_steps_in_episode: Any = 200

    env_id = "Pendulum-v1"
    constraints = {
        "max_speed": POSITIVE,
        "max_torque": POSITIVE,
        "dt": POSITIVE,
        "g": FINITE,
        "m": POSITIVE,
        "l": POSITIVE,
        "reset_theta": POSITIVE,
        "reset_theta_dot": POSITIVE,
        "max_steps_in_episode": POSITIVE_INT,
    }


@struct.dataclass
class PendulumState:
    """Angle ``theta`` (rad, 0 = upright, not wrapped), ``theta_dot`` (rad/s), ``time`` (steps)."""

    theta: Array
    theta_dot: Array
    time: Array


def angle_normalize(x: Array) -> Array:
    """Wrap an angle into [-pi, pi) (gymnasium's ``angle_normalize``)."""
    return (x + jnp.pi) % (2 * jnp.pi) - jnp.pi


class Pendulum(Environment):
    """Pendulum-v1 (gymnasium semantics, traced params). Action: torque, shape (1,) float."""

    id = "Pendulum-v1"
    params_cls = PendulumParams

    def reset_env(self, key: Array, params: PendulumParams) -> tuple[Array, PendulumState]:
        """theta ~ U(-reset_theta, reset_theta), theta_dot ~ U(-reset_theta_dot, ...), time 0."""
        high = jnp.stack([params.reset_theta, params.reset_theta_dot]).astype(jnp.float32)
        s = jax.random.uniform(key, (2,), jnp.float32, -high, high)
        state = PendulumState(s[0], s[1], jnp.zeros((), jnp.int32))
        return self.get_obs(state), state

    def step_env(
        self, key: Array, state: PendulumState, action: Any, params: PendulumParams
    ) -> StepResult:
        """One semi-implicit Euler step; no auto-reset."""
        del key
        g, m, length, dt = params.g, params.m, params.l, params.dt
        u = jnp.reshape(jnp.asarray(action, jnp.float32), (-1,))[0]
        u = jnp.clip(u, -params.max_torque, params.max_torque)
        th, thdot = state.theta, state.theta_dot
        costs = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * u**2
        # Derived coefficients of the uniform rod, recomputed from the traced params.
        new_thdot = thdot + (3 * g / (2 * length) * jnp.sin(th) + 3.0 / (m * length**2) * u) * dt
        new_thdot = jnp.clip(new_thdot, -params.max_speed, params.max_speed)
        new_th = th + new_thdot * dt
        time = state.time + 1
        new = PendulumState(new_th.astype(jnp.float32), new_thdot.astype(jnp.float32), time)
        reward = (-costs).astype(jnp.float32)
        terminated = jnp.zeros((), bool)
        truncated = self.truncation(time, params)
        return self.get_obs(new), new, reward, terminated, truncated, {}

    def get_obs(self, state: PendulumState) -> Array:
        """``[cos theta, sin theta, theta_dot]`` (float32)."""
        return jnp.stack([jnp.cos(state.theta), jnp.sin(state.theta), state.theta_dot]).astype(
            jnp.float32
        )

    def observation_space(self, params: PendulumParams | None = None) -> spaces.Box:
        """Box [-1, -1, -max_speed] .. [1, 1, max_speed]."""
        p = params if params is not None else self.default_params()
        one = jnp.ones((), jnp.float32)
        high = jnp.stack([one, one, p.max_speed]).astype(jnp.float32)
        return spaces.Box(-high, high, (3,), jnp.float32)

    def action_space(self, params: PendulumParams | None = None) -> spaces.Box:
        """Box [-max_torque, max_torque] of shape (1,)."""
        p = params if params is not None else self.default_params()
        return spaces.Box(-p.max_torque, p.max_torque, (1,), jnp.float32)
