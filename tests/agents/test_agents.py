"""Agent protocol contract tests (every registered agent) and the e-prop gradient reference test."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.agents import AGENTS, make_agent, spec_from_env
from neurorl.agents.policy import log_prob_entropy
from neurorl.envs import make
from neurorl.errors import ConfigError

SMALL = {
    "eprop_ac": dict(n_rec=8, n_alif=2, n_rf=3),
    "bptt_ac": dict(n_rec=8, n_alif=2, n_rf=3, rollout=3, epochs=1, n_minibatches=1),
    "rstdp": dict(n_rf=3, pop=2),
    "td_ac": dict(n_place=3, n_critic=4, pop=2, lateral_inh=0.5),
    "reference": dict(n_rf=3, n_hidden=8),
}


def _setup(name, n_envs=2, **extra):
    env, params = make("CartPole-v1")
    spec = spec_from_env(env, params, n_envs=n_envs, substeps=3)
    agent = make_agent(name, spec, **{**SMALL[name], **extra})
    return env, params, agent


def _rollout(agent, env, params, key, n=5):
    """n act/env/learn steps; returns (final agent state, actions [n, B])."""
    B = agent.spec.n_envs
    k0, key = jax.random.split(key)
    obs, es = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k0, B), params)
    state = agent.init(jax.random.key(1))
    actions = []
    for _ in range(n):
        key, ka, ke = jax.random.split(key, 3)
        a, state = agent.act(state, obs, ka)
        obs, es, r, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(ke, B), es, a, params)
        # force an episode end in env 0 at step 2 so resets are exercised
        term = term.at[0].set(term[0] | (len(actions) == 2))
        state = agent.learn(state, r.astype(jnp.float32), term, trunc)
        actions.append(a)
        if agent.update is not None and len(actions) % agent.update_every == 0:
            key, ku = jax.random.split(key)
            state = agent.update(state, obs, ku)
    return state, jnp.stack(actions)


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_agent_contract_jit_eager_no_recompile_and_reset(name):
    env, params, agent = _setup(name)
    act, learn = jax.jit(agent.act), jax.jit(agent.learn)
    upd = jax.jit(agent.update) if agent.update is not None else None
    jitted = agent._replace(act=act, learn=learn, update=upd)
    # eager (op-by-op dispatch) == jit over two steps (before any batch update)
    s_eager, a_eager = _rollout(agent, env, params, jax.random.key(3), n=2)
    s_jit, a_jit = _rollout(jitted, env, params, jax.random.key(3), n=2)
    np.testing.assert_array_equal(np.asarray(a_eager), np.asarray(a_jit))
    w_e, w_j = agent.weights(s_eager), agent.weights(s_jit)
    for x, y in zip(jax.tree.leaves(w_e), jax.tree.leaves(w_j), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)
    s_jit, a_jit = _rollout(jitted, env, params, jax.random.key(3), n=5)
    assert a_jit.shape == (5, 2) and a_jit.dtype == jnp.int32
    assert s_jit.stats.spikes.shape == (2,)
    assert np.all(np.isfinite(np.asarray(jax.tree.leaves(agent.weights(s_jit))[0])))
    # a second call with a new key and new values does not recompile
    _rollout(jitted, env, params, jax.random.key(4), n=5)
    assert act._cache_size() == 1 and learn._cache_size() == 1
    if upd is not None:
        assert upd._cache_size() == 1

    if not hasattr(s_jit, "reset_next"):
        return  # the reference agent keeps its network state across episodes by design
    # per-env network states reset on done with jnp.where: env 0 flagged done must restart
    # from the fresh state
    per_env = tuple(f for f in ("dyn", "traces") if hasattr(s_jit, f)) or ("carry",)
    carry = lambda st: [getattr(st, f) for f in per_env]
    obs = jnp.tile(jnp.array([[0.01, 0.2, -0.03, 0.1]], jnp.float32), (2, 1))
    dirty = s_jit.replace(reset_next=jnp.array([True, False]))
    init = agent.init(jax.random.key(1))
    fresh = dirty.replace(**{f: getattr(init, f) for f in per_env},
                          reset_next=jnp.array([True, True]))
    _, s_dirty = act(dirty, obs, jax.random.key(9))
    _, s_fresh = act(fresh, obs, jax.random.key(9))
    for x, y in zip(jax.tree.leaves(carry(s_dirty)), jax.tree.leaves(carry(s_fresh)),
                    strict=True):
        np.testing.assert_allclose(np.asarray(x[0]), np.asarray(y[0]), rtol=1e-6, atol=1e-6)
    # without the reset the carried state would differ (the test can fail)
    s_noreset, _ = act(dirty.replace(reset_next=jnp.array([False, False])), obs,
                       jax.random.key(9))[1], None
    diff = [np.abs(np.asarray(x[0]) - np.asarray(y[0])).max()
            for x, y in zip(jax.tree.leaves(carry(s_noreset)), jax.tree.leaves(carry(s_fresh)),
                            strict=True)]
    assert max(diff) > 1e-4


def test_eprop_tag_resets_after_the_episode_end():
    env, params, agent = _setup("eprop_ac")
    s, _ = _rollout(agent._replace(act=jax.jit(agent.act), learn=jax.jit(agent.learn)),
                    env, params, jax.random.key(0), n=4)
    # step 4 learned with term_prev[0] = True: env 0's tag restarts at its current L ebar
    for n in ("input", "recurrent", "output"):
        g = np.asarray(s.traces[n].ebar) * np.asarray(s.g_now["w"][n])[:, None, :]
        tag = np.asarray(s.tag["w"][n])
        np.testing.assert_allclose(tag[0], g[0], atol=1e-7)
    assert np.abs(tag[1] - g[1]).max() > 0  # env 1 kept its filtered history


def _eprop_vs_autodiff(rec_scale, gamma_ref):
    """Agent's per-step e-prop gradient of log pi(a) + c_v V vs jax.grad through the agent's own
    network (built with pseudo-derivative dampening ``gamma_ref``)."""
    env, params = make("CartPole-v1")
    spec = spec_from_env(env, params, n_envs=1, substeps=6)
    hyper = dict(n_rec=6, n_alif=3, n_rf=3, rec_scale=rec_scale, in_scale=1.5, out_scale=1.0,
                 c_v=0.5, tau_out=4.0)
    agent = make_agent("eprop_ac", spec, **hyper)
    state = agent.init(jax.random.key(2))
    obs = jnp.array([[0.1, -0.4, 0.05, 0.3]], jnp.float32)
    action, state = jax.jit(agent.act)(state, obs, jax.random.key(5))
    ref_agent = make_agent("eprop_ac", spec, **{**hyper, "gamma_pd": gamma_ref})
    rt = ref_agent.runtime
    dyn0, tr0 = rt.fresh()
    w0 = agent.init(jax.random.key(2)).weights

    def objective(w, b_out):
        dyn, _, _, _ = rt.step_one(w, dyn0, tr0, obs[0], None)
        out = dyn["neurons"]["readout"].v + b_out
        lp, _ = log_prob_entropy(out, jnp.zeros((0,)), action[0], True, 2)
        return lp + 0.5 * out[2]

    gw, gb = jax.grad(objective, argnums=(0, 1))(w0, jnp.zeros((3,), jnp.float32))
    g = {n: np.asarray(state.traces[n].ebar[0]) * np.asarray(state.g_now["w"][n][0])[None, :]
         for n in ("input", "output")}
    return g, np.asarray(state.g_now["b_out"][0]), gw, np.asarray(gb)


def test_eprop_equals_autodiff_without_recurrence_and_wrong_models_are_caught():
    g, gb_e, ref, gb = _eprop_vs_autodiff(rec_scale=0.0, gamma_ref=0.3)
    assert np.abs(np.asarray(ref["input"])).max() > 1e-3  # the network is active
    for n in ("input", "output"):
        np.testing.assert_allclose(g[n], np.asarray(ref[n]), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gb_e, gb, rtol=1e-5)
    # a wrong pseudo-derivative scale is caught
    g, _, ref, _ = _eprop_vs_autodiff(rec_scale=0.0, gamma_ref=0.5)
    assert not np.allclose(g["input"], np.asarray(ref["input"]), rtol=1e-2, atol=1e-4)


def test_agent_errors_are_for_people():
    env, params = make("CartPole-v1")
    spec = spec_from_env(env, params)
    with pytest.raises(ConfigError, match="eprop_ac"):
        make_agent("eprop_a", spec)
    with pytest.raises(ConfigError, match="n_rec"):
        make_agent("eprop_ac", spec, n_recc=3)
    with pytest.raises(ConfigError, match="lam"):
        make_agent("eprop_ac", spec, lam=1.5)
    with pytest.raises(ConfigError, match=r"adam_b1.*\[0, 1\)"):
        make_agent("eprop_ac", spec, adam_b1=1.0)
    with pytest.raises(ConfigError, match="n_minibatches"):
        make_agent("bptt_ac", spec_from_env(env, params, n_envs=3), n_minibatches=2)
    env2, params2 = make("Pendulum-v1")
    with pytest.raises(ConfigError, match="discrete"):
        make_agent("rstdp", spec_from_env(env2, params2))


def test_bptt_ac_eprop_gradient_same_acts_different_update():
    """``gradient: eprop`` compiles the same network with the recurrent spike paths' gradient
    cut: the same actions until the first update, then other weights (the recurrent paths
    carry gradient in BPTT); a wrong name is refused with the closest one."""
    env, params = make("CartPole-v1")
    spec = spec_from_env(env, params, n_envs=2, substeps=3)
    small = {**SMALL["bptt_ac"], "n_alif": 0, "rec_scale": 2.0, "in_gain": 3.0}
    states, acts = {}, {}
    for g in ("bptt", "eprop"):
        agent = make_agent("bptt_ac", spec, gradient=g, **small)
        assert agent.runtime.net.stop_z_gradients == (g == "eprop")
        states[g], acts[g] = _rollout(agent, env, params, jax.random.key(3), n=3)
    np.testing.assert_array_equal(np.asarray(acts["bptt"]), np.asarray(acts["eprop"]))
    w_b, w_e = states["bptt"].params["w"], states["eprop"].params["w"]
    assert not np.allclose(np.asarray(w_b["recurrent"]), np.asarray(w_e["recurrent"]))
    with pytest.raises(ConfigError, match=r"gradient.*'eprop'"):
        make_agent("bptt_ac", spec, gradient="e-prop", **SMALL["bptt_ac"])


def test_rstdp_decision_feedback_signs_the_step_eligibility():
    """One act from zero eligibility: "none" gives the plain STDP increment; "action" keeps it
    on the chosen population only; "signed" keeps the winners' and negates the losers' (divided
    by n_actions - 1), Urbanczik & Senn (2009). Same key, so the spikes are identical."""
    env, params = make("CartPole-v1")
    obs = jnp.asarray([[0.01, 0.3, -0.02, -0.4], [-0.2, -0.1, 0.05, 0.5]], jnp.float32)
    out = {}
    for gate in ("none", "action", "signed"):
        spec = spec_from_env(env, params, n_envs=2, substeps=6)
        agent = make_agent("rstdp", spec, n_rf=3, pop=2, gate=gate, noise_std=2.0, a_minus=0.5)
        state = agent.init(jax.random.key(0))
        a, state = agent.act(state, obs, jax.random.key(5))
        out[gate] = (np.asarray(a), np.asarray(state.traces["input"].eligibility))
    a, e_none = out["none"]
    assert np.abs(e_none).max() > 0  # something to gate
    for b in range(2):
        win = (np.arange(4) // 2) == a[b]
        np.testing.assert_allclose(out["action"][1][b][:, win], e_none[b][:, win], rtol=1e-6)
        np.testing.assert_array_equal(out["action"][1][b][:, ~win], 0.0)
        np.testing.assert_allclose(out["signed"][1][b][:, win], e_none[b][:, win], rtol=1e-6)
        np.testing.assert_allclose(out["signed"][1][b][:, ~win], -e_none[b][:, ~win], rtol=1e-6)
    with pytest.raises(ConfigError, match="gate"):
        make_agent("rstdp", spec, gate="sign")


@pytest.mark.parametrize("name", sorted(SMALL))
def test_learn_starts_from_the_weights_in_the_state(name):
    """``learn`` reads the weights that ``weights(state)`` returns, not a hidden copy.

    ``make_train`` writes a chip's rounded weights or the float shadow into the state through
    ``replace_weights`` (by leaf identity); an agent that also keeps the weights elsewhere (an
    optimizer's params, say) would learn from that copy and undo the write (the chip runs then
    diverged, doubling each step). With the weights scaled by 1.1 before ``learn`` (signs and
    masks kept), the change ``learn`` makes must be the one it makes from the unscaled state.
    """
    from neurorl.experiment.train import replace_weights

    env, params, agent = _setup(name)
    B = agent.spec.n_envs
    key = jax.random.key(3)
    obs, es = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, B), params)
    state = agent.init(jax.random.key(1))
    for i in range(3):  # a few steps so traces, tags and TD bookkeeping are non-zero
        a, state = agent.act(state, obs, jax.random.fold_in(key, i))
        obs, es, r, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(jax.random.fold_in(key, 10 + i), B), es, a, params)
        if i < 2:
            state = agent.learn(state, r, term, trunc)
    @jax.jit  # as in make_train: under tracing every leaf of the state is its own tracer
    def change(state, scale):
        s = replace_weights(agent, state, jax.tree.map(lambda x: scale * x, agent.weights(state)))
        before = agent.weights(s)
        return jax.tree.map(lambda a, b: a - b, agent.weights(agent.learn(s, r, term, trunc)),
                            before)

    d_plain, d_scaled = change(state, 1.0), change(state, 1.1)
    for a, b in zip(jax.tree.leaves(d_scaled), jax.tree.leaves(d_plain), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5 * (1 + float(
            np.max(np.abs(np.asarray(b))))))


def _bptt_rollout_after_a_shift(c_ent: float = 0.0, **extra):
    """bptt_ac with the gain on (``extra`` added) and off, one rollout collected without its
    update, the gain's averages set as after a shift that broke the policy (long-run value above
    the rollout's), and the gain the update will use from a numpy loop of Schweighofer & Doya's
    averages (the equations of ``neurorl.plasticity.neuromodulation`` written out)."""
    env, params = make("CartPole-v1")
    spec = spec_from_env(env, params, n_envs=2, substeps=3)
    small = {**SMALL["bptt_ac"], "rollout": 4, "c_ent": c_ent}
    meta_h = dict(meta_lr_max=4.0, meta_lr_k=0.5, meta_lr_tau_mid=2.0, meta_lr_tau_long=6.0)
    on = make_agent("bptt_ac", spec, **small, **meta_h, **extra)
    off = make_agent("bptt_ac", spec, **small)
    # act/learn through one rollout without the update
    k0 = jax.random.key(3)
    obs, es = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k0, 2), params)
    state = on.init(jax.random.key(1))
    for t in range(4):
        a, state = on.act(state, obs, jax.random.fold_in(k0, t))
        obs, es, r, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(jax.random.fold_in(k0, 100 + t), 2), es, a, params)
        state = on.learn(state, r.astype(jnp.float32), term, trunc)
    from neurorl.plasticity.neuromodulation import MetaLRState

    m0 = MetaLRState(jnp.float32(0.9), jnp.float32(0.95), jnp.float32(20.0))
    state = state.replace(meta=m0)
    # numpy reference of the gain after the rollout's 4 calls
    a_m, a_l = 1 / 2.0, 1 / 6.0
    m, lg, n = 0.9, 0.95, 20.0
    for v in np.asarray(state.buf.value, np.float64):
        x = v.mean()
        m, lg, n = m + a_m * (x - m), lg + a_l * (x - lg), n + 1
    m_hat, l_hat = m / (1 - (1 - a_m) ** n), lg / (1 - (1 - a_l) ** n)
    gain = float(np.clip(1 + 0.5 * (l_hat - m_hat) / max(abs(l_hat), 1e-3), 1.0, 4.0))
    assert 1.2 < gain < 4.0  # a gain between the bounds, so the test sees the formula
    return on, off, state, obs, gain, m


def test_bptt_ac_neuromodulated_gain_scales_the_update():
    """``meta_lr_max > 1``: the rollout's values advance the mid- and long-term averages once
    per env step (Schweighofer & Doya 2003, the equations of
    ``neurorl.plasticity.neuromodulation`` written out in numpy here) and the update's step is
    the gain times the step without it (Adam's step is linear in the learning rate); off (the
    default) carries no state."""
    on, off, state, obs, gain, m = _bptt_rollout_after_a_shift()
    assert off.init(jax.random.key(0)).meta is None
    s_on = on.update(state, obs, jax.random.key(7))
    s_off = off.update(state.replace(meta=None), obs, jax.random.key(7))
    np.testing.assert_allclose(float(s_on.meta.count), 24.0)
    np.testing.assert_allclose(float(s_on.meta.mid), m, rtol=1e-5)
    for name in s_on.params["w"]:
        d_on = np.asarray(s_on.params["w"][name]) - np.asarray(state.params["w"][name])
        d_off = np.asarray(s_off.params["w"][name]) - np.asarray(state.params["w"][name])
        assert np.abs(d_off).max() > 0
        np.testing.assert_allclose(d_on, gain * d_off, rtol=1e-3, atol=1e-7)
    env, params = make("CartPole-v1")
    spec = spec_from_env(env, params, n_envs=2, substeps=3)
    with pytest.raises(ConfigError, match="meta_lr_tau_long"):
        make_agent("bptt_ac", spec, **SMALL["bptt_ac"], meta_lr_max=2.0, meta_lr_tau_long=1.0)


def test_bptt_ac_gain_on_the_entropy_bonus_is_a_larger_c_ent():
    """``meta_target="entropy"``: the update equals the ungained agent's with ``c_ent`` x the
    gain (the numpy loop's) and the Adam step unscaled; an unknown target names the choices."""
    c_ent = 0.05
    on, _, state, obs, gain, _ = _bptt_rollout_after_a_shift(c_ent, meta_target="entropy")
    s_on = on.update(state, obs, jax.random.key(7))
    env, params = make("CartPole-v1")
    spec = spec_from_env(env, params, n_envs=2, substeps=3)
    small = {**SMALL["bptt_ac"], "rollout": 4}
    ref = make_agent("bptt_ac", spec, **small, c_ent=c_ent * gain)
    same = make_agent("bptt_ac", spec, **small, c_ent=c_ent)
    s_ref = ref.update(state.replace(meta=None), obs, jax.random.key(7))
    s_same = same.update(state.replace(meta=None), obs, jax.random.key(7))
    moved = False
    for name in s_on.params["w"]:
        w0 = np.asarray(state.params["w"][name])
        d_on = np.asarray(s_on.params["w"][name]) - w0
        np.testing.assert_allclose(d_on, np.asarray(s_ref.params["w"][name]) - w0,
                                   rtol=1e-4, atol=1e-7)
        moved |= not np.allclose(d_on, np.asarray(s_same.params["w"][name]) - w0,
                                 rtol=1e-3, atol=1e-7)
    assert moved  # the gained bonus changed the update (the test can tell the two apart)
    with pytest.raises(ConfigError, match="meta_target.*'entropy'"):
        make_agent("bptt_ac", spec, **small, meta_lr_max=2.0, meta_target="entropie")
