"""Exponential spike traces shared by the local learning rules.

A trace low-pass filters a spike train: ``x_t = decay * x_{t-1} + amount * s_t`` with
``decay = exp(-dt / tau)`` -- the exact discretisation of ``tau dx/dt = -x + tau*amount*sum delta``
sampled every ``dt`` (Morrison, Diesmann & Gerstner 2008, Biol. Cybern. 98:459, Eq. 2; Izhikevich
2007 uses decay 0.95 per ms, i.e. tau = 20 ms). Units: ``tau`` and ``dt`` in ms.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
from jax import Array

from neurorl.errors import ConfigError


def check_tau(field: str, tau: float) -> None:
    """Host-side check that a time constant (ms) is a finite number > 0."""
    try:
        ok = math.isfinite(float(tau)) and float(tau) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(field, tau, "a time constant in ms, a finite number > 0")


def decay_factor(tau: float | Array, dt: float | Array = 1.0) -> Array:
    """Per-step decay ``exp(-dt / tau)`` (float32)."""
    return jnp.exp(-jnp.asarray(dt, jnp.float32) / jnp.asarray(tau, jnp.float32))


def trace_init(n: int) -> Array:
    """A zero trace for ``n`` neurons ([n] float32)."""
    return jnp.zeros((n,), jnp.float32)


def trace_update(trace: Array, spikes: Array, decay: Array, amount: float | Array = 1.0,
                 mode: str = "add") -> Array:
    """One step of an exponential trace.

    Args:
        trace: [n] previous trace.
        spikes: [n] spikes of this step (0/1 float32).
        decay: ``exp(-dt / tau)``.
        amount: jump per spike.
        mode: ``"add"`` (all-to-all pairing, traces sum) or ``"set"`` (nearest-spike pairing:
            the trace is reset to ``amount`` at a spike, as in Izhikevich 2007's code).

    Returns:
        [n] new trace.
    """
    decayed = decay * trace
    if mode == "set":
        return jnp.where(spikes > 0, amount, decayed)
    return decayed + amount * spikes


BLOCK_MAX = 1024  # longest block computed with a [T, T] decay matrix; longer blocks scan


def decay_matrix(decay: float | Array, T: int) -> Array:
    """``L[k, j] = decay^(k - j)`` for ``j <= k``, else 0 (``[T, T]`` float32)."""
    import numpy as np

    e = np.arange(T)[:, None] - np.arange(T)[None, :]
    d = jnp.asarray(decay, jnp.float32)
    return jnp.where(jnp.asarray(e >= 0), d ** jnp.asarray(np.maximum(e, 0), jnp.float32), 0.0)


def block_traces(x0: Array, spikes: Array, decay: float | Array) -> Array:
    """All T values of an additive trace at once (``mode="add"``, amount 1).

    ``x_k = decay x_{k-1} + s_k`` for k = 0..T-1 from ``x_{-1} = x0``, i.e.
    ``X = L S + decay^(k+1) x0`` with the decay matrix ``L`` (:func:`decay_matrix`).

    Args:
        x0: ``[n]`` trace before the block.
        spikes: ``[T, n]`` spikes of the T steps.
        decay: ``exp(-dt / tau)``.

    Returns:
        ``[T, n]``: the trace after each step (this step's spike included).
    """
    T = spikes.shape[0]
    d = jnp.asarray(decay, jnp.float32)
    powers = d ** jnp.arange(1, T + 1, dtype=jnp.float32)
    return decay_matrix(d, T) @ spikes.astype(jnp.float32) + powers[:, None] * x0[None, :]


# ---------------------------------------------------------------- event-driven (lazy) traces
class EventRule(NamedTuple):
    """The event-driven form of a rule, used by ``CompiledNetwork.step`` / ``run`` on plastic
    connections with ``LearningRule(event_driven=...)`` (Morrison, Diesmann & Gerstner 2008,
    Sec. 4: traces kept with the time of their last change, decayed analytically when a spike
    reads them; synapses touched only in the rows / columns of the neurons that spiked).

    Attributes:
        init: ``weights [n_pre, n_post] -> state``.
        step: ``(state, weights, pre [n_pre], post [n_post], modulator, t, mask, constrain,
            cap_pre, cap_post) -> (state, weights)``: one step of accumulate + update + the
            optimizer ``optax.sgd(1.0)`` (w <- w + Delta w), ``constrain`` (Dale's sign) and the
            structural ``mask`` applied to the entries it changes. ``t`` is the step index,
            ``cap_pre`` / ``cap_post`` the spike-list lengths (a step with more spikes takes
            the dense fallback, counted in ``state.overflows``).
    """

    init: Callable[[Array], Any]
    step: Callable[..., tuple[Any, Array]]


def lazy_decay(value: Array, t_last: Array, t: Array, decay: Array) -> Array:
    """A trace last changed at step ``t_last`` read at step ``t``: ``value * decay^(t - t_last)``.

    The clock-driven trace multiplies by ``decay`` once per step; the power is one rounding
    instead of ``t - t_last`` (the two differ by a few ulp per step elapsed).
    """
    n = (t - t_last).astype(jnp.float32)
    return value * jnp.power(jnp.asarray(decay, jnp.float32), n)


def spike_rows(a: Array, capacity: int) -> tuple[Array, Array]:
    """Indices of the nonzero entries of ``a`` (ascending, padded with ``len(a)``) and whether
    they fit in ``capacity`` (:func:`neurorl.core.propagation.spike_list`)."""
    from neurorl.core.propagation import spike_list

    return spike_list(a, capacity)
