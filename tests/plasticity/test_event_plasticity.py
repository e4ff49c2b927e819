"""Event-driven STDP / R-STDP (lazy traces, row/column updates) against the clock-driven rules.

The clock-driven path (``event_driven=False``) is the reference: it is tested against the
analytic pairing window and numpy loops of the papers' equations in test_stdp.py. The event
path must give the same spikes and the same weights to the rounding of its decay powers
(``decay ** n`` is one ``pow`` where the clock multiplies by ``decay`` n times: a few ulp of
relative difference per step elapsed, below 1e-5 here).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurorl.core.network import (
    Connection,
    LearningRule,
    Network,
    NeuronGroup,
    SpikeMonitor,
)
from neurorl.errors import ConfigError
from neurorl.plasticity.stdp import stdp_event

N_IN, N_OUT, T = 120, 60, 400


def _net(rule, params, event, *, capacity=None, recurrent=False, optimizer=None,
         propagation="event"):
    inp = NeuronGroup(N_IN, "Input", name="inp")
    out = NeuronGroup(N_OUT, "LIF", {"tau_mem": 10.0}, name="out", bias=0.1,
                      v_init=(0.0, 0.9))
    c = Connection(inp, out, "probabilistic", p=0.5, weight={"init": "uniform", "low": 0.0,
                   "high": 0.25}, delay=1, sign="excitatory", propagation=propagation,
                   event_capacity=capacity, seed=3)
    objs = [inp, out, c, SpikeMonitor(out, name="spk")]
    lr = LearningRule(c, rule, params, name="L", event_driven=event, optimizer=optimizer)
    objs.append(lr)
    if recurrent:
        rc = Connection(out, out, "probabilistic", p=0.2, weight={"init": "uniform", "low": 0.0,
                        "high": 0.1}, delay=2, sign="excitatory", propagation=propagation,
                        event_capacity=capacity, seed=4, name="rec")
        objs += [rc, LearningRule(rc, rule, params, name="R", event_driven=event)]
    return Network(*objs).compile(seed=0)


def _inputs(seed, rate):
    rng = np.random.default_rng(seed)
    return (rng.random((T, N_IN)) < rate).astype(np.float32)


def _expected_overflows(seed, rate, z_post, cap_pre, cap_post):
    """Steps whose arriving (delay 1) or postsynaptic spikes exceed the lists."""
    pre = np.concatenate([np.zeros((1, N_IN)), _inputs(seed, rate)[:-1]])
    return int(((pre.sum(1) > cap_pre) | (z_post.sum(1) > cap_post)).sum())


def _pair(rule, params, seed, rate, mods=None, **kw):
    out = []
    for event in (False, True):
        net = _net(rule, params, event, **kw)
        assert set(net.plasticity().values()) == {"event" if event else "clock"}
        st = net.init(jax.random.key(seed))
        st, rec = net.run(st, _inputs(seed, rate), modulators=mods)
        out.append((net, st, np.asarray(rec["spk"])))
    return out


def _assert_same(clock, event, seed, rtol=1e-5, atol=1e-7):
    (net, s0, z0), (_, s1, z1) = clock, event
    assert z0.sum() > 20, "the test network must fire"
    np.testing.assert_array_equal(z0, z1)
    w_init = net.init(jax.random.key(seed))["weights"]
    for n in s0["weights"]:
        w0, w1 = np.asarray(s0["weights"][n]), np.asarray(s1["weights"][n])
        assert np.abs(w0 - np.asarray(w_init[n])).max() > 1e-4, f"{n} must have learned"
        np.testing.assert_allclose(w1, w0, rtol=rtol, atol=atol)


STDP = {"a_plus": 0.01, "a_minus": 0.012, "tau_plus": 16.8, "tau_minus": 33.7}


@pytest.mark.parametrize("seed,rate", [(0, 0.02), (1, 0.05), (2, 0.1)])
def test_event_stdp_equals_clock(seed, rate):
    clock, event = _pair("stdp", STDP, seed, rate, capacity=0.5)
    _assert_same(clock, event, seed)
    n_over = int(event[1]["rules"]["L"]["rule"].overflows)
    assert n_over == _expected_overflows(seed, rate, event[2], N_IN // 2, N_OUT // 2)
    assert n_over < T // 2  # most steps took the event path


@pytest.mark.slow
@pytest.mark.parametrize("params", [
    {**STDP, "variant": "multiplicative", "w_max": 0.3},
    {**STDP, "pairing": "nearest"},
])
def test_event_stdp_variants_equal_clock(params):
    clock, event = _pair("stdp", params, 4, 0.05, recurrent=True)
    _assert_same(clock, event, 4)


def test_event_stdp_overflow_takes_dense_step_and_counts():
    """A step with more spikes than the lists hold is not dropped: it updates every synapse
    (same weights as the clock path) and is counted in the rule state."""
    clock, event = _pair("stdp", STDP, 5, 0.2, capacity=4)
    _assert_same(clock, event, 5)
    n_over = int(event[1]["rules"]["L"]["rule"].overflows)
    assert n_over == _expected_overflows(5, 0.2, event[2], 16, 16) > T // 2  # MIN_CAPACITY 16


RSTDP = {"a_plus": 1.0, "a_minus": 1.0, "tau_plus": 20.0, "tau_minus": 20.0, "tau_c": 200.0,
         "lr": 0.002}


def _learned_scale(run, seed):
    """Largest weight change of a run: the R-STDP comparisons allow 1e-4 of it. The weights
    sum ``lr d c`` over every step, each ``c`` decayed by one ``pow`` where the clock path
    multiplies up to T times (T eps_32 ~ 2e-5 relative on a term); a wrong decay, a missed
    spike or a missed update changes the weights by O(1) of the learned change."""
    net, st, _ = run
    w0 = net.init(jax.random.key(seed))["weights"]
    return max(float(np.abs(np.asarray(st["weights"][n]) - np.asarray(w0[n])).max())
               for n in w0)


@pytest.mark.slow
@pytest.mark.parametrize("kind,sparse", [("raw", True), ("reward_baseline", False),
                                         ("dopamine", True)])
def test_event_rstdp_equals_clock(kind, sparse):
    rng = np.random.default_rng(7)
    m = rng.normal(size=T).astype(np.float32)
    if sparse:
        m = np.where(rng.random(T) < 0.05, m, 0.0).astype(np.float32)
    params = {**RSTDP, "modulator_kind": kind}
    if kind == "dopamine":
        params["tau_d"] = 50.0
    clock, event = _pair("rstdp", params, 1, 0.05, mods={"L": m, "R": m}, recurrent=True)
    c0 = np.asarray(clock[1]["rules"]["L"]["rule"].eligibility)
    _assert_same(clock, event, 1, rtol=1e-5, atol=1e-4 * _learned_scale(clock, 1))
    ev = event[1]["rules"]["L"]["rule"]
    t = int(event[1]["t"]) - 1  # the eligibility after the last step, brought to that step
    age = t - np.maximum(np.asarray(ev.t_pre)[:, None], np.asarray(ev.t_post)[None, :])
    c1 = np.asarray(ev.eligibility) * np.exp(-1.0 / 200.0) ** age
    assert np.abs(c0).max() > 0.1
    # c sums LTP and LTD terms that cancel (a_plus = a_minus): compare to the scale of c
    np.testing.assert_allclose(c1, c0, rtol=1e-4, atol=1e-5 * np.abs(c0).max())


@pytest.mark.slow
def test_event_rstdp_overflow_equals_clock():
    params = {**RSTDP, "modulator_kind": "raw"}
    m = np.where(np.arange(T) % 50 == 49, 1.0, 0.0).astype(np.float32)
    clock, event = _pair("rstdp", params, 2, 0.2, mods={"L": m}, capacity=4)
    _assert_same(clock, event, 2, rtol=1e-5, atol=1e-4 * _learned_scale(clock, 2))
    assert int(event[1]["rules"]["L"]["rule"].overflows) > 0


def test_event_step_touches_only_rows_and_columns_of_spikes():
    rule = stdp_event(**STDP)
    key = jax.random.key(0)
    w = jax.random.uniform(key, (30, 20))
    st = rule.init(w)
    st = st.replace(x_pre=jnp.linspace(0, 1, 30), y_post=jnp.linspace(1, 0, 20))
    pre = jnp.zeros(30).at[jnp.array([3, 17])].set(1.0)
    post = jnp.zeros(20).at[jnp.array([5])].set(1.0)
    _, w2 = jax.jit(rule.step, static_argnums=(7, 8, 9))(
        st, w, pre, post, 1.0, jnp.int32(5), jnp.ones_like(w), lambda v: v, 16, 16)
    changed = np.asarray(w2 != w)
    touched = np.zeros((30, 20), bool)
    touched[[3, 17], :] = True
    touched[:, 5] = True
    assert changed[touched].mean() > 0.9 and not changed[~touched].any()
    # LTD of row 3 at the column that did not spike: a_minus y(t) = a_minus y0 decayed 5 steps
    y = float(st.y_post[0]) * np.exp(-1 / 33.7) ** 5
    np.testing.assert_allclose(float(w2[3, 0] - w[3, 0]), -0.012 * y, rtol=1e-5)


def test_auto_selection_and_errors():
    net = _net("stdp", STDP, "auto")
    assert net.plasticity() == {"L": "event"}
    assert _net("stdp", STDP, "auto", propagation="dense").plasticity() == {"L": "clock"}
    assert _net("stdp", STDP, "auto", optimizer=optax.sgd(0.5)).plasticity() == {"L": "clock"}
    with pytest.raises(ConfigError, match="event_driven"):
        _net("stdp", STDP, True, optimizer=optax.adam(1e-3))
    with pytest.raises(ConfigError, match="event_driven"):
        _net("stdp", STDP, "yes")
    st = net.init(jax.random.key(0))
    with pytest.raises(ConfigError, match="simulate"):
        net.simulate(st["weights"], net.dynamic(st), net.traces(st), _inputs(0, 0.05))
