"""Gymnasium bridge: the same jitted agent on the JAX env and on gymnasium's own envs."""

from __future__ import annotations

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.envs import make
from neurorl.envs.bridge import GymBridge, encode_observation, rollout
from neurorl.envs.cartpole import CartPoleState
from neurorl.errors import ConfigError, ShapeError

KEY = jax.random.PRNGKey(0)


@jax.jit
def act(params, obs, key):
    """A greedy linear policy over a flat float32 observation (single or batched; key unused)."""
    del key
    return jnp.argmax(obs @ params["w"], axis=-1).astype(jnp.int32)


@jax.jit
def act_continuous(params, obs, key):
    """A linear-Gaussian continuous policy, torque in [-2, 2]."""
    mean = 2.0 * jnp.tanh(obs @ params["w"])
    return mean + 0.1 * jax.random.normal(key, mean.shape)


def test_same_agent_same_observations_on_jax_and_gymnasium_cartpole():
    w = jax.random.normal(KEY, (4, 2)) * jnp.asarray([[1.0], [1.0], [10.0], [3.0]])
    params = {"w": w}
    bridge = GymBridge("CartPole-v1")
    obs_g, _ = bridge.reset(seed=3)
    start = np.asarray(bridge.env.unwrapped.state, np.float64)
    env, p = make("CartPole-v1")
    state = CartPoleState(*[jnp.float32(v) for v in start], jnp.int32(0))
    obs_j = env.get_obs(state)
    np.testing.assert_allclose(obs_j, obs_g, rtol=1e-6)
    step = jax.jit(env.step_env)
    actions = set()
    for t in range(60):
        k = jax.random.fold_in(KEY, t)
        a_j, a_g = act(params, obs_j, k), act(params, obs_g, k)
        assert int(a_j) == int(a_g)
        actions.add(int(a_j))
        obs_j, state, r_j, te_j, tr_j, _ = step(k, state, a_j, p)
        obs_g, r_g, te_g, tr_g, _ = bridge.step(a_g)
        assert obs_g.dtype == jnp.float32 and obs_g.shape == (4,)
        np.testing.assert_allclose(obs_j, obs_g, rtol=1e-4, atol=1e-5)
        assert float(r_j) == float(r_g) and bool(te_j) == bool(te_g) and bool(tr_j) == bool(tr_g)
        if bool(te_g):
            break
    assert actions == {0, 1}  # the policy really acted both ways
    # a deliberately different JAX env (longer pole) is caught by the same comparison
    state2 = CartPoleState(*[jnp.float32(v) for v in start], jnp.int32(0))
    for _ in range(8):
        o2, state2, *_ = step(KEY, state2, 1, p.replace(length=jnp.float32(0.6)))
    bridge.reset(seed=3)
    for _ in range(8):
        og, _, te, _, _ = bridge.step(1)
        assert not bool(te)
    assert not np.allclose(o2, og, rtol=1e-4, atol=1e-5)


def test_pendulum_box_actions_and_rollout():
    bridge = GymBridge("Pendulum-v1")
    assert (bridge.obs_dim, bridge.discrete, bridge.action_shape) == (3, False, (1,))
    params = {"w": jnp.asarray([[-1.0], [0.0], [-0.5]])}
    out = rollout(bridge, act_continuous, params, KEY, 30, seed=0)
    assert out["obs"].shape == (30, 3) and out["obs"].dtype == np.float32
    assert out["action"].shape == (30, 1) and out["reward"].shape == (30,)
    assert np.all(out["reward"] <= 0)
    # the same policy runs on the JAX Pendulum, inside a scan
    env, p = make("Pendulum-v1")
    obs, st = env.reset(KEY, p)

    def body(c, k):
        o, s = c
        a = act_continuous(params, o, k)
        o, s, r, *_ = env.step(k, s, a, p)
        return (o, s), r

    _, r = jax.lax.scan(body, (obs, st), jax.random.split(KEY, 30))
    assert r.shape == (30,)


def test_frozenlake_one_hot_and_discrete_checks():
    bridge = GymBridge("FrozenLake-v1", is_slippery=False)
    assert bridge.obs_dim == 16 and bridge.n_actions == 4
    obs, _ = bridge.reset(seed=0)
    np.testing.assert_array_equal(obs, np.eye(16, dtype=np.float32)[0])
    obs, r, te, tr, _ = bridge.step(jnp.int32(2))  # right: state 0 -> 1 (deterministic lake)
    np.testing.assert_array_equal(obs, np.eye(16, dtype=np.float32)[1])
    params = {"w": jax.random.normal(KEY, (16, 4))}
    out = rollout(bridge, act, params, KEY, 25, seed=1)
    assert np.all(out["obs"].sum(-1) == 1.0)
    with pytest.raises(ConfigError, match="integer"):
        bridge.step(jnp.float32(1.0))
    with pytest.raises(ConfigError, match=r"\[0, 4\)"):
        bridge.step(7)
    with pytest.raises(ShapeError, match=r"\(\)"):
        bridge.step(jnp.asarray([1, 2]))


def test_continuous_action_shape_error_and_unsupported_space():
    bridge = GymBridge("Pendulum-v1")
    bridge.reset(seed=0)
    with pytest.raises(ShapeError, match=r"\(1,\)"):
        bridge.step(jnp.asarray([0.1, 0.2]))
    with pytest.raises(ShapeError):
        bridge.step(0.5)  # a scalar where shape (1,) is expected
    space = gymnasium.spaces.Dict({"a": gymnasium.spaces.Discrete(2)})
    with pytest.raises(ConfigError, match="FlattenObservation"):
        encode_observation(space, {"a": 0})
    with pytest.raises(ConfigError):
        GymBridge(object())


@pytest.mark.parametrize("mode", ["sync", "vector_entry_point"])
def test_vector_envs(mode):
    venv = gymnasium.make_vec("CartPole-v1", num_envs=3, vectorization_mode=mode)
    bridge = GymBridge(venv)
    assert bridge.is_vector and bridge.num_envs == 3 and bridge.obs_dim == 4
    obs, _ = bridge.reset(seed=0)
    assert obs.shape == (3, 4) and obs.dtype == jnp.float32
    params = {"w": jax.random.normal(KEY, (4, 2))}
    out = rollout(bridge, act, params, KEY, 40, seed=0)
    assert out["obs"].shape == (40, 3, 4) and out["reward"].shape == (40, 3)
    with pytest.raises(ShapeError, match=r"\(3,\)"):
        bridge.step(jnp.int32(0))
    one_hot = encode_observation(gymnasium.spaces.Discrete(5, start=1), np.array([1, 5]), batch=2)
    np.testing.assert_array_equal(one_hot, np.eye(5, dtype=np.float32)[[0, 4]])
    venv.close()
