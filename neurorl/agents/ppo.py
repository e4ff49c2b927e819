"""PPO's pieces shared by the agents that use its update: GAE(lambda) over a time-first window
and the clipped surrogate loss.

``bptt_ac`` (surrogate-gradient PPO, its loss through a re-simulated rollout) and the e-prop
agent's readout replay (:mod:`neurorl.agents.replay`, its loss from stored readout traces)
compute the same advantages and the same loss; both call these.

References:
    Schulman, Wolski, Dhariwal, Radford & Klimov (2017). Proximal policy optimization
    algorithms. arXiv:1707.06347 (Eq. 7 clipped objective, Eq. 11 GAE).
    Schulman, Moritz, Levine, Jordan & Abbeel (2016). High-dimensional continuous control using
    generalized advantage estimation. ICLR.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def gae(value: Array, reward: Array, term: Array, trunc: Array, v_boot: Array, gamma: float,
        lam: float) -> tuple[Array, Array]:
    """GAE(lambda) advantages and returns of a ``[W, B]`` window.

    A terminated step bootstraps with 0, a truncated one with its own ``V(s_t)`` (the next
    observation is already a reset one); ``v_boot`` ``[B]`` is ``V`` of the step after the
    window.

    Returns:
        ``(adv, ret)``, both ``[W, B]``, ``ret = adv + value``.
    """
    next_v = jnp.concatenate([value[1:], v_boot[None]], axis=0)
    next_v = jnp.where(trunc & ~term, value, next_v)
    nonterm = 1.0 - term.astype(jnp.float32)
    cont = 1.0 - (term | trunc).astype(jnp.float32)
    delta = reward + gamma * nonterm * next_v - value

    def body(a, inp):
        d, c = inp
        a = d + gamma * lam * c * a
        return a, a

    _, adv = jax.lax.scan(body, jnp.zeros(value.shape[1:], jnp.float32), (delta, cont),
                          reverse=True)
    return adv, adv + value


def clipped_loss(lp: Array, ent: Array, v: Array, logp_old: Array, v_old: Array, adv: Array,
                 ret: Array, *, clip: float, c_v: float, c_ent: float) -> Array:
    """PPO's loss of a ``[W, B]`` batch (scalar, descent sign).

    ``pg = -mean(min(r A, clip(r, 1 +- eps) A))`` with ``A`` normalised over the batch and
    ``r = exp(lp - logp_old)``; value loss ``0.5 mean(max((V - R)^2, (V_clip - R)^2))``,
    ``V_clip = V_old + clip(V - V_old, +- eps)``; minus ``c_ent`` times the mean entropy.

    Args:
        lp: the current policy's log-probability of the taken actions, ``[W, B]``.
        ent: the current policy's entropy, ``[W, B]``.
        v: the current value, ``[W, B]``.
        logp_old: the behaviour policy's log-probabilities.
        v_old: the behaviour policy's values.
        adv: GAE advantages (:func:`gae`).
        ret: GAE returns.
        clip: the ratio (and value) clip ``eps``.
        c_v: value-loss weight.
        c_ent: entropy weight.
    """
    ratio = jnp.exp(lp - logp_old)
    a = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg = -jnp.mean(jnp.minimum(ratio * a, jnp.clip(ratio, 1 - clip, 1 + clip) * a))
    v_clip = v_old + jnp.clip(v - v_old, -clip, clip)
    vl = 0.5 * jnp.mean(jnp.maximum((v - ret) ** 2, (v_clip - ret) ** 2))
    return pg + c_v * vl - c_ent * jnp.mean(ent)


__all__ = ["clipped_loss", "gae"]
