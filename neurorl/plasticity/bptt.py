"""Surrogate-gradient BPTT: ``jax.grad`` through the compiled network (the non-local baseline).

The forward pass is the N-HAL simulator itself (``CompiledNetwork.simulate``): spikes through the
neuron model's surrogate (``core.surrogate``, custom JVP), the reset term detached
(``LIFParams.detach_reset``, as in Bellec et al. 2020's BPTT comparison and snnTorch), so that for
a non-recurrent layer with symmetric feedback the e-prop rule's summed updates equal this
gradient exactly (tests/plasticity/test_eprop.py).

References:
    Neftci, Mostafa & Zenke (2019). Surrogate gradient learning in spiking neural networks.
    IEEE Signal Process. Mag. 36(6).
    Bellec et al. (2020). Nat. Commun. 11:3625 (Methods: BPTT baseline).
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
        ``(loss value, grads)`` with grads shaped like ``weights``.
    """
    dyn, traces = net.dynamic(state), net.traces(state)

    def f(w: Any) -> Array:
        _, _, records, _ = net.simulate(w, dyn, traces, inputs, steps=steps)
        return loss(records)

    return jax.value_and_grad(f)(weights)


def grads(net: Any, loss: Callable[[dict[str, Array]], Array], weights: Any, state: Any,
          inputs: Any, *, steps: int | None = None) -> Any:
    """BPTT gradient only (see :func:`value_and_grads`)."""
    return value_and_grads(net, loss, weights, state, inputs, steps=steps)[1]


__all__ = ["grads", "value_and_grads"]
