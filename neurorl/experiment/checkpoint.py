"""Checkpoints that survive a crash: everything needed to resume, written then renamed.

A checkpoint holds the whole runner state pytree (weights, traces, optimizer state, env state, PRNG
keys), the number of env steps done, and the position in the JSONL logs, so ``neurorl resume``
continues exactly where the run stopped. Files are written to a temporary name in the same
directory, flushed and fsync'ed, then atomically renamed (``os.replace``): a crash mid-write leaves
the previous checkpoint intact and never a half-written file under the real name.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

CHECKPOINT_NAME = "checkpoint.pkl"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same dir, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _to_host(tree: Any) -> Any:
    """Device arrays -> numpy; PRNG key arrays (typed keys) -> their raw key data."""

    def leaf(x):
        if isinstance(x, jax.Array):
            if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                return _KeyData(np.asarray(jax.random.key_data(x)), str(jax.random.key_impl(x)))
            return np.asarray(x)
        return x

    return jax.tree_util.tree_map(leaf, tree)


class _KeyData:
    """Pickle-able stand-in for a typed PRNG key array."""

    def __init__(self, data: np.ndarray, impl: str) -> None:
        self.data = data
        self.impl = impl


def _from_host(tree: Any) -> Any:
    def leaf(x):
        if isinstance(x, _KeyData):
            return jax.random.wrap_key_data(x.data)
        if isinstance(x, np.ndarray):
            return jax.numpy.asarray(x)
        return x

    return jax.tree_util.tree_map(leaf, tree, is_leaf=lambda x: isinstance(x, _KeyData))


def save_checkpoint(run_dir: str | os.PathLike, state: Any, meta: dict[str, Any]) -> Path:
    """Save the runner state pytree and JSON-able metadata atomically.

    Args:
        run_dir: the run directory.
        state: any pytree of arrays (the jitted runner's carry).
        meta: metadata such as ``{"env_steps": ..., "chunks": ..., "log_lines": ...}``.

    Returns:
        The checkpoint path.
    """
    path = Path(run_dir) / CHECKPOINT_NAME
    payload = pickle.dumps({"state": _to_host(state), "meta": meta}, protocol=4)
    atomic_write_bytes(path, payload)
    atomic_write_text(Path(run_dir) / "checkpoint.json", json.dumps(meta, indent=2))
    return path


def load_checkpoint(run_dir: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """Load a checkpoint written by :func:`save_checkpoint`; returns ``(state, meta)``."""
    path = Path(run_dir) / CHECKPOINT_NAME
    with open(path, "rb") as f:
        payload = pickle.load(f)
    return _from_host(payload["state"]), payload["meta"]


def has_checkpoint(run_dir: str | os.PathLike) -> bool:
    return (Path(run_dir) / CHECKPOINT_NAME).exists()
