"""Spiking agents behind one protocol (:class:`~neurorl.agents.base.Agent`).

``AGENTS`` maps names to factories ``factory(spec, **hyper) -> Agent``;
``make_agent(name, spec, **hyper)`` looks names up with a closest-name ConfigError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from neurorl.agents.base import (
    Agent,
    AgentSpec,
    AgentStats,
    reset_where,
    spec_from_env,
)
from neurorl.agents.bptt_ac import make_bptt_ac
from neurorl.agents.eprop_ac import make_eprop_ac
from neurorl.agents.reference import make_reference_agent
from neurorl.agents.rstdp_agent import make_rstdp_agent
from neurorl.errors import lookup

AGENTS: dict[str, Callable[..., Agent]] = {
    "eprop_ac": make_eprop_ac,
    "bptt_ac": make_bptt_ac,
    "rstdp": make_rstdp_agent,
    "reference": make_reference_agent,
}


def make_agent(name: str, spec: AgentSpec, **hyper: Any) -> Agent:
    """Build a registered agent (unknown name or hyperparameter -> ConfigError, host side)."""
    return lookup(AGENTS, name, "agent", field="agent")(spec, **hyper)


__all__ = [
    "AGENTS",
    "Agent",
    "AgentSpec",
    "AgentStats",
    "make_agent",
    "make_bptt_ac",
    "make_eprop_ac",
    "make_reference_agent",
    "make_rstdp_agent",
    "reset_where",
    "spec_from_env",
]
