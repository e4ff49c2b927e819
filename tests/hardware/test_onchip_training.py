"""make_train learning on chip through the compiled network's backend (issue 16): the weights
stay on the chip's grid (Loihi 2) or on the devices (PCM, programming pulses), and the learning
operations the energy model prices are counted per env step."""

from __future__ import annotations

import jax
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
