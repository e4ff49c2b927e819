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
