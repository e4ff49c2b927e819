"""Run, resume, sweep and report experiments (the CLI's engine).

A run is chunked: the jitted ``run_chunk`` advances every seed by ``training.chunk_steps`` env
steps; between chunks the host turns the per-step metrics into episode records, writes JSONL (and
wandb), updates the progress bar and writes a checkpoint (write-then-rename). Resuming loads the
checkpoint, truncates the logs to the checkpointed position and continues with the same chunk
boundaries, so a killed-and-resumed run produces exactly the records of an uninterrupted one.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from neurorl.errors import ConfigError, NeurorlError
from neurorl.experiment import config as C
from neurorl.experiment import shiftspec
from neurorl.experiment.checkpoint import (
    atomic_write_text,
    has_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from neurorl.experiment.reporting import RUN_FILES, print_report_tables, print_run_files, report

# ----------------------------------------------------------------------------------------------
# config -> training function
# ----------------------------------------------------------------------------------------------


def train_config(cfg: C.ExperimentConfig, n_seeds: int | None = None):
    """The :class:`~neurorl.experiment.train.TrainConfig` of an experiment config."""
    from neurorl.experiment.train import TrainConfig

    return TrainConfig(
        env_id=cfg.env.id,
        agent=cfg.agent.name,
        agent_kwargs=dict(cfg.agent.hyper),
        env_kwargs=dict(cfg.env.params),
        n_steps=cfg.training.steps,
        n_envs=cfg.training.n_envs,
        substeps=cfg.agent.substeps,
        n_seeds=cfg.training.n_seeds if n_seeds is None else n_seeds,
        obs_range=None if cfg.agent.obs_range is None else tuple(cfg.agent.obs_range),
        shifts=cfg.shifts.model_dump(mode="json"),
        chip=None if cfg.hardware.chip == "float" else cfg.hardware.chip,
        off_chip_learning=cfg.hardware.off_chip_learning,
        network=cfg.agent.network,
        chip_device=cfg.hardware.device,
        chip_engine=cfg.hardware.engine,
        context=cfg.agent.context,
    )


# TrainConfig / agent field names -> the YAML paths a user wrote
_YAML_PATHS = {
    "n_steps": "training.steps",
    "n_envs": "training.n_envs",
    "n_seeds": "training.n_seeds",
    "substeps": "agent.substeps",
    "obs_range": "agent.obs_range",
    "chip": "hardware.chip",
    "chip_device": "hardware.device",
    "chip_engine": "hardware.engine",
    "agent": "agent.name",
    "env_id": "env.id",
}


def yaml_field(cfg: C.ExperimentConfig, field: str) -> str:
    """The YAML path of an error field raised below the config layer (``agent.eprop_ac.lr`` ->
    ``agent.hyper.lr``, ``n_steps`` -> ``training.steps``)."""
    field = str(field)
    for prefix in (f"agent.{cfg.agent.name}.", "agent_kwargs."):
        if field.startswith(prefix):
            return "agent.hyper." + field[len(prefix) :]
    if field.startswith(f"{cfg.env.id}.params."):
        return "env.params." + field[len(f"{cfg.env.id}.params.") :]
    head, _, rest = field.partition(".")
    if field == "agent.context" or field.startswith(("agent.network.", "agent.hyper.",
                                                      "agent.context.")):
        return field  # already the YAML path (agents.description names it so)
    if head in _YAML_PATHS:
        return _YAML_PATHS[head] + (f".{rest}" if rest else "")
    return field


def build(cfg: C.ExperimentConfig, *, check_memory: bool = True,
          calibration: bool | Mapping[str, Any] = True):
    """Validate everything that can be validated on the host and build the training function.

    Errors raised below the config layer (agent factories, env params, the chip) are renamed to
    the YAML path the user wrote. With ``check_memory``, a run whose state and metrics cannot fit
    is refused first (:mod:`neurorl.experiment.resources`), before any agent is built.

    ``calibration`` (``hardware.engine`` scales ``"auto"``, :func:`make_train`): ``True``
    calibrates them by a float run, a recorded ``engine_calibration`` reuses its scales (a
    resumed run), ``False`` takes the chip's defaults without running anything (checks and
    state templates that never train).

    Raises:
        ConfigError: named by YAML path.
    """
    from neurorl.experiment.host_train import build_host, is_host_env
    from neurorl.experiment.resources import check_memory as _check_memory

    if is_host_env(cfg.env.id):  # gymnasium:<Id>: the host loop
        return build_host(cfg)
    from neurorl.experiment.train import make_train

    tc = train_config(cfg)
    try:
        if check_memory:
            _check_memory(
                tc,
                min(cfg.training.chunk_steps, cfg.training.steps),
                names={"n_rec": "agent.hyper.n_rec", "n_envs": "training.n_envs",
                       "n_seeds": "training.n_seeds"},
            )
        # "auto" engine scales: calibrated by a float run keyed off training.seed
        return make_train(tc, calibration_seed=cfg.training.seed, calibration=calibration)
    except ConfigError as e:
        field = yaml_field(cfg, e.field)
        if field == e.field:
            raise
        raise ConfigError(field, e.value, e.allowed, e.suggestions) from None


# ----------------------------------------------------------------------------------------------
# metrics -> records
# ----------------------------------------------------------------------------------------------


def _neuron_count(train: Any, agent_state_one: Any) -> int:
    """Neurons the chip updates every step: every group of the agent's compiled network but
    its input relays (counted group by group, so equal-sized layers each count)."""
    import jax

    rt = getattr(train.agent, "runtime", None)
    if rt is not None:
        return int(sum(g.n for g in rt.net.groups.values() if g.model.name != "Input"))
    return int(sum(int(np.shape(w)[-1]) for w in jax.tree.leaves(
        train.agent.weights(agent_state_one)) if np.ndim(w) >= 2))


def energy_breakdown_per_step(
    chip: str, synops: float, neurons: int, substeps: int, n_weights: int
) -> Any:
    """Energy of one env step on ``chip`` by term (:class:`~neurorl.hardware.energy.
    EnergyBreakdown`: synaptic, neuron, learning, static, total in J, and ``missing``).

    Synaptic events are counted by the agent; neuron updates are ``neurons x substeps``; learning
    updates are one per learnable synapse per env step; static power over ``substeps`` chip steps.
    Priced by :func:`neurorl.hardware.energy.energy` (for agents without a compiled network).
    """
    from neurorl.hardware.energy import ActivityCounts, energy

    counts = ActivityCounts(
        synops_ac=float(synops),
        neuron_updates=float(neurons * substeps),
        active_neuron_updates=float(neurons * substeps),
        learning_updates=float(n_weights),
        steps=float(substeps),
    )
    return energy(counts, chip)


def energy_per_step(
    chip: str, synops: float, neurons: int, substeps: int, n_weights: int
) -> float | None:
    """Energy (J) of one env step: the total of :func:`energy_breakdown_per_step`."""
    return float(energy_breakdown_per_step(chip, synops, neurons, substeps, n_weights).total)


#: the ChipSpec fields the energy model prices with (their provenance goes into summary.json)
ENERGY_FIELDS = ("e_synop_pj", "e_neuron_pj", "e_neuron_idle_pj", "e_learn_pj",
                 "static_power_w", "step_time_s")
#: the terms of an energy breakdown, which sum to its total
ENERGY_PARTS = ("synaptic", "neuron", "learning", "static")


def energy_model_info(chip: str, missing: Sequence[str], counts: str | None) -> dict[str, Any]:
    """What ``summary.json`` says about the energy numbers: which chip constants priced them,
    which were not located (counted as 0: ``missing``, from the energy model itself) and which
    are unverified estimates (``assumed``: the chip's ``unverified`` energy fields, with their
    values), and how the activity was counted.

    Args:
        chip: the chip name (``hardware.chip``).
        missing: the terms the energy model named as not located (``EnergyBreakdown.missing``).
        counts: how the activity was counted, in words (``None`` without an energy model).

    Returns:
        ``{"chip", "energy_scope", "constants", "missing", "assumed", "parts", "counts",
        "has_energy_model"}``.
    """
    from neurorl.hardware.chips import get_chip

    spec = get_chip(chip)
    return {
        "chip": spec.name,
        "energy_scope": spec.energy_scope,
        "constants": {f: getattr(spec, f) for f in ENERGY_FIELDS},
        "missing": sorted(set(missing)),
        "assumed": {f: getattr(spec, f) for f in spec.unverified if f in ENERGY_FIELDS},
        "parts": list(ENERGY_PARTS),
        "counts": counts,
        "has_energy_model": has_energy_model(spec.name),
    }


def network_energy_fn(train: Any, substeps: int):
    """Energy of one env step from the agent's compiled network: ``synops -> EnergyBreakdown``
    (J by term and total), or None.

    The counts of one env step (``substeps`` steps) are the compiled network's own
    (``cnet.hardware.counts``): a neuron update per neuron of every group per step and, when the
    rules learn on the chip, one learning update per plastic synapse per step (none when
    learning is off-chip: the host learns); the synaptic events are the agent's measured synops
    (spikes x fan-out per connection, the backend's definition). Every neuron update is counted
    as active (the per-step metrics carry no per-neuron input counts). Priced by
    ``cnet.hardware.energy`` with the chip's constants.

    Returns:
        None when the agent has no compiled network or its backend has no chip.
    """
    import jax.numpy as jnp

    net = getattr(getattr(train.agent, "runtime", None), "net", None)
    hw = getattr(net, "hardware", None)
    if hw is None or getattr(hw, "chip", None) is None:
        return None
    zero = {g: jnp.zeros((substeps, grp.n), jnp.float32) for g, grp in net.groups.items()}
    base = hw.counts(zero).activity()
    updates = float(np.sum(base.neuron_updates))
    learning = float(np.sum(base.learning_updates))

    def fn(synops: float, pulses: float = 0.0, transfer_reads: float = 0.0):
        from neurorl.hardware.energy import ActivityCounts

        counts = ActivityCounts(synops_ac=float(synops), neuron_updates=updates,
                                active_neuron_updates=updates,
                                learning_updates=learning + float(pulses),
                                transfer_reads=float(transfer_reads), steps=float(substeps))
        return hw.energy(counts)

    return fn


def crossbar_learning_totals(train: Any, rs: Any) -> dict[str, np.ndarray] | None:
    """Per member, a crossbar's on-chip learning so far: programming pulses of every device
    (``EngineState.ops``; Tiki-Taka: A's and C's) and the weights Tiki-Taka's transfers read
    from the fast device (:func:`neurorl.hardware.memristor.transfer_reads`), as float64
    ``[S]`` arrays; None without a crossbar learning on chip (digital engines' synaptic updates
    are priced from the network's counts instead)."""
    import jax

    est = getattr(rs, "engine", None)
    if not est:
        return None
    with_devices = [e for e in est.values() if getattr(e, "devices", None) is not None]
    if not with_devices:
        return None
    from neurorl.hardware.memristor import transfer_reads

    device = train.agent.runtime.net.hardware.chip.device
    count = jax.vmap(lambda d: transfer_reads(d, device))
    return {
        "pulses": sum(np.asarray(e.ops, np.float64) for e in with_devices),
        "transfer_reads": sum(np.asarray(count(e.devices), np.float64) for e in with_devices),
    }


def chip_step_time(chip: str, substeps: int) -> float:
    """Chip time of one env step in seconds: ``substeps x dt`` of ``chip`` (model time step)."""
    from neurorl.hardware.chips import get_chip

    return substeps * get_chip(chip).dt_ms * 1e-3


def has_energy_model(chip: str) -> bool:
    """Whether ``chip`` has any located energy constant (the ``float`` reference has none)."""
    from neurorl.hardware.chips import get_chip

    spec = get_chip(chip)
    fields = ("e_synop_pj", "e_neuron_pj", "e_learn_pj", "static_power_w")
    return any(getattr(spec, f, None) is not None for f in fields)


def chunk_records(
    metrics: Mapping[str, Any],
    start_step: int,
    n_envs: int,
    *,
    energy_fn=None,
    window: int = 100,
    history: list[list[float]] | None = None,
    task_ids: Any = None,
    learning: Sequence[Mapping[str, float]] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Episode and chunk records from a chunk's metrics ``[T, S, B]`` (host side).

    ``env_step`` of an episode is the member's total env step at which it ended:
    ``start_step + (t + 1) * n_envs``. ``learning`` (per member, a crossbar learning on chip):
    programming pulses and Tiki-Taka transfer reads per env step of the chunk, passed to
    ``energy_fn`` and recorded as ``learning_pulses_per_step`` / ``transfer_reads_per_step``.
    """
    done = np.asarray(metrics["done"])  # [T, S, B]
    ret = np.asarray(metrics["episode_return"])
    length = np.asarray(metrics["episode_length"])
    spikes = np.asarray(metrics["spikes"])
    synops = np.asarray(metrics["synops"])
    wnorm = np.asarray(metrics["weight_norm"])  # [T, S]
    tid = None if task_ids is None else np.asarray(task_ids)
    # contextual inference (agent.context): the context in use and the contexts recruited [T, S]
    ctx = np.asarray(metrics["context"]) if "context" in metrics else None
    n_ctx = np.asarray(metrics["contexts_used"]) if "contexts_used" in metrics else None
    n_sw = np.asarray(metrics["context_switches"]) if "context_switches" in metrics else None
    T, S = done.shape[:2]
    episodes: list[dict] = []
    chunks: list[dict] = []
    for s in range(S):
        t_idx, b_idx = np.nonzero(done[:, s])
        sps = float(spikes[:, s].mean())
        syn = float(synops[:, s].mean())
        extra = dict(learning[s]) if learning is not None else {}
        e_step, parts, missing = (energy_fn(syn, **extra) if energy_fn is not None else None,
                                  None, ())
        if e_step is not None and hasattr(e_step, "total"):  # an EnergyBreakdown: its parts too
            parts = {k: float(getattr(e_step, k)) for k in ENERGY_PARTS}
            missing = tuple(e_step.missing)
            e_step = float(e_step.total)
        for t, b in zip(t_idx, b_idx, strict=True):
            rec = {
                "member": s,
                "env_step": int(start_step + (t + 1) * n_envs),
                "return": float(ret[t, s, b]),
                "length": int(length[t, s, b]),
                "env": int(b),
                "task_id": None
                if tid is None
                else int(tid[t, s, b] if tid.ndim == 3 else tid[t, s]),
                "spikes_per_step": sps,
                "energy_per_step_j": e_step,
                **({"context": int(ctx[t, s])} if ctx is not None else {}),
            }
            episodes.append(rec)
            if history is not None:
                history[s].append(rec["return"])
        recent = history[s][-window:] if history is not None and history[s] else []
        chunks.append(
            {
                "member": s,
                "env_step": int(start_step + T * n_envs),
                "episodes": int(len(t_idx)),
                "mean_return": float(np.mean(recent)) if recent else None,
                "spikes_per_step": sps,
                "synops_per_step": syn,
                "weight_norm": float(wnorm[-1, s]),
                "energy_per_step_j": e_step,
                **({"energy_parts_j": parts} if parts is not None else {}),
                **({"learning_pulses_per_step": extra["pulses"],
                    "transfer_reads_per_step": extra["transfer_reads"]} if extra else {}),
                **({"energy_missing": list(missing)} if missing else {}),
                **({"context": int(ctx[-1, s]), "contexts_used": int(n_ctx[-1, s]),
                    "context_switches": int(n_sw[-1, s])}  # since the start of the run
                   if ctx is not None else {}),
            }
        )
    return episodes, chunks


# ----------------------------------------------------------------------------------------------
# the run loop
# ----------------------------------------------------------------------------------------------


def members_of(cfg: C.ExperimentConfig, label: str | None = None) -> list[dict[str, Any]]:
    base = C.to_dict(cfg)
    out = []
    for i in range(cfg.training.n_seeds):
        seed = cfg.training.seed + i
        out.append(
            {
                "name": f"{cfg.name}-s{seed}",
                "job_type": label or cfg.agent.name,
                "seed": seed,
                "label": label or cfg.agent.name,
                "config": {**base, "member_seed": seed},
            }
        )
    return out


def member_keys(seed: int, n_seeds: int):
    """One PRNG key per member: ``jax.random.key(seed + i)``.

    Member *i* of any group gets the key a single run with ``training.seed = seed + i`` gets, so
    its initial state and every key it draws are bit-identical to that single run's, whatever it
    is batched with (not ``split(key(seed), n)[i]``, which depends on the group).
    """
    import jax
    import jax.numpy as jnp

    return jax.vmap(jax.random.key)(jnp.arange(seed, seed + n_seeds, dtype=jnp.uint32))


def config_fingerprint(cfg: C.ExperimentConfig) -> str:
    """SHA-256 of everything that shapes a run's numbers (all but ``logging``/``description``).

    A checkpoint records it; resuming under another config is refused before any log is touched.
    """
    import hashlib

    d = C.to_dict(cfg)
    d.pop("logging", None)
    d.pop("description", None)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode("utf-8")).hexdigest()


def first_non_finite(
    metrics: Mapping[str, Any],
    rs: Any,
    start_step: int,
    n_envs: int,
    initial_norm: Any = None,
    max_growth: float | None = None,
) -> tuple[str, int, int] | None:
    """The first numeric fault of a chunk: ``(quantity, member, env_step)`` or ``None``.

    Checked host side at the chunk boundary, from the chunk's per-step metrics (the weight norm
    and finished episodes' returns, so the env step is exact) and then from every floating leaf
    of the runner state (weights, traces, optimizer and env state) at the chunk's end. With
    ``initial_norm`` (per member) and ``max_growth``, a weight norm above ``max_growth x`` the
    initial one is a fault too (diverging weights, e.g. a learning rate of 1e3).
    """
    import jax

    T = np.shape(metrics["weight_norm"])[0]
    candidates = []
    wn = np.asarray(metrics["weight_norm"], dtype=np.float64)  # [T, S]
    bad = ~np.isfinite(wn)
    if bad.any():
        t, s = np.argwhere(bad)[0]
        candidates.append((int(t), "weights (weight norm)", int(s)))
    if initial_norm is not None and max_growth is not None:
        w0 = np.maximum(np.asarray(initial_norm, dtype=np.float64), 1e-12)  # [S]
        with np.errstate(invalid="ignore"):
            big = np.isfinite(wn) & (wn > max_growth * w0[None, :])
        if big.any():
            t, s = np.argwhere(big)[0]
            candidates.append((
                int(t),
                f"diverging weights: weight norm {wn[t, s]:.4g} = {wn[t, s] / w0[s]:,.0f} x its "
                f"initial {w0[s]:.4g} (limit training.max_weight_growth = {max_growth:g})",
                int(s),
            ))
    ret = np.asarray(metrics["episode_return"], dtype=np.float64)  # [T, S, B]
    bad = ~np.isfinite(ret)
    if bad.any():
        t, s, _ = np.argwhere(bad)[0]
        candidates.append((int(t), "episode return", int(s)))
    if candidates:
        t, q, s = min(candidates)
        return q, s, int(start_step + (t + 1) * n_envs)
    flat, _ = jax.tree_util.tree_flatten_with_path(rs)
    for path, x in flat:
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) or not jax.numpy.issubdtype(
            x.dtype, jax.numpy.inexact
        ):
            continue
        a = np.asarray(x)
        bad = ~np.isfinite(a)
        if bad.any():
            s = int(np.argwhere(bad)[0][0]) if a.ndim else 0
            name = jax.tree_util.keystr(path)
            return f"runner state {name}", s, int(start_step + T * n_envs)
    return None


def clip_bound(cfg: C.ExperimentConfig) -> float | None:
    """The clip bound ``w_max`` of the agent's plasticity rule, or ``None`` (no hard bound).

    Agents whose rule clips every update to ``[-w_max, w_max]`` (``rstdp``, ``reference``) have
    a ``w_max`` hyperparameter; the gradient agents (``eprop_ac``, ``bptt_ac``) have none.
    """
    h = {**C.agent_defaults(cfg.agent.name), **dict(cfg.agent.hyper)}
    w = h.get("w_max")
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not np.isfinite(w) or w <= 0:
        return None
    return float(w)


def weight_saturation(train: Any, rs: Any, w_max: float) -> np.ndarray:
    """Per member, the fraction of the learnable weights pinned at the clip bound ``+-w_max``.

    A weight counts as pinned when ``|w| >= w_max (1 - 1e-6)`` (float32 rounding of the clip).
    """
    import jax

    ws = jax.tree.leaves(jax.vmap(train.agent.weights)(rs.agent_state))
    S = np.shape(ws[0])[0] if ws else 0
    pinned = np.zeros(S)
    total = 0
    for w in ws:
        a = np.abs(np.asarray(w, dtype=np.float64)).reshape(S, -1)
        pinned += np.sum(a >= w_max * (1.0 - 1e-6), axis=1)
        total += a.shape[1]
    return pinned / max(total, 1)


def fault_hint(cfg: C.ExperimentConfig, quantity: str, rs: Any) -> str:
    """The likely cause of a numeric fault, for the error message and ``summary.json``.

    Non-finite observations (or env state) point at the environment or an input gain; diverging
    or saturated weights, and non-finite numbers under a non-default learning rate, at the
    learning rate (named with its value and default); other non-finite numbers at the inputs,
    rewards and gains.
    """
    import jax

    obs_bad = any(
        not np.all(np.isfinite(np.asarray(x)))
        # the host loop's state (HostState) keeps its envs on the host: no obs / env_state here
        for x in jax.tree.leaves((getattr(rs, "obs", None), getattr(rs, "env_state", None)))
        if not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
        and jax.numpy.issubdtype(x.dtype, jax.numpy.inexact)
    )
    if obs_bad or quantity.startswith("runner state .obs") or ".env_state" in quantity:
        return (
            "Likely cause: the observations became non-finite (the environment, a shift or an "
            "input gain produced NaN/inf); check env.params, shifts and the input gain "
            "(agent.hyper.in_gain)."
        )
    h = dict(cfg.agent.hyper)
    d = C.agent_defaults(cfg.agent.name)
    diverged = quantity.startswith(("diverg", "saturat"))
    if "lr" in d or "lr" in h:
        lr = h.get("lr", d.get("lr"))
        if diverged or lr != d.get("lr"):
            return (
                f"Likely cause: the learning rate agent.hyper.lr = {lr:g} is too large (default "
                f"{d.get('lr', lr):g}); lower it, or check the inputs (agent.hyper.in_gain)."
            )
        return (
            "Likely cause: an overflowing input, reward or gain (check agent.hyper.in_gain, "
            f"env.params and shifts); the learning rate agent.hyper.lr = {lr:g} is the default."
        )
    return "Likely cause: the learning rate is too large, or the inputs are not finite."


def strict_json(x: Any) -> Any:
    """``x`` with every non-finite float replaced by ``None`` (strict JSON has no NaN/Infinity)."""
    if isinstance(x, Mapping):
        return {k: strict_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [strict_json(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def dumps(x: Any, **kw: Any) -> str:
    """Strict JSON text (non-finite floats as ``null``; ``allow_nan=False`` proves it)."""
    return json.dumps(strict_json(x), allow_nan=False, default=_json_default, **kw)


class _RunLock:
    """An exclusive ``flock`` on ``run_dir/.lock`` for the duration of a run (POSIX advisory)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> _RunLock:
        import fcntl
        import os

        from neurorl.errors import RunLockedError

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            self.fd = None
            raise RunLockedError(
                f"run directory {self.path.parent} is in use by another neurorl process "
                f"(pid {holder}); wait for it, or give this run another --out"
            ) from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)
        return self

    def __exit__(self, *exc: Any) -> None:
        import fcntl
        import os

        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def uneven_last_chunk_note(remaining: int, chunk: int, unit: int, total: int) -> str | None:
    """The one notice of a run whose last chunk is shorter than the others.

    ``run_chunk`` is jitted with the chunk length static (the scan length), so a last chunk of
    another length compiles a second program (seconds to minutes): once, but without a word it
    looks like a hang near the end of the run.

    Args:
        remaining: env steps still to run (per seed).
        chunk: ``training.chunk_steps``.
        unit: the granularity of a chunk (``n_envs`` x the agent's ``update_every``).
        total: ``training.steps``.

    Returns:
        None when every chunk left has the same length (or only one is left); else one line
        naming the last chunk's length and how to avoid the second compile: a
        ``training.steps`` that is a multiple of ``chunk_steps``, or a ``chunk_steps`` (a
        multiple of ``unit``) that divides ``training.steps``.
    """
    if remaining <= chunk or remaining % chunk == 0:
        return None
    last = remaining % chunk
    lower = total - last
    fits = [d for d in range(chunk - chunk % unit, 0, -unit) if total % d == 0]
    divisor = f" or training.chunk_steps to {fits[0]} (it divides {total})" if fits else ""
    return (f"note: the last chunk is {last} env steps, not training.chunk_steps={chunk}, so it "
            "compiles a second program (a pause before the run ends); to avoid it, set "
            f"training.steps to a multiple of {chunk} (e.g. {lower} or {lower + chunk})"
            f"{divisor}")


def run_experiment(
    cfg: C.ExperimentConfig,
    run_dir: str | Path,
    *,
    progress: bool = True,
    wandb_mode: str | None = None,
    stop_after_chunks: int | None = None,
    resume: bool = False,
    members: list[dict[str, Any]] | None = None,
    display_name: str | None = None,
    previous: C.ExperimentConfig | None = None,
    force: bool = False,
    change_note: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    train: Any = None,
) -> dict[str, Any]:
    """Run (or resume) one experiment config into ``run_dir``; returns the summary.

    Everything that can be checked is checked before the directory is created (config, agent,
    memory, and on resume the checkpoint against this config). The directory is locked for the
    run; orphan temp files of a killed run are removed.

    Args:
        cfg: validated experiment config.
        run_dir: run directory (created).
        progress: show a progress bar.
        wandb_mode: override ``cfg.logging.wandb``.
        stop_after_chunks: stop (as if killed) after this many chunks -- for tests of resume.
        resume: continue from the checkpoint in ``run_dir``.
        members: member descriptions (names/labels for logging); default one per seed.
        display_name: what the progress output calls this run (default ``cfg.name``; a sweep
            group passes what it varies).
        previous: on resume, the run's config before ``cfg`` changed it (``neurorl resume
            --set``, :func:`resume_config`): the checkpoint must be this config's; its weights
            and state are kept, training goes on under ``cfg``, and the change (with the env
            step it took effect at and the fault it followed) is appended to the checkpoint's
            and ``summary.json``'s ``config_changes``. A change that would only alter the
            initial state (which the checkpoint replaces) is refused.
        force: on resume, replay a run a numeric fault stopped after a checkpoint unchanged
            (:func:`faulted_checkpoint_error`; recorded in ``config_changes`` as forced).
        change_note: a fresh run that replaces a faulted one (a sweep's ``--retry-faulted``
            of a group without checkpoint): ``{"set": ..., "after_fault": ...}``, recorded in
            ``config_changes`` at env step 0.
        overwrite: a fresh run first removes the files of a run already in ``run_dir``
            (:func:`clear_run_files`: checkpoint, logs, report, plots, offline wandb runs), under
            the run's lock and after every check passed; ``neurorl run --overwrite``. Without
            it a fresh run replaces the logs as it goes and the old checkpoint at its first
            one (the CLI refuses such a directory: :func:`existing_run_error`).
        train: ``build(cfg, calibration=False)`` of this very config, made already (a sweep's
            up-front checks, :func:`check_sweep_groups`), used instead of building again;
            only for configs without ``"auto"`` engine scales (their build calibrates).

    Raises:
        NonFiniteError: a weight, state or return became NaN/inf; the last good checkpoint is
            kept and ``summary.json`` (strict JSON) records the fault.
        RunInterrupted: Ctrl-C; names the env step and the ``neurorl resume`` command.
        CheckpointError: on resume, a damaged, crafted or mismatched checkpoint (logs untouched).
        RunStoppedError: on resume, a run a numeric fault stopped before its first checkpoint
            (nothing to resume; :func:`stopped_run_error`), or after one, resumed unchanged
            (it would replay into the same fault; :func:`faulted_checkpoint_error`).
        RunLockedError: another process holds the run directory.
        RunFileError: the filesystem refused a write (read-only, full).
    """
    from neurorl.errors import RunFileError

    run_dir = Path(run_dir)
    try:
        return _run_experiment(
            cfg, run_dir, progress=progress, wandb_mode=wandb_mode,
            stop_after_chunks=stop_after_chunks, resume=resume, members=members,
            display_name=display_name, previous=previous, force=force, change_note=change_note,
            overwrite=overwrite, train=train,
        )
    except OSError as e:
        raise RunFileError(file_error_message(e, run_dir)) from None


def file_error_message(e: OSError, run_dir: Path | None = None) -> str:
    """One line for a filesystem error: what, which file, and what to do."""
    import errno

    hint = {
        errno.ENOSPC: "the disk is full: free space or choose another --out",
        errno.EROFS: "the filesystem is read-only: choose a writable --out / logging.dir",
        errno.EACCES: "permission denied: choose a directory you can write",
        errno.EDQUOT: "the disk quota is exceeded: free space or choose another --out",
    }.get(e.errno, "check the path and the filesystem")
    where = e.filename or run_dir or "?"
    return f"cannot write or read {where}: {e.strerror or e} ({hint})"


def _summary_if(run_dir: Path, status: str) -> dict[str, Any] | None:
    """``run_dir/summary.json`` when it is readable and says ``status``, else None."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and summary.get("status") == status else None


def checkpoint_meta_if(run_dir: str | Path) -> dict[str, Any] | None:
    """A run directory's checkpoint metadata, or None without a checkpoint or with one that
    does not verify (resume's own checks name what is wrong with it)."""
    from neurorl.errors import CheckpointError
    from neurorl.experiment.checkpoint import checkpoint_meta

    if not has_checkpoint(run_dir):
        return None
    try:
        return checkpoint_meta(run_dir)
    except CheckpointError:
        return None


def _config_diff(old: C.ExperimentConfig, new: C.ExperimentConfig) -> dict[str, dict[str, Any]]:
    """``{dotted path: {"from": old, "to": new}}`` of the values two configs differ in."""
    old_f, new_f = _flat(C.to_dict(old)), _flat(C.to_dict(new))
    return {k: {"from": old_f.get(k), "to": new_f.get(k)}
            for k in sorted(set(old_f) | set(new_f)) if old_f.get(k) != new_f.get(k)}


def finished_summary(run_dir: str | Path, cfg: C.ExperimentConfig) -> dict[str, Any] | None:
    """The summary of a run that already did all of ``cfg``'s env steps, else ``None``.

    Read from the run directory alone (``summary.json`` and the checkpoint's metadata, with
    numpy), so resuming a finished run reports it without building or compiling the training
    function. A run counts as finished when its ``summary.json`` says ``status: finished`` and
    its checkpoint (if any) was written by this config at env step ``training.steps`` or later;
    a stopped (``non_finite``) run, a partial run, or a checkpoint of another config is not
    finished (resume then continues, or refuses the checkpoint as before).

    Args:
        run_dir: the run directory.
        cfg: the run's config (its ``config.yaml``).
    """
    run_dir = Path(run_dir)
    summary = _summary_if(run_dir, "finished")
    if summary is None:
        return None
    if has_checkpoint(run_dir):
        meta = checkpoint_meta_if(run_dir)
        if meta is None:
            return None  # resume's own checks name what is wrong with it
        if meta.get("config_sha256") not in (None, config_fingerprint(cfg)):
            return None
        if int(meta.get("env_steps", -1)) < cfg.training.steps:
            return None
    return summary


def stopped_run_error(run_dir: str | Path) -> Exception | None:
    """Why a run cannot be resumed because a numeric fault stopped it before any checkpoint.

    Read from the run directory alone (``summary.json``: ``status: non_finite`` and its
    ``fault``; no checkpoint file). A faulted run that kept a checkpoint resumes from it as any
    other; a run without ``summary.json`` (killed in its first chunk) starts afresh.

    Args:
        run_dir: the run directory.

    Returns:
        A :class:`~neurorl.errors.RunStoppedError` naming the env step and quantity of the
        fault, that there is no checkpoint, the likely cause recorded with it and the command
        that starts a new run; ``None`` for any other run.
    """
    from neurorl.errors import RunStoppedError

    run_dir = Path(run_dir)
    summary = None if has_checkpoint(run_dir) else _summary_if(run_dir, "non_finite")
    if summary is None:
        return None
    fault = summary.get("fault") if isinstance(summary.get("fault"), dict) else {}
    quantity = str(fault.get("quantity") or "the run's numbers")
    what = (quantity if quantity.startswith(("diverg", "saturat"))
            else f"non-finite values in {quantity}")
    step = fault.get("env_step")
    member = fault.get("member")
    at = f"at env step {step:,}" if isinstance(step, int) else "early"
    of = f" (member {member})" if isinstance(member, int) else ""
    cause = str(fault.get("likely_cause") or "Lower the learning rate or check the inputs.")
    config = _shell_quote(run_dir / "config.yaml")
    return RunStoppedError(
        f"nothing to resume in {run_dir}: the run stopped {at}{of} because of {what}, before "
        f"its first checkpoint, so there is no checkpoint to resume from (resuming would repeat "
        f"the same steps). {cause} Change that and start a new run, e.g. neurorl run {config} "
        "--set agent.hyper.KEY=VALUE"
    )


#: the config fields ``neurorl resume --set`` may change: what the training step reads (agent
#: hyperparameters: learning rates, gains, ...) and the numeric-fault limits. Everything else
#: (seeds, sizes, env, shifts, chip, chunking) shapes the checkpoint or the logs: a new run.
RESUME_SETTABLE = ("agent.hyper.", "training.max_weight_growth", "training.max_saturation")


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A nested dict as ``{dotted.path: leaf}``."""
    if isinstance(tree, Mapping) and tree:
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: tree}


def resume_config(
    cfg: C.ExperimentConfig, overrides: Sequence[str] | Mapping[str, Any]
) -> tuple[C.ExperimentConfig, dict[str, dict[str, Any]]]:
    """A run's config with ``neurorl resume --set`` overrides, validated as ``neurorl run``
    validates them, and what they change.

    Args:
        cfg: the run's config (its ``config.yaml``).
        overrides: ``KEY=VALUE`` items (or a mapping) under :data:`RESUME_SETTABLE`.

    Returns:
        ``(new config, {dotted path: {"from": old, "to": new}})`` -- only the values that
        really change (an override equal to the run's value changes nothing).

    Raises:
        ConfigError: a field resume cannot change (named, with what it may change), or a value
            ``neurorl run`` would refuse (field path as written, value, what is allowed).
    """
    items = list(overrides.items() if isinstance(overrides, Mapping)
                 else map(C.parse_override, overrides))
    for key, value in items:
        if not (key.startswith(RESUME_SETTABLE[0]) or key in RESUME_SETTABLE[1:]):
            raise ConfigError(
                f"--set {key}", value,
                "on resume only agent.hyper.* (values the training step reads, e.g. "
                "agent.hyper.lr) and training.max_weight_growth / training.max_saturation; "
                f"the rest shapes the checkpoint and the logs: start a new run with neurorl "
                f"run CONFIG --set {key}=...",
            )
    new = C.from_dict(C.to_dict(cfg), dict(items))
    return new, _config_diff(cfg, new)


def _fault_what(fault: Mapping[str, Any]) -> str:
    quantity = str(fault.get("quantity") or "the run's numbers")
    return (quantity if quantity.startswith(("diverg", "saturat"))
            else f"non-finite values in {quantity}")


def _example_change(cfg: C.ExperimentConfig | None, cause: str) -> str:
    """``agent.hyper.lr=<a tenth of the run's>`` when the learning rate is the likely cause."""
    if cfg is not None and "learning rate" in cause:
        lr = {**C.agent_defaults(cfg.agent.name), **dict(cfg.agent.hyper)}.get("lr")
        if isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0:
            return f"agent.hyper.lr={lr / 10:g}"
    return "agent.hyper.KEY=VALUE"


def faulted_checkpoint_error(
    run_dir: str | Path, cfg: C.ExperimentConfig | None = None
) -> Exception | None:
    """Why ``neurorl resume`` of a run a numeric fault stopped *after* a checkpoint refuses to
    replay it unchanged.

    The resume would restart from that checkpoint with the same config, chunk boundaries and
    PRNG keys, so it would run into the same fault at the same env step. Read from the run
    directory alone (``summary.json``: ``status: non_finite`` and its ``fault``; the
    checkpoint's metadata). The run counts as faulted-and-unchanged while its checkpoint is the
    one the fault kept (``fault.checkpoint_env_step``) and was written by the config that
    faulted (``fault.config_sha256``; a ``summary.json`` written before that field: no change
    recorded at the checkpoint's step, ``config_changes``). A resume with ``--set`` re-stamps
    the checkpoint with the changed config, so it (and a later resume after Ctrl-C) goes on.

    Args:
        run_dir: the run directory.
        cfg: the run's config (for a concrete example of the change; optional).

    Returns:
        A :class:`~neurorl.errors.RunStoppedError` (exit 3) naming where and why the run
        stopped, the checkpoint's env step, that an unchanged resume replays into the same
        fault, the likely cause and how to go on (``--set``, a new run, ``--force``); ``None``
        for any other run (no checkpoint: :func:`stopped_run_error`).
    """
    from neurorl.errors import RunStoppedError

    run_dir = Path(run_dir)
    summary = _summary_if(run_dir, "non_finite") if has_checkpoint(run_dir) else None
    if summary is None:
        return None
    meta = checkpoint_meta_if(run_dir)
    if meta is None:
        return None  # resume's own checks name what is wrong with the checkpoint
    fault = summary.get("fault") if isinstance(summary.get("fault"), dict) else {}
    ck = int(meta.get("env_steps", -1))
    if isinstance(fault.get("checkpoint_env_step"), int) and fault["checkpoint_env_step"] != ck:
        return None  # the run went on past the checkpoint the fault kept
    sha = fault.get("config_sha256")
    if sha is not None and sha != meta.get("config_sha256"):
        return None  # resumed with a change since the fault
    if sha is None and any(isinstance(c, Mapping) and c.get("env_step") == ck
                           for c in meta.get("config_changes") or ()):
        return None
    step, member = fault.get("env_step"), fault.get("member")
    at = f"at env step {step:,}" if isinstance(step, int) else "on a numeric fault"
    of = f" (member {member})" if isinstance(member, int) else ""
    cause = str(fault.get("likely_cause") or "Lower the learning rate or check the inputs.")
    d = _shell_quote(run_dir)
    return RunStoppedError(
        f"not resumed: {run_dir} stopped {at}{of} because of {_fault_what(fault)}; its last "
        f"checkpoint is at env step {ck:,}, and resuming it unchanged restarts there with the "
        f"same config and PRNG keys, so it replays into the same fault. {cause} Resume with a "
        f"change, e.g. neurorl resume {d} --set {_example_change(cfg, cause)} (the "
        "checkpoint's weights are kept; resume may change agent.hyper.* and "
        "training.max_weight_growth / training.max_saturation), or start a new run; --force "
        "resumes unchanged (only worth it after changing neurorl itself)"
    )


def _fault_of(run_dir: Path) -> dict[str, Any] | None:
    """The ``fault`` of a run's ``summary.json`` when a numeric fault stopped it, else None."""
    summary = _summary_if(run_dir, "non_finite")
    fault = summary.get("fault") if summary is not None else None
    return dict(fault) if isinstance(fault, Mapping) else ({} if summary is not None else None)


def _init_changes(old: Any, new: Any, keys: Any) -> list[str]:
    """Leaves of the initial runner state that differ between two builds (same keys): what a
    resume change would only set at initialisation, where the checkpoint's state wins."""
    import jax

    a, b = old.init(keys), new.init(keys)
    la, lb = (jax.tree_util.tree_flatten_with_path(x)[0] for x in (a, b))
    out = []
    if len(la) != len(lb):  # another structure: the checkpoint's own check names it
        return []
    for (path, x), (_, y) in zip(la, lb, strict=True):
        if hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        if np.shape(x) != np.shape(y) or not np.array_equal(np.asarray(x), np.asarray(y),
                                                            equal_nan=True):
            out.append(jax.tree_util.keystr(path))
    return out


def _recorded_calibration(run_dir: Path) -> dict[str, Any] | None:
    """The ``engine_calibration`` a run's checkpoint recorded (``hardware.engine`` scales
    ``"auto"``), or None (no checkpoint, none recorded, or a checkpoint resume's own checks
    will name as damaged)."""
    rec = (checkpoint_meta_if(run_dir) or {}).get("engine_calibration")
    return dict(rec) if isinstance(rec, Mapping) and rec else None


def _run_experiment(
    cfg: C.ExperimentConfig,
    run_dir: Path,
    *,
    progress: bool,
    wandb_mode: str | None,
    stop_after_chunks: int | None,
    resume: bool,
    members: list[dict[str, Any]] | None,
    display_name: str | None = None,
    previous: C.ExperimentConfig | None = None,
    force: bool = False,
    change_note: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    train: Any = None,
) -> dict[str, Any]:
    import jax

    from neurorl.errors import CheckpointError, NonFiniteError, RunInterrupted
    from neurorl.experiment.checkpoint import clean_temp_files
    from neurorl.experiment.logging import RunLogger

    if resume:
        done = finished_summary(run_dir, cfg)
        if done is not None:  # nothing to run: no build, no trace, no compile
            return done
        stopped = stopped_run_error(run_dir)
        if stopped is not None:  # a fault before any checkpoint: rerunning would repeat it
            raise stopped
        prior_fault = _fault_of(run_dir)
        if previous is None and not force:
            replay = faulted_checkpoint_error(run_dir, cfg)
            if replay is not None:  # the same config from the same checkpoint: the same fault
                raise replay
    if not resume:
        prior_fault = None
    changed = _config_diff(previous, cfg) if previous is not None else {}
    recorded = _recorded_calibration(run_dir) if resume else None
    # every host-side check, before anything exists on disk; a resumed run keeps the engine
    # scales its calibration chose (no second calibration run, no drift across platforms)
    if train is None or recorded or not _reusable_build(cfg):
        train = build(cfg, calibration=recorded if recorded else True)
    tc = train.config
    total = cfg.training.steps
    chunk = cfg.training.chunk_steps
    keys = member_keys(cfg.training.seed, cfg.training.n_seeds)
    fingerprint = config_fingerprint(cfg)
    bounds = shiftspec.boundaries(C.to_dict(cfg)["shifts"], total)  # task switches for wandb
    restored = None
    if resume and has_checkpoint(run_dir):
        # verify the checkpoint (format, checksum, config, shapes) before any log is touched
        template = jax.eval_shape(train.init, keys)
        try:
            restored = load_checkpoint(run_dir, template)
        except CheckpointError as e:
            if not changed:
                raise
            raise CheckpointError(
                f"{e} -- resume --set {', '.join(changed)} changes the shape of the state the "
                "checkpoint holds; start a new run for that"
            ) from None
        got = restored[1].get("config_sha256")
        if changed and got == config_fingerprint(previous):
            bad = _init_changes(build(previous, check_memory=False,
                                      calibration=train.calibration or False), train, keys)
            if bad:
                raise ConfigError(
                    "--set " + ", ".join(changed), ", ".join(
                        f"{v['from']!r} -> {v['to']!r}" for v in changed.values()),
                    "a value the training step reads; this one only sets the initial state "
                    f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}), which the "
                    "resume takes from the checkpoint: start a new run with it (neurorl run "
                    "CONFIG --set ...)",
                )
            got = fingerprint  # the change is what this resume applies
        if got is not None and got != fingerprint:
            raise CheckpointError(
                f"checkpoint in {run_dir} was written by another config (its config.yaml was "
                "changed after the checkpoint); not resumed, logs untouched. Restore the "
                "run's config.yaml or start a new run"
            )
        if hasattr(train, "restore_host_state"):  # gymnasium:<Id>: the envs live on the host
            train.restore_host_state(restored[1].get("host"), int(restored[1]["chunks"]))

    run_dir.mkdir(parents=True, exist_ok=True)
    with _RunLock(run_dir):
        if overwrite and not resume:
            gone = clear_run_files(run_dir)
            if gone:
                print(f"--overwrite: removed the earlier run's {', '.join(gone)} from {run_dir}",
                      flush=True)
        clean_temp_files(run_dir)
        restamped = None
        if restored is not None and (changed or (force and prior_fault is not None)):
            rs, meta = restored
            config_changes = [*(meta.get("config_changes") or []), strict_json({
                "env_step": int(meta["env_steps"]), "chunk": int(meta["chunks"]),
                "set": changed, "forced": bool(force and not changed),
                "after_fault": prior_fault})]
            # the checkpoint now belongs to the changed config: a later resume (e.g. after
            # Ctrl-C) checks against it and goes on. Re-stamped *before* config.yaml is
            # rewritten, so a kill between the two writes leaves a checkpoint whose last
            # recorded change, applied to the old config.yaml, gives its config
            # (load_run_config completes it) -- never the reverse, which nothing could tell
            # from a hand-edited config.yaml
            restored = (rs, {**meta, "config_sha256": fingerprint,
                             "config_changes": config_changes})
            save_checkpoint(run_dir, *restored)
            restamped = (", ".join(f"{k}: {v['from']!r} -> {v['to']!r}"
                                   for k, v in changed.items()) or "nothing changed (--force)")
        atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(C.to_dict(cfg), sort_keys=False))
        members = members or members_of(cfg)
        atomic_write_text(run_dir / "members.json", dumps(members, indent=2))
        mode = wandb_mode or cfg.logging.wandb
        if restored is not None:
            rs, meta = restored
            done_steps = int(meta["env_steps"])
            chunks_done = int(meta["chunks"])
            history = meta["history"]
            config_changes = list(meta.get("config_changes") or [])
            if restamped is not None:
                print(f"resuming {run_dir} from env step {done_steps:,} with {restamped} "
                      "(recorded in summary.json, config_changes)", flush=True)
            logger = RunLogger(
                run_dir,
                members=members,
                group=cfg.logging.group or cfg.name,
                wandb_mode=mode,
                project=cfg.logging.project,
                wandb_ids=meta.get("wandb_ids") or None,
                boundaries=bounds,
            )
            logger.restore_positions(meta["positions"])
            initial_norm = meta.get("initial_weight_norm")
        else:
            rs = train.init(keys)
            initial_norm = _weight_norms(train, rs)
            done_steps, chunks_done = 0, 0
            config_changes = ([strict_json({"env_step": 0, "chunk": 0, "forced": False,
                                            **change_note})] if change_note else [])
            history = [[] for _ in range(cfg.training.n_seeds)]
            for name in ("episodes.jsonl", "chunks.jsonl", "summary.json"):
                (run_dir / name).unlink(missing_ok=True)
            logger = RunLogger(
                run_dir,
                members=members,
                group=cfg.logging.group or cfg.name,
                wandb_mode=mode,
                project=cfg.logging.project,
                boundaries=bounds,
            )
        checkpoint_step = done_steps
        from neurorl.experiment.host_train import is_host_env

        if not is_host_env(cfg.env.id):  # the host loop compiles nothing per chunk length
            agent = train.agent
            unit = tc.n_envs * (agent.update_every if agent.update is not None else 1)
            note = uneven_last_chunk_note(total - done_steps, chunk, unit, total)
            if note:
                print(note, flush=True)

        one = jax.tree.map(lambda x: x[0], rs.agent_state)
        neurons = _neuron_count(train, one)
        n_weights = int(sum(np.size(w) for w in jax.tree.leaves(train.agent.weights(one))))
        chip = cfg.hardware.chip
        # None: the chip has no energy model (the float reference), energy is not logged; the
        # compiled network's hardware model where the agent is an N-HAL network
        efn = network_energy_fn(train, cfg.agent.substeps) if has_energy_model(chip) else None
        counted = ("the compiled network's counts (cnet.hardware.counts): every neuron update "
                   "counted active, learning updates only when the rules learn on the chip"
                   if efn is not None else None)
        if efn is not None and crossbar_learning_totals(train, rs) is not None:
            counted += ("; on a crossbar learning on chip, the programming pulses of every "
                        "device (e_learn_pj) and the fast device's weights read by Tiki-Taka "
                        "transfers (one crossbar MAC each, e_synop_pj), per env step of each "
                        "chunk")
        if efn is None and has_energy_model(chip):
            efn = lambda syn, **_: energy_breakdown_per_step(  # noqa: E731
                chip, syn, neurons, cfg.agent.substeps, n_weights)
            counted = (f"agent estimate: {neurons} neurons x {cfg.agent.substeps} substeps "
                       f"active updates, {n_weights} learning updates per env step")

        bound = clip_bound(cfg)
        S = cfg.training.n_seeds
        peaks = (restored[1].get("numeric_peaks") if restored is not None else None) or {
            "weight_growth": [1.0] * S, "saturation": [0.0] * S}
        t_start = time.perf_counter()
        steps_at_start = done_steps
        fault, hint = None, None
        try:
            from neurorl.experiment.progress import RunProgress

            with RunProgress(
                display_name or cfg.name,
                total,
                done_steps,
                enabled=progress and cfg.logging.progress,
                window=cfg.training.episode_window,
                seeds=cfg.training.n_seeds,
            ) as bar:
                learned = crossbar_learning_totals(train, rs)
                while done_steps < total:
                    n = min(chunk, total - done_steps)
                    new_rs, metrics = train.run_chunk(rs, n)
                    metrics = jax.device_get(metrics)
                    fault = first_non_finite(
                        metrics, new_rs, done_steps, tc.n_envs, initial_norm,
                        cfg.training.max_weight_growth,
                    )
                    new_peaks = peaks
                    if fault is None:
                        new_peaks = _update_peaks(peaks, metrics, initial_norm)
                    if fault is None and bound is not None:
                        sat = weight_saturation(train, new_rs, bound)
                        max_sat = cfg.training.max_saturation
                        if max_sat is None or not np.any(sat >= max_sat):
                            new_peaks["saturation"] = np.maximum(new_peaks["saturation"],
                                                                 sat).tolist()
                        else:
                            s = int(np.argmax(sat >= max_sat))
                            fault = (
                                f"saturated weights: {sat[s]:.0%} of the learnable weights "
                                f"pinned at the rule's clip bound +-{bound:g} by the chunk's "
                                f"end (limit training.max_saturation = {max_sat:g})",
                                s,
                                int(done_steps + n),
                            )
                    if fault is not None:
                        hint = fault_hint(cfg, fault[0], new_rs)
                        break  # the chunk is not logged and not checkpointed
                    peaks = new_peaks  # the peaks over logged chunks only
                    rs = new_rs
                    per_step = None
                    if learned is not None:  # a crossbar's pulses and transfer reads
                        now = crossbar_learning_totals(train, rs)
                        per_step = [{k: float((now[k][m] - learned[k][m]) / n) for k in now}
                                    for m in range(len(now["pulses"]))]
                        learned = now
                    episodes, chunk_recs = chunk_records(
                        metrics,
                        done_steps,
                        tc.n_envs,
                        energy_fn=efn,
                        window=cfg.training.episode_window,
                        history=history,
                        task_ids=metrics.get("task_id"),
                        learning=per_step,
                    )
                    done_steps += n
                    chunks_done += 1
                    elapsed = time.perf_counter() - t_start
                    sps = (done_steps - steps_at_start) * cfg.training.n_seeds / max(elapsed,
                                                                                     1e-9)
                    for c in chunk_recs:
                        c["steps_per_s"] = sps
                    logger.log(strict_json(episodes), strict_json(chunk_recs))
                    save_checkpoint(
                        run_dir,
                        rs,
                        {
                            "env_steps": done_steps,
                            "chunks": chunks_done,
                            "positions": logger.positions(),
                            "wandb_ids": logger.wandb_ids,
                            "history": strict_json(history),
                            "config_sha256": fingerprint,
                            **({"engine_calibration": train.calibration}
                               if getattr(train, "calibration", None) else {}),
                            "initial_weight_norm": initial_norm,
                            "numeric_peaks": strict_json(peaks),
                            **({"config_changes": config_changes} if config_changes else {}),
                            **({"host": train.host_state()}
                               if hasattr(train, "host_state") else {}),
                        },
                    )
                    checkpoint_step = done_steps
                    rets = [c["mean_return"] for c in chunk_recs if c["mean_return"] is not None]
                    bar.update(done_steps, sps, float(np.median(rets)) if rets else None)
                    if (
                        stop_after_chunks is not None
                        and chunks_done >= stop_after_chunks
                        and done_steps < total
                    ):
                        return {"stopped_at": done_steps}
        except KeyboardInterrupt:
            raise RunInterrupted(
                f"interrupted at env step {done_steps:,} of {total:,}; the last checkpoint "
                f"(env step {checkpoint_step:,}) is kept. Resume with: neurorl resume "
                f"{_shell_quote(run_dir)}"
            ) from None

        summary = summarize_run(run_dir, cfg, members)
        summary["energy_model"]["counts"] = counted
        if getattr(train, "calibration", None):  # hardware.engine scales chosen by calibration
            summary["engine_calibration"] = train.calibration
        # the numeric-fault criteria's peaks over the logged chunks (how far from the limits)
        summary["numeric"] = {
            "max_weight_growth_limit": cfg.training.max_weight_growth,
            "peak_weight_growth": peaks["weight_growth"],
            "max_saturation_limit": cfg.training.max_saturation if bound is not None else None,
            "peak_saturation": peaks["saturation"] if bound is not None else None,
        }
        if fault is not None:
            quantity, member, step = fault
            summary["status"] = "non_finite"
            summary["fault"] = {
                "quantity": quantity,
                "member": member,
                "env_step": step,
                "checkpoint_env_step": checkpoint_step,
                "likely_cause": hint,
                # the config that faulted: a resume that changes it is no replay
                "config_sha256": fingerprint,
            }
        else:
            summary["status"] = "finished"
        if config_changes:  # what a resume (or a sweep's retry) changed, at which env step
            summary["config_changes"] = config_changes
        atomic_write_text(run_dir / "summary.json", dumps(summary, indent=2))
        # the plots go to wandb as images (the task switches were logged with their chunks)
        logger.finish(strict_json(summary["members"]),
                      images=report(run_dir, quiet=True) if logger.wandb else None)
        if fault is not None:
            raise NonFiniteError(
                quantity, member, step, checkpoint_step, where=f" (run directory {run_dir})",
                hint=hint,
            )
        return summary


def _update_peaks(peaks: dict[str, Any], metrics: Mapping[str, Any], initial_norm: Any
                  ) -> dict[str, Any]:
    """Per member, the largest weight norm / initial norm seen so far (host side)."""
    if initial_norm is None:  # a checkpoint written before the norm was recorded
        return peaks
    wn = np.asarray(metrics["weight_norm"], dtype=np.float64)  # [T, S]
    w0 = np.maximum(np.asarray(initial_norm, dtype=np.float64), 1e-12)
    g = np.max(wn, axis=0) / w0 if wn.size else np.ones_like(w0)
    return {**peaks, "weight_growth": np.maximum(peaks["weight_growth"], g).tolist()}


def _weight_norms(train: Any, rs: Any) -> list[float]:
    """L2 norm of each member's learnable weights (as the ``weight_norm`` metric)."""
    import jax

    ws = jax.tree.leaves(jax.vmap(train.agent.weights)(rs.agent_state))
    sq = sum(np.sum(np.asarray(w, dtype=np.float64) ** 2, axis=tuple(range(1, np.ndim(w))))
             for w in ws)
    return [float(x) for x in np.sqrt(sq)]


def _shell_quote(p: Path) -> str:
    import shlex

    return shlex.quote(str(p))


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return str(x)


# ----------------------------------------------------------------------------------------------
# summaries (continual metrics)
# ----------------------------------------------------------------------------------------------


def summarize_run(
    run_dir: str | Path, cfg: C.ExperimentConfig, members: Sequence[Mapping[str, Any]]
) -> dict:
    """Final return, steps to threshold, energy and continual metrics per member.

    Adaptation after each shift boundary (:func:`neurorl.metrics.continual.adaptation_time`,
    window ``min(10, pre-shift episodes)``, fraction ``training.adaptation_fraction``) is given as
    post-shift episodes, env steps, chip time (env steps x substeps x the chip's dt) and energy
    (each post-shift episode's length x its logged energy per env step, summed until recovery);
    ``None`` where not recovered within the segment (``censored``). Post-shift episodes are those
    that *started* at or after the shift; the ones straddling it count on neither side.
    """
    from neurorl.experiment.logging import read_jsonl
    from neurorl.metrics.continual import adaptation_time, shift_segments

    episodes = read_jsonl(Path(run_dir) / "episodes.jsonl")
    chunks = read_jsonl(Path(run_dir) / "chunks.jsonl")
    bounds = shiftspec.boundaries(C.to_dict(cfg)["shifts"], cfg.training.steps)
    W = cfg.training.episode_window
    chip_step_s = chip_step_time(cfg.hardware.chip, cfg.agent.substeps)
    out = []
    for m in range(len(members)):
        eps = sorted((e for e in episodes if e["member"] == m), key=lambda e: e["env_step"])
        rets = np.array([e["return"] for e in eps], dtype=float)
        steps = np.array([e["env_step"] for e in eps], dtype=int)
        lengths = np.array([e["length"] for e in eps], dtype=int)
        s: dict[str, Any] = {
            "member": m,
            "name": members[m]["name"],
            "label": members[m].get("label"),
            "episodes": int(rets.size),
            # the one smoothing: the curves, tables and wandb use the same window
            "episode_window": W,
            "final_return": float(rets[-W:].mean()) if rets.size else None,
            "best_rolling_return": None,
            "steps_to_threshold": None,
        }
        if rets.size:
            c = np.convolve(rets, np.ones(min(W, rets.size)) / min(W, rets.size), mode="valid")
            s["best_rolling_return"] = float(c.max())
            if cfg.training.threshold is not None:
                hit = np.nonzero(c >= cfg.training.threshold)[0]
                if hit.size:
                    s["steps_to_threshold"] = int(steps[hit[0] + min(W, rets.size) - 1])
        mc = [c for c in chunks if c["member"] == m]
        if mc:
            s["spikes_per_step"] = float(np.mean([c["spikes_per_step"] for c in mc]))
            syn = [c["synops_per_step"] for c in mc if c.get("synops_per_step") is not None]
            s["synops_per_step"] = float(np.mean(syn)) if syn else None
            e = [c["energy_per_step_j"] for c in mc if c.get("energy_per_step_j") is not None]
            s["energy_per_step_j"] = float(np.mean(e)) if e else None
            parts = [c["energy_parts_j"] for c in mc if c.get("energy_parts_j") is not None]
            if e and len(parts) == len(e):  # the same chunks' mean of each term
                s["energy_parts_per_step_j"] = {
                    k: float(np.mean([p[k] for p in parts])) for k in ENERGY_PARTS}
            for key in ("learning_pulses_per_step", "transfer_reads_per_step"):
                v = [c[key] for c in mc if c.get(key) is not None]
                if v:  # a crossbar learning on chip: its pulses and Tiki-Taka's reads
                    s[key] = float(np.mean(v))
            if mc[-1].get("contexts_used") is not None:  # agent.context: at the end of the run
                s["contexts_used"] = int(mc[-1]["contexts_used"])
                s["context_switches"] = int(mc[-1]["context_switches"])
                s["context"] = int(mc[-1]["context"])
        # energy per env step of each episode as logged (None for runs without an energy model)
        e_ep = [e.get("energy_per_step_j") for e in eps]
        step_energy = (
            np.array(e_ep, dtype=float) if e_ep and all(x is not None for x in e_ep) else None
        )
        adapt = []
        # post-shift episodes started at or after the shift; straddling ones count on neither side
        segments = shift_segments(steps, lengths, cfg.training.n_envs, bounds)
        for b, (pre, post) in zip(bounds, segments, strict=True):
            if pre.size and post.size:
                sel = np.concatenate([pre, post])
                try:
                    r = adaptation_time(
                        rets[sel],
                        int(pre.size),
                        window=min(10, int(pre.size)),
                        theta=cfg.training.adaptation_fraction,
                        lengths=lengths[sel],
                        reference_min=_reference_min(cfg.env.id),
                        chip_step_s=chip_step_s,
                        step_energy=None if step_energy is None else step_energy[sel],
                    )
                    adapt.append(
                        {
                            "shift_step": b,
                            "episodes": _finite(r.tau_episodes),
                            "steps": _finite(r.tau_steps),
                            "chip_time_s": _finite(r.tau_chip_s),
                            "energy_j": _finite(r.energy_j),
                            "censored": bool(r.censored),
                            "drop": _finite(r.drop),
                            "fraction": cfg.training.adaptation_fraction,
                        }
                    )
                except ConfigError as err:
                    adapt.append({"shift_step": b, "error": str(err)})
        if adapt:
            s["adaptation"] = adapt
        tid = [e.get("task_id") for e in eps]
        if bounds and any(t is not None for t in tid):
            ids = _same_task_ids(np.array([t if t is not None else -1 for t in tid]), steps, cfg)
            # a task list always has tasks; shifts alone when they make more than one task
            if cfg.shifts.tasks is not None or np.unique(ids).size > 1:
                s["tasks"] = _task_metrics(
                    rets,
                    ids,
                    W,
                    lengths=lengths,
                    reference_min=_reference_min(cfg.env.id) or 0.0,
                    reference_max=cfg.training.threshold,
                )
        out.append(s)
    missing = sorted({m for c in chunks for m in c.get("energy_missing", ())})
    return {
        "name": cfg.name,
        "env": cfg.env.id,
        "agent": cfg.agent.name,
        "chip": cfg.hardware.chip,
        "steps": cfg.training.steps,
        "boundaries": bounds,
        "energy_model": energy_model_info(cfg.hardware.chip, missing, None),
        "members": out,
    }


def _finite(x):
    try:
        return None if x is None or not np.isfinite(x) else float(x)
    except TypeError:
        return x


def _reference_min(env_id: str) -> float | None:
    """A random policy's approximate return, the floor for normalising negative returns."""
    return {
        "Acrobot-v1": -500.0,
        "MountainCar-v0": -200.0,
        "Pendulum-v1": -1600.0,
        "MountainCarContinuous-v0": -100.0,
    }.get(env_id, 0.0)


def _same_task_ids(
    tids: np.ndarray, env_steps: np.ndarray, cfg: C.ExperimentConfig
) -> np.ndarray:
    """Per-episode task ids with repeated tasks merged, from every shift that defines a task.

    A task is what :func:`shiftspec.task_identity` says at the episode's last transition (per-env
    step ``env_step // n_envs - 1``, where the trainer read its ``task_id``): the task-list
    entry's parameters, the param-shift phase and the observation / action / reward shifts
    active. Steps with equal identities share an id, so ``normal again`` after ``permuted`` is a
    revisit of ``normal`` but ``swapped`` (same physics, actions remapped) is not. The id is the
    first task-list index (``task_id``) logged with that identity; an identity whose index is
    already taken (a window covering only part of a task), and every identity after the first
    without a task list, gets the next unused id from ``len(shifts.tasks.tasks)``.

    Args:
        tids: logged ``task_id`` per episode ``[n_episodes]`` (-1: none).
        env_steps: total env step at which each episode ended ``[n_episodes]``.
        cfg: the run's config (``shifts``, ``training.n_envs``).

    Returns:
        Task ids ``[n_episodes]`` (int).
    """
    shifts = C.to_dict(cfg)["shifts"]
    n_envs = cfg.training.n_envs
    n_tasks = len(cfg.shifts.tasks.tasks) if cfg.shifts.tasks is not None else 0
    ids: dict[tuple, int] = {}
    out = []
    for tid, step in zip(tids, env_steps, strict=True):
        key = shiftspec.task_identity(shifts, max(int(step) // n_envs - 1, 0), n_envs, int(tid))
        if key not in ids:
            used = set(ids.values())
            fresh = n_tasks
            while fresh in used:
                fresh += 1
            ids[key] = int(tid) if tid >= 0 and tid not in used else fresh
        out.append(ids[key])
    return np.array(out, dtype=int)


def _task_metrics(
    rets: np.ndarray,
    tids: np.ndarray,
    window: int,
    lengths: np.ndarray | None = None,
    reference_min: float = 0.0,
    reference_max: float | None = None,
) -> dict[str, Any]:
    """Per task visit: the return at its end and its AUC; forgetting and transfer on revisits.

    * ``start_return`` / ``end_return``: mean return of the visit's first / last ``window``
      episodes.
    * ``auc``: Continual World's area under the task's own training curve, over env steps: the
      mean of the normalised return ``min((R - reference_min) / (reference_max - reference_min),
      1)`` with each episode weighted by its length (the env steps it covers). Only with
      ``reference_max`` (the config's ``training.threshold``).
    * ``forgetting_on_return[task]``: end return of the task's first visit minus the end return
      of its last visit (Continual World's end-of-task minus end-of-sequence; positive = forgot;
      the last visit's end includes relearning).
    * ``drop_on_return[task]``: end return of the first visit minus the *start* return of the
      first revisit (what was lost before any relearning).
    * ``transfer_on_return[task]``: Continual World forward transfer of the first revisit with
      the first, from-scratch visit as the baseline, ``(AUC_revisit - AUC_first) /
      (1 - AUC_first)`` (positive: the earlier training made the task faster to do well on).

    References:
        Wołczyk et al., "Continual World", NeurIPS 2021 (forgetting; forward transfer, Eq. 2).
    """
    lengths = np.ones_like(rets) if lengths is None else np.asarray(lengths, dtype=float)
    visits: list[dict[str, Any]] = []
    start = 0
    for i in range(1, rets.size + 1):
        if i == rets.size or tids[i] != tids[start]:
            seg = rets[start:i]
            v: dict[str, Any] = {
                "task": int(tids[start]),
                "episodes": int(seg.size),
                "start_return": float(seg[:window].mean()),
                "end_return": float(seg[-window:].mean()),
            }
            if reference_max is not None and reference_max > reference_min:
                perf = np.minimum((seg - reference_min) / (reference_max - reference_min), 1.0)
                v["auc"] = float(np.average(perf, weights=lengths[start:i]))
            visits.append(v)
            start = i
    first: dict[int, dict[str, Any]] = {}
    forgetting: dict[str, float] = {}
    drop: dict[str, float] = {}
    transfer: dict[str, float | None] = {}
    for v in visits:
        task = v["task"]
        if task in first:
            forgetting[str(task)] = first[task]["end_return"] - v["end_return"]
            drop.setdefault(str(task), first[task]["end_return"] - v["start_return"])
            if "auc" in v and str(task) not in transfer:
                base = first[task]["auc"]
                transfer[str(task)] = None if base >= 1.0 else (v["auc"] - base) / (1.0 - base)
        first.setdefault(task, v)
    out: dict[str, Any] = {
        "visits": visits,
        "forgetting_on_return": forgetting,
        "drop_on_return": drop,
    }
    if reference_max is not None:
        out["transfer_on_return"] = transfer
    return out


# ----------------------------------------------------------------------------------------------
# CLI commands
# ----------------------------------------------------------------------------------------------


def _default_run_dir(cfg: C.ExperimentConfig, out: str | None) -> Path:
    if out:
        return Path(out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(cfg.logging.dir) / f"{cfg.name}-{stamp}"


# what a run writes into its directory (and ``--overwrite`` removes): the entries its closing
# lines describe (``reporting.RUN_FILES``; ``sweep.json`` is a sweep's) and the checkpoint's
# readable copy and legacy form; anything else in the directory is left alone
RUN_ENTRIES = tuple(n for n, _ in RUN_FILES if n != "sweep.json") + (
    "checkpoint.json", "checkpoint.pkl")


def existing_run_error(run_dir: str | Path) -> ConfigError | None:
    """The error for ``neurorl run --out DIR`` into a directory that already holds a run (a
    fresh run would replace its logs and, at its first checkpoint, the checkpoint an
    interrupted run needs to resume), or None when ``DIR`` holds none of a run's files.

    The message says what is there (a finished run, one a checkpoint can resume at env step N,
    a stopped one) and the ways on: ``neurorl resume DIR``, another ``--out``, ``--overwrite``.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return None
    present = [n for n in RUN_ENTRIES if (run_dir / n).exists()]
    if not present:
        return None
    meta = checkpoint_meta_if(run_dir)
    if _summary_if(run_dir, "finished") is not None:
        what, how = "a finished run", f"`neurorl report {run_dir}` shows it"
    elif meta is not None and stopped_run_error(run_dir) is None:
        what = f"a run with a checkpoint at env step {int(meta.get('env_steps', 0)):,}"
        how = f"go on with it: neurorl resume {run_dir}"
    else:
        what, how = f"a run's files ({', '.join(present[:4])})", "look at it first"
    return ConfigError("--out", str(run_dir), f"a directory without a run: it holds {what} "
                       f"({how}); choose another --out, or add --overwrite to replace it")


def clear_run_files(run_dir: str | Path) -> list[str]:
    """Remove the files a run wrote into ``run_dir`` (:data:`RUN_ENTRIES`: files, and the
    ``plots`` / ``wandb`` directories); returns the names removed. Anything else in the
    directory is kept."""
    import shutil

    run_dir = Path(run_dir)
    gone = []
    for n in RUN_ENTRIES:
        p = run_dir / n
        if p.is_dir():
            shutil.rmtree(p)
            gone.append(n + "/")
        elif p.is_file():
            p.unlink()
            gone.append(n)
    return gone


def agent_member_overrides(path: str | Path, overrides: Sequence[str]) -> list[str]:
    """``overrides`` of a ``neurorl run`` that a ``wandb agent`` started, with the member's seeds.

    Under ``wandb agent`` (``WANDB_SWEEP_ID`` set) the run is one sweep member: its
    ``training.seed`` / ``training.n_seeds`` come from :func:`sweep.member_seeds`, the function
    ``neurorl sweep`` takes them from, so a member runs the same seeds either way (before, the
    agent's run kept the program's ``n_seeds`` and stopped, while the local sweep ran one seed).
    Elsewhere ``overrides`` are returned unchanged.

    Args:
        path: the experiment config (the sweep's ``program``).
        overrides: the ``--name=value`` / ``--set`` items, in order.

    Raises:
        ConfigError: as :func:`sweep.member_seeds`.
    """
    import os
    import sys

    from neurorl.experiment.sweep import member_seeds, seeds_note

    if not os.environ.get("WANDB_SWEEP_ID"):
        return list(overrides)
    program = C.load_yaml(path)
    if program.get("task") == "classification":  # its own schema, no training.n_seeds
        return list(overrides)
    params = dict(C.parse_override(o) for o in overrides)
    seeds = member_seeds(program, params)
    note = seeds_note(program, path, [params])
    if note:
        print(note, file=sys.stderr, flush=True)
    return [f"{k}={v}" for k, v in seeds.items()] + list(overrides)


def _load_experiment(path: str, overrides: Sequence[str], command: str) -> C.ExperimentConfig:
    """Load an experiment config; a sweep file gets pointed to ``neurorl sweep``; under
    ``wandb agent`` the member's seeds (:func:`agent_member_overrides`)."""
    raw = C.load_yaml(path)
    if "parameters" in raw and ("method" in raw or "base" in raw):
        raise ConfigError(
            "config",
            str(path),
            f"an experiment config for `neurorl {command}`; this is a sweep file (program, "
            f"method, parameters): run it with `neurorl sweep {path}`",
        )
    return C.load_config(path, agent_member_overrides(path, overrides))


def cmd_validate(args: argparse.Namespace) -> int:
    cfg = _load_experiment(args.config, args.overrides, "validate")
    if getattr(cfg, "task", None) == "classification":
        from neurorl.experiment import classification

        return classification.cmd_validate(cfg, args.config)
    # host-side checks of env params, shifts, agent hyperparameters, chip (no calibration run)
    build(cfg, calibration=False)
    print(
        f"{args.config}: valid ({cfg.agent.name} on {cfg.env.id}, {cfg.training.steps} steps x "
        f"{cfg.training.n_seeds} seed(s), chip {cfg.hardware.chip})"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load_experiment(args.config, args.overrides, "run")
    if getattr(cfg, "task", None) == "classification":
        from neurorl.experiment import classification

        return classification.cmd_run(cfg, args.out, progress=not args.no_progress,
                                      overwrite=bool(getattr(args, "overwrite", False)),
                                      wandb_mode=getattr(args, "wandb", None))
    run_dir = _default_run_dir(cfg, args.out)
    overwrite = bool(getattr(args, "overwrite", False))
    if not overwrite and (err := existing_run_error(run_dir)) is not None:
        raise err
    print(f"run directory: {run_dir}")
    run_experiment(cfg, run_dir, progress=not args.no_progress, wandb_mode=args.wandb,
                   overwrite=overwrite)
    report(run_dir)
    print_report_tables(run_dir)
    print_run_files(run_dir)
    return 0


def load_run_config(run_dir: str | Path) -> C.ExperimentConfig:
    """A run directory's config (``config.yaml``), with a ``neurorl resume --set`` change that a
    kill interrupted completed.

    A changed resume re-stamps the checkpoint with the new config (and records the change in
    its ``config_changes``) before it rewrites ``config.yaml``. A kill between the two writes
    leaves the old ``config.yaml`` beside a checkpoint of the new config; when ``config.yaml``
    holds the checkpoint's last recorded change's ``from`` values and the change applied to it
    gives exactly the checkpoint's config (its fingerprint), that config is the run's.
    Anything else (a hand-edited ``config.yaml``) is left to resume's own check, which refuses
    it.

    Raises:
        ConfigError: ``config.yaml`` is not a valid config.
    """
    run_dir = Path(run_dir)
    cfg = C.from_dict(C.load_yaml(run_dir / "config.yaml"))
    meta = checkpoint_meta_if(run_dir)
    if meta is None:
        return cfg  # no checkpoint, or resume's own checks name what is wrong with it
    sha = meta.get("config_sha256")
    changes = meta.get("config_changes") or []
    if sha in (None, config_fingerprint(cfg)) or not changes:
        return cfg
    last = changes[-1].get("set") if isinstance(changes[-1], Mapping) else None
    if not isinstance(last, Mapping) or not last:
        return cfg
    now = _flat(C.to_dict(cfg))
    if any(not isinstance(v, Mapping) or now.get(k) != v.get("from") for k, v in last.items()):
        return cfg  # config.yaml is not the config the change started from
    try:
        done, _ = resume_config(cfg, {k: v["to"] for k, v in last.items()})
    except (ConfigError, KeyError, TypeError):
        return cfg
    if config_fingerprint(done) != sha:
        return cfg
    what = ", ".join(f"{k}: {v['from']!r} -> {v['to']!r}" for k, v in last.items())
    print(f"completing the change the last resume recorded but did not write to config.yaml "
          f"({what})", flush=True)
    return done


def cmd_resume(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not (run_dir / "config.yaml").exists():
        raise ConfigError("RUN_DIR", str(run_dir), "a run directory with config.yaml")
    overrides = list(getattr(args, "overrides", None) or [])
    force = bool(getattr(args, "force", False))
    if (run_dir / "sweep.json").exists():
        return _resume_sweep(run_dir, progress=not args.no_progress, overrides=overrides,
                             retry_faulted=bool(getattr(args, "retry_faulted", False)),
                             force=force)
    if getattr(args, "retry_faulted", False):
        raise ConfigError("--retry-faulted", True, "a sweep directory (sweep.json); for one "
                          "run: neurorl resume RUN_DIR --set KEY=VALUE")
    cfg = load_run_config(run_dir)
    stopped = stopped_run_error(run_dir)
    if stopped is not None:
        raise stopped  # exit 3, not "already finished"
    new_cfg, changed = resume_config(cfg, overrides) if overrides else (cfg, {})
    if finished_summary(run_dir, cfg) is not None or (
        (run_dir / "summary.json").exists() and not has_checkpoint(run_dir)
    ):
        if changed:
            raise ConfigError("--set", ", ".join(overrides), "nothing: the run already "
                              f"finished ({cfg.training.steps:,} env steps), nothing to go on "
                              "with: start a new run (neurorl run CONFIG --set ...)")
        print(f"run already finished ({cfg.training.steps:,} env steps): nothing to resume")
        report(run_dir)
        print_report_tables(run_dir)
        print_run_files(run_dir)
        return 0
    members = (
        json.loads((run_dir / "members.json").read_text())
        if (run_dir / "members.json").exists()
        else None
    )
    if changed and members:  # the wandb config of each member: the config it goes on with
        members = [{**m, "config": {**C.to_dict(new_cfg), "member_seed": m.get("seed")}}
                   if "config" in m else m for m in members]
    run_experiment(new_cfg, run_dir, progress=not args.no_progress, resume=True, members=members,
                   previous=cfg if changed else None, force=force)
    report(run_dir)
    print_report_tables(run_dir)
    print_run_files(run_dir)
    return 0


# ----------------------------------------------------------------------------------------------
# sweeps
# ----------------------------------------------------------------------------------------------


def sweep_groups(
    base: Mapping[str, Any], members: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Group sweep members that differ only in ``training.seed``: each group is one compiled,
    vmapped function over consecutive seeds (shapes and static settings match); the rest are
    separate groups. Returns ``[{"overrides": ..., "seeds": [...], "members": [indices]}]``."""
    from neurorl.experiment.sweep import member_seeds

    groups: dict[str, dict[str, Any]] = {}
    for i, m in enumerate(members):
        rest = {k: v for k, v in m.items() if k not in ("training.seed", "training.n_seeds")}
        key = json.dumps(rest, sort_keys=True, default=str)
        g = groups.setdefault(key, {"overrides": rest, "seeds": [], "members": []})
        g["seeds"].append(member_seeds(base, m)["training.seed"])
        g["members"].append(i)
    out = []
    for g in groups.values():
        seeds = g["seeds"]
        # vmapped seeds must be consecutive (seed, seed+1, ...): split otherwise
        order = np.argsort(seeds)
        run: list[int] = []
        for j in order:
            if run and seeds[j] != seeds[run[-1]] + 1:
                out.append(_group(g, run))
                run = []
            run.append(int(j))
        out.append(_group(g, run))
    return out


def _group(g: Mapping[str, Any], idx: Sequence[int]) -> dict[str, Any]:
    return {
        "overrides": dict(g["overrides"]),
        "seeds": [g["seeds"][i] for i in idx],
        "members": [g["members"][i] for i in idx],
    }


def _label(overrides: Mapping[str, Any]) -> str:
    if not overrides:
        return "base"
    parts = []
    for k, v in overrides.items():
        if isinstance(v, Mapping) and "name" in v:  # a whole section, e.g. a sweep over agents
            parts.append(str(v["name"]))
        else:
            parts.append(f"{k.split('.')[-1]}={v}")
    return ",".join(parts)


def load_sweep(
    path: str | Path, overrides: Sequence[str] = (), *, built: dict[int, Any] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Expand a sweep file into ``(base config dict, members, groups)``, every group validated.

    Every group gets the host-side checks of ``neurorl validate`` (:func:`check_sweep_groups`,
    the chip's structural limits included) before this returns, so nothing runs unless all can.

    Args:
        path: the sweep YAML (wandb sweep schema; ``program`` is the experiment config).
        overrides: ``--set KEY=VALUE`` items applied to every member after its sweep values
            (so they also replace a swept value, e.g. ``training.steps`` to shorten a sweep).
        built: a dict that receives the training functions the checks built (group index ->
            :func:`build` result; see :func:`check_sweep_groups`), for the runs to reuse.

    Raises:
        ConfigError: a bad sweep file; :class:`~neurorl.errors.SweepMembersError` naming every
            group that cannot run.
    """
    from neurorl.experiment.sweep import expand_sweep, program_path

    sweep = C.load_yaml(path)
    base = C.load_yaml(program_path(sweep, path))  # wandb's `program` (or the legacy `base`)
    sets = dict(C.parse_override(o) for o in overrides)
    # registered names in their registered spelling (env.id: cartpole-v1 -> CartPole-v1), so
    # labels, member names and groups agree with the validated configs
    members = [C.canonical_overrides({**m, **sets}) for m in expand_sweep(sweep)]
    groups = sweep_groups(base, members)
    varying = _varying_keys(members)
    for g in groups:
        g["label"] = _label({k: v for k, v in g["overrides"].items() if k in varying})
    check_sweep_groups(base, groups, Path(path).name, built=built)  # every group, before any runs
    return base, members, groups


#: groups of the built-in agents whose size is one agent hyperparameter: the field a chip's
#: structural limit (fan-in, fan-out, neurons per core, cores) points to when it refuses it
_GROUP_SIZE_HYPER = {"hidden": ("n_rec", "n_hidden"), "critic": ("n_critic",)}
#: the hyperparameter that sizes a built-in agent's network: the inputs' fan-out into it and the
#: readout's fan-in from it scale with it too (eprop_ac / bptt_ac, reference, td_ac)
_NETWORK_SIZE_HYPER = ("n_rec", "n_hidden", "n_critic")


def _field_to_change(cfg: C.ExperimentConfig, e: NeurorlError) -> str | None:
    """The YAML field behind a host-side error of ``build``: a ConfigError's own field; a rule
    the chip cannot run on chip: ``hardware.off_chip_learning``; for a chip limit on a group of a
    built-in agent (``group 'hidden' ...``) the hyperparameter behind that group's size, or
    (the inputs, the readout) the one that sizes the agent's network, with its value
    (``agent.hyper.n_rec=64``); else None (an ``agent.network`` of the user's: the message names
    the group and its connections)."""
    from neurorl.errors import UnsupportedOnChipError

    if isinstance(e, ConfigError):
        return yaml_field(cfg, e.field)
    if isinstance(e, UnsupportedOnChipError):  # a rule the chip cannot run on chip
        return f"hardware.off_chip_learning={str(cfg.hardware.off_chip_learning).lower()}"
    m = re.match(r"group '([^']+)'", str(e))
    if m is None:
        return None
    group = m.group(1)
    if cfg.agent.network:  # sizes and connectivity are the user's: the message names them
        return None
    hyper = {**C.agent_defaults(cfg.agent.name), **cfg.agent.hyper}
    for key in (*_GROUP_SIZE_HYPER.get(group, ()), *_NETWORK_SIZE_HYPER):
        if key in hyper:
            return f"agent.hyper.{key}={hyper[key]}"
    return None


#: at most this many groups' validation builds are kept for their runs (one holds its jitted
#: functions and compiled init, ~10 MiB of host memory for the quickstart network, measured;
#: the groups past it are built again when they run, as before)
KEEP_BUILT = 16


def _reusable_build(cfg: C.ExperimentConfig) -> bool:
    """Whether the validation's build (``calibration=False``) is the run's build: not for
    ``hardware.engine`` scales set to ``"auto"`` (the run calibrates them by a float run
    first) nor for host-loop envs (``gymnasium:<Id>``: the build holds live gymnasium envs)."""
    from neurorl.experiment.host_train import is_host_env
    from neurorl.experiment.train import auto_engine_scales

    return not is_host_env(cfg.env.id) and not auto_engine_scales(cfg.hardware.engine)


def check_sweep_groups(
    base: Mapping[str, Any], groups: Sequence[Mapping[str, Any]], name: str = "sweep",
    indices: Sequence[int] | None = None, built: dict[int, Any] | None = None,
) -> None:
    """Run the host-side checks of ``neurorl validate`` (config schema, env params, shifts,
    agent hyperparameters, memory, and the chip: on-chip learning and its structural limits --
    fan-in, fan-out, neurons per core, cores, synapse memory) on every sweep group, so that no
    group runs (nor is a directory written) unless all of them can, and every failing group is
    named at once.

    Args:
        base: the program's config (a dict).
        groups: the compiled groups (:func:`sweep_groups`, with their ``label``).
        name: the sweep file's name, for the message.
        indices: the groups to check (default: all).
        built: a dict that receives ``group index -> training function`` (the :func:`build`
            each check made) for :func:`run_group` to reuse instead of building the group
            again (~4-6 s each); only builds that equal the run's (:func:`_reusable_build`),
            at most :data:`KEEP_BUILT`, and nothing when a group fails.

    Raises:
        SweepMembersError: one line per failing group: its directory, label, seeds, the field to
            change where known, and the error.
    """
    from neurorl.errors import SweepMembersError

    failures: list[tuple[str, str | None, str]] = []
    for gi in range(len(groups)) if indices is None else indices:
        g = groups[gi]
        label = g.get("label") or _label(g["overrides"])
        seeds = ", ".join(map(str, g["seeds"]))
        where = f"group-{gi:03d} ({label}; seed {seeds})"
        cfg = None
        try:
            cfg = group_config(base, g)
            if getattr(cfg, "task", None) != "classification":  # its own checks, no chip
                train = build(cfg, calibration=False)
                if (built is not None and not failures and len(built) < KEEP_BUILT
                        and _reusable_build(cfg)):
                    built[gi] = train
        except NeurorlError as e:
            field = _field_to_change(cfg, e) if cfg is not None else getattr(e, "field", None)
            failures.append((where, field, str(e)))
            if built is not None:
                built.clear()  # nothing will run: drop what was kept
    if failures:
        raise SweepMembersError(name, len(groups) if indices is None else len(indices), failures)


def _varying_keys(members: Sequence[Mapping[str, Any]]) -> set[str]:
    """Override keys (other than the seed) whose value is not the same in every member."""
    keys = {k for m in members for k in m} - {"training.seed"}

    def seen(k: str) -> set[str]:
        return {json.dumps([k in m, m.get(k)], sort_keys=True, default=str) for m in members}

    return {k for k in keys if len(seen(k)) > 1}


def group_config(base: Mapping[str, Any], g: Mapping[str, Any]) -> C.ExperimentConfig:
    """The config of a compiled group: its members' seeds (:func:`sweep.member_seeds` each,
    consecutive) vmapped as one run of ``len(seeds) x`` the seeds per member."""
    from neurorl.experiment.sweep import member_seeds

    ov = dict(g["overrides"])
    first = member_seeds(base, {**ov, "training.seed": g["seeds"][0]})
    ov["training.seed"] = first["training.seed"]
    ov["training.n_seeds"] = len(g["seeds"]) * first["training.n_seeds"]
    return C.from_dict(base, ov)


def cmd_sweep(args: argparse.Namespace) -> int:
    # the local launcher runs the groups here: the validation's builds are kept for their runs
    built: dict[int, Any] | None = {} if args.launcher != "ray" else None
    base, members, groups = load_sweep(args.sweep, getattr(args, "overrides", ()), built=built)
    from neurorl.experiment.sweep import program_path, seeds_note

    note = seeds_note(base, program_path(C.load_yaml(args.sweep), args.sweep), members)
    if note:  # the same note a wandb agent's run prints
        print(note, flush=True)
    if args.launcher == "ray":
        from neurorl.experiment.launch_ray import import_ray, run_sweep_ray

        import_ray()  # a missing extra is a clear error before anything is written
    sweep_name = Path(args.sweep).stem
    out = (
        Path(args.out)
        if args.out
        else Path(base.get("logging", {}).get("dir", "runs"))
        / f"sweep-{sweep_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        out / "sweep.json",
        json.dumps(
            {"sweep": str(args.sweep), "members": members, "groups": groups}, indent=2, default=str
        ),
    )
    atomic_write_text(out / "config.yaml", yaml.safe_dump(base, sort_keys=False))
    print(f"sweep {sweep_name}: {len(members)} members in {len(groups)} compiled group(s) -> {out}")
    if args.launcher == "ray":
        run_sweep_ray(
            base,
            groups,
            out,
            sweep_name,
            wandb_mode=args.wandb,
            address=getattr(args, "ray_address", None),
            cpus_per_group=getattr(args, "ray_cpus_per_group", 1.0),
        )
        # the groups a numeric fault stopped came back written, with their fault
        faulted = {gi: _fault_line(gi, g.get("label") or _label(g["overrides"]), f)
                   for gi, g in enumerate(groups)
                   if (f := group_fault(out / f"group-{gi:03d}")) is not None}
    else:
        faulted = _run_groups(base, groups, out, sweep_name, range(len(groups)),
                              progress=not args.no_progress, wandb_mode=args.wandb,
                              built=built)
    report(out)
    print_report_tables(out, members=False)
    print_run_files(out)
    if faulted:  # the other groups ran; the numeric-fault exit code says some did not finish
        from neurorl.errors import EXIT_NON_FINITE

        print(f"sweep: {len(faulted)} of {len(groups)} group(s) stopped on a numeric fault; "
              f"neurorl resume {_shell_quote(out)} --retry-faulted --set KEY=VALUE goes on "
              "with them", flush=True)
        return EXIT_NON_FINITE
    return 0


def run_group(
    base,
    g,
    out: Path,
    gi: int,
    sweep_name: str,
    progress: bool = True,
    wandb_mode: str | None = None,
    resume: bool = False,
    train: Any = None,
) -> dict[str, Any]:
    """Run (or resume) sweep group ``gi`` into ``out/group-NNN``; ``train``: the group's
    training function when :func:`check_sweep_groups` built it already (else built here)."""
    cfg = group_config(base, g)
    cfg = C.from_dict(C.to_dict(cfg), {"logging.group": sweep_name, "name": f"{sweep_name}-g{gi}"})
    label = g.get("label") or _label(g["overrides"])
    members = [
        {
            "name": f"{sweep_name}-{label}-s{seed}",
            "job_type": label,
            "label": label,
            "seed": seed,
            "sweep_member": idx,
            "config": {**C.to_dict(cfg), "member_seed": seed},
        }
        for seed, idx in zip(g["seeds"], g["members"], strict=True)
    ]
    return run_experiment(
        cfg,
        out / f"group-{gi:03d}",
        progress=progress,
        wandb_mode=wandb_mode,
        members=members,
        resume=resume,
        display_name=f"{sweep_name}: {label}",
        train=train,
    )


def group_fault(gdir: Path) -> dict[str, Any] | None:
    """The ``fault`` that stopped a sweep group (its ``summary.json``: ``status: non_finite``),
    with whether the group kept a checkpoint; None for a group no fault stopped, or one that
    went on since (resumed with a change: :func:`faulted_checkpoint_error`)."""
    fault = _fault_of(gdir)
    if fault is None:
        return None
    kept = has_checkpoint(gdir)
    if kept and faulted_checkpoint_error(gdir) is None:
        return None
    return {**fault, "has_checkpoint": kept}


def _fault_line(gi: int, label: str, fault: Mapping[str, Any]) -> str:
    step = fault.get("env_step")
    ck = fault.get("checkpoint_env_step") if fault.get("has_checkpoint", True) else 0
    at = f"at env step {step:,}" if isinstance(step, int) else "on a numeric fault"
    kept = (f"checkpoint at env step {ck:,}" if isinstance(ck, int) and ck > 0
            else "no checkpoint")
    return f"group-{gi:03d} ({label}): stopped {at} by {_fault_what(fault)}; {kept}"


def _run_groups(base, groups, out, name, indices, *, progress, wandb_mode=None, resume=False,
                retry: Mapping[int, Mapping[str, Any]] | None = None,
                built: dict[int, Any] | None = None) -> dict[int, str]:
    """Run (or resume) the sweep groups ``indices`` one after another; a group a numeric fault
    stops is named and the others go on (as the Ray launcher does). Returns group -> fault.
    ``built``: training functions :func:`check_sweep_groups` built, taken out (and so freed)
    as their group runs."""
    from neurorl.errors import NumericFaultError

    faulted: dict[int, str] = {}
    for gi in indices:
        try:
            if retry is not None and gi in retry:
                _retry_group(base, groups[gi], out, gi, name, progress=progress, **retry[gi])
            else:
                run_group(base, groups[gi], out, gi, name, progress=progress,
                          wandb_mode=wandb_mode, resume=resume,
                          train=built.pop(gi, None) if built else None)
        except NumericFaultError as e:
            label = groups[gi].get("label") or _label(groups[gi]["overrides"])
            faulted[gi] = str(e)
            print(f"sweep: group-{gi:03d} ({label}) stopped: {e}", flush=True)
    return faulted


def _retry_group(base, g, out: Path, gi: int, name: str, *, progress: bool,
                 overrides: Sequence[str], force: bool, fault: Mapping[str, Any]) -> None:
    """Go on with a faulted sweep group under ``overrides``: from its checkpoint (as ``neurorl
    resume RUN --set``) or, without one, afresh in the same directory with the change
    recorded at env step 0 (``config_changes``)."""
    gdir = out / f"group-{gi:03d}"
    old = C.from_dict(C.load_yaml(gdir / "config.yaml"))
    new, changed = resume_config(old, overrides) if overrides else (old, {})
    label = g.get("label") or _label(g["overrides"])
    members = json.loads((gdir / "members.json").read_text())
    if changed:
        members = [{**m, "config": {**C.to_dict(new), "member_seed": m.get("seed")}}
                   for m in members]
    after = {k: v for k, v in fault.items() if k != "has_checkpoint"}
    if fault.get("has_checkpoint"):
        run_experiment(new, gdir, progress=progress, resume=True, members=members,
                       previous=old if changed else None, force=force,
                       display_name=f"{name}: {label}")
    else:
        run_experiment(new, gdir, progress=progress, members=members,
                       display_name=f"{name}: {label}",
                       change_note={"set": changed, "forced": bool(force and not changed),
                                    "after_fault": after})


def _resume_sweep(out: Path, progress: bool = True, overrides: Sequence[str] = (),
                  retry_faulted: bool = False, force: bool = False) -> int:
    """Resume a sweep: every unfinished group goes on from its checkpoint; the groups a numeric
    fault stopped are named (console, ``report.md``) and not rerun -- an unchanged rerun
    replays the same fault -- unless ``retry_faulted`` (with ``overrides`` or ``force``).

    Returns:
        0, or the numeric-fault exit code 3 while some group stays stopped by a fault.

    Raises:
        ConfigError: ``--set`` / ``--force`` without ``--retry-faulted``, ``--retry-faulted``
            without a change or ``--force``, or a change resume cannot make.
    """
    from neurorl.errors import EXIT_NON_FINITE

    if (overrides or force) and not retry_faulted:
        raise ConfigError("--set" if overrides else "--force", " ".join(overrides) or True,
                          "only with --retry-faulted on a sweep (it changes the groups a numeric "
                          f"fault stopped): neurorl resume {out} --retry-faulted ...")
    if retry_faulted and not (overrides or force):
        raise ConfigError("--retry-faulted", True, "with --set KEY=VALUE (what to change: the "
                          "same config replays the same fault) or --force, e.g. neurorl resume "
                          f"{out} --retry-faulted --set agent.hyper.lr=...")
    meta = json.loads((out / "sweep.json").read_text())
    base = yaml.safe_load((out / "config.yaml").read_text())
    name = Path(meta["sweep"]).stem
    groups = meta["groups"]
    todo, retry, skipped = [], {}, {}
    for gi in range(len(groups)):
        gdir = out / f"group-{gi:03d}"
        fault = group_fault(gdir) if (gdir / "summary.json").exists() else None
        if fault is not None:
            if retry_faulted:
                if overrides:  # validated before anything runs
                    resume_config(C.from_dict(C.load_yaml(gdir / "config.yaml")), overrides)
                retry[gi] = {"overrides": overrides, "force": force, "fault": fault}
                todo.append(gi)
            else:
                skipped[gi] = fault
            continue
        if (gdir / "summary.json").exists() and not has_checkpoint(gdir):
            continue
        if (gdir / "config.yaml").exists() and finished_summary(
            gdir, C.from_dict(C.load_yaml(gdir / "config.yaml"))
        ) is not None:
            continue  # finished: nothing to build or compile for this group
        todo.append(gi)
    # every group still to run passes the host-side checks (the chip's limits included) before
    # any of them goes on: a sweep whose later group cannot run stops here, not after the others
    built: dict[int, Any] = {}
    check_sweep_groups(base, groups, Path(meta["sweep"]).name,
                       indices=[gi for gi in todo if gi not in retry], built=built)
    for gi, fault in skipped.items():
        label = groups[gi].get("label") or _label(groups[gi]["overrides"])
        print(f"sweep: {_fault_line(gi, label, fault)}: not rerun (the same config replays "
              "the same fault)", flush=True)
    if skipped:
        print(f"sweep: retry them with: neurorl resume {_shell_quote(out)} --retry-faulted "
              "--set agent.hyper.KEY=VALUE", flush=True)
    faulted = _run_groups(base, groups, out, name, todo, progress=progress, resume=True,
                          retry=retry, built=built)
    report(out)
    print_report_tables(out, members=False)
    print_run_files(out)
    return EXIT_NON_FINITE if skipped or faulted else 0


# ----------------------------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    report(args.run_dir)
    print_report_tables(args.run_dir)
    print_run_files(args.run_dir)
    return 0
