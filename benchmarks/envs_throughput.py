"""Environment throughput: random-policy CartPole steps per second, neurorl vs gymnasium.

Three implementations of CartPole-v1 with auto-reset, timed in the same process at each number of
parallel environments N:

* ``neurorl``: ``jit`` of a ``lax.scan`` over ``--steps`` steps of ``vmap(env.step)`` over N envs
  (random actions drawn inside the scan); compile time excluded (one warm-up call first);
* ``gymnasium numpy-vectorised``: ``gymnasium.make_vec("CartPole-v1", num_envs=N,
  vectorization_mode="vector_entry_point")`` (gymnasium's ``CartPoleVectorEnv``, numpy arrays);
* ``gymnasium python loop``: a Python loop over N ``gymnasium.make("CartPole-v1")`` envs,
  resetting each when its episode ends.

Each gymnasium measurement runs for about ``--budget`` seconds. Results (steps/s and the ratio of
neurorl to each baseline) go to ``benchmarks/results/envs_throughput.{json,md}`` with the machine
(CPU model, cores, load average, library versions). This is a benchmark, not a test: numbers
depend on the machine and on what else runs on it.

Usage::

    .venv/bin/python benchmarks/envs_throughput.py            # sizes 1 64 1024 8192
    .venv/bin/python benchmarks/envs_throughput.py --sizes 1 64 --budget 1
    .venv/bin/python benchmarks/envs_throughput.py --quick    # smoke: sizes 1 64, short runs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, machine, write_results  # noqa: E402
from neurorl.envs import make  # noqa: E402


def neurorl_sps(
    n: int, steps: int, repeats: int = 3, auto_reset: bool = True
) -> tuple[float, float]:
    """Steps/s of jit(scan(vmap(step))) over ``n`` envs; returns (best, compile seconds).

    ``auto_reset=False`` times the raw transition ``step_env`` instead (episodes run on past
    termination): a diagnostic that shows what the auto-reset -- a fresh reset state drawn with
    per-env PRNG keys at every step, as in gymnax -- costs; it is not a like-for-like baseline.
    """
    env, params = make("CartPole-v1")
    v_reset = jax.vmap(env.reset, in_axes=(0, None))
    v_step = jax.vmap(env.step if auto_reset else env.step_env, in_axes=(0, 0, 0, None))

    @jax.jit
    def run(key):
        k0, k1 = jax.random.split(key)
        _, state = v_reset(jax.random.split(k0, n), params)

        def body(state, k):
            ka, ks = jax.random.split(k)
            action = jax.random.randint(ka, (n,), 0, 2, dtype=jnp.int32)
            obs, state, reward, term, trunc, _ = v_step(
                jax.random.split(ks, n), state, action, params
            )
            # reward is constant 1 for CartPole: return episode ends and the observation too,
            # otherwise XLA would be free to drop the dynamics as dead code
            return state, (jnp.sum(reward), jnp.sum(term | trunc), jnp.sum(obs))

        state, (rewards, dones, obs_sum) = jax.lax.scan(body, state, jax.random.split(k1, steps))
        return jnp.sum(rewards), jnp.sum(dones), jnp.sum(obs_sum) + jnp.sum(state.x)

    t0 = time.perf_counter()
    jax.block_until_ready(run(jax.random.PRNGKey(0)))
    compile_s = time.perf_counter() - t0
    best = float("inf")
    for r in range(repeats):
        t0 = time.perf_counter()
        total, dones, _ = jax.block_until_ready(run(jax.random.PRNGKey(r + 1)))
        best = min(best, time.perf_counter() - t0)
        assert float(total) == n * steps  # every CartPole step gives reward 1
        # random play ends an episode every ~22 steps: the dynamics really ran
        assert not auto_reset or int(dones) > n * steps // 100
    return n * steps / best, compile_s


def gym_vector_sps(n: int, budget: float, seed: int = 0) -> float:
    """Steps/s of gymnasium's numpy-vectorised CartPoleVectorEnv with ``n`` envs."""
    envs = gymnasium.make_vec("CartPole-v1", num_envs=n, vectorization_mode="vector_entry_point")
    rng = np.random.default_rng(seed)
    envs.reset(seed=seed)
    for _ in range(3):  # warm-up
        envs.step(rng.integers(0, 2, size=n))
    count, t0 = 0, time.perf_counter()
    while True:
        envs.step(rng.integers(0, 2, size=n))
        count += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= budget and count >= 5:
            break
    envs.close()
    return n * count / elapsed


def gym_loop_sps(n: int, budget: float, seed: int = 0) -> float:
    """Steps/s of a Python loop over ``n`` single gymnasium CartPole-v1 envs (reset on done)."""
    envs = [gymnasium.make("CartPole-v1") for _ in range(n)]
    for i, e in enumerate(envs):
        e.reset(seed=seed + i)
    rng = np.random.default_rng(seed)
    count, t0 = 0, time.perf_counter()
    while True:
        actions = rng.integers(0, 2, size=n)
        for e, a in zip(envs, actions, strict=True):
            _, _, term, trunc, _ = e.step(int(a))
            if term or trunc:
                e.reset()
        count += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= budget:
            break
    for e in envs:
        e.close()
    return n * count / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 1024, 8192])
    ap.add_argument("--steps", type=int, default=1000, help="scan length for neurorl")
    ap.add_argument("--budget", type=float, default=2.0, help="seconds per gymnasium measurement")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--quick", action="store_true", help="smoke run: sizes 1 64, short runs")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.steps, args.budget = [1, 64], 200, 0.3

    info = machine()
    rows = []
    for n in args.sizes:
        nr, comp = neurorl_sps(n, args.steps)
        raw, _ = neurorl_sps(n, args.steps, auto_reset=False)
        vec = gym_vector_sps(n, args.budget)
        loop = gym_loop_sps(n, args.budget)
        row = {
            "num_envs": n,
            "neurorl_sps": nr,
            "neurorl_compile_s": comp,
            "neurorl_step_env_no_autoreset_sps": raw,
            "gym_numpy_vector_sps": vec,
            "gym_python_loop_sps": loop,
            "ratio_vs_numpy_vector": nr / vec,
            "ratio_vs_python_loop": nr / loop,
        }
        rows.append(row)
        print(
            f"N={n:5d}  neurorl {nr:12.3e} steps/s (compile {comp:.1f} s)  "
            f"gym numpy-vec {vec:10.3e}  gym loop {loop:10.3e}  "
            f"ratio {nr / vec:8.1f}x / {nr / loop:8.1f}x  (step_env w/o auto-reset {raw:10.3e})",
            flush=True,
        )
    info["loadavg_after"] = machine().get("loadavg_1_5_15")
    result = {
        "benchmark": "envs_throughput",
        "env": "CartPole-v1",
        "policy": "uniform random actions, auto-reset",
        "neurorl_scan_steps": args.steps,
        "gym_budget_s": args.budget,
        "machine": info,
        "rows": rows,
    }
    lines = [
        "# CartPole-v1 throughput (random policy, auto-reset), steps per second",
        "",
        f"Machine: {info['cpu']}, {info['usable_cores']} usable cores "
        f"of {info['logical_cores']}, "
        f"load average {info.get('loadavg_1_5_15')} (before) / {info['loadavg_after']} (after); "
        f"jax {info['jax']} ({info['jax_backend']}), numpy {info['numpy']}, "
        f"gymnasium {info['gymnasium']}, Python {info['python']}.",
        "",
        f"neurorl: jit(lax.scan over {args.steps} steps of vmap(step)), best of 3, "
        "compile excluded. "
        'gymnasium numpy-vectorised: `make_vec(..., vectorization_mode="vector_entry_point")`. '
        "Python loop: N single `gymnasium.make` envs.",
        "",
        "| N envs | neurorl | gym numpy-vectorised | gym Python loop | neurorl / numpy-vec "
        "| neurorl / loop | neurorl compile (s) | neurorl step_env, no auto-reset |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['num_envs']} | {r['neurorl_sps']:.3g} | {r['gym_numpy_vector_sps']:.3g} "
            f"| {r['gym_python_loop_sps']:.3g} | {r['ratio_vs_numpy_vector']:.1f}x "
            f"| {r['ratio_vs_python_loop']:.1f}x | {r['neurorl_compile_s']:.1f} "
            f"| {r['neurorl_step_env_no_autoreset_sps']:.3g} |"
        )
    lines += [
        "",
        "Last column (diagnostic, not a baseline): the raw transition `step_env` without "
        "auto-reset; the gap to the first neurorl column is the cost of drawing a reset state "
        "with per-env threefry keys at every step (gymnax-style auto-reset).",
    ]
    write_results("envs_throughput", result, rows, out=args.out, markdown="\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
