"""A synthetic event classification task: frozen spike patterns per class, jittered per sample.

Each class ``k`` owns a frozen Poisson spike pattern ``S_k [T, n]`` (rate ``p`` per bin and
channel). A sample of class ``k`` moves every spike of ``S_k`` by an integer jitter drawn
uniformly from ``-jitter..jitter`` bins (clipped to ``0..T-1``), drops each with probability
``drop`` and adds background spikes at rate ``noise`` per bin and channel. This is the
"spike-pattern classification with jitter" task used to test temporal learning rules (e.g. the
tempotron's random-latency patterns, Guetig & Sompolinsky 2006) and needs no files.

References:
    Guetig & Sompolinsky, "The tempotron: a neuron that learns spike timing-based decisions",
    Nat. Neurosci. 9:420, 2006.
"""

from __future__ import annotations

import numpy as np

from neurorl.data.events import BinSpec, EventData
from neurorl.errors import ConfigError


def spike_patterns(*, n_classes: int = 4, n_inputs: int = 40, n_time_bins: int = 50,
                   n_train: int = 200, n_test: int = 100, rate: float = 0.05, jitter: int = 2,
                   drop: float = 0.1, noise: float = 0.005, seed: int = 0
                   ) -> tuple[EventData, EventData]:
    """Train and test splits of the jittered spike-pattern task.

    Args:
        n_classes: number of classes (patterns).
        n_inputs: input channels ``n``.
        n_time_bins: ``T``.
        n_train, n_test: samples per split (classes balanced round-robin).
        rate: spike probability per bin and channel of the frozen patterns.
        jitter: maximal shift of a spike in bins.
        drop: probability to delete a pattern spike.
        noise: background spike probability per bin and channel.
        seed: numpy seed (patterns and samples).

    Returns:
        ``(train, test)`` :class:`EventData` with ``x [N, T, n]`` uint8 spikes and labels.
    """
    for f, v in (("n_classes", n_classes), ("n_inputs", n_inputs), ("n_time_bins", n_time_bins),
                 ("n_train", n_train), ("n_test", n_test)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ConfigError(f"dataset.{f}", v, "an integer >= 1")
    for f, v in (("rate", rate), ("drop", drop), ("noise", noise)):
        if not 0 <= v <= 1:
            raise ConfigError(f"dataset.{f}", v, "a probability in [0, 1]")
    if isinstance(jitter, bool) or not isinstance(jitter, (int, np.integer)) or jitter < 0:
        raise ConfigError("dataset.jitter", jitter, "an integer >= 0 (bins)")
    rng = np.random.default_rng(seed)
    patterns = rng.random((n_classes, n_time_bins, n_inputs)) < rate

    def split(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % n_classes
        x = np.zeros((n, n_time_bins, n_inputs), np.uint8)
        for i in range(n):
            t, c = np.nonzero(patterns[y[i]])
            keep = rng.random(t.size) >= drop
            t = np.clip(t[keep] + rng.integers(-jitter, jitter + 1, keep.sum()), 0,
                        n_time_bins - 1)
            x[i, t, c[keep]] = 1
            x[i] |= (rng.random((n_time_bins, n_inputs)) < noise).astype(np.uint8)
        return x, y.astype(np.int32)

    spec = BinSpec(n_time_bins=n_time_bins)
    out = []
    for name, n, s in (("train", n_train, 1), ("test", n_test, 2)):
        x, y = split(n, np.random.default_rng([seed, s]))
        out.append(EventData("synthetic", name, x, y, (n_inputs, 1, 1), spec, n_classes))
    return out[0], out[1]
