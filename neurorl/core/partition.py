"""One network over several devices: neurons (and their incoming synapses) sharded on a mesh.

:func:`shard_network` lays a compiled network's state and structure out on a 1-D device mesh
with axis ``"neurons"`` (``jax.sharding``; XLA's SPMD partitioner then runs each device's part):

- every neuron group's per-neuron state ``[n]`` and every connection's synaptic current
  ``[n_post]`` are split into contiguous blocks of neurons, one per device;
- a connection's synapses live with their *target*: the padded fan-in ``[n_post, k_max]``
  (index, weight, delay) is split by rows, a dense ``[n_pre, n_post]`` matrix by columns, so a
  device computes the input current of its own neurons from local synapses only;
- the spike ring buffers ``[H, n]`` are replicated: the one exchange per step is the
  all-gather of each group's new spikes into them (``with_sharding_constraint`` inside the
  step). Every connection has a delay of >= 1 step (or is a feed-forward delay-0 edge whose
  source is stepped first), so a device never needs a spike of this step from another device
  before it has been exchanged -- the conservative synchronisation of Morrison et al. (2005).

Each device adds the same products in the same order as the single-device run, so the spikes are
identical (tests/core/test_partition.py checks 2 and 4 forced host devices against one). A group
whose size the device count does not divide stays replicated (computed on every device). The
event-driven path's fan-out tables are replicated; under sharding its scatter onto the sharded
targets is partitioned by XLA (correct, but its work is not split), so large sharded networks
should use ``propagation="gather"``.

Several hosts: start every process with ``jax.distributed.initialize(coordinator_address,
num_processes, process_id)`` (on SLURM/TPU pods the arguments are detected), then pass
``jax.devices()`` -- all devices of all processes -- to :func:`shard_network`; the same jitted
program runs on every process (multi-controller SPMD) and the spike all-gather crosses hosts.
On one machine, forced host devices (``XLA_FLAGS=--xla_force_host_platform_device_count=4``)
exercise the same code path; that is how it is tested here.

References:
    Morrison, A. et al. (2005). Advancing the boundaries of high-connectivity network simulation
    with distributed computing. Neural Comput. 17:1776-1801.
    JAX multi-process: https://docs.jax.dev/en/latest/multi_process.html
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from neurorl.errors import ConfigError

AXIS = "neurons"


class ShardedNetwork:
    """A CompiledNetwork's ``init`` / ``run`` / ``simulate`` with neurons sharded over devices.

    Build it with :func:`shard_network`. ``run`` and ``simulate`` take and return the same
    pytrees as the CompiledNetwork's (sharded ``jax.Array``s; ``np.asarray`` gathers them).
    """

    def __init__(self, cn: Any, mesh: Mesh) -> None:
        self.cn, self.mesh = cn, mesh
        self.n_devices = mesh.devices.size
        self._rep = NamedSharding(mesh, P())
        self.structure = jax.device_put(cn.structure, self._structure_shardings())
        self._init_jit = jax.jit(cn._init, out_shardings=self._state_shardings())
        self._run_jit = jax.jit(self._run, static_argnames="steps")
        self._sim_jit = jax.jit(self._simulate, static_argnames="steps")

    # ---- layouts
    def _split(self, n: int) -> bool:
        return n % self.n_devices == 0

    def _spec(self, shape: tuple[int, ...], axis: int) -> NamedSharding:
        if len(shape) > axis and self._split(shape[axis]):
            spec = [None] * len(shape)
            spec[axis] = AXIS
            return NamedSharding(self.mesh, P(*spec))
        return self._rep

    def _conn_axis(self, name: str) -> int:
        """Axis of a connection's [..] arrays that indexes its targets."""
        return 1 if self.cn._conf[name]["storage"] == "dense" else 0

    def _structure_shardings(self) -> dict:
        out = {}
        for n, s in self.cn.structure.items():
            out[n] = {k: (self._rep if k.startswith("ev_")
                          else self._spec(np.shape(v), self._conn_axis(n)))
                      for k, v in s.items()}
        return out

    def _state_shardings(self) -> dict:
        shapes = jax.eval_shape(self.cn._init, self.cn.params, self.cn.structure,
                                jax.random.key(0))
        cn = self.cn

        def neurons(g, st):
            n = cn.groups[g].n
            return jax.tree.map(lambda x: self._spec(x.shape, 0) if x.shape[:1] == (n,)
                                else self._rep, st)

        return {
            "neurons": {g: neurons(g, st) for g, st in shapes["neurons"].items()},
            "history": {g: self._rep for g in shapes["history"]},
            "syn": {c: self._spec(x.shape, 0) for c, x in shapes["syn"].items()},
            "weights": {c: self._spec(x.shape, self._conn_axis(c))
                        for c, x in shapes["weights"].items()},
            "rules": jax.tree.map(lambda _: self._rep, shapes["rules"]),
            "t": self._rep,
        }

    def _constrain(self, tree: Any, kind: str) -> Any:
        """Inside the step: spikes replicated (the exchange), neuron states sharded."""
        if kind == "spikes":
            return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, self._rep), tree)
        return tree

    # ---- public
    def init(self, key: Any) -> dict:
        """Initial state, laid out on the mesh."""
        return self._init_jit(self.cn.params, self.structure, key)

    def _run(self, params, structure, state, ext, mods, steps):
        self.cn._constrain_hook = self._constrain
        try:
            return self.cn._run(params, structure, state, ext, mods, steps=steps)
        finally:
            self.cn._constrain_hook = None

    def _simulate(self, params, structure, weights, dyn, traces, ext, steps):
        self.cn._constrain_hook = self._constrain
        try:
            return self.cn._simulate(params, structure, weights, dyn, traces, ext, steps=steps)
        finally:
            self.cn._constrain_hook = None

    def run(self, state: Any, inputs: Any = None, *, steps: int | None = None,
            modulators: Any = None) -> tuple[Any, dict]:
        """``CompiledNetwork.run`` on the mesh (same arguments and results)."""
        ext, T = self.cn._check_inputs(inputs, time_major=True, steps=steps)
        mods = self.cn._check_mods(modulators, T)
        return self._run_jit(self.cn.params, self.structure, state, ext, mods, steps=T)

    def simulate(self, weights: Any, dyn: Any, traces: Any, inputs: Any = None, *,
                 steps: int | None = None) -> tuple[Any, Any, dict, dict]:
        """``CompiledNetwork.simulate`` on the mesh (same arguments and results)."""
        ext, T = self.cn._check_inputs(inputs, time_major=True, steps=steps)
        return self._sim_jit(self.cn.params, self.structure, weights, dyn, traces, ext, steps=T)


def shard_network(cn: Any, devices: Sequence[Any] | None = None) -> ShardedNetwork:
    """Shard a compiled network's neurons and their incoming synapses over ``devices``.

    Args:
        cn: a ``CompiledNetwork`` (``Network.compile()``).
        devices: the devices of the 1-D mesh (default ``jax.devices()``: with
            ``jax.distributed`` initialised, those of every host).

    Returns:
        A :class:`ShardedNetwork` with ``init(key)``, ``run`` and ``simulate``.

    Raises:
        ConfigError: no devices, or a network with learning rules (their weight updates are not
            partitioned yet).
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ConfigError("shard_network.devices", devices, "at least one device")
    if cn.rules:
        raise ConfigError("shard_network.cn", f"rules {list(cn.rules)}",
                          "a network without learning rules (sharded plasticity is not "
                          "supported yet)")
    return ShardedNetwork(cn, Mesh(np.asarray(devices), (AXIS,)))
