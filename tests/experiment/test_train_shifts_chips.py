"""make_train with distribution shifts and chip constraints in the loop."""

import jax
import numpy as np
import pytest

from neurorl.errors import UnsupportedOnChipError
from neurorl.experiment.train import TrainConfig, make_train

SHIFTS = {
    "tasks": {"tasks": [{"length": 0.5}, {"length": 1.0}, {"length": 0.25}], "steps_per_task": 160}
}


def test_task_sequence_ids_follow_total_env_steps():
    cfg = TrainConfig(agent="rstdp", n_steps=480, n_envs=4, substeps=2, shifts=SHIFTS)
    out = make_train(cfg)(jax.random.key(0))
    tid = np.asarray(out["metrics"]["task_id"])[:, 0, 0]  # [T] for seed 0, env 0
    # 160 total env steps per task = 40 iterations of 4 envs
    np.testing.assert_array_equal(tid, np.repeat([0, 1, 2], 40))


def _run(off_chip):
    cfg = TrainConfig(
        agent="eprop_ac",
        n_steps=320,
        n_envs=4,
        substeps=2,
        chip="loihi2",
        off_chip_learning=off_chip,
        agent_kwargs={"n_rec": 8, "lr": 1e-3},
    )
    train = make_train(cfg)
    rs0 = train.init(jax.random.key(0))
    rs, _ = train.run_chunk(rs0, 320)
    one = lambda s: jax.tree.map(lambda x: x[0], s.agent_state)  # noqa: E731
    grids = train.agent.runtime.net.hardware  # the compiled network's chip backend
    return train.agent.weights(one(rs0)), train.agent.weights(one(rs)), grids


def test_on_chip_learning_keeps_weights_on_the_grid_with_stochastic_rounding():
    w0, w1, ref = _run(off_chip=False)  # Loihi 2 runs e-prop on chip
    for name in w0:
        a0, a1 = np.asarray(w0[name]), np.asarray(w1[name])
        assert np.unique(a1).size <= 255, name  # 8-bit signed
        # every weight is an integer multiple of this connection's grid step: the compiled
        # network's backend covers chip_w_scale (2) x max|w_init| per connection
        step = ref.grid(name).step
        assert step > 0 and ref.grid(name).hi <= 2.0 * 4.0
        np.testing.assert_allclose(a1 / step, np.round(a1 / step), atol=1e-3)
        # updates far below a grid step still move weights (unbiased stochastic rounding)
        assert not np.array_equal(a0, a1), "learning moved the weights"


def test_off_chip_learning_trains_float_shadow_weights():
    w0, w1, ref = _run(off_chip=True)
    moved = 0
    for name in w0:
        a0, a1 = np.asarray(w0[name]), np.asarray(w1[name])
        step = ref.grid(name).step
        moved += int(np.sum(a0 != a1))
        # the host keeps full-precision weights: they are not confined to the chip's grid
        assert not np.allclose(a1 / step, np.round(a1 / step), atol=1e-3)
    assert moved > 0


def test_plasticity_on_a_chip_without_on_chip_learning_is_an_error():
    with pytest.raises(UnsupportedOnChipError, match="truenorth"):
        make_train(TrainConfig(agent="eprop_ac", n_steps=32, n_envs=4, chip="truenorth"))
    make_train(
        TrainConfig(
            agent="eprop_ac", n_steps=32, n_envs=4, chip="truenorth", off_chip_learning=True
        )
    )


def test_td_ac_learns_on_a_chip_that_runs_its_rstdp_rule():
    # td_ac's plasticity is the rstdp rule (TD-LTP): Loihi's microcode runs it on chip; the
    # on-chip check used to look up a rule named 'td_ac' and refused the run
    small = {"n_place": 2, "n_critic": 4, "pop": 2}
    make_train(TrainConfig(agent="td_ac", n_steps=32, n_envs=4, substeps=2, chip="loihi",
                           agent_kwargs=small))
    with pytest.raises(UnsupportedOnChipError, match="'rstdp'"):  # and a chip without it
        make_train(TrainConfig(agent="td_ac", n_steps=32, n_envs=4, substeps=2,
                               chip="truenorth", agent_kwargs=small))
