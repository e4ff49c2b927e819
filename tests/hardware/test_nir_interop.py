"""NIR files from neurorl in the real consumers (snnTorch 1.0, Norse 1.1, Spyx 1.0), and files from
snnTorch and Norse in neurorl: the same input, equal spike trains.

Needs the ``interop`` extra (``pip install -e ".[test,interop]"``). Each reader's own convention
decides which neurorl network it can reproduce exactly (``neurorl.hardware.nir``, "Readers"):
snnTorch and Norse reset to zero in the spike step and propagate spikes in the same step (so their
outputs lead neurorl's by ``graph.metadata["neurorl_latency"]`` steps); Spyx's LIF resets by
subtraction and emits the spike of the previous membrane (its outputs lag neurorl's by one step).
"""

import json

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

from neurorl.core import Connection, LearningRule, Network, NeuronGroup, SpikeMonitor
from neurorl.hardware.nir import from_nir, write_nir

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # torch-based readers (seconds each; the [interop] extra)


def _net(dt, *, reset="zero", integration="exponential", recurrent=False, bias=0.0, w=1.0,
         stdp=False, seed=5):
    """input group (6) -> output group (3), optionally recurrent input group; fixed weights."""
    rng = np.random.default_rng(seed)
    p = {"reset": reset, "integration": integration, "dt": dt, "tau_mem": 2.0, "v_th": 1.0}
    hid = NeuronGroup(6, "LIF", p, name="hid", bias=bias, input=True)
    out = NeuronGroup(3, "LIF", {**p, "tau_mem": 3.0}, name="out")
    ff = Connection(hid, out, weight=(w * rng.normal(1.0, 1.0, (6, 3))).astype(np.float32),
                    name="ff")
    objs = [hid, out, ff, SpikeMonitor(hid, name="h"), SpikeMonitor(out, name="o")]
    if recurrent:
        objs.append(Connection(hid, hid, weight=(w * rng.normal(0, 0.5, (6, 6))).astype(
            np.float32), name="rec"))
    if stdp:
        objs.append(LearningRule(ff, "STDP", {"a_plus": 0.5, "a_minus": 0.3}))
    return Network(*objs).compile()


def _torch_run(module, x):
    """Step a nirtorch-built module (``y, state = m(x_t, state)``) over time-first inputs."""
    outs, state = [], None
    with torch.no_grad():
        for t in range(len(x)):
            y, state = module(torch.tensor(x[t:t + 1]), state)
            outs.append(np.asarray(y)[0])
    return np.array(outs)


def _export(tmp_path, net, state, name="net.nir", **kw):
    path = tmp_path / name
    graph = write_nir(path, net, state, **kw)
    lat = json.loads(graph.metadata["neurorl_latency"])["output"]
    return path, lat


def _trained(dt, x, **kw):
    """The network with the weights neurorl's own STDP rule learned on ``x`` (a trained
    network), returned without the rule so that the weights stay fixed while it is compared."""
    learner = _net(dt, stdp=True, **kw)
    state = learner.init(jax.random.PRNGKey(0))
    w0 = np.asarray(state["weights"]["ff"])
    state, _ = learner.run(state, x)
    w1 = np.asarray(state["weights"]["ff"])
    assert np.abs(w1 - w0).max() > 0.05  # learning did change the weights
    net = _net(dt, **kw)
    return net, net.init(jax.random.PRNGKey(0)) | {"weights": state["weights"]}


# ------------------------------------------------------------------------------ neurorl -> X
# snnTorch 1.0's import_from_nir mis-wires a recurrent layer written as a flat cycle
# (LIF -> Linear -> LIF): its _create_rnn_subgraph (snntorch/import_nir.py) builds the subgraph
# with the edge (input, w_rec) instead of (input, lif), so nirtorch runs
# LIF(W_rec (z[t-1] + x[t])) instead of LIF(x[t] + W_rec z[t-1]); the same edge is still in
# snnTorch's main branch, and no upstream issue names it (RLeaky NIR support in general:
# jeshraghian/snntorch#290, open). The form snnTorch's own exporter
# writes for RLeaky, a nested graph input -> lif -> output with lif <-> w_rec, is left alone by
# that rewrite and imports right: write_nir(..., recurrent="subgraph"). Strict: the flat case
# fails loudly once snnTorch reads a flat cycle right.
SNNTORCH_FLAT_RECURRENT = pytest.mark.xfail(
    strict=True, reason="snnTorch 1.0's _create_rnn_subgraph wires input -> w_rec")


@pytest.mark.parametrize(
    "case", ["feedforward", "trained", "recurrent",
             pytest.param("recurrent-flat", marks=SNNTORCH_FLAT_RECURRENT)])
def test_snntorch_simulates_neurorl_files_exactly(tmp_path, case):
    from snntorch.import_nir import import_from_nir

    dt = 0.1  # snnTorch's importer fixes dt = 1e-4 s
    x = (np.random.default_rng(0).random((300, 6)) * 3.0).astype(np.float32)
    if case == "trained":
        net, state = _trained(dt, x, w=20.0)
    else:
        net = _net(dt, w=20.0, recurrent=case.startswith("recurrent"))
        state = net.init(jax.random.PRNGKey(0))
    _, rec = net.run(state, x)
    ref = np.asarray(rec["o"])
    assert 0 < ref.sum() < ref.size / 2
    path, lat = _export(tmp_path, net, state,
                        recurrent="subgraph" if case == "recurrent" else "edges")
    # a recurrent hop (delay 1) is nirtorch's previous-step feedback: the same latency
    assert lat == 1
    ys = _torch_run(import_from_nir(nir.read(path)), x)
    np.testing.assert_array_equal(ys[:-lat], ref[lat:])


@pytest.mark.parametrize("case", ["feedforward", "bias", "trained"])
def test_norse_simulates_neurorl_files_exactly(tmp_path, case):
    import norse.torch as norse

    dt = 1.0  # Norse takes the step as an argument (seconds)
    x = (np.random.default_rng(1).random((300, 6)) * 1.5).astype(np.float32)
    kw = {"w": 0.7, "bias": 0.3 if case == "bias" else 0.0}
    if case == "trained":
        net, state = _trained(dt, x, **kw)
    else:
        net = _net(dt, **kw)
        state = net.init(jax.random.PRNGKey(0))
    _, rec = net.run(state, x)
    ref = np.asarray(rec["o"])
    assert 0 < ref.sum() < ref.size / 2
    path, lat = _export(tmp_path, net, state)
    ys = _torch_run(norse.from_nir(nir.read(path), dt=dt * 1e-3), x)
    np.testing.assert_array_equal(ys[:-lat], ref[lat:])


@pytest.mark.parametrize("recurrent", [False, True])
def test_spyx_simulates_neurorl_files_exactly(tmp_path, recurrent):
    import spyx.nir

    dt = 1.0
    net = _net(dt, reset="subtract", integration="direct", recurrent=recurrent)
    x = (np.random.default_rng(2).random((300, 6)) * 0.6).astype(np.float32)
    state = net.init(jax.random.PRNGKey(0))
    _, rec = net.run(state, x)
    ref = np.asarray(rec["o"])
    assert 0 < ref.sum() < ref.size / 2
    path, _ = _export(tmp_path, net, state)
    with jax.numpy_rank_promotion("allow"):  # Spyx broadcasts ranks implicitly
        _, out = spyx.nir.from_nir(nir.read(path), jnp.asarray(x)[:, None, :], dt=dt * 1e-3)
    out = np.asarray(out)[:, 0]
    np.testing.assert_array_equal(out[1:], ref[:-1])  # Spyx emits the previous step's spike
    assert not np.array_equal(out, ref)


def test_reader_that_resets_to_zero_differs_on_a_subtractive_network(tmp_path):
    """The lossy note is true: a subtract-reset network does not reproduce in snnTorch."""
    from snntorch.import_nir import import_from_nir

    net = _net(0.1, reset="subtract", w=20.0)
    x = (np.random.default_rng(0).random((300, 6)) * 3.0).astype(np.float32)
    state = net.init(jax.random.PRNGKey(0))
    _, rec = net.run(state, x)
    path, lat = _export(tmp_path, net, state)
    graph = nir.read(path)
    assert "subtract" in str(graph.metadata["neurorl_lossy"])
    ys = _torch_run(import_from_nir(graph), x)
    assert not np.array_equal(ys[:-lat], np.asarray(rec["o"])[lat:])


# ------------------------------------------------------------------------------ X -> neurorl
def test_snntorch_export_runs_identically_in_neurorl():
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    lif1 = snn.Leaky(beta=torch.full((8,), 0.9), threshold=torch.ones(8), init_hidden=True,
                     reset_mechanism="zero")
    lif2 = snn.Leaky(beta=torch.full((3,), 0.8), threshold=torch.ones(3), init_hidden=True,
                     output=True, reset_mechanism="zero")
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), lif1, torch.nn.Linear(8, 3), lif2)
    with torch.no_grad():
        model[0].weight *= 3
        model[2].weight *= 3
    graph = export_to_nir(model, torch.zeros(4))  # snnTorch 1.0: per-neuron params, no batch
    x = (np.random.default_rng(0).random((300, 4))).astype(np.float32)
    ys = []
    with torch.no_grad():
        for t in range(len(x)):
            ys.append(model(torch.tensor(x[t:t + 1]))[0].numpy()[0])
    ys = np.array(ys)
    imp = from_nir(graph, dt=1e-4)  # snnTorch's dt
    assert imp.latency == {"output": 1}
    _, rec = imp.run(x)
    out = np.asarray(rec["output"])
    assert 0 < ys.sum() < ys.size / 2
    np.testing.assert_array_equal(out[1:], ys[:-1])


def test_norse_export_runs_identically_in_neurorl():
    import norse.torch as norse

    torch.manual_seed(0)
    dt = 1e-3
    p1 = norse.LIFBoxParameters(tau_mem_inv=torch.full((8,), 1 / 5e-3), v_th=torch.ones(8),
                                v_leak=torch.full((8,), 0.1))
    p2 = norse.LIFBoxParameters(tau_mem_inv=torch.full((3,), 1 / 8e-3), v_th=torch.ones(3),
                                v_leak=torch.zeros(3))
    model = norse.SequentialState(torch.nn.Linear(4, 8), norse.LIFBoxCell(p1, dt=dt),
                                  torch.nn.Linear(8, 3), norse.LIFBoxCell(p2, dt=dt))
    with torch.no_grad():
        model[0].weight *= 10
        model[2].weight *= 10
    # Norse 1.1's exporter writes tau = dt / tau_mem_inv: dt=1 makes that the time constant
    graph = norse.to_nir(model, torch.zeros(1, 4), dt=1.0)
    x = (np.random.default_rng(0).random((300, 4)) * 6).astype(np.float32)
    ys = _torch_run(model, x)
    imp = from_nir(graph, dt=dt)
    _, rec = imp.run(x)
    out = np.asarray(rec[next(iter(imp.outputs))])
    assert 0 < ys.sum() < ys.size / 2
    np.testing.assert_array_equal(out[1:], ys[:-1])


# ------------------------------------------------------------------------------ trained agents
def _eprop_agent(tmp_path, hidden, dt=0.1, recurrent=True, n_rec=8):
    """An e-prop actor-critic trained briefly on CartPole through the experiment runner (a user's
    network: obs relay -> LIF hidden (+ recurrence) -> LI readout), returned as the network of
    its hidden spikes (no learning rules) and the state holding the learned weights."""
    import yaml

    from neurorl.experiment import config as C
    from neurorl.experiment.checkpoint import load_checkpoint
    from neurorl.experiment.export import agent_network
    from neurorl.experiment.runner import build, member_keys, run_experiment

    raw = yaml.safe_load(open("experiments/quickstart.yaml"))
    conns = [{"source": "obs", "target": "hidden", "delay": 0,
              "weight": {"init": "normal", "std": 0.6}},
             {"source": "hidden", "target": "readout", "delay": 0,
              "weight": {"init": "normal", "std": 0.05}}]
    if recurrent:
        conns.append({"source": "hidden", "target": "hidden", "allow_self": False, "delay": 1,
                      "weight": {"init": "normal", "std": 0.4}})
    raw["agent"] = {"name": "eprop_ac", "substeps": 3, "hyper": {"lr": 0.01}, "network": {
        "encoder": {"name": "gaussian_rf", "n_per_dim": 3}, "input": "obs", "output": "readout",
        "groups": [{"name": "obs", "model": "Input", "n": "encoder", "params": {"dt": dt}},
                   {"name": "hidden", "model": "LIF", "n": n_rec,
                    "params": {"dt": dt, "tau_mem": 10 * dt, **hidden}},
                   {"name": "readout", "model": "LI", "n": "n_actions + 1",
                    "params": {"dt": dt, "tau_mem": 5 * dt}}],
        "connections": conns, "rules": {"rule": "eprop", "params": {"tau_out": 5 * dt}}}}
    raw["training"].update(steps=240, n_envs=4, n_seeds=1, chunk_steps=120)
    raw["logging"]["wandb"] = "disabled"
    cfg = C.from_dict(raw)
    run = tmp_path / "run"
    run_experiment(cfg, run, progress=False)
    train = build(cfg)
    rs, _ = load_checkpoint(run, jax.eval_shape(train.init, member_keys(cfg.training.seed, 1)))
    net, state = agent_network(train, rs, 0)
    w0 = net.init(jax.random.key(0))["weights"]
    assert max(float(np.abs(np.asarray(state["weights"][k]) - np.asarray(w0[k])).max())
               for k in w0) > 1e-3  # e-prop changed the weights
    plain = Network(*net.groups.values(), *net.connections.values(),
                    SpikeMonitor(net.groups["hidden"], name="h")).compile()
    return plain, plain.init(jax.random.PRNGKey(0)) | {"weights": state["weights"]}


def _agent_input(net, scale, T=300, seed=0):
    n_in = net.groups["obs"].n
    return (np.random.default_rng(seed).random((T, n_in)) * scale).astype(np.float32)


def test_snntorch_and_norse_simulate_a_trained_recurrent_eprop_agent_exactly(tmp_path):
    """The recurrent hidden layer of a trained e-prop agent (zero reset; dt = 0.1 ms, snnTorch's
    fixed step), exported in the subgraph form, with the LI readout pruned (no LI in snnTorch):
    equal spike trains in snnTorch and Norse (the obs -> hidden hop is same-step in neurorl too:
    no lead)."""
    import norse.torch as norse
    from snntorch.import_nir import import_from_nir

    net, state = _eprop_agent(tmp_path, {"reset": "zero", "integration": "exponential",
                                         "r": 1.0})
    x = _agent_input(net, 3.0)
    _, rec = net.run(state, x)
    ref = np.asarray(rec["h"])
    assert 0 < ref.sum() < ref.size / 2
    path, lat = _export(tmp_path, net, state, outputs="hidden", prune=True,
                        recurrent="subgraph")
    assert lat == 0
    assert {type(n).__name__ for n in nir.read(path).nodes.values()} == {
        "Input", "Linear", "NIRGraph", "Output"}
    ys = _torch_run(import_from_nir(nir.read(path)), x)
    np.testing.assert_array_equal(ys, ref)
    yn = _torch_run(norse.from_nir(nir.read(path), dt=1e-4), x)
    np.testing.assert_array_equal(yn, ref)


def test_spyx_simulates_a_trained_recurrent_eprop_agent_exactly(tmp_path):
    """e-prop's own neuron (subtractive reset after the decay, direct input: Bellec's), which is
    Spyx's LIF: the trained recurrent hidden layer, readout pruned, one step later in Spyx."""
    import spyx.nir

    net, state = _eprop_agent(tmp_path, {"reset": "subtract", "integration": "direct"}, dt=1.0)
    x = _agent_input(net, 0.8, seed=1)
    _, rec = net.run(state, x)
    ref = np.asarray(rec["h"])
    assert 0 < ref.sum() < ref.size / 2
    path, _ = _export(tmp_path, net, state, outputs="hidden", prune=True)
    with jax.numpy_rank_promotion("allow"):
        _, out = spyx.nir.from_nir(nir.read(path), jnp.asarray(x)[:, None, :], dt=1e-3)
    out = np.asarray(out)[:, 0]
    np.testing.assert_array_equal(out[1:], ref[:-1])


def test_snntorch_recurrent_export_runs_identically_in_neurorl():
    """snnTorch 1.0 writes an RLeaky as a flat cycle lif <-> w_rec (Affine): neurorl reads the
    cycle as a delay-1 self-connection, which is RLeaky's previous-step feedback."""
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    rl = snn.RLeaky(beta=torch.full((6,), 0.9), threshold=torch.ones(6), linear_features=6,
                    all_to_all=True, init_hidden=True, reset_mechanism="zero",
                    reset_delay=False)
    lif2 = snn.Leaky(beta=torch.full((3,), 0.8), threshold=torch.ones(3), init_hidden=True,
                     output=True, reset_mechanism="zero", reset_delay=False)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), rl, torch.nn.Linear(6, 3), lif2)
    with torch.no_grad():
        model[0].weight *= 3
        model[2].weight *= 3
        rl.recurrent.weight *= 2
    graph = export_to_nir(model, torch.zeros(4))
    x = np.random.default_rng(0).random((300, 4)).astype(np.float32)
    with torch.no_grad():
        ys = np.array([model(torch.tensor(x[t:t + 1]))[0].numpy()[0] for t in range(len(x))])
    imp = from_nir(graph, dt=1e-4)
    assert [(c.source.name, c.target.name) for c in imp.net.connections.values()].count(
        ("1.lif", "1.lif")) == 1
    _, rec = imp.run(x)
    out = np.asarray(rec["output"])
    assert 0 < ys.sum() < ys.size / 2
    np.testing.assert_array_equal(out[1:], ys[:-1])
