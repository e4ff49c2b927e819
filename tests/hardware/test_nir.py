"""NIR export/import: exact round trips, hand-built NIR files vs a numpy loop of the NIR ODEs.

The reference for imported graphs is a float64 numpy loop of the NIR node equations (Pedersen et al.
2024) written from the ``nir`` package's docstrings, stepped with the same-step propagation of
snnTorch/Norse and the zero-order-hold discretisation of ``neurorl.hardware.nir``.
"""

import json

import jax
import nir
import numpy as np
import pytest

from neurorl.core import Connection, Network, NeuronGroup, SpikeMonitor
from neurorl.errors import ConfigError
from neurorl.hardware.nir import from_nir, to_nir, write_nir


def _mixed_network():
    """ALIF with subtractive reset and refractoriness, per-synapse delays, an exponential
    synapse into a CubaLIF: everything NIR cannot express, so only the metadata makes it exact."""
    inp = NeuronGroup(4, "LIF", {"tau_mem": 10.0}, name="inp")
    hid = NeuronGroup(6, "ALIF", {"tau_mem": np.linspace(8, 30, 6).astype(np.float32),
                                  "beta": 0.5, "t_ref": 2.0}, name="hid", bias=0.05)
    out = NeuronGroup(3, "CubaLIF", {"tau_syn": 4.0, "reset": "zero", "r": 2.0,
                                     "integration": "exponential"}, name="out")
    net = Network(
        inp, hid, out,
        Connection(inp, hid, weight={"init": "normal", "std": 1.0}),
        Connection(hid, hid, "probabilistic", p=0.5, weight={"init": "normal", "std": 0.5},
                   delay=(1, 3)),
        Connection(hid, out, weight={"init": "normal", "std": 1.0}, delay=2,
                   synapse="exponential", tau_syn=5.0),
        SpikeMonitor(hid, name="h"), SpikeMonitor(out, name="o"),
    )
    return net.compile()


def test_round_trip_through_file_is_exact(tmp_path):
    net = _mixed_network()
    state = net.init(jax.random.PRNGKey(1))
    x = np.asarray(jax.random.uniform(jax.random.PRNGKey(2), (80, 4))) * 0.6
    _, rec = net.run(state, x)
    path = tmp_path / "net.nir"
    graph = write_nir(path, net, state, outputs=["hid", "out"])
    lossy = " ".join(json.loads(graph.metadata["neurorl_lossy"]))
    assert "subtract" in lossy and "adaptation" in lossy and "refractory" in lossy
    kinds = {type(n).__name__ for n in nir.read(path).nodes.values()}
    assert {"LIF", "CubaLIF", "Linear", "Delay", "LI", "Input", "Output"} <= kinds
    imp = from_nir(path)
    # a same-step reader (snnTorch, Norse) leads by one step per feed-forward hop
    assert imp.latency == {"output_hid": 1, "output_out": 2}
    assert json.loads(graph.metadata["neurorl_latency"]) == imp.latency
    _, rec2 = imp.run({"input": x})
    assert 0 < rec["h"].sum() < rec["h"].size and rec["o"].sum() > 0
    np.testing.assert_array_equal(rec2["output_hid"], rec["h"])
    np.testing.assert_array_equal(rec2["output_out"], rec["o"])
    w0, w1 = net.dense_weights(state), imp.net.dense_weights(imp.state)
    assert sum(np.abs(v).sum() for v in w0.values()) == pytest.approx(
        sum(np.abs(v).sum() for v in w1.values()))


def _nir_expressible_network():
    """Zero reset, exponential integration, bias, delays: the standard NIR fields say it all."""
    p = {"reset": "zero", "integration": "exponential", "v_reset": -0.2}
    a = NeuronGroup(5, "LIF", {**p, "tau_mem": 5.0, "r": 3.0}, name="a", bias=0.1)
    b = NeuronGroup(4, "LIF", {**p, "tau_mem": np.array([4, 8, 16, 32], np.float32), "r": 2.0},
                    name="b", bias=np.array([0.0, 0.1, -0.1, 0.2], np.float32))
    net = Network(a, b, Connection(a, b, weight={"init": "normal", "std": 1.5}, delay=3),
                  Connection(b, b, weight={"init": "normal", "std": 0.3}),
                  SpikeMonitor(a, name="a"), SpikeMonitor(b, name="b"))
    return net.compile()


def test_round_trip_from_standard_fields_only_is_exact_and_strict_export_refuses_lossy():
    net = _nir_expressible_network()
    state = net.init(jax.random.PRNGKey(3))
    x = np.asarray(jax.random.uniform(jax.random.PRNGKey(4), (60, 5)))
    _, rec = net.run(state, x)
    for method in ("euler", "exact"):  # nothing lossy: strict export succeeds
        graph = to_nir(net, state, strict=True, outputs=["a", "b"], method=method)
        assert graph.metadata["time_unit"] == "s" and graph.metadata["dt"] == pytest.approx(1e-3)
        imp = from_nir(graph, use_metadata=False)
        _, rec2 = imp.run(x)
        assert rec["b"].sum() > 0
        np.testing.assert_array_equal(rec2["output_a"], rec["a"])
        np.testing.assert_array_equal(rec2["output_b"], rec["b"])
    # one output node named "output" by default (the last group; here every group has outputs)
    assert [k for k, v in to_nir(net, state).nodes.items() if isinstance(v, nir.Output)] == [
        "output"]
    with pytest.raises(ConfigError, match="subtract"):
        to_nir(_mixed_network(), strict=True)


# ---------------------------------------------------------------------------------- hand-built
def _handbuilt(rng):
    W1, b1 = rng.normal(0, 1.2, (5, 3)), rng.normal(0, 0.3, 5)
    lif = nir.LIF(tau=rng.uniform(2, 8, 5), r=rng.uniform(0.5, 2, 5), v_leak=rng.uniform(0, .3, 5),
                  v_threshold=rng.uniform(0.5, 1, 5), v_reset=rng.uniform(-.2, 0, 5))
    W2 = rng.normal(0, 2.0, (4, 5))
    cuba = nir.CubaLIF(tau_syn=rng.uniform(2, 5, 4), tau_mem=rng.uniform(3, 10, 4),
                       r=rng.uniform(0.5, 2, 4), v_leak=np.full(4, 0.1),
                       v_threshold=np.full(4, 0.4), v_reset=np.zeros(4), w_in=np.full(4, 2.0))
    W3 = rng.normal(0, 1.0, (2, 4))
    li = nir.LI(tau=np.array([5.0, 12.0]), r=np.array([1.0, 2.0]), v_leak=np.array([0.0, 0.5]))
    nodes = {"in": nir.Input(np.array([3])), "fc1": nir.Affine(weight=W1, bias=b1), "lif": lif,
             "fc2": nir.Affine(weight=W2, bias=np.zeros(4)), "cuba": cuba,
             "fc3": nir.Linear(weight=W3), "li": li, "spikes": nir.Output(np.array([4])),
             "readout": nir.Output(np.array([2]))}
    edges = [("in", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "cuba"), ("cuba", "spikes"),
             ("cuba", "fc3"), ("fc3", "li"), ("li", "readout")]
    return nir.NIRGraph(nodes=nodes, edges=edges), (W1, b1, lif, W2, cuba, W3, li)


def _numpy_nir(parts, x, dt, method, hop=0):
    """The NIR ODEs stepped in float64 with zero-order-hold inputs; spikes cross a neuron-to-neuron
    edge in the same step (hop=0, snnTorch/Norse) or one step later (hop=1, neurorl)."""
    W1, b1, lif, W2, cuba, W3, li = parts

    def decay(tau):
        return np.exp(-dt / tau) if method == "exact" else 1.0 - dt / tau

    a1, a2, g2, a3 = decay(lif.tau), decay(cuba.tau_mem), decay(cuba.tau_syn), decay(li.tau)
    v1, v2, i2, v3 = np.zeros(5), np.zeros(4), np.zeros(4), np.zeros(2)
    z1s, z2s, v3s, margin = [], [], [], np.inf
    z1_old, z2_old = np.zeros(5), np.zeros(4)
    for xt in x:
        v1 = a1 * v1 + (1 - a1) * (lif.v_leak + lif.r * (W1 @ xt + b1))
        z1 = v1 > lif.v_threshold
        margin = min(margin, np.abs(v1 - lif.v_threshold).min())
        v1 = np.where(z1, lif.v_reset, v1)
        z1_in, z1_old = (z1_old, z1) if hop else (z1, z1)
        i2 = g2 * i2 + (1 - g2) * cuba.w_in * (W2 @ z1_in)
        v2 = a2 * v2 + (1 - a2) * (cuba.v_leak + cuba.r * i2)
        z2 = v2 > cuba.v_threshold
        margin = min(margin, np.abs(v2 - cuba.v_threshold).min())
        v2 = np.where(z2, cuba.v_reset, v2)
        z2_in, z2_old = (z2_old, z2) if hop else (z2, z2)
        v3 = a3 * v3 + (1 - a3) * (li.v_leak + li.r * (W3 @ z2_in))
        z1s.append(z1), z2s.append(z2), v3s.append(v3)
    return np.array(z1s, np.float32), np.array(z2s, np.float32), np.array(v3s), margin


def test_handbuilt_nir_file_matches_numpy_loop_of_the_odes(tmp_path):
    rng = np.random.default_rng(0)
    graph, parts = _handbuilt(rng)
    path = tmp_path / "hand.nir"
    nir.write(path, graph)
    x = (rng.random((120, 3)) < 0.3).astype(np.float32)  # spike input
    dt = 0.5
    for method in ("exact", "euler"):
        imp = from_nir(path, dt=dt, method=method)
        assert imp.outputs == {"spikes": "spikes", "readout": "v"}
        # one step of latency per neuron-to-neuron hop without a Delay node
        assert imp.latency == {"spikes": 1, "readout": 2}
        _, rec = imp.run({"in": x})
        spikes, readout = np.asarray(rec["spikes"]), np.asarray(rec["readout"])
        _, z2, v3, margin = _numpy_nir(parts, x, dt, method, hop=1)
        assert margin > 1e-4  # no spike decided by float rounding
        assert 0 < z2.sum() < z2.size
        np.testing.assert_array_equal(spikes, z2)
        np.testing.assert_allclose(readout, v3, rtol=1e-4, atol=1e-5)
        # against a same-step simulator the outputs lag by `latency` steps; the v_leak-driven
        # part does not lag, so only the spike-driven readout channel (v_leak = 0) is a pure shift
        _, z2_same, v3_same, _ = _numpy_nir(parts, x, dt, method, hop=0)
        np.testing.assert_allclose(readout[2:, 0], v3_same[:-2, 0], rtol=1e-4, atol=1e-5)
        assert not np.allclose(readout[2:, 1], v3_same[:-2, 1], rtol=1e-4, atol=1e-5)
        # the other discretisation is a different model: the test can fail
        other = "euler" if method == "exact" else "exact"
        _, z2_wrong, _, _ = _numpy_nir(parts, x, dt, other, hop=1)
        assert not np.array_equal(spikes, z2_wrong)


def test_delay_nodes_give_exact_timing():
    """Input -> Affine -> LIF -> Linear -> Delay(k dt) -> LIF: neurorl delays of k + 1 steps (the
    one step each neurorl hop takes on top of a same-step simulator's), lag 1."""
    rng = np.random.default_rng(1)
    dt, T = 1.0, 80
    W1, W2 = rng.normal(0, 1.5, (3, 2)), rng.normal(0, 1.5, (3, 3))
    k = np.array([1, 2, 4])
    lif = dict(tau=np.full(3, 4.0), r=np.full(3, 4.0), v_leak=np.zeros(3),
               v_threshold=np.full(3, 0.5), v_reset=np.zeros(3))
    graph = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([2])), "fc1": nir.Linear(weight=W1),
               "l1": nir.LIF(**lif), "fc2": nir.Linear(weight=W2),
               "d": nir.Delay(delay=k * dt), "l2": nir.LIF(**lif),
               "out": nir.Output(np.array([3]))},
        edges=[("in", "fc1"), ("fc1", "l1"), ("l1", "fc2"), ("fc2", "d"), ("d", "l2"),
               ("l2", "out")])
    x = (rng.random((T, 2)) < 0.4).astype(np.float32)
    imp = from_nir(graph, dt=dt, method="exact")
    assert imp.latency == {"out": 1}
    _, rec = imp.run(x)
    a = np.exp(-dt / 4.0)
    v1, v2, z1s, z2s = np.zeros(3), np.zeros(3), np.zeros((T, 3)), np.zeros((T, 3))
    for t in range(T):
        v1 = a * v1 + (1 - a) * 4.0 * (W1 @ x[t])
        z1s[t] = v1 > 0.5
        v1 = np.where(z1s[t] > 0, 0.0, v1)
        s = W2 @ np.stack([z1s[t - k[i] - 1] if t > k[i] else np.zeros(3) for i in range(3)]).T
        v2 = a * v2 + (1 - a) * 4.0 * np.diagonal(s)  # element i delayed by k[i]
        z2s[t] = v2 > 0.5
        v2 = np.where(z2s[t] > 0, 0.0, v2)
    assert z2s.sum() > 0
    np.testing.assert_array_equal(np.asarray(rec["out"]), z2s)


# ---------------------------------------------------------------------------------- errors
def test_unsupported_nodes_and_models_raise_clear_errors():
    lif = nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2))
    bad = nir.NIRGraph(nodes={"in": nir.Input(np.array([2])), "thr": nir.Threshold(np.ones(2)),
                              "lif": lif, "out": nir.Output(np.array([2]))},
                       edges=[("in", "thr"), ("thr", "lif"), ("lif", "out")])
    with pytest.raises(ConfigError, match="'thr'.*Threshold.*LIF") as e:
        from_nir(bad)
    assert "CubaLIF" in str(e.value) and "Affine" in str(e.value)
    li = nir.LI(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2))
    li_into_affine = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([2])), "li": li, "fc": nir.Linear(weight=np.eye(2)),
               "lif": lif, "out": nir.Output(np.array([2]))},
        edges=[("in", "li"), ("li", "fc"), ("fc", "lif"), ("lif", "out")])
    with pytest.raises(ConfigError, match="non-spiking"):
        from_nir(li_into_affine)
    with pytest.raises(ConfigError, match="euler"):
        from_nir(nir.NIRGraph.from_list(lif), dt=2.0, method="euler")  # tau = 1 <= dt
    with pytest.raises(ConfigError, match="method"):
        from_nir(nir.NIRGraph.from_list(lif), method="rk4")
    izh = Network(NeuronGroup(2, "Izhikevich", name="izh")).compile()
    with pytest.raises(ConfigError, match="Izhikevich"):
        to_nir(izh)


def test_recurrent_subgraph_and_pruned_exports_round_trip_exactly(tmp_path):
    """recurrent="subgraph" nests a self-connected group as input -> lif -> output with
    lif <-> w_rec (snnTorch's RLeaky form); from_nir inlines it again; prune drops the groups
    that feed no output."""
    net = _nir_expressible_network()  # b has a delay-1 self-connection
    state = net.init(jax.random.PRNGKey(3))
    x = np.asarray(jax.random.uniform(jax.random.PRNGKey(4), (60, 5)))
    _, rec = net.run(state, x)
    path = tmp_path / "sub.nir"
    graph = write_nir(path, net, state, outputs="b", recurrent="subgraph")
    sub = nir.read(path).nodes["b"]
    assert isinstance(sub, nir.NIRGraph)
    assert sorted(sub.edges) == sorted([("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
                                        ("lif", "output")])
    for use_metadata in (True, False):
        imp = from_nir(path, use_metadata=use_metadata)
        assert set(imp.net.groups) == {"a", "b"}
        _, rec2 = imp.run(x)
        np.testing.assert_array_equal(rec2["output"], rec["b"])
    assert json.loads(graph.metadata["neurorl_latency"]) == imp.latency
    pruned = to_nir(net, state, outputs="a", prune=True)  # b feeds nothing upstream of a
    assert {k for k, v in pruned.nodes.items() if isinstance(v, nir.LIF)} == {"a"}
    with pytest.raises(ConfigError, match="recurrent"):
        to_nir(net, recurrent="nested")
