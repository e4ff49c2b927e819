"""Continual benchmark: a lifelong CartPole task sequence for each learning rule.

The default sequence is ``experiments/lifelong_cartpole.yaml``: pole half-length 0.5 -> 1.0 ->
0.25 -> 0.5 (the last task revisits the first). ``--config lifelong_cartpole_shifts.yaml`` runs
the sequence whose every switch changes the right action (normal -> left/right swapped -> heavy
physics -> sensors permuted -> normal; results ``continual_shifts.*``): any YAML whose
observation / action / reward shift windows sit on its task boundaries works, each task becoming
one frozen condition of the training env (:func:`task_conditions`).

Each rule (R-STDP, e-prop actor-critic, BPTT-PPO
actor-critic, and ``eprop_ppo``: BPTT-PPO with e-prop's gradient, ``bptt_ac`` with
``gradient: eprop``, which separates the gradient's locality from the online update; float
weights; e-prop with the config's ``agent.hyper``, the others with their defaults) and the
non-spiking PPO baseline (``benchmarks.common.make_ppo``, MLP 64x64) learn
online through the whole sequence, seeds vmapped. After every ``steps_per_task /
evals_per_task`` env steps the current policy is evaluated **frozen** (no learning, sampled
actions, see ``benchmarks/robustness.py``) on every task, which gives the Continual World
performance matrix ``perf[t, j]``. Returns are normalised per task as
``(R - r_rand_j) / (500 - r_rand_j)``, ``r_rand_j`` a uniformly random policy's return on task
``j`` measured in the same run.

Reported per rule (:mod:`neurorl.metrics.continual`; medians over seeds, per seed in the JSON):

* average performance at the end, forgetting (Continual World, mean over tasks; end points are
  the mean of the last ``k`` evaluations of a window), backward transfer (GEM's BWT on the
  smoothed matrix; negative = forgetting);
* forward transfer: Continual World's ``FT_i = (AUC_i - AUC_i^b) / (1 - AUC_i^b)`` against
  from-scratch runs on each task (the sequence's own first window is the from-scratch run on
  length 0.5; lengths 1.0 and 0.25 get their own runs with the same seeds and budget), and GEM's
  FWT against the untrained policy;
* adaptation after each task switch from the online training returns, the same for every row
  (``adaptation_time(...).experience_steps``): env steps from the switch to the start of the
  first full window of 10 post-switch episodes whose mean is back to 90% of the pre-switch level
  above the new task's random return; chip time = those env steps x substeps x 1 ms; and the
  same env steps to a *common* absolute return for every rule (:data:`BARS`; the table picks,
  per switch, the largest within every rule's own bar), since the own-level bar asks more of a
  rule that had learned the previous task better;
* whether each local rule's adaptation to the common bar is faster or slower than each
  baseline's (:data:`BASELINES`) beyond seed noise: exact one-sided Mann-Whitney tests over the
  seeds (:func:`neurorl.experiment.reporting.rank_test`);
* energy per env step on Loihi 2's per-event constants (the network itself unconstrained),
  spikes per env step;
* a plot of the training return (median over seeds) vs env step with the switches marked.

Budget: the config's 4 x 100k env steps are more than the one-hour suite affords for four rules,
so the default is 4 x 50k steps per seed (``--steps-per-task 100000`` for the config's budget),
seeds 0-4, 5 evaluations per task of 500 steps x 8 envs. Tuning runs: ``--seed0 100 --no-eval``
(adaptation only) with ``--hyper RULE.KEY=VALUE``.

``--context RULE.KEY=VALUE`` (e.g. ``eprop_ppo.n_contexts=4``) runs the rule with contextual
inference (``agent.context``, :mod:`neurorl.agents.context`) as a row ``<rule>+context``: its
context is inferred in ``act`` from the transitions, so the frozen evaluations infer it too
(within an evaluation episode, from the last active context; nothing is fitted or recruited
there).

Usage: python benchmarks/continual.py [--quick] [--rules eprop_ac ppo] [--steps-per-task N]
    [--seed0 S] [--seeds N] [--no-eval] [--hyper eprop_ac.lr=3e-4] [--name NAME] [--out DIR]
    [--context eprop_ppo.n_contexts=4]
    [--config lifelong_cartpole_shifts.yaml] [--no-scratch] [--evals-per-task E]
    [--markdown RESULTS.json] (rewrite the .md/.png of a results JSON) [--combine A.json ...]

The committed shift-sequence table: ``--config lifelong_cartpole_shifts.yaml --steps-per-task
20000 --no-scratch --name continual_shifts``, one process per rule, then ``--combine``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RULES = ("rstdp", "eprop_ac", "eprop_ppo", "bptt_ac", "ppo")
# rows that are an agent with settings under another name: ``eprop_ppo`` is the BPTT baseline's
# PPO on rollouts with e-prop's gradient (``bptt_ac`` with ``gradient: eprop``): local in space
# (each update a sum of learning signal x eligibility trace), but replayed for 10 epochs, not
# online -- it separates what the gradient's locality costs from what the online update costs.
# Its one setting beyond BPTT's defaults: PPO's usual entropy bonus c_ent 0.01 (Schulman et al.
# 2017), chosen on tuning seeds 100-109 (benchmarks/learning_notes.md, sixth pass), where it
# made e-prop's PPO adapt faster after every switch and BPTT's after none but the swap.
AGENT = {"eprop_ppo": "bptt_ac"}
# per-rule settings of this benchmark (the config's agent, eprop_ac, takes its own from the
# config's agent.hyper). PPO: 125 (not 128) steps per update so that its update window
# (16 envs x 125 = 2,000 env steps) divides the evaluation interval like the spiking rules'.
HYPER: dict[str, dict[str, Any]] = {
    "ppo": {"n_steps": 125},
    "eprop_ppo": {"gradient": "eprop", "c_ent": 0.01},
}
CONFIG = "lifelong_cartpole.yaml"
CHIP = "loihi2"  # energy model for the energy per step and the adaptation energy
FRACTION = 0.9
WINDOW = 10
# absolute returns for the common-bar adaptation (every rule to the same return after a switch:
# a rule's own 90% bar is higher the better it had learned the previous task)
BARS = tuple(range(50, 500, 50))
FULL = {"steps_per_task": 50_000, "seeds": 5, "evals_per_task": 5, "eval_steps": 500, "k": 2}
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


def _hyper(rule: str, base: dict, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The rule's hyperparameters: the config's ``agent.hyper`` for the config's own agent (the
    continual settings live there), :data:`HYPER` for the others, then ``overrides``."""
    h = dict(base["agent"].get("hyper") or {}) if rule == base["agent"]["name"] else {}
    return {**h, **HYPER.get(rule, {}), **(overrides or {})}


def _config_path(budget: dict[str, Any]) -> Path:
    """The sequence's YAML: ``budget["config"]`` (a file name under ``experiments/`` or a path),
    default :data:`CONFIG`."""
    from neurorl.errors import ConfigError

    name = budget.get("config") or CONFIG
    p = Path(name)
    if not p.is_absolute() and not p.exists():
        p = ROOT / "experiments" / name
    if not p.exists():
        known = sorted(q.name for q in (ROOT / "experiments").glob("lifelong*.yaml"))
        raise ConfigError("config", str(name), f"a lifelong YAML, e.g. one of {known}")
    return p


def _sequence(budget: dict[str, Any]) -> tuple[dict, int, int, list[str]]:
    """The config's task sequence: (base config dict, number of tasks, the config's own steps
    per task, task names)."""
    from neurorl.errors import ConfigError
    from neurorl.experiment import config as C

    base = C.load_yaml(_config_path(budget))
    ts = (base.get("shifts") or {}).get("tasks")
    if not ts or not isinstance(ts.get("steps_per_task"), int):
        raise ConfigError("shifts.tasks.steps_per_task", None if not ts else
                          ts.get("steps_per_task"), "one int (the same steps for every task)")
    n = len(ts["tasks"])
    names = list(ts.get("names") or [f"task {i}" for i in range(n)])
    return base, n, int(ts["steps_per_task"]), names


def _rescaled_shifts(shifts: dict[str, Any], own_per_task: int, per_task: int) -> dict:
    """The config's ``shifts`` with ``steps_per_task = per_task``: observation / action / reward
    shifts switch at task boundaries (``start`` / ``end`` multiples of the config's own steps
    per task), so their windows move with the boundaries.

    Raises:
        ConfigError: a window edge off a task boundary, or a parameter shift besides the task
            sequence (its schedule would not follow the tasks).
    """
    from neurorl.errors import ConfigError

    out = {**shifts, "tasks": {**shifts["tasks"], "steps_per_task": int(per_task)}}
    if shifts.get("params"):
        raise ConfigError("shifts.params", shifts["params"], "[] in a continual sequence (put "
                          "parameter changes into shifts.tasks.tasks)")
    for kind in ("obs", "action", "reward"):
        items = []
        for i, o in enumerate(shifts.get(kind) or []):
            o = dict(o)
            for edge in ("start", "end"):
                v = o.get(edge)
                if v is None:
                    continue
                if v % own_per_task:
                    raise ConfigError(f"shifts.{kind}[{i}].{edge}", v, "a task boundary: a "
                                      f"multiple of shifts.tasks.steps_per_task = {own_per_task}")
                o[edge] = v // own_per_task * int(per_task)
            items.append(o)
        out[kind] = items
    return out


def _is_schedule(x: Any) -> bool:
    from neurorl.envs import shifts as S

    return isinstance(x, (S.Constant, S.Abrupt, S.Gradual, S.Cyclic, S.Random))


def _freeze(x: Any, t: int) -> Any:
    """``x`` (a :class:`~neurorl.envs.shifts.Shifts` or any shift in it) with every schedule held
    at its value at per-env step ``t`` and a task sequence held at its task of ``t``; the pytree
    structure and shapes are kept, so frozen conditions stack and run in the compiled training
    step unchanged.

    Raises:
        ConfigError: a random schedule (not one fixed task).
    """
    import jax
    import jax.numpy as jnp

    from neurorl.envs import shifts as S
    from neurorl.errors import ConfigError

    if isinstance(x, tuple):
        return tuple(_freeze(v, t) for v in x)
    if isinstance(x, S.TaskSequence):
        k = int(x.task_id(t))
        return x.replace(values={n: jnp.full_like(v, v[k]) for n, v in x.values.items()})
    if _is_schedule(x):
        v = x(jnp.asarray(t, jnp.int32), jax.random.PRNGKey(0))
        if isinstance(x, S.Constant):
            return x.replace(value=jnp.full_like(x.value, v))
        if isinstance(x, S.Abrupt):
            return x.replace(values=jnp.full_like(x.values, v))
        if isinstance(x, S.Gradual):
            return x.replace(start=jnp.full_like(x.start, v), end=jnp.full_like(x.end, v))
        if isinstance(x, S.Cyclic):
            return x.replace(low=jnp.full_like(x.low, v), high=jnp.full_like(x.high, v))
        raise ConfigError("shifts", type(x).__name__, "fixed tasks (no random schedule) in a "
                          "continual sequence")
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        new = {f.name: _freeze(getattr(x, f.name), t) for f in dataclasses.fields(x)
               if _is_schedule(getattr(x, f.name)) or isinstance(getattr(x, f.name), tuple)
               or dataclasses.is_dataclass(getattr(x, f.name))}
        return x.replace(**new) if new else x
    return x


def _same(a: Any, b: Any) -> bool:
    import jax

    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(u), np.asarray(v))
                                      for u, v in zip(la, lb, strict=True))


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def task_conditions(cfg: Any, per_task: int) -> dict[str, Any]:
    """Each task of the sequence as one fixed condition (base env params + frozen shifts).

    The training env is the config's :class:`~neurorl.envs.shifts.ShiftedEnv` (task sequence,
    observation / action / reward windows); task ``k``'s condition is its shifts frozen at the
    task's first step, checked to be the same at its last step (a shift must switch at task
    boundaries). Identical tasks (e.g. the first one coming back) share one condition.

    Args:
        cfg: the validated experiment config (its ``shifts`` already at ``per_task``).
        per_task: total env steps per task.

    Returns:
        ``{"conds": [D] ShiftedParams (frozen, unstacked), "col": task -> distinct index,
        "env_kwargs": [D] env parameter overrides of each distinct task (for the random-policy
        return)}``.

    Raises:
        ConfigError: a shift that changes inside a task.
    """
    import jax

    from neurorl.envs import make
    from neurorl.envs import shifts as S
    from neurorl.errors import ConfigError
    from neurorl.experiment.shiftspec import build_shifted_env

    env, base = make(cfg.env.id, **dict(cfg.env.params))
    B = cfg.training.n_envs
    obs_dim = int(np.prod(env.observation_space(base).shape))
    shifts = cfg.shifts.model_dump(mode="python")
    senv = build_shifted_env(env, shifts, B, obs_dim)
    n_tasks = len(shifts["tasks"]["tasks"])
    per_env = per_task // B
    conds: list[Any] = []
    col: list[int] = []
    kwargs: list[dict] = []
    default = make(cfg.env.id)[1]
    for k in range(n_tasks):
        first = _freeze(senv.shifts, k * per_env)
        last = _freeze(senv.shifts, (k + 1) * per_env - 1)
        if not _same(first, last):
            raise ConfigError("shifts", f"task {k}", "shifts that change only at task "
                              "boundaries (multiples of shifts.tasks.steps_per_task)")
        cond = S.ShiftedParams(base, first)
        idx = next((i for i, c in enumerate(conds) if _same(c, cond)), None)
        if idx is None:
            conds.append(cond)
            idx = len(conds) - 1
            p = first.param(jax.numpy.zeros((), "int32"), jax.random.PRNGKey(0), base)
            kwargs.append({f: _num(getattr(p, f)) for f in type(p).__dataclass_fields__
                           if _num(getattr(default, f)) is not None
                           and _num(getattr(p, f)) != _num(getattr(default, f))})
        col.append(idx)
    return {"conds": conds, "col": col, "env_kwargs": kwargs}


def run_rule(
    rule: str, budget: dict[str, Any], hyper: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Train ``rule`` through the sequence with periodic frozen evaluations; metrics as a dict.

    ``budget["evaluate"] = False`` (tuning) skips the frozen evaluations and the from-scratch
    runs: only the online adaptation metrics are computed.
    """
    import jax
    import jax.numpy as jnp

    from benchmarks.robustness import make_evaluate, random_policy_return, update_every
    from neurorl.envs import shifts as S
    from neurorl.experiment import config as C
    from neurorl.experiment.runner import (
        _neuron_count,
        chip_step_time,
        energy_per_step,
        train_config,
    )
    from neurorl.experiment.train import make_train

    t_rule = time.perf_counter()
    base, n_tasks, own_per_task, _ = _sequence(budget)
    n_envs = base["training"]["n_envs"]
    E = budget["evals_per_task"]
    do_eval = budget.get("evaluate", True)
    do_scratch = do_eval and budget.get("scratch", True)
    h = _hyper(rule, base, hyper)
    ctx = (budget.get("context") or {}).get(rule)
    agent = AGENT.get(rule, rule)
    U = update_every(C.from_dict(base, {"agent.name": agent, "agent.hyper": h}))
    chunk = _chunk(budget["steps_per_task"], E, n_envs * U)
    per_task = chunk * E
    cfg = C.from_dict(
        {**base, "shifts": _rescaled_shifts(base["shifts"], own_per_task, per_task)},
        {
            "agent.name": agent,
            "agent.hyper": h,
            "training.steps": per_task * n_tasks,
            "training.n_seeds": budget["seeds"],
            "training.seed": budget.get("seed0", 0),
            **({"agent.context": ctx} if ctx else {}),
        },
    )
    train = make_train(train_config(cfg))
    evaluate = make_evaluate(train, budget["eval_steps"])
    S_ = budget["seeds"]

    tc = task_conditions(cfg, per_task)
    col = tc["col"]
    conds = S.stack(tc["conds"])
    r_distinct = [
        random_policy_return(cfg.env.id, n_envs, budget["eval_steps"], **kw)
        for kw in tc["env_kwargs"]
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
    init_perf = (
        norm(evaluate(rs.agent_state, conds, jax.random.fold_in(ev_key, 0))[0]) if do_eval else None
    )
    perf = []  # [T_eval] of [S, n_tasks]
    eps: list[list[tuple[int, float, int, float | None]]] = [[] for _ in range(S_)]
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
        if do_eval:
            te = time.perf_counter()
            p = norm(evaluate(rs.agent_state, conds, jax.random.fold_in(ev_key, i + 1))[0])
            perf.append(p)
            eval_wall += time.perf_counter() - te
        print(f"{rule} {done_steps:7d} t={time.perf_counter() - t0:5.0f}s", flush=True)
    seq_wall = time.perf_counter() - t0
    perf_arr = np.stack(perf, axis=1) if do_eval else None  # [S, T_eval, n_tasks]

    # from-scratch baselines: the same compiled run with every task set to task j
    t1 = time.perf_counter()
    base_curves = None
    if do_scratch:
        base_curves = np.empty((S_, E, n_tasks))
        scratch: dict[int, np.ndarray] = {col[0]: perf_arr[:, :E, 0]}
        for j in range(n_tasks):
            d = col[j]
            if d not in scratch:
                rs_b = train.init(keys)
                # every member's env held at task d (same pytree structure: no recompile)
                frozen = jax.tree.map(lambda x: jnp.broadcast_to(x, (S_,) + jnp.shape(x)),
                                      tc["conds"][d].shifts)
                rs_b = rs_b.replace(env_params=rs_b.env_params.replace(shifts=frozen))
                curve = []
                for i in range(E):
                    rs_b, _ = train.run_chunk(rs_b, chunk)
                    p = norm(
                        evaluate(rs_b.agent_state, conds, jax.random.fold_in(ev_key, 1000 + i))[0]
                    )
                    curve.append(p[:, j])
                scratch[d] = np.stack(curve, axis=1)
            base_curves[:, :, j] = scratch[d]
    base_wall = time.perf_counter() - t1

    if budget.get("episodes_dir"):
        save_episodes(Path(budget["episodes_dir"]) / f"{rule}.npz", rule, eps)
    row = _metrics(
        rule, budget, perf_arr, base_curves, init_perf, eps, per_task, n_envs, r_rand,
        chip_step_time(CHIP, cfg.agent.substeps),
    )
    if ctx:  # a row of its own: the rule with contextual inference
        row["rule"] = f"{rule}+context"
        row["context"] = dict(ctx)
        row["contexts_used_per_seed"] = np.asarray(rs.agent_state.n_used).tolist()
        row["context_switches_per_seed"] = np.asarray(rs.agent_state.switches).tolist()
    return _with_run_info(row, h, chunk, float(np.mean(energies)), float(np.mean(spikes)),
                          t_rule, seq_wall, eval_wall, base_wall)


def _with_run_info(row: dict, hyper: dict, chunk: int, energy: float | None,
                   spikes: float | None, t_rule: float, seq_wall: float, eval_wall: float,
                   base_wall: float) -> dict:
    """``row`` with the settings, energy, spikes and wall times every rule's row carries."""
    row.update(
        {
            "hyper": hyper,
            "chunk_steps": chunk,
            "energy_per_step_j": energy,
            "spikes_per_step": spikes,
            "wall_s": {
                "total": time.perf_counter() - t_rule,
                "sequence_incl_eval": seq_wall,
                "eval": eval_wall,
                "baselines_incl_eval": base_wall,
            },
        }
    )
    return row


def run_ppo(budget: dict[str, Any], hyper: dict[str, Any] | None = None) -> dict[str, Any]:
    """The non-spiking PPO baseline (``benchmarks.common.make_ppo``) through the same sequence:
    the same tasks, budget, evaluations, from-scratch runs and metrics as :func:`run_rule`."""
    import jax
    import jax.numpy as jnp

    from benchmarks.common import PPO_DEFAULTS, make_ppo, make_ppo_evaluate
    from benchmarks.robustness import random_policy_return
    from neurorl.envs import make
    from neurorl.envs import shifts as S
    from neurorl.experiment import config as C

    t_rule = time.perf_counter()
    base, n_tasks, own_per_task, _ = _sequence(budget)
    env_id = base["env"]["id"]
    E = budget["evals_per_task"]
    do_eval = budget.get("evaluate", True)
    do_scratch = do_eval and budget.get("scratch", True)
    h = {**HYPER.get("ppo", {}), **(hyper or {})}
    n_envs = int({**PPO_DEFAULTS, **h}["n_envs"])
    per_update = n_envs * int({**PPO_DEFAULTS, **h}["n_steps"])
    chunk = _chunk(budget["steps_per_task"], E, per_update)
    per_task = chunk * E
    # the same ShiftedEnv and frozen task conditions as the spiking rules' (the config's shifts)
    cfg = C.from_dict(
        {**base, "shifts": _rescaled_shifts(base["shifts"], own_per_task, per_task)},
        {"training.steps": per_task * n_tasks},
    )
    tc = task_conditions(cfg, per_task)
    col = tc["col"]
    senv = S.ShiftedEnv(make(env_id, **dict(cfg.env.params))[0])
    init, update, per_update = make_ppo(env_id, env=senv, params=tc["conds"][col[0]], **h)
    S_ = budget["seeds"]
    eval_envs = base["training"]["n_envs"]
    evaluate = make_ppo_evaluate(env_id, budget["eval_steps"], eval_envs, env=senv)
    conds = S.stack(tc["conds"])
    r_distinct = [
        random_policy_return(env_id, eval_envs, budget["eval_steps"], **kw)
        for kw in tc["env_kwargs"]
    ]
    r_rand = np.array([r_distinct[d] for d in col])

    def norm(mean_ret: Any) -> np.ndarray:
        m = np.asarray(mean_ret, np.float64)[col].T
        return (m - r_rand) / (500.0 - r_rand)

    def with_task(state: dict[str, Any], d: int) -> dict[str, Any]:
        p = jax.tree.map(lambda x: jnp.broadcast_to(x, (S_,) + jnp.shape(x)), tc["conds"][d])
        return {**state, "params": p}

    run = jax.jit(
        jax.vmap(lambda st: jax.lax.scan(lambda c, _: update(c), st, None,
                                         length=chunk // per_update))
    )
    seed0 = budget.get("seed0", 0)
    keys = jax.vmap(jax.random.key)(jnp.arange(S_) + seed0)
    ev_key = jax.random.key(777)
    t0 = time.perf_counter()
    st = jax.jit(jax.vmap(init))(keys)
    init_perf = norm(evaluate(st, conds, jax.random.fold_in(ev_key, 0))) if do_eval else None
    perf = []
    eps: list[list[tuple[int, float, int, float | None]]] = [[] for _ in range(S_)]
    done_steps, eval_wall = 0, 0.0
    for i in range(n_tasks * E):
        if i % E == 0:
            st = with_task(st, col[i // E])
        st, m = run(st)
        m = jax.device_get(m)  # [S, updates, n_steps, n_envs]
        for s in range(S_):
            d, r, ln = (np.asarray(m[k][s]).reshape(-1, n_envs)
                        for k in ("done", "episode_return", "episode_length"))
            for t, b in zip(*np.nonzero(d), strict=True):
                end = done_steps + (int(t) + 1) * n_envs
                eps[s].append((end, float(r[t, b]), int(ln[t, b]), None))
        done_steps += chunk
        if do_eval:
            te = time.perf_counter()
            perf.append(norm(evaluate(st, conds, jax.random.fold_in(ev_key, i + 1))))
            eval_wall += time.perf_counter() - te
        print(f"ppo {done_steps:7d} t={time.perf_counter() - t0:5.0f}s", flush=True)
    seq_wall = time.perf_counter() - t0
    perf_arr = np.stack(perf, axis=1) if do_eval else None

    t1 = time.perf_counter()
    base_curves = None
    if do_scratch:
        base_curves = np.empty((S_, E, n_tasks))
        scratch: dict[int, np.ndarray] = {col[0]: perf_arr[:, :E, 0]}
        for j in range(n_tasks):
            d = col[j]
            if d not in scratch:
                sb = with_task(jax.jit(jax.vmap(init))(keys), d)
                curve = []
                for i in range(E):
                    sb, _ = run(sb)
                    p = norm(evaluate(sb, conds, jax.random.fold_in(ev_key, 1000 + i)))
                    curve.append(p[:, j])
                scratch[d] = np.stack(curve, axis=1)
            base_curves[:, :, j] = scratch[d]
    base_wall = time.perf_counter() - t1
    if budget.get("episodes_dir"):
        save_episodes(Path(budget["episodes_dir"]) / "ppo.npz", "ppo", eps)
    row = _metrics("ppo", budget, perf_arr, base_curves, init_perf, eps, per_task, n_envs,
                   r_rand, None)
    # no energy or spikes: not a spiking network
    return _with_run_info(row, {**PPO_DEFAULTS, **h}, chunk, None, None, t_rule, seq_wall,
                          eval_wall, base_wall)


def _metrics(
    rule: str,
    budget: dict[str, Any],
    perf_arr: np.ndarray | None,
    base_curves: np.ndarray | None,
    init_perf: np.ndarray | None,
    eps: list[list[tuple[int, float, int, float | None]]],
    per_task: int,
    n_envs: int,
    r_rand: np.ndarray,
    chip_s: float | None,
) -> dict[str, Any]:
    """Continual World metrics and adaptation after each switch, per seed and over seeds.

    Adaptation is :func:`neurorl.metrics.continual.adaptation_time`'s ``experience_steps`` for
    every rule alike: env steps (over all parallel envs) from the switch to the start of the
    first full window of ``WINDOW`` post-switch episodes whose mean return is back to
    ``FRACTION`` of the pre-switch level above the new task's random-policy return.
    """
    from neurorl.errors import ConfigError
    from neurorl.metrics import continual as cm

    E = budget["evals_per_task"]
    n_tasks = len(r_rand)
    bounds = [per_task * (i + 1) for i in range(n_tasks - 1)]
    k = budget["k"]
    per_seed = []
    for s in range(len(eps)):
        summ = {}
        if perf_arr is not None:
            summ = cm.continual_summary(
                perf_arr[s], E, k=k,
                baseline_perf=None if base_curves is None else base_curves[s],
                random_init=None if init_perf is None else init_perf[s],
            )
            summ["forgetting_per_task"] = cm.forgetting(perf_arr[s], E, k).tolist()
        ends = np.array([e[0] for e in eps[s]])
        rets = np.array([e[1] for e in eps[s]])
        lens = np.array([e[2] for e in eps[s]])
        en = None if chip_s is None else np.array([e[3] for e in eps[s]])
        starts = ends - lens * n_envs
        # the clock starts at the first episode begun after the switch: the episodes still
        # running at the switch (up to 500 steps x n_envs) are no part of the adaptation
        adapt = []
        # as in the runner's summary: post-switch episodes started at or after the switch
        segments = cm.shift_segments(ends, lens, n_envs, bounds)
        for i, (b, (pre, post)) in enumerate(zip(bounds, segments, strict=True)):
            sel = np.concatenate([pre, post])
            shift_ep = int(pre.size)
            try:
                a = cm.adaptation_time(
                    rets[sel],
                    shift_ep,
                    window=min(WINDOW, shift_ep),
                    theta=FRACTION,
                    reference_min=float(r_rand[i + 1]),
                    lengths=lens[sel],
                    chip_step_s=chip_s,
                    step_energy=None if en is None else en[sel],
                    start_steps=starts[sel],
                    shift_step=float(starts[post].min()) if post.size else b,
                )
                steps = a.experience_steps
                to_bar = {}
                for bar in BARS:  # the same window and clock, an absolute return as the bar
                    ab = cm.adaptation_time(
                        rets[sel], shift_ep, window=min(WINDOW, shift_ep), target=float(bar),
                        start_steps=starts[sel],
                        shift_step=float(starts[post].min()) if post.size else b,
                    )
                    to_bar[str(bar)] = _fin(ab.experience_steps)
                adapt.append(
                    {
                        "switch_step": b,
                        "steps": _fin(steps),
                        "chip_time_s": None if chip_s is None else _fin(steps * chip_s),
                        "energy_j": _fin(a.energy_j),
                        "censored": not math.isfinite(steps),
                        "pre_level": a.pre_level,
                        "threshold": a.threshold,
                        "tau_steps_end_of_recovery": _fin(a.tau_steps),
                        "steps_to_bar": to_bar,
                    }
                )
            except ConfigError as err:  # too few episodes around a switch (quick mode)
                adapt.append({"switch_step": b, "error": str(err)})
        per_seed.append(
            {
                **summ,
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
                # censored seeds count as infinitely slow (a median over all seeds)
                "steps_median": _median_censored(a, "steps"),
                "steps_per_seed": [x.get("steps") for x in a],
                "pre_level_median": _median([x.get("pre_level") for x in a]),
                "chip_time_s_median": _median_censored(a, "chip_time_s"),
                "energy_j_median": _median([x.get("energy_j") for x in a]),
                # env steps to an absolute return (BARS), median over seeds, a seed that never
                # reaches it counting as infinite
                "steps_to_bar_median": {
                    str(bar): _median_censored(
                        [{"steps": (x.get("steps_to_bar") or {}).get(str(bar)),
                          "censored": (x.get("steps_to_bar") or {}).get(str(bar)) is None
                          and "steps_to_bar" in x} for x in a], "steps")
                    for bar in BARS
                },
                "reached_bar": {
                    str(bar): sum((x.get("steps_to_bar") or {}).get(str(bar)) is not None
                                  for x in a) for bar in BARS
                },
                # the frozen policy of the last evaluation before the switch, on the new task
                # (normalised): low = the switch is a real change for this rule
                "frozen_on_new_per_seed": None if perf_arr is None else
                perf_arr[:, (i + 1) * E - 1, i + 1].tolist(),
                "frozen_on_new_median": None if perf_arr is None else
                float(np.median(perf_arr[:, (i + 1) * E - 1, i + 1])),
            }
        )
    return {
        "rule": rule,
        "steps_per_task": per_task,
        "seeds": len(eps),
        **{key: _median([p.get(key) for p in per_seed]) for key in keys_},
        "switches": switches,
        "random_policy_return": r_rand.tolist(),
        "perf_mean": None if perf_arr is None else perf_arr.mean(axis=0).tolist(),
        "perf_median": None if perf_arr is None else np.median(perf_arr, axis=0).tolist(),
        "per_seed": per_seed,
        "curve": _curve(eps, per_task * n_tasks),
    }


def _curve(eps: list[list[tuple]], total: int, bins: int = 100) -> dict[str, list]:
    """Training return vs env step for the plot: the mean return of the episodes that ended in
    each of ``bins`` equal step bins, per seed, and its median over seeds."""
    edges = np.linspace(0, total, bins + 1)
    per_seed = []
    for ep in eps:
        ends = np.array([e[0] for e in ep], np.float64)
        rets = np.array([e[1] for e in ep], np.float64)
        idx = np.clip(np.searchsorted(edges, ends, side="left") - 1, 0, bins - 1)
        sums = np.bincount(idx, rets, bins)
        cnt = np.bincount(idx, None, bins)
        per_seed.append(np.where(cnt > 0, sums / np.maximum(cnt, 1), np.nan))
    arr = np.array(per_seed)
    with warnings.catch_warnings():  # a bin without an episode in any seed is None
        warnings.simplefilter("ignore", RuntimeWarning)
        mid = np.nanmedian(arr, axis=0)
    med = [None if not np.isfinite(x) else float(x) for x in mid]
    return {"step": ((edges[:-1] + edges[1:]) / 2).tolist(), "median": med}


def _fin(x: Any) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _mean(xs: list) -> float | None:
    v = [x for x in xs if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else None


def _median(xs: list) -> float | None:
    v = [x for x in xs if x is not None and math.isfinite(x)]
    return float(np.median(v)) if v else None


def _median_censored(per_seed: list[dict], key: str) -> float | None:
    """Median over all seeds, a censored seed (never recovered) counting as +inf; None when the
    median itself is censored or no seed has a value."""
    v = [math.inf if x.get("censored") else x.get(key) for x in per_seed]
    v = [x for x in v if x is not None]
    if not v:
        return None
    m = float(np.median(v))
    return m if math.isfinite(m) else None


def main(
    quick: bool = False,
    out: str | Path | None = None,
    rules: list[str] | None = None,
    steps_per_task: int | None = None,
    seed0: int = 0,
    seeds: int | None = None,
    evaluate: bool = True,
    hyper: dict[str, dict[str, Any]] | None = None,
    name: str = "continual",
    config: str = CONFIG,
    scratch: bool = True,
    evals_per_task: int | None = None,
    context: dict[str, dict[str, Any]] | None = None,
) -> dict:
    """Run every rule through the sequence; write ``<name>.{json,md}`` (and ``<name>.png`` with
    matplotlib) to ``out``.

    Args:
        quick: the small smoke budget.
        out: results folder (default ``benchmarks/results``).
        rules: a subset of :data:`RULES`.
        steps_per_task: env steps per task per seed.
        seed0: first seed (seeds ``seed0 .. seed0 + seeds - 1``; tune on 100-104, report 0-4).
        seeds: number of seeds (default the budget's).
        evaluate: False skips the frozen evaluations and from-scratch runs (adaptation only).
        hyper: per-rule hyperparameter overrides, ``{"eprop_ac": {"lr": 3e-4}}``.
        name: file name stem of the results.
        config: the sequence's YAML (under ``experiments/``, or a path), e.g.
            ``lifelong_cartpole_shifts.yaml``.
        scratch: False skips the from-scratch runs (no forward transfer; half the time).
        evals_per_task: frozen evaluations per task (default the budget's).
        context: per-rule contextual inference (``agent.context``,
            :func:`neurorl.agents.context.with_context`), ``{"eprop_ppo": {"n_contexts": 4}}``;
            the row is named ``<rule>+context``.
    """
    from benchmarks.common import machine, provenance, write_results
    from neurorl.errors import ConfigError, lookup

    prov = provenance()  # the code as loaded, before the (long) run

    budget = dict(QUICK if quick else FULL)
    if steps_per_task is not None:
        budget["steps_per_task"] = int(steps_per_task)
    if seeds is not None:
        budget["seeds"] = int(seeds)
    if evals_per_task is not None:
        budget["evals_per_task"] = int(evals_per_task)
        budget["k"] = min(budget["k"], budget["evals_per_task"])
    budget["seed0"] = int(seed0)
    budget["evaluate"] = bool(evaluate)
    budget["scratch"] = bool(scratch)
    budget["config"] = str(config)
    budget["context"] = dict(context or {})
    seq, n_tasks, own_per_task, names = _sequence(budget)  # checks the config before any run
    results_dir = Path(out) if out else ROOT / "benchmarks" / "results"
    if out:  # raw episodes next to a scratch run's results (not into benchmarks/results)
        budget["episodes_dir"] = str(results_dir / f"{name}_episodes")
    rules = [lookup({r: r for r in RULES}, r, "rule", field="rules") for r in rules or RULES]
    for r in hyper or {}:
        if r not in RULES:
            raise ConfigError("hyper", r, f"one of {list(RULES)}")
    for r in context or {}:
        if r not in RULES or r == "ppo":
            raise ConfigError("context", r, f"one of {[x for x in RULES if x != 'ppo']}")
    t0 = time.perf_counter()
    rows = []
    for rule in rules:
        h = (hyper or {}).get(rule)
        row = run_ppo(budget, h) if rule == "ppo" else run_rule(rule, budget, h)
        rows.append(row)
        print(
            f"{rule}: AP {row['average_performance']}, F {row['forgetting']}, "
            f"adaptation steps {[x['steps_median'] for x in row['switches']]} "
            f"per seed {[x['steps_per_seed'] for x in row['switches']]}, "
            f"wall {row['wall_s']['total']:.0f}",
            flush=True,
        )
    result = {
        "benchmark": "continual",
        "quick": quick,
        "config": str(_config_path(budget).relative_to(ROOT))
        if _config_path(budget).is_relative_to(ROOT) else str(_config_path(budget)),
        "title": seq.get("description") or seq.get("name"),
        "config_steps_per_task": own_per_task,
        "task_names": names,
        "budget": budget,
        "energy_chip": CHIP,
        "adaptation_fraction": FRACTION,
        "adaptation_window": WINDOW,
        "wall_s": time.perf_counter() - t0,
        "machine": machine(),
        "provenance": prov,
        "rows": rows,
    }
    write_results(name, result, rows, out=results_dir, markdown=markdown(result))
    plot(result, results_dir / f"{name}.png")
    return result


def save_episodes(path: Path, rule: str, eps: list[list[tuple]]) -> None:
    """Every seed's training episodes (end step, return, length) as ``.npz`` (for re-analysis;
    not part of the committed results)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **{f"{rule}_seed{i}": np.array([e[:3] for e in ep], np.float64)
                                 for i, ep in enumerate(eps)})


def combine(paths: list[str | Path], out: str | Path | None = None,
            name: str = "continual") -> dict:
    """Merge the rows of several ``continual.json`` runs with the same budget (rules run in
    separate processes) into one ``<name>.{json,md,png}``, rows in :data:`RULES` order."""
    import json

    from benchmarks.common import write_results
    from neurorl.errors import ConfigError

    parts = [json.loads(Path(p).read_text()) for p in paths]
    if not parts:
        raise ConfigError("combine", paths, "at least one continual.json")
    def same(b: dict) -> dict:  # contextual inference is a row's setting, not the budget's
        return {k: v for k, v in b.items() if k not in ("episodes_dir", "context")}

    budget = same(parts[0]["budget"])
    for p, r in zip(paths, parts, strict=True):
        if same(r["budget"]) != budget:
            raise ConfigError("combine", str(p), f"a run with the budget {budget}")
    rows = sorted(
        ({**row, "source": str(p)} for p, r in zip(paths, parts, strict=True) for row in r["rows"]),
        key=lambda x: (RULES.index(_stem(x["rule"])), x["rule"]),
    )
    result = {
        **parts[0],
        "budget": budget,
        "wall_s": sum(r["wall_s"] for r in parts),
        "combined_from": [
            {"path": str(p), "provenance": r["provenance"], "machine": r["machine"]}
            for p, r in zip(paths, parts, strict=True)
        ],
        "rows": rows,
    }
    results_dir = Path(out) if out else ROOT / "benchmarks" / "results"
    write_results(name, result, rows, out=results_dir, markdown=markdown(result))
    plot(result, results_dir / f"{name}.png")
    return result


def rewrite(path: str | Path, out: str | Path | None = None, name: str = "continual") -> dict:
    """Write ``<name>.md`` and ``<name>.png`` again from a results JSON with this code's
    :func:`markdown` and :func:`plot` (no run; the JSON itself is not changed)."""
    import json

    result = json.loads(Path(path).read_text())
    results_dir = Path(out) if out else ROOT / "benchmarks" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"{name}.md").write_text(markdown(result))
    plot(result, results_dir / f"{name}.png")
    return result


def plot(result: dict, path: Path) -> Path | None:
    """Training return (median over seeds) vs env step for every rule, switches marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # matplotlib is optional
        return None
    fig, ax = plt.subplots(figsize=(8, 4))
    for r in result["rows"]:
        c = r["curve"]
        y = [np.nan if v is None else v for v in c["median"]]
        ax.plot(c["step"], y, label=r["rule"])
    for i, sw in enumerate(result["rows"][0]["switches"] if result["rows"] else []):
        ax.axvline(
            sw["switch_step"], color="k", ls="--", lw=0.8, label="switch" if i == 0 else None
        )
    ax.set_xlabel("env step (per seed)")
    ax.set_ylabel("training episode return (median over seeds)")
    import textwrap

    ax.set_title("\n".join(textwrap.wrap(_title(result), 90)), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _title(result: dict) -> str:
    """The sequence in words: the config's ``description`` (older results: the pole-length
    sequence, the only one then)."""
    return result.get("title") or "lifelong CartPole (pole half-length 0.5 -> 1.0 -> 0.25 -> 0.5)"


def _frozen_on_new(row: dict, i: int, evals_per_task: int) -> float | None:
    """Median normalised performance of the frozen pre-switch policy on the task of switch ``i``
    (from ``perf_median``, the per-entry median over seeds, for results written before the
    switch rows carried it)."""
    sw = row["switches"][i]
    if sw.get("frozen_on_new_median") is not None:
        return sw["frozen_on_new_median"]
    pm = row.get("perf_median")
    return None if pm is None else float(pm[(i + 1) * evals_per_task - 1][i + 1])


def markdown(result: dict) -> str:
    """The report section: one row per rule, one per (rule, switch) for adaptation."""
    b = result["budget"]

    def f(x, spec=".2f"):
        return "-" if x is None else format(x, spec)

    rows = result["rows"]
    s0 = b.get("seed0", 0)
    lines = [
        f"# Continual: {_title(result)}",
        "",
        f"{b['steps_per_task']:,} env steps per task per seed (rounded down to a multiple of each "
        f"rule's update window: "
        + ", ".join(f"{r['rule']} {r['steps_per_task']:,}" for r in rows)
        + f"), seeds {s0}-{s0 + b['seeds'] - 1}, online learning through the sequence "
        f"(`{result['config']}`"
        + ("). " if result.get("config_steps_per_task") == b["steps_per_task"]
           else ", steps per task reduced for the suite). ")
        + ("`ppo` is the non-spiking baseline (`benchmarks/common.make_ppo`: MLP 64x64, 16 "
           "envs, constant lr) on the same tasks and budget." if any(
               r["rule"] == "ppo" for r in rows) else ""),
    ]
    if b.get("evaluate", True):
        lines += [
            "",
            f"{b['evals_per_task']} times per task the frozen "
            f"policy is evaluated on every task ({b['eval_steps']} steps x 8 envs, sampled "
            "actions); performance = (R - random) / (500 - random) per task. Continual World "
            f"metrics with end points averaged over the last {b['k']} evaluations; forward "
            "transfer (FT) against from-scratch runs on each task, GEM FWT against the untrained "
            f"policy; medians over seeds. Energy on {result['energy_chip']}'s per-event "
            "constants (float weights)."
            + ("" if b.get("scratch", True) else " No from-scratch runs in this run (`-`)."),
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
        fpt = {r["rule"]: [p.get("forgetting_per_task") for p in r.get("per_seed", [])]
               for r in rows}
        if all(v and all(x is not None for x in v) for v in fpt.values()) and fpt:
            lines += ["", "Forgetting per task (median over seeds; the last column is the task "
                      "trained last): " + "; ".join(
                          f"{rule} [" + ", ".join(f"{x:.2f}" for x in np.median(v, axis=0))
                          + "]" for rule, v in fpt.items())]
    lines += [
        "",
        "Adaptation after each switch, the same definition for every rule "
        "(`neurorl.metrics.continual.adaptation_time`, `experience_steps`): env steps (all "
        "parallel envs together) from the switch to the start of the first full window of "
        f"{WINDOW} post-switch training episodes whose mean return is back to "
        f"{FRACTION:.0%} of the pre-switch level (the last {WINDOW} pre-switch episodes), "
        "both above the new task's random-policy return; 0 = no adaptation needed. Medians over "
        "all seeds, a seed that never recovers counting as infinite (`-` when the median "
        "itself did not recover); pre-switch level = median raw return; chip time = env steps "
        "x substeps x 1 ms. *Frozen on new task*: the normalised performance (0 = random, 1 = "
        "500) of the policy of the last evaluation before the switch on the task that comes "
        "(median over seeds): near 1 = the old policy already does the new task, so the switch "
        "asks for no adaptation.",
        "",
        "| rule | switch at env step | to task | frozen on new task | pre-switch level | "
        "recovered | env steps (median) | per seed | chip time s |",
        "|---|---:|---|---:|---:|---:|---:|---|---:|",
    ]
    names = result.get("task_names")
    trivial = False
    for r in rows:
        for i, sw in enumerate(r["switches"]):
            # a seed whose pre-switch level is at or below the new task's random return had
            # nothing to recover: its 0 is by definition, not adaptation (marked *)
            rr = (r.get("random_policy_return") or [None] * (i + 2))[i + 1]
            pre = [(p.get("adaptation") or [{}] * (i + 1))[i].get("pre_level")
                   for p in r.get("per_seed", [])] or [None] * len(sw["steps_per_seed"])
            marks = ["*" if rr is not None and pl is not None and pl <= rr else ""
                     for pl in pre]
            trivial |= any(marks)
            per = ", ".join(("-" if x is None else f"{x:.0f}") + m
                            for x, m in zip(sw["steps_per_seed"], marks, strict=True))
            to = sw["to_task"] if not names else f"{sw['to_task']} ({names[sw['to_task']]})"
            fz = _frozen_on_new(r, i, b["evals_per_task"]) if b.get("evaluate", True) else None
            lines.append(
                f"| {r['rule']} | {sw['switch_step']:,} | {to} | {f(fz)} | "
                f"{f(sw['pre_level_median'], '.0f')} | {sw['recovered']}/{r['seeds']} | "
                f"{f(sw['steps_median'], '.0f')} | {per} | {f(sw['chip_time_s_median'])} |"
            )
    if trivial:
        lines += ["", "\\* the seed's pre-switch level was at or below the new task's "
                  "random-policy return: it had nothing to recover, so its 0 steps are no "
                  "adaptation."]
    lines += _common_bar_table(rows, names)
    lines += _rank_test_table(rows, names)
    hy = [f"{r['rule']} {r['hyper']}" for r in rows if r.get("hyper")]
    if hy:
        lines += ["", "Settings (non-default hyperparameters; PPO: all): " + "; ".join(hy) + "."]
    ctx = [r for r in rows if r.get("context")]
    if ctx:
        lines += ["", "`+context` rows: the rule with contextual inference (`agent.context`, "
                  "`neurorl.agents.context.with_context`: a store of weight sets chosen by "
                  "forward-model prediction errors, no task label) -- "
                  + "; ".join(f"{r['rule']} {r['context']}, contexts in use at the end per "
                              f"seed {r.get('contexts_used_per_seed')}" for r in ctx) + "."]
    lines += [
        "",
        f"Total wall time {result['wall_s']:.0f} s.",
        "",
    ]
    prov = result.get("provenance")
    if result.get("combined_from"):
        from benchmarks.common import provenance_line

        for part in result["combined_from"]:
            rules_ = ", ".join(
                r["rule"] for r in rows if r.get("source") == part["path"]
            )
            lines += [f"{rules_ or part['path']}: {provenance_line(part['provenance'])}"]
        lines += [""]
    elif prov:
        from benchmarks.common import provenance_line

        lines += [provenance_line(prov), ""]
    lines += [f"Machine: {result['machine']}", ""]
    return "\n".join(lines)


def _has_level(row: dict, i: int) -> bool:
    """Whether the row had something to recover at switch ``i``: a pre-switch level (median
    over seeds) above the new task's random-policy return (else its adaptation is trivially 0,
    the rows marked * in the own-level table)."""
    pre = row["switches"][i]["pre_level_median"]
    rr = (row.get("random_policy_return") or [None] * (i + 2))[i + 1]
    return pre is not None and (rr is None or pre > rr)


def common_bars(rows: list[dict]) -> list[int | None]:
    """Per switch, the common bar of :func:`_common_bar_table`: the largest of :data:`BARS` at
    or below ``FRACTION`` x the lowest pre-switch level (median over seeds) of the rows that had
    something to recover (:func:`_has_level`); None: below the smallest bar, or no such row."""
    rows = [r for r in rows if all("steps_to_bar_median" in sw for sw in r["switches"])]
    if not rows:
        return []
    out = []
    for i in range(len(rows[0]["switches"])):
        pre = [r["switches"][i]["pre_level_median"] for r in rows if _has_level(r, i)]
        ok = [bar for bar in BARS if pre and bar <= FRACTION * min(pre)]
        out.append(ok[-1] if ok else None)
    return out


def _common_bar_table(rows: list[dict], names: list[str] | None) -> list[str]:
    """Markdown lines: env steps after each switch to the same absolute return for every rule.

    The own-level adaptation above asks each rule for 90% of *its own* pre-switch level, so a
    rule that had learned the previous task better has a higher bar; here every rule must reach
    the same return, the largest of :data:`BARS` that every rule's own bar is at or above (so no
    rule is asked for more than its own bar)."""
    bars = common_bars(rows)
    rows = [r for r in rows if all("steps_to_bar_median" in sw for sw in r["switches"])]
    if not rows or not any(b is not None for b in bars):
        return []
    head = " | ".join(r["rule"] for r in rows)
    lines = [
        "",
        "Adaptation to a common bar: env steps after each switch until a full window of "
        f"{WINDOW} post-switch episodes has a mean return at or above the same bar for every "
        f"rule -- the largest of {list(BARS)} at or below {FRACTION:.0%} of the lowest "
        "pre-switch level of the rules (median over seeds; so no rule's bar is above its own "
        "one). Median over seeds (a seed that never reaches it counts as infinite; `-`: the "
        "median never did), in brackets the seeds that reached it; n/a*: the rule's pre-switch "
        "level was at or below the new task's random return (nothing to recover; not counted "
        "in the bar).",
        "",
        f"| switch to | common bar | {head} |",
        "|---|---:|" + "---:|" * len(rows),
    ]
    def cell(r: dict, i: int, bar: int) -> str:
        sw = r["switches"][i]
        if not _has_level(r, i):
            return "n/a*"
        m = sw["steps_to_bar_median"].get(str(bar))
        return (("-" if m is None else f"{m:,.0f}")
                + f" ({sw['reached_bar'][str(bar)]}/{r['seeds']})")

    return lines + _switch_lines(rows, bars, names, rows, cell)


def _switch_lines(rows: list[dict], bars: list[int | None], names: list[str] | None,
                  columns: list[Any], cell: Any) -> list[str]:
    """One markdown row per switch, ``| to task | common bar | cell(column, i, bar) ... |``
    (``-`` in every column where the switch has no common bar)."""
    lines = []
    for i, bar in enumerate(bars):
        to = rows[0]["switches"][i]["to_task"]
        label = f"{to} ({names[to]})" if names else str(to)
        if bar is None:
            lines.append(f"| {label} | - | " + " | ".join("-" for _ in columns) + " |")
        else:
            lines.append(f"| {label} | {bar} | "
                         + " | ".join(cell(c, i, bar) for c in columns) + " |")
    return lines


#: the non-local baselines a local rule is compared with (issue 17: "faster than the BPTT/PPO
#: baseline"); every other rule of a table is a local rule
BASELINES = ("bptt_ac", "ppo")


def _stem(rule: str) -> str:
    """The rule of a row's name: ``eprop_ppo+context`` -> ``eprop_ppo``."""
    return rule.split("+", 1)[0]


def _bar_steps_per_seed(row: dict, i: int, bar: int) -> list[float | None] | None:
    """Per seed, env steps after switch ``i`` to the absolute return ``bar`` (None: never);
    None when the row has no per-seed record of it (older JSON)."""
    out = []
    for p in row.get("per_seed") or []:
        ad = p.get("adaptation") or []
        if i >= len(ad) or "steps_to_bar" not in ad[i]:
            return None
        out.append(ad[i]["steps_to_bar"].get(str(bar)))
    return out or None


def _rank_test_table(rows: list[dict], names: list[str] | None) -> list[str]:
    """Markdown lines: is a local rule's adaptation to the common bar faster or slower than a
    baseline's beyond seed noise? Exact one-sided Mann-Whitney tests over the seeds
    (:func:`neurorl.experiment.reporting.rank_test`; a seed that never reaches the bar ranks
    last)."""
    from neurorl.experiment.reporting import rank_test

    bars = common_bars(rows)
    rows = [r for r in rows if all("steps_to_bar_median" in sw for sw in r["switches"])]
    local = [r for r in rows if _stem(r["rule"]) not in BASELINES]
    base = [r for r in rows if _stem(r["rule"]) in BASELINES]
    pairs = [(a, b) for a in local for b in base]
    if not pairs or not any(b is not None for b in bars):
        return []
    n = rows[0]["seeds"]
    from neurorl.experiment.reporting import EXACT_SPLITS, MC_RESAMPLES

    if math.comb(2 * n, n) <= EXACT_SPLITS:
        how, floor = "exact", 1 / math.comb(2 * n, n)
    else:  # rank_test samples the null beyond EXACT_SPLITS splits
        how, floor = f"Monte Carlo ({MC_RESAMPLES:,} random splits)", 1 / (MC_RESAMPLES + 1)
    lines = [
        "",
        "Is the difference beyond seed noise? For each local rule against each baseline, at the "
        f"common bar above: {how} one-sided Mann-Whitney tests over the seeds (a seed that never "
        "reaches the bar ranks last; `neurorl.experiment.reporting.rank_test`). *faster* / "
        "*slower*: p < 0.05 that the local rule's steps tend to be smaller / larger; `~`: "
        f"neither (with {n} vs {n} seeds the smallest attainable p is "
        f"{floor:.2g}); n/a: a rule had nothing to recover. In brackets: "
        "p(faster), p(slower).",
        "",
        "| switch to | common bar | " + " | ".join(f"{a['rule']} vs {b['rule']}"
                                                  for a, b in pairs) + " |",
        "|---|---:|" + "---|" * len(pairs),
    ]

    def cell(pair: tuple[dict, dict], i: int, bar: int) -> str:
        a, b = pair
        if not (_has_level(a, i) and _has_level(b, i)):
            return "n/a"
        xa, xb = _bar_steps_per_seed(a, i, bar), _bar_steps_per_seed(b, i, bar)
        if xa is None or xb is None:
            return "-"
        t = rank_test(xa, xb)
        if t["p_less"] is None:
            return "too few seeds"
        verdict = ("faster" if t["p_less"] < 0.05 else
                   "slower" if t["p_greater"] < 0.05 else "~")
        return f"{verdict} ({t['p_less']:.3f}, {t['p_greater']:.3f})"

    return lines + _switch_lines(rows, bars, names, pairs, cell)


def _parse_hyper(items: list[str], flag: str = "--hyper") -> dict[str, dict[str, Any]]:
    """``["eprop_ac.lr=3e-4"]`` -> ``{"eprop_ac": {"lr": 3e-4}}`` (values parsed as ``--set``
    values are)."""
    from neurorl.errors import ConfigError
    from neurorl.experiment.config import parse_override

    out: dict[str, dict[str, Any]] = {}
    for it in items:
        rule, dot, rest = it.partition(".")
        if not (dot and "=" in rest and rest.split("=", 1)[0]):
            raise ConfigError(flag, it, "RULE.KEY=VALUE, e.g. eprop_ac.lr=3e-4")
        k, v = parse_override(rest)
        out.setdefault(rule, {})[k] = v
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rules", nargs="+", default=None, help=f"a subset of {list(RULES)}")
    ap.add_argument("--steps-per-task", type=int, default=None)
    ap.add_argument("--seed0", type=int, default=0, help="first seed (tuning: 100)")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--no-eval", action="store_true", help="adaptation only (tuning)")
    ap.add_argument("--hyper", nargs="*", default=[], help="RULE.KEY=VALUE overrides")
    ap.add_argument("--context", nargs="*", default=None,
                    help="RULE.KEY=VALUE contextual inference settings (agent.context), e.g. "
                         "eprop_ppo.n_contexts=4")
    ap.add_argument("--name", default="continual")
    ap.add_argument("--config", default=CONFIG, help="the sequence's YAML under experiments/")
    ap.add_argument("--no-scratch", action="store_true", help="skip the from-scratch runs")
    ap.add_argument("--evals-per-task", type=int, default=None)
    ap.add_argument("--markdown", default=None,
                    help="rewrite <name>.md/.png from this continual JSON (no run)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--combine", nargs="+", default=None,
                    help="merge these continual.json files instead of running")
    a = ap.parse_args()
    if a.combine:
        combine(a.combine, a.out, a.name)
        sys.exit(0)
    if a.markdown:
        rewrite(a.markdown, a.out, a.name)
        sys.exit(0)
    main(quick=a.quick, out=a.out, rules=a.rules, steps_per_task=a.steps_per_task,
         seed0=a.seed0, seeds=a.seeds, evaluate=not a.no_eval, hyper=_parse_hyper(a.hyper),
         name=a.name, config=a.config, scratch=not a.no_scratch,
         evals_per_task=a.evals_per_task,
         context=None if a.context is None else _parse_hyper(a.context, "--context"))
