"""R-STDP and reference recipes on user networks, and the seed-axis execution of make_train."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.agents import make_agent, spec_from_env
from neurorl.agents.network_agent import AgentNetwork
from neurorl.agents.rstdp_agent import make_rstdp_agent
from neurorl.core.network import Connection, LearningRule, Network, NeuronGroup
from neurorl.encoding import gaussian_rf
from neurorl.envs import make
from neurorl.errors import ConfigError
from neurorl.experiment.sharding import enable_host_devices, member_block
from neurorl.experiment.train import TrainConfig, make_train


def _spec(n_envs=2, substeps=4):
    env, params = make("CartPole-v1")
    return spec_from_env(env, params, n_envs=n_envs, substeps=substeps)


def _user_net(spec, out_model="LIF", n_out=6, hidden_rule="stdp", out_rule="rstdp"):
    """obs (Input) -> hidden LIF (stdp, delay 0) -> actions (rstdp, delay 0)."""
    enc = gaussian_rf(spec.obs_low, spec.obs_high, 3, spec.substeps, mode="regular")
    obs = NeuronGroup(enc.n_in, "Input", name="obs")
    hid = NeuronGroup(10, "LIF", {"tau_mem": 10.0}, name="hid")
    act = NeuronGroup(n_out, out_model, {"tau_mem": 10.0}, name="act")
    c1 = Connection(obs, hid, weight={"init": "uniform", "low": 0.0, "high": 0.8}, delay=0,
                    name="c1")
    c2 = Connection(hid, act, weight={"init": "uniform", "low": 0.0, "high": 0.8}, delay=0,
                    name="c2")
    p1 = {"a_plus": 0.01, "a_minus": 0.005} if hidden_rule == "stdp" else {}
    rules = [LearningRule(c1, hidden_rule, p1, name="r1"),
             LearningRule(c2, out_rule, {"lr": 0.01, "modulator_kind": "td"}, name="r2")]
    return AgentNetwork(Network(obs, hid, act, c1, c2, *rules), enc, input="obs", output="act",
                        noise={"act": 1.0, "hid": 0.5}, spiking_input=True)


def test_rstdp_recipe_trains_a_user_network_with_stdp_and_rstdp_rules():
    spec = _spec()
    agent = make_rstdp_agent(spec, network=_user_net(spec))
    env, params = make("CartPole-v1")
    obs, es = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), 2),
                                                     params)
    state = agent.init(jax.random.key(1))
    w0 = jax.tree.map(np.asarray, state.weights)
    act, learn = jax.jit(agent.act), jax.jit(agent.learn)
    for t in range(6):
        a, state = act(state, obs, jax.random.key(10 + t))
        before = jax.tree.map(np.asarray, (state.traces["r1"], state.snap["r1"]))
        fresh = np.asarray(state.reset_next)  # envs this act restarted from a fresh state
        obs, es, r, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(jax.random.key(100 + t), 2), es, a, params)
        term = term.at[0].set(term[0] | (t == 2))  # env 0 restarts at the next act
        state = learn(state, r.astype(jnp.float32), term, trunc)
        # stdp's update consumed the snapshot's LTP sum: the live sum keeps only what came
        # after (all of it in an env that restarted since the snapshot)
        live, snap = before
        want = np.where(fresh[:, None, None], live.ltp, live.ltp - snap.ltp)
        np.testing.assert_allclose(np.asarray(state.traces["r1"].ltp), want, atol=1e-6)
        assert np.asarray(state.traces["r1"].ltp).min() >= -1e-6
    assert a.shape == (2,) and a.dtype == jnp.int32
    assert float(jnp.sum(state.stats.spikes)) > 0
    for c in ("c1", "c2"):
        w = np.asarray(state.weights[c])
        assert np.all(np.isfinite(w)) and np.abs(w - w0[c]).max() > 0, c
        assert np.abs(w).max() <= 1.0 + 1e-6  # clipped to w_max


def test_rstdp_recipe_rejects_networks_it_cannot_train():
    spec = _spec()
    with pytest.raises(ConfigError, match="n_actions x pop"):
        make_rstdp_agent(spec, network=_user_net(spec, n_out=5))
    with pytest.raises(ConfigError, match="n_actions x pop"):
        make_rstdp_agent(spec, network=_user_net(spec, out_model="LI"))
    with pytest.raises(ConfigError, match="rules"):
        make_rstdp_agent(spec, network=_user_net(spec, hidden_rule="eprop"))
    an = _user_net(spec)
    with pytest.raises(ConfigError, match="agent.output"):
        make_rstdp_agent(spec, network=dataclasses.replace(an, output="actions"))


def test_reference_agent_state_persists_across_episodes_and_raw_reward_potentiates():
    spec = _spec(n_envs=1, substeps=10)
    agent = make_agent("reference", spec)
    assert set(agent.runtime.net.rules) == {"w1", "w2"}
    state = agent.init(jax.random.key(0))
    w = np.asarray(state.weights["w1"])
    assert w.min() >= 0 and w.max() <= 0.15 and np.asarray(state.weights["w2"]).max() <= 0.04
    obs = jnp.asarray([[0.01, 0.2, -0.03, 0.1]], jnp.float32)
    a, s1 = agent.act(state, obs, jax.random.key(1))
    e = np.asarray(s1.traces["w1"].eligibility[0])
    assert np.abs(e).max() > 0 and float(s1.counts["hidden"].sum()) > 0
    s2 = agent.learn(s1, jnp.ones(1), jnp.array([True]), jnp.array([False]))
    # m = -1 on termination: W1 += lr * (-1) * e, then clip; the network state is kept
    np.testing.assert_allclose(np.asarray(s2.weights["w1"]), np.clip(w - 1e-6 * e, -1, 1),
                               rtol=1e-6, atol=1e-9)
    _, s3 = agent.act(s2, obs, jax.random.key(2))
    assert float(jnp.abs(s3.dyn["neurons"]["hidden"].v - s1.dyn["neurons"]["hidden"].v).max()
                 ) > 0


def test_member_block_rule():
    assert member_block(1024, 45_000) == 64  # reference agents: 64 x 45 KB fit 4 MiB
    assert member_block(32, 45_000) is None  # all 32 fit: one vmap
    assert member_block(5, 2_000_000) is None  # blocks would hold < MIN_BLOCK members
    # jax is running in this process: the device count can no longer change
    jax.devices()
    assert enable_host_devices(4) is None


def test_make_train_blocked_equals_one_vmap():
    cfg = TrainConfig("CartPole-v1", "reference", {"n_rf": 3, "n_hidden": 8}, n_steps=24,
                      n_envs=1, substeps=3, n_seeds=6)
    key = jax.random.key(0)
    out_v = make_train(cfg, devices=jax.devices()[:1], block=None)(key)
    train_b = make_train(cfg, devices=jax.devices()[:1], block=4)
    assert train_b.block == 4
    out_b = train_b(key)
    assert float(np.sum(out_v["metrics"]["spikes"])) > 0
    for x, y in zip(jax.tree.leaves(out_v), jax.tree.leaves(out_b), strict=True):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)
    if len(jax.devices()) >= 2:  # one host device per core: each device blocks its members
        train_s = make_train(cfg, block=2)
        assert train_s.layout.sharded and train_s.block == 2
        out_s = train_s(key)
        for x, y in zip(jax.tree.leaves(out_v), jax.tree.leaves(out_s), strict=True):
            if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
                x, y = jax.random.key_data(x), jax.random.key_data(y)
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)
    with pytest.raises(ConfigError, match="block"):
        make_train(cfg, block="fast")
