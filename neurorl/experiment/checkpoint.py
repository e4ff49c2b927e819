"""Checkpoints that survive a crash and are never unpickled: arrays plus JSON metadata.

A checkpoint holds the whole runner state pytree (weights, traces, optimizer state, env state, PRNG
keys), the number of env steps done, and the position in the JSONL logs, so ``neurorl resume``
continues exactly where the run stopped.

Format (``checkpoint.npz``, version :data:`FORMAT_VERSION`): a NumPy ``.npz`` archive read with
``allow_pickle=False`` -- plain numeric arrays ``leaf_00000 ...`` (typed PRNG keys as their raw
``key_data``) and ``__meta__``, the UTF-8 JSON of ``{"format", "version", "leaves": [{"path",
"shape", "dtype", "key_impl"}], "meta", "sha256"}``. ``sha256`` covers the JSON (without itself)
and every leaf's bytes, so a truncated, overwritten or crafted file is refused with a
:class:`~neurorl.errors.CheckpointError` instead of resuming with wrong numbers or running code.
Loading needs a *template* (the runner state of the same config, e.g. from ``jax.eval_shape``):
its tree structure, leaf paths, shapes and dtypes must match the file's exactly.

Files are written to a temporary name in the same directory, flushed and fsync'ed, then atomically
renamed (``os.replace``): a crash mid-write leaves the previous checkpoint intact and never a
half-written file under the real name; :func:`clean_temp_files` removes the orphans a kill leaves.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

from neurorl.errors import CheckpointError

CHECKPOINT_NAME = "checkpoint.npz"
LEGACY_NAME = "checkpoint.pkl"
FORMAT = "neurorl-checkpoint"
FORMAT_VERSION = 1


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


def clean_temp_files(run_dir: str | os.PathLike) -> list[Path]:
    """Remove the ``.<name>.*.tmp`` files :func:`atomic_write_bytes` leaves when killed.

    Call it only while holding the run directory's lock (no other writer is active).

    Returns:
        The removed paths.
    """
    removed = []
    for p in Path(run_dir).glob(".*.tmp"):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _leaf_entries(state: Any) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """Path/shape/dtype descriptions and host arrays of every leaf (keys as key data)."""
    flat, _ = jax.tree_util.tree_flatten_with_path(state)
    entries, arrays = [], []
    for path, x in flat:
        impl = None
        if _is_key(x):
            impl = str(jax.random.key_impl(x))
            x = jax.random.key_data(x)
        a = np.asarray(x)
        entries.append(
            {"path": jax.tree_util.keystr(path), "shape": list(a.shape), "dtype": a.dtype.str,
             "key_impl": impl}
        )
        arrays.append(a)
    return entries, arrays


def _template_entries(template: Any) -> list[dict[str, Any]]:
    """Like :func:`_leaf_entries` for a template of arrays or ``jax.ShapeDtypeStruct``s."""
    flat, _ = jax.tree_util.tree_flatten_with_path(template)
    out = []
    for path, x in flat:
        dtype, shape, impl = x.dtype, tuple(x.shape), None
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            impl = str(jax.random.key_impl(x)) if isinstance(x, jax.Array) else "key"
            data = jax.eval_shape(jax.random.key_data, x)
            dtype, shape = data.dtype, tuple(data.shape)
        out.append(
            {"path": jax.tree_util.keystr(path), "shape": list(shape),
             "dtype": np.dtype(dtype).str, "key_impl": impl}
        )
    return out


def _digest(header: dict[str, Any], arrays: list[np.ndarray]) -> str:
    h = hashlib.sha256(json.dumps(header, sort_keys=True).encode("utf-8"))
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def save_checkpoint(run_dir: str | os.PathLike, state: Any, meta: dict[str, Any]) -> Path:
    """Save the runner state pytree and JSON-able metadata atomically (no pickle).

    Args:
        run_dir: the run directory.
        state: any pytree of arrays (the jitted runner's carry).
        meta: JSON-able metadata such as ``{"env_steps": ..., "chunks": ..., "positions": ...}``.

    Returns:
        The checkpoint path.
    """
    import io

    entries, arrays = _leaf_entries(state)
    header = {"format": FORMAT, "version": FORMAT_VERSION, "leaves": entries, "meta": meta}
    header["sha256"] = _digest(header, arrays)
    buf = io.BytesIO()
    blob = np.frombuffer(json.dumps(header, allow_nan=False).encode("utf-8"), dtype=np.uint8)
    np.savez(buf, __meta__=blob, **{f"leaf_{i:05d}": a for i, a in enumerate(arrays)})
    path = Path(run_dir) / CHECKPOINT_NAME
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_text(Path(run_dir) / "checkpoint.json", json.dumps(meta, indent=2))
    return path


def _refuse(path: Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path}: {why}; it was not loaded. Start the run again (neurorl run) or "
        "restore the file from a backup."
    )


def read_checkpoint(run_dir: str | os.PathLike) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Read and verify a checkpoint file: ``(header, arrays)``, checksum checked.

    Raises:
        CheckpointError: a missing, legacy (pickle), unreadable, corrupted or crafted file.
    """
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.exists():
        legacy = Path(run_dir) / LEGACY_NAME
        if legacy.exists():
            raise _refuse(
                legacy,
                "an old pickle checkpoint; pickles can run arbitrary code when loaded, so "
                "neurorl no longer reads them",
            )
        raise _refuse(path, "no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
            if "__meta__" not in names:
                raise _refuse(path, "not a neurorl checkpoint (no __meta__ entry)")
            header = json.loads(bytes(z["__meta__"]).decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise _refuse(path, "not a neurorl checkpoint (wrong format tag)")
            if header.get("version") != FORMAT_VERSION:
                raise _refuse(
                    path,
                    f"format version {header.get('version')!r}; this neurorl reads version "
                    f"{FORMAT_VERSION}",
                )
            entries = header["leaves"]
            arrays = [z[f"leaf_{i:05d}"] for i in range(len(entries))]
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile,
            UnicodeDecodeError) as e:
        raise _refuse(path, f"unreadable or corrupted ({type(e).__name__}: {e})") from None
    want = header.pop("sha256", None)
    if want != _digest(header, arrays):
        raise _refuse(path, "checksum mismatch (the file was changed or damaged after writing)")
    for e, a in zip(entries, arrays, strict=True):
        if list(a.shape) != e["shape"] or a.dtype.str != e["dtype"]:
            raise _refuse(path, f"leaf {e['path']} does not match its own description")
    return header, arrays


def load_checkpoint(
    run_dir: str | os.PathLike, template: Any = None
) -> tuple[Any, dict[str, Any]]:
    """Load a checkpoint written by :func:`save_checkpoint`; returns ``(state, meta)``.

    Args:
        run_dir: the run directory.
        template: a pytree of the expected structure (arrays or ``jax.ShapeDtypeStruct``, e.g.
            ``jax.eval_shape(train.init, keys)``). Its leaf paths, shapes and dtypes must match.
            ``None``: the state is returned as a flat ``{path: array}`` dict (for inspection).

    Raises:
        CheckpointError: unreadable/corrupted/crafted file, or a state of another structure
            (e.g. a checkpoint of a run with another ``n_rec``), naming the first difference.
    """
    header, arrays = read_checkpoint(run_dir)
    entries = header["leaves"]
    if template is None:
        return {e["path"]: a for e, a in zip(entries, arrays, strict=True)}, header["meta"]
    want = _template_entries(template)
    path = Path(run_dir) / CHECKPOINT_NAME
    if len(want) != len(entries):
        raise _refuse(
            path, f"it holds {len(entries)} arrays, this config's runner state has {len(want)} "
            "(a checkpoint of another agent or config)"
        )
    for w, e in zip(want, entries, strict=True):
        if (w["path"], w["shape"], w["dtype"]) != (e["path"], e["shape"], e["dtype"]):
            raise _refuse(
                path,
                f"{e['path']} is {e['dtype']}{tuple(e['shape'])} in the file but "
                f"{w['dtype']}{tuple(w['shape'])} in this config's runner state (a checkpoint of "
                "another config)",
            )
    leaves = []
    for e, a in zip(entries, arrays, strict=True):
        if e["key_impl"] is not None:
            leaves.append(jax.random.wrap_key_data(a, impl=e["key_impl"]))
        else:
            leaves.append(jax.numpy.asarray(a))
    treedef = jax.tree_util.tree_structure(template)
    return jax.tree_util.tree_unflatten(treedef, leaves), header["meta"]


def checkpoint_meta(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a verified checkpoint (env steps done, chunks, config hash, ...).

    Reads the file with numpy only (no template, nothing traced or compiled), so the runner can
    tell a finished run from an interrupted one before it builds the training function.

    Raises:
        CheckpointError: as :func:`read_checkpoint`.
    """
    return read_checkpoint(run_dir)[0]["meta"]


def has_checkpoint(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` holds a checkpoint (current or legacy format)."""
    return (Path(run_dir) / CHECKPOINT_NAME).exists() or (Path(run_dir) / LEGACY_NAME).exists()
