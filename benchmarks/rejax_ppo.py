"""A pure-JAX PPO baseline for the throughput table: rejax's PPO on gymnax CartPole-v1.

Run by ``benchmarks/throughput.py --ppo-python PYTHON`` with the interpreter of a side venv that
has rejax (rejax 0.1.3 needs gymnax < 1.0, which neurorl's own environment does not pin)::

    python3 -m venv /tmp/ppo-venv && /tmp/ppo-venv/bin/pip install "rejax==0.1.3" "gymnax<1.0"

It imports neither neurorl nor anything of this repository, and prints one JSON line:
env steps per second of ``jax.jit(algo.train)`` (MLP 64x64 actor and critic, ``n_envs``
parallel envs), best of ``repeats`` calls, compile excluded.

References:
    Liesen et al. 2024, rejax (github.com/keraJLi/rejax).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import time


def time_ppo(n_envs: int = 16, n_steps: int = 100_000, repeats: int = 3) -> dict:
    """Env steps/s of rejax PPO training on gymnax CartPole-v1 (compile excluded)."""
    import jax
    import rejax

    algo = rejax.PPO.create(env="CartPole-v1", num_envs=n_envs, total_timesteps=n_steps,
                            eval_freq=n_steps, agent_kwargs={"hidden_layer_sizes": (64, 64)})
    train = jax.jit(algo.train)
    t0 = time.perf_counter()
    jax.block_until_ready(train(jax.random.key(0)))
    first = time.perf_counter() - t0
    best = float("inf")
    for i in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(train(jax.random.key(i + 1)))
        best = min(best, time.perf_counter() - t0)
    return {"steps_per_s": n_steps / best, "best_s": best, "env_steps": n_steps,
            "n_envs": n_envs, "first_call_s_incl_compile": first,
            "rejax": importlib.metadata.version("rejax"), "jax": jax.__version__,
            "jax_devices": len(jax.devices())}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-envs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    print(json.dumps(time_ppo(a.n_envs, a.steps, a.repeats)))
