"""Run the benchmark suite and write ``benchmarks/results/REPORT.md``.

Usage (from the repository root)::

    .venv/bin/python benchmarks/run_all.py             # everything (under an hour on 2 CPU cores)
    .venv/bin/python benchmarks/run_all.py --quick     # smoke run, minutes
    .venv/bin/python benchmarks/run_all.py --quick --only throughput

Every benchmark module present in ``benchmarks/`` from :data:`SUITE` runs in turn. A module with
``main(quick: bool) -> dict`` is imported and called in this process (``out=`` is passed too when
its ``main`` takes it); any other module runs as a subprocess (``--quick`` added in quick mode when
the module accepts it). A failing benchmark is recorded in the report and the suite goes on; the
exit status is 1 if any failed. The report (machine description, a status table and each
benchmark's markdown) is assembled by :mod:`report` from ``results/*.json`` / ``*.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"

# benchmark modules in run order (cheap, foundational ones first)
SUITE = (
    "cuba", "envs_throughput", "throughput", "learning", "distal_reward", "hardware",
    "robustness", "continual",
)


def _load(name: str, path: Path):
    """Import ``path`` as ``_bench_<name>`` (once per process: compiled functions are reused)."""
    if f"_bench_{name}" in sys.modules:
        return sys.modules[f"_bench_{name}"]
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def available() -> dict[str, Path]:
    """The suite's benchmark modules present in ``benchmarks/`` (name -> path), in run order."""
    return {n: HERE / f"{n}.py" for n in SUITE if (HERE / f"{n}.py").exists()}


def run_one(name: str, path: Path, quick: bool, out: Path) -> dict[str, Any]:
    """Run one benchmark; returns ``{"status", "seconds", "mode", "error"?}``."""
    source = path.read_text()
    t0 = time.perf_counter()
    if "def main(quick" in source:
        try:
            module = _load(name, path)
            kwargs: dict[str, Any] = {"quick": quick}
            if "out" in inspect.signature(module.main).parameters:
                kwargs["out"] = out
            module.main(**kwargs)
            return {"status": "ok", "seconds": time.perf_counter() - t0, "mode": "in-process"}
        except Exception as err:  # the suite goes on; the report shows what failed
            traceback.print_exc()
            return {"status": "failed", "seconds": time.perf_counter() - t0,
                    "mode": "in-process", "error": f"{type(err).__name__}: {err}"}
    cmd = [sys.executable, str(path)]
    note = ""
    if quick:
        if "--quick" in source:
            cmd.append("--quick")
        else:
            note = "no --quick option: ran in full"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    proc = subprocess.run(cmd, cwd=ROOT, env=env)
    result = {"status": "ok" if proc.returncode == 0 else "failed",
              "seconds": time.perf_counter() - t0, "mode": "subprocess", "note": note}
    if proc.returncode != 0:
        result["error"] = f"exit status {proc.returncode}"
    return result


def main(argv: list[str] | None = None) -> dict[str, dict]:
    """Parse ``argv``, run the selected benchmarks, write REPORT.md; returns the status table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: minutes, not an hour")
    ap.add_argument("--only", nargs="+", metavar="NAME", help=f"a subset of {list(SUITE)}")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = ap.parse_args(argv)

    present = available()
    names = list(present)
    if args.only:
        from neurorl.errors import lookup

        registry = {n: n for n in SUITE}
        # a typo -> ConfigError naming the closest benchmark
        args.only = [lookup(registry, n, "benchmark", field="run_all --only") for n in args.only]
        names = [n for n in names if n in args.only]
    status: dict[str, dict] = {}
    for n in SUITE:
        if args.only and n not in args.only:
            continue
        if n not in present:
            status[n] = {"status": "not present", "seconds": None}
    for n in names:
        print(f"=== {n} ({'quick' if args.quick else 'full'}) ===", flush=True)
        status[n] = run_one(n, present[n], args.quick, args.out)
        print(f"=== {n}: {status[n]['status']} in {status[n]['seconds']:.0f} s ===", flush=True)
    status = {n: status[n] for n in SUITE if n in status}

    report = _load("report", HERE / "report.py")
    machine = _load("common", HERE / "common.py").machine() if (HERE / "common.py").exists() \
        else None
    path = report.write_report(args.out, machine=machine, status=status, quick=args.quick)
    print(f"wrote {path}")
    return status


if __name__ == "__main__":
    table = main()
    sys.exit(1 if any(s["status"] == "failed" for s in table.values()) else 0)
