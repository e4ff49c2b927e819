"""BPTT actor-critic baseline: the same recurrent LIF/ALIF network as the e-prop agent, trained
with surrogate gradients through ``jax.grad`` (non-local) by PPO on n-step rollouts.

The agent collects ``rollout`` env steps from each of its ``n_envs`` parallel envs (weights
shared), then runs ``epochs`` x ``n_minibatches`` PPO updates (minibatches split the env axis,
so each minibatch replays whole sequences). The loss replays every sequence from the network
carry stored at the rollout's start (truncated BPTT over ``rollout * K`` substeps), resetting
the carry with ``jnp.where`` wherever an episode ended (the PureJaxRL ``ppo_rnn`` pattern), with
the clipped surrogate objective, a clipped value loss, an entropy bonus and GAE(lambda).

The PPO update is ``agent.update(state, obs, key)``, called by the training loop after every
``rollout`` act/learn steps with the next observation (the bootstrap ``V(s_T)``); ``act`` stores
the transition and ``learn`` records rewards and episode ends.
The encoder is the deterministic Gaussian receptive-field current, so a replay
sees exactly the inputs of the rollout.

References:
    Schulman, Wolski, Dhariwal, Radford & Klimov (2017). Proximal policy optimization
    algorithms. arXiv:1707.06347 (Eq. 7 clipped objective, Eq. 11 GAE).
    Neftci, Mostafa & Zenke (2019). Surrogate gradient learning in spiking neural networks.
    IEEE Signal Process. Mag. 36(6).
    Lu et al. (2022) / PureJaxRL ``ppo_rnn.py`` (recurrent carry reset with ``jnp.where``).
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
    unit_interval,
)
from neurorl.core.surrogate import get_surrogate
from neurorl.encoding import gaussian_rf
from neurorl.errors import ConfigError

Array = jax.Array

DEFAULTS: dict[str, Any] = {
    "n_rec": 64,
    "n_alif": 0,
    "n_rf": 8,
    "in_gain": 1.0,
    "tau_mem": 10.0,  # ms
    "tau_adapt": 200.0,  # ms
    "tau_out": 5.0,  # ms
    "beta": 0.3,
    "v_th": 1.0,
    "surrogate": "fast_sigmoid",
    "in_scale": 1.0,
    "rec_scale": 0.5,
    "out_scale": 0.1,
    "lr": 1e-3,
    "lr_decay_steps": 0,  # > 0: lr decays linearly to 0 over this many optimizer steps
    "max_grad_norm": 0.5,
    "rollout": 32,  # env steps per env per update (truncation window)
    "epochs": 10,
    "n_minibatches": 2,  # over the env axis
    "gamma": 0.98,
    "gae_lambda": 0.8,
    "clip_eps": 0.2,
    "c_v": 0.5,
    "c_ent": 0.0,
    "reward_scale": 0.1,
    "log_std0": -0.5,
}


@struct.dataclass
class Rollout:
    """Time-first rollout buffer ``[T, B, ...]``."""

    obs: Array
    raw: Array
    logp: Array
    value: Array
    reward: Array
    term: Array
    trunc: Array
    reset: Array


@struct.dataclass
class BpttState:
    """Agent state; ``carry``/``carry0``/``reset_next`` have a leading env axis [B]."""

    params: _rsnn.RSNNParams
    opt_state: Any
    carry: _rsnn.RSNNCarry
    carry0: _rsnn.RSNNCarry
    buf: Rollout
    ptr: Array
    reset_next: Array
    stats: AgentStats


def make_bptt_ac(spec: AgentSpec, **hyper: Any) -> Agent:
    """Build the BPTT (surrogate-gradient PPO) actor-critic (hyperparameters: ``DEFAULTS``).

    Raises:
        ConfigError: unknown or invalid hyperparameter, or ``n_minibatches`` not dividing
            ``n_envs`` (host side).
    """
    h = check_hyper("bptt_ac", hyper, DEFAULTS)
    positive("bptt_ac", **{k: h[k] for k in ("n_rec", "n_rf", "tau_mem", "tau_adapt", "tau_out",
                                             "v_th", "lr", "rollout", "epochs", "n_minibatches",
                                             "reward_scale")})
    unit_interval("bptt_ac", gamma=h["gamma"], gae_lambda=h["gae_lambda"])
    B, T = spec.n_envs, int(h["rollout"])
    n_mb, epochs = int(h["n_minibatches"]), int(h["epochs"])
    if B % n_mb:
        raise ConfigError("agent.bptt_ac.n_minibatches", n_mb, f"a divisor of n_envs={B}")
    n_rec, n_alif = int(h["n_rec"]), int(h["n_alif"])
    enc = gaussian_rf(spec.obs_low, spec.obs_high, int(h["n_rf"]), spec.substeps,
                      gain=h["in_gain"])
    n_in, n_act = enc.n_in, spec.n_actions
    n_out = n_act + 1
    n_std = 0 if spec.discrete else n_act
    consts = _rsnn.make_consts(n_in, n_rec, n_alif, h["tau_mem"], h["tau_adapt"], h["tau_out"],
                               h["beta"], h["v_th"])
    spike = get_surrogate(h["surrogate"]).spike
    # optimizer steps = updates x epochs x n_minibatches (rl-zoo's tuned CartPole PPO anneals
    # the lr linearly to 0 over training)
    lr = (optax.linear_schedule(h["lr"], 0.0, int(h["lr_decay_steps"]))
          if h["lr_decay_steps"] else h["lr"])
    tx = optax.chain(optax.clip_by_global_norm(h["max_grad_norm"]), optax.adam(lr, eps=1e-5))
    gamma, lam = h["gamma"], h["gae_lambda"]
    a_low = jnp.asarray(spec.action_low or (0.0,), jnp.float32)
    a_high = jnp.asarray(spec.action_high or (0.0,), jnp.float32)
    raw_shape = () if spec.discrete else (n_act,)
    raw_dtype = jnp.int32 if spec.discrete else jnp.float32

    def batch(tree: Any, n: int = B) -> Any:
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape), tree)

    init_c = lambda: _rsnn.init_carry(n_rec, n_out)

    def init(key: Array) -> BpttState:
        p = _rsnn.init_params(key, n_in, n_rec, n_out, n_std, h["in_scale"], h["rec_scale"],
                              h["out_scale"], consts.rec_mask, h["log_std0"])
        z = lambda *s, d=jnp.float32: jnp.zeros((T, B) + s, d)
        buf = Rollout(z(spec.obs_dim), z(*raw_shape, d=raw_dtype), z(), z(), z(), z(d=bool),
                      z(d=bool), z(d=bool))
        f = jnp.zeros((B,), jnp.float32)
        return BpttState(p, tx.init(p), batch(init_c()), batch(init_c()), buf,
                         jnp.zeros((), jnp.int32), jnp.zeros((B,), bool), AgentStats(f, f))

    def step_net(p: _rsnn.RSNNParams, carry: _rsnn.RSNNCarry, obs: Array, reset: Array):
        carry = jax.tree.map(lambda n, o: jnp.where(reset, n, o), init_c(), carry)
        return _rsnn.forward(p, consts, carry, enc.encode(obs, None), spike)

    def replay(p: _rsnn.RSNNParams, carry0: _rsnn.RSNNCarry, obs: Array, raw: Array,
               reset: Array) -> tuple[Array, Array, Array]:
        """One env's sequence: ``obs[T]`` -> ``(logp[T], entropy[T], value[T])``."""

        def body(carry, inp):
            o, r, rs = inp
            carry, out, _ = step_net(p, carry, o, rs)
            lp, ent = _rsnn.log_prob_entropy(out, p.log_std, r, spec.discrete, n_act)
            return carry, (lp, ent, out[n_act])

        _, (lp, ent, v) = jax.lax.scan(body, carry0, (obs, raw, reset))
        return lp, ent, v

    def gae(buf: Rollout, v_boot: Array) -> tuple[Array, Array]:
        next_v = jnp.concatenate([buf.value[1:], v_boot[None]], axis=0)
        # truncation: bootstrap from V(s_t) itself (the next obs is already a reset one)
        next_v = jnp.where(buf.trunc & ~buf.term, buf.value, next_v)
        nonterm = 1.0 - buf.term.astype(jnp.float32)
        cont = 1.0 - (buf.term | buf.trunc).astype(jnp.float32)
        delta = buf.reward + gamma * nonterm * next_v - buf.value

        def body(a, inp):
            d, c = inp
            a = d + gamma * lam * c * a
            return a, a

        _, adv = jax.lax.scan(body, jnp.zeros((B,), jnp.float32), (delta, cont), reverse=True)
        return adv, adv + buf.value

    def loss_fn(p, carry0, buf: Rollout, adv, ret):
        lp, ent, v = jax.vmap(replay, in_axes=(None, 0, 1, 1, 1), out_axes=1)(
            p, carry0, buf.obs, buf.raw, buf.reset)
        ratio = jnp.exp(lp - buf.logp)
        a = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg = -jnp.mean(jnp.minimum(ratio * a, jnp.clip(ratio, 1 - h["clip_eps"],
                                                        1 + h["clip_eps"]) * a))
        v_clip = buf.value + jnp.clip(v - buf.value, -h["clip_eps"], h["clip_eps"])
        vl = 0.5 * jnp.mean(jnp.maximum((v - ret) ** 2, (v_clip - ret) ** 2))
        return pg + h["c_v"] * vl - h["c_ent"] * jnp.mean(ent)

    def update(state: BpttState, obs: Array, key: Array) -> BpttState:
        _, out, _ = jax.vmap(step_net, in_axes=(None, 0, 0, 0))(
            state.params, state.carry, obs, state.reset_next)
        adv, ret = gae(state.buf, out[:, n_act])
        mb = B // n_mb

        def epoch(carry, k):
            p, opt = carry
            perm = jax.random.permutation(k, B).reshape(n_mb, mb)

            def minibatch(carry, idx):
                p, opt = carry
                sel = lambda x: jnp.take(x, idx, axis=1)
                sub = jax.tree.map(sel, state.buf)
                c0 = jax.tree.map(lambda x: x[idx], state.carry0)
                g = jax.grad(loss_fn)(p, c0, sub, sel(adv), sel(ret))
                upd, opt = tx.update(g, opt, p)
                return (optax.apply_updates(p, upd), opt), None

            return jax.lax.scan(minibatch, (p, opt), perm)[0], None

        (p, opt), _ = jax.lax.scan(epoch, (state.params, state.opt_state),
                                   jax.random.split(key, epochs))
        return state.replace(params=p, opt_state=opt, ptr=jnp.zeros((), jnp.int32),
                             carry0=state.carry)

    def act(state: BpttState, obs: Array, key: Array) -> tuple[Array, BpttState]:
        k_act = key
        carry, out, spikes = jax.vmap(step_net, in_axes=(None, 0, 0, 0))(
            state.params, state.carry, obs, state.reset_next)
        ls = state.params.log_std
        raw, _ = jax.vmap(lambda k, o: _rsnn.sample_action(k, o, ls, spec.discrete, n_act))(
            jax.random.split(k_act, B), out)
        lp, _ = jax.vmap(lambda o, r: _rsnn.log_prob_entropy(o, ls, r, spec.discrete, n_act))(
            out, raw)
        i = state.ptr
        buf = state.buf.replace(
            obs=state.buf.obs.at[i].set(obs), raw=state.buf.raw.at[i].set(raw),
            logp=state.buf.logp.at[i].set(lp), value=state.buf.value.at[i].set(out[:, n_act]),
            reset=state.buf.reset.at[i].set(state.reset_next))
        action = raw if spec.discrete else jnp.clip(raw, a_low, a_high)
        stats = AgentStats(spikes, spikes * float(n_rec + n_out))
        return action, state.replace(carry=carry, buf=buf, stats=stats)

    def learn(state: BpttState, reward: Array, terminated: Array, truncated: Array
              ) -> BpttState:
        i = state.ptr
        buf = state.buf.replace(
            reward=state.buf.reward.at[i].set(h["reward_scale"] * reward.astype(jnp.float32)),
            term=state.buf.term.at[i].set(terminated), trunc=state.buf.trunc.at[i].set(truncated))
        return state.replace(buf=buf, ptr=i + 1, reset_next=terminated | truncated)

    def weights(state: BpttState) -> Any:
        return {"w": state.params.w, "w_out": state.params.w_out}

    return Agent("bptt_ac", spec, init, act, learn, weights, T, update)
