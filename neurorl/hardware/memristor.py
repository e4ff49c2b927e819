"""Memristive synapses: differential conductance pairs with noise, drift, variability and wear.

A weight is stored on a pair of devices, ``w = (G+ - G-) / g_max * w_max`` (Ambrogio et al. 2018,
Nature 558:60). The pure functions ``init / program / read`` carry a ``DeviceState`` pytree;
:func:`memristor_transform` wraps them as an ``optax.GradientTransformation`` placed last in a
chain, so the weights a rule sees are the ones the devices actually hold.

Device physics (units: conductance in uS, time in s):

* **levels**: each device is programmed to one of ``levels`` equally spaced conductances in
  ``[0, g_max]``.
* **programming noise**: ``G_prog = d2d * G_target + sigma_prog(g_hat) * N(0, 1)``; for PCM
  ``sigma_prog = 0.26348 + 1.9650 g_hat - 1.1731 g_hat^2`` uS, ``g_hat = G / g_max`` (aihwkit
  ``inference/noise/pcm.py``, fit to Nandakumar et al., ICECS 2019).
* **drift** (PCM): ``G(t) = G_prog * (t / t0)^(-nu)`` for ``t > t0`` after programming,
  ``t0 = 20 s``; ``nu ~ N(mu_nu, sigma_nu)`` per device, ``mu_nu = clip(-0.0155 ln g_hat +
  0.0244, 0.049, 0.1)``, ``sigma_nu = clip(-0.0125 ln g_hat - 0.0059, 0.008, 0.045)`` (aihwkit).
* **read noise**: ``sigma_read = G * Q_s * sqrt(ln((t + t_r) / (2 t_r)))``,
  ``Q_s = min(0.0088 / g_hat^0.65, 0.2)``, ``t_r = 250 ns`` (aihwkit PCM); RRAM uses a constant
  relative read noise (~1 %, aihwkit ``w_noise``).
* **device-to-device variability**: a fixed multiplicative factor ``d2d ~ N(1, sigma_d2d)``
  per device, drawn at ``init``.
* **endurance**: every write (a change of the programmed level) counts; a device with
  ``writes >= endurance`` is stuck at its last conductance.

Not verified: endurance (10^6-10^10 cycles [M]) and the level counts (hardware.md section 1c).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

from neurorl.errors import ConfigError, lookup

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class DeviceSpec:
    """Static parameters of a memristive device model (all host-side constants).

    Attributes:
        name: ``"pcm"`` or ``"rram"`` or a custom name.
        levels: programmable levels per device (>= 2).
        g_max: maximum conductance, uS.
        w_max: weight magnitude represented by ``g_max`` (model units).
        prog_noise: ``"pcm"`` (aihwkit polynomial) or a float: constant sigma as a fraction of
            ``g_max``.
        read_noise: ``"pcm"`` (aihwkit 1/f model) or a float: relative sigma ``* G``.
        drift: whether PCM power-law drift applies.
        t0: drift reference time, s.
        d2d_sigma: relative device-to-device variability.
        endurance: writes before a device sticks (float, may be ``inf``).
    """

    name: str = "pcm"
    levels: int = 16
    g_max: float = 25.0  # PCM 25 uS (aihwkit pcm.py) [V]
    w_max: float = 1.0
    prog_noise: Any = "pcm"
    read_noise: Any = "pcm"
    drift: bool = True
    t0: float = 20.0  # s (aihwkit) [V]
    d2d_sigma: float = 0.05  # [M] modelling choice
    endurance: float = 1e8  # PCM 10^6-10^9 cycles [M]

    def __post_init__(self) -> None:
        if not (isinstance(self.levels, int) and self.levels >= 2):
            raise ConfigError("device.levels", self.levels, "an int >= 2")
        for f in ("g_max", "w_max", "t0"):
            if not getattr(self, f) > 0:
                raise ConfigError(f"device.{f}", getattr(self, f), "a float > 0")
        if not (self.d2d_sigma >= 0 and self.endurance >= 1):
            raise ConfigError(
                "device", (self.d2d_sigma, self.endurance), "d2d_sigma >= 0, endurance >= 1"
            )


DEVICES: dict[str, DeviceSpec] = {
    # aihwkit inference/noise/pcm.py [V]; 16 levels [M]
    "pcm": DeviceSpec(),
    # aihwkit noise/reram.py: g_max 40 uS [V]; 8 levels (4-bit signed weight, Wan 2022) [V];
    # programming sigma ~2% of g_max and 1% read noise [M/V]; no power-law drift; 10^6+ cycles.
    "rram": DeviceSpec(
        name="rram",
        levels=8,
        g_max=40.0,
        prog_noise=0.02,
        read_noise=0.01,
        drift=False,
        endurance=1e6,
    ),
}


def get_device(name: str | DeviceSpec) -> DeviceSpec:
    """Device preset by name (``"pcm"``, ``"rram"``); a ``DeviceSpec`` passes through."""
    return name if isinstance(name, DeviceSpec) else lookup(DEVICES, name, "memristor device")


@flax.struct.dataclass
class DeviceState:
    """Per-weight device pair state (all arrays shaped like the weight matrix).

    Attributes:
        g_pos: programmed conductance of the positive device, uS (before drift).
        g_neg: programmed conductance of the negative device, uS.
        level_pos: programmed level index of the positive device (float32 integer values).
        level_neg: programmed level index of the negative device.
        writes_pos: writes so far (float32 count).
        writes_neg: writes so far.
        t_prog_pos: time of the last programming of the positive device, s.
        t_prog_neg: time of the last programming, s.
        nu_pos: drift exponent of the positive device.
        nu_neg: drift exponent of the negative device.
        d2d_pos: device-to-device factor of the positive device.
        d2d_neg: device-to-device factor of the negative device.
    """

    g_pos: Array
    g_neg: Array
    level_pos: Array
    level_neg: Array
    writes_pos: Array
    writes_neg: Array
    t_prog_pos: Array
    t_prog_neg: Array
    nu_pos: Array
    nu_neg: Array
    d2d_pos: Array
    d2d_neg: Array


def _prog_sigma(dev: DeviceSpec, g: Array) -> Array:
    if dev.prog_noise == "pcm":
        gh = g / dev.g_max
        return 0.26348 + 1.9650 * gh - 1.1731 * gh**2  # uS, aihwkit PCM [V]
    return jnp.full_like(g, float(dev.prog_noise) * dev.g_max)


def _drift_nu(dev: DeviceSpec, g: Array, key: Array) -> Array:
    if not dev.drift:
        return jnp.zeros_like(g)
    gh = jnp.clip(g / dev.g_max, 1e-6, None)
    mu = jnp.clip(-0.0155 * jnp.log(gh) + 0.0244, 0.049, 0.1)
    sd = jnp.clip(-0.0125 * jnp.log(gh) - 0.0059, 0.008, 0.045)
    return mu + sd * jax.random.normal(key, g.shape, g.dtype)


def target_levels(dev: DeviceSpec, w: Array) -> tuple[Array, Array]:
    """Level indices of the (G+, G-) pair that best represent ``w`` (one device at 0)."""
    top = dev.levels - 1
    k = jnp.clip(jnp.round(w / dev.w_max * top), -top, top)
    return jnp.maximum(k, 0.0), jnp.maximum(-k, 0.0)


def init(
    key: Array, weights: Array, device: str | DeviceSpec = "pcm", t: float = 0.0
) -> DeviceState:
    """Draw device variability and program ``weights`` onto fresh devices at time ``t`` (s)."""
    dev = get_device(device)
    k1, k2, k3 = jax.random.split(key, 3)
    z = jnp.zeros_like(weights)
    d2d = 1.0 + dev.d2d_sigma * jax.random.normal(k1, (2, *weights.shape), weights.dtype)
    state = DeviceState(
        g_pos=z,
        g_neg=z,
        level_pos=z,
        level_neg=z,
        writes_pos=z,
        writes_neg=z,
        t_prog_pos=z + t,
        t_prog_neg=z + t,
        nu_pos=z,
        nu_neg=z,
        d2d_pos=d2d[0],
        d2d_neg=d2d[1],
    )
    # Fresh devices are programmed without counting as wear-out writes (forming step).
    state = program(state, weights, k2, t, device=dev, force=True)
    return state.replace(writes_pos=z, writes_neg=z)


def program(
    state: DeviceState,
    target: Array,
    key: Array,
    t: float | Array = 0.0,
    device: str | DeviceSpec = "pcm",
    force: bool = False,
) -> DeviceState:
    """Program the pairs towards ``target`` weights at time ``t`` (s).

    Only devices whose level changes are written (one write each); worn devices
    (``writes >= endurance``) keep their conductance, level and drift clock.

    Args:
        state: current device state.
        target: desired weights (model units), same shape.
        key: PRNG key for programming noise and the new drift exponents.
        t: time of programming, s.
        device: device model.
        force: write every device regardless of its level (used at ``init``).
    """
    dev = get_device(device)
    top = dev.levels - 1
    lp, ln = target_levels(dev, target)
    kp, kn, knp, knn = jax.random.split(key, 4)

    def one(level, new_level, g, writes, t_prog, nu, d2d, k_noise, k_nu):
        want = (new_level != level) | force
        alive = writes < dev.endurance
        write = want & alive
        g_target = new_level / top * dev.g_max
        g_new = d2d * g_target + _prog_sigma(dev, g_target) * jax.random.normal(
            k_noise, g.shape, g.dtype
        )
        g_new = jnp.clip(g_new, 0.0, None)
        nu_new = _drift_nu(dev, g_new, k_nu)
        return (
            jnp.where(write, new_level, level),
            jnp.where(write, g_new, g),
            writes + write.astype(writes.dtype),
            jnp.where(write, t, t_prog),
            jnp.where(write, nu_new, nu),
        )

    lvp, gp, wp, tp, nup = one(
        state.level_pos,
        lp,
        state.g_pos,
        state.writes_pos,
        state.t_prog_pos,
        state.nu_pos,
        state.d2d_pos,
        kp,
        knp,
    )
    lvn, gn, wn, tn, nun = one(
        state.level_neg,
        ln,
        state.g_neg,
        state.writes_neg,
        state.t_prog_neg,
        state.nu_neg,
        state.d2d_neg,
        kn,
        knn,
    )
    return state.replace(
        level_pos=lvp,
        g_pos=gp,
        writes_pos=wp,
        t_prog_pos=tp,
        nu_pos=nup,
        level_neg=lvn,
        g_neg=gn,
        writes_neg=wn,
        t_prog_neg=tn,
        nu_neg=nun,
    )


def conductance(
    state: DeviceState, t: float | Array, device: str | DeviceSpec = "pcm", key: Array | None = None
) -> tuple[Array, Array]:
    """Conductances (G+, G-) in uS read at time ``t`` (s): drifted, plus read noise if ``key``."""
    dev = get_device(device)

    def one(g, t_prog, nu, k):
        dt = jnp.maximum(t - t_prog, 0.0)
        if dev.drift:
            # Power law only after t0; before t0 the device reads its programmed value.
            g = g * jnp.maximum(dt / dev.t0, 1.0) ** (-nu)
        if k is not None:
            if dev.read_noise == "pcm":
                gh = jnp.clip(g / dev.g_max, 1e-6, None)
                q_s = jnp.minimum(0.0088 / gh**0.65, 0.2)
                t_r = 250e-9
                sig = g * q_s * jnp.sqrt(jnp.log((dt + t_r) / (2.0 * t_r)).clip(0.0))
            else:
                sig = float(dev.read_noise) * g
            g = g + sig * jax.random.normal(k, g.shape, g.dtype)
        return g

    kp, kn = (None, None) if key is None else tuple(jax.random.split(key))
    return (
        one(state.g_pos, state.t_prog_pos, state.nu_pos, kp),
        one(state.g_neg, state.t_prog_neg, state.nu_neg, kn),
    )


def read(
    state: DeviceState, key: Array | None, t: float | Array, device: str | DeviceSpec = "pcm"
) -> Array:
    """Weights ``(G+ - G-) / g_max * w_max`` read at time ``t`` (s); ``key=None``: no read noise."""
    dev = get_device(device)
    gp, gn = conductance(state, t, dev, key)
    return (gp - gn) / dev.g_max * dev.w_max


class MemristorTxState(NamedTuple):
    """State of :func:`memristor_transform`: device state, PRNG key, step counter, and the
    weights the learner intends (its own accumulated updates, never the drifted read-back)."""

    devices: DeviceState
    key: Array
    count: Array
    target: Array


def memristor_transform(
    key: Array, device: str | DeviceSpec = "pcm", dt_s: float = 1e-3, read_noise: bool = False
) -> optax.GradientTransformation:
    """Memristive weights as the last transformation of an optax chain (single weight matrix).

    The transform keeps the weights the learner *intends* (the initial weights plus every update
    it asked for, clipped to ``+-w_max``) and at each step programs those onto the devices at time
    ``count * dt_s``: only devices whose level changes are written, so a zero update writes
    nothing and the weights follow the devices' pure drift. It returns updates such that the new
    params equal what the devices read (drift, and read noise when ``read_noise``), so learning
    sees the device's non-idealities. (Programming the drifted read-back ``params + updates``
    instead would re-target drifted values and restart every drift clock: weights would decay
    much faster than drift and devices would be written with no update at all.) Updates smaller
    than a level accumulate in the intended weights until they cross one, as in mixed-precision
    in-memory training.

    References:
        Nandakumar et al., "Mixed-precision deep learning based on computational memory",
        Frontiers in Neuroscience 14:406 (2020) (high-precision accumulation of updates, device
        programmed only when the accumulated change exceeds the device granularity).
    """
    dev = get_device(device)

    def init_fn(params: Array) -> MemristorTxState:
        k0, k1 = jax.random.split(key)
        target = jnp.clip(jnp.asarray(params), -dev.w_max, dev.w_max)
        return MemristorTxState(init(k0, params, dev), k1, jnp.zeros((), jnp.int32), target)

    def update_fn(updates: Array, state: MemristorTxState, params: Array | None = None):
        if params is None:
            raise ConfigError(
                "memristor_transform.update", None, "params: call tx.update(updates, state, params)"
            )
        k, kp, kr = jax.random.split(state.key, 3)
        count = state.count + 1
        t = count.astype(jnp.float32) * dt_s
        target = jnp.clip(state.target + updates, -dev.w_max, dev.w_max)
        devices = program(state.devices, target, kp, t, dev)
        w = read(devices, kr if read_noise else None, t, dev)
        return w - params, MemristorTxState(devices, k, count, target)

    return optax.GradientTransformation(init_fn, update_fn)
