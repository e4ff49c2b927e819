"""Surrogate-gradient BPTT: ``jax.grad`` through the compiled network (the non-local baseline).

The forward pass is the N-HAL simulator itself (``CompiledNetwork.simulate``): spikes through the
neuron model's surrogate (``core.surrogate``, custom JVP). Whether the reset term ``-v_th z_{t-1}``
carries a gradient is the neuron's ``LIFParams.detach_reset``:

- ``detach_reset=True`` (the default, as snnTorch): no gradient through the reset. This is the
  gradient that e-prop computes exactly for a non-recurrent layer with symmetric feedback
  (tests/plasticity/test_eprop.py), but through *recurrent* weights over long sequences it can
  explode: the membrane's Jacobian keeps ``alpha`` where the reset would subtract
  ``v_th psi_t``, and the recurrent loop ``W_rec psi`` then grows by a factor above one per
  step. Measured on Bellec's evidence-accumulation network (100 LIF/ALIF, 2250 steps, triangle
  surrogate of width ``v_th``): gradient norm ~1e10 against e-prop's ~5, direction unrelated to
  it (cosine 0.01); on the 1000-step pattern-generation network ~1e12.
- ``detach_reset=False``: the reset's gradient is kept, as in the BPTT baseline of Bellec et al.
  2020 (the Graz TensorFlow code of the paper's Fig. 3 stops the gradient of ``z`` only for
  e-prop, ``stop_z_gradients=FLAGS.eprop``). On the same two networks the gradient stays
  bounded (norm ~0.5x e-prop's, cosine 0.82-0.89 with it). Use it for BPTT through recurrent
  spiking networks over long sequences (``benchmarks/bellec.py`` does).

Both variants equal a hand-written backward pass of the equations (tests/plasticity/test_bptt.py).
Gradients of absent synapses (a connection's structural mask, e.g. no autapses) are zero.

References:
    Neftci, Mostafa & Zenke (2019). Surrogate gradient learning in spiking neural networks.
    IEEE Signal Process. Mag. 36(6).
    Bellec et al. (2020). Nat. Commun. 11:3625 (Methods: BPTT baseline); code:
    github.com/IGITUGraz/eligibility_propagation, Figure_3_and_S7_e_prop_tutorials/models.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
from jax import Array


def value_and_grads(net: Any, loss: Callable[[dict[str, Array]], Array], weights: Any,
                    state: Any, inputs: Any, *, steps: int | None = None
                    ) -> tuple[Array, Any]:
    """``(loss, dloss/dweights)`` of a sequence simulated by ``net`` from ``state``.

    Args:
        net: a ``CompiledNetwork``.
        loss: ``records -> scalar``; records are the network's monitors ``[T, n]`` (a
            ``PotentialMonitor`` on a leaky readout gives its outputs).
        weights: dict connection -> weights to differentiate.
        state: a full network state (``net.init(key)``); its weights are ignored.
        inputs: dict input group -> ``[T, n]``.

    Returns:
        ``(loss value, grads)`` with grads shaped like ``weights``; zero where a connection has
        no synapse (its structural mask: no autapses, sparse connectivity, padded slots), so
        that a gradient step never creates one.
    """
    dyn, traces = net.dynamic(state), net.traces(state)

    def f(w: Any) -> Array:
        _, _, records, _ = net.simulate(w, dyn, traces, inputs, steps=steps)
        return loss(records)

    value, g = jax.value_and_grad(f)(weights)
    return value, mask_grads(net, g)


def mask_grads(net: Any, grads: Any) -> Any:
    """``grads`` (dict connection name -> array) times each connection's structural mask, so that
    a gradient step never creates a synapse the network does not have (no autapses, sparse
    connectivity, padded slots). For every recipe that differentiates the simulator itself
    (``jax.grad`` through ``CompiledNetwork.simulate``): the simulator uses the dense weights
    unmasked, so an unmasked step would add the missing synapses. Non-dict grads pass through.
    """
    if not isinstance(grads, dict):
        return grads
    return {n: v * _mask(net, n, v) for n, v in grads.items()}


def _mask(net: Any, name: str, g: Array) -> Any:
    """The structural mask of connection ``name`` (1 where a synapse exists), or 1."""
    s = getattr(net, "structure", {}).get(name)
    if not isinstance(s, dict):
        return 1.0
    m = s.get("mask", s.get("valid"))
    return m if m is not None and m.shape == g.shape else 1.0


def grads(net: Any, loss: Callable[[dict[str, Array]], Array], weights: Any, state: Any,
          inputs: Any, *, steps: int | None = None) -> Any:
    """BPTT gradient only (see :func:`value_and_grads`)."""
    return value_and_grads(net, loss, weights, state, inputs, steps=steps)[1]


__all__ = ["grads", "value_and_grads"]
