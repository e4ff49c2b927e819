"""Distribution shifts as pure functions of the global step, evaluated inside the scan.

A **parameter shift** is a pure function ``shift(t, key, base_params) -> params`` (DESIGN.md
section 3): ``t`` is the global env step (a traced int32), ``key`` a PRNG key fixed for the run
(so a random shift is reproducible and constant within its interval), ``base_params`` the env's
``EnvParams``. Every shift, schedule and task sequence here is a ``flax.struct`` dataclass whose
numbers are traced leaves, so

* a ``lax.scan`` over a whole schedule compiles once, and
* shift *conditions* with the same structure can be stacked and vmapped (one compile for any
  number of conditions), e.g. 8 values of the abrupt pole length in one jitted call.

Names are checked on the host, before any trace: ``param_shift("lenght", ...).bind(env)`` or
``make_shift(env, spec)`` raise a :class:`~neurorl.errors.ConfigError` naming the closest field.

Schedules (value of a scalar at step ``t``), after NS-Gym's scheduler/update split (a schedule
decides both *when* and *how much*; Keil et al. 2025, ns_gym) and CARL's context ranges
(Benjamins et al. 2023):

==========  ===============================================================================
constant    ``v``
abrupt      piecewise constant: ``values[k]`` for ``steps[k-1] <= t < steps[k]``
gradual     ramp from ``start`` to ``end`` over ``[t0, t1]``; linear or cosine
            (``start + (end - start) (1 - cos(pi u)) / 2``, ``u = (t - t0) / (t1 - t0)``)
cyclic      period ``P``: sine ``low + (high - low) (1 - cos(2 pi x)) / 2``, square or triangle,
            ``x = ((t + phase) / P) mod 1``
random      ``U(low, high)`` (or log-uniform) redrawn every ``every`` steps from
            ``fold_in(key, t // every)`` -- Dohare et al. (2024)'s Slippery Ant resamples
            friction every ``change_time`` steps in the same way
==========  ===============================================================================

A param shift applies a schedule to one field with mode ``"set"`` (field = value), ``"scale"``
(field = base * value) or ``"add"`` (field = base + value); :func:`compose` chains several, in
order (later shifts see earlier results).

**Observation shifts** carry a state: ``init(key, obs_dim) -> state`` and
``apply(t, key, state, obs) -> (obs, state)``: Gaussian sensor noise, sensor drift (a random-walk
bias), dead sensors, permuted dimensions. **Action shifts** (``apply(t, action)``): remapped
discrete actions, scaled / inverted continuous actions. **Reward shifts** (``apply(t, reward)``):
scaled or sign-flipped reward. Each takes its magnitude / on-off gate from a schedule, so "active
from step t0" is ``window(t0)`` and anything else is one of the schedule primitives.

:class:`TaskSequence` is a param shift over a list of parameter overrides with a number of steps
per task (optionally cycling), exposing ``task_id(t)`` for continual-learning metrics.
:class:`ShiftedEnv` combines an env with all of these behind the same reset/step API, keeping the
global step counter in its state.

References:
    Keil et al. (2025). NS-Gym: Open-source simulation environments and benchmarks for
    non-stationary Markov decision processes. NeurIPS Datasets & Benchmarks.
    Benjamins et al. (2023). Contextualize me -- the case for context in reinforcement learning.
    TMLR (CARL).
    Dohare et al. (2024). Loss of plasticity in deep continual learning. Nature 632, 768-774.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from neurorl.envs.base import Array, Environment
from neurorl.errors import ConfigError, ShapeError, closest, lookup

_NEVER = np.iinfo(np.int32).max  # "no end" for windows (steps)


def _f32(x: Any) -> Array:
    return jnp.asarray(x, dtype=jnp.float32)


def _i32(x: Any) -> Array:
    return jnp.asarray(x, dtype=jnp.int32)


def _check_finite(field: str, value: Any) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(field, value, "a finite number or list of numbers") from None
    if not np.all(np.isfinite(a)):
        raise ConfigError(field, value, "finite numbers")
    return a


def _check_steps(field: str, value: Any) -> np.ndarray:
    a = _check_finite(field, value)
    if np.any(a < 0) or np.any(a != np.round(a)) or np.any(a > _NEVER):
        raise ConfigError(field, value, "integer env steps >= 0")
    return a.astype(np.int64)


# ----------------------------------------------------------------------------------------------
# Schedules: (t, key) -> scalar float32, pure and traceable
# ----------------------------------------------------------------------------------------------


@struct.dataclass
class Constant:
    """``value`` at every step."""

    value: Array

    def __call__(self, t: Array, key: Array) -> Array:
        del t, key
        return self.value


@struct.dataclass
class Abrupt:
    """Piecewise constant: ``values[k]`` where ``k = #{i : t >= steps[i]}`` (``steps`` sorted)."""

    values: Array  # [K + 1]
    steps: Array  # [K] int32

    def __call__(self, t: Array, key: Array) -> Array:
        del key
        k = jnp.sum(jnp.asarray(t, jnp.int32) >= self.steps)
        return self.values[k]


@struct.dataclass
class Gradual:
    """Ramp from ``start`` (t <= t0) to ``end`` (t >= t1); ``kind`` "linear" or "cosine"."""

    start: Array
    end: Array
    t0: Array
    t1: Array
    kind: str = struct.field(pytree_node=False, default="linear")

    def __call__(self, t: Array, key: Array) -> Array:
        del key
        u = (_f32(t) - _f32(self.t0)) / _f32(self.t1 - self.t0)
        u = jnp.clip(u, 0.0, 1.0)
        if self.kind == "cosine":
            u = 0.5 * (1.0 - jnp.cos(jnp.pi * u))
        return self.start + (self.end - self.start) * u


@struct.dataclass
class Cyclic:
    """Periodic between ``low`` and ``high`` with period ``period`` steps (starts at ``low``).

    ``kind``: "sine" (raised cosine), "square" (low for the first half period, then high) or
    "triangle" (linear up then down).
    """

    low: Array
    high: Array
    period: Array
    phase: Array
    kind: str = struct.field(pytree_node=False, default="sine")

    def __call__(self, t: Array, key: Array) -> Array:
        del key
        x = jnp.mod((_f32(t) + self.phase) / self.period, 1.0)
        if self.kind == "sine":
            u = 0.5 * (1.0 - jnp.cos(2.0 * jnp.pi * x))
        elif self.kind == "square":
            u = (x >= 0.5).astype(jnp.float32)
        else:  # triangle
            u = 1.0 - jnp.abs(2.0 * x - 1.0)
        return self.low + (self.high - self.low) * u


@struct.dataclass
class Random:
    """Uniform (or log-uniform) in ``[low, high]``, redrawn every ``every`` steps.

    The draw for interval ``i = t // every`` uses ``fold_in(key, i)``: the same key gives the
    same value at every step of an interval and the same sequence on every run.
    """

    low: Array
    high: Array
    every: Array
    log: bool = struct.field(pytree_node=False, default=False)

    def __call__(self, t: Array, key: Array) -> Array:
        i = jnp.asarray(t, jnp.int32) // self.every
        u = jax.random.uniform(jax.random.fold_in(key, i), (), jnp.float32)
        if self.log:
            return jnp.exp(jnp.log(self.low) + (jnp.log(self.high) - jnp.log(self.low)) * u)
        return self.low + (self.high - self.low) * u


Schedule = Constant | Abrupt | Gradual | Cyclic | Random


def constant(value: float) -> Constant:
    """Schedule with the same ``value`` at every step."""
    return Constant(_f32(_check_finite("schedule.value", value)))


def abrupt(values: Sequence[float], steps: Sequence[int]) -> Abrupt:
    """Piecewise-constant schedule: ``values[0]`` before ``steps[0]``, then ``values[k]``
    from ``steps[k-1]`` on.

    Args:
        values: K + 1 values.
        steps: K strictly increasing global env steps at which the value changes.

    Raises:
        ConfigError: lengths do not match, steps not increasing or not integers >= 0.
    """
    v = _check_finite("schedule.values", values)
    s = _check_steps("schedule.steps", steps)
    if v.ndim != 1 or s.ndim != 1 or len(v) != len(s) + 1:
        raise ConfigError(
            "schedule.values", list(np.ravel(v)), f"a list of len(steps) + 1 = {s.size + 1} values"
        )
    if np.any(np.diff(s) <= 0):
        raise ConfigError("schedule.steps", list(s), "strictly increasing steps")
    return Abrupt(_f32(v), _i32(s))


def window(t0: int = 0, t1: int | None = None, value: float = 1.0, off: float = 0.0) -> Abrupt:
    """On/off gate: ``value`` for ``t0 <= t < t1`` (``t1=None``: forever), ``off`` otherwise."""
    if t1 is None:
        return abrupt([off, value], [t0])
    return abrupt([off, value, off], [t0, t1])


def gradual(start: float, end: float, t0: int, t1: int, kind: str = "linear") -> Gradual:
    """Ramp from ``start`` to ``end`` between steps ``t0`` and ``t1`` (``kind``: linear, cosine)."""
    a, b = _check_steps("schedule.t0", t0), _check_steps("schedule.t1", t1)
    if b <= a:
        raise ConfigError("schedule.t1", t1, f"a step > t0 = {t0}")
    lookup({"linear": 0, "cosine": 0}, kind, "ramp kind", field="schedule.kind")
    return Gradual(
        _f32(_check_finite("schedule.start", start)),
        _f32(_check_finite("schedule.end", end)),
        _i32(a),
        _i32(b),
        kind.lower(),
    )


def cyclic(
    low: float, high: float, period: float, phase: float = 0.0, kind: str = "sine"
) -> Cyclic:
    """Periodic schedule between ``low`` and ``high`` (``kind``: sine, square, triangle)."""
    p = _check_finite("schedule.period", period)
    if p <= 0:
        raise ConfigError("schedule.period", period, "a period > 0 (steps)")
    lookup({"sine": 0, "square": 0, "triangle": 0}, kind, "cycle kind", field="schedule.kind")
    return Cyclic(
        _f32(_check_finite("schedule.low", low)),
        _f32(_check_finite("schedule.high", high)),
        _f32(p),
        _f32(_check_finite("schedule.phase", phase)),
        kind.lower(),
    )


def random(low: float, high: float, every: int, log: bool = False) -> Random:
    """Resample uniformly from ``[low, high]`` (log-uniform if ``log``) every ``every`` steps."""
    lo, hi = _check_finite("schedule.low", low), _check_finite("schedule.high", high)
    if hi < lo:
        raise ConfigError("schedule.high", high, f"a value >= low = {low}")
    if log and lo <= 0:
        raise ConfigError("schedule.low", low, "a value > 0 for a log-uniform range")
    e = _check_steps("schedule.every", every)
    if e < 1:
        raise ConfigError("schedule.every", every, "an interval >= 1 step")
    return Random(_f32(lo), _f32(hi), _i32(e), bool(log))


SCHEDULES: dict[str, Callable[..., Any]] = {
    "constant": constant,
    "abrupt": abrupt,
    "window": window,
    "gradual": gradual,
    "cyclic": cyclic,
    "random": random,
}


def as_schedule(x: Any) -> Any:
    """A schedule from a schedule (unchanged), a number (constant) or a ``{"kind": ...}`` dict."""
    if isinstance(x, Schedule):
        return x
    if isinstance(x, Mapping):
        spec = dict(x)
        kind = spec.pop("kind", None)
        if kind is None:
            raise ConfigError("schedule.kind", None, f"one of {sorted(SCHEDULES)}")
        factory = lookup(SCHEDULES, kind, "schedule", field="schedule.kind")
        try:
            return factory(**spec)
        except TypeError as e:
            raise ConfigError(
                f"schedule ({kind})", spec, f"the arguments of {kind}(): {e}"
            ) from None
    return constant(x)


# ----------------------------------------------------------------------------------------------
# Parameter shifts: (t, key, base_params) -> params
# ----------------------------------------------------------------------------------------------

_MODES = {"set": "set", "scale": "scale", "add": "add"}


def _traced_fields(params_cls: type) -> tuple[str, ...]:
    return tuple(
        f.name for f in dataclasses.fields(params_cls) if f.metadata.get("pytree_node", True)
    )


def _params_cls_of(target: Any) -> type:
    if isinstance(target, Environment) or (
        isinstance(target, type) and issubclass(target, Environment)
    ):
        return target.params_cls
    if isinstance(target, type):
        return target
    return type(target)  # an EnvParams instance


def _check_field(params_cls: type, name: str) -> None:
    """Host-side: ``name`` must be a traced numeric field of ``params_cls``."""
    fields = _traced_fields(params_cls)
    if name not in fields:
        env_id = getattr(params_cls, "env_id", "") or params_cls.__name__
        allowed = f"a numeric parameter field of {env_id}: {sorted(fields)}"
        if name in {f.name for f in dataclasses.fields(params_cls)}:
            allowed = f"a traced numeric field (not the static choice {name!r}); {allowed}"
        raise ConfigError("shift.field", name, allowed, closest(name, fields))


@struct.dataclass
class ParamShift:
    """Drive one EnvParams field by a schedule: ``set`` / ``scale`` / ``add`` the base value.

    Build with :func:`param_shift`; check the field against an env with :meth:`bind`.
    """

    field: str = struct.field(pytree_node=False)
    schedule: Any
    mode: str = struct.field(pytree_node=False, default="set")

    def bind(self, env: Any) -> ParamShift:
        """Check on the host that ``env`` (Environment, params class or params) has the field.

        Raises:
            ConfigError: naming the closest field for a typo.
        """
        _check_field(_params_cls_of(env), self.field)
        return self

    def __call__(self, t: Array, key: Array, base: Any) -> Any:
        # the params class is static under jit, so this check runs at trace time on the host
        _check_field(type(base), self.field)
        old = getattr(base, self.field)
        v = self.schedule(t, key)
        if self.mode == "scale":
            v = old * v
        elif self.mode == "add":
            v = old + v
        old_arr = jnp.asarray(old)
        if jnp.issubdtype(old_arr.dtype, jnp.integer):
            v = jnp.round(v)
        return base.replace(**{self.field: jnp.asarray(v, old_arr.dtype)})


def param_shift(field: str, schedule: Any, mode: str = "set") -> ParamShift:
    """A shift of EnvParams ``field`` driven by ``schedule`` (a schedule, a number or a spec dict).

    Args:
        field: an EnvParams field, e.g. ``"length"``.
        schedule: e.g. ``gradual(0.5, 1.0, 0, 10_000)`` or ``{"kind": "random", ...}``.
        mode: ``"set"`` (field = value), ``"scale"`` (field = base * value), ``"add"``.
    """
    mode = lookup(_MODES, mode, "shift mode", field="shift.mode")
    if not isinstance(field, str):
        raise ConfigError("shift.field", field, "a parameter field name (str)")
    return ParamShift(field, as_schedule(schedule), mode)


@struct.dataclass
class Compose:
    """Apply several param shifts in order; shift ``i`` gets ``fold_in(key, i)``."""

    shifts: tuple

    def bind(self, env: Any) -> Compose:
        """Check every member against ``env`` (host side)."""
        for s in self.shifts:
            s.bind(env)
        return self

    def __call__(self, t: Array, key: Array, base: Any) -> Any:
        p = base
        for i, s in enumerate(self.shifts):
            p = s(t, jax.random.fold_in(key, i), p)
        return p

    def task_id(self, t: Array) -> Array:
        """``task_id`` of the first :class:`TaskSequence` member (0 if none)."""
        for s in self.shifts:
            if hasattr(s, "task_id"):
                return s.task_id(t)
        return jnp.zeros((), jnp.int32)


def compose(*shifts: Any) -> Compose:
    """Chain param shifts: ``compose(a, b)(t, k, p)`` applies ``a`` first, then ``b``."""
    return Compose(tuple(shifts))


@struct.dataclass
class NoShift:
    """The identity param shift."""

    def bind(self, env: Any) -> NoShift:
        del env
        return self

    def __call__(self, t: Array, key: Array, base: Any) -> Any:
        del t, key
        return base


def make_shift(env: Any, spec: Any) -> Any:
    """Build and validate a param shift from a config spec (host side, before tracing).

    ``spec``: a dict ``{"field": "length", "mode": "set", "schedule": {"kind": "abrupt",
    "values": [0.5, 1.0], "steps": [1000]}}`` (``schedule`` may also be a number), a list of such
    dicts (composed in order), an already built shift, or ``None`` (no shift).

    Raises:
        ConfigError: unknown field (closest name), unknown schedule kind or mode, bad values.
    """
    if spec is None:
        return NoShift()
    if isinstance(spec, (ParamShift, Compose, TaskSequence, NoShift)):
        return spec.bind(env)
    if isinstance(spec, Mapping):
        spec = dict(spec)
        unknown = set(spec) - {"field", "schedule", "mode"}
        for k in unknown:
            raise ConfigError(
                "shift", k, "keys field, schedule, mode", closest(k, ["field", "schedule", "mode"])
            )
        if "field" not in spec or "schedule" not in spec:
            raise ConfigError("shift", spec, "a dict with 'field' and 'schedule'")
        _check_field(_params_cls_of(env), spec["field"])
        return param_shift(spec["field"], spec["schedule"], spec.get("mode", "set")).bind(env)
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        return compose(*[make_shift(env, s) for s in spec])
    raise ConfigError("shift", spec, "a shift, a dict spec, a list of them, or None")


# ----------------------------------------------------------------------------------------------
# Task sequences (continual learning)
# ----------------------------------------------------------------------------------------------


@struct.dataclass
class TaskSequence:
    """A sequence of parameter sets, each held for a number of steps (optionally cycling).

    ``values`` maps each overridden field to an array ``[n_tasks]``; fields a task does not name
    keep the base value given at construction time (so every task is a complete, validated
    parameter set). ``ends[k]`` is the first step after task ``k``.
    """

    values: dict
    ends: Array  # [n_tasks] int32, cumulative
    cycle: bool = struct.field(pytree_node=False, default=False)

    @property
    def n_tasks(self) -> int:
        return int(self.ends.shape[0])

    def bind(self, env: Any) -> TaskSequence:
        for name in self.values:
            _check_field(_params_cls_of(env), name)
        return self

    def task_id(self, t: Array) -> Array:
        """Index of the task active at global step ``t`` (int32).

        The last task persists after the sequence ends unless ``cycle``.
        """
        t = jnp.asarray(t, jnp.int32)
        if self.cycle:
            t = jnp.mod(t, self.ends[-1])
        k = jnp.sum(t >= self.ends).astype(jnp.int32)
        return jnp.minimum(k, self.ends.shape[0] - 1)

    def __call__(self, t: Array, key: Array, base: Any) -> Any:
        del key
        k = self.task_id(t)
        new = {}
        for name, vals in self.values.items():
            new[name] = vals[k].astype(jnp.asarray(getattr(base, name)).dtype)
        return base.replace(**new)


def task_sequence(
    env: Any,
    tasks: Sequence[Mapping[str, Any]],
    steps_per_task: int | Sequence[int],
    cycle: bool = False,
    base: Any = None,
) -> TaskSequence:
    """Build a validated task sequence, e.g. CartPole pole length 0.5 -> 1.0 -> 0.25 -> 0.5.

    Args:
        env: the environment (or its params class).
        tasks: one dict of parameter overrides per task, e.g.
            ``[{"length": 0.5}, {"length": 1.0}]``.
        steps_per_task: steps per task (one int for all, or one per task).
        cycle: after the last task, start again from the first (otherwise the last persists).
        base: params that unnamed fields fall back to (default: the env defaults).

    Returns:
        A :class:`TaskSequence` param shift with ``task_id(t)``.

    Raises:
        ConfigError: unknown field (closest name), invalid values (e.g. negative length),
            wrong number of step counts.
    """
    params_cls = _params_cls_of(env)
    if len(tasks) == 0:
        raise ConfigError("tasks", tasks, "at least one task")
    names: list[str] = []
    for task in tasks:
        for name in task:
            _check_field(params_cls, name)
            if name not in names:
                names.append(name)
    if base is None:
        base = params_cls.create()
    base_vals = {n: getattr(base, n) for n in names}
    full = []
    for i, task in enumerate(tasks):
        # every task is validated as a complete parameter set (negative lengths etc. caught here)
        try:
            full.append(params_cls.create(**{**base_vals, **dict(task)}))
        except ConfigError as e:
            raise ConfigError(f"tasks[{i}].{e.field}", e.value, e.allowed, e.suggestions) from None
    values = {n: jnp.stack([jnp.asarray(getattr(p, n)) for p in full]) for n in names}
    if isinstance(steps_per_task, (int, np.integer)):
        steps = [int(steps_per_task)] * len(tasks)
    else:
        steps = list(steps_per_task)
    if len(steps) != len(tasks):
        raise ConfigError("steps_per_task", steps_per_task, f"one int or {len(tasks)} ints")
    s = _check_steps("steps_per_task", steps)
    if np.any(s < 1):
        raise ConfigError("steps_per_task", steps_per_task, "steps >= 1 per task")
    ends = np.cumsum(s)
    if ends[-1] > _NEVER:
        raise ConfigError("steps_per_task", steps_per_task, "a total below 2**31 steps")
    return TaskSequence(values, _i32(ends), bool(cycle))


# ----------------------------------------------------------------------------------------------
# Observation, action and reward shifts
# ----------------------------------------------------------------------------------------------


@struct.dataclass
class GaussianNoise:
    """Sensor noise ``obs + std(t) * N(0, I)``; stateless (``state`` is an empty tuple)."""

    std: Any  # schedule

    def init(self, key: Array, obs_dim: int) -> tuple:
        del key, obs_dim
        return ()

    def apply(self, t: Array, key: Array, state: tuple, obs: Array) -> tuple[Array, tuple]:
        std = self.std(t, key)
        return obs + std * jax.random.normal(key, obs.shape, obs.dtype), state


@struct.dataclass
class SensorDrift:
    """Slow sensor drift: a random-walk bias ``b_{t+1} = b_t + step_std(t) N(0, I)``; ``obs + b``.

    The bias is the state (zero at init); while ``step_std(t) == 0`` it is frozen.
    """

    step_std: Any  # schedule

    def init(self, key: Array, obs_dim: int) -> Array:
        del key
        return jnp.zeros((obs_dim,), jnp.float32)

    def apply(self, t: Array, key: Array, state: Array, obs: Array) -> tuple[Array, Array]:
        bias = state + self.step_std(t, key) * jax.random.normal(key, state.shape, jnp.float32)
        return obs + bias, bias


@struct.dataclass
class DeadSensors:
    """Dimensions with ``mask == 1`` read 0 while ``active(t) > 0``."""

    mask: Array  # [obs_dim] float32 in {0, 1}
    active: Any  # schedule

    def init(self, key: Array, obs_dim: int) -> tuple:
        del key
        if self.mask.shape != (obs_dim,):
            raise ShapeError("dead_sensors mask", (obs_dim,), self.mask.shape)
        return ()

    def apply(self, t: Array, key: Array, state: tuple, obs: Array) -> tuple[Array, tuple]:
        on = (self.active(t, key) > 0).astype(obs.dtype)
        return obs * (1.0 - on * self.mask), state


@struct.dataclass
class PermuteObs:
    """``obs[perm]`` while ``active(t) > 0``."""

    perm: Array  # [obs_dim] int32
    active: Any

    def init(self, key: Array, obs_dim: int) -> tuple:
        del key
        if self.perm.shape != (obs_dim,):
            raise ShapeError("permutation", (obs_dim,), self.perm.shape)
        return ()

    def apply(self, t: Array, key: Array, state: tuple, obs: Array) -> tuple[Array, tuple]:
        return jnp.where(self.active(t, key) > 0, obs[self.perm], obs), state


def _gate(start: int, end: int | None, schedule: Any) -> Any:
    return window(start, end) if schedule is None else as_schedule(schedule)


def _magnitude(value: Any, start: int, end: int | None) -> Any:
    if isinstance(value, (Schedule, Mapping)):
        return as_schedule(value)
    v = float(_check_finite("shift.value", value))
    return window(start, end, value=v)


def gaussian_noise(std: Any, start: int = 0, end: int | None = None) -> GaussianNoise:
    """Gaussian sensor noise of std ``std`` (obs units) for ``start <= t < end``, or a schedule."""
    s = _magnitude(std, start, end)
    return GaussianNoise(s)


def sensor_drift(step_std: Any, start: int = 0, end: int | None = None) -> SensorDrift:
    """Random-walk sensor bias with per-step std ``step_std`` (obs units per step)."""
    return SensorDrift(_magnitude(step_std, start, end))


def dead_sensors(
    dims: Sequence[int], obs_dim: int, start: int = 0, end: int | None = None, schedule: Any = None
) -> DeadSensors:
    """Zero the observation dimensions ``dims`` (of ``obs_dim``) from ``start`` (to ``end``)."""
    mask = np.zeros(obs_dim, np.float32)
    for d in dims:
        if not (isinstance(d, (int, np.integer)) and 0 <= d < obs_dim):
            raise ConfigError("dead_sensors.dims", d, f"integers in [0, {obs_dim})")
        mask[d] = 1.0
    return DeadSensors(jnp.asarray(mask), _gate(start, end, schedule))


def permute_obs(
    perm: Sequence[int] | None = None,
    obs_dim: int | None = None,
    key: Array | None = None,
    start: int = 0,
    end: int | None = None,
    schedule: Any = None,
) -> PermuteObs:
    """Permute observation dimensions: an explicit ``perm``, or a random one from ``key``."""
    if perm is None:
        if key is None or obs_dim is None:
            raise ConfigError("permute_obs", perm, "an explicit perm, or obs_dim and key")
        perm = np.asarray(jax.random.permutation(key, obs_dim))
    p = np.asarray(perm)
    if p.ndim != 1 or sorted(p.tolist()) != list(range(p.size)):
        raise ConfigError("permute_obs.perm", perm, "a permutation of 0..obs_dim-1")
    if obs_dim is not None and p.size != obs_dim:
        raise ShapeError("permutation", (obs_dim,), p.shape)
    return PermuteObs(_i32(p), _gate(start, end, schedule))


@struct.dataclass
class RemapActions:
    """Discrete actions ``a -> mapping[a]`` while ``active(t) > 0``."""

    mapping: Array  # [n_actions] int32
    active: Any

    def apply(self, t: Array, key: Array, action: Array) -> Array:
        a = jnp.asarray(action, jnp.int32)
        return jnp.where(self.active(t, key) > 0, self.mapping[a], a)


@struct.dataclass
class ScaleActions:
    """Continuous actions ``a * scale(t)`` (``scale = -1``: inverted)."""

    scale: Any

    def apply(self, t: Array, key: Array, action: Array) -> Array:
        return jnp.asarray(action, jnp.float32) * self.scale(t, key)


def remap_actions(
    mapping: Sequence[int], start: int = 0, end: int | None = None, schedule: Any = None
) -> RemapActions:
    """Remap discrete actions (e.g. ``[1, 0]`` swaps left/right on CartPole)."""
    m = np.asarray(mapping)
    if m.ndim != 1 or m.size == 0 or np.any(m < 0) or np.any(m >= m.size):
        raise ConfigError("remap_actions.mapping", mapping, "a list of actions in [0, n_actions)")
    return RemapActions(_i32(m), _gate(start, end, schedule))


def scale_actions(scale: Any, start: int = 0, end: int | None = None) -> ScaleActions:
    """Scale continuous actions by ``scale`` for ``start <= t < end`` (1 outside), or a schedule."""
    if isinstance(scale, (Schedule, Mapping)):
        return ScaleActions(as_schedule(scale))
    return ScaleActions(window(start, end, value=float(_check_finite("scale", scale)), off=1.0))


def invert_actions(start: int = 0, end: int | None = None) -> ScaleActions:
    """Negate continuous actions for ``start <= t < end``."""
    return scale_actions(-1.0, start, end)


@struct.dataclass
class ScaleReward:
    """Reward ``r * scale(t)`` (``scale = -1``: sign flip)."""

    scale: Any

    def apply(self, t: Array, key: Array, reward: Array) -> Array:
        return reward * self.scale(t, key)


def scale_reward(scale: Any, start: int = 0, end: int | None = None) -> ScaleReward:
    """Scale the reward by ``scale`` for ``start <= t < end`` (1 outside), or by a schedule."""
    if isinstance(scale, (Schedule, Mapping)):
        return ScaleReward(as_schedule(scale))
    return ScaleReward(window(start, end, value=float(_check_finite("scale", scale)), off=1.0))


def flip_reward(start: int = 0, end: int | None = None) -> ScaleReward:
    """Sign-flipped reward for ``start <= t < end``."""
    return scale_reward(-1.0, start, end)


# ----------------------------------------------------------------------------------------------
# ShiftedEnv
# ----------------------------------------------------------------------------------------------


@struct.dataclass
class Shifts:
    """All shifts of one condition (a pytree: stack several and vmap over conditions)."""

    param: Any = NoShift()
    obs: tuple = ()
    action: tuple = ()
    reward: tuple = ()


@struct.dataclass
class ShiftedParams:
    """Params of a :class:`ShiftedEnv`: the base EnvParams and the shifts."""

    base: Any
    shifts: Shifts


@struct.dataclass
class ShiftedState:
    """Inner env state, global step ``t`` (never reset by episodes), the run's shift key and
    the observation-shift states."""

    env_state: Any
    t: Array
    shift_key: Array
    obs_states: tuple


class ShiftedEnv:
    """An env whose params, observations, actions and rewards shift with the global step.

    Same API as :class:`~neurorl.envs.base.Environment` (``reset``, ``step`` with auto-reset),
    with :class:`ShiftedParams`. The transition taken at global step ``t`` (``state.t`` before the
    step) uses ``param(t, shift_key, base)``; the observation it returns is shifted at ``t + 1``
    (the step at which the agent sees it). ``info`` gains ``t`` (global step after the step),
    ``task_id`` and ``params`` (the EnvParams in effect for this transition).

    Args:
        env: the environment.
        param: a param shift (or spec for :func:`make_shift`).
        obs: observation shifts, applied in order.
        action: action shifts, applied in order.
        reward: reward shifts, applied in order.
    """

    def __init__(
        self,
        env: Environment,
        param: Any = None,
        obs: Sequence[Any] = (),
        action: Sequence[Any] = (),
        reward: Sequence[Any] = (),
    ) -> None:
        self.env = env
        self.shifts = self.make_shifts(param, obs, action, reward)

    def make_shifts(
        self,
        param: Any = None,
        obs: Sequence[Any] = (),
        action: Sequence[Any] = (),
        reward: Sequence[Any] = (),
    ) -> Shifts:
        """Validate shifts against this env on the host and pack them into a :class:`Shifts`."""
        obs_dim = int(np.prod(self.env.observation_space().shape))
        for o in obs:
            if not hasattr(o, "apply") or not hasattr(o, "init"):
                raise ConfigError("shifts.obs", o, "observation shifts (gaussian_noise, ...)")
            o.init(jax.random.PRNGKey(0), obs_dim)  # raises ShapeError for a wrong obs_dim
        aspace = self.env.action_space()
        discrete = hasattr(aspace, "n")
        for a in action:
            if discrete and not isinstance(a, RemapActions):
                raise ConfigError("shifts.action", a, "remap_actions(...) for a discrete env")
            if not discrete and not isinstance(a, ScaleActions):
                raise ConfigError("shifts.action", a, "scale_actions / invert_actions")
            if discrete and a.mapping.shape != (aspace.n,):
                raise ShapeError("remap_actions mapping", (aspace.n,), a.mapping.shape)
        for r in reward:
            if not isinstance(r, ScaleReward):
                raise ConfigError("shifts.reward", r, "scale_reward / flip_reward")
        return Shifts(make_shift(self.env, param), tuple(obs), tuple(action), tuple(reward))

    @property
    def id(self) -> str:
        return self.env.id

    def default_params(self, base: Any = None) -> ShiftedParams:
        """The constructor's shifts over ``base`` (default: the env defaults)."""
        return ShiftedParams(self.env.default_params() if base is None else base, self.shifts)

    def observation_space(self, params: Any = None) -> Any:
        return self.env.observation_space(None if params is None else params.base)

    def action_space(self, params: Any = None) -> Any:
        return self.env.action_space(None if params is None else params.base)

    def _obs(self, t: Array, key: Array, obs_states: tuple, obs: Array, shifts: Shifts):
        new_states = []
        for i, (o, s) in enumerate(zip(shifts.obs, obs_states, strict=True)):
            obs, s = o.apply(t, jax.random.fold_in(key, i), s, obs)
            new_states.append(s)
        return obs, tuple(new_states)

    def reset(self, key: Array, params: ShiftedParams | None = None) -> tuple[Array, ShiftedState]:
        """Start a run at global step 0: draw the shift key, reset the env and obs-shift states."""
        if params is None:
            params = self.default_params()
        key_shift, key_env, key_obs, key_init = jax.random.split(key, 4)
        t = jnp.zeros((), jnp.int32)
        p0 = params.shifts.param(t, key_shift, params.base)
        obs, env_state = self.env.reset(key_env, p0)
        obs_dim = obs.size
        init_keys = jax.random.split(key_init, max(len(params.shifts.obs), 1))
        obs_states = tuple(
            o.init(k, obs_dim) for o, k in zip(params.shifts.obs, init_keys, strict=False)
        )
        obs, obs_states = self._obs(t, key_obs, obs_states, obs, params.shifts)
        return obs, ShiftedState(env_state, t, key_shift, obs_states)

    def current_params(self, state: ShiftedState, params: ShiftedParams) -> Any:
        """The EnvParams in effect at the state's global step."""
        return params.shifts.param(state.t, state.shift_key, params.base)

    def step(
        self, key: Array, state: ShiftedState, action: Any, params: ShiftedParams | None = None
    ):
        """One shifted step (auto-reset of the inner env; the global step keeps counting)."""
        if params is None:
            params = self.default_params()
        sh = params.shifts
        t = state.t
        p_t = sh.param(t, state.shift_key, params.base)
        key_env, key_act, key_obs, key_rew = jax.random.split(key, 4)
        for i, a in enumerate(sh.action):
            action = a.apply(t, jax.random.fold_in(key_act, i), action)
        obs, env_state, reward, term, trunc, info = self.env.step(
            key_env, state.env_state, action, p_t
        )
        for i, r in enumerate(sh.reward):
            reward = r.apply(t, jax.random.fold_in(key_rew, i), reward)
        t1 = t + 1
        info = dict(info)
        if "final_obs" in info:
            # the terminal observation gets the same sensor transform as obs would have
            info["final_obs"], _ = self._obs(t1, key_obs, state.obs_states, info["final_obs"], sh)
        obs, obs_states = self._obs(t1, key_obs, state.obs_states, obs, sh)
        info["t"] = t1
        info["task_id"] = (
            sh.param.task_id(t) if hasattr(sh.param, "task_id") else jnp.zeros((), jnp.int32)
        )
        info["params"] = p_t
        return (
            obs,
            ShiftedState(env_state, t1, state.shift_key, obs_states),
            reward,
            term,
            trunc,
            info,
        )

    def __repr__(self) -> str:
        return f"ShiftedEnv({self.env!r})"


def stack(items: Sequence[Any]) -> Any:
    """Stack pytrees of the same structure along a new leading axis (for vmap over conditions)."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *items)


__all__ = [
    "SCHEDULES",
    "Abrupt",
    "Compose",
    "Constant",
    "Cyclic",
    "Gradual",
    "NoShift",
    "ParamShift",
    "Random",
    "ShiftedEnv",
    "ShiftedParams",
    "ShiftedState",
    "Shifts",
    "TaskSequence",
    "abrupt",
    "as_schedule",
    "compose",
    "constant",
    "cyclic",
    "dead_sensors",
    "flip_reward",
    "gaussian_noise",
    "gradual",
    "invert_actions",
    "make_shift",
    "param_shift",
    "permute_obs",
    "random",
    "remap_actions",
    "scale_actions",
    "scale_reward",
    "sensor_drift",
    "stack",
    "task_sequence",
    "window",
]
