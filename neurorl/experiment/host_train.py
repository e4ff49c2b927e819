"""Host-loop training: any Gymnasium env (``env: {id: gymnasium:<Id>}``) driving the jitted agent.

The JAX envs train inside one jitted ``lax.scan`` (:mod:`neurorl.experiment.train`); an env that
only exists behind the ``gymnasium.Env`` API (Box2D's LunarLander, the toy-text envs, MuJoCo, a
lab robot) cannot. Here the env steps on the host, as a Gymnasium vector env of
``n_seeds x n_envs`` sub-envs (``SyncVectorEnv`` with ``AutoresetMode.SAME_STEP``, the jitted
loop's auto-reset semantics), and the agent -- the same Agent protocol, vmapped over seeds --
runs in ONE jitted call per env step that fuses ``learn`` on the last transition, the batch
``update`` when its window is full, and ``act`` on the new observation. Observations go through
:class:`~neurorl.envs.bridge.GymBridge` (one-hot for ``Discrete``, flattened ``Box``).

The runner drives it like the jitted trainer (:class:`HostTrainer` has ``init(keys)`` and
``run_chunk(state, n)``): one loop, so the same run-directory lock, records, non-finite stop,
strict JSON, checkpoints, resume, wandb and summary. Differences, by necessity:

* the envs live on the host: a checkpoint holds the agents (and obs-shift states, keys and the
  pending action) as arrays, and the envs as a JSON snapshot of their plain attributes
  (:class:`EnvSnapshots`: state, RNG streams, wrapper counters; never pickle), so a resumed run
  continues every running episode and is bit-identical to an uninterrupted one. An env whose
  state is not plain data (LunarLander's Box2D ``world``, MuJoCo) cannot be snapshotted: its
  resume warns, re-seeds the envs and restarts their running episodes;
* ``env.params`` are keyword arguments of ``gymnasium.make`` (e.g. FrozenLake's ``is_slippery``);
* shifts on the host: observation, action and reward shifts (the JAX shift objects, applied in
  the jitted call, per-env step counts as in the jitted loop); ``shifts.params`` / ``shifts.tasks``
  set *attributes* of each sub-env's ``unwrapped`` env (``gravity`` of LunarLander, ...), base
  values read from the env; attributes the env derived from them at construction are not
  recomputed (the stale-derived-parameter trap of gymnasium's CartPole: shift the neurorl JAX
  env for consistent physics);
* ``hardware.engine`` scales ``"auto"`` are refused: their calibration is a float run of the
  jitted trainer, which cannot step a Gymnasium env (give the scales, e.g. those a calibration
  on the env's neurorl JAX twin chose).

A chip (``hardware.chip``) holds the agent exactly as in the jitted trainer, by the trainer's own
functions (:func:`~neurorl.experiment.train.make_chip_agent`,
:class:`~neurorl.experiment.train.ChipConstraints`): the network is compiled for the chip (fan-in,
capacity and on-chip learning checked at build, membrane precision, device noise), its weights go
onto the chip's grid after every ``learn`` and ``update`` (stochastic rounding, or the chip's
learning engine, whose state travels in :class:`HostState` and the checkpoint), or with
``off_chip_learning`` stay float shadow weights that act through their projection; per-step
``learning_ops`` and the runner's energy per env step are the jitted run's.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
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


    def reset_applied(self) -> None:
        """Forget which values were set (after the envs' attributes were restored)."""
        self._applied = {}


# ------------------------------------------------------------------------- env snapshots
# What a checkpoint keeps of a Gymnasium env: every instance attribute of every layer (wrappers,
# the unwrapped env, the vector env) that is plain data -- numbers, strings, numpy arrays, lists,
# tuples and str-keyed dicts of those, numpy Generators (as their bit generator's state). Spaces,
# specs, the wrapped env and callables are structure, not state. Anything else (a Box2D world, a
# MuJoCo data object, a pygame surface) cannot be written without pickle: such an env is
# snapshotted as far as it goes and marked inexact, and a resume re-seeds it.
_SNAPSHOT_VERSION = 1


class _Unsupported(Exception):
    pass


def _enc(v: Any) -> Any:
    import base64

    if v is None or isinstance(v, bool | str):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return {"__f__": v.hex()}
    if isinstance(v, np.ndarray | np.generic):
        a = np.asarray(v)
        if a.dtype.kind not in "biufcSU":  # numbers, fixed-width bytes / text
            raise _Unsupported(type(v).__name__)
        return {
            "__nd__": a.dtype.str,
            "shape": list(a.shape),
            "scalar": isinstance(v, np.generic),
            "b64": base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii"),
        }
    if isinstance(v, np.random.Generator):
        bg = v.bit_generator
        return {"__rng__": type(bg).__name__, "state": _enc(bg.state)}
    if isinstance(v, list | tuple):
        return {"__list__" if isinstance(v, list) else "__tuple__": [_enc(x) for x in v]}
    if isinstance(v, dict):
        if all(isinstance(k, str) for k in v):
            return {"__dict__": {k: _enc(x) for k, x in v.items()}}
        return {"__items__": [[_enc(k), _enc(x)] for k, x in v.items()]}  # e.g. FrozenLake's P
    raise _Unsupported(type(v).__name__)


def _dec(v: Any) -> Any:
    import base64

    if not isinstance(v, dict):
        return v
    if "__f__" in v:
        return float.fromhex(v["__f__"])
    if "__nd__" in v:
        a = np.frombuffer(base64.b64decode(v["b64"]), dtype=np.dtype(v["__nd__"]))
        a = a.reshape(v["shape"]).copy()
        return a[()] if v["scalar"] else a
    if "__rng__" in v:
        bg = getattr(np.random, v["__rng__"])()
        bg.state = _dec(v["state"])
        return np.random.Generator(bg)
    if "__list__" in v:
        return [_dec(x) for x in v["__list__"]]
    if "__tuple__" in v:
        return tuple(_dec(x) for x in v["__tuple__"])
    if "__items__" in v:
        return {_dec(k): _dec(x) for k, x in v["__items__"]}
    return {k: _dec(x) for k, x in v["__dict__"].items()}


def _layers(env: Any) -> list[Any]:
    out = [env]
    while isinstance(out[-1], gymnasium.Wrapper):
        out.append(out[-1].env)
    return out


def _structural(v: Any) -> bool:
    import types

    from gymnasium.envs.registration import EnvSpec

    return (
        isinstance(v, gspaces.Space | EnvSpec | gymnasium.Env | types.ModuleType)
        or callable(v)
    )


def _digest(x: Any) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(x, sort_keys=True).encode()).hexdigest()[:16]


class EnvSnapshots:
    """JSON snapshots of a ``SyncVectorEnv``'s sub-envs (see the comment above), without pickle.

    Only attributes that differ from the freshly made envs (recorded at construction, as
    digests) are written, so static tables (FrozenLake's transition dict ``P``) stay out of
    every checkpoint. :meth:`restore` requires envs that were made the same way (checked by
    the digest of the fresh envs).
    """

    def __init__(self, vec: Any) -> None:
        self.vec = vec
        self.objs = [("vector", vec)] + [
            (f"envs[{i}].{type(layer).__name__}", layer)
            for i, e in enumerate(getattr(vec, "envs", []))
            for layer in _layers(e)
        ]
        enc, _ = self._encode_all()
        self.base = [{k: _digest(v) for k, v in attrs.items()} for attrs in enc]
        self.base_digest = _digest(self.base)

    def _encode_all(self) -> tuple[list[dict[str, Any]], list[str]]:
        out, unsupported = [], []
        for where, obj in self.objs:
            attrs = {}
            for k, v in vars(obj).items():
                if k == "envs" or _structural(v):
                    continue
                try:
                    attrs[k] = _enc(v)
                except _Unsupported as e:
                    if where != "vector":  # the vector env's own objects are step buffers
                        unsupported.append(f"{where}.{k} ({e})")
            out.append(attrs)
        return out, unsupported

    def snapshot(self) -> dict[str, Any]:
        """``{"version", "fresh", "layers": [changed attrs per object], "exact",
        "unsupported"}``; ``exact`` is False when an attribute could not be written (e.g.
        LunarLander's Box2D ``world``)."""
        enc, unsupported = self._encode_all()
        layers = [
            {k: v for k, v in attrs.items() if base.get(k) != _digest(v)}
            for attrs, base in zip(enc, self.base, strict=True)
        ]
        return {"version": _SNAPSHOT_VERSION, "fresh": self.base_digest, "layers": layers,
                "exact": not unsupported, "unsupported": unsupported[:8]}

    def fits(self, snap: Mapping[str, Any]) -> bool:
        """Whether ``snap`` was taken of envs made as these were."""
        return (snap.get("version") == _SNAPSHOT_VERSION and snap.get("fresh") == self.base_digest
                and len(snap.get("layers", [])) == len(self.objs))

    def restore(self, snap: Mapping[str, Any]) -> None:
        """Set the snapshot's attributes on these (fresh) envs.

        Raises:
            CheckpointError: the snapshot is of other envs (:meth:`fits`).
        """
        from neurorl.errors import CheckpointError

        if not self.fits(snap):
            raise CheckpointError(
                "the checkpoint's env snapshot was taken of envs made otherwise than this run's "
                "(another env id, env.params, gymnasium version or number of envs)"
            )
        for (_, obj), attrs in zip(self.objs, snap["layers"], strict=True):
            for k, v in attrs.items():
                setattr(obj, k, _dec(v))


# ------------------------------------------------------------------------------- trainer
class HostState(NamedTuple):
    """The device half of a host run's state (a pytree, what the checkpoint's arrays hold).

    Attributes:
        agent_state: the agents, leading axis = member.
        obs_states: observation-shift states, ``[S, B, ...]`` per shift.
        key: one PRNG key per member.
        action: the action each sub-env takes next ``[S, B, ...]`` (computed from the last
            observation, so a chunk boundary falls between ``act`` and ``env.step``).
        spikes, synops: the activity of that ``act`` ``[S]``.
        engine: on-chip learning through the chip's learning engine: its state per connection
            (:class:`~neurorl.experiment.train.ChipLearning`, the jitted trainer's
            ``RunnerState.engine``); None otherwise.
    """

    agent_state: Any
    obs_states: Any
    key: jax.Array
    action: jax.Array
    spikes: jax.Array
    synops: jax.Array
    engine: Any = None


@dataclasses.dataclass
class _HostClock:
    """The host half of a host run's state: written to the checkpoint's JSON metadata."""

    started: bool = False
    t: int = 0  # per-env step count, the shift schedules' clock
    ep_ret: np.ndarray | None = None
    ep_len: np.ndarray | None = None


class HostTrainer:
    """A ``gymnasium:<Id>`` run with the jitted trainer's interface, driven by the runner.

    :func:`neurorl.experiment.runner.run_experiment` drives it as it drives ``make_train``'s
    trainer: ``init(keys)`` is pure (the agents, nothing touches the envs), ``run_chunk(state,
    n)`` steps the Gymnasium vector env ``n // n_envs`` times and returns the same per-step
    metrics ``[T, S, B]`` / ``[T, S]``. The envs and the episode counters live on the host;
    :meth:`host_state` / :meth:`restore_host_state` carry them through the checkpoint's metadata
    (:class:`EnvSnapshots`), so a killed and resumed run continues the envs' episodes and RNG
    streams exactly where they were.
    """

    def __init__(self, cfg: C.ExperimentConfig, vec: Any, bridge: Any, agent: Any,
                 shifts: HostShifts, n_seeds: int, n_envs: int, fns: Mapping[str, Any]) -> None:
        self.cfg, self.vec, self.bridge, self.agent, self.shifts = cfg, vec, bridge, agent, shifts
        self.n_seeds, self.n_envs = n_seeds, n_envs
        self._fns = dict(fns)
        self.step_fn = self._fns["step"]
        self._clock = _HostClock()
        self._shifted = not _shifts_empty(cfg)
        self._snapshots = EnvSnapshots(vec)  # before anything steps: the fresh envs
        self._pending_obs: np.ndarray | None = None

    @property
    def config(self) -> Any:  # the runner reads ``train.config.n_envs``
        return self

    def init(self, keys: jax.Array) -> HostState:
        """The initial state of every member (member ``i`` from ``keys[i]``); pure."""
        return self._fns["init"](keys)

    def _env_seeds(self, keys: jax.Array) -> list[int]:
        """Sub-env reset seeds: member ``i``'s ``B`` seeds are drawn from its own key, so a
        member's envs do not depend on the other members of its group."""
        seeds = jax.vmap(
            lambda k: jax.random.randint(jax.random.fold_in(k, 0x5EED), (self.n_envs,), 0,
                                         2**31 - 1)
        )(keys)
        return [int(x) for x in np.asarray(seeds).reshape(-1)]

    def _start(self, rs: HostState) -> HostState:
        S, B = self.n_seeds, self.n_envs
        raw, _ = self.vec.reset(seed=self._env_seeds(rs.key))
        c = self._clock
        c.started, c.t = True, 0
        c.ep_ret, c.ep_len = np.zeros((S, B), np.float64), np.zeros((S, B), np.int64)
        self.shifts.reset_applied()
        if self.shifts.has_attr:
            self.shifts.apply(self.shifts.values_for(0, 1, self._shift_key)[0])
        obs = self.bridge.encode_np(raw).reshape(S, B, -1)
        return self._fns["act0"](rs, obs, 0)

    @property
    def _shift_key(self) -> jax.Array:
        return jax.random.key(self.cfg.training.seed)

    def run_chunk(self, rs: HostState, n: int) -> tuple[HostState, dict[str, np.ndarray]]:
        """Advance every sub-env ``n // n_envs`` steps; returns the state and the metrics."""
        if not self._clock.started:
            rs = self._start(rs)
        if self._pending_obs is not None:
            rs = self._fns["act0"](rs, self._pending_obs, self._clock.t)
            self._pending_obs = None
        S, B = self.n_seeds, self.n_envs
        c, tr, U = self._clock, self, self.agent.update_every if self.agent.update else 1
        T = n // B
        attr_vals = (self.shifts.values_for(c.t, T, self._shift_key)
                     if self.shifts.has_attr else None)
        dev, dones, tids = [], [], []
        for i in range(T):
            if attr_vals is not None:
                self.shifts.apply(attr_vals[i])
            a = np.asarray(rs.action).reshape((S * B,) + tuple(tr.bridge.action_shape))
            raw, r, te, trunc, _ = self.vec.step(tr.bridge.decode_action(a))
            tids.append(self.shifts.task_id(c.t))
            c.t += 1
            obs = tr.bridge.encode_np(raw).reshape(S, B, -1)
            te = np.asarray(te, bool).reshape(S, B)
            trunc = np.asarray(trunc, bool).reshape(S, B)
            r = np.asarray(r, np.float32).reshape(S, B)
            do_update = (c.t % U) == 0 and self.agent.update is not None
            spikes, synops = rs.spikes, rs.synops  # the activity of the action just taken
            r_shifted, rs, wn, chip_m = self.step_fn(rs, r, te, trunc, obs, c.t, do_update)
            # stays on the device until the chunk ends (one transfer per chunk, not per step)
            dev.append((r_shifted, spikes, synops, wn, chip_m))  # wn: after this step's learn
            dones.append(te | trunc)
        dev = jax.device_get(dev)
        buf: dict[str, list] = {k: [] for k in ("done", "episode_return", "episode_length",
                                                "spikes", "synops", "weight_norm")}
        # the chip's per-step metrics (learning_ops) and the agent's diagnostics (context)
        for k in dev[0][4] if dev else ():
            buf[k] = [d[4][k] for d in dev]
        for done, (r_shifted, sp_i, sy_i, wn_i, _) in zip(dones, dev, strict=True):
            c.ep_ret += r_shifted
            c.ep_len += 1
            buf["done"].append(done)
            buf["episode_return"].append(np.where(done, c.ep_ret, 0.0))
            buf["episode_length"].append(np.where(done, c.ep_len, 0))
            buf["spikes"].append(sp_i)
            buf["synops"].append(sy_i)
            buf["weight_norm"].append(wn_i)
            c.ep_ret[done] = 0.0
            c.ep_len[done] = 0
        metrics = {k: np.stack(v) for k, v in buf.items()}
        if self._shifted:  # as the jitted loop: task ids only for a shifted run
            metrics["task_id"] = np.broadcast_to(np.asarray(tids)[:, None], (T, S))
        return rs, metrics

    def host_state(self) -> dict[str, Any]:
        """The host half of the state (step clock, episode counters, the envs) as JSON data."""
        c = self._clock
        if not c.started:
            return {"started": False}
        return {"started": True, "t": c.t, "ep_ret": _enc(c.ep_ret), "ep_len": _enc(c.ep_len),
                "envs": self._snapshots.snapshot()}

    def restore_host_state(self, d: Mapping[str, Any] | None, chunks_done: int = 0) -> None:
        """Restore :meth:`host_state`. Envs that could not be snapshotted exactly (see
        :class:`EnvSnapshots`) are re-seeded instead: their running episodes restart.

        Raises:
            CheckpointError: a host state that does not fit this run.
        """
        from neurorl.errors import CheckpointError

        if not d or not d.get("started"):
            return
        c = self._clock
        try:
            c.t, c.ep_ret, c.ep_len = int(d["t"]), _dec(d["ep_ret"]), _dec(d["ep_len"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"the checkpoint's host-loop state is incomplete ({e})") from None
        if np.shape(c.ep_ret) != (self.n_seeds, self.n_envs):
            raise CheckpointError("the checkpoint's host-loop state is of another run shape")
        snap = d.get("envs") or {}
        if snap.get("exact"):
            self._snapshots.restore(snap)
        else:
            import warnings

            warnings.warn(
                f"{self.cfg.env.id}: the env state cannot be checkpointed without pickle "
                f"({', '.join(snap.get('unsupported', []))}); the resumed run re-seeds its envs "
                "and their running episodes restart (not bit-identical to an uninterrupted run)",
                RuntimeWarning,
                stacklevel=2,
            )
            n = self.n_seeds * self.n_envs
            base = int(np.random.SeedSequence([self.cfg.training.seed, int(chunks_done)])
                       .generate_state(1)[0])
            raw, _ = self.vec.reset(seed=[base + i for i in range(n)])
            # the checkpoint's pending action was for the old observations: act on the new ones
            self._pending_obs = self.bridge.encode_np(raw).reshape(self.n_seeds, self.n_envs, -1)
            c.ep_ret[:] = 0.0
            c.ep_len[:] = 0
        self.shifts.reset_applied()
        c.started = True

    def close(self) -> None:
        self.vec.close()


def _shifts_empty(cfg: C.ExperimentConfig) -> bool:
    from neurorl.experiment.shiftspec import is_empty

    return is_empty(C.to_dict(cfg)["shifts"])


def build_host(cfg: C.ExperimentConfig, n_seeds: int | None = None) -> HostTrainer:
    """Validate a ``gymnasium:<Id>`` experiment on the host and build its trainer.

    The agent and its chip are the jitted trainer's own (:func:`~neurorl.experiment.train.
    make_chip_agent`, :class:`~neurorl.experiment.train.ChipConstraints`): the network compiled
    for ``hardware.chip`` (fan-in, capacity, membrane precision, device noise), its weights
    projected onto the chip's grid after every ``learn`` / ``update`` (on-chip learning,
    stochastic rounding, or the chip's learning engine) or float shadow weights acting through
    their projection (``off_chip_learning``).

    Raises:
        ConfigError: unknown id (closest registered id), bad ``env.params`` (make kwargs),
            unbounded observations without ``agent.obs_range``, unknown shift attributes, or
            ``hardware.engine`` scales ``"auto"`` (calibrated by a float run of the jitted
            trainer, which a Gymnasium env cannot run: give the scales).
        ChipCapacityError, UnsupportedOnChipError: the agent does not fit the chip, or its rule
            cannot learn on it (as in the jitted trainer).
    """
    from neurorl.envs.bridge import GymBridge
    from neurorl.experiment.runner import train_config, yaml_field
    from neurorl.experiment.train import (
        ChipConstraints,
        auto_engine_scales,
        make_chip_agent,
        validate_chip,
    )

    engine = cfg.hardware.engine
    if auto_engine_scales(engine):
        raise ConfigError(
            "hardware.engine",
            dict(engine),
            "explicit trace_scale / tag_scale for gymnasium: envs (\"auto\" is calibrated by a "
            "float run of the jitted trainer, which cannot step a Gymnasium env; calibrate on "
            "the neurorl JAX twin of the env, or give the scales)",
        )
    S = cfg.training.n_seeds if n_seeds is None else n_seeds
    B = cfg.training.n_envs
    tc = train_config(cfg, S)
    vec = make_vector_env(cfg, S * B)
    bridge = GymBridge(vec)
    spec = agent_spec(cfg, bridge, B)
    try:  # the chip's fields and the agent for it, as make_train builds them
        validate_chip(tc)
        agent = make_chip_agent(tc, spec)
        chip = ChipConstraints(tc, agent)
    except ConfigError as e:
        vec.close()
        raise ConfigError(yaml_field(cfg, e.field), e.value, e.allowed, e.suggestions) from None
    except Exception:
        vec.close()
        raise
    shifts = HostShifts(cfg, vec, bridge, B)
    sj = shifts.jax
    U = agent.update_every if agent.update is not None else 1
    if (cfg.training.steps // B) % U:
        raise ConfigError(
            "training.steps", cfg.training.steps, f"a multiple of n_envs x update_every = {B * U}"
        )
    D = bridge.obs_dim

    # one member's functions (vmapped over members below): obs [B, D], one key per member
    def obs_shift(t, key, obs_states, obs):
        new_states = []
        for i, (o, s) in enumerate(zip(sj.obs, obs_states, strict=True)):
            ks = jax.random.split(jax.random.fold_in(key, i), B)
            obs, s = jax.vmap(lambda k, s_, x, o=o: o.apply(t, k, s_, x))(ks, s, obs)
            new_states.append(s)
        return obs, tuple(new_states)

    def per_env(fn, key, x):
        return jax.vmap(fn)(jax.random.split(key, B), x)

    def act(ast, obs_states, obs, t, key):
        k_obs, k_act, k_ash = jax.random.split(key, 3)
        obs, obs_states = obs_shift(t, k_obs, obs_states, obs)
        w = jax.tree.leaves(agent.weights(ast))  # as the jitted loop: the weights that learn
        wn = jnp.sqrt(sum(jnp.sum(x * x) for x in w))
        view, carry = chip.before_act(ast)  # off chip: act with the projected shadow weights
        action, view = agent.act(view, obs, k_act)
        ast = chip.after_act(view, carry)
        for i, a in enumerate(sj.action):
            action = per_env(
                lambda k, x, a=a: a.apply(t, k, x), jax.random.fold_in(k_ash, i), action
            )
        return action, ast, obs_states, ast.stats.spikes, ast.stats.synops, wn

    def init1(key):
        k_agent, k_obs, k_loop = jax.random.split(key, 3)
        ast, est = chip.init(agent.init(k_agent), k_agent)
        obs_states = tuple(
            jax.vmap(lambda k, o=o: o.init(k, D))(
                jax.random.split(jax.random.fold_in(k_obs, i), B)
            )
            for i, o in enumerate(sj.obs)
        )
        a, _, _, sp, sy, _ = jax.eval_shape(
            act, ast, obs_states, jnp.zeros((B, D), jnp.float32), 0, k_loop
        )
        z = lambda s: jnp.zeros(s.shape, s.dtype)  # noqa: E731 - the action before the first
        return HostState(ast, obs_states, k_loop, z(a), z(sp), z(sy), est)

    def act0(rs, obs, t):
        def one(rs1, obs1):
            key, k = jax.random.split(rs1.key)
            a, ast, ost, sp, sy, _ = act(rs1.agent_state, rs1.obs_states, obs1, t, k)
            return HostState(ast, ost, key, a, sp, sy, rs1.engine)

        return jax.vmap(one)(rs, obs)

    def step(rs, reward, term, trunc, obs, t, do_update):
        """learn(last transition) [-> update] -> act(new obs); t = per-env step of ``obs``."""

        def one(rs1, reward, term, trunc, obs):
            key, k_rew, k_upd, k_act = jax.random.split(rs1.key, 4)
            for i, r in enumerate(sj.reward):
                reward = per_env(
                    lambda k, x, r=r: r.apply(t - 1, k, x), jax.random.fold_in(k_rew, i), reward
                )
            # the chip, as in the jitted loop: learn with the state that acted (off chip: the
            # projected shadow weights), then the change onto the shadow / the grid / the engine
            view, carry = chip.before_act(rs1.agent_state)
            ast = agent.learn(view, reward, term, trunc)
            ast, est = chip.after_learn(ast, carry, rs1.engine, jax.random.fold_in(k_upd, 1))
            if do_update:
                # the jitted loop updates with the observation the agent sees (shifts applied)
                sobs, _ = obs_shift(t, jax.random.split(k_act, 3)[0], rs1.obs_states, obs)
                before = agent.weights(ast)
                ast, est = chip.after_update(agent.update(ast, sobs, k_upd), before, est,
                                             jax.random.fold_in(k_upd, 2))
            a, ast, ost, sp, sy, wn = act(ast, rs1.obs_states, obs, t, k_act)
            m = chip.metrics(est)
            if agent.diagnostics is not None:  # e.g. the context in use (agent.context)
                m = {**m, **agent.diagnostics(ast)}
            return reward, HostState(ast, ost, key, a, sp, sy, est), wn, m

        return jax.vmap(one)(rs, reward, term, trunc, obs)

    return HostTrainer(
        cfg, vec, bridge, agent, shifts, S, B,
        {"init": jax.jit(jax.vmap(init1)), "act0": jax.jit(act0),
         "step": jax.jit(step, static_argnums=6)},
    )


__all__ = [
    "HostState",
    "HostTrainer",
    "build_host",
    "EnvSnapshots",
    "is_host_env",
]
