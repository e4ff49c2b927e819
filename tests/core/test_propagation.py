"""Event-driven propagation against the clock-driven paths (dense matmul, padded fan-in gather).

The event path adds the same products ``w_ij * 1`` as the clock-driven ones; only the order of
the additions into one target can differ. The networks here use dyadic weights (exact partial
sums, like a chip's weight grid) so the spike trains must agree bit for bit over thousands of
steps: any dropped, duplicated or misrouted event would change them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.core import Connection, LearningRule, Network, NeuronGroup, SpikeMonitor
from neurorl.core import propagation as prop
from neurorl.errors import ConfigError

LIF = {"tau_mem": 20.0, "v_th": 10.0, "v_reset": 0.0, "dt": 0.1, "t_ref": 2.0, "reset": "zero",
       "integration": "exponential", "r": 1.0}


def _cuba_like(propagation, *, n_e=400, n_i=100, p=0.1, delay=1, storage="sparse",
               capacity=None, seed=3):
    """A CUBA-like E/I network (constant drive above threshold, exponential synapses)."""
    exc = NeuronGroup(n_e, "LIF", LIF, name="exc", bias=11.0, v_init=(0.0, 10.0),
                      sign="excitatory")
    inh = NeuronGroup(n_i, "LIF", LIF, name="inh", bias=11.0, v_init=(0.0, 10.0),
                      sign="inhibitory")
    objs = [exc, inh, SpikeMonitor(exc), SpikeMonitor(inh)]
    for src, w, tau in ((exc, 1.25, 5.0), (inh, 4.5, 10.0)):  # dyadic weights
        for tgt in (exc, inh):
            objs.append(Connection(src, tgt, "probabilistic", p=p, weight=w, delay=delay,
                                   synapse="exponential", tau_syn=tau, storage=storage,
                                   propagation=propagation, event_capacity=capacity))
    return Network(objs).compile(seed=seed)


def _spikes(cn, steps, key=0):
    state = cn.init(jax.random.PRNGKey(key))
    _, rec = cn.run(state, steps=steps)
    return np.concatenate([np.asarray(rec["spikes_exc"]), np.asarray(rec["spikes_inh"])], 1)


@pytest.mark.parametrize("delay", [1, (1, 4)])
def test_event_equals_gather_spike_for_spike(delay):
    ev, ga = _cuba_like("event", delay=delay), _cuba_like("gather", delay=delay)
    assert set(ev.propagation().values()) == {f"event[{ev._conf['exc->exc']['capacity']}]",
                                              f"event[{ev._conf['inh->exc']['capacity']}]"}
    assert set(ga.propagation().values()) == {"gather"}
    s_ev, s_ga = _spikes(ev, 1500), _spikes(ga, 1500)
    assert s_ga.sum() > 500  # the network is active (and recurrent input shapes it)
    np.testing.assert_array_equal(s_ev, s_ga)


def test_event_dense_storage_equals_matmul():
    kw = dict(n_e=160, n_i=40, p=0.2, storage="dense")
    s_ev, s_de = _spikes(_cuba_like("event", **kw), 1500), _spikes(_cuba_like("dense", **kw), 1500)
    assert s_de.sum() > 200
    np.testing.assert_array_equal(s_ev, s_de)


def test_staged_simulate_event_equals_run():
    cn = _cuba_like("event", delay=(1, 3))
    state = cn.init(jax.random.PRNGKey(1))
    _, rec = cn.run(state, steps=400)
    _, _, rec2, counts = cn.simulate(state["weights"], cn.dynamic(state), cn.traces(state),
                                     steps=400)
    np.testing.assert_array_equal(np.asarray(rec["spikes_exc"]), np.asarray(rec2["spikes_exc"]))
    np.testing.assert_array_equal(np.asarray(counts["inh"]),
                                  np.asarray(rec["spikes_inh"]).sum(0))


def test_event_path_under_vmap_equals_single_runs():
    # under vmap the tier switch becomes a select of every branch: still the same spikes
    cn = _cuba_like("event", n_e=200, n_i=50, p=0.2)
    states = jax.vmap(cn.init)(jax.random.split(jax.random.PRNGKey(5), 2))
    _, rec = jax.jit(jax.vmap(lambda s: cn._run(cn.params, cn.structure, s, {}, {},
                                                steps=300)))(states)
    for i in range(2):
        one = jax.tree.map(lambda x, i=i: x[i], states)
        _, r1 = cn.run(one, steps=300)
        np.testing.assert_array_equal(np.asarray(rec["spikes_exc"][i]),
                                      np.asarray(r1["spikes_exc"]))


def test_overflow_takes_the_clock_driven_path_not_a_truncated_list():
    # capacity 2 while tens of neurons fire in a step: most steps overflow
    cn = _cuba_like("event", capacity=2)
    s_ev, s_ga = _spikes(cn, 800), _spikes(_cuba_like("gather"), 800)
    per_step = s_ga[:, :400].sum(1)
    assert per_step.max() > 2  # overflow happened
    np.testing.assert_array_equal(s_ev, s_ga)


def test_event_current_overflow_policy_unit():
    # 3 sources, each with two targets; a marker fallback shows which path ran
    pre, post = np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 0, 2])
    w = jnp.asarray([[1.0, 2.0, 0.0], [0.0, 3.0, 0.0], [4.0, 0.0, 5.0]])  # dense [pre, post]
    t = prop.fanout_tables(pre, post, pre * 3 + post, 3, 3, None)
    marker = lambda: jnp.full((3,), -1.0)  # noqa: E731
    cur = lambda a, cap: prop.event_current(jnp.asarray(a), w.reshape(-1),  # noqa: E731
                                            jnp.asarray(t["ev_post"][0]),
                                            jnp.asarray(t["ev_pos"][0]), 3, cap, marker)
    np.testing.assert_array_equal(cur([1.0, 0.0, 1.0], 2), [5.0, 2.0, 5.0])
    np.testing.assert_array_equal(cur([1.0, 1.0, 0.0], 2), [1.0, 5.0, 0.0])
    np.testing.assert_array_equal(cur([1.0, 1.0, 1.0], 2), [-1.0, -1.0, -1.0])  # overflow
    np.testing.assert_array_equal(cur([0.0, 0.0, 0.0], 2), [0.0, 0.0, 0.0])


def _plastic(propagation):
    """Input spikes (at most one source per step) -> LIF through an STDP connection."""
    inp = NeuronGroup(50, "Input", name="inp")
    out = NeuronGroup(30, "LIF", {"tau_mem": 10.0, "v_th": 1.0}, name="out", sign="excitatory")
    c = Connection(inp, out, "probabilistic", p=0.5, weight={"init": "uniform", "low": 0.2,
                                                            "high": 0.9}, propagation=propagation)
    # the propagation paths alone, bit for bit: the rule stays clock-driven on both (event-
    # driven plasticity, equal to rounding, is tests/plasticity/test_event_plasticity.py's)
    rule = LearningRule(c, "stdp", {"a_plus": 0.02, "a_minus": 0.021}, event_driven=False)
    return Network(inp, out, c, rule, SpikeMonitor(out)).compile(seed=1)


def test_plastic_connection_event_equals_dense():
    rng = np.random.default_rng(0)
    T = 1500
    x = np.zeros((T, 50), np.float32)
    on = rng.random(T) < 0.6
    x[np.arange(T)[on], rng.integers(0, 50, on.sum())] = 1.0
    res = {}
    for p in ("event", "dense"):
        cn = _plastic(p)
        assert cn.propagation()["inp->out"].startswith(p)
        state, rec = cn.run(cn.init(jax.random.PRNGKey(0)), x)
        res[p] = (np.asarray(rec["spikes_out"]), np.asarray(state["weights"]["inp->out"]))
    w0 = np.asarray(_plastic("dense").init(jax.random.PRNGKey(0))["weights"]["inp->out"])
    assert res["dense"][0].sum() > 50 and not np.allclose(res["dense"][1], w0)  # it learned
    np.testing.assert_array_equal(res["event"][0], res["dense"][0])
    np.testing.assert_array_equal(res["event"][1], res["dense"][1])


def test_auto_keeps_dense_for_small_networks_and_events_for_large_sparse():
    a = NeuronGroup(64, "LIF", name="a")
    b = NeuronGroup(32, "LIF", name="b")
    inp = NeuronGroup(3000, "Input", name="inp")
    big = NeuronGroup(3000, "LIF", name="big")
    net = Network(a, b, inp, big, Connection(a, b), Connection(b, a, "probabilistic", p=0.5),
                  Connection(inp, big, "probabilistic", p=0.02),
                  Connection(big, big, "probabilistic", p=0.02))
    got = net.compile().propagation()
    assert got["a->b"] == "dense" and got["b->a"] == "dense"
    assert got["inp->big"] == "gather"  # analog source: every neuron "fires"
    assert got["big->big"] == "event[30]"  # 5 % of 3000


def test_propagation_errors():
    a, b = NeuronGroup(4, "LIF"), NeuronGroup(4, "LIF")
    with pytest.raises(ConfigError, match="event"):
        Connection(a, b, propagation="evnt")
    with pytest.raises(ConfigError, match="event_capacity"):
        Connection(a, b, event_capacity=0)
    with pytest.raises(ConfigError, match="gather"):
        Network(a, b, Connection(a, b, propagation="gather")).compile()
    with pytest.raises(ConfigError, match="dense"):
        Network(a, b, Connection(a, b, storage="sparse", propagation="dense")).compile()


@pytest.mark.parametrize("n,cap", [(1, 1), (7, 3), (3200, 32), (10_007, 64)])
def test_spike_list_is_the_first_active_indices_in_order(n, cap):
    rng = np.random.default_rng(n)
    for frac in (0.0, 0.001, 0.01, 0.5):
        a = (rng.random(n) < frac).astype(np.float32)
        idx, fits = prop.spike_list(jnp.asarray(a), cap)
        want = np.flatnonzero(a)
        assert bool(fits) == (len(want) <= cap)
        m = min(len(want), cap)
        np.testing.assert_array_equal(np.asarray(idx)[:m], want[:m])
        if len(want) <= cap:
            assert np.all(np.asarray(idx)[m:] == n)


def test_fanout_tables_sorted_fast_path_equals_lexsort():
    """Edge lists sorted by (pre, post) skip the sort; the tables equal those of the same edges
    in any order (which take np.lexsort)."""
    from neurorl.core import connectivity as cx
    from neurorl.core.propagation import fanout_tables

    rng = np.random.default_rng(0)
    for rule, kw in (("probabilistic", {"p": 0.05}), ("fixed_fan_in", {"k": 7})):
        pre, post = cx.build_edges(rule, 0, 300, 200, **kw)
        for delay in (None, rng.integers(1, 4, len(pre)).astype(np.int32)):
            pos = np.arange(len(pre))
            perm = rng.permutation(len(pre))
            a = fanout_tables(pre, post, pos, 300, 200, delay)
            b = fanout_tables(pre[perm], post[perm], pos[perm], 300, 200,
                              None if delay is None else delay[perm])
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])
