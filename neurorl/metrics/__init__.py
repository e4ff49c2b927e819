"""neurorl.metrics: continual-learning metrics and neuromorphic (NeuroBench-style) metrics.

``continual``: Continual World average performance / forgetting / forward transfer, GEM
ACC / BWT / FWT, adaptation time after a shift, plasticity-loss indicators.
``neuromorphic``: activation and connection sparsity, synaptic operations (ACs / MACs),
spike efficiency, latencies, energy per inference, memory footprint, adaptivity, robustness.
"""

from neurorl.metrics import continual, neuromorphic
from neurorl.metrics.continual import (
    AdaptationResult,
    adaptation_time,
    adaptation_times,
    average_performance,
    effective_rank,
    episode_returns,
    forgetting,
    forward_transfer,
    gem_accuracy,
    gem_backward_transfer,
    gem_forward_transfer,
    mean_last,
    normalise_returns,
    silent_fraction,
    task_auc,
    weight_change,
)
from neurorl.metrics.neuromorphic import (
    SpikeEfficiency,
    SynapticOperations,
    activation_sparsity,
    adaptivity_score,
    connection_sparsity,
    decision_latency,
    energy_per_inference,
    first_spike_latency,
    memory_footprint,
    network_synaptic_operations,
    robustness_index,
    spike_efficiency,
    synaptic_operations,
)

__all__ = [
    "AdaptationResult",
    "SpikeEfficiency",
    "SynapticOperations",
    "activation_sparsity",
    "adaptation_time",
    "adaptation_times",
    "adaptivity_score",
    "average_performance",
    "connection_sparsity",
    "continual",
    "decision_latency",
    "effective_rank",
    "energy_per_inference",
    "episode_returns",
    "first_spike_latency",
    "forgetting",
    "forward_transfer",
    "gem_accuracy",
    "gem_backward_transfer",
    "gem_forward_transfer",
    "mean_last",
    "memory_footprint",
    "network_synaptic_operations",
    "neuromorphic",
    "normalise_returns",
    "robustness_index",
    "silent_fraction",
    "spike_efficiency",
    "synaptic_operations",
    "task_auc",
    "weight_change",
]
