"""e-prop: eligibility propagation for LIF / ALIF neurons and leaky readouts, as a learning rule.

Bellec et al. 2020, Nat. Commun. 11:3625 (Methods, Eqs. 4-6, 13-14, 22-28). The rule lives on
one N-HAL connection (``LearningRule(conn, "eprop", {"tau_out": ...})``) and reads everything
about its postsynaptic neurons from the simulator (``core.network.NeuronView``): their
pseudo-derivative ``psi`` (``core.neurons``, the surrogate's derivative / v_th, 0 while
refractory), membrane decay ``alpha = exp(-dt/tau_mem)`` and, for ALIF, ``rho = exp(-dt /
tau_adapt)`` and ``beta``. The neuron equations themselves exist only in ``core/neurons.py``.

Eligibility traces, with ``s_i^t`` the presynaptic value arriving at step t (input or spike):

    p_i^t      = alpha p_i^{t-1} + s_i^t                                   (Eq. 13, eps_v)
    eps_a,ji^t = psi_j^{t-1} p_i^{t-1} + (rho - psi_j^{t-1} beta_j) eps_a,ji^{t-1}    (Eq. 25)
    e_ji^t     = psi_j^t (p_i^t - beta_j eps_a,ji^t)                       (Eq. 26; LIF: beta=0)
    ebar_ji^t  = kappa ebar_ji^{t-1} + e_ji^t,  kappa = exp(-dt / tau_out) (readout filter)

On a connection into a leaky readout (``"LI"`` group, ``y = kappa y + W z``) the eligibility is
the readout-filtered presynaptic trace ``p_i`` itself (Eq. 28: dE/dW_out = sum_t err_t F(z)_t).

``update(state, L, w)`` returns ``L_j ebar_ji`` (optax descent sign: the gradient estimate of
dE/dW at this step), where the modulator ``L`` is the learning signal: one value per
postsynaptic neuron ``[n_post]`` (``L_j = sum_k B_jk err_k``, Eq. 4) or a scalar. Summing the
updates over a sequence gives e-prop's gradient; for a non-recurrent layer with symmetric
feedback (B = W_out) it equals BPTT's ``jax.grad`` exactly (tested on N-HAL networks, LIF and
ALIF).

Reward-based e-prop (Methods, "Reward-based e-prop", Eq. 5) is built from the same rule by the
actor-critic recipe (``agents/eprop_ac.py``): learning signals from the policy and value readouts
(:func:`actor_critic_signal`), a per-synapse tag filtered by gamma lambda, gated by the TD error.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax import Array

from neurorl.errors import ConfigError, ShapeError
from neurorl.plasticity.traces import check_tau

SUPPORTED_TARGETS = ("LIF", "ALIF", "LI")
_BLOCK_MAX = 1024  # longest block computed with a [T, T] decay matrix; longer: a scan


@struct.dataclass
class EpropState:
    """e-prop traces of one connection.

    Attributes:
        p: ``[n_pre]`` presynaptic trace filtered by the target's membrane decay.
        eps_a: ``[n_pre, n_post]`` adaptation eligibility vector (ALIF targets; zero otherwise).
        ebar: ``[n_pre, n_post]`` kappa-filtered eligibility trace (readouts: ``p`` broadcast).
        psi: ``[n_post]`` pseudo-derivative of the last step.
    """

    p: Array
    eps_a: Array
    ebar: Array
    psi: Array


def _constants(view: Any, tau_out: float):
    name = view.model.name
    if name not in SUPPORTED_TARGETS:
        raise ConfigError("LearningRule(eprop).connection.target", name,
                          f"a group of one of {list(SUPPORTED_TARGETS)} (e-prop's eligibility "
                          "traces are derived for these neuron models)")
    tau = view.params.tau_mem
    if not isinstance(tau, jax.core.Tracer) and np.ndim(tau) > 0:
        raise ConfigError("LearningRule(eprop).target.tau_mem", "per-neuron array",
                          "one tau_mem per group (the presynaptic trace is shared)")
    dt = jnp.asarray(view.params.dt, jnp.float32)
    alpha = jnp.exp(-dt / tau)
    kappa = jnp.exp(-dt / tau_out)
    return name, dt, alpha, kappa


def _decay_matrix(d: Array, T: int) -> Array:
    """``A[t, s] = d^(t-s)`` for s <= t, else 0 (``[T, T]``)."""
    e = np.arange(T)[:, None] - np.arange(T)[None, :]
    return jnp.where(e >= 0, d ** np.maximum(e, 0), 0.0)


def eprop(tau_out: float = 20.0, normalized_filter: bool = False):
    """e-prop eligibility on one connection as an optax-shaped :class:`PlasticityRule`.

    Args:
        tau_out: time constant (ms) of the readout the learning signal comes from; the
            eligibility trace is filtered with ``kappa = exp(-dt / tau_out)`` (Bellec's F_kappa).
        normalized_filter: filter with unit DC gain, ``ebar = kappa ebar + (1 - kappa) e``
            (``exp_convolve`` of Bellec's TensorFlow code, and NEST's
            ``eprop_iaf[_adapt]_bsshslm_2020``) instead of ``ebar = kappa ebar + e``; the
            gradient of a connection into a hidden group is then ``(1 - kappa)`` times the
            default's. Connections into a readout are unaffected (their eligibility is ``p``).

    Returns:
        ``PlasticityRule(init, accumulate, update, accumulate_block)``; ``update(state, L, w)``
        returns ``L_j ebar_ji`` (-Delta w for a descent step), ``L`` scalar or ``[n_post]``.

    Raises:
        ConfigError: ``tau_out <= 0``; (at trace time) a target that is not LIF / ALIF / LI.

    References:
        Bellec et al. 2020, Nat. Commun. 11:3625, Eqs. 4-6, 13-14, 25-28.
    """
    from neurorl.plasticity import PlasticityRule

    check_tau("eprop.tau_out", tau_out)
    if not isinstance(normalized_filter, (bool, np.bool_)):
        raise ConfigError("eprop.normalized_filter", normalized_filter, "true or false")

    def init(weights: Array) -> EpropState:
        n_pre, n_post = jnp.shape(weights)
        m = jnp.zeros((n_pre, n_post), jnp.float32)
        return EpropState(jnp.zeros((n_pre,), jnp.float32), m, m,
                          jnp.zeros((n_post,), jnp.float32))

    def accumulate(state: EpropState, pre: Array, post: Array, view: Any) -> EpropState:
        name, dt, alpha, kappa = _constants(view, tau_out)
        pre = jnp.asarray(pre, jnp.float32)
        p = alpha * state.p + pre
        if name == "LI":
            return state.replace(p=p, ebar=jnp.broadcast_to(p[:, None], state.ebar.shape))
        psi = view.psi
        if name == "ALIF":
            beta = jnp.broadcast_to(jnp.asarray(view.params.beta, jnp.float32), psi.shape)
            rho = jnp.exp(-dt / view.params.tau_adapt)
            gain = (rho - state.psi * beta)[None, :]
            eps_a = state.psi[None, :] * state.p[:, None] + gain * state.eps_a
            e = psi[None, :] * (p[:, None] - beta[None, :] * eps_a)
        else:
            eps_a = state.eps_a
            e = psi[None, :] * p[:, None]
        if normalized_filter:
            e = (1.0 - kappa) * e
        return EpropState(p, eps_a, kappa * state.ebar + e, psi)

    def accumulate_block(state: EpropState, pre: Array, post: Array, view: Any) -> EpropState:
        name, dt, alpha, kappa = _constants(view, tau_out)
        T = pre.shape[0]
        if name == "ALIF" or T > _BLOCK_MAX:
            def body(s, xs):
                x, st = xs
                return accumulate(s, x, None, type(view)(view.model, view.params, st)), None

            return jax.lax.scan(body, state, (pre, view.state))[0]
        pre = jnp.asarray(pre, jnp.float32)
        powers = alpha ** jnp.arange(1, T + 1, dtype=jnp.float32)
        P = _decay_matrix(alpha, T) @ pre + powers[:, None] * state.p[None, :]  # p^1..p^T
        if name == "LI":
            return state.replace(p=P[-1], ebar=jnp.broadcast_to(P[-1][:, None],
                                                                 state.ebar.shape))
        psi = view.psi  # [T, n_post]
        w = kappa ** jnp.arange(T - 1, -1, -1, dtype=jnp.float32)  # kappa^(T-t)
        if normalized_filter:
            w = (1.0 - kappa) * w
        ebar = kappa**T * state.ebar + P.T @ (w[:, None] * psi)  # one rank-T product
        return EpropState(P[-1], state.eps_a, ebar, psi[-1])

    def update(state: EpropState, modulator: Array, weights: Array
               ) -> tuple[Array, EpropState]:
        L = jnp.broadcast_to(jnp.asarray(modulator, jnp.float32), state.psi.shape)
        return state.ebar * L[None, :], state

    return PlasticityRule(init, accumulate, update, accumulate_block)


# kept as the registry's historical name
eprop_rule = eprop


def output_error(y: Array, target: Array, loss: str = "mse") -> Array:
    """err = dE/dy: ``y - y*`` (MSE, E = 1/2 sum (y - y*)^2) or ``softmax(y) - y*`` (CE)."""
    if loss == "cross_entropy":
        return jax.nn.softmax(y) - target
    if loss != "mse":
        raise ConfigError("loss", loss, "'mse' or 'cross_entropy'")
    return y - target


def learning_signal(feedback: Array, err: Array) -> Array:
    """``L_j = sum_k B_jk err_k`` (Bellec Eq. 4) with ``feedback`` B ``[n_post, n_out]``:
    ``W_out`` itself (symmetric), a fixed random matrix (feedback alignment, Lillicrap et al.
    2016) or one that follows W_out's updates (Kolen-Pollack / adaptive, Akrout et al. 2019)."""
    return feedback @ err


def supervised_grads(net: Any, state: Any, inputs: Any, targets: Array, *, readout: str,
                     loss: str = "mse", feedback: Any = None, step_weights: Any = None,
                     signals: Any = None) -> tuple[dict, Array, Any]:
    """Online supervised e-prop over one sequence on an N-HAL network (Bellec 2020, Eq. 4).

    At every step the readout group's output ``y_t`` (a leaky ``"LI"`` group) gives the error
    ``err_t = dE/dy_t``; every e-prop rule then receives its learning signal: ``err_t`` on
    connections into the readout, ``L_t = B err_t`` on connections into a hidden group, with
    ``B = feedback[group]`` (``[n_group, n_out]``) or, by default, the weights of that group's
    connection to the readout (symmetric feedback). Updates are summed over the sequence.

    Args:
        net: a ``CompiledNetwork`` whose rules are e-prop rules.
        state: its state (``net.init(key)``).
        inputs: dict input group -> ``[T, n]`` (or one array for a single input group).
        targets: ``[T, n_out]`` target outputs (MSE) or one-hot labels (cross-entropy).
        readout: name of the readout group.
        loss: ``"mse"`` or ``"cross_entropy"``.
        feedback: optional dict hidden group -> B ``[n_group, n_out]`` (random / adaptive).
        step_weights: optional ``[T]`` weight of each step's loss, ``E = sum_t c_t E_t``: the
            error becomes ``c_t err_t`` (a loss window, e.g. Bellec's evidence-accumulation
            decision period: ``c_t = 1 / n_window`` inside it, 0 elsewhere). Default: all 1.
        signals: optional dict hidden group -> ``[T, n_group]``, added to the learning signal
            of every rule into that group (e.g. :func:`rate_regularization_signal`).

    Returns:
        ``(grads, ys, state)``: grads dict rule name -> dE/dW (descent sign), ys ``[T, n_out]``,
        the state after the sequence (weights unchanged).

    Raises:
        ConfigError: unknown readout group, a rule whose target neither is the readout nor
            projects to it.
    """
    from neurorl.errors import lookup

    lookup(net.groups, readout, "readout group", field="readout")
    ext, T = net._check_inputs(inputs, time_major=True, steps=None)
    targets = jnp.asarray(targets, jnp.float32)
    if step_weights is None:
        step_weights = jnp.ones((T,), jnp.float32)
    step_weights = jnp.asarray(step_weights, jnp.float32)
    if step_weights.shape != (T,):
        raise ShapeError("supervised_grads.step_weights", (T,), step_weights.shape)
    signals = {g: jnp.asarray(v, jnp.float32) for g, v in (signals or {}).items()}
    for g, v in signals.items():
        lookup(net.groups, g, "group", field="supervised_grads.signals")
        if v.shape != (T, net.groups[g].n):
            raise ShapeError(f"supervised_grads.signals[{g!r}]", (T, net.groups[g].n), v.shape)
    to_readout = {c.source.name: n for n, c in net.connections.items()
                  if c.target.name == readout}
    for n, r in net.rules.items():
        tgt = r.connection.target.name
        if tgt != readout and tgt not in to_readout and tgt not in (feedback or {}):
            raise ConfigError(f"LearningRule({n}).connection.target", tgt,
                              f"the readout {readout!r} or a group projecting to it")
    params, structure = net.params, net.structure
    weights = state["weights"]

    def body(carry, xs):
        dyn, traces, acc = carry
        e_t, y_star, c_t, extra = xs
        dyn, traces, _, _ = net._simulate(params, structure, weights, dyn, traces,
                                          {g: x[None] for g, x in e_t.items()}, 1)
        y = dyn["neurons"][readout].v
        err = c_t * output_error(y, y_star, loss)
        mods = {}
        for n, r in net.rules.items():
            tgt = r.connection.target.name
            if tgt == readout:
                mods[n] = err
            else:
                B = (feedback or {}).get(tgt)
                B = weights[to_readout[tgt]] if B is None else B
                mods[n] = learning_signal(B, err)
                if tgt in extra:
                    mods[n] = mods[n] + extra[tgt]
        g, traces = net._rule_grads(traces, weights, mods)
        acc = jax.tree.map(jnp.add, acc, g)
        return (dyn, traces, acc), y

    zero = {n: jnp.zeros_like(weights[r.connection.name]) for n, r in net.rules.items()}
    (dyn, traces, g), ys = jax.lax.scan(body, (net.dynamic(state), net.traces(state), zero),
                                        (ext, targets, step_weights, signals), length=T)
    rules = {n: {"rule": traces[n], "opt": state["rules"][n]["opt"]} for n in net.rules}
    return g, ys, {**dyn, "weights": weights, "rules": rules}


def rate_regularization_signal(rate: Array, f_target: float, c_reg: float, T: int,
                               tau_out: float, dt: float = 1.0,
                               normalized_filter: bool = False) -> Array:
    """Learning signal ``[T, n]`` of Bellec's firing-rate regulariser for :func:`supervised_grads`.

    ``E_reg = c_reg / 2 sum_j (f_j - f_target)^2`` with ``f_j`` the mean spikes per step of
    neuron j (over the sequence, and the batch when ``rate`` is a batch mean). Its e-prop gradient
    is ``c_reg (f_j - f_target) mean_t e_ji^t`` with the *unfiltered* eligibility ``e``
    (Bellec 2020, Methods "Firing rate regularization"; the Graz tutorials'
    ``dreg_loss_dw``); the rule keeps only ``ebar = F_kappa(e)``, and this signal recovers the
    sum: with ``L_t = g (1 - kappa)`` for ``t < T`` and ``L_T = g``,
    ``sum_t L_t ebar_t = g sum_t e_t`` (``ebar_0 = 0``). For one layer it is ``jax.grad`` of
    ``E_reg`` (tested); ``f`` must be computed beforehand (a first pass: the regulariser is not
    online, as in the paper, where it is averaged over the batch).

    Args:
        rate: ``[n]`` mean spikes per step (``f_target`` in the same unit: Hz x dt / 1000).
        f_target: target mean spikes per step.
        c_reg: regularisation strength.
        T: sequence length.
        tau_out: the rules' ``tau_out`` (ms).
        dt: time step (ms).
        normalized_filter: the rules' ``normalized_filter`` (then ``ebar`` is ``(1 - kappa)``
            times smaller and the signal ``1 / (1 - kappa)`` times larger).

    Returns:
        ``[T, n]`` learning signal for the group (``signals={group: ...}``).
    """
    kappa = math.exp(-dt / tau_out)
    w = np.full((T,), 1.0 - kappa, np.float32)
    w[-1] = 1.0
    if normalized_filter:
        w = w / (1.0 - kappa)
    g = c_reg * (jnp.asarray(rate, jnp.float32) - f_target) / T
    return jnp.asarray(w)[:, None] * g[None, :]


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


__all__ = ["EpropState", "actor_critic_signal", "eprop", "eprop_rule", "learning_signal",
           "output_error", "rate_regularization_signal", "supervised_grads"]
