"""On-chip learning engines (issue 16): widths from Lava's fixed-point learning model, lava's
epoch update re-done in integers, R-STDP on the sum-of-products microcode, refusal of chips
without learning, and the compiled network learning through the engine."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurorl.errors import ConfigError, UnsupportedOnChipError
from neurorl.hardware import learning_engine as le
from neurorl.hardware.backends import EngineState, make_backend


def test_widths_are_lavas():
    # lava src/lava/magma/core/learning/constants.py: W_TRACE=7, W_WEIGHTS_U=8 (9 signed),
    # W_TAG_1_U=8, W_CONST=8, W_S_MANT=4, W_ACCUMULATOR_U=15; epoch field 6 bits
    assert (le.W_TRACE, le.W_WEIGHTS_U, le.W_TAG_U, le.W_CONST, le.W_S_MANT,
            le.W_ACCUMULATOR_U, le.W_EPOCH) == (7, 8, 8, 8, 4, 15, 6)
    for chip in ("loihi", "loihi2"):
        e = le.ENGINES[chip]
        assert (e.kind, e.trace_bits, e.tag_bits, e.accumulator_bits, e.max_epoch) == (
            "sop", 7, 9, 15, 63)


@pytest.mark.parametrize("chip", ["truenorth", "dynapse", "xylo"])
@pytest.mark.parametrize("rule", ["rstdp", "eprop", "stdp"])
def test_chips_without_learning_refuse_naming_chip_and_rule(chip, rule):
    with pytest.raises(UnsupportedOnChipError) as e:
        le.engine_for(chip, rule)
    assert repr(chip) in str(e.value) and repr(rule) in str(e.value)
    b = make_backend(chip)
    with pytest.raises(UnsupportedOnChipError) as e:
        b.check_rules([rule])
    assert repr(chip) in str(e.value) and repr(rule) in str(e.value)
    make_backend(chip, off_chip_learning=True).check_rules([rule])  # off chip is allowed


def test_trace_quantisation_saturates_and_is_unbiased():
    e = le.ENGINES["loihi2"]
    x = jnp.array([0.0, 1.0, 7.9375, 100.0])  # 7.9375 = 127 / 16: the largest code
    q = le.quantize_trace(x, e, None)
    np.testing.assert_allclose(q, [0.0, 1.0, 127 / 16, 127 / 16])
    # stochastic rounding: mean of many draws equals the value (3.03 codes -> 3 or 4)
    v = jnp.full((20000,), 3.03 / 16)
    m = float(jnp.mean(le.quantize_trace(v, e, jax.random.PRNGKey(0))))
    assert abs(m - 3.03 / 16) < 0.01 / 16
    tag = le.quantize_tag(jnp.array([-100.0, 100.0]), e, None)  # +-255 / 16 max
    np.testing.assert_allclose(tag, [-255 / 16, 255 / 16])


def test_sum_of_products_matches_hand_computation_and_saturates():
    # dt = 2^0 * x1 * y0 - 2^0 * y1 * x0 (pairwise STDP into the tag)
    v = dict(x1=np.array([10, 0]), y0=np.array([1, 1]), y1=np.array([3, 3]),
             x0=np.array([0, 1]))
    dz = le.sum_of_products([(1, 0, [("x1", 0), ("y0", 0)]), (-1, 0, [("y1", 0), ("x0", 0)])], v)
    np.testing.assert_array_equal(dz, [10, -3])
    big = le.sum_of_products([(15, 10, [("x1", 0)])], dict(x1=np.array([127])))
    assert big[0] == 2**15 - 1  # accumulator 15 bits + sign
    with pytest.raises(ConfigError):
        le.sum_of_products([(1, 0, [("x1", 300)])], dict(x1=np.array([1])))


def test_sop_apply_is_lavas_epoch_update():
    # w=10 (9s), dz = 64 accumulator units = half an LSB -> 10 or 11 with probability 1/2
    rand = np.linspace(0, 1, 1000, endpoint=False)
    out = le.sop_apply(np.full(1000, 10), np.full(1000, 64), rand)
    assert set(np.unique(out)) == {10, 11} and abs(out.mean() - 10.5) < 1e-9
    # saturates at the 9-bit signed range
    assert le.sop_apply(np.array([250]), np.array([2**15 - 1]), np.array([0.0]))[0] == 255
    assert le.sop_apply(np.array([-250]), np.array([-(2**15 - 1)]), np.array([0.0]))[0] == -255


def test_commit_weights_equals_integer_reference():
    """The float-unit commit used in training equals lava's integer update on the codes."""
    e = le.ENGINES["loihi"]
    step = 2.0**-6
    rng = np.random.default_rng(0)
    codes = rng.integers(-255, 256, 500)
    dz = rng.integers(-3000, 3000, 500)  # accumulator units (2^7 per LSB)
    w_old = jnp.asarray(codes * step, jnp.float32)
    w_new = w_old + jnp.asarray(dz / 128.0 * step, jnp.float32)
    got = le.commit_weights(w_old, w_new, step, e, -255 * step, 255 * step, None)
    # deterministic (key None) = round half to even; reference with rand = 0.5 (round half up)
    # agrees everywhere except exact halves
    ref = le.sop_apply(codes, dz, np.full(500, 0.5)) * step
    half = (np.abs(dz) % 128) == 64
    np.testing.assert_allclose(np.asarray(got)[~half], ref[~half], atol=1e-7)
    # stochastic: unbiased
    w0 = jnp.full((40000,), 10 * step)
    w1 = w0 + 0.3 * step
    got = le.commit_weights(w0, w1, step, e, -255 * step, 255 * step, jax.random.PRNGKey(1))
    assert abs(float(jnp.mean(got)) / step - 10.3) < 0.02


def test_rstdp_on_the_sop_engine_matches_float_in_expectation():
    """R-STDP expressed on the engine: tag dt = A+ x1 y0 - A- y1 x0 at 9 bits, dw = r t at the
    weight grid; its expected weight change equals the float rule's."""
    from neurorl.plasticity import rstdp

    e = le.ENGINES["loihi2"]
    rule = rstdp(a_plus=1.0, a_minus=1.0, tau_c=20.0, lr=0.01, modulator_kind="raw")
    q = le.on_engine(rule, e, salt=3)
    assert q.accumulate_block is None
    key = jax.random.PRNGKey(0)
    w = jnp.zeros((8, 4))
    s_f, s_q = rule.init(w), q.init(w)
    for _ in range(30):
        k1, k2, key = jax.random.split(key, 3)
        pre = (jax.random.uniform(k1, (8,)) < 0.15).astype(jnp.float32)
        post = (jax.random.uniform(k2, (4,)) < 0.15).astype(jnp.float32)
        s_f, s_q = rule.accumulate(s_f, pre, post), q.accumulate(s_q, pre, post)
        # every trace is a multiple of 1/16 in [0, 127/16], every tag a multiple of 1/16
        for x in (s_q.x_pre, s_q.y_post):
            np.testing.assert_allclose(x * 16, jnp.round(x * 16), atol=1e-4)
            assert float(x.max()) <= 127 / 16 + 1e-6
        np.testing.assert_allclose(s_q.eligibility * 16, jnp.round(s_q.eligibility * 16),
                                   atol=1e-3)
    # in range (|c| < 15.9) the quantised eligibility tracks the float one within the
    # stochastic rounding noise (a 1/16 step, 30 roundings of decaying weight)
    assert float(jnp.max(jnp.abs(s_f.eligibility))) < 15.9
    err = np.abs(np.asarray(s_q.eligibility - s_f.eligibility))
    assert err.mean() < 0.25 and np.corrcoef(np.ravel(s_q.eligibility),
                                             np.ravel(s_f.eligibility))[0, 1] > 0.95
    # with a finer tag (64 codes per unit: range +-4) a strong causal drive saturates the
    # 9-bit tag where the float eligibility keeps growing: the width costs range
    ltp = rstdp(a_plus=1.0, a_minus=0.0, tau_c=20.0, lr=0.01, modulator_kind="raw")
    q64 = le.on_engine(ltp, e.replace(tag_scale=64.0), salt=3)
    s64, sf = q64.init(w), ltp.init(w)
    ones_pre, ones_post = jnp.ones((8,)), jnp.ones((4,))
    for _ in range(10):
        s64 = q64.accumulate(s64, ones_pre, ones_post)
        sf = ltp.accumulate(sf, ones_pre, ones_post)
    assert float(jnp.min(sf.eligibility)) > 4.0
    np.testing.assert_allclose(s64.eligibility, 255 / 64)


def test_compiled_network_learns_through_the_engine():
    """compile(backend='loihi2') on chip: traces on the 7-bit grid, weights on the 8-bit grid
    after apply_updates, learning operations counted; off chip: float shadow weights."""
    from neurorl.core.network import Connection, LearningRule, Network, NeuronGroup
    from neurorl.plasticity import rstdp

    def build():
        a = NeuronGroup(6, "Input", name="a")
        b = NeuronGroup(3, "LIF", name="b")
        c = Connection(a, b, name="ab", weight=0.4, delay=0)
        r = LearningRule(c, rstdp(modulator_kind="raw", lr=0.05), optimizer=optax.sgd(1.0),
                         name="r")
        r.rule_name = "rstdp"
        return Network(a, b, c, r)

    cnet = build().compile(backend="loihi2")
    assert cnet.hardware.engine.kind == "sop"
    state = cnet.init(jax.random.PRNGKey(0))
    inp = (jax.random.uniform(jax.random.PRNGKey(1), (20, 6)) < 0.5).astype(jnp.float32) * 2.0
    w0 = state["weights"]["ab"]
    for t in range(20):
        state, _ = cnet.step(state, {"a": inp[t]}, modulators={"r": 1.0})
    tr = cnet.traces(state)["r"]
    np.testing.assert_allclose(tr.x_pre * 16, jnp.round(tr.x_pre * 16), atol=1e-4)
    grid = cnet.hardware.grid("ab")
    w = state["weights"]["ab"]
    np.testing.assert_allclose(w / grid.step, jnp.round(w / grid.step), atol=1e-4)
    assert not np.allclose(w, w0)
    es = [x for x in jax.tree_util.tree_leaves(
        state["rules"]["r"]["opt"], is_leaf=lambda x: isinstance(x, EngineState))
        if isinstance(x, EngineState)]
    assert es and float(es[0].ops) == 20 * 18  # 6 x 3 synapses per epoch


def test_learning_energy_counts_one_update_per_synapse_per_epoch():
    """Energy of learning: Loihi updates each synapse once per epoch (120 pJ per synaptic
    update, Davies 2018 [3P]), so with an epoch of 5 steps the count is n_edges / 5 per step."""
    from neurorl.core.network import Connection, LearningRule, Network, NeuronGroup
    from neurorl.hardware.energy import energy
    from neurorl.plasticity import rstdp

    a = NeuronGroup(6, "Input", name="a")
    b = NeuronGroup(3, "LIF", name="b")
    c = Connection(a, b, name="ab", weight=0.4, delay=0)
    r = LearningRule(c, rstdp(modulator_kind="raw"), name="r")
    r.rule_name = "rstdp"
    cnet = Network(a, b, c, r).compile(backend="loihi2")
    cnet.hardware.learning_epoch = 5
    counts = cnet.hardware.counts({"a": jnp.zeros((10, 6)), "b": jnp.zeros((10, 3))})
    act = counts.activity()
    assert float(jnp.sum(act.learning_updates)) == pytest.approx(10 * 18 / 5)
    e = energy(act, "loihi2")
    assert float(jnp.sum(e.learning)) == pytest.approx(10 * 18 / 5 * 120e-12)


def test_engine_override_is_temporary():
    with le.engine_override("loihi2", trace_bits=4) as e:
        assert make_backend("loihi2").engine.trace_bits == 4 and e.trace_bits == 4
    assert make_backend("loihi2").engine.trace_bits == 7


# ------------------------------------------------------------------ hardware.engine (configs)


def test_engine_overrides_name_the_field():
    from neurorl.hardware.learning_engine import ENGINES, engine_with

    eng = engine_with("loihi2", {"trace_scale": 6.0, "tag_scale": 1.0})
    assert (eng.trace_scale, eng.tag_scale) == (6.0, 1.0)
    assert eng.tag_bits == ENGINES["loihi2"].tag_bits  # the widths stay the chip's
    assert ENGINES["loihi2"].tag_scale == 16.0  # the preset is untouched
    with pytest.raises(ConfigError, match=r"hardware.engine.tag_scal.*tag_scale"):
        engine_with("loihi2", {"tag_scal": 1.0})
    with pytest.raises(ConfigError, match="hardware.engine"):
        engine_with("loihi2", {"tag_scale": -1.0})
    with pytest.raises(ConfigError, match="hardware.engine.*loihi2"):
        engine_with("truenorth", {"tag_scale": 1.0})


def test_chip_engine_only_with_on_chip_learning():
    from neurorl.experiment.train import TrainConfig, validate

    validate(TrainConfig(agent="rstdp", chip="loihi2", chip_engine={"tag_scale": 1.0}))
    for chip, off in ((None, False), ("loihi2", True)):
        with pytest.raises(ConfigError, match="chip_engine"):
            validate(TrainConfig(agent="rstdp", chip=chip, off_chip_learning=off,
                                 chip_engine={"tag_scale": 1.0}))
    with pytest.raises(ConfigError, match="chip_engine.trace_scal.*trace_scale"):
        validate(TrainConfig(agent="rstdp", chip="loihi2", chip_engine={"trace_scal": 6.0}))


def test_experiment_config_reaches_the_learning_engine():
    """``hardware.engine`` in a YAML config trains exactly like the chip's engine changed by
    hand (``engine_override``), and differently from the chip's own engine."""
    import jax

    from neurorl.experiment import config as C
    from neurorl.experiment.runner import train_config
    from neurorl.experiment.train import make_train
    from neurorl.hardware.learning_engine import engine_override

    tree = {"env": {"id": "CartPole-v1"}, "agent": {"name": "rstdp"},
            "training": {"steps": 256, "n_envs": 4, "chunk_steps": 256},
            "hardware": {"chip": "loihi2", "engine": {"trace_scale": 6.0, "tag_scale": 1.0}}}
    cfg = train_config(C.ExperimentConfig.model_validate(tree))
    assert dict(cfg.chip_engine) == {"trace_scale": 6.0, "tag_scale": 1.0}

    def weights(train):
        out = train(jax.random.key(0))
        return np.concatenate([np.ravel(np.asarray(x))
                               for x in jax.tree.leaves(out["runner_state"])
                               if jnp.issubdtype(x.dtype, jnp.floating)])

    w_cfg = weights(make_train(cfg))
    with engine_override("loihi2", trace_scale=6.0, tag_scale=1.0):
        plain = dataclasses.replace(cfg, chip_engine=None)
        t_hand = make_train(plain)
    w_hand = weights(t_hand)
    w_default = weights(make_train(dataclasses.replace(cfg, chip_engine=None)))
    np.testing.assert_array_equal(w_cfg, w_hand)
    assert not np.array_equal(w_cfg, w_default)
