"""neurorl: spiking agents that learn online with local plasticity in shifting control tasks,
on simulated neuromorphic hardware. Public API re-exports only."""

from neurorl import agents, envs, hardware, metrics, plasticity
from neurorl.agents import AgentNetwork, make_agent
from neurorl.core import (
    CompiledNetwork,
    Connection,
    LearningRule,
    Network,
    NeuronGroup,
    PotentialMonitor,
    SpikeMonitor,
)
from neurorl.core.neurons import NEURONS, get_neuron, izhikevich_regime, make_params
from neurorl.envs import ENVS, make
from neurorl.errors import (
    ChipCapacityError,
    ConfigError,
    NeurorlError,
    ShapeError,
    UnsupportedOnChipError,
)
from neurorl.experiment.train import TrainConfig, make_train
from neurorl.hardware.chips import CHIPS, ChipSpec, get_chip
from neurorl.plasticity import RULES

__version__ = "0.1.0"

__all__ = [
    "AgentNetwork",
    "CHIPS",
    "ENVS",
    "NEURONS",
    "RULES",
    "ChipCapacityError",
    "ChipSpec",
    "CompiledNetwork",
    "ConfigError",
    "Connection",
    "LearningRule",
    "Network",
    "NeuronGroup",
    "NeurorlError",
    "PotentialMonitor",
    "ShapeError",
    "SpikeMonitor",
    "TrainConfig",
    "UnsupportedOnChipError",
    "__version__",
    "agents",
    "envs",
    "get_chip",
    "get_neuron",
    "hardware",
    "izhikevich_regime",
    "make",
    "make_agent",
    "make_params",
    "make_train",
    "metrics",
    "plasticity",
]
