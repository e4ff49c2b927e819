"""The benchmark scripts for the tests: ``benchmarks/`` is imported as a namespace package from
the repository root (as ``tests/test_distal_reward_benchmark.py`` does), and its one loader,
``benchmarks.run_all.load_benchmark``, loads a script as module ``_bench_<name>`` (once per
process, shared with the suite runner)."""

from benchmarks.run_all import HERE as BENCH
from benchmarks.run_all import load_benchmark

__all__ = ["BENCH", "load_benchmark"]
