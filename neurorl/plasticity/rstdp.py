"""Reward-modulated STDP: three-factor rule with a per-synapse eligibility trace.

Eligibility in the discrete-time form of Florian 2007 (Neural Comput. 19:1468, MSTDPET,
Sec. 4: the traces ``P+``/``P-`` take this step's spikes, then pair with them) -- the structure
of Izhikevich 2007 (Cereb. Cortex 17:2443, Eqs. 1-2) -- with step dt (ms)::

    x_i <- exp(-dt / tau_plus) x_i + pre_i          (presynaptic trace, this step included)
    y_j <- exp(-dt / tau_minus) y_j + post_j        (postsynaptic trace, this step included)
    c_ji <- exp(-dt / tau_c) c_ji + A_plus x_i post_j - A_minus pre_i y_j
    Delta w_ji = lr * d * c_ji                                            (at each update)

A pre and a post spike in the same step therefore pair both ways (``A_plus - A_minus``; they
cancel for ``A_plus = A_minus``, the reference agent's setting). On a delay-0 (feed-forward)
connection the presynaptic spike of a step is part of the drive that made the postsynaptic
neuron fire in that step, so the causal (LTP) half must see it. (Plain :mod:`~.stdp` keeps the
Song / Morrison convention in which same-step spikes do not pair.) Nearest-spike pairing sets a
trace to 1 at a spike instead of adding (Izhikevich's code).

The third factor ``d`` is built from the ``modulator`` passed to ``update`` according to
``modulator_kind``:

    * ``"raw"``: d = m (e.g. Florian's MSTDPET with r(t) = m).
    * ``"reward_baseline"``: d = m - b, then b <- b + baseline_rate (m - b)  (Legenstein et al.
      2008, Eq. 3: reward minus its running mean; b lives in the rule state).
    * ``"td"``: d = m, where m is a TD error delta = r + gamma V' - V from a critic (Fremaux et al.
      2013). Numerically identical to ``"raw"``; named so configs say what they feed in.
    * ``"dopamine"``: Izhikevich's extracellular dopamine, D <- exp(-dt/tau_d) D + m and
      d = tonic_da + D (tau_d = 200 ms, tonic 0.002 in the paper's code).

The modulator is a scalar or one value per postsynaptic neuron ``[n_post]`` (the shapes
``CompiledNetwork.step`` / ``run`` / ``rule_updates`` accept); ``b`` and ``D`` are kept per
postsynaptic neuron, so either shape leaves the rule state's shapes unchanged (a scalar one
keeps every entry equal, as a single shared value would be).

``accumulate_block`` (all-to-all pairing) computes T steps with fixed weights at once: the traces
of the T steps from a decay matrix, and the T rank-1 increments as one rank-2T product::

    c_T = dc^T c_0 + [D X; D S_pre]^T [A_plus S_post; -A_minus Y],   D_k = dc^(T-1-k)

equal to T calls of ``accumulate`` (tested); nearest-spike pairing scans.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax import Array

from neurorl.errors import ConfigError
from neurorl.plasticity.stdp import check_choice, check_nonneg
from neurorl.plasticity.traces import (
    BLOCK_MAX,
    block_traces,
    check_tau,
    decay_factor,
    trace_update,
)

MODULATOR_KINDS = ("reward_baseline", "td", "raw", "dopamine")


@struct.dataclass
class RSTDPState:
    """R-STDP rule state.

    Attributes:
        x_pre: [n_pre] presynaptic STDP trace (tau_plus).
        y_post: [n_post] postsynaptic STDP trace (tau_minus).
        eligibility: [n_pre, n_post] eligibility trace c (tau_c).
        baseline: [n_post] running mean of the modulator (``"reward_baseline"``), one per
            postsynaptic neuron: a per-neuron modulator ``[n_post]`` (e-prop-style learning
            signal) keeps one baseline each; a scalar one keeps them all equal.
        dopamine: [n_post] extracellular dopamine level D (``"dopamine"``), likewise per
            postsynaptic neuron.
    """

    x_pre: Array
    y_post: Array
    eligibility: Array
    baseline: Array
    dopamine: Array


def rstdp(a_plus: float = 1.0, a_minus: float = 1.0, tau_plus: float = 20.0,
          tau_minus: float = 20.0, tau_c: float = 1000.0, dt: float = 1.0, lr: float = 0.01,
          modulator_kind: str = "reward_baseline", baseline_rate: float = 0.05,
          tau_d: float = 200.0, tonic_da: float = 0.0, pairing: str = "all_to_all"):
    """Three-factor R-STDP (Izhikevich 2007 / Florian 2007 MSTDPET) as a :class:`PlasticityRule`.

    Args:
        a_plus: LTP amplitude into the eligibility trace.
        a_minus: LTD amplitude (> 0; the sign is in the window).
        tau_plus: LTP window (ms).
        tau_minus: LTD window (ms).
        tau_c: eligibility time constant (ms); 1000 ms in Izhikevich 2007, 25 ms in Florian 2007.
        dt: simulation step (ms).
        lr: learning rate eta of Delta w = eta d c.
        modulator_kind: ``"reward_baseline"``, ``"td"``, ``"raw"`` or ``"dopamine"``.
        baseline_rate: step size of the running reward baseline, in (0, 1].
        tau_d: dopamine decay (ms), ``"dopamine"`` only.
        tonic_da: tonic dopamine added to d, ``"dopamine"`` only.
        pairing: ``"all_to_all"`` or ``"nearest"`` (Izhikevich's code resets traces at spikes).

    Returns:
        PlasticityRule(init, accumulate, update, accumulate_block); ``update`` returns
        ``-lr d c`` (descent sign).
    """
    from neurorl.plasticity import PlasticityRule

    check_choice("rstdp.modulator_kind", modulator_kind, MODULATOR_KINDS)
    check_choice("rstdp.pairing", pairing, ("all_to_all", "nearest"))
    for name, tau in (("tau_plus", tau_plus), ("tau_minus", tau_minus), ("tau_c", tau_c),
                      ("tau_d", tau_d), ("dt", dt)):
        check_tau(f"rstdp.{name}", tau)
    check_nonneg("rstdp.a_plus", a_plus)
    check_nonneg("rstdp.a_minus", a_minus)
    check_nonneg("rstdp.lr", lr)
    if not 0.0 < float(baseline_rate) <= 1.0:
        raise ConfigError("rstdp.baseline_rate", baseline_rate, "a number in (0, 1]")
    dp, dm = decay_factor(tau_plus, dt), decay_factor(tau_minus, dt)
    dc, dd = decay_factor(tau_c, dt), decay_factor(tau_d, dt)

    def init(weights: Array) -> RSTDPState:
        n_pre, n_post = jnp.shape(weights)
        zero = jnp.zeros((n_post,), jnp.float32)  # baseline, dopamine: one per post neuron
        return RSTDPState(jnp.zeros((n_pre,), jnp.float32), jnp.zeros((n_post,), jnp.float32),
                          jnp.zeros((n_pre, n_post), jnp.float32), zero, zero)

    def accumulate(state: RSTDPState, pre: Array, post: Array, neuron_state: Any = None
                   ) -> RSTDPState:
        pre, post = pre.astype(jnp.float32), post.astype(jnp.float32)
        mode = "set" if pairing == "nearest" else "add"
        x = trace_update(state.x_pre, pre, dp, 1.0, mode)  # this step's spikes first (Florian)
        y = trace_update(state.y_post, post, dm, 1.0, mode)
        c = (dc * state.eligibility + a_plus * x[:, None] * post[None, :]
             - a_minus * pre[:, None] * y[None, :])
        return state.replace(x_pre=x, y_post=y, eligibility=c)

    def accumulate_block(state: RSTDPState, pre: Array, post: Array, neuron_state: Any = None
                         ) -> RSTDPState:
        pre, post = pre.astype(jnp.float32), post.astype(jnp.float32)
        T = pre.shape[0]
        if pairing == "nearest" or T > BLOCK_MAX:
            def body(s: RSTDPState, pq: tuple[Array, Array]) -> tuple[RSTDPState, None]:
                return accumulate(s, pq[0], pq[1]), None

            return jax.lax.scan(body, state, (pre, post))[0]
        x = block_traces(state.x_pre, pre, dp)  # [T, n_pre]
        y = block_traces(state.y_post, post, dm)  # [T, n_post]
        d = dc ** jnp.arange(T - 1, -1, -1, dtype=jnp.float32)  # dc^(T-1-k)
        left = jnp.concatenate([d[:, None] * x, d[:, None] * pre], axis=0)  # [2T, n_pre]
        right = jnp.concatenate([a_plus * post, -a_minus * y], axis=0)  # [2T, n_post]
        c = dc**T * state.eligibility + left.T @ right
        return state.replace(x_pre=x[-1], y_post=y[-1], eligibility=c)

    def update(state: RSTDPState, modulator: Array, weights: Array) -> tuple[Array, RSTDPState]:
        m = jnp.asarray(modulator, jnp.float32)
        if modulator_kind == "reward_baseline":
            d = m - state.baseline
            state = state.replace(baseline=state.baseline + baseline_rate * d)
        elif modulator_kind == "dopamine":
            da = dd * state.dopamine + m
            d = tonic_da + da
            state = state.replace(dopamine=da)
        else:
            d = m
        d = jnp.broadcast_to(d, state.y_post.shape)  # scalar or [n_post]: one per post neuron
        return -lr * d[None, :] * state.eligibility, state

    return PlasticityRule(init, accumulate, update, accumulate_block)


# ------------------------------------------------------------------ event-driven formulation
@struct.dataclass
class EventRSTDPState:
    """Event-driven R-STDP state (lazy traces and eligibility).

    Attributes:
        x_pre, t_pre: [n_pre] presynaptic trace as of its last spike, and that step (int32).
        y_post, t_post: [n_post] postsynaptic trace and the step of its last spike.
        eligibility: [n_pre, n_post] c as of the last step either end of the synapse spiked,
            ``max(t_pre[i], t_post[j])``; its value at step t is
            ``c exp(-(t - max(t_pre[i], t_post[j])) dt / tau_c)``.
        baseline, dopamine: as in :class:`RSTDPState`.
        overflows: [] int32 steps whose spikes did not fit the lists (dense fallback taken).
    """

    x_pre: Array
    t_pre: Array
    y_post: Array
    t_post: Array
    eligibility: Array
    baseline: Array
    dopamine: Array
    overflows: Array


def rstdp_event(a_plus: float = 1.0, a_minus: float = 1.0, tau_plus: float = 20.0,
                tau_minus: float = 20.0, tau_c: float = 1000.0, dt: float = 1.0,
                lr: float = 0.01, modulator_kind: str = "reward_baseline",
                baseline_rate: float = 0.05, tau_d: float = 200.0, tonic_da: float = 0.0,
                pairing: str = "all_to_all"):
    """Event-driven R-STDP: the rule of :func:`rstdp` (same arguments, same result) with its
    traces and eligibility tag kept lazily (Morrison, Diesmann & Gerstner 2008, Sec. 4).

    The pre/post traces store the step of their last change and are decayed analytically when
    read; an eligibility entry ``c_ij`` changes only when neuron i or j spikes, so its last
    change is ``max(t_pre[i], t_post[j])`` and it is decayed analytically from there
    (``exp(-(t - t_last) dt / tau_c)``): a step updates the rows of the presynaptic spikes and
    the columns of the postsynaptic spikes only (Izhikevich 2007's tag, Florian 2007's
    discrete-time order). The third factor then moves every tagged synapse,
    ``Delta w = lr d c`` (Izhikevich 2007, Eq. 2; Fremaux & Gerstner 2016): a global signal
    reaches all of them, so this dense step is taken only on steps where ``d != 0`` -- sparse
    rewards (``modulator_kind="raw"`` / ``"td"`` with a zero modulator between rewards) skip
    it; a baseline-subtracted or tonic-dopamine ``d`` is nonzero every step and pays it every
    step. Weights and spikes equal the clock-driven path to the rounding of the decay powers.

    The arguments are those of :func:`rstdp`.

    Returns:
        ``EventRule(init, step)`` (:class:`neurorl.plasticity.traces.EventRule`).

    References:
        Morrison, A., Diesmann, M. & Gerstner, W. (2008). Biol. Cybern. 98:459-478.
        Izhikevich, E. M. (2007). Solving the distal reward problem through linkage of STDP
        and dopamine signaling. Cereb. Cortex 17:2443-2452.
        Potjans, W., Morrison, A. & Diesmann, M. (2010). Enabling functional neural circuit
        simulations with distributed computing of neuromodulated plasticity. Front. Comput.
        Neurosci. 4:141 (the event-driven dopamine synapse of NEST).
    """
    from neurorl.core.propagation import spike_list
    from neurorl.plasticity.stdp import lazy_trace_step
    from neurorl.plasticity.traces import EventRule, lazy_decay

    rstdp(a_plus, a_minus, tau_plus, tau_minus, tau_c, dt, lr, modulator_kind, baseline_rate,
          tau_d, tonic_da, pairing)  # validate
    dp, dm = decay_factor(tau_plus, dt), decay_factor(tau_minus, dt)
    dc, dd = decay_factor(tau_c, dt), decay_factor(tau_d, dt)

    def init(weights: Array) -> EventRSTDPState:
        n_pre, n_post = jnp.shape(weights)
        zf, zi = jnp.zeros((n_post,), jnp.float32), jnp.zeros((), jnp.int32)
        return EventRSTDPState(jnp.zeros((n_pre,), jnp.float32), jnp.zeros((n_pre,), jnp.int32),
                               jnp.zeros((n_post,), jnp.float32),
                               jnp.zeros((n_post,), jnp.int32),
                               jnp.zeros((n_pre, n_post), jnp.float32), zf, zf, zi)

    def third_factor(state: EventRSTDPState, m: Array) -> tuple[Array, EventRSTDPState]:
        if modulator_kind == "reward_baseline":  # as rstdp's update
            d = m - state.baseline
            return d, state.replace(baseline=state.baseline + baseline_rate * d)
        if modulator_kind == "dopamine":
            da = dd * state.dopamine + m
            return tonic_da + da, state.replace(dopamine=da)
        return jnp.broadcast_to(m, state.y_post.shape), state  # scalar or [n_post]

    def step(state: EventRSTDPState, w: Array, pre: Array, post: Array, modulator: Array,
             t: Array, mask: Array, constrain: Any, cap_pre: int, cap_post: int
             ) -> tuple[EventRSTDPState, Array]:
        pre, post = pre.astype(jnp.float32), post.astype(jnp.float32)
        tp, tq, C = state.t_pre, state.t_post, state.eligibility
        # the traces with this step's spikes (Florian's order), for every neuron
        xd, x_st, tx = lazy_trace_step(state.x_pre, tp, pre, t, dp, pairing)
        yd, y_st, ty = lazy_trace_step(state.y_post, tq, post, t, dm, pairing)
        x = jnp.where(pre != 0, x_st, xd)
        y = jnp.where(post != 0, y_st, yd)
        P, fits_pre = spike_list(pre, cap_pre)
        Q, fits_post = spike_list(post, cap_post)

        def tag(c: Array, last: Array, xv: Array, po: Array, pr: Array, yv: Array) -> Array:
            # clock: dc * c + a_plus * x[:, None] * post[None, :] - a_minus * pre[:, None] * y
            return (lazy_decay(c, last, t, dc) + (a_plus * xv) * po) - (a_minus * pr) * yv

        def events() -> Array:
            take = lambda v, i, axis=0: jnp.take(v, i, axis=axis, mode="fill",  # noqa: E731
                                                 fill_value=0)
            rows = tag(take(C, P), jnp.maximum(take(tp, P)[:, None], tq[None, :]),
                       take(x, P)[:, None], post[None, :], take(pre, P)[:, None], y[None, :])
            C1 = C.at[P].set(rows, mode="drop")
            cols = take(C1, Q, 1)
            new = tag(cols, jnp.maximum(tp[:, None], take(tq, Q)[None, :]), x[:, None],
                      take(post, Q)[None, :], pre[:, None], take(y, Q)[None, :])
            new = jnp.where(pre[:, None] != 0, cols, new)
            return C1.at[:, Q].set(new, mode="drop")

        def dense() -> Array:
            touched = (pre != 0)[:, None] | (post != 0)[None, :]
            full = tag(C, jnp.maximum(tp[:, None], tq[None, :]), x[:, None], post[None, :],
                       pre[:, None], y[None, :])
            return jnp.where(touched, full, C)

        fits = fits_pre & fits_post
        C = jax.lax.cond(fits, events, dense)
        state = state.replace(x_pre=x_st, t_pre=tx, y_post=y_st, t_post=ty, eligibility=C,
                              overflows=state.overflows + (~fits).astype(jnp.int32))
        d, state = third_factor(state, jnp.asarray(modulator, jnp.float32))

        def learn() -> Array:
            c_now = lazy_decay(C, jnp.maximum(tx[:, None], ty[None, :]), t, dc)
            grads = (-lr * d[None, :] * c_now) * mask  # rstdp's update, then the mask
            return constrain(w + (-1.0) * grads) * mask  # sgd(1.0), Dale, mask

        w_new = jax.lax.cond(jnp.any(d != 0), learn, lambda: w)
        return state, w_new

    return EventRule(init, step)
