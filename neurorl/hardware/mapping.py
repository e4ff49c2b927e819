"""Place a network's neurons onto a chip's cores and check that it fits (host side, numpy).

Placement fills cores in order: the groups' neurons, group after group, go into the current core
while it has room for one more neuron (``neurons_per_core``) and for that neuron's incoming
synapses (synapse memory of a core = incoming synapses of its neurons x the chip's bits per
stored weight; per-axon headers ignored: a lower bound); otherwise the next core is opened. So a
core may hold the end of one group and the start of the next (as a Loihi core holds compartments
of several populations), and for a fixed order this greedy fill uses the fewest cores. Chips
without ``neurons_per_core`` (software-defined cores) are limited by synapse memory only.

Limits checked, each raising ``ChipCapacityError`` that names the group, the neuron, its core,
the ``ChipSpec`` limit and the amount over: per-neuron fan-in (``max_fan_in``) and fan-out
(``max_fan_out``), one neuron's synapses against one core's memory
(``synapse_memory_bits_per_core``), and the number of cores (``cores``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from neurorl.errors import ChipCapacityError, ConfigError
from neurorl.hardware.chips import ChipSpec, get_chip
from neurorl.hardware.constraints import require_on_chip_learning


@dataclasses.dataclass(frozen=True)
class CoreUse:
    """One block: neurons ``start .. start + neurons - 1`` of ``group`` on core ``core``."""

    group: str
    start: int  # first neuron index in the group
    neurons: int
    synapse_bits: int  # synapse memory of this block's incoming synapses
    core: int = 0  # core index (a core may hold blocks of several groups)


@dataclasses.dataclass(frozen=True)
class MappingReport:
    """Result of :func:`map_network`: ``cores`` lists the blocks in placement order."""

    chip: str
    cores: tuple[CoreUse, ...]
    max_fan_in: dict[str, int]  # per target group, max incoming synapses of one neuron
    max_fan_out: dict[str, int]  # per source group, max outgoing synapses of one neuron

    @property
    def cores_used(self) -> int:
        """Number of cores the network occupies."""
        return len({c.core for c in self.cores})

    def core_of(self, group: str, neuron: int) -> int:
        """Core index holding neuron ``neuron`` of ``group``."""
        for c in self.cores:
            if c.group == group and c.start <= neuron < c.start + c.neurons:
                return c.core
        raise ConfigError("core_of", (group, neuron), "a placed neuron")


def _place(
    groups: Mapping[str, int], fan_in: Mapping[str, np.ndarray], chip: ChipSpec,
    external: Sequence[str],
) -> tuple[list[CoreUse], tuple[str, int, int] | None]:
    """Greedy in-order fill; returns the blocks and the first neuron too big for any core."""
    placed = [g for g in groups if g not in external and groups[g] > 0]
    if not placed:
        return [], None
    per_core = chip.neurons_per_core or np.iinfo(np.int64).max
    mem = chip.synapse_memory_bits_per_core
    bits = chip.storage_bits
    owner = np.concatenate([np.full(groups[g], i, np.int64) for i, g in enumerate(placed)])
    local = np.concatenate([np.arange(groups[g]) for g in placed])
    nbits = np.concatenate([fan_in[g].astype(np.int64) * bits for g in placed])
    cum = np.concatenate([[0], np.cumsum(nbits)])
    n = len(owner)
    too_big = None
    if mem is not None and nbits.size and nbits.max() > mem:
        j = int(np.argmax(nbits > mem))
        too_big = (placed[owner[j]], int(local[j]), int(nbits[j]))
    blocks: list[CoreUse] = []
    p, core = 0, 0
    while p < n:
        k = min(per_core, n - p)
        if mem is not None:
            # largest k with the block's synapse bits <= mem (at least one neuron per core)
            k = min(k, int(np.searchsorted(cum, cum[p] + mem, side="right")) - 1 - p)
            k = max(k, 1)
        q = p + k
        while p < q:  # split [p, q) into per-group blocks
            g = int(owner[p])
            end = min(q, p + int(groups[placed[g]] - local[p]))
            blocks.append(CoreUse(placed[g], int(local[p]), end - p, int(cum[end] - cum[p]), core))
            p = end
        core += 1
    return blocks, too_big


def check_placement(
    groups: Mapping[str, int],
    fan_in: Mapping[str, np.ndarray],
    fan_out: Mapping[str, np.ndarray],
    chip: ChipSpec | str,
    *,
    external: Sequence[str] = (),
    into: Mapping[str, Sequence[str]] | None = None,
    out_of: Mapping[str, Sequence[str]] | None = None,
) -> MappingReport:
    """Place neurons with per-neuron fan-in / fan-out counts and check every limit of ``chip``.

    Args:
        groups: group name -> number of neurons (placement order = dict order).
        fan_in: group -> int array ``[n]`` of incoming synapses per neuron.
        fan_out: group -> int array ``[n]`` of outgoing synapses per neuron.
        chip: chip preset or name.
        external: groups that are external spike sources (not placed on cores).
        into: optional group -> names of the connections into it (named in fan-in errors).
        out_of: optional group -> names of the connections out of it (named in fan-out errors).

    Returns:
        A ``MappingReport``.

    Raises:
        ChipCapacityError: a limit of the chip is exceeded; the message names the group, neuron,
            core, the ``ChipSpec`` field and its value, and the amount over.
    """
    chip = get_chip(chip)
    blocks, too_big = _place(groups, fan_in, chip, external)
    report = MappingReport(
        chip.name,
        tuple(blocks),
        {g: int(np.max(fan_in[g], initial=0)) for g in groups},
        {g: int(np.max(fan_out[g], initial=0)) for g in groups},
    )

    def where(g: str, j: int) -> str:
        return "an external source" if g in external else f"core {report.core_of(g, j)}"

    for kind, counts, limit, names in (
        ("fan-in", fan_in, chip.max_fan_in, into or {}),
        ("fan-out", fan_out, chip.max_fan_out, out_of or {}),
    ):
        if limit is None:
            continue
        for g in groups:
            c = counts[g]
            if c.size and c.max() > limit:
                j = int(c.argmax())
                v = int(c[j])
                via = f" through {', '.join(map(repr, names[g]))}" if names.get(g) else ""
                field = "max_fan_in" if kind == "fan-in" else "max_fan_out"
                raise ChipCapacityError(
                    f"group {g!r} neuron {j} ({where(g, j)}) has {kind} {v}{via}; {chip.name} "
                    f"allows {field}={limit} (over by {v - limit}). Use fixed_fan_in connectivity "
                    f"(k <= {limit}), a smaller group or probability, or a chip without this cap"
                )
    if too_big is not None:
        g, j, b = too_big
        mem = chip.synapse_memory_bits_per_core
        raise ChipCapacityError(
            f"group {g!r} neuron {j} needs {b} synapse bits ({b // chip.storage_bits} synapses x "
            f"{chip.storage_bits} bits), more than one {chip.name} core holds: "
            f"synapse_memory_bits_per_core={mem} (over by {b - mem})"
        )
    if chip.cores is not None and report.cores_used > chip.cores:
        first = next(c for c in blocks if c.core == chip.cores)
        total = sum(n for g, n in groups.items() if g not in external)
        per = f"neurons_per_core={chip.neurons_per_core}, " if chip.neurons_per_core else ""
        raise ChipCapacityError(
            f"network needs {report.cores_used} cores, {chip.name} has cores={chip.cores} "
            f"(over by {report.cores_used - chip.cores}; {per}{total} neurons placed). The first "
            f"block that does not fit: group {first.group!r} neurons {first.start}.."
            f"{first.start + first.neurons - 1} on core {first.core}"
        )
    return report


def map_network(
    groups: Mapping[str, int],
    connections: Sequence[tuple[Any, ...]],
    chip: ChipSpec | str,
    rules: Sequence[tuple[str, bool]] = (),
    external: Sequence[str] = (),
) -> MappingReport:
    """Map groups and connections onto ``chip``'s cores (host side, before any trace).

    Args:
        groups: group name -> number of neurons.
        connections: ``(source, target, mask)`` or ``(source, target, mask, name)`` with a
            ``[n_source, n_target]`` 0/1 (or weight) matrix; nonzero entries are synapses.
        chip: chip preset or name.
        rules: ``(rule_name, off_chip)`` per plastic connection; a rule the chip cannot run on
            chip raises ``UnsupportedOnChipError`` unless marked off-chip.
        external: groups that are external spike sources (sensor / host input): checked for
            fan-out but not placed on neuron cores.

    Returns:
        A ``MappingReport``.

    Raises:
        ChipCapacityError: fan-in, fan-out, core count or synapse memory exceeded.
        UnsupportedOnChipError: a rule the chip cannot run on chip, not marked off-chip.
    """
    chip = get_chip(chip)
    for rule, off_chip in rules:
        require_on_chip_learning(chip, rule, off_chip)
    fan_in = {g: np.zeros(n, np.int64) for g, n in groups.items()}
    fan_out = {g: np.zeros(n, np.int64) for g, n in groups.items()}
    into: dict[str, list[str]] = {g: [] for g in groups}
    out_of: dict[str, list[str]] = {g: [] for g in groups}
    for conn in connections:
        src, dst, m = conn[:3]
        name = conn[3] if len(conn) > 3 else f"{src}->{dst}"
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
        into[dst].append(name)
        out_of[src].append(name)
    return check_placement(
        groups, fan_in, fan_out, chip, external=external, into=into, out_of=out_of
    )


def compiled_fan(cnet: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict, dict]:
    """Per-neuron fan-in and fan-out of a ``CompiledNetwork`` from its ``structure`` (no init).

    Returns:
        ``(fan_in, fan_out, into, out_of)``: group -> int counts, group -> connection names.
    """
    fan_in = {g: np.zeros(grp.n, np.int64) for g, grp in cnet.groups.items()}
    fan_out = {g: np.zeros(grp.n, np.int64) for g, grp in cnet.groups.items()}
    into: dict[str, list[str]] = {g: [] for g in cnet.groups}
    out_of: dict[str, list[str]] = {g: [] for g in cnet.groups}
    for name, c in cnet.connections.items():
        fi, fo = connection_fan(cnet, name)
        fan_in[c.target.name] += fi
        fan_out[c.source.name] += fo
        into[c.target.name].append(name)
        out_of[c.source.name].append(name)
    return fan_in, fan_out, into, out_of


def connection_fan(cnet: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(fan_in [n_post], fan_out [n_pre])`` synapse counts of one compiled connection."""
    c, s = cnet.connections[name], cnet.structure[name]
    if "mask" in s:  # dense [n_pre, n_post]
        m = np.asarray(s["mask"]) != 0
        return m.sum(0).astype(np.int64), m.sum(1).astype(np.int64)
    valid = np.asarray(s["valid"]) != 0  # sparse [n_post, k_max]
    idx = np.asarray(s["idx"])
    return (valid.sum(1).astype(np.int64),
            np.bincount(idx[valid], minlength=c.source.n).astype(np.int64))


def map_compiled(cnet: Any, chip: ChipSpec | str, off_chip: bool = False) -> MappingReport:
    """Map a ``CompiledNetwork`` (``neurorl.core.network``) from its structure (host side).

    Args:
        cnet: the compiled network.
        chip: chip preset or name.
        off_chip: the rules learn off-chip (skip the on-chip learning check).

    Returns:
        A ``MappingReport``.

    Raises:
        ChipCapacityError: a limit of the chip is exceeded.
        UnsupportedOnChipError: a rule the chip cannot run, unless ``off_chip``.
    """
    chip = get_chip(chip)
    for r in cnet.rules.values():
        require_on_chip_learning(chip, r.rule_name, off_chip)
    fan_in, fan_out, into, out_of = compiled_fan(cnet)
    groups = {name: g.n for name, g in cnet.groups.items()}
    return check_placement(groups, fan_in, fan_out, chip, into=into, out_of=out_of)
