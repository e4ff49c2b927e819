"""Distal reward (Izhikevich 2007, Cereb. Cortex 17:2443, Fig. 1), full published set-up, run
twice: through the library (N-HAL network + ``plasticity/rstdp.py``) and by a standalone
event-driven numpy model of the paper's code, the reference it is checked against.

1,000 Izhikevich neurons (800 regular-spiking excitatory a=0.02, d=8; 200 fast-spiking inhibitory
a=0.1, d=2; b=0.2, c=-65 for all), 100 synapses each (excitatory -> 80 excitatory + 20
inhibitory targets, inhibitory -> 100 excitatory), thalamic drive 13 (U - 0.5) per neuron per ms,
excitatory weights start at 1 (inhibitory -1, fixed), s_max = 4, delay 1 ms. Constants and update
order as in the paper's MATLAB code (``daspnet.m``; /work/shared/references/learning-rules.md
section 2.2). One step is 1 ms:

    neurons: core/neurons.py's Izhikevich model (v in two 0.5 ms half steps, u, spike at
             v > 30 and reset v = -65, u += d); a spike of step t enters its targets' current
             at step t + 1 (the paper detects it at the start of t + 1: the same timing)
    STDP trace: x_i = 0.1 at a spike of i, x 0.95 per ms (A+ = 0.1, tau = 20 ms)
    LTP (post j fires at t):  c_ij += x_i(t - 1)      pre spike at t' < t: + 0.1 * 0.95^(t-t'-1)
    LTD (pre i fires at t):   c_ij -= 1.5 x_j(t)      post spike at t' <= t: - 0.15 * 0.95^(t-t')
    dopamine: DA x 0.995 per ms (tau_d = 200 ms)
    every 10 ms: s <- clip(s + (0.002 + DA) c, 0, 4) (excitatory rows), c x 0.99 (tau_c ~ 1 s)
    reward: n2 fires < 20 ms after n1 (and after it) -> DA += 0.5 at t + 1000 + ceil(2000 U) ms

The chosen synapse n1 -> n2 (n1 = 0, n2 one of its excitatory targets) starts at 0 as in the
paper's Fig. 1. Both models draw the same connectivity (``core.connectivity.fixed_fan_out``, same
seeds). Deliberate differences from ``daspnet.m``: targets are drawn without repeats or
self-connections and each excitatory neuron has exactly 80 excitatory and 20 inhibitory targets
(the MATLAB code draws ``ceil(N rand)`` over all 1,000); a spike is ``v > 30`` (the paper:
``v >= 30``; they differ only when v lands exactly on 30).

**Library model** (:func:`simulate_library`): groups ``exc``/``inh`` of the ``Izhikevich``
model, delay-1 connections, the ``rstdp`` rule (``a_plus = 0.1``, ``a_minus = 0.15``, tau 19.5
ms, ``tau_c`` = 995 ms, ``modulator_kind="raw"``) on the excitatory ones with ``optax.sgd``
and ``hardware.constraints.clip_to_range(0, 4)``. Each 10 ms block is one
``CompiledNetwork.simulate`` (weights fixed, the rule's rank-2T block accumulation), then
``rule_updates`` with ``d = 0.002 + DA`` and ``apply_updates``; 100 blocks are one jitted scan.
The host keeps the reward schedule and dopamine (the recipe). Differences from the reference,
all in the rule's discrete form (``plasticity/rstdp.py``, Florian 2007): the traces pair all
spikes (the paper's trace is reset to 0.1 at a spike: nearest spike; at ~1 Hz the two rarely
differ), the post trace includes this step's spike when an arriving pre spike pairs with it
(LTD reaches one ms further: a post spike 1 ms after the pre spike also depresses by 0.15/0.95,
beside its LTP of 0.1), and c decays by 0.99^(1/10) every ms instead of 0.99 every 10 ms.

**Standalone reference** (:func:`simulate`): event-driven numpy, float64: about one neuron fires
per ms, so a step touches only the outgoing rows (current, LTD) and the incoming excitatory
synapses (LTP) of the neurons that fired; its neurons are core/neurons.py's Izhikevich equations
run by numpy (``Izhikevich.step(..., xp=numpy)``), so no copy of them is written here.
:func:`dense_events` is the all-synapse form of the same update, used by the tests.

Run:  .venv/bin/python -m benchmarks.distal_reward [--seconds 3600] [--seeds 0 1 2 --jobs 2]
      [--model both|library|standalone] [--out DIR]
Writes benchmarks/results/distal_reward.json and .md (or into ``--out``).
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks.common import (
    machine,
    markdown_table,
    provenance,
    provenance_line,
    write_results,
)
from neurorl.core import connectivity as cx
from neurorl.core.monitors import SpikeMonitor
from neurorl.core.network import Connection, LearningRule, Network, NeuronGroup
from neurorl.core.neurons import Izhikevich, IzhikevichParams
from neurorl.hardware.constraints import clip_to_range

N_E, N_I, M = 800, 200, 100
N = N_E + N_I
SM, INTERVAL = 4.0, 20
TONIC_DA, DA_PULSE = 0.002, 0.5


def build(seed: int = 0) -> dict:
    """The reference's connectivity (:func:`edges`) as look-up tables.

    Returns ``post`` [N, M] targets, ``s`` initial weights [N + 1, M] (row N: a dummy that pads
    the look-ups), ``inc_flat`` [N, K_in] flat indices into the synapse table of the excitatory
    synapses onto each neuron (padded with the dummy row's first slot N * M), ``inc_pre`` their
    presynaptic neurons (padded with N, whose trace is always 0), ``izh`` the neurons'
    ``IzhikevichParams`` (per-neuron ``a``, ``d``), ``n2`` and ``m0`` (the chosen synapse is
    ``s[0, m0]``, ``post[0, m0] = n2``).
    """
    e = edges(seed)
    post = np.empty((N, M), np.int64)
    for i in range(N_E):
        post[i, :K_EE] = e["ee"][1][e["ee"][0] == i]
        post[i, K_EE:] = N_E + e["ei"][1][e["ei"][0] == i]
    for i in range(N_I):
        post[N_E + i] = e["ie"][1][e["ie"][0] == i]
    m0 = int(np.flatnonzero(post[0] == e["n2"])[0])
    s = np.concatenate([np.ones((N_E, M)), -np.ones((N_I, M)), np.zeros((1, M))])
    s[0, m0] = 0.0
    incoming = [[] for _ in range(N)]
    for i in range(N_E):  # only excitatory synapses are plastic (the paper's pre{} lists)
        for m in range(M):
            incoming[post[i, m]].append(i * M + m)
    k_in = max(len(x) for x in incoming)
    inc_flat = np.full((N, k_in), N * M, np.int64)
    inc_pre = np.full((N, k_in), N, np.int64)
    for j, lst in enumerate(incoming):
        inc_flat[j, : len(lst)] = lst
        inc_pre[j, : len(lst)] = np.asarray(lst) // M
    a = np.concatenate([np.full(N_E, 0.02), np.full(N_I, 0.1)])
    d = np.concatenate([np.full(N_E, 8.0), np.full(N_I, 2.0)])
    izh = IzhikevichParams(a=a, b=0.2, c=-65.0, d=d, v_peak=30.0, v_init=-65.0, dt=1.0).validate()
    return {
        "post": post,
        "s": s,
        "inc_flat": inc_flat,
        "inc_pre": inc_pre,
        "izh": izh,
        "n2": e["n2"],
        "m0": m0,
    }


def sparse_events(net: dict, fired, s, sd, x, x_prev) -> np.ndarray:
    """Synaptic current of this ms; updates the eligibility ``sd`` [N + 1, M] in place.

    ``fired``: indices of the neurons that fired; ``x``: STDP traces now (spikes of this ms at
    0.1), ``x_prev``: one ms earlier; both [N + 1] with entry N = 0.
    """
    rows = net["post"][fired]  # [k, M] targets of the fired neurons
    current = np.bincount(rows.ravel(), weights=s[fired].ravel(), minlength=N)
    sd[fired] -= 1.5 * x[rows]  # LTD: post trace now, at the pre spike's arrival
    # LTP: pre trace one ms back, at the post spike. The indices are unique (distinct posts have
    # distinct incoming synapses) except the dummy slot, so a buffered += is exact.
    flat = sd.reshape(-1)
    flat[net["inc_flat"][fired]] += x_prev[net["inc_pre"][fired]]
    return current


def dense_events(net: dict, fired_mask, s, sd, x, x_prev) -> tuple[np.ndarray, np.ndarray]:
    """The same update over all synapses: (current [N], new sd [N + 1, M]); for the tests."""
    post, f = net["post"], fired_mask.astype(float)
    current = np.bincount(post.ravel(), weights=(s[:N] * f[:, None]).ravel(), minlength=N)
    new = sd.copy()
    new[:N_E] += x_prev[:N_E, None] * f[post[:N_E]]
    new[:N] -= 1.5 * f[:, None] * x[post]
    return current, new


def init_state(net: dict, seed: int) -> dict:
    """Resting network, zero traces, no dopamine, no pending rewards."""
    return {
        "neurons": Izhikevich.init(net["izh"], N, xp=np),  # v = -65, u = b v (float64)
        "syn": np.zeros(N),
        "x": np.zeros(N + 1),
        "x_prev": np.zeros(N + 1),
        "sd": np.zeros((N + 1, M)),
        "s": net["s"].copy(),
        "da": 0.0,
        "t": 0,
        "n1f": -(10**6),
        "n2f": -(10**6),
        "rew": set(),
        "n_rewards": 0,
        "n_da": 0,
        "n_spikes": 0,
        "rng": np.random.default_rng([seed, 1]),
    }


def step(net: dict, st: dict, noise, update_weights: bool) -> np.ndarray:
    """Advance ``st`` by 1 ms in place, in the order of the paper's code.

    The neurons integrate this ms's current (thalamic ``noise`` plus the synaptic current of the
    spikes of the previous ms) with core/neurons.py's Izhikevich step run by numpy; the paper's
    code then handles the spikes at the start of its next ms (reset, traces, LTP, LTD, their
    current), which this step does right away, before the trace and dopamine decay, the weight
    update and the reward check -- the same sequence of operations.

    Args:
        net: from :func:`build`.
        st: from :func:`init_state`.
        noise: [N] thalamic input of this ms.
        update_weights: apply the 10 ms weight update in this step (every 10th ms).

    Returns:
        The indices of the neurons that fired in this ms.
    """
    z, st["neurons"] = Izhikevich.step(net["izh"], st["neurons"], noise + st["syn"], xp=np)
    fired = np.flatnonzero(z)
    s, sd, x = st["s"], st["sd"], st["x"]
    t = st["t"]
    if fired.size:
        x[fired] = 0.1
        st["syn"] = sparse_events(net, fired, s, sd, x, st["x_prev"])
        st["n_spikes"] += fired.size
    else:
        st["syn"] = np.zeros(N)
    st["x_prev"], st["x"] = x, 0.95 * x
    st["da"] *= 0.995
    if update_weights:  # excitatory rows only
        np.clip(s[:N_E] + (TONIC_DA + st["da"]) * sd[:N_E], 0.0, SM, out=s[:N_E])
        sd *= 0.99
    if fired.size:
        if 0 in fired:
            st["n1f"] = t
        if net["n2"] in fired:
            st["n2f"] = t
            if t - st["n1f"] < INTERVAL and st["n2f"] > st["n1f"]:
                st["rew"].add(t + 1000 + int(np.ceil(2000.0 * st["rng"].random())))
                st["n_rewards"] += 1
    if t in st["rew"]:
        st["da"] += DA_PULSE
        st["rew"].discard(t)
        st["n_da"] += 1
    st["t"] = t + 1
    return fired


def run_second(net: dict, st: dict) -> None:
    """Advance ``st`` by 1,000 ms in place (weights updated every 10th ms)."""
    noise = 13.0 * (st["rng"].random((1000, N)) - 0.5)
    for k in range(1000):
        step(net, st, noise[k], k % 10 == 9)


def _summary(chosen: float, others: np.ndarray, rewards: int, n_spikes: int, second: int
             ) -> dict:
    """Chosen synapse vs the other excitatory synapses after ``second`` s."""
    return {
        "second": second,
        "chosen_w": round(float(chosen), 5),
        "others_mean": round(float(others.mean()), 5),
        "others_std": round(float(others.std()), 5),
        "others_p99": round(float(np.quantile(others, 0.99)), 5),
        "others_frac_at_max": float((others >= SM - 1e-3).mean()),
        "chosen_rank_pct": round(float((others < chosen).mean() * 100), 3),
        "rewards": int(rewards),
        "rate_hz": round(n_spikes / N / second, 4),
    }


def summary(st: dict, net: dict, second: int) -> dict:
    """The reference's chosen synapse vs its other excitatory synapses."""
    s = st["s"][:N_E]
    flat = 0 * M + net["m0"]
    return {**_summary(s[0, net["m0"]], np.delete(s.ravel(), flat), st["n_rewards"],
                       st["n_spikes"], second), "chosen_c": round(float(st["sd"][0, net["m0"]]), 5)}


def _run_result(model: str, seed: int, t0: float, trace: list, chosen_per_s: list, n_da: int
                ) -> dict:
    at_max = [i + 1 for i, w in enumerate(chosen_per_s) if w >= 0.95 * SM]
    final = trace[-1]
    return {
        "model": model,
        "seed": seed,
        "wall_s": round(time.perf_counter() - t0, 1),
        "chosen_final": final["chosen_w"],
        "others_mean": final["others_mean"],
        "others_std": final["others_std"],
        "others_p99": final["others_p99"],
        "chosen_rank_percentile": final["chosen_rank_pct"],
        "first_second_at_95pct_max": at_max[0] if at_max else None,
        "rewards": final["rewards"],
        "dopamine_pulses": n_da,
        "rate_hz": final["rate_hz"],
        "trace": trace,
        "chosen_w_per_second": chosen_per_s,
    }


def simulate(seconds: int, seed: int, every: int = 60) -> dict:
    """One run of the standalone reference: summaries every ``every`` s, the chosen weight every
    second, wall time."""
    net = build(seed)
    st = init_state(net, seed)
    trace, chosen_per_s = [], []
    t0 = time.perf_counter()
    for sec in range(seconds):
        run_second(net, st)
        chosen_per_s.append(round(float(st["s"][0, net["m0"]]), 5))
        if (sec + 1) % every == 0 or sec == seconds - 1:
            trace.append(summary(st, net, sec + 1))
            print(f"standalone seed {seed}:", trace[-1], flush=True)
    return _run_result("standalone", seed, t0, trace, chosen_per_s, st["n_da"])


# ----------------------------------------------------------------------------------------------
# The same experiment through the library: N-HAL Izhikevich groups + plasticity/rstdp.py
# ----------------------------------------------------------------------------------------------
K_EE, K_EI = 80, 20  # an excitatory neuron's 100 targets: 80 excitatory, 20 inhibitory
TAU_STDP = -1.0 / math.log(0.95)  # x 0.95 per ms
TAU_C = -10.0 / math.log(0.99)  # c x 0.99 per 10 ms
BLOCK = 10  # ms between weight updates (the paper's mod(t, 10))


def edges(seed: int) -> dict:
    """The connectivity both models use: ``core.connectivity.fixed_fan_out`` with the seeds the
    library's connections get, and the chosen synapse (neuron 0 -> one of its excitatory
    targets, drawn with ``seed``)."""
    seeds = {"ee": 1000 * seed + 1, "ei": 1000 * seed + 2, "ie": 1000 * seed + 3}
    ee = cx.build_edges("fixed_fan_out", seeds["ee"], N_E, N_E, k=K_EE, allow_self=False)
    ei = cx.build_edges("fixed_fan_out", seeds["ei"], N_E, N_I, k=K_EI)
    ie = cx.build_edges("fixed_fan_out", seeds["ie"], N_I, N_E, k=M)
    targets0 = ee[1][ee[0] == 0]
    n2 = int(targets0[np.random.default_rng([seed, 2]).integers(len(targets0))])
    return {"seeds": seeds, "ee": ee, "ei": ei, "ie": ie, "n2": n2}


def library_network(seed: int):
    """Izhikevich 2007's network as an N-HAL ``Network``: groups ``exc`` (800 RS) and ``inh``
    (200 FS), delay-1 connections ``ee``, ``ei`` (R-STDP, weights clipped to [0, s_max]) and
    ``ie`` (fixed, -1). Returns ``(network, n2)``."""
    e = edges(seed)
    exc = NeuronGroup(N_E, "Izhikevich", {"regime": "RS"}, name="exc", sign="excitatory",
                      input=True)
    inh = NeuronGroup(N_I, "Izhikevich", {"regime": "FS"}, name="inh", sign="inhibitory",
                      input=True)
    w_ee = np.ones((N_E, N_E), np.float32)
    w_ee[0, e["n2"]] = 0.0  # the chosen synapse starts at 0 (the paper's Fig. 1)
    ee = Connection(exc, exc, "fixed_fan_out", k=K_EE, allow_self=False, weight=w_ee, delay=1,
                    seed=e["seeds"]["ee"], name="ee")
    ei = Connection(exc, inh, "fixed_fan_out", k=K_EI, weight=1.0, delay=1,
                    seed=e["seeds"]["ei"], name="ei")
    ie = Connection(inh, exc, "fixed_fan_out", k=M, weight=1.0, delay=1,
                    seed=e["seeds"]["ie"], name="ie")
    rule = {"a_plus": 0.1, "a_minus": 0.15, "tau_plus": TAU_STDP, "tau_minus": TAU_STDP,
            "tau_c": TAU_C, "dt": 1.0, "lr": 1.0, "modulator_kind": "raw",
            "pairing": "all_to_all"}
    opt = optax.chain(optax.sgd(1.0), clip_to_range(0.0, SM))
    rules = [LearningRule(c, "rstdp", rule, optimizer=opt, name=c.name) for c in (ee, ei)]
    return Network(exc, inh, ee, ei, ie, *rules, SpikeMonitor(exc, name="exc_spikes")), e["n2"]


def library_second(cnet, n2: int):
    """A jitted second of model time: 100 blocks of 10 ms through ``cnet.simulate`` (weights
    fixed, R-STDP eligibility accumulated), each followed by the rule's update with the third
    factor ``d = 0.002 + DA`` (``rule_updates`` + ``apply_updates``: sgd, Dale, clip)."""

    def block(carry, xs):
        weights, dyn, traces, opt = carry
        key, d = xs
        ke, ki = jax.random.split(key)
        noise = {"exc": 13.0 * (jax.random.uniform(ke, (BLOCK, N_E)) - 0.5),
                 "inh": 13.0 * (jax.random.uniform(ki, (BLOCK, N_I)) - 0.5)}
        dyn, traces, rec, counts = cnet.simulate(weights, dyn, traces, noise)
        grads, traces = cnet.rule_updates(weights, traces, {"ee": d, "ei": d})
        weights, opt = cnet.apply_updates(weights, opt, grads)
        z = rec["exc_spikes"]
        n_spikes = counts["exc"].sum() + counts["inh"].sum()
        return (weights, dyn, traces, opt), (z[:, 0], z[:, n2], n_spikes)

    @jax.jit
    def second(weights, dyn, traces, opt, key, d):
        keys = jax.random.split(key, 1000 // BLOCK)
        carry, (z1, z2, ns) = jax.lax.scan(block, (weights, dyn, traces, opt), (keys, d))
        return carry, z1.reshape(-1), z2.reshape(-1), ns.sum()

    return second


def simulate_library(seconds: int, seed: int, every: int = 60) -> dict:
    """The library model for ``seconds`` of model time: the network above, and on the host the
    paper's reward schedule (n2 fires < 20 ms after n1 -> DA += 0.5 at t + 1000 + ceil(2000 U))
    and dopamine (x 0.995 per ms), which make the third factor of each 10 ms update. A reward
    is due at least 1001 ms after its pairing, so each second's dopamine is known before it
    runs."""
    net, n2 = library_network(seed)
    cnet = net.compile(backend="jax", seed=seed)
    state = cnet.init(jax.random.key(seed))
    weights, dyn = state["weights"], cnet.dynamic(state)
    traces, opt = cnet.traces(state), cnet.optimizer_states(state)
    second = library_second(cnet, n2)
    rng = np.random.default_rng([seed, 1])
    key = jax.random.key(seed + 7)
    others_ee = np.asarray(cnet.structure_mask("ee"), bool)
    others_ee[0, n2] = False  # every other excitatory synapse: ee and ei
    others_ei = np.asarray(cnet.structure_mask("ei"), bool)
    pulses: dict[int, int] = {}
    da, n1f, n2f, n_rewards, n_da, n_spikes = 0.0, -(10**6), -(10**6), 0, 0, 0
    trace, chosen_per_s = [], []
    t0 = time.perf_counter()
    for sec in range(seconds):
        base = 1000 * sec
        d = np.empty(1000 // BLOCK, np.float32)
        for k in range(1000):  # dopamine of this second: decay, update, then this ms's pulse
            da *= 0.995
            if k % BLOCK == BLOCK - 1:
                d[k // BLOCK] = TONIC_DA + da
            p = pulses.pop(base + k, 0)
            da += DA_PULSE * p
            n_da += p
        key, sub = jax.random.split(key)
        (weights, dyn, traces, opt), z1, z2, ns = second(weights, dyn, traces, opt, sub,
                                                           jnp.asarray(d))
        n_spikes += int(ns)
        z1, z2 = np.asarray(z1), np.asarray(z2)
        for k in np.flatnonzero((z1 > 0) | (z2 > 0)):  # the paper's order: n1 first, then n2
            t = base + int(k)
            if z1[k] > 0:
                n1f = t
            if z2[k] > 0:
                n2f = t
                if t - n1f < INTERVAL and n2f > n1f:
                    due = t + 1000 + int(np.ceil(2000.0 * rng.random()))
                    pulses[due] = pulses.get(due, 0) + 1
                    n_rewards += 1
        w = np.asarray(weights["ee"])
        chosen_per_s.append(round(float(w[0, n2]), 5))
        if (sec + 1) % every == 0 or sec == seconds - 1:
            others = np.concatenate([w[others_ee], np.asarray(weights["ei"])[others_ei]])
            trace.append(_summary(w[0, n2], others, n_rewards, n_spikes, sec + 1))
            print(f"library seed {seed}:", trace[-1], flush=True)
    return _run_result("library", seed, t0, trace, chosen_per_s, n_da)


MODELS = {"library": simulate_library, "standalone": simulate}


def _one(model: str, seconds: int, seed: int, every: int) -> dict:
    return MODELS[model](seconds, seed, every)


def main(
    seconds: int = 3600,
    seeds: tuple[int, ...] = (0,),
    out: str | None = None,
    every: int = 60,
    jobs: int = 1,
    models: tuple[str, ...] = ("library", "standalone"),
) -> dict:
    """Run every model for every seed (``jobs`` processes), write the results side by side.

    Args:
        seconds: model time per run (s).
        seeds: network and noise seeds (the same connectivity for both models).
        out: results folder (default ``benchmarks/results``).
        every: summary interval (s of model time).
        jobs: processes (spawned, so each has a fresh JAX).
        models: ``"library"`` and/or ``"standalone"``.

    Returns:
        The result dict written to ``distal_reward.json``.
    """
    for mdl in models:
        if mdl not in MODELS:
            raise ValueError(f"model {mdl!r}: one of {list(MODELS)}")
    prov = provenance()
    t0 = time.perf_counter()
    tasks = [(mdl, seconds, seed, every) for seed in seeds for mdl in models]
    if jobs > 1 and len(tasks) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(jobs, len(tasks)), mp_context=mp.get_context("spawn")
                                 ) as pool:
            runs = list(pool.map(_one, *zip(*tasks, strict=True)))
    else:
        runs = [_one(*t) for t in tasks]
    return write(runs, seconds, models, prov, time.perf_counter() - t0, out)


def write(runs: list[dict], seconds: int, models: tuple[str, ...], prov: dict, wall_s: float,
          out: str | None = None) -> dict:
    """The result of ``runs`` (from :func:`simulate` / :func:`simulate_library`) as
    ``distal_reward.json`` and ``.md``; the table follows the first run's seed."""
    seeds = list(dict.fromkeys(r["seed"] for r in runs))
    keys = (
        "model",
        "seed",
        "chosen_final",
        "first_second_at_95pct_max",
        "chosen_rank_percentile",
        "others_mean",
        "others_std",
        "others_p99",
        "rewards",
        "rate_hz",
        "wall_s",
    )
    result = {
        "benchmark": "distal_reward (Izhikevich 2007)",
        "seconds_model_time": seconds,
        "models": list(models),
        "wall_s_total": round(wall_s, 1),
        "seeds": [{k: r[k] for k in keys} for r in runs],
        "runs": runs,
        "provenance": prov,
        "machine": machine(),
    }
    # the table: the first seed's trace, the models side by side
    first = [r for r in runs if r["seed"] == seeds[0]]
    by_second = {}
    for r in first:
        for row in r["trace"]:
            by_second.setdefault(row["second"], {"second": row["second"]}).update(
                {f"{r['model']}_{k}": row[k] for k in ("chosen_w", "chosen_rank_pct",
                                                       "others_mean", "rewards", "rate_hz")})
    trace = [by_second[k] for k in sorted(by_second)]
    stride = max(1, len(trace) // 12)
    rows = trace[stride - 1 :: stride]
    if rows[-1]["second"] != trace[-1]["second"]:
        rows.append(trace[-1])
    notes = [
        f"Seed {seeds[0]} above, {seconds} s of model time per run; `chosen_w`: the weight of the "
        "chosen synapse n1 -> n2 (s_max = 4), `chosen_rank_pct`: the percentage of the other "
        "79,999 excitatory synapses below it.",
        "",
        "All runs (final values):",
        "",
        markdown_table(result["seeds"]),
        "",
        "`library`: N-HAL Izhikevich groups + `plasticity/rstdp.py` through "
        "`CompiledNetwork.simulate` / `rule_updates` / `apply_updates` (jax, float32). "
        "`standalone`: the event-driven numpy reference of the paper's code (float64) with "
        "core/neurons.py's Izhikevich equations run by numpy. Same connectivity; the STDP "
        "window differences are in the module docstring.",
        "",
        provenance_line(prov),
    ]
    write_results("distal_reward", result, rows, notes="\n".join(notes), out=out)
    return result


def merge(paths: list[str], out: str | None = None) -> dict:
    """One result from the ``distal_reward.json`` of separate invocations (e.g. one seed per
    invocation); all must have the same model time. Provenance: the first file's."""
    import json

    parts = [json.loads(open(p).read()) for p in paths]
    seconds = {p["seconds_model_time"] for p in parts}
    if len(seconds) != 1:
        raise ValueError(f"different model times {sorted(seconds)}: {paths}")
    runs = [r for p in parts for r in p["runs"]]
    models = tuple(dict.fromkeys(r["model"] for r in runs))
    return write(runs, seconds.pop(), models, parts[0]["provenance"],
                 sum(p["wall_s_total"] for p in parts), out)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=3600)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--jobs", type=int, default=1, help="processes for several runs")
    ap.add_argument("--model", choices=("both", *MODELS), default="both")
    ap.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    ap.add_argument("--every", type=int, default=60, help="summary interval (s of model time)")
    ap.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                    help="write one result from the distal_reward.json of earlier runs")
    args = ap.parse_args()
    if args.merge:
        merge(args.merge, args.out)
        raise SystemExit(0)
    models = tuple(MODELS) if args.model == "both" else (args.model,)
    main(args.seconds, tuple(args.seeds), args.out, args.every, args.jobs, models)
