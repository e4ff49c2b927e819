"""Contextual inference (``neurorl.agents.context``): RLS against the closed-form ridge
regression, one context = the plain agent, recruiting on a novel world and recognising a
returning one (also frozen, act only), continuous actions, the configuration errors, and the
paths users run: a YAML config through the runner (kill-and-resume, logs, summary,
``neurorl eval``'s policy) and the host loop of a bridged Gymnasium env."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.agents import AgentSpec, make_agent
from neurorl.agents.context import rls_update, with_context
from neurorl.errors import ConfigError
from neurorl.experiment.train import TrainConfig, make_train

SPEC = AgentSpec(obs_dim=3, obs_low=(-1.0,) * 3, obs_high=(1.0,) * 3, discrete=True,
                 n_actions=2, n_envs=4, substeps=2)
SMALL = {"n_rec": 8, "n_rf": 3, "rollout": 8}


def test_rls_equals_ridge_regression():
    """lam = 1: after every row, W is the ridge solution (X'X + I/delta)^-1 (X'Y + W0/delta)
    of the rows used so far (skipped rows leave no trace)."""
    rng = np.random.default_rng(0)
    d_in, d_out, delta = 5, 3, 10.0
    w0 = rng.normal(size=(d_in, d_out))
    w, p = jnp.asarray(w0, jnp.float32), jnp.eye(d_in, dtype=jnp.float32) * delta
    xs, ys = [], []
    for _ in range(4):  # four batches of 6 rows, some rows masked out
        x = rng.normal(size=(6, d_in))
        y = x @ rng.normal(size=(d_in, d_out)) + 0.1 * rng.normal(size=(6, d_out))
        ok = rng.random(6) < 0.7
        w, p = rls_update(w, p, jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32),
                          jnp.asarray(ok))
        xs.append(x[ok])
        ys.append(y[ok])
        X, Y = np.concatenate(xs), np.concatenate(ys)
        a = X.T @ X + np.eye(d_in) / delta
        ridge = np.linalg.solve(a, X.T @ Y + w0 / delta)
        np.testing.assert_allclose(np.asarray(w), ridge, rtol=2e-4, atol=2e-4)
        np.testing.assert_allclose(np.asarray(p), np.linalg.inv(a), rtol=2e-3, atol=2e-4)


def test_rls_forgetting_weights_recent_rows():
    """lam < 1: the weighted ridge solution with row weights lam^(age)."""
    rng = np.random.default_rng(1)
    d_in, lam, delta = 3, 0.9, 100.0
    x = rng.normal(size=(12, d_in))
    y = rng.normal(size=(12, 1))
    w, _ = rls_update(jnp.zeros((d_in, 1)), jnp.eye(d_in) * delta, jnp.asarray(x, jnp.float32),
                      jnp.asarray(y, jnp.float32), jnp.ones(12, bool), lam)
    age = np.arange(11, -1, -1)
    g = lam ** age
    a = (x * g[:, None]).T @ x + lam ** 12 * np.eye(d_in) / delta
    np.testing.assert_allclose(np.asarray(w), np.linalg.solve(a, (x * g[:, None]).T @ y),
                               rtol=1e-3, atol=1e-4)


def test_one_context_is_the_plain_agent():
    """n_contexts = 1 never switches or recruits: the same weights and returns as the agent
    without the wrapper, through make_train (bptt_ac with e-prop's gradient, the continual
    table's row; the online eprop_ac inside the wrapper is exercised by the tests below)."""
    agent_name, hyper = "bptt_ac", {"gradient": "eprop", "n_rec": 8, "n_rf": 3, "rollout": 8}
    outs = []
    for context in (None, {"n_contexts": 1}):
        cfg = TrainConfig(env_id="CartPole-v1", agent=agent_name, agent_kwargs=hyper,
                          n_steps=1024, n_envs=4, substeps=2, context=context)
        tr = make_train(cfg)
        rs, m = tr.run_chunk(tr.init(jax.random.key(3)[None]), 1024)
        outs.append((tr.agent.weights(rs.agent_state), np.asarray(m["episode_return"])))
    jax.tree.map(np.testing.assert_array_equal, outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])


def _world(b_sign: float):
    """A linear world obs' = obs + 0.05 A obs + 0.1 b_sign B[a] (stable, fully excited)."""
    A = jnp.array([[-0.5, 0.3, 0.0], [-0.3, -0.5, 0.2], [0.0, -0.2, -0.4]], jnp.float32)
    Bm = jnp.array([[1.0, 0.0, -0.5], [-1.0, 0.5, 0.5]], jnp.float32)

    def step(obs, action, key):
        noise = 0.01 * jax.random.normal(key, obs.shape)
        return obs + 0.05 * obs @ A.T + 0.1 * b_sign * Bm[action] + noise

    return step


def _run(agent, state, world, steps, key, learn=True):
    """``steps`` env steps of ``agent`` in ``world`` (4 envs, no episode ends)."""
    zeros = jnp.zeros((SPEC.n_envs,))
    no = jnp.zeros((SPEC.n_envs,), bool)

    def body(carry, k):
        state, obs = carry
        k1, k2 = jax.random.split(k)
        action, state = agent.act(state, obs, k1)
        if learn:
            state = agent.learn(state, zeros, no, no)
        else:  # frozen, as the benchmarks' evaluation: no learn, the episode flag only
            state = state.replace(reset_next=no)
        return (state, jnp.clip(world(obs, action, k2), -1, 1)), state.active

    obs0 = jax.random.uniform(key, (SPEC.n_envs, 3), minval=-0.5, maxval=0.5)
    state = state.replace(reset_next=jnp.ones((SPEC.n_envs,), bool))  # a new episode
    (state, _), active = jax.lax.scan(body, (state, obs0), jax.random.split(key, steps))
    return state, active


WORLD_A, WORLD_B = _world(1.0), _world(-1.0)  # world b: every action's effect reversed


@pytest.fixture(scope="module")
def ctx_agent():
    inner = make_agent("eprop_ac", SPEC, n_rec=8, n_rf=3)
    agent = with_context(inner, n_contexts=3, warmup=50)
    jitted = jax.jit(_run, static_argnums=(0, 2, 3, 5))

    def run(*args):
        state, active = jitted(*args)
        return state, np.asarray(active)

    return agent, run


def test_recruits_on_a_novel_world_and_recognises_a_returning_one(ctx_agent):
    agent, run = ctx_agent
    a, b = WORLD_A, WORLD_B
    st = agent.init(jax.random.key(0))
    st, act_a = run(agent, st, a, 300, jax.random.key(1))
    assert int(st.n_used) == 1 and set(act_a) == {0}
    w_a = agent.weights(st)
    st, act_b = run(agent, st, b, 300, jax.random.key(2))
    assert int(st.n_used) == 2 and int(st.active) == 1
    first = int(np.argmax(act_b == 1))
    assert 0 < first <= 60, first  # recruited after spawn_patience surprised steps
    # context 0's weights were stored as they were before the surprise: nothing learned in
    # world b (the first step of world b has no transition yet; its learning is undone too)
    jax.tree.map(np.testing.assert_array_equal, jax.tree.map(lambda s: s[0], st.store["weights"]),
                 w_a)
    st, act_a2 = run(agent, st, a, 300, jax.random.key(3))
    assert int(st.n_used) == 2, "world a returned: recognised, not recruited again"
    back = int(np.argmax(act_a2 == 0))
    assert act_a2[back:].tolist() == [0] * (300 - back) and back <= 4, act_a2[:10]
    # frozen (act only): the context follows the world, nothing is recruited or fitted
    w_models = np.asarray(st.model_w)
    st_f, act_fb = run(agent, st, b, 50, jax.random.key(4), False)
    assert act_fb[-1] == 1 and int(np.argmax(act_fb == 1)) <= 4
    st_f, act_fa = run(agent, st_f, a, 50, jax.random.key(5), False)
    assert act_fa[-1] == 0 and int(np.argmax(act_fa == 0)) <= 4
    assert int(st_f.n_used) == 2
    np.testing.assert_array_equal(np.asarray(st_f.model_w), w_models)


def test_returning_context_resumes_its_own_weights(ctx_agent):
    """The weights acting after the return are those context 0 had when it was left, not
    the other context's."""
    agent, run = ctx_agent
    a, b = WORLD_A, WORLD_B
    st = agent.init(jax.random.key(10))
    st, _ = run(agent, st, a, 300, jax.random.key(11))
    w_a = agent.weights(st)
    st, _ = run(agent, st, b, 300, jax.random.key(12))
    w_b = agent.weights(st)
    # frozen in world a: the switch happens in act, and nothing learns
    st1, _ = run(agent, st, a, 50, jax.random.key(13), False)
    assert int(st1.active) == 0
    jax.tree.map(np.testing.assert_array_equal, agent.weights(st1), w_a)
    assert any(not np.array_equal(x, y) for x, y in
               zip(jax.tree.leaves(w_a), jax.tree.leaves(w_b), strict=True))


@pytest.mark.parametrize("context,field,closest", [
    ({"n_context": 4}, "agent.context.n_context", "n_contexts"),
    ({"n_contexts": 0}, "agent.context.n_contexts", None),
    ({"switch_ratio": 0.5}, "agent.context.switch_ratio", None),
    ({"err_tau": 0.5}, "agent.context.err_tau", None),
    ({"spawn_floor": -1.0}, "agent.context.spawn_floor", None),
    ({"rls_forget": 1.5}, "agent.context.rls_forget", None),
    ({"warmup": 2.5}, "agent.context.warmup", None),
])
def test_bad_context_settings_name_the_field(context, field, closest):
    with pytest.raises(ConfigError) as e:
        make_train(TrainConfig(agent="bptt_ac", agent_kwargs=SMALL, n_steps=1024, n_envs=4,
                               context=context))
    assert e.value.field == field
    if closest:
        assert closest in str(e.value)


def test_context_refused_on_a_chip_and_for_agents_without_learned_fields():
    with pytest.raises(ConfigError, match="float"):
        make_train(TrainConfig(agent="bptt_ac", agent_kwargs=SMALL, n_steps=1024, n_envs=4,
                               chip="loihi2", context={"n_contexts": 2}))
    with pytest.raises(ConfigError) as e:
        make_train(TrainConfig(agent="rstdp", n_steps=1024, n_envs=4,
                               context={"n_contexts": 2}))
    assert e.value.field == "agent.context"


def test_yaml_context_runs_and_resumes_exactly(tmp_path):
    """``agent.context`` in an experiment config reaches make_train through the runner, and a
    stopped run resumes to exactly the uninterrupted run (the store, forward models and
    filters go through the checkpoint)."""
    from neurorl.experiment import runner
    from neurorl.experiment.checkpoint import load_checkpoint
    from neurorl.experiment.cli import main
    from neurorl.experiment.config import from_dict
    from tests.experiment.tiny import assert_same_checkpoint, tiny_config

    raw = tiny_config("ctx", steps=512, n_envs=4, n_seeds=1, chunk_steps=256, episode_window=5)
    # the continual table's row: bptt_ac with e-prop's gradient, with contexts
    raw["agent"] = {"name": "bptt_ac", "substeps": 2, "context": {"n_contexts": 2, "warmup": 20},
                    "hyper": {"n_rec": 8, "n_rf": 3, "rollout": 8, "gradient": "eprop"}}
    cfg = from_dict(raw)
    assert runner.train_config(cfg).context == {"n_contexts": 2, "warmup": 20}
    full, part = tmp_path / "full", tmp_path / "part"
    runner.run_experiment(cfg, full, progress=False, wandb_mode="disabled")
    assert runner.run_experiment(cfg, part, progress=False, wandb_mode="disabled",
                                 stop_after_chunks=1) == {"stopped_at": 256}
    assert main(["resume", str(part), "--no-progress"]) == 0
    # the context in use is logged per episode and per chunk (and so to wandb as chunk/...)
    from neurorl.experiment.logging import read_jsonl

    chunks = read_jsonl(full / "chunks.jsonl")
    assert [c["contexts_used"] >= 1 and c["context"] < 2 for c in chunks] == [True] * 2
    assert chunks[1]["context_switches"] >= chunks[0]["context_switches"]  # since the start
    assert all(e["context"] in (0, 1) for e in read_jsonl(full / "episodes.jsonl"))
    summary = json.loads((full / "summary.json").read_text())["members"][0]
    assert summary["contexts_used"] == chunks[-1]["contexts_used"]
    # neurorl eval's policy: the run's agent with its store, acting on one env (a batch-update
    # agent's n_minibatches = 2 does not divide that one env: eval must not refuse it)
    from neurorl.experiment.eval import load_policy

    pol = load_policy(full)
    flat, _ = load_checkpoint(full)  # {path: array}, member axis first
    (key,) = [k for k in flat if "store" in k and "params" in k and "b_out" in k]
    stored = flat[key][0]
    assert stored.shape[0] == 2
    np.testing.assert_array_equal(np.asarray(pol.state.store["params"]["b_out"]), stored)
    env = pol.make_env()
    obs, _ = env.reset(seed=0)
    pol.reset()
    for _ in range(30):
        obs, _, te, tr, _ = env.step(pol.act(obs))
        if te or tr:
            obs, _ = env.reset()
            pol.reset()
    assert_same_checkpoint(full, part)


def test_continuous_actions_fit_the_forward_model():
    """Continuous actions enter the regressor as they are, with a bias column: on a linear world
    with a constant drift the fitted model finds the action's effect and the drift and predicts
    the change (normalised error ~ the noise's share)."""
    spec = AgentSpec(obs_dim=2, obs_low=(-1.0,) * 2, obs_high=(1.0,) * 2, discrete=False,
                     n_actions=1, action_low=(-1.0,), action_high=(1.0,), n_envs=4, substeps=2)
    agent = with_context(make_agent("eprop_ac", spec, n_rec=8, n_rf=3), n_contexts=2)
    A = jnp.array([[-0.5, 0.2], [-0.2, -0.5]], jnp.float32)
    zeros, no = jnp.zeros((4,)), jnp.zeros((4,), bool)

    @jax.jit
    def run(state, key):
        def body(carry, k):
            state, obs = carry
            k1, k2 = jax.random.split(k)
            action, state = agent.act(state, obs, k1)
            state = agent.learn(state, zeros, no, no)
            nxt = (obs + 0.1 * obs @ A.T + 0.1 * action @ jnp.array([[1.0, -0.5]]) + 0.01
                   + 0.001 * jax.random.normal(k2, obs.shape))
            return (state, jnp.clip(nxt, -1, 1)), None

        obs0 = jax.random.uniform(key, (4, 2), minval=-0.5, maxval=0.5)
        return jax.lax.scan(body, (state, obs0), jax.random.split(key, 200))[0][0]

    st = run(agent.init(jax.random.key(0)), jax.random.key(1))
    assert st.model_w.shape == (2, 2 + 1 + 1, 2)  # obs, action, bias
    assert int(st.n_used) == 1
    assert float(st.err[0]) < 0.05, float(st.err[0])
    # the action's effect is identified (the sampled actions vary); the drift shares the bias
    # column with the mean action, so only the prediction is checked for it (err above)
    np.testing.assert_allclose(np.asarray(st.model_w[0, 2]), [0.1, -0.05], atol=0.005)


def test_bridged_gymnasium_env_runs_with_contexts_and_logs_them(tmp_path):
    """The host loop (``gymnasium:`` envs) builds the same wrapped agent and logs the context
    in use per chunk and episode, as the jitted trainer does."""
    from neurorl.experiment import runner
    from neurorl.experiment.config import from_dict
    from neurorl.experiment.logging import read_jsonl
    from tests.experiment.tiny import tiny_config

    raw = tiny_config("hostctx", steps=400, n_envs=4, n_seeds=1, chunk_steps=200,
                      episode_window=5)
    raw["env"] = {"id": "gymnasium:CartPole-v1"}
    raw["agent"].update(obs_range=[2.4, 3.0, 0.21, 3.0], context={"n_contexts": 2})
    runner.run_experiment(from_dict(raw), tmp_path / "run", progress=False,
                          wandb_mode="disabled")
    chunks = read_jsonl(tmp_path / "run" / "chunks.jsonl")
    assert [(c["context"], c["contexts_used"]) for c in chunks] == [(0, 1), (0, 1)]
    assert {e["context"] for e in read_jsonl(tmp_path / "run" / "episodes.jsonl")} == {0}
