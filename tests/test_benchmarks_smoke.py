"""Smoke tests of the benchmark suite: the throughput agreement check and the one-command runner.

The throughput benchmark is only meaningful if neurorl's reference agent and the numpy host-loop
agent compute the same thing; these tests check that agreement at a tiny size (and that a wrong
numpy model is caught), and that ``run_all --quick --only throughput`` writes its JSON and the
report. No timing is asserted.
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from neurorl.errors import ConfigError

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_test_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run_all():
    return _load("run_all")


@pytest.fixture(scope="module")
def throughput(run_all):
    # the module object run_all will call, so its compiled functions are shared with that test
    return run_all._load("throughput", BENCH / "throughput.py")


def test_reference_agent_agrees_with_numpy_host_loop(throughput):
    n = throughput.QUICK_AGREEMENT_STEPS  # the quick run's size: its compiled check is reused
    res = throughput.check_agreement(n_steps=n, seed=3)
    assert res["agree"], res
    assert res["plain"]["steps_equal"] == res["fused"]["steps_equal"] == n
    # the agent really spikes in every layer, so equal counts mean something
    assert all(c > 0 for c in res["numpy_spikes_per_layer"])
    assert res["plain"]["spikes_per_layer"] == res["numpy_spikes_per_layer"]


def test_wrong_numpy_model_is_caught(throughput):
    # membrane decay 0.95 instead of snnTorch's beta = 0.9: the check must report disagreement
    res = throughput.check_agreement(
        n_steps=throughput.QUICK_AGREEMENT_STEPS, seed=3, numpy_overrides={"beta": 0.95}
    )
    assert not res["agree"]
    assert res["plain"]["first_mismatch"] is not None


@pytest.mark.slow
def test_run_all_quick_only_throughput_writes_json(run_all, throughput, tmp_path):
    status = run_all.main(["--quick", "--only", "throughput", "--out", str(tmp_path)])
    assert status["throughput"]["status"] == "ok", status
    result = json.loads((tmp_path / "throughput.json").read_text())
    assert result["agreement"]["agree"]
    assert [r["agents"] for r in result["rows"]] == [1, 64]
    assert all(r["fused_steps_per_s"] > 0 and r["numpy_steps_per_s"] > 0 for r in result["rows"])
    report = (tmp_path / "REPORT.md").read_text()
    assert "Machine:" in report and "Reference spiking agent" in report


def test_run_all_unknown_benchmark_names_the_closest(run_all, tmp_path):
    with pytest.raises(ConfigError, match="throughput"):
        run_all.main(["--quick", "--only", "througput", "--out", str(tmp_path)])
