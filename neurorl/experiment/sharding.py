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

On a CPU, JAX sees one device however many cores there are, and XLA's intra-op threads use a
second core for only ~1.3x. :func:`enable_host_devices` (called when
:mod:`neurorl.experiment.train` is imported, before JAX starts its backend) asks XLA for one
host device per usable core (``--xla_force_host_platform_device_count``), so the members of a
run are split over the cores like over GPUs. It does nothing when the backend is already running,
when ``XLA_FLAGS`` already sets a device count, or with ``NEURORL_HOST_DEVICES=0``
(``NEURORL_HOST_DEVICES=n`` asks for ``n``).

Cache blocking (:func:`member_block`): every env step reads and writes each member's state
(weights, eligibilities, network state); vmapped over many members, a step streams the whole
population through DRAM. When the members of one device outgrow ``CACHE_BYTES``, the training
loop runs them ``jax.lax.map(..., batch_size=block)``: blocks of ``block`` members (a power of
two, at least ``MIN_BLOCK``) whose state fits the cache, each block scanning all its env steps
while its state stays resident. Members are independent, so blocking changes no member's result.

References:
    JAX distributed arrays and automatic parallelization:
    https://docs.jax.dev/en/latest/notebooks/Distributed_arrays_and_automatic_parallelization.html
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from neurorl.errors import ConfigError

MEMBER_AXIS = "members"
CACHE_BYTES = 4 * 2**20  # per-device cache budget for a block of members' state (L2 + L3 share)
MIN_BLOCK = 16  # fewer members per block vectorise poorly: below this, no blocking
_DEVICE_FLAG = "xla_force_host_platform_device_count"


def usable_cores() -> int:
    """Cores this process may run on (affinity), at least 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def enable_host_devices(n: int | None = None) -> int | None:
    """Ask XLA for ``n`` CPU host devices (default: one per usable core) if JAX has not started.

    Args:
        n: devices; default ``NEURORL_HOST_DEVICES`` or :func:`usable_cores`.

    Returns:
        The device count requested, or None when nothing was changed (backend already
        initialised, a count already in ``XLA_FLAGS``, ``NEURORL_HOST_DEVICES=0``, one core).
    """
    env = os.environ.get("NEURORL_HOST_DEVICES", "").strip()
    if env in ("0", "off", "false"):
        return None
    flags = os.environ.get("XLA_FLAGS", "")
    if _DEVICE_FLAG in flags:
        return None
    try:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            return None
    except (ImportError, AttributeError):  # a jax without this helper: leave it alone
        return None
    if n is None:
        n = int(env) if re.fullmatch(r"\d+", env) else usable_cores()
    if n <= 1:
        return None
    os.environ["XLA_FLAGS"] = f"{flags} --{_DEVICE_FLAG}={int(n)}".strip()
    return int(n)


def member_block(per_device: int, bytes_per_member: int, cache_bytes: int = CACHE_BYTES
                 ) -> int | None:
    """Members per cache-resident block, or None when one vmap over them all is better.

    The block is the largest power of two whose state fits ``cache_bytes``; blocking applies
    when the device's members do not fit and a block still holds ``MIN_BLOCK`` members or more.
    """
    if per_device * bytes_per_member <= cache_bytes:
        return None
    block = 2 ** int(math.floor(math.log2(max(cache_bytes // max(bytes_per_member, 1), 1))))
    if block < MIN_BLOCK or block >= per_device:
        return None
    return block


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


__all__ = ["CACHE_BYTES", "MEMBER_AXIS", "MIN_BLOCK", "MemberLayout", "enable_host_devices",
           "member_block", "member_layout", "pad_members", "unpad_members", "usable_cores"]
