"""Acrobot-v1 in JAX, step-for-step equal to ``gymnasium.envs.classic_control.AcrobotEnv``.

Two-link underactuated pendulum; torque only on the joint between the links. Equations of motion
from Sutton & Barto (2018, "book" variant, gymnasium's default ``book_or_nips="book"``), with
the derived inertia terms ``d1, d2, phi1, phi2`` computed inside :meth:`Acrobot.step_env` from
the traced params, integrated over one ``dt`` with a single classical Runge-Kutta-4 step (what
gymnasium's ``rk4(derivs, y0, [0, dt])`` does). After integration the angles are wrapped into
[-pi, pi] and the angular velocities clipped to +-max_vel_1 / +-max_vel_2.

Reward -1 per step, 0 on the terminating step; terminated when the free end is higher than one
link length above the pivot, ``-cos(theta1) - cos(theta1 + theta2) > 1``; truncated at 500.

References:
    Sutton, R. S. (1996). Generalization in reinforcement learning: successful examples using
    sparse coarse coding. NIPS 8.
    Sutton, R. S. & Barto, A. G. (2018). Reinforcement Learning: An Introduction, 2nd ed.
    (acrobot equations of motion, as implemented in gymnasium's ``AcrobotEnv._dsdt``).
    Spong, M. W. (1995). The swing up control problem for the Acrobot. IEEE Control Systems.
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
    NONNEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    Array,
    Environment,
    EnvParamsBase,
    StepResult,
)
from neurorl.errors import ConfigError


@struct.dataclass
class AcrobotParams(EnvParamsBase):
    """Acrobot physical constants (gymnasium defaults) and episode limit.

    Attributes:
        dt: integration interval per step (s).
        link_length_1: length of link 1 (m); enters the dynamics.
        link_length_2: length of link 2 (m); only used for rendering in gymnasium.
        link_mass_1: mass of link 1 (kg).
        link_mass_2: mass of link 2 (kg).
        link_com_pos_1: position of the centre of mass of link 1 (m from its pivot).
        link_com_pos_2: position of the centre of mass of link 2 (m from its pivot).
        link_moi: moment of inertia of each link about its centre of mass (kg m^2).
        max_vel_1: |theta1_dot| bound (rad/s, 4 pi).
        max_vel_2: |theta2_dot| bound (rad/s, 9 pi).
        gravity: g (m/s^2; hard-coded 9.8 in gymnasium).
        torque_mag: available torques are (-torque_mag, 0, +torque_mag) (N m).
        reset_bound: initial state ~ U(-reset_bound, reset_bound)^4 (gymnasium: 0.1).
        max_steps_in_episode: time limit (steps; 500).
        book_or_nips: "book" (default, with the theta1_dot^2 term) or "nips" (static).
    """

    dt: Any = 0.2
    link_length_1: Any = 1.0
    link_length_2: Any = 1.0
    link_mass_1: Any = 1.0
    link_mass_2: Any = 1.0
    link_com_pos_1: Any = 0.5
    link_com_pos_2: Any = 0.5
    link_moi: Any = 1.0
    max_vel_1: Any = 4 * math.pi
    max_vel_2: Any = 9 * math.pi
    gravity: Any = 9.8
    torque_mag: Any = 1.0
    reset_bound: Any = 0.1
    max_steps_in_episode: Any = 500
    book_or_nips: str = struct.field(pytree_node=False, default="book")

    env_id = "Acrobot-v1"
    constraints = {
        "dt": POSITIVE,
        "link_length_1": POSITIVE,
        "link_length_2": POSITIVE,
        "link_mass_1": POSITIVE,
        "link_mass_2": POSITIVE,
        "link_com_pos_1": POSITIVE,
        "link_com_pos_2": POSITIVE,
        "link_moi": POSITIVE,
        "max_vel_1": POSITIVE,
        "max_vel_2": POSITIVE,
        "gravity": FINITE,
        "torque_mag": NONNEGATIVE,
        "reset_bound": POSITIVE,
        "max_steps_in_episode": POSITIVE_INT,
    }

    def _validate_extra(self, prefix: str) -> None:
        if self.book_or_nips not in ("book", "nips"):
            raise ConfigError(f"{prefix}.book_or_nips", self.book_or_nips, "'book' or 'nips'")


@struct.dataclass
class AcrobotState:
    """Joint angles theta1, theta2 (rad), angular velocities (rad/s), and ``time`` (steps)."""

    theta1: Array
    theta2: Array
    dtheta1: Array
    dtheta2: Array
    time: Array


def _wrap(x: Array, m: float, big_m: float) -> Array:
    """gymnasium's ``wrap``: add/subtract (M - m) until x is in [m, M] (closed form of its loop)."""
    diff = big_m - m
    n_down = jnp.ceil((x - big_m) / diff)
    n_up = jnp.ceil((m - x) / diff)
    return jnp.where(x > big_m, x - n_down * diff, jnp.where(x < m, x + n_up * diff, x))


class Acrobot(Environment):
    """Acrobot-v1 (gymnasium semantics, traced params).

    Actions: 0 -> -torque_mag, 1 -> 0, 2 -> +torque_mag (on the joint between the links).
    """

    id = "Acrobot-v1"
    params_cls = AcrobotParams

    def reset_env(self, key: Array, params: AcrobotParams) -> tuple[Array, AcrobotState]:
        """Uniform initial angles and velocities in [-reset_bound, reset_bound], time 0."""
        b = jnp.asarray(params.reset_bound, jnp.float32)
        s = jax.random.uniform(key, (4,), jnp.float32, -b, b)
        state = AcrobotState(s[0], s[1], s[2], s[3], jnp.zeros((), jnp.int32))
        return self.get_obs(state), state

    def _dsdt(self, s: Array, torque: Array, params: AcrobotParams) -> Array:
        """Time derivative of (theta1, theta2, dtheta1, dtheta2) (gymnasium ``_dsdt``)."""
        m1, m2 = params.link_mass_1, params.link_mass_2
        l1 = params.link_length_1
        lc1, lc2 = params.link_com_pos_1, params.link_com_pos_2
        i1 = i2 = params.link_moi
        g = params.gravity
        theta1, theta2, dtheta1, dtheta2 = s[0], s[1], s[2], s[3]
        # Derived inertia / potential terms: recomputed from the traced params on every call.
        d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * jnp.cos(theta2)) + i1 + i2
        d2 = m2 * (lc2**2 + l1 * lc2 * jnp.cos(theta2)) + i2
        phi2 = m2 * lc2 * g * jnp.cos(theta1 + theta2 - jnp.pi / 2.0)
        phi1 = (
            -m2 * l1 * lc2 * dtheta2**2 * jnp.sin(theta2)
            - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * jnp.sin(theta2)
            + (m1 * lc1 + m2 * l1) * g * jnp.cos(theta1 - jnp.pi / 2)
            + phi2
        )
        if params.book_or_nips == "nips":
            ddtheta2 = (torque + d2 / d1 * phi1 - phi2) / (m2 * lc2**2 + i2 - d2**2 / d1)
        else:
            ddtheta2 = (
                torque + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * jnp.sin(theta2) - phi2
            ) / (m2 * lc2**2 + i2 - d2**2 / d1)
        ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return jnp.stack([dtheta1, dtheta2, ddtheta1, ddtheta2])

    def step_env(
        self, key: Array, state: AcrobotState, action: Any, params: AcrobotParams
    ) -> StepResult:
        """One RK4 step of length dt; no auto-reset."""
        del key
        torques = jnp.stack([-params.torque_mag, 0.0 * params.torque_mag, params.torque_mag])
        torque = torques[jnp.asarray(action, jnp.int32)]
        y0 = jnp.stack([state.theta1, state.theta2, state.dtheta1, state.dtheta2])
        dt = params.dt
        dt2 = dt / 2.0
        k1 = self._dsdt(y0, torque, params)
        k2 = self._dsdt(y0 + dt2 * k1, torque, params)
        k3 = self._dsdt(y0 + dt2 * k2, torque, params)
        k4 = self._dsdt(y0 + dt * k3, torque, params)
        y = (y0 + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)).astype(jnp.float32)
        time = state.time + 1
        new = AcrobotState(
            theta1=_wrap(y[0], -math.pi, math.pi),
            theta2=_wrap(y[1], -math.pi, math.pi),
            dtheta1=jnp.clip(y[2], -params.max_vel_1, params.max_vel_1),
            dtheta2=jnp.clip(y[3], -params.max_vel_2, params.max_vel_2),
            time=time,
        )
        terminated = -jnp.cos(new.theta1) - jnp.cos(new.theta2 + new.theta1) > 1.0
        reward = jnp.where(terminated, 0.0, -1.0).astype(jnp.float32)
        truncated = self.truncation(time, params)
        return self.get_obs(new), new, reward, terminated, truncated, {}

    def get_obs(self, state: AcrobotState) -> Array:
        """``[cos th1, sin th1, cos th2, sin th2, dth1, dth2]`` (float32)."""
        return jnp.stack(
            [
                jnp.cos(state.theta1),
                jnp.sin(state.theta1),
                jnp.cos(state.theta2),
                jnp.sin(state.theta2),
                state.dtheta1,
                state.dtheta2,
            ]
        ).astype(jnp.float32)

    def observation_space(self, params: AcrobotParams | None = None) -> spaces.Box:
        """Box of shape (6,): cos/sin in [-1, 1], velocities in +-max_vel."""
        p = params if params is not None else self.default_params()
        one = jnp.ones((), jnp.float32)
        high = jnp.stack([one, one, one, one, p.max_vel_1, p.max_vel_2]).astype(jnp.float32)
        return spaces.Box(-high, high, (6,), jnp.float32)

    def action_space(self, params: AcrobotParams | None = None) -> spaces.Discrete:
        """Discrete(3): torque -torque_mag, 0, +torque_mag."""
        del params
        return spaces.Discrete(3)
