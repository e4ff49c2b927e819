"""`neurorl export RUN_DIR --to nir`: the trained network of one seed, with its learned weights."""

import json

import jax
import nir
import numpy as np
import yaml

from neurorl.experiment import config as C
from neurorl.experiment.cli import main
from neurorl.experiment.export import agent_network, export_run
from neurorl.experiment.runner import build, member_keys, run_experiment
from neurorl.experiment.checkpoint import load_checkpoint


def _tiny(tmp_path, agent="eprop_ac"):
    raw = yaml.safe_load(open("experiments/quickstart.yaml"))
    raw["agent"] = {"name": agent, "substeps": 3, "hyper": {"n_rec": 6, "n_rf": 3}
                    if agent == "eprop_ac" else {"n_rf": 3, "pop": 2}}
    raw["training"].update(steps=320, n_envs=8, n_seeds=2, chunk_steps=160)
    raw["logging"]["wandb"] = "disabled"
    cfg = C.from_dict(raw)
    run = tmp_path / "run"
    run_experiment(cfg, run, progress=False)
    return cfg, run


def test_export_writes_the_trained_weights_of_the_chosen_seed(tmp_path):
    cfg, run = _tiny(tmp_path)
    assert main(["export", str(run), "--to", "nir", "--seed", "1"]) == 0
    path = run / "export" / "seed1.nir"
    g = nir.read(str(path))
    train = build(cfg)
    template = jax.eval_shape(train.init, member_keys(cfg.training.seed, 2))
    rs, _ = load_checkpoint(run, template)
    net, state = agent_network(train, rs, 1)
    _, state0 = agent_network(train, rs, 0)
    # NIR's Linear weight is [n_post, n_pre]: the transpose of neurorl's pre-major matrix
    np.testing.assert_allclose(np.asarray(g.nodes["input_linear"].weight).T,
                               np.asarray(state["weights"]["input"]), rtol=1e-6)
    assert not np.allclose(state["weights"]["input"], state0["weights"]["input"])
    assert type(g.nodes["input"]).__name__ == "Input"  # the relay group is the graph's input
    assert type(g.nodes["readout"]).__name__ == "LI"  # the leaky readout
    meta = json.loads((run / "export" / "seed1.json").read_text())
    assert meta["seed"] == 1 and meta["groups"]["hidden"] == 6


def test_export_errors_name_the_problem(tmp_path, capsys):
    cfg, run = _tiny(tmp_path)
    assert main(["export", str(run), "--seed", "7"]) == 2
    assert "--seed" in capsys.readouterr().err
    assert main(["export", str(run), "--to", "onnx"]) == 2
    assert main(["export", str(tmp_path / "nowhere")]) == 2
    out = export_run(run, out=tmp_path / "a.nir")
    assert out.exists()
