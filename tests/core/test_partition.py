"""Neuron-sharded networks over forced host devices equal the single-device run spike for spike.

JAX fixes the device count when its backend starts, so the sharded runs happen in a subprocess
with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import pytest

from neurorl.core import Connection, LearningRule, Network, NeuronGroup
from neurorl.core.partition import shard_network
from neurorl.errors import ConfigError

SCRIPT = textwrap.dedent(r"""
    import re
    import jax, numpy as np
    from neurorl.core import Connection, Network, NeuronGroup, SpikeMonitor, PotentialMonitor
    from neurorl.core.partition import shard_network
    assert len(jax.devices()) == 4, jax.devices()
    lif = {"tau_mem": 20.0, "v_th": 10.0, "v_reset": 0.0, "dt": 0.1, "t_ref": 2.0,
           "reset": "zero", "integration": "exponential", "r": 1.0}
    exc = NeuronGroup(320, "LIF", lif, name="exc", bias=11.0, v_init=(0.0, 10.0),
                      sign="excitatory")
    inh = NeuronGroup(80, "LIF", lif, name="inh", bias=11.0, v_init=(0.0, 10.0),
                      sign="inhibitory")
    odd = NeuronGroup(30, "LIF", lif, name="odd", bias=10.5)  # 4 does not divide 30
    objs = [exc, inh, odd, SpikeMonitor(exc), SpikeMonitor(inh), SpikeMonitor(odd),
            PotentialMonitor(inh)]
    for src, w, tau in ((exc, 1.3, 5.0), (inh, 4.1, 10.0)):
        for tgt in (exc, inh):
            objs.append(Connection(src, tgt, "probabilistic", p=0.1, weight=w,
                                   delay=(1, 3) if tgt is inh else 1, synapse="exponential",
                                   tau_syn=tau, storage="sparse", propagation="gather"))
    objs.append(Connection(exc, odd, "probabilistic", p=0.2, weight=0.7, delay=2))  # dense
    objs.append(Connection(odd, exc, "all_to_all", weight=0.05, delay=1))
    cn = Network(objs).compile(seed=0)
    key = jax.random.PRNGKey(0)
    _, ref = cn.run(cn.init(key), steps=600)
    ref = {k: np.asarray(v) for k, v in ref.items()}
    assert ref["spikes_exc"].sum() > 100 and ref["spikes_odd"].sum() > 0
    for d in (2, 4):
        sn = shard_network(cn, jax.devices()[:d])
        st = sn.init(key)
        assert len(st["weights"]["exc->exc"].sharding.device_set) == d
        assert st["neurons"]["exc"].v.sharding.shard_shape((320,)) == (320 // d,)
        st2, rec = sn.run(st, steps=600)
        for k in ref:
            np.testing.assert_array_equal(np.asarray(rec[k]), ref[k], err_msg=f"{d} {k}")
        _, _, rec3, counts = sn.simulate(st["weights"], cn.dynamic(st), cn.traces(st),
                                         steps=600)
        np.testing.assert_array_equal(np.asarray(rec3["spikes_exc"]), ref["spikes_exc"])
        # the one exchange per step: an all-gather of the new spikes of each split group
        ext, T = cn._check_inputs(None, True, 600)
        hlo = sn._run_jit.lower(cn.params, sn.structure, st, ext, cn._check_mods(None, T),
                                steps=T).compile().as_text()
        coll = re.findall(r"= \S+ (all-gather|all-reduce|all-to-all|collective-permute|"
                          r"reduce-scatter)\(", hlo)
        split = sum(n % d == 0 for n in (320, 80, 30))  # 30 neurons stay replicated on 4
        assert coll == ["all-gather"] * split, coll
        print("devices", d, "identical", int(ref["spikes_exc"].sum()))
""")


@pytest.mark.slow
def test_sharded_spikes_equal_single_device_on_2_and_4_host_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu", NEURORL_HOST_DEVICES="0")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    assert "devices 2 identical" in out.stdout and "devices 4 identical" in out.stdout


def test_shard_network_rejects_rules_and_runs_on_one_device():
    a, b = NeuronGroup(8, "LIF", name="a", bias=1.5), NeuronGroup(8, "LIF", name="b")
    c = Connection(a, b, weight=0.5)
    with pytest.raises(ConfigError, match="rules"):
        shard_network(Network(a, b, c, LearningRule(c, "stdp")).compile())
    cn = Network(a, b, Connection(a, b, weight=0.5)).compile()
    sn = shard_network(cn, jax.devices()[:1])
    st, _ = sn.run(sn.init(jax.random.PRNGKey(0)), steps=20)
    ref, _ = cn.run(cn.init(jax.random.PRNGKey(0)), steps=20)
    assert float(abs(st["neurons"]["b"].v - ref["neurons"]["b"].v).max()) == 0.0
