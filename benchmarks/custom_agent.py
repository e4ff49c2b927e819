"""The README's custom agent (an E/I network written from the N-HAL primitives) on CartPole-v1.

Runs the README's "Your own agent" Python block for its network function, then trains it with
``make_train`` exactly as the README does, but for the issue's budget: 200k env steps, seeds
0-4 vmapped. A seed *reaches* 195 when the mean return of its last 100 episodes gets there
within the budget. Writes ``benchmarks/results/custom_agent.{json,md}``.

    .venv/bin/python benchmarks/custom_agent.py [--steps 200000] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import machine, provenance, write_results  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_agent():
    """The ``my_agent`` function defined in the README's custom-agent block (nothing else)."""
    for block in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S):
        if "def my_agent" in block:
            code = block.split("\ntrain = ")[0]  # the definitions, not the README's short run
            ns: dict = {}
            exec(compile(code, "README.md[custom agent]", "exec"), ns)
            return ns["my_agent"]
    raise SystemExit("README.md has no block defining my_agent")


def main(steps: int, out: str | None) -> dict:
    import neurorl as nr

    my_agent = readme_agent()
    seeds = 5
    train = nr.make_train(nr.TrainConfig(env_id="CartPole-v1", agent="eprop_ac",
                                         network=my_agent, n_steps=steps, n_envs=8,
                                         n_seeds=seeds))
    t0 = time.time()
    keys = jax.numpy.stack([jax.random.key(s) for s in range(seeds)])
    state = train.init(keys)
    chunk = 20_000 if steps % 20_000 == 0 else steps
    curves = [[] for _ in range(seeds)]
    for _ in range(steps // chunk):
        state, m = train.run_chunk(state, chunk)
        ret, done = np.asarray(m["episode_return"]), np.asarray(m["done"])
        for s in range(seeds):
            curves[s] += ret[:, s][done[:, s]].tolist()
    rows, reach = [], 0
    for s in range(seeds):
        r = np.asarray(curves[s])
        roll = np.convolve(r, np.ones(100) / 100, "valid") if len(r) >= 100 else np.array([])
        hit = bool(len(roll) and roll.max() >= 195.0)
        reach += hit
        rows.append({"seed": s, "episodes": len(r), "final_last100": float(r[-100:].mean()),
                     "best_last100": float(roll.max()) if len(roll) else None,
                     "reaches_195": hit})
    result = {"steps": steps, "seeds_reaching_195": reach, "rows": rows,
              "wall_s": time.time() - t0, "machine": machine(), "provenance": provenance()}
    md = ["# README custom agent on CartPole-v1", "",
          f"{steps:,} env steps per seed, 8 envs, seeds 0-{seeds - 1} (vmapped); the network is "
          "the README's `my_agent` (E/I hidden layer, e-prop). Bar: mean return of the last "
          "100 episodes >= 195 on 3 of 5 seeds.", "",
          "| seed | episodes | final last-100 | best last-100 | reaches 195 |",
          "|---:|---:|---:|---:|---|"]
    for r in rows:
        md.append(f"| {r['seed']} | {r['episodes']} | {r['final_last100']:.1f} | "
                  f"{r['best_last100']:.1f} | {r['reaches_195']} |")
    md += ["", f"**{reach}/5 seeds reach 195** ({'met' if reach >= 3 else 'not met'}); "
           f"wall {result['wall_s']:.0f} s.", "",
           "Machine: " + ", ".join(f"{k}={v}" for k, v in result["machine"].items()), ""]
    write_results("custom_agent", result, rows, out=out, markdown="\n".join(md))
    print("\n".join(md))
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    main(a.steps, a.out)
