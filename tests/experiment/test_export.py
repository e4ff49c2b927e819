"""`neurorl export RUN_DIR --to nir`: the trained network of one seed, with its learned weights."""

import json
import shutil

import jax
import nir
import numpy as np
import pytest
import yaml

from neurorl.experiment import config as C
from neurorl.experiment.checkpoint import load_checkpoint
from neurorl.experiment.cli import main
from neurorl.experiment.export import agent_network, export_run
from neurorl.experiment.runner import build, member_keys, run_experiment


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny trained run (eprop_ac, 2 seeds), compiled and run once per module and worker."""
    raw = yaml.safe_load(open("experiments/quickstart.yaml"))
    raw["agent"] = {"name": "eprop_ac", "substeps": 3, "hyper": {"n_rec": 6, "n_rf": 3}}
    raw["training"].update(steps=320, n_envs=8, n_seeds=2, chunk_steps=160)
    raw["logging"]["wandb"] = "disabled"
    cfg = C.from_dict(raw)
    run = tmp_path_factory.mktemp("export") / "run"
    run_experiment(cfg, run, progress=False)
    return cfg, run


@pytest.fixture
def tiny(tiny_run, tmp_path):
    """A fresh copy of the run for each test (each writes its own exports into it)."""
    cfg, run = tiny_run
    shutil.copytree(run, tmp_path / "run")
    return cfg, tmp_path / "run"


def test_export_writes_the_trained_weights_of_the_chosen_seed(tiny):
    cfg, run = tiny
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


def test_export_errors_name_the_problem(tiny, tmp_path, capsys):
    cfg, run = tiny
    assert main(["export", str(run), "--seed", "7"]) == 2
    assert "--seed" in capsys.readouterr().err
    assert main(["export", str(run), "--to", "onnx"]) == 2
    assert main(["export", str(tmp_path / "nowhere")]) == 2
    out = export_run(run, out=tmp_path / "a.nir")
    assert out.exists()


def test_export_cli_passes_the_nir_reader_options(tiny, tmp_path, capsys):
    """``--recurrent subgraph --outputs hidden --prune`` (snnTorch 1.0's form) reaches
    ``to_nir``: the file differs as those options say, and a typo is named."""
    _, run = tiny
    flat = run / "export" / "seed0.nir"
    assert main(["export", str(run), "--out", str(flat)]) == 0
    sub = tmp_path / "sub.nir"
    assert main(["export", str(run), "--recurrent", "subgraph", "--outputs", "hidden", "--prune",
                 "--out", str(sub)]) == 0
    g_flat, g_sub = nir.read(str(flat)), nir.read(str(sub))
    assert "readout" in g_flat.nodes and "readout" not in g_sub.nodes  # pruned: feeds no output
    assert any(type(n).__name__ == "NIRGraph" for n in g_sub.nodes.values())  # nested layer
    assert not any(type(n).__name__ == "NIRGraph" for n in g_flat.nodes.values())
    meta = json.loads((tmp_path / "sub.json").read_text())
    assert meta["nir_options"] == {"nir_version": None, "recurrent": "subgraph", "prune": True,
                                   "outputs": ["hidden"]}
    assert main(["export", str(run), "--recurrent", "subgrap", "--out", str(sub)]) == 2
    assert "subgraph" in capsys.readouterr().err
