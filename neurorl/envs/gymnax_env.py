"""gymnax <-> neurorl: gymnax's JAX envs trained fully jitted, and our envs in gymnax's tools.

* :class:`GymnaxEnv` adapts a gymnax environment (MinAtar, bsuite, misc, classic control; gymnax
  0.0.x, ``pip install "gymnax<1.0"``) to neurorl's :class:`~neurorl.envs.base.Environment`
  interface, so ``env: {id: gymnax:Catch-bsuite}`` runs inside the same jitted ``lax.scan`` as
  the built-in envs (``neurorl.envs.make("gymnax:<Id>")``). Observations are flattened to one
  float32 vector (MinAtar's ``[10, 10, C]`` images become ``10*10*C`` inputs); gymnax's single
  ``done`` is split into gymnasium's flags: ``truncated`` where the step count reached
  ``params.max_steps_in_episode``, ``terminated`` for every other end.
* :func:`to_gymnax` gives one of our envs gymnax's API (``name``, ``num_actions``, the
  ``default_params`` property, a 5-tuple ``step`` with auto-reset and gymnax spaces), so gymnax
  tools such as ``gymnax.wrappers.GymnaxToGymWrapper`` run on it.

References:
    Lange, R. T. (2022). gymnax: A JAX-based reinforcement learning environment library.
    https://github.com/RobertTLange/gymnax
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp
import numpy as np

from neurorl.envs import spaces
from neurorl.envs.base import Array, Environment, StepResult
from neurorl.errors import ConfigError, closest, import_optional

PREFIX = "gymnax:"
# bounds at or beyond this are "unbounded" (gymnax writes finfo(float32).max for +-inf)
_HUGE = 1e30


def import_gymnax(field: str = "env.id", value: Any = "gymnax:...") -> Any:
    """Import gymnax, or raise the ConfigError of :func:`neurorl.errors.import_optional` that
    names the ``gymnax`` extra (``pip install "neurorl[gymnax]"``).

    Args:
        field: what needs gymnax, for the message (default ``"env.id"``).
        value: the value given there (default ``"gymnax:..."``; an env id where known).

    Raises:
        ConfigError: gymnax is not installed (or its import fails).
    """
    return import_optional("gymnax", "gymnax", field, value)


def gymnax_ids() -> list[str]:
    """gymnax's registered env ids."""
    return list(import_gymnax().registered_envs)


def check_gymnax_id(env_id: str, field: str = "env.id") -> str:
    """The gymnax id inside ``"gymnax:<Id>"``; a ConfigError (closest id) if gymnax lacks it."""
    name = env_id[len(PREFIX) :] if env_id.startswith(PREFIX) else env_id
    ids = gymnax_ids()
    if name not in ids:
        raise ConfigError(
            field,
            env_id,
            f"gymnax:<Id> with Id one of {ids}",
            None if closest(name, ids) is None else PREFIX + closest(name, ids),
        )
    return name


def _to_space(space: Any, flatten: bool) -> Any:
    """gymnax space -> neurorl space (Box flattened to 1-D when ``flatten``)."""
    if hasattr(space, "n"):
        return spaces.Discrete(int(space.n))
    shape = tuple(int(s) for s in space.shape)
    low = np.broadcast_to(np.asarray(space.low, np.float32), shape)
    high = np.broadcast_to(np.asarray(space.high, np.float32), shape)
    low = np.where(low <= -_HUGE, -np.inf, low).astype(np.float32)
    high = np.where(high >= _HUGE, np.inf, high).astype(np.float32)
    if flatten:
        shape = (int(np.prod(shape)),)
        low, high = low.reshape(shape), high.reshape(shape)
    return spaces.Box(low, high, shape, jnp.float32)


class GymnaxEnv(Environment):
    """A gymnax environment behind neurorl's Environment interface (pure, jittable).

    Args:
        name: a gymnax id, e.g. ``"Catch-bsuite"`` (with or without the ``gymnax:`` prefix).
        **make_kwargs: passed to ``gymnax.make``.
    """

    stochastic_transition = True  # MinAtar and the bandits draw random numbers in step

    def __init__(self, name: str, **make_kwargs: Any) -> None:
        gymnax = import_gymnax(value=name if name.startswith(PREFIX) else PREFIX + name)
        gname = check_gymnax_id(name)
        self.gymnax_env, self._default = gymnax.make(gname, **make_kwargs)
        self.id = PREFIX + gname  # type: ignore[misc]
        self.params_cls = type(self._default)  # type: ignore[misc]

    def default_params(self) -> Any:
        return self._default

    def make_params(self, **overrides: Any) -> Any:
        """gymnax's default params with some fields replaced (ConfigError for unknown names)."""
        fields = [f.name for f in dataclasses.fields(self._default)]
        for k in overrides:
            if k not in fields:
                raise ConfigError(
                    f"{self.id}.params",
                    k,
                    f"one of the parameter fields {fields}",
                    closest(k, fields),
                )
        return self._default.replace(**overrides) if overrides else self._default

    def reset_env(self, key: Array, params: Any) -> tuple[Array, Any]:
        obs, state = self.gymnax_env.reset_env(key, params)
        return jnp.reshape(obs, (-1,)).astype(jnp.float32), state

    def step_env(self, key: Array, state: Any, action: Any, params: Any) -> StepResult:
        obs, new, reward, done, info = self.gymnax_env.step_env(key, state, action, params)
        t = getattr(new, "time", None)
        if t is not None and hasattr(params, "max_steps_in_episode"):
            truncated = jnp.logical_and(done, t >= params.max_steps_in_episode)
        else:
            truncated = jnp.zeros((), bool)
        terminated = jnp.logical_and(done, jnp.logical_not(truncated))
        obs = jnp.reshape(obs, (-1,)).astype(jnp.float32)
        return obs, new, jnp.asarray(reward, jnp.float32), terminated, truncated, {}

    def observation_space(self, params: Any = None) -> Any:
        return _to_space(self.gymnax_env.observation_space(params or self._default), True)

    def action_space(self, params: Any = None) -> Any:
        return _to_space(self.gymnax_env.action_space(params or self._default), False)


def make_gymnax(env_id: str, **param_overrides: Any) -> tuple[GymnaxEnv, Any]:
    """``neurorl.envs.make`` for ``"gymnax:<Id>"``: ``(env, params)``."""
    env = GymnaxEnv(env_id)
    return env, env.make_params(**param_overrides)


# --------------------------------------------------------------------- neurorl -> gymnax API
class GymnaxView:
    """One of our envs with gymnax's API (see :func:`to_gymnax`)."""

    def __init__(self, env: Environment, params: Any = None) -> None:
        self.env = env
        self._params = params if params is not None else env.default_params()

    @property
    def name(self) -> str:
        return self.env.name

    @property
    def num_actions(self) -> int:
        return self.env.num_actions

    @property
    def default_params(self) -> Any:
        return self._params

    def reset(self, key: Array, params: Any = None) -> tuple[Array, Any]:
        return self.env.reset(key, self._params if params is None else params)

    def step(self, key: Array, state: Any, action: Any, params: Any = None):
        """gymnax's step: ``(obs, state, reward, done, info)`` with auto-reset."""
        p = self._params if params is None else params
        obs, state, reward, term, trunc, info = self.env.step(key, state, action, p)
        info = {**info, "terminated": term, "truncated": trunc}
        return obs, state, reward, jnp.logical_or(term, trunc), info

    def observation_space(self, params: Any = None) -> Any:
        return _gymnax_space(self.env.observation_space(params or self._params))

    def action_space(self, params: Any = None) -> Any:
        return _gymnax_space(self.env.action_space(params or self._params))


def _gymnax_space(space: Any) -> Any:
    from gymnax.environments import spaces as gspaces

    if isinstance(space, spaces.Discrete):
        return gspaces.Discrete(space.n)
    return gspaces.Box(np.asarray(space.low), np.asarray(space.high), space.shape, jnp.float32)


def to_gymnax(env: Environment, params: Any = None) -> GymnaxView:
    """Our env with gymnax's API, e.g. ``GymnaxToGymWrapper(to_gymnax(CartPole()))``.

    Args:
        env: a neurorl environment.
        params: its params (default: the env defaults).
    """
    import_gymnax("to_gymnax", type(env).__name__)
    return GymnaxView(env, params)


__all__ = ["GymnaxEnv", "GymnaxView", "check_gymnax_id", "make_gymnax", "to_gymnax"]
