"""Observation encoders: one observation -> time-first input ``[K, n_in]`` for K network substeps.

An encoder is a small NamedTuple ``Encoder(name, n_in, needs_key, encode)`` built by a factory that
closes over its (static) hyperparameters, in the optax style. ``encode(obs, key) -> [K, n_in]``
is written for ONE observation ``obs[obs_dim]``; vmap outside for batches. Deterministic encoders
ignore ``key`` (pass ``None`` or any key).

Encoders:
    * ``gaussian_rf``: population coding with Gaussian receptive fields, ``n_per_dim`` neurons
      per observation dimension (Bohte et al. 2002; PopSAN, Tang et al. 2020). Output is either a
      constant current ``gain * A`` on every substep (``mode="current"``), Bernoulli spikes with
      probability ``p_max * A`` per substep (``mode="poisson"``), or deterministic regular spikes
      (``mode="regular"``, PopSAN: integrate A, spike above 0.999, subtract).
    * ``rate``: rate / Poisson coding, each dimension mapped linearly from ``[low, high]`` to a
      firing probability per substep; two channels per dimension (ON for positive, OFF for
      negative deviations from the centre) so that the sign of an observation is visible.
    * ``direct``: direct current injection, ``gain * obs / scale`` repeated on every substep.

Sensory adaptation (``input_adaptation``, an init / apply / update triple with state) rescales
each observation dimension to its running mean and spread before a fixed-range encoder.

References:
    Bohte, Kok & La Poutre (2002). Error-backpropagation in temporally encoded networks of
    spiking neurons. Neurocomputing 48, 17-37 (Gaussian receptive fields, Sec. 3).
    Tang, Kumar, Yoo & Michmizos (2020). Deep reinforcement learning with population-coded
    spiking neural network for continuous control. CoRL, PMLR 155 (PopSAN encoder, Eq. 1-3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neurorl.errors import ConfigError, ShapeError, is_finite_number, lookup

Array = jax.Array


class Encoder(NamedTuple):
    """An observation encoder (see module docstring).

    Attributes:
        name: registry name.
        n_in: number of input channels produced per substep.
        needs_key: whether ``encode`` draws random numbers (then ``key`` must be a PRNG key).
        encode: ``(obs[obs_dim], key) -> [K, n_in]`` float32.
    """

    name: str
    n_in: int
    needs_key: bool
    encode: Callable[[Array, Any], Array]


def _as_bounds(
    low: Any, high: Any, obs_dim: int | None, what: str
) -> tuple[np.ndarray, np.ndarray]:
    low_a = np.atleast_1d(np.asarray(low, dtype=np.float64))
    high_a = np.atleast_1d(np.asarray(high, dtype=np.float64))
    if obs_dim is not None:
        low_a = np.broadcast_to(low_a, (obs_dim,))
        high_a = np.broadcast_to(high_a, (obs_dim,))
    if low_a.shape != high_a.shape:
        raise ShapeError(f"{what}.high", low_a.shape, high_a.shape)
    if not (np.all(np.isfinite(low_a)) and np.all(np.isfinite(high_a))):
        raise ConfigError(f"{what}.low/high", (low, high), "finite bounds (clip unbounded dims)")
    if np.any(high_a <= low_a):
        raise ConfigError(f"{what}.high", high, "every high > low")
    return low_a, high_a


def _check_substeps(substeps: int, what: str) -> int:
    if not isinstance(substeps, (int, np.integer)) or substeps < 1:
        raise ConfigError(f"{what}.substeps", substeps, "an integer >= 1")
    return int(substeps)


def _check_obs(obs: Array, obs_dim: int, what: str) -> None:
    if obs.shape != (obs_dim,):
        raise ShapeError(f"{what} observation", (obs_dim,), tuple(obs.shape))


def gaussian_rf(
    low: Sequence[float] | float,
    high: Sequence[float] | float,
    n_per_dim: int = 10,
    substeps: int = 5,
    width: float = 1.0,
    gain: float = 1.0,
    mode: str = "current",
    p_max: float = 1.0,
) -> Encoder:
    """Gaussian receptive-field population encoder.

    Neuron ``k`` of dimension ``i`` has activation ``A_ik = exp(-(s_i - mu_ik)^2 / (2 sigma_i^2))``
    (PopSAN Eq. 1), centres ``mu_i = linspace(low_i, high_i, n_per_dim)`` and width
    ``sigma_i = width * (high_i - low_i) / (n_per_dim - 1)`` (one centre spacing for
    ``width=1``; the reference agent uses exactly this: r = [2.4, 3, 0.21, 3], sigma = 2r/9).
    Observations outside ``[low, high]`` are not clipped: the end neurons keep responding
    (weakly), as in Bohte et al.

    Args:
        low: lower edge of the centres per dimension (obs units); scalar or ``[obs_dim]``.
        high: upper edge per dimension.
        n_per_dim: neurons per dimension (>= 2).
        substeps: K, network substeps per observation.
        width: sigma in units of the centre spacing.
        gain: current scale for ``mode="current"`` (dimensionless, per substep).
        mode: ``"current"`` (constant current), ``"poisson"`` (Bernoulli(p_max A) per substep,
            needs a key) or ``"regular"`` (deterministic integrate-and-fire of A).
        p_max: peak spike probability per substep for ``"poisson"``.

    Returns:
        An :class:`Encoder` with ``n_in = obs_dim * n_per_dim`` (dimension-major order).

    Raises:
        ConfigError / ShapeError: on invalid bounds or hyperparameters (host side).
    """
    what = "encoder.gaussian_rf"
    low_a, high_a = _as_bounds(low, high, None, what)
    k = _check_substeps(substeps, what)
    if not isinstance(n_per_dim, (int, np.integer)) or n_per_dim < 2:
        raise ConfigError(f"{what}.n_per_dim", n_per_dim, "an integer >= 2")
    if not width > 0:
        raise ConfigError(f"{what}.width", width, "a float > 0")
    if mode not in ("current", "poisson", "regular"):
        raise ConfigError(
            f"{what}.mode", mode, "'current', 'poisson' or 'regular'",
            _closest(mode, ("current", "poisson", "regular")),
        )
    if not 0.0 < p_max <= 1.0:
        raise ConfigError(f"{what}.p_max", p_max, "a probability in (0, 1]")
    obs_dim = low_a.shape[0]
    n = int(n_per_dim)
    frac = np.linspace(0.0, 1.0, n)
    centres = jnp.asarray(low_a[:, None] + frac[None, :] * (high_a - low_a)[:, None], jnp.float32)
    sigma = jnp.asarray(width * (high_a - low_a) / (n - 1), jnp.float32)[:, None]

    def activation(obs: Array) -> Array:
        d = (obs[:, None] - centres) / sigma
        return jnp.exp(-0.5 * d * d).reshape(-1)

    def encode(obs: Array, key: Any = None) -> Array:
        obs = jnp.asarray(obs, jnp.float32)
        _check_obs(obs, obs_dim, what)
        a = activation(obs)
        if mode == "current":
            return jnp.broadcast_to(gain * a, (k, a.shape[0])).astype(jnp.float32)
        if mode == "poisson":
            u = jax.random.uniform(key, (k, a.shape[0]))
            return (u < p_max * a[None, :]).astype(jnp.float32)
        # regular: v_t = v_{t-1} + A; spike and subtract 1 when v_t > 0.999 (PopSAN).
        def body(v: Array, _: None) -> tuple[Array, Array]:
            v = v + a
            s = (v > 0.999).astype(jnp.float32)
            return v - s, s

        _, spikes = jax.lax.scan(body, jnp.zeros_like(a), None, length=k)
        return spikes

    return Encoder("gaussian_rf", obs_dim * n, mode == "poisson", encode)


class InputAdaptationState(NamedTuple):
    """Running statistics of each observation dimension: ``mean`` and ``var`` ``[obs_dim]``
    (exponential moving averages over calls, in obs units)."""

    mean: Array
    var: Array


class InputAdaptation(NamedTuple):
    """``init() -> state``; ``apply(state, obs[..., obs_dim]) -> obs'`` (the rescaled
    observation, for an encoder with fixed ``[low, high]``); ``update(state, obs[B, obs_dim],
    valid[B]) -> state``."""

    init: Callable[[], InputAdaptationState]
    apply: Callable[[InputAdaptationState, Array], Array]
    update: Callable[[InputAdaptationState, Array, Array], InputAdaptationState]


def input_adaptation(
    low: Sequence[float] | float,
    high: Sequence[float] | float,
    tau: float,
    z: float = 2.0,
    zoom_max: float = 4.0,
    field: str = "input_adaptation",
) -> InputAdaptation:
    """Sensory adaptation: each input channel rescales to the running statistics of its signal.

    Sensory neurons adapt their input-output relation to the mean and variance of the stimulus
    ensemble, so the whole dynamic range is used whatever the stimulus scale (Brenner, Bialek &
    de Ruyter van Steveninck 2000; Fairhall et al. 2001). Here each observation dimension ``i``
    keeps exponential moving averages of its mean ``m_i`` and variance ``s_i^2`` and is mapped so
    that ``m_i +- z s_i`` lands on the encoder's fixed range ``c_i +- h_i`` (``c``, ``h`` the
    centre and half-width of ``[low, high]``):

        x'_i = c_i + (x_i - m_i) h_i / (z max(s_i, h_i / (z zoom_max)))
        m_i <- m_i + (mean_b x_bi - m_i) / tau
        s_i^2 <- s_i^2 + (mean_b (x_bi - m_i)^2 - s_i^2) / tau

    The statistics start at ``m = c``, ``s = h / z``, where ``x' = x``: an agent with adaptation
    starts exactly like one without. ``zoom_max`` caps the magnification (a channel whose signal
    is nearly constant is not blown up to its noise). After a shift that moves or rescales a
    sensor (a permutation, an offset, a gain change), the receptive fields re-cover the new
    signal in about ``tau`` calls.

    Args:
        low: lower edge of the encoder's range per dimension (obs units).
        high: upper edge per dimension.
        tau: time constant of the running statistics, in ``update`` calls (> 0; e-prop
            calls ``update`` once per learn call).
        z: the range ``[low, high]`` covers ``m +- z s`` (> 0).
        zoom_max: largest magnification over the fixed range (>= 1).
        field: the config path named in errors.

    Returns:
        An :class:`InputAdaptation` triple. ``update`` averages over the ``valid`` rows of a
        batch ``[B, obs_dim]``; with no valid row the state is unchanged.

    Raises:
        ConfigError: invalid bounds, ``tau <= 0``, ``z <= 0`` or ``zoom_max < 1`` (host side).

    References:
        Brenner, Bialek & de Ruyter van Steveninck (2000). Adaptive rescaling maximizes
        information transmission. Neuron 26:695-702.
        Fairhall, Lewen, Bialek & de Ruyter van Steveninck (2001). Efficiency and ambiguity in an
        adaptive neural code. Nature 412:787-792.
    """
    low_a, high_a = _as_bounds(low, high, None, field)
    if not (is_finite_number(tau) and tau > 0):
        raise ConfigError(f"{field}_tau", tau, "a number > 0 (calls)")
    if not (is_finite_number(z) and z > 0):
        raise ConfigError(f"{field}_z", z, "a number > 0")
    if not (is_finite_number(zoom_max) and zoom_max >= 1):
        raise ConfigError(f"{field}_zoom_max", zoom_max, "a number >= 1")
    c = jnp.asarray((low_a + high_a) / 2, jnp.float32)
    h = jnp.asarray((high_a - low_a) / 2, jnp.float32)
    s_min = h / (float(z) * float(zoom_max))
    a = 1.0 / float(tau)

    def init() -> InputAdaptationState:
        return InputAdaptationState(c, (h / float(z)) ** 2)

    def apply(state: InputAdaptationState, obs: Array) -> Array:
        obs = jnp.asarray(obs, jnp.float32)
        lead = (1,) * (obs.ndim - 1)  # explicit broadcasting over leading batch axes
        s = jnp.maximum(jnp.sqrt(state.var), s_min)
        g = (h / (float(z) * s)).reshape(lead + (-1,))
        return c.reshape(lead + (-1,)) + (obs - state.mean.reshape(lead + (-1,))) * g

    def update(state: InputAdaptationState, obs: Array, valid: Array) -> InputAdaptationState:
        obs = jnp.asarray(obs, jnp.float32)
        w = valid.astype(jnp.float32)[:, None]
        n = jnp.sum(w, axis=0)
        on = n > 0
        mean_x = jnp.sum(w * obs, axis=0) / jnp.maximum(n, 1.0)
        mean = state.mean + a * (mean_x - state.mean)
        sq = jnp.sum(w * (obs - state.mean[None, :]) ** 2, axis=0) / jnp.maximum(n, 1.0)
        var = state.var + a * (sq - state.var)
        return InputAdaptationState(jnp.where(on, mean, state.mean), jnp.where(on, var, state.var))

    return InputAdaptation(init, apply, update)


def rate(
    low: Sequence[float] | float,
    high: Sequence[float] | float,
    substeps: int = 5,
    p_max: float = 1.0,
) -> Encoder:
    """Rate (Bernoulli / Poisson) encoder with ON/OFF channels.

    With ``c_i = (low_i + high_i) / 2`` and half-range ``h_i``, the ON channel of dimension ``i``
    spikes with probability ``p_max * clip((s_i - c_i) / h_i, 0, 1)`` per substep and the OFF
    channel with ``p_max * clip((c_i - s_i) / h_i, 0, 1)``.

    Args:
        low: lower bound per dimension (obs units).
        high: upper bound per dimension.
        substeps: K substeps.
        p_max: spike probability per substep at the bound.

    Returns:
        An :class:`Encoder` with ``n_in = 2 * obs_dim`` ordered ``[ON_0..ON_d, OFF_0..OFF_d]``;
        ``needs_key=True``.
    """
    what = "encoder.rate"
    low_a, high_a = _as_bounds(low, high, None, what)
    k = _check_substeps(substeps, what)
    if not 0.0 < p_max <= 1.0:
        raise ConfigError(f"{what}.p_max", p_max, "a probability in (0, 1]")
    obs_dim = low_a.shape[0]
    centre = jnp.asarray((low_a + high_a) / 2, jnp.float32)
    half = jnp.asarray((high_a - low_a) / 2, jnp.float32)

    def encode(obs: Array, key: Any = None) -> Array:
        obs = jnp.asarray(obs, jnp.float32)
        _check_obs(obs, obs_dim, what)
        x = (obs - centre) / half
        p = p_max * jnp.concatenate([jnp.clip(x, 0.0, 1.0), jnp.clip(-x, 0.0, 1.0)])
        u = jax.random.uniform(key, (k, 2 * obs_dim))
        return (u < p[None, :]).astype(jnp.float32)

    return Encoder("rate", 2 * obs_dim, True, encode)


def direct(
    scale: Sequence[float] | float,
    obs_dim: int,
    substeps: int = 5,
    gain: float = 1.0,
) -> Encoder:
    """Direct current injection: ``I_t = gain * obs / scale`` on every substep.

    Args:
        scale: per-dimension scale (obs units), scalar or ``[obs_dim]``, > 0.
        obs_dim: observation size.
        substeps: K substeps.
        gain: dimensionless current gain.

    Returns:
        An :class:`Encoder` with ``n_in = obs_dim``.
    """
    what = "encoder.direct"
    k = _check_substeps(substeps, what)
    s = np.broadcast_to(np.asarray(scale, np.float64), (obs_dim,))
    if np.any(~np.isfinite(s)) or np.any(s <= 0):
        raise ConfigError(f"{what}.scale", scale, "finite floats > 0")
    inv = jnp.asarray(gain / s, jnp.float32)

    def encode(obs: Array, key: Any = None) -> Array:
        obs = jnp.asarray(obs, jnp.float32)
        _check_obs(obs, obs_dim, what)
        return jnp.broadcast_to(obs * inv, (k, obs_dim)).astype(jnp.float32)

    return Encoder("direct", obs_dim, False, encode)


def _closest(name: str, choices: Sequence[str]) -> str | None:
    from neurorl.errors import closest

    return closest(name, choices)


ENCODERS: dict[str, Callable[..., Encoder]] = {
    "gaussian_rf": gaussian_rf,
    "rate": rate,
    "direct": direct,
}


def get_encoder(name: str, **hyper: Any) -> Encoder:
    """Build a registered encoder by name (unknown name -> ConfigError with the closest name)."""
    return lookup(ENCODERS, name, "encoder")(**hyper)


__all__ = ["ENCODERS", "Encoder", "InputAdaptation", "InputAdaptationState", "direct",
           "gaussian_rf", "get_encoder", "input_adaptation", "rate"]
