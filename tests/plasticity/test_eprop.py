"""e-prop on N-HAL networks against BPTT (jax.grad through the same simulator) and against a
plain numpy loop of Bellec et al. 2020's equations."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurorl.core.monitors import PotentialMonitor, SpikeMonitor
from neurorl.core.network import Connection, LearningRule, Network, NeuronGroup
from neurorl.errors import ConfigError
from neurorl.plasticity import RULES, bptt
from neurorl.plasticity.eprop import supervised_grads


def _task(n_in=10, n_out=2, T=200, seed=1):
    xs = (jax.random.uniform(jax.random.PRNGKey(seed), (T, n_in)) < 0.1).astype(jnp.float32)
    tg = jax.random.normal(jax.random.PRNGKey(seed + 1), (T, n_out))
    return xs, tg


def _cos(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def _weights(seed, n_in, n_rec, n_out, w_scale):
    r = np.random.default_rng(seed)
    w_in = r.normal(size=(n_in, n_rec)) * w_scale / np.sqrt(n_in)
    w_rec = r.normal(size=(n_rec, n_rec)) * w_scale / np.sqrt(n_rec)
    np.fill_diagonal(w_rec, 0.0)
    w_out = r.normal(size=(n_rec, n_out)) / np.sqrt(n_rec)
    return (w_in.astype(np.float32), w_rec.astype(np.float32), w_out.astype(np.float32))


def _net(n_in, n_rec, n_out, *, beta=0.0, recurrent=True, n_ref=0, tau_mem=20.0,
         tau_adapt=200.0, v_th=1.0, tau_out=20.0, w_scale=1.0, seed=0, rules=True,
         normalized_filter=False, stop_z_gradients=False):
    w_in, w_rec, w_out = _weights(seed, n_in, n_rec, n_out, w_scale)
    adaptive = np.any(np.asarray(beta) != 0)
    hid_p = {"tau_mem": tau_mem, "tau_adapt": tau_adapt, "beta": beta, "v_th": v_th,
             "t_ref": float(n_ref), "surrogate": "triangle", "surrogate_hyper": (("gamma", 0.3),)}
    inp = NeuronGroup(n_in, "Input", name="in")
    hid = NeuronGroup(n_rec, "ALIF" if adaptive else "LIF", hid_p, name="hid")
    out = NeuronGroup(n_out, "LI", {"tau_mem": tau_out}, name="out")
    c_in = Connection(inp, hid, weight=w_in, delay=0, name="in")
    c_out = Connection(hid, out, weight=w_out, delay=0, name="out")
    objs = [inp, hid, out, c_in, c_out, PotentialMonitor(out, name="y"), SpikeMonitor(hid, "z")]
    conns = [c_in, c_out]
    if recurrent:
        c_rec = Connection(hid, hid, "all_to_all", allow_self=False, weight=w_rec, delay=1,
                           name="rec")
        objs.append(c_rec)
        conns.append(c_rec)
    if rules:
        objs += [LearningRule(c, "eprop", {"tau_out": tau_out,
                                           "normalized_filter": normalized_filter},
                              name=c.name) for c in conns]
    return Network(*objs).compile(stop_z_gradients=stop_z_gradients)


def _mse(tg):
    return lambda rec: 0.5 * jnp.sum((rec["y"] - tg) ** 2)


@pytest.mark.parametrize("beta", [0.0, 0.5])  # LIF and ALIF
def test_eprop_equals_bptt_nonrecurrent(beta):
    """Bellec 2020: for one layer with symmetric feedback, e-prop IS the BPTT gradient."""
    net = _net(10, 8, 2, beta=beta, recurrent=False, n_ref=2, w_scale=3.0)
    s = net.init(jax.random.PRNGKey(0))
    xs, tg = _task()
    ge, ys, _ = supervised_grads(net, s, {"in": xs}, tg, readout="out")
    gb = bptt.grads(net, _mse(tg), s["weights"], s, {"in": xs})
    _, _, rec, _ = net.simulate(s["weights"], net.dynamic(s), net.traces(s), {"in": xs})
    assert float(rec["z"].mean()) > 0.01  # the neurons do spike
    np.testing.assert_allclose(ys, rec["y"], atol=1e-5)
    for n in ("in", "out"):
        a, b = np.asarray(ge[n]), np.asarray(gb[n])
        assert np.abs(b).max() > 1e-3
        np.testing.assert_allclose(a, b, atol=1e-5 * np.abs(b).max(), rtol=1e-4)


def test_eprop_differs_from_bptt_when_recurrent_but_aligned():
    net = _net(10, 8, 2, recurrent=True, n_ref=2, w_scale=3.0)
    s = net.init(jax.random.PRNGKey(0))
    xs, tg = _task()
    ge, _, _ = supervised_grads(net, s, {"in": xs}, tg, readout="out")
    gb = bptt.grads(net, _mse(tg), s["weights"], s, {"in": xs})
    for n in ("in", "rec"):
        a, b = np.asarray(ge[n]), np.asarray(gb[n])
        rel = np.abs(a - b).max() / np.abs(b).max()
        assert rel > 1e-2, (n, rel)  # truncated: ignores the recurrent paths
        assert _cos(a, b) > 0.5, (n, _cos(a, b))


@pytest.mark.parametrize("beta", [0.0, 0.5])  # LIF and ALIF
def test_eprop_equals_bptt_with_stopped_recurrent_spike_gradients(beta):
    """Bellec 2020 (Methods): e-prop with symmetric feedback is the gradient of the loss once
    the paths through other neurons' earlier spikes are cut -- here ``jax.grad`` through the
    same simulator compiled with ``stop_z_gradients``, on the recurrent network of the test
    above (where full BPTT differs), every connection equal."""
    net = _net(10, 8, 2, beta=beta, recurrent=True, n_ref=2, w_scale=3.0,
               stop_z_gradients=True)
    s = net.init(jax.random.PRNGKey(0))
    xs, tg = _task()
    ge, ys, _ = supervised_grads(net, s, {"in": xs}, tg, readout="out")
    gb = bptt.grads(net, _mse(tg), s["weights"], s, {"in": xs})
    _, _, rec, _ = net.simulate(s["weights"], net.dynamic(s), net.traces(s), {"in": xs})
    np.testing.assert_allclose(ys, rec["y"], atol=1e-5)  # the forward pass is unchanged
    full = _net(10, 8, 2, beta=beta, recurrent=True, n_ref=2, w_scale=3.0)
    _, _, rec_full, _ = full.simulate(s["weights"], full.dynamic(s), full.traces(s), {"in": xs})
    np.testing.assert_array_equal(np.asarray(rec["z"]), np.asarray(rec_full["z"]))
    for n in ("in", "rec", "out"):
        a, b = np.asarray(ge[n]), np.asarray(gb[n])
        assert np.abs(b).max() > 1e-3
        np.testing.assert_allclose(a, b, atol=1e-5 * np.abs(b).max(), rtol=1e-4)


def test_stop_z_gradients_must_be_a_bool():
    with pytest.raises(ConfigError, match="stop_z_gradients"):
        Network(NeuronGroup(2, "LIF", name="b")).compile(stop_z_gradients="yes")


def _numpy_eprop(w_in, w_rec, w_out, xs, tau_m, tau_a, beta, v_th, tau_out, gamma, n_ref):
    """Bellec 2020 Eqs. 22-26 (dt = 1 ms), written as a slow loop, float64."""
    alpha, rho, kappa = np.exp(-1 / tau_m), np.exp(-1 / tau_a), np.exp(-1 / tau_out)
    n_in, n = w_in.shape
    v, a, z, ref, psi_prev = (np.zeros(n) for _ in range(5))
    pin, prec = np.zeros(n_in), np.zeros(n)
    ea_in, ea_rec = np.zeros((n_in, n)), np.zeros((n, n))
    eb_in, eb_rec = np.zeros((n_in, n)), np.zeros((n, n))
    rec = {"v": [], "z": [], "ea_in": [], "ea_rec": [], "eb_in": [], "eb_rec": []}
    for t in range(len(xs)):
        x = xs[t]
        v = alpha * v + x @ w_in + z @ w_rec - v_th * z
        a_new = rho * a + z
        A = v_th + beta * a_new
        refr = ref > 0
        z_new = ((v - A) > 0) & ~refr
        psi = gamma / v_th * np.maximum(0, 1 - np.abs((v - A) / v_th)) * ~refr
        for j in range(n):
            for i in range(n_in):
                ea_in[i, j] = psi_prev[j] * pin[i] + (rho - psi_prev[j] * beta[j]) * ea_in[i, j]
            for i in range(n):
                ea_rec[i, j] = psi_prev[j] * prec[i] + (rho - psi_prev[j] * beta[j]) * ea_rec[i, j]
        pin = alpha * pin + x
        prec = alpha * prec + z
        e_in = psi[None] * (pin[:, None] - beta[None] * ea_in)
        e_rec = psi[None] * (prec[:, None] - beta[None] * ea_rec) * (1 - np.eye(n))
        eb_in, eb_rec = kappa * eb_in + e_in, kappa * eb_rec + e_rec
        ref = np.where(z_new, n_ref, np.maximum(ref - 1, 0))
        z, a, psi_prev = z_new.astype(float), a_new, psi
        for k, val in (("v", v), ("z", z), ("ea_in", ea_in), ("ea_rec", ea_rec),
                       ("eb_in", eb_in), ("eb_rec", eb_rec)):
            rec[k].append(np.array(val))
    return {k: np.array(val) for k, val in rec.items()}


@pytest.mark.parametrize("beta", [0.0, 0.8])
def test_eligibility_traces_match_numpy_loop(beta):
    """The simulator's LIF/ALIF and the rule's traces, step by step, against the numpy loop."""
    n_in, n, T = 4, 5, 150
    betas = (np.full(n, beta) * (np.arange(n) % 2)).astype(np.float32)  # half LIF, half ALIF
    net = _net(n_in, n, 1, beta=betas if beta else 0.0, tau_mem=20.0, tau_adapt=50.0,
               v_th=0.6, tau_out=10.0, n_ref=3, w_scale=4.0, seed=3)
    s = net.init(jax.random.PRNGKey(0))
    xs = (np.random.default_rng(0).random((T, n_in)) < 0.2).astype(np.float32)

    def body(st, x):
        st, _ = net._step(net.params, net.structure, st, {"in": x},
                          {n: jnp.zeros(()) for n in net.rules})
        hid = st["neurons"]["hid"]
        r = st["rules"]
        return st, (hid.v, hid.z, r["in"]["rule"].eps_a, r["rec"]["rule"].eps_a,
                    r["in"]["rule"].ebar, r["rec"]["rule"].ebar)

    _, out = jax.lax.scan(body, s, jnp.asarray(xs))
    w = s["weights"]
    ref = _numpy_eprop(*(np.asarray(w[k], np.float64) for k in ("in", "rec", "out")), xs,
                       20.0, 50.0, betas, 0.6, 10.0, 0.3, 3)
    assert ref["z"].sum() > 10
    for k, got in zip(("v", "z", "ea_in", "ea_rec", "eb_in", "eb_rec"), out, strict=True):
        got = np.asarray(got)
        if k.startswith("ea") and beta == 0:
            continue  # LIF: eps_a never enters e (beta = 0), the rule does not keep it
        if k == "eb_rec":  # no autapses: the structure mask zeroes the diagonal's update
            got = got * (1 - np.eye(n))
        np.testing.assert_allclose(got, ref[k], atol=2e-4, rtol=1e-3, err_msg=k)
    if beta > 0:
        assert np.abs(ref["ea_in"]).max() > 1e-3  # the adaptation component is exercised


@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_block_accumulation_equals_step_by_step(beta):
    """The staged simulator's rank-T eligibility update equals T single-step accumulations."""
    net = _net(6, 7, 2, beta=beta, n_ref=1, w_scale=3.0, tau_out=5.0)
    s = net.init(jax.random.PRNGKey(0))
    xs, _ = _task(n_in=6, T=10, seed=4)
    dyn, tr, rec, counts = net.simulate(s["weights"], net.dynamic(s), net.traces(s), {"in": xs})
    st = s
    for t in range(10):
        st, _ = net._step(net.params, net.structure, st, {"in": xs[t]},
                          {n: jnp.zeros(()) for n in net.rules})
    assert float(counts["hid"].sum()) > 0
    for n in net.rules:
        for f in ("p", "ebar", "psi", "eps_a"):
            np.testing.assert_allclose(getattr(tr[n], f), getattr(st["rules"][n]["rule"], f),
                                       atol=1e-5, err_msg=f"{n}.{f}")
    np.testing.assert_allclose(dyn["neurons"]["out"].v, st["neurons"]["out"].v, atol=1e-5)


def test_rule_rejects_targets_without_eprop_derivation():
    a = NeuronGroup(3, "Input", name="a")
    b = NeuronGroup(2, "Izhikevich", name="b")
    c = Connection(a, b, delay=0)
    net = Network(a, b, c, LearningRule(c, "eprop")).compile()
    s = net.init(jax.random.PRNGKey(0))
    with pytest.raises(ConfigError, match="Izhikevich"):
        net.simulate(s["weights"], net.dynamic(s), net.traces(s), {"a": np.ones((4, 3))})
    with pytest.raises(ConfigError, match="tau_out"):
        RULES["eprop"](tau_out=-1.0)


@pytest.mark.slow
def test_supervised_eprop_learns_sum_of_sines():
    """Bellec 2020 Fig. 2-style pattern generation: 100 Poisson inputs, 1 readout, loss -90 %."""
    T, n_in, n_rec = 500, 100, 60
    key = jax.random.PRNGKey(0)
    xs = (jax.random.uniform(key, (T, n_in)) < 0.02).astype(jnp.float32)  # 20 Hz, frozen
    t = jnp.arange(T) / 1000.0
    freqs, amps, phases = (1.0, 2.0, 3.0, 5.0), (0.5, 0.3, 0.4, 0.2), (0.0, 1.0, 2.0, 3.0)
    tg = sum(a * jnp.sin(2 * jnp.pi * f * t + ph)
             for f, a, ph in zip(freqs, amps, phases, strict=True))[:, None]
    net = _net(n_in, n_rec, 1, tau_mem=20.0, tau_out=20.0, w_scale=1.0, seed=1)
    s0 = net.init(jax.random.PRNGKey(1))
    w0 = dict(s0["weights"], **{"in": s0["weights"]["in"] * 8.0,
                                "out": s0["weights"]["out"] * 0.0})
    tx = optax.adam(3e-3)

    @jax.jit
    def train(w):
        def it(c, _):
            w, o = c
            g, ys, _ = supervised_grads(net, dict(s0, weights=w), {"in": xs}, tg,
                                        readout="out")
            g = {net.rules[n].connection.name: v for n, v in g.items()}
            u, o = tx.update(g, o, w)
            return (optax.apply_updates(w, u), o), jnp.mean((ys - tg) ** 2)

        (w, _), losses = jax.lax.scan(it, (w, tx.init(w)), None, length=300)
        return losses

    losses = np.asarray(train(w0))
    assert losses[-10:].mean() < 0.1 * losses[0], (losses[0], losses[-10:].mean())


def test_no_recompile_when_constants_change():
    """Neuron constants are traced leaves: new tau/beta values reuse the compiled simulation."""
    net = _net(4, 5, 1, beta=0.3)
    s = net.init(jax.random.PRNGKey(0))
    xs, _ = _task(n_in=4, n_out=1, T=20)
    for tau, beta in ((20.0, 0.0), (15.0, 0.3), (30.0, 1.0)):
        net.params["neurons"]["hid"] = net.params["neurons"]["hid"].replace(tau_mem=tau,
                                                                            beta=beta)
        net.simulate(s["weights"], net.dynamic(s), net.traces(s), {"in": xs})
    assert net._simulate_jit._cache_size() == 1


@pytest.mark.parametrize("beta", [0.0, 0.5])  # LIF (block path) and ALIF (scan path)
def test_normalized_filter_scales_hidden_eligibility(beta):
    """``eprop(normalized_filter=True)`` (NEST's / Bellec's TF exp_convolve convention) gives
    (1 - kappa) times the default hidden-layer trace; the readout's trace is unchanged."""
    xs, _ = _task()
    ebar = {}
    for norm in (False, True):
        net = _net(10, 8, 2, beta=beta, w_scale=3.0, normalized_filter=norm)
        s = net.init(jax.random.PRNGKey(0))
        _, tr, _, _ = net.simulate(s["weights"], net.dynamic(s), net.traces(s), {"in": xs})
        ebar[norm] = {n: np.asarray(tr[n].ebar) for n in ("in", "rec", "out")}
    kappa = np.exp(-1.0 / 20.0)
    for n in ("in", "rec"):
        assert np.abs(ebar[False][n]).max() > 1e-3
        np.testing.assert_allclose(ebar[True][n], (1 - kappa) * ebar[False][n], rtol=1e-4,
                                   atol=1e-6)
    np.testing.assert_allclose(ebar[True]["out"], ebar[False]["out"])
    with pytest.raises(ConfigError, match="normalized_filter"):
        RULES["eprop"](normalized_filter="yes")
