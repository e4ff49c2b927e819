"""The N-HAL simulator against a plain numpy loop of the model equations, spike for spike.

The reference re-implements, from the equations in neurons.py's docstring (Bellec et al. 2020,
Eq. 2-3; snnTorch Leaky) and the network semantics in network.py's docstring, a three-group
network with delays (per connection and per synapse), Dale's law, one_to_one, probabilistic and
fixed-fan-in (sparse) connections and an exponential synapse.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.core import (
    Connection,
    LearningRule,
    Network,
    NeuronGroup,
    PotentialMonitor,
    SpikeMonitor,
)

T = 60


def _net():
    a = NeuronGroup(20, "LIF", {"tau_mem": 10.0}, name="a")
    b = NeuronGroup(25, "LIF", {"tau_mem": 20.0}, name="b", sign="inhibitory")
    c = NeuronGroup(25, "LIF", {"tau_mem": 15.0, "v_th": 0.8}, name="c")
    ab = Connection(a, b, "probabilistic", p=0.3, weight={"init": "uniform", "low": 0.1,
                                                          "high": 0.5}, delay=2)
    bc = Connection(b, c, "one_to_one", weight=0.6, delay=(1, 3))  # Dale: becomes -0.6
    ac = Connection(a, c, "fixed_fan_in", k=6, weight={"init": "normal", "mean": 0.3,
                                                       "std": 0.1}, storage="sparse",
                    synapse="exponential", tau_syn=5.0)
    cb = Connection(c, b, "all_to_all", weight={"init": "normal", "mean": 0.0, "std": 0.1},
                    delay=3)
    net = Network(a, b, c, ab, bc, ac, cb, SpikeMonitor(a), SpikeMonitor(b), SpikeMonitor(c),
                  PotentialMonitor(c))
    return net.compile(seed=1)


def _inputs(key, batch=()):
    return {"a": jax.random.uniform(key, (*batch, T, 20)) * 0.45}


def _reference(cn, state, x, delay_shift=0):
    """Numpy loop of the equations. ``delay_shift`` deliberately mis-times the delays."""
    W = cn.dense_weights(state)
    D = {n: d + delay_shift * (d > 0) for n, d in cn.delays().items()}
    groups = cn.groups
    v = {g: np.zeros(grp.n, np.float32) for g, grp in groups.items()}
    z = {g: np.zeros(grp.n, np.float32) for g, grp in groups.items()}
    i_syn = {n: np.zeros(c.target.n, np.float32) for n, c in cn.connections.items()}
    hist = {g: [] for g in groups}  # hist[g][t] = spikes at step t
    out = {g: [] for g in groups}
    vc = []
    for t in range(T):
        drive = {g: np.zeros(grp.n, np.float32) for g, grp in groups.items()}
        drive["a"] += np.asarray(x["a"][t])
        for n, c in cn.connections.items():
            cur = np.zeros(c.target.n, np.float32)
            pre, post = np.nonzero(D[n])
            for i, j in zip(pre, post, strict=True):
                ts = t - D[n][i, j]
                if ts >= 0:
                    cur[j] += W[n][i, j] * hist[c.source.name][ts][i]
            if c.synapse == "exponential":
                i_syn[n] = np.exp(-1.0 / c.tau_syn) * i_syn[n] + cur
                cur = i_syn[n]
            drive[c.target.name] += cur
        for g, grp in groups.items():
            p = grp.params
            alpha = np.exp(-1.0 / p.tau_mem)
            v[g] = alpha * v[g] + drive[g] - p.v_th * z[g]  # delayed subtractive reset
            z[g] = (v[g] > p.v_th).astype(np.float32)
            hist[g].append(z[g].copy())
            out[g].append(z[g].copy())
        vc.append(v["c"].copy())
    return {g: np.stack(o) for g, o in out.items()}, np.stack(vc)


@pytest.fixture(scope="module")
def compiled():
    cn = _net()
    state = cn.init(jax.random.PRNGKey(0))
    x = _inputs(jax.random.PRNGKey(1))
    state_T, rec = cn.run(state, x)
    return cn, state, x, state_T, rec


def test_network_matches_numpy_reference_spike_for_spike(compiled):
    cn, state, x, _, rec = compiled
    assert cn.storage() == {"a->b": "dense", "b->c": "dense", "a->c": "sparse", "c->b": "dense"}
    W = cn.dense_weights(state)
    assert (W["b->c"] <= 0).all() and (W["b->c"] < 0).sum() == 25  # Dale: b is inhibitory
    assert (cn.delays()["b->c"][np.arange(25), np.arange(25)] >= 1).all()
    ref, vc = _reference(cn, state, x)
    for g in ("a", "b", "c"):
        assert ref[g].sum() > 10, f"group {g} must spike for the test to mean anything"
        np.testing.assert_array_equal(np.asarray(rec[f"spikes_{g}"]), ref[g], err_msg=g)
    np.testing.assert_allclose(np.asarray(rec["v_c"]), vc, rtol=1e-4, atol=1e-4)


def test_wrong_delay_in_reference_is_caught(compiled):
    """The comparison can fail: the same reference with every delay one step longer differs."""
    cn, state, x, _, rec = compiled
    ref, _ = _reference(cn, state, x, delay_shift=1)
    assert any(
        not np.array_equal(np.asarray(rec[f"spikes_{g}"]), ref[g]) for g in ("b", "c")
    )


@pytest.mark.slow
def test_eager_jit_vmap_agree(compiled):
    cn, state, x, state_T, rec = compiled
    # step-by-step (python loop over the jitted step) == scan
    s = state
    zs = []
    for t in range(T):
        s, out = cn.step(s, {"a": x["a"][t]})
        zs.append(out["spikes_c"])
    np.testing.assert_array_equal(np.stack(zs), np.asarray(rec["spikes_c"]))
    # eager (no jit at all) == jit; every eager primitive compiles on its own, so few steps,
    # started late enough (t = 8) that delayed spikes of all groups are in flight
    s = state
    for t in range(8):
        s, _ = cn.step(s, {"a": x["a"][t]})
    with jax.disable_jit():
        _, rec_e = cn.run(s, {"a": x["a"][8:11]})
    np.testing.assert_array_equal(np.asarray(rec_e["spikes_c"]), np.asarray(rec["spikes_c"][8:11]))
    np.testing.assert_allclose(np.asarray(rec_e["v_c"]), np.asarray(rec["v_c"][8:11]), atol=1e-5)
    # vmap over keys and inputs == one at a time
    keys = jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(7)])
    states = jax.vmap(cn.init)(keys)
    xb = {"a": jnp.stack([x["a"], x["a"] * 1.1])}
    _, rec_b = jax.vmap(cn.run)(states, xb)
    np.testing.assert_array_equal(np.asarray(rec_b["spikes_c"][0]), np.asarray(rec["spikes_c"]))
    _, rec_1 = cn.run(cn.init(keys[1]), {"a": xb["a"][1]})
    np.testing.assert_array_equal(np.asarray(rec_b["spikes_c"][1]), np.asarray(rec_1["spikes_c"]))


def test_no_recompilation_when_values_change(compiled):
    cn, state, x, state_T, _ = compiled
    n_run, n_init = cn._run_jit._cache_size(), cn._init_jit._cache_size()
    s2 = cn.init(jax.random.PRNGKey(3))  # new key -> new weights, new structure-free values
    s2["weights"]["a->b"] = s2["weights"]["a->b"] * 2.0
    cn.run(s2, {"a": x["a"] * 0.5})
    cn.run(state_T, _inputs(jax.random.PRNGKey(9)))  # continue from a run
    cn.params["neurons"]["a"] = cn.params["neurons"]["a"].replace(tau_mem=12.0)  # traced leaf
    cn.run(state, x)
    assert cn._run_jit._cache_size() == n_run
    assert cn._init_jit._cache_size() == n_init


def test_bias_v_init_and_autonomous_run():
    g = NeuronGroup(50, "LIF", {"tau_mem": 10.0, "reset": "zero"}, bias=0.2, v_init=(0.0, 1.0))
    cn = Network(g, SpikeMonitor(g), PotentialMonitor(g)).compile()
    s = cn.init(jax.random.PRNGKey(0))
    v0 = np.asarray(s["neurons"]["group0"].v)
    assert v0.min() >= 0 and v0.max() < 1 and v0.std() > 0.2
    _, rec = cn.run(s, steps=200)
    # constant drive 0.2 with alpha = exp(-0.1): v_inf = 0.2 / (1 - alpha) = 2.1 > 1 -> fires
    # regularly (zero reset) with period n where v_n = 0.2 (1 - alpha^n) / (1 - alpha) > 1 first
    # (n = 7)
    alpha = np.exp(-0.1)
    n = next(k for k in range(1, 50) if 0.2 * (1 - alpha**k) / (1 - alpha) > 1)
    counts = np.asarray(rec["spikes_group0"][100:]).sum(0)
    np.testing.assert_allclose(counts, 100 / n, atol=1.01)


@pytest.mark.slow
def test_10k_neurons_1m_synapses_one_second():
    """10,000 LIF neurons, ~1M sparse synapses, 1,000 steps of 1 ms: fits in memory and runs."""
    g = NeuronGroup(10_000, "LIF", {"tau_mem": 20.0}, bias=0.06, v_init=(0.0, 1.0), input=True)
    c = Connection(g, g, "probabilistic", p=0.01, weight={"init": "normal", "mean": 0.0,
                                                          "std": 0.05})
    cn = Network(g, c, SpikeMonitor(g)).compile(seed=0)
    assert cn.storage() == {"group0->group0": "sparse"}
    n_syn = cn.n_synapses()["group0->group0"]
    assert 0.99e6 < n_syn < 1.01e6
    s = cn.init(jax.random.PRNGKey(0))
    s, rec = cn.run(s, steps=1000)
    z = np.asarray(rec["spikes_group0"])
    assert z.shape == (1000, 10_000) and np.isfinite(np.asarray(s["neurons"]["group0"].v)).all()
    assert 0 < z.mean() < 0.5


def test_stdp_learning_rule_inside_scan():
    """Plasticity wiring: the network's in-scan weights equal the rule applied by hand to the
    recorded (delayed) pre spikes and post spikes, with optax.sgd(1.0) (w += Delta w); a pre
    spike one step before each post spike potentiates (Song, Miller & Abbott 2000)."""
    from neurorl.plasticity import RULES

    T_ = 40
    lif = {"tau_mem": 10.0, "reset": "zero"}
    a = NeuronGroup(3, "LIF", lif, name="a", input=True)
    b = NeuronGroup(2, "LIF", lif, name="b", input=True)
    c = Connection(a, b, "all_to_all", weight=0.2, delay=1)
    params = {"a_plus": 0.01, "a_minus": 0.012, "tau_plus": 20.0, "tau_minus": 20.0}
    rule = LearningRule(c, "stdp", params)
    cn = Network(a, b, c, rule, SpikeMonitor(a), SpikeMonitor(b)).compile()
    xa = np.zeros((T_, 3), np.float32)
    xb = np.zeros((T_, 2), np.float32)
    xa[[5, 15, 25], 0] = 2.0  # a0 fires at 5, 15, 25 -> arrives at 6, 16, 26
    xb[[7, 17, 27], 0] = 2.0  # b0 fires 1 step after the arrival: causal -> LTP on w[0, 0]
    xa[[10, 20], 1] = 2.0  # a1 arrives at 11, 21, after b1 fired at 9, 19: LTD on w[1, 1]
    xb[[9, 19], 1] = 2.0
    s0 = cn.init(jax.random.PRNGKey(0))
    s, rec = cn.run(s0, {"a": xa, "b": xb}, modulators=np.ones(T_, np.float32))
    za, zb = np.asarray(rec["spikes_a"]), np.asarray(rec["spikes_b"])
    assert za[:, 0].sum() == 3 and zb[:, 0].sum() == 3
    r = RULES["stdp"](**params)
    w = jnp.asarray(np.asarray(s0["weights"]["a->b"]))
    rs = r.init(w)
    for t in range(T_):
        pre = za[t - 1] if t >= 1 else np.zeros(3, np.float32)
        rs = r.accumulate(rs, jnp.asarray(pre), jnp.asarray(zb[t]), s["neurons"]["b"])
        g, rs = r.update(rs, jnp.float32(1.0), w)
        w = w - g
    W = np.asarray(s["weights"]["a->b"])
    np.testing.assert_allclose(W, np.asarray(w), rtol=1e-5, atol=1e-7)
    assert W[0, 0] > 0.2 + 0.01 and W[1, 1] < 0.2 - 0.01
    assert cn._run_jit._cache_size() == 1


def test_chip_backend_projects_weights_and_jax_is_identity():
    a = NeuronGroup(8, "LIF", name="a")
    b = NeuronGroup(6, "LIF", name="b")
    c = Connection(a, b, weight={"init": "uniform", "low": 0.0, "high": 0.9})
    cj = Network(a, b, c).compile(backend="jax")
    assert cj.project is None
    w_j = np.asarray(cj.init(jax.random.PRNGKey(0))["weights"]["a->b"])
    cl = Network(a, b, c).compile(backend="Loihi2")
    w_l = np.asarray(cl.init(jax.random.PRNGKey(0))["weights"]["a->b"])
    np.testing.assert_allclose(np.asarray(cl.project(jnp.asarray(w_l))), w_l)  # on the grid
    assert len(np.unique(w_l)) < len(np.unique(w_j))
    assert np.abs(w_l - w_j).max() < 0.05


def _staged_net():
    inp = NeuronGroup(6, "Input", name="inp")
    a = NeuronGroup(12, "LIF", {"tau_mem": 8.0, "t_ref": 2.0}, name="a")
    b = NeuronGroup(10, "ALIF", {"tau_mem": 12.0, "beta": 0.4}, name="b", sign="inhibitory")
    c = NeuronGroup(300, "CubaLIF", {"tau_mem": 10.0}, name="c")
    d = NeuronGroup(3, "LI", {"tau_mem": 5.0}, name="d")
    e = NeuronGroup(4, "Izhikevich", {"regime": "FS"}, name="e", input=False)
    conns = [
        Connection(inp, a, weight={"init": "uniform", "low": 0.0, "high": 1.5}, delay=0),
        Connection(a, a, "probabilistic", p=0.3, allow_self=False, weight=0.4, delay=2),
        Connection(a, b, weight=0.5, delay=1, synapse="exponential", tau_syn=4.0),
        Connection(b, a, weight=0.3, delay=1),
        Connection(a, c, "probabilistic", p=0.05, weight=2.0, delay=3, storage="sparse"),
        Connection(c, d, weight={"init": "normal", "std": 0.3}, delay=0),
        Connection(b, d, weight=0.2, delay=2, synapse="exponential", tau_syn=3.0),
        Connection(inp, e, weight=8.0, delay=(1, 3)),
    ]
    mons = [SpikeMonitor(a), SpikeMonitor(c), PotentialMonitor(d), PotentialMonitor(b, field="a"),
            SpikeMonitor(e)]
    return Network(inp, a, b, c, d, e, *conns, *mons)


@pytest.mark.parametrize("T", [1, 7, 40])
def test_staged_simulation_equals_step_by_step(T):
    """The staged simulator (one scan per strongly connected stage, currents from earlier stages
    computed for all T steps at once) is exactly T synchronous steps: delays 0-3, per-synapse
    delays, exponential synapses, a recurrent E/I loop, sparse storage, every neuron model."""
    cn = _staged_net().compile()
    # a per-synapse-delay connection keeps its two ends in one stage
    assert [set(s) for s in cn.stages] == [{"inp", "e"}, {"a", "b"}, {"c"}, {"d"}]
    s0 = cn.init(jax.random.PRNGKey(1))
    x = np.random.default_rng(0).random((2 * T, 6)).astype(np.float32) * 2.0
    dyn, tr, rec, counts = cn.simulate(s0["weights"], cn.dynamic(s0), cn.traces(s0),
                                       {"inp": x[:T]})
    dyn, tr, rec2, counts2 = cn.simulate(s0["weights"], dyn, tr, {"inp": x[T:]})
    s_ref, rec_ref = cn.run(s0, {"inp": x})
    assert float(np.asarray(rec_ref["spikes_a"]).sum()) > 0
    for k in rec_ref:
        got = np.concatenate([np.asarray(rec[k]), np.asarray(rec2[k])])
        np.testing.assert_allclose(got, np.asarray(rec_ref[k]), rtol=1e-5, atol=1e-5, err_msg=k)
    for g in cn.groups:
        np.testing.assert_allclose(np.asarray(dyn["neurons"][g].v),
                                   np.asarray(s_ref["neurons"][g].v), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(np.asarray(dyn["history"][g]),
                                      np.asarray(s_ref["history"][g]))
    np.testing.assert_allclose(np.asarray(counts["c"]) + np.asarray(counts2["c"]),
                               np.asarray(rec_ref["spikes_c"]).sum(0))


def test_delay0_cycle_is_refused_with_the_groups_named():
    from neurorl.errors import ConfigError

    a, b = NeuronGroup(2, name="a"), NeuronGroup(2, name="b")
    net = Network(a, b, Connection(a, b, delay=0), Connection(b, a, delay=0))
    with pytest.raises(ConfigError, match=r"\['a', 'b'\]"):
        net.compile()
