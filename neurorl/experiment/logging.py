"""Logging: local JSONL always, wandb (offline by default) per sweep member.

This is the ONLY module in neurorl that imports wandb. Library code returns metrics pytrees; the
runner passes host-side records here between jitted chunks.

Layout of a run directory::

    run_dir/
      config.yaml            resolved config
      episodes.jsonl         one line per finished episode (member, env_step, return, length, task_id, ...)
      chunks.jsonl           one line per chunk (member, env_step, steps/s, mean return, spikes/step, ...)
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


class WandbMember:
    """One wandb run for one sweep member (or seed), with env step as the x-axis."""

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
        resume_id: str | None = None,
    ) -> None:
        import wandb

        self._wandb = wandb
        wandb_dir = Path(run_dir)
        wandb_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=project,
            dir=str(wandb_dir),
            name=name,
            group=group,
            job_type=job_type,
            config=_jsonable(dict(config)),
            mode=mode,
            reinit="create_new",
            id=resume_id,
            resume="allow" if resume_id else None,
            settings=wandb.Settings(silent=True, console="off"),
        )
        self.id = self.run.id
        self.run.define_metric("env_step")
        for prefix in ("episode/*", "chunk/*", "task/*"):
            self.run.define_metric(prefix, step_metric="env_step")

    def log_episodes(self, records: Sequence[Mapping[str, Any]]) -> None:
        for r in records:
            row = {"env_step": r["env_step"]}
            for k in ("return", "length", "task_id", "spikes_per_step", "energy_per_step_j"):
                if k in r and r[k] is not None:
                    row[f"episode/{k}"] = r[k]
            self.run.log(row)

    def log_chunk(self, record: Mapping[str, Any]) -> None:
        row = {"env_step": record["env_step"]}
        for k, v in record.items():
            if k not in ("env_step", "member") and isinstance(v, (int, float)) and v is not None:
                row[f"chunk/{k}"] = v
        self.run.log(row)

    def log_task_switch(self, env_step: int, task_id: int) -> None:
        self.run.log({"env_step": env_step, "task/switch": 1, "task/id": task_id})

    def set_summary(self, summary: Mapping[str, Any]) -> None:
        for k, v in _jsonable(dict(summary)).items():
            self.run.summary[k] = v

    def finish(self) -> None:
        self.run.finish()


class RunLogger:
    """Local JSONL for every member, plus one wandb run per member unless disabled."""

    def __init__(
        self,
        run_dir: str | os.PathLike,
        *,
        members: Sequence[Mapping[str, Any]],
        group: str,
        wandb_mode: str = "offline",
        project: str = "neurorl",
        wandb_ids: Sequence[str] | None = None,
    ) -> None:
        if wandb_mode not in WANDB_MODES:
            from neurorl.errors import ConfigError, closest

            raise ConfigError(
                "logging.wandb",
                wandb_mode,
                f"one of {list(WANDB_MODES)}",
                closest(wandb_mode, WANDB_MODES),
            )
        self.run_dir = Path(run_dir)
        self.episodes = JsonlWriter(self.run_dir / "episodes.jsonl")
        self.chunks = JsonlWriter(self.run_dir / "chunks.jsonl")
        self.wandb: list[WandbMember] = []
        if wandb_mode != "disabled":
            for i, m in enumerate(members):
                self.wandb.append(
                    WandbMember(
                        self.run_dir,
                        name=str(m.get("name", f"member-{i}")),
                        group=group,
                        job_type=str(m.get("job_type", "train")),
                        config=m.get("config", {}),
                        mode=wandb_mode,
                        project=project,
                        resume_id=None if wandb_ids is None else wandb_ids[i],
                    )
                )

    @property
    def wandb_ids(self) -> list[str]:
        return [w.id for w in self.wandb]

    def positions(self) -> dict[str, int]:
        return {"episodes": self.episodes.count(), "chunks": self.chunks.count()}

    def restore_positions(self, positions: Mapping[str, int]) -> None:
        self.episodes.truncate_to(int(positions.get("episodes", 0)))
        self.chunks.truncate_to(int(positions.get("chunks", 0)))

    def log(
        self, episodes: Sequence[Mapping[str, Any]], chunks: Sequence[Mapping[str, Any]]
    ) -> None:
        self.episodes.write_many(episodes)
        self.chunks.write_many(chunks)
        for member, w in enumerate(self.wandb):
            w.log_episodes([e for e in episodes if e.get("member") == member])
            for c in chunks:
                if c.get("member") == member:
                    w.log_chunk(c)

    def log_task_switches(self, switches: Sequence[tuple[int, int]]) -> None:
        for w in self.wandb:
            for env_step, task in switches:
                w.log_task_switch(env_step, task)

    def finish(self, summaries: Sequence[Mapping[str, Any]] | None = None) -> None:
        for i, w in enumerate(self.wandb):
            if summaries is not None:
                w.set_summary(summaries[i])
            w.finish()
        if self.wandb:
            # wait until wandb's service has flushed every run's datastore to disk, so the run
            # directory is complete when the command returns (a later wandb.init starts anew)
            self.wandb[0]._wandb.teardown()
