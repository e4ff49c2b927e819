"""Pair-based STDP with exponential traces (additive and multiplicative variants).

The pairing window (Bi & Poo 1998; Song, Miller & Abbott 2000, Eq. 1) for dt = t_post - t_pre:

    Delta w = +A_plus  * exp(-dt / tau_plus)    if dt > 0   (pre before post: LTP)
    Delta w = -A_minus * exp(+dt / tau_minus)   if dt < 0   (post before pre: LTD)

implemented online with a presynaptic trace x (tau_plus) read at postsynaptic spikes and a
postsynaptic trace y (tau_minus) read at presynaptic spikes (Morrison et al. 2008, Eqs. 3-4).
Simultaneous spikes (dt = 0) do not pair: traces are read before this step's spikes are added.

Variants:
    * ``"additive"``: Delta w independent of w (Song et al. 2000). Unbounded by default;
      ``hard_bounds=True`` clips the weights to ``[w_min, w_max]`` after every update, as Song,
      Miller & Abbott 2000 keep each peak conductance in ``[0, g_max]`` (their Methods).
    * ``"multiplicative"``: soft bounds, LTP ~ (w_max - w), LTD ~ (w - w_min)
      (van Rossum, Bi & Turrigiano 2000; Gutig et al. 2003 with mu = 1). ``hard_bounds=True``
      also clips (it only acts where one large step would overshoot a soft bound).

Hard bounds: ``update`` returns the clipped step, ``grads = w - clip(w + m Delta w, w_min,
w_max)``, so ``optax.sgd(1.0)`` lands on the clipped weights up to one rounding of
``w + (c - w)``; the rule's ``bounds = (w_min, w_max)`` tells a compiled network to clip the
weights exactly after its optimizer step (``Network.compile``'s ``apply_updates``, and the
event-driven step), so weights never leave ``[w_min, w_max]``.

The rule is optax-shaped (see :class:`neurorl.plasticity.PlasticityRule`): ``accumulate`` adds the
pairings of one step, ``update`` returns ``grads = -modulator * Delta w`` (descent sign) and clears
the accumulator. For plain STDP the modulator is a gate / learning-rate scale (1.0 by default).

``accumulate_block`` (all-to-all pairing) adds the pairings of T steps with fixed weights at once:
the traces of all T steps come from a decay matrix (:func:`~neurorl.plasticity.traces.block_traces`)
and the T rank-1 pairings are one product each, ``LTP += A+ Xdec^T S_post`` and
``LTD += A- S_pre^T Ydec`` (``Xdec_k = X_k - s_k``: the trace before this step's spike). It equals
T calls of ``accumulate`` (tested); nearest-spike pairing (traces reset, not linear) scans.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax import Array

from neurorl.errors import ConfigError, closest
from neurorl.plasticity.traces import (
    BLOCK_MAX,
    block_traces,
    check_tau,
    decay_factor,
    trace_update,
)

STDP_VARIANTS = ("additive", "multiplicative")
PAIRINGS = ("all_to_all", "nearest")


@struct.dataclass
class STDPState:
    """STDP rule state.

    Attributes:
        x_pre: [n_pre] presynaptic trace (decays with tau_plus).
        y_post: [n_post] postsynaptic trace (decays with tau_minus).
        ltp: [n_pre, n_post] accumulated potentiation (A_plus * x_pre * post spikes) since update.
        ltd: [n_pre, n_post] accumulated depression (A_minus * pre spikes * y_post) since update.
    """

    x_pre: Array
    y_post: Array
    ltp: Array
    ltd: Array


def check_choice(field: str, value: str, allowed: tuple[str, ...]) -> None:
    """Host-side check of a string option with the closest valid name in the error."""
    if value not in allowed:
        raise ConfigError(field, value, f"one of {list(allowed)}", closest(str(value), allowed))


def check_bounds(variant: str, w_min: Any, w_max: Any, hard_bounds: Any
                 ) -> tuple[float, float] | None:
    """Host-side check of the weight bounds of :func:`stdp` / :func:`stdp_event`.

    Returns:
        ``(w_min, w_max)`` as floats for the rule's ``bounds`` (``None``: no hard bounds).

    Raises:
        ConfigError: ``hard_bounds`` not a bool; a bound not a finite number; ``w_max <= w_min``
            where the bounds act; ``w_min`` / ``w_max`` given to the additive variant without
            ``hard_bounds=True`` (they would be ignored).
    """
    if not isinstance(hard_bounds, bool):
        raise ConfigError("stdp.hard_bounds", hard_bounds, "True or False")
    if variant == "additive" and not hard_bounds and (w_min is not None or w_max is not None):
        field, value = ("stdp.w_max", w_max) if w_max is not None else ("stdp.w_min", w_min)
        raise ConfigError(field, value, "no bound for the additive variant without "
                          "hard_bounds=True (additive STDP ignores w_min / w_max otherwise; "
                          "hard_bounds=True clips to [w_min, w_max], Song et al. 2000)")
    lo = 0.0 if w_min is None else w_min
    hi = 1.0 if w_max is None else w_max
    for field, v in (("stdp.w_min", lo), ("stdp.w_max", hi)):
        try:
            ok = not isinstance(v, bool) and abs(float(v)) < float("inf")
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(field, v, "a finite number")
    if (hard_bounds or variant == "multiplicative") and not float(hi) > float(lo):
        raise ConfigError("stdp.w_max", hi, f"a number > w_min = {lo}")
    return (float(lo), float(hi)) if hard_bounds else None


def check_nonneg(field: str, value: Any) -> None:
    """Host-side check that an amplitude is a finite number >= 0."""
    try:
        ok = float(value) >= 0 and float(value) < float("inf")
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(field, value, "a finite number >= 0")


def stdp_pairing_step(x_pre: Array, y_post: Array, pre: Array, post: Array, decay_plus: Array,
                      decay_minus: Array, pairing: str = "all_to_all"
                      ) -> tuple[Array, Array, Array, Array]:
    """One step of trace-based pairing (shared by STDP and R-STDP).

    Returns:
        (x_pre, y_post, ltp_outer, ltd_outer): the new traces and this step's unit-amplitude
        potentiation ``x_pre (x) post`` and depression ``pre (x) y_post`` ([n_pre, n_post]).
    """
    x_dec = decay_plus * x_pre
    y_dec = decay_minus * y_post
    ltp = x_dec[:, None] * post[None, :]
    ltd = pre[:, None] * y_dec[None, :]
    mode = "set" if pairing == "nearest" else "add"
    x_new = trace_update(x_pre, pre, decay_plus, 1.0, mode)
    y_new = trace_update(y_post, post, decay_minus, 1.0, mode)
    return x_new, y_new, ltp, ltd


def stdp(a_plus: float = 0.01, a_minus: float = 0.0105, tau_plus: float = 20.0,
         tau_minus: float = 20.0, dt: float = 1.0, variant: str = "additive",
         w_min: float | None = None, w_max: float | None = None, pairing: str = "all_to_all",
         hard_bounds: bool = False):
    """Pair-based STDP (Song, Miller & Abbott 2000) as an optax-shaped :class:`PlasticityRule`.

    Args:
        a_plus: LTP amplitude A+ (weight units).
        a_minus: LTD amplitude A- (weight units, > 0; the sign is in the window).
        tau_plus: LTP window time constant (ms).
        tau_minus: LTD window time constant (ms).
        dt: simulation step (ms).
        variant: ``"additive"`` or ``"multiplicative"`` (soft bounds in [w_min, w_max]).
        w_min: lower bound (weight units; default 0.0): the soft bound of the multiplicative
            variant, and the hard bound with ``hard_bounds=True``. The additive variant takes
            it only with ``hard_bounds=True``.
        w_max: upper bound (weight units; default 1.0; ``> w_min``), as ``w_min`` (Song et
            al. 2000's ``g_max``).
        pairing: ``"all_to_all"`` (traces add) or ``"nearest"`` (traces reset to 1 at a spike).
        hard_bounds: clip the weights to ``[w_min, w_max]`` after every update (Song et al.
            2000). Default False: the additive variant is unbounded, as before.

    Returns:
        PlasticityRule(init, accumulate, update, accumulate_block, bounds); ``bounds`` is
        ``(w_min, w_max)`` with ``hard_bounds=True``, else ``None``.

    Raises:
        ConfigError: an unknown ``variant`` / ``pairing`` (with the closest name); a time
            constant or ``dt`` not > 0; an amplitude < 0; ``w_max <= w_min`` where the bounds
            act; ``w_min`` / ``w_max`` given to the additive variant without ``hard_bounds``.
    """
    from neurorl.plasticity import PlasticityRule

    check_choice("stdp.variant", variant, STDP_VARIANTS)
    check_choice("stdp.pairing", pairing, PAIRINGS)
    check_tau("stdp.tau_plus", tau_plus)
    check_tau("stdp.tau_minus", tau_minus)
    check_tau("stdp.dt", dt)
    check_nonneg("stdp.a_plus", a_plus)
    check_nonneg("stdp.a_minus", a_minus)
    bounds = check_bounds(variant, w_min, w_max, hard_bounds)
    w_min = 0.0 if w_min is None else float(w_min)
    w_max = 1.0 if w_max is None else float(w_max)
    dp, dm = decay_factor(tau_plus, dt), decay_factor(tau_minus, dt)

    def init(weights: Array) -> STDPState:
        n_pre, n_post = jnp.shape(weights)
        z = jnp.zeros((n_pre, n_post), jnp.float32)
        return STDPState(jnp.zeros((n_pre,), jnp.float32), jnp.zeros((n_post,), jnp.float32), z, z)

    def accumulate(state: STDPState, pre: Array, post: Array, neuron_state: Any = None
                   ) -> STDPState:
        x, y, ltp, ltd = stdp_pairing_step(state.x_pre, state.y_post, pre.astype(jnp.float32),
                                           post.astype(jnp.float32), dp, dm, pairing)
        return STDPState(x, y, state.ltp + a_plus * ltp, state.ltd + a_minus * ltd)

    def accumulate_block(state: STDPState, pre: Array, post: Array, neuron_state: Any = None
                         ) -> STDPState:
        pre, post = pre.astype(jnp.float32), post.astype(jnp.float32)
        if pairing == "nearest" or pre.shape[0] > BLOCK_MAX:
            def body(s: STDPState, pq: tuple[Array, Array]) -> tuple[STDPState, None]:
                return accumulate(s, pq[0], pq[1]), None

            return jax.lax.scan(body, state, (pre, post))[0]
        x = block_traces(state.x_pre, pre, dp)  # [T, n_pre], this step's spikes included
        y = block_traces(state.y_post, post, dm)
        ltp = (x - pre).T @ post  # traces read before this step's spikes: no dt = 0 pairing
        ltd = pre.T @ (y - post)
        return STDPState(x[-1], y[-1], state.ltp + a_plus * ltp, state.ltd + a_minus * ltd)

    def update(state: STDPState, modulator: Array, weights: Array) -> tuple[Array, STDPState]:
        if variant == "multiplicative":
            dw = state.ltp * (w_max - weights) - state.ltd * (weights - w_min)
        else:
            dw = state.ltp - state.ltd
        m = jnp.broadcast_to(jnp.asarray(modulator, jnp.float32), dw.shape[1:])  # () / [n_post]
        if bounds is None:
            grads = -m[None, :] * dw
        else:  # the step to the clipped weights (Song et al. 2000)
            grads = weights - jnp.clip(weights + m[None, :] * dw, w_min, w_max)
        zero = jnp.zeros_like(state.ltp)
        return grads, state.replace(ltp=zero, ltd=zero)

    return PlasticityRule(init, accumulate, update, accumulate_block, bounds)


# ------------------------------------------------------------------ event-driven formulation
@struct.dataclass
class EventSTDPState:
    """Event-driven STDP state: each trace with the step of its last change (lazy decay).

    Attributes:
        x_pre: [n_pre] presynaptic trace as of ``t_pre`` (this spike included).
        t_pre: [n_pre] int32 step of the last presynaptic spike.
        y_post: [n_post] postsynaptic trace as of ``t_post``.
        t_post: [n_post] int32 step of the last postsynaptic spike.
        overflows: [] int32 steps whose spikes did not fit the lists (dense fallback taken).
    """

    x_pre: Array
    t_pre: Array
    y_post: Array
    t_post: Array
    overflows: Array


def lazy_trace_step(value: Array, t_last: Array, spikes: Array, t: Array, decay: Array,
                    pairing: str) -> tuple[Array, Array, Array]:
    """Read a lazy trace at step ``t`` and take this step's spikes.

    Returns:
        ``(decayed, value, t_last)``: the trace at ``t`` before this step's spikes (all
        neurons), and the stored trace / last-change step after them (changed only where
        ``spikes != 0``). ``value`` equals :func:`trace_update` of the clock-driven trace
        at the neurons that spiked (to rounding of the decay power).
    """
    from neurorl.plasticity.traces import lazy_decay

    dec = lazy_decay(value, t_last, t, decay)
    after = trace_update(dec, spikes, 1.0, 1.0, "set" if pairing == "nearest" else "add")
    hit = spikes != 0
    return dec, jnp.where(hit, after, value), jnp.where(hit, t, t_last).astype(jnp.int32)


def stdp_event(a_plus: float = 0.01, a_minus: float = 0.0105, tau_plus: float = 20.0,
               tau_minus: float = 20.0, dt: float = 1.0, variant: str = "additive",
               w_min: float | None = None, w_max: float | None = None,
               pairing: str = "all_to_all", hard_bounds: bool = False):
    """Event-driven pair-based STDP: the rule of :func:`stdp` (same arguments, same result)
    in the formulation of Morrison, Diesmann & Gerstner 2008 (Sec. 4.1).

    The traces are stored with the step of their last change and decayed analytically,
    ``x(t) = x(t_last) exp(-(t - t_last) dt / tau)``, when read. A step changes only the
    synapses of the neurons that spiked: the rows of the presynaptic spikes (depression, and
    potentiation where the target spiked too) and the columns of the postsynaptic spikes
    (potentiation), ``(k_pre n_post + n_pre k_post)`` entries instead of ``n_pre n_post``.
    The update is ``w <- constrain(w + m Delta w) * mask`` (with ``hard_bounds``: the step to
    ``clip(w + m Delta w, w_min, w_max)``, then the exact clip) -- the clock-driven step with the
    default optimizer ``optax.sgd(1.0)`` -- so weights equal the clock-driven path to the
    rounding of the decay power (one ``pow`` instead of one multiplication per step: a few
    ulp). A step with more spikes than a list holds updates every synapse (the clock-driven
    formula on the lazily decayed traces: same result) and counts in ``state.overflows``.

    The arguments are those of :func:`stdp`.

    Returns:
        ``EventRule(init, step)`` (:class:`neurorl.plasticity.traces.EventRule`).

    References:
        Morrison, A., Diesmann, M. & Gerstner, W. (2008). Phenomenological models of synaptic
        plasticity based on spike timing. Biol. Cybern. 98:459-478.
    """
    from neurorl.core.propagation import spike_list
    from neurorl.plasticity.traces import EventRule

    bounds = stdp(a_plus, a_minus, tau_plus, tau_minus, dt, variant, w_min, w_max, pairing,
                  hard_bounds).bounds  # validates
    w_min = 0.0 if w_min is None else float(w_min)
    w_max = 1.0 if w_max is None else float(w_max)
    dp, dm = decay_factor(tau_plus, dt), decay_factor(tau_minus, dt)
    multiplicative = variant == "multiplicative"

    def init(weights: Array) -> EventSTDPState:
        n_pre, n_post = jnp.shape(weights)
        zi = jnp.zeros((), jnp.int32)
        return EventSTDPState(jnp.zeros((n_pre,), jnp.float32), jnp.zeros((n_pre,), jnp.int32),
                              jnp.zeros((n_post,), jnp.float32), jnp.zeros((n_post,), jnp.int32),
                              zi)

    def delta(xd: Array, po: Array, pr: Array, yd: Array, w: Array) -> Array:
        ltp = a_plus * (xd * po)  # the clock path's products, in its order
        ltd = a_minus * (pr * yd)
        if multiplicative:
            return ltp * (w_max - w) - ltd * (w - w_min)
        return ltp - ltd

    def step(state: EventSTDPState, w: Array, pre: Array, post: Array, modulator: Array,
             t: Array, mask: Array, constrain: Any, cap_pre: int, cap_post: int
             ) -> tuple[EventSTDPState, Array]:
        pre, post = pre.astype(jnp.float32), post.astype(jnp.float32)
        n_pre, n_post = w.shape
        xd, x, tx = lazy_trace_step(state.x_pre, state.t_pre, pre, t, dp, pairing)
        yd, y, ty = lazy_trace_step(state.y_post, state.t_post, post, t, dm, pairing)
        m = jnp.broadcast_to(jnp.asarray(modulator, jnp.float32), (n_post,))

        def apply(wv: Array, dw: Array, mv: Array, mk: Array) -> Array:
            # grads = -m dw (masked); sgd(1.0): updates = -1 * grads; then Dale and the mask
            if bounds is None:
                return constrain(wv + (-1.0) * (((-mv) * dw) * mk)) * mk
            g = wv - jnp.clip(wv + mv * dw, w_min, w_max)  # the clock rule's clipped step
            return constrain(jnp.clip(wv + (-1.0) * (g * mk), w_min, w_max)) * mk

        P, fits_pre = spike_list(pre, cap_pre)
        Q, fits_post = spike_list(post, cap_post)

        def events() -> Array:
            take = lambda v, i, axis=0: jnp.take(v, i, axis=axis, mode="fill",  # noqa: E731
                                                 fill_value=0)
            rows = take(w, P)  # [k_pre, n_post]
            dw = delta(take(xd, P)[:, None], post[None, :], take(pre, P)[:, None], yd[None, :],
                       rows)
            w1 = w.at[P].set(apply(rows, dw, m[None, :], take(mask, P)), mode="drop")
            cols = take(w1, Q, 1)  # [n_pre, k_post]; rows of P done above
            dwc = delta(xd[:, None], take(post, Q)[None, :], pre[:, None], take(yd, Q)[None, :],
                        cols)
            new = apply(cols, dwc, take(m, Q)[None, :], take(mask, Q, 1))
            new = jnp.where(pre[:, None] != 0, cols, new)
            return w1.at[:, Q].set(new, mode="drop")

        def dense() -> Array:
            dw = delta(xd[:, None], post[None, :], pre[:, None], yd[None, :], w)
            return apply(w, dw, m[None, :], mask)

        fits = fits_pre & fits_post
        w_new = jax.lax.cond(fits, events, dense)
        new = EventSTDPState(x, tx, y, ty, state.overflows + (~fits).astype(jnp.int32))
        return new, w_new

    return EventRule(init, step)
