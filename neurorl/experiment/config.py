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
import math
import numbers
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from neurorl.errors import ConfigError, closest, closest_hyper


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
    # the agent's own N-HAL network (groups, connections, rules; neurorl.agents.description),
    # trained by the recipe ``name``; None: the recipe's built-in network
    network: dict[str, Any] | None = None
    # contextual inference (neurorl.agents.context.with_context): a store of weight sets chosen
    # by forward-model prediction errors, e.g. {n_contexts: 4}; None: one set (the plain agent)
    context: dict[str, Any] | None = None


class HardwareSection(_Strict):
    """``hardware``: the chip whose limits hold during learning and whose energy model is used."""

    chip: str = "float"
    off_chip_learning: bool = False
    # crossbar on-chip learning: fields of the chip's pulsed-device model to change
    # (neurorl.hardware.memristor.PulseDeviceSpec), e.g. {update: mixed_precision}
    device: dict[str, Any] | None = None
    # on-chip learning on a chip with a learning engine (loihi, loihi2, spinnaker, ...): fields
    # of its LearningEngine to change (neurorl.hardware.learning_engine.ENGINE_FIELDS), e.g.
    # {trace_scale: 6.0, tag_scale: 1.0}; the scales may be "auto" (calibrated by a float run
    # of calibration_steps env steps, neurorl.hardware.calibrate; checked in train.validate)
    engine: dict[str, Any] | None = None


class TrainingSection(_Strict):
    """``training``: total env steps per seed, parallel envs, seeds and chunking."""

    steps: int = Field(100_000, ge=1)
    n_envs: int = Field(8, ge=1, le=65536)
    seed: int = Field(0, ge=0)
    n_seeds: int = Field(1, ge=1, le=4096)
    chunk_steps: int = Field(10_000, ge=1)
    episode_window: int = Field(100, ge=1)
    threshold: float | None = Field(None, allow_inf_nan=False)
    # adaptation after a shift: recovered once the rolling return is back to this fraction of
    # its pre-shift level (metrics.continual.adaptation_time's theta)
    adaptation_fraction: float = Field(0.9, gt=0.0, le=1.0)
    # a numeric fault: the run stops (exit code 3) once a member's weight norm exceeds this many
    # times its initial norm (null: never); NaN/inf anywhere always stops it
    max_weight_growth: float | None = Field(1000.0, gt=1.0, allow_inf_nan=False)
    # a numeric fault for rules that clip every update to +-w_max (rstdp, reference): the run
    # stops once this fraction of a member's weights sits at the bound (the learning rate has
    # turned the rule into sign(update) x w_max; null: never). Measured (numeric_health.md):
    # 0 on healthy default runs, 0.57-1.0 with lr = 1e3
    max_saturation: float | None = Field(0.25, gt=0.0, le=1.0, allow_inf_nan=False)


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


def _model_at(path: Sequence[Any], root: type[BaseModel] | None = None) -> type[BaseModel] | None:
    """The pydantic model class that owns the last element of ``path`` (for typo suggestions)."""
    model: Any = root or ExperimentConfig
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


def _describe(
    err: Mapping[str, Any], root: type[BaseModel] | None = None
) -> tuple[str, str, str | None]:
    """(field path, allowed text, suggestion) for one pydantic error."""
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    # pydantic adds the union member name (e.g. 'ScheduleSpec', 'float') to the location
    tags = {m.__name__ for m in _Strict.__subclasses__()} | {
        "float", "int", "str", "bool", "list[int]", "list[float]", "none"
    }
    loc = [p for p in loc if not (isinstance(p, str) and p in tags)]
    path = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
    kind = err["type"]
    suggestion = None
    if kind == "extra_forbidden":
        model = _model_at(loc, root)
        fields = list(model.model_fields) if model is not None else []
        suggestion = closest(str(loc[-1]), fields) if fields and loc else None
        allowed = f"one of the keys {fields}" if fields else "no such key"
    elif kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        choices = [
            c.strip().strip("'") for c in expected.replace(" or ", ",").split(",") if c.strip()
        ]
        value = err.get("input")
        suggestion = closest(str(value), choices)
        allowed = f"one of {choices}"
        if isinstance(value, bool):  # YAML 1.1 reads unquoted off/on/no/yes as booleans
            allowed += (
                " (YAML reads an unquoted off/on/no/yes as false/true: write one of these names, "
                "quoted if it is one of those words)"
            )
            suggestion = None
    else:
        allowed = _friendly(err)
    return path or "config", allowed, suggestion


#: pydantic's number-bound error types -> the comparison they state
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
           "less_than_equal": "<="}
#: pydantic's type error types -> what the field takes
_TYPES = {
    "int_parsing": "a whole number", "int_type": "a whole number",
    "int_from_float": "a whole number", "float_parsing": "a number", "float_type": "a number",
    "bool_parsing": "true or false", "bool_type": "true or false", "string_type": "a string",
    "list_type": "a list, e.g. [1, 2]", "dict_type": "a mapping, e.g. {key: value}",
    "model_type": "a mapping of the section's keys",
}


def _friendly(err: Mapping[str, Any]) -> str:
    """What a field allows, in a config's words rather than pydantic's ("Input should be ...")."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind in _BOUNDS:
        bound = next((ctx[k] for k in ("gt", "ge", "lt", "le") if k in ctx), None)
        if bound is not None:
            what = "a whole number" if isinstance(bound, int) else "a number"
            return f"{what} {_BOUNDS[kind]} {bound}"
    if kind in _TYPES:
        return _TYPES[kind]
    if kind == "too_short" and "min_length" in ctx:
        return f"a list of at least {ctx['min_length']} entries"
    return str(err["msg"])


def _from_validation_error(
    e: ValidationError, source: str = "", root: type[BaseModel] | None = None
) -> ConfigError:
    errs = e.errors()
    # a typo'd key also makes the real key "missing": report the typo (with its closest valid
    # name) first, then wrong choices and values, "Field required" last
    rank = {"extra_forbidden": 0, "literal_error": 1, "missing": 3}
    errs = sorted(errs, key=lambda er: rank.get(er["type"], 2))
    err = errs[0]
    path, allowed, suggestion = _describe(err, root)
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
    """``"agent.hyper.lr=1e-3"`` -> ``("agent.hyper.lr", 0.001)`` (value parsed as YAML).

    Raises:
        ConfigError: no ``=``, an empty key, or a value YAML cannot parse (named with its key).
    """
    if not isinstance(item, str) or "=" not in item:
        raise ConfigError("--set", item, "KEY=VALUE with a dotted key, e.g. agent.hyper.lr=1e-3")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError("--set", item, "a non-empty dotted key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        problem = str(getattr(e, "problem", "") or e).split("\n")[0]
        raise ConfigError(
            f"--set {key}", raw, f"a YAML value, e.g. 3, 1e-3, true, [1, 2] ({problem})"
        ) from None
    if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
        for conv in (int, float):
            try:
                return key, conv(value)
            except ValueError:
                pass
    return key, value


def _split_path(dotted: str) -> list[str]:
    """``"shifts.params[0].schedule"`` / ``"shifts.params.0.schedule"`` -> its parts."""
    parts = dotted.replace("[", ".").replace("]", "").split(".")
    if any(p == "" for p in parts):
        raise ConfigError(dotted, None, "a dotted key such as agent.hyper.lr or shifts.params.0.x")
    return parts


def _join(parts: Sequence[str]) -> str:
    return ".".join(parts).replace(".[", "[") if parts else "config"


def set_path(tree: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """Return a copy of ``tree`` with ``dotted`` set to ``value`` (intermediate dicts created).

    List entries are reached by index: ``shifts.params.0.schedule.steps`` or
    ``shifts.params[0].schedule.steps``.

    Raises:
        ConfigError: a path through a scalar, an index into a non-list, or past a list's end.
    """
    out = copy.deepcopy(tree)
    node: Any = out
    parts = _split_path(dotted)
    seen: list[str] = []
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        here = _join(seen) if seen else "config"
        if isinstance(node, list):
            if not p.lstrip("-").isdigit():
                raise ConfigError(dotted, value, f"{here} is a list: index it, e.g. {here}.0")
            k = int(p)
            if not 0 <= k < len(node):
                raise ConfigError(
                    f"{here}[{p}]", value, f"an index in [0, {len(node) - 1}] ({here} has "
                    f"{len(node)} entries)" if node else f"no index ({here} is empty)"
                )
            if last:
                node[k] = value
            else:
                node = node[k]
            seen.append(f"[{k}]")
            continue
        if not isinstance(node, dict):
            raise ConfigError(dotted, value, f"{here!r} is not a section (it is {node!r})")
        if last:
            node[p] = value
        else:
            if node.get(p) is None:
                node[p] = {}
            node = node[p]
        seen.append(p)
    return out


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read an experiment (or sweep) YAML file into a dict.

    Raises:
        ConfigError: a missing file, a directory, an unreadable or empty file, invalid YAML, or
            anything but a mapping at the top level.
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError("config", str(path), "an existing YAML file")
    if p.is_dir():
        raise ConfigError(
            "config", str(path), "a YAML file, not a directory (e.g. experiments/quickstart.yaml)"
        )
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("config", str(path), f"a readable UTF-8 text file ({e})") from None
    try:
        _check_duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader), [], str(path))
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError("config", str(path), f"valid YAML ({e})") from None
    if data is None:
        raise ConfigError(
            "config",
            str(path),
            "a YAML mapping with at least one section; the file is empty (an empty config would "
            "silently run every default: copy experiments/quickstart.yaml instead)",
        )
    if not isinstance(data, dict):
        raise ConfigError("config", type(data).__name__, "a YAML mapping at the top level")
    return data


def _check_duplicate_keys(node: Any, path: list[str], source: str) -> None:
    """A key written twice in one YAML mapping is an error, not a silent override.

    PyYAML keeps the last of two equal keys, so ``agent: {hyper: {lr: 0.1}, ..., hyper: {}}``
    would run with the default ``lr`` without a word.

    Raises:
        ConfigError: named by the key's dotted path, with the lines of both occurrences.
    """
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            here = [*path, str(name)]
            if name is not None:
                line = key.start_mark.line + 1
                if name in seen:
                    raise ConfigError(
                        _join(here),
                        f"written twice in {source} (lines {seen[name]} and {line})",
                        "each key once per section (YAML would silently keep only the last "
                        "one): delete or merge one of them",
                    )
                seen[name] = line
            _check_duplicate_keys(value, here, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(item, [*path, str(i)], source)


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
    tree = canonical_tree(tree)
    try:
        cfg = ExperimentConfig.model_validate(tree)
    except ValidationError as e:
        raise _from_validation_error(e) from None
    check_registries(cfg)
    return cfg


#: config fields whose value is a registered name, and the section key that holds each
CANONICAL_FIELDS = {"env.id": ("env", "id"), "agent.name": ("agent", "name"),
                    "hardware.chip": ("hardware", "chip")}


def _registered_names(field: str, value: str) -> list[str]:
    """The registered names ``value`` may be a spelling of (with its ``gymnasium:``/``gymnax:``
    prefix for bridged env ids)."""
    if field == "agent.name":
        from neurorl.agents import AGENTS

        return list(AGENTS)
    if field == "hardware.chip":
        from neurorl.hardware.chips import CHIPS

        return list(CHIPS)
    if value.startswith("gymnasium:"):
        if ":" in value[len("gymnasium:"):]:  # module:Id, registered by importing the module
            return []
        import gymnasium

        return ["gymnasium:" + k for k in gymnasium.registry]
    if value.startswith("gymnax:"):
        try:
            from neurorl.envs.gymnax_env import gymnax_ids

            return ["gymnax:" + k for k in gymnax_ids()]
        except ImportError:  # the [gymnax] extra is missing: env.id's check says so
            return []
    from neurorl.envs import ENVS

    return list(ENVS)


def canonical_name(field: str, value: Any) -> Any:
    """The registered spelling of a name written in another case, else ``value`` unchanged.

    neurorl looks its registries up case-insensitively, so ``env.id: cartpole-v1`` always ran
    CartPole-v1; it was only *kept* as typed, so run names, sweep labels, ``summary.json``,
    report tables and wandb configs said ``cartpole-v1`` and did not group with the runs that
    wrote ``CartPole-v1``. A case-only difference has exactly one reading when one registered
    name matches, so it is normalised here, once, where the config is validated; everything
    downstream uses the validated config. A name matching none (a typo) or several is left for
    validation, which rejects it with the closest registered name. Bridged ids
    (``gymnasium:cartpole-v1``, ``gymnax:...``) follow the same rule, against their registries.

    Args:
        field: one of :data:`CANONICAL_FIELDS` (``env.id``, ``agent.name``, ``hardware.chip``).
        value: the name as written.

    Returns:
        The registered name, or ``value``.
    """
    if field not in CANONICAL_FIELDS or not isinstance(value, str):
        return value
    names = _registered_names(field, value)
    if value in names:
        return value
    hits = [n for n in names if n.lower() == value.lower()]
    return hits[0] if len(hits) == 1 else value


def canonical_tree(tree: Mapping[str, Any]) -> dict[str, Any]:
    """A config dict with its registered names in their registered spelling
    (:func:`canonical_name`); other values untouched."""
    out = dict(tree)
    for field, (section, key) in CANONICAL_FIELDS.items():
        sec = out.get(section)
        if isinstance(sec, Mapping) and key in sec:
            out[section] = {**sec, key: canonical_name(field, sec[key])}
    return out


def canonical_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted overrides (a sweep member's parameters) with registered names normalised as in
    :func:`canonical_name`: ``env.id`` itself, or ``id`` inside a whole ``env`` section."""
    out = {}
    for k, v in overrides.items():
        if k in CANONICAL_FIELDS:
            v = canonical_name(k, v)
        elif isinstance(v, Mapping) and k in {s for s, _ in CANONICAL_FIELDS.values()}:
            v = canonical_tree({k: v})[k]
        out[k] = v
    return out


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Load and validate an experiment YAML, applying ``--set`` overrides."""
    return from_dict(load_yaml(path), overrides)


def to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="json")


def check_registries(cfg: ExperimentConfig) -> None:
    """Names that live in registries, and cross-field constraints (host side, before tracing).

    Everything here is named by its YAML path (``agent.hyper.lr``, ``shifts.params[0]...``) and
    runs before anything is created on disk.
    """
    from neurorl.agents import AGENTS
    from neurorl.envs import ENVS
    from neurorl.errors import lookup
    from neurorl.hardware.chips import CHIPS

    check_name(cfg.name, "name")
    if cfg.env.id.startswith("gymnasium:"):  # any Gymnasium env, trained in the host loop
        from neurorl.envs.bridge import check_gymnasium_id

        check_gymnasium_id(cfg.env.id)
    elif cfg.env.id.startswith("gymnax:"):  # gymnax's JAX envs, jitted like ours
        from neurorl.envs.gymnax_env import check_gymnax_id

        check_gymnax_id(cfg.env.id)
    else:
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
    if t.threshold is not None and not math.isfinite(t.threshold):
        raise ConfigError("training.threshold", t.threshold, "a finite return, or null for none")
    check_hyper_values(cfg.agent.name, dict(cfg.agent.hyper), "agent.hyper")
    if cfg.env.id.startswith(("gymnasium:", "gymnax:")):
        return  # bridged envs: the host loop / the gymnax adapter check params and shifts
    env_params = check_env_params(cfg.env.id, dict(cfg.env.params), "env.params")
    check_obs_range(cfg.env.id, cfg.agent.obs_range, "agent.obs_range", env_params)
    from neurorl.experiment.shiftspec import check_shifts

    check_shifts(
        cfg.shifts.model_dump(mode="python"),
        cfg.env.id,
        dict(cfg.env.params),
        total_steps=t.steps,
        n_envs=t.n_envs,
        prefix="shifts",
    )


_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=,-]*$")


def check_name(name: Any, field: str) -> None:
    """A run name is one directory name inside ``logging.dir`` (no ``/``, ``..`` or ``~``).

    Raises:
        ConfigError: a name that is empty, a path, or would leave ``logging.dir``.
    """
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or ".." in name:
        raise ConfigError(
            field,
            name,
            "one directory name inside logging.dir: letters, digits and _ . + = , - "
            "(no '/', '..', leading '.' or spaces)",
        )


def check_env_params(env_id: str, params: Mapping[str, Any], prefix: str) -> Any:
    """Validated env params (the env's own physical checks), errors named ``prefix.<field>``."""
    from neurorl.envs import make_params

    if isinstance(env_id, str) and env_id.startswith(("gymnasium:", "gymnax:")):
        return None  # the host loop / the gymnax adapter validate their own parameters
    try:
        return make_params(env_id, **dict(params))
    except ConfigError as e:
        field = str(e.field).rsplit(".", 1)[-1] if "params" in str(e.field) else str(e.field)
        if field == "params":  # unknown field: the value is the name
            raise ConfigError(f"{prefix}.{e.value}", params.get(e.value), e.allowed,
                              e.suggestions) from None
        raise ConfigError(f"{prefix}.{field}", e.value, e.allowed, e.suggestions) from None


def check_obs_range(env_id: str, obs_range: Any, field: str, env_params: Any = None) -> None:
    """``obs_range``: one positive finite half-width, or one per observation dimension."""
    if obs_range is None:
        return
    from neurorl.envs import make

    env, params = make(env_id)
    params = env_params if env_params is not None else params
    obs_dim = int(np.prod(env.observation_space(params).shape))
    vals = [obs_range] if isinstance(obs_range, (int, float)) else obs_range
    try:
        a = np.asarray(vals, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(field, obs_range, f"{obs_dim} positive numbers") from None
    if a.ndim != 1 or a.size not in (1, obs_dim):
        raise ConfigError(
            field, obs_range, f"one half-width or {obs_dim} (one per observation dim of {env_id})"
        )
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ConfigError(field, obs_range, "positive finite half-widths")


def agent_defaults(agent: str) -> dict[str, Any]:
    """The agent's ``DEFAULTS`` hyperparameters (from its factory's module)."""
    import sys

    from neurorl.agents import AGENTS
    from neurorl.errors import lookup

    factory = lookup(AGENTS, agent, "agent", field="agent.name")
    return dict(getattr(sys.modules[factory.__module__], "DEFAULTS", {}))


def check_hyper_values(agent: str, hyper: Mapping[str, Any], prefix: str) -> None:
    """Hyperparameters by their default's kind: known name, same type, finite, sign.

    Every numeric hyperparameter whose default is >= 0 must be >= 0 (rates, time constants,
    sizes, epsilons, clip norms); integer ones (sizes, step counts) must be whole numbers. The
    agent's own range checks (``> 0``, ``[0, 1]``) follow in its factory.

    Raises:
        ConfigError: named ``<prefix>.<key>`` with the value, what is allowed, the closest name.
    """
    if not isinstance(hyper, Mapping):
        raise ConfigError(prefix, hyper, "a mapping of hyperparameter names to values")
    defaults = agent_defaults(agent)
    if not defaults:
        return
    for k, v in hyper.items():
        f = f"{prefix}.{k}"
        if k not in defaults:
            raise ConfigError(
                f, v, f"one of the {agent} hyperparameters {sorted(defaults)}",
                closest_hyper(str(k), defaults),
            )
        d = defaults[k]
        if isinstance(d, bool):
            if not isinstance(v, (bool, np.bool_)):
                raise ConfigError(f, v, "true or false")
            continue
        if isinstance(d, str):
            if not isinstance(v, str):
                raise ConfigError(f, v, f"a name (string), default {d!r}")
            continue
        if isinstance(d, (int, float)):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
                raise ConfigError(f, v, f"a number (default {d!r})")
            if not math.isfinite(v):
                raise ConfigError(f, v, f"a finite number (default {d!r})")
            if d >= 0 and v < 0:
                raise ConfigError(f, v, f"a number >= 0 (default {d!r})")
            if isinstance(d, int) and float(v) != int(v):
                raise ConfigError(f, v, f"a whole number (default {d!r})")


def run_name(cfg: ExperimentConfig) -> str:
    return cfg.name
