"""Synaptic propagation paths of a compiled connection: dense, padded gather, event-driven.

A connection's current into its targets, ``I_j = sum_i w_ij s_i`` over the spikes ``s`` that
arrive this step, can be computed three ways (``Connection(propagation=...)``):

``"dense"``  ``s @ W`` on the ``[n_pre, n_post]`` matrix (dense storage): every synapse, every step;
             the fastest for small or dense projections (one matmul, vmaps as a batched matmul).
``"gather"`` the padded fan-in (ELLPACK) rows ``sum_k w[j, k] s[idx[j, k]]`` (sparse storage):
             every synapse, every step, no scatter (vmaps and maps to GPUs without atomics).
``"event"``  event-driven: the indices of the source neurons that spiked, a compacted list of
             bounded length ``capacity`` (``jnp.nonzero(size=capacity)``), index their *outgoing*
             synapses (a padded fan-out table built on the host, CSR by presynaptic neuron), and
             their weights are scatter-added onto the targets: work ~ spikes x fan-out, not
             synapse count (Brette et al. 2007, section 2.2; NEST and Brian2 propagate this way).
             Dense storage: the rows ``W[i, :]`` of the spiking neurons are summed.

The list length adapts per step (``lax.switch`` over lengths ``capacity / 16``, ``/ 4`` and
``capacity``: a quiet step pays for a short list). Overflow is never silent: a step where more
than ``capacity`` source neurons spiked takes the clock-driven path (dense / gather) for that
step -- the result is the same, only slower. Under ``jax.vmap`` a batched ``switch`` evaluates
every branch, so a vmapped population of networks should keep ``"gather"`` (``"auto"`` does not
know about vmap; set it explicitly).

Per-synapse delays: the fan-out table has one slice per delay ``d`` (the synapses of delay
``d``), and the spikes emitted ``d`` steps ago (the source's ring buffer) index that slice; each
spike is still touched once per outgoing synapse.

Results: every path adds the same products ``w_ij * s_i`` (``s_i`` = 1 for a spike: exact); only
the order of the additions into one target may differ (the gather and the scatter both add the
sources of one target in ascending index; XLA's reductions may reassociate). With weights whose
partial sums are exact (dyadic rationals: chip grids, or tests) the paths agree bit for bit; with
arbitrary float weights the currents agree to rounding (tests/core/test_propagation.py).

References:
    Brette, R. et al. (2007). Simulation of networks of spiking neurons: a review of tools and
    strategies. J. Comput. Neurosci. 23:349-398.
    Morrison, A., Mehring, C., Geisel, T., Aertsen, A. & Diesmann, M. (2005). Advancing the
    boundaries of high-connectivity network simulation with distributed computing. Neural
    Comput. 17:1776-1801 (event-driven delivery, spikes exchanged once per min-delay).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from neurorl.errors import ConfigError, closest

Array = jax.Array

PROPAGATIONS = ("auto", "dense", "gather", "event")
# cost ratio of one scattered synapse to one gathered synapse (XLA CPU, measured on CUBA)
_SCATTER_COST = 4.0
DEFAULT_CAPACITY_FRACTION = 0.01  # of the source neurons per step before the overflow fallback
MIN_CAPACITY = 16
_NON_SPIKING = ("Input", "LI")  # analog outputs: every neuron "fires" every step


def check_propagation(propagation: Any) -> str:
    """Validate a ``Connection.propagation`` value.

    Raises:
        ConfigError: not one of ``PROPAGATIONS`` (with the closest name).
    """
    if propagation not in PROPAGATIONS:
        raise ConfigError("Connection.propagation", propagation, f"one of {list(PROPAGATIONS)}",
                          closest(str(propagation), PROPAGATIONS))
    return propagation


def check_capacity(capacity: Any) -> Any:
    """Validate ``Connection.event_capacity``: None, an int >= 1 or a fraction in (0, 1].

    Raises:
        ConfigError: anything else.
    """
    if capacity is None:
        return None
    if isinstance(capacity, (int, np.integer)) and not isinstance(capacity, bool):
        if capacity >= 1:
            return int(capacity)
    elif isinstance(capacity, float) and 0.0 < capacity <= 1.0:
        return float(capacity)
    raise ConfigError("Connection.event_capacity", capacity,
                      "None, an int >= 1 (spikes per step) or a fraction of the source in (0, 1]")


def resolve_capacity(capacity: Any, n_pre: int, rate_hz: float | None, dt_ms: float) -> int:
    """Spikes per step the event list holds before the overflow fallback.

    ``capacity`` None: 4x the expected spikes per step (``rate_hz``) or 1 % of the source, at
    least ``MIN_CAPACITY``, at most ``n_pre``.
    """
    if isinstance(capacity, int):
        cap = capacity
    elif isinstance(capacity, float):
        cap = math.ceil(capacity * n_pre)
    elif rate_hz is not None:
        cap = math.ceil(4.0 * n_pre * rate_hz * dt_ms * 1e-3)
    else:
        cap = math.ceil(DEFAULT_CAPACITY_FRACTION * n_pre)
    return int(min(max(cap, MIN_CAPACITY), n_pre))


def choose(propagation: str, storage: str, source_model: str, n_pre: int, n_post: int,
           n_edges: int, capacity: int, fanout_max: int, plastic: bool) -> str:
    """The path of a connection: the user's choice, or ``"auto"`` resolved on the host.

    ``"auto"``: dense storage -> ``"dense"`` (small/dense projections, plastic connections and
    every agent network keep the matmul); sparse storage from a spiking source -> ``"event"``
    when ``capacity x fan-out`` scattered synapses cost less than the padded gather of every
    synapse, else ``"gather"``; an analog source (Input, LI) -> ``"gather"``.

    Raises:
        ConfigError: ``"gather"`` on dense storage (no fan-in table) or ``"dense"`` on sparse.
    """
    if propagation == "auto":
        if storage == "dense":
            return "dense"
        if source_model in _NON_SPIKING:
            return "gather"
        event_cost = _SCATTER_COST * capacity * fanout_max + n_pre
        gather_cost = n_edges if n_edges else n_post
        return "event" if event_cost < gather_cost else "gather"
    if propagation == "gather" and storage == "dense":
        raise ConfigError("Connection.propagation", "gather", "'dense' or 'event' for a dense-"
                          "stored connection (plastic, or storage='dense')",
                          "dense" if plastic else "event")
    if propagation == "dense" and storage == "sparse":
        raise ConfigError("Connection.propagation", "dense", "'gather' or 'event' for a "
                          "sparse-stored connection (or storage='dense')", "gather")
    return propagation


def fanout_tables(pre: np.ndarray, post: np.ndarray, pos: np.ndarray, n_pre: int, n_post: int,
                  delay: np.ndarray | None) -> dict[str, np.ndarray]:
    """Host-side padded fan-out (CSR by presynaptic neuron) of a connection.

    Args:
        pre, post: edge lists.
        pos: position of each edge's weight in the flattened weight array (dense storage:
            ``pre * n_post + post``; sparse: ``post * k_max + slot``).
        delay: per-edge delay in steps, or None (one delay: one slice).

    Returns:
        ``{"ev_post": [D, n_pre + 1, f_max], "ev_pos": [D, n_pre + 1, f_max]}`` int32, slice
        ``d`` holding the synapses of delay ``d + 1`` (one slice without per-synapse delays);
        padding (and the extra row ``n_pre`` that absent list entries index) targets ``n_post``,
        which the scatter drops, at weight position 0. Within a row the targets ascend.
    """
    n_slices = int(delay.max()) if delay is not None and len(delay) else 1
    d = (delay - 1).astype(np.int64) if delay is not None else np.zeros(len(pre), np.int64)
    key = d * (n_pre + 1) + pre
    counts = np.bincount(key, minlength=n_slices * (n_pre + 1))
    f_max = max(int(counts.max()) if len(pre) else 0, 1)
    flat = key.astype(np.int64) * (n_post + 1) + post
    if len(flat) and np.all(flat[1:] >= flat[:-1]):
        order = np.arange(len(flat))  # edge lists come sorted by (pre, post): lexsort's result
    else:
        order = np.lexsort((post, key))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.empty(len(pre), np.int64)
    slot[order] = np.arange(len(pre)) - starts[key[order]]
    ev_post = np.full((n_slices, n_pre + 1, f_max), n_post, np.int32)
    ev_pos = np.zeros((n_slices, n_pre + 1, f_max), np.int32)
    ev_post[d, pre, slot] = post
    ev_pos[d, pre, slot] = pos
    return {"ev_post": ev_post, "ev_pos": ev_pos}


def spike_list(a: Array, capacity: int) -> tuple[Array, Array]:
    """The compacted indices of the nonzero entries of ``a`` ``[n]`` (ascending), padded with
    ``n`` up to ``capacity``, and whether they fit (``count <= capacity``).

    Two-level ``lax.top_k``: the first ``capacity`` active blocks of ``L ~ sqrt(n / capacity)``
    neurons, then the first ``capacity`` active entries of those blocks (a score that falls with
    the index makes top_k return ascending indices). One top_k over all n (a partial sort) cost
    ~10 ms at n = 320,000 on XLA CPU, jnp.nonzero's cumsum more; the two small ones ~0.5 ms.
    """
    n = a.shape[-1]
    active = a != 0
    fits = jnp.sum(active) <= capacity
    k = min(capacity, n)
    L = max(1, int(round(math.sqrt(n / k))))
    B = -(-n // L)
    blocks = jnp.pad(active, (0, B * L - n)).reshape(B, L)
    bscore = jnp.where(blocks.any(axis=1), B - jnp.arange(B, dtype=jnp.float32), 0.0)
    kb = min(k, B)
    v, blk = jax.lax.top_k(bscore, kb)
    blk = jnp.where(v > 0, blk, B)
    sub = jnp.take(blocks, blk, axis=0, mode="fill", fill_value=False)  # [kb, L]
    pos = blk[:, None] * L + jnp.arange(L)[None, :]
    score = jnp.where(sub, (kb * L - jnp.arange(kb * L, dtype=jnp.float32)).reshape(kb, L), 0.0)
    v2, i2 = jax.lax.top_k(score.reshape(-1), k)
    idx = jnp.where(v2 > 0, pos.reshape(-1)[i2], n)
    if k < capacity:
        idx = jnp.concatenate([idx, jnp.full((capacity - k,), n, idx.dtype)])
    return idx, fits


def tiers(capacity: int) -> list[int]:
    """List lengths tried in turn (``capacity / 16``, ``/ 4``, ``capacity``, at least
    ``MIN_CAPACITY``): a step pays for the smallest list its spikes fit in."""
    return sorted({min(capacity, max(MIN_CAPACITY, capacity // 16)),
                   min(capacity, max(MIN_CAPACITY, capacity // 4)), capacity})


def _tiered(a: Array, capacity: int, count: Any, branch_of_k: Any, fallback: Any) -> Array:
    ks = tiers(capacity)
    count = jnp.sum(a != 0) if count is None else count
    which = jnp.searchsorted(jnp.asarray(ks), count)  # first list that holds them; len = none
    return jax.lax.switch(which, [branch_of_k(k) for k in ks] + [fallback])


def event_current(a: Array, w_flat: Array, ev_post: Array, ev_pos: Array, n_post: int,
                  capacity: int, fallback: Any, count: Any = None) -> Array:
    """Event-driven current into ``n_post`` targets from arriving outputs ``a`` ``[n_pre]``.

    Args:
        a: what arrives this step from each source neuron (spikes: 0/1).
        w_flat: the connection's weights, flattened (``ev_pos`` indexes them).
        ev_post, ev_pos: one slice ``[n_pre + 1, f_max]`` of :func:`fanout_tables`.
        capacity: the longest spike list (:func:`tiers` are tried first).
        fallback: ``fallback() -> [n_post]`` the clock-driven current, taken on overflow.
        count: ``sum(a != 0)`` when already computed (shared by the connections of one source
            and delay).

    Returns:
        ``[n_post]`` current.
    """
    a_pad = jnp.concatenate([a, jnp.zeros((1,), a.dtype)])

    def branch(k: int) -> Any:
        def events() -> Array:
            idx, _ = spike_list(a, k)
            tgt = ev_post[idx]  # [k, f_max]
            val = w_flat[ev_pos[idx]] * a_pad[idx][:, None]
            out = jnp.zeros((n_post,), w_flat.dtype)
            return out.at[tgt.reshape(-1)].add(val.reshape(-1), mode="drop")

        return events

    return _tiered(a, capacity, count, branch, fallback)


def event_current_dense(a: Array, w: Array, capacity: int, fallback: Any,
                        count: Any = None) -> Array:
    """Event-driven current of a dense ``[n_pre, n_post]`` connection: the rows of the sources
    that spiked, summed (``k x n_post`` instead of ``n_pre x n_post``)."""

    def branch(k: int) -> Any:
        def events() -> Array:
            idx, _ = spike_list(a, k)
            rows = jnp.take(w, idx, axis=0, mode="fill", fill_value=0.0)  # [k, n_post]
            vals = jnp.take(a, idx, mode="fill", fill_value=0.0)
            return jnp.sum(rows * vals[:, None], axis=0)

        return events

    return _tiered(a, capacity, count, branch, fallback)


def table_bytes(tables: dict[str, Any]) -> int:
    """Bytes of the fan-out tables (memory per synapse reports)."""
    return int(sum(np.asarray(t).nbytes for t in tables.values()))
