"""neurorl: spiking agents that learn online with local plasticity in shifting control tasks,
on simulated neuromorphic hardware. Public API re-exports only."""

from neurorl.errors import (
    ChipCapacityError,
    ConfigError,
    NeurorlError,
    ShapeError,
    UnsupportedOnChipError,
)

__version__ = "0.1.0"

__all__ = [
    "ChipCapacityError",
    "ConfigError",
    "NeurorlError",
    "ShapeError",
    "UnsupportedOnChipError",
    "__version__",
]
