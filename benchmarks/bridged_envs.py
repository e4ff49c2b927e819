"""Learning beyond the built-in envs: a bridged Gymnasium env (host loop) and a gymnax env (jitted).

Rows (one per env, each an ordinary experiment run through ``neurorl.experiment.runner``):

* ``gymnasium:FrozenLake-v1`` (``is_slippery: false``; the 16 discrete states one-hot encoded by
  the bridge) trained by ``eprop_ac`` in the host loop (:mod:`neurorl.experiment.host_train`);
  with ``--lunar``, ``gymnasium:LunarLander-v3`` too (needs Box2D: ``pip install
  "neurorl[box2d]"``);
* ``gymnax:Catch-bsuite`` (bsuite's Catch, 50 binary pixels, +-1 at the end of each 9-step
  episode) trained by ``eprop_ac`` inside the jitted scan.

For each: the mean return of the first and of the last ``window`` finished episodes (per seed,
then the median over seeds), a uniformly random policy's mean return on the same env (500
episodes), env steps per second and wall time. "Learns" means last-window return well above
both the first window and the random policy. Results go to
``benchmarks/results/bridged_envs.{json,md}``. A benchmark (timing, minutes), not a test.

Usage::

    .venv/bin/python benchmarks/bridged_envs.py                 # FrozenLake + Catch
    .venv/bin/python benchmarks/bridged_envs.py --lunar         # + LunarLander (long)
    .venv/bin/python benchmarks/bridged_envs.py --quick         # smoke: a few thousand steps
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, provenance, write_results  # noqa: E402

WINDOW = 100


def configs(quick: bool, lunar: bool) -> list[dict[str, Any]]:
    base = {"logging": {"wandb": "disabled", "progress": False}}
    out = [
        {
            **base,
            "name": "frozenlake-host",
            "env": {"id": "gymnasium:FrozenLake-v1", "params": {"is_slippery": 0}},
            # one-hot inputs need 2 receptive fields each; a sparse +1 at the goal: larger lr
            "agent": {
                "name": "eprop_ac",
                "substeps": 3,
                "hyper": {"n_rec": 32, "n_rf": 2, "lr": 1e-3, "reward_scale": 1.0},
            },
            "training": {
                "steps": 4096 if quick else 60_000,
                "n_envs": 8,
                "n_seeds": 2,
                "chunk_steps": 2048 if quick else 10_000 - 10_000 % 8,
                "episode_window": WINDOW,
            },
        },
        {
            **base,
            "name": "catch-gymnax",
            "env": {"id": "gymnax:Catch-bsuite"},
            "agent": {"name": "eprop_ac", "substeps": 3, "hyper": {"n_rec": 32}},
            "training": {
                "steps": 8192 if quick else 200_000,
                "n_envs": 16,
                "n_seeds": 2,
                "chunk_steps": 4096 if quick else 50_000,
                "episode_window": WINDOW,
            },
        },
    ]
    if lunar:
        out.append(
            {
                **base,
                "name": "lunarlander-host",
                "env": {"id": "gymnasium:LunarLander-v3"},
                "agent": {
                    "name": "eprop_ac",
                    "substeps": 3,
                    "obs_range": [1.5, 1.5, 2.0, 2.0, 1.5, 2.0, 1.0, 1.0],
                    "hyper": {"n_rec": 64},
                },
                "training": {
                    "steps": 4096 if quick else 200_000,
                    "n_envs": 8,
                    "n_seeds": 2,
                    "chunk_steps": 2048 if quick else 20_000,
                    "episode_window": WINDOW,
                },
            }
        )
    return out


def random_return(cfg: Any, episodes: int = 500, seed: int = 0) -> float:
    """Mean return of a uniformly random policy on the run's env."""
    from neurorl.experiment.eval import make_eval_env

    env = make_eval_env(cfg)
    env.action_space.seed(seed)
    total = 0.0
    for i in range(episodes):
        env.reset(seed=seed + i)
        done = False
        while not done:
            _, r, te, tr, _ = env.step(env.action_space.sample())
            total += float(r)
            done = bool(te) or bool(tr)
    env.close()
    return total / episodes


def main(quick: bool = False, lunar: bool = False, out: str | None = None) -> dict[str, Any]:
    from neurorl.experiment import runner
    from neurorl.experiment.config import from_dict
    from neurorl.experiment.logging import read_jsonl

    rows = []
    for c in configs(quick, lunar):
        cfg = from_dict(c)
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            runner.run_experiment(cfg, Path(d) / "run", progress=False)
            wall = time.perf_counter() - t0
            eps = read_jsonl(Path(d) / "run" / "episodes.jsonl")
            chunks = read_jsonl(Path(d) / "run" / "chunks.jsonl")
        first, last = [], []
        for m in range(cfg.training.n_seeds):
            r = [e["return"] for e in sorted(eps, key=lambda e: e["env_step"]) if e["member"] == m]
            first.append(float(np.mean(r[:WINDOW])))
            last.append(float(np.mean(r[-WINDOW:])))
        row = {
            "env": cfg.env.id,
            "loop": "host (gymnasium vector env)" if cfg.env.id.startswith("gymnasium:") else "jit",
            "agent": cfg.agent.name,
            "steps/seed": cfg.training.steps,
            "seeds": cfg.training.n_seeds,
            "random policy": random_return(cfg),
            "first 100 ep (median)": float(np.median(first)),
            "last 100 ep (median)": float(np.median(last)),
            "last per seed": last,
            "env steps/s": float(chunks[-1]["steps_per_s"]),
            "wall s": wall,
        }
        rows.append(row)
        print(json.dumps(row))
    result = {"rows": rows, "machine": machine(), "provenance": provenance(), "quick": quick}
    write_results(
        "bridged_envs",
        result,
        rows,
        notes=(
            "Mean return of the first / last 100 finished episodes per seed (median over seeds), "
            "against a uniformly random policy on the same env."
        ),
        out=out,
    )
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--lunar", action="store_true", help="also LunarLander-v3 (Box2D)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    main(a.quick, a.lunar, a.out)
