"""One-step-delayed TD bookkeeping shared by the online actor-critic recipes.

``td_ac``, ``eprop_ac`` and ``rstdp`` learn online from the TD error of the previous transition
``(s, a, r, s')``: the value of ``s'`` is only known after the next ``act``, so ``learn`` at
step ``t + 1`` applies the update of step ``t`` (an exact one-step delay of the backward view
of TD(lambda), Sutton & Barto 2018, Sec. 12.2 and 13.5). Each agent state keeps, per env
``[B]``, the previous step's value ``v_prev``, scaled reward ``r_prev``, ``term_prev`` /
``trunc_prev`` and ``has_prev`` (False before the first step), plus ``v_now`` (written by
``act``) and ``reset_next``. These functions are the arithmetic on them, written once:

* :func:`next_value` -- ``V(s')`` of the previous transition: 0 after a termination; after a
  truncation ``s'`` (the next observation) is a reset state, so the value of ``s`` itself stands
  in for it (a time limit is not a terminal state, so the return is bootstrapped, Pardo et al.
  2018; ``V(s)`` approximates the unseen ``V(s')``);
  otherwise this step's value.
* :func:`td_error` -- ``delta = r + gamma V(s') - V(s)`` (0 where there is no previous step),
  with an optional extra term (a potential-based shaping ``gamma Phi(s') - Phi(s)``, built by
  :func:`potential_difference` with the same bootstrap).
* :func:`trace_decay` -- the eligibility factor ``gamma lambda`` that carries a TD(lambda)
  trace over to the next step, 0 across an episode boundary (terminated or truncated: the
  next step belongs to a new episode).
* :func:`init_fields` / :func:`advance` -- the bookkeeping fields at start and after ``learn``.

The functions are elementwise over the env axis and pure; the recipes' state classes keep their
own fields (checkpoints address leaves by those names).

References:
    Sutton & Barto (2018). Reinforcement Learning: An Introduction, 2nd ed., Sec. 12.2
    (semi-gradient TD(lambda): trace Eq. 12.5, TD error Eq. 12.6, update Eq. 12.7) and 13.5
    (actor-critic with eligibility traces).
    Pardo, Tavakoli, Levdik & Kormushev (2018). Time limits in reinforcement learning. ICML
    (partial-episode bootstrapping at time-limit truncations).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def next_value(v_now: Array, v_prev: Array, term_prev: Array, trunc_prev: Array) -> Array:
    """``V(s')`` of the previous transition, per env.

    Args:
        v_now: the value this step's ``act`` computed (of the observation after the transition).
        v_prev: the value of the previous step's state ``s``.
        term_prev: the previous transition terminated (bool).
        trunc_prev: the previous transition was truncated (bool).

    Returns:
        ``0`` where terminated; ``v_prev`` where truncated and not terminated (the next
        observation is a reset, so ``V(s)`` bootstraps for the unseen ``s'``); else ``v_now``.
    """
    boot = jnp.where(trunc_prev & ~term_prev, v_prev, v_now)
    return boot * (1.0 - term_prev.astype(jnp.float32))


def potential_difference(now: Array, prev: Array, term_prev: Array, trunc_prev: Array,
                         gamma: float) -> Array:
    """``gamma X(s') - X(s)`` with the bootstrap and terminal rule of :func:`next_value`.

    With ``X = V`` it is the TD error without reward; with a potential ``X = Phi`` it is the
    potential-based shaping term of Ng, Harada & Russell (1999), ``Phi(terminal) = 0``.

    Args:
        now: ``X`` of this step's observation.
        prev: ``X`` of the previous step's observation.
        term_prev: the previous transition terminated (bool).
        trunc_prev: the previous transition was truncated (bool).
        gamma: discount.

    Returns:
        ``gamma * next_value(now, prev, term_prev, trunc_prev) - prev``.
    """
    return gamma * next_value(now, prev, term_prev, trunc_prev) - prev


def td_error(r_prev: Array, v_now: Array, v_prev: Array, term_prev: Array, trunc_prev: Array,
             has_prev: Array, gamma: float, extra: Array | None = None) -> Array:
    """The one-step TD error of the previous transition (Sutton & Barto 2018, Eq. 12.6).

    Args:
        r_prev: the previous step's (scaled) reward.
        v_now: the value of this step's observation.
        v_prev: the value of the previous step's observation.
        term_prev: the previous transition terminated (bool).
        trunc_prev: the previous transition was truncated (bool).
        has_prev: there is a previous transition (False before the first step).
        gamma: discount.
        extra: a term added to the error before masking (e.g. reward shaping), or None.

    Returns:
        ``delta = r_prev + gamma V(s') - v_prev (+ extra)``, ``V(s')`` from :func:`next_value`;
        0 where ``has_prev`` is False.
    """
    delta = r_prev + gamma * next_value(v_now, v_prev, term_prev, trunc_prev) - v_prev
    if extra is not None:
        delta = delta + extra
    return jnp.where(has_prev, delta, 0.0)


def trace_decay(gamma: float, lam: float, term_prev: Array, trunc_prev: Array) -> Array:
    """The factor ``gamma lambda`` carrying a TD(lambda) trace to the next step, per env.

    Args:
        gamma: discount.
        lam: trace decay lambda.
        term_prev: the previous transition terminated (bool).
        trunc_prev: the previous transition was truncated (bool).

    Returns:
        ``gamma * lam`` where the episode goes on, 0 where it ended (terminated or truncated):
        a trace never carries credit into the next episode.
    """
    return gamma * lam * (1.0 - (term_prev | trunc_prev).astype(jnp.float32))


def init_fields(n_envs: int) -> dict[str, Array]:
    """The bookkeeping fields of a fresh agent state (``v_now`` .. ``reset_next``), all zero.

    Args:
        n_envs: B.

    Returns:
        ``{"v_now", "v_prev", "r_prev"}``: float32 zeros ``[B]``; ``{"term_prev",
        "trunc_prev", "has_prev", "reset_next"}``: False ``[B]``.
    """
    f = jnp.zeros((n_envs,), jnp.float32)
    b = jnp.zeros((n_envs,), bool)
    return {"v_now": f, "v_prev": f, "r_prev": f, "term_prev": b, "trunc_prev": b,
            "has_prev": b, "reset_next": b}


def advance(v_now: Array, r: Array, terminated: Array, truncated: Array) -> dict[str, Array]:
    """The bookkeeping fields after ``learn``: this step becomes the previous one.

    Args:
        v_now: this step's value (becomes ``v_prev``).
        r: this step's scaled reward (becomes ``r_prev``).
        terminated: this step's transition terminated.
        truncated: this step's transition was truncated.

    Returns:
        ``{"v_prev", "r_prev", "term_prev", "trunc_prev", "has_prev", "reset_next"}`` to pass to
        the state's ``replace``; ``reset_next`` makes the next ``act`` start the env's network
        state afresh after an episode end.
    """
    return {"v_prev": v_now, "r_prev": r, "term_prev": terminated.astype(bool),
            "trunc_prev": truncated.astype(bool), "has_prev": jnp.ones(terminated.shape, bool),
            "reset_next": terminated | truncated}


__all__ = ["advance", "init_fields", "next_value", "potential_difference", "td_error",
           "trace_decay"]
