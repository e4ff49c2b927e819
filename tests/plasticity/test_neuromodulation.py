"""The neuromodulated learning-rate gain (Schweighofer & Doya 2003) against a float64 numpy loop
of its equations, and its use in the e-prop actor-critic (``meta_lr_*`` hyperparameters)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.agents import make_agent, spec_from_env
from neurorl.envs import make
from neurorl.errors import ConfigError
from neurorl.plasticity.neuromodulation import EPS, MetaLRState, meta_lr


def _numpy_gains(values, valid, g_max, k, tau_mid, tau_long):
    """The module docstring's equations, one call at a time, in float64."""
    a_m, a_l = 1.0 / tau_mid, 1.0 / tau_long
    m = lg = 0.0
    n = 0
    out = []
    for v, ok in zip(values, valid, strict=True):
        if ok.any():
            x = v[ok].mean()
            m, lg, n = m + a_m * (x - m), lg + a_l * (x - lg), n + 1
        if n == 0:
            out.append(1.0)
            continue
        mh, lh = m / (1 - (1 - a_m) ** n), lg / (1 - (1 - a_l) ** n)
        out.append(min(max(1.0 + k * (lh - mh) / max(abs(lh), EPS), 1.0), g_max))
    return np.array(out)


def _jax_gains(values, valid, **kw):
    ml = meta_lr(**kw)
    state = ml.init()
    update = jax.jit(ml.update)
    gains = []
    for v, ok in zip(values, valid, strict=True):
        g, state = update(state, jnp.asarray(v, jnp.float32), jnp.asarray(ok))
        gains.append(float(g))
    return np.array(gains)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gain_matches_the_numpy_equations(seed):
    # a value that holds, falls (a shift) and partly recovers, with noise, masked envs and
    # calls with no valid env at all
    rng = np.random.default_rng(seed)
    T, B = 600, 4
    level = np.concatenate([np.full(300, 8.0), np.full(150, 1.0), np.linspace(1.0, 6.0, 150)])
    if seed == 2:  # a cost task: values below 0 that fall from -1 to -8, then partly recover
        level = level - 9.0
    values = level[:, None] + rng.normal(0, 0.5, (T, B))
    valid = rng.random((T, B)) > 0.2
    valid[:3] = False  # the first calls: nothing valid yet
    valid[400:405] = False
    kw = dict(g_max=5.0, k=4.0, tau_mid=20.0, tau_long=200.0)
    got = _jax_gains(values, valid, **kw)
    want = _numpy_gains(values, valid, **kw)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # the shift is what moves it: ~1 before, at the cap soon after the fall
    assert np.all(got[:300] < 1.5)
    assert got[330] > 3.0


def test_a_constant_value_keeps_the_gain_at_one():
    values = np.full((300, 3), 4.2)
    got = _jax_gains(values, np.ones((300, 3), bool), g_max=10.0, k=10.0, tau_mid=5.0,
                     tau_long=50.0)
    # float32: the bias corrections of two EMAs of the same number agree to ~1e-6 relative
    np.testing.assert_allclose(got, 1.0, atol=1e-4)


def test_gain_returns_to_one_once_the_long_run_average_follows():
    # after a lasting drop the long-run average catches up (tau_long) and the boost ends
    values = np.concatenate([np.full((200, 2), 10.0), np.full((3000, 2), 2.0)])
    got = _jax_gains(values, np.ones(values.shape, bool), g_max=3.0, k=3.0, tau_mid=10.0,
                     tau_long=100.0)
    assert got[260] == pytest.approx(3.0)
    assert got[-1] == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("kw, field", [
    (dict(g_max=0.5), "meta_lr_max"),
    (dict(g_max=2.0, k=-1.0), "meta_lr_k"),
    (dict(g_max=2.0, tau_mid=0.0), "meta_lr_tau_mid"),
    (dict(g_max=2.0, tau_mid=50.0, tau_long=50.0), "meta_lr_tau_long"),
    (dict(g_max=float("nan")), "meta_lr_max"),
    (dict(g_max=True), "meta_lr_max"),
])
def test_bad_values_name_the_field(kw, field):
    with pytest.raises(ConfigError) as e:
        meta_lr(**kw)
    assert field in str(e.value)


def _agent_and_run(**hyper):
    env, params = make("CartPole-v1")
    spec = spec_from_env(env, params, n_envs=3, substeps=2)
    agent = make_agent("eprop_ac", spec, n_rec=8, n_rf=3, lr=1e-2, **hyper)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))

    def run(n, state=None):
        key = jax.random.key(0)
        k0, key = jax.random.split(key)
        obs, es = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k0, 3), params)
        state = agent.init(jax.random.key(1)) if state is None else state
        act, learn = jax.jit(agent.act), jax.jit(agent.learn)
        for _ in range(n):
            key, ka, ke = jax.random.split(key, 3)
            a, state = act(state, obs, ka)
            obs, es, r, term, trunc, _ = step(jax.random.split(ke, 3), es, a, params)
            last = (state, r, term, trunc)
            state = learn(state, r, term, trunc)
        return state, last

    return agent, run


def test_eprop_meta_lr_is_off_by_default_and_scales_only_the_step():
    off, run_off = _agent_and_run()
    base, _ = run_off(40)
    assert "meta_lr" not in base.extra  # the default state (and old checkpoints) unchanged
    # k = 0: the gain is exactly 1, so the wiring changes nothing else
    _, run_flat = _agent_and_run(meta_lr_max=5.0, meta_lr_k=0.0)
    flat, _ = run_flat(40)
    for a, b in zip(jax.tree.leaves(base.weights), jax.tree.leaves(flat.weights), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(flat.extra["meta_lr"].count) == 39  # every learn call after the first


def test_eprop_meta_lr_multiplies_the_optimizer_step_by_the_gain():
    # one learn call from the same state, with and without the gain: a long-run value of 10
    # and a mid-term value of 1 (a shift broke the policy) make the gain known in advance
    tau_mid, tau_long, k, g_max = 10.0, 1000.0, 2.0, 50.0
    off, run_off = _agent_and_run()
    on, _ = _agent_and_run(meta_lr_max=g_max, meta_lr_k=k, meta_lr_tau_mid=tau_mid,
                           meta_lr_tau_long=tau_long)
    _, (s, r, term, trunc) = run_off(30)  # s: the state before the 30th learn call
    n = 1e5  # bias corrections ~1
    meta = MetaLRState(jnp.float32(1.0), jnp.float32(10.0), jnp.float32(n))
    s_on = s.replace(extra={**s.extra, "meta_lr": meta})
    w_off = jax.jit(off.learn)(s, r, term, trunc).weights
    w_on = jax.jit(on.learn)(s_on, r, term, trunc).weights
    x = float(jnp.mean(s.v_prev))  # every env valid at step 30
    m, lg = 1.0 + (x - 1.0) / tau_mid, 10.0 + (x - 10.0) / tau_long
    gain = min(max(1.0 + k * (lg - m) / abs(lg), 1.0), g_max)
    assert gain > 1.5
    for name in w_off:
        d_off = np.asarray(w_off[name]) - np.asarray(s.weights[name])
        d_on = np.asarray(w_on[name]) - np.asarray(s.weights[name])
        assert np.abs(d_off).max() > 0
        np.testing.assert_allclose(d_on, gain * d_off, rtol=1e-3, atol=1e-6)


def test_eprop_meta_lr_bad_value_is_a_config_error():
    env, params = make("CartPole-v1")
    spec = spec_from_env(env, params, n_envs=2, substeps=2)
    with pytest.raises(ConfigError) as e:
        make_agent("eprop_ac", spec, meta_lr_tau_long=10.0)  # below tau_mid 50, even when off
    assert "agent.eprop_ac.meta_lr_tau_long" in str(e.value)
