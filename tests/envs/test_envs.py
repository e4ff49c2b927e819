"""JAX env API: eager == jit == vmap, no recompiles for new values, auto-reset, LogWrapper,
spaces, and TimeLimit semantics (terminated and truncated kept apart)."""

from __future__ import annotations

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.envs.classic_control import CartPoleEnv

from neurorl.envs import ENVS, CartPoleState, make
from neurorl.envs.spaces import Box, Discrete
from neurorl.envs.wrappers import LogWrapper, rollout

ENV_IDS = sorted(ENVS)


def _policy(env, params):
    space = env.action_space(params)
    return lambda key, obs: space.sample(key)


def _scan(env, params, key, n):
    _, (obs, rew, term, trunc, _) = rollout(env, key, params, _policy(env, params), n)
    return obs, rew, term, trunc


_FNS: dict = {}


def _fns(env_id):
    """One env instance and its jitted functions per env, shared by the tests of this module
    (compiling is the expensive part of these tests)."""
    if env_id not in _FNS:
        env, params = make(env_id)
        _FNS[env_id] = dict(
            env=env,
            params=params,
            step=jax.jit(env.step),
            reset=jax.jit(env.reset),
            vstep=jax.jit(jax.vmap(env.step, in_axes=(None, 0, None, 0))),
            vreset=jax.jit(jax.vmap(env.reset, in_axes=(None, 0))),
            reset_keys=jax.jit(jax.vmap(env.reset, in_axes=(0, None))),
        )
    return _FNS[env_id]


def _scaled(params, scale, dsteps=0):
    return params.replace(
        **{
            k: getattr(params, k) * jnp.float32(scale)
            for k in params.constraints
            if k != "max_steps_in_episode"
        },
        max_steps_in_episode=params.max_steps_in_episode + dsteps,
    )


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_eager_equals_jit_equals_vmap_without_recompiling(env_id):
    f = _fns(env_id)
    env, params = f["env"], f["params"]
    shifted = _scaled(params, 1.1)
    aspace = env.action_space(params)
    actions = [aspace.sample(k) for k in jax.random.split(jax.random.key(7), 3)]

    def run(step, reset, params):
        obs, state = reset(jax.random.key(1), params)
        out = [obs]
        for t, a in enumerate(actions):
            obs, state, r, te, tr, info = step(jax.random.key(t), state, a, params)
            out += [obs, r, te, tr, info["final_obs"]]
        return out

    eager = run(env.step, env.reset, shifted)  # op-by-op dispatch, no jit
    jitted = run(f["step"], f["reset"], shifted)
    both = jax.tree.map(lambda a, b: jnp.stack([a, b]), params, shifted)
    vmapped = run(f["vstep"], f["vreset"], both)
    for e, j, v in zip(eager, jitted, vmapped, strict=True):
        np.testing.assert_allclose(np.asarray(e), np.asarray(j), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(np.asarray(v[1]), np.asarray(j), rtol=1e-6, atol=1e-7)

    # new parameter VALUES (and new keys) reuse the compiled step: count cache entries
    sizes = f["step"]._cache_size(), f["vstep"]._cache_size()
    for i, scale in enumerate((0.5, 1.5, 2.0)):
        run(f["step"], f["reset"], _scaled(params, scale, i))
        both = jax.tree.map(lambda a, b: jnp.stack([a, b]), params, _scaled(params, scale, i))
        run(f["vstep"], f["vreset"], both)
    assert (f["step"]._cache_size(), f["vstep"]._cache_size()) == sizes == (1, 1)


def test_params_are_traced_inside_scan():
    """A shift inside the scan (length doubles at t = 10) changes dynamics without retracing."""
    env, params = make("CartPole-v1")
    n_traces = 0

    def run(params, length_after):
        nonlocal n_traces
        n_traces += 1
        _, state = env.reset(jax.random.key(0), params)

        def body(state, t):
            p = params.replace(length=jnp.where(t >= 10, length_after, params.length))
            _, state, *_ = env.step_env(jax.random.key(0), state, 1, p)
            return state, state.theta

        return jax.lax.scan(body, state, jnp.arange(20))[1]

    f = jax.jit(run)
    a = f(params, jnp.float32(0.5))
    b = f(params, jnp.float32(1.0))
    assert n_traces == 1
    np.testing.assert_array_equal(a[:10], b[:10])
    assert not np.allclose(a[10:], b[10:])


def test_terminated_and_truncated_kept_apart_like_gymnasium_timelimit():
    env, params = make("CartPole-v1")
    # about to leave the track on the last allowed step: both flags, as gymnasium's TimeLimit
    state = CartPoleState(*(jnp.float32(v) for v in (2.39, 2.0, 0.0, 0.0)), jnp.int32(499))
    _, _, r, term, trunc, _ = env.step_env(jax.random.key(0), state, 1, params)
    genv = gymnasium.wrappers.TimeLimit(CartPoleEnv(), max_episode_steps=500)
    genv.reset(seed=0)
    genv.unwrapped.state = np.array([2.39, 2.0, 0.0, 0.0])
    genv._elapsed_steps = 499
    _, g_r, g_term, g_trunc, _ = genv.step(1)
    assert (bool(term), bool(trunc), float(r)) == (g_term, g_trunc, g_r) == (True, True, 1.0)
    # truncated only
    state = state.replace(x=jnp.float32(0.0))
    _, _, _, term, trunc, _ = env.step_env(jax.random.key(0), state, 1, params)
    assert (bool(term), bool(trunc)) == (False, True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_auto_reset_returns_reset_obs_and_final_obs(env_id):
    f = _fns(env_id)
    env, params = f["env"], f["params"].replace(max_steps_in_episode=jnp.int32(3))
    key = jax.random.key(0)
    _, state = f["reset"](key, params)
    action = env.action_space(params).sample(key)
    step = f["step"]
    for t in range(3):
        obs, state, _, term, trunc, info = step(jax.random.key(t), state, action, params)
    assert bool(trunc)
    assert int(state.time) == 0
    # obs is the fresh reset obs drawn from the step's key (split first only when the transition
    # itself is stochastic); final_obs is the terminal one
    key_reset = jax.random.key(2)
    if env.stochastic_transition:
        _, key_reset = jax.random.split(key_reset)
    reset_obs, _ = f["reset"](key_reset, params)
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(reset_obs))
    assert not np.array_equal(np.asarray(info["final_obs"]), np.asarray(obs))


def test_log_wrapper_episode_statistics_match_numpy_bookkeeping():
    env, params = make("CartPole-v1", max_steps_in_episode=30)
    wenv = LogWrapper(env)
    keys = jax.random.split(jax.random.key(4), 3)

    def run(key):
        _, (_, rew, term, trunc, info) = rollout(wenv, key, params, _policy(env, params), 120)
        return rew, term, trunc, info

    rew, term, trunc, info = jax.jit(jax.vmap(run))(keys)  # [B, T]
    rew, done = np.asarray(rew), np.asarray(term | trunc)
    info = jax.tree.map(np.asarray, info)
    assert done.sum() > 3
    for b in range(3):
        ret, length = 0.0, 0
        for t in range(rew.shape[1]):
            ret += rew[b, t]
            length += 1
            assert bool(info["returned_episode"][b, t]) == done[b, t]
            if done[b, t]:
                assert info["returned_episode_returns"][b, t] == pytest.approx(ret)
                assert info["returned_episode_lengths"][b, t] == length
                ret, length = 0.0, 0
    assert int(info["timestep"][0, -1]) == 120


# gymnasium's reset ranges of the state variables (time excluded)
RESET_BOUNDS = {
    "CartPole-v1": (np.full(4, -0.05), np.full(4, 0.05)),
    "Acrobot-v1": (np.full(4, -0.1), np.full(4, 0.1)),
    "MountainCar-v0": (np.array([-0.6, 0.0]), np.array([-0.4, 0.0])),
    "MountainCarContinuous-v0": (np.array([-0.6, 0.0]), np.array([-0.4, 0.0])),
    "Pendulum-v1": (np.array([-np.pi, -1.0]), np.array([np.pi, 1.0])),
}


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_spaces_and_reset_distribution(env_id):
    f = _fns(env_id)
    env, params = f["env"], f["params"]
    obs, state = f["reset_keys"](jax.random.split(jax.random.key(0), 256), params)
    space = env.observation_space(params)
    assert isinstance(space, Box) and obs.shape == (256, *space.shape) and obs.dtype == jnp.float32
    gobs = space.to_gymnasium()
    assert all(gobs.contains(o) for o in np.asarray(obs)[:16])
    assert int(state.time.max()) == 0
    # reset ranges equal gymnasium's and are filled
    lo, hi = RESET_BOUNDS[env_id]
    v = np.stack([np.asarray(x, np.float64) for x in jax.tree.leaves(state)[:-1]], -1)
    assert (v >= lo - 1e-6).all() and (v <= hi + 1e-6).all()
    assert (v.max(0) - v.min(0) >= 0.8 * (hi - lo)).all()
    aspace = env.action_space(params)
    acts = np.asarray(jax.jit(jax.vmap(aspace.sample))(jax.random.split(jax.random.key(1), 32)))
    gspace = aspace.to_gymnasium()
    if isinstance(aspace, Discrete):
        assert {int(a) for a in acts} == set(range(aspace.n))
        assert all(gspace.contains(int(a)) for a in acts)
    else:
        assert all(gspace.contains(a) for a in acts)
