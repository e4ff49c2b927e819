"""Sharding the member (seed) axis of a vmapped run over several devices with ``jax.sharding``.

A run vmaps ``S`` members (seeds of one compiled sweep group). With more than one device
(``jax.devices()``), :func:`member_layout` puts the member axis on a 1-D ``Mesh`` named
``"members"``: ``NamedSharding(mesh, P("members"))`` for the runner state (members first) and
``P(None, "members")`` for the per-step metrics (time first). Members are independent, so XLA's
partitioner runs each device's members without communication.

``S`` need not divide the device count: the layout uses ``D`` devices with ``ceil(S / D)``
members each and pads the member axis with copies of the last member inside the jitted chunk
(dropped again before anything leaves it). ``D`` is the fewest devices that keep the per-device
count as low as all devices would, e.g. 5 members on 4 devices use 3 devices x 2 (one padded
copy), not 4 x 2 (three). The runner state outside the chunk keeps exactly ``S`` members: it is
sharded when ``D`` divides ``S`` and replicated over the mesh otherwise, so checkpoints do not
depend on the device count.

One device (or one member): no mesh, and the training code takes its unsharded path unchanged.

References:
    JAX distributed arrays and automatic parallelization:
    https://docs.jax.dev/en/latest/notebooks/Distributed_arrays_and_automatic_parallelization.html
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from neurorl.errors import ConfigError

MEMBER_AXIS = "members"


@dataclasses.dataclass(frozen=True)
class MemberLayout:
    """Where the ``n_members`` vmapped members of a run live.

    Attributes:
        n_members: members of the run (``S``).
        n_devices: devices used (``D``); 1 means unsharded.
        padded: members inside the jitted chunk, ``D x ceil(S / D)`` (``>= S``).
        mesh: the 1-D ``Mesh`` over the used devices, axis ``"members"`` (None when unsharded).
    """

    n_members: int
    n_devices: int
    padded: int
    mesh: Mesh | None

    @property
    def sharded(self) -> bool:
        return self.mesh is not None

    @property
    def pad(self) -> int:
        return self.padded - self.n_members

    def spec(self, member_dim: int, divisible: bool = True) -> NamedSharding:
        """Sharding of an array whose member axis is ``member_dim`` (replicated if not
        ``divisible``)."""
        if self.mesh is None:
            raise ConfigError("layout", "unsharded", "a layout with a mesh (several devices)")
        if not divisible:
            return NamedSharding(self.mesh, P())
        return NamedSharding(self.mesh, P(*([None] * member_dim), MEMBER_AXIS))

    @property
    def state_sharding(self) -> NamedSharding:
        """The runner state's sharding outside the chunk (exactly ``S`` members)."""
        return self.spec(0, divisible=self.pad == 0)

    @property
    def metrics_sharding(self) -> NamedSharding:
        """The chunk's metrics' sharding (``[T, S, ...]``)."""
        return self.spec(1, divisible=self.pad == 0)


def member_layout(n_members: int, devices: Sequence[Any] | None = None) -> MemberLayout:
    """Choose the devices and padding for ``n_members`` vmapped members.

    Args:
        n_members: members (seeds) vmapped in one run, >= 1.
        devices: devices to use (default ``jax.devices()``); one device means no sharding.

    Returns:
        The :class:`MemberLayout`.
    """
    if not isinstance(n_members, int) or n_members < 1:
        raise ConfigError("n_members", n_members, "an integer >= 1")
    devs = list(jax.devices() if devices is None else devices)
    if not devs:
        raise ConfigError("devices", devs, "at least one jax device")
    per = math.ceil(n_members / min(len(devs), n_members))
    d = math.ceil(n_members / per)
    if d == 1:
        return MemberLayout(n_members, 1, n_members, None)
    mesh = Mesh(np.array(devs[:d]), (MEMBER_AXIS,))
    return MemberLayout(n_members, d, d * per, mesh)


def pad_members(tree: Any, layout: MemberLayout, member_dim: int = 0) -> Any:
    """Pad the member axis to ``layout.padded`` with copies of the last member (traceable)."""
    if layout.pad == 0:
        return tree
    idx = np.minimum(np.arange(layout.padded), layout.n_members - 1)
    return jax.tree.map(lambda x: x[(slice(None),) * member_dim + (idx,)], tree)


def unpad_members(tree: Any, layout: MemberLayout, member_dim: int = 0) -> Any:
    """Drop the padded members again (traceable)."""
    if layout.pad == 0:
        return tree
    sl = (slice(None),) * member_dim + (slice(0, layout.n_members),)
    return jax.tree.map(lambda x: x[sl], tree)


__all__ = ["MEMBER_AXIS", "MemberLayout", "member_layout", "pad_members", "unpad_members"]
