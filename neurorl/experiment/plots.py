"""Plots people would rather look at than read: lifelong-learning curves, rule comparisons, return
versus energy. Pure matplotlib (Agg backend), written to PNG files.

Every return curve is smoothed the way the summary table is: the value at env step ``g`` is the mean
return of the last ``window`` episodes that ended at or before ``g`` (the config's
``training.episode_window``), so a curve's last point is the ``final_return`` of ``summary.json``,
the terminal table and the wandb summary. The window is written on the plot.

Axes are formatted for any data: env steps and energies with SI prefixes (``50k``, ``10.3 µJ``), a
log axis only when the data spans more than a decade, ranges padded so that a difference of a
fraction of a percent does not fill the plot, and tick labels thinned until none overlap
(:func:`tick_label_overlaps` measures them).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: smallest y span of a return axis, as a fraction of the largest |value| shown (at least 1.0)
MIN_SPAN_FRACTION = 0.2


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str | os.PathLike) -> Path:
    """Write a finished ``fig`` to ``path`` (parents created) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------------
# axis formatting
# ----------------------------------------------------------------------------------------------


def _drawn_tick_labels(axis) -> list:
    """The tick labels of ``axis`` that are drawn: visible, non-empty, inside the view interval."""
    lo, hi = sorted(axis.get_view_interval())
    tol = 1e-9 * max(abs(lo), abs(hi), 1e-300)
    out = []
    for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
        label = tick.label1
        if not (tick.get_visible() and label.get_visible() and label.get_text().strip()):
            continue
        if not (lo - tol <= tick.get_loc() <= hi + tol):
            continue
        out.append(label)
    return out


def tick_label_overlaps(fig) -> list[tuple[str, str, str]]:
    """Pairs of tick labels that overlap on any axis of ``fig``, measured by matplotlib.

    The figure is drawn first so that the labels' window extents are the ones written to a file.

    Args:
        fig: a matplotlib figure.

    Returns:
        ``[(axis name, label text, label text), ...]`` -- empty when no two labels overlap.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    out = []
    for i, ax in enumerate(fig.axes):
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            labels = _drawn_tick_labels(axis)
            boxes = [(lab.get_window_extent(renderer), lab.get_text()) for lab in labels]
            boxes.sort(key=lambda b: b[0].x0 if name == "x" else b[0].y0)
            for (b1, t1), (b2, t2) in zip(boxes, boxes[1:], strict=False):
                if b1.overlaps(b2):
                    out.append((f"axes[{i}].{name}", t1, t2))
    return out


def _declutter(fig, max_rounds: int = 6) -> None:
    """Thin the ticks of any axis whose labels overlap, until none do (or two ticks are left)."""
    from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter

    for _ in range(max_rounds):
        bad = tick_label_overlaps(fig)
        if not bad:
            return
        for where in {b[0] for b in bad}:
            i, name = int(where[5 : where.index("]")]), where[-1]
            axis = fig.axes[i].xaxis if name == "x" else fig.axes[i].yaxis
            axis.set_minor_formatter(NullFormatter())
            n = len(_drawn_tick_labels(axis))
            if axis.get_scale() == "log":
                axis.set_major_locator(LogLocator(numticks=max(2, n - 1)))
            else:
                axis.set_major_locator(MaxNLocator(nbins=max(2, n - 2), steps=[1, 2, 2.5, 5, 10]))
        fig.tight_layout()


def _finish(fig):
    fig.tight_layout()
    _declutter(fig)
    return fig


def _steps_axis(axis) -> None:
    """Env steps with SI prefixes (``250k``, ``1.5M``) and at most 6 ticks."""
    from matplotlib.ticker import EngFormatter, MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10], integer=True))
    axis.set_major_formatter(EngFormatter(sep=""))


def padded_range(values: Sequence[float], min_span: float) -> tuple[float, float]:
    """An axis range that shows ``values`` with at least ``min_span`` between its ends.

    Data whose spread is smaller than ``min_span`` are centred in a range of that width, so that
    noise of a fraction of a percent is drawn as the nearly flat thing it is; otherwise the data's
    range with a 5% margin.

    Args:
        values: the data on this axis (NaNs ignored).
        min_span: the smallest width of the range.

    Returns:
        ``(low, high)``.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    lo, hi = float(v.min()), float(v.max())
    span = hi - lo
    if span < min_span:
        mid = 0.5 * (lo + hi)
        return mid - 0.5 * min_span, mid + 0.5 * min_span
    return lo - 0.05 * span, hi + 0.05 * span


def _return_span(values: Sequence[float]) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return max(MIN_SPAN_FRACTION * (float(np.abs(v).max()) if v.size else 0.0), 1.0)


def _window_text(window: int | Mapping[int, int]) -> str:
    ws = sorted(set(window.values())) if isinstance(window, Mapping) else [window]
    if len(ws) == 1:
        return f"mean of the last {ws[0]} episodes"
    return "mean of the last training.episode_window episodes (" + "/".join(map(str, ws)) + ")"


# ----------------------------------------------------------------------------------------------
# curves
# ----------------------------------------------------------------------------------------------


def curve_on_grid(
    env_steps: np.ndarray, returns: np.ndarray, grid: np.ndarray, window: int
) -> np.ndarray:
    """Rolling mean (over ``window`` episodes) of episode returns, sampled at ``grid`` env steps.

    The value at grid point g is the mean return of the last ``window`` episodes that ended at or
    before g (all of them while fewer have ended; NaN before the first episode ends), so curves of
    members with different episode boundaries can be averaged and banded on a common x-axis. At
    the last episode it is ``summary.json``'s ``final_return`` (the same window, the same order:
    a stable sort by env step).
    """
    env_steps = np.asarray(env_steps, dtype=float)
    returns = np.asarray(returns, dtype=float)
    if returns.size == 0:
        return np.full(grid.shape, np.nan)
    order = np.argsort(env_steps, kind="stable")
    env_steps, returns = env_steps[order], returns[order]
    c = np.cumsum(np.insert(returns, 0, 0.0))
    idx = np.arange(1, returns.size + 1)
    lo = np.maximum(idx - window, 0)
    rolling = (c[idx] - c[lo]) / (idx - lo)
    pos = np.searchsorted(env_steps, grid, side="right") - 1
    return np.where(pos >= 0, rolling[np.clip(pos, 0, None)], np.nan)


def group_curves(
    episodes: Sequence[Mapping[str, Any]],
    labels: Mapping[int, str],
    window: int | Mapping[int, int],
    n_points: int = 200,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-label stacks of member curves on a shared env-step grid: ``grid, {label: [S, G]}``.

    Args:
        episodes: episode records (``member``, ``env_step``, ``return``).
        labels: member -> label (what the member's run varies, e.g. the learning rule).
        window: the smoothing window in episodes (``training.episode_window``), or one per member.
        n_points: grid points; the last is the last episode's env step.
    """
    max_step = max((e["env_step"] for e in episodes), default=1)
    grid = np.linspace(0, max_step, n_points)
    by_member: dict[int, list] = {m: [] for m in labels}
    for e in episodes:
        if e["member"] in by_member:
            by_member[e["member"]].append(e)
    by_label: dict[str, list[np.ndarray]] = {}
    for member, label in labels.items():
        eps = by_member[member]
        steps = np.array([e["env_step"] for e in eps])
        rets = np.array([e["return"] for e in eps])
        w = window[member] if isinstance(window, Mapping) else window
        by_label.setdefault(label, []).append(curve_on_grid(steps, rets, grid, w))
    return grid, {k: np.stack(v) for k, v in by_label.items()}


def band_stats(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median, 25th and 75th percentile over seeds (axis 0), NaN where no seed has a value."""
    with warnings.catch_warnings():  # all-NaN columns before the first episode ends
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return (
            np.nanmedian(curves, axis=0),
            np.nanpercentile(curves, 25, axis=0),
            np.nanpercentile(curves, 75, axis=0),
        )


def write_curves_csv(
    path: str | os.PathLike, grid: np.ndarray, curves: Mapping[str, np.ndarray]
) -> Path:
    """The data behind the return curves: one row per label and grid point (median, IQR, seeds)."""
    import csv

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["label", "env_step", "median", "q25", "q75", "seeds"])
        for label, c in curves.items():
            mid, lo, hi = band_stats(c)
            for g, a, b, d in zip(grid, mid, lo, hi, strict=True):
                if np.isfinite(a):  # repr: floats that read back exactly
                    w.writerow(
                        [
                            label,
                            repr(float(g)),
                            repr(float(a)),
                            repr(float(b)),
                            repr(float(d)),
                            c.shape[0],
                        ]
                    )
    return path


def _band(ax, grid: np.ndarray, curves: np.ndarray, label: str, color=None) -> None:
    """Median over seeds with the interquartile range as a band (one statistic family, so the
    line always lies inside its band; a mean can leave the IQR with few seeds)."""
    mid, lo, hi = band_stats(curves)
    n = curves.shape[0]
    text = f"{label} (median of {n} seeds, band: IQR)" if n > 1 else f"{label} (1 seed)"
    (line,) = ax.plot(grid, mid, label=text, color=color)
    if n > 1:
        ax.fill_between(grid, lo, hi, alpha=0.25, color=line.get_color(), linewidth=0)


def _curve_values(curves: Mapping[str, np.ndarray]) -> list[float]:
    vals: list[float] = []
    for c in curves.values():
        mid, lo, hi = band_stats(c)
        vals += [*mid, *lo, *hi]
    return vals


def lifelong_figure(
    episodes: Sequence[Mapping[str, Any]],
    labels: Mapping[int, str],
    window: int | Mapping[int, int],
    boundaries: Sequence[int] = (),
    task_names: Sequence[str] | None = None,
    title: str = "lifelong learning",
    threshold: float | None = None,
):
    """The lifelong-learning figure (see :func:`plot_lifelong`), laid out and left open."""
    plt = _plt()
    grid, curves = group_curves(episodes, labels, window)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for label, c in curves.items():
        _band(ax, grid, c, label)
    vals = _curve_values(curves)
    if threshold is not None:
        ax.axhline(threshold, color="tab:green", ls=":", lw=1, label=f"threshold {threshold:g}")
        vals.append(threshold)
    lo, hi = padded_range(vals, _return_span(vals))
    ax.set_ylim(lo, hi + 0.1 * (hi - lo))  # room for the task names
    ax.set_xlim(0, grid[-1])
    starts = [0, *boundaries]
    for b in boundaries:
        ax.axvline(b, color="k", ls="--", lw=0.8, alpha=0.6)
    for i, name in enumerate(task_names or []):
        if i < len(starts):  # x in data, y in axes coordinates: stays at the top
            ax.text(
                starts[i],
                0.985,
                f" {name}",
                va="top",
                fontsize=8,
                transform=ax.get_xaxis_transform(),
            )
    _steps_axis(ax.xaxis)
    ax.set_xlabel("env steps per seed (summed over its parallel envs)")
    ax.set_ylabel(f"episode return\n({_window_text(window)})")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)  # where it covers the least of the curves
    return _finish(fig)


def plot_lifelong(path: str | os.PathLike, *args, **kwargs) -> Path:
    """Lifelong-learning curve: rolling return vs env step, the median over seeds per label with
    its IQR band, shift/task boundaries as dashed vertical lines with each task's name, and the
    smoothing window in the y label. Arguments as :func:`lifelong_figure`."""
    return _save(_plt(), lifelong_figure(*args, **kwargs), path)


def compare_figure(
    episodes: Sequence[Mapping[str, Any]],
    labels: Mapping[int, str],
    window: int | Mapping[int, int],
    boundaries: Sequence[int] = (),
):
    """One panel per label (see :func:`plot_rules_side_by_side`), laid out and left open."""
    plt = _plt()
    grid, curves = group_curves(episodes, labels, window)
    n = max(len(curves), 1)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols, 3.2 * rows), sharey=True, sharex=True, squeeze=False
    )
    vals = _curve_values(curves)
    lo, hi = padded_range(vals, _return_span(vals))
    flat = list(axes.flat)
    for i, (ax, (label, c)) in enumerate(zip(flat, curves.items(), strict=False)):
        _band(ax, grid, c, label, color=f"C{i % 10}")  # the lifelong plot's colours
        for b in boundaries:
            ax.axvline(b, color="k", ls="--", lw=0.8, alpha=0.6)
        n_seeds = c.shape[0]
        ax.set_title(f"{label}: median of {n_seeds}, IQR" if n_seeds > 1 else label, fontsize=9)
        ax.set_ylim(lo, hi)
        ax.set_xlim(0, grid[-1])
        _steps_axis(ax.xaxis)
    for ax in flat[len(curves) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("env steps per seed")
    for row in axes:
        row[0].set_ylabel("episode return")
    fig.suptitle(f"episode return, {_window_text(window)}", fontsize=9)
    return _finish(fig)


def plot_rules_side_by_side(path: str | os.PathLike, *args, **kwargs) -> Path:
    """One panel per label (e.g. learning rule), same axes, median and IQR band over seeds.
    Arguments as :func:`compare_figure`; the report draws it only for two labels or more."""
    return _save(_plt(), compare_figure(*args, **kwargs), path)


def energy_figure(
    points: Sequence[Mapping[str, Any]],
    xlabel: str = "energy per env step",
    x: str = "energy_per_step_j",
    unit: str = "J",
    window: int | None = None,
):
    """Final return against a cost per env step (see :func:`plot_return_vs_energy`), left open."""
    from matplotlib.ticker import EngFormatter, LogLocator, MaxNLocator, NullFormatter

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    labels = list(dict.fromkeys(p["label"] for p in points))  # first-seen order, as the panels
    all_x = np.array([p[x] for p in points], dtype=float)
    all_y = np.array([p["final_return"] for p in points], dtype=float)
    for label in labels:
        xs = np.array([p[x] for p in points if p["label"] == label], dtype=float)
        ys = np.array([p["final_return"] for p in points if p["label"] == label], dtype=float)
        sc = ax.scatter(xs, ys, label=f"{label} (n={xs.size})", alpha=0.7)
        ax.scatter(
            [np.median(xs)],
            [np.median(ys)],
            marker="X",
            s=90,
            color=sc.get_facecolor()[0],
            edgecolor="k",
            linewidth=0.6,
        )
    positive = all_x.size and bool(np.all(all_x > 0))
    if positive and all_x.max() / all_x.min() > 10.0:  # log only when it spans over a decade
        ax.set_xscale("log")
        lo, hi = all_x.min(), all_x.max()
        ax.set_xlim(lo / 1.5, hi * 1.5)
        ax.xaxis.set_major_locator(LogLocator(numticks=6))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        scale = float(np.abs(all_x).max()) if all_x.size else 1.0
        lo, hi = padded_range(all_x, max(MIN_SPAN_FRACTION * scale, 1e-30))
        ax.set_xlim(max(lo, 0.0) if positive else lo, hi)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    ax.xaxis.set_major_formatter(EngFormatter(unit=unit, sep=" " if unit else ""))
    ax.set_ylim(*padded_range(all_y, _return_span(all_y)))
    ax.set_xlabel(xlabel)
    smooth = f"mean of the last {window} episodes" if window else "mean of the last episodes"
    ax.set_ylabel(f"final return\n({smooth})")
    ax.set_title("final return vs cost per env step (one point per seed, X: median)", fontsize=9)
    ax.legend(fontsize=8)
    return _finish(fig)


def plot_return_vs_energy(path: str | os.PathLike, points, **kwargs) -> Path:
    """Scatter of final return against energy per env step (or another cost ``x``, e.g.
    ``synops_per_step`` for a chip without an energy model, with ``unit=""``); one point per
    member, coloured by label, with each label's median marked. Arguments as
    :func:`energy_figure`."""
    return _save(_plt(), energy_figure(points, **kwargs), path)


def raster_figure(spikes: np.ndarray, v: np.ndarray | None, dt_ms: float = 1.0):
    """Spike raster (see :func:`plot_raster`), laid out and left open."""
    plt = _plt()
    spikes = np.asarray(spikes)
    rows = 2 if v is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(9, 2.8 * rows), sharex=True, squeeze=False)
    t, n = np.nonzero(spikes)
    axes[0][0].scatter(t * dt_ms, n, s=1.5, c="k", marker="|")
    axes[0][0].set_ylabel("neuron")
    axes[0][0].set_title(f"{int(spikes.sum())} spikes, {spikes.shape[1]} neurons")
    if v is not None:
        v = np.asarray(v)
        for j in range(min(3, v.shape[1])):
            axes[1][0].plot(np.arange(v.shape[0]) * dt_ms, v[:, j], lw=0.8)
        axes[1][0].set_ylabel("membrane")
    axes[-1][0].set_xlabel("time (ms)")
    return _finish(fig)


def plot_raster(
    path: str | os.PathLike, spikes: np.ndarray, v: np.ndarray | None, dt_ms: float = 1.0
) -> Path:
    """Spike raster [T, N] (and optionally a few membrane traces [T, N]) of one network."""
    return _save(_plt(), raster_figure(spikes, v, dt_ms), path)
