"""Spiking agents behind one protocol (:class:`~neurorl.agents.base.Agent`).

``AGENTS`` maps names to factories ``factory(spec, **hyper) -> Agent``;
``make_agent(name, spec, **hyper)`` looks names up with a closest-name ConfigError.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from neurorl.agents.base import (
    Agent,
    AgentSpec,
    AgentStats,
    reset_where,
    spec_from_env,
)
from neurorl.agents.bptt_ac import make_bptt_ac
from neurorl.agents.description import network_from_config
from neurorl.agents.eprop_ac import make_eprop_ac
from neurorl.agents.network_agent import AgentNetwork, NetworkRuntime
from neurorl.agents.reference import make_reference_agent
from neurorl.agents.rstdp_agent import make_rstdp_agent
from neurorl.agents.td_ac import make_td_ac
from neurorl.errors import ConfigError, lookup

AGENTS: dict[str, Callable[..., Agent]] = {
    "eprop_ac": make_eprop_ac,
    "bptt_ac": make_bptt_ac,
    "rstdp": make_rstdp_agent,
    "td_ac": make_td_ac,
    "reference": make_reference_agent,
}


def resolve_network(network: Any, spec: AgentSpec) -> AgentNetwork:
    """A user's network as an :class:`AgentNetwork`: given as one, as a function
    ``spec -> AgentNetwork`` (Python recipes), or as the YAML/dict description of
    :mod:`neurorl.agents.description`."""
    if isinstance(network, AgentNetwork):
        return network
    if isinstance(network, Mapping):
        return network_from_config(network, spec)
    if callable(network):
        out = network(spec)
        if not isinstance(out, AgentNetwork):
            raise ConfigError("agent.network", type(out).__name__,
                              "a function returning an AgentNetwork(network, encoder, ...)")
        return out
    raise ConfigError("agent.network", type(network).__name__,
                      "an AgentNetwork, a function spec -> AgentNetwork, or a mapping")


def make_agent(name: str, spec: AgentSpec, network: Any = None, **hyper: Any) -> Agent:
    """Build an agent: the learning recipe ``name`` on its built-in network or on ``network``.

    Args:
        name: the learning recipe, a key of ``AGENTS`` (``"eprop_ac"``, ``"rstdp"``,
            ``"bptt_ac"``, ...).
        spec: what the agent sees and does.
        network: None (the recipe's own network), an :class:`AgentNetwork`, a function
            ``spec -> AgentNetwork`` or a YAML-style mapping (``agent.network``).
        hyper: the recipe's hyperparameters, and ``backend`` / ``compile_kwargs``.

    Raises:
        ConfigError: unknown name, hyperparameter or an invalid network (host side).
    """
    factory = lookup(AGENTS, name, "agent", field="agent")
    if network is not None:
        hyper["network"] = resolve_network(network, spec)
    return factory(spec, **hyper)


__all__ = [
    "AGENTS",
    "Agent",
    "AgentNetwork",
    "NetworkRuntime",
    "network_from_config",
    "resolve_network",
    "AgentSpec",
    "AgentStats",
    "make_agent",
    "make_bptt_ac",
    "make_eprop_ac",
    "make_reference_agent",
    "make_rstdp_agent",
    "make_td_ac",
    "reset_where",
    "spec_from_env",
]
