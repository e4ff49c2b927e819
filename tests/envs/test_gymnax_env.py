"""gymnax <-> neurorl: gymnax's envs behind neurorl's Environment (same transitions as gymnax's own
step, gymnax's ``done`` split into gymnasium's flags), trained in the jitted runner; our envs in
gymnax's ``GymnaxToGymWrapper``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

gymnax = pytest.importorskip("gymnax")

from neurorl.envs import CartPole, make  # noqa: E402
from neurorl.envs.gymnax_env import to_gymnax  # noqa: E402
from neurorl.errors import ConfigError  # noqa: E402


# gymnax 0.0.x's MinAtar scatters ints into bool arrays (a jax FutureWarning, not ours)
@pytest.mark.filterwarnings("ignore:scatter inputs have incompatible types")
@pytest.mark.parametrize("gid", ["Catch-bsuite", "CartPole-v1", "Breakout-MinAtar"])
def test_gymnax_env_steps_like_gymnax(gid):
    env, params = make(f"gymnax:{gid}")
    theirs, tparams = gymnax.make(gid)
    assert env.id == f"gymnax:{gid}" and env.num_actions == theirs.num_actions
    obs_dim = int(np.prod(theirs.observation_space(tparams).shape))
    assert env.observation_space(params).shape == (obs_dim,)
    key = jax.random.key(0)
    o1, s1 = env.reset_env(key, params)
    o2, s2 = theirs.reset_env(key, tparams)
    np.testing.assert_array_equal(o1, jnp.reshape(o2, (-1,)).astype(jnp.float32))
    step1, step2 = jax.jit(env.step_env), jax.jit(theirs.step_env)
    rng = np.random.default_rng(0)
    ends = 0
    for t in range(120):
        k = jax.random.fold_in(key, t)
        a = int(rng.integers(theirs.num_actions))
        o1, s1, r1, te, tr, _ = step1(k, s1, a, params)
        o2, s2, r2, d, _ = step2(k, s2, a, tparams)
        np.testing.assert_array_equal(np.asarray(o1), np.asarray(o2, np.float32).reshape(-1))
        assert float(r1) == float(r2) and bool(te | tr) == bool(d) and not bool(te & tr)
        if bool(d):
            ends += 1
            o1, s1 = env.reset_env(k, params)
            o2, s2 = theirs.reset_env(k, tparams)
    assert ends >= 1


def test_gymnax_time_limit_is_truncation():
    env, params = make("gymnax:CartPole-v1", max_steps_in_episode=5)
    s = env.reset_env(jax.random.key(0), params)[1]
    flags = []
    for t in range(5):
        _, s, _, te, tr, _ = env.step_env(jax.random.key(t), s, t % 2, params)
        flags.append((bool(te), bool(tr)))
    assert flags == [(False, False)] * 4 + [(False, True)]


def test_gymnax_ids_and_params_are_checked():
    with pytest.raises(ConfigError, match="gymnax:Catch-bsuite"):
        make("gymnax:Catch-bsuit")
    with pytest.raises(ConfigError, match="max_steps_in_episode"):
        make("gymnax:CartPole-v1", max_steps_in_episod=5)
    from neurorl.experiment.config import from_dict

    with pytest.raises(ConfigError, match="env.id"):
        from_dict({"env": {"id": "gymnax:Nope-v0"}})


def test_gymnax_gym_wrapper_runs_our_env():
    from gymnax.wrappers.gym import GymnaxToGymWrapper

    ours = CartPole()
    params = ours.default_params()
    w = GymnaxToGymWrapper(to_gymnax(ours), seed=3)
    assert w.metadata["name"] == "CartPole-v1" and w.action_space.n == 2
    obs, _ = w.reset(seed=3)
    assert w.observation_space.shape == (4,)
    # the wrapper's steps are our env's steps with the wrapper's keys
    state, key = w.env_state, w.key
    for _ in range(20):
        key, k = jax.random.split(key)
        o_ref, state, r_ref, te, tr, _ = ours.step(k, state, 1, params)
        o, r, d, _, info = w.step(1)
        np.testing.assert_array_equal(np.asarray(o), np.asarray(o_ref))
        assert float(r) == float(r_ref) and bool(d) == bool(te | tr)


@pytest.mark.slow
def test_gymnax_env_trains_in_the_jitted_runner(tmp_path):
    from neurorl.experiment import runner
    from neurorl.experiment.config import from_dict
    from neurorl.experiment.logging import read_jsonl

    cfg = from_dict(
        {
            "name": "catch",
            "env": {"id": "gymnax:Catch-bsuite"},
            "agent": {"name": "eprop_ac", "substeps": 2, "hyper": {"n_rec": 8, "n_rf": 2}},
            "training": {"steps": 256, "n_envs": 4, "chunk_steps": 128, "episode_window": 5},
            "shifts": {"reward": [{"kind": "flip", "start": 128}]},
            "logging": {"wandb": "disabled", "progress": False},
        }
    )
    runner.run_experiment(cfg, tmp_path / "r", progress=False)
    eps = read_jsonl(tmp_path / "r" / "episodes.jsonl")
    # Catch: 9 steps per episode, +-1 at the end; the flip negates it after step 128
    assert eps and all(e["length"] == 9 and abs(e["return"]) == 1.0 for e in eps)
