"""TD-LTP spiking actor-critic (Fremaux, Sprekeler & Gerstner 2013) as a recipe on an N-HAL network.

The paper's model, in the discrete time of the library's simulator (substep ``dt`` = 1 ms, one
env step = K substeps; time constants of the critic's TD error are in env steps):

* **Input: place cells.** Neuron ``j`` has a centre ``c_j`` on a conjunctive grid over the
  observation box (``n_place`` centres per dimension, ``n_place ** obs_dim`` cells; Fremaux et al.
  tile the cart-pole's 4-D state with place cells in the same way) and the activation
  ``A_j(s) = prod_d exp(-(s_d - c_jd)^2 / (2 sigma_d^2))``; it emits regular spikes at ``A_j``
  spikes per substep (:func:`place_cells`). ``encoding="rf"`` uses per-dimension Gaussian fields
  instead (:func:`neurorl.encoding.gaussian_rf`).
* **Critic.** ``n_critic`` LIF neurons with a Gaussian noise current (stochastic spiking). The
  value is read from their activity (the paper's Eq. for V: ``V(t) = nu / N sum_i (kappa * Y_i)(t)
  + V_0``, with the kernel ``kappa`` reduced here to the env step's box)::

      V_t = v_scale * (spikes of the critic in env step t) / (n_critic K) + v0

* **TD error** (the paper's continuous-time TD error, after Doya 2000)::

      delta(t) = r(t) - V(t) / tau_r + dV/dt

  discretised per env step (``Delta t = 1``, backward difference): ``delta_t = r_t - V_t / tau_r
  + V_t - V_{t-1} = r_t + (1 - 1/tau_r) V_t - V_{t-1}``, i.e. the discrete TD error with
  ``gamma = 1 - 1/tau_r``. ``V_t = 0`` after a terminal transition; after a truncation the
  step's own value is bootstrapped. ``r_t = reward_scale * reward`` (no shaping).
* **TD-LTP** (the paper's learning rule for the critic and, with the same delta, the actor)::

      dw_ij/dt = eta delta(t) (kappa * [Y_i (epsilon * X_j)])(t)

  ``X_j`` presynaptic spikes, ``Y_i`` postsynaptic spikes, ``epsilon`` the EPSP kernel
  (exponential, ``tau_eps``), ``kappa`` the eligibility kernel (exponential, ``tau_kappa``; a
  difference of exponentials in the paper). This is the ``rstdp`` rule of
  :mod:`neurorl.plasticity.rstdp` with ``a_minus = 0`` (only pre-before-post coincidences, the
  "LTP" half of the STDP window) and ``tau_plus = tau_eps``, ``tau_c = tau_kappa``: every term is
  local to the synapse (its pre trace, its post spike) times the one broadcast ``delta``.
  The update of env step t uses the eligibility at the end of step t - 1 (the state whose value
  ``V_{t-1}`` the TD error judges) and is applied once per env step, averaged over the agent's
  envs (shared weights), then clipped to ``+-w_max``.
* **Actor.** ``n_actions x pop`` LIF neurons with a noise current (exploration), lateral
  connectivity (delay 1 substep) exciting the own population and inhibiting the others (the
  paper's ring of action cells with local excitation and global inhibition, for discrete
  actions), and the population vote: most spikes over the K substeps wins (the population vector
  of the paper for a ring of discrete actions). The actor's input weights learn with TD-LTP and
  the same ``delta``. ``gate="signed"`` optionally feeds the decision back onto each step's
  eligibility (Urbanczik & Senn 2009; see :mod:`neurorl.agents.rstdp_agent`), ``"none"`` is the
  paper.

References:
    Fremaux, Sprekeler & Gerstner (2013). Reinforcement learning using a continuous time
    actor-critic framework with spiking neurons. PLoS Comput. Biol. 9(4):e1003024.
    Doya (2000). Reinforcement learning in continuous time and space. Neural Comput.
    12(1):219-245 (the continuous TD error).
    Urbanczik & Senn (2009). Reinforcement learning in populations of spiking neurons.
    Nat. Neurosci. 12(3):250-252.
"""

from __future__ import annotations

import itertools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from neurorl.agents import td
from neurorl.agents.base import Agent, AgentSpec, AgentStats, check_hyper, positive
from neurorl.agents.network_agent import AgentNetwork, NetworkRuntime, reset_envs
from neurorl.core.network import Connection, LearningRule, Network, NeuronGroup
from neurorl.encoding import Encoder, gaussian_rf
from neurorl.errors import ConfigError

Array = jax.Array

DEFAULTS: dict[str, Any] = {
    "encoding": "place",  # "place" (conjunctive grid, Fremaux 2013) or "rf" (per dimension)
    "n_place": 5,  # place-cell centres per observation dimension (n_place ** obs_dim cells)
    "place_width": 1.0,  # sigma in units of the centre spacing
    "n_rf": 10,  # per-dimension fields for encoding="rf"
    "n_critic": 50,
    "pop": 10,  # actor neurons per action
    "tau_mem": 10.0,  # ms
    "v_th": 1.0,
    "noise_std": 1.0,  # actor noise current per substep (units of v_th): exploration
    "critic_noise_std": 1.0,
    "w_init": 0.1,  # input weights ~ U(0, w_init)
    "w_max": 1.0,
    "tau_eps": 20.0,  # ms, EPSP kernel epsilon (presynaptic trace)
    "tau_kappa": 200.0,  # ms, eligibility kernel kappa
    "lr": 3e-5,  # actor eta
    "lr_critic": 1e-3,  # critic eta
    "tau_r": 100.0,  # env steps, reward discount time constant (gamma = 1 - 1/tau_r)
    "v_scale": 2.0,  # nu: value of a critic firing one spike per substep
    "v0": -1.0,  # V_0 (negative: a silent critic codes a low value)
    "reward_scale": 0.01,
    "lateral_exc": 0.0,  # weight onto the own population's other neurons (delay 1)
    "lateral_inh": 0.0,  # summed inhibition onto each neuron of another population
    "gate": "none",  # "none" (the paper), "signed" or "action" (decision feedback)
    "normalize": False,  # subtract each actor neuron's mean dW over its inputs
}


def place_cells(low: Any, high: Any, n_per_dim: int, substeps: int,
                width: float = 1.0) -> Encoder:
    """Conjunctive place-cell encoder with regular spikes.

    Cell ``j`` has centre ``c_j`` on the grid ``linspace(low_d, high_d, n_per_dim)`` of every
    dimension and activation ``A_j(s) = prod_d exp(-(s_d - c_jd)^2 / (2 sigma_d^2))``,
    ``sigma_d = width (high_d - low_d) / (n_per_dim - 1)``; over the K substeps it integrates
    ``A_j`` and spikes (subtracting 1) when the sum passes 0.999, as the regular mode of
    :func:`neurorl.encoding.gaussian_rf`.

    Args:
        low: lower grid edge per dimension (obs units).
        high: upper grid edge per dimension.
        n_per_dim: centres per dimension (>= 2).
        substeps: K.
        width: sigma in units of the centre spacing (> 0).

    Returns:
        An :class:`~neurorl.encoding.Encoder` with ``n_in = n_per_dim ** obs_dim``.

    Raises:
        ConfigError: invalid sizes or bounds (host side).
    """
    low_a = np.atleast_1d(np.asarray(low, np.float64))
    high_a = np.atleast_1d(np.asarray(high, np.float64))
    if low_a.shape != high_a.shape or np.any(high_a <= low_a) or not np.all(
            np.isfinite(np.concatenate([low_a, high_a]))):
        raise ConfigError("encoder.place_cells.low/high", (low, high), "finite bounds, high > low")
    if not isinstance(n_per_dim, (int, np.integer)) or n_per_dim < 2:
        raise ConfigError("agent.td_ac.n_place", n_per_dim, "an integer >= 2")
    if not width > 0:
        raise ConfigError("agent.td_ac.place_width", width, "a number > 0")
    d, n, k = low_a.shape[0], int(n_per_dim), int(substeps)
    if n**d > 20_000:
        raise ConfigError("agent.td_ac.n_place", n_per_dim,
                          f"at most {int(20_000 ** (1 / d))} for {d} observation dimensions "
                          "(the grid has n_place ** obs_dim cells)")
    axes = [np.linspace(lo, hi, n) for lo, hi in zip(low_a, high_a, strict=True)]
    centres = jnp.asarray(np.array(list(itertools.product(*axes))), jnp.float32)  # [n^d, d]
    sigma = jnp.asarray(width * (high_a - low_a) / (n - 1), jnp.float32)

    def encode(obs: Array, key: Any = None) -> Array:
        obs = jnp.asarray(obs, jnp.float32)
        z = (obs[None, :] - centres) / sigma[None, :]
        a = jnp.exp(-0.5 * jnp.sum(z * z, axis=1))

        def body(v: Array, _: None) -> tuple[Array, Array]:
            v = v + a
            s = (v > 0.999).astype(jnp.float32)
            return v - s, s

        return jax.lax.scan(body, jnp.zeros_like(a), None, length=k)[1]

    return Encoder("place_cells", n**d, False, encode)


def td_ac_network(spec: AgentSpec, **hyper: Any) -> AgentNetwork:
    """The TD-LTP actor-critic's network.

    Groups ``"obs"`` (``"Input"``, place cells), ``"critic"`` (LIF, ``n_critic``) and
    ``"actions"`` (LIF, ``n_actions x pop``, action-major); plastic connections ``"critic"``
    (obs -> critic) and ``"actor"`` (obs -> actions), delay 0, ``W ~ U(0, w_init)``, each with
    the ``rstdp`` rule as TD-LTP (``a_minus = 0``); a fixed lateral connection ``"lateral"``
    (actions -> actions, delay 1) when ``lateral_exc`` or ``lateral_inh`` is non-zero.
    """
    h = {**DEFAULTS, **hyper}
    K = spec.substeps
    if h["encoding"] == "place":
        enc = place_cells(spec.obs_low, spec.obs_high, int(h["n_place"]), K,
                          float(h["place_width"]))
    else:
        enc = gaussian_rf(spec.obs_low, spec.obs_high, int(h["n_rf"]), K, mode="regular")
    pop, n_act = int(h["pop"]), spec.n_actions
    lif = {"tau_mem": h["tau_mem"], "v_th": h["v_th"]}
    obs = NeuronGroup(enc.n_in, "Input", name="obs")
    critic = NeuronGroup(int(h["n_critic"]), "LIF", lif, name="critic")
    act = NeuronGroup(n_act * pop, "LIF", lif, name="actions")
    w0 = {"init": "uniform", "low": 0.0, "high": float(h["w_init"])}
    c_c = Connection(obs, critic, weight=w0, delay=0, name="critic")
    c_a = Connection(obs, act, weight=w0, delay=0, name="actor")
    parts: list[Any] = [obs, critic, act, c_c, c_a]
    for c, lr in ((c_c, h["lr_critic"]), (c_a, h["lr"])):
        parts.append(LearningRule(c, "rstdp", {
            "a_plus": 1.0, "a_minus": 0.0, "tau_plus": h["tau_eps"], "tau_minus": h["tau_eps"],
            "tau_c": h["tau_kappa"], "lr": lr, "modulator_kind": "td"}, name=c.name))
    if h["lateral_exc"] or h["lateral_inh"]:
        same = np.kron(np.eye(n_act), np.ones((pop, pop)))
        w_lat = (h["lateral_exc"] * (same - np.eye(n_act * pop))
                 - h["lateral_inh"] / pop * (1.0 - same))
        parts.append(Connection(act, act, weight=w_lat.astype(np.float32), delay=1,
                                name="lateral"))
    noise = {"actions": float(h["noise_std"]), "critic": float(h["critic_noise_std"])}
    return AgentNetwork(Network(*parts), enc, input="obs", output="actions", noise=noise,
                        spiking_input=True)


@struct.dataclass
class TdAcState:
    """Agent state: shared network ``weights``; per-env [B] dynamic states, rule states
    (``traces``), their snapshot at the end of the previous step (``snap``) and TD bookkeeping."""

    weights: Any
    dyn: Any
    traces: Any
    snap: Any
    v_now: Array
    v_prev: Array
    r_prev: Array
    term_prev: Array
    trunc_prev: Array
    has_prev: Array
    reset_next: Array
    stats: AgentStats


def td_error(r_prev: Array, v_now: Array, v_prev: Array, term_prev: Array, trunc_prev: Array,
             has_prev: Array, tau_r: float) -> Array:
    """``delta_t = r_t - V_t / tau_r + (V_t - V_{t-1})`` (the paper's TD error, Delta t = 1).

    ``V_t`` is 0 after a terminal transition and the previous step's value after a truncation
    (bootstrap: the truncated episode's next state is not observed); 0 before the first step.
    """
    boot = td.next_value(v_now, v_prev, term_prev, trunc_prev)
    delta = r_prev - boot / tau_r + (boot - v_prev)
    return jnp.where(has_prev, delta, 0.0)


def make_td_ac(spec: AgentSpec, network: AgentNetwork | None = None, backend: str = "jax",
               compile_kwargs: dict | None = None, **hyper: Any) -> Agent:
    """Build the TD-LTP spiking actor-critic for a discrete-action ``spec`` (``DEFAULTS``).

    Args:
        spec: what the agent sees and does.
        network: a user's :class:`AgentNetwork` with a spiking ``"critic"`` group, plastic
            connections ``"critic"`` and ``"actor"`` carrying ``rstdp`` rules, and an output
            group of ``n_actions x pop`` spiking neurons; default :func:`td_ac_network`.
        backend: compile backend (``"jax"`` or a chip name).
        compile_kwargs: extra arguments of ``Network.compile``.

    Returns:
        The :class:`~neurorl.agents.base.Agent`.

    Raises:
        ConfigError: unknown/invalid hyperparameter, continuous actions, or a network this recipe
            cannot train (host side).

    References:
        Fremaux, Sprekeler & Gerstner (2013), PLoS Comput. Biol. 9(4):e1003024.
    """
    h = check_hyper("td_ac", hyper, DEFAULTS)
    if not spec.discrete:
        raise ConfigError("agent", "td_ac", "discrete action spaces only (population vote)")
    if h["encoding"] not in ("place", "rf"):
        raise ConfigError("agent.td_ac.encoding", h["encoding"], "'place' or 'rf'")
    if h["gate"] not in ("action", "signed", "none"):
        raise ConfigError("agent.td_ac.gate", h["gate"], "'none', 'signed' or 'action'")
    positive("td_ac", **{k: h[k] for k in ("n_place", "n_rf", "n_critic", "pop", "tau_mem", "v_th",
                                           "w_max", "tau_eps", "tau_kappa", "lr", "lr_critic",
                                           "reward_scale", "v_scale", "place_width")})
    if not h["tau_r"] >= 1.0:
        raise ConfigError("agent.td_ac.tau_r", h["tau_r"], "a number >= 1 (env steps)")
    an = network if network is not None else td_ac_network(spec, **h)
    rt = NetworkRuntime(an, spec.n_envs, spec.substeps, backend, **(compile_kwargs or {}))
    net = rt.net
    B, n_act, K = spec.n_envs, spec.n_actions, spec.substeps
    out_g = an.output
    for what, name in (("groups", "critic"), ("connections", "critic"),
                       ("connections", "actor"), ("rules", "critic"), ("rules", "actor")):
        if name not in getattr(net, what):
            raise ConfigError(f"agent.network.{what}", sorted(getattr(net, what)),
                              f"a {what[:-1]} named {name!r}")
    for name in ("critic", "actor"):
        if net.rules[name].rule_name != "rstdp":
            raise ConfigError(f"agent.network.rules.{name}", net.rules[name].rule_name,
                              "the 'rstdp' rule (TD-LTP: a_minus = 0)")
    out_grp = net.groups[out_g]
    if out_grp.model.name in ("LI", "Input") or out_grp.n % n_act:
        raise ConfigError("agent.network.output", out_g, "a spiking group of n_actions x pop "
                          f"neurons (n_actions = {n_act}; it has {out_grp.n})")
    pop = out_grp.n // n_act
    n_c = net.groups["critic"].n
    conn = {n: r.connection.name for n, r in net.rules.items()}
    tau_r, v_scale, v0 = float(h["tau_r"]), float(h["v_scale"]), float(h["v0"])
    win_g = np.arange(out_grp.n) // pop if h["gate"] != "none" else None
    signed = h["gate"] == "signed"
    # eligibility decay over one env step (the gated part is this step's increment only)
    d_k = float(np.exp(-K / float(h["tau_kappa"])))

    def init(key: Array) -> TdAcState:
        weights, dyn, traces = rt.init(key)
        f = jnp.zeros((B,), jnp.float32)
        return TdAcState(weights, dyn, traces, traces, **td.init_fields(B),
                         stats=AgentStats(f, f))

    def act_one(w: Any, dyn: Any, traces: Any, obs: Array, key: Array):
        dyn, new_tr, _, counts = rt.step_one(w, dyn, traces, obs, key)
        votes = counts[out_g].reshape(n_act, pop).sum(axis=1)
        action = jnp.argmax(votes).astype(jnp.int32)
        if win_g is not None:
            g = (jnp.asarray(win_g) == action).astype(jnp.float32)
            if signed:
                g = g - (1.0 - g) / max(n_act - 1, 1)
            e0, e1 = traces["actor"].eligibility, new_tr["actor"].eligibility
            new_tr = {**new_tr, "actor": new_tr["actor"].replace(
                eligibility=d_k * e0 + (e1 - d_k * e0) * g[None, :])}
        v = v_scale * jnp.sum(counts["critic"]) / (n_c * K) + v0
        spikes, synops = rt.activity(counts)
        return dyn, new_tr, action, v, spikes + 0.0, synops + 0.0

    def act(state: TdAcState, obs: Array, key: Array) -> tuple[Array, TdAcState]:
        dyn0, tr0 = rt.fresh()
        dyn = reset_envs(state.reset_next, state.dyn, dyn0)
        traces = reset_envs(state.reset_next, state.traces, tr0)
        dyn, traces, action, v, spikes, synops = jax.vmap(
            act_one, in_axes=(None, 0, 0, 0, 0))(
            state.weights, dyn, traces, obs, jax.random.split(key, B))
        return action, state.replace(dyn=dyn, traces=traces, v_now=v,
                                     stats=AgentStats(spikes, synops))

    def learn(state: TdAcState, reward: Array, terminated: Array, truncated: Array
              ) -> TdAcState:
        delta = td_error(state.r_prev, state.v_now, state.v_prev, state.term_prev,
                         state.trunc_prev, state.has_prev, tau_r)
        weights = dict(state.weights)
        for n, r_ in net.rules.items():
            c = conn[n]
            grads, _ = jax.vmap(r_.rule.update, in_axes=(0, 0, None))(state.snap[n], delta,
                                                                     weights[c])
            dw = -jnp.mean(grads, axis=0) * net.structure[c]["mask"]
            if h["normalize"] and n == "actor":
                dw = dw - jnp.mean(dw, axis=0, keepdims=True)
            weights[c] = jnp.clip(weights[c] + dw, -h["w_max"], h["w_max"])
        weights = net.constrain(weights, project=rt.project_updates)
        r = h["reward_scale"] * reward.astype(jnp.float32)
        return state.replace(weights=weights, snap=state.traces,
                             **td.advance(state.v_now, r, terminated, truncated))

    def weights_of(state: TdAcState) -> Any:
        return state.weights

    return Agent("td_ac", spec, init, act, learn, weights_of, runtime=rt)


__all__ = ["DEFAULTS", "make_td_ac", "place_cells", "td_ac_network", "td_error"]
