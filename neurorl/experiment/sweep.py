"""Sweeps in wandb's sweep schema: run by a real ``wandb agent``, or expanded locally.

A sweep file is a wandb sweep configuration that wandb's own validator (``wandb sweep``, the
``sweeps`` package's JSON schema) accepts::

    program: experiments/cartpole_eprop.yaml   # the experiment config every member overrides
    command: [neurorl, run, "${program}", "${args}"]
    method: grid                                # grid | random (locally); bayes with wandb only
    metric: {name: final_return, goal: maximize}   # a flat key of each run's wandb summary
    parameters:
      agent.name: {values: [rstdp, eprop_ac, bptt_ac]}
      training.seed: {values: [0, 1, 2, 3, 4]}
      agent.hyper.lr: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-2}
      agent:                # nested parameters, as in wandb
        parameters:
          substeps: {value: 5}

``wandb agent`` starts ``command`` once per member with ``${program}`` replaced by ``program`` and
``${args}`` by ``--name=value`` for every parameter (``str(value)``; dicts and lists in Python's
repr); ``neurorl run`` reads those as dotted config overrides (:func:`agent_overrides`).
``neurorl sweep FILE`` reads the same file and expands it without a server: ``program`` is found
relative to the current directory (as ``wandb agent`` does), else to the sweep file's directory or
one of its parents. Extensions that only the local expansion reads (wandb's validator rejects
them): ``base`` (the old name of ``program``, relative to the sweep file), ``count``/``run_cap``
and ``seed`` for random sweeps.

Parameter names are dotted config paths. ``values``/``value``/``distribution`` and their bounds
follow ``wandb/sweeps`` ``schema.json`` and are checked the same way before anything runs (a
missing or invalid bound is a :class:`~neurorl.errors.ConfigError` naming the field); wandb's
default inference applies (``values`` -> categorical, int ``min``/``max`` -> ``int_uniform``,
float ``min``/``max`` -> ``uniform``). Only ``grid`` and ``random`` can be expanded without a
server; ``bayes`` is rejected by ``neurorl sweep`` with a clear message.

References:
    wandb sweep configuration keys: https://docs.wandb.ai/models/sweeps/sweep-config-keys
    wandb sweep command macros: https://docs.wandb.ai/models/sweeps/define-sweep-configuration
    wandb/sweeps ``config/schema.json`` (the validator ``wandb sweep`` runs).
"""

from __future__ import annotations

import ast
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from neurorl.errors import ConfigError, closest

METHODS = ("grid", "random")
WANDB_METHODS = ("grid", "random", "bayes", "custom")
# top-level keys of wandb's sweep schema
WANDB_KEYS = (
    "method",
    "parameters",
    "program",
    "command",
    "metric",
    "name",
    "description",
    "project",
    "entity",
    "early_terminate",
    "controller",
    "apiVersion",
    "kind",
)
# read only by the local expansion (wandb's validator rejects them)
LOCAL_KEYS = ("base", "count", "run_cap", "seed")
TOP_LEVEL_KEYS = WANDB_KEYS + LOCAL_KEYS
# distribution -> (required keys, optional keys), as in wandb/sweeps schema.json
PARAM_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "constant": (("value",), ()),
    "categorical": (("values",), ()),
    "categorical_w_probabilities": (("values", "probabilities"), ()),
    "int_uniform": (("min", "max"), ()),
    "uniform": (("min", "max"), ()),
    "q_uniform": (("min", "max"), ("q",)),
    "log_uniform": (("min", "max"), ()),
    "log_uniform_values": (("min", "max"), ()),
    "inv_log_uniform": (("min", "max"), ()),
    "inv_log_uniform_values": (("min", "max"), ()),
    "q_log_uniform": (("min", "max"), ("q",)),
    "q_log_uniform_values": (("min", "max"), ("q",)),
    "normal": ((), ("mu", "sigma")),
    "q_normal": ((), ("mu", "sigma", "q")),
    "log_normal": ((), ("mu", "sigma")),
    "q_log_normal": ((), ("mu", "sigma", "q")),
    "beta": ((), ("a", "b")),
    "q_beta": ((), ("a", "b", "q")),
}
DISTRIBUTIONS = tuple(PARAM_KEYS)
_ALL_PARAM_KEYS = ("distribution", *dict.fromkeys(k for r, o in PARAM_KEYS.values() for k in r + o))
METRIC_GOALS = ("minimize", "maximize")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def flatten_parameters(params: Mapping[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Flatten nested ``parameters`` blocks into dotted names -> parameter spec.

    Args:
        params: a sweep's ``parameters`` mapping (possibly nested as in wandb).
        prefix: dotted prefix of the enclosing block.

    Returns:
        Dotted parameter name -> its spec (a copy), in the order written.

    Raises:
        ConfigError: ``parameters`` (or a nested block) is not a non-empty mapping, a name is not
            one wandb accepts, or a spec is not a mapping.
    """
    where = f"parameters.{prefix}parameters" if prefix else "sweep.parameters"
    if not isinstance(params, Mapping) or not params:
        raise ConfigError(where, params, "a non-empty mapping of parameter name -> spec")
    out: dict[str, dict[str, Any]] = {}
    for name, spec in params.items():
        path = f"{prefix}{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                f"parameters.{path}",
                name,
                "a name of letters, digits, '_', '.', '-' that starts with a letter or '_'",
            )
        if not isinstance(spec, Mapping):
            raise ConfigError(
                f"parameters.{path}",
                spec,
                "a mapping with 'value', 'values', 'distribution' or nested 'parameters'",
            )
        if "parameters" in spec:
            extra = [k for k in spec if k != "parameters"]
            if extra:
                raise ConfigError(
                    f"parameters.{path}.{extra[0]}",
                    extra[0],
                    "nothing beside 'parameters' in a nested parameter block",
                )
            out.update(flatten_parameters(spec["parameters"], prefix=f"{path}."))
        else:
            out[path] = dict(spec)
    return out


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _infer_distribution(path: str, spec: Mapping[str, Any]) -> str:
    if "distribution" in spec:
        dist = spec["distribution"]
        if not isinstance(dist, str) or dist not in DISTRIBUTIONS:
            raise ConfigError(
                f"parameters.{path}.distribution",
                dist,
                f"one of {list(DISTRIBUTIONS)}",
                closest(str(dist), DISTRIBUTIONS),
            )
        return dist
    if "value" in spec:
        return "constant"
    if "values" in spec:
        return "categorical_w_probabilities" if "probabilities" in spec else "categorical"
    if "min" in spec or "max" in spec:
        lo, hi = spec.get("min"), spec.get("max")
        ints = all(isinstance(x, int) and not isinstance(x, bool) for x in (lo, hi))
        return "int_uniform" if ints else "uniform"
    keys = [str(k) for k in spec]
    known = ("value", "values", "min", "max", "distribution", "parameters")
    suggestion = closest(keys[0], known) if keys else None
    raise ConfigError(
        f"parameters.{path}",
        dict(spec),
        "one of 'value', 'values', 'min'/'max' or 'distribution'",
        suggestion,
    )


def _number(
    path: str,
    key: str,
    spec: Mapping[str, Any],
    *,
    low: float | None = None,
    strict: bool = False,
    integer: bool = False,
) -> None:
    x = spec[key]
    kind = "an int" if integer else "a finite number"
    ok = (isinstance(x, int) and not isinstance(x, bool)) if integer else _is_number(x)
    if ok and not math.isfinite(x):
        ok = False
    if ok and low is not None:
        ok = x > low if strict else x >= low
    if not ok:
        bound = "" if low is None else f" {'>' if strict else '>='} {low:g}"
        raise ConfigError(f"parameters.{path}.{key}", x, f"{kind}{bound}")


def validate_parameter(path: str, spec: Mapping[str, Any]) -> str:
    """Check one (flattened) parameter spec as wandb's sweep schema does; return its distribution.

    The checks are those of ``wandb/sweeps`` ``schema.json`` plus its ``min < max`` and
    probability checks: the keys a distribution requires and allows, numbers where numbers are
    meant (ints for ``int_uniform``), ``min > 0`` for the ``*_values`` log distributions,
    ``q > 0``, ``sigma, a, b >= 0``, ``values`` a non-empty list, ``probabilities`` as many
    non-negative numbers as ``values`` summing to 1. Numbers must also be finite.

    Args:
        path: the dotted parameter name (reported as ``parameters.<path>.<key>``).
        spec: the parameter's mapping.

    Returns:
        The distribution name (explicit or inferred as wandb infers it).

    Raises:
        ConfigError: naming the offending field, its value, what is allowed and the closest
            valid key for a misspelt one.
    """
    dist = _infer_distribution(path, spec)
    required, optional = PARAM_KEYS[dist]
    allowed = (*required, *optional, "distribution")
    for key in spec:
        if key not in allowed:
            # the closest key of any distribution (a misspelt 'probabilities' infers categorical)
            hint = closest(str(key), _ALL_PARAM_KEYS)
            raise ConfigError(
                f"parameters.{path}.{key}",
                key,
                f"one of {list(allowed)} for distribution {dist!r}",
                None if hint == key else hint,
            )
    for key in required:
        if key not in spec:
            raise ConfigError(
                f"parameters.{path}.{key}",
                None,
                f"distribution {dist!r} needs {' and '.join(repr(k) for k in required)}",
            )
    if "values" in spec:
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise ConfigError(f"parameters.{path}.values", values, "a non-empty list")
    if dist == "categorical_w_probabilities":
        p = spec["probabilities"]
        where = f"parameters.{path}.probabilities"
        if not isinstance(p, list) or not p or not all(_is_number(x) for x in p):
            raise ConfigError(where, p, "a non-empty list of numbers")
        if not all(math.isfinite(x) and x >= 0 for x in p):
            raise ConfigError(where, p, "probabilities >= 0 (finite)")
        if len(p) != len(spec["values"]):
            raise ConfigError(where, p, f"{len(spec['values'])} probabilities, one per value")
        if not np.isclose(sum(p), 1.0):
            raise ConfigError(where, p, f"probabilities summing to 1 (they sum to {sum(p):g})")
    if "min" in required:
        positive = dist.endswith("_values")
        _number(
            path,
            "min",
            spec,
            integer=dist == "int_uniform",
            low=0.0 if positive else None,
            strict=True,
        )
        _number(path, "max", spec, integer=dist == "int_uniform")
        if not spec["min"] < spec["max"]:
            raise ConfigError(
                f"parameters.{path}.max", spec["max"], f"a number > min ({spec['min']!r})"
            )
    for key, low, strict in (
        ("q", 0.0, True),
        ("sigma", 0.0, False),
        ("a", 0.0, False),
        ("b", 0.0, False),
        ("mu", None, False),
    ):
        if key in spec:
            _number(path, key, spec, low=low, strict=strict)
    return dist


def _grid_values(path: str, spec: dict[str, Any]) -> list[Any]:
    dist = _infer_distribution(path, spec)
    if dist == "constant":
        return [spec["value"]]
    if dist in ("categorical", "categorical_w_probabilities"):
        values = list(spec["values"])
        if not values:
            raise ConfigError(f"parameters.{path}.values", values, "a non-empty list")
        return values
    if dist == "int_uniform":
        return list(range(int(spec["min"]), int(spec["max"]) + 1))
    if dist == "q_uniform":
        q = spec.get("q", 1.0)
        n = int(math.floor((spec["max"] - spec["min"]) / q)) + 1
        return [spec["min"] + i * q for i in range(n)]
    raise ConfigError(
        f"parameters.{path}",
        spec,
        "method 'grid' needs discrete parameters ('value', 'values', 'int_uniform' or 'q_uniform');"
        f" distribution {dist!r} only works with method 'random'",
    )


def _sample(path: str, spec: dict[str, Any], rng: np.random.Generator) -> Any:
    dist = _infer_distribution(path, spec)
    lo, hi = spec.get("min"), spec.get("max")
    mu, sigma, q = spec.get("mu", 0.0), spec.get("sigma", 1.0), spec.get("q", 1.0)
    if dist == "constant":
        return spec["value"]
    if dist == "categorical":
        values = list(spec["values"])
        return values[int(rng.integers(len(values)))]
    if dist == "categorical_w_probabilities":
        values = list(spec["values"])
        p = np.asarray(spec["probabilities"], dtype=float)
        return values[int(rng.choice(len(values), p=p / p.sum()))]
    if dist == "int_uniform":
        return int(rng.integers(int(lo), int(hi) + 1))
    if dist == "uniform":
        return float(rng.uniform(lo, hi))
    if dist == "q_uniform":
        return float(np.round(rng.uniform(lo, hi) / q) * q)
    if dist == "log_uniform":  # bounds are exponents (natural log), as in wandb
        return float(np.exp(rng.uniform(lo, hi)))
    if dist == "log_uniform_values":
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    if dist == "inv_log_uniform":
        return float(np.exp(-rng.uniform(lo, hi)))
    if dist == "inv_log_uniform_values":
        return float(1.0 / np.exp(rng.uniform(np.log(1.0 / hi), np.log(1.0 / lo))))
    if dist == "q_log_uniform":
        return float(np.round(np.exp(rng.uniform(lo, hi)) / q) * q)
    if dist == "q_log_uniform_values":
        return float(np.round(np.exp(rng.uniform(np.log(lo), np.log(hi))) / q) * q)
    if dist == "normal":
        return float(rng.normal(mu, sigma))
    if dist == "q_normal":
        return float(np.round(rng.normal(mu, sigma) / q) * q)
    if dist == "log_normal":
        return float(np.exp(rng.normal(mu, sigma)))
    if dist == "q_log_normal":
        return float(np.round(np.exp(rng.normal(mu, sigma)) / q) * q)
    if dist == "beta":
        return float(rng.beta(spec.get("a", 1.0), spec.get("b", 1.0)))
    if dist == "q_beta":
        return float(np.round(rng.beta(spec.get("a", 1.0), spec.get("b", 1.0)) / q) * q)
    raise AssertionError(dist)  # unreachable: _infer_distribution validated it


def _positive_int(sweep: Mapping[str, Any], key: str) -> None:
    x = sweep[key]
    if not isinstance(x, int) or isinstance(x, bool) or x <= 0:
        raise ConfigError(f"sweep.{key}", x, "an int > 0")


def validate_sweep(sweep: Mapping[str, Any], *, local: bool = True) -> dict[str, dict[str, Any]]:
    """Check a sweep file before anything runs; return its flattened parameters.

    Args:
        sweep: the parsed sweep YAML.
        local: also require what the local expansion needs (method ``grid`` or ``random``, a
            ``count`` for ``random``).

    Returns:
        Dotted parameter name -> spec (see :func:`flatten_parameters`), every spec validated.

    Raises:
        ConfigError: the first problem, naming the field as written in the file.
    """
    if not isinstance(sweep, Mapping):
        raise ConfigError("sweep", sweep, "a mapping in the wandb sweep schema")
    for key in sweep:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(
                f"sweep.{key}",
                key,
                f"one of {list(TOP_LEVEL_KEYS)}",
                closest(str(key), TOP_LEVEL_KEYS),
            )
    method = sweep.get("method")
    if method is None:
        raise ConfigError("sweep.method", None, "'grid' or 'random' (required)")
    allowed_methods = METHODS if local else WANDB_METHODS
    if method not in allowed_methods:
        allowed = (
            "'grid' or 'random' (neurorl expands sweeps itself; 'bayes' needs a server: run it"
            " with `wandb sweep` and `wandb agent`)"
            if local
            else f"one of {list(WANDB_METHODS)}"
        )
        raise ConfigError("sweep.method", method, allowed, closest(str(method), allowed_methods))
    for key in ("program", "name", "description", "project", "entity", "base"):
        if key in sweep and not isinstance(sweep[key], str):
            raise ConfigError(f"sweep.{key}", sweep[key], "a string")
    if "command" in sweep and not (
        isinstance(sweep["command"], list) and all(isinstance(c, str) for c in sweep["command"])
    ):
        raise ConfigError(
            "sweep.command",
            sweep["command"],
            'a list of strings, e.g. [neurorl, run, "${program}", "${args}"]',
        )
    if "metric" in sweep:
        metric = sweep["metric"]
        if not isinstance(metric, Mapping) or not isinstance(metric.get("name"), str):
            raise ConfigError("sweep.metric", metric, "a mapping with a 'name' (a summary key)")
        for key in metric:
            if key not in ("name", "goal", "target", "impute"):
                raise ConfigError(
                    f"sweep.metric.{key}",
                    key,
                    "one of ['name', 'goal', 'target', 'impute']",
                    closest(str(key), ("name", "goal", "target", "impute")),
                )
        if "goal" in metric and metric["goal"] not in METRIC_GOALS:
            raise ConfigError(
                "sweep.metric.goal",
                metric["goal"],
                f"one of {list(METRIC_GOALS)}",
                closest(str(metric["goal"]), METRIC_GOALS),
            )
    for key in ("count", "run_cap"):
        if key in sweep:
            _positive_int(sweep, key)
    if "seed" in sweep and (not isinstance(sweep["seed"], int) or isinstance(sweep["seed"], bool)):
        raise ConfigError("sweep.seed", sweep["seed"], "an int")
    if local and method == "random" and "count" not in sweep and "run_cap" not in sweep:
        raise ConfigError(
            "sweep.count", None, "an int > 0 for method 'random' (the number of members)"
        )
    if "parameters" not in sweep:
        raise ConfigError("sweep.parameters", None, "a mapping of parameters (required)")
    params = flatten_parameters(sweep["parameters"])
    for name, spec in params.items():
        validate_parameter(name, spec)
    return params


def expand_sweep(sweep: Mapping[str, Any], seed: int = 0) -> list[dict[str, Any]]:
    """Expand a sweep into a list of members, each a dict of dotted path -> value.

    Grid sweeps enumerate the Cartesian product in the order the parameters are written (the
    members and order of wandb's grid search); random sweeps draw ``count`` members with a
    seeded generator (``seed`` or the sweep's ``seed`` key).

    Args:
        sweep: the parsed sweep YAML.
        seed: seed for random sweeps.

    Returns:
        A list of override dicts, one per member.

    Raises:
        ConfigError: the sweep is invalid (see :func:`validate_sweep`).
    """
    params = validate_sweep(sweep)
    if sweep["method"] == "grid":
        names = list(params)
        grids = [_grid_values(n, params[n]) for n in names]
        members = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grids)]
        cap = sweep.get("run_cap")
        return members[:cap] if cap else members
    rng = np.random.default_rng(sweep.get("seed", seed))
    count = int(sweep.get("count", sweep.get("run_cap")))
    return [{n: _sample(n, s, rng) for n, s in params.items()} for _ in range(count)]


#: seeds one sweep member runs: a member is one `neurorl run` under `wandb agent` (one wandb run)
SEEDS_PER_MEMBER = 1


def member_seeds(program: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, int]:
    """``training.seed`` and ``training.n_seeds`` of one sweep member.

    The one place both ways of running a sweep take them from, so a member runs the same seeds
    either way: ``neurorl sweep`` (which then vmaps members that differ only in their seed as
    one group) and a ``wandb agent`` starting ``neurorl run PROGRAM --name=value ...``. A member
    is one seed: its ``training.seed`` parameter, else the program's ``training.seed`` (default
    0); the program's ``training.n_seeds`` is replaced by 1 (say which seeds to run under
    ``training.seed: {values: [...]}``; :func:`seeds_note` says so when it replaces more).

    Args:
        program: the experiment config dict the sweep's members override (``program``).
        params: the member's parameters (dotted config paths -> values).

    Returns:
        ``{"training.seed": s, "training.n_seeds": 1}``.

    Raises:
        ConfigError: the member sets ``training.n_seeds`` to more than one seed (a member is one
            wandb run; list the seeds under ``training.seed``), or a seed that is not an int.
    """
    training = program.get("training") if isinstance(program, Mapping) else None
    training = training if isinstance(training, Mapping) else {}
    n = params.get("training.n_seeds", SEEDS_PER_MEMBER)
    if n != SEEDS_PER_MEMBER:
        raise ConfigError(
            "sweep.parameters.training.n_seeds", n,
            f"{SEEDS_PER_MEMBER} (or no entry): each member is one seed, as one wandb run; "
            "list the seeds to run under training.seed: {values: [0, 1, 2]}")
    seed = params.get("training.seed", training.get("seed", 0))
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError("training.seed", seed, "an int")
    return {"training.seed": seed, "training.n_seeds": SEEDS_PER_MEMBER}


def seeds_note(program: Mapping[str, Any], program_name: str | Path,
               members: Sequence[Mapping[str, Any]] | None = None) -> str | None:
    """One line when the program's ``training.n_seeds`` is replaced by :func:`member_seeds`
    without the sweep saying which seeds to run.

    Args:
        program: the experiment config dict (the sweep's ``program``).
        program_name: its path, for the message.
        members: the sweep's members (dotted overrides each; a wandb agent's run: its one
            member). No note when every member names its seeds (``training.seed``, or
            ``training.n_seeds: 1`` written out): the sweep file already lists them.

    Returns:
        The note, or None where it does not apply.
    """
    training = program.get("training") if isinstance(program, Mapping) else None
    n = training.get("n_seeds", 1) if isinstance(training, Mapping) else 1
    if n == SEEDS_PER_MEMBER:
        return None
    if members and all("training.seed" in m or "training.n_seeds" in m for m in members):
        return None
    return (f"note: {program_name} has training.n_seeds: {n}; a sweep member is one seed, so "
            f"each member runs {SEEDS_PER_MEMBER} (list the seeds under training.seed: "
            "{values: [...]} in the sweep file)")


def program_path(sweep: Mapping[str, Any], sweep_path: str | Path) -> Path:
    """The experiment config a sweep's members override (``program``, or the legacy ``base``).

    ``program`` is what ``wandb agent`` substitutes for ``${program}`` and so is relative to the
    directory the agent runs in; the local expansion looks there first, then in the sweep file's
    directory and its parents (so ``neurorl sweep`` also works from elsewhere). ``base`` is
    relative to the sweep file.

    Args:
        sweep: the parsed sweep YAML.
        sweep_path: where the sweep file is.

    Returns:
        The path of an existing experiment config.

    Raises:
        ConfigError: neither key is given, or the file is not found.
    """
    here = Path(sweep_path).resolve().parent
    if "program" in sweep:
        prog = Path(str(sweep["program"]))
        tried = [prog] if prog.is_absolute() else [Path.cwd() / prog]
        if not prog.is_absolute():
            tried += [d / prog for d in (here, *here.parents)]
        for p in tried:
            if p.is_file():
                return p
        raise ConfigError(
            "sweep.program",
            str(prog),
            "an experiment config, relative to the directory `wandb agent` / `neurorl sweep` run"
            f" in (tried {tried[0]} and the sweep file's directory and its parents)",
        )
    if "base" in sweep:
        base = Path(str(sweep["base"]))
        p = base if base.is_absolute() else here / base
        if not p.is_file():
            raise ConfigError("sweep.base", str(base), f"an experiment config (no file {p})")
        return p
    if any(k in sweep for k in ("env", "agent", "training", "hardware", "shifts")):
        raise ConfigError(
            "sweep", str(sweep_path), "a sweep file (program, method, parameters); this is an "
            f"experiment config: run it with `neurorl run {sweep_path}`"
        )
    raise ConfigError(
        "sweep.program", None, "the path of the experiment config the members override"
    )


_AGENT_ARG = re.compile(r"^--([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$", re.DOTALL)


def agent_value(raw: str) -> Any:
    """The value of a ``--name=value`` argument that ``wandb agent`` built with ``str(value)``.

    Python literals (numbers, quoted strings, ``True``/``False``/``None``, lists and dicts in
    their repr, as wandb writes them for list- or dict-valued parameters) are read with
    :func:`ast.literal_eval`; anything else (a bare string such as ``eprop_ac``, ``inf``) as a
    ``--set`` value.

    Args:
        raw: the text after ``=``.

    Returns:
        The parsed value.
    """
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        from neurorl.experiment.config import parse_override

        return parse_override(f"value={raw}")[1]


def agent_overrides(argv: Sequence[str]) -> list[str]:
    """``--name=value`` arguments (as ``wandb agent`` passes them) -> ``--set`` items.

    Args:
        argv: the arguments ``neurorl run`` did not recognise.

    Returns:
        ``"name=<value as YAML>"`` items, in order, for :func:`neurorl.experiment.config.from_dict`.

    Raises:
        ConfigError: an argument that is not ``--name=value``.
    """
    out = []
    for arg in argv:
        m = _AGENT_ARG.match(arg)
        if m is None:
            raise ConfigError(
                "arguments",
                arg,
                "--NAME=VALUE with a dotted config path (as `wandb agent` passes sweep"
                " parameters, e.g. --training.seed=3) or --set NAME=VALUE",
            )
        value = agent_value(m.group(2))
        try:  # flow-style YAML that --set reads back exactly (PyYAML writes 1e-05 as 1.0e-05)
            text = yaml.safe_dump([value], default_flow_style=True, width=1 << 30).strip()[1:-1]
        except yaml.YAMLError:
            raise ConfigError(f"--{m.group(1)}", m.group(2), "a plain value") from None
        out.append(f"{m.group(1)}={text}")
    return out
