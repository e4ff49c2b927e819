"""The host twins that step ``gymnasium.make("neurorl/<id>")`` equal the JAX envs step for step:
the same state in gives the same state, observation, reward and flags out, under default and
shifted parameters, along random-action trajectories of the JAX env."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from neurorl.envs import ENVS, make
from neurorl.envs.numpy_twins import TWINS, host_params

SHIFTED = {
    "CartPole-v1": {"length": 1.3, "masspole": 0.35, "gravity": 11.0, "force_mag": 14.0},
    "Acrobot-v1": {"link_mass_2": 1.6, "link_length_1": 1.2, "torque_mag": 1.5},
    "MountainCar-v0": {"gravity": 0.003, "force": 0.0012},
    "MountainCarContinuous-v0": {"power": 0.002, "gravity": 0.002},
    "Pendulum-v1": {"m": 1.4, "l": 0.8, "g": 9.0, "max_torque": 2.5},
}


def _floats(state):
    return [float(getattr(state, f.name)) for f in dataclasses.fields(state)][:-1]


@pytest.mark.parametrize("shift", [False, True], ids=["default", "shifted"])
@pytest.mark.parametrize("env_id", sorted(ENVS))
def test_twin_matches_jax_step_for_step(env_id, shift):
    env, params = make(env_id, **(SHIFTED[env_id] if shift else {}))
    if env_id == "CartPole-v1" and shift:
        params = params.replace(kinematics_integrator="semi-implicit")
    twin, p = TWINS[env_id], host_params(params)
    step = jax.jit(env.step_env)
    rng = np.random.default_rng(0)
    aspace = env.action_space(params)
    obs, state = env.reset(jax.random.key(1), params)
    n_done = 0
    for t in range(300):
        if hasattr(aspace, "n"):
            a = int(rng.integers(aspace.n))
        else:
            a = rng.uniform(-1.2, 1.2, size=(1,)).astype(np.float32) * float(aspace.high[0])
        s_in = _floats(state)
        o1, state, r1, te1, _, _ = step(jax.random.key(0), state, a, params)
        s2, r2, te2 = twin.step(s_in, a, p)
        np.testing.assert_allclose(s2, _floats(state), rtol=2e-6, atol=2e-7, err_msg=f"t={t}")
        np.testing.assert_allclose(twin.obs(s2), np.asarray(o1), rtol=2e-6, atol=2e-7)
        assert r2 == pytest.approx(float(r1), rel=1e-6, abs=1e-6)
        assert te2 == bool(te1)
        if te2 or t % 97 == 96:
            n_done += 1
            obs, state = env.reset(jax.random.key(t), params)
    assert n_done >= 3


@pytest.mark.parametrize("env_id", sorted(ENVS))
def test_twin_reset_is_gymnasiums_reset(env_id):
    """A seed gives gymnasium's own initial state (rounded to float32)."""
    import gymnasium

    import neurorl.envs  # noqa: F401

    ours = gymnasium.make(f"neurorl/{env_id}")
    theirs = gymnasium.make(env_id)
    for seed in (0, 7, 123):
        o1, _ = ours.reset(seed=seed)
        o2, _ = theirs.reset(seed=seed)
        np.testing.assert_allclose(o1, o2, rtol=1e-6, atol=1e-7)
