"""Gymnasium registration: ``gymnasium.make("neurorl/CartPole-v1", length=1.0)``.

:class:`NeurorlGymEnv` is a thin ``gymnasium.Env`` around one JAX environment: it holds the
params, the env state and a PRNG key drawn from gymnasium's seeded ``np_random``, runs jitted
``reset`` / ``step_env`` and returns numpy float32 observations. Episodes end exactly as in
Gymnasium: ``terminated`` from the dynamics, ``truncated`` at ``params.max_steps_in_episode``
(the env truncates itself, so the registered specs carry no ``TimeLimit``; a shifted
``max_steps_in_episode`` is therefore honoured).

Params are overridable with ``params=`` (an EnvParams instance) and/or keyword arguments naming
EnvParams fields; everything is validated on the host before anything is traced.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium
import jax
import numpy as np

from neurorl.envs import spaces
from neurorl.errors import ConfigError, ShapeError, lookup

NAMESPACE = "neurorl"
ENTRY_POINT = "neurorl.envs.gym_registration:NeurorlGymEnv"


@functools.cache
def _jitted(env_cls: type) -> tuple[Any, Any]:
    """Jitted ``reset`` / ``step_env`` of one shared instance per env class, so every
    ``gymnasium.make`` of the same id reuses the compiled functions (params are traced)."""
    env = env_cls()
    return jax.jit(env.reset), jax.jit(env.step_env)


class NeurorlGymEnv(gymnasium.Env):
    """A neurorl JAX environment behind the ``gymnasium.Env`` API (numpy in, numpy out).

    Args:
        env_id: neurorl env id, e.g. ``"CartPole-v1"``.
        params: optional EnvParams instance of that env.
        render_mode: only ``None`` is supported.
        **param_overrides: EnvParams fields to change (applied on top of ``params``).

    Raises:
        ConfigError: unknown env id / field, invalid params, or a render mode.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        env_id: str,
        params: Any = None,
        render_mode: str | None = None,
        **param_overrides: Any,
    ) -> None:
        from neurorl.envs import ENVS

        env_cls = lookup(ENVS, env_id, "environment", field="env_id")
        if render_mode is not None:
            raise ConfigError("render_mode", render_mode, "None (neurorl envs do not render)")
        if params is None:
            params = env_cls.params_cls.create(**param_overrides)
        else:
            if not isinstance(params, env_cls.params_cls):
                raise ConfigError(
                    "params", type(params).__name__, f"a {env_cls.params_cls.__name__} instance"
                )
            if param_overrides:
                env_cls.params_cls.check_field_names(param_overrides)
                params = params.replace(**param_overrides)
            params = params.validate().cast()
        self.render_mode = None
        self.jax_env = env_cls()
        self.params = params
        self._obs_space = self.jax_env.observation_space(params)
        self._act_space = self.jax_env.action_space(params)
        self.observation_space = self._obs_space.to_gymnasium()
        self.action_space = self._act_space.to_gymnasium()
        self._reset_fn, self._step_fn = _jitted(env_cls)
        self._key: jax.Array | None = None
        self._state: Any = None

    def _check_action(self, action: Any) -> Any:
        space = self._act_space
        if isinstance(action, jax.Array):  # e.g. from a jitted agent
            action = np.asarray(action)
        if isinstance(space, spaces.Discrete):
            if isinstance(action, bool | np.bool_) or not (
                isinstance(action, int | np.integer)
                or (
                    isinstance(action, np.ndarray)
                    and action.shape == ()
                    and np.issubdtype(action.dtype, np.integer)
                )
            ):
                raise ConfigError(
                    "action", action, f"an integer in [0, {space.n}) for {self.jax_env.id}"
                )
            if not 0 <= int(action) < space.n:
                raise ConfigError("action", int(action), f"an integer in [0, {space.n})")
            return np.int32(action)
        try:
            arr = np.asarray(action)
        except Exception:  # noqa: BLE001 - anything not array-like is a type error for the user
            arr = None
        if (
            arr is None
            or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer))
            or np.issubdtype(arr.dtype, np.bool_)
        ):
            raise ConfigError(
                "action", action, f"a float array of shape {space.shape} for {self.jax_env.id}"
            )
        if arr.shape != space.shape:
            raise ShapeError(f"action of {self.jax_env.id}", space.shape, arr.shape)
        if not np.all(np.isfinite(arr)):
            raise ConfigError("action", action, "finite values")
        return arr.astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset; the JAX key comes from gymnasium's (seeded) ``np_random``."""
        super().reset(seed=seed)
        if options:
            raise ConfigError(
                "options", options, "None (change the reset distribution through params)"
            )
        self._key = jax.random.key(int(self.np_random.integers(0, 2**31 - 1)))
        self._key, k = jax.random.split(self._key)
        obs, self._state = self._reset_fn(k, self.params)
        return np.asarray(obs, dtype=np.float32), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One transition of the JAX env (no auto-reset: call ``reset`` after an episode ends)."""
        if self._state is None:
            raise ConfigError("step", "called before reset", "call reset() first")
        a = self._check_action(action)
        self._key, k = jax.random.split(self._key)
        obs, self._state, reward, terminated, truncated, _ = self._step_fn(
            k, self._state, a, self.params
        )
        return (
            np.asarray(obs, dtype=np.float32),
            float(reward),
            bool(terminated),
            bool(truncated),
            {},
        )

    @property
    def state(self) -> Any:
        """The current JAX env state (a flax.struct dataclass)."""
        return self._state


def register_envs() -> list[str]:
    """Register ``neurorl/<id>`` for every env in ``ENVS`` with Gymnasium (idempotent).

    Returns:
        The gymnasium ids.
    """
    from neurorl.envs import ENVS

    ids = []
    for env_id in ENVS:
        gid = f"{NAMESPACE}/{env_id}"
        ids.append(gid)
        if gid in gymnasium.registry:
            continue
        gymnasium.register(
            id=gid,
            entry_point=ENTRY_POINT,
            kwargs={"env_id": env_id},
            # truncation comes from params.max_steps_in_episode inside the env
            max_episode_steps=None,
        )
    return ids
