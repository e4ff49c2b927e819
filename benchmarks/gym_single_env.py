"""Single-env Gymnasium stepping: ``gymnasium.make("neurorl/<id>")`` vs ``gymnasium.make("<id>")``.

For each classic-control id, both envs are made through ``gymnasium.make`` (so both carry the same
wrappers: ``TimeLimit``, ``OrderEnforcing``, ``PassiveEnvChecker``) and stepped with the same
pre-drawn random actions in a Python loop, resetting when an episode ends, for about ``--budget``
seconds each (best of ``--repeats``). Printed and written to
``benchmarks/results/gym_single_env.{json,md}``: steps/s of each and the ratio neurorl / gymnasium
(issue 15 asks for at least 0.3). ``backend="jax"`` (one jitted JAX call per step) is timed too,
to show what the host twins (``neurorl.envs.numpy_twins``) buy. A benchmark, not a test.

Usage::

    .venv/bin/python benchmarks/gym_single_env.py
    .venv/bin/python benchmarks/gym_single_env.py --quick      # CartPole only, short
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gymnasium

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, provenance, write_results  # noqa: E402

IDS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"]


def steps_per_second(env: gymnasium.Env, budget: float, repeats: int, seed: int = 0) -> float:
    """Best steps/s over ``repeats`` runs of about ``budget`` seconds (random actions)."""
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(4096)]
    env.reset(seed=seed)
    for a in actions[:200]:  # warm-up (compiles the JAX reset/step on first use)
        _, _, te, tr, _ = env.step(a)
        if te or tr:
            env.reset()
    best = 0.0
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < budget:
            for a in actions:
                _, _, te, tr, _ = env.step(a)
                if te or tr:
                    env.reset()
            n += len(actions)
        best = max(best, n / (time.perf_counter() - t0))
    return best


def main(quick: bool = False, budget: float = 2.0, repeats: int = 3, out: str | None = None):
    import neurorl.envs  # noqa: F401 - registers neurorl/<id>

    ids = IDS[:1] if quick else IDS
    if quick:
        budget, repeats = 0.3, 1
    rows = []
    for env_id in ids:
        theirs = steps_per_second(gymnasium.make(env_id), budget, repeats)
        ours = steps_per_second(gymnasium.make(f"neurorl/{env_id}"), budget, repeats)
        jax_ = steps_per_second(gymnasium.make(f"neurorl/{env_id}", backend="jax"), budget, 1)
        row = {
            "env": env_id,
            "gymnasium steps/s": theirs,
            "neurorl steps/s": ours,
            "ratio": ours / theirs,
            "neurorl backend=jax steps/s": jax_,
            "jax ratio": jax_ / theirs,
        }
        rows.append(row)
        print(
            f"{env_id:26s} gymnasium {theirs:10,.0f}/s  neurorl {ours:10,.0f}/s  "
            f"ratio {ours / theirs:.2f}  (backend=jax {jax_:8,.0f}/s, ratio {jax_ / theirs:.2f})"
        )
    result = {"rows": rows, "machine": machine(), "provenance": provenance(), "quick": quick}
    write_results(
        "gym_single_env",
        result,
        rows,
        notes="Single env stepped from Python through gymnasium.make (same wrappers both sides).",
        out=out,
    )
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--budget", type=float, default=2.0, help="seconds per measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    main(a.quick, a.budget, a.repeats, a.out)
