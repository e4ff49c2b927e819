"""neurorl.data: event datasets (N-MNIST, DVS-Gesture, SHD) through tonic, a synthetic spike-pattern
task, their on-disk formats (for offline tests) and sensor shifts for event data.

    train = load("shd", root, "train", spec=BinSpec(n_time_bins=100, spatial_factor=0.1))
    for x, y in train.batches(32):       # x [B, T, n] float32, y [B]
        ...                              # jax.vmap(per_sample_fn)(x)
"""

from neurorl.data.events import (
    DATASETS,
    BinSpec,
    DataNotFoundError,
    EventData,
    dataset_info,
    download,
    load,
    open_tonic,
)
from neurorl.data.shifts import EVENT_SHIFTS, EventShift, apply_shifts, event_shift
from neurorl.data.synthetic import spike_patterns

__all__ = [
    "DATASETS", "EVENT_SHIFTS", "BinSpec", "DataNotFoundError", "EventData", "EventShift",
    "apply_shifts", "dataset_info", "download", "event_shift", "load", "open_tonic",
    "spike_patterns",
]
