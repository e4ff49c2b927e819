"""neurorl.core: neuron models, surrogate spikes, connectivity and the N-HAL network front end."""

from neurorl.core.connectivity import CONNECTIVITY, WEIGHT_INITS, build_edges
from neurorl.core.monitors import PotentialMonitor, SpikeMonitor
from neurorl.core.network import (
    CompiledNetwork,
    Connection,
    LearningRule,
    Network,
    NeuronGroup,
    available_backends,
)

__all__ = [
    "CONNECTIVITY",
    "WEIGHT_INITS",
    "build_edges",
    "CompiledNetwork",
    "Connection",
    "LearningRule",
    "Network",
    "NeuronGroup",
    "PotentialMonitor",
    "SpikeMonitor",
    "available_backends",
]
