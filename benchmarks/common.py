"""Shared helpers for benchmarks: describe the machine, write JSON + a markdown table."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

# ``run_all.py --out DIR`` sets NEURORL_BENCH_RESULTS for benchmarks it runs as subprocesses
RESULTS = Path(
    os.environ.get("NEURORL_BENCH_RESULTS") or Path(__file__).resolve().parent / "results"
)


def machine() -> dict[str, Any]:
    """CPU model (from /proc/cpuinfo), core counts, load average, accelerator, Python / jax /
    numpy / gymnasium versions."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }
    try:
        info["loadavg_1_5_15"] = [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        pass
    try:
        import jax
        import numpy as np

        info["jax"] = jax.__version__
        info["jax_backend"] = jax.default_backend()
        info["numpy"] = np.__version__
        info["jax_devices"] = [str(d) for d in jax.devices()]
    except Exception:  # pragma: no cover - benchmarks without jax
        pass
    try:
        from importlib.metadata import version

        info["gymnasium"] = version("gymnasium")
    except Exception:  # gymnasium is optional
        pass
    return info


def provenance() -> dict[str, Any]:
    """The git commit the benchmark ran on and the library files that differed from it."""
    import subprocess

    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = [ln[3:] for ln in git("status", "--porcelain", "--", "neurorl").splitlines()]
    commit = git("rev-parse", "--short", "HEAD").strip()
    return {"commit": commit or None, "neurorl_uncommitted": dirty}


def provenance_line(prov: dict[str, Any]) -> str:
    """:func:`provenance` as one markdown sentence for a results section."""
    dirty = ", ".join(prov["neurorl_uncommitted"]) or "none"
    return f"Code: commit {prov['commit']}; uncommitted library files: {dirty}."


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A GitHub markdown table from a list of dicts with the same keys."""
    if not rows:
        return ""
    keys = list(rows[0])
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |")
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_results(
    name: str,
    result: dict[str, Any],
    rows: list[dict[str, Any]],
    notes: str = "",
    out: Path | str | None = None,
    markdown: str | None = None,
) -> tuple[Path, Path]:
    """Write ``<out>/<name>.json`` (everything) and ``<out>/<name>.md`` (table + machine);
    ``out`` defaults to :data:`RESULTS`. ``markdown``: a benchmark's own report section, written
    as the ``.md`` instead of the generic table of ``rows``."""
    folder = Path(out) if out is not None else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    js = folder / f"{name}.json"
    md = folder / f"{name}.md"
    js.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if markdown is not None:
        md.write_text(markdown)
        return js, md
    m = result.get("machine", {})
    text = [f"# {name}", "", markdown_table(rows), ""]
    if notes:
        text += [notes, ""]
    text += ["Machine: " + ", ".join(f"{k}={v}" for k, v in m.items()), ""]
    md.write_text("\n".join(text))
    return js, md


def record_episodes(returns: list[list[float]], peak: list[float], reach: list[Any], s: int,
                    done: Any, episode_return: Any, step0: int, n_envs: int,
                    threshold: float | None) -> None:
    """Add one seed's finished episodes of a chunk to the online last-100 metric (in place).

    ``done`` and ``episode_return`` are ``[T, n_envs]`` for seed ``s``; an episode ending at
    chunk step ``t`` counts as reached at env step ``step0 + (t + 1) * n_envs``. ``peak[s]`` is the
    best last-100 mean so far and ``reach[s]`` the first env step at which it reached
    ``threshold`` (None until then).
    """
    import numpy as np

    for t, b in zip(*np.nonzero(done), strict=False):
        returns[s].append(float(episode_return[t, b]))
        if len(returns[s]) >= 100:
            m100 = float(np.mean(returns[s][-100:]))
            peak[s] = max(peak[s], m100)
            if threshold is not None and reach[s] is None and m100 >= threshold:
                reach[s] = step0 + (int(t) + 1) * n_envs
