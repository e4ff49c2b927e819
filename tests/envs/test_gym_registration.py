"""gymnasium.make("neurorl/<id>") returns a normal gymnasium.Env: check_env, params overrides,
seeding, idempotent registration, and the same transitions as gymnasium's own env."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from neurorl.envs import ENVS, make_params
from neurorl.envs.gym_registration import NeurorlGymEnv, register_envs

GYM_IDS = [f"neurorl/{e}" for e in sorted(ENVS)]


# check_env's advice-level warnings that gymnasium's own CartPole / Pendulum trigger as well
@pytest.mark.filterwarnings("ignore:.*observation space m.* value is .*infinity")
@pytest.mark.filterwarnings("ignore:.*symmetric and normalized space")
@pytest.mark.parametrize("gym_id", GYM_IDS)
def test_make_passes_check_env(gym_id):
    env = gymnasium.make(gym_id)
    assert isinstance(env.unwrapped, NeurorlGymEnv)
    check_env(env.unwrapped)  # gymnasium recommends checking the unwrapped env
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs) and info == {}
    obs, r, term, trunc, info = env.step(env.action_space.sample())
    assert isinstance(r, float) and isinstance(term, bool) and isinstance(trunc, bool)


def test_registration_is_idempotent_and_on_import():
    before = {gid: gymnasium.registry[gid] for gid in GYM_IDS}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gymnasium warns when an id is overridden
        assert register_envs() == GYM_IDS or sorted(register_envs()) == GYM_IDS
    # importing the package again registers nothing twice (no override warning); in a child
    # process, because reloading here would swap ``neurorl.envs.ENVS`` for a new dict under every
    # test that holds the old one (a user env registered there would vanish)
    import subprocess
    import sys

    code = ("import importlib, warnings\nimport neurorl.envs as m\n"
            "warnings.simplefilter('error')\nimportlib.reload(m)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert all(gymnasium.registry[gid] is before[gid] for gid in GYM_IDS)
    # "module:id" lets gymnasium import neurorl.envs itself
    env = gymnasium.make("neurorl.envs:neurorl/Pendulum-v1")
    assert isinstance(env.unwrapped, NeurorlGymEnv)


def test_params_through_kwargs_and_params_object():
    env = gymnasium.make("neurorl/CartPole-v1", length=1.0, masspole=0.2)
    p = env.unwrapped.params
    assert float(p.length) == 1.0 and float(p.masspole) == pytest.approx(0.2)
    base = make_params("CartPole-v1", gravity=12.0)
    env = gymnasium.make("neurorl/CartPole-v1", params=base, length=0.75)
    p = env.unwrapped.params
    assert float(p.gravity) == 12.0 and float(p.length) == 0.75
    # shifted episode limit is honoured (the env truncates itself)
    env = gymnasium.make("neurorl/Pendulum-v1", max_steps_in_episode=5)
    env.reset(seed=0)
    flags = [env.step(np.zeros(1, np.float32))[3] for _ in range(5)]
    assert flags == [False] * 4 + [True]


def test_seeding_follows_gymnasium():
    env = gymnasium.make("neurorl/Acrobot-v1")
    a, _ = env.reset(seed=3)
    b, _ = env.reset(seed=3)
    c, _ = env.reset(seed=4)
    d, _ = env.reset()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(c, d)


@pytest.mark.parametrize("shift", [{}, {"length": 1.0, "masspole": 0.3, "force_mag": 15.0}])
def test_same_transitions_as_gymnasium_cartpole(shift):
    ours = gymnasium.make("neurorl/CartPole-v1", **shift)
    theirs = gymnasium.make("CartPole-v1")
    u = theirs.unwrapped
    for k, v in shift.items():
        setattr(u, k, v)
    u.total_mass = u.masspole + u.masscart
    u.polemass_length = u.masspole * u.length
    rng = np.random.default_rng(0)
    obs, _ = ours.reset(seed=1)
    theirs.reset(seed=1)
    u.state = obs.astype(np.float64)
    n_done = 0
    for t in range(150):
        a = int(rng.integers(2))
        o1, r1, te1, tr1, _ = ours.step(a)
        o2, r2, te2, tr2, _ = theirs.step(a)
        np.testing.assert_allclose(o1, o2, rtol=1e-5, atol=1e-6)
        assert (r1, te1, tr1) == (r2, te2, tr2)
        if te1 or tr1:
            n_done += 1
            obs, _ = ours.reset(seed=100 + t)
            theirs.reset(seed=100 + t)
            u.state = obs.astype(np.float64)
    assert n_done > 2
