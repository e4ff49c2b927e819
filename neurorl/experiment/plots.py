"""Plots people would rather look at than read: lifelong-learning curves, rule comparisons, return
versus energy. Pure matplotlib (Agg backend), written to PNG files."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str | os.PathLike) -> Path:
    """Lay out, write ``fig`` to ``path`` (parents created) and close it."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def curve_on_grid(
    env_steps: np.ndarray, returns: np.ndarray, grid: np.ndarray, window: int = 20
) -> np.ndarray:
    """Rolling mean (over ``window`` episodes) of episode returns, sampled at ``grid`` env steps.

    The value at grid point g is the rolling mean of the episodes that ended at or before g (NaN
    before the first episode ends), so curves of members with different episode boundaries can be
    averaged and banded on a common x-axis.
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
    out = np.where(pos >= 0, rolling[np.clip(pos, 0, None)], np.nan)
    return out


def group_curves(
    episodes: Sequence[Mapping[str, Any]],
    labels: Mapping[int, str],
    n_points: int = 200,
    window: int = 20,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-label stacks of member curves on a shared env-step grid: ``grid, {label: [S, G]}``."""
    max_step = max((e["env_step"] for e in episodes), default=1)
    grid = np.linspace(0, max_step, n_points)
    by_label: dict[str, list[np.ndarray]] = {}
    for member, label in labels.items():
        eps = [e for e in episodes if e["member"] == member]
        steps = np.array([e["env_step"] for e in eps])
        rets = np.array([e["return"] for e in eps])
        by_label.setdefault(label, []).append(curve_on_grid(steps, rets, grid, window))
    return grid, {k: np.stack(v) for k, v in by_label.items()}


def _band(ax, grid: np.ndarray, curves: np.ndarray, label: str, color=None) -> None:
    """Median over seeds with the interquartile range as a band (one statistic family, so the
    line always lies inside its band; a mean can leave the IQR with few seeds)."""
    with warnings.catch_warnings():  # all-NaN columns before the first episode ends
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mid = np.nanmedian(curves, axis=0)
        lo = np.nanpercentile(curves, 25, axis=0)
        hi = np.nanpercentile(curves, 75, axis=0)
    n = curves.shape[0]
    text = f"{label} (median of {n} seeds, band: IQR)" if n > 1 else f"{label} (1 seed)"
    (line,) = ax.plot(grid, mid, label=text, color=color)
    if n > 1:
        ax.fill_between(grid, lo, hi, alpha=0.25, color=line.get_color(), linewidth=0)


def plot_lifelong(
    path: str | os.PathLike,
    episodes: Sequence[Mapping[str, Any]],
    labels: Mapping[int, str],
    boundaries: Sequence[int] = (),
    task_names: Sequence[str] | None = None,
    title: str = "lifelong learning",
    threshold: float | None = None,
    window: int = 20,
) -> Path:
    """Lifelong-learning curve: rolling return vs env step, the median over seeds per label with
    its IQR band, shift/task boundaries as dashed vertical lines with each task's name."""
    plt = _plt()
    grid, curves = group_curves(episodes, labels, window=window)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for label, c in curves.items():
        _band(ax, grid, c, label)
    if threshold is not None:
        ax.axhline(threshold, color="tab:green", ls=":", lw=1, label=f"threshold {threshold:g}")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + 0.08 * (hi - lo))  # room for the task names
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
    ax.set_xlabel("env steps (per seed, summed over its parallel envs)")
    ax.set_ylabel(f"episode return (rolling mean of {window} episodes)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return _save(plt, fig, path)


def plot_rules_side_by_side(
    path: str | os.PathLike,
    episodes: Sequence[Mapping[str, Any]],
    labels: Mapping[int, str],
    boundaries: Sequence[int] = (),
    window: int = 20,
) -> Path:
    """One panel per label (e.g. learning rule), same axes, median and IQR band over seeds."""
    plt = _plt()
    grid, curves = group_curves(episodes, labels, window=window)
    n = max(len(curves), 1)
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3.6), sharey=True, squeeze=False)
    for ax, (label, c) in zip(axes[0], curves.items(), strict=False):
        _band(ax, grid, c, label)
        for b in boundaries:
            ax.axvline(b, color="k", ls="--", lw=0.8, alpha=0.6)
        n_seeds = c.shape[0]
        ax.set_title(f"{label}: median of {n_seeds}, band IQR" if n_seeds > 1 else label)
        ax.set_xlabel("env steps (per seed)")
    axes[0][0].set_ylabel(f"episode return (rolling mean of {window})")
    return _save(plt, fig, path)


def plot_return_vs_energy(
    path: str | os.PathLike,
    points: Sequence[Mapping[str, Any]],
    xlabel: str = "energy per env step (J)",
    x: str = "energy_per_step_j",
) -> Path:
    """Scatter of final return against energy per env step (or another cost ``x``, e.g.
    ``synops_per_step`` for a chip without an energy model); one point per member, coloured by
    label, with each label's median marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    labels = list(dict.fromkeys(p["label"] for p in points))  # first-seen order, as the panels
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
    if points and all((p[x] or 0) > 0 for p in points):
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("final return (mean of the last episodes)")
    ax.set_title("return vs cost per env step (X: median)", fontsize=9)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def plot_raster(
    path: str | os.PathLike, spikes: np.ndarray, v: np.ndarray | None, dt_ms: float = 1.0
) -> Path:
    """Spike raster [T, N] (and optionally a few membrane traces [T, N]) of one network."""
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
    return _save(plt, fig, path)
