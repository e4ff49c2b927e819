"""The Agent protocol shared by every spiking agent, the static agent spec, and reset helpers.

An agent is a NamedTuple of pure, jittable functions (the optax / gymnax pattern)::

    agent = make_agent("eprop_ac", spec, **hyper)
    state = agent.init(key)                                   # params + per-env carries
    action, state = agent.act(state, obs[B, obs_dim], key)    # K substeps of network time
    state = agent.learn(state, reward[B], terminated[B], truncated[B])

One agent state serves ``spec.n_envs`` parallel environments that SHARE one set of weights
(per-env carries have a leading env axis ``B``); vmap over seeds outside. Membrane potentials,
readouts and eligibility traces are reset with ``jnp.where`` at the start of the first ``act``
after an episode ended (the PureJaxRL recurrent pattern: ``learn`` records ``done``, ``act``
resets before it integrates the new episode's first observation).

Each agent state has a ``stats`` field (:class:`AgentStats`) filled by ``act`` with the spikes
emitted during that env step, and ``agent.weights(state)`` returns the learnable weights (for
weight-norm metrics and hardware constraints).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from neurorl.errors import ConfigError, checked_keywords

Array = jax.Array

# Encoder ranges for observation dimensions whose space is unbounded or too wide for useful
# population coding (CartPole: the reference-agent r = [2.4, 3.0, 0.21, 3.0]).
DEFAULT_OBS_RANGE: dict[str, tuple[float, ...]] = {
    "CartPole-v1": (2.4, 3.0, 0.21, 3.0),
    "Acrobot-v1": (1.0, 1.0, 1.0, 1.0, 6.0, 12.0),
    "Pendulum-v1": (1.0, 1.0, 8.0),
}


@checked_keywords
@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """Static description of what an agent sees and does (hashable; closed over, never traced).

    Attributes:
        obs_dim: observation size.
        obs_low: per-dimension lower edge used by encoders (obs units).
        obs_high: per-dimension upper edge used by encoders.
        discrete: True for ``Discrete(n)`` actions, False for a ``Box`` of continuous actions.
        n_actions: number of discrete actions, or the continuous action dimension.
        action_low: lower bound of a continuous action (ignored when discrete).
        action_high: upper bound of a continuous action.
        n_envs: parallel environments served by one agent state (B).
        substeps: K network substeps per env step.
    """

    obs_dim: int
    obs_low: tuple[float, ...]
    obs_high: tuple[float, ...]
    discrete: bool
    n_actions: int
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()
    n_envs: int = 1
    substeps: int = 5

    def __post_init__(self) -> None:
        if self.n_envs < 1:
            raise ConfigError("n_envs", self.n_envs, "an integer >= 1")
        if self.substeps < 1:
            raise ConfigError("substeps", self.substeps, "an integer >= 1")
        if len(self.obs_low) != self.obs_dim or len(self.obs_high) != self.obs_dim:
            raise ConfigError("spec.obs_low/high", (self.obs_low, self.obs_high),
                              f"{self.obs_dim} bounds each")


def spec_from_env(env: Any, params: Any, n_envs: int = 1, substeps: int = 5,
                  obs_range: tuple[float, ...] | None = None) -> AgentSpec:
    """Build an :class:`AgentSpec` from a neurorl environment (host side).

    Observation bounds come from ``obs_range`` (symmetric +-range), else
    :data:`DEFAULT_OBS_RANGE`, else the observation space (which must then be finite).
    """
    space = env.observation_space(params)
    obs_dim = int(np.prod(space.shape))
    if obs_range is None:
        obs_range = DEFAULT_OBS_RANGE.get(env.id)
    if obs_range is not None:
        r = np.broadcast_to(np.asarray(obs_range, np.float64), (obs_dim,))
        low, high = -r, r
    else:
        low, high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ConfigError("obs_range", None,
                              f"explicit encoder bounds for {env.id} (its space is unbounded)")
    act = env.action_space(params)
    discrete = hasattr(act, "n")
    if discrete:
        n_actions, a_low, a_high = int(act.n), (), ()
    else:
        n_actions = int(np.prod(act.shape))
        a_low = tuple(float(x) for x in np.asarray(act.low).reshape(-1))
        a_high = tuple(float(x) for x in np.asarray(act.high).reshape(-1))
    return AgentSpec(obs_dim, tuple(float(x) for x in low), tuple(float(x) for x in high),
                     discrete, n_actions, a_low, a_high, int(n_envs), int(substeps))


@struct.dataclass
class AgentStats:
    """Per-env-step activity filled by ``act``.

    Attributes:
        spikes: ``[B]`` spikes emitted by the agent's spiking neurons during this env step
            (all K substeps), per environment.
        synops: ``[B]`` synaptic events (spikes x fan-out) during this env step.
    """

    spikes: Array
    synops: Array


class Agent(NamedTuple):
    """A spiking agent: pure, jittable functions over an agent-state pytree.

    Attributes:
        name: registry name.
        spec: the :class:`AgentSpec` it was built for.
        init: ``key -> state``.
        act: ``(state, obs[B, obs_dim], key) -> (action[B] or [B, act_dim], state)``.
        learn: ``(state, reward[B], terminated[B], truncated[B]) -> state``.
        weights: ``state -> pytree`` of learnable weights (for norms and constraints).
        update_every: env steps between calls of ``update`` (1 for purely online agents).
        update: optional ``(state, obs[B, obs_dim], key) -> state``, a batch update that the
            training loop calls after every ``update_every`` act/learn steps with the current
            observation (for bootstrapping). Kept out of ``act`` on purpose: a ``lax.cond``
            under ``vmap`` over seeds would run both branches on every step.
        runtime: the agent's :class:`~neurorl.agents.network_agent.NetworkRuntime` (its
            compiled N-HAL network), for export, energy and inspection.
        learned: names of the state's fields that hold what the agent has learned (weights,
            optimizer moments, neuromodulatory averages), as opposed to per-env carries; the
            fields :func:`neurorl.agents.context.with_context` stores one copy of per context.
        diagnostics: optional ``state -> {name: scalar}`` recorded by the training loop every
            env step (``make_train``'s metrics; the runner logs them per episode and chunk),
            e.g. the context in use.
    """

    name: str
    spec: AgentSpec
    init: Callable[[Array], Any]
    act: Callable[[Any, Array, Array], tuple[Array, Any]]
    learn: Callable[[Any, Array, Array, Array], Any]
    weights: Callable[[Any], Any]
    update_every: int = 1
    update: Callable[[Any, Array, Array], Any] | None = None
    runtime: Any = None
    learned: tuple[str, ...] = ()
    diagnostics: Callable[[Any], dict[str, Array]] | None = None


def reset_where(done: Array, state: Any, init_state: Any) -> Any:
    """Per-env reset of a carry pytree with leading env axis: ``where(done, init, state)``.

    Args:
        done: ``[B]`` bool, True where the carry must restart.
        state: carry pytree, every leaf ``[B, ...]``.
        init_state: carry pytree of the same structure (fresh values).
    """

    def pick(new: Array, old: Array) -> Array:
        d = done.reshape(done.shape + (1,) * (old.ndim - 1))
        return jnp.where(d, new, old)

    return jax.tree.map(pick, init_state, state)


def check_hyper(name: str, given: Mapping[str, Any], defaults: dict[str, Any],
                what: str = "hyperparameters") -> dict[str, Any]:
    """Merge user hyperparameters into defaults; unknown names -> ConfigError
    ``agent.<name>.<key>`` listing ``what`` and the closest (by spelling, or another library's
    name for it: ``learning_rate`` -> ``lr``; :func:`neurorl.errors.closest_hyper`)."""
    from neurorl.errors import closest_hyper

    for k in given:
        if k not in defaults:
            raise ConfigError(f"agent.{name}.{k}", given[k],
                              f"one of the {what} {sorted(defaults)}",
                              closest_hyper(str(k), defaults))
    return {**defaults, **given}


def positive(name: str, **values: float) -> None:
    """Raise ConfigError for any value that is not > 0 (host side)."""
    for k, v in values.items():
        if not (isinstance(v, (int, float, np.floating, np.integer)) and v > 0):
            raise ConfigError(f"agent.{name}.{k}", v, "a number > 0")


def unit_interval(name: str, **values: float) -> None:
    """Raise ConfigError for any value outside [0, 1] (host side)."""
    for k, v in values.items():
        if not (isinstance(v, (int, float, np.floating, np.integer)) and 0 <= v <= 1):
            raise ConfigError(f"agent.{name}.{k}", v, "a number in [0, 1]")


__all__ = [
    "DEFAULT_OBS_RANGE",
    "Agent",
    "AgentSpec",
    "AgentStats",
    "check_hyper",
    "reset_where",
    "spec_from_env",
]
