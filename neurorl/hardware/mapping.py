"""Place a network's neuron groups onto a chip's cores and check that it fits.

Placement is the simple block scheme of nengo-loihi (``builder/split_blocks``): a group is split
into contiguous blocks of at most ``neurons_per_core`` neurons, one block per core, groups never
share a core; a block whose incoming synapses exceed the core's synapse memory is split further
(halving its neurons) until it fits. Synapse memory of a core = incoming synapses of its neurons x
the chip's bits per stored weight (per-axon headers ignored: a lower bound). A network that does
not fit raises ``ChipCapacityError`` naming the group / core and by how much.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from neurorl.errors import ChipCapacityError, ConfigError
from neurorl.hardware.chips import ChipSpec, get_chip
from neurorl.hardware.constraints import require_on_chip_learning


@dataclasses.dataclass(frozen=True)
class CoreUse:
    """One core: which neurons of which group it holds and its synapse memory."""

    group: str
    start: int  # first neuron index in the group
    neurons: int
    synapse_bits: int


@dataclasses.dataclass(frozen=True)
class MappingReport:
    """Result of :func:`map_network`."""

    chip: str
    cores: tuple[CoreUse, ...]
    max_fan_in: dict[str, int]  # per target group, max incoming synapses of one neuron
    max_fan_out: dict[str, int]  # per source group, max outgoing synapses of one neuron

    @property
    def cores_used(self) -> int:
        return len(self.cores)


def map_network(
    groups: Mapping[str, int],
    connections: Sequence[tuple[str, str, np.ndarray]],
    chip: ChipSpec | str,
    rules: Sequence[tuple[str, bool]] = (),
    external: Sequence[str] = (),
) -> MappingReport:
    """Map groups and connections onto ``chip``'s cores (host side, before any trace).

    Args:
        groups: group name -> number of neurons.
        connections: ``(source, target, mask)`` with a ``[n_source, n_target]`` 0/1 (or weight)
            matrix; nonzero entries are synapses.
        chip: chip preset or name.
        rules: ``(rule_name, off_chip)`` per plastic connection; a rule the chip cannot run on
            chip raises ``UnsupportedOnChipError`` unless marked off-chip.
        external: groups that are external spike sources (sensor / host input): checked for
            fan-out but not placed on neuron cores.

    Returns:
        A ``MappingReport``.

    Raises:
        ChipCapacityError: fan-in, fan-out, core count or synapse memory exceeded.
    """
    chip = get_chip(chip)
    for rule, off_chip in rules:
        require_on_chip_learning(chip, rule, off_chip)
    fan_in = {g: np.zeros(n, np.int64) for g, n in groups.items()}
    fan_out = {g: np.zeros(n, np.int64) for g, n in groups.items()}
    for src, dst, m in connections:
        for g in (src, dst):
            if g not in groups:
                raise ConfigError("map_network.connections", g, f"a group of {sorted(groups)}")
        m = np.asarray(m) != 0
        if m.shape != (groups[src], groups[dst]):
            raise ConfigError(
                f"map_network.connections[{src}->{dst}]", m.shape, (groups[src], groups[dst])
            )
        fan_in[dst] += m.sum(0)
        fan_out[src] += m.sum(1)
    for g in groups:
        if chip.max_fan_in is not None and fan_in[g].size and fan_in[g].max() > chip.max_fan_in:
            j = int(fan_in[g].argmax())
            raise ChipCapacityError(
                f"group {g!r} neuron {j} has fan-in {int(fan_in[g][j])} > {chip.name} limit "
                f"{chip.max_fan_in} (over by {int(fan_in[g][j]) - chip.max_fan_in}); prune with "
                "a fan-in mask (constraints.fan_in_mask) or use fixed_fan_in connectivity"
            )
        if chip.max_fan_out is not None and fan_out[g].size and fan_out[g].max() > chip.max_fan_out:
            j = int(fan_out[g].argmax())
            raise ChipCapacityError(
                f"group {g!r} neuron {j} has fan-out {int(fan_out[g][j])} > {chip.name} limit "
                f"{chip.max_fan_out} (over by {int(fan_out[g][j]) - chip.max_fan_out})"
            )
    per_core = chip.neurons_per_core or max(groups.values(), default=1)
    mem = chip.synapse_memory_bits_per_core
    bits = chip.storage_bits
    cores: list[CoreUse] = []
    for g, n in groups.items():
        if g in external:
            continue
        start = 0
        while start < n:
            size = min(per_core, n - start)
            while True:
                syn_bits = int(fan_in[g][start : start + size].sum()) * bits
                if mem is None or syn_bits <= mem or size == 1:
                    break
                size = math.ceil(size / 2)
            if mem is not None and syn_bits > mem:
                raise ChipCapacityError(
                    f"group {g!r} neuron {start}: {syn_bits} synapse bits exceed one "
                    f"{chip.name} core's {mem} bits (over by {syn_bits - mem})"
                )
            cores.append(CoreUse(g, start, size, syn_bits))
            start += size
    if chip.cores is not None and len(cores) > chip.cores:
        raise ChipCapacityError(
            f"network needs {len(cores)} cores, {chip.name} has {chip.cores} "
            f"(over by {len(cores) - chip.cores}); largest groups: "
            + ", ".join(f"{g}={n}" for g, n in sorted(groups.items(), key=lambda x: -x[1])[:3])
        )
    return MappingReport(
        chip.name,
        tuple(cores),
        {g: int(v.max(initial=0)) for g, v in fan_in.items()},
        {g: int(v.max(initial=0)) for g, v in fan_out.items()},
    )


def map_compiled(cnet: Any, chip: ChipSpec | str, off_chip: bool = False) -> MappingReport:
    """Map a ``CompiledNetwork`` (``neurorl.core.network``) using its public structure accessors."""
    import jax

    state = cnet.init(jax.random.key(0))
    dense = cnet.dense_weights(state)
    groups = {name: g.n for name, g in cnet.groups.items()}
    conns = []
    for name, c in cnet.connections.items():
        mask = np.asarray(cnet.structure[name]["mask"]) if "mask" in cnet.structure[name] else None
        conns.append((c.source.name, c.target.name, mask if mask is not None else dense[name]))
    rules = [(r.rule_name, off_chip) for r in cnet.rules.values()]
    return map_network(groups, conns, chip, rules)
