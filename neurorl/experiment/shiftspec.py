"""From the ``shifts`` section of an experiment config to a
:class:`~neurorl.envs.shifts.ShiftedEnv`.

Config step counts are *total* env steps of one agent (summed over its ``n_envs`` parallel envs),
the x-axis of every log and plot; each parallel env advances its own step counter once per
iteration, so every step count is divided by ``n_envs`` here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from neurorl.envs import shifts as S
from neurorl.errors import ConfigError

_STEP_KEYS = ("steps", "t0", "t1", "period", "every")


def _per_env(x: Any, n_envs: int) -> Any:
    if x is None:
        return None
    if isinstance(x, (list, tuple)):
        return [int(v) // n_envs for v in x]
    return int(x) // n_envs


def _window(spec: Mapping[str, Any], n_envs: int) -> tuple[int, int | None]:
    """The ``[start, end)`` of an obs/action/reward shift, in per-env steps."""
    return _per_env(spec.get("start", 0), n_envs), _per_env(spec.get("end"), n_envs)


def _schedule(spec: Any, n_envs: int) -> Any:
    if not isinstance(spec, Mapping):
        return spec  # a constant
    kind = spec["kind"]
    s = {k: v for k, v in spec.items() if v is not None}
    for k in _STEP_KEYS:
        if k in s:
            s[k] = _per_env(s[k], n_envs)
    if kind == "constant":
        return S.constant(s["value"])
    if kind == "abrupt":
        return S.abrupt(s["values"], s["steps"])
    if kind == "gradual":
        return S.gradual(s["start"], s["end"], s["t0"], s["t1"], s.get("ramp", "linear"))
    if kind == "cyclic":
        return S.cyclic(s["low"], s["high"], s["period"], kind=s.get("shape", "sine"))
    if kind == "random":
        return S.random(s["low"], s["high"], s["every"], s.get("log", False))
    raise ConfigError("shifts.params.schedule.kind", kind, f"one of {sorted(S.SCHEDULES)}")


def _schedule_user(spec: Any, n_envs: int, field: str) -> Any:
    """:func:`_schedule` with errors quoting the value the user wrote (total env steps)."""
    try:
        return _schedule(spec, n_envs)
    except ConfigError as e:
        key = str(e.field).split(".")[-1]
        raw = spec.get(key, e.value) if isinstance(spec, Mapping) else spec
        note = ""
        if isinstance(spec, Mapping) and key in _STEP_KEYS and raw is not None:
            note = f" (total env steps; {n_envs} parallel envs make that {_per_env(raw, n_envs)}"
            note += " per env)"
        raise ConfigError(f"{field}.{key}", raw, f"{e.allowed}{note}", e.suggestions) from None


def _finite(x: Any) -> bool:
    try:
        return bool(np.all(np.isfinite(np.asarray(x, dtype=np.float64))))
    except (TypeError, ValueError):
        return False


def _schedule_extremes(spec: Any) -> list[float]:
    """Every value a schedule can take at its ends (constant, levels, ramp ends, range)."""
    if not isinstance(spec, Mapping):
        return [spec]
    vals: list[Any] = [spec.get(k) for k in ("value", "start", "end", "low", "high")]
    vals += list(spec.get("values") or [])
    return [v for v in vals if v is not None]


def _check_step(
    field: str, value: Any, total_steps: int, n_envs: int, *, start: bool, name: str
) -> None:
    """A step count in total env steps: a whole number >= 0 (``start``: inside the run)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(field, value, "a whole number of total env steps >= 0")
    if start and value >= total_steps:
        raise ConfigError(
            field,
            value,
            f"a step inside the run, < {name} = {total_steps} (a change after the run "
            "ends never happens)",
        )


def check_shifts(
    shifts: Mapping[str, Any] | None,
    env_id: str,
    env_params: Mapping[str, Any] | None = None,
    *,
    total_steps: int,
    n_envs: int,
    prefix: str = "shifts",
    steps_name: str = "training.steps",
    envs_name: str = "training.n_envs",
) -> None:
    """Host-side checks of a ``shifts`` section that the schedules alone cannot make.

    * every step (abrupt ``steps``, gradual ``t0``/``t1``, task boundaries, obs/action/reward
      ``start``) lies inside the run, ``< total_steps``; periods and resampling intervals are at
      least one step per env (``>= n_envs`` total env steps);
    * every value a parameter shift can take (after ``scale``/``add``) passes the env's own
      physical check (no negative pole length or mass);
    * noise and drift stds are finite and >= 0, dead-sensor dims are observation indices,
      windows end after they start, remaps have one entry per action, factors are finite.

    Errors quote the value as written (total env steps), named ``prefix.params[i].schedule.x``.

    Raises:
        ConfigError: the first problem.
    """
    if not shifts:
        return
    from neurorl.envs import make, make_params

    base = dict(env_params or {})
    env, params = make(env_id, **base)
    obs_dim = int(np.prod(env.observation_space(params).shape))
    n_actions = getattr(env.action_space(params), "n", None)
    defaults = {k: getattr(params, k) for k in type(params).__dataclass_fields__}

    def physical(field: str, name: str, value: Any, written: Any = None, how: str = "") -> None:
        try:
            make_params(env_id, **{**base, name: value})
        except ConfigError as e:
            raise ConfigError(
                field,
                value if written is None else written,
                f"values that give a valid {name} ({e.allowed}){how}",
                e.suggestions,
            ) from None

    for i, p in enumerate(shifts.get("params") or []):
        f = f"{prefix}.params[{i}]"
        name, mode, spec = p.get("field"), p.get("mode", "set"), p.get("schedule")
        if name not in defaults:
            from neurorl.errors import closest

            raise ConfigError(f"{f}.field", name, f"a parameter of {env_id}: {sorted(defaults)}",
                              closest(str(name), defaults))
        if isinstance(spec, Mapping):
            for k in ("steps", "t0", "t1"):
                v = spec.get(k)
                for j, x in enumerate(v if isinstance(v, (list, tuple)) else [v]):
                    sub = f"{f}.schedule.{k}" + (f"[{j}]" if isinstance(v, (list, tuple)) else "")
                    _check_step(sub, x, total_steps, n_envs, start=k != "t1", name=steps_name)
            t0, t1 = spec.get("t0"), spec.get("t1")
            if isinstance(t0, int) and isinstance(t1, int) and t1 <= t0:
                raise ConfigError(f"{f}.schedule.t1", t1, f"a step > t0 = {t0}")
            st = spec.get("steps")
            if isinstance(st, (list, tuple)) and any(
                b <= a for a, b in zip(st, st[1:], strict=False)
            ):
                raise ConfigError(f"{f}.schedule.steps", list(st), "strictly increasing steps")
            for k in ("period", "every"):
                v = spec.get(k)
                if v is not None and (not _finite(v) or v < n_envs):
                    raise ConfigError(
                        f"{f}.schedule.{k}",
                        v,
                        f"at least one step per env: >= {envs_name} = {n_envs} total env steps",
                    )
        for v in _schedule_extremes(spec):
            if not _finite(v):
                raise ConfigError(f"{f}.schedule", v, "finite numbers")
            d = float(defaults[name])
            actual = v if mode == "set" else (d * v if mode == "scale" else d + v)
            how = "" if mode == "set" else f"; {mode} {v:g} of {name} = {d:g} gives {actual:g}"
            physical(f"{f}.schedule", name, float(actual), written=v, how=how)

    tasks = shifts.get("tasks")
    if tasks:
        f = f"{prefix}.tasks"
        for j, task in enumerate(tasks.get("tasks") or []):
            for name, v in dict(task).items():
                if name not in defaults:
                    from neurorl.errors import closest

                    raise ConfigError(f"{f}.tasks[{j}].{name}", v,
                                      f"a parameter of {env_id}: {sorted(defaults)}",
                                      closest(str(name), defaults))
                physical(f"{f}.tasks[{j}].{name}", name, v)
        steps = tasks.get("steps_per_task")
        n = len(tasks.get("tasks") or [])
        per = [steps] * n if not isinstance(steps, (list, tuple)) else list(steps)
        if len(per) == n and all(isinstance(x, (int, np.integer)) and x >= 1 for x in per):
            starts = np.cumsum(per)[:-1]
            late = [k + 1 for k, b in enumerate(starts) if b >= total_steps]
            if late:
                raise ConfigError(
                    f"{f}.steps_per_task",
                    steps,
                    f"task boundaries inside the run: task {late[0]} would start at env step "
                    f"{int(starts[late[0] - 1])}, but {steps_name} = {total_steps} (tasks "
                    f"{late} never run)",
                )

    for kind in ("obs", "action", "reward"):
        for i, o in enumerate(shifts.get(kind) or []):
            f = f"{prefix}.{kind}[{i}]"
            start, end = o.get("start", 0), o.get("end")
            _check_step(f"{f}.start", start, total_steps, n_envs, start=True, name=steps_name)
            _check_step(f"{f}.end", end, total_steps, n_envs, start=False, name=steps_name)
            if end is not None and end <= (start or 0):
                raise ConfigError(f"{f}.end", end, f"a step > start = {start}, or null (never)")
            k = o.get("kind")
            for key in ("std", "step_std"):
                v = o.get(key)
                if v is not None and (not _finite(v) or v < 0):
                    raise ConfigError(f"{f}.{key}", v, "a finite standard deviation >= 0")
            if o.get("factor") is not None and not _finite(o["factor"]):
                raise ConfigError(f"{f}.factor", o["factor"], "a finite number")
            if k == "dead_sensors":
                dims = o.get("dims") or []
                bad = [d for d in dims if not (isinstance(d, int) and 0 <= d < obs_dim)]
                if bad or not dims:
                    raise ConfigError(f"{f}.dims", dims,
                                      f"observation indices in [0, {obs_dim}) for {env_id}")
            if kind == "action" and k == "remap" and o.get("mapping") is not None:
                m = list(o["mapping"])
                if n_actions is None:
                    raise ConfigError(f"{f}.kind", k, f"scale or invert ({env_id} has "
                                      "continuous actions)")
                if len(m) != n_actions or any(
                    not isinstance(a, int) or not 0 <= a < n_actions for a in m
                ):
                    raise ConfigError(f"{f}.mapping", m,
                                      f"one action in [0, {n_actions}) for each of the "
                                      f"{n_actions} actions of {env_id}, e.g. "
                                      f"{list(range(n_actions))[::-1]}")


def is_empty(shifts: Mapping[str, Any] | None) -> bool:
    if not shifts:
        return True
    return not any(shifts.get(k) for k in ("params", "tasks", "obs", "action", "reward"))


def build_shifted_env(env: Any, shifts: Mapping[str, Any], n_envs: int, obs_dim: int) -> Any:
    """Build a validated ShiftedEnv from a ``shifts`` config dict (host side).

    Raises:
        ConfigError: unknown field (closest name), missing schedule values, bad dims.
    """
    param_shifts = []
    for i, p in enumerate(shifts.get("params") or []):
        try:
            sched = _schedule_user(p["schedule"], n_envs, f"shifts.params[{i}].schedule")
            param_shifts.append(
                S.make_shift(
                    env, {"field": p["field"], "mode": p.get("mode", "set"), "schedule": sched}
                )
            )
        except KeyError as e:
            sched = p.get("schedule")
            if isinstance(sched, Mapping):  # what the user wrote, not the schema's None defaults
                sched = {k: v for k, v in sched.items() if v is not None}
            raise ConfigError(
                f"shifts.params[{i}].schedule", sched, f"a value for {e} (kind {sched['kind']!r})"
                if isinstance(sched, Mapping) and "kind" in sched else f"a value for {e}"
            ) from None
        except ConfigError as e:
            if str(e.field).startswith("shifts."):
                raise
            raise ConfigError(
                f"shifts.params[{i}].{e.field}", e.value, e.allowed, e.suggestions
            ) from None
    tasks = shifts.get("tasks")
    if tasks:
        steps = tasks["steps_per_task"]
        per_env = _per_env(steps, n_envs)
        try:
            param_shifts.append(
                S.task_sequence(env, tasks["tasks"], per_env, tasks.get("cycle", False))
            )
        except ConfigError as e:
            raise ConfigError(f"shifts.tasks.{e.field}", e.value, e.allowed,
                              e.suggestions) from None
    param = (
        None
        if not param_shifts
        else (param_shifts[0] if len(param_shifts) == 1 else S.compose(*param_shifts))
    )

    obs = []
    for i, o in enumerate(shifts.get("obs") or []):
        start, end = _window(o, n_envs)
        kind = o["kind"]
        need = {"gaussian_noise": "std", "sensor_drift": "step_std", "dead_sensors": "dims"}.get(
            kind
        )
        if need and o.get(need) is None:
            raise ConfigError(f"shifts.obs[{i}].{need}", None, f"a value (required for {kind})")
        if kind == "gaussian_noise":
            obs.append(S.gaussian_noise(o["std"], start, end))
        elif kind == "sensor_drift":
            obs.append(S.sensor_drift(o["step_std"], start, end))
        elif kind == "dead_sensors":
            obs.append(S.dead_sensors(o["dims"], obs_dim, start, end))
        elif kind == "permute":
            import jax

            obs.append(
                S.permute_obs(
                    obs_dim=obs_dim, key=jax.random.PRNGKey(o.get("seed", 0)), start=start, end=end
                )
            )
    action = []
    for i, a in enumerate(shifts.get("action") or []):
        start, end = _window(a, n_envs)
        if a["kind"] == "remap":
            if a.get("mapping") is None:
                raise ConfigError(
                    f"shifts.action[{i}].mapping", None, "a list of actions, e.g. [1, 0]"
                )
            action.append(S.remap_actions(a["mapping"], start, end))
        elif a["kind"] == "scale":
            action.append(S.scale_actions(a.get("factor", 1.0), start, end))
        else:
            action.append(S.invert_actions(start, end))
    reward = []
    for r in shifts.get("reward") or []:
        start, end = _window(r, n_envs)
        if r["kind"] == "scale":
            reward.append(S.scale_reward(r.get("factor", 1.0), start, end))
        else:
            reward.append(S.flip_reward(start, end))
    return S.ShiftedEnv(env, param=param, obs=obs, action=action, reward=reward)


def boundaries(shifts: Mapping[str, Any] | None, total_steps: int) -> list[int]:
    """Total env steps at which something changes (for plot markers and adaptation time)."""
    if not shifts:
        return []
    out: set[int] = set()
    for p in shifts.get("params") or []:
        s = p.get("schedule")
        if isinstance(s, Mapping):
            if s.get("kind") == "abrupt":
                out.update(int(v) for v in s.get("steps") or [])
            elif s.get("kind") == "gradual":
                out.update(int(v) for v in (s.get("t0"), s.get("t1")) if v is not None)
    tasks = shifts.get("tasks")
    if tasks:
        steps = tasks["steps_per_task"]
        n = len(tasks["tasks"])
        per = [int(steps)] * n if not isinstance(steps, (list, tuple)) else [int(x) for x in steps]
        ends = np.cumsum(per)
        if tasks.get("cycle"):
            k = 0
            while True:
                for e in ends:
                    b = int(k * ends[-1] + e)
                    if b >= total_steps:
                        break
                    out.add(b)
                else:
                    k += 1
                    continue
                break
        else:
            out.update(int(e) for e in ends[:-1])
    for kind in ("obs", "action", "reward"):
        for o in shifts.get(kind) or []:
            if o.get("start"):
                out.add(int(o["start"]))
            if o.get("end") is not None:
                out.add(int(o["end"]))
    return sorted(b for b in out if 0 < b < total_steps)


def _frozen(x: Any) -> Any:
    """A hashable copy of a config value (lists -> tuples, dicts -> sorted item tuples)."""
    if isinstance(x, Mapping):
        return tuple(sorted((k, _frozen(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return tuple(_frozen(v) for v in x)
    return x


def _schedule_phase(spec: Any, t: int, n_envs: int) -> Any:
    """What a param schedule contributes to the task identity at per-env step ``t``.

    Piecewise-constant parts count by their value (``abrupt``; ``gradual`` before ``t0`` and
    after ``t1``), a ``gradual`` ramp as a regime of its own; a number, ``constant``, ``cyclic``
    and ``random`` are the same process over the whole run, so they tell no task apart (``None``).
    """
    if not isinstance(spec, Mapping):
        return None
    kind = spec.get("kind")
    if kind == "abrupt":
        steps = _per_env(list(spec.get("steps") or []), n_envs)
        return float((spec.get("values") or [None])[sum(t >= s for s in steps)])
    if kind == "gradual":
        t0, t1 = _per_env(spec["t0"], n_envs), _per_env(spec["t1"], n_envs)
        if t <= t0:
            return float(spec["start"])
        if t >= t1:
            return float(spec["end"])
        return ("ramp", t0, t1)
    return None


def task_identity(
    shifts: Mapping[str, Any] | None, t: int, n_envs: int, task: int | None = None
) -> tuple:
    """Everything that defines the task in effect at per-env step ``t``, as a hashable key.

    Two steps have equal keys exactly when the agent faces the same environment there: the same
    task-list entry parameters (an entry equal to an earlier one, e.g. ``normal again``, counts
    as that entry), the same piecewise-constant param-shift values (see
    :func:`_schedule_phase`) and the same observation / action / reward shifts active (compared
    by their spec without ``start`` / ``end``, so a later window of the same shift is a return to
    it). Mirrors :func:`build_shifted_env`: windows ``[start, end)`` in total env steps are active
    for ``start // n_envs <= t < end // n_envs``.

    Args:
        shifts: the config's ``shifts`` section as a dict (``None``: no shifts).
        t: per-env step of the transition (an episode's last one: ``env_step // n_envs - 1``).
        n_envs: parallel envs per agent (config steps are totals over them).
        task: the task-list index the trainer logged at ``t`` (``task_id``; ``None`` or
            negative: none).

    Returns:
        ``(task entry, param-shift phases, active windows)``, hashable.
    """
    shifts = shifts or {}
    entry = None
    tasks = (shifts.get("tasks") or {}).get("tasks") or []
    if task is not None and 0 <= task < len(tasks):
        entry = next(j for j in range(task + 1) if tasks[j] == tasks[task])
    params = tuple(
        (p.get("field"), p.get("mode", "set"), _schedule_phase(p.get("schedule"), t, n_envs))
        for p in shifts.get("params") or []
    )
    active = []
    for kind in ("obs", "action", "reward"):
        for w in shifts.get(kind) or []:
            start, end = _window(w, n_envs)
            if start <= t and (end is None or t < end):
                spec = {k: v for k, v in w.items() if k not in ("start", "end") and v is not None}
                active.append((kind, _frozen(spec)))
    return (entry, params, tuple(active))
