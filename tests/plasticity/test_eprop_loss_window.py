"""``supervised_grads(step_weights=...)``: a loss window (Bellec 2020's evidence-accumulation
decision period) for e-prop, checked against ``jax.grad`` of the same windowed loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.core.monitors import PotentialMonitor, SpikeMonitor
from neurorl.core.network import Connection, LearningRule, Network, NeuronGroup
from neurorl.errors import ShapeError
from neurorl.plasticity import bptt
from neurorl.plasticity.eprop import supervised_grads

T, N_IN, N_HID, N_OUT = 120, 10, 8, 2


def _net(beta, normalized=False):
    r = np.random.default_rng(0)
    hid_p = {"tau_mem": 20.0, "tau_adapt": 300.0, "beta": beta, "v_th": 1.0, "t_ref": 2.0,
             "surrogate": "triangle", "surrogate_hyper": (("gamma", 0.3),)}
    inp = NeuronGroup(N_IN, "Input", name="in")
    hid = NeuronGroup(N_HID, "ALIF" if beta else "LIF", hid_p, name="hid")
    out = NeuronGroup(N_OUT, "LI", {"tau_mem": 20.0}, name="out")
    c_in = Connection(inp, hid, weight=(r.normal(size=(N_IN, N_HID)) * 3 / np.sqrt(N_IN)
                                        ).astype(np.float32), delay=0, name="in")
    c_out = Connection(hid, out, weight=(r.normal(size=(N_HID, N_OUT)) / np.sqrt(N_HID)
                                         ).astype(np.float32), delay=0, name="out")
    rules = [LearningRule(c, "eprop", {"tau_out": 20.0, "normalized_filter": normalized},
                          name=c.name) for c in (c_in, c_out)]
    return Network(inp, hid, out, c_in, c_out, *rules, PotentialMonitor(out, name="y"),
                   SpikeMonitor(hid, name="z")).compile()


def _data():
    xs = (jax.random.uniform(jax.random.PRNGKey(3), (T, N_IN)) < 0.1).astype(jnp.float32)
    onehot = jnp.broadcast_to(jax.nn.one_hot(1, N_OUT), (T, N_OUT))
    c = (jnp.arange(T) >= T - 30).astype(jnp.float32) / 30.0  # the last 30 steps
    return xs, onehot, c


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("beta", [0.0, 0.4])
def test_windowed_eprop_equals_bptt_nonrecurrent(beta, loss):
    """One layer, symmetric feedback: e-prop of sum_t c_t E_t IS its jax.grad (Bellec 2020)."""
    net = _net(beta)
    s = net.init(jax.random.PRNGKey(0))
    xs, tg, c = _data()

    def windowed(rec):
        y = rec["y"]
        per_step = (-jnp.sum(tg * jax.nn.log_softmax(y, -1), -1) if loss == "cross_entropy"
                    else 0.5 * jnp.sum((y - tg) ** 2, -1))
        return jnp.sum(c * per_step)

    ge, _, _ = supervised_grads(net, s, {"in": xs}, tg, readout="out", loss=loss,
                                step_weights=c)
    gb = bptt.grads(net, windowed, s["weights"], s, {"in": xs})
    _, _, rec, _ = net.simulate(s["weights"], net.dynamic(s), net.traces(s), {"in": xs})
    assert float(rec["z"][-30:].mean()) > 0.01  # spikes inside the window
    g_all, _, _ = supervised_grads(net, s, {"in": xs}, tg, readout="out", loss=loss)
    for n in ("in", "out"):
        a, b = np.asarray(ge[n]), np.asarray(gb[n])
        assert np.abs(b).max() > 1e-4
        np.testing.assert_allclose(a, b, atol=1e-5 * np.abs(b).max(), rtol=1e-4)
        # the window matters: the unweighted gradient is a different vector
        assert np.abs(np.asarray(g_all[n]) - a).max() > 0.1 * np.abs(a).max()


def test_step_weights_of_the_wrong_length_is_a_shape_error():
    net = _net(0.0)
    s = net.init(jax.random.PRNGKey(0))
    xs, tg, c = _data()
    with pytest.raises(ShapeError, match="step_weights"):
        supervised_grads(net, s, {"in": xs}, tg, readout="out", step_weights=c[:-1])


@pytest.mark.parametrize("normalized", [False, True])
@pytest.mark.parametrize("beta", [0.0, 0.4])
def test_rate_regularization_signal_equals_bptt_nonrecurrent(beta, normalized):
    """Bellec's firing-rate regulariser E = c/2 sum_j (f_j - f*)^2 through e-prop's filtered
    traces (``rate_regularization_signal``) is its jax.grad for one layer (LIF, ALIF)."""
    from neurorl.plasticity.eprop import rate_regularization_signal

    net = _net(beta, normalized)
    s = net.init(jax.random.PRNGKey(0))
    xs, tg, _ = _data()
    c_reg, f_star = 3.0, 0.01

    def reg(rec):
        return 0.5 * c_reg * jnp.sum((rec["z"].mean(0) - f_star) ** 2)

    _, _, rec, _ = net.simulate(s["weights"], net.dynamic(s), net.traces(s), {"in": xs})
    rate = rec["z"].mean(0)
    assert float(jnp.abs(rate - f_star).max()) > 0.01  # the regulariser is active
    sig = rate_regularization_signal(rate, f_star, c_reg, T, tau_out=20.0,
                                     normalized_filter=normalized)
    ge, _, _ = supervised_grads(net, s, {"in": xs}, tg, readout="out",
                                step_weights=jnp.zeros((T,)), signals={"hid": sig})
    gb = bptt.grads(net, reg, s["weights"], s, {"in": xs})
    a, b = np.asarray(ge["in"]), np.asarray(gb["in"])
    assert np.abs(b).max() > 1e-4
    np.testing.assert_allclose(a, b, atol=1e-5 * np.abs(b).max(), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(ge["out"]), 0.0)
    with pytest.raises(ShapeError, match="signals"):
        supervised_grads(net, s, {"in": xs}, tg, readout="out", signals={"hid": sig[:-1]})
