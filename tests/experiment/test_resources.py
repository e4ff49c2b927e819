"""The memory estimate: exact sizes from jax.eval_shape, the n_rec probe, and the refusal."""

import dataclasses

import jax
import numpy as np
import pytest

from neurorl.errors import ConfigError
from neurorl.experiment import resources as R
from neurorl.experiment.train import TrainConfig, make_train

TC = TrainConfig(n_steps=64, n_envs=4, substeps=2, n_seeds=2,
                 agent_kwargs={"n_rec": 8, "n_rf": 3})


def test_state_and_metrics_sizes_are_those_of_the_real_arrays():
    est = R.estimate_memory(TC, 32)
    train = make_train(TC)
    rs = train.init(jax.vmap(jax.random.key)(np.arange(2, dtype=np.uint32)))
    rs2, m = train.run_chunk(rs, 32)

    def nbytes(tree):
        tot = 0
        for x in jax.tree.leaves(tree):
            if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                x = jax.random.key_data(x)
            tot += np.asarray(x).nbytes
        return tot

    assert est.state_bytes == nbytes(rs) == nbytes(rs2)
    assert est.metrics_bytes == nbytes(m)
    assert est.peak_bytes == 3 * est.state_bytes + 2 * est.metrics_bytes


@pytest.mark.parametrize("agent", ["eprop_ac", "bptt_ac"])
def test_n_rec_probe_extrapolates_exactly(agent, monkeypatch):
    tc = dataclasses.replace(TC, agent=agent, n_steps=256, agent_kwargs={"n_rec": 300,
                                                                          "n_rf": 3})
    direct = R.estimate_memory(tc)  # 300 <= PROBE_ABOVE: measured at n_rec = 300
    monkeypatch.setattr(R, "PROBE_ABOVE", 100)  # now extrapolated from n_rec 16, 32, 64
    probed = R.estimate_memory(tc)
    assert probed.state_bytes == direct.state_bytes


def test_a_run_that_cannot_fit_is_refused_with_the_numbers_before_building():
    tc = dataclasses.replace(TC, agent_kwargs={"n_rec": 200_000})
    with pytest.raises(ConfigError) as e:
        R.check_memory(tc, 32, names={"n_rec": "agent.hyper.n_rec"})
    msg = str(e.value)
    assert "agent.hyper.n_rec=200000" in msg and "GiB" in msg and "runner state" in msg
    # the state alone is at least the e-prop trace [n_envs, n_pre, n_rec] float32 per seed
    assert e.value.allowed and float(msg.split("needs about ")[1].split(" GiB")[0]) > (
        3 * 2 * 4 * 200_000**2 * 4 / 2**30
    )
