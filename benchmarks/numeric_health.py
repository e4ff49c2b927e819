"""Numeric-fault criteria on healthy runs: how far default runs of every agent stay from them.

The runner stops a run (exit code 3) when a weight norm exceeds ``training.max_weight_growth``
(default 1000) x its initial norm, or, for rules that clip to ``+-w_max`` (``rstdp``,
``reference``), when ``training.max_saturation`` (default 0.25) of a member's weights sit at the
bound (``neurorl.experiment.runner``). This runs the quickstart budget (``experiments/
quickstart.yaml``: CartPole-v1, 40,960 env steps per seed -- the quickstart's 40,000 rounded up
to BPTT's update window --, 8 envs, 2 seeds) for every agent
with its default hyperparameters, and once with ``lr = 1e3``, through the real runner, and
tables the peaks that ``summary.json`` records (``numeric``) and whether the run finished.

Usage: python benchmarks/numeric_health.py [--steps N] [--out DIR]
Writes benchmarks/results/numeric_health.json and .md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AGENTS = ("eprop_ac", "bptt_ac", "rstdp", "reference")


def run(agent: str, steps: int, lr: float | None) -> dict[str, Any]:
    import yaml

    from neurorl.errors import NonFiniteError
    from neurorl.experiment import runner
    from neurorl.experiment.config import from_dict

    tree = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
    tree["agent"] = {"name": agent, "substeps": 5, "hyper": {} if lr is None else {"lr": lr}}
    tree["training"].update(steps=steps, chunk_steps=min(4096, steps), threshold=None)
    tree["logging"].update(wandb="disabled", progress=False)
    cfg = from_dict(tree)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        fault = None
        try:
            s = runner.run_experiment(cfg, Path(d) / "run", progress=False,
                                      wandb_mode="disabled")
        except NonFiniteError as e:
            fault = e
        import json

        s = json.loads((Path(d) / "run" / "summary.json").read_text())
    num = s["numeric"]
    sat = num["peak_saturation"]
    return {
        "agent": agent, "lr": "default" if lr is None else f"{lr:g}", "steps": steps,
        "status": s["status"],
        "peak weight growth": round(max(num["peak_weight_growth"]), 3),
        "growth limit": num["max_weight_growth_limit"],
        "peak saturation": None if sat is None else round(max(sat), 4),
        "saturation limit": num["max_saturation_limit"],
        "fault": None if fault is None else f"{fault.quantity} at env step {fault.env_step}",
        "final return": (None if not s["members"] or s["members"][0]["final_return"] is None
                         else round(s["members"][0]["final_return"], 1)),
        "wall s": round(time.perf_counter() - t0, 1),
    }


def main(steps: int = 40_960, out: str | Path | None = None) -> dict[str, Any]:
    from benchmarks.common import (
        machine,
        markdown_table,
        provenance,
        provenance_line,
        write_results,
    )

    rows = []
    for lr in (None, 1e3):
        for agent in AGENTS:
            print(f"numeric_health: {agent} lr={lr or 'default'}", flush=True)
            rows.append(run(agent, steps if lr is None else min(steps, 8192), lr))
            print(rows[-1], flush=True)
    prov = provenance()
    md = "\n".join([
        "## Numeric-fault criteria on healthy and diverging runs", "",
        "Quickstart budget (CartPole-v1, 8 envs, 2 seeds) with each agent's defaults, and with "
        "`lr = 1e3` (8,192 env steps). Peaks over both seeds of the weight norm / its initial "
        "norm and of the fraction of weights at the clip bound `+-w_max` (clipping rules only), "
        "over the logged chunks (a faulty chunk is not logged: its values are in `fault`). "
        "A healthy run must finish with both peaks far below the limits; `lr = 1e3` must stop "
        "(exit code 3). `wall s` was measured on a shared, loaded machine (an upper bound).", "",
        markdown_table(rows), "", provenance_line(prov), ""])
    result = {"rows": rows, "machine": machine(), "provenance": prov}
    write_results("numeric_health", result, rows, out=out, markdown=md)
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40_960,
                    help="env steps per seed (a multiple of 256: BPTT's update window x 8 envs)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    main(a.steps, a.out)
