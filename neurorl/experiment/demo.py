"""``neurorl demo``: simulate a small spiking network through the N-HAL and show its activity.

An input population driven by noisy currents projects to an excitatory/inhibitory recurrent
network (Dale's law, 1 ms delays) whose input connection learns with pair-based STDP; the demo
prints firing rates and the weight change, and draws a raster plot with membrane traces.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np


def build_network():
    from neurorl.core import (
        Connection,
        LearningRule,
        Network,
        NeuronGroup,
        PotentialMonitor,
        SpikeMonitor,
    )

    inp = NeuronGroup(100, "LIF", {"tau_mem": 10.0}, name="input")
    exc = NeuronGroup(80, "LIF", {"tau_mem": 20.0, "t_ref": 2.0}, name="exc", sign="excitatory")
    inh = NeuronGroup(20, "LIF", {"tau_mem": 10.0, "t_ref": 1.0}, name="inh", sign="inhibitory")
    c_in = Connection(
        inp,
        exc,
        rule="probabilistic",
        p=0.2,
        weight={"init": "uniform", "low": 0.1, "high": 0.3},
        name="in_exc",
    )
    c_ee = Connection(exc, exc, rule="probabilistic", p=0.1, weight=0.1, delay=1, name="exc_exc")
    c_ei = Connection(exc, inh, rule="probabilistic", p=0.3, weight=0.3, name="exc_inh")
    c_ie = Connection(inh, exc, rule="probabilistic", p=0.3, weight=0.4, name="inh_exc")
    stdp = LearningRule(c_in, "stdp", {"a_plus": 0.002, "a_minus": 0.0024})
    net = Network(
        inp,
        exc,
        inh,
        c_in,
        c_ee,
        c_ei,
        c_ie,
        stdp,
        SpikeMonitor(exc, name="exc_spikes"),
        SpikeMonitor(inp, name="in_spikes"),
        PotentialMonitor(exc, name="exc_v"),
    )
    return net


def run_demo(out: str | Path = "runs/demo/raster.png", steps: int = 500, seed: int = 0) -> dict:
    """Compile, simulate ``steps`` ms, print rates and draw ``out``; returns the numbers."""
    from neurorl.experiment.plots import plot_raster

    model = build_network().compile(backend="jax")
    key_init, key_in = jax.random.split(jax.random.key(seed))
    state = model.init(key_init)
    w0 = np.asarray(model.dense_weights(state)["in_exc"])
    currents = 0.2 * jax.random.uniform(key_in, (steps, 100))  # noisy drive, ~40 Hz inputs
    state, rec = model.run(state, {"input": currents})
    w1 = np.asarray(model.dense_weights(state)["in_exc"])
    exc = np.asarray(rec["exc_spikes"])
    rate_in = float(np.asarray(rec["in_spikes"]).mean() * 1000.0)
    rate_exc = float(exc.mean() * 1000.0)
    mask = w0 != 0
    dw = float(np.abs(w1 - w0)[mask].mean()) if mask.any() else 0.0
    print(f"simulated {steps} ms of {model!r}")
    print(
        f"input rate {rate_in:.1f} Hz, excitatory rate {rate_exc:.1f} Hz, "
        f"mean |dw| (STDP on input->exc) {dw:.4f}"
    )
    path = plot_raster(out, exc, np.asarray(rec["exc_v"]))
    print(f"raster plot: {path}")
    return {"rate_in_hz": rate_in, "rate_exc_hz": rate_exc, "mean_abs_dw": dw, "plot": str(path)}
