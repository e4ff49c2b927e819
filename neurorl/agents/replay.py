"""Readout replay for the e-prop actor-critic: PPO-clip epochs on the leaky readout alone.

The e-prop agent's readout (an ``"LI"`` group, ``y_t = kappa y_{t-1} + sum_c W_c^T z_c``) is
linear in the readout connections' presynaptic traces ``x_t = p_t`` (``p_t = kappa p_{t-1} +
z_t``, the e-prop trace of a connection into a leaky readout, Bellec et al. 2020 Eq. 28): with
constant weights ``y_t = sum_c W_c^T x_{c,t}`` exactly, both starting from 0 at an episode's
reset. So a window of stored traces ``x``, actions, behaviour log-probabilities and values is
enough to evaluate the readout's policy and value for *any* readout weights without
re-simulating the network, and PPO's clipped surrogate (Schulman et al. 2017, Eq. 7; GAE Eq. 11,
per-batch advantage normalisation, clipped value loss: the same loss as ``bptt_ac``) can be
replayed on the readout for several epochs. Each synapse ``W_c[i, k]`` needs only its own
presynaptic trace ``x_i`` and its postsynaptic unit's error ``dLoss/dy_k``: the replay is local
to the readout synapse, as e-prop's readout update is.

These are the pure pieces (GAE and the clipped loss itself: :mod:`neurorl.agents.ppo`);
``agents/eprop_ac.py`` keeps the buffer in its state and runs the
replay (``replay_window > 0``).

References:
    Schulman, Wolski, Dhariwal, Radford & Klimov (2017). Proximal policy optimization
    algorithms. arXiv:1707.06347 (Eq. 7 clipped objective, Eq. 11 GAE).
    Schulman, Moritz, Levine, Jordan & Abbeel (2016). High-dimensional continuous control using
    generalized advantage estimation. ICLR.
    Bellec et al. (2020). A solution to the learning dilemma for recurrent networks of spiking
    neurons. Nat. Commun. 11:3625 (Eq. 28: the readout's eligibility is its filtered input).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from neurorl.agents import ppo
from neurorl.agents.policy import log_prob_entropy

Array = jax.Array


@struct.dataclass
class ReplayBuffer:
    """A window of ``W`` env steps of ``B`` envs, time-first ``[W, B, ...]``.

    Attributes:
        x: rule name -> ``[W, B, n_pre]`` presynaptic trace of each readout connection after the
            env step's K substeps (what the readout read).
        ebar: rule name -> ``[W, B, n_pre, n_post]`` eligibility traces of the hidden rules
            (trace replay; empty dict otherwise).
        raw: sampled actions (``[W, B]`` int32, or ``[W, B, n_act]``).
        logp: behaviour log-probability of ``raw``.
        value: the readout's value ``V`` when acting.
        reward: the reward the agent learned from (scaled / normalised as in its TD error).
        term, trunc: episode ends of each step.
        ptr: steps stored so far in this window (scalar).
    """

    x: Any
    ebar: Any
    raw: Array
    logp: Array
    value: Array
    reward: Array
    term: Array
    trunc: Array
    ptr: Array


def init_buffer(window: int, n_envs: int, x_sizes: dict[str, int], raw_shape: tuple,
                raw_dtype: Any, ebar_shapes: dict[str, tuple] | None = None) -> ReplayBuffer:
    """An empty buffer of ``window`` steps (see :class:`ReplayBuffer`)."""
    z = lambda *s, d=jnp.float32: jnp.zeros((window, n_envs) + tuple(s), d)
    return ReplayBuffer({n: z(k) for n, k in x_sizes.items()},
                        {n: z(*s) for n, s in (ebar_shapes or {}).items()},
                        z(*raw_shape, d=raw_dtype), z(), z(), z(), z(d=bool), z(d=bool),
                        jnp.zeros((), jnp.int32))


def readout(w: dict[str, Array], b_out: Array, x: dict[str, Array]) -> Array:
    """``y = sum_c x_c W_c + b``: the readout of traces ``x_c[..., n_pre]`` -> ``[..., n_out]``."""
    y = sum(jnp.einsum("...i,ij->...j", x[n], w[n]) for n in sorted(w))
    b = jnp.asarray(b_out, jnp.float32)
    return y + (b.reshape((1,) * (y.ndim - 1) + b.shape) if b.ndim else b)


def ppo_loss_of_outputs(out: Array, log_std: Array, raw: Array, logp_old: Array, v_old: Array,
                        adv: Array, ret: Array, *, discrete: bool, n_act: int, clip: float,
                        c_v: float, c_ent: float) -> Array:
    """PPO's clipped loss (:func:`neurorl.agents.ppo.clipped_loss`, ``bptt_ac``'s) of readout
    outputs ``out[W, B, n_act + 1]`` (policy logits or means, then the value)."""
    lpe = jax.vmap(jax.vmap(lambda o, r: log_prob_entropy(o, log_std, r, discrete, n_act)))
    lp, ent = lpe(out, raw)
    return ppo.clipped_loss(lp, ent, out[..., n_act], logp_old, v_old, adv, ret, clip=clip,
                            c_v=c_v, c_ent=c_ent)


def eprop_grads(d_out: Array, x: dict[str, Array], ebar: dict[str, Array],
                feedback: dict[str, Array]) -> dict[str, Array]:
    """Gradients of a window's loss from its output errors ``d_out = dLoss/dy`` ``[W, B,
    n_out]``: on a readout rule ``sum_{t,b} x_{t,b,i} d_out_{t,b,k}`` (exact: the readout is
    linear in ``x``); on a hidden rule e-prop's ``sum_{t,b} ebar_{t,b,ij} L_{t,b,j}`` with the
    learning signal ``L = d_out B^T`` (Bellec et al. 2020, Eq. 4; ``feedback[n]`` = ``B``
    ``[n_post, n_out]``: the weights to the readout, or fixed random ones) and the stored,
    frozen eligibility traces ``ebar[n]`` ``[W, B, n_pre, n_post]``.

    Returns:
        rule name -> ``dLoss/dW`` ``[n_pre, n_post]`` (descent sign), for ``x``'s and ``ebar``'s
        rules.
    """
    g = {n: jnp.einsum("tbi,tbk->ik", x[n], d_out) for n in x}
    for n, e in ebar.items():
        g[n] = jnp.einsum("tbij,tbj->ij", e, jnp.einsum("tbk,jk->tbj", d_out, feedback[n]))
    return g


__all__ = ["ReplayBuffer", "eprop_grads", "init_buffer", "ppo_loss_of_outputs", "readout"]
