"""What a run prints while it trains: a progress bar on a terminal, one plain line per chunk
otherwise.

On a terminal (``rich``'s detection, so ``TTY_COMPATIBLE=1`` and ``FORCE_COLOR`` are honoured)
the bar says ``compiling ...`` until the first chunk comes back -- that chunk includes XLA's
compilation, which can take tens of seconds -- and then the throughput and the return. When
stdout is a file or a pipe, each chunk prints one line with every field in full (no terminal
width to fit, nothing cut), which is what a log file or a CI job should hold.
"""

from __future__ import annotations

import sys
import time
from typing import Any


def _is_terminal() -> bool:
    from rich.console import Console

    return Console().is_terminal


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class RunProgress:
    """Progress of one run (or one sweep group) through its env steps.

    Args:
        name: what is running, as the user knows it (the run's name, or what a sweep group
            varies, e.g. ``agent=rstdp``).
        total: env steps per seed to run.
        completed: env steps per seed already done (a resumed run).
        enabled: ``False`` prints nothing.
        window: the episodes the shown return is averaged over (``training.episode_window``).
        seeds: seeds trained together; the shown return is their median.
        terminal: force the terminal (bar) or the plain-line form; default: detect stdout.
    """

    def __init__(
        self,
        name: str,
        total: int,
        completed: int = 0,
        *,
        enabled: bool = True,
        window: int | None = None,
        seeds: int = 1,
        terminal: bool | None = None,
    ) -> None:
        self.name = name
        self.total = int(total)
        self.completed = int(completed)
        self.enabled = enabled
        self.window = window
        self.seeds = seeds
        self.terminal = _is_terminal() if terminal is None else terminal
        self._bar: Any = None
        self._task: Any = None
        self._t0 = time.perf_counter()
        self._chunks = 0

    def __enter__(self) -> RunProgress:
        if not self.enabled:
            return self
        self._t0 = time.perf_counter()
        if self.terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("env steps"),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(
                self.name,
                total=self.total,
                completed=self.completed,
                status="compiling ... (XLA, once per run)",
            )
        else:
            print(
                f"{self.name}: compiling ... (XLA, once per run; the first chunk waits for it), "
                f"then {self.total - self.completed:,} env steps per seed",
                flush=True,
            )
        return self

    def update(self, completed: int, steps_per_s: float, ret: float | None) -> None:
        """Report a finished chunk.

        Args:
            completed: env steps per seed done so far.
            steps_per_s: env steps per second over all seeds since this run (re)started.
            ret: the median over seeds of each seed's mean return over its last ``window``
                episodes (``None`` before an episode has ended).
        """
        self.completed = int(completed)
        self._chunks += 1
        if not self.enabled:
            return
        ret_s = "-" if ret is None else f"{ret:.1f}"
        if self.terminal:
            self._bar.update(
                self._task,
                completed=completed,
                status=f"{steps_per_s:,.0f} steps/s  return {ret_s}",
            )
            return
        how = []
        if self.seeds > 1:
            how.append(f"median of {self.seeds} seeds")
        if self.window is not None:
            how.append(f"each the mean of its last {self.window} episodes")
        first = " (includes compilation)" if self._chunks == 1 else ""
        print(
            f"{self.name}: {self.completed:,}/{self.total:,} env steps "
            f"({100.0 * self.completed / max(self.total, 1):.0f}%)  "
            f"{steps_per_s:,.0f} steps/s{first}  "
            f"return {ret_s}" + (f" ({', '.join(how)})" if how and ret is not None else "") + "  "
            f"elapsed {_clock(time.perf_counter() - self._t0)}",
            file=sys.stdout,
            flush=True,
        )

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None
