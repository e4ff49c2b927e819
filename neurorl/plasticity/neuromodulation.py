"""Neuromodulated meta-parameters: a learning-rate gain that rises when the expected return falls.

Doya (2002) proposed that neuromodulators set the meta-parameters of reinforcement learning
(acetylcholine the learning rate, noradrenaline the exploration, serotonin the discount), and
Schweighofer & Doya (2003) adapted them by comparing a *mid-term* with a *long-term* running
average of reward: when the recent average falls below the long-run one, the world has changed
and the meta-parameters move. :func:`meta_lr` is that comparison for the learning rate, on the
critic's own estimate of the expected discounted return ``V`` rather than on the raw reward
(CartPole pays +1 on every step whatever the policy, so a drop of performance shows up in
``V``, not in the per-step reward):

    m_t = m_{t-1} + (x_t - m_{t-1}) / tau_mid        (x_t: the mean V over the valid envs)
    l_t = l_{t-1} + (x_t - l_{t-1}) / tau_long
    m^_t = m_t / (1 - (1 - 1/tau_mid)^n_t),  l^_t likewise     (bias-corrected, as Adam's moments)
    gain_t = clip(1 + k (l^_t - m^_t) / max(|l^_t|, eps), 1, g_max)

so the gain is 1 while the mid-term value holds its long-run level (a stationary task learns
at the base rate) and rises towards ``g_max`` after a shift that makes the old policy fail,
until the mid-term value has recovered or the long-run average has followed it down (after
about ``tau_long`` calls). The gain multiplies the optimizer's update (a global, third-factor
signal: every synapse sees the same scalar).

References:
    Doya, K. (2002). Metalearning and neuromodulation. Neural Networks 15:495-506.
    Schweighofer, N. & Doya, K. (2003). Meta-learning in reinforcement learning. Neural Networks
    16:5-9 (mid-term vs long-term reward averages drive the meta-parameters).
    Aston-Jones, G. & Cohen, J. D. (2005). An integrative theory of locus coeruleus-norepinephrine
    function: adaptive gain and optimal performance. Annu. Rev. Neurosci. 28:403-450 (a fall of
    utility switches the system from exploiting to adapting).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from neurorl.errors import ConfigError, is_finite_number

EPS = 1e-3  # floor of |l^| in the relative drop (value units)


class MetaLRState(NamedTuple):
    """Running averages of the value: ``mid`` / ``long`` (uncorrected EMAs, scalars) and
    ``count``, the number of calls that had at least one valid env (for the bias correction)."""

    mid: Array
    long: Array
    count: Array


class MetaLR(NamedTuple):
    """``init() -> MetaLRState``; ``update(state, value [B], valid [B]) -> (gain, state)``."""

    init: object
    update: object


def meta_lr(g_max: float, k: float = 1.0, tau_mid: float = 50.0, tau_long: float = 2500.0,
            field: str = "meta_lr") -> MetaLR:
    """Learning-rate gain from the drop of the mid-term value below its long-run level.

    Args:
        g_max: the largest gain (>= 1; 1 makes the gain constant 1).
        k: sensitivity: the gain for a relative drop ``d = (l^ - m^) / |l^|`` is ``1 + k d``.
        tau_mid: time constant of the mid-term average, in calls (> 0; an agent's learn calls).
        tau_long: time constant of the long-run average, in calls (> tau_mid).
        field: the config path named in errors.

    Returns:
        A :class:`MetaLR` pair; ``update`` takes the values ``[B]`` of this call and a ``[B]``
        bool mask of the envs whose value counts (e.g. not the first step of a run), and returns
        the scalar gain and the new state. A call with no valid env leaves the state unchanged
        and returns the gain of the unchanged state.

    Raises:
        ConfigError: ``g_max < 1``, ``k < 0``, ``tau_mid <= 0`` or ``tau_long <= tau_mid``.

    References:
        Schweighofer & Doya (2003), Neural Networks 16:5-9; see the module docstring.
    """
    if not (is_finite_number(g_max) and g_max >= 1):
        raise ConfigError(f"{field}_max", g_max, "a number >= 1 (1: off)")
    if not (is_finite_number(k) and k >= 0):
        raise ConfigError(f"{field}_k", k, "a number >= 0")
    if not (is_finite_number(tau_mid) and tau_mid > 0):
        raise ConfigError(f"{field}_tau_mid", tau_mid, "a number > 0 (calls)")
    if not (is_finite_number(tau_long) and tau_long > tau_mid):
        raise ConfigError(f"{field}_tau_long", tau_long, f"a number > tau_mid = {tau_mid}")
    a_mid, a_long = 1.0 / float(tau_mid), 1.0 / float(tau_long)

    def init() -> MetaLRState:
        z = jnp.zeros((), jnp.float32)
        return MetaLRState(z, z, z)

    def gain_of(s: MetaLRState) -> Array:
        m = s.mid / jnp.maximum(1.0 - (1.0 - a_mid) ** s.count, 1e-12)
        lg = s.long / jnp.maximum(1.0 - (1.0 - a_long) ** s.count, 1e-12)
        drop = (lg - m) / jnp.maximum(jnp.abs(lg), EPS)
        return jnp.where(s.count > 0, jnp.clip(1.0 + k * drop, 1.0, g_max), 1.0)

    def update(state: MetaLRState, value: Array, valid: Array) -> tuple[Array, MetaLRState]:
        n_valid = jnp.sum(valid.astype(jnp.float32))
        x = jnp.sum(jnp.where(valid, value, 0.0)) / jnp.maximum(n_valid, 1.0)
        on = n_valid > 0
        new = MetaLRState(
            jnp.where(on, state.mid + a_mid * (x - state.mid), state.mid),
            jnp.where(on, state.long + a_long * (x - state.long), state.long),
            state.count + on.astype(jnp.float32),
        )
        return gain_of(new), new

    return MetaLR(init, update)


__all__ = ["MetaLR", "MetaLRState", "meta_lr"]
