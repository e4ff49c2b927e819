"""The TD-LTP actor-critic (Fremaux et al. 2013) against a slow numpy loop of the paper's equations,
and the locality of its plasticity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.agents import make_agent, spec_from_env
from neurorl.agents.td_ac import place_cells, td_ac_network, td_error
from neurorl.core.monitors import SpikeMonitor
from neurorl.envs import make
from neurorl.errors import ConfigError


def test_td_error_is_the_discretised_continuous_td_error():
    # delta(t) = r(t) - V(t)/tau_r + dV/dt with a backward difference over Delta t = 1
    rng = np.random.default_rng(0)
    r, v, vp = (rng.normal(size=6).astype(np.float32) for _ in range(3))
    tau_r = 25.0
    f = np.zeros(6, bool)
    got = td_error(jnp.asarray(r), jnp.asarray(v), jnp.asarray(vp), jnp.asarray(f),
                   jnp.asarray(f), jnp.ones(6, bool), tau_r)
    np.testing.assert_allclose(np.asarray(got), r - v / tau_r + (v - vp), rtol=1e-5, atol=1e-6)
    # equals the discrete TD error with gamma = 1 - 1/tau_r
    np.testing.assert_allclose(np.asarray(got), r + (1 - 1 / tau_r) * v - vp, rtol=1e-5,
                               atol=1e-6)
    # after a terminal transition the next value is 0
    term = np.array([True, False, True, False, False, False])
    got = td_error(jnp.asarray(r), jnp.asarray(v), jnp.asarray(vp), jnp.asarray(term),
                   jnp.asarray(f), jnp.ones(6, bool), tau_r)
    want = np.where(term, r - vp, r + (1 - 1 / tau_r) * v - vp)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)


def test_place_cells_are_conjunctive_gaussians():
    enc = place_cells([-1.0, -2.0], [1.0, 2.0], 3, substeps=4)
    assert enc.n_in == 9
    spikes = np.asarray(enc.encode(jnp.array([1.0, -2.0]), None))  # on the centre (1, -2)
    # grid order: product over dims, last fastest -> centre (1, -2) is index 2*3 + 0 = 6
    assert spikes[:, 6].sum() == 4  # activation 1: a spike every substep
    # the cell at (0, -2) (one spacing away in dim 0) has A = exp(-1/2) ~ 0.61 -> 2 of 4
    assert spikes[:, 3].sum() == 2
    # (0, 0): exp(-1/2 - 1/2) = 0.37 -> 1 of 4
    assert spikes[:, 4].sum() == 1
    with pytest.raises(ConfigError, match="n_place"):
        place_cells([-1.0], [1.0], 1, substeps=2)


K = 3  # substeps per env step


def _agent(monitors=False, **extra):
    env, params = make("CartPole-v1")
    spec = spec_from_env(env, params, n_envs=2, substeps=K)
    hyper = dict(n_place=3, n_critic=5, pop=3, lateral_inh=0.5, noise_std=1.0,
                 critic_noise_std=1.0, w_init=0.5, lr=0.05, lr_critic=0.1, tau_r=20.0,
                 v_scale=3.0, v0=-0.5, reward_scale=0.1, tau_eps=4.0, tau_kappa=6.0,
                 place_width=2.0, **extra)
    network = None
    if monitors:  # the same network, recording every group's spikes per substep
        network = td_ac_network(spec, **hyper)
        for g in network.network.groups:
            network.network.add(SpikeMonitor(g, name=g.name))
    return env, params, make_agent("td_ac", spec, network=network, **hyper), hyper


def test_td_ltp_matches_a_numpy_loop_of_the_papers_equations():
    """2 envs, 6 env steps of K substeps: the agent's weights equal those of a numpy loop (per
    1-ms substep) of epsilon * X, kappa * [Y (epsilon * X)], V, delta and dw = eta delta e."""
    env, params, agent, h = _agent(monitors=True)
    rt = agent.runtime
    B, n_c = 2, h["n_critic"]
    key = jax.random.key(0)
    obs, es = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, B), params)
    state = agent.init(jax.random.key(1))
    W0 = {n: np.asarray(state.weights[n], np.float64) for n in ("critic", "actor")}
    W = dict(W0)
    x = np.zeros((B, rt.net.groups["obs"].n))  # epsilon * X_j
    e = {n: np.zeros((B,) + W[n].shape) for n in W}  # kappa * [Y_i (epsilon * X_j)]
    e_snap = {n: np.zeros_like(e[n]) for n in W}
    de, dx = np.exp(-1 / h["tau_kappa"]), np.exp(-1 / h["tau_eps"])
    v_prev = np.zeros(B)
    r_prev = np.zeros(B)
    n_post_spikes = 0
    # compiled once (as training runs them): eagerly, every step's scans and their ~350 small
    # primitives were compiled again (most of this test's ~20 s of CPU)
    step_one, act, learn = jax.jit(rt.step_one), jax.jit(agent.act), jax.jit(agent.learn)
    for t in range(6):
        ka = jax.random.fold_in(key, 100 + t)
        # the network's spikes of this step, as the agent's act draws them (same keys)
        rec = [step_one(state.weights, jax.tree.map(lambda a, b=b: a[b], state.dyn),
                        jax.tree.map(lambda a, b=b: a[b], state.traces), obs[b],
                        jax.random.split(ka, B)[b])[2] for b in range(B)]
        a, state = act(state, obs, ka)
        spk = {g: np.stack([np.asarray(r[g]) for r in rec], axis=1)  # [K, B, n]
               for g in ("obs", "critic", "actions")}
        n_post_spikes += spk["critic"].sum() + spk["actions"].sum()
        for k in range(K):  # the paper's equations, one 1-ms substep at a time
            x = dx * x + spk["obs"][k]
            for n, g in (("critic", "critic"), ("actor", "actions")):
                e[n] = de * e[n] + x[:, :, None] * spk[g][k][:, None, :]
        v = h["v_scale"] * spk["critic"].sum((0, 2)) / (n_c * K) + h["v0"]
        np.testing.assert_allclose(np.asarray(state.v_now), v, rtol=1e-6)
        obs, es, r, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(jax.random.fold_in(key, t), B), es, a, params)
        assert not np.any(np.asarray(term | trunc))
        state = learn(state, r.astype(jnp.float32), term, trunc)
        if t > 0:
            delta = r_prev - v / h["tau_r"] + (v - v_prev)
            for n, lr in (("critic", h["lr_critic"]), ("actor", h["lr"])):
                W[n] = np.clip(W[n] + lr * np.mean(delta[:, None, None] * e_snap[n], axis=0),
                               -1.0, 1.0)
        e_snap = {n: e[n].copy() for n in e}
        v_prev, r_prev = v, h["reward_scale"] * np.asarray(r, np.float64)
        for n in W:
            np.testing.assert_allclose(np.asarray(state.weights[n]), W[n], rtol=1e-5,
                                       atol=1e-6)
    assert x.max() > 0 and n_post_spikes > 0
    assert all(np.abs(W[n] - W0[n]).max() > 1e-3 for n in W)  # the weights did move


def test_td_ltp_is_local():
    """A synapse's eligibility depends only on its own pre- and postsynaptic spikes: changing
    one presynaptic train changes only that row, one postsynaptic train only that column."""
    _, _, agent, _ = _agent()
    rule = agent.runtime.net.rules["critic"].rule
    rng = np.random.default_rng(3)
    n_pre, n_post, T = 7, 4, 12
    pre = (rng.random((T, n_pre)) < 0.3).astype(np.float32)
    post = (rng.random((T, n_post)) < 0.3).astype(np.float32)
    st0 = rule.init(jnp.zeros((n_pre, n_post)))
    e = np.asarray(rule.accumulate_block(st0, jnp.asarray(pre), jnp.asarray(post)).eligibility)
    pre2 = pre.copy()
    pre2[:, 2] = 1.0 - pre2[:, 2]
    e2 = np.asarray(rule.accumulate_block(st0, jnp.asarray(pre2), jnp.asarray(post)).eligibility)
    changed = np.abs(e2 - e) > 0
    assert changed[2].any() and not np.delete(changed, 2, axis=0).any()
    post2 = post.copy()
    post2[:, 1] = 1.0 - post2[:, 1]
    e3 = np.asarray(rule.accumulate_block(st0, jnp.asarray(pre), jnp.asarray(post2)).eligibility)
    changed = np.abs(e3 - e) > 0
    assert changed[:, 1].any() and not np.delete(changed, 1, axis=1).any()
    # TD-LTP: only pre-before-post coincidences (no LTD): eligibility never negative
    assert e.min() >= 0


def test_bad_hyperparameters_are_config_errors():
    env, params = make("CartPole-v1")
    spec = spec_from_env(env, params, n_envs=1, substeps=2)
    with pytest.raises(ConfigError, match="encoding"):
        make_agent("td_ac", spec, encoding="grid")
    with pytest.raises(ConfigError, match="tau_r"):
        make_agent("td_ac", spec, n_place=3, tau_r=0.5)
    with pytest.raises(ConfigError, match="lr_critc|lr_critic"):
        make_agent("td_ac", spec, lr_critc=1.0)


def test_rstdp_takes_the_place_cells():
    env, params = make("CartPole-v1")
    spec = spec_from_env(env, params, n_envs=1, substeps=2)
    agent = make_agent("rstdp", spec, encoding="place", n_place=3, pop=2)
    assert agent.runtime.net.groups["obs"].n == 3**4
    with pytest.raises(ConfigError, match="encoding"):
        make_agent("rstdp", spec, encoding="grid")
