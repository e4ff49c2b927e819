"""CartPole-v1 in JAX, step-for-step equal to ``gymnasium.envs.classic_control.CartPoleEnv``.

Dynamics (Florian 2007, corrected Barto-Sutton-Anderson 1983 equations, frictionless), with
``M = masscart + masspole`` (total mass) and ``m l = masspole * length`` (pole mass x half
length), both DERIVED inside :meth:`CartPole.step_env` from the traced params::

    temp      = (F + m l thetadot^2 sin(theta)) / M
    thetaacc  = (g sin(theta) - cos(theta) temp) / (l (4/3 - masspole cos^2(theta) / M))
    xacc      = temp - m l thetaacc cos(theta) / M

integrated with explicit Euler (gymnasium's default ``kinematics_integrator="euler"``) or
semi-implicit Euler, time step ``tau`` seconds. Reward +1 every step including the terminating
one; terminated when ``|x| > x_threshold`` or ``|theta| > theta_threshold_radians``; truncated at
``max_steps_in_episode`` (500 for v1).

Gymnasium keeps the state in float64; here it is float32 (parity tests: relative error < 1e-5
per step).

References:
    Barto, Sutton & Anderson (1983). Neuronlike adaptive elements that can solve difficult
    learning control problems. IEEE Trans. SMC 13(5), 834-846.
    Florian, R. V. (2007). Correct equations for the dynamics of the cart-pole system.
    (Eqs. 23-24 with zero friction.)
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from neurorl.envs import spaces
from neurorl.envs.base import (
    POSITIVE,
    POSITIVE_INT,
    Array,
    Environment,
    EnvParamsBase,
    StepResult,
)
from neurorl.errors import ConfigError


@struct.dataclass
class CartPoleParams(EnvParamsBase):
    """CartPole physical constants (gymnasium defaults) and episode limit.

    Attributes:
        gravity: gravitational acceleration g (m/s^2).
        masscart: cart mass (kg).
        masspole: pole mass (kg).
        length: HALF the pole length l (m), as in gymnasium.
        force_mag: magnitude of the push force F (N).
        tau: integration time step (s).
        theta_threshold_radians: |theta| beyond which the episode terminates (rad, 12 deg).
        x_threshold: |x| beyond which the episode terminates (m).
        reset_bound: initial state ~ U(-reset_bound, reset_bound)^4 (gymnasium: 0.05).
        max_steps_in_episode: time limit (steps; 500 for v1).
        kinematics_integrator: "euler" (gymnasium default) or "semi-implicit" (static).
    """

    gravity: Any = 9.8
    masscart: Any = 1.0
    masspole: Any = 0.1
    length: Any = 0.5
    force_mag: Any = 10.0
    tau: Any = 0.02
    theta_threshold_radians: Any = 12 * 2 * math.pi / 360
    x_threshold: Any = 2.4
    reset_bound: Any = 0.05
    max_steps_in_episode: Any = 500
    kinematics_integrator: str = struct.field(pytree_node=False, default="euler")

    env_id = "CartPole-v1"
    constraints = {
        "gravity": POSITIVE,
        "masscart": POSITIVE,
        "masspole": POSITIVE,
        "length": POSITIVE,
        "force_mag": POSITIVE,
        "tau": POSITIVE,
        "theta_threshold_radians": POSITIVE,
        "x_threshold": POSITIVE,
        "reset_bound": POSITIVE,
        "max_steps_in_episode": POSITIVE_INT,
    }

    def _validate_extra(self, prefix: str) -> None:
        if self.kinematics_integrator not in ("euler", "semi-implicit"):
            raise ConfigError(
                f"{prefix}.kinematics_integrator",
                self.kinematics_integrator,
                "'euler' or 'semi-implicit'",
            )


@struct.dataclass
class CartPoleState:
    """Cart position x (m), velocity x_dot (m/s), pole angle theta (rad), angular velocity
    theta_dot (rad/s), and ``time`` (steps taken in this episode)."""

    x: Array
    x_dot: Array
    theta: Array
    theta_dot: Array
    time: Array


class CartPole(Environment):
    """CartPole-v1 (gymnasium semantics, traced params). Actions: 0 push left, 1 push right."""

    id = "CartPole-v1"
    params_cls = CartPoleParams

    def reset_env(self, key: Array, params: CartPoleParams) -> tuple[Array, CartPoleState]:
        """Uniform initial state in [-reset_bound, reset_bound]^4, time 0."""
        b = jnp.asarray(params.reset_bound, jnp.float32)
        s = jax.random.uniform(key, (4,), jnp.float32, -b, b)
        state = CartPoleState(s[0], s[1], s[2], s[3], jnp.zeros((), jnp.int32))
        return self.get_obs(state), state

    def step_env(
        self, key: Array, state: CartPoleState, action: Any, params: CartPoleParams
    ) -> StepResult:
        """One Euler step of the cart-pole equations; no auto-reset."""
        del key
        g, mc, mp, half_len = params.gravity, params.masscart, params.masspole, params.length
        # Derived here, never stored: shifted masses/lengths stay consistent.
        total_mass = mp + mc
        polemass_length = mp * half_len
        force = jnp.where(jnp.asarray(action) == 1, params.force_mag, -params.force_mag)
        cos, sin = jnp.cos(state.theta), jnp.sin(state.theta)
        temp = (force + polemass_length * jnp.square(state.theta_dot) * sin) / total_mass
        thetaacc = (g * sin - cos * temp) / (
            half_len * (4.0 / 3.0 - mp * jnp.square(cos) / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * cos / total_mass
        tau = params.tau
        if params.kinematics_integrator == "euler":
            x = state.x + tau * state.x_dot
            x_dot = state.x_dot + tau * xacc
            theta = state.theta + tau * state.theta_dot
            theta_dot = state.theta_dot + tau * thetaacc
        else:
            x_dot = state.x_dot + tau * xacc
            x = state.x + tau * x_dot
            theta_dot = state.theta_dot + tau * thetaacc
            theta = state.theta + tau * theta_dot
        f32 = lambda v: jnp.asarray(v, jnp.float32)
        time = state.time + 1
        new = CartPoleState(f32(x), f32(x_dot), f32(theta), f32(theta_dot), time)
        terminated = (
            (new.x < -params.x_threshold)
            | (new.x > params.x_threshold)
            | (new.theta < -params.theta_threshold_radians)
            | (new.theta > params.theta_threshold_radians)
        )
        reward = jnp.ones((), jnp.float32)
        truncated = self.truncation(time, params)
        return self.get_obs(new), new, reward, terminated, truncated, {}

    def get_obs(self, state: CartPoleState) -> Array:
        """Observation ``[x, x_dot, theta, theta_dot]`` (float32)."""
        return jnp.stack([state.x, state.x_dot, state.theta, state.theta_dot]).astype(jnp.float32)

    def observation_space(self, params: CartPoleParams | None = None) -> spaces.Box:
        """Box of shape (4,), bounds ``[2 x_threshold, inf, 2 theta_threshold, inf]``."""
        p = params if params is not None else self.default_params()
        inf = jnp.float32(jnp.inf)
        high = jnp.stack([2 * p.x_threshold, inf, 2 * p.theta_threshold_radians, inf])
        high = high.astype(jnp.float32)
        return spaces.Box(-high, high, (4,), jnp.float32)

    def action_space(self, params: CartPoleParams | None = None) -> spaces.Discrete:
        """Discrete(2): 0 push left, 1 push right."""
        del params
        return spaces.Discrete(2)
