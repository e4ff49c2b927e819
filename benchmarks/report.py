"""Assemble ``benchmarks/results/REPORT.md`` from the per-benchmark results.

Every benchmark writes ``results/<name>.json`` (everything, with the machine it ran on) and
usually ``results/<name>.md`` (its table). The report puts the machine description first, then a
status line per benchmark of this run (ok / failed / not present, with seconds), then each
benchmark's markdown in suite order (headings demoted one level). A benchmark that wrote JSON
but no markdown gets a table built from its ``rows``.

Usage::

    .venv/bin/python benchmarks/report.py [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

# order of sections in the report (others follow alphabetically)
SUITE_ORDER = (
    "cuba", "envs_throughput", "throughput", "learning", "distal_reward", "hardware",
    "robustness", "continual",
)


def _demote(md: str) -> str:
    """Push every markdown heading one level down so the report keeps a single title."""
    out = []
    for line in md.splitlines():
        out.append("#" + line if line.startswith("#") else line)
    return "\n".join(out).strip() + "\n"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return "..."
    return str(v)


def rows_table(rows: list[dict[str, Any]]) -> str:
    """A markdown table of the scalar columns of ``rows`` (list of dicts)."""
    if not rows:
        return ""
    keys = [k for k in rows[0] if not isinstance(rows[0][k], (dict, list))]
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    out += ["| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(out) + "\n"


def machine_line(info: dict[str, Any]) -> str:
    """One line describing the machine from a ``common.machine()`` dict (any extra keys listed)."""
    cpu = info.get("cpu") or info.get("cpu_model") or "unknown CPU"
    cores = info.get("usable_cores")
    total = info.get("logical_cores") or info.get("cpu_count")
    parts = [f"{cpu}, {cores} usable cores of {total}"]
    for key in ("platform", "python", "jax", "numpy", "gymnasium", "jax_devices",
                "loadavg_1_5_15"):
        if key in info:
            parts.append(f"{key} {info[key]}")
    return "; ".join(parts)


def _names(results: Path) -> list[str]:
    found = {p.stem for p in results.glob("*.json")}
    ordered = [n for n in SUITE_ORDER if n in found]
    return ordered + sorted(found - set(ordered))


def build_report(results: Path | str = RESULTS, machine: dict | None = None,
                 status: dict[str, dict] | None = None, quick: bool | None = None) -> str:
    """The report's markdown.

    Args:
        results: folder with ``<name>.json`` / ``<name>.md``.
        machine: machine description of this run (default: the first JSON's ``machine``).
        status: per benchmark ``{"status": "ok"|"failed"|..., "seconds": float, "error": str}``
            from the suite runner.
        quick: whether the run was the quick (smoke) mode.

    Returns:
        Markdown text.
    """
    results = Path(results)
    names = _names(results)
    data = {}
    for n in names:
        try:
            data[n] = json.loads((results / f"{n}.json").read_text())
        except (OSError, json.JSONDecodeError) as err:
            data[n] = {"error": f"unreadable JSON: {err}"}
    if machine is None:
        machine = next((d["machine"] for d in data.values() if isinstance(d.get("machine"), dict)),
                       {})
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# neurorl benchmark report", "", f"Generated {now}"
             + ("" if quick is None else (" (quick mode)" if quick else " (full mode)")) + ".", "",
             f"Machine: {machine_line(machine)}.", ""]
    if status:
        lines += ["| benchmark | status | seconds | note |", "|---|---|---:|---|"]
        for n, st in status.items():
            note = str(st.get("error", "") or st.get("note", "")).replace("\n", " ")[:200]
            sec = st.get("seconds")
            lines.append(f"| {n} | {st.get('status')} | "
                         f"{'' if sec is None else f'{sec:.0f}'} | {note} |")
        lines.append("")
    for n in names:
        md = results / f"{n}.md"
        text = md.read_text() if md.exists() else ""
        if not text.lstrip().startswith("#"):  # a table of its own has its own title
            lines += [f"## {n}", ""]
        if text:
            lines.append(_demote(text))
        elif "rows" in data[n]:
            lines.append(rows_table(data[n]["rows"]))
        else:
            lines.append(f"(see `{n}.json`)\n")
    return "\n".join(lines).rstrip() + "\n"


def write_report(results: Path | str = RESULTS, **kwargs: Any) -> Path:
    """Write ``REPORT.md`` into ``results`` and return its path."""
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    path = results / "REPORT.md"
    path.write_text(build_report(results, **kwargs))
    return path


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=RESULTS)
    print(write_report(ap.parse_args().out))
