"""Hardware benchmark: the e-prop actor-critic learning CartPole-v1 under chip constraints.

For each chip (float, Loihi 2 8-bit, Xylo, TrueNorth-like, PCM) the same experiment runs through
the experiment runner (seeds vmapped): weights are projected onto the chip's grid after every
update, the pole half-length shifts abruptly from 0.5 to 1.0 halfway through, and the summary gives
the final return, the return relative to float, energy per env step from the chip's constants,
and the adaptation time after the shift (episodes/env steps until the rolling return recovers to
90% of its pre-shift level). Bar (issue 6): 8-bit learning reaches >= 95% of the float return.

Usage: python benchmarks/hardware.py [--quick] [--steps N] [--seeds S]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHIPS = ["float", "loihi2", "xylo", "truenorth", "pcm"]


def main(
    quick: bool = False, out: str | None = None, steps: int | None = None, seeds: int | None = None
) -> dict:
    from benchmarks.common import machine
    from neurorl.experiment import config as C
    from neurorl.experiment.runner import run_experiment

    steps = steps or (16_000 if quick else 80_000)
    seeds = seeds or (2 if quick else 3)
    base = C.load_yaml(ROOT / "experiments" / "hardware_loihi2.yaml")
    results_dir = Path(out) if out else ROOT / "benchmarks" / "results"
    rows = []
    for chip in CHIPS:
        cfg = C.from_dict(
            base,
            {
                "hardware.chip": chip,
                "hardware.off_chip_learning": True,
                "training.steps": steps,
                "training.chunk_steps": steps // 4,
                "training.n_seeds": seeds,
                "training.episode_window": 20,
                "shifts.params": [
                    {
                        "field": "length",
                        "schedule": {"kind": "abrupt", "values": [0.5, 1.0], "steps": [steps // 2]},
                    }
                ],
                "logging.wandb": "disabled",
                "logging.progress": False,
                "name": f"hw-{chip}",
            },
        )
        t0 = time.perf_counter()
        summary = run_experiment(
            cfg, Path("/tmp/neurorl-hw") / chip, progress=False, wandb_mode="disabled"
        )
        wall = time.perf_counter() - t0
        finals = [m["final_return"] for m in summary["members"] if m["final_return"] is not None]
        energy = [
            m.get("energy_per_step_j")
            for m in summary["members"]
            if m.get("energy_per_step_j") is not None
        ]
        adapt = [a for m in summary["members"] for a in m.get("adaptation", [])]
        rows.append(
            {
                "chip": chip,
                "final_return_median": float(np.median(finals)) if finals else None,
                "final_return_per_seed": finals,
                "energy_per_step_j": float(np.mean(energy)) if energy else None,
                "adaptation_episodes": [a.get("episodes") for a in adapt],
                "adaptation_steps": [a.get("steps") for a in adapt],
                "adaptation_censored": [a.get("censored") for a in adapt],
                "wall_s": wall,
            }
        )
        print(
            f"{chip}: final {rows[-1]['final_return_median']}, energy/step {rows[-1]['energy_per_step_j']}, "
            f"adaptation steps {rows[-1]['adaptation_steps']} ({wall:.0f} s)",
            flush=True,
        )
    ref = rows[0]["final_return_median"] or float("nan")
    for r in rows:
        r["relative_to_float"] = (
            None if r["final_return_median"] is None else r["final_return_median"] / ref
        )
    result = {
        "benchmark": "hardware",
        "steps": steps,
        "seeds": seeds,
        "shift_step": steps // 2,
        "machine": machine(),
        "rows": rows,
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "hardware.json").write_text(json.dumps(result, indent=2, default=str))
    md = [
        "# Hardware: e-prop actor-critic on CartPole-v1 under chip constraints",
        "",
        f"{steps} env steps per seed, {seeds} seeds vmapped, pole half-length 0.5 -> 1.0 at step {steps // 2}; "
        "weights projected onto each chip's grid after every update (per-matrix range 2 x max|w_init|); "
        "learning off-chip (host e-prop). Energy per env step from each chip's constants (float: none). "
        "Adaptation: env steps after the shift until the rolling return (window 10 episodes) recovers to 90% "
        "of its pre-shift level (None = not recovered within the run).",
        "",
        "| chip | final return (median) | per seed | relative to float | energy / env step (J) | adaptation (env steps, per seed) | wall s |",
        "|---|---:|---|---:|---:|---|---:|",
    ]

    def fmt(x, spec):
        return "-" if x is None else format(x, spec)

    for r in rows:
        per_seed = ", ".join(f"{x:.0f}" for x in r["final_return_per_seed"])
        md.append(
            f"| {r['chip']} | {fmt(r['final_return_median'], '.1f')} | {per_seed} | "
            f"{fmt(r['relative_to_float'], '.2f')} | {fmt(r['energy_per_step_j'], '.3g')} | "
            f"{r['adaptation_steps']} | {r['wall_s']:.0f} |"
        )
    l2 = next(r for r in rows if r["chip"] == "loihi2")
    ok = l2["relative_to_float"] is not None and l2["relative_to_float"] >= 0.95
    verdict = "met" if ok else "NOT met"
    md += [
        "",
        f"Bar: 8-bit (Loihi 2) learning reaches >= 95% of the float return: **{verdict}** "
        f"({fmt(l2['relative_to_float'], '.2f')}).",
        "",
        f"Machine: {machine()}",
    ]
    (results_dir / "hardware.md").write_text("\n".join(md) + "\n")
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    main(quick=a.quick, out=a.out, steps=a.steps, seeds=a.seeds)
