"""Calibrate a learning engine's trace and tag scales to the ranges a rule reaches.

A Loihi trace is a 7-bit integer and a tag a 9-bit signed one; how many codes one unit of our
traces (one spike adds 1.0) or eligibilities gets is a mapping choice (``trace_scale``,
``tag_scale``), like the impulse a Lava user sets after looking at the ranges their traces
reach. One fixed choice per chip (Loihi 2: 16 / 16) saturates R-STDP's place-cell traces
(up to ~17 spikes against 127 / 16 = 7.9). ``hardware.engine: {trace_scale: auto,
tag_scale: auto}`` picks them per run instead:

1. the same agent and network run in float (no chip: no rounding, no saturation) for
   ``calibration_steps`` env steps (default 2000; shifts off), one member, with a key split off
   the run's seed (:func:`calibration_key`: the run's own keys are unchanged), as one jitted
   pass before the run's;
2. after every env step the largest ``|trace|`` and ``|tag|`` of every rule state the engine
   quantises are recorded (:func:`rule_ranges`: the fields
   :func:`~neurorl.hardware.learning_engine.trace_fields` names, which
   :func:`~neurorl.hardware.learning_engine.on_engine` rounds with ``trace_scale`` (R-STDP
   ``x_pre, y_post``; e-prop ``p, psi``) and ``tag_scale`` (R-STDP ``eligibility, ltp, ltd``;
   e-prop ``ebar, eps_a``));
3. ``scale = largest code / (max reached x HEADROOM)`` (:func:`scale_for`), so the calibrated
   range covers the float range with :data:`HEADROOM` to spare (peaks between env-step
   samples, other episodes). One scale per chip, as the engine has: the maximum over rules.

The chosen scales replace ``"auto"`` in the run's config (the run is then the same as one
configured with those numbers) and are recorded with what they came from
(``summary.json``'s ``engine_calibration``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from neurorl.errors import ConfigError
from neurorl.hardware.learning_engine import (
    AUTO_FIELDS,
    engine_with,
    largest_codes,
    split_auto,
    trace_fields,
)

Array = jax.Array

#: the calibrated range is this much wider than the largest value the float run reached
HEADROOM = 1.25
#: folded into the run's seed key for the calibration run's key
CALIBRATION_SALT = 0xCA1B


def calibration_key(seed: int) -> Array:
    """The calibration run's key: ``fold_in(key(seed), CALIBRATION_SALT)`` (the run's members
    use ``key(seed + i)``, untouched)."""
    return jax.random.fold_in(jax.random.key(int(seed)), CALIBRATION_SALT)


def scale_for(largest_code: float, reached: float, default: float,
              headroom: float = HEADROOM) -> float:
    """``largest_code / (reached x headroom)``; ``default`` when nothing was reached (a rule
    without tags, a silent network) or the engine stores floats."""
    if not (reached > 0 and math.isfinite(reached) and math.isfinite(largest_code)):
        return float(default)
    return float(largest_code / (reached * headroom))


def _is_rule_state(x: Any) -> bool:
    if not dataclasses.is_dataclass(x) or isinstance(x, type):
        return False
    traces, tags = trace_fields(x)
    return bool(traces or tags)


def rule_ranges(agent_state: Any) -> dict[str, Array]:
    """The largest ``|trace|`` and ``|tag|`` of every engine-quantised rule state in an agent
    state (a probe for ``make_train``): ``{"trace/<path>": max, "tag/<path>": max}``, scalars
    (0 for a rule without such fields)."""
    leaves = jax.tree_util.tree_flatten_with_path(agent_state, is_leaf=_is_rule_state)[0]
    out: dict[str, Array] = {}
    for path, x in leaves:
        if not _is_rule_state(x):
            continue
        name = jax.tree_util.keystr(path)
        traces, tags = trace_fields(x)
        for kind, fields in (("trace", traces), ("tag", tags)):
            vals = [jnp.max(jnp.abs(getattr(x, n))) for n in fields]
            out[f"{kind}/{name}"] = (jnp.max(jnp.stack(vals)) if vals
                                     else jnp.zeros((), jnp.float32))
    return out


def calibrate_train_config(cfg: Any, seed: int = 0, *, verbose: bool = True
                           ) -> tuple[Any, dict[str, Any]]:
    """Resolve ``"auto"`` scales of ``cfg.chip_engine`` by a float calibration run.

    Args:
        cfg: a :class:`~neurorl.experiment.train.TrainConfig` whose ``chip_engine`` has
            ``trace_scale`` and/or ``tag_scale`` set to ``"auto"`` (validated).
        seed: the run's seed (the experiment's ``training.seed``); the calibration run uses
            :func:`calibration_key` of it.
        verbose: print the chosen scales.

    Returns:
        ``(cfg, record)``: the config with the scales as numbers (``calibration_steps``
        dropped), and what they came from: ``trace_scale``, ``tag_scale``, ``calibration_steps``,
        ``headroom``, ``seed``, ``key``, ``largest_trace_code``, ``largest_tag_code``,
        ``max_trace``, ``max_tag`` and ``per_rule`` (the maxima per rule state).

    Raises:
        ConfigError: as :func:`~neurorl.experiment.train.make_train` for the float run.
    """
    from neurorl.experiment.train import make_train

    fixed, auto, steps = split_auto(dict(cfg.chip_engine or {}), "chip_engine")
    if not auto:
        return cfg, {}
    engine = engine_with(str(cfg.chip), fixed, field="chip_engine")
    n_steps = max(1, -(-int(steps) // cfg.n_envs)) * cfg.n_envs
    fcfg = dataclasses.replace(cfg, chip=None, off_chip_learning=False, chip_device=None,
                               chip_engine=None, shifts=None, n_steps=n_steps, n_seeds=1)
    train = make_train(fcfg, devices=jax.devices()[:1], block=None, probe=rule_ranges)
    out = train(calibration_key(seed))
    per_rule = {k[len("engine_range/"):]: float(np.max(np.asarray(v)))
                for k, v in out["metrics"].items() if k.startswith("engine_range/")}
    max_trace = max([v for k, v in per_rule.items() if k.startswith("trace/")], default=0.0)
    max_tag = max([v for k, v in per_rule.items() if k.startswith("tag/")], default=0.0)
    top_trace, top_tag = largest_codes(engine)
    chosen = {"trace_scale": scale_for(top_trace, max_trace, engine.trace_scale),
              "tag_scale": scale_for(top_tag, max_tag, engine.tag_scale)}
    scales = {k: chosen[k] for k in AUTO_FIELDS if k in auto}
    record = {**scales, "calibration_steps": n_steps, "headroom": HEADROOM, "seed": int(seed),
              "key": f"fold_in(key({int(seed)}), {CALIBRATION_SALT:#x})",
              "largest_trace_code": top_trace, "largest_tag_code": top_tag,
              "max_trace": max_trace, "max_tag": max_tag, "per_rule": per_rule}
    if verbose:
        print(f"engine calibration ({cfg.chip}, {n_steps} float env steps): "
              + ", ".join(f"{k} = {v:.4g}" for k, v in scales.items())
              + f" (max |trace| {max_trace:.4g}, max |tag| {max_tag:.4g}, "
              f"headroom {HEADROOM})", flush=True)
    return dataclasses.replace(cfg, chip_engine={**fixed, **scales}), record


__all__ = ["CALIBRATION_SALT", "HEADROOM", "calibrate_train_config", "calibration_key",
           "rule_ranges", "scale_for"]


def recorded_scales(cfg: Any, record: Mapping[str, Any] | None
                    ) -> tuple[Any, dict[str, Any]]:
    """Resolve ``"auto"`` scales of ``cfg.chip_engine`` without a calibration run.

    Args:
        cfg: a :class:`~neurorl.experiment.train.TrainConfig` with ``"auto"`` scales.
        record: an earlier :func:`calibrate_train_config` record (a checkpoint's or
            ``summary.json``'s ``engine_calibration``): its scales are used, so a resumed run
            learns with the scales it started with. ``None``: the chip's default scales, for
            builds that never train (``neurorl validate``, state templates).

    Returns:
        ``(cfg, record)``: the config with numbers for the scales, and ``record`` (``{}`` for
        the defaults).

    Raises:
        ConfigError: a record without a number for one of the ``"auto"`` scales.
    """
    fixed, auto, _ = split_auto(dict(cfg.chip_engine or {}), "chip_engine")
    if not auto:
        return cfg, dict(record or {})
    engine = engine_with(str(cfg.chip), fixed, field="chip_engine")
    if record is None:
        scales = {k: float(getattr(engine, k)) for k in auto}
        return dataclasses.replace(cfg, chip_engine={**fixed, **scales}), {}
    scales = {}
    for k in auto:
        v = record.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ConfigError(f"engine_calibration.{k}", v,
                              "the positive scale an earlier calibration recorded")
        scales[k] = float(v)
    return dataclasses.replace(cfg, chip_engine={**fixed, **scales}), dict(record)
