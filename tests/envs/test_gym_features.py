"""Gymnasium as its users expect it from ``neurorl/<id>``: gymnasium's own frames, gymnasium's spec
fields, a jitted ``make_vec``, shifts through ``gymnasium.make``, gymnasium's post-termination
behaviour, and gymnax's ``name`` / ``num_actions``."""

from __future__ import annotations

import gymnasium
import jax
import numpy as np
import pytest

import neurorl.envs  # noqa: F401 - registers neurorl/<id>
from neurorl.envs import ENVS
from neurorl.envs.gym_registration import NeurorlVectorEnv
from neurorl.errors import ConfigError

pytest.importorskip("pygame")


def _their_state(ours) -> np.ndarray:
    return np.asarray(ours.unwrapped._s, np.float64)


@pytest.mark.parametrize("env_id", sorted(ENVS))
def test_rgb_frame_equals_gymnasiums_frame_of_the_same_state(env_id):
    ours = gymnasium.make(f"neurorl/{env_id}", render_mode="rgb_array")
    theirs = gymnasium.make(env_id, render_mode="rgb_array")
    ours.reset(seed=3)
    theirs.reset(seed=3)
    ours.action_space.seed(0)
    for _ in range(7):
        a = ours.action_space.sample()
        ours.step(a)
        theirs.unwrapped.last_u = None
    if env_id == "Pendulum-v1":  # gymnasium draws the last torque
        theirs.unwrapped.last_u = float(np.clip(a[0], -2.0, 2.0))
    theirs.unwrapped.state = _their_state(ours)
    f1, f2 = ours.render(), theirs.render()
    assert f1.dtype == np.uint8 and f1.ndim == 3 and f1.shape == f2.shape
    np.testing.assert_array_equal(f1, f2)
    # a different state draws a different frame (the comparison is not vacuous)
    theirs.unwrapped.state = _their_state(ours) + 0.3
    assert not np.array_equal(f1, theirs.render())
    ours.close()
    theirs.close()


def test_shifted_cartpole_renders_the_shifted_pole():
    ours = gymnasium.make("neurorl/CartPole-v1", length=1.0, render_mode="rgb_array")
    theirs = gymnasium.make("CartPole-v1", render_mode="rgb_array")
    ours.reset(seed=0)
    theirs.reset(seed=0)
    theirs.unwrapped.state = _their_state(ours)
    short = theirs.render()
    theirs.unwrapped.length = 1.0
    np.testing.assert_array_equal(ours.render(), theirs.render())
    assert not np.array_equal(ours.render(), short)


def test_human_render_mode_draws_without_error(monkeypatch):
    # no display here: SDL's dummy video driver stands in for a window
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    env = gymnasium.make("neurorl/CartPole-v1", render_mode="human")
    env.reset(seed=0)
    for _ in range(3):
        env.step(1)
    assert env.render() is None
    env.close()


@pytest.mark.filterwarnings("ignore:.*not in the possible render_modes")
def test_render_without_mode_warns_like_gymnasium():
    env = gymnasium.make("neurorl/CartPole-v1").unwrapped
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="without specifying any render mode"):
        assert env.render() is None
    with pytest.raises(ConfigError, match="render_mode"):
        gymnasium.make("neurorl/CartPole-v1", render_mode="ansi")


@pytest.mark.parametrize("env_id", sorted(ENVS))
def test_spec_fields_are_gymnasiums(env_id):
    ours, theirs = gymnasium.spec(f"neurorl/{env_id}"), gymnasium.spec(env_id)
    assert ours.max_episode_steps == theirs.max_episode_steps
    assert ours.reward_threshold == theirs.reward_threshold
    assert ours.nondeterministic == theirs.nondeterministic
    assert ours.vector_entry_point is not None
    env = gymnasium.make(f"neurorl/{env_id}")
    assert env.spec.max_episode_steps == theirs.max_episode_steps
    assert env.unwrapped.metadata["render_fps"] == gymnasium.make(env_id).metadata["render_fps"]


def test_cartpole_spec_numbers():
    s = gymnasium.spec("neurorl/CartPole-v1")
    assert (s.max_episode_steps, s.reward_threshold) == (500, 475.0)


def test_make_vec_steps_all_envs_in_one_jitted_call():
    vec = gymnasium.make_vec("neurorl/CartPole-v1", num_envs=6)
    assert isinstance(vec.unwrapped, NeurorlVectorEnv)
    assert vec.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.SAME_STEP
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (6, 4) and obs.dtype == np.float32
    step = vec.unwrapped._step_fn
    assert hasattr(step, "lower")  # a jax.jit-compiled function, one call for the batch
    rng = np.random.default_rng(0)
    done_any = False
    for _ in range(60):
        obs, r, te, tr, info = vec.step(rng.integers(0, 2, size=6))
        assert obs.shape == (6, 4) and r.shape == (6,) and te.dtype == bool
        d = te | tr
        if d.any():
            done_any = True
            # same-step auto-reset: the returned obs starts a new episode
            assert np.all(np.abs(obs[d]) <= 0.05 + 1e-6)
            assert np.any(np.abs(info["final_obs"][d][:, [0, 2]]) > [2.4, 0.2094])
    assert done_any
    assert step._cache_size() == 1  # compiled once for all steps


def test_make_vec_truncates_at_max_episode_steps_and_matches_single_env_dynamics():
    vec = gymnasium.make_vec("neurorl/Pendulum-v1", num_envs=3, max_episode_steps=7)
    vec.reset(seed=1)
    flags = [vec.step(np.zeros((3, 1), np.float32))[3] for _ in range(7)]
    assert not np.any(flags[:6]) and np.all(flags[6])
    # vector transition == single-env transition from the same state
    v = vec.unwrapped
    st = jax.tree.map(lambda x: x[0], v._state)
    single = gymnasium.make("neurorl/Pendulum-v1").unwrapped
    single.reset(seed=0)
    single._s = [float(st.theta), float(st.theta_dot)]
    o1 = single.step(np.array([0.7], np.float32))[0]
    o2 = vec.step(np.full((3, 1), 0.7, np.float32))[0][0]
    np.testing.assert_allclose(o1, o2, rtol=2e-6, atol=2e-7)


def test_make_vec_bad_actions_are_clear_errors():
    vec = gymnasium.make_vec("neurorl/CartPole-v1", num_envs=2)
    vec.reset(seed=0)
    with pytest.raises(Exception, match=r"\(2,\)"):
        vec.step(np.array([0, 1, 1]))
    with pytest.raises(ConfigError, match=r"\[0, 2\)"):
        vec.step(np.array([0, 2]))


def test_post_termination_reward_zero_and_warning_like_gymnasium():
    ours = gymnasium.make("neurorl/CartPole-v1", disable_env_checker=True).unwrapped
    theirs = gymnasium.make("CartPole-v1", disable_env_checker=True).unwrapped
    ours.reset(seed=0)
    theirs.reset(seed=0)
    theirs.state = _their_state(ours)
    while True:
        _, r1, te1, _, _ = ours.step(1)
        _, r2, te2, _, _ = theirs.step(1)
        assert (r1, te1) == (r2, te2)
        if te1:
            break
    with pytest.warns(UserWarning, match="already returned terminated = True") as rec:
        _, r1, te1, _, _ = ours.step(1)
    assert (r1, te1) == (0.0, True)
    with pytest.warns(UserWarning, match="already returned terminated = True"):
        _, r2, _, _, _ = theirs.step(1)
    assert r2 == 0.0 and len(rec) == 1
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once, as gymnasium
        assert ours.step(1)[1] == 0.0
    ours.reset()
    assert ours.step(1)[1] == 1.0


def test_shifts_through_gymnasium_make():
    shifts = {
        "params": [
            {"field": "length", "schedule": {"kind": "abrupt", "values": [0.5, 1.5], "steps": [10]}}
        ],
        "reward": [{"kind": "scale", "factor": 2.0, "start": 5}],
    }
    env = gymnasium.make("neurorl/CartPole-v1", shifts=shifts, render_mode="rgb_array")
    assert env.unwrapped.backend == "jax"
    env.reset(seed=0)
    rewards, t = [], 0
    while t < 20:
        _, r, te, tr, info = env.step(t % 2)
        rewards.append(r)
        t += 1
        if te or tr:
            env.reset()
    assert rewards[:5] == [1.0] * 5 and rewards[5:] == [2.0] * 15
    p_now = env.unwrapped._render_view()[1]
    assert float(p_now.length) == pytest.approx(1.5)
    assert env.render().shape == (400, 600, 3)
    with pytest.raises(ConfigError, match=r"shifts\.params\[0\]\.mode"):
        gymnasium.make(
            "neurorl/CartPole-v1",
            shifts={"params": [{"field": "length", "mode": "sett", "schedule": 1.0}]},
        )
    with pytest.raises(ConfigError, match="lenght"):
        gymnasium.make(
            "neurorl/CartPole-v1", shifts={"params": [{"field": "lenght", "schedule": 1.0}]}
        )


def test_make_vec_with_shifts_reports_task_ids():
    shifts = {"tasks": {"tasks": [{"length": 0.5}, {"length": 1.0}], "steps_per_task": 40}}
    vec = gymnasium.make_vec("neurorl/CartPole-v1", num_envs=4, shifts=shifts)
    vec.reset(seed=0)
    tids = [int(vec.step(np.ones(4, np.int64))[4]["task_id"][0]) for _ in range(12)]
    assert tids[:10] == [0] * 10 and tids[10:] == [1, 1]  # 40 total steps = 10 per env


def test_gymnax_names():
    env = gymnasium.make("neurorl/Acrobot-v1").unwrapped
    assert env.name == "Acrobot-v1" and env.num_actions == 3
    assert gymnasium.make("neurorl/Pendulum-v1").unwrapped.num_actions == 1
    from neurorl.envs import make

    jenv, _ = make("CartPole-v1")
    assert jenv.name == "CartPole-v1" and jenv.num_actions == 2


def test_vector_env_renders_each_sub_env_with_gymnasiums_renderer():
    vec = gymnasium.make_vec("neurorl/CartPole-v1", num_envs=3, render_mode="rgb_array")
    vec.reset(seed=0)
    vec.step(np.array([0, 1, 1]))
    frames = vec.render()
    assert len(frames) == 3
    theirs = gymnasium.make("CartPole-v1", render_mode="rgb_array")
    theirs.reset(seed=0)
    st = jax.device_get(vec.unwrapped._state)
    for i, f in enumerate(frames):
        theirs.unwrapped.state = np.array(
            [st.x[i], st.x_dot[i], st.theta[i], st.theta_dot[i]], np.float64
        )
        np.testing.assert_array_equal(f, theirs.render())
    assert not np.array_equal(frames[0], frames[1])
    vec.close()
