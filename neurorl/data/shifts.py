"""Sensor shifts for binned event data, as pure jax functions of ``(x [T, n], t, key)``.

Event cameras and silicon cochleas drift in ways that differ from Gaussian sensor noise:

==============  ==============================================================================
event_dropout   every event survives with probability ``1 - s`` (bandwidth limits, refractory
                pixels; the "drop events randomly" case of EventDrop, Gu et al. 2021)
hot_pixels      a fixed set of ``fraction * n`` channels (chosen once from ``seed``: hot pixels
                are defects of one sensor) fires with probability ``s`` in every bin
polarity_flip   every event of a two-polarity sensor moves to the other polarity with
                probability ``s`` (channels ``c < n/2`` are OFF, ``c >= n/2`` ON)
time_jitter     every event moves by an offset uniform in ``-max_bins..max_bins`` bins with
                probability ``s`` (timestamp noise; clipped at the ends)
==============  ==============================================================================

The severity ``s`` is a schedule of the training-sample counter ``t`` -- the same ``abrupt`` /
``gradual`` / ``cyclic`` / ``random`` schedules as the control tasks' shifts
(:mod:`neurorl.envs.shifts`) -- so a drift over training is one config line.

References:
    Gu, Sun, Yan, Lin & Zhang, "EventDrop: data augmentation for event-based learning",
    IJCAI 2021.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from neurorl.envs import shifts as S
from neurorl.errors import ConfigError, lookup

Array = jax.Array
EVENT_SHIFTS = ("event_dropout", "hot_pixels", "polarity_flip", "time_jitter")


@struct.dataclass
class EventShift:
    """One sensor shift with a severity schedule (see module docstring)."""

    schedule: Any
    hot: Array  # [n] 0/1 mask of hot channels (hot_pixels only)
    kind: str = struct.field(pytree_node=False, default="event_dropout")
    max_bins: int = struct.field(pytree_node=False, default=2)

    def severity(self, t: Array, key: Array) -> Array:
        return jnp.clip(self.schedule(t, key), 0.0, 1.0)

    def __call__(self, x: Array, t: Array, key: Array) -> Array:
        """Shifted copy of ``x [T, n]`` at training sample ``t`` (``key``: this sample's)."""
        x = jnp.asarray(x, jnp.float32)
        s = self.severity(t, key)
        k1, k2 = jax.random.split(jax.random.fold_in(key, 7))
        if self.kind == "event_dropout":
            return x * (jax.random.uniform(k1, x.shape) >= s)
        if self.kind == "hot_pixels":
            fire = (jax.random.uniform(k1, x.shape) < s) * self.hot[None, :]
            return jnp.maximum(x, fire)
        if self.kind == "polarity_flip":
            half = x.shape[1] // 2
            off, on = x[:, :half], x[:, half:2 * half]
            m = (jax.random.uniform(k1, (x.shape[0], 2, half)) < s).astype(x.dtype)
            new_off = off * (1 - m[:, 0]) + on * m[:, 1]
            new_on = on * (1 - m[:, 1]) + off * m[:, 0]
            return jnp.concatenate([new_off, new_on, x[:, 2 * half:]], axis=1)
        # time_jitter
        K = self.max_bins
        move = jax.random.uniform(k1, x.shape) < s
        off = jax.random.randint(k2, x.shape, -K, K + 1)
        off = jnp.where(move, off, 0)
        T = x.shape[0]
        out = jnp.zeros_like(x)
        for d in range(-K, K + 1):  # static loop over offsets: scatter-free
            part = x * (off == d)
            shifted = jnp.roll(part, d, axis=0)
            if d > 0:  # events pushed past the end pile up in the last bin
                shifted = shifted.at[:d].set(0).at[T - 1].add(part[T - d:].sum(0))
            elif d < 0:
                shifted = shifted.at[d:].set(0).at[0].add(part[:-d].sum(0))
            out = out + shifted
        return out


def event_shift(kind: str, schedule: Any, n: int, *, fraction: float = 0.01, max_bins: int = 2,
                seed: int = 0) -> EventShift:
    """Build an :class:`EventShift` (host-side checks).

    Args:
        kind: one of ``EVENT_SHIFTS``.
        schedule: severity schedule: a number, a schedule or a ``{"kind": ...}`` dict
            (:func:`neurorl.envs.shifts.as_schedule`); values are clipped to [0, 1].
        n: channels of the data.
        fraction: hot_pixels: fraction of channels that are hot (at least one).
        max_bins: time_jitter: largest offset in bins.
        seed: which channels are hot.

    Raises:
        ConfigError: unknown kind (with the closest), bad fraction / max_bins, polarity_flip on
            an odd number of channels.
    """
    lookup({k: k for k in EVENT_SHIFTS}, kind, "event shift", field="shifts[].kind")
    if not 0 < fraction <= 1:
        raise ConfigError("shifts[].fraction", fraction, "a fraction in (0, 1]")
    if isinstance(max_bins, bool) or not isinstance(max_bins, int) or max_bins < 1:
        raise ConfigError("shifts[].max_bins", max_bins, "an integer >= 1 (bins)")
    if kind == "polarity_flip" and n % 2:
        raise ConfigError("shifts[].kind", kind, "a two-polarity sensor (an even channel count)")
    k = max(1, int(round(fraction * n)))
    hot = jnp.zeros((n,), jnp.float32).at[
        jax.random.permutation(jax.random.key(seed), n)[:k]].set(1.0)
    return EventShift(S.as_schedule(schedule), hot, kind, int(max_bins))


def apply_shifts(shifts: tuple[EventShift, ...] | list[EventShift], x: Array, t: Array,
                 key: Array) -> Array:
    """Apply every shift in order to one sample ``x [T, n]`` at training sample ``t``."""
    for i, sh in enumerate(shifts):
        x = sh(x, t, jax.random.fold_in(key, i))
    return x
