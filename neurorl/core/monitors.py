"""Monitors: declare what a compiled network records inside its ``lax.scan``.

``SpikeMonitor(group)`` records the group's spikes ``[T, n]``; ``PotentialMonitor(group)`` records
a state field (membrane ``v`` by default, any named neuron state field such as ``a`` or ``i_syn``)
``[T, n]``. Only monitored quantities are stacked over time, so an unmonitored network keeps memory
O(n) in the number of steps.
"""

from __future__ import annotations

from typing import Any

from neurorl.errors import ConfigError


class Monitor:
    """Base class: ``group`` is a :class:`~neurorl.core.network.NeuronGroup`, ``name`` its key in
    the records dict returned by ``CompiledNetwork.run``."""

    kind = "monitor"
    field = "z"

    def __init__(self, group: Any, name: str | None = None) -> None:
        from neurorl.core.network import NeuronGroup

        if not isinstance(group, NeuronGroup):
            raise ConfigError(f"{type(self).__name__}.group", group, "a NeuronGroup")
        self.group = group
        self._name = name

    @property
    def name(self) -> str:
        return self._name or f"{self.kind}_{self.group.name}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.group.name!r}, name={self.name!r})"


class SpikeMonitor(Monitor):
    """Records spikes ``[T, n]`` (float32 0/1) of a group."""

    kind = "spikes"
    field = "z"


class PotentialMonitor(Monitor):
    """Records a neuron state field ``[T, n]`` of a group, the membrane potential ``v`` by
    default."""

    kind = "v"

    def __init__(self, group: Any, name: str | None = None, field: str = "v") -> None:
        super().__init__(group, name)
        self.field = field
        if field != "v":
            self.kind = field
