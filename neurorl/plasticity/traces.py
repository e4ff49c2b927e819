"""Exponential spike traces shared by the local learning rules.

A trace low-pass filters a spike train: ``x_t = decay * x_{t-1} + amount * s_t`` with
``decay = exp(-dt / tau)`` -- the exact discretisation of ``tau dx/dt = -x + tau*amount*sum delta``
sampled every ``dt`` (Morrison, Diesmann & Gerstner 2008, Biol. Cybern. 98:459, Eq. 2; Izhikevich
2007 uses decay 0.95 per ms, i.e. tau = 20 ms). Units: ``tau`` and ``dt`` in ms.
"""

from __future__ import annotations

import math

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
