"""``hardware.engine: {trace_scale: auto, tag_scale: auto}``: a float calibration run picks the
learning engine's scales from the ranges the rule's traces and tags reach
(:mod:`neurorl.hardware.calibrate`)."""

from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np
import pytest

from neurorl.errors import ConfigError
from neurorl.experiment.train import TrainConfig, make_train, validate
from neurorl.hardware.calibrate import HEADROOM, calibration_key, rule_ranges
from neurorl.hardware.learning_engine import ENGINES, engine_with

AUTO = {"trace_scale": "auto", "tag_scale": "auto", "calibration_steps": 160}
# R-STDP with conjunctive place cells: the traces that saturate Loihi 2's default scales
RSTDP = dict(agent="rstdp", agent_kwargs={"encoding": "place"}, n_envs=8, substeps=5,
             chip="loihi2")


@pytest.fixture(scope="module")
def auto_train():
    cfg = TrainConfig(**RSTDP, n_steps=160, chip_engine=AUTO)
    return make_train(cfg, calibration_seed=3)


def test_scales_are_the_formula_on_an_independent_float_loop(auto_train):
    """The calibrated scales equal ``largest code / (max x HEADROOM)`` with the max taken by a
    host loop over the float network's R-STDP state, one env step at a time, same key."""
    fl = make_train(TrainConfig(**{**RSTDP, "chip": None}, n_steps=160), block=None)
    rs = fl.init(calibration_key(3))
    max_trace = max_tag = 0.0
    for _ in range(160 // 8):
        rs, _ = fl.run_chunk(rs, 8)
        st = rs.agent_state.traces["input"]
        max_trace = max(max_trace, float(np.max(np.abs(np.asarray(st.x_pre)))),
                        float(np.max(np.abs(np.asarray(st.y_post)))))
        max_tag = max(max_tag, float(np.max(np.abs(np.asarray(st.eligibility)))))
    rec = auto_train.calibration
    np.testing.assert_allclose(rec["max_trace"], max_trace, rtol=1e-5)
    np.testing.assert_allclose(rec["max_tag"], max_tag, rtol=1e-5)
    np.testing.assert_allclose(rec["trace_scale"], 127.0 / (max_trace * HEADROOM), rtol=1e-5)
    np.testing.assert_allclose(rec["tag_scale"], 255.0 / (max_tag * HEADROOM), rtol=1e-5)
    # the float range is wider than the default scale covers (the trap this fixes)
    assert max_trace > 127.0 / ENGINES["loihi2"].trace_scale
    assert dict(auto_train.config.chip_engine) == {"trace_scale": rec["trace_scale"],
                                                   "tag_scale": rec["tag_scale"]}


def _saturation(train, trace_scale: float, tag_scale: float) -> tuple[float, float]:
    """Fractions of env steps on which some on-chip trace / tag code sits at its largest code."""
    rs = train.init(jax.random.key(0))
    n = train.config.n_steps // train.config.n_envs
    hit_trace, hit_tag = [], []
    for _ in range(n):
        rs, _ = train.run_chunk(rs, train.config.n_envs)
        st = rs.agent_state.traces["input"]
        codes = np.maximum(np.asarray(st.x_pre), 0) * trace_scale
        hit_trace.append(np.max(np.rint(codes)) >= 127)
        hit_tag.append(np.max(np.rint(np.abs(np.asarray(st.eligibility)) * tag_scale)) >= 255)
    return float(np.mean(hit_trace)), float(np.mean(hit_tag))


@pytest.mark.slow
def test_auto_scales_saturate_on_far_fewer_steps_than_the_default(auto_train):
    cfg = TrainConfig(**RSTDP, n_steps=400)
    default = _saturation(make_train(cfg), 16.0, 16.0)
    rec = auto_train.calibration
    auto = _saturation(make_train(dataclasses.replace(cfg, chip_engine=AUTO),
                                  calibration_seed=3), rec["trace_scale"], rec["tag_scale"])
    print(f"saturated steps (trace, tag): default 16/16 {default}, auto {auto}")
    assert default[0] > 0.3 and default[1] > 0.3, default
    assert auto[0] <= 0.1 * default[0] and auto[1] <= 0.1 * default[1], (auto, default)


def test_auto_equals_the_same_run_with_the_scales_written_out(auto_train):
    """The run's own keys are untouched by the calibration and nothing else changes: the auto
    run is bit-identical to the run configured with the calibrated numbers; one compile."""
    out = auto_train(jax.random.key(0))
    explicit = make_train(dataclasses.replace(
        auto_train.config, chip_engine={"trace_scale": auto_train.calibration["trace_scale"],
                                        "tag_scale": auto_train.calibration["tag_scale"]}))
    ref = explicit(jax.random.key(0))
    for a, b in zip(jax.tree.leaves(out["metrics"]), jax.tree.leaves(ref["metrics"]),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    w = auto_train.agent.weights(out["runner_state"].agent_state)
    w_ref = explicit.agent.weights(ref["runner_state"].agent_state)
    for a, b in zip(jax.tree.leaves(w), jax.tree.leaves(w_ref), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    auto_train(jax.random.key(1))
    assert auto_train.jitted._cache_size() == 1  # the run is one jitted function


def test_calibration_depends_on_the_seed_and_one_scale_may_stay_fixed():
    cfg = TrainConfig(**RSTDP, n_steps=160,
                      chip_engine={"trace_scale": "auto", "tag_scale": 1.0,
                                   "calibration_steps": 160})
    t = make_train(cfg, calibration_seed=5)
    assert dict(t.config.chip_engine) == {"tag_scale": 1.0,
                                          "trace_scale": t.calibration["trace_scale"]}
    assert "tag_scale" not in t.calibration
    assert t.calibration["seed"] == 5 and t.calibration["calibration_steps"] == 160


@pytest.mark.slow
def test_eprop_traces_and_tags_are_calibrated():
    """e-prop on the engine quantises its pre trace / pseudo-derivative with trace_scale and its
    eligibilities with tag_scale: every connection's state is measured."""
    fl = make_train(TrainConfig(agent="eprop_ac", n_steps=16, n_envs=8, substeps=2),
                    probe=rule_ranges)
    m = fl(jax.random.key(0))["metrics"]
    names = {k for k in m if k.startswith("engine_range/")}
    for conn in ("input", "recurrent", "output"):
        assert f"engine_range/trace/.traces['{conn}']" in names
        assert f"engine_range/tag/.traces['{conn}']" in names
    cfg = TrainConfig(agent="eprop_ac", n_steps=16, n_envs=8, substeps=2, chip="loihi2",
                      chip_engine={"trace_scale": "auto", "tag_scale": "auto",
                                   "calibration_steps": 16})
    rec = make_train(cfg).calibration
    assert rec["max_trace"] > 0 and rec["max_tag"] > 0
    assert rec["trace_scale"] == pytest.approx(127.0 / (rec["max_trace"] * HEADROOM))


@pytest.mark.parametrize("engine, field", [
    ({"trace_bits": "auto"}, "chip_engine.trace_bits"),
    ({"trace_scale": "auto", "calibration_steps": 0}, "chip_engine.calibration_steps"),
    ({"trace_scale": "auto", "calibration_steps": 2.5}, "chip_engine.calibration_steps"),
    ({"trace_scale": "auto", "calibration_steps": True}, "chip_engine.calibration_steps"),
    ({"trace_scale": 6.0, "calibration_steps": 100}, "chip_engine.calibration_steps"),
    ({"trace_scale": "Auto"}, "chip_engine"),
])
def test_bad_auto_configs_name_the_field(engine, field):
    with pytest.raises(ConfigError) as e:
        validate(TrainConfig(agent="rstdp", chip="loihi2", chip_engine=engine))
    assert e.value.field == field


def test_auto_typos_and_chips_without_an_engine_get_the_closest_name():
    with pytest.raises(ConfigError) as e:
        engine_with("loihi2", {"trace_scale": "auto", "calibration_step": 100})
    assert e.value.field == "hardware.engine.calibration_step"
    assert "calibration_steps" in str(e.value.suggestion)
    with pytest.raises(ConfigError) as e:
        engine_with("brainscales", {"trace_scale": "auto"})
    assert e.value.suggestion == "brainscales2"
    with pytest.raises(ConfigError) as e:  # a chip without a learning engine
        validate(TrainConfig(agent="rstdp", chip="truenorth", chip_engine={"tag_scale": "auto"}))
    assert e.value.field == "chip_engine" and "loihi2" in str(e.value.allowed)
    with pytest.raises(ConfigError, match="chip_engine"):
        validate(TrainConfig(agent="rstdp", chip="loihi2", off_chip_learning=True,
                             chip_engine={"trace_scale": "auto"}))
    from neurorl.hardware.backends import make_backend

    with pytest.raises(ConfigError, match="Network.compile.engine.trace_scale"):
        make_backend("loihi2", engine={"trace_scale": "auto"})


def test_yaml_errors_name_the_yaml_path():
    from neurorl.experiment import config as C
    from neurorl.experiment.runner import build

    tree = {"env": {"id": "CartPole-v1"}, "agent": {"name": "rstdp"},
            "training": {"steps": 64, "n_envs": 8, "chunk_steps": 64},
            "hardware": {"chip": "loihi2", "engine": {"tag_scale": "auto",
                                                      "calibration_steps": -5}}}
    with pytest.raises(ConfigError) as e:
        build(C.ExperimentConfig.model_validate(tree))
    assert e.value.field == "hardware.engine.calibration_steps"


@pytest.mark.slow
def test_the_run_records_and_prints_the_scales(tmp_path, capsys):
    from neurorl.experiment import config as C
    from neurorl.experiment.runner import run_experiment

    tree = {"name": "calib", "env": {"id": "CartPole-v1"},
            "agent": {"name": "rstdp", "substeps": 2, "hyper": {"encoding": "place"}},
            "training": {"steps": 64, "n_envs": 8, "n_seeds": 1, "chunk_steps": 64,
                         "episode_window": 5, "seed": 2},
            "hardware": {"chip": "loihi2", "engine": {"trace_scale": "auto",
                                                      "tag_scale": "auto",
                                                      "calibration_steps": 64}},
            "logging": {"wandb": "disabled", "progress": False}}
    cfg = C.ExperimentConfig.model_validate(tree)
    summary = run_experiment(cfg, tmp_path, progress=False, wandb_mode="disabled")
    rec = json.loads((tmp_path / "summary.json").read_text())["engine_calibration"]
    assert rec == summary["engine_calibration"]
    assert rec["seed"] == 2 and rec["calibration_steps"] == 64 and rec["headroom"] == HEADROOM
    assert rec["trace_scale"] == pytest.approx(127.0 / (rec["max_trace"] * HEADROOM))
    assert rec["tag_scale"] == pytest.approx(255.0 / (rec["max_tag"] * HEADROOM))
    out = capsys.readouterr().out
    assert f"trace_scale = {rec['trace_scale']:.4g}" in out


def _auto_tree(steps: int, chunk: int) -> dict:
    return {"name": "calib", "env": {"id": "CartPole-v1"},
            "agent": {"name": "rstdp", "substeps": 2, "hyper": {"encoding": "place"}},
            "training": {"steps": steps, "n_envs": 8, "n_seeds": 1, "chunk_steps": chunk,
                         "episode_window": 5, "seed": 2},
            "hardware": {"chip": "loihi2", "engine": {"trace_scale": "auto",
                                                      "tag_scale": "auto",
                                                      "calibration_steps": 64}},
            "logging": {"wandb": "disabled", "progress": False}}


@pytest.mark.slow
def test_a_resumed_run_keeps_its_scales_without_a_second_calibration(tmp_path, capsys):
    # the checkpoint records the calibration; resume reuses its scales (no float run, so no
    # drift of the last bits across platforms) and ends bit for bit as the uninterrupted run
    from neurorl.experiment import config as C
    from neurorl.experiment.checkpoint import checkpoint_meta
    from neurorl.experiment.logging import read_jsonl
    from neurorl.experiment.runner import run_experiment

    cfg = C.ExperimentConfig.model_validate(_auto_tree(128, 64))
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    run_experiment(cfg, whole, progress=False, wandb_mode="disabled")
    assert run_experiment(cfg, cut, progress=False, wandb_mode="disabled",
                          stop_after_chunks=1) == {"stopped_at": 64}
    rec = checkpoint_meta(cut)["engine_calibration"]
    assert rec == json.loads((whole / "summary.json").read_text())["engine_calibration"]
    capsys.readouterr()
    run_experiment(cfg, cut, progress=False, wandb_mode="disabled", resume=True)
    assert "engine calibration" not in capsys.readouterr().out
    assert json.loads((cut / "summary.json").read_text())["engine_calibration"] == rec
    assert read_jsonl(cut / "episodes.jsonl") == read_jsonl(whole / "episodes.jsonl")


def test_validate_and_state_templates_run_no_calibration(tmp_path, capsys):
    import yaml

    from neurorl.experiment import config as C
    from neurorl.experiment.cli import main
    from neurorl.experiment.runner import build

    p = tmp_path / "auto.yaml"
    p.write_text(yaml.safe_dump(_auto_tree(64, 64)))
    capsys.readouterr()
    assert main(["validate", str(p)]) == 0
    assert "engine calibration" not in capsys.readouterr().out
    cfg = C.ExperimentConfig.model_validate(_auto_tree(64, 64))
    train = build(cfg, calibration=False)
    assert train.calibration == {}
    default = ENGINES["loihi2"]
    assert train.config.chip_engine == {"trace_scale": default.trace_scale,
                                        "tag_scale": default.tag_scale}
    assert "engine calibration" not in capsys.readouterr().out
    with pytest.raises(ConfigError, match="engine_calibration.tag_scale"):
        build(cfg, calibration={"trace_scale": 5.0})  # a record lacking one auto scale
