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
    # Plain loop of Florian 2007 (MSTDPET, discrete time: the traces P+/P- take this step's
    # spikes, then pair with them) with reward-minus-baseline.
    x, y, c, b = np.zeros(n_pre), np.zeros(n_post), np.zeros((n_pre, n_post)), 0.0
    ec, eg = [], []
    for t in range(T):
        x, y = x * np.exp(-1 / 20) + pre[t], y * np.exp(-1 / 20) + post[t]
        c = c * np.exp(-1 / 100) + 1.0 * np.outer(x, post[t]) - 1.5 * np.outer(pre[t], y)
        d = mods[t] - b
        b = b + 0.1 * d
        ec.append(c.copy())
        eg.append(-0.1 * d * c)
    np.testing.assert_allclose(np.asarray(elig), np.array(ec), atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(grads), np.array(eg), atol=1e-6, rtol=1e-4)


def test_rstdp_same_step_pairing():
    """A pre and a post spike in the same step pair both ways (A+ - A-): on a delay-0 connection
    the pre spike is part of what made the post neuron fire."""
    rule = rstdp(a_plus=1.0, a_minus=0.25, tau_c=100.0, modulator_kind="raw")
    w = jnp.zeros((1, 1))
    s = rule.accumulate(rule.init(w), jnp.ones(1), jnp.ones(1))
    np.testing.assert_allclose(np.asarray(s.eligibility), [[0.75]], rtol=1e-6)


def _random_block(seed, T, n_pre, n_post, p=0.2):
    rng = np.random.default_rng(seed)
    pre = (rng.random((T, n_pre)) < p).astype(np.float32)
    post = (rng.random((T, n_post)) < p).astype(np.float32)
    return jnp.asarray(pre), jnp.asarray(post)


@pytest.mark.parametrize("name", ["stdp", "rstdp"])
def test_block_accumulation_equals_step_by_step(name):
    """The rank-2T block update (decay-matrix traces, one product for LTP and LTD) equals T
    calls of ``accumulate``, from a state with non-zero traces and eligibility."""
    kw = dict(a_plus=0.7, a_minus=1.3, tau_plus=15.0, tau_minus=25.0)
    rule = stdp(**kw) if name == "stdp" else rstdp(**kw, tau_c=40.0)
    w = jnp.zeros((6, 4))
    warm, _ = _random_block(0, 12, 6, 4)
    s0 = rule.init(w)
    for t in range(12):  # non-zero starting traces
        s0 = rule.accumulate(s0, warm[t], warm[t, :4])
    pre, post = _random_block(1, 10, 6, 4)
    block = rule.accumulate_block(s0, pre, post, None)
    step = s0
    for t in range(10):
        step = rule.accumulate(step, pre[t], post[t], None)
    assert float(jnp.sum(pre)) > 0 and float(jnp.sum(post)) > 0
    for a, b in zip(jax.tree.leaves(block), jax.tree.leaves(step), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-5)
    # the comparison can fail: halving the post spikes changes the accumulated pairings
    wrong = rule.accumulate_block(s0, pre, post * 0.5, None)
    field = "eligibility" if name == "rstdp" else "ltp"
    assert not np.allclose(np.asarray(getattr(wrong, field)), np.asarray(getattr(step, field)))


def test_nearest_pairing_block_scans():
    rule = rstdp(pairing="nearest", a_minus=0.5)
    w = jnp.zeros((3, 2))
    pre, post = _random_block(2, 8, 3, 2, p=0.4)
    block = rule.accumulate_block(rule.init(w), pre, post, None)
    step = rule.init(w)
    for t in range(8):
        step = rule.accumulate(step, pre[t], post[t], None)
    np.testing.assert_allclose(np.asarray(block.eligibility), np.asarray(step.eligibility),
                               atol=1e-6)
