"""From the ``shifts`` section of an experiment config to a :class:`~neurorl.envs.shifts.ShiftedEnv`.

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
            sched = _schedule(p["schedule"], n_envs)
            param_shifts.append(
                S.make_shift(
                    env, {"field": p["field"], "mode": p.get("mode", "set"), "schedule": sched}
                )
            )
        except KeyError as e:
            raise ConfigError(
                f"shifts.params[{i}].schedule", p.get("schedule"), f"a value for {e}"
            ) from None
        except ConfigError as e:
            raise ConfigError(
                f"shifts.params[{i}].{e.field}", e.value, e.allowed, e.suggestion
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
            raise ConfigError(f"shifts.tasks.{e.field}", e.value, e.allowed, e.suggestion) from None
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
