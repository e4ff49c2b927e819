"""Hardware benchmark: the e-prop actor-critic learning CartPole-v1 under chip constraints.

For each chip (float, Loihi 2 8-bit, Xylo, TrueNorth-like, PCM) the same experiment runs through
the experiment runner (seeds vmapped): weights are projected onto the chip's grid after every
update, the pole half-length shifts abruptly from 0.5 to 1.0 halfway through, and the summary gives
the final return, the return relative to float, energy per env step from the chip's constants,
and the adaptation time after the shift: env steps, chip time (env steps x substeps x the chip's
dt) and energy (the logged energy per env step x the post-shift episodes' lengths) until the
rolling return recovers to 90% of its pre-shift level. Bar (issue 6): 8-bit learning reaches
>= 95% of the float return.

A chip whose limits the default network exceeds (Xylo: fan-out 64, the default 64 recurrent
neurons have 63 recurrent + 3 readout targets) gets the largest ``n_rec`` whose network passes
that chip's compile-time checks (:func:`fitting_hyper`); the row says which network ran and why.

Default budget (the reported one): 5 seeds x 100k env steps, shift at 50k, about 15 min on the
2-core CPU. Quick: 2 seeds x 16k steps.

Usage: python benchmarks/hardware.py [--quick] [--steps N] [--seeds S] [--chips float loihi2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHIPS = ["float", "loihi2", "xylo", "truenorth", "pcm"]
FRACTION = 0.9  # recovered = rolling return back to this fraction of its pre-shift level


def _median(xs: list) -> float | None:
    v = [x for x in xs if x is not None]
    return float(np.median(v)) if v else None


def fitting_hyper(chip: str, base: dict) -> tuple[dict, str | None]:
    """The agent hyperparameters under which the config's agent fits ``chip``.

    The default network if ``make_train`` compiles it for the chip; otherwise the largest
    ``n_rec`` below the default whose network passes the chip's limits (``ChipCapacityError``
    is what the compile raises for fan-in, fan-out, neurons per core and capacity).

    Returns:
        ``(hyper, note)``: the hyperparameters to run and why they differ (None if they do not).
    """
    import importlib

    from neurorl.errors import ChipCapacityError
    from neurorl.experiment.train import TrainConfig, make_train

    agent, hyper = base["agent"]["name"], dict(base["agent"].get("hyper") or {})
    if chip == "float":
        return hyper, None
    default = int(hyper.get("n_rec",
                            importlib.import_module(f"neurorl.agents.{agent}").DEFAULTS["n_rec"]))
    first_error = None
    for n_rec in range(default, 0, -1):
        h = {**hyper, "n_rec": n_rec}
        try:
            make_train(TrainConfig(base["env"]["id"], agent, h, n_steps=8, n_envs=8,
                                   substeps=base["agent"]["substeps"], n_seeds=1, chip=chip,
                                   off_chip_learning=True))
        except ChipCapacityError as e:
            first_error = first_error or str(e).split(". ")[0]
            continue
        if n_rec == default:
            return hyper, None
        return h, f"n_rec {n_rec}: the default {default} does not fit ({first_error})"
    raise RuntimeError(f"no e-prop network fits {chip}: {first_error}")


def main(
    quick: bool = False,
    out: str | None = None,
    steps: int | None = None,
    seeds: int | None = None,
    chips: list[str] | None = None,
    max_weight_growth: float | None = None,
) -> dict:
    from benchmarks.common import machine, provenance, write_results
    from neurorl.errors import NumericFaultError
    from neurorl.experiment import config as C
    from neurorl.experiment.runner import run_experiment

    prov = provenance()  # the code as loaded, before the (long) run

    steps = steps or (16_000 if quick else 100_000)
    seeds = seeds or (2 if quick else 5)
    chips = chips or CHIPS
    base = C.load_yaml(ROOT / "experiments" / "hardware_loihi2.yaml")
    results_dir = Path(out) if out else ROOT / "benchmarks" / "results"
    rows = []
    for chip in chips:
        hyper, fit_note = fitting_hyper(chip, base)
        if fit_note:
            print(f"{chip}: {fit_note}", flush=True)
        cfg = C.from_dict(
            base,
            {
                "agent.hyper": hyper,
                "hardware.chip": chip,
                "hardware.off_chip_learning": True,
                "training.steps": steps,
                "training.chunk_steps": steps // 4,
                "training.n_seeds": seeds,
                "training.episode_window": 20,
                "training.adaptation_fraction": FRACTION,
                "shifts.params": [
                    {
                        "field": "length",
                        "schedule": {"kind": "abrupt", "values": [0.5, 1.0], "steps": [steps // 2]},
                    }
                ],
                "logging.wandb": "disabled",
                "logging.progress": False,
                "name": f"hw-{chip}",
                **({"training.max_weight_growth": max_weight_growth}
                   if max_weight_growth is not None else {}),
            },
        )
        run_dir = Path("/tmp/neurorl-hw") / chip
        t0 = time.perf_counter()
        try:
            summary = run_experiment(cfg, run_dir, progress=False, wandb_mode="disabled")
        except NumericFaultError as e:  # reported in the row, the other chips still run
            wall = time.perf_counter() - t0
            from neurorl.experiment.logging import read_jsonl

            # the energy per env step of the chunks logged before the stop
            logged = [c["energy_per_step_j"] for c in read_jsonl(run_dir / "chunks.jsonl")
                      if c.get("energy_per_step_j") is not None]
            rows.append({"chip": chip, "network": fit_note or "default",
                         "network_label": _label(fit_note),
                         "status": f"stopped: {str(e).split(' (run directory')[0]}",
                         "final_return_median": None, "final_return_per_seed": [],
                         "energy_per_step_j": float(np.mean(logged)) if logged else None,
                         "adaptation_steps": [],
                         "adaptation_recovered": 0, "adaptation_steps_median": None,
                         "adaptation_chip_time_s_median": None,
                         "adaptation_energy_j_median": None, "wall_s": wall})
            print(f"{chip}: {rows[-1]['status']} ({wall:.0f} s)", flush=True)
            continue
        wall = time.perf_counter() - t0
        finals = [m["final_return"] for m in summary["members"] if m["final_return"] is not None]
        energy = [
            m.get("energy_per_step_j")
            for m in summary["members"]
            if m.get("energy_per_step_j") is not None
        ]
        adapt = [a for m in summary["members"] for a in m.get("adaptation", [])]
        no_model = chip == "float"  # the float reference has no energy model
        steps_a = [a.get("steps") for a in adapt]
        chip_s = [a.get("chip_time_s") for a in adapt]
        energy_a = [None if no_model else a.get("energy_j") for a in adapt]
        rows.append(
            {
                "chip": chip,
                "network": fit_note or "default",
                "network_label": _label(fit_note),
                "status": "ok",
                "final_return_median": float(np.median(finals)) if finals else None,
                "final_return_per_seed": finals,
                "energy_per_step_j": None if no_model or not energy else float(np.mean(energy)),
                "adaptation_episodes": [a.get("episodes") for a in adapt],
                "adaptation_steps": steps_a,
                "adaptation_chip_time_s": chip_s,
                "adaptation_energy_j": energy_a,
                "adaptation_censored": [a.get("censored") for a in adapt],
                "adaptation_recovered": sum(not a.get("censored", True) for a in adapt),
                "adaptation_steps_median": _median(steps_a),
                "adaptation_chip_time_s_median": _median(chip_s),
                "adaptation_energy_j_median": _median(energy_a),
                "wall_s": wall,
            }
        )
        print(
            f"{chip}: final {rows[-1]['final_return_median']}, energy/step "
            f"{rows[-1]['energy_per_step_j']}, adaptation steps {steps_a}, chip s {chip_s}, "
            f"energy J {energy_a} ({wall:.0f} s)",
            flush=True,
        )
    ref = next((r["final_return_median"] for r in rows if r["chip"] == "float"), None)
    ref = ref or float("nan")
    for r in rows:
        r["relative_to_float"] = (
            None if r["final_return_median"] is None else r["final_return_median"] / ref
        )
    result = {
        "benchmark": "hardware",
        "steps": steps,
        "seeds": seeds,
        "shift_step": steps // 2,
        "adaptation_fraction": FRACTION,
        "substeps": base["agent"]["substeps"],
        "machine": machine(),
        "provenance": prov,
        "rows": rows,
    }
    write_results("hardware", result, rows, out=results_dir, markdown=markdown(result))
    return result


def _label(note: str | None) -> str:
    """The table's short network label: ``default`` or ``n_rec N``."""
    return "default" if not note else note.split(":")[0]


def markdown(result: dict) -> str:
    """The results table (and the notes under it) as markdown."""
    rows, steps, seeds = result["rows"], result["steps"], result["seeds"]
    substeps = result["substeps"]
    md = [
        "# Hardware: e-prop actor-critic on CartPole-v1 under chip constraints",
        "",
        f"{steps} env steps per seed, {seeds} seeds vmapped, pole half-length 0.5 -> 1.0 at step "
        f"{steps // 2}; weights projected onto each chip's grid after every update (per-matrix "
        "range 2 x max|w_init|); learning off-chip (host e-prop). Final return: mean of the last "
        "20 episodes. Energy per env step from each chip's constants (float: no energy model). "
        "Adaptation: from the shift until the rolling return (window 10 episodes) recovers to "
        f"{FRACTION:.0%} of its pre-shift level, as env steps, chip time (env steps x "
        f"{substeps} substeps x the chip's 1 ms dt) and energy (logged energy per env step x the "
        "post-shift episodes' lengths); medians over the seeds that recovered "
        "(None per seed = not recovered within the run).",
        "",
        "| chip | network | final return (median) | per seed | relative to float "
        "| energy / env step (J) | recovered | adaptation env steps (median) "
        "| chip time s (median) | energy J (median) | adaptation env steps per seed | wall s |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]

    def fmt(x, spec):
        return "-" if x is None else format(x, spec)

    for r in rows:
        per_seed = ", ".join(f"{x:.0f}" for x in r["final_return_per_seed"])
        steps_seed = ", ".join(fmt(x, ".0f") for x in r["adaptation_steps"])
        md.append(
            f"| {r['chip']} | {r['network_label']} | {fmt(r['final_return_median'], '.1f')} | "
            f"{per_seed} | "
            f"{fmt(r['relative_to_float'], '.2f')} | {fmt(r['energy_per_step_j'], '.3g')} | "
            f"{r['adaptation_recovered']}/{len(r['adaptation_steps'])} | "
            f"{fmt(r['adaptation_steps_median'], '.0f')} | "
            f"{fmt(r['adaptation_chip_time_s_median'], '.2f')} | "
            f"{fmt(r['adaptation_energy_j_median'], '.3g')} | {steps_seed} | {r['wall_s']:.0f} |"
        )
    for r in rows:
        if r["network"] != "default":
            md += ["", f"{r['chip']} network: {r['network']}."]
        if r["status"] != "ok":
            md += ["", f"{r['chip']}: {r['status']}."]
    l2 = next((r for r in rows if r["chip"] == "loihi2"), None)
    if l2 is not None:
        ok = l2["relative_to_float"] is not None and l2["relative_to_float"] >= 0.95
        verdict = "met" if ok else "NOT met"
        md += [
            "",
            f"Bar: 8-bit (Loihi 2) learning reaches >= 95% of the float return: **{verdict}** "
            f"({fmt(l2['relative_to_float'], '.2f')}).",
        ]
    md += ["", f"Machine: {result['machine']}"]
    return "\n".join(md) + "\n"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--chips", nargs="+", default=None, help=f"a subset of {CHIPS}")
    ap.add_argument("--out", default=None)
    ap.add_argument("--max-weight-growth", type=float, default=None,
                    help="the runs' training.max_weight_growth (default: the config's, 1000); "
                         "a diagnostic: off-chip learning's float shadow weights are unbounded")
    a = ap.parse_args()
    main(quick=a.quick, out=a.out, steps=a.steps, seeds=a.seeds, chips=a.chips,
         max_weight_growth=a.max_weight_growth)
