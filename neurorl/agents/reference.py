"""The reference spiking agent (``shared/references/reference-agent.md``) as an N-HAL recipe.

A fixed, small agent used to compare simulators on the same work (``benchmarks/throughput.py``
times it through :func:`neurorl.experiment.train.make_train` against a numpy host loop):

* observation -> Gaussian receptive fields (10 per dimension, centres ``linspace(-r, r, 10)``,
  sigma ``2r/9``; r = the env's default encoder range, ``[2.4, 3, 0.21, 3]`` on CartPole) ->
  constant currents (gain 0.5) into an input group of LIF neurons;
* dense ``W1`` (delay 0) -> hidden LIF (128) -> dense ``W2`` (delay 0) -> output LIF
  (``n_actions``); LIF in snnTorch ``Leaky`` form (beta = 0.9 per 1 ms substep, threshold 1,
  subtract reset delayed one step) -- the ``LIF`` model of :mod:`neurorl.core.neurons`;
* K substeps per env step (10 in the reference); action = argmax of the output spike counts
  (ties to the lowest index);
* STDP eligibility on both matrices, every substep, after the trace update (the ``rstdp`` rule,
  Florian 2007 form, ``A+ = A- = 1``, traces tau 20 ms, eligibility tau 200 ms)::

      e <- de e + outer(x_pre, s_post) - outer(s_pre, x_post)

* once per env step ``W <- clip(W + lr m e, -1, 1)`` with ``m`` = reward (-1 on termination),
  ``lr = 1e-6`` (the rule's ``update`` with ``modulator_kind="raw"``), applied right after the
  step (no delay); weights ``W1 ~ U(0, 0.15)``, ``W2 ~ U(0, 0.04)``;
* neuron, trace and eligibility state persist across episodes (only the env resets).

It is not a learner (raw CartPole reward only potentiates); it exists so that throughput is
measured on the path users run. With several envs per agent the updates are averaged over them.
The last env step's spike counts per group are kept in the state (``counts``) so the benchmark
can check agreement with the numpy loop step by step.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from neurorl.agents.base import Agent, AgentSpec, AgentStats, check_hyper, positive
from neurorl.agents.network_agent import AgentNetwork, NetworkRuntime
from neurorl.core.network import Connection, LearningRule, Network, NeuronGroup
from neurorl.encoding import gaussian_rf
from neurorl.errors import ConfigError

Array = jax.Array

DEFAULTS: dict[str, Any] = {
    "n_rf": 10,  # receptive fields per observation dimension
    "gain": 0.5,  # input current per unit activation
    "n_hidden": 128,
    "beta": 0.9,  # membrane decay per substep
    "v_th": 1.0,
    "tau_trace": 20.0,  # ms
    "tau_elig": 200.0,  # ms
    "lr": 1e-6,
    "w_max": 1.0,  # clip to [-w_max, w_max]
    "w1_init": 0.15,  # W1 ~ U(0, w1_init)
    "w2_init": 0.04,  # W2 ~ U(0, w2_init)
}


def reference_network(spec: AgentSpec, **hyper: Any) -> AgentNetwork:
    """The reference agent's network: groups ``"in"``, ``"hidden"``, ``"out"``; connections and
    rules ``"w1"``, ``"w2"``."""
    h = {**DEFAULTS, **hyper}
    enc = gaussian_rf(spec.obs_low, spec.obs_high, int(h["n_rf"]), spec.substeps, width=1.0,
                      gain=float(h["gain"]), mode="current")
    lif = {"tau_mem": -1.0 / math.log(float(h["beta"])), "v_th": float(h["v_th"]), "dt": 1.0,
           "reset": "subtract", "integration": "direct"}
    g_in = NeuronGroup(enc.n_in, "LIF", lif, name="in", input=True)
    g_h = NeuronGroup(int(h["n_hidden"]), "LIF", lif, name="hidden")
    g_out = NeuronGroup(spec.n_actions, "LIF", lif, name="out")
    uni = lambda hi: {"init": "uniform", "low": 0.0, "high": float(hi)}  # noqa: E731
    c1 = Connection(g_in, g_h, weight=uni(h["w1_init"]), delay=0, name="w1")
    c2 = Connection(g_h, g_out, weight=uni(h["w2_init"]), delay=0, name="w2")
    rp = {"a_plus": 1.0, "a_minus": 1.0, "tau_plus": h["tau_trace"],
          "tau_minus": h["tau_trace"], "tau_c": h["tau_elig"], "dt": 1.0, "lr": h["lr"],
          "modulator_kind": "raw"}
    rules = [LearningRule(c, "rstdp", rp, name=c.name) for c in (c1, c2)]
    return AgentNetwork(Network(g_in, g_h, g_out, c1, c2, *rules), enc, input="in",
                        output="out")


@struct.dataclass
class ReferenceState:
    """Shared ``weights``; per-env [B] dynamic state, rule states and last step's ``counts``."""

    weights: Any
    dyn: Any
    traces: Any
    counts: Any
    stats: AgentStats


def make_reference_agent(spec: AgentSpec, network: AgentNetwork | None = None,
                         backend: str = "jax", compile_kwargs: dict | None = None,
                         **hyper: Any) -> Agent:
    """Build the reference agent (hyperparameters: ``DEFAULTS``).

    Raises:
        ConfigError: continuous actions, unknown/invalid hyperparameters (host side).
    """
    h = check_hyper("reference", hyper, DEFAULTS)
    if not spec.discrete:
        raise ConfigError("agent", "reference", "discrete action spaces only (spike-count "
                          "argmax)")
    positive("reference", **{k: h[k] for k in ("n_rf", "n_hidden", "v_th", "tau_trace",
                                               "tau_elig", "w_max")})
    if not 0.0 < float(h["beta"]) < 1.0:
        raise ConfigError("agent.reference.beta", h["beta"], "a decay in (0, 1)")
    an = network if network is not None else reference_network(spec, **h)
    rt = NetworkRuntime(an, spec.n_envs, spec.substeps, backend, **(compile_kwargs or {}))
    net, B, out_g = rt.net, spec.n_envs, an.output
    if net.groups[out_g].n != spec.n_actions:
        raise ConfigError("agent.network.output", out_g,
                          f"a spiking group of n_actions = {spec.n_actions} neurons")
    count_groups = [g for g, grp in net.groups.items() if grp.model.name not in ("LI",)]

    def init(key: Array) -> ReferenceState:
        weights, dyn, traces = rt.init(key)
        f = jnp.zeros((B,), jnp.float32)
        counts = {g: jnp.zeros((B, net.groups[g].n), jnp.float32) for g in count_groups}
        return ReferenceState(weights, dyn, traces, counts, AgentStats(f, f))

    def act(state: ReferenceState, obs: Array, key: Array) -> tuple[Array, ReferenceState]:
        dyn, traces, _, counts, spikes, synops = rt.step(state.weights, state.dyn,
                                                         state.traces, obs, key)
        action = jnp.argmax(counts[out_g], axis=-1).astype(jnp.int32)
        counts = {g: counts[g] for g in count_groups}
        return action, state.replace(dyn=dyn, traces=traces, counts=counts,
                                     stats=AgentStats(spikes, synops))

    def learn(state: ReferenceState, reward: Array, terminated: Array, truncated: Array
              ) -> ReferenceState:
        m = jnp.where(terminated, -1.0, reward.astype(jnp.float32))
        grads, traces = jax.vmap(lambda tr, mm: net.rule_updates(
            state.weights, tr, {n: mm for n in net.rules}))(state.traces, m)
        weights = dict(state.weights)
        for n, r in net.rules.items():
            c = r.connection.name
            weights[c] = jnp.clip(weights[c] - jnp.mean(grads[n], axis=0), -h["w_max"],
                                  h["w_max"])
        weights = net.constrain(weights, project=rt.project_updates)
        return state.replace(weights=weights, traces=traces)

    def weights_of(state: ReferenceState) -> Any:
        return state.weights

    return Agent("reference", spec, init, act, learn, weights_of, runtime=rt)


__all__ = ["DEFAULTS", "ReferenceState", "make_reference_agent", "reference_network"]
