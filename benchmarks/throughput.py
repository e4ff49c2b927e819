"""Reference spiking agent throughput: neurorl (one jitted scan, vmapped) vs a numpy host loop.

The agent is the one in ``shared/references/reference-agent.md``: CartPole observation -> Gaussian
receptive fields (10 per dimension, gain 0.5) -> 40 input LIF -> dense W1 -> 128 hidden LIF ->
dense W2 -> 2 output LIF, K = 10 substeps of 1 ms per env step, action = argmax of output spike
counts, one trace per neuron (lam = exp(-1/20)), an eligibility per synapse updated every substep
``e = de e + outer(x_pre, s_post) - outer(s_pre, x_post)`` (de = exp(-1/200)), and once per env
step ``W <- clip(W + lr m e, -1, 1)`` with m = reward (-1 on termination), lr = 1e-6.

Implementations, all in this process:

* ``numpy host loop``: the agent written plainly in numpy float32 (a Python loop over substeps),
  one ``gymnasium.make("CartPole-v1")`` per agent and a Python loop over agents -- the way the
  agent is written without a framework.
* ``neurorl plain``: neurorl's public API -- :func:`neurorl.encoding.gaussian_rf`, the ``LIF``
  model of :mod:`neurorl.core.neurons` (snnTorch Leaky form: beta = exp(-dt/tau_mem) = 0.9,
  subtract reset delayed one step, ``integration="direct"``), the ``rstdp`` rule of
  :mod:`neurorl.plasticity` (raw modulator, tau_c = 200 ms) and the JAX CartPole-v1 of
  :mod:`neurorl.envs` -- with ``lax.scan`` over substeps inside ``lax.scan`` over env steps,
  ``vmap`` over agents, all under one ``jit``.
* ``neurorl fused``: the same maths with the 10 substeps of each layer fused into matrix products
  (W is constant within an env step and the net is feed-forward): ``I_h = S_in[10x40] @ W1``,
  traces ``X = L S + lam^(k+1) x_0`` with the 10x10 decay matrix ``L[k, j] = lam^(k-j)``, and the 10
  rank-1 eligibility updates summed as one rank-20 product
  ``e' = de^10 e + [D X_pre; D S_pre]^T [S_post; -X_post]`` with ``D_k = de^(9-k)``, so W and e are
  read and written once per env step. The neuron dynamics still run through neurorl's LIF step.
  On XLA CPU a batched matmul of many tiny matrices (vmap over agents) is slow, so the products
  are written as broadcast multiply-sums and the rank-20 update as 20 broadcast multiply-adds,
  which XLA fuses into single loops (measured: ~2.4x faster at 1024 agents than ``@``/einsum).

* ``neurorl fused, blocked``: the fused rollout run ``jax.lax.map(..., batch_size=BLOCK)`` over
  blocks of 64 agents instead of one vmap over all of them. Every env step must read and write
  each agent's W and e (43 KB); vmapped over 1024 agents that is 44 MB per step, more than the
  caches, so the whole population streams through DRAM every step. A block's 2.75 MB stays in
  cache for all its env steps instead (agents are independent, so the order does not change any
  agent's result). Measured here: ~2x at 1024 agents.
* ``neurorl fused, sharded``: the blocked rollout with the agents split by ``shard_map`` over one
  CPU host device per usable core (``--xla_force_host_platform_device_count``, set in a child
  process because it is fixed when jax starts). XLA's intra-op threads use the second core for
  only ~1.3x; one device per core gives another ~1.3x on top of blocking.

All variants are checked to give the same per-agent spike and episode counts (and W within
float32 rounding) from the same initial agents and keys before their timings are reported.

Before timing, :func:`check_agreement` drives the numpy agent with gymnasium's CartPole and feeds
the same observation and modulator sequence to both JAX versions; actions and per-neuron spike
counts must be equal at every step, and the weights equal within float32 tolerance.

The memory-bandwidth floor is measured in the same process: a jitted scan that only reads and
writes W and e once per agent-step (``e <- de e; W <- clip(W + c e)``, 86 KB per agent-step),
i.e. the least memory traffic any implementation of this agent needs.

Results: ``benchmarks/results/throughput.{json,md}``. This is a benchmark, not a test: numbers
depend on the machine and its load (reported; best of N repeats).

Usage::

    .venv/bin/python benchmarks/throughput.py            # sizes 1 64 1024 4096
    .venv/bin/python benchmarks/throughput.py --quick    # seconds: sizes 1 64, short runs
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from neurorl.core.neurons import LIFParams, LIFState, get_neuron
from neurorl.encoding import gaussian_rf
from neurorl.envs import make
from neurorl.plasticity import RULES

RESULTS = Path(__file__).resolve().parent / "results"

# --- the reference agent (reference-agent.md) ----------------------------------------------------
K = 10  # substeps per env step (dt = 1 ms)
N_IN, N_H, N_OUT = 40, 128, 2
OBS_RANGE = (2.4, 3.0, 0.21, 3.0)  # r: RF centres linspace(-r, r, 10), sigma = 2r/9
GAIN = 0.5
BETA = 0.9  # membrane decay per ms
THR = 1.0
TAU_TRACE = 20.0  # ms, lam = exp(-1/20)
TAU_ELIG = 200.0  # ms, de = exp(-1/200)
LR = 1e-6
QUICK_AGREEMENT_STEPS = 40
BLOCK = 64  # agents per cache-resident block: 64 x 43 KB of W and e = 2.75 MB (fits L2 + L3)
QUICK_BLOCK = 16  # quick mode runs 64 agents: 4 blocks, so the blocked path is exercised
UNROLL = True  # unrolled layer scans: faster steps, slower compile
ELIG_MODE = "unrolled"  # or "dot" / "reduce": same maths, slower on XLA CPU (kept to compare)
W1_MAX, W2_MAX = 0.15, 0.04
# floats per agent that every step must read and write: W1, e1, W2, e2
STATE_FLOATS = 2 * (N_IN * N_H + N_H * N_OUT)
BYTES_PER_AGENT_STEP = 2 * 4 * STATE_FLOATS  # read + write, float32: 86,016 bytes


def lif_params() -> LIFParams:
    """snnTorch ``Leaky(beta=0.9, threshold=1)`` as neurorl LIF params (beta = exp(-dt/tau_mem))."""
    return LIFParams(
        tau_mem=-1.0 / math.log(BETA), v_th=THR, dt=1.0, reset="subtract", integration="direct"
    ).validate()


def encoder():
    """The reference agent's Gaussian receptive fields (:func:`neurorl.encoding.gaussian_rf`)."""
    r = np.asarray(OBS_RANGE)
    return gaussian_rf(-r, r, n_per_dim=10, substeps=K, width=1.0, gain=GAIN, mode="current")


def rule():
    """The eligibility of the reference agent as neurorl's R-STDP rule (raw modulator m).

    ``rstdp`` pairs the decayed traces with this step's spikes; with traces that include this
    step's spikes (the reference form) the simultaneous-spike terms cancel, so the two are equal.
    """
    return RULES["rstdp"](
        a_plus=1.0, a_minus=1.0, tau_plus=TAU_TRACE, tau_minus=TAU_TRACE, tau_c=TAU_ELIG,
        dt=1.0, lr=LR, modulator_kind="raw",
    )


@struct.dataclass
class AgentState:
    """One agent: weights, the three LIF layers and the two rule states (traces, eligibility).

    ``rs1.y_post`` and ``rs2.x_pre`` are both the hidden trace (one trace per neuron).
    """

    w1: jax.Array  # [40, 128]
    w2: jax.Array  # [128, 2]
    lif_in: LIFState
    lif_h: LIFState
    lif_out: LIFState
    rs1: Any
    rs2: Any


def init_weights(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """W1 ~ U(0, 0.15) [40, 128], W2 ~ U(0, 0.04) [128, 2] (float32)."""
    k1, k2 = jax.random.split(key)
    w1 = jax.random.uniform(k1, (N_IN, N_H), jnp.float32, 0.0, W1_MAX)
    w2 = jax.random.uniform(k2, (N_H, N_OUT), jnp.float32, 0.0, W2_MAX)
    return w1, w2


def agent_init(key: jax.Array) -> AgentState:
    """Fresh agent: random weights, zero membranes, traces and eligibilities."""
    lif, p, rl = get_neuron("LIF"), lif_params(), rule()
    w1, w2 = init_weights(key)
    return AgentState(
        w1=w1, w2=w2, lif_in=lif.init(p, N_IN), lif_h=lif.init(p, N_H),
        lif_out=lif.init(p, N_OUT), rs1=rl.init(w1), rs2=rl.init(w2),
    )


def _run_layer(state: LIFState, currents: jax.Array) -> tuple[LIFState, jax.Array]:
    """Scan neurorl's LIF step over the K substeps of a layer: [K, n] currents -> [K, n] spikes."""
    lif, p = get_neuron("LIF"), lif_params()

    def body(s, i):
        z, s = lif.step(p, s, i)
        return s, z

    return jax.lax.scan(body, state, currents, unroll=UNROLL)


def act_plain(agent: AgentState, obs: jax.Array) -> tuple[AgentState, jax.Array, tuple]:
    """One env step of the agent, substep by substep (scan over K; W read every substep).

    Returns:
        (agent with new neuron/trace/eligibility state, action, per-neuron spike counts of the
        three layers ([40], [128], [2])).
    """
    lif, p, rl = get_neuron("LIF"), lif_params(), rule()
    currents = encoder().encode(obs)  # [K, 40]

    def substep(carry, i_in):
        s_in_st, s_h_st, s_o_st, rs1, rs2 = carry
        z_in, s_in_st = lif.step(p, s_in_st, i_in)
        z_h, s_h_st = lif.step(p, s_h_st, z_in @ agent.w1)
        z_o, s_o_st = lif.step(p, s_o_st, z_h @ agent.w2)
        rs1 = rl.accumulate(rs1, z_in, z_h, s_h_st)
        rs2 = rl.accumulate(rs2, z_h, z_o, s_o_st)
        return (s_in_st, s_h_st, s_o_st, rs1, rs2), (z_in, z_h, z_o)

    carry = (agent.lif_in, agent.lif_h, agent.lif_out, agent.rs1, agent.rs2)
    carry, (z_in, z_h, z_o) = jax.lax.scan(substep, carry, currents)
    counts = (z_in.sum(0), z_h.sum(0), z_o.sum(0))
    agent = agent.replace(lif_in=carry[0], lif_h=carry[1], lif_out=carry[2], rs1=carry[3],
                          rs2=carry[4])
    return agent, jnp.argmax(counts[2]).astype(jnp.int32), counts


def _decay_operators() -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Constants of the fused form: L [K, K], lam^(k+1) [K], D = de^(K-1-k) [K], de^K []."""
    lam = float(np.exp(-1.0 / TAU_TRACE))
    de = float(np.exp(-1.0 / TAU_ELIG))
    k = np.arange(K)
    diff = k[:, None] - k[None, :]
    decay = np.where(diff >= 0, lam ** np.maximum(diff, 0), 0.0)
    return (
        jnp.asarray(decay, jnp.float32),
        jnp.asarray(lam ** (k + 1.0), jnp.float32),
        jnp.asarray(de ** (K - 1.0 - k), jnp.float32),
        jnp.asarray(de**K, jnp.float32),
    )


def _fused_traces(x0: jax.Array, spikes: jax.Array) -> jax.Array:
    """All K traces of a layer at once: X[k] = sum_j<=k lam^(k-j) s_j + lam^(k+1) x0 ([K, n])."""
    decay, lam_pow, _, _ = _decay_operators()
    return _spike_matmul(decay, spikes) + lam_pow[:, None] * x0[None, :]


def _fused_eligibility(e0, x_pre, s_pre, x_post, s_post):
    """e after K substeps of e = de e + x_pre (x) s_post - s_pre (x) x_post: one rank-2K product."""
    _, _, d, de_k = _decay_operators()
    left = jnp.concatenate([d[:, None] * x_pre, d[:, None] * s_pre], axis=0)  # [2K, n_pre]
    right = jnp.concatenate([s_post, -x_post], axis=0)  # [2K, n_post]
    if ELIG_MODE == "dot":
        return de_k * e0 + left.T @ right
    if ELIG_MODE == "reduce":
        return de_k * e0 + jnp.sum(left[:, :, None] * right[:, None, :], axis=0)
    # the 2K rank-1 terms written out: one elementwise loop (fused with the weight update by
    # XLA) reads e once instead of a batched tiny matmul writing a temporary
    acc = de_k * e0
    for j in range(2 * K):
        acc = acc + left[j][:, None] * right[j][None, :]
    return acc


def _spike_matmul(spikes: jax.Array, w: jax.Array) -> jax.Array:
    """``spikes [K, n_pre] @ w [n_pre, n_post]`` as a broadcast multiply-sum.

    Vmapped over agents this is one fused reduction loop; XLA CPU runs it ~2x faster than the
    equivalent batched matmul of many tiny matrices.
    """
    return jnp.sum(spikes[:, :, None] * w[None, :, :], axis=1)


def act_fused(agent: AgentState, obs: jax.Array) -> tuple[AgentState, jax.Array, tuple]:
    """One env step with each layer's K substeps fused into matrix products (same maths)."""
    currents = encoder().encode(obs)
    lif_in, z_in = _run_layer(agent.lif_in, currents)
    lif_h, z_h = _run_layer(agent.lif_h, _spike_matmul(z_in, agent.w1))  # [K,40] @ [40,128]
    lif_out, z_o = _run_layer(agent.lif_out, _spike_matmul(z_h, agent.w2))
    rs1, rs2 = agent.rs1, agent.rs2
    x_in = _fused_traces(rs1.x_pre, z_in)
    x_h = _fused_traces(rs1.y_post, z_h)
    x_o = _fused_traces(rs2.y_post, z_o)
    rs1 = rs1.replace(x_pre=x_in[-1], y_post=x_h[-1],
                      eligibility=_fused_eligibility(rs1.eligibility, x_in, z_in, x_h, z_h))
    rs2 = rs2.replace(x_pre=x_h[-1], y_post=x_o[-1],
                      eligibility=_fused_eligibility(rs2.eligibility, x_h, z_h, x_o, z_o))
    counts = (z_in.sum(0), z_h.sum(0), z_o.sum(0))
    agent = agent.replace(lif_in=lif_in, lif_h=lif_h, lif_out=lif_out, rs1=rs1, rs2=rs2)
    return agent, jnp.argmax(counts[2]).astype(jnp.int32), counts


def learn(agent: AgentState, m: jax.Array) -> AgentState:
    """W <- clip(W + lr m e, -1, 1) through the rule's update (grads = -lr m e, descent sign)."""
    rl = rule()
    g1, rs1 = rl.update(agent.rs1, m, agent.w1)
    g2, rs2 = rl.update(agent.rs2, m, agent.w2)
    return agent.replace(
        w1=jnp.clip(agent.w1 - g1, -1.0, 1.0), w2=jnp.clip(agent.w2 - g2, -1.0, 1.0),
        rs1=rs1, rs2=rs2,
    )


def _step_fn(fused: bool):
    """One env step of agent + CartPole + learning (the scan body of every rollout)."""
    env, env_params = make("CartPole-v1")
    act = act_fused if fused else act_plain

    def step(carry, key):
        agent, env_state, obs = carry
        agent, action, counts = act(agent, obs)
        obs, env_state, reward, term, trunc, _ = env.step(key, env_state, action, env_params)
        agent = learn(agent, jnp.where(term, -1.0, reward))
        spikes = counts[0].sum() + counts[1].sum() + counts[2].sum()
        return (agent, env_state, obs), (reward, term | trunc, spikes)

    return step


def _agents_run(n_steps: int, fused: bool, block: int | None):
    """``run(agents, env_states, obs, keys)`` of a population: each agent scans ``n_steps``.

    ``block=None``: ``vmap`` over all agents inside the scan, so every env step touches every
    agent's weights and eligibilities (43 KB each; 44 MB at 1024 agents, beyond the caches).
    ``block=b``: ``jax.lax.map(..., batch_size=b)`` runs the vmapped scan over ``b`` agents at a
    time, so a block's weights and eligibilities stay in cache for all ``n_steps`` steps (agents
    are independent, so the order of blocks does not change any agent's result).
    """
    step = _step_fn(fused)

    def run_one(agent, env_state, obs, key):
        carry, (r, done, spikes) = jax.lax.scan(step, (agent, env_state, obs),
                                                jax.random.split(key, n_steps))
        return carry, (r.sum(), done.sum(), spikes.sum())

    if block is None:
        return jax.vmap(run_one)

    def run(agents, env_states, obs, keys):
        if keys.shape[0] <= block:
            return jax.vmap(run_one)(agents, env_states, obs, keys)
        return jax.lax.map(lambda a: run_one(*a), (agents, env_states, obs, keys),
                           batch_size=block)

    return run


@functools.cache
def make_rollout(n_steps: int, fused: bool, block: int | None = None):
    """The whole env + agent loop as ONE jitted ``lax.scan`` over env steps, vmapped over agents.

    Args:
        n_steps: env steps per agent.
        fused: use :func:`act_fused` (else :func:`act_plain`).
        block: agents per cache-resident block (see :func:`_agents_run`); None vmaps all at once.

    Returns:
        ``run(agents, env_states, obs, keys[B]) -> ((agents, env_states, obs), (return, episodes,
        spikes))`` with the carry buffers donated, so weights and traces stay resident.
    """
    return jax.jit(_agents_run(n_steps, fused, block), donate_argnums=(0, 1, 2))


@functools.cache
def make_sharded_rollout(n_steps: int, block: int | None, n_devices: int):
    """:func:`make_rollout` (fused) with the agent axis split over ``n_devices`` devices.

    ``shard_map`` over a 1-D ``Mesh(("agents",))``: each device runs its share of the agents
    (in blocks of ``block``) with no communication -- on a CPU with host devices forced by
    ``--xla_force_host_platform_device_count``, one core per device.
    """
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:n_devices]), ("agents",))
    spec = jax.sharding.PartitionSpec("agents")
    local = _agents_run(n_steps, True, block)
    run = jax.shard_map(local, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)
    return jax.jit(run, donate_argnums=(0, 1, 2)), jax.sharding.NamedSharding(mesh, spec)


def init_population(key: jax.Array, n: int):
    """``n`` fresh agents and CartPole envs (batched pytrees)."""
    env, env_params = make("CartPole-v1")
    ka, ke = jax.random.split(key)
    agents = jax.vmap(agent_init)(jax.random.split(ka, n))
    obs, env_states = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(ke, n), env_params)
    return agents, env_states, obs


# --- numpy host loop --------------------------------------------------------------------------
class NumpyAgent:
    """The reference agent in plain numpy float32, one substep at a time (host-loop baseline)."""

    def __init__(self, w1: np.ndarray, w2: np.ndarray):
        f = np.float32
        self.w1 = np.array(w1, f)
        self.w2 = np.array(w2, f)
        r = np.asarray(OBS_RANGE)
        self.centres = np.linspace(-r, r, 10, axis=1).astype(f)  # [4, 10]
        self.sigma = (2 * r / 9).astype(f)[:, None]
        self.beta, self.thr, self.gain = f(BETA), f(THR), f(GAIN)
        self.lam, self.de, self.lr = f(np.exp(-1 / TAU_TRACE)), f(np.exp(-1 / TAU_ELIG)), f(LR)
        self.v = [np.zeros(n, f) for n in (N_IN, N_H, N_OUT)]
        self.z = [np.zeros(n, f) for n in (N_IN, N_H, N_OUT)]
        self.x = [np.zeros(n, f) for n in (N_IN, N_H, N_OUT)]
        self.e1 = np.zeros_like(self.w1)
        self.e2 = np.zeros_like(self.w2)

    def _lif(self, layer: int, current: np.ndarray) -> np.ndarray:
        # snnTorch Leaky: reset from the previous step's spike, then threshold
        v = self.beta * self.v[layer] + current - self.thr * self.z[layer]
        s = (v > self.thr).astype(np.float32)
        self.v[layer], self.z[layer] = v, s
        self.x[layer] = self.lam * self.x[layer] + s
        return s

    def act(self, obs: np.ndarray) -> tuple[int, list[np.ndarray]]:
        """K substeps on one observation; returns the action and per-neuron spike counts."""
        d = (np.asarray(obs, np.float32)[:, None] - self.centres) / self.sigma
        current = self.gain * np.exp(np.float32(-0.5) * d * d).reshape(-1)
        counts = [np.zeros(n, np.float32) for n in (N_IN, N_H, N_OUT)]
        for _ in range(K):
            s_in = self._lif(0, current)
            s_h = self._lif(1, s_in @ self.w1)
            s_o = self._lif(2, s_h @ self.w2)
            x_in, x_h, x_o = self.x
            self.e1 = self.de * self.e1 + np.outer(x_in, s_h) - np.outer(s_in, x_h)
            self.e2 = self.de * self.e2 + np.outer(x_h, s_o) - np.outer(s_h, x_o)
            counts[0] += s_in
            counts[1] += s_h
            counts[2] += s_o
        return int(np.argmax(counts[2])), counts

    def learn(self, m: float) -> None:
        """W <- clip(W + lr m e, -1, 1)."""
        self.w1 = np.clip(self.w1 + self.lr * np.float32(m) * self.e1, -1.0, 1.0)
        self.w2 = np.clip(self.w2 + self.lr * np.float32(m) * self.e2, -1.0, 1.0)


def numpy_episode_driver(agent: NumpyAgent, env, n_steps: int, obs: np.ndarray):
    """Run ``agent`` on a gymnasium env for ``n_steps`` (resetting on episode end)."""
    trace = {"obs": [], "m": [], "actions": [], "counts": ([], [], [])}
    for _ in range(n_steps):
        action, counts = agent.act(obs)
        trace["obs"].append(np.asarray(obs, np.float32))
        trace["actions"].append(action)
        for c, lst in zip(counts, trace["counts"], strict=True):
            lst.append(c)
        obs, reward, term, trunc, _ = env.step(action)
        m = -1.0 if term else float(reward)
        agent.learn(m)
        trace["m"].append(m)
        if term or trunc:
            obs, _ = env.reset()
    return trace, obs


# --- agreement ----------------------------------------------------------------------------------
@functools.cache
def make_driven(fused: bool):
    """One JAX agent driven by given observation and modulator sequences ([T, 4], [T])."""
    act = act_fused if fused else act_plain

    def body(agent, xs):
        obs, m = xs
        agent, action, counts = act(agent, obs)
        return learn(agent, m), (action, counts)

    return jax.jit(lambda agent, obs, m: jax.lax.scan(body, agent, (obs, m)))


def check_agreement(n_steps: int = 300, seed: int = 0, numpy_overrides: dict | None = None
                    ) -> dict:
    """Numpy agent on gymnasium CartPole vs both JAX agents fed the same observations.

    Args:
        n_steps: env steps compared.
        seed: weight and gymnasium seed.
        numpy_overrides: attributes of :class:`NumpyAgent` to replace (e.g. ``{"beta": 0.95}``),
            to show that a wrong model is caught.

    Returns:
        A dict with, per JAX version, the number of steps whose action and per-neuron spike
        counts (all three layers) equal numpy's, the first mismatching step (or None), the largest
        weight difference; plus fused-vs-plain agreement and the spike totals per layer.
    """
    agent0 = agent_init(jax.random.PRNGKey(seed))
    np_agent = NumpyAgent(np.asarray(agent0.w1), np.asarray(agent0.w2))
    for name, value in (numpy_overrides or {}).items():
        setattr(np_agent, name, np.float32(value))
    env = gymnasium.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    tr, _ = numpy_episode_driver(np_agent, env, n_steps, obs)
    env.close()
    obs_seq = jnp.asarray(np.stack(tr["obs"]))
    m_seq = jnp.asarray(np.asarray(tr["m"], np.float32))
    np_actions = np.asarray(tr["actions"])
    np_counts = [np.stack(c) for c in tr["counts"]]
    out: dict[str, Any] = {
        "steps": n_steps,
        "episodes_ended": int(np.sum(np.asarray(tr["m"]) < 0)),
        "numpy_spikes_per_layer": [int(c.sum()) for c in np_counts],
    }
    finals = {}
    per_step = {}
    for name, fused in (("plain", False), ("fused", True)):
        final, (actions, counts) = make_driven(fused)(agent0, obs_seq, m_seq)
        actions = np.asarray(actions)
        counts = [np.asarray(c) for c in counts]
        ok = actions == np_actions
        for c, ref in zip(counts, np_counts, strict=True):
            ok &= np.all(c == ref, axis=1)
        bad = np.flatnonzero(~ok)
        out[name] = {
            "steps_equal": int(ok.sum()),
            "first_mismatch": int(bad[0]) if bad.size else None,
            "spikes_per_layer": [int(c.sum()) for c in counts],
            "max_abs_w1_diff_vs_numpy": float(np.max(np.abs(np.asarray(final.w1) - np_agent.w1))),
            "max_abs_w2_diff_vs_numpy": float(np.max(np.abs(np.asarray(final.w2) - np_agent.w2))),
            "max_rel_e1_diff_vs_numpy": _rel(final.rs1.eligibility, np_agent.e1),
        }
        finals[name] = final
        per_step[name] = (actions, counts)
    same = per_step["plain"][0] == per_step["fused"][0]
    for a, b in zip(per_step["plain"][1], per_step["fused"][1], strict=True):
        same &= np.all(a == b, axis=1)
    out["fused_vs_plain"] = {
        "steps_equal": int(same.sum()),
        "max_abs_w1_diff": float(np.max(np.abs(finals["plain"].w1 - finals["fused"].w1))),
        "max_rel_e1_diff": _rel(finals["fused"].rs1.eligibility, finals["plain"].rs1.eligibility),
        "max_rel_e2_diff": _rel(finals["fused"].rs2.eligibility, finals["plain"].rs2.eligibility),
    }
    out["agree"] = bool(
        out["plain"]["steps_equal"] == n_steps
        and out["fused"]["steps_equal"] == n_steps
        and out["fused_vs_plain"]["steps_equal"] == n_steps
        and out["fused_vs_plain"]["max_rel_e1_diff"] < 1e-4
        and out["plain"]["max_rel_e1_diff_vs_numpy"] < 1e-4
    )
    return out


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


# --- timing -------------------------------------------------------------------------------------
def time_neurorl(n: int, n_steps: int, fused: bool, repeats: int, block: int | None = None,
                 n_devices: int = 1) -> dict:
    """Agent-steps/s of the jitted rollout with ``n`` agents (best of repeats, compile excluded).

    Args:
        n: agents.
        n_steps: env steps per agent in one call.
        fused: :func:`act_fused` (else :func:`act_plain`).
        repeats: timed calls; the best is reported.
        block: agents per cache-resident block (:func:`make_rollout`); None vmaps all at once.
        n_devices: > 1 splits the agents over that many devices (:func:`make_sharded_rollout`,
            fused only; ``n`` must be a multiple).

    Returns:
        steps/s and details, with ``first_call``: per agent, the spike and episode counts and the
        sum of W1 after the first call (same initial agents and keys for every variant), to check
        that the variants compute the same thing (:func:`same_result`).
    """
    if n_devices > 1:
        run, sharding = make_sharded_rollout(n_steps, block, n_devices)
        place = functools.partial(jax.device_put, device=sharding)
    else:
        run, place = make_rollout(n_steps, fused, block), (lambda x: x)
    carry = place(init_population(jax.random.PRNGKey(1), n))
    keys = [place(jax.random.split(jax.random.PRNGKey(2 + r), n)) for r in range(repeats + 1)]
    t0 = time.perf_counter()
    carry, stats = run(*carry, keys[0])
    jax.block_until_ready(stats)
    compile_s = time.perf_counter() - t0
    first = {
        "w1_checksum": np.asarray(carry[0].w1.sum(axis=(1, 2)), np.float64).tolist(),
        "spikes": np.asarray(stats[2]).astype(np.int64).tolist(),
        "episodes": np.asarray(stats[1]).astype(np.int64).tolist(),
    }
    best = float("inf")
    for r in range(repeats):
        t0 = time.perf_counter()
        carry, stats = run(*carry, keys[r + 1])
        jax.block_until_ready((carry, stats))
        best = min(best, time.perf_counter() - t0)
    ret, episodes, spikes = (np.asarray(s) for s in stats)
    assert ret.sum() == n * n_steps  # CartPole gives +1 every step: the env really stepped
    return {
        "steps_per_s": n * n_steps / best,
        "best_s": best,
        "scan_steps": n_steps,
        "block": block,
        "devices": n_devices,
        "first_call_s_incl_compile": compile_s,
        "episodes_per_agent": float(episodes.mean()),
        "spikes_per_agent_step": float(spikes.sum() / (n * n_steps)),
        "first_call": first,
    }


def same_result(a: dict, b: dict) -> dict:
    """Compare two :func:`time_neurorl` first calls: spike and episode counts per agent must be
    equal, and the W1 sums equal within float32 rounding (relative 1e-5)."""
    fa, fb = a["first_call"], b["first_call"]
    wa, wb = np.asarray(fa["w1_checksum"]), np.asarray(fb["w1_checksum"])
    rel = float(np.max(np.abs(wa - wb)) / max(float(np.max(np.abs(wb))), 1e-30))
    spikes_equal = fa["spikes"] == fb["spikes"]
    episodes_equal = fa["episodes"] == fb["episodes"]
    return {
        "spikes_equal": spikes_equal,
        "episodes_equal": episodes_equal,
        "w1_sum_max_rel_diff": rel,
        "same": bool(spikes_equal and episodes_equal and rel < 1e-5),
    }


def time_sharded(sizes: list[int], steps: dict[int, int], repeats: int, block: int | None,
                 n_devices: int, timeout_s: float = 1800.0) -> dict[int, dict]:
    """:func:`time_neurorl` with the agents split over ``n_devices`` forced CPU host devices.

    Runs in a child process (``--sharded-worker``) because the host device count is fixed when
    jax starts: ``XLA_FLAGS=--xla_force_host_platform_device_count=n_devices``.

    Returns:
        ``{agents: time_neurorl result}`` for the sizes that are multiples of ``n_devices``.
    """
    sizes = [n for n in sizes if n >= n_devices and n % n_devices == 0]
    if not sizes:
        return {}
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        f" --xla_force_host_platform_device_count={n_devices}").strip()
    env["JAX_PLATFORMS"] = "cpu"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--sharded-worker",
           "--sizes", *map(str, sizes), "--steps", *(str(steps[n]) for n in sizes),
           "--repeats", str(repeats), "--block", str(block or 0), "--devices", str(n_devices)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"sharded worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    return {int(k): v for k, v in rows.items()}


def _sharded_worker(sizes: list[int], steps: list[int], repeats: int, block: int,
                    n_devices: int) -> None:
    """Child process of :func:`time_sharded`: prints ``{agents: result}`` as one JSON line."""
    if len(jax.devices()) < n_devices:
        raise SystemExit(f"--devices {n_devices}: jax sees only {len(jax.devices())} device(s)")
    out = {n: time_neurorl(n, k, True, repeats, block=block or None, n_devices=n_devices)
           for n, k in zip(sizes, steps, strict=True)}
    print(json.dumps(out))


def time_numpy(n: int, budget_s: float, repeats: int, max_agents: int = 8) -> dict:
    """Agent-steps/s of the numpy host loop over ``min(n, max_agents)`` agents (best of repeats).

    The host loop's cost grows linearly with the number of agents, so for large ``n`` a subset is
    timed and the per-agent-step rate reported.
    """
    m = min(n, max_agents)
    rng = np.random.default_rng(0)
    agents = [NumpyAgent(rng.uniform(0, W1_MAX, (N_IN, N_H)), rng.uniform(0, W2_MAX, (N_H, N_OUT)))
              for _ in range(m)]
    envs = [gymnasium.make("CartPole-v1") for _ in range(m)]
    obs = [e.reset(seed=i)[0] for i, e in enumerate(envs)]
    best = 0.0
    for _ in range(repeats):
        count, t0 = 0, time.perf_counter()
        while True:
            for i in range(m):
                action, _ = agents[i].act(obs[i])
                o, reward, term, trunc, _ = envs[i].step(action)
                agents[i].learn(-1.0 if term else float(reward))
                obs[i] = envs[i].reset()[0] if term or trunc else o
            count += m
            elapsed = time.perf_counter() - t0
            if elapsed >= budget_s / repeats:
                break
        best = max(best, count / elapsed)
    for e in envs:
        e.close()
    return {"steps_per_s": best, "agents_timed": m}


def bandwidth_floor(n: int, n_steps: int, repeats: int) -> dict:
    """Agent-steps/s of the least memory traffic the agent needs: read and write W, e once a step.

    A jitted scan of ``e <- de^K e; W <- clip(W + c e, -1, 1)`` over all four matrices of ``n``
    agents (86 KB per agent-step), buffers donated: an upper bound for any implementation whose
    weights and eligibilities do not fit in cache.
    """
    de_k = jnp.float32(np.exp(-K / TAU_ELIG))

    def step(carry, c):
        w, e = carry
        e = de_k * e
        return (jnp.clip(w + c * e, -1.0, 1.0), e), None

    @jax.jit
    def run(w, e, cs):
        return jax.lax.scan(step, (w, e), cs)[0]

    run = jax.jit(run, donate_argnums=(0, 1))
    w = jnp.zeros((n, STATE_FLOATS // 2), jnp.float32)
    e = jnp.ones((n, STATE_FLOATS // 2), jnp.float32)
    cs = jnp.full((n_steps,), 1e-6, jnp.float32)
    w, e = jax.block_until_ready(run(w, e, cs))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        w, e = jax.block_until_ready(run(w, e, cs))
        best = min(best, time.perf_counter() - t0)
    sps = n * n_steps / best
    return {"steps_per_s": sps, "bandwidth_GB_per_s": sps * BYTES_PER_AGENT_STEP / 1e9}


# --- machine, results ---------------------------------------------------------------------------
@functools.cache
def _common():
    """``benchmarks/common.py`` (loaded by path: this script also runs outside the package)."""
    spec = importlib.util.spec_from_file_location("_bench_common", RESULTS.parent / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    return common


def machine() -> dict:
    """``benchmarks/common.py``'s machine description plus load, jax backend and gymnasium."""
    info = _common().machine()
    info["loadavg_1_5_15"] = _loadavg()
    info["jax_backend"] = jax.default_backend()
    info["gymnasium"] = gymnasium.__version__
    return info


def _loadavg() -> list[float] | None:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


VARIANT_NAMES = {
    "plain": "plain",
    "fused": "fused",
    "fused_blocked": "fused, blocked",
    "fused_sharded": "fused, blocked, sharded over the cores",
}


def markdown(result: dict) -> str:
    """The throughput table and the agreement summary as markdown."""
    info, ag = result["machine"], result["agreement"]
    lines = [
        "# Reference spiking agent on CartPole-v1: agent-env steps per second",
        "",
        f"Machine: {info.get('cpu')}, {info.get('usable_cores')} usable cores of "
        f"{info.get('logical_cores')}, load average {info.get('loadavg_1_5_15')} (before) / "
        f"{result.get('loadavg_after')} (after); jax {info.get('jax')} "
        f"({info.get('jax_backend')}), numpy {info.get('numpy')}, gymnasium "
        f"{info.get('gymnasium')}.",
        "",
        f"Agreement first ({ag['steps']} steps of gymnasium CartPole driven by the numpy agent, "
        f"{ag['episodes_ended']} terminations): actions and per-neuron spike counts of all three "
        f"layers equal at {ag['plain']['steps_equal']}/{ag['steps']} steps (neurorl plain) and "
        f"{ag['fused']['steps_equal']}/{ag['steps']} (fused); fused vs plain "
        f"{ag['fused_vs_plain']['steps_equal']}/{ag['steps']}, eligibility max relative "
        f"difference {ag['fused_vs_plain']['max_rel_e1_diff']:.1e}; spikes per layer "
        f"{ag['numpy_spikes_per_layer']}. **{'AGREE' if ag['agree'] else 'DISAGREE'}**.",
        "",
        f"Best of {result['repeats']} repeats, compile excluded. numpy host loop: a Python loop "
        "over agents, each with its own gymnasium env (a subset timed for large N), one core. "
        "neurorl plain: substep by substep, vmapped over all agents. fused: substeps fused into "
        "matrix products, vmapped over all agents (every env step streams all agents' W and e "
        f"through memory). blocked: the fused rollout in blocks of {result.get('block')} agents "
        "(`jax.lax.map(..., batch_size)`), each block scanning all its env steps while its "
        "weights and eligibilities stay in cache. sharded: blocked, with the agents split over "
        f"{result.get('sharded_devices') or '-'} CPU host devices (one per core; `shard_map`). "
        "All variants give the same per-agent spike and episode counts. Floor: a jitted scan "
        "that only reads and writes W and e once per agent-step "
        f"({BYTES_PER_AGENT_STEP / 1000:.0f} KB) for all agents at once, i.e. without cache "
        "reuse (blocking can beat it).",
        "",
        "| agents | numpy host loop | neurorl plain | fused | fused, blocked | fused, sharded "
        "| best / numpy | bandwidth floor | best / floor |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def fmt(v):
        return f"{v:,.0f}" if v else "-"

    for r in result["rows"]:
        floor = r.get("floor_steps_per_s")
        best = r.get("best_steps_per_s", r["fused_steps_per_s"])
        lines.append(
            f"| {r['agents']} | {fmt(r['numpy_steps_per_s'])} | {fmt(r['plain_steps_per_s'])} "
            f"| {fmt(r['fused_steps_per_s'])} | {fmt(r.get('fused_blocked_steps_per_s'))} "
            f"| {fmt(r.get('fused_sharded_steps_per_s'))} "
            f"| {r.get('best_vs_numpy', r['fused_vs_numpy']):.1f}x | "
            + (f"{floor:,.0f} | {best / floor:.2f} |" if floor else "- | - |")
        )
    bar = result.get("bar")
    if bar:
        lines += ["", bar]
    return "\n".join(lines) + "\n"


def main(quick: bool = False, out: Path | str | None = None, sizes: list[int] | None = None,
         repeats: int | None = None) -> dict:
    """Agreement check, then the timings; writes ``throughput.json`` and ``throughput.md``.

    Args:
        quick: seconds-long smoke run (sizes 1 and 64, short scans, 50 agreement steps).
        out: results folder (default ``benchmarks/results``).
        sizes: numbers of agents (default 1 64 1024 4096; quick: 1 64).
        repeats: timing repeats, best reported (default 5; quick: 2).

    Returns:
        The result dict written to ``throughput.json``.
    """
    out = Path(out) if out is not None else RESULTS
    sizes = sizes or ([1, 64] if quick else [1, 64, 1024, 4096])
    repeats = repeats or (2 if quick else 5)
    info = machine()
    agreement = check_agreement(n_steps=QUICK_AGREEMENT_STEPS if quick else 300)
    print(f"agreement: {agreement['agree']} ({agreement['plain']['steps_equal']}/"
          f"{agreement['fused']['steps_equal']} of {agreement['steps']} steps)", flush=True)
    if not agreement["agree"]:
        raise AssertionError(f"neurorl and numpy agents disagree: {agreement}")
    rows = []
    budget = 0.3 if quick else 3.0
    block = QUICK_BLOCK if quick else BLOCK
    cpu = jax.default_backend() == "cpu"
    n_dev = (info.get("usable_cores") or 1) if cpu else 1
    steps = {n: int(np.clip((2_000 if quick else 100_000) // n, 10 if quick else 25, 2000))
             for n in sizes}
    # the agents split over one forced host device per core (a child process; see time_sharded)
    sharded = time_sharded(sizes, steps, repeats, block, n_dev) if n_dev > 1 else {}
    for n in sizes:
        n_steps = steps[n]
        nump = time_numpy(n, budget, repeats)
        plain = time_neurorl(n, n_steps, False, repeats)
        fused = time_neurorl(n, n_steps, True, repeats)
        # n <= block runs the same program as fused: not timed twice
        blocked = (time_neurorl(n, n_steps, True, repeats, block=block) if cpu and n > block
                   else None)
        shard = sharded.get(n)
        checks = {}
        if blocked:
            checks["blocked_vs_vmap"] = same_result(blocked, fused)
        if shard:
            checks["sharded_vs_vmap"] = same_result(shard, fused)
        if not all(c["same"] for c in checks.values()):
            raise AssertionError(f"rollout variants disagree at {n} agents: {checks}")
        variants = {"plain": plain, "fused": fused, "fused_blocked": blocked,
                    "fused_sharded": shard}
        best_name = max((k for k, v in variants.items() if v),
                        key=lambda k: variants[k]["steps_per_s"])
        floor = bandwidth_floor(n, n_steps, repeats) if n >= 64 and not quick else None
        row = {
            "agents": n,
            "numpy_steps_per_s": nump["steps_per_s"],
            "numpy_agents_timed": nump["agents_timed"],
            **{f"{k}_steps_per_s": (v["steps_per_s"] if v else None)
               for k, v in variants.items()},
            "best": best_name,
            "best_steps_per_s": variants[best_name]["steps_per_s"],
            "plain_vs_numpy": plain["steps_per_s"] / nump["steps_per_s"],
            "fused_vs_numpy": fused["steps_per_s"] / nump["steps_per_s"],
            "best_vs_numpy": variants[best_name]["steps_per_s"] / nump["steps_per_s"],
            "variants_agree": checks,
            **{k: v for k, v in variants.items() if v},
            "floor_steps_per_s": floor["steps_per_s"] if floor else None,
            "floor_bandwidth_GB_per_s": floor["bandwidth_GB_per_s"] if floor else None,
            "loadavg": _loadavg(),
        }
        for v in variants.values():
            if v:
                v.pop("first_call", None)  # per-agent lists: checked above, not worth storing
        rows.append(row)
        print(f"N={n:5d} numpy {row['numpy_steps_per_s']:9,.0f}  plain "
              f"{row['plain_steps_per_s']:9,.0f}  fused {row['fused_steps_per_s']:9,.0f}  "
              f"blocked {row['fused_blocked_steps_per_s'] or 0:9,.0f}  sharded "
              f"{row['fused_sharded_steps_per_s'] or 0:9,.0f}  best/numpy "
              f"{row['best_vs_numpy']:6.1f}x  floor {row['floor_steps_per_s'] or 0:9,.0f}  "
              f"load {row['loadavg']}", flush=True)
    result = {
        "benchmark": "throughput",
        "agent": "reference-agent.md (40-128-2 LIF, K=10, R-STDP eligibility, CartPole-v1)",
        "quick": quick,
        "repeats": repeats,
        "bytes_per_agent_step_floor": BYTES_PER_AGENT_STEP,
        "block": block,
        "sharded_devices": n_dev if sharded else None,
        "machine": info,
        "agreement": agreement,
        "rows": rows,
        "loadavg_after": _loadavg(),
    }
    at_1024 = [r for r in rows if r["agents"] == 1024]
    if at_1024:
        r = at_1024[0]
        x = r["best_vs_numpy"]
        result["bar"] = (
            f"At 1024 agents: neurorl ({VARIANT_NAMES[r['best']]}) {x:.0f}x the numpy host loop "
            f"(bar >= 30x: {'met' if x >= 30 else 'NOT met'}; aim >= 100x: "
            f"{'met' if x >= 100 else 'not met'})."
        )
    _common().write_results("throughput", result, rows, out=out, markdown=markdown(result))
    return result


def _cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="seconds-long smoke run")
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--sharded-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--block", type=int, default=BLOCK, help=argparse.SUPPRESS)
    ap.add_argument("--devices", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sharded_worker:
        _sharded_worker(args.sizes, args.steps, args.repeats, args.block, args.devices)
        return
    result = main(args.quick, args.out, args.sizes, args.repeats)
    print(markdown(result))


if __name__ == "__main__":
    _cli()
