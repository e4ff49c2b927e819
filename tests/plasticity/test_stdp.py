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


# ------------------------------------------------------------------ hard bounds (Song 2000)
def _song_loop(pre, post, w0, a_plus, a_minus, tau_plus, tau_minus, bounds):
    """Plain float64 loop of pair-based additive STDP with all-to-all traces (Morrison et al.
    2008, Eqs. 3-4: x_j <- x_j e^{-1/tau+} + s_j, y_i <- y_i e^{-1/tau-} + s_i; the traces are
    read before this step's spikes, so dt = 0 does not pair) and, with ``bounds``, Song, Miller
    & Abbott 2000's clipping of every weight to [w_min, w_max] after each step's update."""
    x, y = np.zeros(pre.shape[1]), np.zeros(post.shape[1])
    w = np.asarray(w0, np.float64).copy()
    for t in range(pre.shape[0]):
        x, y = x * np.exp(-1.0 / tau_plus), y * np.exp(-1.0 / tau_minus)
        w = w + a_plus * np.outer(x, post[t]) - a_minus * np.outer(pre[t], y)
        if bounds is not None:
            w = np.clip(w, *bounds)
        x, y = x + pre[t], y + post[t]
    return w


def _bounded_net(params, event_driven, seed=0, T=600):
    """Input spikes (rate 0.1) -> LIF targets through the plastic connection (delay 1); a
    second input group drives the targets one-to-one, so they fire at random times too."""
    from neurorl.core.network import Connection, LearningRule, Network, NeuronGroup, SpikeMonitor

    n_pre, n_post = 12, 6
    pre_g = NeuronGroup(n_pre, "Input", name="pre")
    drive = NeuronGroup(n_post, "Input", name="drive")
    post_g = NeuronGroup(n_post, "LIF", {"tau_mem": 10.0}, name="post")
    c = Connection(pre_g, post_g, "all_to_all", weight={"init": "uniform", "low": 0.0,
                   "high": 0.3}, delay=1, name="c", seed=seed)
    d = Connection(drive, post_g, "one_to_one", weight=2.0, delay=0, name="d")
    rule = LearningRule(c, "STDP", params, name="L", event_driven=event_driven)
    net = Network(pre_g, drive, post_g, c, d, rule, SpikeMonitor(pre_g, name="zpre"),
                  SpikeMonitor(post_g, name="zpost")).compile(seed=seed)
    rng = np.random.default_rng(seed)
    inputs = {"pre": (rng.random((T, n_pre)) < 0.1).astype(np.float32),
              "drive": (rng.random((T, n_post)) < 0.08).astype(np.float32)}
    s0 = net.init(jax.random.key(seed))
    s, rec = net.run(s0, inputs)
    zpre, zpost = np.asarray(rec["zpre"]), np.asarray(rec["zpost"])
    arriving = np.concatenate([np.zeros((1, n_pre), np.float32), zpre[:-1]])  # delay 1
    return np.asarray(s0["weights"]["c"]), np.asarray(s["weights"]["c"]), arriving, zpost


SONG = {"a_plus": 0.01, "a_minus": 0.0105, "tau_plus": 20.0, "tau_minus": 20.0}


@pytest.mark.parametrize("event_driven", [False, True])
def test_additive_hard_bounds_match_song_loop(event_driven):
    """LearningRule(conn, "STDP", {..., hard_bounds: True}) on random spike trains: the weights
    equal the numpy loop of additive STDP clipped to [w_min, w_max] after every step, stay in
    the bounds exactly, and reach both bounds (the clipping acts); without the clip the loop
    ends elsewhere (the comparison can tell)."""
    lo, hi = 0.05, 0.25
    params = {**SONG, "a_plus": 0.03, "a_minus": 0.04, "hard_bounds": True, "w_min": lo,
              "w_max": hi}
    w0, w, pre, post = _bounded_net(params, event_driven)
    assert pre.sum() > 200 and post.sum() > 100, "the test network must fire"
    ref = _song_loop(pre, post, w0, 0.03, 0.04, 20.0, 20.0, (lo, hi))
    np.testing.assert_allclose(w, ref, rtol=1e-5, atol=1e-6)
    assert w.min() >= np.float32(lo) and w.max() <= np.float32(hi)
    assert (w == np.float32(lo)).any() and (w == np.float32(hi)).any()
    free = _song_loop(pre, post, w0, 0.03, 0.04, 20.0, 20.0, None)
    assert np.abs(free - ref).max() > 0.05


def test_additive_default_unbounded_unchanged():
    """The default additive rule has no bounds (as before hard_bounds existed): the weights
    equal the unclipped numpy loop and leave [0, 1]."""
    assert stdp().bounds is None and stdp(variant="multiplicative").bounds is None
    w0, w, pre, post = _bounded_net({**SONG, "a_plus": 0.03, "a_minus": 0.04}, False)
    ref = _song_loop(pre, post, w0, 0.03, 0.04, 20.0, 20.0, None)
    np.testing.assert_allclose(w, ref, rtol=1e-5, atol=1e-6)
    assert w.min() < 0.0


def test_hard_bounds_rule_update_is_the_clipped_step():
    """The bare rule: ``update`` returns w - clip(w + m Delta w), so sgd(1.0) lands on the
    clipped weights (to one rounding); ``bounds`` carries (w_min, w_max)."""
    rule = stdp(a_plus=0.5, a_minus=0.5, hard_bounds=True, w_min=-0.1, w_max=0.6)
    assert rule.bounds == (-0.1, 0.6)
    w = jnp.array([[0.3], [0.0]], jnp.float32)
    s = rule.init(w)
    s = rule.accumulate(s, jnp.array([1.0, 0.0]), jnp.zeros(1))
    s = rule.accumulate(s, jnp.zeros(2), jnp.ones(1))  # pre 1 before post: LTP on row 0
    s = rule.accumulate(s, jnp.array([0.0, 1.0]), jnp.zeros(1))  # post 1 before pre: LTD row 1
    g, _ = rule.update(s, 1.0, w)
    ltp, ltd = 0.5 * np.exp(-1 / 20), 0.5 * np.exp(-1 / 20)
    expect = np.clip(np.array([0.3 + ltp, 0.0 - ltd]), -0.1, 0.6)
    np.testing.assert_allclose(np.asarray(w - g)[:, 0], expect, rtol=1e-6)
    assert expect[0] == 0.6 and expect[1] == -0.1


def test_bounds_config_errors():
    from neurorl.core.network import Connection, LearningRule, NeuronGroup

    with pytest.raises(ConfigError, match=r"stdp\.w_max.*> w_min"):
        stdp(hard_bounds=True, w_min=0.5, w_max=0.5)
    with pytest.raises(ConfigError, match=r"stdp\.w_max.*> w_min"):
        stdp(variant="multiplicative", w_min=1.0, w_max=0.2)
    with pytest.raises(ConfigError, match=r"stdp\.hard_bounds.*True or False"):
        stdp(hard_bounds="yes")
    with pytest.raises(ConfigError, match=r"stdp\.w_min.*finite"):
        stdp(hard_bounds=True, w_min=float("nan"))
    with pytest.raises(ConfigError, match=r"stdp\.w_max.*hard_bounds=True"):
        stdp(w_max=1.0)  # additive ignores w_max without hard_bounds: say so
    a, b = NeuronGroup(3, "Input", name="a"), NeuronGroup(2, "LIF", name="b")
    with pytest.raises(ConfigError, match=r"stdp\.w_max.*> w_min = 0.0"):
        LearningRule(Connection(a, b), "STDP", {"hard_bounds": True, "w_max": -1.0})
    with pytest.raises(ConfigError) as e:  # a misspelt parameter: the closest one
        LearningRule(Connection(a, b), "STDP", {"hardbounds": True})
    assert e.value.field == "LearningRule(STDP).params.hardbounds"
    assert e.value.suggestion == "hard_bounds"
