"""Run the benchmark suite and write ``benchmarks/results/REPORT.md``.

Usage (from the repository root)::

    .venv/bin/python benchmarks/run_all.py             # everything (under an hour on 2 CPU cores)
    .venv/bin/python benchmarks/run_all.py --quick     # smoke run, minutes -> results/quick/
    .venv/bin/python benchmarks/run_all.py --quick --only throughput

Every benchmark module present in ``benchmarks/`` from :data:`SUITE` runs in turn. A module with
``main(quick: bool) -> dict`` is imported and called in this process (``out=`` is passed too when
its ``main`` takes it); any other module runs as a subprocess with the suite's budget for it
(:data:`SUITE_ARGS`; otherwise ``--quick`` in quick mode when the module accepts it), ``--out``
when it accepts one, and ``NEURORL_BENCH_RESULTS`` set for ``common.write_results``. A failing
benchmark is recorded in the report and the suite goes on; the exit status is 1 if any failed.
The report (machine description, a status table and each benchmark's markdown) is assembled by
:mod:`report` from ``results/*.json`` / ``*.md``.

Suite budgets (the full suite takes a few hours on the 2-core CPU; ``--only`` picks some):

* ``learning``, ``codesign``, ``bellec`` and ``scale`` are **not rerun** (:data:`REUSE` says
  why: hours of training, a hand-written reading, or a quiet machine with NEST); the suite reuses
  their ``results/<name>.{json,md}`` (copied when ``--out`` is another folder) and marks the row
  "reused". Without them it is skipped.
* ``distal_reward`` simulates the paper's 3,600 s of model time for seeds 0-3 in 2 processes
  (the library's N-HAL model beside the standalone event-driven numpy reference, the committed
  4-seed table); 10 s in quick mode.
* ``cuba`` runs with the interpreter of ``.venv-bench`` when this one lacks Brian2 (Brian2 needs
  numpy < 2.4; see benchmarks/README.md); quick mode simulates 200 ms instead of 1 s.
* ``hardware``, ``robustness``, ``continual``, ``event_data``, ``onchip`` and the others
  document their budgets in their docstrings (``event_data`` runs on generated files in the
  datasets' real formats unless given ``--root`` with the real downloads).

Quick mode writes to ``results/quick/`` unless ``--out`` says otherwise, so a smoke run never
overwrites the reported results.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import shutil
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
    "cuba",
    "envs_throughput",
    "throughput",
    "learning",
    "distal_reward",
    "hardware",
    "robustness",
    "continual",
    "event_data",
    "gym_single_env",
    "bridged_envs",
    "numeric_health",
    "custom_agent",
    "onchip",
    "codesign",
    "bellec",
    "scale",
)
# extra command-line arguments of subprocess benchmarks per mode (the suite's budget for them)
SUITE_ARGS: dict[str, dict[str, list[str]]] = {
    "cuba": {
        "quick": ["--duration-ms", "200", "--copies", "4", "--vmap-duration-ms", "100"],
        "full": [],
    },
    "custom_agent": {"quick": ["--steps", "20000"], "full": []},
    "numeric_health": {"quick": ["--steps", "8192"], "full": []},
    "distal_reward": {
        "quick": ["--seconds", "10"],
        "full": ["--seconds", "3600", "--seeds", "0", "1", "2", "3", "--jobs", "2"],
    },
}
# benchmarks too long for the suite: their results in RESULTS are reused, never rerun here
REUSE = {
    "learning": "benchmarks/learning.py takes hours by itself (12 cases x 5 seeds)",
    "codesign": "the sweep takes about an hour and its md carries a hand-written reading",
    "bellec": "Bellec et al. 2020's two tasks take about 45 min on 2 cores",
    "scale": "needs NEST, a quiet machine and 20 GiB free for the 100x NEST rows (~25 min)",
}
# separate interpreters for benchmarks whose baseline needs other packages
VENVS = {"cuba": (ROOT / ".venv-bench" / "bin" / "python", "brian2")}


def load_benchmark(name: str, path: Path | None = None):
    """Import ``benchmarks/<name>.py`` (or ``path``) as module ``_bench_<name>``.

    Once per process: a second call returns the same module, so its compiled functions are
    reused (the suite runner and the tests that call a benchmark's functions share them). The
    module is registered in ``sys.modules`` before it runs (its dataclasses look it up there).
    The tests import this function (``tests/bench_modules.py``); it is the only such loader.
    """
    if f"_bench_{name}" in sys.modules:
        return sys.modules[f"_bench_{name}"]
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path or HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def available() -> dict[str, Path]:
    """The suite's benchmark modules present in ``benchmarks/`` (name -> path), in run order."""
    return {n: HERE / f"{n}.py" for n in SUITE if (HERE / f"{n}.py").exists()}


def reuse(name: str, out: Path) -> dict[str, Any]:
    """Reuse ``RESULTS/<name>.{json,md}`` (copied into ``out`` when it is another folder)."""
    src = RESULTS / f"{name}.json"
    if not src.exists():
        return {
            "status": "skipped",
            "seconds": None,
            "note": f"no {src.name} to reuse: run benchmarks/{name}.py ({REUSE[name]})",
        }
    if out.resolve() != RESULTS.resolve():
        out.mkdir(parents=True, exist_ok=True)
        for ext in ("json", "md"):
            if (RESULTS / f"{name}.{ext}").exists():
                shutil.copyfile(RESULTS / f"{name}.{ext}", out / f"{name}.{ext}")
    return {
        "status": "reused",
        "seconds": 0.0,
        "mode": "reused",
        "note": f"not rerun, {REUSE[name]}; results of benchmarks/{name}.py from "
        f"benchmarks/results/{name}.json",
    }


def interpreter(name: str) -> str:
    """The Python to run a subprocess benchmark with (a separate venv for extra baselines)."""
    if name in VENVS:
        venv, module = VENVS[name]
        if importlib.util.find_spec(module) is None and venv.exists():
            return str(venv)
    return sys.executable


def run_one(name: str, path: Path, quick: bool, out: Path) -> dict[str, Any]:
    """Run one benchmark; returns ``{"status", "seconds", "mode", "error"?, "note"?}``."""
    if name in REUSE:
        return reuse(name, out)
    source = path.read_text()
    t0 = time.perf_counter()
    if "def main(quick" in source:
        try:
            module = load_benchmark(name, path)
            kwargs: dict[str, Any] = {"quick": quick}
            if "out" in inspect.signature(module.main).parameters:
                kwargs["out"] = out
            module.main(**kwargs)
            return {"status": "ok", "seconds": time.perf_counter() - t0, "mode": "in-process"}
        except Exception as err:  # the suite goes on; the report shows what failed
            traceback.print_exc()
            return {
                "status": "failed",
                "seconds": time.perf_counter() - t0,
                "mode": "in-process",
                "error": f"{type(err).__name__}: {err}",
            }
    cmd = [interpreter(name), str(path)]
    note = ""
    extra = SUITE_ARGS.get(name, {}).get("quick" if quick else "full")
    if extra is not None:
        cmd += extra
        note = f"suite budget: {' '.join(extra)}" if extra else ""
    elif quick:
        if "--quick" in source:
            cmd.append("--quick")
        else:
            note = "no --quick option: ran in full"
    if '"--out"' in source:
        cmd += ["--out", str(out)]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        NEURORL_BENCH_RESULTS=str(out),
    )
    proc = subprocess.run(cmd, cwd=ROOT, env=env)
    result = {
        "status": "ok" if proc.returncode == 0 else "failed",
        "seconds": time.perf_counter() - t0,
        "mode": "subprocess",
        "note": note,
    }
    if proc.returncode != 0:
        result["error"] = f"exit status {proc.returncode}"
    return result


def main(argv: list[str] | None = None) -> dict[str, dict]:
    """Parse ``argv``, run the selected benchmarks, write REPORT.md; returns the status table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: minutes, not an hour")
    ap.add_argument("--only", nargs="+", metavar="NAME", help=f"a subset of {list(SUITE)}")
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results folder (default results/, quick mode results/quick/)",
    )
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = RESULTS / "quick" if args.quick else RESULTS

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
        sec = status[n]["seconds"]
        print(f"=== {n}: {status[n]['status']} in {sec or 0:.0f} s ===", flush=True)
    status = {n: status[n] for n in SUITE if n in status}

    report = load_benchmark("report")
    machine = (
        load_benchmark("common").machine() if (HERE / "common.py").exists() else None
    )
    path = report.write_report(args.out, machine=machine, status=status, quick=args.quick)
    print(f"wrote {path}")
    return status


if __name__ == "__main__":
    table = main()
    sys.exit(1 if any(s["status"] == "failed" for s in table.values()) else 0)
