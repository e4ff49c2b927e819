"""R-STDP agent, as a recipe on an N-HAL network: spiking actor with a leaky TD critic.

Network (built by :func:`rstdp_network`, or any user network whose rules are ``rstdp`` /
``stdp`` and whose output is a spiking population of ``n_actions x pop`` neurons): observation
-> Gaussian receptive fields emitting regular spikes (PopSAN deterministic mode) into an
``"Input"`` group -> delay-0 connection carrying the ``rstdp`` rule of
:mod:`neurorl.plasticity.rstdp` -> LIF action populations with a Gaussian noise current
(``AgentNetwork.noise``: the exploration; stochastic neurons make R-STDP a policy-gradient
estimator, Florian 2007 Sec. 4) -> population vote (most spikes over the K substeps wins; ties to
the lowest index). Florian 2007 / Fremaux & Gerstner 2016 structure.

Plasticity: the simulator keeps every rule's eligibility (one block update per env step, the
rank-2K product of the rule's ``accumulate_block``); with traces ``x = lam x + s``, every substep
    ``E <- d_e E + A_plus x_pre (x) s_post - A_minus s_pre (x) x_post``  (Florian 2007 MSTDPET)
The population decision is fed back onto each env step's eligibility increment (Urbanczik &
Senn 2009): the recipe reads the rule state before and after the step,
``E = d_e^K E_0 + g (E_K - d_e^K E_0)``, with ``g = 1`` on the chosen action's population and,
for ``gate="signed"`` (default), ``-1 / (n_actions - 1)`` on the others (a neuron is credited
for agreeing with the decision); ``gate="action"`` keeps only the winners' increment (lateral
inhibition silencing the losers), ``"none"`` feeds nothing back. Without this feedback every
active output neuron gets the same credit, whichever action it voted for. Only rules onto the
output population are gated (a hidden group casts no vote). The default ``A_minus = 0`` keeps
only the causal (pre-before-post) half of the window: the post trace carries over env steps, so
on a population that kept winning the LTD term outweighs LTP and inverts the sign of the rule (on
seeds 100-104, ``A_minus = 1`` collapsed to a one-action policy, return ~10; ``0.25`` reached 195
on 3 of 5 seeds, ``0`` on 5 of 5). Once per env step, a neuromodulator ``m`` gates it through
the rule's own ``update`` (Izhikevich 2007; Legenstein et al. 2008):
    ``W <- clip(W + mean_envs(lr * m * E) [- its mean over inputs], -w_max, w_max)``
with ``m`` either the TD error ``delta = r + gamma V' - V`` of a leaky (non-spiking) critic
``V = w_c . phi + b_c`` on the input rates ``phi`` (learned by TD(lambda), itself a three-factor
rule: ``w_c += lr_c delta e_c``, ``e_c = gamma lambda e_c + phi``; ``modulator="td"``, default),
or reward minus a running-mean baseline (``modulator="reward"``; raw CartPole reward is +1 every
step and would only potentiate). ``normalize`` subtracts each post neuron's mean change over its
inputs (heterosynaptic balance). Then ``CompiledNetwork.constrain`` (Dale, mask, chip grid).

The TD error of step t needs ``V`` of step t+1, so ``learn`` at step t+1 applies the update of
step t with the rule state snapshot taken at the end of step t (exact one-step delay). Rules whose
``update`` consumes an accumulator (plain ``stdp`` clears its LTP/LTD sums) have exactly the
consumed part removed from the live state; ``rstdp``'s eligibility keeps decaying.

In a user's network the rules' own amplitudes and ``lr`` set the step size (the ``lr``,
``a_*``, ``tau_*`` hyperparameters shape the built-in network only); ``w_max``, ``normalize``,
``gate``, the critic and the modulator apply to every network.

References:
    Izhikevich (2007). Solving the distal reward problem through linkage of STDP and dopamine
    signaling. Cereb. Cortex 17(10):2443-2452.
    Florian (2007). Reinforcement learning through modulation of spike-timing-dependent
    synaptic plasticity. Neural Comput. 19(6):1468-1502 (MSTDPET).
    Urbanczik & Senn (2009). Reinforcement learning in populations of spiking neurons.
        Nat. Neurosci. 12(3):250-252 (population decision fed back to each neuron).
    Fremaux, Sprekeler & Gerstner (2013). Reinforcement learning using a continuous time
    actor-critic framework with spiking neurons. PLoS Comput. Biol. 9(4):e1003024 (TD-STDP).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from neurorl.agents import td
from neurorl.agents.base import (
    Agent,
    AgentSpec,
    AgentStats,
    check_hyper,
    positive,
    unit_interval,
)
from neurorl.agents.network_agent import AgentNetwork, NetworkRuntime, reset_envs
from neurorl.core.network import Connection, LearningRule, Network, NeuronGroup
from neurorl.encoding import gaussian_rf
from neurorl.errors import ConfigError

Array = jax.Array

DEFAULTS: dict[str, Any] = {
    "n_rf": 10,  # receptive fields per observation dimension
    "encoding": "rf",  # "rf" (per-dimension fields) or "place" (conjunctive place cells)
    "n_place": 5,  # place-cell centres per dimension (encoding="place")
    "pop": 10,  # output neurons per action
    "tau_mem": 10.0,  # ms
    "v_th": 1.0,
    "noise_std": 1.0,  # exploration noise current per substep (units of v_th)
    "w_init": 0.1,  # W ~ U(0, w_init)
    "w_max": 1.0,
    "tau_plus": 20.0,  # ms, presynaptic STDP trace
    "tau_minus": 20.0,  # ms, postsynaptic STDP trace
    "tau_e": 200.0,  # ms, eligibility
    "a_plus": 1.0,
    "a_minus": 0.0,  # LTD amplitude; chosen 0 on seeds 100-104 (see the module docstring)
    "lr": 3e-5,  # chosen on seeds 100-104 (1e-4 and 3e-4 peaked, then drifted down)
    "lr_critic": 1e-2,
    "gamma": 0.99,
    "lam": 0.9,
    "reward_scale": 0.1,
    "modulator": "td",  # "td" or "reward"
    "baseline_decay": 0.99,  # running-mean reward baseline (modulator="reward")
    "normalize": True,  # subtract each post neuron's mean dW over its inputs (synaptic scaling)
    "gate": "signed",  # decision feedback on this step's eligibility: "signed", "action", "none"
}

# hyperparameters that shape the built-in network (ignored for a user's network)
NETWORK_KEYS = ("n_rf", "encoding", "n_place", "pop", "tau_mem", "v_th", "noise_std", "w_init",
                "tau_plus", "tau_minus", "tau_e", "a_plus", "a_minus", "lr")
RULE_NAMES = ("rstdp", "stdp")


def rstdp_network(spec: AgentSpec, **hyper: Any) -> AgentNetwork:
    """The built-in R-STDP agent's network: RF spikes -> ``rstdp`` -> LIF action populations.

    Groups ``"obs"`` (``"Input"``, ``n_rf x obs_dim``) and ``"actions"`` (LIF,
    ``n_actions x pop``, action-major); connection and rule ``"input"`` (delay 0,
    ``W ~ U(0, w_init)``); Gaussian noise current ``noise_std`` on ``"actions"``.
    """
    h = {**DEFAULTS, **hyper}
    if h["encoding"] == "place":
        from neurorl.agents.td_ac import place_cells

        enc = place_cells(spec.obs_low, spec.obs_high, int(h["n_place"]), spec.substeps)
    else:
        enc = gaussian_rf(spec.obs_low, spec.obs_high, int(h["n_rf"]), spec.substeps,
                          mode="regular")
    n_out = spec.n_actions * int(h["pop"])
    obs = NeuronGroup(enc.n_in, "Input", name="obs")
    act = NeuronGroup(n_out, "LIF", {"tau_mem": h["tau_mem"], "v_th": h["v_th"]}, name="actions")
    c = Connection(obs, act, weight={"init": "uniform", "low": 0.0, "high": float(h["w_init"])},
                   delay=0, name="input")
    rule = LearningRule(c, "rstdp", {
        "a_plus": h["a_plus"], "a_minus": h["a_minus"], "tau_plus": h["tau_plus"],
        "tau_minus": h["tau_minus"], "tau_c": h["tau_e"], "lr": h["lr"],
        "modulator_kind": "td" if h["modulator"] == "td" else "raw"}, name="input")
    return AgentNetwork(Network(obs, act, c, rule), enc, input="obs", output="actions",
                        noise={"actions": float(h["noise_std"])}, spiking_input=True)


@struct.dataclass
class RstdpState:
    """Agent state: shared network ``weights`` and critic ``w_c``; per-env [B] dynamic states,
    rule states (``traces``), their snapshot at the previous step (``snap``) and TD bookkeeping."""

    weights: Any
    w_c: Array
    baseline: Array
    dyn: Any
    traces: Any
    snap: Any
    e_c: Array  # [B, n_in + 1] critic TD(lambda) trace, reset only after its last update
    phi_now: Array
    v_now: Array
    v_prev: Array
    r_prev: Array
    term_prev: Array
    trunc_prev: Array
    has_prev: Array
    reset_next: Array
    stats: AgentStats


def _step_decay(rule: Any, shape: tuple[int, int], K: int) -> Any:
    """How each ``[n_pre, n_post]`` leaf of a rule state decays over K silent steps (host).

    A state with those leaves at 1 (traces at 0) is accumulated over K steps without spikes; the
    result is ``d^K`` (``rstdp``'s eligibility) or 1 (``stdp``'s LTP/LTD sums). Other leaves: 1.
    """
    st = rule.init(jnp.zeros(shape, jnp.float32))
    st = jax.tree.map(lambda x: jnp.ones_like(x) if x.ndim == 2 else x, st)
    for _ in range(K):
        st = rule.accumulate(st, jnp.zeros(shape[0]), jnp.zeros(shape[1]), None)
    return jax.tree.map(lambda x: float(np.asarray(x).reshape(-1)[0]) if x.ndim == 2 else 1.0,
                        st)


def _running_leaves(rule: Any, shape: tuple[int, int]) -> Any:
    """Which leaves of a rule state ``update`` keeps as running values (host probe).

    ``update`` of a fresh state with modulator 1 changes exactly those (``rstdp``'s reward
    baseline and dopamine, ``[n_post]``); accumulators it consumes (``stdp``'s LTP/LTD sums)
    start at 0 and stay 0, traces it does not touch stay as they are.
    """
    w = jnp.zeros(shape, jnp.float32)
    st = rule.init(w)
    _, upd = rule.update(st, jnp.ones((), jnp.float32), w)
    return jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))), st, upd)


def make_rstdp_agent(spec: AgentSpec, network: AgentNetwork | None = None, backend: str = "jax",
                     compile_kwargs: dict | None = None, **hyper: Any) -> Agent:
    """Build the R-STDP agent for a discrete-action ``spec`` (hyperparameters: ``DEFAULTS``).

    Args:
        spec: what the agent sees and does.
        network: a user's :class:`AgentNetwork` whose learning rules are all ``rstdp`` or
            ``stdp`` and whose output is a spiking group of ``n_actions x pop`` neurons
            (action-major); default the built-in :func:`rstdp_network`.
        backend: compile backend (``"jax"`` or a chip name).
        compile_kwargs: extra arguments of ``Network.compile``.

    Raises:
        ConfigError: unknown/invalid hyperparameter, continuous actions, or a network this
            recipe cannot train (host side).
    """
    h = check_hyper("rstdp", hyper, DEFAULTS)
    if not spec.discrete:
        raise ConfigError("agent", "rstdp", "discrete action spaces only (population vote)")
    if h["modulator"] not in ("td", "reward"):
        raise ConfigError("agent.rstdp.modulator", h["modulator"], "'td' or 'reward'")
    if h["encoding"] not in ("rf", "place"):
        raise ConfigError("agent.rstdp.encoding", h["encoding"], "'rf' or 'place'")
    if h["gate"] not in ("action", "signed", "none"):
        raise ConfigError("agent.rstdp.gate", h["gate"], "'action', 'signed' or 'none'")
    positive("rstdp", **{k: h[k] for k in ("n_rf", "pop", "tau_mem", "v_th", "w_max", "tau_plus",
                                           "tau_minus", "tau_e", "lr", "reward_scale")})
    unit_interval("rstdp", gamma=h["gamma"], lam=h["lam"], baseline_decay=h["baseline_decay"])
    an = network if network is not None else rstdp_network(spec, **h)
    rt = NetworkRuntime(an, spec.n_envs, spec.substeps, backend, **(compile_kwargs or {}))
    net = rt.net
    B, n_act, K = spec.n_envs, spec.n_actions, spec.substeps
    out_g, in_g = an.output, an.input
    out_grp = net.groups[out_g]
    if out_grp.model.name in ("LI", "Input") or out_grp.n % n_act:
        raise ConfigError("agent.network.output", out_g, "a spiking group of n_actions x pop "
                          f"neurons (n_actions = {n_act}; it has {out_grp.n}, "
                          f"model {out_grp.model.name!r})")
    pop = out_grp.n // n_act
    bad = [n for n, r in net.rules.items() if r.rule_name not in RULE_NAMES]
    if bad or not net.rules:
        raise ConfigError("agent.network.rules", bad or [], f"rules of {list(RULE_NAMES)} on "
                          "the plastic connections (and at least one)")
    rule_conn = {n: r.connection.name for n, r in net.rules.items()}
    gated = {n for n, r in net.rules.items() if r.connection.target.name == out_g}
    # the decay of the rule as written (float): on a chip's learning engine the compiled rule
    # rounds its tags every step, and a state of ones measured through it decays by a rounding
    # artefact (Loihi 2: 0.875 over 5 steps instead of exp(-5 / 200) = 0.975)
    float_rule = {r.name: r.rule for r in an.network.rules}
    decay_k = {n: _step_decay(float_rule.get(n, r.rule),
                              (r.connection.source.n, r.connection.target.n), K)
               for n, r in net.rules.items()}
    running = {n: _running_leaves(r.rule, (r.connection.source.n, r.connection.target.n))
               for n, r in net.rules.items()}
    n_in = net.groups[in_g].n
    gamma, lam = h["gamma"], h["lam"]
    use_td = h["modulator"] == "td"
    # population of each output neuron (decision feedback), None without feedback
    win_g = np.arange(out_grp.n) // pop if h["gate"] != "none" else None
    signed = h["gate"] == "signed"

    def batch(tree: Any) -> Any:
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (B,) + x.shape), tree)

    def init(key: Array) -> RstdpState:
        weights, dyn, traces = rt.init(key)
        f = jnp.zeros((B,), jnp.float32)
        zc = jnp.zeros((B, n_in + 1), jnp.float32)
        return RstdpState(weights, jnp.zeros((n_in + 1,), jnp.float32),
                          jnp.zeros((), jnp.float32), dyn, traces, traces, zc, zc,
                          **td.init_fields(B), stats=AgentStats(f, f))

    def gate(before: Any, after: Any, dk: Any, g: Array) -> Any:
        """``E = d^K E_0 + g (E_K - d^K E_0)`` on every [n_pre, n_post] leaf (post-wise g)."""
        def one(b: Array, a: Array, d: float) -> Array:
            if a.ndim != 2:
                return a
            base = d * b
            return base + (a - base) * g[None, :]

        return jax.tree.map(one, before, after, dk)

    def act_one(w: Any, w_c: Array, dyn: Any, traces: Any, obs: Array, key: Array):
        dyn, new_tr, _, counts = rt.step_one(w, dyn, traces, obs, key)
        votes = counts[out_g].reshape(n_act, pop).sum(axis=1)
        action = jnp.argmax(votes).astype(jnp.int32)
        if win_g is not None:
            g = (jnp.asarray(win_g) == action).astype(jnp.float32)
            if signed:  # losers' eligibility counts against them (REINFORCE-like vote)
                g = g - (1.0 - g) / max(n_act - 1, 1)
            new_tr = {n: gate(traces[n], t, decay_k[n], g) if n in gated else t
                      for n, t in new_tr.items()}
        phi = jnp.concatenate([counts[in_g] / K, jnp.ones((1,), jnp.float32)])
        spikes, synops = rt.activity(counts)
        return dyn, new_tr, action, phi, phi @ w_c, spikes + 0.0, synops + 0.0

    def act(state: RstdpState, obs: Array, key: Array) -> tuple[Array, RstdpState]:
        dyn0, tr0 = rt.fresh()
        dyn = reset_envs(state.reset_next, state.dyn, dyn0)
        traces = reset_envs(state.reset_next, state.traces, tr0)
        dyn, traces, action, phi, v, spikes, synops = jax.vmap(
            act_one, in_axes=(None, None, 0, 0, 0, 0))(
            state.weights, state.w_c, dyn, traces, obs, jax.random.split(key, B))
        return action, state.replace(dyn=dyn, traces=traces, phi_now=phi, v_now=v,
                                     stats=AgentStats(spikes, synops))

    def consume(live: Array, snap: Array, upd: Array, fresh: Array, run: bool) -> Array:
        """What ``update`` did to the snapshot, done to the live state: a cleared accumulator
        loses exactly the consumed part (unless the env restarted from a fresh state since the
        snapshot); untouched leaves stay bit-identical."""
        if run:  # running values (reward baseline, dopamine; [B, n_post]): the updated value
            return upd
        keep = (upd == snap) | fresh.reshape((-1,) + (1,) * (live.ndim - 1))
        return jnp.where(keep, live, live - snap + upd)

    def learn(state: RstdpState, reward: Array, terminated: Array, truncated: Array
              ) -> RstdpState:
        term_p, trunc_p = state.term_prev, state.trunc_prev
        delta = td.td_error(state.r_prev, state.v_now, state.v_prev, term_p, trunc_p,
                            state.has_prev, gamma)
        r = h["reward_scale"] * reward.astype(jnp.float32)
        if use_td:
            m = delta
            baseline = state.baseline
        else:
            m = jnp.where(state.has_prev, state.r_prev - state.baseline, 0.0)
            bd = h["baseline_decay"]
            baseline = bd * state.baseline + (1 - bd) * jnp.mean(r)
        weights, traces = dict(state.weights), dict(state.traces)
        for n, r_ in net.rules.items():
            c = rule_conn[n]
            # three-factor updates through the rule (grads = -lr m E), averaged over the
            # agent's envs (shared weights)
            grads, upd = jax.vmap(r_.rule.update, in_axes=(0, 0, None))(state.snap[n], m,
                                                                        weights[c])
            dw = -jnp.mean(grads, axis=0) * net.structure[c]["mask"]
            if h["normalize"]:
                # local heterosynaptic balance: the summed input weight of each output neuron
                # is conserved, so the modulator redistributes inputs instead of growing one
                # population
                dw = dw - jnp.mean(dw, axis=0, keepdims=True)
            weights[c] = jnp.clip(weights[c] + dw, -h["w_max"], h["w_max"])
            # envs reset by the last act (reset_next) hold no part of the snapshot
            traces[n] = jax.tree.map(lambda a, b, c, k: consume(a, b, c, state.reset_next, k),
                                     state.traces[n], state.snap[n], upd, running[n])
        weights = net.constrain(weights, project=rt.project_updates)
        w_c = state.w_c + h["lr_critic"] * jnp.mean(delta[:, None] * state.e_c, axis=0)
        e_c = td.trace_decay(gamma, lam, term_p, trunc_p)[:, None] * state.e_c + state.phi_now
        return state.replace(
            weights=weights, w_c=w_c, baseline=baseline, e_c=e_c, traces=traces, snap=traces,
            **td.advance(state.v_now, r, terminated, truncated))

    def weights_of(state: RstdpState) -> Any:
        return state.weights

    return Agent("rstdp", spec, init, act, learn, weights_of, runtime=rt)
