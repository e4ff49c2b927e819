"""Learning benchmarks: spiking agents on classic control, 5 seeds vmapped (not a timed test).

For each (agent, env) case: train online for a budget of env steps (summed over the agent's
parallel envs) with seeds 0-4 (hyperparameters were chosen on seeds 100-104 only), then report
per case: median and spread over seeds of the mean return of the last 100 episodes, env steps
until the running mean of the last 100 episodes first reaches the threshold, wall time and
spikes per env step. Writes benchmarks/results/learning.json and learning.md.

    .venv/bin/python benchmarks/learning.py                 # all cases
    .venv/bin/python benchmarks/learning.py eprop_cartpole  # some cases
    # a shorter budget (a before/after check under load): results only to --json, never to
    # learning.md / learning.json
    .venv/bin/python benchmarks/learning.py rstdp_cartpole --budget 200000 --json /tmp/r.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import machine, provenance, record_episodes  # noqa: E402
from neurorl.experiment.train import TrainConfig, make_train  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results")

# td_ac on CartPole (tuning seeds 100-104, learning_notes.md): per-dimension fields (the
# 625 place cells ran too slowly to tune on this box in time), signed decision feedback and
# heterosynaptic balance on the actor, a less noisy critic (noise 0.3, 100 neurons), a short
# discount time (tau_r 20 env steps) so the TD error is not drowned by spike-count noise
TD_AC_CARTPOLE = {"encoding": "rf", "gate": "signed", "normalize": True, "critic_noise_std": 0.3,
                  "n_critic": 100, "tau_r": 20.0, "reward_scale": 0.05, "lr_critic": 1e-4}

# the e-prop hyperparameters the harder tasks (Acrobot, Pendulum, MountainCar) were tuned with
# (the agent's defaults at the time), pinned so that a later change of the defaults (tuned on
# CartPole) does not silently change these cases
EPROP_HARD = {"lr": 1e-4, "adam_eps": 1e-3, "lam": 0.8, "gamma": 0.99, "c_v": 0.5,
              "tau_out": 5.0, "adam_b2": 0.999, "n_rec": 64, "n_alif": 0, "max_grad_norm": 1.0}

# name: (config, threshold or None, chunk env steps)
CASES: dict[str, tuple[TrainConfig, float | None, int]] = {
    # the e-prop agent's defaults: constant lr 1e-4, Adam eps 1e-3 and b2 0.9999, readout
    # tau_out 10 ms, no entropy bonus (chosen on seeds 100-104, see learning_notes.md)
    "eprop_cartpole": (TrainConfig("CartPole-v1", "eprop_ac", {}, n_steps=500_000, n_envs=8,
                                   substeps=5, n_seeds=5), 475.0, 20_000),
    # earlier configurations, kept for comparison (Adam eps 1e-5 was the default then): the lr
    # decays linearly to 0 over the budget (62,500 learn calls = 500k steps / 8 envs), entropy
    # 0.001; and the earlier defaults (constant lr, entropy 0.01)
    "eprop_cartpole_lr_decay": (TrainConfig("CartPole-v1", "eprop_ac",
                                            {"c_ent": 0.001, "lr_decay_steps": 62_500,
                                             "adam_eps": 1e-5, "adam_b2": 0.999,
                                             "tau_out": 5.0}, n_steps=500_000,
                                            n_envs=8, substeps=5, n_seeds=5), 475.0, 20_000),
    "eprop_cartpole_old_defaults": (TrainConfig("CartPole-v1", "eprop_ac",
                                                {"c_ent": 0.01, "adam_eps": 1e-5,
                                                 "adam_b2": 0.999, "tau_out": 5.0},
                                                n_steps=500_000, n_envs=8, substeps=5,
                                                n_seeds=5), 475.0, 20_000),
    # PPO epochs x minibatches x updates = 10 x 2 x 1168 optimizer steps; lr decays to 0 over them
    "bptt_cartpole": (TrainConfig("CartPole-v1", "bptt_ac", {"lr_decay_steps": 23_360},
                                  n_steps=299_008, n_envs=8, substeps=5, n_seeds=5), 475.0,
                      16_384),
    "rstdp_cartpole": (TrainConfig("CartPole-v1", "rstdp", {}, n_steps=1_000_000, n_envs=8,
                                   substeps=5, n_seeds=5), 195.0, 40_000),
    # issue 17: R-STDP with conjunctive place cells (Fremaux et al. 2013's input coding; chosen
    # on seeds 100-104, see learning_notes.md), bar: last-100 >= 400 at the end of the budget
    "rstdp_cartpole_place": (TrainConfig("CartPole-v1", "rstdp", {"encoding": "place"},
                                         n_steps=200_000, n_envs=8, substeps=5, n_seeds=5),
                             475.0, 20_000),
    # the TD-LTP spiking actor-critic of Fremaux, Sprekeler & Gerstner 2013 (spiking critic,
    # continuous TD error), neurorl/agents/td_ac.py; hyperparameters chosen on seeds 100-104
    "td_ac_cartpole": (TrainConfig("CartPole-v1", "td_ac", TD_AC_CARTPOLE, n_steps=200_000,
                                   n_envs=8, substeps=5, n_seeds=5), 475.0, 20_000),
    # the same with the paper's conjunctive place cells (5 per dimension, 625 inputs); nothing
    # retuned (tuning seeds 100-104 at 300k: 291-354; actor lr 1e-4 peaked at ~400 and fell
    # to 166-274 by 200k)
    "td_ac_cartpole_place": (TrainConfig("CartPole-v1", "td_ac",
                                         {**TD_AC_CARTPOLE, "encoding": "place"},
                                         n_steps=300_000, n_envs=8, substeps=5, n_seeds=5),
                             475.0, 20_000),
    # reward scale 0.01 (value of the -1-per-step reward ~ -1 instead of ~ -10, so Adam's
    # lr-sized steps reach it): tuning seeds went from -500 (0 goals) to -396..-493 at 200k;
    # Adam eps 1e-3 (the agent's default since issue 17, was 1e-5 here): tuning seeds at 300k
    # -166..-239 (was -308..-497); no entropy bonus (with 0.01 the policy stayed at ~-150:
    # at reward scale 0.01 the TD errors, hence the policy gradient, are ~0.01-sized, so the
    # bonus is not small next to them): tuning seeds at 1M -81..-88 (at 300k -87..-98), see
    # learning_notes.md
    "eprop_acrobot": (TrainConfig("Acrobot-v1", "eprop_ac", {**EPROP_HARD, "reward_scale": 0.01,
                                                         "c_ent": 0.0},
                                  n_steps=1_000_000, n_envs=8, substeps=5, n_seeds=5), -100.0,
                      50_000),
    # the earlier configuration (entropy bonus 0.01), kept for comparison: plateau at ~-150
    "eprop_acrobot_c_ent_0.01": (TrainConfig("Acrobot-v1", "eprop_ac",
                                             {**EPROP_HARD, "reward_scale": 0.01, "c_ent": 0.01},
                                             n_steps=1_000_000, n_envs=8, substeps=5,
                                             n_seeds=5), -100.0, 50_000),
    # reward scale 0.01 for the same reason as Acrobot (tuning seeds at 300k: -1400 -> -783);
    # Adam eps 1e-3 (was 1e-5 here; at 1M the reported seeds then peaked at -190 and fell to a
    # median of -333) and discount 0.95 (a shorter horizon for the critic): tuning seeds at 600k
    # -165..-183, no collapse (gamma 0.99: -183..-297 with transient collapses to -1500)
    "eprop_pendulum_b2_0.999": (TrainConfig("Pendulum-v1", "eprop_ac",
                                            {**EPROP_HARD, "c_ent": 0.0, "reward_scale": 0.01,
                                             "gamma": 0.95},
                                            n_steps=600_000,
                                            n_envs=8, substeps=5, n_seeds=5), -250.0, 50_000),
    # issue 17 (Pendulum, second pass): the same with the agent's CartPole-tuned Adam b2 0.9999
    # and readout tau_out 10 (b2 0.999 renormalises the small TD-gated gradients of a learned
    # policy to lr-sized steps: the constant lr's drift). Tuning seeds 100-104 at 300k: median
    # -223 (b2 0.999, tau_out 5: -251; b2 0.9999 alone: -234); at 600k -166..-206, median -182
    "eprop_pendulum": (TrainConfig("Pendulum-v1", "eprop_ac",
                                   {**EPROP_HARD, "c_ent": 0.0, "reward_scale": 0.01,
                                    "gamma": 0.95, "adam_b2": 0.9999, "tau_out": 10.0},
                                   n_steps=600_000,
                                   n_envs=8, substeps=5, n_seeds=5), -250.0, 50_000),
    # potential-based reward shaping (Ng et al. 1999), Phi = 300 x the car's mechanical energy
    # / 0.0025 (``shaping: mountain_car_energy``); the returns are the env's unshaped ones.
    # Without it the -1-per-step reward gives no gradient until a random policy reaches the goal
    # (it never does in 200 steps). Tuning seeds at 300k: with entropy 0.01, scale 100
    # -187..-193, 300 -171..-196; without the entropy bonus (issue 17; seeds 100-102), scale 300
    # -144, -151, -154 (peaks -117..-124, then a drift), scale 100 -127, -126, -117 (chosen)
    "eprop_mountaincar_shaped": (TrainConfig("MountainCar-v0", "eprop_ac",
                                             {**EPROP_HARD, "reward_scale": 0.01, "c_ent": 0.0,
                                              "shaping": "mountain_car_energy",
                                              "shaping_scale": 100.0},
                                             n_steps=300_000, n_envs=8, substeps=5, n_seeds=5),
                                 -110.0, 25_000),
    # MountainCarContinuous-v0 (issue 17; threshold 90: gymnasium's reward_threshold): the same
    # potential-based energy shaping, scale 100 (the action cost -0.1 a^2 and the +100 goal
    # bonus are the env's, unshaped in the returns), no entropy bonus. Tuning seeds 100-104 at
    # 200k: scale 300 90.1, 90.0, 93.0, 89.7, 90.4 (peaks ~93, then drifts to ~90); scale 100
    # 93.1, 91.8, 93.8, 93.1, 92.6 (chosen), see learning_notes.md
    "eprop_mountaincar_continuous_shaped": (TrainConfig("MountainCarContinuous-v0", "eprop_ac",
                                                        {**EPROP_HARD, "reward_scale": 0.01,
                                                         "c_ent": 0.0,
                                                         "shaping": "mountain_car_energy",
                                                         "shaping_scale": 100.0},
                                                        n_steps=200_000, n_envs=8, substeps=5,
                                                        n_seeds=5), 90.0, 25_000),
    "eprop_pendulum_reward_scale_0.1": (TrainConfig("Pendulum-v1", "eprop_ac",
                                                    {"c_ent": 0.0, "adam_eps": 1e-5,
                                                     "tau_out": 5.0, "adam_b2": 0.999},
                                                    n_steps=1_000_000, n_envs=8, substeps=5,
                                                    n_seeds=5), None, 40_000),
}
# the non-spiking reference (benchmarks/ppo_baseline.py: PPO, MLP 64x64, constant lr), run by
# the same script on the same machine: name -> (env id, threshold, budget env steps per seed)
PPO_CASES: dict[str, tuple[str, float | None, int]] = {
    "ppo_cartpole": ("CartPole-v1", 475.0, 500_000),
    # the same PPO (its CartPole hyperparameters, not retuned) on Acrobot, beside eprop_acrobot
    "ppo_acrobot": ("Acrobot-v1", -100.0, 500_000),
}
SEEDS = (0, 1, 2, 3, 4)
# issue 17's acceptance bars on the *final* median last-100 (the threshold column is the
# crossing of gymnasium's "solved" level, a different question): case -> bar (>=)
FINAL_BARS: dict[str, float] = {
    "eprop_cartpole": 450.0, "rstdp_cartpole_place": 400.0, "eprop_acrobot": -100.0,
    "eprop_pendulum": -250.0, "eprop_mountaincar_shaped": -150.0,
    "eprop_mountaincar_continuous_shaped": 90.0,
}


def _min_after_reach(returns: list[float], thr: float) -> float:
    """The lowest last-100 mean (over every finished episode) from the first one >= ``thr``."""
    m = np.convolve(returns, np.ones(100) / 100, mode="valid")
    return float(m[int(np.argmax(m >= thr)):].min())


def _min_from(returns: list[float], first: int) -> float | None:
    """The lowest last-100 mean over the windows ending at episode ``first`` or later (None
    with fewer than 100 episodes)."""
    if len(returns) < 100:
        return None
    m = np.convolve(returns, np.ones(100) / 100, mode="valid")
    return float(m[max(first - 99, 0):].min())


def run_case(name: str, seeds: tuple[int, ...] = SEEDS, budget: int | None = None) -> dict:
    if name in PPO_CASES:
        from benchmarks.ppo_baseline import run_ppo

        env_id, thr, n = PPO_CASES[name]
        return run_ppo(seeds, budget or n, env_id, thr)
    cfg, thr, chunk = CASES[name]
    cfg = dataclasses.replace(cfg, n_seeds=len(seeds))
    if budget is not None:  # a multiple of the chunk's granularity (n_envs)
        cfg = dataclasses.replace(cfg, n_steps=budget - budget % cfg.n_envs)
    train = make_train(cfg)
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
    t0 = time.time()
    rs = train.init(keys)
    returns = [[] for _ in seeds]
    reach = [None for _ in seeds]
    peak = [float("-inf") for _ in seeds]
    spikes, steps = [], 0
    curve, half = [], None  # last-100 per seed at every chunk's end; episodes at mid-budget
    while steps < cfg.n_steps:
        n = min(chunk, cfg.n_steps - steps)
        rs, m = train.run_chunk(rs, n)
        m = jax.device_get(m)
        spikes.append(float(np.mean(m["spikes"])))
        T = m["done"].shape[0]
        for s in range(len(seeds)):
            record_episodes(returns, peak, reach, s, m["done"][:, s], m["episode_return"][:, s],
                            steps, cfg.n_envs, thr)
        steps += T * cfg.n_envs
        last = [float(np.mean(r[-100:])) if r else float("nan") for r in returns]
        curve.append([steps, last])
        if half is None and steps >= cfg.n_steps // 2:
            half = [len(r) for r in returns]
        print(f"{name} {steps:8d} t={time.time() - t0:6.0f}s last100={np.round(last, 1)} "
              f"reach={reach}", flush=True)
    wall = time.time() - t0
    last = np.array([np.mean(r[-100:]) for r in returns])
    # stability after reaching: the lowest last-100 mean after the threshold was first reached
    low_after = [None if reach[s] is None else _min_after_reach(returns[s], thr)
                 for s in range(len(seeds))]
    return {
        "env_id": cfg.env_id, "agent": cfg.agent, "agent_kwargs": dict(cfg.agent_kwargs),
        "n_steps": cfg.n_steps, "n_envs": cfg.n_envs, "substeps": cfg.substeps,
        "seeds": list(seeds), "threshold": thr,
        "last100_per_seed": last.tolist(),
        "last100_median": float(np.median(last)),
        "last100_min": float(last.min()), "last100_max": float(last.max()),
        "steps_to_threshold_per_seed": reach,
        "seeds_reaching_threshold": sum(r is not None for r in reach),
        "peak_last100_per_seed": peak,
        "min_last100_after_reach_per_seed": low_after,
        # the lowest last-100 mean in the budget's second half (a collapse after learning)
        "min_last100_second_half_per_seed": [_min_from(r, h) for r, h in zip(returns, half,
                                                                             strict=True)],
        "last100_per_chunk": curve,
        "episodes_per_seed": [len(r) for r in returns],
        "wall_time_s": wall,
        "spikes_per_env_step": float(np.mean(spikes)),
    }


def write(results: dict, seeds: tuple[int, ...]) -> None:
    """Merge ``results`` into learning.json and regenerate learning.md (seeds 0-4 only; other
    seeds, used for tuning, go to learning_tuning.json)."""
    os.makedirs(OUT, exist_ok=True)
    reported = tuple(seeds) == SEEDS
    path = os.path.join(OUT, "learning.json" if reported else "learning_tuning.json")
    old = json.load(open(path)) if os.path.exists(path) else {"cases": {}}
    old["cases"].update(results)
    # cases no longer defined (older configurations) are dropped, not reported
    old["cases"] = {k: v for k, v in old["cases"].items() if k in CASES or k in PPO_CASES}
    old["machine"] = machine()
    old["provenance"] = provenance()
    json.dump(old, open(path, "w"), indent=1)
    if not reported:
        return
    m = old["machine"]
    lines = [
        "# Learning benchmarks (seeds 0-4, online training returns)", "",
        f"Machine: {m.get('cpu')}, {m.get('usable_cores')} usable cores, jax {m.get('jax')} on "
        f"{m.get('jax_backend')}; load average at the end {m.get('loadavg_1_5_15')} (other jobs "
        "shared the cores, so wall times are upper bounds).", "",
        "A seed *reaches* the threshold when the mean return of its last 100 episodes first gets "
        "to it within the budget; a bar is met when the median seed reaches it (3 of 5). "
        "*Final* is the last-100 mean at the end of the budget, *peak* the best last-100 mean "
        "during training. *Final bar*: issue 17's acceptance bar on the final median "
        "(CartPole e-prop >= 450 at 500k, R-STDP >= 400, Acrobot >= -100, Pendulum >= -250, "
        "MountainCar-v0 >= -150, MountainCarContinuous-v0 >= 90).", "",
        "| case | env | agent | budget (env steps) | final last-100: median [min, max] | "
        "peak last-100: median [min, max] | threshold | seeds reaching | steps to threshold "
        "(per seed) | median steps to threshold | PPO median steps (same env, same run) | bar "
        "| final bar | wall s (under load) | spikes/step |",
        "|---|---|---|---:|---|---|---:|---:|---|---:|---:|---|---|---:|---:|",
    ]

    def median_steps(r: dict) -> str:
        # the median seed's crossing (a seed that never reached counts as infinitely late)
        st = sorted((x if x is not None else float("inf"))
                    for x in r["steps_to_threshold_per_seed"])
        m = st[len(st) // 2] if st else float("inf")
        return "not reached" if m == float("inf") else f"{int(m):,}"

    ppo = {r["env_id"]: r for k, r in old["cases"].items() if k in PPO_CASES}

    def ppo_steps(r: dict) -> str:
        p = ppo.get(r["env_id"])
        if p is None or r["threshold"] is None:
            return "n/a"
        if p["threshold"] != r["threshold"]:
            return f"n/a (PPO's threshold: {p['threshold']})"
        return median_steps(p)
    def final_bar(k: str, r: dict) -> str:
        b = FINAL_BARS.get(k)
        if b is None:
            return "-"
        return f">= {b:g}: {'met' if r['last100_median'] >= b else 'not met'}"

    for k, r in old["cases"].items():
        sp = r["spikes_per_env_step"]
        pk = r.get("peak_last100_per_seed")
        peak = (f"{np.median(pk):.1f} [{min(pk):.1f}, {max(pk):.1f}]" if pk else "n/a")
        n_reach = r["seeds_reaching_threshold"]
        bar = ("n/a" if r["threshold"] is None
               else ("met" if n_reach >= 3 else "not met"))
        lines.append(
            f"| {k} | {r['env_id']} | {r['agent']} | {r['n_steps']:,} | "
            f"{r['last100_median']:.1f} [{r['last100_min']:.1f}, {r['last100_max']:.1f}] | "
            f"{peak} | {r['threshold']} | {n_reach}/5 | "
            f"{r['steps_to_threshold_per_seed']} | "
            f"{median_steps(r) if r['threshold'] is not None else 'n/a'} | "
            f"{ppo_steps(r)} | {bar} | {final_bar(k, r)} | "
            f"{r['wall_time_s']:.0f} | "
            f"{'n/a' if sp is None else format(sp, '.1f')} |")
    notes = os.path.join(HERE, "learning_notes.md")
    if os.path.exists(notes):
        lines += ["", open(notes).read().strip()]
    open(os.path.join(OUT, "learning.md"), "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="*", help=f"some of {list(CASES)} (default: all)")
    ap.add_argument("--seeds", default="0-4",
                    help="seed range 'a-b' or list 'a,b,c' (tuning used 100-104; only 0-4 "
                         "go to learning.md)")
    ap.add_argument("--budget", type=int, default=None,
                    help="env steps per seed instead of the case's budget (results go only to "
                         "--json)")
    ap.add_argument("--json", default=None, help="write the results of this run to this file")
    args = ap.parse_args()
    if "-" in args.seeds:
        lo, hi = (int(x) for x in args.seeds.split("-"))
        seeds = tuple(range(lo, hi + 1))
    else:
        seeds = tuple(int(x) for x in args.seeds.split(","))
    if args.budget is not None and not args.json:
        sys.exit("--budget needs --json (a shortened run never goes to learning.md)")
    done = {}
    for n in args.cases or [*PPO_CASES, *CASES]:
        if n not in CASES and n not in PPO_CASES:
            sys.exit(f"unknown case {n!r}; choose from {sorted([*CASES, *PPO_CASES])}")
        done[n] = run_case(n, seeds, args.budget)
        if args.json:
            json.dump({"cases": done, "machine": machine(), "provenance": provenance()},
                      open(args.json, "w"), indent=1)
        if args.budget is None:
            write({n: done[n]}, seeds)
