"""PPO baseline (a non-spiking ANN, optax) on neurorl's JAX classic-control envs, seeds vmapped.

The reference point of the learning table (``benchmarks/learning.py ppo_cartpole``): the same
envs (``neurorl.envs.make``), the same metric (online training returns: env steps until the
mean return of the last 100 finished episodes first reaches the threshold, and that mean at the
end of the budget), the same machine and run.

Algorithm: clipped PPO with GAE (Schulman et al. 2017), the PureJaxRL layout (Lu et al. 2022):
separate actor and critic MLPs 64x64 tanh, orthogonal init, Adam with a CONSTANT learning rate
(as the local rules get), gradient-norm clip 0.5. Truncated episodes (CartPole's 500-step
limit) bootstrap from the value of ``info["final_obs"]``; terminated ones from 0.

    .venv/bin/python benchmarks/ppo_baseline.py --seeds 0-4 --budget 500000

References:
    Schulman, Wolski, Dhariwal, Radford & Klimov (2017). Proximal policy optimization
    algorithms. arXiv:1707.06347.
    Lu, Kuba, Letcher, Metz, Schroeder de Witt & Foerster (2022). Discovered policy
    optimisation (PureJaxRL's ppo.py). NeurIPS.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# the PPO itself lives in benchmarks/common.py (the continual benchmark runs it too)
from benchmarks.common import PPO_DEFAULTS, make_ppo, record_episodes  # noqa: E402, F401


def run_ppo(seeds: tuple[int, ...], budget: int, env_id: str = "CartPole-v1",
            threshold: float | None = 475.0, **hyper: Any) -> dict[str, Any]:
    """Train PPO on ``seeds`` (vmapped) for about ``budget`` env steps per seed; the result has
    the keys of ``benchmarks/learning.py``'s cases."""
    init, update, per_update = make_ppo(env_id, **hyper)
    n_updates = max(1, budget // per_update)
    chunk = max(1, 20_000 // per_update)
    step = jax.jit(jax.vmap(lambda s: jax.lax.scan(lambda c, _: update(c), s, None,
                                                   length=chunk)))
    t0 = time.time()
    state = jax.jit(jax.vmap(init))(jax.vmap(jax.random.key)(jnp.asarray(seeds)))
    returns: list[list[float]] = [[] for _ in seeds]
    reach: list[int | None] = [None for _ in seeds]
    peak = [float("-inf") for _ in seeds]
    done_updates = 0
    E = int({**PPO_DEFAULTS, **hyper}["n_envs"])
    while done_updates < n_updates:
        state, m = step(state)
        m = jax.device_get(m)  # [seed, chunk, n_steps, n_envs]
        for s in range(len(seeds)):
            record_episodes(returns, peak, reach, s, m["done"][s].reshape(-1, E),
                            m["episode_return"][s].reshape(-1, E), done_updates * per_update, E,
                            threshold)
        done_updates += chunk
        last = [float(np.mean(r[-100:])) if r else float("nan") for r in returns]
        print(f"ppo {done_updates * per_update:8d} t={time.time() - t0:6.0f}s "
              f"last100={np.round(last, 1)} reach={reach}", flush=True)
    wall = time.time() - t0
    last = np.array([np.mean(r[-100:]) for r in returns])
    return {
        "env_id": env_id, "agent": "ppo_mlp", "agent_kwargs": {**PPO_DEFAULTS, **hyper},
        "n_steps": done_updates * per_update, "n_envs": E, "substeps": 0,
        "seeds": list(seeds), "threshold": threshold,
        "last100_per_seed": last.tolist(), "last100_median": float(np.median(last)),
        "last100_min": float(last.min()), "last100_max": float(last.max()),
        "steps_to_threshold_per_seed": reach,
        "seeds_reaching_threshold": sum(r is not None for r in reach),
        "peak_last100_per_seed": peak, "episodes_per_seed": [len(r) for r in returns],
        "wall_time_s": wall, "spikes_per_env_step": None,  # not a spiking network
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--budget", type=int, default=500_000)
    ap.add_argument("--env", default="CartPole-v1")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    lo, hi = (int(x) for x in args.seeds.split("-"))
    res = run_ppo(tuple(range(lo, hi + 1)), args.budget, args.env)
    print(json.dumps({k: res[k] for k in ("last100_per_seed", "steps_to_threshold_per_seed")}))
    if args.json:
        json.dump(res, open(args.json, "w"), indent=1)
