"""STDP / R-STDP against analytic windows and plain numpy loops of the papers' equations."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurorl.errors import ConfigError
from neurorl.plasticity import RULES, rstdp, stdp

DTS = np.arange(-50, 51)  # pairing intervals t_post - t_pre (ms)


def _pairing_sweep(rule, n_steps=120, t0=60):
    """Delta w of one pre/post pairing per interval, all intervals in one jitted vmap."""
    w = jnp.full((1, 1), 0.5, jnp.float32)

    def one(d):
        t_pre, t_post = t0 - jnp.minimum(d, 0), t0 + jnp.maximum(d, 0)

        def body(s, t):
            pre = (t == t_pre).astype(jnp.float32)[None]
            post = (t == t_post).astype(jnp.float32)[None]
            return rule.accumulate(s, pre, post, None), None

        s, _ = jax.lax.scan(body, rule.init(w), jnp.arange(n_steps))
        grads, _ = rule.update(s, 1.0, w)
        tx = optax.sgd(1.0)
        upd, _ = tx.update(grads, tx.init(w), w)
        return (optax.apply_updates(w, upd) - w)[0, 0]

    return np.asarray(jax.jit(jax.vmap(one))(jnp.asarray(DTS)))


def _window(a_plus, a_minus, tau_plus, tau_minus):
    d = DTS.astype(np.float64)
    return np.where(d > 0, a_plus * np.exp(-d / tau_plus),
                    np.where(d < 0, -a_minus * np.exp(d / tau_minus), 0.0))


def test_stdp_window_matches_analytic():
    dw = _pairing_sweep(stdp(a_plus=0.01, a_minus=0.012, tau_plus=16.8, tau_minus=33.7))
    np.testing.assert_allclose(dw, _window(0.01, 0.012, 16.8, 33.7), atol=2e-8, rtol=1e-5)


def test_stdp_window_wrong_tau_is_caught():
    dw = _pairing_sweep(stdp(a_plus=0.01, a_minus=0.012, tau_plus=16.8, tau_minus=33.7))
    wrong = _window(0.01, 0.012, 20.0, 33.7)
    assert not np.allclose(dw, wrong, atol=2e-8, rtol=1e-5)


def test_multiplicative_soft_bounds():
    rule = stdp(a_plus=0.1, a_minus=0.1, variant="multiplicative", w_max=1.0)
    w = jnp.array([[0.2], [0.9]])
    s = rule.init(w)
    s = rule.accumulate(s, jnp.ones(2), jnp.zeros(1))
    s = rule.accumulate(s, jnp.zeros(2), jnp.ones(1))  # pre 1 ms before post: LTP
    g, s = rule.update(s, 1.0, w)
    np.testing.assert_allclose(-np.asarray(g)[:, 0], 0.1 * np.exp(-1 / 20) * np.array([0.8, 0.1]),
                               rtol=1e-6)
    g2, _ = rule.update(s, 1.0, w)  # accumulator cleared by update
    assert np.all(np.asarray(g2) == 0)


def test_config_errors():
    with pytest.raises(ConfigError, match="multiplicative"):
        stdp(variant="multiplicatve")
    with pytest.raises(ConfigError, match="tau_plus"):
        stdp(tau_plus=-1.0)
    with pytest.raises(ConfigError, match="reward_baseline"):
        rstdp(modulator_kind="reward_baselin")
    with pytest.raises(ConfigError, match="stdp"):
        from neurorl.errors import lookup

        lookup(RULES, "sdtp", "plasticity rule")


def test_rstdp_eligibility_matches_numpy_loop():
    rng = np.random.default_rng(0)
    T, n_pre, n_post = 300, 7, 5
    pre = (rng.random((T, n_pre)) < 0.05).astype(np.float32)
    post = (rng.random((T, n_post)) < 0.05).astype(np.float32)
    mods = rng.normal(size=T).astype(np.float32)
    kw = dict(a_plus=1.0, a_minus=1.5, tau_plus=20.0, tau_minus=20.0, tau_c=100.0, lr=0.1,
              modulator_kind="reward_baseline", baseline_rate=0.1)
    rule = rstdp(**kw)
    w = jnp.zeros((n_pre, n_post))

    def body(s, inp):
        p, q, m = inp
        s = rule.accumulate(s, p, q, None)
        g, s = rule.update(s, m, w)
        return s, (s.eligibility, g)

    _, (elig, grads) = jax.lax.scan(body, rule.init(w), (pre, post, mods))
    # Plain loop of Izhikevich 2007 / Florian 2007 (MSTDPET) with reward-minus-baseline.
    x, y, c, b = np.zeros(n_pre), np.zeros(n_post), np.zeros((n_pre, n_post)), 0.0
    ec, eg = [], []
    for t in range(T):
        x, y = x * np.exp(-1 / 20), y * np.exp(-1 / 20)
        c = c * np.exp(-1 / 100) + 1.0 * np.outer(x, post[t]) - 1.5 * np.outer(pre[t], y)
        x, y = x + pre[t], y + post[t]
        d = mods[t] - b
        b = b + 0.1 * d
        ec.append(c.copy())
        eg.append(-0.1 * d * c)
    np.testing.assert_allclose(np.asarray(elig), np.array(ec), atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(grads), np.array(eg), atol=1e-6, rtol=1e-4)
