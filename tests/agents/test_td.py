"""The shared one-step-delayed TD bookkeeping (neurorl.agents.td) against a plain numpy loop of
semi-gradient TD(lambda) (Sutton & Barto 2018, Sec. 12.2, Eqs. 12.5-12.7; Sec. 13.5), over
streams of episodes that end by termination, by truncation, or both, with auto-reset."""

import jax
import jax.numpy as jnp
import numpy as np

from neurorl.agents import td
from neurorl.agents.td_ac import td_error as td_ac_error

GAMMA, LAM = 0.9, 0.8


def _streams(seed=0, n_envs=3, n_steps=60, dim=5):
    """Per env: observations o_0..o_N (features), rewards r_t, end flags of transition t.

    Episodes of 1-9 steps end by termination, truncation or both (gymnasium: terminated wins);
    after an end the next observation is a fresh episode's first (the auto-reset), so a
    truncated episode's true s' is never seen. The stream is cut at n_steps mid-episode."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n_envs, n_steps + 1, dim)).astype(np.float32)
    rew = rng.normal(size=(n_envs, n_steps)).astype(np.float32)
    term = np.zeros((n_envs, n_steps), bool)
    trunc = np.zeros((n_envs, n_steps), bool)
    kinds = ("term", "trunc", "both")
    for b in range(n_envs):
        t = int(rng.integers(0, 9))
        i = 0
        while t < n_steps:
            kind = kinds[i % 3]  # every kind in every env
            term[b, t] = kind in ("term", "both")
            trunc[b, t] = kind in ("trunc", "both")
            t += int(rng.integers(1, 10))
            i += 1
    assert term.any() and trunc.any() and (term & trunc).any() and (trunc & ~term).any()
    return obs, rew, term, trunc


def _numpy_td_lambda(obs, rew, term, trunc, w):
    """S&B 2018 Sec. 12.2 with a fixed linear v(s) = w . x(s): per transition t,
    z_t = gamma lam z_{t-1} + x(S_t) (z = 0 at an episode's start),
    delta_t = R_{t+1} + gamma v(S_{t+1}) - v(S_t) with v(terminal) = 0 and, at a truncation,
    v(S_t) for the unseen S_{t+1}; returns every delta_t and the offline update sum_t delta_t z_t.
    """
    n_envs, n_steps = rew.shape
    deltas = np.zeros((n_envs, n_steps))
    acc = np.zeros_like(w, dtype=np.float64)
    for b in range(n_envs):
        z = np.zeros(w.shape[0])
        for t in range(n_steps):
            if t > 0 and (term[b, t - 1] or trunc[b, t - 1]):
                z = np.zeros(w.shape[0])  # a new episode: no credit carried over
            x = obs[b, t].astype(np.float64)
            z = GAMMA * LAM * z + x
            v = x @ w
            if term[b, t]:
                v_next = 0.0
            elif trunc[b, t]:
                v_next = v
            else:
                v_next = obs[b, t + 1].astype(np.float64) @ w
            delta = float(rew[b, t]) + GAMMA * v_next - v
            deltas[b, t] = delta
            acc += delta * z
    return deltas, acc


def _forward_view(obs, rew, term, trunc, w):
    """The forward view: sum_t (G^lambda_t - v(S_t)) x(S_t) with the lambda-return recursion
    G_t = R_{t+1} + gamma ((1 - lam) v(S_{t+1}) + lam G_{t+1}), G after an end = its target.
    Offline, it equals the backward view's sum_t delta_t z_t (S&B 2018 Sec. 12.1-12.2)."""
    n_envs, n_steps = rew.shape
    acc = np.zeros_like(w, dtype=np.float64)
    for b in range(n_envs):
        g_next = None
        for t in reversed(range(n_steps)):
            x = obs[b, t].astype(np.float64)
            v = x @ w
            v_next = obs[b, t + 1].astype(np.float64) @ w
            r = float(rew[b, t])
            if term[b, t]:
                g = r
            elif trunc[b, t]:
                g = r + GAMMA * v
            elif g_next is None:  # the stream's cut: bootstrap on v(S_{t+1})
                g = r + GAMMA * v_next
            else:
                g = r + GAMMA * ((1 - LAM) * v_next + LAM * g_next)
            acc += (g - v) * x
            g_next = g
    return acc


def _delayed_agent(obs, rew, term, trunc, w):
    """The recipes' protocol with the shared functions (as rstdp's critic): ``act`` sees o_t
    and computes v_now; ``learn`` gets (r_t, term_t, trunc_t) and applies transition t - 1."""
    n_envs, n_steps = rew.shape
    wj = jnp.asarray(w, jnp.float32)
    st = td.init_fields(n_envs)
    e = jnp.zeros((n_envs, w.shape[0]), jnp.float32)
    acc = jnp.zeros(w.shape[0], jnp.float32)
    deltas = []

    @jax.jit
    def step(st, e, acc, x, r, te, tr):
        v_now = x @ wj
        delta = td.td_error(st["r_prev"], v_now, st["v_prev"], st["term_prev"],
                            st["trunc_prev"], st["has_prev"], GAMMA)
        acc = acc + jnp.sum(delta[:, None] * e, axis=0)
        e = td.trace_decay(GAMMA, LAM, st["term_prev"], st["trunc_prev"])[:, None] * e + x
        return {**st, "v_now": v_now, **td.advance(v_now, r, te, tr)}, e, acc, delta

    for t in range(n_steps + 1):  # the extra step closes transition n_steps - 1
        r = rew[:, t] if t < n_steps else np.zeros(n_envs, np.float32)
        te = term[:, t] if t < n_steps else np.zeros(n_envs, bool)
        tr = trunc[:, t] if t < n_steps else np.zeros(n_envs, bool)
        st, e, acc, delta = step(st, e, acc, jnp.asarray(obs[:, t]), jnp.asarray(r),
                                 jnp.asarray(te), jnp.asarray(tr))
        deltas.append(np.asarray(delta))
    return np.stack(deltas, axis=1), np.asarray(acc)


def test_delayed_td_lambda_equals_the_numpy_loop_with_terminations_and_truncations():
    obs, rew, term, trunc = _streams()
    w = np.random.default_rng(1).normal(size=obs.shape[-1])
    want_delta, want_acc = _numpy_td_lambda(obs, rew, term, trunc, w)
    # the numpy loop itself agrees with the forward view (lambda-returns), computed another way
    np.testing.assert_allclose(want_acc, _forward_view(obs, rew, term, trunc, w), rtol=1e-10)
    got_delta, got_acc = _delayed_agent(obs, rew, term, trunc, w)
    assert np.all(got_delta[:, 0] == 0.0)  # has_prev: nothing to learn before the first step
    np.testing.assert_allclose(got_delta[:, 1:], want_delta, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_acc, want_acc, rtol=1e-5, atol=1e-4)
    # the three endings differ: a truncation bootstraps, a termination does not
    v = obs[:, :-1].astype(np.float64) @ w
    only_trunc = trunc & ~term
    np.testing.assert_allclose(got_delta[:, 1:][only_trunc],
                               (rew + GAMMA * v - v)[only_trunc], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_delta[:, 1:][term], (rew - v)[term], rtol=1e-5, atol=1e-5)


def test_next_value_trace_decay_and_masking_case_by_case():
    v_now, v_prev = jnp.array([1.0, 2.0, 3.0, 4.0]), jnp.array([10.0, 20.0, 30.0, 40.0])
    term = jnp.array([False, True, False, True])
    trunc = jnp.array([False, False, True, True])
    # go on: v_now; terminated: 0; truncated: v_prev (bootstrap on V(s)); both: terminated wins
    np.testing.assert_array_equal(td.next_value(v_now, v_prev, term, trunc), [1.0, 0.0, 30.0, 0.0])
    np.testing.assert_allclose(td.trace_decay(GAMMA, LAM, term, trunc),
                               [GAMMA * LAM, 0.0, 0.0, 0.0], rtol=1e-7)
    r = jnp.array([0.5, 0.5, 0.5, 0.5])
    has = jnp.array([True, True, True, False])
    np.testing.assert_allclose(td.td_error(r, v_now, v_prev, term, trunc, has, GAMMA),
                               [0.5 + GAMMA * 1.0 - 10.0, 0.5 - 20.0, 0.5 + GAMMA * 30.0 - 30.0,
                                0.0], rtol=1e-6)
    # an extra term (shaping) is added before the mask
    extra = jnp.array([1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(
        td.td_error(r, v_now, v_prev, term, trunc, has, GAMMA, extra)
        - td.td_error(r, v_now, v_prev, term, trunc, has, GAMMA), [1.0, 1.0, 1.0, 0.0],
        rtol=1e-6)


def test_advance_and_init_fields():
    f0 = td.init_fields(3)
    assert set(f0) == {"v_now", "v_prev", "r_prev", "term_prev", "trunc_prev", "has_prev",
                       "reset_next"}
    assert all(x.shape == (3,) and not np.any(np.asarray(x)) for x in f0.values())
    assert f0["term_prev"].dtype == bool and f0["v_prev"].dtype == jnp.float32
    nxt = td.advance(jnp.array([1.0, 2.0, 3.0]), jnp.array([0.1, 0.2, 0.3]),
                     jnp.array([1, 0, 0]), jnp.array([False, True, False]))
    np.testing.assert_array_equal(nxt["v_prev"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(nxt["term_prev"], [True, False, False])
    np.testing.assert_array_equal(nxt["reset_next"], [True, True, False])
    assert np.all(np.asarray(nxt["has_prev"])) and nxt["has_prev"].dtype == bool


def test_potential_based_shaping_telescopes_over_an_episode():
    # Ng et al. 1999: sum_t gamma^t (gamma Phi(s_{t+1}) - Phi(s_t)) = -Phi(s_0) for an episode
    # that terminates (Phi(terminal) = 0), whatever the potentials in between
    phi = np.random.default_rng(2).normal(size=7).astype(np.float32)
    total = 0.0
    for t in range(6):
        last = t == 5
        f = td.potential_difference(jnp.asarray(phi[t + 1:t + 2]), jnp.asarray(phi[t:t + 1]),
                                    jnp.array([last]), jnp.array([False]), GAMMA)
        total += GAMMA**t * float(f[0])
    np.testing.assert_allclose(total, -phi[0], rtol=1e-5, atol=1e-6)


def test_td_ac_error_is_the_shared_error_with_gamma_one_minus_one_over_tau_r():
    obs, rew, term, trunc = _streams(seed=3, n_envs=1, n_steps=40)
    rng = np.random.default_rng(4)
    v_now, v_prev = (jnp.asarray(rng.normal(size=40), jnp.float32) for _ in range(2))
    args = (jnp.asarray(rew[0]), v_now, v_prev, jnp.asarray(term[0]), jnp.asarray(trunc[0]),
            jnp.ones(40, bool))
    tau_r = 20.0
    np.testing.assert_allclose(td_ac_error(*args, tau_r), td.td_error(*args, 1 - 1 / tau_r),
                               rtol=1e-5, atol=1e-6)
