"""e-prop against BPTT (jax.grad) and a plain numpy loop of Bellec et al. 2020's equations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.errors import ConfigError
from neurorl.plasticity import RULES, bptt
from neurorl.plasticity import eprop as E


def _task(n_in=10, n_out=2, T=200, seed=1):
    xs = (jax.random.uniform(jax.random.PRNGKey(seed), (T, n_in)) < 0.1).astype(jnp.float32)
    tg = jax.random.normal(jax.random.PRNGKey(seed + 1), (T, n_out))
    return xs, tg


def _cos(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.parametrize("beta", [0.0, 0.5])  # LIF and ALIF
def test_eprop_equals_bptt_nonrecurrent(beta):
    p = E.init_params(jax.random.PRNGKey(0), 10, 8, 2, recurrent=False, w_scale=3.0)
    cfg = E.EpropConfig(beta=beta, n_ref=2)
    xs, tg = _task()
    ge, ys = E.run_supervised(p, cfg, xs, tg)
    gb = bptt.grads(p, cfg, xs, tg)
    ys_b, zs = bptt.forward(p, cfg, xs)
    assert float(zs.mean()) > 0.01  # the neurons do spike
    np.testing.assert_allclose(ys, ys_b, atol=1e-5)
    for f in ("w_in", "w_out", "b_out"):
        a, b = np.asarray(getattr(ge, f)), np.asarray(getattr(gb, f))
        np.testing.assert_allclose(a, b, atol=1e-5 * np.abs(b).max(), rtol=1e-4)


def test_eprop_differs_from_bptt_when_recurrent_but_aligned():
    p = E.init_params(jax.random.PRNGKey(0), 10, 8, 2, recurrent=True, w_scale=3.0)
    cfg = E.EpropConfig(beta=0.0, n_ref=2)
    xs, tg = _task()
    ge, _ = E.run_supervised(p, cfg, xs, tg)
    gb = bptt.grads(p, cfg, xs, tg)
    for f in ("w_in", "w_rec"):
        a, b = np.asarray(getattr(ge, f)), np.asarray(getattr(gb, f))
        rel = np.abs(a - b).max() / np.abs(b).max()
        assert rel > 1e-2, (f, rel)  # truncated: ignores the recurrent paths
        assert _cos(a, b) > 0.5, (f, _cos(a, b))


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
    n_in, n, T = 4, 5, 150
    p = E.init_params(jax.random.PRNGKey(3), n_in, n, 1, recurrent=True, w_scale=4.0)
    betas = np.full(n, beta) * (np.arange(n) % 2)  # half LIF, half ALIF
    cfg = E.EpropConfig(tau_mem=20.0, tau_adapt=50.0, beta=jnp.asarray(betas, jnp.float32),
                        v_th=0.6, tau_out=10.0, n_ref=3)
    xs = (np.random.default_rng(0).random((T, n_in)) < 0.2).astype(np.float32)

    def body(s, x):
        _, s = E.step(p, cfg, s, x)
        return s, (s.v, s.z, s.eps_in, s.eps_rec, s.ebar_in, s.ebar_rec)

    _, out = jax.lax.scan(body, E.init_state(p), jnp.asarray(xs))
    ref = _numpy_eprop(*(np.asarray(w, np.float64) for w in (p.w_in, p.w_rec, p.w_out)), xs,
                       20.0, 50.0, betas, 0.6, 10.0, 0.3, 3)
    assert ref["z"].sum() > 10
    for k, got in zip(("v", "z", "ea_in", "ea_rec", "eb_in", "eb_rec"), out, strict=True):
        np.testing.assert_allclose(np.asarray(got), ref[k], atol=2e-4, rtol=1e-3, err_msg=k)
    if beta > 0:
        assert np.abs(ref["ea_in"]).max() > 1e-3  # the adaptation component is exercised


def test_rule_form_matches_network_traces():
    """The connection-level PlasticityRule reproduces the input-weight traces of the network."""
    n_in, n, T = 4, 5, 80
    p = E.init_params(jax.random.PRNGKey(3), n_in, n, 1, recurrent=False, w_scale=4.0)
    cfg = E.EpropConfig(beta=0.5, tau_adapt=50.0, n_ref=0)
    rule = RULES["eprop"](beta=0.5, tau_adapt=50.0)
    xs = (np.random.default_rng(1).random((T, n_in)) < 0.2).astype(np.float32)

    class NS:  # the fields of neurorl.core.neurons.LIFState the rule reads
        def __init__(self, s):
            self.v, self.thr, self.is_refractory = s.v, 0.0 + cfg.v_th + 0.5 * s.a, 0.0 * s.v

    def body(c, x):
        s, rs = c
        _, s = E.step(p, cfg, s, x)
        rs = rule.accumulate(rs, x, s.z, NS(s))
        return (s, rs), (s.ebar_in, rs.ebar)

    _, (a, b) = jax.lax.scan(body, (E.init_state(p), rule.init(p.w_in)), jnp.asarray(xs))
    np.testing.assert_allclose(a, b, atol=1e-6)
    g, _ = rule.update(jax.tree_util.tree_map(lambda v: v, rule.init(p.w_in)), 1.0, p.w_in)
    assert g.shape == p.w_in.shape


def test_config_validation():
    with pytest.raises(ConfigError, match="tau_mem"):
        E.EpropConfig(tau_mem=-5.0).validate()
    with pytest.raises(ConfigError, match="random"):
        E.EpropConfig(feedback="randm").validate()


@pytest.mark.slow
def test_supervised_eprop_learns_sum_of_sines():
    """Bellec 2020 Fig. 2-style pattern generation: 100 Poisson inputs, 1 readout, loss -90 %."""
    import optax

    T, n_in, n_rec = 500, 100, 60
    key = jax.random.PRNGKey(0)
    xs = (jax.random.uniform(key, (T, n_in)) < 0.02).astype(jnp.float32)  # 20 Hz, frozen
    t = jnp.arange(T) / 1000.0
    freqs, amps, phases = (1.0, 2.0, 3.0, 5.0), (0.5, 0.3, 0.4, 0.2), (0.0, 1.0, 2.0, 3.0)
    tg = sum(a * jnp.sin(2 * jnp.pi * f * t + ph)
             for f, a, ph in zip(freqs, amps, phases, strict=True))
    tg = tg[:, None]
    cfg = E.EpropConfig(tau_mem=20.0, tau_out=20.0, v_th=1.0, feedback="symmetric").validate()
    p = E.init_params(jax.random.PRNGKey(1), n_in, n_rec, 1, recurrent=True, w_scale=1.0)
    p = p.replace(w_in=p.w_in * 8.0, w_out=p.w_out * 0.0)
    tx = optax.adam(3e-3)

    @jax.jit
    def train(p):
        def it(c, _):
            p, o = c
            g, ys = E.run_supervised(p, cfg, xs, tg)
            u, o = tx.update(g, o, p)
            return (optax.apply_updates(p, u), o), jnp.mean((ys - tg) ** 2)

        (p, _), losses = jax.lax.scan(it, (p, tx.init(p)), None, length=300)
        return losses

    losses = np.asarray(train(p))
    assert losses[-10:].mean() < 0.1 * losses[0], (losses[0], losses[-10:].mean())


def test_no_recompile_when_constants_change():
    """Neuron constants are traced leaves: new tau/beta values reuse the compiled e-prop pass."""
    p = E.init_params(jax.random.PRNGKey(0), 4, 5, 1)
    xs, tg = _task(n_in=4, n_out=1, T=20)
    f = jax.jit(E.run_supervised)
    for tau, beta in ((20.0, 0.0), (15.0, 0.3), (30.0, 1.0)):
        f(p, E.EpropConfig(tau_mem=tau, beta=beta), xs, tg)
    assert f._cache_size() == 1
