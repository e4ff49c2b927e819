"""gymnax-style base class for JAX-native environments with traced parameters.

An environment is a stateless object with pure methods. Everything physical lives in an
``EnvParams`` pytree (a ``flax.struct`` dataclass whose numeric fields are traced leaves), so a
distribution shift is a change to that pytree -- at any step inside a ``lax.scan``, vmapped over
many parameter sets -- without recompiling. Derived quantities (total mass, pole mass x length,
...) are computed inside ``step_env`` from the base fields and never stored, so a shifted
parameter set is always self-consistent (the stale-derived-parameter trap of gymnax and
gymnasium's ``phys2d`` CartPole, see ``shared/references/ecosystem.md`` section 2).

Time-limit semantics follow ``gymnasium.wrappers.TimeLimit``: ``truncated`` is ``True`` whenever
the step count in the episode reaches ``params.max_steps_in_episode``, whether or not the same
step also terminated; ``terminated`` comes from the dynamics only.

References:
    Lange, R. T. (2022). gymnax: A JAX-based reinforcement learning environment library.
    Towers et al. (2024). Gymnasium: A Standard Interface for Reinforcement Learning
    Environments. arXiv:2407.17032.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from neurorl.errors import ConfigError, closest

Array = jax.Array
Obs = Array
Info = dict[str, Any]
StepResult = tuple[Obs, Any, Array, Array, Array, Info]

# Constraint kinds understood by EnvParamsBase.validate (host side).
POSITIVE = "positive"  # a float > 0
NONNEGATIVE = "nonnegative"  # a float >= 0
POSITIVE_INT = "positive_int"  # an integer >= 1
FINITE = "finite"  # any finite float

_ALLOWED = {
    POSITIVE: "a finite float > 0",
    NONNEGATIVE: "a finite float >= 0",
    POSITIVE_INT: "an integer >= 1",
    FINITE: "a finite float",
}


class EnvParamsBase:
    """Mixin for every ``EnvParams`` dataclass: host-side validation and a casting constructor.

    Subclasses are ``flax.struct.dataclass`` es; they list a constraint for each numeric field in
    ``constraints`` (field name -> one of ``POSITIVE``, ``NONNEGATIVE``, ``POSITIVE_INT``,
    ``FINITE``). Integer-valued fields are listed in ``int_fields`` and cast to int32; every
    other numeric field is cast to float32.
    """

    env_id: ClassVar[str] = ""
    constraints: ClassVar[dict[str, str]] = {}
    int_fields: ClassVar[tuple[str, ...]] = ("max_steps_in_episode",)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of all fields (traced and static)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def check_field_names(cls, names: Any) -> None:
        """Raise a ConfigError (with the closest field) for any name that is not a field."""
        fields = cls.field_names()
        for name in names:
            if name not in fields:
                raise ConfigError(
                    f"{cls.env_id or cls.__name__}.params",
                    name,
                    f"one of the parameter fields {sorted(fields)}",
                    closest(name, fields),
                )

    @classmethod
    def create(cls, **overrides: Any) -> Any:
        """Build validated params with every numeric leaf a strongly typed jnp array.

        Casting every leaf to a fixed dtype (float32, int32 for counts) means a jitted function
        sees the same abstract signature for defaults and for user values, so new values never
        trigger a recompile.

        Args:
            **overrides: field values to change from the defaults.

        Returns:
            A validated params instance.

        Raises:
            ConfigError: for an unknown field (with the closest name) or an invalid value.
        """
        cls.check_field_names(overrides)
        params = cls(**overrides)
        params.validate()
        return params.cast()

    def cast(self) -> Any:
        """Return a copy whose numeric leaves are float32 / int32 jnp arrays."""
        static = {
            f.name for f in dataclasses.fields(self) if not f.metadata.get("pytree_node", True)
        }
        new = {}
        for f in dataclasses.fields(self):
            if f.name in static:
                continue
            v = getattr(self, f.name)
            if isinstance(v, jax.core.Tracer):
                continue
            dtype = jnp.int32 if f.name in self.int_fields else jnp.float32
            new[f.name] = jnp.asarray(v, dtype=dtype)
        return self.replace(**new)  # type: ignore[attr-defined]

    def validate(self) -> Any:
        """Check physical validity on the host; traced values are skipped.

        Returns:
            ``self``, so calls can be chained.

        Raises:
            ConfigError: naming the field, the bad value and what is allowed.
        """
        prefix = f"{self.env_id or type(self).__name__}.params"
        for name, kind in self.constraints.items():
            v = getattr(self, name)
            if isinstance(v, jax.core.Tracer):
                continue
            try:
                a = np.asarray(v, dtype=np.float64)
            except (TypeError, ValueError):
                raise ConfigError(f"{prefix}.{name}", v, _ALLOWED[kind]) from None
            ok = np.all(np.isfinite(a))
            if kind == POSITIVE:
                ok = ok and np.all(a > 0)
            elif kind == NONNEGATIVE:
                ok = ok and np.all(a >= 0)
            elif kind == POSITIVE_INT:
                ok = ok and np.all(a >= 1) and np.all(a == np.round(a))
            if not ok:
                shown = v if a.ndim == 0 else a
                raise ConfigError(f"{prefix}.{name}", shown, _ALLOWED[kind])
        self._validate_extra(prefix)
        return self

    def _validate_extra(self, prefix: str) -> None:
        """Cross-field checks (override in subclasses)."""
        del prefix


class Environment:
    """Base class of the JAX environments (gymnax-style, pure methods, traced params).

    Subclasses set ``id`` and ``params_cls`` and write ``reset_env`` and ``step_env`` (the raw,
    gymnasium-parity transition without auto-reset), ``observation_space`` and
    ``action_space``. ``step`` adds auto-reset on top.

    All methods are written for ONE environment; vmap outside for batches (over keys, states,
    actions and/or params).
    """

    id: ClassVar[str] = ""
    params_cls: ClassVar[type] = EnvParamsBase
    # Whether ``step_env`` draws random numbers. The classic-control transitions are
    # deterministic, so ``step`` can hand its whole key to the reset and skip a key split (one
    # threefry hash per env step: a quarter of CartPole's cost at 1024 envs on CPU).
    stochastic_transition: ClassVar[bool] = False

    def default_params(self) -> Any:
        """Default (gymnasium) parameters, validated and cast to fixed dtypes."""
        return self.params_cls.create()

    # -- to be written by subclasses ---------------------------------------------------------
    def reset_env(self, key: Array, params: Any) -> tuple[Obs, Any]:
        """Sample an initial state (gymnasium's reset distribution). Returns ``(obs, state)``."""
        raise NotImplementedError

    def step_env(self, key: Array, state: Any, action: Any, params: Any) -> StepResult:
        """One raw transition, no auto-reset.

        Returns ``(obs, state, reward, terminated, truncated, info)``.
        """
        raise NotImplementedError

    def observation_space(self, params: Any = None) -> Any:
        """The observation space (``neurorl.envs.spaces``)."""
        raise NotImplementedError

    def action_space(self, params: Any = None) -> Any:
        """The action space (``neurorl.envs.spaces``)."""
        raise NotImplementedError

    # -- public API ---------------------------------------------------------------------------
    def reset(self, key: Array, params: Any = None) -> tuple[Obs, Any]:
        """Reset: ``(obs, state)``; ``params=None`` uses :meth:`default_params`."""
        if params is None:
            params = self.default_params()
        return self.reset_env(key, params)

    def step(self, key: Array, state: Any, action: Any, params: Any = None) -> StepResult:
        """Step with auto-reset.

        When the step ends the episode (``terminated | truncated``), the returned ``obs`` and
        ``state`` are those of a fresh reset (drawn with a key split from ``key``) and
        ``info["final_obs"]`` holds the terminal observation; otherwise ``info["final_obs"]``
        equals ``obs``. Reward, terminated and truncated are those of the transition.

        Args:
            key: PRNG key.
            state: current env state.
            action: action for this step.
            params: env params (``None``: defaults).

        Returns:
            ``(obs, state, reward, terminated, truncated, info)``.
        """
        if params is None:
            params = self.default_params()
        if self.stochastic_transition:
            key_step, key_reset = jax.random.split(key)
        else:  # step_env ignores its key; the reset gets all of it
            key_step = key_reset = key
        obs_st, state_st, reward, terminated, truncated, info = self.step_env(
            key_step, state, action, params
        )
        obs_re, state_re = self.reset_env(key_reset, params)
        done = jnp.logical_or(terminated, truncated)
        state = jax.tree.map(lambda r, s: jnp.where(done, r, s), state_re, state_st)
        obs = jnp.where(done, obs_re, obs_st)
        info = dict(info)
        info["final_obs"] = obs_st
        return obs, state, reward, terminated, truncated, info

    @property
    def name(self) -> str:
        """The env id (gymnax's ``env.name``, for gymnax tools)."""
        return self.id

    @property
    def num_actions(self) -> int:
        """Discrete actions, or the continuous action dimension (gymnax's ``num_actions``)."""
        space = self.action_space(self.default_params())
        return int(space.n) if hasattr(space, "n") else int(np.prod(space.shape))

    @staticmethod
    def truncation(time: Array, params: Any) -> Array:
        """``gymnasium.wrappers.TimeLimit``: truncated once ``time >= max_steps_in_episode``."""
        return time >= params.max_steps_in_episode

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"
