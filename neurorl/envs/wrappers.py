"""Pure wrappers over :class:`~neurorl.envs.base.Environment`, usable inside ``lax.scan``.

``LogWrapper`` keeps running episode statistics inside the env state (the gymnax / PureJaxRL
``LogWrapper`` pattern), so a jitted training loop can report finished-episode returns and
lengths without a host round trip.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from neurorl.envs.base import Array, Environment, StepResult


class EnvWrapper(Environment):
    """Base wrapper: delegates everything it does not override to the inner env."""

    def __init__(self, env: Environment) -> None:
        self._env = env

    @property
    def env(self) -> Environment:
        """The wrapped environment."""
        return self._env

    @property
    def id(self) -> str:  # type: ignore[override]
        return self._env.id

    @property
    def params_cls(self) -> type:  # type: ignore[override]
        return self._env.params_cls

    def default_params(self) -> Any:
        return self._env.default_params()

    def reset_env(self, key: Array, params: Any) -> tuple[Array, Any]:
        return self._env.reset_env(key, params)

    def step_env(self, key: Array, state: Any, action: Any, params: Any) -> StepResult:
        return self._env.step_env(key, state, action, params)

    def observation_space(self, params: Any = None) -> Any:
        return self._env.observation_space(params)

    def action_space(self, params: Any = None) -> Any:
        return self._env.action_space(params)

    def __getattr__(self, name: str) -> Any:
        # only reached for attributes not found normally (e.g. get_obs of the inner env)
        if name == "_env":
            raise AttributeError(name)
        return getattr(self._env, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._env!r})"


@struct.dataclass
class LogEnvState:
    """Inner env state plus episode statistics.

    Attributes:
        env_state: the wrapped env's state.
        episode_return: return of the running episode so far (float32).
        episode_length: steps of the running episode so far (int32).
        returned_episode_return: return of the last FINISHED episode (float32).
        returned_episode_length: length of the last finished episode (int32).
        returned_episode: True on the step that finished an episode (bool).
        timestep: total steps taken since the first reset (int32).
    """

    env_state: Any
    episode_return: Array
    episode_length: Array
    returned_episode_return: Array
    returned_episode_length: Array
    returned_episode: Array
    timestep: Array


class LogWrapper(EnvWrapper):
    """Episode statistics (return, length) carried in the state; auto-resets like ``step``.

    ``info`` additionally holds ``returned_episode_returns``, ``returned_episode_lengths``,
    ``returned_episode`` (the step that ended an episode, by termination OR truncation) and
    ``timestep``, as PureJaxRL's ``LogWrapper``. Write for one env, vmap outside.
    """

    def reset(self, key: Array, params: Any = None) -> tuple[Array, LogEnvState]:
        """Reset the inner env and zero the statistics."""
        obs, env_state = self._env.reset(key, params)
        zf, zi = jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)
        state = LogEnvState(env_state, zf, zi, zf, zi, jnp.zeros((), bool), zi)
        return obs, state

    def step(self, key: Array, state: LogEnvState, action: Any, params: Any = None) -> StepResult:
        """Inner ``step`` (auto-reset) plus statistics update."""
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params
        )
        done = jnp.logical_or(terminated, truncated)
        new_return = state.episode_return + reward.astype(jnp.float32)
        new_length = state.episode_length + 1
        new = LogEnvState(
            env_state=env_state,
            episode_return=jnp.where(done, 0.0, new_return).astype(jnp.float32),
            episode_length=jnp.where(done, 0, new_length).astype(jnp.int32),
            returned_episode_return=jnp.where(
                done, new_return, state.returned_episode_return
            ).astype(jnp.float32),
            returned_episode_length=jnp.where(
                done, new_length, state.returned_episode_length
            ).astype(jnp.int32),
            returned_episode=done,
            timestep=state.timestep + 1,
        )
        info = dict(info)
        info["returned_episode_returns"] = new.returned_episode_return
        info["returned_episode_lengths"] = new.returned_episode_length
        info["returned_episode"] = done
        info["timestep"] = new.timestep
        return obs, new, reward, terminated, truncated, info


def rollout(
    env: Environment, key: Array, params: Any, policy: Any, n_steps: int
) -> tuple[Any, Any]:
    """Scan ``n_steps`` of ``env.step`` with ``action = policy(key, obs)`` (convenience).

    Returns:
        ``(final (obs, state), per-step (obs, reward, terminated, truncated, info))`` with
        time-first leaves ``[n_steps, ...]``.
    """
    key, k0 = jax.random.split(key)
    obs, state = env.reset(k0, params)

    def body(carry, key):
        obs, state = carry
        ka, ks = jax.random.split(key)
        action = policy(ka, obs)
        obs2, state2, reward, term, trunc, info = env.step(ks, state, action, params)
        return (obs2, state2), (obs, reward, term, trunc, info)

    return jax.lax.scan(body, (obs, state), jax.random.split(key, n_steps))
