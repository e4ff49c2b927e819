"""Experiment configs: a validated, frozen schema over YAML files.

An experiment YAML has the sections ``env``, ``shifts``, ``agent``, ``hardware``, ``training`` and
``logging`` (see ``experiments/*.yaml``). Everything is checked before anything compiles:

* unknown keys, wrong types and out-of-range values raise a :class:`~neurorl.errors.ConfigError`
  that names the field path (``agent.hyper.lr``), the bad value, what is allowed and -- for a
  typo -- the closest valid name;
* names that live in registries (env id, agent, chip, shift kinds) and the agent's
  hyperparameters are checked against those registries.

Command-line overrides use dotted paths: ``--set agent.hyper.lr=1e-3``; values are parsed as
YAML scalars (``1e-3`` -> float, ``true`` -> bool, ``[1, 2]`` -> list).

Step counts in ``shifts`` are **total env steps** (summed over the parallel envs of one agent),
the same x-axis as the logs; they are converted to per-env steps for the jitted env.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from neurorl.errors import ConfigError, closest


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class EnvSection(_Strict):
    """``env``: which environment and its parameter overrides."""

    id: str = "CartPole-v1"
    params: dict[str, float] = Field(default_factory=dict)


class ScheduleSpec(_Strict):
    """A schedule for a shifting value (see ``neurorl.envs.shifts``)."""

    kind: Literal["constant", "abrupt", "gradual", "cyclic", "random"]
    value: float | None = None
    values: list[float] | None = None
    steps: list[int] | None = None
    start: float | None = None
    end: float | None = None
    t0: int | None = None
    t1: int | None = None
    ramp: Literal["linear", "cosine"] = "linear"
    low: float | None = None
    high: float | None = None
    period: int | None = None
    shape: Literal["sine", "square", "triangle"] = "sine"
    every: int | None = None
    log: bool = False


class ParamShiftSpec(_Strict):
    """One physical-parameter shift: ``field`` follows ``schedule`` (set, scale or add)."""

    field: str
    mode: Literal["set", "scale", "add"] = "set"
    schedule: ScheduleSpec | float


class TaskSequenceSpec(_Strict):
    """A task sequence for continual learning: parameter overrides, each for ``steps_per_task``."""

    tasks: list[dict[str, float]] = Field(min_length=1)
    steps_per_task: int | list[int]
    cycle: bool = False
    names: list[str] | None = None


class ObsShiftSpec(_Strict):
    """An observation shift active in ``[start, end)`` total env steps."""

    kind: Literal["gaussian_noise", "sensor_drift", "dead_sensors", "permute"]
    std: float | None = None
    step_std: float | None = None
    dims: list[int] | None = None
    seed: int = 0
    start: int = 0
    end: int | None = None


class ActionShiftSpec(_Strict):
    kind: Literal["remap", "scale", "invert"]
    mapping: list[int] | None = None
    factor: float | None = None
    start: int = 0
    end: int | None = None


class RewardShiftSpec(_Strict):
    kind: Literal["scale", "flip"]
    factor: float | None = None
    start: int = 0
    end: int | None = None


class ShiftsSection(_Strict):
    """``shifts``: parameter shifts, a task sequence, and observation/action/reward shifts."""

    params: list[ParamShiftSpec] = Field(default_factory=list)
    tasks: TaskSequenceSpec | None = None
    obs: list[ObsShiftSpec] = Field(default_factory=list)
    action: list[ActionShiftSpec] = Field(default_factory=list)
    reward: list[RewardShiftSpec] = Field(default_factory=list)


class AgentSection(_Strict):
    """``agent``: the spiking agent, its network substeps and its hyperparameters."""

    name: str = "eprop_ac"
    substeps: int = Field(5, ge=1, le=1000)
    obs_range: list[float] | None = None
    hyper: dict[str, Any] = Field(default_factory=dict)


class HardwareSection(_Strict):
    """``hardware``: the chip whose limits hold during learning and whose energy model is used."""

    chip: str = "float"
    off_chip_learning: bool = False


class TrainingSection(_Strict):
    """``training``: total env steps per seed, parallel envs, seeds and chunking."""

    steps: int = Field(100_000, ge=1)
    n_envs: int = Field(8, ge=1, le=65536)
    seed: int = Field(0, ge=0)
    n_seeds: int = Field(1, ge=1, le=4096)
    chunk_steps: int = Field(10_000, ge=1)
    episode_window: int = Field(100, ge=1)
    threshold: float | None = None
    # adaptation after a shift: recovered once the rolling return is back to this fraction of
    # its pre-shift level (metrics.continual.adaptation_time's theta)
    adaptation_fraction: float = Field(0.9, gt=0.0, le=1.0)


class LoggingSection(_Strict):
    """``logging``: run directory root, wandb mode and project."""

    dir: str = "runs"
    wandb: Literal["offline", "online", "disabled"] = "offline"
    project: str = "neurorl"
    group: str | None = None
    progress: bool = True


class ExperimentConfig(_Strict):
    """A whole experiment; frozen after validation (derived values come from functions)."""

    name: str = "experiment"
    description: str = ""
    env: EnvSection = Field(default_factory=EnvSection)
    shifts: ShiftsSection = Field(default_factory=ShiftsSection)
    agent: AgentSection = Field(default_factory=AgentSection)
    hardware: HardwareSection = Field(default_factory=HardwareSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    logging: LoggingSection = Field(default_factory=LoggingSection)


# ----------------------------------------------------------------------------------------------
# pydantic errors -> ConfigError
# ----------------------------------------------------------------------------------------------


def _model_at(path: Sequence[Any]) -> type[BaseModel] | None:
    """The pydantic model class that owns the last element of ``path`` (for typo suggestions)."""
    model: Any = ExperimentConfig
    for part in path[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        model = _find_model(ann)
    return model


def _find_model(ann: Any) -> type[BaseModel] | None:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        m = _find_model(arg)
        if m is not None:
            return m
    return None


def _describe(err: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """(field path, allowed text, suggestion) for one pydantic error."""
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    # pydantic adds the union member name (e.g. 'ScheduleSpec', 'float') to the location
    loc = [
        p
        for p in loc
        if not (
            isinstance(p, str)
            and (p[:1].isupper() or p in ("float", "int", "str", "bool", "list[int]"))
        )
    ]
    path = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
    kind = err["type"]
    suggestion = None
    if kind == "extra_forbidden":
        model = _model_at(loc)
        fields = list(model.model_fields) if model is not None else []
        suggestion = closest(str(loc[-1]), fields) if fields else None
        allowed = f"one of the keys {fields}" if fields else "no such key"
    elif kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        choices = [
            c.strip().strip("'") for c in expected.replace(" or ", ",").split(",") if c.strip()
        ]
        suggestion = closest(str(err.get("input")), choices)
        allowed = f"one of {choices}"
    else:
        allowed = err["msg"]
    return path or "config", allowed, suggestion


def _from_validation_error(e: ValidationError, source: str = "") -> ConfigError:
    errs = e.errors()
    # report the first error; with a Union the most specific is usually the first
    err = errs[0]
    path, allowed, suggestion = _describe(err)
    ce = ConfigError(path, err.get("input"), allowed, suggestion)
    if len(errs) > 1:
        ce.args = (
            ce.args[0]
            + f" (and {len(errs) - 1} more problem(s){' in ' + source if source else ''})",
        )
    return ce


# ----------------------------------------------------------------------------------------------
# loading, overrides, registry checks
# ----------------------------------------------------------------------------------------------


def parse_override(item: str) -> tuple[str, Any]:
    """``"agent.hyper.lr=1e-3"`` -> ``("agent.hyper.lr", 0.001)`` (value parsed as YAML)."""
    if "=" not in item:
        raise ConfigError("--set", item, "KEY=VALUE with a dotted key, e.g. agent.hyper.lr=1e-3")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError("--set", item, "a non-empty dotted key")
    value = yaml.safe_load(raw) if raw.strip() else ""
    if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
        for conv in (int, float):
            try:
                return key, conv(value)
            except ValueError:
                pass
    return key, value


def set_path(tree: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """Return a copy of ``tree`` with ``dotted`` set to ``value`` (intermediate dicts created)."""
    out = copy.deepcopy(tree)
    node = out
    parts = dotted.split(".")
    for p in parts[:-1]:
        if not isinstance(node.get(p, {}), dict):
            raise ConfigError(dotted, value, f"{p!r} is not a section")
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError("config", str(path), "an existing YAML file")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError("config", str(path), f"valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError("config", type(data).__name__, "a YAML mapping at the top level")
    return data


def from_dict(
    data: Mapping[str, Any], overrides: Sequence[str] | Mapping[str, Any] = ()
) -> ExperimentConfig:
    """Validate a config dict (plus overrides) into a frozen :class:`ExperimentConfig`.

    Raises:
        ConfigError: the first problem, with field path, value, what is allowed and the closest
            valid name.
    """
    tree = copy.deepcopy(dict(data))
    items = overrides.items() if isinstance(overrides, Mapping) else map(parse_override, overrides)
    for key, value in items:
        tree = set_path(tree, key, value)
    if tree.get("task") == "classification":  # supervised event data: its own schema
        from neurorl.experiment import classification

        return classification.validate(tree)
    try:
        cfg = ExperimentConfig.model_validate(tree)
    except ValidationError as e:
        raise _from_validation_error(e) from None
    check_registries(cfg)
    return cfg


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Load and validate an experiment YAML, applying ``--set`` overrides."""
    return from_dict(load_yaml(path), overrides)


def to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="json")


def check_registries(cfg: ExperimentConfig) -> None:
    """Names that live in registries, and cross-field constraints (host side, before tracing)."""
    from neurorl.agents import AGENTS
    from neurorl.envs import ENVS
    from neurorl.errors import lookup
    from neurorl.hardware.chips import CHIPS

    lookup(ENVS, cfg.env.id, "environment", field="env.id")
    lookup(AGENTS, cfg.agent.name, "agent", field="agent.name")
    lookup(CHIPS, cfg.hardware.chip, "chip", field="hardware.chip")
    t = cfg.training
    if t.steps % t.n_envs:
        raise ConfigError("training.steps", t.steps, f"a multiple of training.n_envs={t.n_envs}")
    if t.chunk_steps % t.n_envs:
        raise ConfigError(
            "training.chunk_steps", t.chunk_steps, f"a multiple of training.n_envs={t.n_envs}"
        )
    if cfg.agent.obs_range is not None and any(r <= 0 for r in cfg.agent.obs_range):
        raise ConfigError("agent.obs_range", cfg.agent.obs_range, "positive half-widths")


def run_name(cfg: ExperimentConfig) -> str:
    return cfg.name
