"""Robustness benchmark: trained spiking agents under sensor noise, sensor drift and dead sensors.

Each agent (e-prop actor-critic, R-STDP, BPTT-PPO actor-critic; the shipped configs
``experiments/cartpole_{eprop,rstdp,bptt}.yaml`` at a reduced step budget) is trained online on
clean CartPole-v1, several seeds vmapped. The trained policy is then **frozen** (no ``learn`` /
``update`` calls: only the episode-boundary flag ``reset_next`` that ``learn`` would record is set,
so membrane potentials and traces restart with every episode, as in training) and evaluated on
fresh environments under each condition, all conditions and seeds vmapped in one jitted scan:

=================  ==============================================================================
clean              no perturbation
noise sigma        i.i.d. Gaussian sensor noise ``obs + sigma N(0, I)``, sigma 0.05, 0.1, 0.2 (obs
                   units, the same on every dimension)
drift              a random-walk bias per env, ``b_{t+1} = b_t + 0.002 N(0, I)`` per env step,
                   accumulating over the whole evaluation (std 0.09 after 2,000 steps)
dead x_dot         the cart-velocity sensor (dimension 1) reads 0
dead theta_dot     the pole angular-velocity sensor (dimension 3) reads 0
=================  ==============================================================================

**Evaluation is sampled, not greedy**: the agents act exactly as they did while learning (the
actor-critics sample from their softmax readout, R-STDP's action populations keep their noise
current). None of the agents has a greedy mode, and a frozen stochastic policy is what a deployed
on-chip learner would run. The score of a condition is the mean return of the episodes completed
within the evaluation (an unfinished last episode per env is dropped, except in an env that
finished none: there its running return counts, a lower bound -- only possible when the horizon
is shorter than CartPole's 500-step limit, i.e. in quick mode).

Robustness index per agent and condition (:func:`neurorl.metrics.neuromorphic.robustness_index`):
``(R_cond - r_min) / (R_clean - r_min)`` with ``R`` the mean over seeds and ``r_min`` the mean
return of a uniformly random policy on clean CartPole measured in the same run (1 = unaffected,
0 = down to random). Undefined (``None``) for an agent whose clean return is not above random.

Usage: python benchmarks/robustness.py [--quick] [--agents eprop_ac rstdp] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AGENT_CONFIGS = {
    "eprop_ac": "cartpole_eprop.yaml",
    "rstdp": "cartpole_rstdp.yaml",
    "bptt_ac": "cartpole_bptt.yaml",
}
NOISE = (0.05, 0.1, 0.2)
DRIFT_STEP_STD = 0.002
DEAD = {"dead x_dot": 1, "dead theta_dot": 3}
# (steps per seed, seeds, eval steps per env)
FULL = {"steps": 100_000, "seeds": 3, "eval_steps": 2_000}
QUICK = {"steps": 8_192, "seeds": 2, "eval_steps": 200}


def conditions() -> list[dict[str, Any]]:
    """The evaluation conditions as (name, noise std, drift step std, dead-sensor mask)."""
    out = [{"name": "clean", "noise": 0.0, "drift": 0.0, "dead": None}]
    out += [{"name": f"noise {s}", "noise": s, "drift": 0.0, "dead": None} for s in NOISE]
    out.append({"name": "drift", "noise": 0.0, "drift": DRIFT_STEP_STD, "dead": None})
    out += [{"name": n, "noise": 0.0, "drift": 0.0, "dead": d} for n, d in DEAD.items()]
    return out


def _budget(steps: int, n_envs: int, update_every: int) -> int:
    """``steps`` rounded down to a multiple of one update window (n_envs x update_every)."""
    w = n_envs * update_every
    return max(w, steps // w * w)


def update_every(cfg: Any) -> int:
    """Env steps per env between the agent's batch updates (1 for online agents)."""
    from neurorl.agents import make_agent, spec_from_env
    from neurorl.envs import make

    env, params = make(cfg.env.id, **dict(cfg.env.params))
    spec = spec_from_env(env, params, cfg.training.n_envs, cfg.agent.substeps)
    agent = make_agent(cfg.agent.name, spec, **dict(cfg.agent.hyper))
    return agent.update_every if agent.update is not None else 1


def train_agent(agent: str, steps: int, seeds: int) -> tuple[Any, Any, dict[str, Any]]:
    """Train ``agent`` on clean CartPole-v1 from its shipped config: (train, state, info)."""
    import jax

    from neurorl.experiment import config as C
    from neurorl.experiment.runner import train_config
    from neurorl.experiment.train import make_train

    base = C.load_yaml(ROOT / "experiments" / AGENT_CONFIGS[agent])
    n_envs = base["training"]["n_envs"]
    U = update_every(C.from_dict(base))
    steps = _budget(steps, n_envs, U)
    cfg = C.from_dict(base, {"training.steps": steps, "training.n_seeds": seeds})
    train = make_train(train_config(cfg))
    chunk = _budget(min(steps, 25_000), n_envs, U)
    t0 = time.perf_counter()
    rs = train.init(jax.random.key(cfg.training.seed))
    returns: list[list[float]] = [[] for _ in range(seeds)]
    done_steps = 0
    while done_steps < steps:
        n = min(chunk, steps - done_steps)
        rs, m = train.run_chunk(rs, n)
        d, r = np.asarray(m["done"]), np.asarray(m["episode_return"])
        for s in range(seeds):
            returns[s] += r[:, s][d[:, s]].tolist()
        done_steps += n
    wall = time.perf_counter() - t0
    last = [float(np.mean(r[-100:])) if r else float("nan") for r in returns]
    info = {"steps": steps, "seeds": seeds, "train_wall_s": wall, "train_last100": last}
    return train, rs.agent_state, info


def make_evaluate(train: Any, n_iter: int):
    """``evaluate(agent_states[S], conditions[C], key) -> (mean return [C, S], episodes [C, S])``.

    One jitted scan of ``n_iter`` env steps (``n_envs`` envs each) of the frozen policy, vmapped
    over seeds and conditions. ``conditions`` is a :class:`~neurorl.envs.shifts.ShiftedParams`
    with a leading condition axis (base env params and shifts; see :func:`condition_params`):
    conditions share one pytree structure, so there is one compile for all of them.
    """
    import jax
    import jax.numpy as jnp

    from neurorl.envs import make
    from neurorl.envs import shifts as S

    cfg = train.config
    agent = train.agent
    B = cfg.n_envs
    env, _ = make(cfg.env_id, **dict(cfg.env_kwargs))
    senv = S.ShiftedEnv(env)

    def one(ast: Any, params: Any, key: jax.Array):
        k_reset, k_run = jax.random.split(key)
        obs, es = jax.vmap(senv.reset, in_axes=(0, None))(jax.random.split(k_reset, B), params)
        ast = ast.replace(reset_next=jnp.ones((B,), bool))  # fresh carries for the first episode

        def step(carry, _):
            ast, es, obs, ep_ret, k = carry
            k, k_act, k_env = jax.random.split(k, 3)
            action, ast = agent.act(ast, obs, k_act)
            obs, es, reward, term, trunc, _ = jax.vmap(senv.step, in_axes=(0, 0, 0, None))(
                jax.random.split(k_env, B), es, action, params
            )
            done = term | trunc
            ep_ret = ep_ret + reward.astype(jnp.float32)
            finished = jnp.where(done, ep_ret, 0.0)
            # frozen: no learn / update; only the episode boundary that learn would record
            ast = ast.replace(reset_next=done)
            return (ast, es, obs, jnp.where(done, 0.0, ep_ret), k), (finished, done)

        init = (ast, es, obs, jnp.zeros((B,), jnp.float32), k_run)
        (_, _, _, running, _), (fin, done) = jax.lax.scan(step, init, None, length=n_iter)
        # an env that finished no episode within the horizon counts its running return (a lower
        # bound; only possible when the horizon is shorter than the 500-step episode limit)
        none = jnp.sum(done, axis=0) == 0
        total = jnp.sum(fin) + jnp.sum(jnp.where(none, running, 0.0))
        n_ep = jnp.sum(done) + jnp.sum(none)
        return total / n_ep, jnp.sum(done)

    over_seeds = jax.vmap(one, in_axes=(0, None, 0))
    over_conditions = jax.vmap(over_seeds, in_axes=(None, 0, None))
    jitted = jax.jit(over_conditions)

    def evaluate(agent_states: Any, conditions: Any, key: jax.Array):
        if not hasattr(agent_states, "reset_next"):
            from neurorl.errors import ConfigError

            raise ConfigError("agent", agent.name, "an agent state with a reset_next flag")
        n_seeds = jax.tree.leaves(agent_states)[0].shape[0]
        return jitted(agent_states, conditions, jax.random.split(key, n_seeds))

    return evaluate


def condition_params(base_params: Sequence[Any], shifts: Sequence[Any]) -> Any:
    """Stack per-condition base env params and :class:`~neurorl.envs.shifts.Shifts` into one
    :class:`~neurorl.envs.shifts.ShiftedParams` with a leading condition axis."""
    from neurorl.envs import shifts as S

    return S.stack([S.ShiftedParams(p, s) for p, s in zip(base_params, shifts, strict=True)])


def stacked_conditions(env_id: str, obs_dim: int) -> Any:
    """All robustness conditions on the clean env's params (leading axis C)."""
    import jax.numpy as jnp

    from neurorl.envs import make
    from neurorl.envs import shifts as S

    _, base = make(env_id)
    items = []
    for c in conditions():
        mask = np.zeros(obs_dim, np.float32)
        if c["dead"] is not None:
            mask[c["dead"]] = 1.0
        obs = (
            S.GaussianNoise(S.constant(c["noise"])),
            S.SensorDrift(S.constant(c["drift"])),
            S.DeadSensors(jnp.asarray(mask), S.constant(1.0 if c["dead"] is not None else 0.0)),
        )
        items.append(S.Shifts(obs=obs))
    return condition_params([base] * len(items), items)


def random_policy_return(
    env_id: str, n_envs: int, n_iter: int, seeds: int = 4, **env_kwargs: Any
) -> float:
    """Mean episode return of uniformly random actions (the robustness index's floor)."""
    import jax
    import jax.numpy as jnp

    from neurorl.envs import make

    env, params = make(env_id, **env_kwargs)
    n_act = env.action_space(params).n

    def one(key):
        k0, k1 = jax.random.split(key)
        obs, es = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k0, n_envs), params)

        def step(carry, _):
            es, ep, k = carry
            k, ka, ke = jax.random.split(k, 3)
            a = jax.random.randint(ka, (n_envs,), 0, n_act)
            _, es, r, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(ke, n_envs), es, a, params
            )
            done = term | trunc
            ep = ep + r
            return (es, jnp.where(done, 0.0, ep), k), (jnp.where(done, ep, 0.0), done)

        _, (fin, done) = jax.lax.scan(step, (es, jnp.zeros(n_envs), k1), None, length=n_iter)
        return jnp.sum(fin), jnp.sum(done)

    fin, n = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(12345), seeds))
    return float(np.sum(fin) / max(int(np.sum(n)), 1))


def main(
    quick: bool = False, out: str | Path | None = None, agents: list[str] | None = None
) -> dict:
    """Train, evaluate frozen under every condition, write ``robustness.{json,md}`` to ``out``."""
    import jax

    from benchmarks.common import machine, provenance, write_results
    from neurorl.errors import ConfigError, lookup
    from neurorl.metrics.neuromorphic import robustness_index

    prov = provenance()  # the code as loaded, before the (long) run

    budget = QUICK if quick else FULL
    names_ = {k: k for k in AGENT_CONFIGS}
    agents = [lookup(names_, a, "agent", field="agents") for a in agents or AGENT_CONFIGS]
    results_dir = Path(out) if out else ROOT / "benchmarks" / "results"
    conds = conditions()
    names = [c["name"] for c in conds]
    r_min = None
    rows = []
    t_all = time.perf_counter()
    for agent in agents:
        train, states, info = train_agent(agent, budget["steps"], budget["seeds"])
        if r_min is None:
            r_min = random_policy_return(
                train.config.env_id, train.config.n_envs, budget["eval_steps"]
            )
        evaluate = make_evaluate(train, budget["eval_steps"])
        t0 = time.perf_counter()
        mean_ret, n_ep = jax.device_get(
            evaluate(
                states,
                stacked_conditions(train.config.env_id, train.agent.spec.obs_dim),
                jax.random.key(2024),
            )
        )
        eval_wall = time.perf_counter() - t0
        per_cond = np.asarray(mean_ret, np.float64)  # [C, S]
        means = per_cond.mean(axis=1)
        clean = float(means[0])
        try:
            index = robustness_index(clean, means, reference_min=r_min).tolist()
        except ConfigError as err:  # clean return not above random: index undefined
            index = [None] * len(conds)
            info["index_note"] = str(err)
        row = {
            "agent": agent,
            **info,
            "eval_steps_per_env": budget["eval_steps"],
            "eval_wall_s": eval_wall,
            "conditions": names,
            "return_mean": means.tolist(),
            "return_per_seed": per_cond.tolist(),
            "episodes_per_seed": np.asarray(n_ep).tolist(),
            "robustness_index": index,
        }
        rows.append(row)
        print(
            f"{agent}: clean {clean:.1f}, "
            + ", ".join(
                f"{n} {m:.1f} ({'-' if i is None else f'{i:.2f}'})"
                for n, m, i in zip(names[1:], means[1:], index[1:], strict=True)
            )
            + f" (train {info['train_wall_s']:.0f} s, eval {eval_wall:.0f} s)",
            flush=True,
        )
    result = {
        "benchmark": "robustness",
        "quick": quick,
        "env": "CartPole-v1",
        "evaluation": "frozen policy, sampled actions (no greedy mode), mean return of completed "
        "episodes",
        "conditions": conds,
        "random_policy_return": r_min,
        "budget": budget,
        "wall_s": time.perf_counter() - t_all,
        "machine": machine(),
        "provenance": prov,
        "rows": rows,
    }
    write_results("robustness", result, rows, out=results_dir, markdown=markdown(result))
    return result


def markdown(result: dict) -> str:
    """The report section: return (robustness index) per agent and condition."""
    b = result["budget"]
    names = result["rows"][0]["conditions"] if result["rows"] else []

    def cell(m, i):
        return f"{m:.1f}" + ("" if i is None else f" ({i:.2f})")

    lines = [
        "# Robustness: trained agents under sensor noise, drift and dead sensors (CartPole-v1)",
        "",
        f"Each agent trained online on clean CartPole-v1 for {b['steps']:,} env steps per seed "
        f"(shipped configs, BPTT rounded to its update window), {b['seeds']} seeds; then frozen "
        f"(no learning) and evaluated for {b['eval_steps']:,} steps x 8 envs per seed and "
        "condition, actions sampled as in training (no agent has a greedy mode). Cells: mean "
        "return of completed episodes, mean over seeds (robustness index "
        "(R - r_min) / (R_clean - r_min), r_min = random policy "
        f"{result['random_policy_return']:.1f}). Noise: obs + sigma N(0, I); drift: random-walk "
        f"bias, {DRIFT_STEP_STD} per step per dimension; dead: that sensor reads 0.",
        "",
        "| agent | train last-100 (per seed) | " + " | ".join(names) + " |",
        "|---|---|" + "---:|" * len(names),
    ]
    for r in result["rows"]:
        tr = ", ".join(f"{x:.0f}" for x in r["train_last100"])
        cells = [cell(m, i) for m, i in zip(r["return_mean"], r["robustness_index"], strict=True)]
        lines.append(f"| {r['agent']} | {tr} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Wall time: "
        + ", ".join(
            f"{r['agent']} train {r['train_wall_s']:.0f} s + eval {r['eval_wall_s']:.0f} s"
            for r in result["rows"]
        )
        + f"; total {result['wall_s']:.0f} s.",
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
    ap.add_argument("--agents", nargs="+", default=None, help=f"a subset of {list(AGENT_CONFIGS)}")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    main(quick=a.quick, out=a.out, agents=a.agents)
