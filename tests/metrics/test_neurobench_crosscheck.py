"""neurorl's NeuroBench-style metrics equal NeuroBench 2.3's own numbers on the same network.

A two-layer feed-forward SNN is built equally in snnTorch (``Linear -> Leaky -> Linear -> Leaky``,
subtract reset, no bias) and in neurorl's N-HAL (LIF with direct integration and subtract reset is
snnTorch's ``Leaky``: ``v_t = beta v_{t-1} + I_t - thr z_{t-1}``). The N-HAL network's spikes
equal snnTorch's (its hidden->output connection has a delay of one step, so the output is compared
one step later), and neurorl's metrics on the N-HAL spikes equal NeuroBench's Benchmark results:
activation sparsity, synaptic operations (effective ACs, effective MACs for graded inputs, dense),
connection sparsity, parameter count and footprint.

Optional extra (not in the default install): ``pip install torch==2.13.0`` (the CPU wheel) and
``pip install -e ".[neurobench]"`` (neurobench 2.3, snnTorch); skipped without them.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
pytest.importorskip("neurobench")

import jax.numpy as jnp  # noqa: E402

from neurorl.core.monitors import SpikeMonitor  # noqa: E402
from neurorl.core.network import Connection, Network, NeuronGroup  # noqa: E402
from neurorl.metrics import neuromorphic as NM  # noqa: E402

N_IN, N_HID, N_OUT, T, B, BETA = 12, 16, 4, 25, 6, 0.9


class Net(torch.nn.Module):
    def __init__(self, w1: np.ndarray, w2: np.ndarray) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(N_IN, N_HID, bias=False)
        self.fc2 = torch.nn.Linear(N_HID, N_OUT, bias=False)
        with torch.no_grad():  # torch stores [out, in]; neurorl is pre-major [in, out]
            self.fc1.weight.copy_(torch.tensor(w1.T))
            self.fc2.weight.copy_(torch.tensor(w2.T))
        kw = {"beta": BETA, "threshold": 1.0, "reset_mechanism": "subtract", "init_hidden": True}
        self.lif1 = snn.Leaky(**kw)
        self.lif2 = snn.Leaky(**kw, output=True)

    def forward(self, x):
        return self.lif2(self.fc2(self.lif1(self.fc1(x))))


def _weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w1 = (rng.normal(0, 1.2, (N_IN, N_HID))).astype(np.float32)
    w2 = (rng.normal(0, 1.0, (N_HID, N_OUT))).astype(np.float32)
    w1[rng.random(w1.shape) < 0.3] = 0.0  # some pruned synapses: connection sparsity > 0
    w2[rng.random(w2.shape) < 0.2] = 0.0
    return w1, w2


def _neurobench(net: torch.nn.Module, x: np.ndarray) -> dict:
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint, ParameterCount
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import SNNTorchModel

    data = torch.utils.data.TensorDataset(torch.tensor(x), torch.zeros(len(x), dtype=torch.long))
    loader = torch.utils.data.DataLoader(data, batch_size=len(x), shuffle=False)
    bench = Benchmark(SNNTorchModel(net), loader, [], [],
                      [[Footprint, ConnectionSparsity, ParameterCount],
                       [ActivationSparsity, SynapticOperations]])
    return bench.run(quiet=True)


def _neurorl(w1: np.ndarray, w2: np.ndarray, x: np.ndarray):
    """The same network in the N-HAL: hidden group driven by x_t W1, hidden->out delay 1."""
    lif = {"tau_mem": float(-1.0 / np.log(BETA)), "v_th": 1.0}
    hid = NeuronGroup(N_HID, "LIF", lif, name="hid", input=True)
    out = NeuronGroup(N_OUT, "LIF", lif, name="out")
    c = Connection(hid, out, weight=w2, name="h->o")
    net = Network(hid, out, c, SpikeMonitor(hid, name="zh"), SpikeMonitor(out, name="zo"))
    cnet = net.compile("float")
    hs, os_ = [], []
    for xs in x:  # one sample at a time, one extra step for the output's delay
        cur = np.concatenate([xs @ w1, np.zeros((1, N_HID), np.float32)])
        _, rec = cnet.run(cnet.init(__import__("jax").random.key(0)), cur)
        hs.append(np.asarray(rec["zh"][:T]))
        os_.append(np.asarray(rec["zo"][1:]))
    return np.stack(hs), np.stack(os_), cnet


def _torch_spikes(net, x):
    hooks, hid = [], []
    hooks.append(net.lif1.register_forward_hook(lambda m, i, o: hid.append(o.detach().numpy())))
    from neurobench.models import SNNTorchModel

    out = SNNTorchModel(net)(torch.tensor(x)).detach().numpy()
    for h in hooks:
        h.remove()
    return np.stack(hid, 1), out  # [B, T, n]


@pytest.mark.parametrize("graded", [False, True])
def test_metrics_equal_neurobench(graded):
    rng = np.random.default_rng(1)
    x = (rng.random((B, T, N_IN)) < 0.3).astype(np.float32)
    if graded:  # real-valued inputs: the first layer's operations are MACs
        x = x * rng.uniform(0.5, 2.0, x.shape).astype(np.float32)
    w1, w2 = _weights()
    net = Net(w1, w2)
    th, to = _torch_spikes(net, x)
    h, o, cnet = _neurorl(w1, w2, x)
    assert th.sum() > 0 and to.sum() > 0
    np.testing.assert_array_equal(h, th)  # the same spikes
    np.testing.assert_array_equal(o, to)

    nb = _neurobench(Net(w1, w2), x)

    # activation sparsity: pooled over both spiking layers, all steps and samples
    ours = float(NM.activation_sparsity(jnp.asarray(h), jnp.asarray(o)))
    assert ours == pytest.approx(nb["ActivationSparsity"], abs=1e-6)

    # synaptic operations per sample: layer 1 reads x_t, layer 2 the hidden spikes of step t
    w = cnet.dense_weights(cnet.init(__import__("jax").random.key(0)))
    ops = [NM.network_synaptic_operations([(jnp.asarray(x[i]), jnp.asarray(w1)),
                                           (jnp.asarray(h[i]), jnp.asarray(w["h->o"]))])
           for i in range(B)]
    syn = nb["SynapticOperations"]
    assert np.mean([float(s.acs) for s in ops]) == pytest.approx(syn["Effective_ACs"])
    assert np.mean([float(s.macs) for s in ops]) == pytest.approx(syn["Effective_MACs"])
    assert np.mean([float(s.dense) for s in ops]) == pytest.approx(syn["Dense"])
    assert (syn["Effective_MACs"] > 0) == graded

    # static metrics
    # (NeuroBench rounds connection sparsity to 4 decimals)
    cs = float(NM.connection_sparsity(w1, w["h->o"]))
    assert round(cs, 4) == nb["ConnectionSparsity"] and 0.2 < cs < 0.3
    assert sum(a.size for a in (w1, w["h->o"])) == nb["ParameterCount"]
    # Footprint counts parameters and buffers: per snnTorch Leaky layer beta, threshold and the
    # graded-spike factor (float32 scalars), the reset flag (int64) and an empty membrane before
    # the first step -- per-group neuron parameters in neurorl's terms
    buffers = [b.detach().numpy() for b in Net(w1, w2).buffers()]
    assert sum(b.size for b in buffers if b.dtype == np.float32) == 2 * 3
    fp = NM.memory_footprint([w1, w["h->o"]],
                             [b for b in buffers if b.dtype == np.float32])
    nbytes_other = sum(b.nbytes for b in buffers if b.dtype != np.float32)
    assert fp + nbytes_other == nb["Footprint"]
