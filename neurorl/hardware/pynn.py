"""NEST and PyNN: run a neurorl network in the NEST simulator, directly or through PyNN.

The same N-HAL network (groups, connections with their trained weights, delays) is mapped once
(:func:`nest_spec`) and then built either with NEST's own API (:func:`run_nest`, NEST 3.10) or
with PyNN's simulator-independent API (:func:`to_pynn` / :func:`run_pynn`, PyNN 0.13 with
``pyNN.nest``; the layer SpiNNaker's and BrainScaleS's toolchains speak).

Neuron map (E_L = 0; neurorl's dimensionless voltages are read as mV, its currents as pA):

    neurorl LIF, delta synapses           -> iaf_psc_delta (PyNN IF_curr_delta)
    neurorl LIF with synapse="exponential" inputs, or CubaLIF
                                          -> iaf_psc_exp (PyNN IF_curr_exp)
    tau_m = tau_mem, V_th = v_th, V_reset = v_reset, t_ref = t_ref, V_m(0) = the state's v,
    C_m = tau_mem (1 - a) / g  (pF),  I_e = bias (pA),  a = exp(-dt/tau_mem),
    g = (1 - a) r (integration="exponential") or 1 ("direct"): the jump of v per unit current.

With these, NEST's exact propagator ``V <- P33 V + P30 I_e`` (``P30 = tau_m / C_m (1 - P33)``) is
neurorl's ``v <- a v + g I`` term for term, so ``iaf_psc_delta`` reproduces neurorl's spike
times exactly (up to float rounding) for deterministic drive. Synapses:

* delta: a spike of weight ``w`` adds ``g w`` mV (``J = g w``) in the step it arrives;
* exponential (``i <- beta i + w s``): ``J = w`` pA into ``tau_syn_ex`` (w > 0) or ``tau_syn_in``
  (w < 0) of ``iaf_psc_exp``. NEST integrates the exponential current exactly inside the step
  where neurorl holds it constant over the step, so spike times differ slightly and rates agree
  to within a few per cent (CUBA: ``benchmarks/cuba.py``);
* delays: neurorl's ``d`` steps are ``d dt`` ms, NEST's minimum delay is one step as neurorl's.

Conventions that map exactly: neurorl's zero reset at the start of the step after the spike is
NEST's reset in the spike step followed by the next update from ``V_reset`` (the spike trains are
the same; only neurorl's recorded membrane keeps the supra-threshold value in spike steps).
Refractoriness: neurorl blocks ``round(t_ref/dt)`` steps after the spike step and holds v at
v_reset, which is what NEST's ``iaf_psc_delta``/``iaf_psc_exp`` do with ``t_ref`` (shortest
inter-spike interval ``t_ref + dt``); Brian2's ``refractory=t`` gives exactly ``t``, so the Brian2
equivalent of neurorl's ``t_ref`` is ``t_ref + dt``.

Not expressible (recorded in ``spec.lossy``, refused with ``strict=True``): ``reset="subtract"``
(NEST's iaf models reset to V_reset; exported as V_reset = 0, so NEST loses the overshoot above
threshold and fires less under strong drive), ALIF threshold adaptation (dropped), a group
receiving both delta and exponential synapses, or exponential synapses of more than one time
constant per sign. Izhikevich groups are refused.

External inputs (the ``[T, n]`` currents of the input groups): neurorl's current ``x[k]`` acts in
step ``k`` (the update from ``k dt`` to ``(k + 1) dt``). A NEST current device reaches a neuron
one connection delay after its change, and the neuron applies a current it receives in a step
from the *next* step on (``iaf_psc_delta``: ``y0`` is read from the buffer after the update), so
a ``step_current_generator`` change at ``amplitude_times = t`` with delay ``dt`` acts from step
``t / dt + 1``; NEST allows changes only at ``t > 0``, i.e. from step 2. So step 0's current is
added to ``I_e``, the simulation runs one step, ``I_e`` is set to step 1's current, and one
generator per neuron supplies ``x[k] - x[1]`` at ``(k - 1) dt`` for ``k >= 2`` (PyNN's
``StepCurrentSource`` takes ``k dt`` and subtracts the delay itself; it is created before the
first step, while ``2 dt`` is still a usable change time). Spike trains are then identical for
time-varying input too (``tests/hardware/test_pynn.py``).

References:
    Gewaltig & Diesmann 2007, Scholarpedia 2(4):1430 (NEST).
    Davison et al. 2009, Front. Neuroinform. 2:11 (PyNN).
    Rotter & Diesmann 1999, Biol. Cybern. 81:381-402 (exact integration, the propagators above).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from neurorl.core.network import CompiledNetwork, Network
from neurorl.errors import ConfigError, import_optional

MODELS = ("LIF", "ALIF", "CubaLIF")


@dataclass
class NestSpec:
    """A neurorl network in NEST's units (see the module docstring for the map).

    Attributes:
        dt: resolution (ms).
        groups: name -> {"model": NEST model, "n": size, "params": {NEST name: [n] array},
            "v0": [n] initial membrane, "pynn": PyNN cell type name}.
        connections: name -> {"source", "target", "pre" [m], "post" [m], "weight" [m] (mV for
            iaf_psc_delta targets, pA for iaf_psc_exp), "delay" [m] (ms)}.
        input_groups: the groups that take external current.
        lossy: what NEST cannot express, as sentences.
    """

    dt: float
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)
    input_groups: list[str] = field(default_factory=list)
    lossy: list[str] = field(default_factory=list)


def _pygame_first() -> None:
    """Import pygame (when installed) before NEST: pygame's ``display.init()``, which gymnasium's
    renderers call, crashes the process (SIGSEGV) when pygame is first imported after NEST 3.10
    (measured here with pygame 2 and nest-simulator 3.10 from PyPI); imported first, both work."""
    import os

    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame  # noqa: F401
    except ImportError:
        pass


def _vec(x: Any, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, np.float64), (n,)).copy()


def nest_spec(
    net: CompiledNetwork | Network, state: Mapping[str, Any] | None = None, *,
    strict: bool = False,
) -> NestSpec:
    """Map a neurorl network and its weights (``state["weights"]``) to NEST models and units.

    Args:
        net: a CompiledNetwork or a Network (compiled with ``backend="jax"``).
        state: the network's state (initial or trained); default ``net.init(PRNGKey(0))``.
        strict: raise instead of recording what NEST cannot express in ``spec.lossy``.

    Returns:
        A :class:`NestSpec`.

    Raises:
        ConfigError: a model other than LIF / ALIF / CubaLIF, groups with different dt, mixed
            synapse kinds into one group, or (``strict``) any lossy feature.
    """
    cnet = net.compile() if isinstance(net, Network) else net
    if not isinstance(cnet, CompiledNetwork):
        raise ConfigError("nest_spec.net", type(net).__name__, "a Network or CompiledNetwork")
    if state is None:
        state = cnet.init(jax.random.PRNGKey(0))
    if not isinstance(state, Mapping) or "weights" not in state:
        raise ConfigError("nest_spec.state", type(state).__name__,
                          "the network's state (a dict with 'weights', from net.init or a run)")
    dt = float(cnet.dt)
    spec = NestSpec(dt=dt, input_groups=list(cnet.input_groups))
    weights, delays = cnet.dense_weights(state), cnet.delays()
    syn_taus: dict[str, dict[str, set]] = {g: {"ex": set(), "in": set()} for g in cnet.groups}
    kinds: dict[str, set] = {g: set() for g in cnet.groups}
    for cname, c in cnet.connections.items():
        kinds[c.target.name].add(c.synapse)
        if c.synapse == "exponential":
            w = weights[cname]
            if np.any(w > 0):
                syn_taus[c.target.name]["ex"].add(float(c.tau_syn))
            if np.any(w < 0):
                syn_taus[c.target.name]["in"].add(float(c.tau_syn))
    for gname, g in cnet.groups.items():
        model, p, n = g.model.name, g.params, g.n
        if model not in MODELS:
            raise ConfigError(f"nest_spec: group {gname!r}.model", model,
                              f"a model NEST's iaf family expresses: {list(MODELS)}")
        gdt = float(np.asarray(p.dt))
        if gdt != dt:
            raise ConfigError(f"nest_spec: group {gname!r}.params.dt", gdt,
                              f"the same dt as the other groups ({dt})")
        tau = _vec(p.tau_mem, n)
        a = np.exp(-dt / tau)
        gain = (1 - a) * _vec(p.r, n) if p.integration == "exponential" else np.ones(n)
        if np.any(gain <= 0):
            raise ConfigError(f"nest_spec: group {gname!r}.params.r", p.r, "r > 0")
        if p.reset == "subtract":
            spec.lossy.append(f"{gname}: reset='subtract' written as NEST's reset to V_reset = 0 "
                              "(the overshoot above threshold is lost)")
            v_reset = np.zeros(n)
        else:
            v_reset = _vec(p.v_reset, n)
        if model == "ALIF" and np.any(_vec(p.beta, n) != 0):
            spec.lossy.append(f"{gname}: ALIF threshold adaptation dropped")
        params = {"tau_m": tau, "C_m": tau * (1 - a) / gain, "E_L": np.zeros(n),
                  "V_reset": v_reset, "V_th": _vec(p.v_th, n), "t_ref": _vec(p.t_ref, n),
                  "I_e": _vec(g.bias, n)}
        exp_in = model == "CubaLIF" or "exponential" in kinds[gname]
        if exp_in:
            if model == "CubaLIF":
                ts = float(np.asarray(p.tau_syn).reshape(-1)[0])
                if np.any(_vec(p.tau_syn, n) != ts) or "exponential" in kinds[gname]:
                    raise ConfigError(f"nest_spec: group {gname!r}", "CubaLIF with per-neuron "
                                      "tau_syn or exponential synapses", "one tau_syn")
                tex = tin = ts
                spec.lossy.append(f"{gname}: CubaLIF bias enters NEST as a membrane current "
                                  "(I_e), not through the synaptic filter")
            else:
                if "delta" in kinds[gname]:
                    raise ConfigError(f"nest_spec: group {gname!r}", "delta and exponential "
                                      "synapses into one group", "one synapse kind per group")
                ex, inn = syn_taus[gname]["ex"], syn_taus[gname]["in"]
                if len(ex) > 1 or len(inn) > 1:
                    raise ConfigError(f"nest_spec: group {gname!r}", f"tau_syn {sorted(ex)} "
                                      f"(w > 0), {sorted(inn)} (w < 0)",
                                      "at most one tau_syn per weight sign")
                tex = next(iter(ex), 2.0)
                tin = next(iter(inn), tex)
            params.update(tau_syn_ex=np.full(n, tex), tau_syn_in=np.full(n, tin))
            spec.lossy.append(f"{gname}: exponential synaptic currents integrated exactly by "
                              "NEST (neurorl holds them over a step): spike times differ "
                              "slightly")
        spec.groups[gname] = {
            "model": "iaf_psc_exp" if exp_in else "iaf_psc_delta",
            "pynn": "IF_curr_exp" if exp_in else "IF_curr_delta",
            "n": n, "params": params, "gain": gain,
            "v0": np.asarray(state["neurons"][gname].v, np.float64).reshape(n),
        }
    for cname, c in cnet.connections.items():
        w, d = weights[cname], delays[cname]
        pre, post = np.nonzero(w)
        tgt = spec.groups[c.target.name]
        ww = w[pre, post].astype(np.float64)
        if tgt["model"] == "iaf_psc_delta":
            ww = ww * tgt["gain"][post]  # mV jump
        dd = np.where(d[pre, post] > 0, d[pre, post], 1).astype(np.float64) * dt
        spec.connections[cname] = {"source": c.source.name, "target": c.target.name,
                                   "pre": pre, "post": post, "weight": ww, "delay": dd}
    if strict and spec.lossy:
        raise ConfigError("nest_spec(strict=True)", spec.lossy, "only what NEST expresses")
    return spec


def _spike_matrix(times: np.ndarray, senders: np.ndarray, n: int, steps: int, dt: float):
    """NEST reports a spike in step s (0-based) at time (s + 1) dt: back to [T, n] 0/1."""
    out = np.zeros((steps, n), np.float32)
    s = np.rint(np.asarray(times) / dt).astype(np.int64) - 1
    ok = (s >= 0) & (s < steps)
    out[s[ok], np.asarray(senders, np.int64)[ok]] = 1.0
    return out


def _input_arrays(spec: NestSpec, inputs: Any, steps: int | None) -> tuple[dict, int]:
    if inputs is None:
        if steps is None:
            raise ConfigError("run_nest.steps", None, "a number of steps when inputs is None")
        return {}, int(steps)
    if not isinstance(inputs, Mapping):
        if len(spec.input_groups) != 1:
            raise ConfigError("run_nest.inputs", type(inputs).__name__,
                              f"a dict group -> [T, n] for {spec.input_groups}")
        inputs = {spec.input_groups[0]: inputs}
    arrs = {}
    for k, x in inputs.items():
        if k not in spec.input_groups:
            raise ConfigError(f"run_nest.inputs[{k!r}]", k, f"one of {spec.input_groups}")
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != spec.groups[k]["n"]:
            raise ConfigError(f"run_nest.inputs[{k!r}]", x.shape,
                              f"(T, {spec.groups[k]['n']})")
        arrs[k] = x
    t = {x.shape[0] for x in arrs.values()}
    if len(t) != 1:
        raise ConfigError("run_nest.inputs", sorted(t), "one length T for every input")
    return arrs, t.pop() if steps is None else int(steps)


def run_nest(
    net: CompiledNetwork | Network,
    state: Mapping[str, Any] | None = None,
    inputs: Any = None,
    *,
    steps: int | None = None,
    strict: bool = False,
    threads: int = 1,
    seed: int = 1,
) -> dict[str, np.ndarray]:
    """Run the network in NEST (``nest`` module, 3.x) and return spikes ``{group: [T, n]}``.

    Args:
        net, state, strict: as :func:`nest_spec`.
        inputs: external currents ``{input group: [T, n]}`` (or one array for one input group).
        steps: number of steps (default: the inputs' T).
        threads: NEST threads.
        seed: NEST's rng seed (the deterministic models here do not draw random numbers).

    Returns:
        ``{group name: float32 [T, n] 0/1 spikes}`` on neurorl's step grid.
    """
    _pygame_first()
    nest = import_optional("nest", "interop", "run_nest")

    spec = nest_spec(net, state, strict=strict)
    arrs, T = _input_arrays(spec, inputs, steps)
    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": spec.dt, "local_num_threads": threads,
                          "rng_seed": seed})
    pops, recs = {}, {}
    for gname, g in spec.groups.items():
        params = {k: v.copy() for k, v in g["params"].items()}
        if gname in arrs:  # step 0's current as part of I_e (module docstring)
            params["I_e"] = params["I_e"] + arrs[gname][0]
        pop = nest.Create(g["model"], g["n"])
        pop.set({k: v.tolist() for k, v in params.items()})
        pop.set({"V_m": g["v0"].tolist()})
        pops[gname] = pop
        rec = nest.Create("spike_recorder")
        nest.Connect(pop, rec)
        recs[gname] = rec
        if gname in arrs and T > 2:
            x = arrs[gname]
            times = spec.dt * np.arange(1, T - 1)  # a change at (k - 1) dt acts in step k
            for i in range(g["n"]):
                vals = x[2:T, i] - x[1, i]
                if not np.any(vals):
                    continue  # constant from step 1 on: I_e alone
                gen = nest.Create("step_current_generator", params={
                    "amplitude_times": times.tolist(), "amplitude_values": vals.tolist()})
                nest.Connect(gen, pop[i], syn_spec={"delay": spec.dt})
    for c in spec.connections.values():
        if len(c["pre"]) == 0:
            continue
        src, tgt = pops[c["source"]], pops[c["target"]]
        nest.Connect(np.asarray(src.tolist())[c["pre"]], np.asarray(tgt.tolist())[c["post"]],
                     conn_spec="one_to_one",
                     syn_spec={"weight": c["weight"], "delay": c["delay"]})
    nest.Simulate(min(T, 1) * spec.dt)
    if T > 1:
        for gname, x in arrs.items():  # step 1's current (no generator can reach step 1)
            pops[gname].set({"I_e": (spec.groups[gname]["params"]["I_e"] + x[1]).tolist()})
        nest.Simulate((T - 1) * spec.dt)
    out = {}
    for gname, rec in recs.items():
        ev = rec.get("events")
        first = pops[gname].tolist()[0]
        out[gname] = _spike_matrix(ev["times"], np.asarray(ev["senders"]) - first,
                                   spec.groups[gname]["n"], T, spec.dt)
    return out


def to_pynn(net: CompiledNetwork | Network, state: Mapping[str, Any] | None = None,
            sim: Any = None, *, native: bool = False, strict: bool = False) -> dict[str, Any]:
    """Build the network with PyNN's API in simulator ``sim`` (default ``pyNN.nest``).

    Call ``sim.setup(timestep=dt, min_delay=dt)`` first (:func:`run_pynn` does).

    Args:
        net, state, strict: as :func:`nest_spec`.
        sim: a PyNN simulator module (``pyNN.nest``, ``pyNN.neuron``, ``pyNN.brian2``, ...).
        native: build NEST's own ``iaf_psc_delta`` / ``iaf_psc_exp`` through
            ``sim.native_cell_type`` (pyNN.nest only; NEST units) instead of PyNN's standard
            ``IF_curr_delta`` / ``IF_curr_exp`` (nF, nA, mV, ms: ``C_m`` and currents / 1000).
            pyNN.nest runs ``IF_curr_delta`` as NEST's precise-timing ``iaf_psc_delta_ps``
            (spikes off the time grid, refractory exactly ``t_ref``, ``t_ref >= dt``), so only
            ``native=True`` reproduces neurorl's grid spikes exactly there.

    Returns:
        ``{"populations": {group: Population}, "projections": {connection: Projection},
        "spec": NestSpec}``.
    """
    if sim is None:
        _pygame_first()
        sim = import_optional("pyNN.nest", "interop", "to_pynn.sim", "pyNN.nest")
    spec = nest_spec(net, state, strict=strict)
    pops, projs = {}, {}
    for gname, g in spec.groups.items():
        p = g["params"]
        if native:
            ctype = sim.native_cell_type(g["model"])
            # PyNN 0.13 hands NEST 3.10's boolean defaults back as numpy bools, which NEST
            # refuses: leave them at NEST's own defaults
            ctype.default_parameters = {k: v for k, v in ctype.default_parameters.items()
                                        if not isinstance(v, (bool, np.bool_))}
            cell = ctype(**p)
            init = {"V_m": g["v0"]}
        else:
            kw = {"tau_m": p["tau_m"], "cm": p["C_m"] / 1000.0, "v_rest": p["E_L"],
                  "v_reset": p["V_reset"], "v_thresh": p["V_th"], "tau_refrac": p["t_ref"],
                  "i_offset": p["I_e"] / 1000.0}
            if g["pynn"] == "IF_curr_exp":
                kw.update(tau_syn_E=p["tau_syn_ex"], tau_syn_I=p["tau_syn_in"])
            cell = getattr(sim, g["pynn"])(**kw)
            init = {"v": g["v0"]}
        pop = sim.Population(g["n"], cell, label=gname, initial_values=init)
        pop.record("spikes")
        pops[gname] = pop
    for cname, c in spec.connections.items():
        if len(c["pre"]) == 0:
            continue
        # pyNN.nest multiplies every weight onto a current-based cell by 1000 (nA -> pA), the
        # jumps of delta synapses (mV) and the weights of native cell types included
        scale = 1e-3
        w = c["weight"] * scale
        for rtype, sel in (("excitatory", w >= 0), ("inhibitory", w < 0)):
            if not np.any(sel):
                continue
            # PyNN's convention for current-based synapses: inhibitory weights are negative
            conns = list(zip(c["pre"][sel].tolist(), c["post"][sel].tolist(),
                             w[sel].tolist(), c["delay"][sel].tolist(), strict=True))
            projs[f"{cname}/{rtype}"] = sim.Projection(
                pops[c["source"]], pops[c["target"]], sim.FromListConnector(
                    conns, column_names=["weight", "delay"]), receptor_type=rtype)
    return {"populations": pops, "projections": projs, "spec": spec}


def run_pynn(
    net: CompiledNetwork | Network,
    state: Mapping[str, Any] | None = None,
    inputs: Any = None,
    *,
    steps: int | None = None,
    sim: Any = None,
    native: bool | None = None,
    strict: bool = False,
) -> dict[str, np.ndarray]:
    """Export the network to PyNN (:func:`to_pynn`), run it and return ``{group: [T, n]}``.

    Args:
        net, state, strict: as :func:`nest_spec`.
        inputs: external currents ``{input group: [T, n]}`` (StepCurrentSource per neuron).
        steps: number of steps (default: the inputs' T).
        sim: a PyNN simulator module (default ``pyNN.nest``).
        native: as :func:`to_pynn`; default True for pyNN.nest, else False.
    """
    if sim is None:
        _pygame_first()
        sim = import_optional("pyNN.nest", "interop", "run_pynn.sim", "pyNN.nest")
    if native is None:
        native = sim.__name__ == "pyNN.nest"
    cnet = net.compile() if isinstance(net, Network) else net
    spec0 = nest_spec(cnet, state, strict=strict)
    arrs, T = _input_arrays(spec0, inputs, steps)
    sim.setup(timestep=spec0.dt, min_delay=spec0.dt)
    built = to_pynn(cnet, state, sim, native=native, strict=strict)
    spec, pops = built["spec"], built["populations"]

    def set_current(gname: str, x: np.ndarray) -> None:
        base = spec.groups[gname]["params"]["I_e"]
        if native:
            pops[gname].set(I_e=base + x)
        else:
            pops[gname].set(i_offset=(base + x) / 1000.0)

    for gname, x in arrs.items():  # as run_nest (module docstring): I_e for steps 0 and 1
        set_current(gname, x[0])
        if T > 2:
            times = spec.dt * np.arange(2, T)  # PyNN subtracts the delay (dt) itself
            for i in range(spec.groups[gname]["n"]):
                vals = x[2:T, i] - x[1, i]
                if not np.any(vals):
                    continue  # constant from step 1 on: I_e / i_offset alone
                src = sim.StepCurrentSource(times=times, amplitudes=vals / 1000.0)
                src.inject_into(pops[gname][i:i + 1])
    # pyNN.nest's first run() simulates one min_delay more than asked (so that NEST hands over
    # all recorded data); step 1's current must be set after exactly one step, so that padding
    # is moved to the end: one extra step whose spikes are dropped below
    if hasattr(sim, "state") and hasattr(sim.state, "running") and arrs and T > 1:
        sim.state.running = True
    sim.run(min(T, 1) * spec.dt)
    if T > 1:
        for gname, x in arrs.items():
            set_current(gname, x[1])
        sim.run(T * spec.dt)
    out = {}
    for gname, pop in pops.items():
        trains = pop.get_data("spikes", clear=True).segments[0].spiketrains
        times = np.concatenate([np.asarray(st.magnitude) for st in trains] or [np.zeros(0)])
        senders = np.concatenate([np.full(len(st), i) for i, st in enumerate(trains)]
                                 or [np.zeros(0, int)])
        out[gname] = _spike_matrix(times, senders.astype(np.int64), spec.groups[gname]["n"], T,
                                   spec.dt)
    sim.end()
    return out
