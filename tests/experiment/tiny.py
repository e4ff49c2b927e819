"""The tiny CartPole experiment config the run-level tests share: e-prop with 8 recurrent
neurons and 3 receptive fields per observation, 2 substeps, no wandb, no progress bar; each
test file sets only its ``training`` section (and a name where runs must not collide). Also
the check that two run directories end with the same checkpoint (kill-and-resume tests)."""

from __future__ import annotations

from typing import Any


def tiny_config(name: str = "tiny", **training: Any) -> dict[str, Any]:
    """A fresh config dict; ``training`` is the ``training`` section (steps, n_envs, ...)."""
    return {
        "name": name,
        "env": {"id": "CartPole-v1"},
        "agent": {"name": "eprop_ac", "substeps": 2, "hyper": {"n_rec": 8, "n_rf": 3}},
        "training": dict(training),
        "logging": {"wandb": "disabled", "progress": False},
    }


def assert_same_checkpoint(a: Any, b: Any) -> None:
    """The last checkpoints of run directories ``a`` and ``b`` are equal, leaf for leaf (PRNG
    keys by their data)."""
    import jax
    import numpy as np

    from neurorl.experiment.checkpoint import load_checkpoint

    ra, _ = load_checkpoint(a)
    rb, _ = load_checkpoint(b)
    for x, y in zip(jax.tree.leaves(ra), jax.tree.leaves(rb), strict=True):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
