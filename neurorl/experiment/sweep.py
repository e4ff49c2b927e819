"""Sweeps in the wandb sweep schema, expanded locally (no sweep server needed).

A sweep file looks like a wandb sweep configuration::

    method: grid            # grid | random
    base: ../cartpole_eprop.yaml   # neurorl extension: the experiment config the members override
    count: 10               # random only: number of members
    parameters:
      agent.name: {values: [rstdp, eprop, bptt]}
      training.seed: {values: [0, 1, 2, 3, 4]}
      agent.lr: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-2}
      agent:                # nested parameters, as in wandb
        parameters:
          n_hidden: {value: 64}

Parameter names are dotted config paths. ``values``/``value``/``distribution`` follow
``wandb/sweeps`` ``schema.json``; wandb's default inference applies (``values`` -> categorical, int
``min``/``max`` -> ``int_uniform``, float ``min``/``max`` -> ``uniform``). Only ``grid`` and ``random``
can be expanded without a server; ``bayes`` is rejected with a clear message.

References:
    wandb sweep configuration keys: https://docs.wandb.ai/models/sweeps/sweep-config-keys
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from neurorl.errors import ConfigError, closest

METHODS = ("grid", "random")
TOP_LEVEL_KEYS = (
    "method",
    "parameters",
    "count",
    "run_cap",
    "base",
    "name",
    "description",
    "metric",
    "program",
    "command",
    "project",
    "entity",
    "early_terminate",
    "seed",
)
DISTRIBUTIONS = (
    "constant",
    "categorical",
    "categorical_w_probabilities",
    "int_uniform",
    "uniform",
    "q_uniform",
    "log_uniform",
    "log_uniform_values",
    "inv_log_uniform",
    "inv_log_uniform_values",
    "q_log_uniform",
    "q_log_uniform_values",
    "normal",
    "q_normal",
    "log_normal",
    "q_log_normal",
    "beta",
    "q_beta",
)


def flatten_parameters(params: Mapping[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Flatten nested ``parameters`` blocks into dotted names -> parameter spec."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in params.items():
        path = f"{prefix}{name}"
        if not isinstance(spec, Mapping):
            raise ConfigError(
                f"parameters.{path}",
                spec,
                "a mapping with 'value', 'values', 'distribution' or nested 'parameters'",
            )
        if "parameters" in spec:
            out.update(flatten_parameters(spec["parameters"], prefix=f"{path}."))
        else:
            out[path] = dict(spec)
    return out


def _infer_distribution(path: str, spec: dict[str, Any]) -> str:
    if "distribution" in spec:
        dist = spec["distribution"]
        if dist not in DISTRIBUTIONS:
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
    if "min" in spec and "max" in spec:
        if isinstance(spec["min"], int) and isinstance(spec["max"], int):
            return "int_uniform"
        return "uniform"
    raise ConfigError(
        f"parameters.{path}",
        spec,
        "one of 'value', 'values', 'min'/'max' or 'distribution'",
    )


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


def validate_sweep(sweep: Mapping[str, Any]) -> None:
    """Check top-level keys and the method before expanding."""
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
    if method not in METHODS:
        allowed = "'grid' or 'random' (neurorl expands sweeps itself; 'bayes' needs a server)"
        raise ConfigError("sweep.method", method, allowed, closest(str(method), METHODS))
    if method == "random" and not isinstance(sweep.get("count", sweep.get("run_cap")), int):
        raise ConfigError("sweep.count", sweep.get("count"), "an int > 0 for method 'random'")
    if "parameters" not in sweep or not isinstance(sweep["parameters"], Mapping):
        raise ConfigError("sweep.parameters", sweep.get("parameters"), "a mapping of parameters")


def expand_sweep(sweep: Mapping[str, Any], seed: int = 0) -> list[dict[str, Any]]:
    """Expand a sweep into a list of members, each a dict of dotted path -> value.

    Grid sweeps enumerate the Cartesian product in the order the parameters are written; random
    sweeps draw ``count`` members with a seeded generator (``seed`` or the sweep's ``seed`` key).

    Args:
        sweep: the parsed sweep YAML.
        seed: seed for random sweeps.

    Returns:
        A list of override dicts, one per member.
    """
    validate_sweep(sweep)
    params = flatten_parameters(sweep["parameters"])
    if sweep["method"] == "grid":
        names = list(params)
        grids = [_grid_values(n, params[n]) for n in names]
        members = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grids)]
        cap = sweep.get("run_cap")
        return members[:cap] if cap else members
    rng = np.random.default_rng(sweep.get("seed", seed))
    count = int(sweep.get("count", sweep.get("run_cap")))
    return [{n: _sample(n, s, rng) for n, s in params.items()} for _ in range(count)]
