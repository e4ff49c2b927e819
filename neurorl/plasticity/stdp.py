"""Pair-based STDP with exponential traces (additive and multiplicative variants).

The pairing window (Bi & Poo 1998; Song, Miller & Abbott 2000, Eq. 1) for dt = t_post - t_pre:

    Delta w = +A_plus  * exp(-dt / tau_plus)    if dt > 0   (pre before post: LTP)
    Delta w = -A_minus * exp(+dt / tau_minus)   if dt < 0   (post before pre: LTD)

implemented online with a presynaptic trace x (tau_plus) read at postsynaptic spikes and a
postsynaptic trace y (tau_minus) read at presynaptic spikes (Morrison et al. 2008, Eqs. 3-4).
Simultaneous spikes (dt = 0) do not pair: traces are read before this step's spikes are added.

Variants:
    * ``"additive"``: Delta w independent of w (Song et al. 2000).
    * ``"multiplicative"``: soft bounds, LTP ~ (w_max - w), LTD ~ (w - w_min)
      (van Rossum, Bi & Turrigiano 2000; Gutig et al. 2003 with mu = 1).

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
         w_min: float = 0.0, w_max: float = 1.0, pairing: str = "all_to_all"):
    """Pair-based STDP (Song, Miller & Abbott 2000) as an optax-shaped :class:`PlasticityRule`.

    Args:
        a_plus: LTP amplitude A+ (weight units).
        a_minus: LTD amplitude A- (weight units, > 0; the sign is in the window).
        tau_plus: LTP window time constant (ms).
        tau_minus: LTD window time constant (ms).
        dt: simulation step (ms).
        variant: ``"additive"`` or ``"multiplicative"`` (soft bounds in [w_min, w_max]).
        w_min: lower soft bound (multiplicative only).
        w_max: upper soft bound (multiplicative only).
        pairing: ``"all_to_all"`` (traces add) or ``"nearest"`` (traces reset to 1 at a spike).

    Returns:
        PlasticityRule(init, accumulate, update, accumulate_block).
    """
    from neurorl.plasticity import PlasticityRule

    check_choice("stdp.variant", variant, STDP_VARIANTS)
    check_choice("stdp.pairing", pairing, PAIRINGS)
    check_tau("stdp.tau_plus", tau_plus)
    check_tau("stdp.tau_minus", tau_minus)
    check_tau("stdp.dt", dt)
    check_nonneg("stdp.a_plus", a_plus)
    check_nonneg("stdp.a_minus", a_minus)
    if variant == "multiplicative" and not float(w_max) > float(w_min):
        raise ConfigError("stdp.w_max", w_max, f"a number > w_min = {w_min}")
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
        grads = -jnp.asarray(modulator, jnp.float32) * dw
        zero = jnp.zeros_like(state.ltp)
        return grads, state.replace(ltp=zero, ltd=zero)

    return PlasticityRule(init, accumulate, update, accumulate_block)
