"""Host-loop training: any Gymnasium env (``env: {id: gymnasium:<Id>}``) driving the jitted agent.

The JAX envs train inside one jitted ``lax.scan`` (:mod:`neurorl.experiment.train`); an env that
only exists behind the ``gymnasium.Env`` API (Box2D's LunarLander, the toy-text envs, MuJoCo, a
lab robot) cannot. Here the env steps on the host, as a Gymnasium vector env of
``n_seeds x n_envs`` sub-envs (``SyncVectorEnv`` with ``AutoresetMode.SAME_STEP``, the jitted
loop's auto-reset semantics), and the agent -- the same Agent protocol, vmapped over seeds --
runs in ONE jitted call per env step that fuses ``learn`` on the last transition, the batch
``update`` when its window is full, and ``act`` on the new observation. Observations go through
:class:`~neurorl.envs.bridge.GymBridge` (one-hot for ``Discrete``, flattened ``Box``).

Logs, checkpoints, resume, wandb and the summary are the jitted runner's (same records, same
files, same ``chunk_records`` / ``summarize_run``). Differences, by necessity:

* a checkpoint holds the agent (and obs-shift) state, not the Gymnasium envs (an arbitrary
  ``gymnasium.Env`` cannot be saved); a resumed run re-creates and re-seeds the envs, so episodes
  running at the checkpoint restart, and a resumed run is not bit-identical to an uninterrupted
  one (the jitted runner's is);
* ``env.params`` are keyword arguments of ``gymnasium.make`` (e.g. FrozenLake's ``is_slippery``);
* shifts on the host: observation, action and reward shifts (the JAX shift objects, applied in
  the jitted call, per-env step counts as in the jitted loop); ``shifts.params`` / ``shifts.tasks``
  set *attributes* of each sub-env's ``unwrapped`` env (``gravity`` of LunarLander, ...), base
  values read from the env; attributes the env derived from them at construction are not
  recomputed (the stale-derived-parameter trap of gymnasium's CartPole: shift the neurorl JAX
  env for consistent physics);
* ``hardware.chip`` must be ``float`` (chip constraints run in the jitted trainer).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import yaml
from gymnasium import spaces as gspaces

from neurorl.errors import ConfigError, closest
from neurorl.experiment import config as C

PREFIX = "gymnasium:"


def is_host_env(env_id: str) -> bool:
    """Whether an experiment's ``env.id`` runs in the host loop (``gymnasium:<Id>``)."""
    return isinstance(env_id, str) and env_id.startswith(PREFIX)


def make_vector_env(cfg: C.ExperimentConfig, num_envs: int) -> gymnasium.vector.VectorEnv:
    """The Gymnasium vector env of a host run (sync, same-step auto-reset)."""
    from neurorl.envs.bridge import check_gymnasium_id

    gid = check_gymnasium_id(cfg.env.id)
    try:
        return gymnasium.make_vec(
            gid,
            num_envs=num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": gymnasium.vector.AutoresetMode.SAME_STEP},
            **dict(cfg.env.params),
        )
    except TypeError as e:
        raise ConfigError(
            "env.params",
            dict(cfg.env.params),
            f"keyword arguments of gymnasium.make({gid!r}) ({e})",
        ) from None


def agent_spec(cfg: C.ExperimentConfig, bridge: Any, n_envs: int) -> Any:
    """The AgentSpec of a Gymnasium env: flat obs, encoder bounds, action space."""
    from neurorl.agents import AgentSpec

    space = bridge.single_observation_space
    D = bridge.obs_dim
    if cfg.agent.obs_range is not None:
        r = np.broadcast_to(np.asarray(cfg.agent.obs_range, np.float64), (D,))
        low, high = -r, r
    elif isinstance(space, gspaces.Discrete | gspaces.MultiBinary | gspaces.MultiDiscrete):
        low, high = np.zeros(D), np.ones(D)  # one-hot / binary encodings
    else:
        low = np.asarray(space.low, np.float64).reshape(-1)
        high = np.asarray(space.high, np.float64).reshape(-1)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ConfigError(
                "agent.obs_range",
                None,
                f"explicit encoder bounds (a list of {D} half-widths) for {cfg.env.id}: its "
                "observation space is unbounded",
            )
    a = bridge.single_action_space
    if bridge.discrete:
        n_act, a_low, a_high = int(a.n), (), ()
    else:
        n_act = int(np.prod(a.shape))
        a_low = tuple(float(x) for x in np.asarray(a.low).reshape(-1))
        a_high = tuple(float(x) for x in np.asarray(a.high).reshape(-1))
    return AgentSpec(
        D,
        tuple(float(x) for x in low),
        tuple(float(x) for x in high),
        bridge.discrete,
        n_act,
        a_low,
        a_high,
        int(n_envs),
        int(cfg.agent.substeps),
    )


# ---------------------------------------------------------------------------------- shifts
class _SpacesOnly:
    """Just enough of an Environment for ``build_shifted_env`` to validate obs/action/reward
    shifts against a Gymnasium env's spaces."""

    def __init__(self, env_id: str, obs_dim: int, discrete: bool, n_act: int) -> None:
        from neurorl.envs import spaces

        self.id = env_id
        self._obs = spaces.Box(-np.inf, np.inf, (obs_dim,))
        self._act = spaces.Discrete(n_act) if discrete else spaces.Box(-1.0, 1.0, (n_act,))

    def observation_space(self, params: Any = None) -> Any:
        return self._obs

    def action_space(self, params: Any = None) -> Any:
        return self._act


@dataclasses.dataclass
class _AttrShift:
    field: str
    mode: str  # set | scale | add
    schedule: Any  # a schedule object of neurorl.envs.shifts (per-env steps)


class HostShifts:
    """Host-side shifts of a Gymnasium vector env (see the module docstring)."""

    def __init__(self, cfg: C.ExperimentConfig, vec: Any, bridge: Any, n_envs: int) -> None:
        from neurorl.experiment.shiftspec import _schedule, build_shifted_env

        sh = C.to_dict(cfg)["shifts"]
        self.n_envs = n_envs
        sub = {k: sh.get(k) or [] for k in ("obs", "action", "reward")}
        dummy = _SpacesOnly(cfg.env.id, bridge.obs_dim, bridge.discrete, bridge.n_actions or 1)
        if not bridge.discrete:
            dummy._act = _SpacesOnly(cfg.env.id, 1, False, int(np.prod(bridge.action_shape)))._act
        self.jax = build_shifted_env(dummy, sub, n_envs, bridge.obs_dim).shifts
        self.envs = list(getattr(vec, "envs", []))
        self.attr: list[_AttrShift] = []
        for i, p in enumerate(sh.get("params") or []):
            self._check_attr(f"shifts.params[{i}].field", p["field"])
            try:
                sched = _schedule(p["schedule"], n_envs)
            except KeyError as e:
                raise ConfigError(
                    f"shifts.params[{i}].schedule", p.get("schedule"), f"a value for {e}"
                ) from None
            from neurorl.envs.shifts import as_schedule

            self.attr.append(_AttrShift(p["field"], p.get("mode", "set"), as_schedule(sched)))
        self.tasks = sh.get("tasks")
        if self.tasks:
            for j, t in enumerate(self.tasks["tasks"]):
                for k in t:
                    self._check_attr(f"shifts.tasks.tasks[{j}]", k)
            per = self.tasks["steps_per_task"]
            n = len(self.tasks["tasks"])
            per = [int(per)] * n if not isinstance(per, list | tuple) else [int(x) for x in per]
            self._task_ends = np.cumsum([max(x // n_envs, 1) for x in per])
        self.base = {
            f: getattr(self.envs[0].unwrapped, f)
            for f in {a.field for a in self.attr}
            | {k for t in (self.tasks or {}).get("tasks", []) for k in t}
        }
        self._applied: dict[str, float] = {}
        self._sched = (
            jax.jit(lambda ts, k: [jax.vmap(lambda t: a.schedule(t, k))(ts) for a in self.attr])
            if self.attr
            else None
        )

    def _check_attr(self, where: str, name: str) -> None:
        if not self.envs:
            raise ConfigError(where, name, "a Gymnasium SyncVectorEnv (its sub-envs' attributes)")
        u = self.envs[0].unwrapped
        if not hasattr(u, name) or not isinstance(getattr(u, name), int | float | np.number):
            names = sorted(
                k
                for k, v in vars(u).items()
                if not k.startswith("_") and isinstance(v, int | float | np.number)
            )
            raise ConfigError(
                where,
                name,
                f"a numeric attribute of {type(u).__name__}: {names}",
                closest(name, names),
            )

    @property
    def has_attr(self) -> bool:
        return bool(self.attr or self.tasks)

    def task_id(self, t: int) -> int:
        if not self.tasks:
            return 0
        ends = self._task_ends
        if self.tasks.get("cycle"):
            t = t % int(ends[-1])
        return int(min(np.searchsorted(ends, t, side="right"), len(ends) - 1))

    def values_for(self, t0: int, n: int, key: jax.Array) -> list[dict[str, float]]:
        """The attribute values in effect at per-env steps ``t0 .. t0 + n - 1``."""
        ts = jnp.arange(t0, t0 + n, dtype=jnp.int32)
        vals = [np.asarray(v) for v in self._sched(ts, key)] if self._sched else []
        out = []
        for i in range(n):
            d: dict[str, float] = {}
            if self.tasks:
                d.update(self.tasks["tasks"][self.task_id(t0 + i)])
            for a, v in zip(self.attr, vals, strict=True):
                base = float(d.get(a.field, self.base[a.field]))
                x = float(v[i])
                d[a.field] = x if a.mode == "set" else (base * x if a.mode == "scale" else base + x)
            out.append(d)
        return out

    def apply(self, values: Mapping[str, float]) -> None:
        """Set the attributes that changed on every sub-env."""
        for k, v in values.items():
            if self._applied.get(k) != v:
                for e in self.envs:
                    setattr(e.unwrapped, k, type(self.base[k])(v))
                self._applied[k] = v


# ------------------------------------------------------------------------------- trainer
@dataclasses.dataclass
class HostTrainer:
    """Everything a host run needs (built and validated before anything runs)."""

    cfg: C.ExperimentConfig
    vec: Any
    bridge: Any
    agent: Any
    shifts: HostShifts
    n_seeds: int
    n_envs: int
    step_fn: Any  # jitted fused learn/update/act
    act0_fn: Any  # jitted first act
    init_fn: Any

    @property
    def config(self) -> Any:  # the jitted trainer's ``train.config`` has n_envs
        return self


def host_template(tr: HostTrainer) -> dict[str, Any]:
    """The structure of a host-loop checkpoint (``jax.eval_shape`` of the trainer's init), to
    verify a checkpoint against before anything is restored."""
    ast, obs_states = jax.eval_shape(tr.init_fn, jax.random.key(0))
    return {"agent_state": ast, "obs_states": obs_states,
            "key": jax.eval_shape(lambda: jax.random.key(0))}


def build_host(cfg: C.ExperimentConfig, n_seeds: int | None = None) -> HostTrainer:
    """Validate a ``gymnasium:<Id>`` experiment on the host and build its trainer.

    Raises:
        ConfigError: unknown id (closest registered id), bad ``env.params`` (make kwargs),
            unbounded observations without ``agent.obs_range``, unknown shift attributes, or a
            chip other than ``float``.
    """
    from neurorl.agents import make_agent
    from neurorl.envs.bridge import GymBridge

    if cfg.hardware.chip != "float":
        raise ConfigError(
            "hardware.chip",
            cfg.hardware.chip,
            "'float' for gymnasium: envs (chip constraints run in the jitted trainer)",
        )
    S = cfg.training.n_seeds if n_seeds is None else n_seeds
    B = cfg.training.n_envs
    vec = make_vector_env(cfg, S * B)
    bridge = GymBridge(vec)
    spec = agent_spec(cfg, bridge, B)
    agent = make_agent(cfg.agent.name, spec, **dict(cfg.agent.hyper))
    shifts = HostShifts(cfg, vec, bridge, B)
    sj = shifts.jax
    U = agent.update_every if agent.update is not None else 1
    if (cfg.training.steps // B) % U:
        raise ConfigError(
            "training.steps", cfg.training.steps, f"a multiple of n_envs x update_every = {B * U}"
        )

    def obs_shift(t, key, obs_states, obs):
        """Observation shifts at per-env step ``t`` (obs [S, B, D])."""
        new_states = []
        for i, (o, s) in enumerate(zip(sj.obs, obs_states, strict=True)):
            ks = jax.random.split(jax.random.fold_in(key, i), S * B).reshape(S, B)
            obs, s = jax.vmap(jax.vmap(lambda k, s_, x, o=o: o.apply(t, k, s_, x)))(ks, s, obs)
            new_states.append(s)
        return obs, tuple(new_states)

    def per_env(fn, key, x):
        ks = jax.random.split(key, S * B).reshape(S, B)
        return jax.vmap(jax.vmap(fn))(ks, x)

    def act(ast, obs, t, key, obs_states):
        k_obs, k_act, k_ash = jax.random.split(key, 3)
        obs, obs_states = obs_shift(t, k_obs, obs_states, obs)
        action, ast = jax.vmap(agent.act)(ast, obs, jax.random.split(k_act, S))
        for i, a in enumerate(sj.action):
            action = per_env(
                lambda k, x, a=a: a.apply(t, k, x), jax.random.fold_in(k_ash, i), action
            )
        w = jax.vmap(agent.weights)(ast)
        wn = jnp.sqrt(sum(jnp.sum(x * x, axis=tuple(range(1, x.ndim))) for x in jax.tree.leaves(w)))
        return action, ast, obs_states, ast.stats.spikes, ast.stats.synops, wn

    def init(key):
        k_agent, k_obs = jax.random.split(key)
        ast = jax.vmap(agent.init)(jax.random.split(k_agent, S))
        obs_states = tuple(
            jax.vmap(jax.vmap(lambda k, o=o: o.init(k, bridge.obs_dim)))(
                jax.random.split(jax.random.fold_in(k_obs, i), S * B).reshape(S, B)
            )
            for i, o in enumerate(sj.obs)
        )
        return ast, obs_states

    def step(ast, obs_states, reward, term, trunc, obs, t, key, do_update):
        """learn(last transition) [-> update] -> act(new obs); t = per-env step of ``obs``."""
        key, k_rew, k_upd, k_act = jax.random.split(key, 4)
        for i, r in enumerate(sj.reward):
            reward = per_env(
                lambda k, x, r=r: r.apply(t - 1, k, x), jax.random.fold_in(k_rew, i), reward
            )
        ast = jax.vmap(agent.learn)(ast, reward, term, trunc)
        if do_update:
            # the jitted loop updates with the observation the agent sees (obs shifts applied)
            sobs, _ = obs_shift(t, jax.random.split(k_act, 3)[0], obs_states, obs)
            ast = jax.vmap(agent.update)(ast, sobs, jax.random.split(k_upd, S))
        out = act(ast, obs, t, k_act, obs_states)
        return (reward,) + out + (key,)

    return HostTrainer(
        cfg=cfg,
        vec=vec,
        bridge=bridge,
        agent=agent,
        shifts=shifts,
        n_seeds=S,
        n_envs=B,
        step_fn=jax.jit(step, static_argnums=8),
        act0_fn=jax.jit(act),
        init_fn=jax.jit(init),
    )


def _records_metrics(buf: Mapping[str, list]) -> dict[str, np.ndarray]:
    return {k: np.stack(v) for k, v in buf.items()}


def run_host_experiment(
    cfg: C.ExperimentConfig,
    run_dir: str | Path,
    *,
    progress: bool = True,
    wandb_mode: str | None = None,
    stop_after_chunks: int | None = None,
    resume: bool = False,
    members: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """:func:`neurorl.experiment.runner.run_experiment` for a ``gymnasium:<Id>`` env."""
    from neurorl.experiment import runner as R
    from neurorl.experiment.checkpoint import (
        atomic_write_text,
        has_checkpoint,
        load_checkpoint,
        save_checkpoint,
    )
    from neurorl.experiment.logging import RunLogger
    from neurorl.experiment.shiftspec import is_empty

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(C.to_dict(cfg), sort_keys=False))
    members = members or R.members_of(cfg)
    atomic_write_text(run_dir / "members.json", json.dumps(members, indent=2, default=str))
    mode = wandb_mode or cfg.logging.wandb
    tr = build_host(cfg)
    S, B = tr.n_seeds, tr.n_envs
    total, chunk = cfg.training.steps, cfg.training.chunk_steps
    U = tr.agent.update_every if tr.agent.update is not None else 1
    log_kw = dict(
        members=members, group=cfg.logging.group or cfg.name, wandb_mode=mode,
        project=cfg.logging.project,
    )  # fmt: skip

    shifted = not is_empty(C.to_dict(cfg)["shifts"])
    key = jax.random.key(cfg.training.seed)
    if resume and has_checkpoint(run_dir):
        state, meta = load_checkpoint(run_dir, host_template(tr))
        ast, obs_states, key = state["agent_state"], state["obs_states"], state["key"]
        done_steps, chunks_done, history = (
            int(meta["env_steps"]),
            int(meta["chunks"]),
            meta["history"],
        )
        logger = RunLogger(run_dir, wandb_ids=meta.get("wandb_ids") or None, **log_kw)
        logger.restore_positions(meta["positions"])
    else:
        key, k_init = jax.random.split(key)
        ast, obs_states = tr.init_fn(k_init)
        done_steps, chunks_done = 0, 0
        history = [[] for _ in range(S)]
        for name in ("episodes.jsonl", "chunks.jsonl"):
            (run_dir / name).unlink(missing_ok=True)
        logger = RunLogger(run_dir, **log_kw)

    # (re-)seeded envs: a resumed run starts new episodes (gymnasium envs cannot be saved)
    raw, _ = tr.vec.reset(seed=cfg.training.seed + 7919 * chunks_done)
    t = done_steps // B  # per-env step count, the shift schedules' clock
    if tr.shifts.has_attr:
        tr.shifts.apply(tr.shifts.values_for(t, 1, jax.random.key(cfg.training.seed))[0])
    obs = tr.bridge.encode_np(raw).reshape(S, B, -1)
    key, k = jax.random.split(key)
    action, ast, obs_states, spikes, synops, _ = tr.act0_fn(ast, obs, t, k, obs_states)
    ep_ret = np.zeros((S, B), np.float64)
    ep_len = np.zeros((S, B), np.int64)

    t_start = time.perf_counter()
    steps_at_start = done_steps
    from neurorl.experiment.progress import RunProgress

    with RunProgress(cfg.name, total, done_steps, enabled=progress and cfg.logging.progress,
                     window=cfg.training.episode_window, seeds=S) as bar:
        while done_steps < total:
            n = min(chunk, total - done_steps)
            T = n // B
            attr_vals = (
                tr.shifts.values_for(t, T, jax.random.key(cfg.training.seed))
                if tr.shifts.has_attr
                else None
            )
            dev, dones, tids = [], [], []
            for i in range(T):
                if attr_vals is not None:
                    tr.shifts.apply(attr_vals[i])
                a = np.asarray(action).reshape((S * B,) + tuple(tr.bridge.action_shape))
                raw, r, te, trunc, _ = tr.vec.step(tr.bridge.decode_action(a))
                tids.append(tr.shifts.task_id(t))
                t += 1
                obs = tr.bridge.encode_np(raw).reshape(S, B, -1)
                te = np.asarray(te, bool).reshape(S, B)
                trunc = np.asarray(trunc, bool).reshape(S, B)
                r = np.asarray(r, np.float32).reshape(S, B)
                do_update = (t % U) == 0 and tr.agent.update is not None
                r_shifted, action, ast, obs_states, sp, sy, wn_new, key = tr.step_fn(
                    ast, obs_states, r, te, trunc, obs, t, key, do_update
                )
                # stays on the device until the chunk ends (one transfer per chunk, not per step)
                dev.append((r_shifted, spikes, synops, wn_new))  # wn: after this step's learn
                dones.append(te | trunc)
                spikes, synops = sp, sy
            dev = jax.device_get(dev)
            buf: dict[str, list] = {
                k_: [] for k_ in ("done", "episode_return", "episode_length", "spikes", "synops")
            }
            buf["weight_norm"] = []
            for done, (r_shifted, sp_i, sy_i, wn_i) in zip(dones, dev, strict=True):
                ep_ret += r_shifted
                ep_len += 1
                buf["done"].append(done)
                buf["episode_return"].append(np.where(done, ep_ret, 0.0))
                buf["episode_length"].append(np.where(done, ep_len, 0))
                buf["spikes"].append(sp_i)
                buf["synops"].append(sy_i)
                buf["weight_norm"].append(wn_i)
                ep_ret[done] = 0.0
                ep_len[done] = 0
            metrics = _records_metrics(buf)
            task_ids = None
            if shifted:  # as the jitted loop: task ids logged only for a shifted run
                task_ids = np.broadcast_to(np.asarray(tids)[:, None], (T, S))
            episodes, chunk_recs = R.chunk_records(
                metrics,
                done_steps,
                B,
                energy_fn=None,
                window=cfg.training.episode_window,
                history=history,
                task_ids=task_ids,
            )
            done_steps += n
            chunks_done += 1
            elapsed = time.perf_counter() - t_start
            sps = (done_steps - steps_at_start) * S / max(elapsed, 1e-9)
            for c in chunk_recs:
                c["steps_per_s"] = sps
            logger.log(episodes, chunk_recs)
            save_checkpoint(
                run_dir,
                {"agent_state": ast, "obs_states": obs_states, "key": key},
                {
                    "env_steps": done_steps,
                    "chunks": chunks_done,
                    "positions": logger.positions(),
                    "wandb_ids": logger.wandb_ids,
                    "history": history,
                    "host_loop": True,
                },
            )
            rets = [c["mean_return"] for c in chunk_recs if c["mean_return"] is not None]
            bar.update(done_steps, sps, float(np.median(rets)) if rets else None)
            if (
                stop_after_chunks is not None
                and chunks_done >= stop_after_chunks
                and done_steps < total
            ):
                tr.vec.close()
                return {"stopped_at": done_steps}
    tr.vec.close()
    summary = R.summarize_run(run_dir, cfg, members)
    atomic_write_text(
        run_dir / "summary.json", json.dumps(summary, indent=2, default=R._json_default)
    )
    if mode != "disabled":
        logger.log_task_switches([(b, i + 1) for i, b in enumerate(summary["boundaries"])])
    logger.finish(summary["members"])
    return summary


__all__ = ["HostTrainer", "build_host", "is_host_env", "run_host_experiment"]
