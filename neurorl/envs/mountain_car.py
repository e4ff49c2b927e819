"""MountainCar-v0 and MountainCarContinuous-v0 in JAX, step-for-step equal to gymnasium's.

An under-powered car in a valley whose height is ``sin(3 x)``; per step (Moore 1990, Sutton &
Barto 2018 Section 10.1, Eq. in Example 10.1)::

    v <- clip(v + a_term - gravity * cos(3 x), -max_speed, max_speed)
    x <- clip(x + v, min_position, max_position);  v <- 0 if x == min_position and v < 0

with ``a_term = (action - 1) * force`` (discrete, actions 0/1/2) or
``clip(action, min_action, max_action) * power`` (continuous). Terminated when
``x >= goal_position and v >= goal_velocity``. Rewards: -1 per step (discrete); ``100`` on
reaching the goal minus ``0.1 * action^2`` (continuous; the UNclipped action, as gymnasium).
Truncated at 200 (discrete) / 999 (continuous) steps.

References:
    Moore, A. W. (1990). Efficient memory-based learning for robot control. PhD thesis, Univ. of
    Cambridge.
    Sutton, R. S. & Barto, A. G. (2018). Reinforcement Learning: An Introduction, 2nd ed.,
    Example 10.1 (Mountain Car Task).
"""

from __future__ import annotations

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


def _check_ordered(prefix: str, params: Any, pairs: tuple[tuple[str, str], ...]) -> None:
    """Host-side check ``low < high`` for each (low, high) field pair."""
    import numpy as np

    for lo, hi in pairs:
        a, b = getattr(params, lo), getattr(params, hi)
        if isinstance(a, jax.core.Tracer) or isinstance(b, jax.core.Tracer):
            continue
        if not np.all(np.asarray(a) < np.asarray(b)):
            raise ConfigError(f"{prefix}.{lo}", a, f"a float < {hi} ({b})")


@struct.dataclass
class MountainCarParams(EnvParamsBase):
    """MountainCar-v0 constants (gymnasium defaults) and episode limit.

    Attributes:
        min_position: left wall (m, position units of the task).
        max_position: right wall.
        max_speed: |velocity| bound (per step).
        goal_position: position to reach.
        goal_velocity: minimum velocity at the goal.
        force: acceleration of a push (per step^2).
        gravity: gravity coefficient of the hill term (per step^2).
        reset_low: initial position ~ U(reset_low, reset_high), velocity 0.
        reset_high: see reset_low.
        max_steps_in_episode: time limit (steps; 200).
    """

    min_position: Any = -1.2
    max_position: Any = 0.6
    max_speed: Any = 0.07
    goal_position: Any = 0.5
    goal_velocity: Any = 0.0
    force: Any = 0.001
    gravity: Any = 0.0025
    reset_low: Any = -0.6
    reset_high: Any = -0.4
    max_steps_in_episode: Any = 200

    env_id = "MountainCar-v0"
    constraints = {
        "min_position": FINITE,
        "max_position": FINITE,
        "max_speed": POSITIVE,
        "goal_position": FINITE,
        "goal_velocity": FINITE,
        "force": NONNEGATIVE,
        "gravity": FINITE,
        "reset_low": FINITE,
        "reset_high": FINITE,
        "max_steps_in_episode": POSITIVE_INT,
    }

    def _validate_extra(self, prefix: str) -> None:
        _check_ordered(
            prefix, self, (("min_position", "max_position"), ("reset_low", "reset_high"))
        )


@struct.dataclass
class MountainCarContinuousParams(EnvParamsBase):
    """MountainCarContinuous-v0 constants (gymnasium defaults) and episode limit.

    Attributes:
        min_action: lower clip of the action (force fraction).
        max_action: upper clip of the action.
        min_position: left wall.
        max_position: right wall.
        max_speed: |velocity| bound (per step).
        goal_position: position to reach (0.45).
        goal_velocity: minimum velocity at the goal.
        power: acceleration per unit action (per step^2).
        gravity: gravity coefficient of the hill term (hard-coded 0.0025 in gymnasium).
        reset_low: initial position ~ U(reset_low, reset_high), velocity 0.
        reset_high: see reset_low.
        max_steps_in_episode: time limit (steps; 999).
    """

    min_action: Any = -1.0
    max_action: Any = 1.0
    min_position: Any = -1.2
    max_position: Any = 0.6
    max_speed: Any = 0.07
    goal_position: Any = 0.45
    goal_velocity: Any = 0.0
    power: Any = 0.0015
    gravity: Any = 0.0025
    reset_low: Any = -0.6
    reset_high: Any = -0.4
    max_steps_in_episode: Any = 999

    env_id = "MountainCarContinuous-v0"
    constraints = {
        "min_action": FINITE,
        "max_action": FINITE,
        "min_position": FINITE,
        "max_position": FINITE,
        "max_speed": POSITIVE,
        "goal_position": FINITE,
        "goal_velocity": FINITE,
        "power": NONNEGATIVE,
        "gravity": FINITE,
        "reset_low": FINITE,
        "reset_high": FINITE,
        "max_steps_in_episode": POSITIVE_INT,
    }

    def _validate_extra(self, prefix: str) -> None:
        _check_ordered(
            prefix,
            self,
            (
                ("min_action", "max_action"),
                ("min_position", "max_position"),
                ("reset_low", "reset_high"),
            ),
        )


@struct.dataclass
class MountainCarState:
    """Car ``position``, ``velocity`` and ``time`` (steps in this episode)."""

    position: Array
    velocity: Array
    time: Array


def _reset(key: Array, params: Any) -> MountainCarState:
    pos = jax.random.uniform(
        key,
        (),
        jnp.float32,
        jnp.asarray(params.reset_low, jnp.float32),
        jnp.asarray(params.reset_high, jnp.float32),
    )
    return MountainCarState(pos, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))


def _move(state: MountainCarState, accel: Array, params: Any) -> MountainCarState:
    """Shared hill dynamics of both variants (gymnasium order of clips)."""
    velocity = state.velocity + accel - params.gravity * jnp.cos(3 * state.position)
    velocity = jnp.clip(velocity, -params.max_speed, params.max_speed)
    position = jnp.clip(state.position + velocity, params.min_position, params.max_position)
    # Inelastic left wall.
    velocity = jnp.where((position == params.min_position) & (velocity < 0), 0.0, velocity)
    return MountainCarState(
        position.astype(jnp.float32), velocity.astype(jnp.float32), state.time + 1
    )


def _obs(state: MountainCarState) -> Array:
    return jnp.stack([state.position, state.velocity]).astype(jnp.float32)


def _obs_space(p: Any) -> spaces.Box:
    low = jnp.stack([p.min_position, -p.max_speed]).astype(jnp.float32)
    high = jnp.stack([p.max_position, p.max_speed]).astype(jnp.float32)
    return spaces.Box(low, high, (2,), jnp.float32)


class MountainCar(Environment):
    """MountainCar-v0 (gymnasium semantics, traced params). Actions: 0 left, 1 none, 2 right."""

    id = "MountainCar-v0"
    params_cls = MountainCarParams

    def reset_env(self, key: Array, params: MountainCarParams) -> tuple[Array, MountainCarState]:
        """Position ~ U(reset_low, reset_high), velocity 0, time 0."""
        state = _reset(key, params)
        return _obs(state), state

    def step_env(
        self, key: Array, state: MountainCarState, action: Any, params: MountainCarParams
    ) -> StepResult:
        """One step of the hill dynamics; no auto-reset."""
        del key
        accel = (jnp.asarray(action, jnp.int32) - 1).astype(jnp.float32) * params.force
        new = _move(state, accel, params)
        terminated = (new.position >= params.goal_position) & (new.velocity >= params.goal_velocity)
        reward = -jnp.ones((), jnp.float32)
        truncated = self.truncation(new.time, params)
        return _obs(new), new, reward, terminated, truncated, {}

    def observation_space(self, params: MountainCarParams | None = None) -> spaces.Box:
        """Box [min_position, -max_speed] .. [max_position, max_speed]."""
        return _obs_space(params if params is not None else self.default_params())

    def action_space(self, params: MountainCarParams | None = None) -> spaces.Discrete:
        """Discrete(3): push left, no push, push right."""
        del params
        return spaces.Discrete(3)


class MountainCarContinuous(Environment):
    """MountainCarContinuous-v0 (gymnasium semantics, traced params). Action: shape (1,) float."""

    id = "MountainCarContinuous-v0"
    params_cls = MountainCarContinuousParams

    def reset_env(
        self, key: Array, params: MountainCarContinuousParams
    ) -> tuple[Array, MountainCarState]:
        """Position ~ U(reset_low, reset_high), velocity 0, time 0."""
        state = _reset(key, params)
        return _obs(state), state

    def step_env(
        self,
        key: Array,
        state: MountainCarState,
        action: Any,
        params: MountainCarContinuousParams,
    ) -> StepResult:
        """One step of the hill dynamics; no auto-reset."""
        del key
        a = jnp.reshape(jnp.asarray(action, jnp.float32), (-1,))[0]
        force = jnp.clip(a, params.min_action, params.max_action)
        new = _move(state, force * params.power, params)
        terminated = (new.position >= params.goal_position) & (new.velocity >= params.goal_velocity)
        reward = (jnp.where(terminated, 100.0, 0.0) - 0.1 * a**2).astype(jnp.float32)
        truncated = self.truncation(new.time, params)
        return _obs(new), new, reward, terminated, truncated, {}

    def observation_space(self, params: MountainCarContinuousParams | None = None) -> spaces.Box:
        """Box [min_position, -max_speed] .. [max_position, max_speed]."""
        return _obs_space(params if params is not None else self.default_params())

    def action_space(self, params: MountainCarContinuousParams | None = None) -> spaces.Box:
        """Box [min_action, max_action] of shape (1,)."""
        p = params if params is not None else self.default_params()
        return spaces.Box(p.min_action, p.max_action, (1,), jnp.float32)
