"""Recurrent LIF/ALIF layer + leaky readout shared by the e-prop and BPTT actor-critics.

Discrete-time e-prop form (Bellec et al. 2020, Methods Eq. 21-24; the neurons-helper contract),
dt = 1 ms per substep, for ONE network (vmap outside)::

    pre_t  = concat(x_t, z_{t-1})                       # input now, recurrent spikes of last step
    v_t    = alpha v_{t-1} + pre_t @ W - v_th z_{t-1}   # subtract reset, delayed one step
    A_t    = v_th + beta a_t                            # beta = 0 for LIF neurons, > 0 for ALIF
    z_t    = H((v_t - A_t) / v_th)
    a_{t+1} = rho a_t + z_t
    u_t    = kappa u_{t-1} + z_t @ W_out ;  y = u_K + b  # leaky readout (policy logits, value)

``W = concat(W_in, W_rec)`` is pre-major ``[n_in + n_rec, n_rec]``; the diagonal of ``W_rec``
is masked to zero. No refractory period (n_ref = 0).

The neuron dynamics are written here (not imported from ``neurorl.core.neurons``) because the
e-prop eligibility recursion (Eq. 25 for ALIF) needs the pre-reset voltage and the adaptation
variable at exactly these time indices, vectorised over a mixed LIF/ALIF population.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

Array = jax.Array


@struct.dataclass
class RSNNParams:
    """Learnable weights. ``w``: ``[n_in + n_rec, n_rec]``; ``w_out``: ``[n_rec, n_out]``;
    ``b_out``: ``[n_out]``; ``log_std``: ``[n_act]`` (continuous policies only, else ``[0]``)."""

    w: Array
    w_out: Array
    b_out: Array
    log_std: Array


@struct.dataclass
class RSNNCarry:
    """Per-network state: membrane ``v``, last spikes ``z``, adaptation ``a`` (all ``[n_rec]``),
    readout state ``u`` (``[n_out]``, bias excluded)."""

    v: Array
    z: Array
    a: Array
    u: Array


@struct.dataclass
class RSNNConsts:
    """Fixed (non-learned) neuron constants; traced leaves so values never recompile."""

    alpha: Array  # exp(-dt / tau_mem)
    rho: Array  # exp(-dt / tau_adapt)
    kappa: Array  # exp(-dt / tau_out)
    beta: Array  # [n_rec] adaptation strength, 0 for LIF
    v_th: Array
    rec_mask: Array  # [n_in + n_rec, n_rec], 0 on the recurrent diagonal


def make_consts(n_in: int, n_rec: int, n_alif: int, tau_mem: float, tau_adapt: float,
                tau_out: float, beta: float, v_th: float, dt: float = 1.0) -> RSNNConsts:
    """Neuron constants (time constants in ms, dt in ms; the last ``n_alif`` neurons adapt)."""
    b = np.zeros(n_rec, np.float32)
    if n_alif:
        b[n_rec - n_alif:] = beta
    mask = np.ones((n_in + n_rec, n_rec), np.float32)
    mask[n_in + np.arange(n_rec), np.arange(n_rec)] = 0.0
    f = lambda x: jnp.asarray(x, jnp.float32)
    return RSNNConsts(f(np.exp(-dt / tau_mem)), f(np.exp(-dt / tau_adapt)),
                      f(np.exp(-dt / tau_out)), f(b), f(v_th), f(mask))


def init_params(key: Array, n_in: int, n_rec: int, n_out: int, n_act_std: int, in_scale: float,
                rec_scale: float, out_scale: float, mask: Array, log_std0: float = -0.5
                ) -> RSNNParams:
    """Gaussian init scaled by 1/sqrt(fan-in); recurrent diagonal zeroed."""
    k1, k2, k3 = jax.random.split(key, 3)
    w_in = in_scale * jax.random.normal(k1, (n_in, n_rec)) / np.sqrt(n_in)
    w_rec = rec_scale * jax.random.normal(k2, (n_rec, n_rec)) / np.sqrt(n_rec)
    w = jnp.concatenate([w_in, w_rec], axis=0) * mask
    w_out = out_scale * jax.random.normal(k3, (n_rec, n_out)) / np.sqrt(n_rec)
    return RSNNParams(w.astype(jnp.float32), w_out.astype(jnp.float32),
                      jnp.zeros((n_out,), jnp.float32),
                      jnp.full((n_act_std,), log_std0, jnp.float32))


def init_carry(n_rec: int, n_out: int) -> RSNNCarry:
    z = jnp.zeros((n_rec,), jnp.float32)
    return RSNNCarry(z, z, z, jnp.zeros((n_out,), jnp.float32))


def substep(p: RSNNParams, c: RSNNConsts, carry: RSNNCarry, x: Array,
            spike: Callable[[Array], Array], detach_reset: bool = True
            ) -> tuple[RSNNCarry, Array, Array, Array]:
    """One substep. Returns ``(carry, pre_t, v_t, A_t)`` (``carry.z`` holds ``z_t``).

    ``spike`` is a surrogate spike function (Heaviside forward; custom JVP backward), so this
    function is differentiable for BPTT; e-prop calls it without differentiating.
    """
    pre = jnp.concatenate([x, carry.z])
    z_reset = jax.lax.stop_gradient(carry.z) if detach_reset else carry.z
    v = c.alpha * carry.v + pre @ (p.w * c.rec_mask) - c.v_th * z_reset
    thr = c.v_th + c.beta * carry.a
    z = spike((v - thr) / c.v_th)
    a = c.rho * carry.a + z
    u = c.kappa * carry.u + z @ p.w_out
    return RSNNCarry(v, z, a, u), pre, v, thr


def forward(p: RSNNParams, c: RSNNConsts, carry: RSNNCarry, xs: Array,
            spike: Callable[[Array], Array]) -> tuple[RSNNCarry, Array, Array]:
    """K substeps on inputs ``xs[K, n_in]``; returns ``(carry, out[n_out], n_spikes)``."""

    def body(cr: RSNNCarry, x: Array) -> tuple[RSNNCarry, Array]:
        cr, _, _, _ = substep(p, c, cr, x, spike)
        return cr, jnp.sum(cr.z)

    carry, counts = jax.lax.scan(body, carry, xs)
    return carry, carry.u + p.b_out, jnp.sum(counts)


def sample_action(key: Array, out: Array, log_std: Array, discrete: bool, n_act: int
                  ) -> tuple[Array, Array]:
    """Sample from the policy head ``out[:n_act]``: softmax logits or Gaussian mean.

    Returns ``(action, raw)`` where ``raw`` is the sampled value before any clipping
    (int32 index for discrete; float ``[n_act]`` for continuous).
    """
    head = out[:n_act]
    if discrete:
        a = jax.random.categorical(key, head).astype(jnp.int32)
        return a, a
    raw = head + jnp.exp(log_std) * jax.random.normal(key, (n_act,))
    return raw, raw


def log_prob_entropy(out: Array, log_std: Array, raw: Array, discrete: bool, n_act: int
                     ) -> tuple[Array, Array]:
    """``(log pi(raw | out), entropy)`` of the policy head (differentiable)."""
    head = out[:n_act]
    if discrete:
        logp_all = jax.nn.log_softmax(head)
        return logp_all[raw], -jnp.sum(jnp.exp(logp_all) * logp_all)
    var = jnp.exp(2.0 * log_std)
    logp = -0.5 * jnp.sum((raw - head) ** 2 / var + 2.0 * log_std + jnp.log(2.0 * jnp.pi))
    ent = jnp.sum(log_std + 0.5 * jnp.log(2.0 * jnp.pi * jnp.e))
    return logp, ent
