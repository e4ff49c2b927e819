"""Bad input gets a clear, host-side error: unknown ids and fields (closest name), physically
invalid params, wrong actions in the gymnasium wrapper."""

from __future__ import annotations

import gymnasium
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.envs import CartPoleParams, make, make_params
from neurorl.envs.gym_registration import NeurorlGymEnv
from neurorl.errors import ConfigError, ShapeError


@pytest.mark.parametrize(
    ("bad", "closest"),
    [
        ("CartPol-v1", "CartPole-v1"),
        ("MountainCarContinous-v0", "MountainCarContinuous-v0"),
        ("pendulum-v0", "Pendulum-v1"),
        ("Acrobat-v1", "Acrobot-v1"),
    ],
)
def test_unknown_env_id_names_closest(bad, closest):
    with pytest.raises(ConfigError) as e:
        make(bad)
    assert e.value.suggestion == closest and e.value.field == "env_id"
    assert closest in str(e.value)
    with pytest.raises(ConfigError):
        NeurorlGymEnv(bad)


def test_case_insensitive_and_prefixed_ids_work():
    env, _ = make("cartpole-v1")
    assert env.id == "CartPole-v1"
    assert make("neurorl/Pendulum-v1")[0].id == "Pendulum-v1"


def test_unknown_param_field_names_closest():
    with pytest.raises(ConfigError) as e:
        make("CartPole-v1", lenght=1.0)
    assert e.value.suggestion == "length"
    with pytest.raises(ConfigError) as e:
        gymnasium.make("neurorl/Pendulum-v1", mass=2.0)
    with pytest.raises(ConfigError) as e:
        gymnasium.make("neurorl/CartPole-v1", params=make_params("CartPole-v1"), gravty=3.0)
    assert e.value.suggestion == "gravity"


@pytest.mark.parametrize(
    ("env_id", "field", "value"),
    [
        ("CartPole-v1", "masspole", -0.1),
        ("CartPole-v1", "masscart", 0.0),
        ("CartPole-v1", "length", -0.5),
        ("CartPole-v1", "tau", 0.0),
        ("CartPole-v1", "gravity", float("nan")),
        ("CartPole-v1", "max_steps_in_episode", 0),
        ("CartPole-v1", "max_steps_in_episode", 2.5),
        ("Acrobot-v1", "link_mass_2", -1.0),
        ("Acrobot-v1", "link_length_1", 0.0),
        ("Acrobot-v1", "dt", 0.0),
        ("Acrobot-v1", "link_moi", -1.0),
        ("MountainCar-v0", "max_speed", 0.0),
        ("MountainCar-v0", "min_position", 1.0),  # above max_position
        ("MountainCarContinuous-v0", "power", -1e-3),
        ("MountainCarContinuous-v0", "min_action", 2.0),  # above max_action
        ("Pendulum-v1", "m", -1.0),
        ("Pendulum-v1", "l", 0.0),
        ("Pendulum-v1", "dt", 0.0),
        ("Pendulum-v1", "max_torque", -2.0),
    ],
)
def test_physically_invalid_params_rejected_when_built(env_id, field, value):
    with pytest.raises(ConfigError) as e:
        make(env_id, **{field: value})
    assert field in e.value.field and env_id in e.value.field
    with pytest.raises(ConfigError):
        make_params(env_id, **{field: value})
    with pytest.raises(ConfigError):
        gymnasium.make(f"neurorl/{env_id}", **{field: value})


def test_invalid_params_object_rejected():
    bad = CartPoleParams().replace(length=-1.0)  # .replace does not validate ...
    with pytest.raises(ConfigError, match="length"):
        bad.validate()  # ... validate() does, and make/the wrapper call it
    with pytest.raises(ConfigError, match="length"):
        gymnasium.make("neurorl/CartPole-v1", params=bad)
    with pytest.raises(ConfigError, match="length"):  # batched params: every member checked
        CartPoleParams.create(length=np.array([0.5, 1.0, -2.0], np.float32))
    with pytest.raises(ConfigError, match="CartPoleParams"):
        gymnasium.make("neurorl/Pendulum-v1", params=CartPoleParams())
    with pytest.raises(ConfigError, match="kinematics_integrator"):
        make("CartPole-v1", kinematics_integrator="rk4")


@pytest.mark.parametrize("action", [1.0, "left", 2, -1, np.array([1]), True, None, [0]])
def test_wrong_discrete_action_rejected_by_gym_wrapper(action):
    env = gymnasium.make("neurorl/CartPole-v1").unwrapped
    env.reset(seed=0)
    with pytest.raises(ConfigError, match="action"):
        env.step(action)
    env.step(np.int64(1))  # numpy and jax integers are fine
    env.step(jnp.int32(0))


@pytest.mark.parametrize(
    ("action", "error"),
    [
        (np.zeros(2, np.float32), ShapeError),
        (0.5, ShapeError),
        (np.zeros((1, 1)), ShapeError),
        ("up", ConfigError),
        (None, ConfigError),
        (np.array([np.nan], np.float32), ConfigError),
        (np.array([True]), ConfigError),
    ],
)
def test_wrong_continuous_action_rejected_by_gym_wrapper(action, error):
    env = gymnasium.make("neurorl/Pendulum-v1").unwrapped
    env.reset(seed=0)
    with pytest.raises(error) as e:
        env.step(action)
    assert "action" in str(e.value)
    env.step(np.array([0.3], np.float32))
    env.step(jnp.ones((1,), jnp.float32))
    env.step([5.0])  # out of range is clipped, as gymnasium's Pendulum does


def test_step_before_reset_and_render_mode():
    env = NeurorlGymEnv("CartPole-v1")
    with pytest.raises(ConfigError, match="reset"):
        env.step(0)
    with pytest.raises(ConfigError, match="render_mode"):  # human / rgb_array render
        NeurorlGymEnv("CartPole-v1", render_mode="ansi")
