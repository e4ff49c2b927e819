"""Decoders: time-first output spikes ``[K, n]`` -> action / value.

All decoders are pure functions written for ONE network (vmap outside).

    * ``spike_count(spikes[K, n_actions]) -> action``: argmax of spike counts; ties go to the
      lowest index (``jnp.argmax`` semantics), so decoding is deterministic.
    * ``population_vote(spikes[K, n_actions * pop]) -> action``: neurons are grouped
      action-major (``[a0_0..a0_{pop-1}, a1_0, ...]``); the group with most spikes wins,
      ties to the lowest index.
    * ``leaky_readout(z[K, n], w[n, m], b[m], y0[m], kappa) -> (y_K, ys[K, m])``: the leaky,
      non-spiking readout of e-prop, ``y_t = kappa * y_{t-1} + z_t @ w`` (Bellec et al. 2020,
      Methods, "readout"), plus bias ``b`` on the output; for values, logits and continuous
      actions (``to_box`` squashes into an action box with tanh).

References:
    Bellec et al. (2020). A solution to the learning dilemma for recurrent networks of spiking
    neurons. Nat. Commun. 11:3625 (readout y_k^t = kappa y_k^{t-1} + sum_j W_kj z_j^t + b_k).
    Tang et al. (2020). PopSAN, CoRL (population decoding).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from neurorl.errors import ConfigError, ShapeError, lookup

Array = jax.Array


def _check_2d(x: Array, what: str) -> None:
    if x.ndim != 2:
        raise ShapeError(what, "[K, n]", tuple(x.shape))


def spike_count(spikes: Array) -> Array:
    """Action = argmax over neurons of the spike count summed over substeps.

    Args:
        spikes: ``[K, n_actions]`` spikes (0/1 float).

    Returns:
        int32 scalar action; ties go to the lowest index.
    """
    _check_2d(spikes, "spike_count spikes")
    return jnp.argmax(jnp.sum(spikes, axis=0)).astype(jnp.int32)


def population_counts(spikes: Array, n_actions: int) -> Array:
    """Spike counts per action group, ``[n_actions]`` (groups are action-major, equal size)."""
    _check_2d(spikes, "population_vote spikes")
    n = spikes.shape[1]
    if n_actions < 1 or n % n_actions:
        raise ConfigError("decoder.n_actions", n_actions, f"a divisor of the {n} output neurons")
    return jnp.sum(spikes, axis=0).reshape(n_actions, n // n_actions).sum(axis=1)


def population_vote(spikes: Array, n_actions: int) -> Array:
    """Action = group with the most spikes (ties to the lowest index).

    Args:
        spikes: ``[K, n_actions * pop]`` output spikes, action-major groups.
        n_actions: number of actions (static).

    Returns:
        int32 scalar action.
    """
    return jnp.argmax(population_counts(spikes, n_actions)).astype(jnp.int32)


def leaky_readout(
    z: Array, w: Array, b: Array, y0: Array, kappa: float | Array
) -> tuple[Array, Array]:
    """Leaky (non-spiking) readout over K substeps.

    ``u_t = kappa * u_{t-1} + z_t @ w`` with ``u_0 = y0`` (the carried readout state, bias
    excluded) and output ``y_t = u_t + b``.

    Args:
        z: ``[K, n]`` presynaptic spikes.
        w: ``[n, m]`` readout weights.
        b: ``[m]`` bias.
        y0: ``[m]`` readout state before the first substep (no bias).
        kappa: decay per substep, ``exp(-dt / tau_out)``, in [0, 1).

    Returns:
        ``(u_K, ys)``: the new readout state ``[m]`` (no bias; carry it to the next call) and the
        outputs ``ys = u_t + b`` for every substep, ``[K, m]``.
    """
    _check_2d(z, "leaky_readout z")
    if w.shape[0] != z.shape[1]:
        raise ShapeError("leaky_readout w", (z.shape[1], "m"), tuple(w.shape))

    def body(u: Array, zt: Array) -> tuple[Array, Array]:
        u = kappa * u + zt @ w
        return u, u + b

    return jax.lax.scan(body, y0, z)


def to_box(y: Array, low: Any, high: Any) -> Array:
    """Squash a readout into an action box: ``low + (tanh(y) + 1) / 2 * (high - low)``."""
    low = jnp.asarray(low, jnp.float32)
    high = jnp.asarray(high, jnp.float32)
    return low + 0.5 * (jnp.tanh(y) + 1.0) * (high - low)


DECODERS: dict[str, Callable[..., Any]] = {
    "spike_count": spike_count,
    "population_vote": population_vote,
    "leaky_readout": leaky_readout,
}


def get_decoder(name: str) -> Callable[..., Any]:
    """A registered decoder by name (unknown name -> ConfigError with the closest name)."""
    return lookup(DECODERS, name, "decoder")


__all__ = [
    "DECODERS",
    "get_decoder",
    "leaky_readout",
    "population_counts",
    "population_vote",
    "spike_count",
    "to_box",
]
