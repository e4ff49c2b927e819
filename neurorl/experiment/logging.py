"""Logging: local JSONL always, wandb (offline by default) per sweep member.

This is the ONLY module in neurorl that imports wandb. Library code returns metrics pytrees; the
runner passes host-side records here between jitted chunks.

What each wandb run (one per member) holds:

* history rows on the ``env_step`` axis, in env-step order: ``episode/*`` for every finished
  episode, ``chunk/*`` for every chunk and ``task/switch`` (``task/id`` = segment index) at each
  shift boundary, logged with the chunk in which the boundary falls, so ``env_step`` never goes
  back. Row *k* of a member is always logged at wandb step *k*;
* a flat summary: the member's ``summary.json`` entry with nested keys joined by ``/``
  (``final_return``, ``energy_per_step_j``, ``adaptation/0/steps``,
  ``tasks/forgetting_on_return/0``, ...) plus means over shifts and tasks
  (``adaptation/mean_steps``, ``forgetting_on_return/mean``, ...), so a sweep's ``metric`` can
  name any of them;
* the report's PNG plots as ``plots/<name>`` images.

Crash consistency: the JSONL files are the record (truncated to the checkpoint on resume). The
wandb rows are a function of them and the shift boundaries, so a resumed run re-creates its wandb
runs under the same ids: offline, a fresh ``offline-run-*-<id>`` directory replays every row from
the JSONL files and the killed run's directories move to ``wandb/superseded/`` (deleted when the
run finishes), so ``wandb sync`` uploads each row exactly once; online, wandb resumes the run and
only rows at or past its last step are sent.

Under ``wandb agent`` (``WANDB_SWEEP_ID`` set) the run id, project and sweep parameters come from
the agent; the mode is ``WANDB_MODE`` or ``online`` (a sweep needs its runs' summaries), and a run
must have one member (``training.n_seeds: 1``).

Layout of a run directory::

    run_dir/
      config.yaml            resolved config
      episodes.jsonl         a line per finished episode (member, env_step, return, length, ...)
      chunks.jsonl           a line per chunk (member, env_step, steps/s, mean return, ...)
      checkpoint.pkl/.json   last checkpoint (see checkpoint.py)
      summary.json           final and continual metrics per member
      plots/*.png            drawn by ``neurorl report``
      wandb/                 wandb's own run directories (offline-run-*)

References:
    wandb custom x-axes (define_metric): https://docs.wandb.ai/models/track/log/customize-logging-axes
    wandb grouping: https://docs.wandb.ai/guides/runs/grouping/
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

WANDB_MODES = ("offline", "online", "disabled")


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


class JsonlWriter:
    """Append-only JSONL file; each line flushed so a crash loses at most the line being written.

    ``truncate_to(n)`` drops lines past ``n``: on resume the runner truncates to the line count
    stored in the checkpoint so that records written after the checkpoint are not duplicated.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)

    def count(self) -> int:
        with open(self.path, encoding="utf-8") as f:
            return sum(1 for line in f if line.strip())

    def truncate_to(self, n_lines: int) -> None:
        with open(self.path, encoding="utf-8") as f:
            lines = [line for line in f if line.strip()]
        if len(lines) != n_lines:
            tmp = self.path.with_suffix(".jsonl.tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(lines[:n_lines])
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)

    def write_many(self, records: Iterable[Mapping[str, Any]]) -> int:
        n = 0
        with open(self.path, "a", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(_jsonable(r)) + "\n")
                n += 1
            f.flush()
            os.fsync(f.fileno())
        return n


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


_EPISODE_KEYS = ("return", "length", "task_id", "spikes_per_step", "energy_per_step_j",
                 "context")


def _episode_row(r: Mapping[str, Any]) -> dict[str, Any]:
    row = {"env_step": int(r["env_step"])}
    for k in _EPISODE_KEYS:
        if r.get(k) is not None:
            row[f"episode/{k}"] = r[k]
    return row


def _chunk_row(r: Mapping[str, Any]) -> dict[str, Any]:
    row = {"env_step": int(r["env_step"])}
    for k, v in r.items():
        if k not in ("env_step", "member") and isinstance(v, (int, float)) and np.isfinite(v):
            row[f"chunk/{k}"] = v
    return row


def history_rows(
    episodes: Sequence[Mapping[str, Any]],
    chunks: Sequence[Mapping[str, Any]],
    switches: Sequence[tuple[int, int]] = (),
) -> list[dict[str, Any]]:
    """One member's wandb history rows, in the order they are logged.

    Rows are sorted by ``env_step``; at equal steps an episode that ended there comes first, then
    the chunk that ended there, then a task switch (it applies from that step on). Sorting is
    stable, so episodes that ended at the same step keep their JSONL order. The order is the same
    whether the rows are logged chunk by chunk or replayed from the JSONL files at once.

    Args:
        episodes: the member's episode records (``episodes.jsonl`` lines).
        chunks: the member's chunk records (``chunks.jsonl`` lines).
        switches: ``(env_step, segment index)`` of the shift boundaries in this range.

    Returns:
        The rows (dicts of wandb keys), ``env_step`` non-decreasing.
    """
    keyed = [((int(e["env_step"]), 0), _episode_row(e)) for e in episodes]
    keyed += [((int(c["env_step"]), 1), _chunk_row(c)) for c in chunks]
    keyed += [
        ((int(b), 2), {"env_step": int(b), "task/switch": 1, "task/id": int(i)})
        for b, i in switches
    ]
    keyed.sort(key=lambda kr: kr[0])
    return [r for _, r in keyed]


def flat_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A member's summary as flat wandb summary metrics (nested keys joined by ``/``).

    Lists are indexed (``adaptation/0/steps``); ``None`` values are left out. Means over the
    shifts (``adaptation/mean_<key>`` over the shifts it was measured for) and over the tasks
    (``forgetting_on_return/mean``, ``drop_on_return/mean``, ``transfer_on_return/mean``) are
    added so that a sweep's ``metric`` can optimise them.

    Args:
        summary: one entry of ``summary.json``'s ``members``.

    Returns:
        Flat key -> number, string or bool.
    """
    out: dict[str, Any] = {}

    def walk(prefix: str, x: Any) -> None:
        if isinstance(x, Mapping):
            for k, v in x.items():
                walk(f"{prefix}/{k}" if prefix else str(k), v)
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                walk(f"{prefix}/{i}", v)
        elif x is not None:
            x = _jsonable(x)
            if x is not None:
                out[prefix] = x

    walk("", summary)
    adapt = [a for a in summary.get("adaptation") or [] if isinstance(a, Mapping)]
    for key in ("episodes", "steps", "chip_time_s", "energy_j"):
        vals = [a[key] for a in adapt if isinstance(a.get(key), (int, float))]
        if vals:
            out[f"adaptation/mean_{key}"] = float(np.mean(vals))
    if adapt:
        out["adaptation/censored_shifts"] = int(sum(bool(a.get("censored")) for a in adapt))
    tasks = summary.get("tasks") or {}
    for key in ("forgetting_on_return", "drop_on_return", "transfer_on_return"):
        vals = [v for v in (tasks.get(key) or {}).values() if isinstance(v, (int, float))]
        if vals:
            out[f"{key}/mean"] = float(np.mean(vals))
    return out


def _agent_sweep() -> str | None:
    """The sweep id when this process was started by ``wandb agent``."""
    return os.environ.get("WANDB_SWEEP_ID") or None


class WandbMember:
    """One wandb run for one sweep member (or seed), with env step as the x-axis.

    Args:
        run_dir: the run directory (wandb writes under ``run_dir/wandb``).
        name: display name.
        group: wandb group (the experiment or sweep name).
        job_type: wandb job type (the agent's rule label).
        config: the member's resolved config.
        mode: ``offline``, ``online`` or ``disabled``.
        project: wandb project (ignored under ``wandb agent``, which sets it).
        run_id: an existing run id to continue (resume), else a new one.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        *,
        name: str,
        group: str,
        job_type: str,
        config: Mapping[str, Any],
        mode: str = "offline",
        project: str = "neurorl",
        run_id: str | None = None,
    ) -> None:
        import wandb

        self._wandb = wandb
        wandb_dir = Path(run_dir)
        wandb_dir.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {}
        if _agent_sweep() is None:  # under wandb agent, id and project come from the agent
            kwargs = {"project": project, "id": run_id}
            if run_id is not None and mode == "online":
                kwargs["resume"] = "allow"
        self.run = wandb.init(
            dir=str(wandb_dir),
            name=name,
            group=group,
            job_type=job_type,
            config=_jsonable(dict(config)),
            mode=mode,
            reinit="create_new",
            settings=wandb.Settings(silent=True, console="off"),
            **kwargs,
        )
        self.id = self.run.id
        # rows below this step are already in the run (an online run resumed by wandb)
        self.first_step = int(getattr(self.run, "step", 0) or 0)
        self.step = 0  # the member's next history row
        self.run.define_metric("env_step")
        for prefix in ("episode/*", "chunk/*", "task/*", "plots/*"):
            self.run.define_metric(prefix, step_metric="env_step")

    def log_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Log history rows at this member's next steps (rows the run already has are skipped)."""
        for row in rows:
            if self.step >= self.first_step:
                self.run.log(dict(row), step=self.step)
            self.step += 1

    def log_images(self, images: Mapping[str, str | os.PathLike], env_step: int) -> None:
        """Log PNG files as ``plots/<name>`` images in one row."""
        row: dict[str, Any] = {"env_step": int(env_step)}
        for name, path in images.items():
            if str(path).endswith(".png") and Path(path).is_file():
                row[f"plots/{name}"] = self._wandb.Image(str(path))
        if len(row) > 1:
            self.log_rows([row])

    def set_summary(self, summary: Mapping[str, Any]) -> None:
        """Write ``summary`` as flat summary metrics (:func:`flat_summary`)."""
        self.run.summary.update(flat_summary(summary))

    def finish(self) -> None:
        self.run.finish()


class RunLogger:
    """Local JSONL for every member, plus one wandb run per member unless disabled.

    Args:
        run_dir: the run directory.
        members: member descriptions (``name``, ``job_type``, ``config``).
        group: wandb group.
        wandb_mode: ``offline``, ``online`` or ``disabled`` (under ``wandb agent``: see module).
        project: wandb project.
        wandb_ids: the members' run ids to continue (resume); their wandb runs start in
            :meth:`restore_positions`, which replays the JSONL rows into them.
        boundaries: env steps of the shift boundaries (task switches logged as they happen).
        jsonl: write ``episodes.jsonl`` / ``chunks.jsonl`` (False: the caller keeps its own
            files, e.g. a classification run's ``chunks.jsonl``, and :meth:`log` only sends
            the rows to wandb; no resume).

    Raises:
        ConfigError: an unknown mode, or several members under ``wandb agent``.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        *,
        members: Sequence[Mapping[str, Any]],
        group: str,
        wandb_mode: str = "offline",
        project: str = "neurorl",
        wandb_ids: Sequence[str] | None = None,
        boundaries: Sequence[int] = (),
        jsonl: bool = True,
    ) -> None:
        from neurorl.errors import ConfigError, closest

        if wandb_mode not in WANDB_MODES:
            raise ConfigError(
                "logging.wandb",
                wandb_mode,
                f"one of {list(WANDB_MODES)}",
                closest(wandb_mode, WANDB_MODES),
            )
        if _agent_sweep() is not None:
            wandb_mode = os.environ.get("WANDB_MODE") or "online"
            if len(members) != 1:
                raise ConfigError(
                    "training.n_seeds",
                    len(members),
                    "1 under `wandb agent` (one agent run is one wandb run: sweep training.seed"
                    " instead)",
                )
        self.run_dir = Path(run_dir)
        self.episodes = JsonlWriter(self.run_dir / "episodes.jsonl") if jsonl else None
        self.chunks = JsonlWriter(self.run_dir / "chunks.jsonl") if jsonl else None
        self._members = list(members)
        self._group, self._mode, self._project = group, wandb_mode, project
        self._boundaries = sorted(int(b) for b in boundaries)
        self._env_end = [0] * len(self._members)  # env step up to which rows are logged
        self._ids = None if wandb_ids is None else list(wandb_ids)
        self.wandb: list[WandbMember] = []
        if wandb_mode != "disabled" and self._ids is None:
            if wandb_mode == "offline" and _agent_sweep() is None:
                # a fresh start in a used run directory (killed before its first checkpoint, or
                # rerun into the same --out): its old offline runs no longer match the logs
                self._supersede(None)
            self._start_wandb()

    def _start_wandb(self, ids: Sequence[str] | None = None) -> None:
        for i, m in enumerate(self._members):
            self.wandb.append(
                WandbMember(
                    self.run_dir,
                    name=str(m.get("name", f"member-{i}")),
                    group=self._group,
                    job_type=str(m.get("job_type", "train")),
                    config=m.get("config", {}),
                    mode=self._mode,
                    project=self._project,
                    run_id=None if ids is None else ids[i],
                )
            )

    @property
    def wandb_ids(self) -> list[str]:
        return [w.id for w in self.wandb] if self.wandb else list(self._ids or [])

    def positions(self) -> dict[str, int]:
        return {"episodes": self.episodes.count(), "chunks": self.chunks.count()}

    def restore_positions(self, positions: Mapping[str, int]) -> None:
        """Truncate the JSONL files to a checkpoint's positions and (re)start the wandb runs.

        With ``wandb_ids`` given, the killed run's offline directories for those ids move to
        ``wandb/superseded/`` and each member's run starts again under its id with every row
        the JSONL files hold (see the module docstring).
        """
        self.episodes.truncate_to(int(positions.get("episodes", 0)))
        self.chunks.truncate_to(int(positions.get("chunks", 0)))
        if self._mode == "disabled" or self.wandb:
            return
        ids = self._ids if self._ids and len(self._ids) == len(self._members) else None
        if ids is not None and self._mode == "offline" and _agent_sweep() is None:
            self._supersede(ids)
        self._start_wandb(ids)
        episodes, chunks = read_jsonl(self.episodes.path), read_jsonl(self.chunks.path)
        for m, w in enumerate(self.wandb):
            mc = [c for c in chunks if c.get("member") == m]
            end = max((int(c["env_step"]) for c in mc), default=0)
            w.log_rows(
                history_rows(
                    [e for e in episodes if e.get("member") == m], mc, self._switches(0, end)
                )
            )
            self._env_end[m] = end

    def _supersede(self, ids: Sequence[str] | None) -> None:
        """Move the offline run directories of ``ids`` (all with ``None``) out of ``wandb sync``'s
        way, to ``wandb/superseded/`` (a rename: a dying wandb service may still write there)."""
        wdir = self.run_dir / "wandb"
        patterns = ["offline-run-*"] if ids is None else [f"offline-run-*-{i}" for i in ids]
        old = [d for p in patterns for d in wdir.glob(p) if d.is_dir()]
        for d in old:
            (wdir / "superseded").mkdir(parents=True, exist_ok=True)
            target, n = wdir / "superseded" / d.name, 0
            while target.exists():
                n += 1
                target = wdir / "superseded" / f"{d.name}.{n}"
            os.replace(d, target)

    def _switches(self, start: int, end: int) -> list[tuple[int, int]]:
        """Boundaries ``b`` with ``start <= b < end`` as ``(b, segment index)``."""
        return [(b, i + 1) for i, b in enumerate(self._boundaries) if start <= b < end]

    def log(
        self, episodes: Sequence[Mapping[str, Any]], chunks: Sequence[Mapping[str, Any]]
    ) -> None:
        """Append a chunk's records to the JSONL files and log them (with the task switches
        that fall in the chunk) to each member's wandb run."""
        if self.episodes is not None:
            self.episodes.write_many(episodes)
            self.chunks.write_many(chunks)
        if self._mode != "disabled" and not self.wandb:
            self._start_wandb(self._ids)  # wandb_ids given without restore_positions
        for member, w in enumerate(self.wandb):
            mc = [c for c in chunks if c.get("member") == member]
            start = self._env_end[member]
            end = max((int(c["env_step"]) for c in mc), default=start)
            me = [e for e in episodes if e.get("member") == member]
            w.log_rows(history_rows(me, mc, self._switches(start, end)))
            self._env_end[member] = max(start, end)

    def log_task_switches(self, switches: Sequence[tuple[int, int]]) -> None:
        """Log ``(env_step, segment index)`` switch rows now (the runner logs the boundaries it
        was given with the chunks instead)."""
        for w in self.wandb:
            w.log_rows(history_rows([], [], switches))

    def finish(
        self,
        summaries: Sequence[Mapping[str, Any]] | None = None,
        images: Mapping[str, str | os.PathLike] | None = None,
    ) -> None:
        """Log the plots and flat summaries, close the wandb runs and wait until they are on disk.

        Args:
            summaries: one ``summary.json`` member entry per member.
            images: plot name -> PNG path (``runner.report``'s output; other files are skipped).
        """
        for i, w in enumerate(self.wandb):
            if images:
                w.log_images(images, self._env_end[i])
            if summaries is not None:
                w.set_summary(summaries[i])
            w.finish()
        if self.wandb:
            # wait until wandb's service has flushed every run's datastore to disk, so the run
            # directory is complete when the command returns (a later wandb.init starts anew)
            self.wandb[0]._wandb.teardown()
            import shutil

            shutil.rmtree(self.run_dir / "wandb" / "superseded", ignore_errors=True)
