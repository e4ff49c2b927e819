"""R-STDP with every modulator shape the network accepts: a scalar or one value per postsynaptic
neuron (``[n_post]`` per step, ``[T, n_post]`` in ``run``), for every ``modulator_kind``.

The running reward baseline and the dopamine level used to be scalars: a per-neuron modulator
turned them into ``[n_post]`` inside ``update``, and ``run``'s scan (clock and event paths)
stopped on a carry whose shape had changed. They are now kept per postsynaptic neuron. Checked
against a numpy loop of the rule's equations (Florian 2007 MSTDPET eligibility; Legenstein et
al. 2008 Eq. 3 baseline; Izhikevich 2007 dopamine), and, on a feed-forward network where each
postsynaptic neuron only sees its own column of weights, column j of a run with a per-neuron
modulator must equal column j of a run in which every neuron gets ``m[:, j]``.
"""

import jax
import numpy as np
import pytest

from neurorl.core.network import Connection, LearningRule, Network, NeuronGroup, SpikeMonitor
from neurorl.plasticity.rstdp import MODULATOR_KINDS, rstdp

N_PRE, N_POST, T = 6, 4, 40
PARAMS = {"a_plus": 1.0, "a_minus": 0.6, "tau_plus": 15.0, "tau_minus": 25.0, "tau_c": 80.0,
          "lr": 0.005, "baseline_rate": 0.2, "tau_d": 30.0, "tonic_da": 0.01}


def _numpy_rstdp(kind, pre, post, mods, w0):
    """Per-step loop of the equations: traces, eligibility, third factor, w += lr d c."""
    dp, dm = np.exp(-1 / PARAMS["tau_plus"]), np.exp(-1 / PARAMS["tau_minus"])
    dc, dd = np.exp(-1 / PARAMS["tau_c"]), np.exp(-1 / PARAMS["tau_d"])
    x, y = np.zeros(N_PRE), np.zeros(N_POST)
    c, w = np.zeros((N_PRE, N_POST)), w0.astype(np.float64).copy()
    b, da = np.zeros(N_POST), np.zeros(N_POST)
    for t in range(len(pre)):
        x, y = dp * x + pre[t], dm * y + post[t]
        c = dc * c + PARAMS["a_plus"] * np.outer(x, post[t]) - PARAMS["a_minus"] * np.outer(
            pre[t], y)
        m = np.broadcast_to(mods[t], (N_POST,))
        if kind == "reward_baseline":
            d = m - b
            b = b + PARAMS["baseline_rate"] * d
        elif kind == "dopamine":
            da = dd * da + m
            d = PARAMS["tonic_da"] + da
        else:
            d = m
        w = w + PARAMS["lr"] * d[None, :] * c
    return w, b, da


@pytest.mark.parametrize("per_neuron", [False, True])
@pytest.mark.parametrize("kind", MODULATOR_KINDS)
def test_rule_update_matches_numpy_for_each_modulator_shape(kind, per_neuron):
    rng = np.random.default_rng(7)
    pre = (rng.random((T, N_PRE)) < 0.3).astype(np.float32)
    post = (rng.random((T, N_POST)) < 0.3).astype(np.float32)
    mods = (rng.normal(size=(T, N_POST)) if per_neuron else rng.normal(size=T)).astype(np.float32)
    w0 = rng.uniform(0, 0.5, (N_PRE, N_POST)).astype(np.float32)
    rule = rstdp(modulator_kind=kind, **PARAMS)
    st, w = rule.init(w0), w0
    shapes = jax.tree.map(np.shape, st)
    for t in range(T):
        st = rule.accumulate(st, pre[t], post[t])
        grads, st = rule.update(st, mods[t], w)
        w = w - grads
        assert jax.tree.map(np.shape, st) == shapes  # the state keeps its shapes
    w_ref, b_ref, da_ref = _numpy_rstdp(kind, pre, post, mods, w0)
    np.testing.assert_allclose(np.asarray(w), w_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(st.baseline), b_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(st.dopamine), da_ref, rtol=1e-5, atol=1e-6)


def _net(kind, event):
    inp = NeuronGroup(N_PRE, "Input", name="inp")
    out = NeuronGroup(N_POST, "LIF", {"tau_mem": 10.0}, name="out", bias=0.05)
    c = Connection(inp, out, weight={"init": "uniform", "low": 0.2, "high": 0.6}, delay=0,
                   name="c")
    if kind == "stdp":  # plain STDP scales its window by the modulator too
        rule = LearningRule(c, "stdp", {}, name="r", event_driven=event)
    else:
        rule = LearningRule(c, "rstdp", {**PARAMS, "modulator_kind": kind}, name="r",
                            event_driven=event)
    return Network(inp, out, c, rule, SpikeMonitor(out, name="spk")).compile(seed=0)


@pytest.mark.parametrize("kind, event", [
    ("reward_baseline", False), ("reward_baseline", True), ("dopamine", False),
    ("dopamine", True), ("raw", False), ("stdp", False),  # raw / stdp events: no state to grow
], ids=["baseline-clock", "baseline-event", "dopamine-clock", "dopamine-event", "raw-clock",
        "stdp-clock"])
def test_network_run_with_per_neuron_modulator(kind, event):
    """``run`` with ``[T, n_post]`` modulators (it used to stop: the scan carry's baseline /
    dopamine changed shape, and under strict rank promotion ``[n_post] * [n_pre, n_post]``
    raised); each column equals that column of a run in which every neuron gets the column's
    modulator, and the state keeps its shapes (``run`` / ``step`` accept it again)."""
    net = _net(kind, event)
    state = net.init(jax.random.key(1))
    rng = np.random.default_rng(3)
    x = (rng.random((T, N_PRE)) < 0.4).astype(np.float32) * 2.0
    mods = rng.normal(size=(T, N_POST)).astype(np.float32)
    out, rec = net.run(state, x, modulators={"r": mods})
    for j in range(N_POST):
        # m[:, j] for every neuron (same shape: the compiled run is reused)
        same = np.repeat(mods[:, j:j + 1], N_POST, axis=1)
        out_j, rec_j = net.run(state, x, modulators={"r": same})
        np.testing.assert_array_equal(np.asarray(rec["spk"])[:, j], np.asarray(rec_j["spk"])[:, j])
        np.testing.assert_allclose(np.asarray(out["weights"]["c"])[:, j],
                                   np.asarray(out_j["weights"]["c"])[:, j], rtol=1e-6, atol=1e-7)
        rs, rs_j = out["rules"]["r"]["rule"], out_j["rules"]["r"]["rule"]
        if kind == "stdp":
            continue
        np.testing.assert_allclose(np.asarray(rs.baseline)[j], np.asarray(rs_j.baseline)[j],
                                   rtol=1e-6)
        np.testing.assert_allclose(np.asarray(rs.dopamine)[j], np.asarray(rs_j.dopamine)[j],
                                   rtol=1e-6)
    assert jax.tree.map(np.shape, out) == jax.tree.map(np.shape, state)
    # the modulator moved the weights (a zero modulator would pass the column checks vacuously)
    assert not np.allclose(np.asarray(out["weights"]["c"]), np.asarray(state["weights"]["c"]))
