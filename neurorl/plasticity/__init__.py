"""Local learning rules: STDP, R-STDP, e-prop and the surrogate-gradient BPTT baseline.

Every rule is an optax-shaped :class:`PlasticityRule` built by a factory closing over its
hyperparameters (validated on the host with :class:`neurorl.errors.ConfigError`):

    rule = RULES["stdp"](a_plus=0.01, tau_plus=20.0)
    rs = rule.init(w)                                   # w: [n_pre, n_post]
    rs = rule.accumulate(rs, pre_spikes, post_spikes, post_neuron_state)   # every step
    grads, rs = rule.update(rs, modulator, w)           # grads = -Delta w (optax descent sign)
    updates, opt = tx.update(grads, opt, w); w = optax.apply_updates(w, updates)

With ``tx = optax.sgd(1.0)`` the weights move by exactly +Delta w.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from jax import Array


class PlasticityRule(NamedTuple):
    """An optax-shaped local learning rule.

    Attributes:
        init: ``weights [n_pre, n_post] -> rule_state``.
        accumulate: ``(rule_state, pre [n_pre], post [n_post], post_neuron_state) -> rule_state``,
            called every time step.
        update: ``(rule_state, modulator, weights) -> (grads, rule_state)`` with
            ``grads = -Delta w`` so that an optax optimizer (and constraints) can follow.
            The modulator is a scalar or one value per postsynaptic neuron ``[n_post]``.
        accumulate_block: optional ``(rule_state, pre [T, n_pre], post [T, n_post],
            post_view) -> rule_state``, equal to T calls of ``accumulate`` with fixed weights
            but computed at once (a rank-T product); the staged simulator uses it.
        bounds: optional hard bounds ``(w_min, w_max)`` (weight units): a compiled network
            clips the connection's weights to them after every optimizer step (before Dale's
            sign, the mask and the projection). ``stdp(hard_bounds=True)`` sets them.
    """

    init: Callable[[Array], Any]
    accumulate: Callable[[Any, Array, Array, Any], Any]
    update: Callable[[Any, Array, Array], tuple[Array, Any]]
    accumulate_block: Callable[[Any, Array, Array, Any], Any] | None = None
    bounds: tuple[float, float] | None = None


from neurorl.plasticity import bptt  # noqa: E402  (jax.grad through a CompiledNetwork)
from neurorl.plasticity.eprop import eprop, eprop_rule  # noqa: E402
from neurorl.plasticity.rstdp import RSTDPState, rstdp  # noqa: E402
from neurorl.plasticity.stdp import STDPState, stdp  # noqa: E402

RULES: dict[str, Callable[..., PlasticityRule]] = {
    "stdp": stdp,
    "rstdp": rstdp,
    "eprop": eprop,
}

__all__ = [
    "PlasticityRule", "RULES", "STDPState", "RSTDPState", "stdp", "rstdp", "eprop", "eprop_rule",
    "bptt",
]
