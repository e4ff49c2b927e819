"""neurorl.hardware: chip profiles, weight/state constraints, memristive devices, energy."""

from neurorl.hardware.backends import Backend, ChipBackend, NetworkCounts, make_backend
from neurorl.hardware.chips import CHIPS, ChipSpec, describe_chips, get_chip
from neurorl.hardware.constraints import (
    chip_constraint,
    chip_projection,
    clip_to_range,
    dale_signs,
    fan_in,
    fan_in_mask,
    fixed_point,
    quantize,
    shared_weight_types,
    state_projection,
    weight_grid,
)
from neurorl.hardware.energy import ActivityCounts, EnergyBreakdown, count_activity, energy
from neurorl.hardware.mapping import map_compiled, map_network
from neurorl.hardware.nir import NIRImport, from_nir, to_nir, write_nir

__all__ = [
    "CHIPS",
    "Backend",
    "ChipBackend",
    "NetworkCounts",
    "make_backend",
    "ActivityCounts",
    "NIRImport",
    "from_nir",
    "map_compiled",
    "map_network",
    "to_nir",
    "write_nir",
    "ChipSpec",
    "EnergyBreakdown",
    "chip_constraint",
    "chip_projection",
    "clip_to_range",
    "count_activity",
    "dale_signs",
    "describe_chips",
    "energy",
    "fan_in",
    "fan_in_mask",
    "fixed_point",
    "get_chip",
    "quantize",
    "shared_weight_types",
    "state_projection",
    "weight_grid",
]
