"""Neuromorphic metrics: sparsity, synaptic operations, spike efficiency, latency, energy, memory,
adaptivity and robustness.

The counting metrics follow the definitions of NeuroBench (Yik et al., "The neurobench
framework for benchmarking neuromorphic computing algorithms and systems", Nat. Commun. 16:1545,
2025, arXiv 2304.04640; package ``neurobench`` v2.3.0, ``neurobench/metrics/``). They are written
with ``jax.numpy`` for one network and time-first inputs ``[T, ...]``, so they run inside
``jit`` / ``vmap`` (vmap over a batch axis outside). The return-based metrics (adaptivity,
robustness) are host-side numpy, like :mod:`neurorl.metrics.continual`.

Chip energy models live in :mod:`neurorl.hardware.energy` (``count_activity``, ``energy``);
:func:`energy_per_inference` either applies given per-operation energies to given counts or
delegates to that module for a chip preset.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neurorl.errors import ConfigError, ShapeError
from neurorl.metrics.continual import AdaptationResult, adaptation_time, adaptation_times

Array = Any

__all__ = [
    "AdaptationResult",
    "SpikeEfficiency",
    "SynapticOperations",
    "activation_sparsity",
    "adaptation_time",
    "adaptation_times",
    "adaptivity_score",
    "connection_sparsity",
    "decision_latency",
    "energy_per_inference",
    "first_spike_latency",
    "memory_footprint",
    "network_synaptic_operations",
    "robustness_index",
    "spike_efficiency",
    "synaptic_operations",
]


# --------------------------------------------------------------------------------------------
# sparsity


def activation_sparsity(*activations: Array) -> jax.Array:
    """NeuroBench ActivationSparsity: ``1 - (nonzero activations) / (all activations)``.

    Pooled over every given layer, timestep and sample (NeuroBench
    ``metrics/workload/activation_sparsity.py`` sums nonzero and total counts over all hooked
    spiking / ReLU / sigmoid outputs before dividing, so large layers weigh more).

    Args:
        *activations: one array per layer, e.g. spikes ``[T, N_l]``; any shapes.

    Returns:
        Scalar float32 in ``[0, 1]`` (0 for empty arrays).
    """
    if not activations:
        raise ConfigError("activations", (), "at least one activation array")
    nonzero = sum(jnp.count_nonzero(jnp.asarray(a)) for a in activations)
    total = sum(int(np.prod(jnp.shape(a))) for a in activations)
    if total == 0:
        return jnp.float32(0.0)
    return 1.0 - nonzero.astype(jnp.float32) / jnp.float32(total)


def connection_sparsity(*weights: Array) -> jax.Array:
    """NeuroBench ConnectionSparsity: ``(zero weights) / (all weights)`` over all given layers.

    (NeuroBench ``metrics/static/connection_sparsity.py`` pools Linear / Conv / RNN weights.)

    Args:
        *weights: weight matrices ``[n_pre, n_post]`` (or masks) of every connection.

    Returns:
        Scalar float32 in ``[0, 1]``.
    """
    if not weights:
        raise ConfigError("weights", (), "at least one weight array")
    total = sum(int(np.prod(jnp.shape(w))) for w in weights)
    zeros = sum(jnp.sum(jnp.asarray(w) == 0) for w in weights)
    return zeros.astype(jnp.float32) / jnp.float32(max(total, 1))


# --------------------------------------------------------------------------------------------
# synaptic operations


class SynapticOperations(NamedTuple):
    """Synaptic operations of one sample (NeuroBench SynapticOperations).

    Attributes:
        acs: effective accumulates: operations in steps whose inputs are all in {-1, 0, 1}.
        macs: effective multiply-accumulates: operations in steps with graded inputs.
        dense: operations of a dense implementation (every input times every weight).
    """

    acs: Array
    macs: Array
    dense: Array

    @property
    def effective(self) -> Array:
        """ACs + MACs."""
        return self.acs + self.macs

    def __add__(self, other: SynapticOperations) -> SynapticOperations:  # type: ignore[override]
        return SynapticOperations(
            self.acs + other.acs, self.macs + other.macs, self.dense + other.dense
        )


def synaptic_operations(inputs: Array, weights: Array) -> SynapticOperations:
    """Synaptic operations of one connection ``post_t = inputs_t @ W`` over ``T`` steps.

    Definition (NeuroBench ``utils/layers/macs.py`` ``stateless_layer_macs`` with ``input.py``
    and ``binary_copy.py``): each step the layer is re-run with binarised weights
    ``[w != 0]`` and binarised inputs ``[x != 0]`` and no bias; the summed output
    ``sum_ij [x_ti != 0][w_ij != 0]`` is the effective operation count, i.e. each nonzero input
    times its fan-out of nonzero weights. A step whose inputs all lie in {-1, 0, 1} is
    "spiking" and its operations are accumulates (ACs); otherwise multiply-accumulates (MACs).
    The dense count sets every weight and input to 1: ``n_pre * n_post`` per step. NeuroBench
    decides spiking per layer call, which for a step-by-step SNN is per timestep, as here.
    Counts are per sample: for one network they are the totals over the ``T`` steps.

    Args:
        inputs: ``[T, n_pre]`` presynaptic activity (spikes, or graded values for a first layer
            fed with real-valued observations).
        weights: ``[n_pre, n_post]`` weights (pre-major, as everywhere in neurorl).

    Returns:
        :class:`SynapticOperations` of float32 scalars.
    """
    if jnp.ndim(inputs) != 2 or jnp.ndim(weights) != 2 or inputs.shape[1] != weights.shape[0]:
        raise ShapeError(
            "synaptic_operations(inputs, weights)",
            "inputs [T, n_pre] and weights [n_pre, n_post]",
            (tuple(jnp.shape(inputs)), tuple(jnp.shape(weights))),
        )
    x = jnp.asarray(inputs)
    w_bin = (jnp.asarray(weights) != 0).astype(jnp.float32)
    fan_out = w_bin.sum(axis=1)  # [n_pre] nonzero outgoing weights
    per_step = (x != 0).astype(jnp.float32) @ fan_out  # [T]
    spiking = jnp.all((x == 0) | (x == 1) | (x == -1), axis=1)  # [T]
    t, n_pre = x.shape
    return SynapticOperations(
        acs=jnp.sum(jnp.where(spiking, per_step, 0.0)),
        macs=jnp.sum(jnp.where(spiking, 0.0, per_step)),
        dense=jnp.float32(t * n_pre * weights.shape[1]),
    )


def network_synaptic_operations(
    connections: list[tuple[Array, Array]] | tuple[tuple[Array, Array], ...],
) -> SynapticOperations:
    """Sum of :func:`synaptic_operations` over ``(inputs [T, n_pre], weights)`` pairs.

    For a recurrent connection pass the previous step's spikes as its inputs.
    """
    if not connections:
        raise ConfigError("connections", connections, "a non-empty list of (inputs, weights)")
    total = synaptic_operations(*connections[0])
    for inp, w in connections[1:]:
        total = total + synaptic_operations(inp, w)
    return total


# --------------------------------------------------------------------------------------------
# spikes per decision, latency


class SpikeEfficiency(NamedTuple):
    """Spikes per decision and per correct decision (``inf`` when no decision was correct)."""

    spikes_per_decision: Array
    spikes_per_correct_decision: Array


def spike_efficiency(spikes: Array, correct: Array | None = None) -> SpikeEfficiency:
    """Spike efficiency: all spikes emitted divided by decisions (and by correct decisions).

    An RL agent makes one decision (action) per environment step, computed over ``K`` network
    substeps; the leading axis of ``spikes`` indexes decisions. Following the "spikes per
    inference" cost used alongside accuracy in neuromorphic benchmarks (NeuroBench reports
    activity per sample next to correctness), the per-correct-decision form charges the spikes of
    wrong decisions to the correct ones.

    Args:
        spikes: ``[D, ...]`` spikes (e.g. ``[D, K, N]``) of all counted neurons for ``D``
            decisions.
        correct: optional ``[D]`` bool, True where the decision was correct (e.g. the greedy
            action of a reference policy, or a step that did not end the episode in failure).

    Returns:
        :class:`SpikeEfficiency` of float32 scalars.
    """
    s = jnp.asarray(spikes)
    if s.ndim < 1 or s.shape[0] == 0:
        raise ShapeError("spikes", "[D, ...] with D >= 1 decisions", jnp.shape(spikes))
    total = jnp.sum(s).astype(jnp.float32)
    per_decision = total / s.shape[0]
    if correct is None:
        return SpikeEfficiency(per_decision, per_decision)
    c = jnp.asarray(correct)
    if c.shape != (s.shape[0],):
        raise ShapeError("correct", (s.shape[0],), c.shape)
    n_correct = jnp.sum(c.astype(jnp.float32))
    per_correct = jnp.where(n_correct > 0, total / jnp.maximum(n_correct, 1.0), jnp.inf)
    return SpikeEfficiency(per_decision, per_correct)


def first_spike_latency(spikes: Array) -> jax.Array:
    """Latency to first spike, in substeps, per neuron: ``min{k : z_k != 0}`` counted from 1.

    Args:
        spikes: ``[K, N]`` spikes of one decision's ``K`` substeps.

    Returns:
        ``[N]`` float32; 1 = spiked in the first substep; ``inf`` = never spiked.
    """
    if jnp.ndim(spikes) != 2:
        raise ShapeError("spikes", "[K, N]", jnp.shape(spikes))
    fired = jnp.asarray(spikes) != 0
    first = jnp.argmax(fired, axis=0).astype(jnp.float32) + 1.0
    return jnp.where(jnp.any(fired, axis=0), first, jnp.inf)


def decision_latency(output_spikes: Array) -> jax.Array:
    """Decision latency in substeps for a spike-count (argmax) readout.

    The decision after ``k`` substeps is ``argmax_a sum_{k'<=k} z_{k', a}`` (first index on ties,
    as ``jnp.argmax`` in a decoder). The latency is the smallest ``k`` (1-based) from which the
    decision equals the final one for every later substep, with at least one output spike by
    then, i.e. the time an early-exit readout would have needed to give the same action.

    Args:
        output_spikes: ``[K, A]`` spikes of the ``A`` action neurons (or populations' summed
            spikes) over one decision's ``K`` substeps.

    Returns:
        Scalar float32 in ``[1, K]``; ``inf`` when no output neuron spiked.
    """
    if jnp.ndim(output_spikes) != 2:
        raise ShapeError("output_spikes", "[K, A]", jnp.shape(output_spikes))
    counts = jnp.cumsum(jnp.asarray(output_spikes, dtype=jnp.float32), axis=0)  # [K, A]
    decision = jnp.argmax(counts, axis=1)  # [K]
    any_spike = jnp.sum(counts, axis=1) > 0
    ok = (decision == decision[-1]) & any_spike
    # stable from k on: every later substep agrees -> reverse cumulative AND
    stable = jnp.flip(jnp.cumprod(jnp.flip(ok).astype(jnp.int32)) > 0)
    k = jnp.argmax(stable).astype(jnp.float32) + 1.0
    return jnp.where(stable[-1], k, jnp.inf)


# --------------------------------------------------------------------------------------------
# energy and memory


def energy_per_inference(
    counts: Any,
    n_inferences: float,
    *,
    op_energy_j: Mapping[str, float] | None = None,
    chip: Any = None,
) -> float:
    """Energy per inference (per decision), in joules: ``(sum_op N_op e_op) / n_inferences``.

    Either give per-operation energies ``op_energy_j`` (joules per op, e.g.
    ``{"synops_ac": 23.6e-12}`` for Loihi's minimum per-SOP energy, Davies et al. 2018 Table 2)
    matching the keys of ``counts``, or give ``chip`` (a ``ChipSpec`` or preset name) and
    ``neurorl.hardware.energy.ActivityCounts`` to use that module's full per-step energy model.
    NeuroBench reports per-sample counts and leaves energy to the hardware track; this is the
    usual linear "ops x energy per op" estimate.

    Args:
        counts: a mapping ``op name -> count``, a :class:`SynapticOperations` (keys ``acs``,
            ``macs``, ``dense``) or an ``ActivityCounts`` (its field names; per-step arrays
            are summed).
        n_inferences: number of decisions the counts cover (> 0).
        op_energy_j: mapping ``op name -> joules per op`` (every key must be in ``counts``).
        chip: chip preset for :func:`neurorl.hardware.energy.energy` (excludes ``op_energy_j``).

    Returns:
        Joules per inference (float).
    """
    if not (isinstance(n_inferences, (int, float, np.number)) and n_inferences > 0):
        raise ConfigError("n_inferences", n_inferences, "a number > 0 of decisions")
    if (op_energy_j is None) == (chip is None):
        raise ConfigError("op_energy_j/chip", (op_energy_j, chip), "exactly one of the two")
    if chip is not None:
        from neurorl.hardware.energy import energy  # lazy: metrics stay importable alone

        total_j = np.asarray(energy(counts, chip).total, dtype=np.float64).sum()
        return float(total_j) / float(n_inferences)
    if isinstance(counts, Mapping):
        table = dict(counts)
    elif hasattr(counts, "_asdict"):  # SynapticOperations and other NamedTuples
        table = dict(counts._asdict())
    elif hasattr(counts, "__dataclass_fields__"):  # hardware.energy.ActivityCounts
        table = {f: getattr(counts, f) for f in counts.__dataclass_fields__}
    else:
        raise ConfigError(
            "counts", type(counts).__name__, "a mapping op -> count, a NamedTuple or a dataclass"
        )
    total = 0.0
    for op, e in op_energy_j.items():
        if op not in table:
            raise ConfigError(f"op_energy_j[{op!r}]", e, f"an op among the counts {sorted(table)}")
        if not (math.isfinite(e) and e >= 0):
            raise ConfigError(f"op_energy_j[{op!r}]", e, "joules per op, a finite float >= 0")
        total += float(np.asarray(table[op], dtype=np.float64).sum()) * float(e)
    return total / float(n_inferences)


def memory_footprint(
    weights: Any,
    state: Any = None,
    *,
    weight_bits: int = 32,
    state_bits: int = 32,
    count_zero_weights: bool = True,
) -> int:
    """Memory footprint in bytes: ``ceil((n_weights * weight_bits + n_state * state_bits) / 8)``.

    NeuroBench Footprint (``metrics/static/footprint.py``) is ``sum numel * element_size`` over
    parameters and buffers; with ``weight_bits = state_bits = 32`` for float32 arrays this is the
    same number. Chips store fewer bits (Loihi: up to 8-bit weights, 24-bit membrane state;
    Xylo: 8-bit weights, 16-bit state), which the bit widths express.

    Args:
        weights: array or pytree of all weights.
        state: array or pytree of per-neuron / per-synapse state (membranes, traces); optional.
        weight_bits: bits per stored weight.
        state_bits: bits per state variable.
        count_zero_weights: False for a sparse store that keeps only nonzero weights (the
            index overhead is not counted).

    Returns:
        Bytes (int).
    """
    for name, b in (("weight_bits", weight_bits), ("state_bits", state_bits)):
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1:
            raise ConfigError(name, b, "an integer number of bits >= 1")
    w_leaves = jax.tree.leaves(weights)
    if count_zero_weights:
        n_w = sum(int(np.prod(np.shape(w))) for w in w_leaves)
    else:
        n_w = sum(int(np.count_nonzero(np.asarray(w))) for w in w_leaves)
    n_s = sum(int(np.prod(np.shape(s))) for s in jax.tree.leaves(state))
    return int(math.ceil((n_w * weight_bits + n_s * state_bits) / 8))


# --------------------------------------------------------------------------------------------
# adaptivity and robustness (host side, returns)


def _level_above(value: float, reference_min: float | None, field: str) -> float:
    r_min = 0.0 if reference_min is None else float(reference_min)
    if value - r_min <= 0:
        raise ConfigError(
            field,
            reference_min,
            f"a reference return below the reference level {value} (e.g. a random policy's "
            "return); ratios of negative returns are meaningless",
        )
    return r_min


def adaptivity_score(
    returns: Array,
    shift_episode: int,
    *,
    horizon: int,
    window: int = 10,
    reference_min: float | None = None,
) -> float:
    """Recovered fraction of the pre-shift return per unit time after a shift.

    ``A = (1/H) sum_{k=1}^{H} clip((R_{s+k-1} - r_min) / (P_pre - r_min), 0, 1)``: the area under
    the recovered-fraction curve over ``H`` post-shift episodes divided by ``H`` (the Taylor &
    Stone 2009 "area" transfer metric applied to recovery; the normalisation with a reference
    minimum is the one of :func:`neurorl.metrics.continual.adaptation_time`). 1 = no loss at
    all, 0 = never above the reference. Operational proposal, not from a source.

    Args:
        returns: ``[E]`` episode returns.
        shift_episode: first post-shift episode.
        horizon: ``H`` post-shift episodes scored (must exist).
        window: episodes in the pre-shift level ``P_pre``.
        reference_min: reference-worst return (required for negative-return tasks).

    Returns:
        Float in ``[0, 1]``.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise ShapeError("returns", "[E]", r.shape)
    if not (window <= shift_episode and shift_episode + horizon <= r.shape[0] and horizon >= 1):
        raise ConfigError(
            "shift_episode/horizon",
            (shift_episode, horizon),
            f"window={window} episodes before the shift and horizon >= 1 episodes after it "
            f"within the {r.shape[0]} episodes",
        )
    pre = float(r[shift_episode - window : shift_episode].mean())
    r_min = _level_above(pre, reference_min, "reference_min")
    frac = (r[shift_episode : shift_episode + horizon] - r_min) / (pre - r_min)
    return float(np.clip(frac, 0.0, 1.0).mean())


def robustness_index(
    clean_return: float, perturbed_returns: Array, reference_min: float | None = None
) -> np.ndarray:
    """Return under perturbation relative to clean: ``(R_pert - r_min) / (R_clean - r_min)``.

    One entry per perturbation condition (sensor noise levels, sensor drift); 1 = unaffected,
    0 = reduced to the reference (random-policy) level. Not clipped: values above 1 mean the
    perturbation helped.

    Args:
        clean_return: mean return without perturbation.
        perturbed_returns: mean return under each perturbation, any shape.
        reference_min: reference-worst return (required when ``clean_return <= 0``).

    Returns:
        float64 array shaped like ``perturbed_returns``.
    """
    r_min = _level_above(float(clean_return), reference_min, "reference_min")
    return (np.asarray(perturbed_returns, dtype=np.float64) - r_min) / (clean_return - r_min)
