"""make_train: one jitted scan, chunking equals the full run, no recompile, errors, learning."""

import dataclasses

import jax
import numpy as np
import pytest

from neurorl.errors import ConfigError
from neurorl.experiment.train import TrainConfig, make_train

TINY = dict(n_rec=8, n_rf=3)


def test_train_equals_chunks_shapes_and_no_recompile():
    cfg = TrainConfig(agent="eprop_ac", agent_kwargs=TINY, n_steps=40, n_envs=2, substeps=2,
                      n_seeds=2)
    train = make_train(cfg)
    out = train(jax.random.key(0))
    m = out["metrics"]
    assert m["reward"].shape == (20, 2, 2) and m["done"].shape == (20, 2, 2)
    assert m["weight_norm"].shape == (20, 2) and m["spikes"].shape == (20, 2, 2)
    rs = train.init(jax.random.key(0))
    rs, m1 = train.run_chunk(rs, 20)
    rs, m2 = train.run_chunk(rs, 20)
    for k in m:
        np.testing.assert_allclose(np.concatenate([m1[k], m2[k]]), m[k], rtol=1e-5, atol=1e-5)
    # episode returns are the sums of rewards since the last episode end
    train(jax.random.key(1))  # another key: no recompilation
    assert train.jitted._cache_size() == 1
    assert np.all(np.asarray(m["reward"]) == 1.0)  # CartPole: +1 each step


def test_batch_update_agent_runs_in_windows():
    cfg = TrainConfig(agent="bptt_ac", agent_kwargs=dict(TINY, rollout=4, epochs=1,
                                                         n_minibatches=1),
                      n_steps=16, n_envs=2, substeps=2)
    train = make_train(cfg)
    out = train(jax.random.key(0))
    assert out["metrics"]["reward"].shape == (8, 1, 2)
    w0 = train.agent.weights(train.agent.init(jax.random.key(0)))["recurrent"]
    assert out["runner_state"].agent_state.params["w"]["recurrent"].shape == (1,) + w0.shape
    with pytest.raises(ConfigError, match="n_steps"):
        make_train(TrainConfig(agent="bptt_ac", agent_kwargs=dict(TINY, rollout=4),
                               n_steps=12, n_envs=2))


def test_config_errors_before_any_trace():
    with pytest.raises(ConfigError, match="rstdp"):
        make_train(TrainConfig(agent="rstpd"))
    with pytest.raises(ConfigError, match="CartPole-v1"):
        make_train(TrainConfig(env_id="CartPol-v1"))
    with pytest.raises(ConfigError, match="n_envs"):
        make_train(TrainConfig(n_steps=10, n_envs=3))
    with pytest.raises(ConfigError, match="n_rec"):
        make_train(TrainConfig(agent_kwargs={"nrec": 3}))


@pytest.mark.parametrize("kw, suggestion", [
    ({"n_step": 1000}, "n_steps"),  # the newcomer's
    ({"nenvs": 4}, "n_envs"),
    ({"seeds": 3}, "n_seeds"),
    ({"xyz": 1}, None),
])
def test_an_unknown_train_config_keyword_is_a_config_error(kw, suggestion):
    """Was Python's bare `TypeError: __init__() got an unexpected keyword argument`; still a
    TypeError for code that catches one."""
    (k, v), = kw.items()
    for make in (lambda: TrainConfig(agent="rstdp", **kw),
                 lambda: dataclasses.replace(TrainConfig(), **kw)):
        with pytest.raises(ConfigError) as e:
            make()
        assert isinstance(e.value, TypeError)
        assert e.value.field == f"TrainConfig.{k}" and e.value.value == v
        assert "n_steps" in e.value.allowed and "agent_kwargs" in e.value.allowed
        assert e.value.suggestion == suggestion
    assert TrainConfig(n_steps=16).n_steps == 16


def _episode_returns(m, seed=0):
    d = np.asarray(m["done"][:, seed]).reshape(-1)
    return np.asarray(m["episode_return"][:, seed]).reshape(-1)[d]


@pytest.mark.slow
def test_eprop_learns_cartpole_quickly():
    cfg = TrainConfig(agent="eprop_ac", agent_kwargs=dict(n_rec=32), n_steps=24_000, n_envs=8,
                      substeps=5, n_seeds=1)
    m = make_train(cfg)(jax.random.key(100))["metrics"]
    r = _episode_returns(m)
    first, last = r[:50].mean(), r[-20:].mean()
    assert last > 2.5 * first and last > 60, (first, last)
