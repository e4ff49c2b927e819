"""The tiny CartPole experiment config the run-level tests share: e-prop with 8 recurrent
neurons and 3 receptive fields per observation, 2 substeps, no wandb, no progress bar; each
test file sets only its ``training`` section (and a name where runs must not collide)."""

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
