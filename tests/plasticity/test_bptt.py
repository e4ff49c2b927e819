"""BPTT (``plasticity/bptt.py``) through LIF / ALIF networks against a hand-written backward pass
of Bellec et al. 2020's equations (numpy, float64), with and without the reset's gradient, and
the gradient of absent synapses (zero)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.core.monitors import PotentialMonitor, SpikeMonitor
from neurorl.core.network import Connection, Network, NeuronGroup
from neurorl.plasticity import bptt

GAMMA = 0.3


def _net(w_in, w_rec, w_out, *, beta, v_th, tau_mem, tau_adapt, tau_out, n_ref, detach):
    n_in, n_rec = w_in.shape
    hid_p = {"tau_mem": tau_mem, "tau_adapt": tau_adapt, "beta": beta, "v_th": v_th,
             "t_ref": float(n_ref), "surrogate": "triangle", "surrogate_hyper": (("gamma", GAMMA),),
             "detach_reset": detach}
    inp = NeuronGroup(n_in, "Input", name="in")
    hid = NeuronGroup(n_rec, "ALIF", hid_p, name="hid")
    out = NeuronGroup(w_out.shape[1], "LI", {"tau_mem": tau_out}, name="out")
    conns = [Connection(inp, hid, weight=w_in, delay=0, name="in"),
             Connection(hid, hid, "all_to_all", allow_self=False, weight=w_rec, delay=1,
                        name="rec"),
             Connection(hid, out, weight=w_out, delay=0, name="out")]
    objs = [inp, hid, out, *conns, PotentialMonitor(out, name="y"), SpikeMonitor(hid, "z")]
    return Network(*objs).compile()


def _numpy_bptt(w_in, w_rec, w_out, xs, tg, *, beta, v_th, tau_mem, tau_adapt, tau_out, n_ref,
                reset_gradient):
    """``dE/dW`` of ``E = 1/2 sum_t |y_t - y*_t|^2`` by an explicit adjoint (backward) loop.

    Forward (Bellec 2020 Eqs. 2-3 with dt = 1 ms, the TF code of the paper's Fig. 3):
    ``v_t = alpha v_{t-1} + W_in x_t + W_rec z_{t-1} - v_th z_{t-1}``,
    ``A_t = v_th + beta a_{t-1}``, ``z_t = H(v_t - A_t)`` (0 while refractory),
    ``a_t = rho a_{t-1} + z_t``, ``y_t = kappa y_{t-1} + W_out z_t``; spike derivative
    ``psi_t = gamma / v_th max(0, 1 - |v_t - A_t| / v_th)``. ``reset_gradient``: the reset term
    ``-v_th z_{t-1}`` carries a gradient (the paper's BPTT) or not (detached).
    """
    alpha, rho, kappa = np.exp(-1 / tau_mem), np.exp(-1 / tau_adapt), np.exp(-1 / tau_out)
    T, n = xs.shape[0], w_in.shape[1]
    v, a, z, y, refr = (np.zeros(n) for _ in range(5))
    y = np.zeros(w_out.shape[1])
    Z, PSI, Y = np.zeros((T, n)), np.zeros((T, n)), np.zeros((T, w_out.shape[1]))
    for t in range(T):
        v = alpha * v + xs[t] @ w_in + z @ w_rec - v_th * z
        is_ref = (refr > 0).astype(float)
        x = (v - v_th - beta * a) / v_th
        z = (x > 0).astype(float) * (1 - is_ref)
        PSI[t] = GAMMA / v_th * np.maximum(0.0, 1 - np.abs(x)) * (1 - is_ref)
        refr = np.where(z > 0, n_ref, np.maximum(refr - 1, 0))
        a = rho * a + z
        y = kappa * y + z @ w_out
        Z[t], Y[t] = z, y
    # backward: ybar, zbar (total dE/dz_t), vbar, abar (dE/da_t)
    ybar, vbar, abar = np.zeros(w_out.shape[1]), np.zeros(n), np.zeros(n)
    g_in, g_rec, g_out = np.zeros_like(w_in), np.zeros_like(w_rec), np.zeros_like(w_out)
    zbar_next = np.zeros(n)
    for t in range(T - 1, -1, -1):
        ybar = (Y[t] - tg[t]) + kappa * ybar
        psi_next = PSI[t + 1] if t + 1 < T else np.zeros(n)
        abar = rho * abar - beta * psi_next * zbar_next  # a_t -> A_{t+1} -> z_{t+1}
        zbar = w_out @ ybar + abar + w_rec @ vbar  # vbar is dE/dv_{t+1} here
        if reset_gradient:
            zbar = zbar - v_th * vbar
        vbar = PSI[t] * zbar + alpha * vbar  # now dE/dv_t
        g_out += np.outer(Z[t], ybar)
        g_in += np.outer(xs[t], vbar)
        if t > 0:
            g_rec += np.outer(Z[t - 1], vbar)
        zbar_next = zbar
    np.fill_diagonal(g_rec, 0.0)
    return {"in": g_in, "rec": g_rec, "out": g_out}, Z


@pytest.mark.parametrize("detach", [False, True])
def test_bptt_equals_numpy_adjoint(detach):
    """``jax.grad`` through the simulator is the explicit backward pass of the equations, with
    the reset's gradient (``detach_reset=False``, the paper's BPTT) or without it."""
    r = np.random.default_rng(3)
    n_in, n, n_out, T = 6, 8, 2, 120
    kw = {"beta": np.r_[np.zeros(4), np.full(4, 0.3)], "v_th": 0.6, "tau_mem": 20.0,
          "tau_adapt": 200.0, "tau_out": 20.0, "n_ref": 2}
    w_in = r.normal(size=(n_in, n)) * 1.5 / np.sqrt(n_in)
    w_rec = r.normal(size=(n, n)) / np.sqrt(n)
    np.fill_diagonal(w_rec, 0.0)
    w_out = r.normal(size=(n, n_out)) / np.sqrt(n)
    xs = (r.random((T, n_in)) < 0.2).astype(float)
    tg = r.normal(size=(T, n_out))
    ref, Z = _numpy_bptt(w_in, w_rec, w_out, xs, tg, reset_gradient=not detach, **kw)
    net = _net(*(np.float32(w) for w in (w_in, w_rec, w_out)), detach=detach, **kw)
    s = net.init(jax.random.PRNGKey(0))
    gb = bptt.grads(net, lambda rec: 0.5 * jnp.sum((rec["y"] - tg) ** 2), s["weights"], s,
                    {"in": jnp.asarray(xs, jnp.float32)})
    _, _, rec, _ = net.simulate(s["weights"], net.dynamic(s), net.traces(s),
                                {"in": jnp.asarray(xs, jnp.float32)})
    np.testing.assert_array_equal(np.asarray(rec["z"]), Z)  # same spikes
    assert np.all(np.diag(np.asarray(gb["rec"])) == 0)  # no autapse, no gradient
    assert 0.02 < Z.mean() < 0.5 and Z[:, 4:].sum() > 0  # LIF and ALIF neurons spike
    for k in ("in", "rec", "out"):
        b = np.asarray(gb[k])
        assert np.abs(ref[k]).max() > 1e-2
        np.testing.assert_allclose(b, ref[k], rtol=2e-3, atol=2e-4 * np.abs(ref[k]).max(),
                                   err_msg=k)
    # the two variants differ (the reset's gradient is not negligible)
    other, _ = _numpy_bptt(w_in, w_rec, w_out, xs, tg, reset_gradient=detach, **kw)
    assert np.abs(other["in"] - ref["in"]).max() > 0.05 * np.abs(ref["in"]).max()
