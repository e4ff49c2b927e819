"""Distal reward (Izhikevich 2007, Cereb. Cortex 17:2443, Fig. 1), full published set-up.

1,000 Izhikevich neurons (800 regular-spiking excitatory a=0.02, d=8; 200 fast-spiking inhibitory
a=0.1, d=2; b=0.2, c=-65 for all), 100 random synapses each (excitatory -> any neuron, inhibitory
-> excitatory only), thalamic drive 13 (U - 0.5) per neuron per ms, excitatory weights start at 1
(inhibitory -1, fixed), s_max = 4. Constants and update order as in the paper's MATLAB code
(``daspnet.m``; /work/shared/references/learning-rules.md section 2.2). One step is 1 ms:

    spikes: fired(t) = v >= 30; reset v = -65, u += d
    STDP trace: x_i = 0.1 at a spike of i, x 0.95 per ms (A+ = 0.1, tau = 20 ms)
    LTP (post j fires at t):  c_ij += x_i(t - 1)      pre spike at t' < t: + 0.1 * 0.95^(t-t'-1)
    LTD (pre i fires at t):   c_ij -= 1.5 x_j(t)      post spike at t' <= t: - 0.15 * 0.95^(t-t')
    current: a spike of i at t enters I_j in the same step's integration (D = 1 ms)
    v += 0.5 (0.04 v^2 + 5 v + 140 - u + I) twice; u += a (0.2 v - u)
    dopamine: DA x 0.995 per ms (tau_d = 200 ms)
    every 10 ms: s <- clip(s + (0.002 + DA) c, 0, 4) (excitatory rows), c x 0.99 (tau_c ~ 1 s)
    reward: n2 fires < 20 ms after n1 (and after it) -> DA += 0.5 at t + 1000 + ceil(2000 U) ms

The chosen synapse n1 -> n2 (n1 = 0, its first synapse) starts at 0 as in the paper's Fig. 1.
Deliberate difference: targets are drawn without repeats or self-connections (the MATLAB code
draws ``ceil(N rand)``, which allows both).

Event-driven numpy: about one neuron fires per ms in the whole network, so a step touches only
the outgoing rows (current, LTD) and the incoming excitatory synapses (LTP) of the neurons that
fired; :func:`dense_events` is the all-synapse form of the same update, used by the tests. (A
jitted JAX loop of the same step costs 1-2 ms per model ms on this 2-core machine, XLA's
per-iteration overhead on the [1000, 100] carries; numpy takes about 0.1 ms.)

Run:  .venv/bin/python -m benchmarks.distal_reward [--seconds 3600] [--seeds 0 1 2 --jobs 2]
      [--out DIR]
Writes benchmarks/results/distal_reward.json and .md (or into ``--out``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import (
    machine,
    markdown_table,
    provenance,
    provenance_line,
    write_results,
)

N_E, N_I, M = 800, 200, 100
N = N_E + N_I
SM, INTERVAL = 4.0, 20
TONIC_DA, DA_PULSE = 0.002, 0.5


def build(seed: int = 0) -> dict:
    """Random connectivity (no self-connections, targets without repeats) and look-ups.

    Returns ``post`` [N, M] targets, ``s`` initial weights [N + 1, M] (row N: a dummy that pads
    the look-ups), ``inc_flat`` [N, K_in] flat indices into the synapse table of the excitatory
    synapses onto each neuron (padded with the dummy row's first slot N * M), ``inc_pre`` their
    presynaptic neurons (padded with N, whose trace is always 0), ``a``, ``d``, ``n2``.
    """
    rng = np.random.default_rng(seed)
    post = np.empty((N, M), np.int64)
    for i in range(N):
        pool = np.arange(N) if i < N_E else np.arange(N_E)
        pool = pool[pool != i]
        post[i] = rng.choice(pool, M, replace=False)
    s = np.concatenate([np.ones((N_E, M)), -np.ones((N_I, M)), np.zeros((1, M))])
    s[0, 0] = 0.0
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
    return {
        "post": post,
        "s": s,
        "inc_flat": inc_flat,
        "inc_pre": inc_pre,
        "a": a,
        "d": d,
        "n2": int(post[0, 0]),
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
    v = np.full(N, -65.0)
    return {
        "v": v,
        "u": 0.2 * v,
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

    Args:
        net: from :func:`build`.
        st: from :func:`init_state`.
        noise: [N] thalamic input of this ms.
        update_weights: apply the 10 ms weight update in this step (every 10th ms).

    Returns:
        The indices of the neurons that fired in this ms.
    """
    v, u, s, sd, x = st["v"], st["u"], st["s"], st["sd"], st["x"]
    t = st["t"]
    fired = np.flatnonzero(v >= 30.0)
    current = noise
    if fired.size:
        v[fired] = -65.0
        u[fired] += net["d"][fired]
        x[fired] = 0.1
        current = current + sparse_events(net, fired, s, sd, x, st["x_prev"])
        st["n_spikes"] += fired.size
    for _ in range(2):  # two 0.5 ms half steps for numerical stability (paper's code)
        v += 0.5 * ((0.04 * v + 5.0) * v + 140.0 - u + current)
    u += net["a"] * (0.2 * v - u)
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


def summary(st: dict, second: int) -> dict:
    """Chosen synapse vs the other excitatory synapses."""
    s = st["s"][:N_E]
    others = np.delete(s.ravel(), 0)
    return {
        "second": second,
        "chosen_w": round(float(s[0, 0]), 5),
        "chosen_c": round(float(st["sd"][0, 0]), 5),
        "others_mean": round(float(others.mean()), 5),
        "others_std": round(float(others.std()), 5),
        "others_p99": round(float(np.quantile(others, 0.99)), 5),
        "others_frac_at_max": float((others >= SM - 1e-3).mean()),
        "chosen_rank_pct": round(float((others < s[0, 0]).mean() * 100), 3),
        "rewards": int(st["n_rewards"]),
        "rate_hz": round(st["n_spikes"] / N / second, 4),
    }


def simulate(seconds: int, seed: int, every: int = 60) -> dict:
    """One run: summaries every ``every`` s, the chosen weight every second, wall time."""
    net = build(seed)
    st = init_state(net, seed)
    trace, chosen_per_s = [], []
    t0 = time.perf_counter()
    for sec in range(seconds):
        run_second(net, st)
        chosen_per_s.append(round(float(st["s"][0, 0]), 5))
        if (sec + 1) % every == 0 or sec == seconds - 1:
            trace.append(summary(st, sec + 1))
            print(f"seed {seed}:", trace[-1], flush=True)
    at_max = [i + 1 for i, w in enumerate(chosen_per_s) if w >= 0.95 * SM]
    final = trace[-1]
    return {
        "seed": seed,
        "wall_s": round(time.perf_counter() - t0, 1),
        "chosen_final": final["chosen_w"],
        "others_mean": final["others_mean"],
        "others_std": final["others_std"],
        "others_p99": final["others_p99"],
        "chosen_rank_percentile": final["chosen_rank_pct"],
        "first_second_at_95pct_max": at_max[0] if at_max else None,
        "rewards": final["rewards"],
        "dopamine_pulses": st["n_da"],
        "trace": trace,
        "chosen_w_per_second": chosen_per_s,
    }


def main(
    seconds: int = 3600,
    seeds: tuple[int, ...] = (0,),
    out: str | None = None,
    every: int = 60,
    jobs: int = 1,
) -> dict:
    """Run the seeds (``jobs`` processes), write the results; the table follows the first seed."""
    prov = provenance()
    t0 = time.perf_counter()
    if jobs > 1 and len(seeds) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(jobs, len(seeds))) as pool:
            runs = list(pool.map(simulate, [seconds] * len(seeds), seeds, [every] * len(seeds)))
    else:
        runs = [simulate(seconds, seed, every) for seed in seeds]
    first = runs[0]
    keys = (
        "seed",
        "chosen_final",
        "first_second_at_95pct_max",
        "chosen_rank_percentile",
        "others_mean",
        "others_std",
        "others_p99",
        "rewards",
        "wall_s",
    )
    result = {
        "benchmark": "distal_reward (Izhikevich 2007)",
        "seconds_model_time": seconds,
        **{k: first[k] for k in keys},
        "wall_s_total": round(time.perf_counter() - t0, 1),
        "seeds": [{k: r[k] for k in keys} for r in runs],
        "runs": runs,
        "provenance": prov,
        "machine": machine(),
    }
    cols = (
        "second",
        "chosen_w",
        "others_mean",
        "others_std",
        "others_p99",
        "chosen_rank_pct",
        "rewards",
        "rate_hz",
    )
    trace = first["trace"]
    stride = max(1, len(trace) // 12)
    rows = [{k: r[k] for k in cols} for r in trace[stride - 1 :: stride]]
    if rows[-1]["second"] != trace[-1]["second"]:
        rows.append({k: trace[-1][k] for k in cols})
    notes = [
        f"Seed {first['seed']} above: {seconds} s of model time in {first['wall_s']:.0f} s wall; "
        f"chosen synapse {first['chosen_final']:.3f} vs others {first['others_mean']:.3f} "
        f"+- {first['others_std']:.3f} (s_max = 4; above {first['chosen_rank_percentile']:.2f} %"
        f" of the other 79,999 excitatory synapses); {first['rewards']} rewards.",
    ]
    if len(runs) > 1:
        notes += ["", "All seeds (final values):", "", markdown_table(result["seeds"])]
    notes += [
        "",
        provenance_line(prov),
    ]
    write_results("distal_reward", result, rows, notes="\n".join(notes), out=out)
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=3600)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--jobs", type=int, default=1, help="processes for several seeds")
    ap.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    ap.add_argument("--every", type=int, default=60, help="summary interval (s of model time)")
    args = ap.parse_args()
    main(args.seconds, tuple(args.seeds), args.out, args.every, args.jobs)
