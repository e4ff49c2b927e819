"""make_train learning on chip through the compiled network's backend (issue 16): the weights
stay on the chip's grid (Loihi 2) or on the devices (PCM, programming pulses), and the learning
operations the energy model prices are counted per env step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.experiment.train import TrainConfig, make_train


def _run(chip: str, agent: str, steps: int = 4 * 25):
    cfg = TrainConfig(env_id="CartPole-v1", agent=agent, n_envs=4, n_seeds=1, n_steps=steps,
                      chip=chip, substeps=5)
    train = make_train(cfg)
    out = train(jax.random.key(0))
    one = jax.tree.map(lambda x: x[0], out["runner_state"].agent_state)
    return train, out, train.agent.weights(one)


@pytest.mark.slow
def test_loihi2_eprop_learns_on_the_grid_and_counts_epochs():
    train, out, w = _run("loihi2", "eprop_ac")
    hw = train.agent.runtime.net.hardware
    assert hw.engine.kind == "sop" and hw.learning_epoch == 5
    for n, x in w.items():
        k = np.asarray(x) / hw.grid(n).step
        np.testing.assert_allclose(k, np.round(k), atol=1e-3)
    ops = np.asarray(out["metrics"]["learning_ops"])[:, 0]
    per_epoch = sum(hw._info["conns"][n]["n_edges"] for n in w)
    np.testing.assert_allclose(np.diff(ops), per_epoch)  # every synapse once per env step
    w0 = train.agent.weights(jax.tree.map(lambda x: x[0], train.init(jax.random.key(0))
                                          .agent_state))
    assert any(not np.allclose(w0[n], w[n]) for n in w)  # it learned
    # e-prop's traces on the engine: presynaptic trace and pseudo-derivative 7-bit (16 codes
    # per unit), eligibility a 9-bit tag (16 codes per unit)
    tr = jax.tree.map(lambda x: x[0], out["runner_state"].agent_state).traces
    for st in tr.values():
        for f, top in (("p", 127), ("psi", 127), ("ebar", 255)):
            x = np.asarray(getattr(st, f)) * 16
            np.testing.assert_allclose(x, np.round(x), atol=1e-3)
            assert np.abs(x).max() <= top


@pytest.mark.slow
def test_pcm_rstdp_learns_by_pulses():
    train, out, w = _run("pcm", "rstdp")
    hw = train.agent.runtime.net.hardware
    assert hw.engine.kind == "pulses"
    ops = np.asarray(out["metrics"]["learning_ops"])[:, 0]
    assert ops[-1] > 0 and np.all(np.diff(ops) >= 0)  # programming pulses, cumulative
    es = out["runner_state"].engine
    pulses = sum(float(np.sum(s.devices.pulses)) for s in es.values())
    assert pulses == pytest.approx(float(ops[-1]))


def test_rstdp_decision_gate_decays_tags_at_the_rules_rate_on_chip():
    """The R-STDP recipe gates each env step's eligibility increment by the decision,
    ``E = d^K E0 + g (E_K - d^K E0)``, with ``d^K`` the rule's decay over K steps. On a chip's
    engine the tags are rounded every step, so ``d^K`` measured through the compiled rule came
    out as a rounding artefact (Loihi 2: 0.875 instead of exp(-5/200) = 0.975) and the losing
    population's eligibility decayed ~4x too fast. Without spikes onto the outputs (threshold
    out of reach, no noise) every tag must decay by the rule's own d^K, winner or loser."""
    from neurorl.agents import make_agent
    from neurorl.agents.base import spec_from_env
    from neurorl.envs import make

    env, params = make("CartPole-v1")
    spec = spec_from_env(env, params, 2, 5, None)
    agent = make_agent("rstdp", spec, backend="loihi2", compile_kwargs={"w_max": "auto"},
                       v_th=1e6, noise_std=0.0, encoding="place")
    st = agent.init(jax.random.key(0))
    e0 = 8.0
    tr = {n: t.replace(eligibility=jnp.full_like(t.eligibility, e0))
          for n, t in st.traces.items()}
    obs = jnp.zeros((2, 4))
    _, st2 = agent.act(st.replace(traces=tr, snap=tr), obs, jax.random.key(1))
    e = np.asarray(st2.traces["input"].eligibility)
    want = e0 * np.exp(-5 / 200)
    # the 9-bit tag holds multiples of 1/16; each of the K = 5 steps rounds stochastically
    # (at most one code off, unbiased), so each tag is within 5 codes and their mean within a
    # fraction of a code (the faulty gate: losers at 2 x 0.875 x 8 - 7.8 = 6.2)
    np.testing.assert_allclose(e, want, atol=5 / 16)
    assert abs(e.mean() - want) < 0.25 / 16
