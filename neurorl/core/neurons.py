"""Neuron models: LIF, ALIF (adaptive threshold), current-based LIF, Izhikevich, and the two
non-spiking groups agents need: ``Input`` (a relay whose output is its drive: an encoder's
spikes or currents) and ``LI`` (a leaky-integrator readout, Bellec et al. 2020 Eq. 3).

This module is the only place neuron equations are written: the simulator, every learning rule
(through ``core.network.NeuronView``), every agent and the BPTT baseline use these functions.

Every model is a :class:`NeuronModel` -- a pair of pure functions over flax.struct pytrees::

    state = model.init(params, n)
    spikes, state = model.step(params, state, current)     # current [n] -> spikes [n] (float32)
    psi = model.pseudo_derivative(params, state)             # e-prop pseudo-derivative at this step

Write for one population and ``jax.vmap`` outside.

The equations are written once against an array namespace ``xp``: ``jax.numpy`` by default (the
simulator, traced and jitted), or ``numpy`` for host-loop baselines, which call the very same
functions with no jax dispatch::

    state = model.init(params, n, xp=numpy)
    spikes, state = model.step(params, state, current, xp=numpy)

Under ``numpy`` the spike is the forward pass of every surrogate, ``H(x) = 1[x > 0]``, and there
is no gradient to stop; ``pseudo_derivative`` is jax-only (it serves learning rules).

Params are flax.struct dataclasses: numeric fields are traced pytree leaves (a new value never
recompiles), choices (reset mode, integration, surrogate) are static. ``params.validate()``
checks values on the host (ConfigError naming the field) and is called by the network front end
before anything is traced.

Discrete-time LIF/ALIF (Bellec et al. 2020, Methods, Eq. 2-3; identical to snnTorch ``Leaky``)::

    alpha = exp(-dt / tau_mem)
    v_t = alpha v_{t-1} + in_t - v_th z_{t-1}                        reset="subtract"
    v_t = alpha (v_{t-1} (1 - z_{t-1}) + v_reset z_{t-1}) + in_t     reset="zero"
    in_t = I_t                    integration="direct"      (e-prop / snnTorch form)
    in_t = (1 - alpha) R I_t      integration="exponential" (exact solution of tau dv/dt = -v + R I)
    z_t = H(v_t - A_t),  A_t = v_th (LIF)  or  v_th + beta a_t,  a_{t+1} = rho a_t + z_t  (ALIF)

The reset uses the spike of the previous step (stored as ``z``), which is what makes e-prop's
eligibility traces exact for this simulator. During the ``round(t_ref/dt)`` steps after a spike the
neuron cannot spike and psi = 0; with reset="zero" the membrane is also held at ``v_reset`` (the
textbook absolute refractory period), with reset="subtract" it keeps integrating (as in Bellec).

Units: time in ms; LIF/ALIF voltages dimensionless (v_th = 1 by default) or mV if you choose;
Izhikevich in mV and ms with the paper's current units.

References:
    Bellec et al. 2020, Nat. Commun. 11:3625 (LIF/ALIF, e-prop pseudo-derivative).
    Izhikevich 2003, "Simple model of spiking neurons", IEEE Trans. Neural Netw. 14(6):1569-1572.
    Gerstner et al. 2014, "Neuronal Dynamics", ch. 1.3 (LIF under constant current).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from neurorl.core.surrogate import SURROGATES, get_surrogate
from neurorl.errors import ConfigError, closest, lookup

Array = jax.Array

RESET_MODES = ("subtract", "zero")
INTEGRATIONS = ("direct", "exponential")


def _check_choice(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(field, value, f"one of {list(allowed)}", closest(str(value), allowed))


def _check_positive(cls_name: str, obj: Any, fields: tuple[str, ...], strict: bool = True) -> None:
    for f in fields:
        v = getattr(obj, f)
        try:
            ok = float(v) > 0 if strict else float(v) >= 0
        except TypeError:  # an array of per-neuron values
            arr = np.asarray(v)
            ok = bool(np.all(arr > 0)) if strict else bool(np.all(arr >= 0))
        if not ok:
            raise ConfigError(f"{cls_name}.{f}", v, "a number > 0" if strict else "a number >= 0")


# ----------------------------------------------------------------------------------------------
# LIF / ALIF / CubaLIF
# ----------------------------------------------------------------------------------------------


@struct.dataclass
class LIFParams:
    """Parameters of the (adaptive) leaky integrate-and-fire neuron.

    Attributes:
        tau_mem: membrane time constant (ms).
        v_th: firing threshold (must be > 0; the surrogate uses (v - A) / v_th).
        v_reset: reset potential for reset="zero".
        r: membrane resistance, used by integration="exponential".
        dt: time step (ms).
        t_ref: absolute refractory period (ms), NEST's convention: the ``round(t_ref/dt)`` steps
            after a spike step cannot spike, so the shortest inter-spike interval is
            ``t_ref + dt`` (as NEST's ``iaf_psc_delta``/``iaf_psc_exp``; Brian2's
            ``refractory=t_ref + dt`` is the equivalent, its ``refractory=t`` gives exactly t).
        tau_adapt: adaptation time constant (ms), ALIF only.
        beta: threshold adaptation strength, ALIF only (beta = 0 is LIF).
        tau_syn: synaptic current time constant (ms), CubaLIF only.
        reset: "subtract" or "zero" (static).
        integration: "direct" or "exponential" (static).
        surrogate: surrogate spike function name (static): fast_sigmoid, arctan, triangle.
        surrogate_hyper: extra surrogate hyperparameters as ((name, value), ...) (static).
        detach_reset: no gradient through the reset term (static; True as snnTorch), which
            makes e-prop exact for one layer. Bellec et al. 2020's BPTT baseline keeps it
            (False): through recurrent weights over long sequences the detached gradient can
            explode (``plasticity/bptt.py``).
    """

    tau_mem: Any = 20.0
    v_th: Any = 1.0
    v_reset: Any = 0.0
    r: Any = 1.0
    dt: Any = 1.0
    t_ref: Any = 0.0
    tau_adapt: Any = 200.0
    beta: Any = 0.0
    tau_syn: Any = 5.0
    reset: str = struct.field(pytree_node=False, default="subtract")
    integration: str = struct.field(pytree_node=False, default="direct")
    surrogate: str = struct.field(pytree_node=False, default="triangle")
    surrogate_hyper: tuple = struct.field(pytree_node=False, default=())
    detach_reset: bool = struct.field(pytree_node=False, default=True)

    def validate(self) -> LIFParams:
        """Host-side checks; returns self so it can be chained."""
        name = type(self).__name__
        _check_positive(name, self, ("tau_mem", "v_th", "dt", "tau_adapt", "tau_syn"))
        _check_positive(name, self, ("t_ref", "beta", "r"), strict=False)
        _check_choice(f"{name}.reset", self.reset, RESET_MODES)
        _check_choice(f"{name}.integration", self.integration, INTEGRATIONS)
        lookup(SURROGATES, self.surrogate, "surrogate", field=f"{name}.surrogate")
        return self


@struct.dataclass
class LIFState:
    """LIF state. ``v``: membrane, ``z``: spikes of this step, ``refractory``: refractory steps
    left, ``is_refractory``: 1 where this step was refractory. ``a`` (ALIF adaptation, zeros for
    LIF), ``thr`` (threshold used this step) and ``i_syn`` (CubaLIF synaptic current) complete
    it."""

    v: Array
    z: Array
    refractory: Array
    is_refractory: Array
    a: Array
    thr: Array
    i_syn: Array


def _surrogate_of(params: LIFParams):
    return get_surrogate(params.surrogate, **dict(params.surrogate_hyper))


def _heaviside(x: Any) -> Any:
    """``H(x) = 1[x > 0]`` in numpy (x is a float array): the forward pass of every surrogate."""
    return (x > 0).astype(x.dtype)


def _is_zero(x: Any) -> bool:
    """``x == 0`` for a number, all zeros for an array (host side)."""
    return x == 0 if isinstance(x, (int, float)) else not np.any(x)


def _identity(x: Any) -> Any:
    return x


def _spike_ops(params: Any, xp: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """``(spike, stop_gradient)`` for namespace ``xp``: the surrogate's custom-JVP spike and
    ``lax.stop_gradient`` under jax.numpy; the Heaviside step and the identity under numpy."""
    if xp is np:
        return _heaviside, _identity
    sur = get_surrogate(params.surrogate, **dict(params.surrogate_hyper))
    return sur.spike, jax.lax.stop_gradient


def _lif_init(params: LIFParams, n: int, xp: Any = jnp) -> LIFState:
    zeros = xp.zeros((n,), xp.float32)
    thr = xp.broadcast_to(xp.asarray(params.v_th, xp.float32), (n,))
    return LIFState(
        v=zeros, z=zeros, refractory=zeros, is_refractory=zeros, a=zeros, thr=thr, i_syn=zeros
    )


def _lif_core(params: LIFParams, state: LIFState, drive: Array, adaptive: bool, xp: Any = jnp
              ) -> LIFState:
    spike, stop_gradient = _spike_ops(params, xp)
    dt = xp.asarray(params.dt, xp.float32)
    alpha = xp.exp(-dt / params.tau_mem)
    if params.integration == "exponential":
        inp = (1.0 - alpha) * params.r * drive
    else:
        inp = drive
    z_prev = stop_gradient(state.z) if params.detach_reset else state.z
    if params.reset == "subtract":
        v = alpha * state.v + inp - params.v_th * z_prev
    else:
        v = alpha * (state.v * (1.0 - z_prev) + params.v_reset * z_prev) + inp
    # numpy (host loops): with no refractory period and none pending, the refractory bookkeeping
    # is the identity (n_ref = 0, the counter stays 0), so it is skipped; jax always computes it
    # (t_ref is traced)
    no_refractory = xp is np and _is_zero(params.t_ref) and not state.refractory.any()
    if not no_refractory:
        refr = state.refractory > 0
        if params.reset == "zero":
            v = xp.where(refr, xp.asarray(params.v_reset, v.dtype), v)
    if adaptive:
        thr = params.v_th + params.beta * state.a
    elif xp is np:
        thr = np.full(v.shape, params.v_th, v.dtype)
    else:
        thr = xp.broadcast_to(xp.asarray(params.v_th, v.dtype), v.shape)
    z = spike((v - thr) / params.v_th)
    if no_refractory:
        refractory = is_refractory = state.refractory
    else:
        is_refractory = refr.astype(v.dtype)
        z = z * (1.0 - is_refractory)
        n_ref = xp.round(params.t_ref / dt)
        refractory = xp.where(z > 0, n_ref, xp.maximum(state.refractory - 1.0, 0.0))
    a = xp.exp(-dt / params.tau_adapt) * state.a + z if adaptive else state.a
    return LIFState(
        v=v,
        z=z,
        refractory=refractory,
        is_refractory=is_refractory,
        a=a,
        thr=thr,
        i_syn=state.i_syn,
    )


def _lif_step(params: LIFParams, state: LIFState, current: Array, xp: Any = jnp
              ) -> tuple[Array, LIFState]:
    """LIF: leaky integrate-and-fire, delayed subtract/zero reset, refractory period."""
    new = _lif_core(params, state, current, adaptive=False, xp=xp)
    return new.z, new


def _alif_step(params: LIFParams, state: LIFState, current: Array, xp: Any = jnp
               ) -> tuple[Array, LIFState]:
    """ALIF: LIF with adaptive threshold A = v_th + beta a, a <- rho a + z (Bellec et al. 2020)."""
    new = _lif_core(params, state, current, adaptive=True, xp=xp)
    return new.z, new


def _cuba_step(params: LIFParams, state: LIFState, current: Array, xp: Any = jnp
               ) -> tuple[Array, LIFState]:
    """CubaLIF: LIF driven by an exponential synaptic current, i_syn <- exp(-dt/tau_syn) i_syn
    + I."""
    i_syn = xp.exp(-xp.asarray(params.dt, xp.float32) / params.tau_syn) * state.i_syn + current
    new = _lif_core(params, state.replace(i_syn=i_syn), i_syn, adaptive=False, xp=xp)
    return new.z, new


def _lif_pseudo_derivative(params: LIFParams, state: LIFState) -> Array:
    """psi_t = surrogate'((v_t - A_t) / v_th) / v_th, 0 while refractory (Bellec 2020, Eq. 6)."""
    sur = _surrogate_of(params)
    psi = sur.derivative((state.v - state.thr) / params.v_th) / params.v_th
    return psi * (1.0 - state.is_refractory)


# ----------------------------------------------------------------------------------------------
# Izhikevich 2003
# ----------------------------------------------------------------------------------------------

# Izhikevich 2003, Fig. 2 (a, b, c, d of the seven cortical/thalamic regimes). Integration scheme
# (u updated from the new v, v in two half steps, reset at v >= 30 mV) as in the paper's MATLAB
# code; the same equations and reset are documented by NEST's `izhikevich` model
# (nest-simulator.readthedocs.io/en/v3.4/models/izhikevich.html).
IZHIKEVICH_REGIMES: dict[str, tuple[float, float, float, float]] = {
    "RS": (0.02, 0.2, -65.0, 8.0),  # regular spiking
    "IB": (0.02, 0.2, -55.0, 4.0),  # intrinsically bursting
    "CH": (0.02, 0.2, -50.0, 2.0),  # chattering
    "FS": (0.1, 0.2, -65.0, 2.0),  # fast spiking
    "LTS": (0.02, 0.25, -65.0, 2.0),  # low-threshold spiking
    "TC": (0.02, 0.25, -65.0, 0.05),  # thalamo-cortical
    "RZ": (0.1, 0.26, -65.0, 2.0),  # resonator
}


@struct.dataclass
class IzhikevichParams:
    """Izhikevich (2003) neuron: v' = 0.04 v^2 + 5 v + 140 - u + I, u' = a (b v - u);
    if v >= v_peak: v <- c, u <- u + d. mV and ms.

    Attributes:
        a, b, c, d: the model's four parameters (see :data:`IZHIKEVICH_REGIMES`).
        v_peak: spike cut-off (mV), 30 in the paper.
        v_init: initial membrane potential (mV); u starts at b * v_init.
        dt: time step (ms); v is integrated in two half steps of dt/2 as in the published code.
        surrogate: surrogate spike function name (static).
    """

    a: Any = 0.02
    b: Any = 0.2
    c: Any = -65.0
    d: Any = 8.0
    v_peak: Any = 30.0
    v_init: Any = -65.0
    dt: Any = 1.0
    surrogate: str = struct.field(pytree_node=False, default="fast_sigmoid")
    surrogate_hyper: tuple = struct.field(pytree_node=False, default=())

    def validate(self) -> IzhikevichParams:
        _check_positive("IzhikevichParams", self, ("dt", "v_peak"))
        lookup(SURROGATES, self.surrogate, "surrogate", field="IzhikevichParams.surrogate")
        return self


@struct.dataclass
class IzhikevichState:
    """``v`` membrane (mV), ``u`` recovery variable, ``z`` spikes of this step."""

    v: Array
    u: Array
    z: Array


def izhikevich_regime(name: str, **overrides: Any) -> IzhikevichParams:
    """Parameters of a named Izhikevich (2003) regime: RS, IB, CH, FS, LTS, TC, RZ."""
    a, b, c, d = lookup(IZHIKEVICH_REGIMES, name, "Izhikevich regime", field="regime")
    return IzhikevichParams(a=a, b=b, c=c, d=d, **overrides)


def _izh_init(params: IzhikevichParams, n: int, xp: Any = jnp) -> IzhikevichState:
    # default float dtype (jax: float32, or float64 under jax.experimental.enable_x64 for
    # reference runs; numpy: float64)
    dtype = xp.result_type(float)
    v = xp.full((n,), params.v_init, dtype)
    return IzhikevichState(v=v, u=params.b * v, z=xp.zeros((n,), dtype))


def _izh_step(
    params: IzhikevichParams, state: IzhikevichState, current: Array, xp: Any = jnp
) -> tuple[Array, IzhikevichState]:
    """Izhikevich 2003: two half steps for v, one step for u, reset at v >= v_peak."""
    spike, stop_gradient = _spike_ops(params, xp)
    h = 0.5 * params.dt
    v, u = state.v, state.u
    v = v + h * (0.04 * v**2 + 5.0 * v + 140.0 - u + current)
    v = v + h * (0.04 * v**2 + 5.0 * v + 140.0 - u + current)
    u = u + params.dt * params.a * (params.b * v - u)
    # H(x > 0) where the paper tests v >= 30: they differ only when v lands exactly on v_peak.
    z = spike((v - params.v_peak) / params.v_peak)
    # the published code resets at the start of the next step; doing it here is the same
    # trajectory, and keeps v bounded in the state.
    fired = stop_gradient(z) > 0
    v = xp.where(fired, params.c, v)
    u = xp.where(fired, u + params.d, u)
    return z, IzhikevichState(v=v, u=u, z=z)


def _izh_pseudo_derivative(params: IzhikevichParams, state: IzhikevichState) -> Array:
    sur = get_surrogate(params.surrogate, **dict(params.surrogate_hyper))
    return sur.derivative((state.v - params.v_peak) / params.v_peak) / params.v_peak


# ----------------------------------------------------------------------------------------------
# Input (relay) and LI (leaky integrator readout)
# ----------------------------------------------------------------------------------------------


@struct.dataclass
class InputParams:
    """Input group: its output at every step is its external drive (spikes or currents).

    Attributes:
        dt: time step (ms); only read for consistency with the other groups.
    """

    dt: Any = 1.0

    def validate(self) -> InputParams:
        _check_positive("InputParams", self, ("dt",))
        return self


@struct.dataclass
class RelayState:
    """State of an Input group: ``v`` and ``z`` both hold this step's drive."""

    v: Array
    z: Array


def _input_init(params: InputParams, n: int, xp: Any = jnp) -> RelayState:
    zeros = xp.zeros((n,), xp.float32)
    return RelayState(v=zeros, z=zeros)


def _input_step(params: InputParams, state: RelayState, current: Array, xp: Any = jnp
                ) -> tuple[Array, RelayState]:
    """Relay: the drive passes through unchanged (an encoder's spikes or currents)."""
    x = xp.asarray(current, xp.float32) * xp.ones_like(state.v)
    return x, RelayState(v=x, z=x)


def _input_pseudo_derivative(params: InputParams, state: RelayState) -> Array:
    return jnp.zeros_like(state.v)


@struct.dataclass
class LIParams:
    """Leaky integrator (non-spiking readout): ``v_t = kappa v_{t-1} + I_t``.

    ``kappa = exp(-dt / tau_mem)``: the readout of Bellec et al. 2020 (Methods, Eq. 3,
    ``y_t = kappa y_{t-1} + sum_j W_out z_j``; bias added by the decoder) and NIR's ``LI`` node
    with ``r = 1`` in the direct (e-prop / snnTorch) integration form.

    Attributes:
        tau_mem: readout time constant (ms), ``tau_out`` in e-prop.
        dt: time step (ms).
    """

    tau_mem: Any = 20.0
    dt: Any = 1.0

    def validate(self) -> LIParams:
        _check_positive("LIParams", self, ("tau_mem", "dt"))
        return self


def _li_step(params: LIParams, state: RelayState, current: Array, xp: Any = jnp
             ) -> tuple[Array, RelayState]:
    """Leaky integration, no spikes (``z`` stays 0)."""
    kappa = xp.exp(-xp.asarray(params.dt, xp.float32) / params.tau_mem)
    v = kappa * state.v + current
    return xp.zeros_like(v), RelayState(v=v, z=xp.zeros_like(v))


def _li_pseudo_derivative(params: LIParams, state: RelayState) -> Array:
    """dv_t / dI_t = 1: a readout's 'eligibility' is its kappa-filtered input (Bellec Eq. 28)."""
    return jnp.ones_like(state.v)


def decay(params: Any, xp: Any = jnp) -> Array:
    """Membrane decay per step ``exp(-dt / tau_mem)`` of a LIF/ALIF/CubaLIF/LI group."""
    return xp.exp(-xp.asarray(params.dt, xp.float32) / params.tau_mem)


# ----------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------


class NeuronModel(NamedTuple):
    """A neuron model: ``init(params, n, xp=jnp)``, ``step(params, state, current, xp=jnp)``,
    ``pseudo_derivative(params, state)`` (``xp``: the array namespace, ``jax.numpy`` or
    ``numpy``; see the module docstring)."""

    name: str
    params_cls: type
    init: Callable[..., Any]
    step: Callable[..., tuple[Array, Any]]
    pseudo_derivative: Callable[[Any, Any], Array]


LIF = NeuronModel("LIF", LIFParams, _lif_init, _lif_step, _lif_pseudo_derivative)
ALIF = NeuronModel("ALIF", LIFParams, _lif_init, _alif_step, _lif_pseudo_derivative)
CubaLIF = NeuronModel("CubaLIF", LIFParams, _lif_init, _cuba_step, _lif_pseudo_derivative)
Izhikevich = NeuronModel(
    "Izhikevich", IzhikevichParams, _izh_init, _izh_step, _izh_pseudo_derivative
)
Input = NeuronModel("Input", InputParams, _input_init, _input_step, _input_pseudo_derivative)
LI = NeuronModel("LI", LIParams, _input_init, _li_step, _li_pseudo_derivative)

NEURONS: dict[str, NeuronModel] = {
    "LIF": LIF,
    "ALIF": ALIF,
    "CubaLIF": CubaLIF,
    "Izhikevich": Izhikevich,
    "Input": Input,
    "LI": LI,
}

# models whose output is not a spike train (no surrogate, no spike counts for energy)
NON_SPIKING = ("Input", "LI")


def get_neuron(name: str, field: str = "model") -> NeuronModel:
    """Look up a neuron model by name (ConfigError with the closest valid name otherwise).

    Args:
        name: the model name (case-insensitive), a key of :data:`NEURONS`.
        field: the argument or config path named in the error (``NeuronGroup.model``;
            the YAML description rewrites it to ``agent.network.groups.<i>.model``).
    """
    return lookup(NEURONS, name, "neuron model", field=field)


# fields of the shared LIFParams a model does not read, with the model that does: a dict that
# sets one of them to a non-default value is refused (it would be silently ignored). tau_adapt
# is not among them: it acts only through beta (beta 0 makes it moot in ALIF too), and code that
# picks "LIF" for beta 0 and "ALIF" otherwise passes one parameter dict to both
_UNREAD: dict[str, dict[str, str]] = {
    "LIF": {"beta": "ALIF", "tau_syn": "CubaLIF"},
    "ALIF": {"tau_syn": "CubaLIF"},
    "CubaLIF": {"beta": "ALIF"},
}


def make_params(model: str | NeuronModel, params: Any = None) -> Any:
    """Build validated params for ``model`` from None, a dict or a params dataclass.

    A dict may name an Izhikevich ``regime`` ("RS", "FS", ...). Unknown keys raise a ConfigError
    naming the closest field; so does a field of the shared LIF parameters that this model does
    not read, set to a non-default value (e.g. ``beta`` for ``"LIF"``: adaptation is ALIF's).
    A bad value given in a dict is named ``<model>.params.<key>`` like an unknown key (the
    dataclass's own checks name ``<ParamsClass>.<key>``), so the YAML description reports it
    at ``agent.network.groups.<i>.params.<key>``.
    """
    m = get_neuron(model, field="make_params.model") if isinstance(model, str) else model
    if not isinstance(m, NeuronModel):
        raise ConfigError("make_params.model", model,
                          f"a neuron model name, one of {sorted(NEURONS)}, or a NeuronModel")
    if params is None:
        p = m.params_cls()
    elif isinstance(params, m.params_cls):
        p = params
    elif isinstance(params, dict):
        kw = dict(params)
        regime = kw.pop("regime", None)
        fields = [f for f in m.params_cls.__dataclass_fields__]
        for k in kw:
            if k not in fields:
                raise ConfigError(
                    f"{m.name}.params.{k}", kw[k], f"one of {fields}", closest(k, fields)
                )
        for k, owner in _UNREAD.get(m.name, {}).items():
            if k in kw and np.any(np.asarray(kw[k]) != getattr(m.params_cls, k)):
                raise ConfigError(
                    f"{m.name}.params.{k}", kw[k],
                    f"its default ({getattr(m.params_cls, k)}): {m.name} does not read {k} "
                    f"(it is {owner}'s), so the value would be ignored; use model '{owner}'",
                )
        if regime is not None:
            if m.name != "Izhikevich":
                raise ConfigError(f"{m.name}.params.regime", regime, "only for Izhikevich neurons")
            p = izhikevich_regime(regime, **kw)
        else:
            p = m.params_cls(**kw)
    else:
        raise ConfigError(f"{m.name}.params", params, f"None, a dict or a {m.params_cls.__name__}")
    if not isinstance(params, dict):
        return p.validate()
    try:
        return p.validate()
    except ConfigError as e:
        own = f"{type(p).__name__}."
        if type(e) is not ConfigError or not e.field.startswith(own):
            raise
        raise ConfigError(f"{m.name}.params.{e.field[len(own):]}", e.value, e.allowed,
                          e.suggestions) from None


def run_neurons(model: NeuronModel, params: Any, currents: Array, state: Any = None):
    """Simulate one population under input currents ``[T, n]``; returns ``(spikes, v)`` [T, n]."""
    if state is None:
        state = model.init(params, currents.shape[-1])

    def body(s, i):
        z, s = model.step(params, s, i)
        return s, (z, s.v)

    _, (z, v) = jax.lax.scan(body, state, currents)
    return z, v
