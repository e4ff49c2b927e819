"""The e-prop actor-critic's replay (``replay_window > 0``): off it changes nothing; on, its
gradients equal ``jax.grad`` of bptt_ac's clipped PPO loss through a re-simulation of the
network with the weights frozen (exactly on the readout, which is linear in the stored traces;
with trace replay, e-prop's gradient = ``jax.grad`` with the recurrent spike paths cut, Bellec
et al. 2020) over a window with episode resets inside it."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurorl.agents import make_agent, ppo, spec_from_env
from neurorl.agents import replay as rp
from neurorl.agents.eprop_ac import eprop_network
from neurorl.agents.network_agent import NetworkRuntime, reset_envs
from neurorl.agents.policy import log_prob_entropy
from neurorl.envs import make
from neurorl.errors import ConfigError
from neurorl.experiment.config import check_hyper_values
from neurorl.experiment.train import TrainConfig, make_train

SMALL = dict(n_rec=8, n_rf=3)
W, B, K = 6, 3, 2
GAMMA, LAM, CLIP, C_V = 0.99, 0.8, 0.2, 0.5


def test_replay_off_is_the_agent_without_it():
    # replay_window 0 with every other replay option changed: bit for bit the default agent
    runs = []
    for extra in ({}, dict(replay_window=0, replay_epochs=9, replay_lr=0.5, replay_traces=True,
                           replay_online="none", replay_minibatches=2)):
        cfg = TrainConfig(agent="eprop_ac", agent_kwargs=dict(SMALL, **extra), n_steps=60,
                          n_envs=2, substeps=2, n_seeds=2)
        out = make_train(cfg)(jax.random.key(0))
        runs.append(out["runner_state"].agent_state)
    a, b = runs
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert np.array_equal(np.asarray(x), np.asarray(y))


def _window(**hyper):
    """Run the agent (frozen online learning: ``replay_online="none"``) for W act/learn steps on
    a CartPole with 4-step episodes (resets inside the window); return the agent, its state with
    the full window, the observations it acted on ``[W + 1, B, 4]`` and the reset flags."""
    env, params = make("CartPole-v1", max_steps_in_episode=4)
    spec = spec_from_env(env, params, n_envs=B, substeps=K)
    agent = make_agent("eprop_ac", spec, replay_window=W, replay_online="none",
                       replay_epochs=1, **SMALL, **hyper)
    key = jax.random.key(3)
    k0, key = jax.random.split(key)
    obs, es = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k0, B), params)
    state = agent.init(jax.random.key(1))
    act, learn = jax.jit(agent.act), jax.jit(agent.learn)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    seen, resets = [], []
    for _ in range(W):
        key, ka, ke = jax.random.split(key, 3)
        seen.append(np.asarray(obs))
        resets.append(np.asarray(state.reset_next))
        a, state = act(state, obs, ka)
        obs, es, r, term, trunc, _ = step(jax.random.split(ke, B), es, a, params)
        state = learn(state, r, term, trunc)
    seen.append(np.asarray(obs))
    resets.append(np.asarray(state.reset_next))
    assert int(state.extra["replay"].ptr) == W
    assert np.any(np.stack(resets[1:W])), "no episode reset inside the window"
    return agent, spec, state, np.stack(seen), np.stack(resets), (act, key, obs)


def _resimulate(spec, weights, seen, resets, stop_z=False):
    """The network re-run on the window's observations from fresh states with frozen
    ``weights``: the readout membrane ``[W + 1, B, n_out]`` (no bias)."""
    an = eprop_network(spec, rule=None, **SMALL)
    rt = NetworkRuntime(an, B, K, stop_z_gradients=stop_z)
    dyn0, tr0 = rt.fresh()
    dyn = jax.tree.map(lambda x: jnp.broadcast_to(x, (B,) + x.shape), dyn0)

    def body(dyn, inp):
        o, rs = inp
        dyn = reset_envs(rs, dyn, dyn0)
        dyn, _, _, _ = jax.vmap(rt.step_one, in_axes=(None, 0, None, 0, None))(
            weights, dyn, tr0, o, None)
        return dyn, dyn["neurons"]["readout"].v

    return jax.lax.scan(body, dyn, (jnp.asarray(seen), jnp.asarray(resets)))[1]


def _gae_by_hand(v, r, term, trunc, v_boot):
    """GAE(lambda) by its definition, a loop over time (numpy, float64)."""
    adv = np.zeros_like(v)
    a = np.zeros(v.shape[1])
    for t in reversed(range(len(v))):
        nv = v_boot if t == len(v) - 1 else v[t + 1]
        nv = np.where(trunc[t] & ~term[t], v[t], nv)
        d = r[t] + GAMMA * (1.0 - term[t]) * nv - v[t]
        a = d + GAMMA * LAM * (1.0 - (term[t] | trunc[t])) * a
        adv[t] = a
    return adv, adv + v


def _loss_by_hand(out, log_std, buf, adv, ret):
    """bptt_ac's PPO loss written out (no shared code with the replay module)."""
    lp = jax.nn.log_softmax(out[..., :2])
    lp = jnp.take_along_axis(lp, buf.raw[..., None], axis=-1)[..., 0]
    ratio = jnp.exp(lp - buf.logp)
    a = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg = -jnp.mean(jnp.minimum(ratio * a, jnp.clip(ratio, 1 - CLIP, 1 + CLIP) * a))
    v = out[..., 2]
    vc = buf.value + jnp.clip(v - buf.value, -CLIP, CLIP)
    return pg + C_V * 0.5 * jnp.mean(jnp.maximum((v - ret) ** 2, (vc - ret) ** 2))


def _reference(spec, state, seen, resets, w_eval, stop_z):
    """``(grads, d_out, adv)`` of the loss through the re-simulated network at weights
    ``w_eval`` (behaviour data and advantages from the stored window)."""
    buf = state.extra["replay"]
    mem0 = _resimulate(spec, state.weights, seen, resets)
    v_boot = np.asarray(mem0[W, :, 2] + state.params["b_out"][2], np.float64)
    adv, ret = _gae_by_hand(np.asarray(buf.value, np.float64), np.asarray(buf.reward, np.float64),
                            np.asarray(buf.term), np.asarray(buf.trunc), v_boot)
    adv, ret = jnp.asarray(adv, jnp.float32), jnp.asarray(ret, jnp.float32)

    def loss(w, b):
        out = _resimulate(spec, w, seen, resets, stop_z)[:W] + b[None, None, :]
        return _loss_by_hand(out, state.params["log_std"], buf, adv, ret)

    g, gb = jax.grad(loss, argnums=(0, 1))(w_eval, state.params["b_out"])
    out = _resimulate(spec, w_eval, seen, resets)[:W] + state.params["b_out"][None, None, :]
    d_out = jax.grad(lambda o: _loss_by_hand(o, state.params["log_std"], buf, adv, ret))(out)
    return g, gb, d_out, adv, ret


def _perturbed(state, scale=0.06):
    """The readout weights moved so that the ratios leave [0.8, 1.2] (the clip is active)."""
    w = dict(state.weights)
    w["output"] = w["output"] + scale * jax.random.normal(jax.random.key(7), w["output"].shape)
    return w


def test_readout_replay_gradient_is_the_gradient_of_the_resimulated_ppo_loss():
    agent, spec, state, seen, resets, (act, key, obs) = _window()
    w0 = agent.init(jax.random.key(1)).weights
    for c in ("input", "recurrent"):  # online learning off: the hidden weights are frozen
        assert np.array_equal(np.asarray(state.weights[c]), np.asarray(w0[c]))
    buf = state.extra["replay"]
    # the stored traces give the acting readout exactly: sum_c x_c W_c + b = membrane + b
    mem = _resimulate(spec, state.weights, seen, resets)
    np.testing.assert_allclose(np.asarray(rp.readout({"output": state.weights["output"]},
                                                     0.0, buf.x)), np.asarray(mem[:W]),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(buf.value),
                               np.asarray(mem[:W, :, 2] + state.params["b_out"][2]), rtol=1e-5)
    # GAE of the library = GAE by hand
    x_new = _resimulate(spec, state.weights, seen, resets)[W]
    v_boot = x_new[:, 2] + state.params["b_out"][2]
    adv, ret = ppo.gae(buf.value, buf.reward, buf.term, buf.trunc, v_boot, GAMMA, LAM)
    g_ref, gb_ref, _, adv_h, ret_h = _reference(spec, state, seen, resets, _perturbed(state),
                                                False)
    np.testing.assert_allclose(np.asarray(adv), np.asarray(adv_h), rtol=1e-5, atol=1e-6)
    # at perturbed readout weights (ratios outside the clip range on some samples)
    w = _perturbed(state)
    out = rp.readout({"output": w["output"]}, state.params["b_out"], buf.x)
    lp = jax.vmap(jax.vmap(lambda o, r: log_prob_entropy(o, state.params["log_std"], r, True,
                                                         2)[0]))(out, buf.raw)
    ratio = np.exp(np.asarray(lp - buf.logp))
    assert np.any(ratio > 1.2) and np.any(ratio < 0.8) and np.any(np.abs(ratio - 1) < 0.2)
    kw = dict(discrete=True, n_act=2, clip=CLIP, c_v=C_V, c_ent=0.0)
    d_out = jax.grad(lambda o: rp.ppo_loss_of_outputs(o, state.params["log_std"], buf.raw,
                                                      buf.logp, buf.value, adv, ret, **kw))(out)
    g = rp.eprop_grads(d_out, {"output": buf.x["output"]}, {}, {})
    np.testing.assert_allclose(np.asarray(g["output"]), np.asarray(g_ref["output"]),
                               rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(d_out.sum((0, 1))), np.asarray(gb_ref), rtol=2e-4,
                               atol=1e-6)
    assert float(np.abs(np.asarray(g_ref["output"])).max()) > 1e-3  # not a zero comparison
    # the agent's replay (its batch update, called by the training loop with the next
    # observation when the window is full) is one Adam step on that gradient at the current
    # weights: bptt_ac's optimizer, clipped by global norm 0.5
    g0, gb0, _, _, _ = _reference(spec, state, seen, resets, state.weights, False)
    q = {"w": {"output": state.weights["output"]}, "b_out": state.params["b_out"],
         "log_std": state.params["log_std"]}
    tx = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(1e-3, eps=1e-5))
    upd, _ = tx.update({"w": {"output": g0["output"]}, "b_out": gb0,
                        "log_std": jnp.zeros_like(q["log_std"])}, tx.init(q), q)
    want = optax.apply_updates(q, upd)
    s1 = jax.jit(agent.update)(state, obs, key)
    assert agent.update_every == W
    # the readout membrane now is what the new weights give on the same spikes
    np.testing.assert_allclose(
        np.asarray(s1.dyn["neurons"]["readout"].v),
        np.asarray(rp.readout({"output": s1.weights["output"]}, 0.0,
                              {"output": s1.traces["output"].p})), rtol=1e-5, atol=1e-6)
    _, s2 = act(s1, obs, key)
    np.testing.assert_allclose(np.asarray(s2.weights["output"]), np.asarray(want["w"]["output"]),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(s2.params["b_out"]), np.asarray(want["b_out"]),
                               rtol=1e-4, atol=1e-6)
    for c in ("input", "recurrent"):
        assert np.array_equal(np.asarray(s2.weights[c]), np.asarray(w0[c]))
    # a new window: this step is its first (learn moves the pointer on), and the acting
    # readout is the new weights' readout of its traces
    assert int(s2.extra["replay"].ptr) == 0
    np.testing.assert_array_equal(np.asarray(s2.extra["replay"].x["output"][0]),
                                  np.asarray(s2.traces["output"].p))
    np.testing.assert_allclose(
        np.asarray(s2.dyn["neurons"]["readout"].v),
        np.asarray(rp.readout({"output": s2.weights["output"]}, 0.0,
                              {"output": s2.traces["output"].p})), rtol=1e-5, atol=1e-6)


def test_trace_replay_gradient_is_eprop_of_the_resimulated_ppo_loss():
    # e-prop with symmetric feedback = jax.grad with the recurrent spike paths cut
    # (Network.compile(stop_z_gradients=True); tests/plasticity/test_eprop.py)
    agent, spec, state, seen, resets, (_, key, obs) = _window(replay_traces=True)
    buf = state.extra["replay"]
    assert set(buf.ebar) == {"input", "recurrent"}
    w = _perturbed(state)
    g_ref, _, _, adv, ret = _reference(spec, state, seen, resets, w, True)
    out = rp.readout({"output": w["output"]}, state.params["b_out"], buf.x)
    kw = dict(discrete=True, n_act=2, clip=CLIP, c_v=C_V, c_ent=0.0)
    d_out = jax.grad(lambda o: rp.ppo_loss_of_outputs(o, state.params["log_std"], buf.raw,
                                                      buf.logp, buf.value, adv, ret, **kw))(out)
    fb = {n: w["output"] for n in buf.ebar}
    g = rp.eprop_grads(d_out, buf.x, buf.ebar, fb)
    mask = np.asarray(agent.runtime.net.structure["recurrent"]["mask"])
    for n in ("output", "input", "recurrent"):
        got = np.asarray(g[n]) * (mask if n == "recurrent" else 1.0)
        np.testing.assert_allclose(got, np.asarray(g_ref[n]) * (mask if n == "recurrent"
                                                                else 1.0),
                                   rtol=2e-3, atol=2e-6)
        assert float(np.abs(np.asarray(g_ref[n])).max()) > 1e-4, n
    # the agent's update: one Adam step (epochs 1) on that gradient of every connection
    g0, gb0, _, _, _ = _reference(spec, state, seen, resets, state.weights, True)
    q = {"w": {n: state.weights[n] for n in g0}, "b_out": state.params["b_out"],
         "log_std": state.params["log_std"]}
    tx = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(1e-3, eps=1e-5))
    g0 = {**g0, "recurrent": g0["recurrent"] * mask}
    upd, _ = tx.update({"w": g0, "b_out": gb0, "log_std": jnp.zeros_like(q["log_std"])},
                       tx.init(q), q)
    want = optax.apply_updates(q, upd)
    s1 = jax.jit(agent.update)(state, obs, key)
    for n in g0:
        np.testing.assert_allclose(np.asarray(s1.weights[n]), np.asarray(want["w"][n]),
                                   rtol=1e-4, atol=2e-6)
        assert not np.array_equal(np.asarray(s1.weights[n]), np.asarray(state.weights[n]))


def test_bad_replay_options_are_named():
    env, params = make("CartPole-v1")
    spec = spec_from_env(env, params, n_envs=4)
    for bad, field in ((dict(replay_window=-1), "replay_window"),
                       (dict(replay_window=2.5), "replay_window"),
                       (dict(replay_epochs=0), "replay_epochs"),
                       (dict(replay_window=8, replay_minibatches=3), "replay_minibatches"),
                       (dict(replay_lr=0.0), "replay_lr"),
                       (dict(replay_lambda=1.5), "replay_lambda"),
                       (dict(replay_c_v=-1.0), "replay_c_v"),
                       (dict(replay_hidden_scale=float("nan")), "replay_hidden_scale"),
                       (dict(replay_traces="yes"), "replay_traces"),
                       (dict(replay_window=8, replay_meta_lr=True), "replay_meta_lr")):
        with pytest.raises(ConfigError, match=field):
            make_agent("eprop_ac", spec, **bad)
    with pytest.raises(ConfigError, match="hidden"):  # the closest valid name
        make_agent("eprop_ac", spec, replay_online="hiden")
    with pytest.raises(ConfigError, match="replay_window"):
        make_agent("eprop_ac", spec, replay_windw=8)
    mc, mcp = make("MountainCar-v0")
    with pytest.raises(ConfigError, match="shaping"):
        make_agent("eprop_ac", spec_from_env(mc, mcp), replay_window=8,
                   shaping="mountain_car_energy", shaping_scale=1.0)
    with pytest.raises(ConfigError, match="agent.hyper.replay_window"):
        check_hyper_values("eprop_ac", {"replay_window": "8"}, "agent.hyper")


def test_replay_runs_in_make_train_with_minibatches_and_continuous_actions():
    for env_id in ("CartPole-v1", "Pendulum-v1"):
        cfg = TrainConfig(env_id=env_id, agent="eprop_ac",
                          agent_kwargs=dict(SMALL, replay_window=4, replay_minibatches=2,
                                            replay_traces=True, meta_lr_max=5.0,
                                            replay_meta_lr=True),
                          n_steps=40, n_envs=2, substeps=2)
        out = make_train(cfg)(jax.random.key(0))
        st = out["runner_state"].agent_state
        assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(st.weights))
        assert int(np.asarray(st.extra["replay"].ptr).max()) <= 4


def test_replay_meta_lr_multiplies_the_replay_steps_by_the_gain():
    from neurorl.plasticity.neuromodulation import MetaLRState

    # a long-run value of 1 and a mid-term one of 0.5 (a drop of one half): gain 1 + 4 x 0.5
    meta = MetaLRState(jnp.float32(0.5), jnp.float32(1.0), jnp.float32(1e6))
    moved = {}
    for on in (False, True):
        agent, _, state, _, _, (_, key, obs) = _window(meta_lr_max=5.0, meta_lr_k=4.0,
                                                       replay_meta_lr=on)
        state = state.replace(extra={**state.extra, "meta_lr": meta})
        s1 = jax.jit(agent.update)(state, obs, key)
        moved[on] = np.asarray(s1.weights["output"]) - np.asarray(state.weights["output"])
    assert np.abs(moved[False]).max() > 1e-5
    np.testing.assert_allclose(moved[True], 3.0 * moved[False], rtol=1e-3, atol=1e-7)


def test_replay_hidden_scale_scales_only_the_hidden_replay_steps():
    moved = {}
    for scale in (1.0, 0.25):
        agent, _, state, _, _, (_, key, obs) = _window(replay_traces=True,
                                                       replay_hidden_scale=scale)
        s1 = jax.jit(agent.update)(state, obs, key)
        moved[scale] = {n: np.asarray(s1.weights[n]) - np.asarray(state.weights[n])
                        for n in ("input", "recurrent", "output")}
    for n in ("input", "recurrent"):
        assert np.abs(moved[1.0][n]).max() > 1e-5
        np.testing.assert_allclose(moved[0.25][n], 0.25 * moved[1.0][n], rtol=1e-3, atol=1e-8)
    np.testing.assert_array_equal(moved[0.25]["output"], moved[1.0]["output"])
