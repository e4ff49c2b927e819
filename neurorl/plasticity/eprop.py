"""e-prop for recurrent networks of LIF and ALIF neurons (Bellec et al. 2020, Nat. Commun. 11:3625).

Dynamics (Methods, Eqs. 22-25; time-step dt in ms, alpha = exp(-dt/tau_m), rho = exp(-dt/tau_a)),
written with the input that enters the membrane at step t:

    v_t = alpha v_{t-1} + x_t W_in + z_{t-1} W_rec - v_th z_{t-1}       (reset by subtraction)
    a_t = rho a_{t-1} + z_{t-1};   A_t = v_th + beta a_t                (beta = 0: LIF)
    z_t = H((v_t - A_t) / v_th),   forced to 0 for n_ref steps after a spike
    psi_t = (gamma / v_th) max(0, 1 - |v_t - A_t| / v_th)               (0 while refractory)
    y_t = kappa y_{t-1} + z_t W_out + b_out,   kappa = exp(-dt / tau_out)

Eligibility traces (Eqs. 13-14 and 25-26, presynaptic trace p_i = eps_v):

    p_i^t = alpha p_i^{t-1} + s_i^t            (s = x_t for W_in, z_{t-1} for W_rec)
    eps_a,ji^t = psi_j^{t-1} p_i^{t-1} + (rho - psi_j^{t-1} beta_j) eps_a,ji^{t-1}
    e_ji^t = psi_j^t (p_i^t - beta_j eps_a,ji^t)
    ebar_ji^t = kappa ebar_ji^{t-1} + e_ji^t                            (readout-matched filter)

and the gradient dE/dW_ji = sum_t L_j^t ebar_ji^t with L_j^t = sum_k B_jk err_k^t (Eq. 4),
err = y - y* (MSE) or softmax(y) - onehot (cross-entropy); dE/dW_out = sum_t F_kappa(z_t) err_t
and dE/db_out = sum_t F_kappa(1)_t err_t.
With this (NEST-form) kappa filter and the leaky readout above, e-prop is *exactly* the BPTT
gradient for a non-recurrent layer with symmetric feedback B = W_out (tested). Weights are
pre-major: W_in [n_in, n_rec], W_rec [n_rec, n_rec], W_out and B [n_rec, n_out].

Feedback (Methods, "Learning signals"): ``"symmetric"`` (B = W_out), ``"random"`` (fixed B,
feedback alignment, Lillicrap et al. 2016) or ``"adaptive"`` (B gets W_out's update,
Kolen-Pollack; Akrout et al. 2019).

Reward-based e-prop (Methods, "Reward-based e-prop", Eq. 5): with a policy readout
pi = softmax(y_pi)
and a value readout V, L_j^t = -c_V B^V_j + sum_k B^pi_jk (pi_k^t - 1[a^t = k]); the per-synapse
tag T_ji <- gamma T_ji + L_j ebar_ji and dE/dW_ji = -sum_t delta^t T_ji^t (delta the TD error).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax import Array

from neurorl.core.surrogate import get_surrogate
from neurorl.errors import ConfigError, ShapeError
from neurorl.plasticity.stdp import check_choice
from neurorl.plasticity.traces import check_tau

FEEDBACKS = ("symmetric", "random", "adaptive")
LOSSES = ("mse", "cross_entropy")


@struct.dataclass
class EpropConfig:
    """Neuron and readout constants (traced leaves, except ``n_ref`` and choices).

    Attributes:
        tau_mem: membrane time constant (ms).
        tau_adapt: threshold adaptation time constant (ms).
        beta: adaptation strength, scalar or [n_rec] (0 = LIF, > 0 = ALIF).
        v_th: baseline threshold.
        tau_out: readout time constant (ms), also the kappa filter of the traces.
        gamma_pd: pseudo-derivative dampening factor (0.3 in the paper).
        dt: time step (ms).
        n_ref: refractory period in steps (static).
        feedback: ``"symmetric"``, ``"random"`` or ``"adaptive"`` (static).
    """

    tau_mem: Any = 20.0
    tau_adapt: Any = 200.0
    beta: Any = 0.0
    v_th: Any = 1.0
    tau_out: Any = 20.0
    gamma_pd: Any = 0.3
    dt: Any = 1.0
    n_ref: int = struct.field(pytree_node=False, default=0)
    feedback: str = struct.field(pytree_node=False, default="symmetric")

    def validate(self) -> EpropConfig:
        """Host-side checks; returns self."""
        for f in ("tau_mem", "tau_adapt", "tau_out", "dt", "v_th", "gamma_pd"):
            check_tau(f"eprop.{f}", getattr(self, f))
        check_choice("eprop.feedback", self.feedback, FEEDBACKS)
        if int(self.n_ref) < 0:
            raise ConfigError("eprop.n_ref", self.n_ref, "an integer >= 0 (steps)")
        return self


@struct.dataclass
class EpropParams:
    """Trainable weights (pre-major) and the feedback matrix B [n_rec, n_out]."""

    w_in: Array
    w_rec: Array
    w_out: Array
    b_out: Array
    B: Array


@struct.dataclass
class EpropState:
    """Neurons, eligibility vectors, filtered traces and online gradient accumulators."""

    v: Array
    a: Array
    z: Array
    ref: Array
    psi: Array
    y: Array
    p_in: Array
    p_rec: Array
    eps_in: Array
    eps_rec: Array
    ebar_in: Array
    ebar_rec: Array
    zbar: Array
    onebar: Array
    grads: EpropParams


def init_params(key: Array, n_in: int, n_rec: int, n_out: int, recurrent: bool = True,
                w_scale: float = 1.0) -> EpropParams:
    """Random weights ~ N(0, w_scale^2 / n_pre) and a random B ~ N(0, 1/n_rec) (adaptive init).

    Self-connections of W_rec are zero (Methods: no autapses); ``recurrent=False`` zeroes W_rec.
    """
    k1, k2, k3, k4 = jax.random.split(key, 4)
    w_in = jax.random.normal(k1, (n_in, n_rec)) * w_scale / jnp.sqrt(n_in)
    w_rec = jax.random.normal(k2, (n_rec, n_rec)) * w_scale / jnp.sqrt(n_rec)
    w_rec = w_rec * (1.0 - jnp.eye(n_rec)) * float(recurrent)
    w_out = jax.random.normal(k3, (n_rec, n_out)) / jnp.sqrt(n_rec)
    B = jax.random.normal(k4, (n_rec, n_out)) / jnp.sqrt(n_rec)
    return EpropParams(w_in.astype(jnp.float32), w_rec.astype(jnp.float32),
                       w_out.astype(jnp.float32), jnp.zeros((n_out,), jnp.float32),
                       B.astype(jnp.float32))


def zero_grads(params: EpropParams) -> EpropParams:
    """A zero pytree shaped like ``params``."""
    return jax.tree_util.tree_map(jnp.zeros_like, params)


def init_state(params: EpropParams) -> EpropState:
    """All-zero network state for one network (vmap outside for a batch)."""
    n_in, n_rec = params.w_in.shape
    n_out = params.w_out.shape[1]
    z = jnp.zeros((n_rec,), jnp.float32)
    return EpropState(
        v=z, a=z, z=z, ref=z, psi=z, y=jnp.zeros((n_out,), jnp.float32),
        p_in=jnp.zeros((n_in,), jnp.float32), p_rec=z,
        eps_in=jnp.zeros((n_in, n_rec), jnp.float32), eps_rec=jnp.zeros((n_rec, n_rec)),
        ebar_in=jnp.zeros((n_in, n_rec), jnp.float32), ebar_rec=jnp.zeros((n_rec, n_rec)),
        zbar=z, onebar=jnp.zeros((), jnp.float32), grads=zero_grads(params))


def _decays(cfg: EpropConfig) -> tuple[Array, Array, Array]:
    dt = jnp.asarray(cfg.dt, jnp.float32)
    return jnp.exp(-dt / cfg.tau_mem), jnp.exp(-dt / cfg.tau_adapt), jnp.exp(-dt / cfg.tau_out)


def neuron_step(params: EpropParams, cfg: EpropConfig, v: Array, a: Array, z_prev: Array,
                ref: Array, x: Array, spike_fn=None, z_rec: Array | None = None,
                z_reset: Array | None = None) -> tuple[Array, Array, Array, Array, Array]:
    """LIF/ALIF membrane, threshold and spike of one step (shared with :mod:`.bptt`).

    Args:
        z_rec: spikes fed through W_rec (default ``z_prev``; BPTT may keep it differentiable).
        z_reset: spikes used in the reset term (default ``z_prev``; e-prop/BPTT stop its gradient).

    Returns:
        (v, a, z, ref, psi) of step t.
    """
    alpha, rho, _ = _decays(cfg)
    z_rec = z_prev if z_rec is None else z_rec
    z_reset = z_prev if z_reset is None else z_reset
    v = alpha * v + x @ params.w_in + z_rec @ params.w_rec - cfg.v_th * z_reset
    a = rho * a + z_prev
    thr = cfg.v_th + cfg.beta * a
    refr = (ref > 0).astype(jnp.float32)
    xn = (v - thr) / cfg.v_th
    sur = get_surrogate("triangle", gamma=1.0)
    spike = sur.spike if spike_fn is None else spike_fn
    z = spike(xn) * (1.0 - refr)
    psi = cfg.gamma_pd * jnp.maximum(0.0, 1.0 - jnp.abs(xn)) / cfg.v_th * (1.0 - refr)
    ref = jnp.where(z > 0, float(cfg.n_ref), jnp.maximum(ref - 1.0, 0.0))
    return v, a, z, ref, psi


def step(params: EpropParams, cfg: EpropConfig, state: EpropState, x: Array
         ) -> tuple[Array, EpropState]:
    """Advance the network and its eligibility traces by one step.

    Args:
        params: weights.
        cfg: neuron constants.
        state: previous state.
        x: [n_in] input of this step (spikes or currents).

    Returns:
        (y [n_out] readout, new state). Gradients are not touched; see :func:`accumulate`.
    """
    alpha, rho, kappa = _decays(cfg)
    beta = jnp.broadcast_to(jnp.asarray(cfg.beta, jnp.float32), state.v.shape)
    x = jnp.asarray(x, jnp.float32)
    v, a, z, ref, psi = neuron_step(params, cfg, state.v, state.a, state.z, state.ref, x)
    # eps_a^t uses psi^{t-1}, p^{t-1} (the step before): Eq. 25 shifted to "input at t".
    gain = rho - state.psi * beta
    eps_in = state.psi[None, :] * state.p_in[:, None] + gain[None, :] * state.eps_in
    eps_rec = state.psi[None, :] * state.p_rec[:, None] + gain[None, :] * state.eps_rec
    p_in = alpha * state.p_in + x
    p_rec = alpha * state.p_rec + state.z
    e_in = psi[None, :] * (p_in[:, None] - beta[None, :] * eps_in)
    e_rec = psi[None, :] * (p_rec[:, None] - beta[None, :] * eps_rec)
    e_rec = e_rec * (1.0 - jnp.eye(e_rec.shape[0]))  # no autapses
    y = kappa * state.y + z @ params.w_out + params.b_out
    new = state.replace(
        v=v, a=a, z=z, ref=ref, psi=psi, y=y, p_in=p_in, p_rec=p_rec, eps_in=eps_in,
        eps_rec=eps_rec, ebar_in=kappa * state.ebar_in + e_in,
        ebar_rec=kappa * state.ebar_rec + e_rec, zbar=kappa * state.zbar + z,
        onebar=kappa * state.onebar + 1.0)
    return y, new


def output_error(y: Array, target: Array, loss: str = "mse") -> Array:
    """err = dE/dy: ``y - y*`` (MSE, E = 1/2 sum (y - y*)^2) or ``softmax(y) - y*`` (CE)."""
    if loss == "cross_entropy":
        return jax.nn.softmax(y) - target
    return y - target


def feedback_matrix(params: EpropParams, cfg: EpropConfig) -> Array:
    """B [n_rec, n_out]: W_out for symmetric feedback, the stored B otherwise."""
    return params.w_out if cfg.feedback == "symmetric" else params.B


def accumulate(params: EpropParams, cfg: EpropConfig, state: EpropState, err: Array,
               signal: Array | None = None) -> EpropState:
    """Add this step's e-prop gradient: dW += ebar * L (L = B err unless ``signal`` is given)."""
    L = feedback_matrix(params, cfg) @ err if signal is None else signal
    g = state.grads
    g_out = g.w_out + state.zbar[:, None] * err[None, :]
    g = g.replace(w_in=g.w_in + state.ebar_in * L[None, :],
                  w_rec=g.w_rec + state.ebar_rec * L[None, :],
                  w_out=g_out, b_out=g.b_out + state.onebar * err,
                  B=g_out if cfg.feedback == "adaptive" else g.B)
    return state.replace(grads=g)


def take_grads(state: EpropState) -> tuple[EpropParams, EpropState]:
    """Return the accumulated gradients (optax descent sign) and clear the accumulator."""
    return state.grads, state.replace(grads=zero_grads(state.grads))


def supervised_step(params: EpropParams, cfg: EpropConfig, state: EpropState, x: Array,
                    target: Array, loss: str = "mse") -> tuple[Array, EpropState]:
    """One online step: network, error, gradient accumulation. Returns (y, state)."""
    y, state = step(params, cfg, state, x)
    return y, accumulate(params, cfg, state, output_error(y, target, loss))


def run_supervised(params: EpropParams, cfg: EpropConfig, xs: Array, targets: Array,
                   loss: str = "mse") -> tuple[EpropParams, Array]:
    """e-prop gradients of a whole sequence xs [T, n_in], targets [T, n_out] from a zero state.

    Returns:
        (grads shaped like params, readouts ys [T, n_out]).
    """
    if xs.ndim != 2 or xs.shape[1] != params.w_in.shape[0]:
        raise ShapeError("eprop xs", ("T", params.w_in.shape[0]), tuple(xs.shape))
    check_choice("eprop.loss", loss, LOSSES)

    def body(s, inp):
        y, s = supervised_step(params, cfg, s, inp[0], inp[1], loss)
        return s, y

    state, ys = jax.lax.scan(body, init_state(params), (xs, targets))
    return state.grads, ys


# ---------------------------------------------------------------- reward-based (actor-critic)
def actor_critic_signal(B_pi: Array, B_v: Array, y_pi: Array, action: Array,
                        c_v: float = 1.0) -> Array:
    """Learning signal of reward-based e-prop (Bellec 2020, Methods Eq. 5 context).

    L_j = -c_V B^V_j + sum_k B^pi_jk (pi_k - 1[a = k]), pi = softmax(y_pi).

    Args:
        B_pi: [n_rec, n_actions] policy feedback; B_v: [n_rec] value feedback.
        y_pi: [n_actions] policy readout; action: [] int chosen action; c_v: value-loss weight.
    """
    onehot = jax.nn.one_hot(action, y_pi.shape[-1])
    return -c_v * B_v + B_pi @ (jax.nn.softmax(y_pi) - onehot)


def reward_tag_update(tag: Array, ebar: Array, L: Array, gamma: float) -> Array:
    """Per-synapse tag T <- gamma T + L_j ebar_ji; the weight gradient is -delta^t T^t."""
    return gamma * tag + ebar * L[None, :]


# ---------------------------------------------------------------- PlasticityRule form
@struct.dataclass
class EpropRuleState:
    """State of the connection-level e-prop rule (for :class:`neurorl.core.network`)."""

    p: Array
    eps_a: Array
    ebar: Array
    psi: Array


def eprop_rule(tau_mem: float = 20.0, tau_adapt: float = 200.0, beta: float = 0.0,
          v_th: float = 1.0, tau_out: float = 20.0, gamma_pd: float = 0.3, dt: float = 1.0):
    """e-prop eligibility on one connection as an optax-shaped :class:`PlasticityRule`.

    ``accumulate(state, pre, post, neuron_state)`` reads the post neurons' membrane ``v``,
    threshold ``thr`` and ``is_refractory`` (``neurorl.core.neurons`` LIF/ALIF state) to form psi
    and updates p, eps_a and ebar as above. ``update(state, L, w)`` returns ``L_j ebar_ji``
    (descent sign): the modulator is the learning signal dE/dz_j, a scalar (broadcast) or [n_post].
    """
    from neurorl.plasticity import PlasticityRule

    for f, val in (("tau_mem", tau_mem), ("tau_adapt", tau_adapt), ("tau_out", tau_out),
                   ("dt", dt), ("v_th", v_th), ("gamma_pd", gamma_pd)):
        check_tau(f"eprop.{f}", val)
    alpha = float(jnp.exp(-dt / tau_mem))
    rho = float(jnp.exp(-dt / tau_adapt))
    kappa = float(jnp.exp(-dt / tau_out))

    def init(weights: Array) -> EpropRuleState:
        n_pre, n_post = jnp.shape(weights)
        return EpropRuleState(jnp.zeros((n_pre,), jnp.float32),
                              jnp.zeros((n_pre, n_post), jnp.float32),
                              jnp.zeros((n_pre, n_post), jnp.float32),
                              jnp.zeros((n_post,), jnp.float32))

    def accumulate(state: EpropRuleState, pre: Array, post: Array, neuron_state: Any
                   ) -> EpropRuleState:
        xn = (neuron_state.v - neuron_state.thr) / v_th
        refr = getattr(neuron_state, "is_refractory", jnp.zeros_like(xn))
        psi = gamma_pd * jnp.maximum(0.0, 1.0 - jnp.abs(xn)) / v_th * (1.0 - refr)
        gain = (rho - state.psi * beta)[None, :]
        eps_a = state.psi[None, :] * state.p[:, None] + gain * state.eps_a
        p = alpha * state.p + pre.astype(jnp.float32)
        e = psi[None, :] * (p[:, None] - beta * eps_a)
        return EpropRuleState(p, eps_a, kappa * state.ebar + e, psi)

    def update(state: EpropRuleState, modulator: Array, weights: Array
               ) -> tuple[Array, EpropRuleState]:
        L = jnp.broadcast_to(jnp.asarray(modulator, jnp.float32), state.psi.shape)
        return state.ebar * L[None, :], state

    return PlasticityRule(init, accumulate, update)
