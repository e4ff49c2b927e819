"""Reward-based e-prop actor-critic: a recurrent LIF/ALIF network that learns online, every step.

Network: observation -> Gaussian receptive fields (current injection) -> recurrent LIF/ALIF
layer (``_rsnn``) -> two leaky readouts from the same spikes: policy (softmax logits, or the
mean of a Gaussian for continuous actions) and value ``V``. K substeps of network time per env
step; the action is sampled from the readout after the K-th substep.

Learning (Bellec et al. 2020, Eq. 5 and Methods "reward-based e-prop"):

* per synapse, every substep, the e-prop eligibility trace ``e_ji^t = psi_j^t zbar_i^t``
  (LIF) or ``psi_j^t (zbar_i^t - beta eps_ji,a^t)`` (ALIF, Eq. 25), with ``zbar`` the
  ``alpha``-filtered presynaptic spikes and ``psi`` the triangle pseudo-derivative;
  ``ebar = F_kappa(e)`` matches the readout filter;
* once per env step, the learning signal ``L_j = sum_k B_jk dOut_k`` with symmetric feedback
  ``B = W_out^T`` (the gradient of ``log pi(a)`` and of ``V`` w.r.t. the readout) gives the
  per-step gradient estimate ``g = L_j ebar_ji`` (readout weights use ``F_kappa(z_j)``);
* the per-synapse actor-critic tag filters these by ``gamma * lambda`` (the ``F_gamma`` filter
  of Eq. 5; TD(lambda) eligibility of Sutton & Barto Sec. 13.5):
  ``tag <- gamma lambda tag + g_logpi + c_V g_V``;
* the TD error ``delta_t = r_t + gamma V_{t+1} - V_t`` gates the tag:
  ``grad = -(delta * tag) - c_H g_entropy`` (optax descent sign), averaged over the agent's
  parallel envs, followed by Adam (``optax.adam``, as in Bellec's Atari code).

``delta_t`` needs ``V_{t+1}``, which exists only after the next ``act``; so ``learn`` at step
``t+1`` applies the update of step ``t`` (one step of delay, exact online TD). Truncated
episodes bootstrap with ``V_t`` itself; terminated ones with 0.

References:
    Bellec, Scherr, Subramoney, Hajek, Salaj, Legenstein & Maass (2020). A solution to the
    learning dilemma for recurrent networks of spiking neurons. Nat. Commun. 11:3625
    (Eq. 1, 5, 25; Methods on reward-based e-prop).
    Sutton & Barto (2018). Reinforcement Learning: An Introduction, 2nd ed., Sec. 13.5
    (actor-critic with eligibility traces).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from neurorl.agents import _rsnn
from neurorl.agents.base import (
    Agent,
    AgentSpec,
    AgentStats,
    check_hyper,
    positive,
    reset_where,
    unit_interval,
)
from neurorl.core.surrogate import get_surrogate
from neurorl.encoding import gaussian_rf

Array = jax.Array

DEFAULTS: dict[str, Any] = {
    "n_rec": 64,  # recurrent neurons
    "n_alif": 0,  # of which adaptive (ALIF), the last n_alif
    "n_rf": 8,  # Gaussian receptive fields per observation dimension
    "in_gain": 1.0,  # input current gain (dimensionless)
    "tau_mem": 10.0,  # ms
    "tau_adapt": 200.0,  # ms
    "tau_out": 5.0,  # ms, readout filter (kappa)
    "beta": 0.3,  # ALIF threshold adaptation strength
    "v_th": 1.0,
    "gamma_pd": 0.3,  # pseudo-derivative dampening (Bellec gamma)
    "in_scale": 1.0,  # init std x sqrt(n_in) of input weights
    "rec_scale": 0.5,
    "out_scale": 0.1,
    "lr": 1e-4,
    "lr_decay_steps": 0,  # > 0: lr decays linearly to 0 over this many learn calls
    "adam_eps": 1e-5,
    "max_grad_norm": 1.0,
    "gamma": 0.99,  # discount
    "lam": 0.9,  # TD(lambda) tag decay (with gamma)
    "c_v": 0.5,  # value weight in the tag
    "c_ent": 0.01,  # entropy bonus
    "reward_scale": 0.1,
    "log_std0": -0.5,  # continuous actions: initial log std
}


@struct.dataclass
class EpropCarry:
    """Per-env carry: network, filtered presynaptic spikes ``zbar`` [n_pre], ALIF eligibility
    vector ``eps_a`` and kappa-filtered eligibility ``ebar`` [n_pre, n_rec], readout presyn
    trace ``zk`` [n_rec]."""

    net: _rsnn.RSNNCarry
    zbar: Array
    eps_a: Array
    ebar: Array
    zk: Array


@struct.dataclass
class EpropState:
    """Agent state. ``params`` shared; everything else has a leading env axis [B]."""

    params: _rsnn.RSNNParams
    opt_state: Any
    carry: EpropCarry
    tag: _rsnn.RSNNParams  # gamma*lambda-filtered (g_logpi + c_V g_V), per env
    g_now: _rsnn.RSNNParams  # this step's g_logpi + c_V g_V
    gh_now: _rsnn.RSNNParams  # this step's entropy gradient
    v_now: Array
    v_prev: Array
    r_prev: Array
    term_prev: Array
    trunc_prev: Array
    has_prev: Array
    reset_next: Array
    stats: AgentStats


def make_eprop_ac(spec: AgentSpec, **hyper: Any) -> Agent:
    """Build the e-prop actor-critic for ``spec`` (hyperparameters: see ``DEFAULTS``).

    Raises:
        ConfigError: unknown or invalid hyperparameter (host side, before any trace).
    """
    h = check_hyper("eprop_ac", hyper, DEFAULTS)
    positive("eprop_ac", **{k: h[k] for k in ("n_rec", "n_rf", "tau_mem", "tau_adapt", "tau_out",
                                              "v_th", "lr", "gamma_pd", "reward_scale")})
    unit_interval("eprop_ac", gamma=h["gamma"], lam=h["lam"])
    n_rec, n_alif = int(h["n_rec"]), int(h["n_alif"])
    if not 0 <= n_alif <= n_rec:
        from neurorl.errors import ConfigError

        raise ConfigError("agent.eprop_ac.n_alif", n_alif, f"an integer in [0, n_rec={n_rec}]")
    enc = gaussian_rf(spec.obs_low, spec.obs_high, int(h["n_rf"]), spec.substeps,
                      gain=h["in_gain"])
    n_in, n_act, B = enc.n_in, spec.n_actions, spec.n_envs
    n_out = n_act + 1
    n_std = 0 if spec.discrete else n_act
    consts = _rsnn.make_consts(n_in, n_rec, n_alif, h["tau_mem"], h["tau_adapt"], h["tau_out"],
                               h["beta"], h["v_th"])
    # e-prop never differentiates the network, the triangle surrogate only defines psi.
    sg = get_surrogate("triangle", gamma=h["gamma_pd"])
    heaviside = lambda x: (x > 0).astype(jnp.float32)
    lr = (optax.linear_schedule(h["lr"], 0.0, int(h["lr_decay_steps"]))
          if h["lr_decay_steps"] else h["lr"])
    tx = optax.chain(optax.clip_by_global_norm(h["max_grad_norm"]),
                     optax.adam(lr, eps=h["adam_eps"]))
    gamma, lam, c_v, c_ent = h["gamma"], h["lam"], h["c_v"], h["c_ent"]
    a_low = jnp.asarray(spec.action_low or (0.0,), jnp.float32)
    a_high = jnp.asarray(spec.action_high or (0.0,), jnp.float32)
    v_onehot = jax.nn.one_hot(n_act, n_out, dtype=jnp.float32)
    n_pre = n_in + n_rec

    def init_carry() -> EpropCarry:
        m = jnp.zeros((n_pre, n_rec), jnp.float32)
        return EpropCarry(_rsnn.init_carry(n_rec, n_out), jnp.zeros((n_pre,), jnp.float32), m, m,
                          jnp.zeros((n_rec,), jnp.float32))

    def batch(tree: Any) -> Any:
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (B,) + x.shape), tree)

    def init(key: Array) -> EpropState:
        p = _rsnn.init_params(key, n_in, n_rec, n_out, n_std, h["in_scale"], h["rec_scale"],
                              h["out_scale"], consts.rec_mask, h["log_std0"])
        zeros = jax.tree.map(jnp.zeros_like, p)
        f = jnp.zeros((B,), jnp.float32)
        b = jnp.zeros((B,), bool)
        return EpropState(p, tx.init(p), batch(init_carry()), batch(zeros), batch(zeros),
                          batch(zeros), f, f, f, b, b, b, b, AgentStats(f, f))

    def substep(p: _rsnn.RSNNParams, ec: EpropCarry, x: Array) -> tuple[EpropCarry, Array]:
        net, pre, v, thr = _rsnn.substep(p, consts, ec.net, x, heaviside)
        zbar = consts.alpha * ec.zbar + pre
        psi = sg.derivative((v - thr) / consts.v_th) / consts.v_th  # Bellec Eq. 24 / NEST
        beta = consts.beta[None, :]
        e = psi[None, :] * (zbar[:, None] - beta * ec.eps_a)  # Eq. 25 (LIF: beta = 0)
        eps_a = psi[None, :] * zbar[:, None] + (consts.rho - psi[None, :] * beta) * ec.eps_a
        ebar = consts.kappa * ec.ebar + e
        zk = consts.kappa * ec.zk + net.z
        return EpropCarry(net, zbar, eps_a, ebar, zk), jnp.sum(net.z)

    def grads_of(p: _rsnn.RSNNParams, ec: EpropCarry, d_out: Array, d_ls: Array
                 ) -> _rsnn.RSNNParams:
        learning_signal = p.w_out @ d_out  # symmetric feedback B = W_out^T, [n_rec]
        gw = ec.ebar * learning_signal[None, :] * consts.rec_mask
        return _rsnn.RSNNParams(gw, ec.zk[:, None] * d_out[None, :], d_out, d_ls)

    def act_one(p: _rsnn.RSNNParams, ec: EpropCarry, obs: Array, key: Array):
        xs = enc.encode(obs, None)
        ec, counts = jax.lax.scan(lambda c, x: substep(p, c, x), ec, xs)
        out = ec.net.u + p.b_out
        raw, _ = _rsnn.sample_action(key, out, p.log_std, spec.discrete, n_act)
        lp = lambda o, ls: _rsnn.log_prob_entropy(o, ls, raw, spec.discrete, n_act)[0]
        ent = lambda o, ls: _rsnn.log_prob_entropy(o, ls, raw, spec.discrete, n_act)[1]
        dlp_o, dlp_ls = jax.grad(lp, argnums=(0, 1))(out, p.log_std)
        dh_o, dh_ls = jax.grad(ent, argnums=(0, 1))(out, p.log_std)
        g = grads_of(p, ec, dlp_o + c_v * v_onehot, dlp_ls)
        gh = grads_of(p, ec, dh_o, dh_ls)
        action = raw if spec.discrete else jnp.clip(raw, a_low, a_high)
        spikes = jnp.sum(counts)
        return ec, action, g, gh, out[n_act], spikes

    def act(state: EpropState, obs: Array, key: Array) -> tuple[Array, EpropState]:
        carry = reset_where(state.reset_next, state.carry, batch(init_carry()))
        keys = jax.random.split(key, B)
        carry, action, g, gh, v, spikes = jax.vmap(act_one, in_axes=(None, 0, 0, 0))(
            state.params, carry, obs, keys)
        synops = spikes * float(n_rec + n_out)
        return action, state.replace(carry=carry, g_now=g, gh_now=gh, v_now=v,
                                     stats=AgentStats(spikes, synops))

    def learn(state: EpropState, reward: Array, terminated: Array, truncated: Array
              ) -> EpropState:
        term_p, trunc_p = state.term_prev, state.trunc_prev
        boot = jnp.where(trunc_p & ~term_p, state.v_prev, state.v_now)
        delta = state.r_prev + gamma * (1.0 - term_p.astype(jnp.float32)) * boot - state.v_prev
        delta = jnp.where(state.has_prev, delta, 0.0)

        def descent(tag: Array, gh: Array) -> Array:
            d = delta.reshape((B,) + (1,) * (tag.ndim - 1))
            return -jnp.mean(d * tag, axis=0) - c_ent * jnp.mean(gh, axis=0)

        grads = jax.tree.map(descent, state.tag, state.gh_now)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        keep = gamma * lam * (1.0 - (term_p | trunc_p).astype(jnp.float32))

        def retag(tag: Array, g: Array) -> Array:
            return keep.reshape((B,) + (1,) * (tag.ndim - 1)) * tag + g

        tag = jax.tree.map(retag, state.tag, state.g_now)
        return state.replace(
            params=params, opt_state=opt_state, tag=tag, v_prev=state.v_now,
            r_prev=h["reward_scale"] * reward.astype(jnp.float32),
            term_prev=terminated.astype(bool), trunc_prev=truncated.astype(bool),
            has_prev=jnp.ones((B,), bool), reset_next=terminated | truncated)

    def weights(state: EpropState) -> Any:
        return {"w": state.params.w, "w_out": state.params.w_out}

    return Agent("eprop_ac", spec, init, act, learn, weights)
