"""Memory a run needs, estimated before anything is allocated, and a refusal when it cannot fit.

Sizes come from ``jax.eval_shape`` of the training function's ``init`` (runner state: weights,
eligibility traces, optimizer and env state of every seed and env) and of one ``run_chunk``
(per-step metrics of a chunk), so they are exact array sizes, yet nothing is allocated.

Agents build some host constants eagerly (e.g. connectivity masks ``[n_pre, n_rec]``), so a huge
``n_rec`` cannot even be *built* to be measured. The state size is a polynomial of degree <= 2 in
``n_rec`` (every array is at most ``[..., n_pre, n_rec]`` with ``n_pre = n_in + n_rec``), so for
``n_rec`` above :data:`PROBE_ABOVE` it is measured exactly at three small ``n_rec`` and the
quadratic through them is evaluated at the requested one (exact for such shapes).

Peak need is estimated as ``3 x state`` (the carry in, the carry out of a jitted chunk, the host
copy written to the checkpoint) ``+ 2 x metrics of one chunk`` (device and host copies). It is
compared to the accelerator's memory limit, or on CPU to the host's available memory.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from neurorl.errors import ConfigError

PROBE_ABOVE = 512  # n_rec above this is extrapolated from probes at PROBES
PROBES = (16, 32, 64)


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of the runner state, of one chunk's metrics, the estimated peak and what is free."""

    state_bytes: int
    metrics_bytes: int
    peak_bytes: int
    available_bytes: int | None
    where: str

    def fits(self) -> bool:
        return self.available_bytes is None or self.peak_bytes <= self.available_bytes


def _nbytes(tree: Any) -> int:
    import jax

    total = 0
    for x in jax.tree.leaves(tree):
        dt = x.dtype
        if jax.dtypes.issubdtype(dt, jax.dtypes.prng_key):
            total += int(np.prod(x.shape)) * 8  # threefry key data: 2 x uint32
        else:
            total += int(np.prod(x.shape)) * np.dtype(dt).itemsize
    return total


def available_memory() -> tuple[int | None, str]:
    """Bytes the run may use: the first device's limit (GPU/TPU) or the host's MemAvailable."""
    import jax

    dev = jax.devices()[0]
    if dev.platform != "cpu":
        stats = dev.memory_stats() or {}
        limit = stats.get("bytes_limit")
        if limit:
            return int(limit) - int(stats.get("bytes_in_use", 0)), f"{dev.platform} memory"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "available host memory"
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "free host memory"
    except (ValueError, OSError, AttributeError):
        return None, "unknown"


def _measure(tc: Any, chunk_steps: int | None) -> tuple[int, int]:
    import jax

    from neurorl.experiment.train import make_train

    train = make_train(tc, calibration=False)  # shapes only: "auto" scales need no float run
    keys = jax.ShapeDtypeStruct((tc.n_seeds,), jax.random.key(0).dtype)
    state = jax.eval_shape(train.init, keys)
    metrics_bytes = 0
    if chunk_steps is not None:
        _, m = jax.eval_shape(lambda rs: train.run_chunk(rs, chunk_steps), state)
        metrics_bytes = _nbytes(m)
    return _nbytes(state), metrics_bytes


def estimate_memory(tc: Any, chunk_steps: int | None = None) -> MemoryEstimate:
    """Exact array sizes of ``tc``'s runner state and one chunk's metrics (nothing allocated).

    Args:
        tc: a :class:`~neurorl.experiment.train.TrainConfig`.
        chunk_steps: env steps per chunk (``None``: the state only).
    """
    hyper = dict(tc.agent_kwargs)
    n_rec = hyper.get("n_rec")
    if isinstance(n_rec, (int, float)) and n_rec > PROBE_ABOVE:
        xs, ys = [], []
        metrics = 0
        for i, n in enumerate(PROBES):
            probe = dataclasses.replace(tc, agent_kwargs={**hyper, "n_rec": n,
                                                          **({"n_alif": 0} if "n_alif" in hyper
                                                             else {})})
            s, m = _measure(probe, chunk_steps if i == 0 else None)
            metrics = max(metrics, m)
            xs.append(n)
            ys.append(s)
        coef = np.polyfit(np.array(xs, float), np.array(ys, float), 2)
        state = int(round(float(np.polyval(coef, float(n_rec)))))
    else:
        state, metrics = _measure(tc, chunk_steps)
    avail, where = available_memory()
    return MemoryEstimate(state, metrics, 3 * state + 2 * metrics, avail, where)


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def check_memory(
    tc: Any, chunk_steps: int | None = None, *, names: dict[str, str] | None = None
) -> MemoryEstimate:
    """Refuse a run whose estimated peak memory exceeds what is available.

    Args:
        tc: the training config.
        chunk_steps: env steps per chunk.
        names: how the message names the sizes (e.g. ``{"n_rec": "agent.hyper.n_rec"}``).

    Raises:
        ConfigError: with the state, metrics, peak and available sizes.
    """
    est = estimate_memory(tc, chunk_steps)
    if not est.fits():
        from neurorl.experiment.config import agent_defaults

        names = names or {}
        n_rec = dict(tc.agent_kwargs).get("n_rec", agent_defaults(tc.agent).get("n_rec"))
        sizes = (
            f"{names.get('n_rec', 'n_rec')}={n_rec}, "
            f"{names.get('n_envs', 'n_envs')}={tc.n_envs}, "
            f"{names.get('n_seeds', 'n_seeds')}={tc.n_seeds}"
        )
        raise ConfigError(
            "memory",
            sizes,
            f"a run that fits: it needs about {_gib(est.peak_bytes)} (runner state "
            f"{_gib(est.state_bytes)} x 3 + metrics per chunk {_gib(est.metrics_bytes)} x 2) but "
            f"{_gib(est.available_bytes or 0)} of {est.where} is free; lower the network size, "
            "parallel envs, seeds or chunk_steps",
        )
    return est
