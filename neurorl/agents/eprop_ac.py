"""Reward-based e-prop actor-critic, as a recipe on an N-HAL network.

Network (built by :func:`eprop_network`, or any user network whose rules are e-prop): observation
-> Gaussian receptive fields (currents into an ``"Input"`` group) -> recurrent LIF/ALIF group ->
leaky ``"LI"`` readout with ``n_actions + 1`` units (policy logits or Gaussian means, and the
value ``V``), every connection carrying the ``eprop`` rule of :mod:`neurorl.plasticity.eprop`.
K substeps of network time per env step; the action is sampled from the readout after the K-th.

Learning (Bellec et al. 2020, Eq. 5 and Methods "reward-based e-prop"):

* the simulator keeps every rule's eligibility trace ``ebar_ji`` (block-updated once per env
  step by the staged simulator);
* once per env step, the learning signal of each rule's postsynaptic group is the feedback of
  the readout error: ``L_j = sum_k B_jk dOut_k`` with ``dOut`` the gradient of ``log pi(a)``
  (and ``c_V`` times that of ``V``) w.r.t. the readout and ``B`` the weights from that group to
  the readout (symmetric feedback) or a fixed random matrix (``feedback="random"``, Lillicrap
  et al. 2016); on connections into the readout ``L = dOut`` itself. ``g = L_j ebar_ji`` is the
  rule's ``update``;
* the per-synapse actor-critic tag filters these by ``gamma * lambda`` (TD(lambda) eligibility,
  Sutton & Barto Sec. 13.5): ``tag <- gamma lambda tag + g_logpi + c_V g_V``;
* the TD error ``delta_t = r_t + gamma V_{t+1} - V_t`` gates the tag:
  ``grad = -(delta * tag) - c_H g_entropy`` (optax descent sign), averaged over the agent's
  parallel envs, followed by Adam (as in Bellec's Atari code), then the backend's constraints.

``delta_t`` needs ``V_{t+1}``, which exists only after the next ``act``; so ``learn`` at step
``t+1`` applies the update of step ``t`` (one step of delay, exact online TD). Truncated
episodes bootstrap with ``V_t`` itself; terminated ones with 0.

Opt-in tools (all off by default): ``meta_lr_max > 1`` multiplies each update by a
neuromodulatory gain that rises when the mid-term mean value falls below its long-run mean
(Schweighofer & Doya 2003; :func:`neurorl.plasticity.neuromodulation.meta_lr`), for lifelong
learning under shifts. For the harder tasks: ``shaping`` adds a potential-based term
``gamma Phi(s') - Phi(s)`` to the TD error (Ng et al. 1999; ``Phi`` of the observation seen by
``act``, e.g. the MountainCar car's mechanical energy), ``reward_norm`` divides rewards by the
running std of the discounted return (Engstrom et al. 2020), ``std_min`` is a fixed floor on the
Gaussian policy's exploration std, ``v_init`` an optimistic initial value. ``replay_window >
0`` adds replay inside e-prop (:mod:`neurorl.agents.replay`): every ``replay_window`` env steps
the agent's batch ``update`` runs PPO-clip epochs on the readout from a window of stored readout
traces (exact: the readout is linear in them), and with ``replay_traces`` e-prop's ``sum_t L_t
ebar_t`` on every connection from stored eligibility traces (frozen, no re-simulation).

References:
    Bellec, Scherr, Subramoney, Hajek, Salaj, Legenstein & Maass (2020). A solution to the
    learning dilemma for recurrent networks of spiking neurons. Nat. Commun. 11:3625
    (Eq. 1, 5, 25; Methods on reward-based e-prop).
    Sutton & Barto (2018). Reinforcement Learning: An Introduction, 2nd ed., Sec. 13.5.
    Ng, Harada & Russell (1999). Policy invariance under reward transformations: theory and
    application to reward shaping. ICML (potential-based shaping keeps the optimal policy).
    Engstrom, Ilyas, Santurkar, Tsipras, Janoos, Rudolph & Madry (2020). Implementation matters
    in deep policy gradients. ICLR (reward scaling by the discounted return's running std).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from neurorl.agents import ppo, td
from neurorl.agents import replay as rp
from neurorl.agents.base import (
    Agent,
    AgentSpec,
    AgentStats,
    check_hyper,
    positive,
    unit_interval,
)
from neurorl.agents.network_agent import AgentNetwork, NetworkRuntime, reset_envs
from neurorl.agents.policy import log_prob_entropy, sample_action
from neurorl.core.monitors import SpikeMonitor
from neurorl.core.network import Connection, LearningRule, Network, NeuronGroup
from neurorl.encoding import gaussian_rf, input_adaptation
from neurorl.errors import ConfigError, is_finite_number
from neurorl.plasticity.neuromodulation import meta_lr

Array = jax.Array

DEFAULTS: dict[str, Any] = {
    "n_rec": 64,  # recurrent neurons
    "n_alif": 0,  # of which adaptive (ALIF), the last n_alif
    "n_rf": 8,  # Gaussian receptive fields per observation dimension
    "in_gain": 1.0,  # input current gain (dimensionless)
    "tau_mem": 10.0,  # ms
    "tau_adapt": 200.0,  # ms
    # ms, readout filter (kappa); 10 (not 5): the policy logits and V average the spikes over
    # 2 env steps (substeps 5), less spike noise in the sampled actions and in the TD error
    # (CartPole seeds 100-104: median crossing of 475 at 124k vs 145k at 200k; learning_notes.md)
    "tau_out": 10.0,
    "beta": 0.3,  # ALIF threshold adaptation strength
    "v_th": 1.0,
    "gamma_pd": 0.3,  # pseudo-derivative dampening (Bellec gamma)
    "in_scale": 1.0,  # init std x sqrt(n_in) of input weights
    "rec_scale": 0.5,
    "out_scale": 0.1,
    "feedback": "symmetric",  # or "random" (fixed random feedback, feedback alignment)
    "lr": 1e-4,
    "lr_decay_steps": 0,  # > 0: lr decays linearly to 0 over this many learn calls
    # Adam's epsilon: 1e-3 (not 1e-5) damps the steps once the TD-gated gradients get small, so
    # a constant lr does not drift a learned policy away (Bellec's Atari agent used eps = 1);
    # chosen on CartPole seeds 100-104 with c_ent 0 (benchmarks/learning_notes.md)
    "adam_eps": 1e-3,
    "adam_b1": 0.9,  # Adam's moment decay rates
    # b2 0.9999 (not 0.999): the second moment remembers the learning phase's gradient scale for
    # ~10k updates, so once the TD errors of a learned policy shrink, Adam's steps shrink with
    # them instead of being renormalised to lr-sized steps on noise (the drift of a constant lr);
    # with tau_out 10 on CartPole seeds 100-104, 300k: final median 460 vs 299-500 spread
    # and drops with 0.999 (learning_notes.md)
    "adam_b2": 0.9999,
    "max_grad_norm": 1.0,
    "gamma": 0.99,  # discount
    "lam": 0.8,  # TD(lambda) tag decay (with gamma); 0.8 (not 0.9, 0.95) on CartPole seeds 100-104
    "c_v": 0.5,  # value weight in the tag
    "c_ent": 0.0,  # entropy bonus (0.01 and 0.001 kept CartPole below 475; seeds 100-104)
    "reward_scale": 0.1,
    "log_std0": -0.5,  # continuous actions: initial log std
    # opt-in tools for the harder tasks (issue 17); the defaults leave the agent unchanged
    "std_min": 0.0,  # continuous actions: floor of the policy's std (> 0: a fixed exploration
    # floor, log_std is clipped to log(std_min) after every update); 0: no floor
    "reward_norm": False,  # divide rewards by the running std of the discounted return
    "v_init": 0.0,  # initial value-head bias (> 0: an optimistic critic, in scaled reward units)
    "shaping": "none",  # potential-based reward shaping (Ng et al. 1999): a name in SHAPING
    "shaping_scale": 0.0,  # the potential's scale (reward units, before reward_scale)
    # neuromodulated learning rate (opt-in; meta_lr_max 1 = off): Adam's step is multiplied by
    # a gain that rises when the mid-term mean value V falls below its long-run mean
    # (Schweighofer & Doya 2003; neurorl.plasticity.neuromodulation.meta_lr): a shift that
    # breaks the policy speeds learning up, a stationary task learns at the base rate
    "meta_lr_max": 1.0,  # the largest gain
    "meta_lr_k": 1.0,  # gain 1 + k x relative drop of the value
    "meta_lr_tau_mid": 50.0,  # learn calls (env steps per env)
    "meta_lr_tau_long": 2500.0,  # learn calls
    # sensory adaptation (opt-in; 0 = off): every observation dimension is rescaled to the
    # running mean +- obs_adapt_z std of its signal before the receptive fields
    # (neurorl.encoding.input_adaptation; Brenner et al. 2000), so a sensor that moves or
    # changes scale after a shift is re-covered by the fields in ~obs_adapt_tau learn calls
    "obs_adapt_tau": 0.0,  # learn calls
    "obs_adapt_z": 2.0,
    "obs_adapt_zoom": 4.0,  # largest magnification over the fixed obs range
    # readout replay (opt-in; replay_window 0 = off; neurorl.agents.replay): a buffer of the
    # last replay_window env steps of the readout's presynaptic traces, actions, log-probs,
    # values, rewards and episode ends; when it is full, replay_epochs x replay_minibatches
    # steps of PPO-clip (bptt_ac's loss: GAE, per-batch advantage normalisation, clipped ratio
    # and value) on the readout weights (and bias, log std), with their own Adam; the readout
    # is linear in the stored traces, so no re-simulation is needed
    "replay_window": 0,  # env steps per env (0: off)
    "replay_epochs": 4,
    "replay_minibatches": 1,  # over the env axis (a divisor of n_envs)
    "replay_lr": 1e-3,
    "replay_clip": 0.2,  # PPO's ratio (and value) clip
    "replay_lambda": 0.8,  # GAE lambda (with gamma)
    "replay_c_v": 0.5,  # value-loss weight
    "replay_max_grad_norm": 0.5,
    # which connections still learn online by e-prop: "all" (as without replay), "hidden"
    # (the readout learns by replay only), "none" (only the replay learns)
    "replay_online": "all",
    # trace replay: store the hidden rules' eligibility traces ebar in the window too and apply
    # e-prop's sum_t L_t ebar_t with the replay loss's learning signals (frozen traces, current
    # feedback weights) to every connection in the replay epochs
    "replay_traces": False,
    # trace replay: the hidden rules' replay steps are multiplied by this (the PPO clip sees the
    # ratio of the stored readout traces only, not the change the hidden steps make)
    "replay_hidden_scale": 1.0,
    # the neuromodulated gain (meta_lr_*, which must be on) multiplies the replay's steps too
    "replay_meta_lr": False,
}

REPLAY_ONLINE = ("all", "hidden", "none")


def _mountain_car_energy(obs: Array) -> Array:
    """Mechanical energy of the MountainCar car (MountainCar-v0 and MountainCarContinuous-v0:
    the same hill and gravity) from its observation ``[position, velocity]``,
    in units of the gravity coefficient 0.0025: ``(v^2 / 2 + 0.0025 sin(3x) / 3) / 0.0025``
    (the dynamics ``v += ... - 0.0025 cos(3x)`` derive from the height ``sin(3x) / 3``)."""
    x, v = obs[0], obs[1]
    return (0.5 * v * v + 0.0025 * jnp.sin(3.0 * x) / 3.0) / 0.0025


# potentials Phi(obs) for ``shaping``: name -> (obs_dim it needs, Phi); the shaped reward is
# r + gamma Phi(s') - Phi(s) with Phi(terminal) = 0, which keeps the optimal policy (Ng et al.)
SHAPING: dict[str, tuple[int, Any] | None] = {
    "none": None,
    "mountain_car_energy": (2, _mountain_car_energy),
}

# hyperparameters that shape the built-in network (ignored for a user's network)
NETWORK_KEYS = ("n_rec", "n_alif", "n_rf", "in_gain", "tau_mem", "tau_adapt", "tau_out", "beta",
                "v_th", "gamma_pd", "in_scale", "rec_scale", "out_scale")


def eprop_network(spec: AgentSpec, rule: str | None = "eprop", surrogate: str = "triangle",
                  surrogate_hyper: tuple | None = None, **hyper: Any) -> AgentNetwork:
    """The built-in actor-critic network: RF input -> recurrent LIF/ALIF -> LI readout.

    The same description serves e-prop (``rule="eprop"`` on every connection) and the BPTT
    baseline (``rule=None``: no local rule, the weights are trained by ``jax.grad``).
    Connection names: ``"input"``, ``"recurrent"``, ``"output"``; groups ``"obs"``,
    ``"hidden"``, ``"readout"`` (``n_actions + 1`` units: policy head then value).

    Args:
        spec: the agent spec (observation bounds, actions, substeps).
        rule: learning rule on every connection, or None.
        surrogate: the hidden neurons' surrogate spike derivative (e-prop: the triangle
            pseudo-derivative with dampening ``gamma_pd``).
        surrogate_hyper: its hyperparameters (default ``(("gamma", gamma_pd),)`` for the
            triangle, none otherwise).
        hyper: the ``DEFAULTS`` keys in ``NETWORK_KEYS``.
    """
    h = {**DEFAULTS, **hyper}
    if surrogate_hyper is None:
        surrogate_hyper = (("gamma", float(h["gamma_pd"])),) if surrogate == "triangle" else ()
    n_rec, n_alif = int(h["n_rec"]), int(h["n_alif"])
    enc = gaussian_rf(spec.obs_low, spec.obs_high, int(h["n_rf"]), spec.substeps,
                      gain=h["in_gain"])
    n_in, n_out = enc.n_in, spec.n_actions + 1
    hid_p: dict[str, Any] = {"tau_mem": h["tau_mem"], "v_th": h["v_th"],
                             "surrogate": surrogate, "surrogate_hyper": tuple(surrogate_hyper)}
    if n_alif:
        beta = np.zeros(n_rec, np.float32)
        beta[n_rec - n_alif:] = h["beta"]
        hid_p.update(beta=beta, tau_adapt=h["tau_adapt"])
    obs = NeuronGroup(n_in, "Input", name="obs")
    hid = NeuronGroup(n_rec, "ALIF" if n_alif else "LIF", hid_p, name="hidden")
    out = NeuronGroup(n_out, "LI", {"tau_mem": h["tau_out"]}, name="readout")
    std = lambda s, n: {"init": "normal", "std": float(s) / float(np.sqrt(n))}
    c_in = Connection(obs, hid, weight=std(h["in_scale"], n_in), delay=0, name="input")
    c_rec = Connection(hid, hid, "all_to_all", allow_self=False,
                       weight=std(h["rec_scale"], n_rec), delay=1, name="recurrent")
    c_out = Connection(hid, out, weight=std(h["out_scale"], n_rec), delay=0, name="output")
    rules = [] if rule is None else [
        LearningRule(c, rule, {"tau_out": h["tau_out"]} if rule == "eprop" else {}, name=c.name)
        for c in (c_in, c_rec, c_out)]
    net = Network(obs, hid, out, c_in, c_rec, c_out, *rules, SpikeMonitor(hid, "hidden"))
    return AgentNetwork(net, enc, input="obs", output="readout")


@struct.dataclass
class EpropState:
    """Agent state: shared ``params`` (readout bias, log std) and network ``weights`` (the one
    copy of the plastic weights: ``learn`` reads them there, so a chip's rounding or float shadow
    written into ``weights`` by ``make_train`` is what the next update starts from); per-env [B]
    dynamic states, traces, tags and TD bookkeeping."""

    params: Any
    weights: Any
    opt_state: Any
    feedback: Any
    dyn: Any
    traces: Any
    tag: Any  # per env: gamma-lambda filtered gradient estimates (w: [B, n_pre, n_post])
    extra: Any  # opt-in bookkeeping: shaping potentials ``phi_now``/``phi_prev`` [B], reward
    # normalisation ``ret`` [B] (discounted return) and its running ``count``/``mean``/``m2``;
    # ``meta_lr`` (a MetaLRState: mid- and long-term value averages) only with meta_lr_max > 1
    g_now: Any  # per env: this step's learning signals (w: [B, n_post]) and readout grads
    gh_now: Any  # the same for the entropy bonus
    v_now: Array
    v_prev: Array
    r_prev: Array
    term_prev: Array
    trunc_prev: Array
    has_prev: Array
    reset_next: Array
    stats: AgentStats


def make_eprop_ac(spec: AgentSpec, network: AgentNetwork | None = None, backend: str = "jax",
                  compile_kwargs: dict | None = None, **hyper: Any) -> Agent:
    """Build the e-prop actor-critic for ``spec`` (hyperparameters: see ``DEFAULTS``).

    Args:
        spec: what the agent sees and does.
        network: a user's :class:`AgentNetwork` whose learning rules are all ``eprop`` and whose
            output is an ``"LI"`` group of ``n_actions + 1`` units; default the built-in
            :func:`eprop_network`.
        backend: compile backend (``"jax"`` or a chip name).
        compile_kwargs: extra arguments of ``Network.compile``.

    Raises:
        ConfigError: unknown or invalid hyperparameter, or a network e-prop cannot train
            (host side, before any trace).
    """
    h = check_hyper("eprop_ac", hyper, DEFAULTS)
    positive("eprop_ac", **{k: h[k] for k in ("n_rec", "n_rf", "tau_mem", "tau_adapt", "tau_out",
                                              "v_th", "lr", "gamma_pd", "reward_scale")})
    unit_interval("eprop_ac", gamma=h["gamma"], lam=h["lam"])
    for k in ("adam_b1", "adam_b2"):  # 1 would divide Adam's bias correction by zero
        if not (isinstance(h[k], (int, float, np.floating, np.integer)) and 0 <= h[k] < 1):
            raise ConfigError(f"agent.eprop_ac.{k}", h[k], "a number in [0, 1)")
    if not 0 <= int(h["n_alif"]) <= int(h["n_rec"]):
        raise ConfigError("agent.eprop_ac.n_alif", h["n_alif"],
                          f"an integer in [0, n_rec={h['n_rec']}]")
    if h["feedback"] not in ("symmetric", "random"):
        raise ConfigError("agent.eprop_ac.feedback", h["feedback"], "'symmetric' or 'random'")
    if h["shaping"] not in SHAPING:
        from neurorl.errors import closest

        raise ConfigError("agent.eprop_ac.shaping", h["shaping"], f"one of {sorted(SHAPING)}",
                          closest(str(h["shaping"]), SHAPING))
    shaping = SHAPING[h["shaping"]]
    if shaping is not None and shaping[0] != spec.obs_dim:
        raise ConfigError("agent.eprop_ac.shaping", h["shaping"], f"a potential for "
                          f"{spec.obs_dim}-dimensional observations (it needs {shaping[0]})")
    if not isinstance(h["reward_norm"], (bool, np.bool_)):
        raise ConfigError("agent.eprop_ac.reward_norm", h["reward_norm"], "true or false")
    for k in ("std_min", "shaping_scale", "v_init"):
        v = h[k]
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not (
                np.isfinite(v) and v >= 0):
            raise ConfigError(f"agent.eprop_ac.{k}", v, "a finite number >= 0")
    W_rp = _check_replay(h, spec.n_envs, shaping is not None)
    an = network if network is not None else eprop_network(
        spec, **{k: h[k] for k in NETWORK_KEYS})
    rt = NetworkRuntime(an, spec.n_envs, spec.substeps, backend, **(compile_kwargs or {}))
    net = rt.net
    n_act, B = spec.n_actions, spec.n_envs
    n_out = n_act + 1
    n_std = 0 if spec.discrete else n_act
    out_g = an.output
    if net.groups[out_g].model.name != "LI" or net.groups[out_g].n != n_out:
        raise ConfigError("agent.network.output", out_g,
                          f"an 'LI' readout group of n_actions + 1 = {n_out} units")
    bad = [n for n, r in net.rules.items() if r.rule_name != "eprop"]
    if bad or not net.rules:
        raise ConfigError("agent.network.rules", bad or [], "e-prop rules on the plastic "
                          "connections (and at least one)")
    to_out = {c.source.name: n for n, c in net.connections.items() if c.target.name == out_g}
    rule_conn = {n: r.connection.name for n, r in net.rules.items()}
    targets = {n: r.connection.target.name for n, r in net.rules.items()}
    for n, tgt in targets.items():
        if tgt != out_g and tgt not in to_out and h["feedback"] == "symmetric":
            raise ConfigError(f"agent.network.rules.{n}", tgt, "a target group with a "
                              f"connection to the readout {out_g!r} (symmetric feedback), or "
                              "feedback: random")
    hidden = sorted({t for t in targets.values() if t != out_g})
    out_rules = sorted(n for n, t in targets.items() if t == out_g)
    conn_rule = {c: n for n, c in rule_conn.items()}
    if W_rp:
        into_out = sorted(n for n, c in net.connections.items() if c.target.name == out_g)
        if into_out != sorted(rule_conn[n] for n in out_rules):
            raise ConfigError("agent.network.rules", sorted(rule_conn.values()),
                              f"an e-prop rule on every connection into the readout {out_g!r} "
                              f"({into_out}): the replay reads the readout from their traces")
    rp_rules = sorted(rule_conn) if h["replay_traces"] else out_rules
    rtx = optax.chain(optax.clip_by_global_norm(h["replay_max_grad_norm"]),
                      optax.adam(h["replay_lr"], eps=1e-5))  # bptt_ac's Adam
    rp_kw = dict(discrete=spec.discrete, n_act=n_act, clip=float(h["replay_clip"]),
                 c_v=float(h["replay_c_v"]), c_ent=float(h["c_ent"]))
    n_mb = int(h["replay_minibatches"])
    online_w = {"all": set(rule_conn), "hidden": set(rule_conn) - set(out_rules),
                "none": set()}[h["replay_online"]]
    lr = (optax.linear_schedule(h["lr"], 0.0, int(h["lr_decay_steps"]))
          if h["lr_decay_steps"] else h["lr"])
    tx = optax.chain(optax.clip_by_global_norm(h["max_grad_norm"]),
                     optax.adam(lr, b1=h["adam_b1"], b2=h["adam_b2"], eps=h["adam_eps"]))
    gamma, lam, c_v, c_ent = h["gamma"], h["lam"], h["c_v"], h["c_ent"]
    a_low = jnp.asarray(spec.action_low or (0.0,), jnp.float32)
    a_high = jnp.asarray(spec.action_high or (0.0,), jnp.float32)
    v_onehot = jax.nn.one_hot(n_act, n_out, dtype=jnp.float32)
    log_std_min = float(np.log(h["std_min"])) if h["std_min"] > 0 else None
    phi = (lambda o: h["shaping_scale"] * shaping[1](o)) if shaping is not None else None
    meta = meta_lr(h["meta_lr_max"], h["meta_lr_k"], h["meta_lr_tau_mid"],
                   h["meta_lr_tau_long"], field="agent.eprop_ac.meta_lr")  # validates always
    meta = meta if h["meta_lr_max"] != 1.0 else None
    if not (is_finite_number(h["obs_adapt_tau"]) and h["obs_adapt_tau"] >= 0):
        raise ConfigError("agent.eprop_ac.obs_adapt_tau", h["obs_adapt_tau"],
                          "a number >= 0 (learn calls; 0: off)")
    adapt = input_adaptation(spec.obs_low, spec.obs_high, h["obs_adapt_tau"] or 1.0,
                             h["obs_adapt_z"], h["obs_adapt_zoom"],
                             field="agent.eprop_ac.obs_adapt")  # validates always
    adapt = adapt if h["obs_adapt_tau"] > 0 else None

    def batch(tree: Any) -> Any:
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (B,) + x.shape), tree)

    def params_of(weights: Any, b_out: Array, log_std: Array) -> dict[str, Any]:
        return {"w": {n: weights[c] for n, c in rule_conn.items()}, "b_out": b_out,
                "log_std": log_std}

    def extras(p: dict[str, Any]) -> dict[str, Array]:
        """The non-synaptic parameters kept in ``EpropState.params``."""
        return {"b_out": p["b_out"], "log_std": p["log_std"]}

    def init(key: Array) -> EpropState:
        k_net, k_fb = jax.random.split(key)
        weights, dyn, traces = rt.init(k_net)
        p = params_of(weights, h["v_init"] * v_onehot,
                      jnp.full((n_std,), h["log_std0"], jnp.float32))
        fb = {g: jax.random.normal(jax.random.fold_in(k_fb, i), (net.groups[g].n, n_out))
              / np.sqrt(net.groups[g].n) for i, g in enumerate(hidden)}
        zeros = jax.tree.map(jnp.zeros_like, p)
        sig = {"w": {n: jnp.zeros((net.groups[t].n,), jnp.float32) for n, t in targets.items()},
               "b_out": zeros["b_out"], "log_std": zeros["log_std"]}
        f = jnp.zeros((B,), jnp.float32)
        s0 = jnp.zeros((), jnp.float32)
        extra = {"phi_now": f, "phi_prev": f, "ret": f, "count": s0, "mean": s0, "m2": s0}
        if meta is not None:  # only then: the default state (and old checkpoints) unchanged
            extra["meta_lr"] = meta.init()
        if adapt is not None:
            extra["obs_adapt"] = adapt.init()
            extra["obs_now"] = jnp.zeros((B, spec.obs_dim), jnp.float32)
        if W_rp:
            raw_shape = () if spec.discrete else (n_act,)
            ebar = {n: traces[n].ebar.shape[1:] for n in rp_rules if n not in out_rules}
            extra["replay"] = rp.init_buffer(
                W_rp, B, {n: traces[n].p.shape[-1] for n in out_rules}, raw_shape,
                jnp.int32 if spec.discrete else jnp.float32, ebar)
            extra["replay_opt"] = rtx.init(replay_params(p))
        return EpropState(extras(p), weights, tx.init(p), fb, dyn, traces, batch(zeros), extra,
                          batch(sig), batch(sig), **td.init_fields(B), stats=AgentStats(f, f))

    def signals(weights: Any, fb: Any, d_out: Array) -> dict[str, Array]:
        """Learning signal of every rule's postsynaptic group (Bellec Eq. 4)."""
        out = {}
        for n, tgt in targets.items():
            if tgt == out_g:
                out[n] = d_out
            elif h["feedback"] == "symmetric":
                out[n] = weights[to_out[tgt]] @ d_out
            else:
                out[n] = fb[tgt] @ d_out
        return out

    def act_one(p: Any, weights: Any, fb: Any, dyn: Any, traces: Any, obs: Array, key: Array):
        dyn, traces, _, counts = rt.step_one(weights, dyn, traces, obs, None)
        out = dyn["neurons"][out_g].v + p["b_out"]
        action, g, gh, v, _ = head_one(p, weights, fb, out, key)
        return dyn, traces, action, g, gh, v, counts

    def head_one(p: Any, weights: Any, fb: Any, out: Array, key: Array):
        """Sample from one env's readout ``out``; this step's learning signals."""
        raw, _ = sample_action(key, out, p["log_std"], spec.discrete, n_act)
        lp = lambda o, ls: log_prob_entropy(o, ls, raw, spec.discrete, n_act)[0]
        ent = lambda o, ls: log_prob_entropy(o, ls, raw, spec.discrete, n_act)[1]
        dlp_o, dlp_ls = jax.grad(lp, argnums=(0, 1))(out, p["log_std"])
        dh_o, dh_ls = jax.grad(ent, argnums=(0, 1))(out, p["log_std"])
        d_out = dlp_o + c_v * v_onehot
        # learning signals only ([n_post] per rule): the per-synapse products L_j ebar_ji are
        # formed in ``learn``, fused with the tag update, instead of being stored
        g = {"w": signals(weights, fb, d_out), "b_out": d_out, "log_std": dlp_ls}
        gh = {"w": signals(weights, fb, dh_o), "b_out": dh_o, "log_std": dh_ls}
        action = raw if spec.discrete else jnp.clip(raw, a_low, a_high)
        return action, g, gh, out[n_act], raw

    def replay_params(p: dict[str, Any]) -> dict[str, Any]:
        """The replay's parameters: the readout rules' weights (every rule's with trace
        replay), readout bias and log std."""
        return {"w": {n: p["w"][n] for n in rp_rules}, "b_out": p["b_out"],
                "log_std": p["log_std"]}

    def replay_grads(q: dict[str, Any], buf: rp.ReplayBuffer, adv: Array, ret: Array,
                     idx: Array, fb: Any) -> dict[str, Any]:
        """Gradient of the clipped PPO loss over envs ``idx`` of the window: exact on the
        readout (linear in the stored traces); with trace replay, e-prop's
        ``sum_t L_t ebar_t`` on the hidden rules (Bellec Eq. 4 learning signals of the loss's
        output errors, frozen traces)."""
        sel = lambda a: jnp.take(a, idx, axis=1)
        xs = {n: sel(buf.x[n]) for n in out_rules}
        args = (sel(buf.raw), sel(buf.logp), sel(buf.value), sel(adv), sel(ret))
        out = rp.readout({n: q["w"][n] for n in out_rules}, q["b_out"], xs)
        d_out, d_ls = jax.grad(lambda o, ls: rp.ppo_loss_of_outputs(o, ls, *args, **rp_kw),
                               argnums=(0, 1))(out, q["log_std"])
        fbm = {n: (q["w"][conn_rule[to_out[targets[n]]]] if h["feedback"] == "symmetric"
                   else fb[targets[n]]) for n in buf.ebar}  # [n_post, n_out]
        g_w = rp.eprop_grads(d_out, xs, {n: sel(e) for n, e in buf.ebar.items()}, fbm)
        g_w = {n: g * net.structure[rule_conn[n]]["mask"] for n, g in g_w.items()}
        return {"w": g_w, "b_out": jnp.sum(d_out, axis=(0, 1)), "log_std": d_ls}

    def run_replay(params: Any, weights: Any, buf: rp.ReplayBuffer, opt0: Any, fb: Any,
                   x_new: Any, key: Array, gain: Any = 1.0):
        """PPO epochs on the full window, bootstrapped from the readout of the traces
        ``x_new`` of the step after it. Returns ``(params, weights, opt_state)``."""
        full = params_of(weights, params["b_out"], params["log_std"])
        q0 = replay_params(full)
        v_boot = rp.readout({n: q0["w"][n] for n in out_rules}, q0["b_out"], x_new)[:, n_act]
        adv, ret = ppo.gae(buf.value, buf.reward, buf.term, buf.trunc, v_boot, gamma,
                          h["replay_lambda"])

        def epoch(carry, k):
            perm = jax.random.permutation(k, B).reshape(n_mb, B // n_mb)

            def minibatch(carry, idx):
                q, opt = carry
                upd, opt = rtx.update(replay_grads(q, buf, adv, ret, idx, fb), opt, q)
                if h["replay_meta_lr"]:
                    upd = jax.tree.map(lambda u: gain * u, upd)
                if h["replay_hidden_scale"] != 1.0:
                    upd = {**upd, "w": {n: u if n in out_rules else h["replay_hidden_scale"] * u
                                        for n, u in upd["w"].items()}}
                return (optax.apply_updates(q, upd), opt), None

            return jax.lax.scan(minibatch, carry, perm)[0], None

        (q, opt), _ = jax.lax.scan(epoch, (q0, opt0),
                                   jax.random.split(key, int(h["replay_epochs"])))
        weights = dict(weights)
        for n in rp_rules:
            weights[rule_conn[n]] = q["w"][n]
        weights = net.constrain(weights, project=rt.project_updates)
        params = {"b_out": q["b_out"], "log_std": q["log_std"]}
        if log_std_min is not None:
            params["log_std"] = jnp.maximum(params["log_std"], log_std_min)
        return params, weights, opt

    def act_replay(state: EpropState, dyn: Any, traces: Any, seen: Array, key: Array):
        """``act`` with the replay on: act as without it, and store the step in the window."""
        dyn, traces, _, counts = jax.vmap(rt.step_one, in_axes=(None, 0, 0, 0, None))(
            state.weights, dyn, traces, seen, None)
        out = dyn["neurons"][out_g].v + state.params["b_out"][None, :]
        action, g, gh, v, raw = jax.vmap(head_one, in_axes=(None, None, None, 0, 0))(
            state.params, state.weights, state.feedback, out, jax.random.split(key, B))
        ls = state.params["log_std"]
        lp = jax.vmap(lambda o, r: log_prob_entropy(o, ls, r, spec.discrete, n_act)[0])(out, raw)
        buf = state.extra["replay"]
        i = buf.ptr
        buf = buf.replace(
            x={n: buf.x[n].at[i].set(traces[n].p) for n in out_rules},
            ebar={n: buf.ebar[n].at[i].set(traces[n].ebar) for n in buf.ebar},
            raw=buf.raw.at[i].set(raw), logp=buf.logp.at[i].set(lp),
            value=buf.value.at[i].set(v))
        state = state.replace(extra={**state.extra, "replay": buf})
        return dyn, traces, action, g, gh, v, counts, state

    def update(state: EpropState, obs: Array, key: Array) -> EpropState:
        """The replay, called by the training loop after every ``replay_window`` act/learn
        steps with the next observation (as ``bptt_ac``'s PPO update; an outer scan over
        windows, no ``cond``). ``V`` of the next step (GAE's bootstrap) comes from stepping the
        network on ``obs`` without keeping the step (``act`` repeats it: the encoder is
        deterministic). Afterwards the readout membrane is set to what the new weights give
        on the same spikes (``sum_c x_c W_c``), so the next action reads the new weights."""
        dyn0, tr0 = rt.fresh()
        dyn = reset_envs(state.reset_next, state.dyn, dyn0)
        traces = reset_envs(state.reset_next, state.traces, tr0)
        seen = obs if adapt is None else adapt.apply(state.extra["obs_adapt"], obs)
        _, tr_next, _, _ = jax.vmap(rt.step_one, in_axes=(None, 0, 0, 0, None))(
            state.weights, dyn, traces, seen, None)
        gain = 1.0
        if h["replay_meta_lr"]:  # the gain of the current state (no valid env: unchanged)
            gain, _ = meta.update(state.extra["meta_lr"], state.v_prev, jnp.zeros((B,), bool))
        params, weights, opt = run_replay(
            state.params, state.weights, state.extra["replay"], state.extra["replay_opt"],
            state.feedback, {n: tr_next[n].p for n in out_rules}, key, gain)
        v = rp.readout({n: weights[rule_conn[n]] for n in out_rules}, 0.0,
                       {n: state.traces[n].p for n in out_rules})
        dyn = {**state.dyn, "neurons": {**state.dyn["neurons"],
                                        out_g: state.dyn["neurons"][out_g].replace(v=v)}}
        buf = state.extra["replay"].replace(ptr=jnp.zeros((), jnp.int32))
        return state.replace(params=params, weights=weights, dyn=dyn,
                             extra={**state.extra, "replay": buf, "replay_opt": opt})

    def act(state: EpropState, obs: Array, key: Array) -> tuple[Array, EpropState]:
        dyn0, tr0 = rt.fresh()
        dyn = reset_envs(state.reset_next, state.dyn, dyn0)
        traces = reset_envs(state.reset_next, state.traces, tr0)
        seen = obs
        if adapt is not None:  # the fields see the rescaled signal; learn updates the stats
            state = state.replace(extra={**state.extra, "obs_now": jnp.asarray(obs, jnp.float32)})
            seen = adapt.apply(state.extra["obs_adapt"], obs)
        if W_rp:
            dyn, traces, action, g, gh, v, counts, state = act_replay(state, dyn, traces, seen,
                                                                      key)
        else:
            keys = jax.random.split(key, B)
            dyn, traces, action, g, gh, v, counts = jax.vmap(
                act_one, in_axes=(None, None, None, 0, 0, 0, 0))(
                state.params, state.weights, state.feedback, dyn, traces, seen, keys)
        spikes, synops = rt.activity(counts)
        if phi is not None:
            state = state.replace(extra={**state.extra, "phi_now": jax.vmap(phi)(obs)})
        return action, state.replace(dyn=dyn, traces=traces, g_now=g, gh_now=gh, v_now=v,
                                     stats=AgentStats(spikes + 0.0 * v, synops + 0.0 * v))

    def learn(state: EpropState, reward: Array, terminated: Array, truncated: Array
              ) -> EpropState:
        term_p, trunc_p = state.term_prev, state.trunc_prev
        ex = state.extra
        # F = gamma Phi(s') - Phi(s), Phi(terminal) = 0; a truncated episode's s' is unseen
        # (the next obs is a reset), so Phi(s) stands in for it, as V(s) does for the bootstrap
        shaped = None if phi is None else h["reward_scale"] * td.potential_difference(
            ex["phi_now"], ex["phi_prev"], term_p, trunc_p, gamma)
        delta = td.td_error(state.r_prev, state.v_now, state.v_prev, term_p, trunc_p,
                            state.has_prev, gamma, shaped)
        keep = td.trace_decay(gamma, lam, term_p, trunc_p)
        # synapses: grad = -mean_b(delta_b tag_b) - c_H mean_b(L^H_b ebar_b); the tag then
        # takes this step's L_b ebar_b (Bellec Eq. 5 with a TD(lambda) filter)
        grads_w, tag_w = {}, {}
        for n, c in rule_conn.items():
            ebar, mask = state.traces[n].ebar, net.structure[c]["mask"]
            grads_w[n] = mask * (-jnp.einsum("b,bij->ij", delta, state.tag["w"][n]) / B
                                 - c_ent * jnp.einsum("bij,bj->ij", ebar, state.gh_now["w"][n])
                                 / B)
            tag_w[n] = (keep[:, None, None] * state.tag["w"][n]
                        + ebar * state.g_now["w"][n][:, None, :])

        def descent(tag: Array, gh: Array) -> Array:
            d = delta.reshape((B,) + (1,) * (tag.ndim - 1))
            return -jnp.mean(d * tag, axis=0) - c_ent * jnp.mean(gh, axis=0)

        grads = {"w": grads_w, "b_out": descent(state.tag["b_out"], state.gh_now["b_out"]),
                 "log_std": descent(state.tag["log_std"], state.gh_now["log_std"])}
        if W_rp and h["replay_online"] != "all":  # these learn by the replay only
            grads = {"w": {n: g if n in online_w else jnp.zeros_like(g)
                           for n, g in grads["w"].items()},
                     "b_out": jnp.zeros_like(grads["b_out"]),
                     "log_std": jnp.zeros_like(grads["log_std"])}
        # the optimizer's parameters are rebuilt from the state's weights (never a second copy)
        full = params_of(state.weights, state.params["b_out"], state.params["log_std"])
        updates, opt_state = tx.update(grads, state.opt_state, full)
        if meta is not None:  # the value of the previous step is the one this update learns on
            gain, m_state = meta.update(ex["meta_lr"], state.v_prev, state.has_prev)
            updates = jax.tree.map(lambda u: gain * u, updates)
            ex = {**ex, "meta_lr": m_state}
        if adapt is not None:
            ex = {**ex, "obs_adapt": adapt.update(ex["obs_adapt"], ex["obs_now"],
                                                  jnp.ones((B,), bool))}
        params = optax.apply_updates(full, updates)
        weights = dict(state.weights)
        for n, c in rule_conn.items():
            weights[c] = params["w"][n]
        weights = net.constrain(weights, project=rt.project_updates)
        params = extras(params)
        if log_std_min is not None:
            params["log_std"] = jnp.maximum(params["log_std"], log_std_min)
        r = h["reward_scale"] * reward.astype(jnp.float32)
        ex = {**ex, "phi_prev": ex["phi_now"]}
        if h["reward_norm"]:
            # the running std of the discounted return (Welford over every env step; as in
            # Engstrom et al. 2020's PPO reward scaling); the mean is not subtracted
            ret = ex["ret"] * gamma + r
            n_b = jnp.float32(B)
            count = ex["count"] + n_b
            d = jnp.mean(ret) - ex["mean"]
            mean = ex["mean"] + d * n_b / count
            m2 = ex["m2"] + jnp.sum((ret - jnp.mean(ret)) ** 2) + d * d * ex["count"] * n_b / count
            r = r / jnp.sqrt(m2 / count + 1e-8)
            ex = {**ex, "ret": jnp.where(terminated | truncated, 0.0, ret), "count": count,
                  "mean": mean, "m2": m2}
        if W_rp:  # the reward the TD error learns from, and the episode ends, of this step
            buf = ex["replay"]
            i = buf.ptr
            ex = {**ex, "replay": buf.replace(
                reward=buf.reward.at[i].set(r), term=buf.term.at[i].set(terminated),
                trunc=buf.trunc.at[i].set(truncated), ptr=i + 1)}

        def retag(tag: Array, g: Array) -> Array:
            return keep.reshape((B,) + (1,) * (tag.ndim - 1)) * tag + g

        tag = {"w": tag_w, "b_out": retag(state.tag["b_out"], state.g_now["b_out"]),
               "log_std": retag(state.tag["log_std"], state.g_now["log_std"])}
        return state.replace(
            params=params, weights=weights, opt_state=opt_state, tag=tag, extra=ex,
            **td.advance(state.v_now, r, terminated, truncated))

    def weights_of(state: EpropState) -> Any:
        return state.weights

    agent = Agent("eprop_ac", spec, init, act, learn, weights_of,
                  learned=("params", "weights", "opt_state"))
    if W_rp:
        agent = agent._replace(update_every=W_rp, update=update)
    return agent._replace(runtime=rt)


def _check_replay(h: dict[str, Any], n_envs: int, shaped: bool) -> int:
    """Validate the ``replay_*`` hyperparameters (host side); the window (0: off)."""
    from neurorl.errors import closest

    def integer(k: str, lo: int) -> int:
        v = h[k]
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ConfigError(f"agent.eprop_ac.{k}", v, f"an integer >= {lo}")
        return int(v)

    W = integer("replay_window", 0)
    integer("replay_epochs", 1)
    n_mb = integer("replay_minibatches", 1)
    positive("eprop_ac", **{k: h[k] for k in ("replay_lr", "replay_clip",
                                              "replay_max_grad_norm")})
    unit_interval("eprop_ac", replay_lambda=h["replay_lambda"])
    for k in ("replay_c_v", "replay_hidden_scale"):
        v = h[k]
        if isinstance(v, bool) or not (is_finite_number(v) and v >= 0):
            raise ConfigError(f"agent.eprop_ac.{k}", v, "a finite number >= 0")
    if h["replay_online"] not in REPLAY_ONLINE:
        raise ConfigError("agent.eprop_ac.replay_online", h["replay_online"],
                          f"one of {list(REPLAY_ONLINE)}",
                          closest(str(h["replay_online"]), REPLAY_ONLINE))
    for k in ("replay_traces", "replay_meta_lr"):
        if not isinstance(h[k], (bool, np.bool_)):
            raise ConfigError(f"agent.eprop_ac.{k}", h[k], "true or false")
    if W and h["replay_meta_lr"] and h["meta_lr_max"] == 1.0:
        raise ConfigError("agent.eprop_ac.replay_meta_lr", True, "false unless the "
                          "neuromodulated gain is on (meta_lr_max > 1)")
    if W and n_envs % n_mb:
        raise ConfigError("agent.eprop_ac.replay_minibatches", n_mb,
                          f"a divisor of n_envs={n_envs}")
    if W and shaped:
        raise ConfigError("agent.eprop_ac.replay_window", W, "0 with reward shaping (the "
                          "replay's GAE has no potential term)", "0")
    return W
