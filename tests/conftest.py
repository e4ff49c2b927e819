"""Strict JAX settings for every test: CPU only, rank promotion raises, neurorl warnings are
errors. One JAX compilation cache per test session, shared by the xdist workers and the
subprocesses the tests start, so a program compiled once (the same tiny agent trained by several
tests, a CLI run and its resume) is not compiled again; it starts empty every session (nothing
carries over between runs) and never changes what a compiled program computes; it keeps only
programs that took over 0.5 s to compile. XLA's backend compiles without its expensive
optimisations (compile time dominates; see below). Files with
``slow`` tests are handed out first, so that under ``-n 2`` no worker is left alone with a long
test at the end."""

import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
# set by the controller before it starts the xdist workers (they inherit it); a user's own cache
# directory is used as it is and kept
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWN_CACHE:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="neurorl-test-jax-cache-")
    os.environ["NEURORL_TEST_JAX_CACHE_OWNER"] = str(os.getpid())
# only programs that took a while to compile: every cache write (under the size bound below) lists
# and stats the whole directory under the lock, so caching each of the thousands of small eager
# primitives made the writes quadratic in the session and held up the other worker (a 25 s test
# spent 7 s on them); those recompile faster than they are written and read
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
# XLA's LLVM backend at -O0 without its expensive passes (jax_disable_most_optimizations): most
# of the suite's time is compiling small programs that then run for milliseconds; this cuts the
# CPU time of training-heavy test files by ~25-30% (measured). The HLO passes still run; float32
# roundings may move, which every test tolerates except the chaotic Izhikevich spike count
# (tests/core/test_neurons.py compiles it with the defaults). An environment variable, so the
# tests' subprocesses (CLI runs) compile the same way (eager == jit, resume == uninterrupted)
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
try:  # a size bound makes JAX lock the directory (filelock), so two workers never read a
    import filelock  # noqa: F401  half-written entry
except ImportError:
    pass
else:
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(16 * 2**30))

try:  # pygame before NEST: pygame first imported after NEST 3.10 segfaults in display.init()
    import pygame  # noqa: F401, E402  (neurorl/hardware/pynn.py, _pygame_first)
except ImportError:
    pass

import jax  # noqa: E402

jax.config.update("jax_platforms", "cpu")
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update(
    "jax_persistent_cache_min_compile_time_secs",
    float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
)
if "JAX_COMPILATION_CACHE_MAX_SIZE" in os.environ:
    jax.config.update(
        "jax_compilation_cache_max_size", int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"])
    )


def pytest_collection_modifyitems(config, items):
    """Test files with a ``slow`` test first, those with the fewest tests (a long end-to-end test
    among few) first of all; whole files move, in their own order, so module fixtures are not
    built twice."""
    files: dict[str, list] = {}
    for item in items:
        files.setdefault(item.nodeid.split("::")[0], []).append(item)

    def key(group):
        slow = any(item.get_closest_marker("slow") for item in group)
        return (0, len(group)) if slow else (1, 0)

    items[:] = [item for group in sorted(files.values(), key=key) for item in group]


def pytest_unconfigure(config):
    """The session's cache goes with the process that made it (the controller under xdist)."""
    if _OWN_CACHE and os.environ.get("NEURORL_TEST_JAX_CACHE_OWNER") == str(os.getpid()):
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
