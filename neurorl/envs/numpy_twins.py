"""Host-side (pure Python / numpy) twins of the JAX classic-control transitions.

``gymnasium.make("neurorl/CartPole-v1")`` steps ONE environment at a time from Python; a jitted
JAX call per step costs tens of microseconds of dispatch and device-to-host copies, several times
gymnasium's own numpy env. The single-env Gymnasium wrapper therefore steps these twins: the same
equations as each env's ``step_env`` (``neurorl/envs/<env>.py``), written on Python floats, with
the state rounded to float32 after every step exactly where the JAX env stores float32. Resets draw
the initial state from gymnasium's seeded ``np_random`` with the same calls as gymnasium's own env
(so a seed gives gymnasium's initial state, rounded to float32), and
``tests/envs/test_numpy_twins.py`` checks every twin against its JAX env step for step (same
state in, same state / observation / reward / flags out) over random states, actions and shifted
parameters.

Each twin is three plain functions ``reset(rng, p) -> s``,
``step(s, action, p) -> (s_new, reward, terminated)`` and ``obs(s) -> np.ndarray`` over ``s``, the
list of the JAX state's float fields in dataclass order (``time`` excluded: the wrapper counts
it), and ``p``, a :class:`types.SimpleNamespace` of the EnvParams fields as float32-valued Python
floats (:func:`host_params`).
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

_F32 = np.float32


def f32(x: float) -> float:
    """Round a Python float to the nearest float32 (what the JAX env stores)."""
    return float(_F32(x))


def host_params(params: Any) -> types.SimpleNamespace:
    """EnvParams -> namespace of Python floats (float32-rounded) / ints / static strings."""
    out = {}
    for f in dataclasses.fields(params):
        v = getattr(params, f.name)
        if isinstance(v, str):
            out[f.name] = v
        else:
            a = np.asarray(v)
            out[f.name] = int(a) if np.issubdtype(a.dtype, np.integer) else f32(float(a))
    return types.SimpleNamespace(**out)


def _uniform(rng: np.random.Generator, low: Any, high: Any, size: Any = None) -> list[float]:
    return [f32(x) for x in np.atleast_1d(rng.uniform(low=low, high=high, size=size))]


# ---------------------------------------------------------------------------------- CartPole
def cartpole_reset(rng: np.random.Generator, p: Any) -> list[float]:
    # gymnasium: self.np_random.uniform(low=-0.05, high=0.05, size=(4,))
    return _uniform(rng, -p.reset_bound, p.reset_bound, (4,))


def cartpole_step(s: list[float], action: Any, p: Any) -> tuple[list[float], float, bool]:
    x, x_dot, theta, theta_dot = s
    total_mass = p.masspole + p.masscart
    polemass_length = p.masspole * p.length
    force = p.force_mag if int(action) == 1 else -p.force_mag
    cos, sin = math.cos(theta), math.sin(theta)
    temp = (force + polemass_length * theta_dot * theta_dot * sin) / total_mass
    thetaacc = (p.gravity * sin - cos * temp) / (
        p.length * (4.0 / 3.0 - p.masspole * cos * cos / total_mass)
    )
    xacc = temp - polemass_length * thetaacc * cos / total_mass
    tau = p.tau
    if p.kinematics_integrator == "euler":
        x, x_dot = x + tau * x_dot, x_dot + tau * xacc
        theta, theta_dot = theta + tau * theta_dot, theta_dot + tau * thetaacc
    else:
        x_dot = x_dot + tau * xacc
        x = x + tau * x_dot
        theta_dot = theta_dot + tau * thetaacc
        theta = theta + tau * theta_dot
    new = [f32(x), f32(x_dot), f32(theta), f32(theta_dot)]
    terminated = (
        new[0] < -p.x_threshold
        or new[0] > p.x_threshold
        or new[2] < -p.theta_threshold_radians
        or new[2] > p.theta_threshold_radians
    )
    return new, 1.0, terminated


def cartpole_obs(s: list[float]) -> np.ndarray:
    return np.array(s, dtype=np.float32)


# ----------------------------------------------------------------------------------- Acrobot
def _acrobot_dsdt(y: list[float], torque: float, p: Any) -> list[float]:
    m1, m2, l1 = p.link_mass_1, p.link_mass_2, p.link_length_1
    lc1, lc2, i1, g = p.link_com_pos_1, p.link_com_pos_2, p.link_moi, p.gravity
    i2 = i1
    theta1, theta2, dtheta1, dtheta2 = y
    d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * math.cos(theta2)) + i1 + i2
    d2 = m2 * (lc2**2 + l1 * lc2 * math.cos(theta2)) + i2
    phi2 = m2 * lc2 * g * math.cos(theta1 + theta2 - math.pi / 2.0)
    phi1 = (
        -m2 * l1 * lc2 * dtheta2**2 * math.sin(theta2)
        - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * math.sin(theta2)
        + (m1 * lc1 + m2 * l1) * g * math.cos(theta1 - math.pi / 2)
        + phi2
    )
    if p.book_or_nips == "nips":
        ddtheta2 = (torque + d2 / d1 * phi1 - phi2) / (m2 * lc2**2 + i2 - d2**2 / d1)
    else:
        ddtheta2 = (
            torque + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * math.sin(theta2) - phi2
        ) / (m2 * lc2**2 + i2 - d2**2 / d1)
    ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
    return [dtheta1, dtheta2, ddtheta1, ddtheta2]


def _wrap(x: float, m: float, big_m: float) -> float:
    diff = big_m - m
    if x > big_m:
        return x - math.ceil((x - big_m) / diff) * diff
    if x < m:
        return x + math.ceil((m - x) / diff) * diff
    return x


def acrobot_reset(rng: np.random.Generator, p: Any) -> list[float]:
    # gymnasium: self.np_random.uniform(low=-0.1, high=0.1, size=(4,)).astype(np.float32)
    return _uniform(rng, -p.reset_bound, p.reset_bound, (4,))


def acrobot_step(s: list[float], action: Any, p: Any) -> tuple[list[float], float, bool]:
    torque = (-p.torque_mag, 0.0, p.torque_mag)[int(action)]
    dt = p.dt
    dt2 = dt / 2.0
    k1 = _acrobot_dsdt(s, torque, p)
    k2 = _acrobot_dsdt([a + dt2 * b for a, b in zip(s, k1, strict=True)], torque, p)
    k3 = _acrobot_dsdt([a + dt2 * b for a, b in zip(s, k2, strict=True)], torque, p)
    k4 = _acrobot_dsdt([a + dt * b for a, b in zip(s, k3, strict=True)], torque, p)
    y = [
        f32(a + dt / 6.0 * (b + 2 * c + 2 * d + e))
        for a, b, c, d, e in zip(s, k1, k2, k3, k4, strict=True)
    ]
    new = [
        f32(_wrap(y[0], -math.pi, math.pi)),
        f32(_wrap(y[1], -math.pi, math.pi)),
        min(max(y[2], -p.max_vel_1), p.max_vel_1),
        min(max(y[3], -p.max_vel_2), p.max_vel_2),
    ]
    terminated = -math.cos(new[0]) - math.cos(new[1] + new[0]) > 1.0
    return new, (0.0 if terminated else -1.0), terminated


def acrobot_obs(s: list[float]) -> np.ndarray:
    t1, t2, d1, d2 = s
    return np.array(
        [math.cos(t1), math.sin(t1), math.cos(t2), math.sin(t2), d1, d2], dtype=np.float32
    )


# ------------------------------------------------------------------------------- MountainCar
def _move(s: list[float], accel: float, p: Any) -> list[float]:
    position, velocity = s
    velocity = velocity + accel - p.gravity * math.cos(3 * position)
    velocity = f32(min(max(velocity, -p.max_speed), p.max_speed))
    position = f32(min(max(position + velocity, p.min_position), p.max_position))
    if position == p.min_position and velocity < 0:
        velocity = 0.0
    return [position, velocity]


def mountain_car_reset(rng: np.random.Generator, p: Any) -> list[float]:
    # gymnasium: np.array([self.np_random.uniform(low=low, high=high), 0])
    return [f32(rng.uniform(low=p.reset_low, high=p.reset_high)), 0.0]


def mountain_car_step(s: list[float], action: Any, p: Any) -> tuple[list[float], float, bool]:
    new = _move(s, f32((int(action) - 1) * p.force), p)
    terminated = new[0] >= p.goal_position and new[1] >= p.goal_velocity
    return new, -1.0, terminated


def mountain_car_continuous_step(
    s: list[float], action: Any, p: Any
) -> tuple[list[float], float, bool]:
    a = f32(float(action[0]))  # a validated float32 array of shape (1,)
    force = min(max(a, p.min_action), p.max_action)
    new = _move(s, force * p.power, p)
    terminated = new[0] >= p.goal_position and new[1] >= p.goal_velocity
    return new, f32((100.0 if terminated else 0.0) - 0.1 * a * a), terminated


def mountain_car_obs(s: list[float]) -> np.ndarray:
    return np.array(s, dtype=np.float32)


# ---------------------------------------------------------------------------------- Pendulum
def _angle_normalize(x: float) -> float:
    return (x + math.pi) % (2 * math.pi) - math.pi


def pendulum_reset(rng: np.random.Generator, p: Any) -> list[float]:
    # gymnasium: high = np.array([x, y]); self.np_random.uniform(low=-high, high=high)
    high = np.array([p.reset_theta, p.reset_theta_dot])
    return _uniform(rng, -high, high)


def pendulum_step(s: list[float], action: Any, p: Any) -> tuple[list[float], float, bool]:
    th, thdot = s
    u = f32(float(action[0]))  # a validated float32 array of shape (1,)
    u = min(max(u, -p.max_torque), p.max_torque)
    costs = _angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * u**2
    new_thdot = thdot + (3 * p.g / (2 * p.l) * math.sin(th) + 3.0 / (p.m * p.l**2) * u) * p.dt
    new_thdot = min(max(new_thdot, -p.max_speed), p.max_speed)
    new_th = th + new_thdot * p.dt
    return [f32(new_th), f32(new_thdot)], f32(-costs), False


def pendulum_obs(s: list[float]) -> np.ndarray:
    th, thdot = s
    return np.array([math.cos(th), math.sin(th), thdot], dtype=np.float32)


class Twin(NamedTuple):
    """A host twin: ``reset(rng, p) -> s``, ``step(s, action, p) -> (s, reward, terminated)``
    and ``obs(s)``."""

    reset: Callable[[np.random.Generator, Any], list[float]]
    step: Callable[[list[float], Any, Any], tuple[list[float], float, bool]]
    obs: Callable[[list[float]], np.ndarray]


TWINS: dict[str, Twin] = {
    "CartPole-v1": Twin(cartpole_reset, cartpole_step, cartpole_obs),
    "Acrobot-v1": Twin(acrobot_reset, acrobot_step, acrobot_obs),
    "MountainCar-v0": Twin(mountain_car_reset, mountain_car_step, mountain_car_obs),
    "MountainCarContinuous-v0": Twin(
        mountain_car_reset, mountain_car_continuous_step, mountain_car_obs
    ),
    "Pendulum-v1": Twin(pendulum_reset, pendulum_step, pendulum_obs),
}

__all__ = ["TWINS", "Twin", "f32", "host_params"]
