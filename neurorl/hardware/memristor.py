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
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

from neurorl.errors import ConfigError, closest, lookup

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


# -------------------------------------------------------------------------------------------------
# Learning by programming pulses (on-chip learning on a crossbar)


@dataclasses.dataclass(frozen=True)
class PulseDeviceSpec:
    """Pulsed update model of a memristive synapse (aihwkit ``SoftBoundsDevice`` semantics).

    Each weight is ``w = w_scale * (g_pos - g_neg)`` (PCM: a pair of SET-only devices, refreshed
    when one saturates) or ``w = w_scale * g`` (RRAM: one bidirectional device against a fixed
    reference, as aihwkit's ``ReRamSBPresetDevice`` assumes). One pulse moves a device by

        up:   g += dw_up * (1 + c2c xi) * (1 - g / g_hi)
        down: g -= dw_down * (1 + c2c xi) * (1 - g / g_lo)

    (soft bounds: nonlinear in g, asymmetric through ``up_down``, bounded; aihwkit
    ``SoftBoundsDevice`` with ``mult_noise=True``), then clipped to ``[g_lo, g_hi]``, with
    device-to-device spread ``dw_up = dw_min (1 + up_down + dtod xi)``, ``dw_down = dw_min (1 -
    up_down + dtod xi)`` and ``g_hi = w_max (1 + w_max_dtod xi)`` drawn once per device (aihwkit
    ``PulsedDevice`` ``dw_min_dtod``, ``up_down_dtod``, ``w_max_dtod``). Our ``up_down = b`` is
    symmetric about ``dw_min``; aihwkit's ``up_down = a > 0`` keeps the up step at ``dw_min``
    and shrinks the down step to ``dw_min (1 - a)``, so ours is aihwkit's with ``dw_min (1 + b)``
    and ``a = 2 b / (1 + b)`` (checked against aihwkit's tile in ``tests/hardware/
    test_pulses.py``). A device with ``endurance``
    pulses is worn out (stuck). The read path adds relative read noise and, for PCM, power-law
    drift since the device's last pulse (``nu`` from the aihwkit PCM fit used by
    :func:`conductance`).

    Attributes:
        name: preset name.
        dw_min: mean step at ``g = 0`` in device units.
        up_down: up/down asymmetry b: up steps ``dw_min (1 + b)``, down ``dw_min (1 - b)``.
        g_hi: upper bound (device units); ``g_lo``: lower bound.
        dw_min_dtod: device-to-device spread of the step (relative).
        up_down_dtod: device-to-device spread of beta.
        w_max_dtod / w_min_dtod: device-to-device spread of the bounds (relative).
        dw_min_std: cycle-to-cycle spread of each step (relative, multiplicative).
        pair: SET-only differential pair with refresh (PCM) instead of one bidirectional device.
        refresh_at: a pair is reprogrammed to ``(max(w, 0), max(-w, 0))`` when a device exceeds
            this fraction of ``g_hi`` while the other is not at 0 (Nandakumar et al. 2020 /
            aihwkit ``OneSidedUnitCell``).
        endurance: pulses before a device is stuck.
        max_pulses: pulses per device per update (the update's pulse train length).
        read_noise: relative sigma of a read.
        drift: PCM power-law drift on reads.
        g_max_us: conductance of device unit 1.0 in uS (for drift's g-dependence).
        nonlinearity: how much a step shrinks towards the bound, ``step = dw (1 - nl g / b)``:
            1.0 soft bounds (aihwkit ``SoftBoundsDevice``), 0.0 a constant step clipped at the
            bounds (aihwkit ``ConstantStepDevice``).
        exp_step: ``(a, b, A_up, A_down, gamma_up, gamma_down)`` of aihwkit's ``ExpStepDevice``
            (``None``: soft bounds / constant step by ``nonlinearity``). A pulse then moves
            ``g`` by ``dw y`` with ``z = 2 a g / (g_hi - g_lo) + b``, ``y_up = max(1 - A_up
            exp(gamma_up z), 0)``, ``y_down = max(1 - A_down exp(-gamma_down z), 0)``, clipped
            to the bounds after every pulse (``rpu_expstep_device.cpp`` ``update_once``);
            multi-pulse updates run pulse by pulse (no closed form).
        drift_nu: a fixed drift exponent for every device (``None``: the aihwkit PCM fit).
        drift_t0: time after a pulse from which a read drifts, s (aihwkit: 20 s).
        update: how a requested change becomes pulses (:func:`pulse_update`):
            ``"calibrated"`` -- a stochastic pulse count from each device's own present step
            (the controller knows every device's step: an idealisation, the default so far);
            ``"stochastic"`` -- a stochastic pulse count from the nominal step ``dw_min``, open
            loop, as aihwkit and a real crossbar controller do (Gokmen & Vlasov 2016);
            ``"mixed_precision"`` -- the change accumulates in a digital variable ``chi`` per
            synapse and ``floor(|chi| / dw_min)`` pulses are applied once it passes one nominal
            step, ``chi`` keeping the rest (Nandakumar et al. 2020);
            ``"tiki_taka"`` -- Tiki-Taka v1 (Gokmen & Haensch 2020; aihwkit
            ``TransferCompound`` with two devices): every synapse has a second, *fast* device
            (A) of the same model that receives the open-loop stochastic pulses; every
            ``transfer_every`` updates ``n_reads_per_transfer`` input lines of A are read and
            written onto the slow device C with ``transfer_lr`` (:func:`pulse_update`); the
            weight is ``gamma A + C``.
        deterministic_pulses: round open-loop pulse counts to the nearest integer instead of
            stochastic rounding (aihwkit ``PulseType.DETERMINISTIC_IMPLICIT``; for exact
            comparisons: a request below half a step then writes nothing).
        gamma: ``tiki_taka``: weight of the fast device in the effective weight ``gamma A + C``
            (aihwkit ``gamma``, default 0: C alone is read; aihwkit's ``gamma_vec`` for two
            devices is ``[gamma, 1]``).
        transfer_every: ``tiki_taka``: a transfer after every ``transfer_every``-th update
            (one update = one call of :func:`pulse_update`, a learning epoch; aihwkit with
            ``units_in_mbatch`` and a mini-batch of 1); 0: never.
        n_reads_per_transfer: ``tiki_taka``: input lines read and written per transfer,
            sequentially and wrapping around (aihwkit ``n_reads_per_transfer``).
        transfer_columns: ``tiki_taka``: read columns of the crossbar (aihwkit's default: one
            input line, i.e. one presynaptic index, the first axis of neurorl's pre-major
            ``[n_pre, n_post]`` weights) rather than rows (one output line, the last axis).
        transfer_lr: ``tiki_taka``: ``C += transfer_lr * A_read`` per transfer, as open-loop
            stochastic pulses on C (aihwkit ``transfer_lr`` with ``scale_transfer_lr=False``:
            our requests already carry the rule's learning rate).
        fast_lr: ``tiki_taka``: the requested change is scaled by this onto A (aihwkit
            ``fast_lr``).
    """

    name: str
    dw_min: float
    up_down: float = 0.0
    g_hi: float = 1.0
    g_lo: float = -1.0
    dw_min_dtod: float = 0.0
    up_down_dtod: float = 0.0
    w_max_dtod: float = 0.0
    w_min_dtod: float = 0.0
    dw_min_std: float = 0.0
    pair: bool = False
    refresh_at: float = 0.9
    endurance: float = float("inf")
    max_pulses: int = 16
    read_noise: float = 0.0
    drift: bool = False
    g_max_us: float = 25.0
    nonlinearity: float = 1.0
    exp_step: tuple[float, float, float, float, float, float] | None = None
    drift_nu: float | None = None
    drift_t0: float = 20.0
    update: str = "calibrated"
    deterministic_pulses: bool = False
    gamma: float = 0.0
    transfer_every: int = 1
    n_reads_per_transfer: int = 1
    transfer_columns: bool = True
    transfer_lr: float = 1.0
    fast_lr: float = 1.0

    def __post_init__(self) -> None:
        if not (self.dw_min > 0 and self.g_hi > self.g_lo and self.max_pulses >= 1
                and self.endurance >= 1 and -1 < self.up_down < 1):
            raise ConfigError("pulse_device", self.name, "dw_min > 0, g_hi > g_lo, "
                              "max_pulses >= 1, endurance >= 1, |up_down| < 1")
        if self.update not in UPDATE_SCHEMES:
            raise ConfigError("device.update", self.update, ", ".join(UPDATE_SCHEMES),
                              suggestion=closest(self.update, UPDATE_SCHEMES))
        if not (0.0 <= self.nonlinearity <= 1.0 and self.drift_t0 > 0
                and (self.drift_nu is None or self.drift_nu >= 0)):
            raise ConfigError("device", (self.nonlinearity, self.drift_nu, self.drift_t0),
                              "0 <= nonlinearity <= 1, drift_nu >= 0 or None, drift_t0 > 0")
        _check_tiki_taka(self)
        if self.exp_step is not None:
            try:
                shape = tuple(float(v) for v in self.exp_step)
            except (TypeError, ValueError):
                shape = ()
            if len(shape) != 6:
                raise ConfigError("device.exp_step", self.exp_step,
                                  "None or 6 numbers (a, b, A_up, A_down, gamma_up, gamma_down)")
            object.__setattr__(self, "exp_step", shape)  # a YAML list -> hashable tuple

    def replace(self, **kw: Any) -> PulseDeviceSpec:
        """A copy with some fields changed (co-design sweeps: one non-ideality at a time)."""
        return dataclasses.replace(self, **kw)


UPDATE_SCHEMES = ("calibrated", "stochastic", "mixed_precision", "tiki_taka")
# the fields only the tiki_taka scheme reads (aihwkit TransferCompound names)
TIKI_TAKA_FIELDS = ("gamma", "transfer_every", "n_reads_per_transfer", "transfer_columns",
                    "transfer_lr", "fast_lr")


def _check_tiki_taka(dev: PulseDeviceSpec) -> None:
    """ConfigError (``device.<field>``) for an invalid Tiki-Taka parameter."""
    def real(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

    def whole(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    checks = (
        ("gamma", real(dev.gamma) and dev.gamma >= 0, "a float >= 0 (weight of the fast "
         "device A in gamma A + C; 0: C alone)"),
        ("transfer_every", whole(dev.transfer_every) and dev.transfer_every >= 0,
         "an int >= 0 (updates between transfers; 0: never)"),
        ("n_reads_per_transfer", whole(dev.n_reads_per_transfer)
         and dev.n_reads_per_transfer >= 1, "an int >= 1 (lines read per transfer)"),
        ("transfer_columns", isinstance(dev.transfer_columns, bool), "true or false"),
        ("transfer_lr", real(dev.transfer_lr) and dev.transfer_lr > 0, "a float > 0"),
        ("fast_lr", real(dev.fast_lr) and dev.fast_lr > 0, "a float > 0"),
        ("deterministic_pulses", isinstance(dev.deterministic_pulses, bool), "true or false"),
    )
    for name, ok, allowed in checks:
        if not ok:
            raise ConfigError(f"device.{name}", getattr(dev, name), allowed)


def pulse_device_with(name: str | PulseDeviceSpec, overrides: Mapping[str, Any] | None,
                      field: str = "hardware.device") -> PulseDeviceSpec:
    """A pulsed-device preset with some fields changed (an experiment's ``hardware.device``).

    Args:
        name: preset name or spec.
        overrides: field -> value, e.g. ``{"update": "mixed_precision", "up_down": 0.3}``.
        field: the config path named in errors.

    Returns:
        The changed :class:`PulseDeviceSpec` (the preset itself for no overrides).

    Raises:
        ConfigError: an unknown field (with the closest valid name) or an invalid value.
    """
    dev = get_pulse_device(name)
    if not overrides:
        return dev
    names = [f.name for f in dataclasses.fields(PulseDeviceSpec) if f.name != "name"]
    for k in overrides:
        if k not in names:
            raise ConfigError(f"{field}.{k}", overrides[k], ", ".join(names),
                              suggestion=closest(k, names))
    try:
        out = dev.replace(**dict(overrides))
    except ConfigError as e:
        if e.field.startswith("device."):  # one field: name it as the user wrote it
            raise ConfigError(f"{field}.{e.field[len('device.'):]}", e.value, e.allowed,
                              e.suggestions) from None
        raise ConfigError(field, dict(overrides), str(e)) from None
    except TypeError as e:
        raise ConfigError(field, dict(overrides), f"values of the right types ({e})") from None
    unused = [k for k in overrides if k in TIKI_TAKA_FIELDS]
    if unused and out.update != "tiki_taka":
        raise ConfigError(f"{field}.{unused[0]}", overrides[unused[0]],
                          f"only with {field}.update: tiki_taka (update is {out.update!r})")
    return out


PULSE_DEVICES: dict[str, PulseDeviceSpec] = {
    # PCM: aihwkit PCMPresetDevice (fit to Nandakumar et al. 2020, Front. Neurosci. 14:406),
    # its own step shape: SET-only, dw_min 0.01 of a range 2.0 -> 0.005 of g_max per pulse,
    # ExpStep a = -1 (scales with the range), b = 0, A_up -27.235, A_down -2.235, gamma 2.5 /
    # 2.5 (the first SET pulse from 0 is 28 dw_min, 0.14 of the range; saturates in ~100
    # pulses), dtod 0.2, up_down_dtod 0.05, w_max_dtod 0.1 of 2.0 -> 0.05 [V aihwkit
    # presets/devices.py, the step shape checked pulse by pulse against its tile in
    # tests/hardware/test_pulses.py]; its "complex" c2c noise (dw_min_std 0.6 with add/slope
    # terms) and reset spread are not modelled: multiplicative 0.3 (aihwkit PulsedDevice
    # default) [V]; endurance 1e8 [M]; 1 % read noise [M]; drift as the aihwkit PCM inference
    # model [V]. The `pcm` chip's device.
    "pcm": PulseDeviceSpec("pcm", dw_min=0.005, g_hi=1.0, g_lo=0.0, dw_min_dtod=0.2,
                           up_down_dtod=0.05, w_max_dtod=0.05, dw_min_std=0.3, pair=True,
                           endurance=1e8, read_noise=0.01, drift=True, g_max_us=25.0,
                           exp_step=(-1.0, 0.0, -27.235, -2.235, 2.5, 2.5)),
    # The PCM preset before it took aihwkit's step shape (the on-chip benchmark's PCM rows up to
    # commit 8c58bc1): the same device with soft bounds instead of ExpStep [M], a coarse
    # approximation (it needs ~400 pulses for 0.87 of g_hi; trajectories differ from aihwkit's
    # PCM by up to 0.70 of the range). Kept to reproduce those results.
    "pcm_softbounds": PulseDeviceSpec("pcm_softbounds", dw_min=0.005, g_hi=1.0, g_lo=0.0,
                                      dw_min_dtod=0.2, up_down_dtod=0.05, w_max_dtod=0.05,
                                      dw_min_std=0.3, pair=True, endurance=1e8,
                                      read_noise=0.01, drift=True, g_max_us=25.0),
    # RRAM: aihwkit ReRamSBPresetDevice (loose fit to Gong et al. 2018, Nat. Commun. 9:2102):
    # dw_min 0.002, w_max 1.25, w_min -0.75 (reference-calibrated), dw_min_dtod 0.3,
    # up_down_dtod 0.01, w_max_dtod 0.3/1.25, w_min_dtod 0.3/0.75, dw_min_std 3.75 [V aihwkit];
    # endurance 1e6 [M]; 1 % read noise (aihwkit w_noise) [M]; no drift.
    "rram": PulseDeviceSpec("rram", dw_min=0.002, g_hi=1.25, g_lo=-0.75, dw_min_dtod=0.3,
                            up_down_dtod=0.01, w_max_dtod=0.3 / 1.25, w_min_dtod=0.3 / 0.75,
                            dw_min_std=3.75, endurance=1e6, read_noise=0.01, g_max_us=40.0),
}
# the name the ExpStep PCM had before it became "pcm" (configs that name it keep working)
PULSE_DEVICES["pcm_expstep"] = PULSE_DEVICES["pcm"]


@flax.struct.dataclass
class PulseState:
    """Per-weight device state of pulsed learning (arrays shaped like the weights).

    Attributes:
        g: ``[2, ...]`` device values (PCM pair: G+, G-; RRAM: the device and an unused 0).
        dw_up: ``[2, ...]`` per-device up step; ``dw_down``: down step.
        g_hi: ``[2, ...]`` per-device upper bound; ``g_lo``: lower bound.
        nu: ``[2, ...]`` drift exponents; ``t_last``: time of each device's last pulse (s).
        pulses: ``[2, ...]`` pulses so far per device (endurance).
        total_pulses: scalar, all pulses (energy); ``refreshes``: scalar, pair refreshes.
        chi: shaped like the weights: the change requested but not yet programmed, in device
            units (``update="mixed_precision"``; zero otherwise).
        fast: ``update="tiki_taka"``: the fast device A of every synapse (a ``PulseState`` of
            the same model, its own device-to-device draws, pulses and refreshes); the fields
            above are then the slow device C. ``None`` for the other schemes.
        n_updates: ``tiki_taka``: updates so far (int32 scalar; aihwkit
            ``current_update_idx``); a transfer follows every ``transfer_every``-th.
        next_slice: ``tiki_taka``: the first input line (or output line) the next transfer
            reads (int32 scalar; aihwkit ``current_slice_indices``).

    With ``tiki_taka``, ``total_pulses`` counts the pulses of both devices (energy) and
    ``pulses`` those of C (``fast.pulses``: A's; :func:`worn_out` counts both).
    """

    g: Array
    dw_up: Array
    dw_down: Array
    g_hi: Array
    g_lo: Array
    nu: Array
    t_last: Array
    pulses: Array
    total_pulses: Array
    refreshes: Array
    chi: Array
    fast: PulseState | None = None
    n_updates: Array | None = None
    next_slice: Array | None = None


def get_pulse_device(name: str | PulseDeviceSpec) -> PulseDeviceSpec:
    """Pulsed-device preset by name (``"pcm"``, ``"rram"``); a spec passes through."""
    return name if isinstance(name, PulseDeviceSpec) else lookup(PULSE_DEVICES, name,
                                                                  "pulse device")


def pulse_init(key: Array, shape: tuple[int, ...], device: str | PulseDeviceSpec = "pcm",
               g0: Array | None = None) -> PulseState:
    """Fresh devices with their device-to-device parameters; ``g0 [2, ...]`` initial values
    (default 0). ``update="tiki_taka"``: ``g0`` goes onto the slow device C and a fast device A
    at 0 is drawn too (aihwkit ``TransferRPUDevice::onSetWeights``: the last device holds the
    weight, the others are zeroed)."""
    dev = get_pulse_device(device)
    if dev.update == "tiki_taka":
        k_slow, k_fast = jax.random.split(key)
        plain = dev.replace(update="stochastic")
        slow = pulse_init(k_slow, shape, plain, g0)
        fast = pulse_init(k_fast, shape, plain)
        zero = jnp.zeros((), jnp.int32)
        return slow.replace(fast=fast, n_updates=zero, next_slice=zero)
    ks = jax.random.split(key, 5)
    full = (2, *shape)
    n = lambda k: jax.random.normal(k, full, jnp.float32)  # noqa: E731
    beta = dev.up_down + dev.up_down_dtod * n(ks[0])
    spread = dev.dw_min_dtod * n(ks[1])
    dw_up = jnp.maximum(dev.dw_min * (1.0 + beta + spread), 0.0)
    dw_down = jnp.maximum(dev.dw_min * (1.0 - beta + spread), 0.0)
    g_hi = dev.g_hi * (1.0 + dev.w_max_dtod * n(ks[2]))
    g_lo = (dev.g_lo * (1.0 + dev.w_min_dtod * n(ks[3])) if dev.g_lo != 0
            else jnp.zeros(full, jnp.float32))
    g_hi = jnp.maximum(g_hi, g_lo + 1e-3)
    g = jnp.zeros(full, jnp.float32) if g0 is None else jnp.clip(g0, g_lo, g_hi)
    gh = jnp.clip(jnp.abs(g) / jnp.maximum(g_hi, 1e-6), 1e-6, None)
    if not dev.drift:
        nu = jnp.zeros(full, jnp.float32)
    elif dev.drift_nu is not None:
        nu = jnp.full(full, dev.drift_nu, jnp.float32)
    else:
        nu = _drift_nu(DEVICES["pcm"], gh * DEVICES["pcm"].g_max, ks[4])
    z = jnp.zeros(full, jnp.float32)
    return PulseState(g, dw_up, dw_down, g_hi, g_lo, nu, z, z, jnp.zeros(()), jnp.zeros(()),
                      jnp.zeros(shape, jnp.float32))


def _step_scale(g: Array, up: Array | bool, g_hi: Array, g_lo: Array, nonlinearity: float,
                exp_step: tuple[float, ...] | None) -> Array:
    """The factor ``y`` of one pulse's step ``dw y`` at ``g`` (up or down; noiseless)."""
    if exp_step is None:
        bound = jnp.where(up, g_hi, jnp.where(g_lo == 0, -1e-9, g_lo))
        return 1.0 - nonlinearity * g / bound
    a, b, a_up, a_down, gam_up, gam_down = (float(v) for v in exp_step)
    z = 2.0 * a * g / jnp.maximum(g_hi - g_lo, 1e-9) + b
    return jnp.where(up, jnp.maximum(1.0 - a_up * jnp.exp(gam_up * z), 0.0),
                     jnp.maximum(1.0 - a_down * jnp.exp(-gam_down * z), 0.0))


def _exp_step_pulses(g: Array, n_up: Array, n_down: Array, dw_up: Array, dw_down: Array,
                     g_hi: Array, g_lo: Array, c2c: float, key: Array | None,
                     exp_step: tuple[float, ...]) -> Array:
    """ExpStep pulses one at a time: all up pulses, then all down pulses (as the closed form
    of :func:`pulse_step`), each ``g += sign dw y(g) (1 + c2c xi)`` and clipped."""

    def train(g, n, dw, up, k):
        sign = 1.0 if up else -1.0

        def body(i, g):
            y = _step_scale(g, up, g_hi, g_lo, 0.0, exp_step)
            xi = (jax.random.normal(jax.random.fold_in(k, i), jnp.shape(g))
                  if k is not None and c2c else 0.0)
            g_new = jnp.clip(g + sign * dw * y * (1.0 + c2c * xi), g_lo, g_hi)
            return jnp.where(i < n, g_new, g)

        return jax.lax.fori_loop(0, jnp.max(n).astype(jnp.int32), body, g)

    k1 = k2 = None
    if key is not None:
        k1, k2 = jax.random.split(key)
    return train(train(g, n_up, dw_up, True, k1), n_down, dw_down, False, k2)


def pulse_step(g: Array, n_up: Array, n_down: Array, dw_up: Array, dw_down: Array,
               g_hi: Array, g_lo: Array, c2c: float, key: Array | None,
               nonlinearity: float = 1.0,
               exp_step: tuple[float, ...] | None = None) -> Array:
    """``n_up`` up and ``n_down`` down soft-bounds pulses from ``g`` (elementwise).

    One pulse is exact (aihwkit's per-pulse rule, ``g += dw (1 - nl g / b)``). ``n`` pulses of
    one direction use the closed form of the noiseless recursion, ``g_n = b' - (b' - g)(1 -
    nl dw/|b|)^n`` with ``b' = b / nl`` (``nl = 0``: ``g + n dw``), then the clip to the bounds,
    plus the summed cycle-to-cycle noise of the n steps as one Gaussian (``sqrt(n)`` times a
    step's sigma at the starting ``g``): exact in mean, approximate in the noise for n > 1.
    With ``exp_step`` (aihwkit ``ExpStepDevice``) the pulses run one at a time, each exact.
    """
    if exp_step is not None:
        return _exp_step_pulses(g, n_up, n_down, dw_up, dw_down, g_hi, g_lo, c2c, key,
                                tuple(exp_step))
    nl = float(nonlinearity)

    def run(g, n, dw, bound, sign, k):
        if nl > 0:
            f = 1.0 - nl * dw / jnp.abs(bound)
            det = bound / nl - (bound / nl - g) * f**n
        else:
            det = g + sign * n * dw
        step = dw * (1.0 - nl * g / bound)
        if k is not None and c2c:
            det = det + sign * c2c * jnp.abs(step) * jnp.sqrt(n) * jax.random.normal(
                k, jnp.shape(g))
        return jnp.where(n > 0, det, g)

    k1 = k2 = None
    if key is not None:
        k1, k2 = jax.random.split(key)
    g = run(g, n_up, dw_up, g_hi, 1.0, k1)
    safe_lo = jnp.where(g_lo == 0, -1e-9, g_lo)  # SET-only devices have no down pulses
    g = run(g, n_down, dw_down, safe_lo, -1.0, k2)
    return jnp.clip(g, g_lo, g_hi)


def _read_units(state: PulseState, t: Array | float, dev: PulseDeviceSpec,
                key: Array | None) -> Array:
    """One device's value in device units (``g+ - g-`` or ``g``) read at ``t``: drift since
    each device's last pulse, relative read noise if ``key``."""
    g = state.g
    if dev.drift:
        dt = jnp.maximum(t - state.t_last, 0.0)
        g = g * jnp.maximum(dt / dev.drift_t0, 1.0) ** (-state.nu)
    if key is not None and dev.read_noise:
        g = g + dev.read_noise * jnp.abs(g) * jax.random.normal(key, g.shape)
    return g[0] - g[1] if dev.pair else g[0]


def pulse_read(state: PulseState, t: Array | float, device: str | PulseDeviceSpec,
               w_scale: float, key: Array | None = None) -> Array:
    """Weights ``w_scale (g+ - g-)`` (pair) or ``w_scale g`` read at time ``t`` (s): PCM drift
    since each device's last pulse (after ``drift_t0``, 20 s by default), relative read noise if
    ``key``. ``tiki_taka``: the effective weight ``w_scale (gamma A + C)`` (both read)."""
    dev = get_pulse_device(device)
    if dev.update == "tiki_taka":
        k_slow = k_fast = None
        if key is not None:
            k_slow, k_fast = jax.random.split(key)
        w = _read_units(state, t, dev, k_slow)
        if dev.gamma:
            w = w + dev.gamma * _read_units(state.fast, t, dev, k_fast)
        return w_scale * w
    return w_scale * _read_units(state, t, dev, key)


def pulse_update(state: PulseState, delta: Array, key: Array, t: Array | float,
                 device: str | PulseDeviceSpec, w_scale: float) -> PulseState:
    """Apply a requested weight change ``delta`` as programming pulses at time ``t``.

    How many pulses (``device.update``):

    * ``"calibrated"``: ``|delta|`` over the weight change one pulse makes on *that* device at
      its present value, stochastically rounded (the controller knows each device's step);
    * ``"stochastic"``: ``|delta|`` over the nominal step ``dw_min``, stochastically rounded:
      unbiased stochastic pulse trains, open loop (Gokmen & Vlasov 2016); the devices' own
      asymmetry, nonlinearity and noise act on the weight;
    * ``"mixed_precision"``: ``chi += delta`` (a digital accumulator per synapse, device units);
      ``p = floor(|chi| / dw_min)`` pulses of sign ``sign(chi)`` (at most ``max_pulses``) and
      ``chi -= sign(chi) p dw_min``. Opposite updates cancel in ``chi`` before any device is
      touched, so a noisy rule (R-STDP) writes far fewer, and far fewer alternating, pulses
      (Nandakumar et al. 2020, Algorithm 1, open loop);
    * ``"tiki_taka"``: Tiki-Taka v1 (Gokmen & Haensch 2020, Algorithm 1; aihwkit
      ``TransferCompound`` with two devices, ``rpu_transfer_device.cpp``). The change goes,
      times ``fast_lr``, onto the fast device A as ``"stochastic"`` pulses. Then the update
      counter ``n`` is incremented and, if ``transfer_every > 0`` and ``n % transfer_every ==
      0``, ``k = n_reads_per_transfer`` consecutive lines of A starting at ``next_slice``
      (wrapping around) are read at ``t`` (drift, the device's read noise) and written onto
      the slow device C as ``"stochastic"`` pulses for ``transfer_lr * A_read``;
      ``next_slice`` advances by ``k``. A line is a column of the crossbar (one input,
      ``w[i, :]`` of neurorl's ``[n_pre, n_post]`` weights; first axis) or, with
      ``transfer_columns=False``, a row (one output, ``w[..., j]``; last axis). A is never
      reset; C alone holds the weight unless ``gamma > 0`` (:func:`pulse_read`). A's
      asymmetry drives it towards its symmetric point, but A only serves as a filter of the
      gradient whose *sign-balanced* average C integrates: C converges near the target while
      plain SGD on an asymmetric device drifts to the symmetric point. Not modelled of
      aihwkit's ``TransferCompound``: more than two devices (``transfer_every_vec``,
      ``transfer_lr_vec``, ``no_self_transfer``; ``gamma_vec`` is ``[gamma, 1]``), a fast
      device of another model, ``units_in_mbatch`` (an update is one mini-batch of one),
      ``with_reset_prob``, ``random_selection``, ``scale_transfer_lr`` / ``scale_fast_lr``
      (no learning-rate schedule reaches the devices), the transfer read's periphery
      (``transfer_forward``: DAC/ADC resolution, output noise, bounds -- the read has the
      device's own read noise only) and its pulse trains (``transfer_update``: here the same
      open-loop stochastic count as A's, not aihwkit's stochastic bit streams).

    Counts are capped at ``max_pulses`` (per device, per update and per transfer); with
    ``deterministic_pulses`` the open-loop counts are rounded to nearest. PCM: ``delta > 0``
    pulses G+, ``delta < 0`` pulses G- (SET only); a pair whose device passes ``refresh_at`` is
    reprogrammed (both devices RESET and the net weight rewritten onto one device: two extra
    writes). RRAM: up or down pulses on the one device. Worn-out devices (``pulses >=
    endurance``) do not move.

    References:
        Gokmen & Vlasov, "Acceleration of deep neural network training with resistive
        cross-point devices", Front. Neurosci. 10:333 (2016); Nandakumar et al.,
        "Mixed-precision deep learning based on computational memory", Front. Neurosci.
        14:406 (2020); Gokmen & Haensch, "Algorithm for training neural networks on resistive
        device arrays", Front. Neurosci. 14:103 (2020); IBM aihwkit ``TransferCompound``.
    """
    dev = get_pulse_device(device)
    if dev.update == "tiki_taka":
        return _tiki_taka_update(state, delta, key, t, dev, w_scale)
    return _program(state, delta / w_scale, key, t, dev, dev.update)


def _tiki_taka_update(state: PulseState, delta: Array, key: Array, t: Array | float,
                      dev: PulseDeviceSpec, w_scale: float) -> PulseState:
    """One Tiki-Taka update (see :func:`pulse_update`)."""
    k_fast, k_read, k_slow = jax.random.split(key, 3)
    fast = _program(state.fast, dev.fast_lr * delta / w_scale, k_fast, t, dev, "stochastic")
    n = state.n_updates + 1
    shape = jnp.shape(delta)
    axis = 0 if dev.transfer_columns or len(shape) == 0 else len(shape) - 1
    n_lines = shape[axis] if shape else 1
    k = min(dev.n_reads_per_transfer, n_lines)  # aihwkit caps it at the crossbar's size
    every = dev.transfer_every
    go = (n % every == 0) if every > 0 else jnp.zeros((), bool)
    lines = (state.next_slice + jnp.arange(k)) % n_lines
    sel = jnp.zeros((n_lines,), bool).at[lines].set(True) & go
    if not shape:
        sel = sel[0]
    elif axis == 0:  # a column: broadcast over the other axes
        sel = sel.reshape((n_lines,) + (1,) * (len(shape) - 1))
    a = _read_units(fast, t, dev, k_read)
    slow = _program(state, jnp.where(sel, dev.transfer_lr * a, 0.0), k_slow, t, dev,
                    "stochastic")
    return slow.replace(
        fast=fast, n_updates=n,
        next_slice=jnp.where(go, (state.next_slice + k) % n_lines, state.next_slice),
        total_pulses=slow.total_pulses + fast.total_pulses - state.fast.total_pulses)


def _program(state: PulseState, d: Array, key: Array, t: Array | float,
             dev: PulseDeviceSpec, scheme: str) -> PulseState:
    """Pulses for a requested change ``d`` (device units) on one device (pair) by ``scheme``
    (``calibrated``, ``stochastic`` or ``mixed_precision``)."""
    kn, ks, kr = jax.random.split(key, 3)
    alive = state.pulses < dev.endurance
    g = state.g
    chi = state.chi
    if scheme == "mixed_precision":
        c = chi + d
        up = c >= 0
        n = jnp.minimum(jnp.floor(jnp.abs(c) / dev.dw_min), float(dev.max_pulses))
        chi = c - jnp.where(up, 1.0, -1.0) * n * dev.dw_min

    def count(step: Array) -> Array:
        """Pulse count for |d| at this step size (calibrated / stochastic)."""
        x = jnp.abs(d) / jnp.maximum(step, 1e-9)
        n = jnp.floor(x + 0.5) if dev.deterministic_pulses else stochastic_pulses(x, kn)
        return jnp.clip(n, 0, dev.max_pulses)

    if dev.pair:
        if scheme != "mixed_precision":
            up = d >= 0
        idx = jnp.where(up, 0, 1)  # which device of the pair gets SET pulses
        if scheme == "calibrated":
            gi = jnp.where(idx == 0, g[0], g[1])
            per = jnp.where(idx == 0, state.dw_up[0], state.dw_up[1])
            hi = jnp.where(idx == 0, state.g_hi[0], state.g_hi[1])
            lo = jnp.where(idx == 0, state.g_lo[0], state.g_lo[1])
            n = count(per * _step_scale(gi, True, hi, lo, dev.nonlinearity, dev.exp_step))
        elif scheme == "stochastic":
            n = count(jnp.full_like(d, dev.dw_min))
        n_pair = jnp.stack([jnp.where(idx == 0, n, 0.0), jnp.where(idx == 1, n, 0.0)])
        n_pair = n_pair * alive
        z = jnp.zeros_like(n_pair)
        g_new = pulse_step(g, n_pair, z, state.dw_up, state.dw_down, state.g_hi, state.g_lo,
                           dev.dw_min_std, ks, dev.nonlinearity, dev.exp_step)
        # refresh: a device past refresh_at -> RESET both, rewrite the net value on one device
        # (only a pair with common mode to remove: a saturated net weight stays as it is)
        full = (jnp.any(g_new > dev.refresh_at * state.g_hi, axis=0)
                & (jnp.min(g_new, axis=0) > dev.dw_min) & jnp.all(alive, axis=0))
        net = g_new[0] - g_new[1]
        re = jnp.stack([jnp.maximum(net, 0.0), jnp.maximum(-net, 0.0)])
        g_new = jnp.where(full[None], re, g_new)
        n_dev = n_pair + 2.0 * full[None]
        refreshes = state.refreshes + jnp.sum(full)
    else:
        if scheme != "mixed_precision":
            up = d >= 0
        if scheme == "calibrated":
            n = count(jnp.where(up, state.dw_up[0], state.dw_down[0]) * _step_scale(
                g[0], up, state.g_hi[0], state.g_lo[0], dev.nonlinearity, dev.exp_step))
        elif scheme == "stochastic":
            n = count(jnp.full_like(d, dev.dw_min))
        n = n * alive[0]
        z = jnp.zeros_like(n)
        g0 = pulse_step(g[0], jnp.where(up, n, z), jnp.where(up, z, n), state.dw_up[0],
                        state.dw_down[0], state.g_hi[0], state.g_lo[0], dev.dw_min_std, ks,
                        dev.nonlinearity, dev.exp_step)
        g_new = jnp.stack([g0, g[1]])
        n_dev = jnp.stack([n, z])
        refreshes = state.refreshes
    wrote = n_dev > 0
    return state.replace(
        g=g_new, pulses=state.pulses + n_dev,
        t_last=jnp.where(wrote, t, state.t_last),
        total_pulses=state.total_pulses + jnp.sum(n_dev), refreshes=refreshes, chi=chi)


def stochastic_pulses(x: Array, key: Array) -> Array:
    """``floor(x) + [u < frac(x)]``: an unbiased integer pulse count for a fractional one."""
    fl = jnp.floor(x)
    return fl + (jax.random.uniform(key, jnp.shape(x)) < (x - fl)).astype(x.dtype)


def worn_out(state: PulseState, device: str | PulseDeviceSpec) -> Array:
    """Number of devices past their endurance (``tiki_taka``: of both A and C)."""
    end = get_pulse_device(device).endurance
    n = jnp.sum(state.pulses >= end)
    return n if state.fast is None else n + jnp.sum(state.fast.pulses >= end)


def transfer_reads(state: PulseState, device: str | PulseDeviceSpec) -> Array:
    """Weights of the fast device A read by Tiki-Taka's transfers so far (energy); 0 for the
    other update schemes.

    A transfer follows every ``transfer_every``-th update (``n_updates // transfer_every``
    transfers so far) and reads ``k = min(n_reads_per_transfer, lines)`` lines of A: input
    lines (``transfer_columns``, the first axis of ``[n_pre, n_post]``) of ``n_post`` weights
    each, or output lines (last axis) of ``n_pre`` weights. One read of a weight is one
    analog multiply-accumulate of the crossbar's forward pass (aihwkit reads them with a
    one-hot input vector, ``TransferRPUDevice::readAndUpdate``), the operation its
    ``e_synop_pj`` prices. Computed from the update counter the state already holds, so
    checkpoints of earlier runs count too.

    Args:
        state: a :class:`PulseState` of one weight array (no batch axis; ``jax.vmap`` it
            over seeds).
        device: the device model (``update="tiki_taka"`` to count anything).

    Returns:
        float32 scalar: weights read so far.

    References:
        Gokmen & Haensch, "Algorithm for training neural networks on resistive device arrays",
        Front. Neurosci. 14:103 (2020), Algorithm 1; IBM aihwkit ``TransferCompound``.
    """
    dev = get_pulse_device(device)
    if dev.update != "tiki_taka" or state.n_updates is None or dev.transfer_every <= 0:
        return jnp.zeros((), jnp.float32)
    shape = tuple(jnp.shape(state.g))[1:]
    size = math.prod(shape)
    axis = 0 if dev.transfer_columns or not shape else len(shape) - 1
    n_lines = shape[axis] if shape else 1
    k = min(dev.n_reads_per_transfer, n_lines)
    transfers = (state.n_updates // dev.transfer_every).astype(jnp.float32)
    return transfers * float(k * (size // n_lines))
