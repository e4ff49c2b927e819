"""Distal reward (Izhikevich 2007, Cereb. Cortex 17:2443), full published set-up, in JAX.

1,000 Izhikevich neurons (800 regular-spiking excitatory a=0.02, d=8; 200 fast-spiking inhibitory
a=0.1, d=2), 100 random synapses each (excitatory -> any neuron, inhibitory -> excitatory only),
1 ms axonal delay, thalamic drive 13 (U - 0.5) per neuron per ms, excitatory weights start at 1
(inhibitory -1), s_max = 4. Constants as in the `daspnet` port of the paper's MATLAB code
(see /work/shared/references/learning-rules.md section 2.2):

    STDP trace set to 0.1 at a spike, x 0.95 per ms (A+ = 0.1, tau = 20 ms); LTD 1.5 x trace;
    eligibility sd x 0.99 every 10 ms (tau_c ~ 1 s); dopamine x 0.995 per ms (tau_d = 200 ms);
    every 10 ms s <- clip(s + (0.002 + DA) sd, 0, 4); DA += 0.5 at a reward, delivered
    1-3 s after neuron n1 -> n2 fire within 20 ms (n2 after n1) across the chosen synapse.

The chosen synapse n1 -> n2 (n1 = 0, its first synapse) starts at 0 as in the paper's Fig. 1.
The eligibility is the same three-factor rule as :func:`neurorl.plasticity.rstdp` (nearest
pairing, dopamine modulator), written here on the sparse [N, M] synapse table for speed.

Run:  .venv/bin/python -m benchmarks.distal_reward [--seconds 3600]
Writes benchmarks/results/distal_reward.json and .md.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import machine, write_results

N_E, N_I, M = 800, 200, 100
N = N_E + N_I
SM, INTERVAL = 4.0, 20


def build(seed: int = 0) -> dict:
    """Random connectivity as in the paper's code (no self-connections, targets without repeats)."""
    rng = np.random.default_rng(seed)
    post = np.empty((N, M), np.int32)
    for i in range(N):
        pool = np.arange(N) if i < N_E else np.arange(N_E)
        pool = pool[pool != i]
        post[i] = rng.choice(pool, M, replace=False)
    s = np.concatenate([np.ones((N_E, M)), -np.ones((N_I, M))]).astype(np.float32)
    s[0, 0] = 0.0
    a = np.concatenate([np.full(N_E, 0.02), np.full(N_I, 0.1)]).astype(np.float32)
    d = np.concatenate([np.full(N_E, 8.0), np.full(N_I, 2.0)]).astype(np.float32)
    return {"post": jnp.asarray(post), "s": jnp.asarray(s), "a": jnp.asarray(a),
            "d": jnp.asarray(d)}


def init_state(net: dict, key) -> dict:
    v = jnp.full((N,), -65.0)
    return {"v": v, "u": 0.2 * v, "tr": jnp.zeros(N), "tr_lag": jnp.zeros(N),
            "fired_prev": jnp.zeros(N), "sd": jnp.zeros((N, M)), "s": net["s"],
            "da": jnp.zeros(()), "n1f": jnp.asarray(-10**6), "n2f": jnp.asarray(-10**6),
            "rew": jnp.zeros(3001), "t": jnp.asarray(0), "key": key,
            "n_rewards": jnp.asarray(0), "n_spikes": jnp.asarray(0)}


def step(net: dict, st: dict) -> dict:
    post, a, d = net["post"], net["a"], net["d"]
    key, k1, k2 = jax.random.split(st["key"], 3)
    t = st["t"]
    v, u = st["v"], st["u"]
    fired = (v >= 30.0).astype(jnp.float32)
    v = jnp.where(fired > 0, -65.0, v)
    u = u + d * fired
    tr = jnp.where(fired > 0, 0.1, st["tr"])
    sd = st["sd"] + st["tr_lag"][:, None] * fired[post]              # LTP: pre trace at post spike
    arriving = st["fired_prev"]                                      # delay D = 1 ms
    current = 13.0 * (jax.random.uniform(k1, (N,)) - 0.5)
    current = current + jax.ops.segment_sum((st["s"] * arriving[:, None]).ravel(), post.ravel(),
                                            num_segments=N)
    sd = sd - 1.5 * arriving[:, None] * tr[post]  # LTD: post trace at pre arrival
    for _ in range(2):  # two 0.5 ms half steps for numerical stability (paper's code)
        v = v + 0.5 * (0.04 * v * v + 5.0 * v + 140.0 - u + current)
    u = u + a * (0.2 * v - u)
    da = st["da"] * 0.995
    ten = (t % 10) == 0
    s_new = jnp.clip(st["s"] + (0.002 + da) * sd, 0.0, SM)
    s = jnp.where(ten, jnp.concatenate([s_new[:N_E], st["s"][N_E:]]), st["s"])
    sd = jnp.where(ten, sd * 0.99, sd)
    slot = t % 3001
    da = da + 0.5 * st["rew"][slot]
    rew = st["rew"].at[slot].set(0.0)
    n1, n2 = 0, post[0, 0]
    n1f = jnp.where(fired[n1] > 0, t, st["n1f"])
    n2_fires = fired[n2] > 0
    n2f = jnp.where(n2_fires, t, st["n2f"])
    hit = n2_fires & (t - n1f < INTERVAL) & (n2f > n1f)
    delay = 1000 + jnp.ceil(2000 * jax.random.uniform(k2)).astype(jnp.int32)
    rew = jnp.where(hit, rew.at[(t + delay) % 3001].add(1.0), rew)
    return {"v": v, "u": u, "tr": 0.95 * tr, "tr_lag": tr, "fired_prev": fired, "sd": sd,
            "s": s, "da": da, "n1f": n1f, "n2f": n2f, "rew": rew, "t": t + 1, "key": key,
            "n_rewards": st["n_rewards"] + hit.astype(jnp.int32),
            "n_spikes": st["n_spikes"] + fired.sum().astype(jnp.int32)}


def main(seconds: int = 3600, seed: int = 0) -> dict:
    net = build(seed)
    st = init_state(net, jax.random.PRNGKey(seed))
    one_second = jax.jit(lambda st: jax.lax.fori_loop(0, 1000, lambda _, s: step(net, s), st))
    trace = []
    t0 = time.perf_counter()
    for sec in range(seconds):
        st = one_second(st)
        if sec % 60 == 59 or sec == seconds - 1:
            s = np.asarray(st["s"][:N_E])
            others = np.delete(s.ravel(), 0)
            trace.append({"second": sec + 1, "chosen_w": float(s[0, 0]),
                          "others_mean": float(others.mean()), "others_std": float(others.std()),
                          "others_frac_at_max": float((others >= SM - 1e-3).mean()),
                          "rewards": int(st["n_rewards"]),
                          "rate_hz": float(st["n_spikes"]) / N / (sec + 1)})
            print(trace[-1], flush=True)
    wall = time.perf_counter() - t0
    s = np.asarray(st["s"][:N_E])
    others = np.delete(s.ravel(), 0)
    result = {"benchmark": "distal_reward (Izhikevich 2007)", "seconds_model_time": seconds,
              "wall_s": wall, "chosen_final": float(s[0, 0]), "others_mean": float(others.mean()),
              "others_std": float(others.std()),
              "chosen_rank_percentile": float((others < s[0, 0]).mean() * 100),
              "rewards": int(st["n_rewards"]), "trace": trace, "machine": machine()}
    rows = [{k: v for k, v in r.items()} for r in trace[-10:]]
    write_results("distal_reward", result, rows,
                  notes=f"{seconds} s of model time in {wall:.1f} s wall; chosen synapse "
                        f"{result['chosen_final']:.3f} vs others {result['others_mean']:.3f} "
                        f"+- {result['others_std']:.3f} (s_max = 4).")
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=3600)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    main(args.seconds, args.seed)
