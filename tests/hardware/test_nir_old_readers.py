"""neurorl's NIR files in the readers pinned to nir <= 1.0.4: sinabs 3.1 and rockpool 3.1.

They cannot share the test environment (nir 1.0.8, which snnTorch / Spyx need), so a session
fixture installs them with ``pip install --no-deps --target`` into the pytest cache directory
(once; later runs reuse it) and a subprocess puts that directory first on ``PYTHONPATH``: nir
1.0.4 and nirtorch 2.0.2 (the newest nirtorch that allows nir <= 1.0.4, what pip resolves for
``sinabs rockpool[nir]``) shadow the environment's, torch comes from the environment.

What each reader does with a NIR file (their ``from_nir`` sources, sinabs 3.1.3 / rockpool 3.1.0):

* sinabs maps ``Affine`` (not ``Linear``: nirtorch leaves that node out), ``IF`` as
  ``IAFSqueeze`` (``v_t = v + I``, r ignored) and ``LIF`` as ``LIFSqueeze(tau_mem=tau,
  norm_input=False)`` (``v_t = exp(-1/tau) v + I``: the time constant read in steps, r ignored),
  both resetting by subtraction in the spike step, as nir 1.0.4 defines it. neurorl's
  ``reset="subtract"`` subtracts after the next step's decay (Bellec's form), the same only
  without leak: a network of ``tau_mem = inf`` groups (NIR ``IF`` nodes) simulates exactly, one
  step earlier per hop (same-step propagation); leaky ones are recorded as lossy. sinabs'
  ``MultiSpike`` emits ``floor(v / v_th)`` spikes in a step; the weights keep ``v < 2 v_th``.
* rockpool reads only ``CubaLIF`` (its LIF import asks the LIF node for ``tau_mem``, a field of
  CubaLIF only) and derives its time step from the resistance, ``dt = min(tau_mem / (1 + r))``,
  not from the graph, and decays the input current in its arrival step
  (``i_t = beta (i_{t-1} + W s_t)``): it simulates another network by design. What holds and is
  checked: the file loads, every weight, time constant and threshold arrives unchanged, and the
  module runs on the same input.
"""

import fcntl
import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from neurorl.core import Connection, LearningRule, Network, NeuronGroup, SpikeMonitor
from neurorl.errors import ConfigError
from neurorl.hardware.nir import from_nir, to_nir, write_nir

pytestmark = pytest.mark.slow  # a pip install on the first run (~15 s), then a torch subprocess

OLD_READERS = ("sinabs==3.1.*", "rockpool==3.1.*", "nir==1.0.4", "nirtorch==2.0.2", "pbr>=5")
_OFFLINE = ("NewConnectionError", "Max retries exceeded", "Temporary failure in name resolution",
            "Network is unreachable", "No matching distribution found",
            "Could not find a version that satisfies")


@pytest.fixture(scope="session")
def old_nir_site(request, tmp_path_factory):
    """A directory with sinabs 3.1, rockpool 3.1, nir 1.0.4 and nirtorch 2.0.2 (no deps)."""
    cache = getattr(request.config, "cache", None)
    root = cache.mkdir("nir104_readers") if cache is not None else tmp_path_factory.mktemp("old")
    site, stamp = root / "site", root / "installed.json"
    with open(root / ".lock", "w") as lock:  # pytest-xdist workers install once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and json.loads(stamp.read_text()) == list(OLD_READERS):
            return site
        r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                            "--no-input", "--target", str(site), "--upgrade", *OLD_READERS],
                           capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            if any(s in r.stderr for s in _OFFLINE):
                pytest.skip(f"pip cannot reach the package index: {r.stderr.strip()[-300:]}")
            pytest.fail(f"pip install --target of {OLD_READERS} failed:\n{r.stderr[-2000:]}")
        stamp.write_text(json.dumps(list(OLD_READERS)))
    return site


def _in_old_env(site, script, **arrays):
    """Run ``script`` with nir 1.0.4 & co. first on the path; ``arrays`` in, a dict out."""
    work = arrays.pop("work")
    np.savez(work / "in.npz", **arrays)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}
    prog = textwrap.dedent("""
        import sys, numpy as np, torch, nir
        assert nir.version == "1.0.4", nir.version
        inp = dict(np.load(sys.argv[1]))
        out = {}
    """) + textwrap.dedent(script) + "\nnp.savez(sys.argv[2], **out)\n"
    r = subprocess.run([sys.executable, "-c", prog, str(work / "in.npz"), str(work / "out.npz")],
                       capture_output=True, text=True, env=env, timeout=600, cwd=work)
    assert r.returncode == 0, r.stderr[-3000:]
    return dict(np.load(work / "out.npz"))


def _ff_net(*, stdp=False, seed=5):
    """input group (6) -> output group (3): integrate-and-fire (no leak), subtractive reset."""
    rng = np.random.default_rng(seed)
    p = {"reset": "subtract", "integration": "direct", "tau_mem": float("inf"), "v_th": 1.0}
    hid = NeuronGroup(6, "LIF", p, name="hid", input=True)
    out = NeuronGroup(3, "LIF", p, name="out")
    ff = Connection(hid, out, weight=rng.normal(0.1, 0.03, (6, 3)).astype(np.float32), name="ff")
    objs = [hid, out, ff, SpikeMonitor(out, name="o")]
    if stdp:
        objs.append(LearningRule(ff, "STDP", {"a_plus": A_PLUS, "a_minus": A_MINUS,
                                              "variant": "multiplicative", "w_max": 0.16}))
    return Network(*objs).compile()


A_PLUS, A_MINUS, X_SCALE = 0.05, 0.04, 0.4


SINABS = """
    import sinabs
    for name in inp["files"]:
        m = sinabs.from_nir(nir.read(str(name)), batch_size=1)
        with torch.no_grad():
            y, _ = m(torch.tensor(inp["x"]))
        out[str(name)] = np.asarray(y)
"""


def test_sinabs_simulates_neurorl_files_exactly(tmp_path, old_nir_site):
    x = (np.random.default_rng(0).random((200, 6)) * X_SCALE).astype(np.float32)
    refs, files = {}, []
    hand = _ff_net()
    learner = _ff_net(stdp=True)  # a trained network: the weights neurorl's STDP learned on x
    s0 = learner.init(jax.random.PRNGKey(0))
    s1, _ = learner.run(s0, x)
    assert np.abs(np.asarray(s1["weights"]["ff"]) - np.asarray(s0["weights"]["ff"])).max() > 0.05
    for name, state in (("net.nir", hand.init(jax.random.PRNGKey(0))),
                        ("trained.nir", hand.init(jax.random.PRNGKey(0)) | {
                            "weights": s1["weights"]})):
        _, rec = hand.run(state, x)
        refs[name] = np.asarray(rec["o"])
        assert 0 < refs[name].sum() < refs[name].size / 2
        g = write_nir(tmp_path / name, hand, state, nir_version="1.0.4")
        assert json.loads(g.metadata["neurorl_lossy"]) == []  # exact in nir 1.0.4's schema
        files.append(name)
    out = _in_old_env(old_nir_site, SINABS, work=tmp_path, x=x, files=np.array(files))
    for name in files:
        ys = out[name]
        assert ys.shape == refs[name].shape and ys.max() <= 1  # no multi-spike step
        np.testing.assert_array_equal(ys[:-1], refs[name][1:])  # one hop: one step earlier
    assert not np.array_equal(refs["net.nir"], refs["trained.nir"])


ROCKPOOL = """
    import pathlib
    from rockpool.nn.modules import from_nir
    m = from_nir(pathlib.Path("cuba.nir"))
    for name, mod in m.named_children():
        for k in ("tau_mem", "tau_syn", "threshold", "bias", "weight"):
            if isinstance(getattr(mod, k, None), torch.Tensor):
                out[f"{name}.{k}"] = getattr(mod, k).detach().numpy()
        if hasattr(mod, "dt"):
            out[f"{name}.dt"] = np.asarray(mod.dt)
        out[f"{name}.type"] = np.asarray(type(mod).__name__)
    with torch.no_grad():
        y, _ = m(torch.tensor(inp["x"])[None])
    out["y"] = np.asarray(y)[0]
"""


def test_rockpool_loads_neurorl_cubalif_files_with_every_parameter(tmp_path, old_nir_site):
    rng = np.random.default_rng(1)
    p = {"reset": "subtract", "integration": "direct", "dt": 1.0, "tau_syn": 4.0,
         "v_th": np.array([1.0, 1.2, 0.8, 1.0, 1.1], np.float32)}
    a = NeuronGroup(5, "CubaLIF", {**p, "tau_mem": np.linspace(6, 14, 5).astype(np.float32)},
                    name="a", input=True, bias=0.02)
    b = NeuronGroup(3, "CubaLIF", {**p, "v_th": 1.0, "tau_mem": 12.0}, name="b")
    net = Network(a, b, Connection(a, b, weight=rng.normal(0.5, 0.3, (5, 3)).astype(np.float32),
                                   name="ab"), SpikeMonitor(b, name="o")).compile()
    state = net.init(jax.random.PRNGKey(0))
    g = write_nir(tmp_path / "cuba.nir", net, state, nir_version="1.0.4")
    x = (np.random.default_rng(2).random((50, 5)) * 0.5).astype(np.float32)
    out = _in_old_env(old_nir_site, ROCKPOOL, work=tmp_path, x=x)
    assert out["a.type"] == "LIFTorch" and out["b.type"] == "LIFTorch"
    assert out["ab.type"] == "LinearTorch"
    np.testing.assert_allclose(out["ab.weight"], np.asarray(g.nodes["ab"].weight).T, rtol=1e-6)
    np.testing.assert_allclose(out["ab.weight"], np.asarray(state["weights"]["ab"]), rtol=1e-6)
    for k in ("a", "b"):
        node = g.nodes[k]
        np.testing.assert_allclose(out[f"{k}.tau_mem"].ravel(), node.tau_mem, rtol=1e-6)
        np.testing.assert_allclose(out[f"{k}.tau_syn"].ravel(), node.tau_syn, rtol=1e-6)
        np.testing.assert_allclose(out[f"{k}.threshold"].ravel(), node.v_threshold, rtol=1e-6)
        np.testing.assert_allclose(out[f"{k}.bias"].ravel(), node.v_leak, rtol=1e-5, atol=1e-7)
        # rockpool's step is its own reading of r, not the graph's dt (1 ms): another network
        rp_dt = float(np.min(node.tau_mem / (1 + node.r)))
        assert float(out[f"{k}.dt"]) == pytest.approx(rp_dt, rel=1e-5)
        assert rp_dt != pytest.approx(float(g.metadata["dt"]), rel=1e-2)
    assert out["y"].shape == (50, 3) and out["y"].sum() > 0  # it runs on the same input


def test_old_schema_export_states_what_it_cannot_say(tmp_path):
    """nir_version="1.0.4": reset to zero is lossy, a non-zero v_reset is refused."""
    p = {"reset": "zero", "integration": "exponential", "dt": 1.0, "tau_mem": 5.0}
    a = NeuronGroup(4, "LIF", p, name="a", input=True)
    net = Network(a, SpikeMonitor(a, name="o")).compile()
    g = to_nir(net, nir_version="1.0.4")
    assert "subtract" in json.loads(g.metadata["neurorl_lossy"])[0]
    with pytest.raises(ConfigError, match="subtract"):
        to_nir(net, nir_version="1.0.4", strict=True)
    assert json.loads(to_nir(net).metadata["neurorl_lossy"]) == []  # nir >= 1.0.5 says it
    bad = Network(NeuronGroup(4, "LIF", {**p, "v_reset": -0.5}, name="a", input=True)).compile()
    with pytest.raises(ConfigError, match=r"'a'\.params\.v_reset.*-0\.5.*reset='subtract'"):
        write_nir(tmp_path / "x.nir", bad, nir_version="1.0.4")
    with pytest.raises(ConfigError, match="nir_version"):
        to_nir(net, nir_version="1.4")
    # the file's version says 1.0.4, and neurorl reads its LIF with 1.0.4's subtractive reset
    import h5py

    path = tmp_path / "old.nir"
    write_nir(path, net, nir_version="1.0.4")
    with h5py.File(path) as f:
        assert f["version"][()] == b"1.0.4" and "v_reset" not in f["node/nodes/a"]
    imp = from_nir(path, use_metadata=False)
    assert imp.net.groups["a"].params.reset == "subtract"
    assert from_nir(path).net.groups["a"].params.reset == "zero"  # neurorl's own metadata
