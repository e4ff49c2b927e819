"""CUBA benchmark: Vogels & Abbott (2005) network in neurorl's N-HAL and in Brian2, one process.

Benchmark 2 of Brette et al. (2007, J. Comput. Neurosci. 23:349-398, "Simulation of networks of
spiking neurons"): 4,000 LIF neurons (3,200 excitatory, 800 inhibitory), random connectivity
p = 0.02, exponential current-based synapses, 1 s of model time. Parameters exactly as in Brian2's
own example ``examples/CUBA.py`` (brian-team/brian2):

    taum = 20 ms, taue = 5 ms, taui = 10 ms, Vt = -50 mV, Vr = -60 mV, El = -49 mV,
    we = 60 * 0.27 / 10 mV = 1.62 mV, wi = -20 * 4.5 / 10 mV = -9 mV, refractory 5 ms,
    v(0) ~ U[Vr, Vt], dt = 0.1 ms (Brian2's default clock).

Mapping to neurorl (u = v - Vr, so rest/threshold/reset are 11 / 10 / 0 mV):
    du/dt = (ge + gi + (El - Vr) - u) / taum   -> LIF, integration="exponential", r = 1,
    tau_mem = 20, v_th = Vt - Vr = 10, reset="zero" (v_reset = 0), t_ref = 5, bias = El - Vr;
    ge, gi -> Connection(synapse="exponential", tau_syn = 5 / 10), weights we / wi (Dale signs).
neurorl holds the input current constant over a step (exponential-Euler) where Brian2 integrates
v, ge and gi jointly and exactly ("linear"); at dt = 0.1 ms the difference is well inside 10 %.

Run (in the separate venv that has Brian2, which needs numpy < 2.4):
    .venv-bench/bin/python benchmarks/cuba.py
Writes benchmarks/results/cuba.json and cuba.md.
"""

from __future__ import annotations

import argparse
import time

import jax

from benchmarks.common import machine, write_results
from neurorl.core import Connection, Network, NeuronGroup, SpikeMonitor

TAUM, TAUE, TAUI = 20.0, 5.0, 10.0  # ms
VT, VR, EL = -50.0, -60.0, -49.0  # mV
WE, WI = 60 * 0.27 / 10, -20 * 4.5 / 10  # mV
T_REF, DT, P = 5.0, 0.1, 0.02  # ms, ms, connection probability
N_E, N_I = 3200, 800


def build_neurorl(monitors: bool = True, seed: int = 0, propagation: str = "auto"):
    """The CUBA network through the N-HAL API (``propagation="auto"`` picks the event-driven
    path for its sparse projections; ``"gather"`` touches every synapse every step)."""
    lif = {"tau_mem": TAUM, "v_th": VT - VR, "v_reset": 0.0, "dt": DT, "t_ref": T_REF,
           "reset": "zero", "integration": "exponential", "r": 1.0}
    exc = NeuronGroup(N_E, "LIF", lif, name="exc", bias=EL - VR, v_init=(0.0, VT - VR),
                      sign="excitatory")
    inh = NeuronGroup(N_I, "LIF", lif, name="inh", bias=EL - VR, v_init=(0.0, VT - VR),
                      sign="inhibitory")
    objs = [exc, inh]
    for src, w, tau in ((exc, WE, TAUE), (inh, WI, TAUI)):
        for tgt in (exc, inh):
            objs.append(Connection(src, tgt, "probabilistic", p=P, weight=w, delay=1,
                                   synapse="exponential", tau_syn=tau,
                                   propagation=propagation))
    if monitors:
        objs += [SpikeMonitor(exc), SpikeMonitor(inh)]
    return Network(objs).compile(backend="jax", seed=seed)


def run_neurorl(duration_ms: float, copies: int, vmap_duration_ms: float) -> dict:
    steps = int(round(duration_ms / DT))
    cn = build_neurorl(monitors=True)
    state = cn.init(jax.random.PRNGKey(0))
    t0 = time.perf_counter()
    jax.block_until_ready(cn.run(state, steps=steps))  # compile + first run
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, rec = jax.block_until_ready(cn.run(state, steps=steps))
    t_run = time.perf_counter() - t0
    n_spikes = float(rec["spikes_exc"].sum() + rec["spikes_inh"].sum())
    rate = n_spikes / (N_E + N_I) / (duration_ms / 1000.0)
    out = {"rate_hz": rate, "wall_s": t_run, "compile_and_first_run_s": t_first, "steps": steps,
           "synapses": int(sum(cn.n_synapses().values())), "storage": cn.storage(),
           "propagation": cn.propagation()}

    # throughput: `copies` independent networks (own weights draws and v(0)), vmapped, no monitors;
    # the gather path: under vmap the event path's per-step branch evaluates every branch
    cv = build_neurorl(monitors=False, propagation="gather")
    states = jax.vmap(cv.init)(jax.random.split(jax.random.PRNGKey(1), copies))
    steps_b = int(round(vmap_duration_ms / DT))
    run_b = jax.jit(jax.vmap(lambda s: cv.run(s, steps=steps_b)))
    jax.block_until_ready(run_b(states))
    t0 = time.perf_counter()
    final, _ = jax.block_until_ready(run_b(states))
    t_b = time.perf_counter() - t0
    # rate of the copies from the refractory counters is not available without monitors; the
    # throughput is what this part measures
    out.update(copies=copies, vmap_duration_ms=vmap_duration_ms, vmap_wall_s=t_b,
               vmap_neuron_steps_per_s=copies * steps_b * (N_E + N_I) / t_b,
               vmap_model_s_per_wall_s=copies * vmap_duration_ms / 1000.0 / t_b,
               vmap_speedup_vs_sequential=copies * t_run * (steps_b / steps) / t_b)
    return out


def run_nest(duration_ms: float) -> dict:
    """The same compiled network (same weights draw and v(0)) in NEST through
    ``neurorl.hardware.pynn.run_nest`` (iaf_psc_exp); None if NEST is not installed."""
    try:
        import nest  # noqa: F401
    except ImportError:
        return None
    from neurorl.hardware.pynn import run_nest as nest_run

    steps = int(round(duration_ms / DT))
    cn = build_neurorl(monitors=True)
    state = cn.init(jax.random.PRNGKey(0))
    t0 = time.perf_counter()
    spikes = nest_run(cn, state, steps=steps)
    wall = time.perf_counter() - t0  # build + simulate, as NEST users time it
    n_spikes = float(sum(s.sum() for s in spikes.values()))
    import nest

    return {"rate_hz": n_spikes / (N_E + N_I) / (duration_ms / 1000.0), "wall_s": wall,
            "nest": nest.__version__, "model": "iaf_psc_exp"}


def run_brian2(duration_ms: float, target: str) -> dict:
    """Brian2's examples/CUBA.py in parameters (no plotting), with the refractory period that is
    equivalent to neurorl's and NEST's t_ref (t_ref + dt, see neurorl.core.neurons.LIFParams)."""
    import brian2 as b2
    from brian2 import ms, mV

    b2.prefs.codegen.target = target
    b2.start_scope()
    b2.seed(0)
    taum, taue, taui = TAUM * ms, TAUE * ms, TAUI * ms  # noqa: F841 (equations namespace)
    Vt, Vr, El = VT * mV, VR * mV, EL * mV  # noqa: F841 (used by the equations' namespace)
    eqs = """
    dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
    dge/dt = -ge/taue : volt
    dgi/dt = -gi/taui : volt
    """
    # neurorl's (and NEST's) t_ref blocks round(t_ref/dt) steps after the spike step: shortest
    # interval t_ref + dt. Brian2's refractory=t gives exactly t, so the equivalent is t_ref + dt.
    Pg = b2.NeuronGroup(4000, eqs, threshold="v>Vt", reset="v = Vr",
                        refractory=(T_REF + DT) * ms, method="linear")
    Pg.v = "Vr + rand() * (Vt - Vr)"
    Pg.ge = 0 * mV
    Pg.gi = 0 * mV
    we, wi = WE * mV, WI * mV  # noqa: F841
    Ce = b2.Synapses(Pg, Pg, on_pre="ge += we")
    Ci = b2.Synapses(Pg, Pg, on_pre="gi += wi")
    Ce.connect("i<3200", p=P)
    Ci.connect("i>=3200", p=P)
    s_mon = b2.SpikeMonitor(Pg)
    net = b2.Network(Pg, Ce, Ci, s_mon)
    t0 = time.perf_counter()
    net.run(duration_ms * ms)
    wall = time.perf_counter() - t0
    rate = s_mon.num_spikes / 4000 / (duration_ms / 1000.0)
    return {"rate_hz": float(rate), "wall_s": wall, "codegen_target": target,
            "synapses": int(len(Ce) + len(Ci)), "brian2": b2.__version__}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-ms", type=float, default=1000.0)
    ap.add_argument("--copies", type=int, default=16)
    ap.add_argument("--vmap-duration-ms", type=float, default=1000.0,
                    help="model time simulated by the vmapped copies (throughput part)")
    ap.add_argument("--brian-target", default="cython", choices=["cython", "numpy"])
    args = ap.parse_args()

    nr = run_neurorl(args.duration_ms, args.copies, args.vmap_duration_ms)
    try:
        br = run_brian2(args.duration_ms, args.brian_target)
    except Exception as e:  # cython toolchain missing: Brian2's pure-numpy target
        print(f"brian2 {args.brian_target} failed ({type(e).__name__}: {e}); using numpy target")
        br = run_brian2(args.duration_ms, "numpy")
    rel = abs(nr["rate_hz"] - br["rate_hz"]) / br["rate_hz"]
    ns = run_nest(args.duration_ms)
    result = {
        "benchmark": "CUBA (Vogels & Abbott 2005; Brette et al. 2007 benchmark 2)",
        "reference": "brian-team/brian2 examples/CUBA.py",
        "duration_ms": args.duration_ms, "dt_ms": DT,
        "neurorl": nr, "brian2": br,
        "rate_relative_difference": rel, "rates_agree_within_10pct": bool(rel < 0.10),
        "time_ratio_neurorl_over_brian2": nr["wall_s"] / br["wall_s"],
        "nest": ns,
        "rate_relative_difference_nest": (abs(nr["rate_hz"] - ns["rate_hz"]) / ns["rate_hz"]
                                          if ns else None),
        "time_ratio_neurorl_over_nest": nr["wall_s"] / ns["wall_s"] if ns else None,
        "machine": machine(),
    }
    print(f"firing rate: neurorl {nr['rate_hz']:.2f} Hz, Brian2 {br['rate_hz']:.2f} Hz "
          f"(relative difference {100 * rel:.1f} %)")
    print(f"wall time for {args.duration_ms:.0f} ms: neurorl {nr['wall_s']:.2f} s, Brian2 "
          f"({br['codegen_target']}) {br['wall_s']:.2f} s, "
          f"ratio {result['time_ratio_neurorl_over_brian2']:.2f}")
    print(f"{args.copies} vmapped copies x {args.vmap_duration_ms:.0f} ms: "
          f"{nr['vmap_wall_s']:.2f} s, "
          f"{nr['vmap_neuron_steps_per_s']:.3g} neuron-steps/s, "
          f"{nr['vmap_speedup_vs_sequential']:.2f}x vs sequential")
    rows = [
        {"simulator": "neurorl (jax, 1 network)", "rate_hz": nr["rate_hz"],
         "wall_s": nr["wall_s"], "synapses": nr["synapses"]},
        {"simulator": f"Brian2 {br['brian2']} ({br['codegen_target']})", "rate_hz": br["rate_hz"],
         "wall_s": br["wall_s"], "synapses": br["synapses"]},
        *([{"simulator": f"NEST {ns['nest']} (iaf_psc_exp, same weights and v(0))",
            "rate_hz": ns["rate_hz"], "wall_s": ns["wall_s"], "synapses": nr["synapses"]}]
          if ns else []),
        {"simulator": f"neurorl, {args.copies} copies vmapped", "rate_hz": "-",
         "wall_s": nr["vmap_wall_s"], "synapses": nr["synapses"] * args.copies},
    ]
    if ns:
        print(f"NEST {ns['nest']}: {ns['rate_hz']:.2f} Hz (relative difference "
              f"{100 * result['rate_relative_difference_nest']:.1f} %), {ns['wall_s']:.2f} s, "
              f"time ratio neurorl/NEST {result['time_ratio_neurorl_over_nest']:.2f}")
    nest_note = (f" NEST (same weights and v(0), iaf_psc_exp): rate difference "
                 f"{100 * result['rate_relative_difference_nest']:.1f} % (criterion 2 %), time "
                 f"ratio neurorl/NEST {result['time_ratio_neurorl_over_nest']:.2f}."
                 if ns else " NEST not installed: no NEST row.")
    notes = (f"{args.duration_ms:.0f} ms of model time at dt = {DT} ms. Brian2 refractory = "
             f"t_ref + dt = {T_REF + DT:g} ms (neurorl's t_ref = {T_REF:g} ms blocks the "
             f"round(t_ref/dt) steps after a spike step, as NEST). Rates agree within "
             f"{100 * rel:.1f} % (criterion 10 %).{nest_note} Time ratio neurorl/Brian2 = "
             f"{result['time_ratio_neurorl_over_brian2']:.2f}. neurorl compile + first run: "
             f"{nr['compile_and_first_run_s']:.1f} s. Throughput of {args.copies} vmapped copies "
             f"({args.vmap_duration_ms:.0f} ms each): "
             f"{nr['vmap_neuron_steps_per_s']:.3g} neuron-steps/s. Wall times were measured "
             "under the load average recorded with the machine below: on a shared, loaded "
             "machine they are upper bounds (the rates do not depend on load).")
    write_results("cuba", result, rows, notes)


if __name__ == "__main__":
    main()
