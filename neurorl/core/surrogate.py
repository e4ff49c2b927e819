"""Spike functions with surrogate derivatives.

The forward pass of every spike function is the Heaviside step ``H(x) = 1[x > 0]``; the backward
pass replaces the Dirac delta by a smooth *surrogate* derivative so that BPTT works, and the same
derivative, divided by the threshold, is the e-prop *pseudo-derivative* psi (Bellec et al. 2020).

``x`` is always the **normalised** distance to threshold, ``x = (v - A) / v_th``.

References:
    Bellec et al. 2020, "A solution to the learning dilemma for recurrent networks of spiking
    neurons", Nat. Commun. 11:3625 -- triangle pseudo-derivative psi = gamma/v_th max(0, 1-|x|),
    gamma = 0.3 ("dampening factor").
    Zenke & Ganguli 2018, "SuperSpike", Neural Comput. 30(6) -- fast sigmoid 1/(1+beta|x|)^2.
    Fang et al. 2021 / SpikingJelly -- arctan surrogate alpha/2 / (1 + (pi/2 alpha x)^2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from neurorl.errors import ConfigError, lookup

Array = jax.Array


class Surrogate(NamedTuple):
    """A spike function and its surrogate derivative.

    Attributes:
        name: registry name.
        spike: ``x -> H(x)`` (float32) whose JVP uses ``derivative``.
        derivative: ``x -> dz/dx`` of the surrogate.
    """

    name: str
    spike: Callable[[Array], Array]
    derivative: Callable[[Array], Array]


def _make(name: str, derivative: Callable[[Array], Array]) -> Surrogate:
    @jax.custom_jvp
    def spike(x: Array) -> Array:
        return (x > 0).astype(jnp.result_type(x, jnp.float32))

    @spike.defjvp
    def _spike_jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        return spike(x), derivative(x) * dx

    return Surrogate(name, spike, derivative)


def _positive(name: str, value: float) -> None:
    if not float(value) > 0:
        raise ConfigError(f"surrogate.{name}", value, "a number > 0")


def fast_sigmoid(slope: float = 25.0) -> Surrogate:
    """SuperSpike fast sigmoid: dz/dx = 1 / (1 + slope |x|)^2 (Zenke & Ganguli 2018)."""
    _positive("slope", slope)
    return _make("fast_sigmoid", lambda x: 1.0 / (1.0 + slope * jnp.abs(x)) ** 2)


def arctan(alpha: float = 2.0) -> Surrogate:
    """Arctan surrogate: dz/dx = (alpha/2) / (1 + (pi/2 alpha x)^2) (Fang et al. 2021)."""
    _positive("alpha", alpha)
    return _make("arctan", lambda x: (alpha / 2.0) / (1.0 + (jnp.pi / 2.0 * alpha * x) ** 2))


def triangle(gamma: float = 0.3) -> Surrogate:
    """e-prop triangle: dz/dx = gamma max(0, 1 - |x|) (Bellec et al. 2020, Methods)."""
    _positive("gamma", gamma)
    return _make("triangle", lambda x: gamma * jnp.maximum(0.0, 1.0 - jnp.abs(x)))


SURROGATES: dict[str, Callable[..., Surrogate]] = {
    "fast_sigmoid": fast_sigmoid,
    "arctan": arctan,
    "triangle": triangle,
}


def get_surrogate(name: str, **hyper: float) -> Surrogate:
    """Build a registered surrogate by name (``ConfigError`` with the closest name otherwise)."""
    factory = lookup(SURROGATES, name, "surrogate", field="surrogate")
    return factory(**hyper)
