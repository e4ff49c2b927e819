"""Observation and action spaces for the JAX environments (gymnax-style).

Spaces are plain Python objects (not pytrees): they describe shapes, dtypes and bounds, sample
with an explicit ``key`` inside jit, and convert to the matching ``gymnasium.spaces`` object for
the Gymnasium wrapper.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


class Discrete:
    """Integers ``{0, ..., n - 1}`` (scalar, int32).

    Args:
        n: number of actions.
    """

    def __init__(self, n: int) -> None:
        self.n = int(n)
        self.shape: tuple[int, ...] = ()
        self.dtype = jnp.int32

    def sample(self, key: jax.Array) -> jax.Array:
        """A uniformly random element (traceable)."""
        return jax.random.randint(key, (), 0, self.n, dtype=jnp.int32)

    def contains(self, x: Any) -> jax.Array:
        """Whether ``x`` is an integer in range (traceable)."""
        x = jnp.asarray(x)
        return jnp.logical_and(x >= 0, x < self.n) & (x.shape == ())

    def to_gymnasium(self) -> Any:
        """The equivalent ``gymnasium.spaces.Discrete``."""
        import gymnasium

        return gymnasium.spaces.Discrete(self.n)

    def __repr__(self) -> str:
        return f"Discrete({self.n})"


class Box:
    """A box ``[low, high]`` of a fixed shape and dtype (float32 by default).

    Args:
        low: lower bound, scalar or array broadcastable to ``shape``.
        high: upper bound, scalar or array broadcastable to ``shape``.
        shape: shape of an element.
        dtype: element dtype.
    """

    def __init__(
        self, low: Any, high: Any, shape: tuple[int, ...], dtype: Any = jnp.float32
    ) -> None:
        self.shape = tuple(shape)
        self.dtype = dtype
        # jnp (not np) so bounds may be traced params, e.g. a shifted max_torque inside a scan
        self.low = jnp.broadcast_to(jnp.asarray(low, dtype=jnp.float32), self.shape)
        self.high = jnp.broadcast_to(jnp.asarray(high, dtype=jnp.float32), self.shape)

    def sample(self, key: jax.Array) -> jax.Array:
        """A uniformly random element; unbounded dimensions are drawn from N(0, 1) (traceable)."""
        low, high = self.low, self.high
        bounded = jnp.isfinite(low) & jnp.isfinite(high)
        k1, k2 = jax.random.split(key)
        u = jax.random.uniform(
            k1, self.shape, self.dtype, jnp.where(bounded, low, 0.0), jnp.where(bounded, high, 1.0)
        )
        n = jax.random.normal(k2, self.shape, self.dtype)
        return jnp.where(bounded, u, n).astype(self.dtype)

    def contains(self, x: Any) -> jax.Array:
        """Whether ``x`` has the right shape and lies in the box (traceable)."""
        x = jnp.asarray(x)
        if x.shape != self.shape:
            return jnp.asarray(False)
        return jnp.all((x >= self.low) & (x <= self.high))

    def to_gymnasium(self) -> Any:
        """The equivalent ``gymnasium.spaces.Box`` (float32)."""
        import gymnasium

        low, high = np.asarray(self.low, np.float32), np.asarray(self.high, np.float32)
        return gymnasium.spaces.Box(low, high, self.shape, np.float32)

    def __repr__(self) -> str:
        return f"Box(shape={self.shape}, low={self.low}, high={self.high})"
