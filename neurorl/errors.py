"""Errors for people.

Every user mistake raises a subclass of :class:`NeurorlError` that names what is wrong (the field
path or argument), the bad value, what is allowed, and -- for misspelt names -- the closest valid
name. These are raised *before* anything is traced by JAX so that a user never sees a deep XLA
traceback for a typo.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any


class NeurorlError(Exception):
    """Base class of all neurorl errors meant for users."""


class ConfigError(NeurorlError, ValueError):
    """A configuration value, name or parameter is invalid.

    Args:
        field: dotted path of the offending field (e.g. ``"agent.rule.lr"``).
        value: the value that was given.
        allowed: a human description of what is allowed (e.g. ``"a float > 0"``).
        suggestion: optional closest valid name, shown as "did you mean ...?".
    """

    def __init__(self, field: str, value: Any, allowed: str, suggestion: str | None = None) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        self.suggestion = suggestion
        msg = f"{field}: got {value!r}; allowed: {allowed}"
        if suggestion is not None:
            msg += f". Did you mean {suggestion!r}?"
        super().__init__(msg)


class ShapeError(NeurorlError, ValueError):
    """An array has the wrong shape; names what was expected and what was received."""

    def __init__(self, what: str, expected: Any, got: Any) -> None:
        self.what = what
        self.expected = expected
        self.got = got
        super().__init__(f"{what}: expected shape {expected}, got {got}")


class ChipCapacityError(NeurorlError):
    """A network does not fit on a chip; the message names the group/core and by how much."""


class UnsupportedOnChipError(NeurorlError):
    """A feature (e.g. on-chip plasticity) is not supported by the selected chip."""


def closest(name: str, choices: Iterable[str]) -> str | None:
    """Closest valid name to ``name`` among ``choices`` (case-insensitive), or ``None``."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if name.lower() in lowered:
        return lowered[name.lower()]
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.4)
    return lowered[hits[0]] if hits else None


def lookup(registry: Mapping[str, Any], name: str, kind: str, field: str | None = None) -> Any:
    """Fetch ``name`` from a registry dict, case-insensitively, with a clear error otherwise.

    Args:
        registry: a plain ``dict`` mapping names to entries.
        name: the requested name.
        kind: what the registry holds, for the message (e.g. ``"neuron model"``).
        field: optional field path to name in the error (defaults to ``kind``).

    Returns:
        The registry entry.

    Raises:
        ConfigError: when the name is not registered; lists the available names and the
            closest one.
    """
    if not isinstance(name, str):
        raise ConfigError(field or kind, name, f"a {kind} name, one of {sorted(registry)}")
    if name in registry:
        return registry[name]
    lowered = {k.lower(): k for k in registry}
    if name.lower() in lowered:
        return registry[lowered[name.lower()]]
    raise ConfigError(
        field or kind,
        name,
        f"one of the registered {kind} names {sorted(registry)}",
        closest(name, registry),
    )
