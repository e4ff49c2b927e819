"""Continual benchmark: the lifelong CartPole task sequence for each learning rule.

The sequence is ``experiments/lifelong_cartpole.yaml``: pole half-length 0.5 -> 1.0 -> 0.25 ->
0.5 (the last task revisits the first). Each rule (R-STDP, e-prop actor-critic, BPTT-PPO
actor-critic; default hyperparameters, float weights) learns online through the whole sequence,
seeds vmapped. After every ``steps_per_task / evals_per_task`` env steps the current policy is
evaluated **frozen** (no learning, sampled actions, see ``benchmarks/robustness.py``) on every
task, which gives the Continual World performance matrix ``perf[t, j]``. Returns are normalised
per task as ``(R - r_rand_j) / (500 - r_rand_j)``, ``r_rand_j`` a uniformly random policy's return
on task ``j`` measured in the same run.

Reported per rule (:mod:`neurorl.metrics.continual`; mean over seeds, per seed in the JSON):

* average performance at the end, forgetting (Continual World, mean over tasks; end points are
  the mean of the last ``k`` evaluations of a window), backward transfer (GEM's BWT on the
  smoothed matrix; negative = forgetting);
* forward transfer: Continual World's ``FT_i = (AUC_i - AUC_i^b) / (1 - AUC_i^b)`` against
  from-scratch runs on each task (the sequence's own first window is the from-scratch run on
  length 0.5; lengths 1.0 and 0.25 get their own runs with the same seeds and budget), and GEM's
  FWT against the untrained policy;
* adaptation after each task switch from the online training returns: env steps, chip time
  (env steps x substeps x 1 ms) and energy until the rolling return (10 episodes) is back to 90%
  of its pre-switch level;
* energy per env step on Loihi 2's per-event constants (the network itself unconstrained),
  spikes per env step.

Budget: the config's 4 x 100k env steps are more than the one-hour suite affords for three rules
(BPTT alone would take ~15 min), so the default is 4 x 50k steps per seed (``--steps-per-task
100000`` for the config's budget), 3 seeds, 5 evaluations per task of 500 steps x 8 envs.

Usage: python benchmarks/continual.py [--quick] [--rules eprop_ac] [--steps-per-task N] [--out DIR]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RULES = ("rstdp", "eprop_ac", "bptt_ac")
CONFIG = "lifelong_cartpole.yaml"
CHIP = "loihi2"  # energy model for the energy per step and the adaptation energy
FRACTION = 0.9
WINDOW = 10
FULL = {"steps_per_task": 50_000, "seeds": 3, "evals_per_task": 5, "eval_steps": 500, "k": 2}
QUICK = {"steps_per_task": 4_096, "seeds": 2, "evals_per_task": 2, "eval_steps": 100, "k": 1}


def _chunk(steps_per_task: int, evals: int, window: int) -> int:
    """Env steps between evaluations: a multiple of one update window (n_envs x update_every)."""
    c = steps_per_task // evals // window * window
    if c < window:
        from neurorl.errors import ConfigError

        raise ConfigError(
            "steps_per_task", steps_per_task, f">= evals_per_task x {window} env steps"
        )
    return c


def run_rule(rule: str, budget: dict[str, Any]) -> dict[str, Any]:
    """Train ``rule`` through the sequence with periodic frozen evaluations; metrics as a dict."""
    import jax
    import jax.numpy as jnp

    from benchmarks.robustness import (
        condition_params,
        make_evaluate,
        random_policy_return,
        update_every,
    )
    from neurorl.envs import make
    from neurorl.envs import shifts as S
    from neurorl.errors import ConfigError
    from neurorl.experiment import config as C
    from neurorl.experiment.runner import (
        _neuron_count,
        chip_step_time,
        energy_per_step,
        train_config,
    )
    from neurorl.experiment.train import make_train
    from neurorl.metrics import continual as cm

    t_rule = time.perf_counter()
    base = C.load_yaml(ROOT / "experiments" / CONFIG)
    tasks = base["shifts"]["tasks"]["tasks"]
    n_tasks = len(tasks)
    n_envs = base["training"]["n_envs"]
    E = budget["evals_per_task"]
    U = update_every(C.from_dict(base, {"agent.name": rule}))
    chunk = _chunk(budget["steps_per_task"], E, n_envs * U)
    per_task = chunk * E
    cfg = C.from_dict(
        base,
        {
            "agent.name": rule,
            "shifts.tasks.steps_per_task": per_task,
            "training.steps": per_task * n_tasks,
            "training.n_seeds": budget["seeds"],
        },
    )
    train = make_train(train_config(cfg))
    evaluate = make_evaluate(train, budget["eval_steps"])
    S_ = budget["seeds"]

    # distinct tasks (the last revisits the first): evaluate each once, map columns onto them
    distinct: list[dict] = []
    col = []
    for t in tasks:
        if t not in distinct:
            distinct.append(t)
        col.append(distinct.index(t))
    env_params = [make(cfg.env.id, **t)[1] for t in distinct]
    conds = condition_params(env_params, [S.Shifts()] * len(distinct))
    r_distinct = [
        random_policy_return(cfg.env.id, n_envs, budget["eval_steps"], **t) for t in distinct
    ]
    r_rand = np.array([r_distinct[d] for d in col])

    def norm(mean_ret: Any) -> np.ndarray:  # [D, S] -> [S, n_tasks], per-task normalised
        m = np.asarray(mean_ret, np.float64)[col].T
        return (m - r_rand) / (500.0 - r_rand)

    keys = jax.vmap(jax.random.key)(jnp.arange(S_) + cfg.training.seed)
    t0 = time.perf_counter()
    rs = train.init(keys)
    one = jax.tree.map(lambda x: x[0], rs.agent_state)
    neurons = _neuron_count(train, one)
    n_weights = int(sum(np.size(w) for w in jax.tree.leaves(train.agent.weights(one))))

    def e_step(synops: float) -> float:
        return energy_per_step(CHIP, synops, neurons, cfg.agent.substeps, n_weights)

    ev_key = jax.random.key(777)
    init_perf = norm(evaluate(rs.agent_state, conds, jax.random.fold_in(ev_key, 0))[0])
    perf = []  # [T_eval] of [S, n_tasks]
    eps: list[list[tuple[int, float, int, float]]] = [[] for _ in range(S_)]
    spikes, energies = [], []
    done_steps = 0
    eval_wall = 0.0
    for i in range(n_tasks * E):
        rs, m = train.run_chunk(rs, chunk)
        m = jax.device_get(m)
        d, r, ln = (np.asarray(m[k]) for k in ("done", "episode_return", "episode_length"))
        syn = np.asarray(m["synops"])
        spikes.append(float(np.mean(m["spikes"])))
        for s in range(S_):
            e_s = e_step(float(syn[:, s].mean()))
            energies.append(e_s)
            t_idx, b_idx = np.nonzero(d[:, s])
            for t, b in zip(t_idx, b_idx, strict=True):
                end = done_steps + (int(t) + 1) * n_envs
                eps[s].append((end, float(r[t, s, b]), int(ln[t, s, b]), e_s))
        done_steps += chunk
        te = time.perf_counter()
        perf.append(norm(evaluate(rs.agent_state, conds, jax.random.fold_in(ev_key, i + 1))[0]))
        eval_wall += time.perf_counter() - te
    seq_wall = time.perf_counter() - t0
    perf_arr = np.stack(perf, axis=1)  # [S, T_eval, n_tasks]

    # from-scratch baselines: the same compiled run with every task set to task j
    t1 = time.perf_counter()
    base_curves = np.empty((S_, E, n_tasks))
    scratch: dict[int, np.ndarray] = {col[0]: perf_arr[:, :E, 0]}
    for j in range(n_tasks):
        d = col[j]
        if d not in scratch:
            rs_b = train.init(keys)
            ts = rs_b.env_params.shifts.param
            vals = {
                name: jnp.full_like(v, float(distinct[d][name])) for name, v in ts.values.items()
            }
            ep = rs_b.env_params.replace(
                shifts=rs_b.env_params.shifts.replace(param=ts.replace(values=vals))
            )
            rs_b = rs_b.replace(env_params=ep)
            curve = []
            for i in range(E):
                rs_b, _ = train.run_chunk(rs_b, chunk)
                p = norm(evaluate(rs_b.agent_state, conds, jax.random.fold_in(ev_key, 1000 + i))[0])
                curve.append(p[:, j])
            scratch[d] = np.stack(curve, axis=1)
        base_curves[:, :, j] = scratch[d]
    base_wall = time.perf_counter() - t1

    # metrics per seed
    bounds = [per_task * (i + 1) for i in range(n_tasks - 1)]
    chip_s = chip_step_time(CHIP, cfg.agent.substeps)
    k = budget["k"]
    per_seed = []
    for s in range(S_):
        summ = cm.continual_summary(
            perf_arr[s], E, k=k, baseline_perf=base_curves[s], random_init=init_perf[s]
        )
        ends = np.array([e[0] for e in eps[s]])
        rets = np.array([e[1] for e in eps[s]])
        lens = np.array([e[2] for e in eps[s]])
        en = np.array([e[3] for e in eps[s]])
        adapt = []
        # as in the runner's summary: post-switch episodes started at or after the switch
        segments = cm.shift_segments(ends, lens, n_envs, bounds)
        for b, (pre, post) in zip(bounds, segments, strict=True):
            sel = np.concatenate([pre, post])
            shift_ep = int(pre.size)
            try:
                a = cm.adaptation_time(
                    rets[sel],
                    shift_ep,
                    window=min(WINDOW, shift_ep),
                    theta=FRACTION,
                    lengths=lens[sel],
                    chip_step_s=chip_s,
                    step_energy=en[sel],
                )
                adapt.append(
                    {
                        "switch_step": b,
                        "steps": _fin(a.tau_steps),
                        "chip_time_s": _fin(a.tau_chip_s),
                        "energy_j": _fin(a.energy_j),
                        "censored": a.censored,
                        "pre_level": a.pre_level,
                    }
                )
            except ConfigError as err:  # too few episodes around a switch (quick mode)
                adapt.append({"switch_step": b, "error": str(err)})
        per_seed.append(
            {
                **summ,
                "forgetting_per_task": cm.forgetting(perf_arr[s], E, k).tolist(),
                "train_last100": float(rets[-100:].mean()) if rets.size else None,
                "adaptation": adapt,
            }
        )
    keys_ = (
        "average_performance",
        "forgetting",
        "backward_transfer",
        "forward_transfer",
        "gem_forward_transfer",
    )
    switches = []
    for i, b in enumerate(bounds):
        a = [p["adaptation"][i] for p in per_seed]
        switches.append(
            {
                "switch_step": b,
                "to_task": i + 1,
                "recovered": sum(x.get("censored") is False for x in a),
                "steps_median": _median([x.get("steps") for x in a]),
                "chip_time_s_median": _median([x.get("chip_time_s") for x in a]),
                "energy_j_median": _median([x.get("energy_j") for x in a]),
            }
        )
    return {
        "rule": rule,
        "steps_per_task": per_task,
        "eval_every": chunk,
        "seeds": S_,
        **{key: _mean([p.get(key) for p in per_seed]) for key in keys_},
        "switches": switches,
        "energy_per_step_j": float(np.mean(energies)),
        "spikes_per_step": float(np.mean(spikes)),
        "random_policy_return": r_rand.tolist(),
        "perf_mean": perf_arr.mean(axis=0).tolist(),
        "per_seed": per_seed,
        "wall_s": {
            "total": time.perf_counter() - t_rule,
            "sequence_incl_eval": seq_wall,
            "eval": eval_wall,
            "baselines_incl_eval": base_wall,
        },
    }


def _fin(x: Any) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _mean(xs: list) -> float | None:
    v = [x for x in xs if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else None


def _median(xs: list) -> float | None:
    v = [x for x in xs if x is not None]
    return float(np.median(v)) if v else None


def main(
    quick: bool = False,
    out: str | Path | None = None,
    rules: list[str] | None = None,
    steps_per_task: int | None = None,
) -> dict:
    """Run every rule through the sequence; write ``continual.{json,md}`` to ``out``."""
    from benchmarks.common import machine, provenance, write_results
    from neurorl.errors import lookup

    prov = provenance()  # the code as loaded, before the (long) run

    budget = dict(QUICK if quick else FULL)
    if steps_per_task is not None:
        budget["steps_per_task"] = int(steps_per_task)
    rules = [lookup({r: r for r in RULES}, r, "rule", field="rules") for r in rules or RULES]
    results_dir = Path(out) if out else ROOT / "benchmarks" / "results"
    t0 = time.perf_counter()
    rows = []
    for rule in rules:
        row = run_rule(rule, budget)
        rows.append(row)
        print(
            f"{rule}: AP {row['average_performance']}, F {row['forgetting']}, "
            f"BWT {row['backward_transfer']}, FT {row['forward_transfer']}, "
            f"GEM FWT {row['gem_forward_transfer']}, switches {row['switches']}, "
            f"E/step {row['energy_per_step_j']:.3g} J, wall {row['wall_s']}",
            flush=True,
        )
    result = {
        "benchmark": "continual",
        "quick": quick,
        "config": f"experiments/{CONFIG}",
        "budget": budget,
        "energy_chip": CHIP,
        "adaptation_fraction": FRACTION,
        "wall_s": time.perf_counter() - t0,
        "machine": machine(),
        "provenance": prov,
        "rows": rows,
    }
    write_results("continual", result, rows, out=results_dir, markdown=markdown(result))
    return result


def markdown(result: dict) -> str:
    """The report section: one row per rule, one per (rule, switch) for adaptation."""
    b = result["budget"]

    def f(x, spec=".2f"):
        return "-" if x is None else format(x, spec)

    rows = result["rows"]
    lines = [
        "# Continual: lifelong CartPole (pole half-length 0.5 -> 1.0 -> 0.25 -> 0.5)",
        "",
        f"{b['steps_per_task']:,} env steps per task per seed (rounded down to a multiple of each "
        f"rule's update window: "
        + ", ".join(f"{r['rule']} {r['steps_per_task']:,}" for r in rows)
        + f"), {b['seeds']} seeds, online learning through the sequence (`{result['config']}`, "
        f"steps per task reduced for the suite). {b['evals_per_task']} times per task the frozen "
        f"policy is evaluated on every task ({b['eval_steps']} steps x 8 envs, sampled actions); "
        "performance = (R - random) / "
        f"(500 - random) per task. Continual World metrics with end points averaged over the last "
        f"{b['k']} evaluations; forward transfer (FT) against from-scratch runs on each task, GEM "
        "FWT against the untrained policy; means over seeds. Energy on "
        f"{result['energy_chip']}'s per-event constants (float weights).",
        "",
        "| rule | avg performance | forgetting | backward transfer | forward transfer (CW) "
        "| forward transfer (GEM) | energy / env step (J) | spikes / env step | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        wall = r["wall_s"]["total"]
        lines.append(
            f"| {r['rule']} | {f(r['average_performance'])} | {f(r['forgetting'])} | "
            f"{f(r['backward_transfer'])} | {f(r['forward_transfer'])} | "
            f"{f(r['gem_forward_transfer'])} | {f(r['energy_per_step_j'], '.3g')} | "
            f"{f(r['spikes_per_step'], '.1f')} | {wall:.0f} |"
        )
    lines += [
        "",
        f"Adaptation after each switch (online training returns, window {WINDOW} episodes, "
        f"recovered = back to {FRACTION:.0%} of the pre-switch level; medians over the seeds that "
        "recovered; chip time = env steps x substeps x 1 ms):",
        "",
        "| rule | switch at env step | to task | recovered | env steps | chip time s | energy J |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        for s in r["switches"]:
            lines.append(
                f"| {r['rule']} | {s['switch_step']:,} | {s['to_task']} | "
                f"{s['recovered']}/{r['seeds']} | {f(s['steps_median'], '.0f')} | "
                f"{f(s['chip_time_s_median'])} | {f(s['energy_j_median'], '.3g')} |"
            )
    lines += [
        "",
        f"Total wall time {result['wall_s']:.0f} s.",
        "",
    ]
    prov = result.get("provenance")
    if prov:
        from benchmarks.common import provenance_line

        lines += [provenance_line(prov), ""]
    lines += [f"Machine: {result['machine']}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rules", nargs="+", default=None, help=f"a subset of {list(RULES)}")
    ap.add_argument("--steps-per-task", type=int, default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    main(quick=a.quick, out=a.out, rules=a.rules, steps_per_task=a.steps_per_task)
