"""Agents are N-HAL networks: an encoder, a ``Network`` with learning rules, a decoder.

A recipe (built-in or a user's) describes an agent as an :class:`AgentNetwork`::

    AgentNetwork(network=net,            # neurorl.core.network.Network (uncompiled)
                 encoder=gaussian_rf(...),  # obs[obs_dim] -> [K, n_in] for the input group
                 input="obs",            # the group the encoder drives
                 output="readout",       # the group the decoder reads
                 noise={"actions": 1.0}) # Gaussian current noise per substep (exploration)

and :class:`NetworkRuntime` compiles it once for a backend (``"jax"`` or a chip) and runs it for
the ``B`` environments an agent serves: one set of weights shared by all environments, one
dynamic state and one set of eligibility traces per environment (vmapped). Every env step is one
call of ``CompiledNetwork.simulate`` over the K substeps -- the staged simulator with block
eligibility updates -- so the speed of the library's simulator is the speed of every agent.

The learning recipes that turn reward into each rule's third factor live beside this module:
``eprop_ac`` (learning signals from a policy/value readout, TD-gated tags), ``rstdp`` (TD error
of a critic, decision feedback), ``bptt_ac`` (PPO through ``jax.grad`` of the same network).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from neurorl.core.network import CompiledNetwork, Network
from neurorl.encoding import Encoder
from neurorl.errors import ConfigError, ShapeError

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class AgentNetwork:
    """An agent's network with its encoder and the names its decoder uses.

    Attributes:
        network: the N-HAL ``Network`` (groups, connections, learning rules).
        encoder: ``Encoder`` from :mod:`neurorl.encoding`; its ``n_in`` must equal the input
            group's size.
        input: name of the group the encoder drives (an ``"Input"`` relay, or neurons receiving
            the encoder's currents).
        output: name of the group the decoder reads (a spiking population for a vote, an
            ``"LI"`` readout for a policy/value head).
        noise: group name -> standard deviation of a Gaussian current added every substep
            (exploration noise of stochastic neurons, Florian 2007).
        spiking_input: the encoder emits spikes (counted as events for energy and SynOps);
            False for currents.
    """

    network: Network
    encoder: Encoder
    input: str = "obs"
    output: str = "readout"
    noise: Mapping[str, float] = dataclasses.field(default_factory=dict)
    spiking_input: bool = False


class NetworkRuntime:
    """A compiled agent network serving ``n_envs`` environments with shared weights.

    Args:
        agent_net: the :class:`AgentNetwork`.
        n_envs: environments per agent state (B).
        substeps: K network steps per env step.
        backend: ``"jax"`` or a chip name (limits enforced when compiling).
        compile_kwargs: extra keyword arguments of ``Network.compile``.

    Raises:
        ConfigError / ShapeError: unknown input/output/noise groups, an encoder whose size does
            not match the input group.
    """

    def __init__(self, agent_net: AgentNetwork, n_envs: int, substeps: int,
                 backend: str = "jax", **compile_kwargs: Any) -> None:
        self.spec = agent_net
        self.net: CompiledNetwork = agent_net.network.compile(backend=backend, **compile_kwargs)
        groups = list(self.net.groups)
        from neurorl.errors import closest

        for field, g in (("input", agent_net.input), ("output", agent_net.output),
                         *(("noise", k) for k in agent_net.noise)):
            if g not in self.net.groups:
                raise ConfigError(f"agent.{field}", g, f"a group of the network {groups}",
                                  closest(str(g), groups))
        n_in = self.net.groups[agent_net.input].n
        if agent_net.encoder.n_in != n_in:
            raise ShapeError(f"agent.encoder (into group {agent_net.input!r})", (n_in,),
                             (agent_net.encoder.n_in,))
        self.B, self.K = int(n_envs), int(substeps)
        self.inputs = [agent_net.input, *[g for g in agent_net.noise if g != agent_net.input]]
        self.n_out = self.net.groups[agent_net.output].n
        deg = self.net.out_degrees()
        # SynOps: each event of a source reaches that neuron's outgoing synapses
        self._fan_out: dict[str, np.ndarray] = {}
        for n, c in self.net.connections.items():
            src = c.source.name
            self._fan_out[src] = self._fan_out.get(src, 0) + deg[n].astype(np.float32)
        self._counted = [g for g, grp in self.net.groups.items()
                         if grp.model.name != "LI"
                         and (grp.model.name != "Input" or agent_net.spiking_input)]
        # recipes call net.constrain(w, project=self.project_updates) after their updates;
        # make_train sets it False when it does the chip's rounding itself (stochastic on chip,
        # float shadow weights off chip)
        self.project_updates = True
        s0 = self.net.init(jax.random.key(0))  # concrete: fresh per-env state for resets
        self._fresh = (self.net.dynamic(s0), self.net.traces(s0))

    # ------------------------------------------------------------------ state
    def init(self, key: Array) -> tuple[dict, dict, dict]:
        """``(weights, dyn[B], traces[B])``: shared weights, per-env dynamic state and traces."""
        s = self.net.init(key)
        batch = lambda t: jax.tree.map(lambda x: jnp.broadcast_to(x, (self.B,) + x.shape), t)
        return s["weights"], batch(self.net.dynamic(s)), batch(self.net.traces(s))

    def fresh(self) -> tuple[dict, dict]:
        """One env's initial ``(dyn, traces)`` (for resets at episode boundaries)."""
        return self._fresh

    # ------------------------------------------------------------------ one env step
    def drive(self, obs: Array, key: Array | None) -> dict[str, Array]:
        """External inputs of one env for the K substeps: encoder output and noise currents."""
        k_enc, k_noise = (None, None) if key is None else jax.random.split(key)
        ext = {self.spec.input: self.spec.encoder.encode(obs, k_enc)}
        for i, (g, std) in enumerate(self.spec.noise.items()):
            n = self.net.groups[g].n
            noise = std * jax.random.normal(jax.random.fold_in(k_noise, i), (self.K, n))
            ext[g] = ext.get(g, 0.0) + noise
        return ext

    def step_one(self, weights: Any, dyn: Any, traces: Any, obs: Array, key: Array | None):
        """K substeps of one env: ``(dyn, traces, records, counts)`` (see ``simulate``)."""
        ext = self.drive(obs, key)
        return self.net._simulate(self.net.params, self.net.structure, weights, dyn, traces,
                                  ext, self.K)

    def step(self, weights: Any, dyn: Any, traces: Any, obs: Array, key: Array):
        """All B envs (vmapped): ``(dyn, traces, records, counts, spikes[B], synops[B])``."""
        keys = jax.random.split(key, self.B)
        dyn, traces, rec, counts = jax.vmap(self.step_one, in_axes=(None, 0, 0, 0, 0))(
            weights, dyn, traces, obs, keys)
        spikes, synops = self.activity(counts)
        zero = jnp.zeros((self.B,), jnp.float32)
        return (dyn, traces, rec, counts, zero + spikes, zero + synops)

    def activity(self, counts: dict[str, Array]) -> tuple[Array, Array]:
        """``(spikes, synops)`` of one env step from ``simulate``'s counts (``[n]`` per group, or
        ``[B, n]``): events of the spiking groups (and of a spiking encoder), and those events
        times each neuron's outgoing synapses."""
        spikes = sum(jnp.sum(counts[g], axis=-1) for g in self._counted)
        synops = sum(counts[g] @ jnp.asarray(self._fan_out[g]) for g in self._counted
                     if g in self._fan_out)
        return spikes, synops

    def output_value(self, dyn: Any) -> Array:
        """The output group's membrane ``v`` after the step, ``[B, n_out]`` (LI readouts)."""
        return dyn["neurons"][self.spec.output].v


def reset_envs(done: Array, tree: Any, fresh: Any) -> Any:
    """``where(done[b], fresh, tree[b])`` for every leaf with a leading env axis."""

    def pick(old: Array, new: Array) -> Array:
        d = done.reshape(done.shape + (1,) * (old.ndim - 1))
        return jnp.where(d, new[None], old)

    return jax.tree.map(pick, tree, fresh)


__all__ = ["AgentNetwork", "NetworkRuntime", "reset_envs"]
