"""task: classification -- e-prop and BPTT on an N-HAL network learn a synthetic event task."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest

from neurorl.errors import ConfigError
from neurorl.experiment import classification as K
from neurorl.experiment.cli import main
from neurorl.experiment.config import from_dict, load_config

EVENTS = Path(__file__).resolve().parents[2] / "experiments" / "events"

SMALL = {
    "task": "classification", "name": "small",
    "dataset": {"name": "synthetic", "n_time_bins": 40,
                "synthetic": {"n_classes": 4, "n_inputs": 32, "n_train": 120, "n_test": 80}},
    "model": {"n_hidden": 32},
    "logging": {"progress": False},
}


def _cfg(**over):
    tree = json.loads(json.dumps(SMALL))
    for k, v in over.items():
        tree.setdefault(k, {}).update(v)
    return K.validate(tree)


def _trained(cfg):
    train, test = K.load_data(cfg)
    model = K.build_model(cfg, train.n_inputs, train.n_classes, train.n_time_bins)
    tr = K.Trainer(model, cfg, jax.random.key(cfg.training.seed))
    w0 = {k: np.asarray(v) for k, v in tr.weights().items()}
    before = tr.evaluate(test.x, test.y)["accuracy"]
    for ep in range(cfg.learning.epochs):
        tr.train_epoch(train.x, train.y, ep * len(train), jax.random.key(ep), order_seed=ep)
    return tr, test, w0, before


@pytest.mark.slow
@pytest.mark.parametrize("rule,chip,lr", [("eprop", "float", 2e-3), ("bptt", "float", 5e-3),
                                          ("eprop", "loihi2", 2e-3),
                                          ("bptt", "loihi2", 5e-3)])
def test_rules_learn_the_synthetic_task(rule, chip, lr):
    # the chip: Loihi 2's 8-bit weights (step 1/64 of the grid here), the coarsest grid with
    # on-chip e-prop among the profiles
    cfg = _cfg(learning={"rule": rule, "epochs": 3, "lr": lr}, hardware={"chip": chip})
    tr, test, w0, before = _trained(cfg)
    after = tr.evaluate(test.x, test.y, details=True)
    assert before < 0.5  # 4 classes: untrained readout is near chance
    assert after["accuracy"] >= 0.9
    w = tr.weights()
    # the hidden layer learned (for e-prop: through the N-HAL's eprop LearningRule), and so did
    # the readout (on the chip: by stochastic rounding of its updates)
    for name in (K.C_IN, K.C_OUT):
        assert np.mean(np.asarray(w[name]) != w0[name]) > 0.5, name
    if chip != "float":  # every stored weight is a multiple of the chip's grid step
        for name in (K.C_IN, K.C_OUT):
            step = tr.model.cnet.hardware.grid(name).step
            assert step > 1e-3  # a coarse grid: 8-bit
            stored = np.asarray(w[name] if rule == "eprop" else K._project(tr.model, w[name]))
            q = stored / step
            assert np.allclose(q, np.round(q), atol=1e-3)
    assert 0 < after["activation_sparsity"] < 1
    assert after["synops_per_inference"] < after["dense_synops_per_inference"]
    assert set(after["energy_per_inference_j"]) >= {"loihi", "spinnaker"}


def test_eprop_signal_reaches_the_rule_per_neuron():
    """A learning signal on one hidden neuron changes only that neuron's input weights."""
    import jax.numpy as jnp

    cfg = _cfg(learning={"rule": "eprop", "lr": 1e-2})
    train, _ = K.load_data(cfg)
    model = K.build_model(cfg, train.n_inputs, train.n_classes, train.n_time_bins)
    tr = K.Trainer(model, cfg, jax.random.key(0))
    net = tr._fresh(tr.state["net"], tr.state["net"]["weights"])
    L = jnp.zeros((model.T, model.n_hidden)).at[:, 3].set(0.5)
    x = jnp.asarray(train.x[0], jnp.float32)
    new, _ = model.cnet.run(net, x, modulators={K.R_IN: L})
    dw = np.abs(np.asarray(new["weights"][K.C_IN]) - np.asarray(net["weights"][K.C_IN]))
    assert dw[:, 3].max() > 0 and np.delete(dw, 3, axis=1).max() == 0


def test_event_shifts():
    import jax.numpy as jnp

    from neurorl.data import apply_shifts, event_shift

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((30, 20)) < 0.2, jnp.float32)
    key = jax.random.key(1)
    assert np.array_equal(event_shift("event_dropout", 0.0, 20)(x, 0, key), x)
    assert float(event_shift("event_dropout", 1.0, 20)(x, 0, key).sum()) == 0
    half = float(event_shift("event_dropout", 0.5, 20)(x, 0, key).sum()) / float(x.sum())
    assert 0.35 < half < 0.65
    ramp = event_shift("event_dropout", {"kind": "gradual", "start": 0.0, "end": 1.0, "t0": 0,
                                         "t1": 100}, 20)
    assert np.array_equal(ramp(x, 0, key), x) and float(ramp(x, 100, key).sum()) == 0
    flip = event_shift("polarity_flip", 1.0, 20)(x, 0, key)
    assert np.array_equal(flip, jnp.concatenate([x[:, 10:], x[:, :10]], 1))
    hp = event_shift("hot_pixels", 1.0, 20, fraction=0.1, seed=3)
    hot = np.asarray(hp.hot) > 0
    out = np.asarray(hp(jnp.zeros_like(x), 0, key))
    assert hot.sum() == 2 and out[:, hot].min() == 1 and out[:, ~hot].max() == 0
    jit = event_shift("time_jitter", 1.0, 20, max_bins=3)(x, 0, key)
    assert float(jit.sum()) == float(x.sum())  # events move, none lost
    assert np.array_equal(jit.sum(0), x.sum(0)) and not np.array_equal(jit, x)
    two = apply_shifts((event_shift("event_dropout", 1.0, 20),
                        event_shift("hot_pixels", 1.0, 20, fraction=0.1, seed=3)), x, 0, key)
    assert np.array_equal(np.asarray(two), out)
    with pytest.raises(ConfigError, match="time_jitter"):
        event_shift("time_jiter", 0.1, 20)
    with pytest.raises(ConfigError, match="even"):
        event_shift("polarity_flip", 0.1, 21)


def test_shipped_configs_validate():
    files = sorted(EVENTS.glob("*.yaml"))
    assert len(files) >= 5
    for f in files:
        cfg = load_config(f)
        assert isinstance(cfg, K.ClassificationConfig)
    cfg = load_config(EVENTS / "shd_eprop.yaml", ["learning.rule=bptt"])
    assert cfg.learning.rule == "bptt" and cfg.dataset.spatial_factor == 0.1


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"learning\.rule.*eprop"):
        from_dict({**SMALL, "learning": {"rule": "eprp"}})
    with pytest.raises(ConfigError, match="n_hidden"):
        from_dict({**SMALL, "model": {"n_hiden": 3}})
    with pytest.raises(ConfigError, match="hardware.chip"):
        from_dict({**SMALL, "hardware": {"chip": "lohi"}})
    with pytest.raises(ConfigError, match="domains"):
        from_dict({**SMALL, "continual": {"mode": "domain_incremental", "n_tasks": 2}})
    with pytest.raises(ConfigError, match=r"shifts\[0\]\.kind"):
        from_dict({**SMALL, "shifts": [{"kind": "dropout"}]})
    with pytest.raises(ConfigError, match=r"shifts\[0\]\.schedule.kind.*gradual"):
        from_dict({**SMALL, "shifts": [{"kind": "event_dropout",
                                        "schedule": {"kind": "gradul", "start": 0, "end": 1}}]})


@pytest.mark.slow
def test_neurorl_run_classification_and_class_incremental(tmp_path, capsys):
    import yaml

    tree = {**SMALL, "learning": {"rule": "eprop", "epochs": 1},
            "continual": {"mode": "class_incremental", "n_tasks": 2},
            "shifts": [{"kind": "event_dropout", "schedule": 0.1}]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tree))
    assert main(["validate", str(path)]) == 0
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "ACC" in out and "BWT" in out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    R = np.array(summary["continual"]["R"])
    assert R.shape == (2, 2)
    # after task 0 only classes 0-1 were seen: classes 2-3 are never predicted correctly
    assert R[0, 0] > 0.5 and R[0, 1] == 0.0
    assert summary["continual"]["gem_backward_transfer"] == pytest.approx(R[1, 0] - R[0, 0])
    lines = (tmp_path / "run" / "chunks.jsonl").read_text().splitlines()
    assert [json.loads(ln)["task"] for ln in lines] == [0, 1]
    assert (tmp_path / "run" / "config.yaml").exists()


@pytest.mark.slow
def test_readme_shd_command_runs_on_generated_shd_files(tmp_path, monkeypatch):
    """The README's "SHD in one command" line runs as written (budgets shortened with --set) on
    SHD files generated in the real HDF5 layout where the config looks (~/neurorl-data)."""
    import re
    import shlex

    from neurorl.data import formats

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Event data"):]
    lines = [ln.split("  #")[0].strip() for ln in section.splitlines()
             if re.match(r"neurorl (run|data download) \S*shd", ln.strip())]
    assert lines[0] == "neurorl data download shd --root ~/neurorl-data"
    run = lines[1]
    assert run == "neurorl run experiments/events/shd_eprop.yaml"
    monkeypatch.setenv("HOME", str(tmp_path))  # ~/neurorl-data of the config
    for split in ("train", "test"):
        formats.write_synthetic("shd", tmp_path / "neurorl-data", split, n_per_class=6,
                                n_classes=3, rate_hz=20.0)
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    short = ["--set", "learning.epochs=1", "--set", "model.n_hidden=16",
             "--set", "dataset.n_time_bins=20", "--out", str(tmp_path / "run"), "--no-progress"]
    assert main(shlex.split(run)[1:] + short) == 0
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["n_train"] == 18 and s["n_inputs"] == 70 and s["n_classes"] == 20
    assert s["rule"] == "eprop" and 0.0 <= s["accuracy"] <= 1.0
    assert 0.0 <= s["clipped_fraction_train"] < 1.0 and 0.0 < s["saturation_train"] <= 0.8


def test_dataset_binary_reaches_the_loader(tmp_path):
    """``dataset.binary: false`` gives counts (values above 1 where bins hold several events)."""
    from neurorl.data import formats
    from neurorl.experiment import classification as K

    for split in ("train", "test"):
        formats.write_synthetic("shd", tmp_path, split, n_per_class=2, n_classes=2,
                                rate_hz=400.0)
    arrays = {}
    for binary in (True, False):
        cfg = K.validate({"task": "classification", "dataset": {
            "name": "shd", "root": str(tmp_path), "n_time_bins": 5, "binary": binary}})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the binary load clips on purpose
            train, _ = K.load_data(cfg)
        arrays[binary] = train
    assert arrays[True].x.max() == 1 and arrays[False].x.max() > 1
    assert arrays[False].clipped_fraction == 0.0 < arrays[True].clipped_fraction


def test_data_cli(tmp_path, capsys):
    assert main(["data", "list"]) == 0
    assert "shd" in capsys.readouterr().out
    assert main(["data", "download", "shdd", "--root", str(tmp_path)]) == 2
    assert "Did you mean 'shd'" in capsys.readouterr().err


def test_eprop_through_the_nhal_equals_the_reference_eprop():
    """The two-pass e-prop of this module, run by the N-HAL's eprop LearningRule, gives the same
    weight change as neurorl.plasticity.eprop.supervised_grads on the same layer (itself tested
    equal to BPTT for a non-recurrent layer), once the
    N-HAL's one-step delays are accounted for: the hidden layer sees x_{t-1}, and the readout
    at t + 1 is the reference's y_t."""
    import jax.numpy as jnp
    import optax

    from neurorl.plasticity.eprop import supervised_grads

    cfg = _cfg(learning={"rule": "eprop"}, model={"n_hidden": 24, "w_scale": 3.0})
    train, _ = K.load_data(cfg)
    T = train.n_time_bins
    # MultiSteps(sgd(1), T): the applied update is minus the mean of the rule's per-step grads
    model = K.build_model(cfg, train.n_inputs, train.n_classes, T,
                          rule_optimizer=optax.MultiSteps(optax.sgd(1.0), every_k_schedule=T))
    tr = K.Trainer(model, cfg, jax.random.key(3))
    x, y = jnp.asarray(train.x[5], jnp.float32), int(train.y[5])
    (net, _, _, _), _ = tr._eprop_sample((tr.state["net"], tr.state["opt_out"], 0, ()),
                                         (x, y, jax.random.key(0)))
    w0 = tr.state["net"]["weights"]
    dw_in = np.asarray(net["weights"][K.C_IN] - w0[K.C_IN])

    from neurorl.core.network import Connection, LearningRule, Network, NeuronGroup

    # the reference: the same hidden layer as an N-HAL network without the relay's and the
    # readout's one-step delays (Input -> LIF -> LI), e-prop summed over the sequence by
    # supervised_grads (tested equal to jax.grad of BPTT, tests/plasticity/test_eprop.py)
    n_in = x.shape[1]
    hid = {"tau_mem": cfg.model.tau_mem, "v_th": cfg.model.v_th, "surrogate": "triangle",
           "surrogate_hyper": (("gamma", float(cfg.learning.gamma_pd)),)}
    g_x = NeuronGroup(n_in, "Input", name="x")
    g_h = NeuronGroup(24, "LIF", hid, name="h")
    g_y = NeuronGroup(model.n_out, "LI", {"tau_mem": cfg.readout.tau_out}, name="y")
    c_in = Connection(g_x, g_h, weight=np.asarray(w0[K.C_IN]), delay=0, name="in")
    c_out = Connection(g_h, g_y, weight=np.asarray(w0[K.C_OUT]), delay=0, name="out")
    ref = Network(g_x, g_h, g_y, c_in, c_out,
                  LearningRule(c_in, "eprop", {"tau_out": cfg.readout.tau_out}, name="in"))
    ref = ref.compile()
    xs = jnp.concatenate([jnp.zeros((1, x.shape[1])), x[:-2]])  # x_{t-1}, T - 1 steps
    targets = jnp.broadcast_to(jax.nn.one_hot(y, model.n_out), (T - 1, model.n_out))
    g, _, _ = supervised_grads(ref, ref.init(jax.random.key(0)), {"x": xs}, targets,
                               readout="y", loss="cross_entropy")
    expected = -np.asarray(g["in"]) / T / T  # loss averaged over T steps, MultiSteps mean over T
    assert np.abs(expected).max() > 1e-6
    np.testing.assert_allclose(dw_in, expected, rtol=2e-3, atol=1e-7)


def test_continual_splits():
    cfg = _cfg(continual={"mode": "class_incremental", "n_tasks": 2})
    train, test = K.load_data(cfg)
    tasks = K._tasks(cfg, train, test)
    assert [set(np.unique(train.y[t["train_idx"]])) for t in tasks] == [{0, 1}, {2, 3}]
    assert set(np.unique(test.y[tasks[1]["test_idx"]])) == {2, 3}
    dom = load_config(EVENTS / "synthetic_domain_incremental.yaml")
    tasks = K._tasks(dom, train, test)
    assert len(tasks) == 3 and all(len(t["train_idx"]) == len(train) for t in tasks)
    assert [[s.kind for s in t["shifts"]] for t in tasks] == [[], ["event_dropout"],
                                                              ["time_jitter"]]


@pytest.mark.parametrize("rule", ["eprop", "bptt"])
def test_recurrent_training_never_grows_autapses(rule):
    """The recurrent layer has no autapses (Bellec et al. 2020): its structural mask has a zero
    diagonal and neither rule's step puts weight there (BPTT differentiates the simulator, which
    uses the dense weights unmasked, so its gradient must be masked like the rules' updates)."""
    cfg = _cfg(model={"n_hidden": 16, "recurrent": True},
               dataset={"synthetic": {"n_classes": 4, "n_inputs": 32, "n_train": 16,
                                      "n_test": 8}},
               learning={"rule": rule, "epochs": 1, "lr": 5e-3})
    tr, _, w0, _ = _trained(cfg)
    w = np.asarray(tr.weights()[K.C_REC])
    mask = np.asarray(tr.model.cnet.structure[K.C_REC]["mask"])
    assert np.all(np.diag(mask) == 0) and mask.sum() == 16 * 15
    assert np.mean(w != w0[K.C_REC]) > 0.5  # W_rec learned off the diagonal...
    np.testing.assert_array_equal(np.diag(w), 0.0)  # ...and nothing on it


def test_logging_wandb_is_accepted_as_in_experiment_configs():
    """Was `logging.wandb: got 'offline'; allowed: one of ['dir', 'progress']`."""
    for mode in ("offline", "online", "disabled"):
        cfg = from_dict({**SMALL, "logging": {"progress": False, "wandb": mode,
                                              "project": "p", "group": "g"}})
        assert cfg.logging.wandb == mode and cfg.logging.project == "p"
    assert from_dict(SMALL).logging.wandb == "offline"  # offline by default, as control runs
    with pytest.raises(ConfigError) as e:
        from_dict({**SMALL, "logging": {"wandb": "ofline"}})
    assert e.value.field == "logging.wandb" and e.value.suggestion == "offline"


def _tiny_run(tmp_path, mode):
    tree = {**SMALL, "dataset": {**SMALL["dataset"], "n_time_bins": 10,
                                 "synthetic": {"n_classes": 2, "n_inputs": 8, "n_train": 8,
                                               "n_test": 4}},
            "model": {"n_hidden": 4}, "learning": {"rule": "bptt", "epochs": 2},
            "logging": {"progress": False, "wandb": mode}}
    run = tmp_path / mode
    return run, K.run_classification(K.validate(tree), run, progress=False)


def test_a_classification_run_logs_to_an_offline_wandb_run(tmp_path):
    from .test_wandb_logging import offline_runs

    run, summary = _tiny_run(tmp_path, "offline")
    (only,) = offline_runs(run).values()
    config, wsummary, history, meta = only
    lines = [json.loads(ln) for ln in (run / "chunks.jsonl").read_text().splitlines()]
    assert "env_step" not in lines[0] and "member" not in lines[0]  # the file is unchanged
    assert [h["env_step"] for h in history] == [ln["samples"] for ln in lines] == [8, 16]
    for h, ln in zip(history, lines, strict=True):
        assert h["chunk/test_accuracy"] == pytest.approx(ln["test_accuracy"])
    assert wsummary["accuracy"] == pytest.approx(summary["accuracy"])
    assert meta.display_name == "small" and config["learning"]["rule"] == "bptt"
    assert not (run / "episodes.jsonl").exists()


def test_a_disabled_classification_run_writes_no_wandb_run(tmp_path):
    run, _ = _tiny_run(tmp_path, "disabled")
    assert not (run / "wandb").exists() and (run / "summary.json").exists()
