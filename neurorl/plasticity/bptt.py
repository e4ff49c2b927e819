"""Surrogate-gradient BPTT: the non-local baseline for e-prop (Bellec et al. 2020, Methods).

Same forward network as :mod:`neurorl.plasticity.eprop` (LIF/ALIF, leaky readout), spikes through
the triangle surrogate (``neurorl.core.surrogate``, custom JVP), the reset term under
``stop_gradient`` (as in the e-prop paper's BPTT comparison), the loss summed over the sequence,
gradients by ``jax.grad`` and the step by an optax optimizer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from jax import Array

from neurorl.core.surrogate import get_surrogate
from neurorl.plasticity.eprop import (
    LOSSES,
    EpropConfig,
    EpropParams,
    _decays,
    neuron_step,
)
from neurorl.plasticity.stdp import check_choice


def forward(params: EpropParams, cfg: EpropConfig, xs: Array) -> tuple[Array, Array]:
    """Differentiable forward pass. xs [T, n_in] -> (ys [T, n_out], zs [T, n_rec])."""
    _, _, kappa = _decays(cfg)
    sur = get_surrogate("triangle", gamma=cfg.gamma_pd)
    n_rec = params.w_in.shape[1]
    zero = jnp.zeros((n_rec,), jnp.float32)

    def body(carry, x):
        v, a, z, ref, y = carry
        v, a, z, ref, _ = neuron_step(params, cfg, v, a, z, ref, x, spike_fn=sur.spike,
                                      z_reset=jax.lax.stop_gradient(z))
        ref = jax.lax.stop_gradient(ref)
        y = kappa * y + z @ params.w_out + params.b_out
        return (v, a, z, ref, y), (y, z)

    init = (zero, zero, zero, zero, jnp.zeros((params.w_out.shape[1],), jnp.float32))
    _, (ys, zs) = jax.lax.scan(body, init, jnp.asarray(xs, jnp.float32))
    return ys, zs


def loss_fn(params: EpropParams, cfg: EpropConfig, xs: Array, targets: Array,
            loss: str = "mse") -> Array:
    """E = 1/2 sum_t ||y_t - y*_t||^2 (``"mse"``) or sum_t CE(softmax(y_t), y*_t)."""
    ys, _ = forward(params, cfg, xs)
    if loss == "cross_entropy":
        return -jnp.sum(targets * jax.nn.log_softmax(ys, axis=-1))
    return 0.5 * jnp.sum((ys - targets) ** 2)


def grads(params: EpropParams, cfg: EpropConfig, xs: Array, targets: Array,
          loss: str = "mse") -> EpropParams:
    """BPTT gradient of :func:`loss_fn` (B gets a zero gradient)."""
    check_choice("bptt.loss", loss, LOSSES)
    g = jax.grad(loss_fn)(params, cfg, xs, targets, loss)
    return g.replace(B=jnp.zeros_like(params.B))


def train_step(params: EpropParams, opt_state: optax.OptState, tx: optax.GradientTransformation,
               cfg: EpropConfig, xs: Array, targets: Array, loss: str = "mse"
               ) -> tuple[EpropParams, optax.OptState, Array]:
    """One optax step on the BPTT gradient. Returns (params, opt_state, loss)."""
    value, g = jax.value_and_grad(loss_fn)(params, cfg, xs, targets, loss)
    g = g.replace(B=jnp.zeros_like(params.B))
    updates, opt_state = tx.update(g, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value
