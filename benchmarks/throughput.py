"""Throughput of the path users run: ``make_train`` against a numpy host loop, in one process.

Table 1, the reference agent (``shared/references/reference-agent.md``, registered as agent
``"reference"``: RF currents -> 40 input LIF -> W1 -> 128 hidden LIF -> W2 -> 2 output LIF,
K = 10 substeps, R-STDP eligibility on both matrices, ``W += lr m e`` once per env step) on
CartPole-v1, agent-env steps per second:

* ``numpy host loop``: the agent in plain numpy float32 (:class:`NumpyAgent`, a Python loop over
  substeps), one ``gymnasium.make("CartPole-v1")`` per agent and a Python loop over agents. Its
  neurons are :mod:`neurorl.core.neurons`' LIF equations run by numpy
  (``LIF.step(..., xp=numpy)``: the simulator's own update, no jax dispatch); the receptive
  fields, traces and eligibility are written out here;
* ``make_train``: :func:`neurorl.experiment.train.make_train` with ``agent="reference"``,
  ``n_envs=1`` and ``n_seeds`` = agents, timed with ``train.run_chunk`` (compile excluded),
  exactly as a user runs it: the simulator fuses the K substeps of each feed-forward stage and
  updates the eligibilities in one rank-2K product per env step, ``make_train`` splits the
  seeds over one CPU host device per core and runs them in cache-resident blocks when they
  outgrow the caches (:mod:`neurorl.experiment.sharding`). This file has no model code.

Before timing, :func:`check_agreement` drives the agent ``make_train`` built (``train.agent``)
with the observations and modulators of the numpy agent on gymnasium's CartPole, from the same
weights: actions and per-neuron spike counts of all three layers must be equal at every step.

Table 2, the built-in learning agents through ``make_train`` (8 envs x 5 seeds, 5 substeps,
CartPole-v1, compile excluded, env steps/s summed over envs and seeds): ``eprop_ac``, ``rstdp``,
``bptt_ac`` on this checkout and, with ``--old-python PATH``, on another install of neurorl (an
older commit in its own venv) -- each in a fresh subprocess (``--train-worker``), so both get a
clean JAX with the device setup ``make_train`` asks for.

With ``--ppo-python PATH`` (a venv with rejax 0.1.3 and gymnax < 1.0), the table gets a pure-JAX
PPO row beside them: rejax's PPO (MLP 64x64) training on gymnax CartPole-v1 with 16 envs
(``benchmarks/rejax_ppo.py``, in that interpreter), env steps/s compile excluded.

Results: ``benchmarks/results/throughput.{json,md}``. This is a benchmark, not a test: numbers
depend on the machine and its load (reported; best of N repeats). Run it on a quiet machine::

    git worktree add /tmp/old13 35dc39f && python3 -m venv /tmp/old13/.venv \
        && /tmp/old13/.venv/bin/pip install -e /tmp/old13          # the pre-refactor install
    python3 -m venv /tmp/ppo-venv && /tmp/ppo-venv/bin/pip install "rejax==0.1.3" "gymnax<1.0"
    .venv/bin/python benchmarks/throughput.py --old-python /tmp/old13/.venv/bin/python \
        --ppo-python /tmp/ppo-venv/bin/python
    .venv/bin/python benchmarks/throughput.py --quick      # seconds: sizes 1 and 64
    .venv/bin/python benchmarks/throughput.py --quick --learners --old-python ... # + learners
"""

from __future__ import annotations

import argparse
import functools
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

# importing make_train's module asks XLA for one host device per core: nothing above starts
# jax's backend (importing jax does not)
from neurorl.core.neurons import LIF, make_params
from neurorl.experiment.train import TrainConfig, make_train

RESULTS = Path(__file__).resolve().parent / "results"

# --- the reference agent's constants (reference-agent.md), for the numpy host loop -------------
K = 10  # substeps per env step (dt = 1 ms)
N_IN, N_H, N_OUT = 40, 128, 2
OBS_RANGE = (2.4, 3.0, 0.21, 3.0)  # r: RF centres linspace(-r, r, 10), sigma = 2r/9
GAIN = 0.5
# snnTorch Leaky form of core.neurons' LIF: decay beta = 0.9 per 1 ms substep, threshold 1,
# subtract reset from the previous step's spike
LIF_PARAMS = {"tau_mem": -1.0 / math.log(0.9), "v_th": 1.0, "dt": 1.0, "reset": "subtract",
              "integration": "direct"}
TAU_TRACE = 20.0  # ms, lam = exp(-1/20)
TAU_ELIG = 200.0  # ms, de = exp(-1/200)
LR = 1e-6
W1_MAX, W2_MAX = 0.15, 0.04
QUICK_AGREEMENT_STEPS = 40
GROUPS = ("in", "hidden", "out")  # the reference network's groups, input to output
LEARNERS = ("eprop_ac", "rstdp", "bptt_ac")


def reference_config(n_agents: int, n_steps: int) -> TrainConfig:
    """``make_train`` config of ``n_agents`` reference agents (one env each) for ``n_steps``."""
    return TrainConfig("CartPole-v1", "reference", {}, n_steps=n_steps, n_envs=1, substeps=K,
                       n_seeds=n_agents, obs_range=OBS_RANGE)


# --- numpy host loop --------------------------------------------------------------------------
class NumpyAgent:
    """The reference agent in plain numpy float32, one substep at a time (host-loop baseline).

    Args:
        w1, w2: initial weights.
        lif: LIF parameter overrides (a wrong model, to show that the agreement check fails).
    """

    def __init__(self, w1: np.ndarray, w2: np.ndarray, lif: dict | None = None):
        f = np.float32
        self.w1 = np.array(w1, f)
        self.w2 = np.array(w2, f)
        r = np.asarray(OBS_RANGE)
        self.centres = np.linspace(-r, r, 10, axis=1).astype(f)  # [4, 10]
        self.sigma = (2 * r / 9).astype(f)[:, None]
        self.gain = f(GAIN)
        self.lam, self.de, self.lr = f(np.exp(-1 / TAU_TRACE)), f(np.exp(-1 / TAU_ELIG)), f(LR)
        self.lif = make_params(LIF, {**LIF_PARAMS, **(lif or {})})
        self.neurons = [LIF.init(self.lif, n, xp=np) for n in (N_IN, N_H, N_OUT)]
        self.x = [np.zeros(n, f) for n in (N_IN, N_H, N_OUT)]
        self.e1 = np.zeros_like(self.w1)
        self.e2 = np.zeros_like(self.w2)

    def _lif(self, layer: int, current: np.ndarray) -> np.ndarray:
        s, self.neurons[layer] = LIF.step(self.lif, self.neurons[layer], current, xp=np)
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


# --- agreement ----------------------------------------------------------------------------------
@functools.cache
def _driven():
    """The reference agent ``make_train`` builds, driven by given observations and modulators."""
    train = make_train(reference_config(1, 1))
    agent = train.agent

    def body(state, xs):
        obs, m, key = xs
        action, state = agent.act(state, obs[None], key)
        state = agent.learn(state, jnp.ones((1,), jnp.float32), (m < 0)[None],
                            jnp.zeros((1,), bool))
        return state, (action[0], {g: state.counts[g][0] for g in GROUPS})

    run = jax.jit(lambda s, obs, m, keys: jax.lax.scan(body, s, (obs, m, keys)))
    return agent, run


def check_agreement(n_steps: int = 300, seed: int = 0, numpy_overrides: dict | None = None
                    ) -> dict:
    """The numpy agent on gymnasium CartPole vs ``make_train``'s agent fed the same inputs.

    Args:
        n_steps: env steps compared.
        seed: agent init key and gymnasium seed.
        numpy_overrides: LIF parameters of the numpy agent to replace (e.g. ``{"tau_mem": 19.5}``
            for a decay of 0.95 instead of 0.9), to show that a wrong model is caught.

    Returns:
        Steps whose action and per-neuron spike counts (all three layers) are equal, the first
        mismatch (or None), the largest weight difference and eligibility relative difference,
        spikes per layer, and ``agree``.
    """
    agent, run = _driven()
    state = agent.init(jax.random.key(seed))
    np_agent = NumpyAgent(np.asarray(state.weights["w1"]), np.asarray(state.weights["w2"]),
                          lif=numpy_overrides)
    env = gymnasium.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    tr, _ = numpy_episode_driver(np_agent, env, n_steps, obs)
    env.close()
    keys = jax.random.split(jax.random.key(seed + 1), n_steps)
    final, (actions, counts) = run(state, jnp.asarray(np.stack(tr["obs"])),
                                   jnp.asarray(np.asarray(tr["m"], np.float32)), keys)
    actions = np.asarray(actions)
    counts = [np.asarray(counts[g]) for g in GROUPS]
    np_counts = [np.stack(c) for c in tr["counts"]]
    ok = actions == np.asarray(tr["actions"])
    for c, ref in zip(counts, np_counts, strict=True):
        ok &= np.all(c == ref, axis=1)
    bad = np.flatnonzero(~ok)
    e1 = np.asarray(final.traces["w1"].eligibility[0], np.float64)
    out = {
        "steps": n_steps,
        "episodes_ended": int(np.sum(np.asarray(tr["m"]) < 0)),
        "steps_equal": int(ok.sum()),
        "first_mismatch": int(bad[0]) if bad.size else None,
        "numpy_spikes_per_layer": [int(c.sum()) for c in np_counts],
        "spikes_per_layer": [int(c.sum()) for c in counts],
        "max_abs_w1_diff": float(np.max(np.abs(np.asarray(final.weights["w1"]) - np_agent.w1))),
        "max_abs_w2_diff": float(np.max(np.abs(np.asarray(final.weights["w2"]) - np_agent.w2))),
        "max_rel_e1_diff": float(np.max(np.abs(e1 - np_agent.e1))
                                 / max(np.max(np.abs(np_agent.e1)), 1e-30)),
    }
    out["agree"] = bool(out["steps_equal"] == n_steps and out["max_rel_e1_diff"] < 1e-4)
    return out


# --- timing -------------------------------------------------------------------------------------
def _time_chunks(train: Any, rs: Any, n_steps: int, repeats: int) -> tuple[Any, float, float]:
    """``train.run_chunk(rs, n_steps)`` once (compile) then ``repeats`` times; returns the last
    metrics, the first call's seconds (compile included) and the best of the repeats."""
    t0 = time.perf_counter()
    rs, m = train.run_chunk(rs, n_steps)
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        rs, m = train.run_chunk(rs, n_steps)
        jax.block_until_ready((rs, m))
        best = min(best, time.perf_counter() - t0)
    return m, compile_s, best


def time_make_train(n: int, n_steps: int, repeats: int) -> dict:
    """Agent-steps/s of ``make_train`` with ``n`` reference agents (best of repeats, compile
    excluded): ``train.run_chunk`` of ``n_steps`` env steps per agent."""
    train = make_train(reference_config(n, n_steps))
    m, compile_s, best = _time_chunks(train, train.init(jax.random.key(1)), n_steps, repeats)
    reward = np.asarray(m["reward"])
    assert reward.sum() == n * n_steps  # CartPole gives +1 every step: the envs really stepped
    return {
        "steps_per_s": n * n_steps / best, "best_s": best, "scan_steps": n_steps,
        "first_call_s_incl_compile": compile_s, "devices": train.layout.n_devices,
        "block": train.block, "episodes_per_agent": float(np.asarray(m["done"]).sum() / n),
        "spikes_per_agent_step": float(np.asarray(m["spikes"]).mean()),
    }


def time_learner(agent: str, n_envs: int, n_seeds: int, substeps: int, n_steps: int,
                 repeats: int) -> dict:
    """Env steps/s of ``make_train`` for a built-in agent (best of repeats, compile excluded).

    Uses only ``TrainConfig``, ``make_train`` and ``run_chunk``, so it runs on older installs.
    """
    probe = make_train(TrainConfig("CartPole-v1", agent, {}, n_steps=n_envs * 1024,
                                   n_envs=n_envs, substeps=substeps, n_seeds=n_seeds))
    unit = n_envs * (probe.agent.update_every if probe.agent.update is not None else 1)
    steps = max(unit, int(math.ceil(n_steps / unit)) * unit)
    train = make_train(TrainConfig("CartPole-v1", agent, {}, n_steps=steps, n_envs=n_envs,
                                   substeps=substeps, n_seeds=n_seeds))
    _, compile_s, best = _time_chunks(train, train.init(jax.random.key(0)), steps, repeats)
    layout = getattr(train, "layout", None)
    return {"steps_per_s": steps * n_seeds / best, "best_s": best, "env_steps_per_seed": steps,
            "first_call_s_incl_compile": compile_s,
            "devices": layout.n_devices if layout is not None else 1,
            "jax_devices": len(jax.devices())}


def _train_worker(agents: list[str], n_envs: int, n_seeds: int, substeps: int, n_steps: int,
                  repeats: int) -> None:
    """Child process: prints ``{agent: time_learner result}`` and the neurorl path as JSON."""
    import neurorl

    out = {a: time_learner(a, n_envs, n_seeds, substeps, n_steps, repeats) for a in agents}
    print(json.dumps({"rows": out, "neurorl": str(Path(neurorl.__file__).parent)}))


def time_learners(python: str, n_envs: int = 8, n_seeds: int = 5, substeps: int = 5,
                  n_steps: int = 40_000, repeats: int = 3, agents: tuple[str, ...] = LEARNERS,
                  timeout_s: float = 3600.0) -> dict:
    """:func:`time_learner` for ``agents`` in a fresh ``python`` (this or another install).

    The child runs this file outside the repository root, so ``neurorl`` is whatever that
    interpreter has installed, with ``XLA_FLAGS`` minus a host-device count: each install
    chooses its devices as it does for its users.
    """
    cmd = [python, str(Path(__file__).resolve()), "--train-worker", "--agents", *agents,
           "--n-envs", str(n_envs), "--n-seeds", str(n_seeds), "--substeps", str(substeps),
           "--train-steps", str(n_steps), "--repeats", str(repeats)]
    return _child_json(cmd, f"train worker ({python})", timeout_s)


def time_ppo(python: str, n_envs: int = 16, n_steps: int = 100_000, repeats: int = 3,
             timeout_s: float = 3600.0) -> dict:
    """rejax PPO's env steps/s on gymnax CartPole-v1 (``benchmarks/rejax_ppo.py``) in
    ``python``, a side environment with rejax (see the module docstring)."""
    cmd = [python, str(RESULTS.parent / "rejax_ppo.py"), "--n-envs", str(n_envs), "--steps",
           str(n_steps), "--repeats", str(repeats)]
    return _child_json(cmd, f"rejax PPO ({python})", timeout_s)


def _child_json(cmd: list[str], what: str, timeout_s: float) -> dict:
    """Run ``cmd`` in ``benchmarks/`` (so ``neurorl`` is whatever that interpreter has
    installed) and return the JSON of its last output line."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # leave the other checkout untouched
    # a fresh start: without the host-device count this process asked for, each install sets
    # up its devices as it does for its users (this checkout: one per core; older: one)
    flags = [f for f in env.get("XLA_FLAGS", "").split()
             if "xla_force_host_platform_device_count" not in f]
    env["XLA_FLAGS"] = " ".join(flags)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                          cwd=str(RESULTS.parent), env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- machine, results ---------------------------------------------------------------------------
def _common():
    """``benchmarks/common.py``, through the suite's one loader (``run_all.load_benchmark``:
    once per process, as module ``_bench_common``). The repository root goes on ``sys.path``
    first, as ``learning.py`` does, since this script also runs as ``python
    benchmarks/throughput.py``."""
    root = str(RESULTS.parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks.run_all import load_benchmark

    return load_benchmark("common")


def _loadavg() -> list[float] | None:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def markdown(result: dict) -> str:
    """The two tables and the agreement summary as markdown."""
    info, ag = result["machine"], result["agreement"]
    lines = [
        "# Throughput of make_train (the path users run)",
        "",
        f"Machine: {info.get('cpu')}, {info.get('usable_cores')} usable cores of "
        f"{info.get('logical_cores')}, load average {info.get('loadavg_1_5_15')} (before) / "
        f"{result.get('loadavg_after')} (after); jax {info.get('jax')} "
        f"({info.get('jax_backend')}, {len(info.get('jax_devices') or [])} devices), numpy "
        f"{info.get('numpy')}, gymnasium {info.get('gymnasium')}.",
        "",
        "## Reference spiking agent (reference-agent.md) on CartPole-v1: agent-env steps/s",
        "",
        f"Agreement first ({ag['steps']} steps of gymnasium CartPole driven by the numpy agent, "
        f"{ag['episodes_ended']} terminations, same initial weights): actions and per-neuron "
        f"spike counts of all three layers equal at {ag['steps_equal']}/{ag['steps']} steps; "
        f"eligibility max relative difference {ag['max_rel_e1_diff']:.1e}; spikes per layer "
        f"{ag['numpy_spikes_per_layer']}. **{'AGREE' if ag['agree'] else 'DISAGREE'}**.",
        "",
        f"Best of {result['repeats']} repeats, compile excluded. numpy host loop: a Python loop "
        "over agents, each with its own gymnasium env (a subset timed for large N), one core. "
        "make_train: `TrainConfig(agent='reference', n_envs=1, n_seeds=agents, substeps=10)`, "
        "timed with `train.run_chunk`; devices and block are what make_train chose.",
        "",
        "| agents | numpy host loop | make_train | devices | block | make_train / numpy |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['agents']} | {r['numpy_steps_per_s']:,.0f} | "
                     f"{r['train_steps_per_s']:,.0f} | {r['devices']} | {r['block'] or '-'} | "
                     f"{r['train_vs_numpy']:.1f}x |")
    if result.get("bar"):
        lines += ["", result["bar"]]
    lt = result.get("learners")
    if lt:
        cfg = lt["config"]
        lines += [
            "",
            f"## Learning agents through make_train: env steps/s ({cfg['n_envs']} envs x "
            f"{cfg['n_seeds']} seeds, {cfg['substeps']} substeps, CartPole-v1, compile "
            "excluded, best of repeats)",
            "",
            f"new: {lt['new']['neurorl']}" + (f"; old: {lt['old']['neurorl']}" if lt.get("old")
                                              else ""),
            "",
            "| agent | new | devices | old | new / old |",
            "|---|---:|---:|---:|---:|",
        ]
        for a, row in lt["new"]["rows"].items():
            old = (lt.get("old") or {}).get("rows", {}).get(a)
            new = row["steps_per_s"]
            tail = f"{old['steps_per_s']:,.0f} | {new / old['steps_per_s']:.2f}x |" if old else (
                "- | - |")
            lines.append(f"| {a} | {new:,.0f} | {row['devices']} | {tail}")
        ppo = lt.get("ppo")
        if ppo:
            lines += ["", f"For scale: rejax {ppo.get('rejax')} PPO (MLP 64x64, gymnax "
                      f"CartPole-v1, {ppo['n_envs']} envs, {ppo['env_steps']:,} env steps, jax "
                      f"{ppo.get('jax')}) trains at **{ppo['steps_per_s']:,.0f}** env steps/s "
                      "(compile excluded, best of repeats)."]
    return "\n".join(lines) + "\n"


def main(quick: bool = False, out: Path | str | None = None, sizes: list[int] | None = None,
         repeats: int | None = None, old_python: str | None = None,
         learners: bool | None = None, ppo_python: str | None = None) -> dict:
    """Agreement check, then the timings; writes ``throughput.json`` and ``throughput.md``.

    Args:
        quick: seconds-long smoke run (sizes 1 and 64, short runs, no learner table unless
            ``learners``).
        out: results folder (default ``benchmarks/results``).
        sizes: numbers of agents (default 1 64 1024; quick: 1 64).
        repeats: timing repeats, best reported (default 5; quick: 2).
        old_python: interpreter of another neurorl install for the learner table's "old" column.
        ppo_python: interpreter of a venv with rejax (the learner table's PPO line).
        learners: time the learning agents (default: not quick).

    Returns:
        The result dict written to ``throughput.json``.
    """
    out = Path(out) if out is not None else RESULTS
    sizes = sizes or ([1, 64] if quick else [1, 64, 1024])
    repeats = repeats or (2 if quick else 5)
    learners = (not quick) if learners is None else learners
    info = _common().machine()
    agreement = check_agreement(n_steps=QUICK_AGREEMENT_STEPS if quick else 300)
    print(f"agreement: {agreement['agree']} ({agreement['steps_equal']} of "
          f"{agreement['steps']} steps)", flush=True)
    if not agreement["agree"]:
        raise AssertionError(f"make_train's reference agent and the numpy agent disagree: "
                             f"{agreement}")
    rows = []
    budget = 0.3 if quick else 3.0
    for n in sizes:
        steps = int(np.clip((2_000 if quick else 100_000) // n, 10 if quick else 25, 2000))
        nump = time_numpy(n, budget, repeats)
        tr = time_make_train(n, steps, repeats)
        row = {"agents": n, "numpy_steps_per_s": nump["steps_per_s"],
               "numpy_agents_timed": nump["agents_timed"],
               "train_steps_per_s": tr["steps_per_s"], "devices": tr["devices"],
               "block": tr["block"], "train_vs_numpy": tr["steps_per_s"] / nump["steps_per_s"],
               "make_train": tr, "loadavg": _loadavg()}
        rows.append(row)
        print(f"N={n:5d} numpy {row['numpy_steps_per_s']:9,.0f}  make_train "
              f"{row['train_steps_per_s']:10,.0f} ({tr['devices']} devices, block "
              f"{tr['block']})  {row['train_vs_numpy']:6.1f}x  load {row['loadavg']}",
              flush=True)
    result: dict[str, Any] = {
        "benchmark": "throughput", "quick": quick, "repeats": repeats,
        "agent": "reference-agent.md (40-128-2 LIF, K=10, R-STDP eligibility, CartPole-v1) "
                 "through make_train",
        "machine": info, "agreement": agreement, "rows": rows,
    }
    at_1024 = [r for r in rows if r["agents"] == 1024]
    if at_1024:
        x = at_1024[0]["train_vs_numpy"]
        result["bar"] = (f"At 1024 agents: make_train {x:.0f}x the numpy host loop (bar >= 30x: "
                         f"{'met' if x >= 30 else 'NOT met'}; aim >= 100x: "
                         f"{'met' if x >= 100 else 'not met'}).")
    if learners:
        cfg = {"n_envs": 8, "n_seeds": 5, "substeps": 5,
               "n_steps": 8_000 if quick else 40_000, "repeats": 2 if quick else 3}
        kw = dict(n_envs=cfg["n_envs"], n_seeds=cfg["n_seeds"], substeps=cfg["substeps"],
                  n_steps=cfg["n_steps"], repeats=cfg["repeats"])
        lt = {"config": cfg, "new": time_learners(sys.executable, **kw)}
        if old_python:
            lt["old"] = time_learners(old_python, **kw)
        if ppo_python:
            lt["ppo"] = time_ppo(ppo_python, n_steps=20_000 if quick else 200_000,
                                 repeats=cfg["repeats"])
            print(f"rejax PPO {lt['ppo']['steps_per_s']:9,.0f}", flush=True)
        result["learners"] = lt
        for a, row in lt["new"]["rows"].items():
            old = (lt.get("old") or {}).get("rows", {}).get(a)
            new = row["steps_per_s"]
            tail = (f"  old {old['steps_per_s']:9,.0f}  {new / old['steps_per_s']:.2f}x"
                    if old else "")
            print(f"{a:9s} new {new:9,.0f}{tail}", flush=True)
    result["loadavg_after"] = _loadavg()
    _common().write_results("throughput", result, rows, out=out, markdown=markdown(result))
    return result


def _cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="seconds-long smoke run")
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--old-python", default=None,
                    help="python of an older neurorl install (the learner table's old column)")
    ap.add_argument("--ppo-python", default=None,
                    help="python of a venv with rejax 0.1.3 + gymnax<1.0 (a PPO line for scale)")
    ap.add_argument("--learners", action=argparse.BooleanOptionalAction, default=None,
                    help="time eprop_ac / rstdp / bptt_ac through make_train (default: not quick)")
    ap.add_argument("--train-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--agents", nargs="+", default=list(LEARNERS), help=argparse.SUPPRESS)
    ap.add_argument("--n-envs", type=int, default=8, help=argparse.SUPPRESS)
    ap.add_argument("--n-seeds", type=int, default=5, help=argparse.SUPPRESS)
    ap.add_argument("--substeps", type=int, default=5, help=argparse.SUPPRESS)
    ap.add_argument("--train-steps", type=int, default=40_000, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.train_worker:
        _train_worker(args.agents, args.n_envs, args.n_seeds, args.substeps, args.train_steps,
                      args.repeats or 3)
        return
    result = main(args.quick, args.out, args.sizes, args.repeats, args.old_python,
                  args.learners, args.ppo_python)
    print(markdown(result))


if __name__ == "__main__":
    _cli()
