"""Energy per step from counted activity, with NeuroBench-style counts alongside.

``E = N_synop * e_synop + N_active * e_neuron + (N_upd - N_active) * e_neuron_idle
+ N_learn * e_learn + N_transfer_read * e_synop + P_static * t_step * n_steps`` (hardware.md
section 2, "Per-step energy"; Davies et al. 2018 Table 2 for the Loihi terms; the transfer reads
of a crossbar's Tiki-Taka fast device count in the learning term). Chips whose energy figure
is *all-in* (TrueNorth's 26 pJ per event) have zero for the terms it already includes, so
nothing is counted twice. Energy is a pure host-side metric: never put it inside a gradient.

Counts follow NeuroBench (Yik et al. 2025, Nat. Commun. 16:1545; neurobench v2.3.0
``metrics/workload/synaptic_operations.py``): effective synaptic operations are the output of the
layer re-run with binarised weights and inputs, i.e. ``sum_t sum_ij [s_ti != 0][w_ij != 0]``;
they are accumulates (ACs) when every input is in {-1, 0, 1} (spikes) and multiply-accumulates
(MACs) otherwise (graded inputs). Activation sparsity ``= 1 - nonzero / total`` inputs;
connection sparsity ``= zero weights / all weights``; the footprint is every stored weight at
the chip's weight bits (NeuroBench counts ``numel * element_size``).
"""

from __future__ import annotations

import math
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from neurorl.errors import ConfigError, ShapeError
from neurorl.hardware.chips import ChipSpec, get_chip

Array = Any  # jax or numpy arrays: counts stay numpy float64 on the host, jax inside a scan


@flax.struct.dataclass
class ActivityCounts:
    """Raw event counts of one or more connections over some steps (add them with ``+``).

    All fields are float counts (float32 inside jit, float64 once summed on the host), so
    cumulative runs do not overflow int32.

    Attributes:
        synops_ac: effective accumulate operations (binary spike inputs).
        synops_mac: effective multiply-accumulate operations (graded inputs).
        dense_synops: operations a dense implementation would do (``T * n_pre * n_post``).
        neuron_updates: neuron state updates (``T * n_post``: every neuron every step).
        active_neuron_updates: updates of neurons that received >= 1 event that step.
        learning_updates: synaptic weight updates (plasticity).
        input_nonzero: nonzero input activations.
        input_total: all input activations.
        weights_zero: zero weights (connection sparsity numerator).
        weights_total: all weights.
        memory_bits: weight memory footprint in bits.
        steps: time steps counted.
        transfer_reads: weights read from a crossbar's fast device by Tiki-Taka transfers
            (:func:`neurorl.hardware.memristor.transfer_reads`), priced per read as one
            crossbar multiply-accumulate (``e_synop_pj``) in the learning term.
    """

    synops_ac: Array = 0.0
    synops_mac: Array = 0.0
    dense_synops: Array = 0.0
    neuron_updates: Array = 0.0
    active_neuron_updates: Array = 0.0
    learning_updates: Array = 0.0
    input_nonzero: Array = 0.0
    input_total: Array = 0.0
    weights_zero: Array = 0.0
    weights_total: Array = 0.0
    memory_bits: Array = 0.0
    steps: Array = 0.0
    transfer_reads: Array = 0.0

    def __add__(self, other: ActivityCounts) -> ActivityCounts:
        return jax.tree_util.tree_map(lambda a, b: a + b, self, other)

    @property
    def synops(self) -> Array:
        """All effective synaptic operations (ACs + MACs)."""
        return self.synops_ac + self.synops_mac

    @property
    def activation_sparsity(self) -> Array:
        """``1 - nonzero / total`` inputs (NeuroBench ActivationSparsity)."""
        return 1.0 - self.input_nonzero / np.maximum(self.input_total, 1.0)

    @property
    def connection_sparsity(self) -> Array:
        """``zero weights / all weights`` (NeuroBench ConnectionSparsity)."""
        return self.weights_zero / np.maximum(self.weights_total, 1.0)

    @property
    def memory_bytes(self) -> Array:
        """Weight memory footprint in bytes."""
        return self.memory_bits / 8.0


@flax.struct.dataclass
class EnergyBreakdown:
    """Energy in joules by term; ``missing`` names terms whose constant was not located."""

    synaptic: Array
    neuron: Array
    learning: Array
    static: Array
    total: Array
    missing: tuple[str, ...] = flax.struct.field(pytree_node=False, default=())

    def as_dict(self) -> dict[str, float]:
        """Plain floats (host side) for logging."""
        return {
            k: float(getattr(self, k))
            for k in ("synaptic", "neuron", "learning", "static", "total")
        }


def count_activity(
    spikes: Array,
    weights_or_mask: Array,
    *,
    learning_updates: Array = 0.0,
    weight_bits: int | None = 32,
    count_neurons: bool = True,
) -> ActivityCounts:
    """Count the activity of one connection ``post = spikes @ W`` over ``T`` steps (jittable).

    Args:
        spikes: inputs ``[T, n_pre]`` (binary spikes or graded values).
        weights_or_mask: ``[n_pre, n_post]`` weights or a 0/1 connectivity mask.
        learning_updates: number of synaptic learning updates in these steps.
        weight_bits: bits per stored weight for the footprint (``chip.storage_bits``).
        count_neurons: count the post neurons' updates (False when another connection into the
            same group already counted them).

    Returns:
        ``ActivityCounts`` (float32 scalars).
    """
    if spikes.ndim != 2 or weights_or_mask.ndim != 2 or spikes.shape[1] != weights_or_mask.shape[0]:
        raise ShapeError(
            "count_activity(spikes, weights)",
            "spikes [T, n_pre] and weights [n_pre, n_post]",
            (tuple(spikes.shape), tuple(weights_or_mask.shape)),
        )
    t, n_pre = spikes.shape
    n_post = weights_or_mask.shape[1]
    s_bin = (spikes != 0).astype(jnp.float32)
    w_bin = (weights_or_mask != 0).astype(jnp.float32)
    per_post = s_bin @ w_bin  # [T, n_post] events received
    ops = per_post.sum()
    # A layer is "spiking" when all its inputs are in {-1, 0, 1} (NeuroBench input.py).
    spiking = jnp.all((spikes == 0) | (spikes == 1) | (spikes == -1))
    n_w = float(n_pre * n_post)
    return ActivityCounts(
        synops_ac=jnp.where(spiking, ops, 0.0),
        synops_mac=jnp.where(spiking, 0.0, ops),
        dense_synops=jnp.float32(t * n_pre * n_post),
        neuron_updates=jnp.float32(t * n_post if count_neurons else 0.0),
        active_neuron_updates=(per_post > 0).sum().astype(jnp.float32)
        if count_neurons
        else jnp.float32(0.0),
        learning_updates=jnp.asarray(learning_updates, jnp.float32),
        input_nonzero=s_bin.sum(),
        input_total=jnp.float32(t * n_pre),
        weights_zero=jnp.float32(n_w) - w_bin.sum(),
        weights_total=jnp.float32(n_w),
        memory_bits=jnp.float32(n_w * (weight_bits or 32)),
        steps=jnp.float32(t),
    )


def energy(
    counts: ActivityCounts, chip: ChipSpec | str, step_time_s: float | None = None
) -> EnergyBreakdown:
    """Energy of counted activity on ``chip`` (pure; works on numpy or jax counts, any shape).

    Args:
        counts: activity counts (scalars, or arrays e.g. ``[T]`` per step).
        chip: chip preset or name.
        step_time_s: wall-clock time of one step for the static term (default the chip's
            ``step_time_s``; if neither is known the static term is 0 and listed as missing).

    Returns:
        ``EnergyBreakdown`` in joules. Terms with an unlocated constant count as 0 and are named
        in ``missing`` (never a silently invented number).
    """
    chip = get_chip(chip)
    pj = 1e-12
    missing = []

    def const(name: str, value: float | None, used: Any) -> float:
        if value is None:
            if np.any(np.asarray(used) != 0):
                missing.append(name)
            return 0.0
        return float(value)

    synops = counts.synops_ac + counts.synops_mac
    e_syn = const("e_synop_pj", chip.e_synop_pj, synops) * pj * synops
    e_act = const("e_neuron_pj", chip.e_neuron_pj, counts.neuron_updates)
    e_idle = chip.e_neuron_idle_pj if chip.e_neuron_idle_pj is not None else e_act
    idle = counts.neuron_updates - counts.active_neuron_updates
    if chip.e_neuron_idle_pj is None:
        e_neu = e_act * pj * counts.neuron_updates
    else:
        e_neu = (e_act * counts.active_neuron_updates + e_idle * idle) * pj
    e_learn = (
        const("e_learn_pj", chip.e_learn_pj, counts.learning_updates)
        * pj
        * (counts.learning_updates)
    )
    # Tiki-Taka's transfer reads of the fast device: each weight read is one analog MAC of the
    # crossbar's forward pass, the operation e_synop_pj prices (PCM: 28,065 GOPS/W, Ambrogio
    # et al. 2018, Nature 558:60 [V]; RRAM: the same figure as a proxy) -- part of learning
    e_learn = e_learn + const("e_synop_pj", chip.e_synop_pj, counts.transfer_reads) * pj * (
        counts.transfer_reads)
    st = step_time_s if step_time_s is not None else chip.step_time_s
    if step_time_s is not None and not (math.isfinite(step_time_s) and step_time_s > 0):
        raise ConfigError("energy.step_time_s", step_time_s, "a float > 0 (seconds)")
    if chip.static_power_w is None or st is None:
        if chip.static_power_w is None:
            const("static_power_w", None, counts.steps)
        elif np.any(np.asarray(counts.steps) != 0):
            missing.append("step_time_s")
        e_static = 0.0 * counts.steps
    else:
        e_static = chip.static_power_w * st * counts.steps
    total = e_syn + e_neu + e_learn + e_static
    return EnergyBreakdown(e_syn, e_neu, e_learn, e_static, total, tuple(missing))


def energy_per(breakdown: EnergyBreakdown, n: Array) -> EnergyBreakdown:
    """Divide a breakdown by ``n`` (env steps, inferences): per env step / per inference."""
    f = lambda x: x / n
    return EnergyBreakdown(
        f(breakdown.synaptic),
        f(breakdown.neuron),
        f(breakdown.learning),
        f(breakdown.static),
        f(breakdown.total),
        breakdown.missing,
    )


def cumulative_energy(per_step: ActivityCounts, chip: ChipSpec | str, **kw: Any) -> EnergyBreakdown:
    """Cumulative energy over time from per-step counts (fields shaped ``[T, ...]``), float64."""
    c64 = jax.tree_util.tree_map(lambda x: np.cumsum(np.asarray(x, np.float64), axis=0), per_step)
    return energy(c64, chip, **kw)


def sum_counts(per_step: ActivityCounts, axis: int | None = None) -> ActivityCounts:
    """Sum per-step counts on the host in float64 (exact for integer counts below 2^53)."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64).sum(axis=axis), per_step)
