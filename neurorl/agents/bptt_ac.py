"""BPTT actor-critic baseline: the e-prop agent's N-HAL network (the same description, without
local rules), trained with surrogate gradients through ``jax.grad`` of the compiled network's
simulation (non-local) by PPO on n-step rollouts.

The agent collects ``rollout`` env steps from each of its ``n_envs`` parallel envs (weights
shared), then runs ``epochs`` x ``n_minibatches`` PPO updates (minibatches split the env axis,
so each minibatch replays whole sequences). The loss replays every sequence from the network
carry stored at the rollout's start (truncated BPTT over ``rollout * K`` substeps), resetting
the carry with ``jnp.where`` wherever an episode ended (the PureJaxRL ``ppo_rnn`` pattern), with
the clipped surrogate objective, a clipped value loss, an entropy bonus and GAE(lambda).
``gradient="eprop"`` keeps all of that and cuts the gradient through the spikes of delayed
(recurrent) connections, so each update is e-prop's gradient of the same loss (Bellec et al.
2020, Methods: e-prop with symmetric feedback equals the gradient with the recurrent spike
paths stopped; ``tests/plasticity/test_eprop.py`` checks it against the library's e-prop).
Opt-in (off by default): ``meta_lr_max > 1`` multiplies every update's Adam step by the e-prop
agent's neuromodulated gain (Schweighofer & Doya 2003;
:func:`neurorl.plasticity.neuromodulation.meta_lr`), its averages advanced by the rollout's
values once per env step; with ``meta_target="entropy"`` the gain multiplies the entropy bonus
``c_ent`` instead (exploration raised while the value is below its long-run level: Yu & Dayan
2005's unexpected uncertainty), the Adam step left alone.

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
    Schweighofer & Doya (2003). Meta-learning in reinforcement learning. Neural Networks 16:5-9
    (the opt-in ``meta_lr_*`` gain).
    Yu & Dayan (2005). Uncertainty, neuromodulation, and attention. Neuron 46:681-692; Aston-Jones
    & Cohen (2005). An integrative theory of locus coeruleus-norepinephrine function. Annu. Rev.
    Neurosci. 28:403-450 (the gain on exploration, ``meta_target="entropy"``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from neurorl.agents import ppo
from neurorl.agents.base import (
    Agent,
    AgentSpec,
    AgentStats,
    check_hyper,
    positive,
    unit_interval,
)
from neurorl.agents.eprop_ac import NETWORK_KEYS, eprop_network
from neurorl.agents.network_agent import AgentNetwork, NetworkRuntime
from neurorl.agents.policy import log_prob_entropy, sample_action
from neurorl.errors import ConfigError, closest
from neurorl.plasticity.neuromodulation import meta_lr

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
    # "bptt": the full surrogate gradient; "eprop": the same PPO loss and updates with the
    # gradient through other neurons' earlier spikes cut (Network.compile stop_z_gradients),
    # which with symmetric feedback is e-prop's gradient (Bellec et al. 2020) -- separates what
    # the gradient's locality costs from what the online update costs
    "gradient": "bptt",
    # neuromodulated learning rate (opt-in; meta_lr_max 1 = off), the e-prop agent's: every
    # update's Adam step is multiplied by a gain that rises when the mid-term mean value V falls
    # below its long-run mean (Schweighofer & Doya 2003; neurorl.plasticity.neuromodulation),
    # the averages advanced once per env step of the rollout, so the time constants are in env
    # steps per env as for eprop_ac
    "meta_lr_max": 1.0,
    "meta_lr_k": 1.0,
    "meta_lr_tau_mid": 50.0,
    "meta_lr_tau_long": 2500.0,
    # what the gain multiplies: "lr" (the Adam step, Schweighofer & Doya 2003) or "entropy" (the
    # entropy bonus c_ent: exploration that rises while the value is below its long-run level,
    # the "unexpected uncertainty" of Yu & Dayan 2005 / the tonic noradrenergic mode of
    # Aston-Jones & Cohen 2005; c_ent 0 makes it a no-op)
    "meta_target": "lr",
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
    """Agent state: shared ``params`` (network weights, readout bias, log std); per-env [B]
    network states ``dyn`` (now) and ``dyn0`` (at the rollout's start), the rollout buffer."""

    params: Any
    opt_state: Any
    dyn: Any
    dyn0: Any
    buf: Rollout
    ptr: Array
    reset_next: Array
    stats: AgentStats
    meta: Any = None  # MetaLRState with the neuromodulated gain on (meta_lr_max > 1), else None


def make_bptt_ac(spec: AgentSpec, network: AgentNetwork | None = None, backend: str = "jax",
                 compile_kwargs: dict | None = None, **hyper: Any) -> Agent:
    """Build the BPTT (surrogate-gradient PPO) actor-critic (hyperparameters: ``DEFAULTS``).

    Args:
        spec: what the agent sees and does.
        network: a user's :class:`AgentNetwork` with an ``"LI"`` readout of ``n_actions + 1``
            units (its learning rules, if any, are ignored: BPTT trains every connection);
            default the e-prop agent's network without rules.
        backend: compile backend (``"jax"`` or a chip name).
        compile_kwargs: extra arguments of ``Network.compile``.

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
    if not 0 <= int(h["n_alif"]) <= int(h["n_rec"]):
        raise ConfigError("agent.bptt_ac.n_alif", h["n_alif"],
                          f"an integer in [0, n_rec={h['n_rec']}]")
    from neurorl.core.surrogate import SURROGATES
    from neurorl.errors import lookup

    lookup(SURROGATES, h["surrogate"], "surrogate", field="agent.bptt_ac.surrogate")
    if network is None:
        network = eprop_network(spec, rule=None, surrogate=h["surrogate"],
                                **{k: h[k] for k in NETWORK_KEYS if k in h})
    if h["gradient"] not in ("bptt", "eprop"):
        raise ConfigError("agent.bptt_ac.gradient", h["gradient"], "'bptt' or 'eprop'",
                          closest(str(h["gradient"]), ("bptt", "eprop")))
    meta = meta_lr(h["meta_lr_max"], h["meta_lr_k"], h["meta_lr_tau_mid"],
                   h["meta_lr_tau_long"], field="agent.bptt_ac.meta_lr")  # validates always
    meta = meta if h["meta_lr_max"] != 1.0 else None
    if h["meta_target"] not in ("lr", "entropy"):
        raise ConfigError("agent.bptt_ac.meta_target", h["meta_target"], "'lr' or 'entropy'",
                          closest(str(h["meta_target"]), ("lr", "entropy")))
    gain_lr = meta is not None and h["meta_target"] == "lr"
    gain_ent = meta is not None and h["meta_target"] == "entropy"
    ck = dict(compile_kwargs or {})
    if h["gradient"] == "eprop":
        ck["stop_z_gradients"] = True
    rt = NetworkRuntime(network, B, spec.substeps, backend, **ck)
    net, out_g = rt.net, network.output
    n_act = spec.n_actions
    n_out = n_act + 1
    if net.groups[out_g].model.name != "LI" or net.groups[out_g].n != n_out:
        raise ConfigError("agent.network.output", out_g,
                          f"an 'LI' readout group of n_actions + 1 = {n_out} units")
    n_std = 0 if spec.discrete else n_act
    masks = {n: net.structure[n]["mask"] for n in net.connections
             if net.storage()[n] == "dense"}
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
    dyn_fresh, tr_fresh = rt.fresh()

    def init(key: Array) -> BpttState:
        weights, dyn, _ = rt.init(key)
        p = {"w": weights, "b_out": jnp.zeros((n_out,), jnp.float32),
             "log_std": jnp.full((n_std,), h["log_std0"], jnp.float32)}
        z = lambda *s, d=jnp.float32: jnp.zeros((T, B) + s, d)
        buf = Rollout(z(spec.obs_dim), z(*raw_shape, d=raw_dtype), z(), z(), z(), z(d=bool),
                      z(d=bool), z(d=bool))
        f = jnp.zeros((B,), jnp.float32)
        return BpttState(p, tx.init(p), dyn, dyn, buf, jnp.zeros((), jnp.int32),
                         jnp.zeros((B,), bool), AgentStats(f, f),
                         None if meta is None else meta.init())

    def step_net(p: Any, dyn: Any, obs: Array, reset: Array):
        """One env, one env step: reset if the last episode ended, K substeps, readout."""
        dyn = jax.tree.map(lambda n, o: jnp.where(reset, n, o), dyn_fresh, dyn)
        dyn, _, _, counts = rt.step_one(p["w"], dyn, tr_fresh, obs, None)
        return dyn, dyn["neurons"][out_g].v + p["b_out"], counts

    def replay(p: Any, dyn0: Any, obs: Array, raw: Array, reset: Array
               ) -> tuple[Array, Array, Array]:
        """One env's sequence: ``obs[T]`` -> ``(logp[T], entropy[T], value[T])``."""

        def body(dyn, inp):
            o, r, rs = inp
            dyn, out, _ = step_net(p, dyn, o, rs)
            lp, ent = log_prob_entropy(out, p["log_std"], r, spec.discrete, n_act)
            return dyn, (lp, ent, out[n_act])

        _, (lp, ent, v) = jax.lax.scan(body, dyn0, (obs, raw, reset))
        return lp, ent, v

    def loss_fn(p, dyn0, buf: Rollout, adv, ret, c_ent):
        lp, ent, v = jax.vmap(replay, in_axes=(None, 0, 1, 1, 1), out_axes=1)(
            p, dyn0, buf.obs, buf.raw, buf.reset)
        return ppo.clipped_loss(lp, ent, v, buf.logp, buf.value, adv, ret, clip=h["clip_eps"],
                                c_v=h["c_v"], c_ent=c_ent)

    def update(state: BpttState, obs: Array, key: Array) -> BpttState:
        _, out, _ = jax.vmap(step_net, in_axes=(None, 0, 0, 0))(
            state.params, state.dyn, obs, state.reset_next)
        adv, ret = ppo.gae(state.buf.value, state.buf.reward, state.buf.term, state.buf.trunc,
                           out[:, n_act], gamma, lam)
        mb = B // n_mb
        gain, m_state = jnp.ones((), jnp.float32), state.meta
        if meta is not None:  # the rollout's values, one call per env step (every env valid)
            def advance(carry, v):
                return meta.update(carry[1], v, jnp.ones((B,), bool)), None

            (gain, m_state), _ = jax.lax.scan(advance, (gain, m_state), state.buf.value)

        def epoch(carry, k):
            p, opt = carry
            perm = jax.random.permutation(k, B).reshape(n_mb, mb)

            def minibatch(carry, idx):
                p, opt = carry
                sel = lambda x: jnp.take(x, idx, axis=1)
                sub = jax.tree.map(sel, state.buf)
                d0 = jax.tree.map(lambda x: x[idx], state.dyn0)
                c_ent = h["c_ent"] * gain if gain_ent else h["c_ent"]
                g = jax.grad(loss_fn)(p, d0, sub, sel(adv), sel(ret), c_ent)
                g = {**g, "w": {n: g["w"][n] * masks[n] if n in masks else g["w"][n]
                                for n in g["w"]}}  # no synapse, no gradient
                upd, opt = tx.update(g, opt, p)
                if gain_lr:
                    upd = jax.tree.map(lambda u: gain * u, upd)
                p = optax.apply_updates(p, upd)
                return (dict(p, w=net.constrain(p["w"], project=rt.project_updates)), opt), None

            return jax.lax.scan(minibatch, (p, opt), perm)[0], None

        (p, opt), _ = jax.lax.scan(epoch, (state.params, state.opt_state),
                                   jax.random.split(key, epochs))
        return state.replace(params=p, opt_state=opt, ptr=jnp.zeros((), jnp.int32),
                             dyn0=state.dyn, meta=m_state)

    def act(state: BpttState, obs: Array, key: Array) -> tuple[Array, BpttState]:
        dyn, out, counts = jax.vmap(step_net, in_axes=(None, 0, 0, 0))(
            state.params, state.dyn, obs, state.reset_next)
        ls = state.params["log_std"]
        raw, _ = jax.vmap(lambda k, o: sample_action(k, o, ls, spec.discrete, n_act))(
            jax.random.split(key, B), out)
        lp, _ = jax.vmap(lambda o, r: log_prob_entropy(o, ls, r, spec.discrete, n_act))(
            out, raw)
        i = state.ptr
        buf = state.buf.replace(
            obs=state.buf.obs.at[i].set(obs), raw=state.buf.raw.at[i].set(raw),
            logp=state.buf.logp.at[i].set(lp), value=state.buf.value.at[i].set(out[:, n_act]),
            reset=state.buf.reset.at[i].set(state.reset_next))
        action = raw if spec.discrete else jnp.clip(raw, a_low, a_high)
        spikes, synops = rt.activity(counts)
        zero = jnp.zeros((B,), jnp.float32)
        return action, state.replace(dyn=dyn, buf=buf,
                                     stats=AgentStats(zero + spikes, zero + synops))

    def learn(state: BpttState, reward: Array, terminated: Array, truncated: Array
              ) -> BpttState:
        i = state.ptr
        buf = state.buf.replace(
            reward=state.buf.reward.at[i].set(h["reward_scale"] * reward.astype(jnp.float32)),
            term=state.buf.term.at[i].set(terminated), trunc=state.buf.trunc.at[i].set(truncated))
        return state.replace(buf=buf, ptr=i + 1, reset_next=terminated | truncated)

    def weights(state: BpttState) -> Any:
        return state.params["w"]

    return Agent("bptt_ac", spec, init, act, learn, weights, T, update, runtime=rt,
                 learned=("params", "opt_state", "meta"))
