"""``neurorl sweep --launcher ray``: the sweep's compiled groups as Ray tasks.

Each group (the members the local sweep compiles together: one seed-vmapped function) becomes
one Ray task that runs :func:`neurorl.experiment.runner.run_group` -- the same code as the local
sweep -- into a temporary directory on its worker, packs that group directory (config, JSONL
logs, checkpoint, summary, wandb offline runs) and returns it; the driver unpacks it into
``OUT/group-NNN`` (write-then-rename). So the sweep directory is the same as a local sweep's,
with or without a filesystem shared by the machines, and ``neurorl report`` / ``neurorl resume``
work on it unchanged (a group whose task failed is simply missing; ``neurorl resume OUT`` runs it
locally).

Ray is an optional extra (``pip install "neurorl[ray]"``). ``ray.init(address=...)`` connects to
a cluster (``--ray-address``, or ``RAY_ADDRESS``); with neither, Ray starts a local instance,
which is shut down again at the end. If Ray is already initialised in this process, that
instance is used and left running. Workers need neurorl installed (a local instance uses this
Python).

References:
    Ray tasks: https://docs.ray.io/en/latest/ray-core/tasks.html
    Ray clusters (``ray.init(address=...)``): https://docs.ray.io/en/latest/ray-core/starting-ray.html
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import tarfile
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neurorl.errors import ConfigError, NeurorlError, import_optional


def import_ray() -> Any:
    """``import ray``, or the ConfigError of :func:`neurorl.errors.import_optional` naming
    ``--launcher ray`` and the extra to install (``pip install "neurorl[ray]"``).

    Raises:
        ConfigError: ray is not installed (or its import fails).
    """
    return import_optional("ray", "ray", "--launcher", "ray")


def pack_dir(path: Path) -> bytes:
    """A directory as gzip'd tar bytes (paths relative to it).

    Symbolic links are replaced by the file they point to (wandb links ``debug-core.log`` to its
    cache under the worker's home, an absolute path that means nothing on the driver); dangling
    links are left out.
    """
    path = Path(path)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for root, dirs, files in os.walk(path, followlinks=False):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                p = Path(root) / name
                arc = str(p.relative_to(path))
                if p.is_symlink():
                    target = p.resolve()
                    if target.is_file():
                        tar.add(target, arcname=arc, recursive=False)
                    continue
                tar.add(p, arcname=arc, recursive=False)
    return buf.getvalue()


def unpack_dir(data: bytes, dest: Path) -> None:
    """Unpack :func:`pack_dir` bytes into ``dest``, replacing it only once fully written."""
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(tmp, filter="data")
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)


def run_group_packed(
    base: Mapping[str, Any],
    group: Mapping[str, Any],
    gi: int,
    sweep_name: str,
    wandb_mode: str | None,
) -> dict[str, Any]:
    """Run one sweep group (on a Ray worker) into a temporary directory; return it packed.

    A group a numeric fault stops comes back packed too, with ``"fault"`` (the error's line):
    its directory (``summary.json`` with the fault, the last good checkpoint) is what a local
    sweep keeps, so ``neurorl resume --retry-faulted`` can go on with it.
    """
    from neurorl.errors import NumericFaultError
    from neurorl.experiment.runner import run_group

    t0 = time.perf_counter()
    fault = None
    with tempfile.TemporaryDirectory(prefix="neurorl-ray-") as tmp:
        try:
            run_group(base, group, Path(tmp), gi, sweep_name, progress=False,
                      wandb_mode=wandb_mode)
        except NumericFaultError as e:
            fault = str(e)
        data = pack_dir(Path(tmp) / f"group-{gi:03d}")
    return {
        "group": gi,
        "data": data,
        "host": socket.gethostname(),
        "seconds": time.perf_counter() - t0,
        "fault": fault,
    }


def run_sweep_ray(
    base: Mapping[str, Any],
    groups: Sequence[Mapping[str, Any]],
    out: str | os.PathLike,
    sweep_name: str,
    *,
    wandb_mode: str | None = None,
    address: str | None = None,
    cpus_per_group: float = 1.0,
) -> list[int]:
    """Run every group of a sweep as a Ray task; each lands in ``out/group-NNN``.

    Args:
        base: the sweep's base experiment config (dict).
        groups: the groups from :func:`neurorl.experiment.runner.load_sweep`.
        out: the sweep directory.
        sweep_name: the sweep's name (wandb group, run names).
        wandb_mode: override of the config's wandb mode.
        address: Ray cluster address (None: ``RAY_ADDRESS`` or a new local instance).
        cpus_per_group: CPUs Ray reserves for each group's task.

    Returns:
        The indices of the groups written, in the order they finished (a group a numeric
        fault stopped is written too, as a local sweep writes it:
        :func:`neurorl.experiment.runner.group_fault` reads its fault).

    Raises:
        ConfigError: Ray is not installed.
        NeurorlError: some groups failed (the others are written; ``neurorl resume`` reruns
            the missing ones locally).
    """
    ray = import_ray()
    if not cpus_per_group > 0:
        raise ConfigError("--ray-cpus-per-group", cpus_per_group, "a number > 0")
    out = Path(out)
    started = not ray.is_initialized()
    if started:
        with warnings.catch_warnings():
            # Ray starts its processes with fork+exec; JAX's at-fork warning does not apply
            warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)
            ray.init(address=address, include_dashboard=False)
    try:
        task = ray.remote(num_cpus=cpus_per_group, max_retries=0)(run_group_packed)
        pending = {
            task.remote(dict(base), dict(g), gi, sweep_name, wandb_mode): gi
            for gi, g in enumerate(groups)
        }
        print(f"ray: {len(pending)} group(s) dispatched to {_where(ray)}", flush=True)
        done: list[int] = []
        failed: dict[int, str] = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            gi = pending.pop(ready[0])
            try:
                res = ray.get(ready[0])
                unpack_dir(res["data"], out / f"group-{gi:03d}")
            except Exception as e:  # a group's error is reported, the rest go on
                cause = getattr(e, "cause", None) or e
                failed[gi] = f"{type(cause).__name__}: {cause}"
                print(f"ray: group {gi} failed: {failed[gi]}", flush=True)
                continue
            done.append(gi)
            label = groups[gi].get("label") or gi
            if res.get("fault"):  # written, with its fault (the sweep names it and exits 3)
                print(f"ray: group {gi} ({label}, seeds {groups[gi]['seeds']}) stopped on "
                      f"{res['host']}: {res['fault']} [{len(done)}/{len(groups)}]", flush=True)
                continue
            print(
                f"ray: group {gi} ({label}, seeds {groups[gi]['seeds']}) done on {res['host']} "
                f"in {res['seconds']:.1f} s [{len(done)}/{len(groups)}]",
                flush=True,
            )
    finally:
        if started:
            ray.shutdown()
    if failed:
        lines = "; ".join(f"group {gi}: {msg}" for gi, msg in sorted(failed.items()))
        raise NeurorlError(
            f"{len(failed)} of {len(groups)} sweep group(s) failed on Ray ({lines}); the others "
            f"are in {out}; `neurorl resume {out}` runs the missing groups locally"
        )
    return done


def _where(ray: Any) -> str:
    try:
        res = ray.cluster_resources()
        return f"{len(ray.nodes())} node(s), {res.get('CPU', 0):g} CPU(s)"
    except Exception:  # only for the message
        return "ray"


__all__ = ["import_ray", "pack_dir", "run_group_packed", "run_sweep_ray"]
