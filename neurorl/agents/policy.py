"""Policy heads shared by the actor-critic recipes: sampling and log-probabilities from a
readout ``out[n_actions + 1]`` (softmax logits or Gaussian means, then the value)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


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


def greedy_action(out: Array, discrete: bool, n_act: int) -> Array:
    """The mode of the policy: argmax of the logits, or the Gaussian mean."""
    head = out[:n_act]
    return jnp.argmax(head).astype(jnp.int32) if discrete else head
