"""Smoke tests of the benchmark suite: the throughput agreement check and the one-command runner.

The throughput benchmark is only meaningful if neurorl's reference agent and the numpy host-loop
agent compute the same thing; these tests check that agreement at a tiny size (and that a wrong
numpy model is caught), and that ``run_all --quick --only throughput`` writes its JSON and the
report. No timing is asserted.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from neurorl.errors import ConfigError
from tests.bench_modules import BENCH, load_benchmark


@pytest.fixture(scope="module")
def run_all():
    return load_benchmark("run_all")


@pytest.fixture(scope="module")
def throughput(run_all):
    # the module object run_all will call, so its compiled functions are shared with that test
    return run_all.load_benchmark("throughput")


def test_reference_agent_agrees_with_numpy_host_loop(throughput):
    n = throughput.QUICK_AGREEMENT_STEPS  # the quick run's size: its compiled check is reused
    res = throughput.check_agreement(n_steps=n, seed=3)
    assert res["agree"], res
    assert res["steps_equal"] == n
    # the agent really spikes in every layer, so equal counts mean something
    assert all(c > 0 for c in res["numpy_spikes_per_layer"])
    assert res["spikes_per_layer"] == res["numpy_spikes_per_layer"]
    assert res["max_abs_w1_diff"] < 1e-6 and res["max_abs_w2_diff"] < 1e-6


def test_wrong_numpy_model_is_caught(throughput):
    # membrane decay 0.95 instead of snnTorch's beta = 0.9: the check must report disagreement
    res = throughput.check_agreement(
        n_steps=throughput.QUICK_AGREEMENT_STEPS, seed=3,
        numpy_overrides={"tau_mem": -1.0 / np.log(0.95)},
    )
    assert not res["agree"]
    assert res["first_mismatch"] is not None


def test_throughput_has_no_model_code_of_its_own(throughput):
    # the timed path is make_train; the numpy host loop is the only implementation in the file
    src = (BENCH / "throughput.py").read_text()
    for name in ("get_neuron", "LIFParams", "RULES[", "lax.scan(step", "shard_map"):
        assert name not in src, name


def test_numpy_host_loop_runs_core_neurons_lif_in_numpy(throughput, monkeypatch):
    """The baseline's neurons are core/neurons.py's LIF equations under numpy (no copy of them):
    every substep of every layer goes through ``_lif_core`` with ``xp=numpy``, on numpy arrays."""
    from neurorl.core import neurons

    calls = []
    core = neurons._lif_core

    def spy(params, state, drive, adaptive, xp=None):
        calls.append((xp, type(drive)))
        return core(params, state, drive, adaptive, xp=xp)

    monkeypatch.setattr(neurons, "_lif_core", spy)
    rng = np.random.default_rng(0)
    agent = throughput.NumpyAgent(rng.uniform(0, 0.15, (40, 128)), rng.uniform(0, 0.04, (128, 2)))
    _, counts = agent.act(np.zeros(4, np.float32))
    assert len(calls) == 3 * throughput.K
    assert all(xp is np and t is np.ndarray for xp, t in calls)
    assert counts[0].sum() > 0


def test_learner_timing_runs_in_a_fresh_interpreter(throughput):
    res = throughput.time_learners(sys.executable, n_envs=2, n_seeds=2, substeps=2, n_steps=64,
                                   repeats=1, agents=("rstdp",))
    row = res["rows"]["rstdp"]
    assert row["steps_per_s"] > 0 and row["env_steps_per_seed"] == 64
    assert Path(res["neurorl"]).resolve() == (BENCH.parent / "neurorl").resolve()


@pytest.mark.slow
def test_run_all_quick_only_throughput_writes_json(run_all, throughput, tmp_path):
    status = run_all.main(["--quick", "--only", "throughput", "--out", str(tmp_path)])
    assert status["throughput"]["status"] == "ok", status
    result = json.loads((tmp_path / "throughput.json").read_text())
    assert result["agreement"]["agree"]
    assert [r["agents"] for r in result["rows"]] == [1, 64]
    assert all(r["train_steps_per_s"] > 0 and r["numpy_steps_per_s"] > 0 for r in result["rows"])
    report = (tmp_path / "REPORT.md").read_text()
    assert "Machine:" in report and "Reference spiking agent" in report


def test_run_all_unknown_benchmark_names_the_closest(run_all, tmp_path):
    with pytest.raises(ConfigError, match="throughput"):
        run_all.main(["--quick", "--only", "througput", "--out", str(tmp_path)])


def test_run_all_reuses_learning_results_and_quick_writes_elsewhere(run_all, tmp_path):
    # learning is never rerun by the suite: its results are copied and marked "reused"
    status = run_all.main(["--quick", "--only", "learning", "--out", str(tmp_path)])
    if (run_all.RESULTS / "learning.json").exists():
        assert status["learning"]["status"] == "reused"
        assert (tmp_path / "learning.json").read_text() == (
            run_all.RESULTS / "learning.json"
        ).read_text()
        assert "reused" in (tmp_path / "REPORT.md").read_text()
    else:
        assert status["learning"]["status"] == "skipped"
    # subprocess benchmarks get the suite's budget explicitly (distal reward: the paper's hour,
    # for the 4 seeds of the committed table, so the suite does not overwrite it with fewer)
    full = run_all.SUITE_ARGS["distal_reward"]["full"]
    assert full[full.index("--seconds") + 1] == "3600"
    seeds = full[full.index("--seeds") + 1 : full.index("--jobs")]
    assert seeds == ["0", "1", "2", "3"]


@pytest.fixture(scope="module")
def robustness(run_all):
    return run_all.load_benchmark("robustness")


def test_frozen_evaluation_conditions(robustness):
    import jax

    from neurorl.envs import make
    from neurorl.envs import shifts as S
    from neurorl.experiment.train import TrainConfig, make_train

    train = make_train(
        TrainConfig(
            "CartPole-v1",
            "eprop_ac",
            {"n_rec": 8, "n_rf": 3},
            n_steps=64,
            n_envs=4,
            substeps=2,
            n_seeds=2,
        )
    )
    states = train.init(jax.random.key(0)).agent_state
    _, base = make("CartPole-v1")
    noise = S.Shifts(obs=(S.GaussianNoise(S.constant(0.0)),))
    loud = S.Shifts(obs=(S.GaussianNoise(S.constant(1.0)),))
    conds = robustness.condition_params([base] * 3, [noise, noise, loud])
    mean_ret, n_ep = jax.device_get(
        robustness.make_evaluate(train, 300)(states, conds, jax.random.key(1))
    )
    assert mean_ret.shape == (3, 2) and n_ep.shape == (3, 2)
    # same seeds and keys: a repeated condition gives the same returns; heavy noise changes them
    np.testing.assert_array_equal(mean_ret[0], mean_ret[1])
    assert not np.array_equal(mean_ret[0], mean_ret[2])
    # CartPole returns are episode lengths: completed episodes fit in 300 steps x 4 envs
    assert np.all(n_ep > 0) and np.all(mean_ret >= 1) and np.all(mean_ret * n_ep <= 300 * 4)
