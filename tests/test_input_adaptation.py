"""Sensory adaptation (``neurorl.encoding.input_adaptation``) against a float64 numpy loop of its
equations, and its use in the e-prop actor-critic (``obs_adapt_*`` hyperparameters)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.agents import make_agent
from neurorl.agents.base import spec_from_env
from neurorl.encoding import InputAdaptationState, input_adaptation
from neurorl.envs import make
from neurorl.errors import ConfigError

R = np.array([2.4, 3.0, 0.21, 3.0])


def np_adaptation(xs, valid, low, high, tau, z, zoom):
    """Slow loop of the docstring's equations: returns the mapped obs of every call (mapped with
    the statistics *before* the call's update) and the final statistics."""
    c, h = (low + high) / 2, (high - low) / 2
    mean, var = c.copy(), (h / z) ** 2
    mapped = []
    for x, v in zip(xs, valid, strict=True):
        s = np.maximum(np.sqrt(var), h / (z * zoom))
        mapped.append(c + (x - mean) * h / (z * s))
        if v.any():
            xv = x[v]
            new_mean = mean + (xv.mean(0) - mean) / tau
            var = var + (((xv - mean) ** 2).mean(0) - var) / tau
            mean = new_mean
    return np.array(mapped), mean, var


@pytest.mark.parametrize("zoom", [4.0, 1e3])
def test_input_adaptation_matches_a_numpy_loop(zoom):
    rng = np.random.default_rng(0)
    T, B = 600, 5
    # a sensor that changes at t = 100: offset 1.5 and a 20x smaller spread (as the pole angle
    # read through the cart-velocity channel), with some rows invalid and one all-invalid call
    xs = rng.normal(0.0, 1.0, (T, B, 4)) * R / 2
    xs[100:] = 1.5 + xs[100:] / 20
    valid = rng.random((T, B)) > 0.2
    valid[50] = False
    tau, z = 30.0, 2.0
    ad = input_adaptation(-R, R, tau, z, zoom)
    upd, app = jax.jit(ad.update), jax.jit(ad.apply)
    st = ad.init()
    got = []
    for t in range(T):
        got.append(np.asarray(app(st, xs[t].astype(np.float32))))
        st = upd(st, xs[t].astype(np.float32), jnp.asarray(valid[t]))
    want, mean, var = np_adaptation(xs, valid, -R, R, tau, z, zoom)
    np.testing.assert_allclose(np.array(got), want, rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(np.asarray(st.mean), mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(st.var), var, rtol=1e-3, atol=1e-7)
    # after ~7 tau the shifted sensor spans the fields again: mean -> centre, std -> h / z
    late = np.array(got)[-20:]
    assert np.all(np.abs(late.mean((0, 1))) < 0.25 * R)
    spread = late.std((0, 1))
    if zoom > 100:
        np.testing.assert_allclose(spread, R / 2, rtol=0.25)
    else:  # the cap binds: 4x the fixed mapping's spread of (R / 2) / 20, not more
        np.testing.assert_allclose(spread, 4 * (R / 2) / 20, rtol=0.25)


def test_input_adaptation_starts_as_the_identity_and_ignores_all_invalid_calls():
    ad = input_adaptation([-1.0, 0.0], [3.0, 10.0], tau=5.0)
    st = ad.init()
    x = jnp.array([[0.3, 7.0], [-2.0, 11.0]])
    np.testing.assert_allclose(np.asarray(ad.apply(st, x)), np.asarray(x), rtol=1e-6)
    st2 = ad.update(st, x, jnp.zeros((2,), bool))
    for a, b in zip(st, st2, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert isinstance(st2, InputAdaptationState)


@pytest.mark.parametrize("kw, field", [
    (dict(tau=0.0), "obs_adapt_tau"),
    (dict(tau=float("nan")), "obs_adapt_tau"),
    (dict(tau=10.0, z=0.0), "obs_adapt_z"),
    (dict(tau=10.0, zoom_max=0.5), "obs_adapt_zoom_max"),
    (dict(tau=True), "obs_adapt_tau"),
])
def test_input_adaptation_bad_values_name_the_field(kw, field):
    with pytest.raises(ConfigError) as e:
        input_adaptation(-R, R, field="obs_adapt", **kw)
    assert field in str(e.value)


def _run(n=30, **hyper):
    env, params = make("CartPole-v1")
    spec = spec_from_env(env, params, n_envs=3, substeps=2)
    agent = make_agent("eprop_ac", spec, n_rec=8, n_rf=3, lr=1e-2, **hyper)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    key = jax.random.key(0)
    k0, key = jax.random.split(key)
    obs, es = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k0, 3), params)
    state = agent.init(jax.random.key(1))
    act, learn = jax.jit(agent.act), jax.jit(agent.learn)
    seen = []
    for _ in range(n):
        key, ka, ke = jax.random.split(key, 3)
        seen.append(np.asarray(obs))
        a, state = act(state, obs, ka)
        obs, es, r, term, trunc, _ = step(jax.random.split(ke, 3), es, a, params)
        state = learn(state, r, term, trunc)
    return act, state, np.array(seen)


def test_eprop_obs_adaptation_is_off_by_default_and_tracks_the_observations():
    env, params = make("CartPole-v1")
    spec = spec_from_env(env, params, n_envs=3, substeps=2)
    base = make_agent("eprop_ac", spec, n_rec=8, n_rf=3).init(jax.random.key(1))
    assert "obs_adapt" not in base.extra  # the default state (and old checkpoints) unchanged
    tau = 7.0
    act, on, seen = _run(obs_adapt_tau=tau)
    lo, hi = -np.array([2.4, 3.0, 0.21, 3.0]), np.array([2.4, 3.0, 0.21, 3.0])
    _, mean, var = np_adaptation(seen.astype(np.float64), np.ones(seen.shape[:2], bool), lo, hi,
                                 tau, 2.0, 4.0)
    np.testing.assert_allclose(np.asarray(on.extra["obs_adapt"].mean), mean, rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(np.asarray(on.extra["obs_adapt"].var), var, rtol=1e-3, atol=1e-7)
    # the statistics moved away from the start (m = 0, s = R / 2), so the fields saw rescaled obs
    assert np.abs(np.sqrt(var) - hi / 2).max() > 0.1 * (hi / 2).min()
    # act alone (a frozen evaluation) leaves the statistics as they are
    st = on
    for i in range(3):
        _a, st = act(st, jnp.asarray(seen[i] * 3.0), jax.random.key(i))
    for a, b in zip(on.extra["obs_adapt"], st.extra["obs_adapt"], strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_eprop_obs_adaptation_bad_value_is_a_config_error():
    env, params = make("CartPole-v1")
    spec = spec_from_env(env, params, n_envs=2, substeps=2)
    with pytest.raises(ConfigError) as e:
        make_agent("eprop_ac", spec, obs_adapt_tau=-1.0)
    assert "obs_adapt_tau" in str(e.value)
    with pytest.raises(ConfigError) as e:
        make_agent("eprop_ac", spec, obs_adapt_tau=100.0, obs_adapt_zoom=0.5)
    assert "obs_adapt_zoom" in str(e.value)
