"""NIR export and import: neurorl networks <-> the Neuromorphic Intermediate Representation.

NIR (Pedersen et al. 2024, "Neuromorphic intermediate representation: a unified instruction set for
interoperable brain-inspired computing", Nat. Commun. 15:8122) describes a network as a graph of
continuous-time nodes. The ones used here (``nir`` package, docs nnir.readthedocs.io)::

    LIF      tau dv/dt = (v_leak - v) + r I ;  z = H(v - v_threshold) ;  z = 1  =>  v <- v_reset
    CubaLIF  tau_syn dI/dt = -I + w_in S ;  tau_mem dv/dt = (v_leak - v) + r I ;  same spike/reset
    LI       tau dv/dt = (v_leak - v) + r I            (no spikes: a readout or a synapse filter)
    I, IF    dv/dt = r I                               (IF adds the LIF spike/reset)
    Affine   y = W x + b,  Linear  y = W x   (W is [n_out, n_in])
    Delay    y(t) = x(t - delay)  (elementwise)

Discretisation (``from_nir``; the same map in reverse for ``to_nir``). Time is in the graph's own
units; ``dt`` must be given in the same units (neurorl only uses the ratio dt / tau). Inputs are
held constant over a step (zero-order hold: a spike is a value 1 for one step, the convention of
snnTorch and Norse), so each linear ODE has the exact one-step solution::

    alpha = exp(-dt / tau)                                              method="exact" (default)
    alpha = 1 - dt / tau                                                method="euler"
    v_t   = alpha v_{t-1} + (1 - alpha) (v_leak + r I_t)                LIF / LI
    I_t   = beta I_{t-1} + (1 - beta) w_in S_t,  beta = exp(-dt/tau_syn) CubaLIF synapse, then v_t
                                                                        with the new I_t (operator
                                                                        splitting, as snnTorch
                                                                        ``Synaptic``)
    v_t   = v_{t-1} + dt r I_t                                          I / IF (tau = inf)
    z_t   = H(v_t - v_threshold)

This is exactly neurorl's LIF with ``integration="exponential"`` (``in_t = (1 - alpha) R I_t``,
``R = r``) and ``tau_mem = tau`` (for "euler", ``tau_mem = -dt / log(1 - dt / tau)`` so that
neurorl's ``exp(-dt / tau_mem)`` equals ``1 - dt / tau``); ``v_leak`` becomes the constant bias
current ``v_leak / r``; the CubaLIF input weight ``(1 - beta) w_in`` is folded into the incoming
weights (and Affine biases); for a CubaLIF ``v_leak`` (which bypasses the synapse in NIR) the
bias ``(1 - beta) v_leak / r`` enters the synapse and ``i_syn`` starts at its steady state
``v_leak / r``, so the membrane sees the constant ``(1 - alpha) v_leak`` from the first step
(exact up to float rounding). Neurons with ``r = 0`` or ``tau = inf`` use
``integration="direct"`` with the factor ``(1 - alpha) r`` (``dt r`` for ``tau = inf``) folded
into weights and bias instead.

Reset: NIR resets ``v <- v_reset`` in the step of the spike; neurorl's ``reset="zero"`` applies it
at the start of the next step (``v_t = alpha (v_{t-1} (1 - z_{t-1}) + v_reset z_{t-1}) + in_t``).
The spike trains are identical; only the *recorded* membrane differs in spike steps (neurorl keeps
the supra-threshold value). LI / I / CubaLI readouts are neurorl LIF groups with a threshold of
3e38 (never reached) whose membrane is recorded.

Approximations and limits:

* Timing: a neurorl synapse cannot deliver a spike in the step it is emitted (``delay >= 1``). An
  edge between two neuron nodes with a Delay of ``k dt`` becomes ``delay = k`` steps; an edge
  *without* a Delay node (which a same-step simulator such as snnTorch/Norse runs with no latency)
  becomes ``delay = 1``, so every such hop lags one step behind those simulators; spikes are
  otherwise identical. ``NIRImport.latency`` gives the lag of each output in steps. Edges from
  ``Input`` nodes have no lag (the Affine is applied to the input outside the simulator:
  ``NIRImport.input_currents``). Constant drives (``v_leak``, Affine biases) do not lag, so
  against a same-step simulator only the spike-driven part of an output is a pure time shift.
* Delays are rounded to whole steps (``round(delay / dt)``); per-element delays before and after
  an Affine become per-synapse delays ``d_pre[j] + d_post[i]``.
* Nested NIRGraphs are inlined (their Input / Output nodes become wires; a subgraph's single
  neuron node keeps the subgraph's name), e.g. snnTorch's RLeaky form.
* Not importable: Conv, pooling, Flatten, Threshold, an Output behind edge nodes, a non-spiking
  node (LI / I) feeding anything but an Output or (LI only, ``v_leak = 0``, uniform tau) a neuron
  -- the last is read as a current-based exponential synapse (``Connection(synapse=
  "exponential")``), which is also how ``to_nir`` exports such synapses.

Export (``to_nir``) writes what NIR can express and lists what it cannot in
``graph.metadata["neurorl_lossy"]``: neurorl's subtractive reset (written as NIR's reset to
``v_reset``), ``integration="direct"`` (exact: written as ``r = 1 / (1 - alpha)``), ALIF threshold
adaptation, refractory periods, a CubaLIF bias (its synaptic transient). Each node also
carries neurorl's own parameters as JSON in ``node.metadata["neurorl"]``; ``from_nir`` uses them
when present (``use_metadata=True``), so a neurorl -> NIR -> neurorl round trip is exact for
every LIF / ALIF / CubaLIF network, while other NIR tools read the standard fields.

Files (``to_nir`` / ``write_nir``, neurorl NIR version 2): times in seconds (``metadata["dt"]``,
``time_unit="s"``); time constants by default in Euler form (``tau = dt / (1 - a)`` with neurorl's
decay ``a``: the readers below step ``1 - dt/tau``); a neurorl connection of ``d`` steps is a
Linear plus, only for ``d > 1``, a Delay of ``(d - 1) dt``: every neurorl neuron-to-neuron hop
takes one step more than a same-step reader's, so a reader's output leads neurorl's by
``metadata["neurorl_latency"]`` steps (from_nir reads a Delay of ``k dt`` as ``k + 1`` steps, the
same convention); ``Input`` node ``"input"``, one ``Output`` node ``"output"`` by default;
a group with ``tau_mem = inf`` (no leak, ``integration="direct"``) is an ``IF`` node
(``r = 1 / dt``). ``recurrent="subgraph"`` writes a self-connected group as a nested graph
``input -> lif -> output``, ``lif <-> w_rec`` (snnTorch's own RLeaky form); ``prune=True`` leaves
out groups that feed no output. ``nir_version="1.0.4"`` writes for readers pinned to nir <= 1.0.4
(sinabs, rockpool): that schema has no ``v_reset`` and its LIF / CubaLIF / IF reset by
subtracting ``v_threshold`` in the spike step, so ``write_nir`` leaves the field out and sets the
file's version to "1.0.4", edges are ``Affine`` (sinabs maps no ``Linear``), ``reset="zero"`` is
lossy, a non-zero ``v_reset`` is refused (ConfigError naming the group and the value), and
neurorl's subtractive reset (Bellec's: subtracted after the next step's decay) is exact only for
IF groups. A file without ``v_reset`` means subtraction to nir 1.0.4 and reset to 0 to nir >=
1.0.5, so the default file states ``v_reset`` (1.0.4 readers refuse it: "unexpected keyword
argument 'v_reset'"); ``from_nir`` reads a 1.0.4 file's spiking nodes with subtraction.

Readers (checked with the real packages; ``tests/hardware/test_nir_interop.py``):

* snnTorch 1.0 ``import_from_nir``: zero reset in the spike step, dt fixed at 1e-4 s, no
  ``v_leak`` (bias), one threshold and one ``r dt / tau`` per layer: feed-forward LIF networks
  with ``reset="zero"`` simulate exactly (lead = latency). A recurrent layer written as a flat
  cycle is mis-imported: its ``_create_rnn_subgraph`` wires the subgraph's input into W_rec
  instead of the LIF, so nirtorch runs ``LIF(W_rec (z[t-1] + x[t]))`` (an xfail-strict case in
  ``test_nir_interop.py`` tracks it); written with ``recurrent="subgraph"`` it is left alone and
  simulates exactly (a trained recurrent e-prop agent's hidden layer, ``prune=True`` and
  ``outputs="hidden"``: snnTorch maps no LI). Its exporter writes RLeaky as a flat cycle, which
  ``from_nir`` reads as a delay-1 self-connection (exact).
* Norse 1.1 ``from_nir(graph, dt=...)``: ignores ``r`` (needs r = 1: ``integration=
  "exponential"``, ``r=1``) and ``v_reset``. Feed-forward, bias included, and recurrent layers
  in the subgraph form simulate exactly. Its exporter writes ``tau = dt / tau_mem_inv``: export
  with ``dt=1.0`` to get tau.
* Spyx 1.0 ``spyx.nir.from_nir(graph, x, dt=...)``: a chain from "input" to "output"; its LIF
  resets by subtraction and emits the spike of the previous membrane, ignoring r / v_leak /
  v_reset: neurorl's ``reset="subtract"``, ``integration="direct"`` networks (recurrent too)
  simulate exactly, one step later.
* sinabs 3.1 and rockpool 3.1 (nir <= 1.0.4, nirtorch 2.0.2): load ``write_nir(...,
  nir_version="1.0.4")`` files (``tests/hardware/test_nir_old_readers.py`` installs them with
  ``pip install --no-deps --target`` beside this environment's nir 1.0.8). sinabs
  (``sinabs.from_nir(nir.read(path), batch_size=1)``): reads LIF tau in steps and ignores r, so
  IF networks (``tau_mem = inf``, ``reset="subtract"``) simulate exactly (lead = latency); its LI
  import requires ``r = 1`` (an agent's LI readout is refused: ``prune=True``). rockpool
  (``rockpool.nn.modules.from_nir(pathlib.Path(path))``): CubaLIF only (its LIF import reads a
  ``tau_mem`` NIR's LIF does not have), every weight, tau and threshold arrives, but it takes its
  step from ``r`` (``dt = min(tau_mem / (1 + r))``) and decays the input current in its arrival
  step: another network by design.

References:
    Pedersen et al. 2024, Nat. Commun. 15:8122 (NIR; node definitions above).
    Eshraghian et al. 2023, Proc. IEEE 111(9) (snnTorch; Leaky / Synaptic discrete forms).
    Rotter & Diesmann 1999, Biol. Cybern. 81:381-402 (exact integration of linear ODEs).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import nir
import numpy as np

from neurorl.core.monitors import PotentialMonitor, SpikeMonitor
from neurorl.core.network import CompiledNetwork, Connection, Network, NeuronGroup
from neurorl.errors import ConfigError, ShapeError, closest

Array = jax.Array

SPIKING_NODES = ("LIF", "CubaLIF", "IF")
READOUT_NODES = ("LI", "CubaLI", "I")
EDGE_NODES = ("Affine", "Linear", "Scale", "Delay")
SUPPORTED_NODES = ("Input", "Output", *SPIKING_NODES, *READOUT_NODES, *EDGE_NODES)
EXPORTABLE_MODELS = ("LIF", "ALIF", "CubaLIF")  # plus "LI" readouts and "Input" relays
METHODS = ("euler", "exact")
RECURRENT_FORMS = ("edges", "subgraph")
OLD_NIR_VERSION = "1.0.4"  # the last nir release without v_reset (sinabs 3.1, rockpool 3.1 pin it)
TIME_UNITS = {"s": 1e3, "ms": 1.0}  # ms per unit (files before neurorl's NIR version 2: ms)
MS = 1e-3  # neurorl times are ms, NIR files seconds
_NO_SPIKE = 3e38  # threshold of non-spiking readouts: finite (no inf - inf), never reached
_PARAM_FIELDS = ("tau_mem", "v_th", "v_reset", "r", "dt", "t_ref", "tau_adapt", "beta", "tau_syn")
_STATIC_FIELDS = ("reset", "integration", "surrogate")


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def _vec(x: Any, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, np.float32), (n,)).astype(np.float32)


def _f64(x: Any) -> np.ndarray:
    return np.asarray(x, np.float64).reshape(-1)


def _jsonable(x: Any) -> Any:
    a = np.asarray(x)
    return a.tolist() if a.ndim else float(a)


def _kind(node: Any) -> str:
    return type(node).__name__


def _text(x: Any) -> str:
    """A metadata value as str (nir.read returns HDF5 strings as bytes or 0-d arrays)."""
    x = np.asarray(x).item() if isinstance(x, np.ndarray) else x
    return x.decode("utf8") if isinstance(x, bytes) else str(x)


# ----------------------------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------------------------


def _group_node(g: NeuronGroup, dt: float, method: str, lossy: list[str],
                old_schema: bool = False) -> nir.NIRNode:
    """One neurorl group -> a NIR LIF / CubaLIF node (per-neuron arrays, time in seconds);
    ``old_schema``: the nir <= 1.0.4 meaning (reset by subtracting v_threshold, no v_reset)."""
    name, model, p, n = g.name, g.model.name, g.params, g.n
    if model == "LI":  # leaky readout v_t = kappa v + I (+ b): NIR's LI in the same Euler form
        kappa = np.exp(-dt / _vec(p.tau_mem, n).astype(np.float64))
        r = 1.0 / (1.0 - kappa)
        md = {"neurorl": json.dumps({"model": "LI", "params": {"tau_mem": _jsonable(p.tau_mem),
                                                               "dt": _jsonable(p.dt)},
                                     "bias": _jsonable(g.bias)})}
        return nir.LI(tau=_nir_tau(kappa, dt, method) * MS, r=r,
                      v_leak=r * _vec(g.bias, n).astype(np.float64), metadata=md)
    if model not in EXPORTABLE_MODELS:
        raise ConfigError(f"to_nir: group {name!r}.model", model,
                          f"a model NIR can express: {list(EXPORTABLE_MODELS)}")
    tau = _vec(p.tau_mem, n).astype(np.float64)
    alpha = np.exp(-dt / tau)
    if p.integration == "exponential":
        r = _vec(p.r, n).astype(np.float64)
    else:  # direct: v_t = alpha v + I  ==  v_t = alpha v + (1 - alpha) r I with r = 1/(1 - alpha)
        with np.errstate(divide="ignore"):  # alpha = 1 (tau_mem = inf) is written as an IF node
            r = 1.0 / (1.0 - alpha)
    bias = _vec(g.bias, n).astype(np.float64)
    leaky = bool(np.any(alpha < 1))
    if old_schema:  # nir <= 1.0.4: z = 1 => v <- v - v_threshold; there is no v_reset field
        v_reset = np.zeros(n)  # placeholder of nir >= 1.0.5's node; write_nir leaves it out
        if p.reset == "subtract" and leaky:
            lossy.append(f"{name}: reset='subtract' subtracts v_th after the next step's decay "
                         "(v_t = alpha v + I - v_th z_{t-1}, Bellec's form); nir 1.0.4's reset "
                         "subtracts in the spike step, so its readers (sinabs, rockpool) decay "
                         "the subtraction too (v_t = alpha (v - v_th z_{t-1}) + I) and fire more;"
                         " exact only without leak (tau_mem = inf: an IF node)")
        if p.reset != "subtract":
            vr = _vec(p.v_reset, n)
            if np.any(vr != 0):
                raise ConfigError(
                    f"to_nir(nir_version='1.0.4'): group {name!r}.params.v_reset",
                    sorted(set(vr.tolist()))[:4], "0 (nir <= 1.0.4 has no v_reset field: its "
                    "LIF / CubaLIF / IF reset by subtracting v_threshold); set v_reset=0 or "
                    "reset='subtract', or export without nir_version for readers of nir >= "
                    "1.0.5 (snnTorch, Norse, Spyx), which read v_reset")
            lossy.append(f"{name}: reset='zero' (v <- 0 after a spike) written as nir 1.0.4's "
                         "reset by subtraction (v <- v - v_threshold, the only reset of that "
                         "schema; sinabs and rockpool do that): they keep the overshoot "
                         "v - v_threshold and fire more")
    elif p.reset == "subtract":
        lossy.append(f"{name}: reset='subtract' (v -= v_th at the start of the next step) written "
                     "as NIR's reset to v_reset = 0; readers that reset by subtraction (Spyx's "
                     "LIF) reproduce it, readers that follow NIR (snnTorch, Norse) fire more")
        v_reset = np.zeros(n)
    else:
        v_reset = _vec(p.v_reset, n).astype(np.float64)
    if not leaky and model == "LIF" and p.integration == "direct":
        # tau_mem = inf: v_t = v + I is NIR's IF (dv/dt = r I, Euler step v + dt r I, r = 1/dt)
        if np.any(bias != 0):
            raise ConfigError(f"to_nir: group {name!r}.bias", _jsonable(g.bias), "0 for a "
                              "group without leak (tau_mem = inf is NIR's IF node, which has no "
                              "v_leak); give it a finite tau_mem to keep the bias")
        node_cls, kw = nir.IF, {"r": np.full(n, 1.0 / (dt * MS))}
    elif not np.all(alpha < 1):
        raise ConfigError(f"to_nir: group {name!r}.params.tau_mem", _jsonable(p.tau_mem),
                          "finite time constants (or all infinite with integration='direct' "
                          f"and model 'LIF': NIR's IF node); got model {model!r}, integration "
                          f"{p.integration!r}")
    else:
        node_cls, kw = None, {}
    if model == "ALIF" and np.any(_vec(p.beta, n) != 0):
        lossy.append(f"{name}: ALIF threshold adaptation (beta, tau_adapt) dropped (no NIR node)")
    n_ref = np.rint(_vec(p.t_ref, n) / dt)
    if np.any(n_ref > 0):
        lossy.append(f"{name}: refractory period dropped (NIR has no field for it): neurorl blocks "
                     f"round(t_ref/dt) = {sorted(set(n_ref.astype(int).tolist()))} steps after "
                     "each spike step (shortest inter-spike interval t_ref + dt, as NEST's "
                     "iaf_psc_delta); NIR readers can fire again in the next step")
    meta = {
        "model": model,
        "params": {f: _jsonable(getattr(p, f)) for f in _PARAM_FIELDS},
        "static": {f: getattr(p, f) for f in _STATIC_FIELDS},
        "surrogate_hyper": [list(h) for h in p.surrogate_hyper],
        "bias": _jsonable(g.bias),
        "v_init": g.v_init if not isinstance(g.v_init, tuple) else list(g.v_init),
        "sign": g.sign,
        "input": g.input,
    }
    md = {"neurorl": json.dumps(meta)}
    v_th = _vec(p.v_th, n).astype(np.float64)
    if node_cls is nir.IF:
        return nir.IF(v_threshold=v_th, v_reset=v_reset, metadata=md, **kw)
    tau_s = _nir_tau(alpha, dt, method) * MS
    if model == "CubaLIF":
        beta = np.exp(-dt / _vec(p.tau_syn, n).astype(np.float64))
        w_in = 1.0 / (1.0 - beta)  # I_t = beta I + (1 - beta) w_in S  ==  beta I + S
        if np.any(bias != 0):
            lossy.append(f"{name}: CubaLIF bias written as v_leak = r b / (1 - beta) (steady "
                         "state; the synaptic transient from i_syn = 0 is not represented)")
        return nir.CubaLIF(tau_syn=_nir_tau(beta, dt, method) * MS, tau_mem=tau_s, r=r,
                           v_leak=r * bias * w_in, v_threshold=v_th, v_reset=v_reset, w_in=w_in,
                           metadata=md)
    # v_t = alpha v + (1 - alpha) r (I + b): the bias is v_leak = r b
    return nir.LIF(tau=tau_s, r=r, v_leak=r * bias, v_threshold=v_th, v_reset=v_reset,
                   metadata=md)


def _nir_tau(decay: np.ndarray, dt: float, method: str) -> np.ndarray:
    """The NIR time constant (in dt's units) whose ``method`` step has neurorl's decay factor."""
    if method == "exact":
        return -dt / np.log(decay)
    return dt / (1.0 - decay)  # euler: 1 - dt / tau = decay


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name.replace("->", "_to_"))


def to_nir(
    net: CompiledNetwork | Network,
    state: Mapping[str, Any] | None = None,
    *,
    outputs: str | list[str] | None = None,
    method: str = "euler",
    strict: bool = False,
    nir_version: str | None = None,
    recurrent: str = "edges",
    prune: bool = False,
) -> nir.NIRGraph:
    """Export a neurorl network (its structure and the weights in ``state``) as a NIR graph.

    Groups become ``LIF`` / ``CubaLIF`` nodes with per-neuron parameter arrays (ALIF as LIF);
    connections become ``Linear`` nodes (``weight [n_post, n_pre]``, the transpose of neurorl's
    pre-major matrix), followed, for a delay of ``d > 1`` steps, by a ``Delay`` node of
    ``(d - 1) dt`` (the one step every neurorl hop takes is the step a same-step simulator such as
    snnTorch or Norse adds nowhere: module docstring, "Timing"; per-synapse delays are split into
    one Linear (+ Delay) per distinct value) and, for ``synapse="exponential"``, an ``LI`` node
    (``tau = tau_syn``, ``r = 1 / (1 - beta)``, ``v_leak = 0``: ``i_t = beta i_{t-1} + W s``).
    Times are in seconds (the NIR standard's unit; neurorl's are ms). The input group gets the
    ``Input`` node ``"input"`` (several: ``"input_<group>"``), the output group the ``Output``
    node ``"output"`` (several: ``"output_<group>"``).

    Args:
        net: a CompiledNetwork, or a Network (compiled with ``backend="jax"``).
        state: a state from ``net.init(key)`` or after training (the weights are read from
            ``state["weights"]``); default ``net.init(PRNGKey(0))``.
        outputs: the group(s) that get an Output node. Default: the one group without outgoing
            connections (the last such group in network order if there are several; the last
            group if every group has outgoing connections).
        method: how time constants are written. ``"euler"`` (default): ``tau = dt / (1 - a)``
            where ``a = exp(-dt / tau_mem)`` is neurorl's decay, so that readers that step NIR's
            ODE with forward Euler at the same dt (snnTorch, Norse, Spyx, sinabs, rockpool)
            simulate neurorl's network exactly. ``"exact"``: ``tau = tau_mem`` (for readers that
            integrate the ODE exactly with inputs held over a step, e.g. NEST).
        strict: raise a ConfigError instead of recording features NIR cannot express (subtractive
            reset, adaptation, refractory period, ...) in ``metadata["neurorl_lossy"]``.
        nir_version: the NIR schema the readers speak. None (default): the installed ``nir``'s
            (>= 1.0.5: spiking nodes reset to ``v_reset``; snnTorch, Norse, Spyx). ``"1.0.4"``
            (any ``"1.0.x"`` with x <= 4): the schema of readers pinned to nir <= 1.0.4 (sinabs,
            rockpool): LIF / CubaLIF reset by subtracting ``v_threshold`` and have no
            ``v_reset`` field, so ``reset="subtract"`` is exact there and ``reset="zero"`` is
            lossy; connections are ``Affine`` nodes with a zero bias (sinabs maps no
            ``Linear``). Write such a graph with :func:`write_nir` (same argument), which leaves
            the field out of the file.
        recurrent: how a group's connection to itself (delay 1, delta synapse) is written.
            ``"edges"`` (default): a Linear node in a cycle with the group's node (Spyx, Norse's
            and neurorl's readers). ``"subgraph"``: the group's node becomes a nested NIRGraph
            ``input -> lif -> output`` with ``lif -> w_rec -> lif``, the form snnTorch's own
            ``export_to_nir`` writes for ``RLeaky`` / ``RSynaptic``, which snnTorch 1.0 imports
            and simulates as neurorl does (its import re-wires a flat cycle wrongly: module
            docstring, "Readers").
        prune: leave out the groups (and their connections) from which no output group can be
            reached, e.g. an agent's LI readout when its hidden spikes are the output, for a
            reader without LI nodes (snnTorch). Default False: the whole network.

    Returns:
        A ``nir.NIRGraph``; ``graph.metadata``: ``dt`` (s), ``time_unit="s"``, ``neurorl_method``,
        ``neurorl_lossy`` (JSON list of what the file does not say), ``neurorl_latency`` (JSON
        {output node: steps the output of a same-step reader leads neurorl's, or null}).

    Raises:
        ConfigError: a model NIR cannot express (Izhikevich), groups with different dt, an
            unknown output group or method, or (``strict``) any lossy feature; with
            ``nir_version="1.0.4"``, a non-zero ``v_reset`` (that schema has no field for it).
    """
    old = _old_schema(nir_version, "to_nir.nir_version")
    cnet = net.compile() if isinstance(net, Network) else net
    if not isinstance(cnet, CompiledNetwork):
        raise ConfigError("to_nir.net", type(net).__name__, "a Network or CompiledNetwork")
    if method not in METHODS:
        raise ConfigError("to_nir.method", method, f"one of {list(METHODS)}",
                          closest(str(method), METHODS))
    if state is None:
        state = cnet.init(jax.random.PRNGKey(0))
    if not isinstance(state, Mapping) or "weights" not in state:
        raise ConfigError("to_nir.state", type(state).__name__,
                          "the network's state (a dict with 'weights', from net.init or a run)")
    dt = float(cnet.dt)
    for gname, g in cnet.groups.items():
        gdt = float(np.asarray(getattr(g.params, "dt", dt)))
        if gdt != dt:
            raise ConfigError(f"to_nir: group {gname!r}.params.dt", gdt,
                              f"the same dt as the other groups ({dt})")
    has_out = {c.source.name for c in cnet.connections.values()}
    if outputs is None:
        sinks = [k for k in cnet.groups if k not in has_out]
        outputs = [sinks[-1] if sinks else list(cnet.groups)[-1]]
    elif isinstance(outputs, str):
        outputs = [outputs]
    for o in outputs:
        if o not in cnet.groups:
            raise ConfigError("to_nir.outputs", o, f"group names: {list(cnet.groups)}",
                              closest(str(o), list(cnet.groups)))
    keep = set(outputs)
    if prune:  # groups from which an output group is reachable
        for _ in range(len(cnet.groups)):
            keep |= {c.source.name for c in cnet.connections.values() if c.target.name in keep}
    else:
        keep = set(cnet.groups)
    lossy: list[str] = []
    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    # the graph's ends are "input" / "output": a group of that name gets another node name
    gnode = {k: _safe(k) if _safe(k) not in ("input", "output") else f"{_safe(k)}_group"
             for k in cnet.groups}
    relays = [k for k, g in cnet.groups.items() if g.model.name == "Input" and k in keep]
    n_in = len({k for k in cnet.input_groups if k in keep} | set(relays))
    for gname in relays:  # an Input relay group IS the graph's input: no neuron node
        gnode[gname] = "input" if n_in == 1 else f"input_{_safe(gname)}"
        nodes[gnode[gname]] = nir.Input(input_type=np.array([cnet.groups[gname].n]))
    for gname, g in cnet.groups.items():
        if gname not in relays and gname in keep:
            nodes[gnode[gname]] = _group_node(g, dt, method, lossy, old)
    weights, delays = cnet.dense_weights(state), cnet.delays()
    for cname, c in cnet.connections.items():
        if c.source.name not in keep or c.target.name not in keep:
            continue
        w, d = weights[cname], delays[cname]
        values = sorted(int(k) for k in np.unique(d[d > 0])) or [1]
        base = _safe(cname)
        if base in ("input", "output") or base in gnode.values():
            base = f"{base}_linear"  # a connection named like a group or the graph's ends
        md = {"neurorl": json.dumps({"connection": cname, "synapse": c.synapse,
                                     "tau_syn": c.tau_syn, "sign": c.sign})}
        for k in values:
            part = base if len(values) == 1 else f"{base}_d{k}"
            wk = np.where(d == k, w, 0.0) if len(values) > 1 else w
            wk = np.asarray(wk, np.float32).T.copy()
            nodes[part] = (nir.Affine(weight=wk, bias=np.zeros(len(wk), np.float32), metadata=md)
                           if old else nir.Linear(weight=wk, metadata=md))
            edges.append((gnode[c.source.name], part))
            last = part
            if k > 1:
                nodes[f"{part}_delay"] = nir.Delay(delay=np.full(c.target.n, (k - 1) * dt * MS))
                edges.append((last, f"{part}_delay"))
                last = f"{part}_delay"
            if c.synapse == "exponential":
                beta = math.exp(-dt / float(c.tau_syn))
                n = c.target.n
                nodes[f"{part}_syn"] = nir.LI(
                    tau=np.full(n, float(_nir_tau(np.array(beta), dt, method)) * MS),
                    r=np.full(n, 1.0 / (1.0 - beta)), v_leak=np.zeros(n), metadata=md)
                edges.append((last, f"{part}_syn"))
                last = f"{part}_syn"
            edges.append((last, gnode[c.target.name]))
    for gname in cnet.input_groups:
        if gname in relays or gname not in keep:
            continue
        name = "input" if n_in == 1 else f"input_{gnode[gname]}"
        nodes[name] = nir.Input(input_type=np.array([cnet.groups[gname].n]))
        edges.append((name, gnode[gname]))
    out_names = {}
    for gname in dict.fromkeys(outputs):
        name = "output" if len(outputs) == 1 else f"output_{gnode[gname]}"
        nodes[name] = nir.Output(output_type=np.array([cnet.groups[gname].n]))
        edges.append((gnode[gname], name))
        out_names[name] = gname
    if recurrent not in RECURRENT_FORMS:
        raise ConfigError("to_nir.recurrent", recurrent, f"one of {list(RECURRENT_FORMS)}",
                          closest(str(recurrent), RECURRENT_FORMS))
    if recurrent == "subgraph":
        nodes, edges = _recurrent_subgraphs(nodes, edges, set(gnode.values()))
    if strict and lossy:
        raise ConfigError("to_nir(strict=True)", lossy, "only features NIR can express; "
                          "use strict=False to export them approximately")
    latency = _export_latency(cnet, out_names)
    meta = {"dt": dt * MS, "time_unit": "s", "neurorl_method": method,
            "neurorl_lossy": json.dumps(lossy), "neurorl_latency": json.dumps(latency),
            "neurorl": json.dumps({"version": 2, "backend": cnet.backend})}
    if old:
        meta["nir_version"] = OLD_NIR_VERSION
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def _recurrent_subgraphs(nodes: dict[str, nir.NIRNode], edges: list[tuple[str, str]],
                         neurons: set[str]) -> tuple[dict, list]:
    """Wrap each neuron node ``g`` in a cycle ``g -> L -> g`` with a Linear / Affine ``L`` (a
    self-connection of one step) into a nested NIRGraph ``input -> lif -> output``,
    ``lif -> w_rec -> lif`` under the name ``g`` (snnTorch's RLeaky / RSynaptic form)."""
    nodes, edges = dict(nodes), list(edges)
    for g in sorted(neurons & set(nodes)):
        loops = [b for a, b in edges if a == g and b != g and (b, g) in edges
                 and _kind(nodes[b]) in ("Linear", "Affine")
                 and sorted(e for e in edges if b in e) == sorted([(g, b), (b, g)])]
        if len(loops) != 1:
            continue
        w, n = loops[0], int(np.prod(nodes[g].output_type["output"]))
        sub = nir.NIRGraph(
            nodes={"input": nir.Input(input_type=np.array([n])), "lif": nodes[g],
                   "w_rec": nodes.pop(w), "output": nir.Output(output_type=np.array([n]))},
            edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
            metadata={"neurorl_recurrent": w})
        nodes[g] = sub
        edges = [e for e in edges if w not in e]
    return nodes, edges


def _flatten(graph: nir.NIRGraph) -> nir.NIRGraph:
    """Inline nested NIRGraphs (their Input / Output nodes become plain wires): a subgraph's one
    neuron node keeps the subgraph's name, its other nodes are ``<subgraph>_<node>``."""
    if not any(isinstance(v, nir.NIRGraph) for v in graph.nodes.values()):
        return graph
    nodes: dict[str, Any] = {}
    edges = list(graph.edges)
    for name, node in graph.nodes.items():
        if not isinstance(node, nir.NIRGraph):
            nodes[name] = node
            continue
        sub = _flatten(node)
        cells = [k for k, v in sub.nodes.items() if _kind(v) in SPIKING_NODES + READOUT_NODES]
        rename = {k: (name if len(cells) == 1 and k == cells[0] else f"{name}_{k}")
                  for k in sub.nodes}
        ins = {k for k, v in sub.nodes.items() if isinstance(v, nir.Input)}
        outs = {k for k, v in sub.nodes.items() if isinstance(v, nir.Output)}
        for k, v in sub.nodes.items():
            if k not in ins | outs:
                nodes[rename[k]] = v
        inner = [(rename[a], rename[b]) for a, b in sub.edges if a not in ins and b not in outs]
        entry = [rename[b] for a, b in sub.edges if a in ins]
        exits = [rename[a] for a, b in sub.edges if b in outs]
        ends = {name, *(f"{name}.{k}" for k in ins | outs)}
        rewired = []
        for a, b in edges:
            srcs = exits if a in ends else [a]
            dsts = entry if b in ends else [b]
            rewired += [(x, y) for x in srcs for y in dsts]
        edges = rewired + inner
    return nir.NIRGraph(nodes=nodes, edges=list(dict.fromkeys(edges)),
                        metadata=graph.metadata, type_check=False)


def _old_schema(nir_version: Any, field: str) -> bool:
    """True for a nir release <= 1.0.4 (no ``v_reset``; reset by subtraction)."""
    if nir_version is None:
        return False
    parts = str(nir_version).split(".")
    if (isinstance(nir_version, str) and len(parts) == 3 and all(p.isdigit() for p in parts)
            and parts[:2] == ["1", "0"]):
        return int(parts[2]) <= 4
    raise ConfigError(field, nir_version, "None (the installed nir's schema) or a nir 1.0.x "
                      f"release such as {OLD_NIR_VERSION!r} (sinabs, rockpool) or '1.0.8'")


def _export_latency(cnet: CompiledNetwork, out_names: dict[str, str]) -> dict[str, int | None]:
    """Steps by which each output of a same-step reader leads neurorl's (None if not a shift)."""
    ff = {n for g in cnet._ff_in.values() for n in g}  # delay-0 connections
    links = [(c.source.name, c.target.name) for n, c in cnet.connections.items() if n not in ff]
    same_step = [(c.source.name, c.target.name) for n, c in cnet.connections.items() if n in ff]
    lag = _hop_lags(list(cnet.groups), links, list(cnet.input_groups), same_step)
    return {o: lag.get(g) for o, g in out_names.items()}


def _hop_lags(groups: list[str], links: list[tuple[str, str]],
              sources: list[str], same_step: list[tuple[str, str]] = ()
              ) -> dict[str, int | None]:
    """Lag of each group behind a same-step simulator: +1 per forward neuron-to-neuron hop, 0 for
    a back edge (a same-step simulator also feeds those from the previous step); None where two
    paths disagree (then the outputs are no time shift of each other)."""
    steps = {**{(a, b): 1 for a, b in links}, **{(a, b): 0 for a, b in same_step}}
    links = list(steps)  # a delay-0 hop (same step in neurorl too) adds no lag
    succ: dict[str, list[str]] = {g: [] for g in groups}
    for a, b in links:
        succ[a].append(b)
    back: set[tuple[str, str]] = set()
    seen: set[str] = set()
    stack: list[str] = []

    def dfs(u: str) -> None:
        seen.add(u)
        stack.append(u)
        for v in succ[u]:
            if v in stack:
                back.add((u, v))
            elif v not in seen:
                dfs(v)
        stack.pop()

    for s in [*sources, *groups]:
        if s not in seen:
            dfs(s)
    lag: dict[str, int | None] = {s: 0 for s in sources}
    bad: set[str] = set()
    for _ in range(len(groups) + 1):
        changed = False
        for a, b in links:
            if a not in lag:
                continue
            v = None if lag[a] is None else lag[a] + (0 if (a, b) in back else steps[(a, b)])
            if b not in lag:
                lag[b] = v
                changed = True
            elif lag[b] != v and b not in bad:
                bad.add(b)
                lag[b] = None
                changed = True
        if not changed:
            break
    return lag


def write_nir(
    path: str | os.PathLike,
    net: CompiledNetwork | Network,
    state: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> nir.NIRGraph:
    """``to_nir(net, state, **kwargs)`` then ``nir.write(path, graph)`` (HDF5). Returns the graph.

    With ``nir_version="1.0.4"`` the file is in the layout nir 1.0.4's ``nir.read`` accepts
    (sinabs 3.1 and rockpool 3.1 pin nir <= 1.0.4): no ``v_reset`` dataset in LIF / CubaLIF /
    IF nodes (that reader passes every dataset to the node's constructor, and 1.0.4's nodes
    refuse the keyword) and the file's ``version`` says ``"1.0.4"``; ``from_nir`` reads such a
    file's spiking nodes with 1.0.4's reset by subtraction. The default file states ``v_reset``
    (nir >= 1.0.5), which 1.0.4 readers refuse ("unexpected keyword argument 'v_reset'").

    Raises:
        ConfigError: as ``to_nir``.
    """
    graph = to_nir(net, state, **kwargs)
    nir.write(path, graph)
    if _old_schema(kwargs.get("nir_version"), "write_nir.nir_version"):
        _old_layout(path)
    return graph


def _old_layout(path: str | os.PathLike) -> None:
    """Rewrite a file from ``nir.write`` (nir >= 1.0.5) in nir 1.0.4's layout: its nodes'
    datasets are exactly 1.0.4's constructor fields (no ``v_reset``), version "1.0.4"."""
    import h5py

    def strip(group: Any) -> None:
        for item in group["nodes"].values():
            kind = _text(item["type"][()])
            if kind in SPIKING_NODES and "v_reset" in item:
                del item["v_reset"]
            if kind == "NIRGraph":
                strip(item)

    with h5py.File(path, "r+") as f:
        strip(f["node"])
        if "version" in f:
            del f["version"]
        f.create_dataset("version", data=OLD_NIR_VERSION)


def _file_version(path: str | os.PathLike) -> str | None:
    """The nir release that wrote a file (its ``version`` dataset), or None."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return _text(f["version"][()]) if "version" in f else None
    except OSError:
        return None


# ----------------------------------------------------------------------------------------------
# import
# ----------------------------------------------------------------------------------------------


class _Path(NamedTuple):
    """A chain of edge nodes between two population nodes: ``y = W x + b`` with delays (steps)."""

    src: str
    tgt: str
    w: np.ndarray  # [n_tgt, n_src]
    b: np.ndarray  # [n_tgt]
    d_pre: np.ndarray  # [n_src] steps
    d_post: np.ndarray  # [n_tgt] steps
    syn: str | None  # name of an LI node used as an exponential synapse
    linear: str | None  # name of the last Linear/Affine (for its neurorl metadata)


class NIRImport(NamedTuple):
    """A NIR graph as a neurorl network.

    Attributes:
        net: the CompiledNetwork (groups named after the NIR neuron nodes).
        state: its initial state (weights from the graph; CubaLIF ``i_syn`` at its v_leak steady
            state).
        inputs: Input node name -> size.
        outputs: Output node name -> "spikes" (a spiking node, records [T, n] 0/1) or "v" (an LI / I
            readout, records the membrane).
        latency: Output node name -> steps this output lags a same-step simulator (one per hop
            without a Delay node; None if paths disagree or a cycle makes it undefined).
        input_paths: internal: how each Input node drives its groups (weights already scaled).
    """

    net: CompiledNetwork
    state: dict
    inputs: dict
    outputs: dict
    latency: dict
    input_paths: tuple

    def input_currents(self, inputs: Any) -> dict[str, Array]:
        """External currents ``{group: [T, n]}`` from graph inputs ``{input_node: [T, n_in]}`` (or
        one array when the graph has a single Input): the Affine/Linear/Delay chains after the
        Input nodes, applied outside the simulator so that they add no step of latency."""
        if not isinstance(inputs, Mapping):
            if len(self.inputs) != 1:
                raise ConfigError("NIRImport.inputs", type(inputs).__name__,
                                  f"a dict Input-node -> [T, n] for {list(self.inputs)}")
            inputs = {next(iter(self.inputs)): inputs}
        T = None
        for k, x in inputs.items():
            if k not in self.inputs:
                raise ConfigError(f"NIRImport.inputs[{k!r}]", k, f"one of {list(self.inputs)}",
                                  closest(str(k), list(self.inputs)))
            shp = tuple(np.shape(x))
            if len(shp) != 2 or shp[1] != self.inputs[k] or (T is not None and shp[0] != T):
                raise ShapeError(f"NIRImport.inputs[{k!r}]", f"(T, {self.inputs[k]})", shp)
            T = shp[0]
        out: dict[str, Array] = {}
        for inp, grp, w, d_pre, d_post in self.input_paths:
            if inp not in inputs:
                continue
            x = _shift(jnp.asarray(inputs[inp], jnp.float32), d_pre)
            y = _shift(x @ jnp.asarray(w.T), d_post)
            out[grp] = out[grp] + y if grp in out else y
        return out

    def run(
        self, inputs: Any = None, *, steps: int | None = None, state: Any = None
    ) -> tuple[Any, dict[str, Array]]:
        """Run the imported network; returns ``(state, {output_node: [T, n]})``."""
        state = self.state if state is None else state
        ext = self.input_currents(inputs) if inputs is not None else None
        state, rec = self.net.run(state, ext, steps=steps)
        return state, {o: rec[o] for o in self.outputs}


def _shift(x: Array, d: np.ndarray) -> Array:
    """Delay column j of ``x [T, n]`` by ``d[j]`` steps (zeros before)."""
    d = np.asarray(d, np.int64)
    if not d.any():
        return x
    T = x.shape[0]
    idx = np.arange(T)[:, None] - d[None, :]
    g = jnp.take_along_axis(x, jnp.asarray(np.clip(idx, 0, None)), axis=0)
    return jnp.where(jnp.asarray(idx >= 0), g, 0.0)


def _meta(node: Any) -> dict | None:
    m = getattr(node, "metadata", None) or {}
    s = m.get("neurorl")
    if s is None:
        return None
    if isinstance(s, bytes):
        s = s.decode("utf8")
    try:
        return json.loads(str(s))
    except json.JSONDecodeError:
        return None


def _alpha(tau: np.ndarray, dt: float, method: str, field: str) -> tuple[np.ndarray, np.ndarray]:
    """(alpha of the NIR ODE under ``method``, neurorl tau_mem giving that alpha)."""
    if np.any(~(tau > 0)):
        raise ConfigError(field, tau.tolist(), "time constants > 0 (inf for no leak)")
    with np.errstate(divide="ignore"):
        if method == "exact":
            return np.exp(-dt / tau), tau
        if np.any(tau <= dt):
            raise ConfigError(field, tau.tolist(), f"time constants > dt = {dt} for method='euler'"
                              " (alpha = 1 - dt/tau must be in (0, 1])")
        alpha = 1.0 - dt / tau
        return alpha, np.where(np.isinf(tau), np.inf, -dt / np.log(alpha))


def _is_release(v: str) -> bool:
    parts = v.split(".")
    return len(parts) == 3 and all(p.isdigit() for p in parts) and parts[:2] == ["1", "0"]


def _generic_group(name: str, node: Any, dt: float, method: str, to_ms: float,
                   subtract: bool = False) -> dict[str, Any]:
    """neurorl group settings of a NIR neuron node (module docstring: the discretisation); ``dt``
    in the graph's unit, the group's times in ms (``to_ms`` ms per graph unit); ``subtract``: the
    node resets by subtracting v_threshold (nir <= 1.0.4) instead of to v_reset."""
    k = _kind(node)
    n = int(np.prod(node.output_type["output"]))
    zeros, ones = np.zeros(n), np.ones(n)
    if k in ("I", "IF"):
        tau, r, v_leak = np.full(n, np.inf), _f64(node.r), zeros
    elif k in ("LIF", "LI"):
        tau, r, v_leak = _f64(node.tau), _f64(node.r), _f64(node.v_leak)
    else:  # CubaLIF, CubaLI
        tau, r, v_leak = _f64(node.tau_mem), _f64(node.r), _f64(node.v_leak)
    spiking = k in SPIKING_NODES
    v_th = _f64(node.v_threshold) if spiking else np.full(n, _NO_SPIKE)
    v_reset = _f64(node.v_reset) if spiking else zeros
    if spiking and np.any(~(v_th > 0)):
        raise ConfigError(f"from_nir: node {name!r}.v_threshold", v_th.tolist(),
                          "thresholds > 0 (neurorl normalises the surrogate by v_th)")
    alpha, tau_mem = _alpha(tau, dt, method, f"from_nir: node {name!r}.tau")
    exponential = bool(np.all(r > 0) and np.all(np.isfinite(tau)))
    if exponential:  # in_t = (1 - alpha) r (I + v_leak / r)
        scale, bias = ones, v_leak / np.where(r > 0, r, 1.0)
    else:  # direct: in_t = fac r I + fac v_leak with fac = 1 - alpha (dt when tau = inf)
        fac = np.where(np.isinf(tau), dt, 1.0 - alpha)
        scale, bias = fac * r, fac * v_leak
    params = dict(tau_mem=tau_mem * to_ms, v_th=v_th, v_reset=v_reset,
                  r=np.where(exponential, r, 1.0), dt=dt * to_ms,
                  reset="subtract" if subtract else "zero",
                  integration="exponential" if exponential else "direct")
    i_syn0 = None
    model = "LIF"
    if k in ("CubaLIF", "CubaLI"):
        model = "CubaLIF"
        beta, tau_syn = _alpha(_f64(node.tau_syn), dt, method, f"from_nir: node {name!r}.tau_syn")
        params["tau_syn"] = tau_syn * to_ms
        syn_in = (1.0 - beta) * _f64(node.w_in)  # I_t = beta I + (1 - beta) w_in S
        # v_leak bypasses the synapse in NIR: a constant i_syn of bias / (1 - beta) from step 0
        i_syn0 = bias
        bias = (1.0 - beta) * bias
        scale = scale * syn_in
    return dict(model=model, params=params, bias=bias, scale=scale, i_syn0=i_syn0,
                spiking=spiking, n=n, v_init=None, sign=None)


def _meta_group(name: str, node: Any, meta: dict, dt: float) -> dict[str, Any] | None:
    """Group settings from neurorl's own metadata (exact round trip), or None if unusable."""
    try:
        p = {f: (np.asarray(v, np.float32) if isinstance(v, list) else v)
             for f, v in meta["params"].items()}
        if not math.isclose(float(np.asarray(p["dt"])), dt, rel_tol=1e-6):
            return None
        p.update(meta["static"])
        p["surrogate_hyper"] = tuple(tuple(h) for h in meta.get("surrogate_hyper", []))
        n = int(np.prod(node.output_type["output"]))
        bias = meta["bias"]
        v_init = meta.get("v_init")
        return dict(model=meta["model"], params=p,
                    bias=np.asarray(bias, np.float32) if isinstance(bias, list) else bias,
                    scale=np.ones(n), i_syn0=None, spiking=True, n=n,
                    v_init=tuple(v_init) if isinstance(v_init, list) else v_init,
                    sign=meta.get("sign"))
    except (KeyError, TypeError, ValueError):
        return None


def _read_graph(graph_or_path: Any) -> nir.NIRGraph:
    if isinstance(graph_or_path, nir.NIRGraph):
        return graph_or_path
    if isinstance(graph_or_path, (str, os.PathLike)):
        if not os.path.exists(graph_or_path):
            raise ConfigError("from_nir.graph_or_path", str(graph_or_path), "an existing .nir file")
        return nir.read(graph_or_path)
    raise ConfigError("from_nir.graph_or_path", type(graph_or_path).__name__,
                      "a nir.NIRGraph or the path of a file written by nir.write")


def _trace_paths(graph: nir.NIRGraph, dt: float, roles: dict[str, str]) -> list[_Path]:
    """All chains of edge nodes from a source population (Input/neuron) to a target node."""
    succ: dict[str, list[str]] = {k: [] for k in graph.nodes}
    pred: dict[str, list[str]] = {k: [] for k in graph.nodes}
    for a, b in graph.edges:
        succ[a].append(b)
        pred[b].append(a)
    for k, role in roles.items():
        if role in ("edge", "synapse") and len(pred[k]) != 1:
            raise ConfigError(f"from_nir: node {k!r} ({_kind(graph.nodes[k])})",
                              f"{len(pred[k])} incoming edges",
                              "exactly one (signals are summed only at neuron nodes)")
    paths: list[_Path] = []

    def walk(src, cur, w, b, d_pre, d_post, syn, linear, depth):
        if depth > len(graph.nodes):
            raise ConfigError("from_nir.graph", "a cycle of edge nodes", "cycles through neurons")
        for nxt in succ[cur]:
            node, role = graph.nodes[nxt], roles[nxt]
            if role in ("neuron", "readout", "output"):
                paths.append(_Path(src, nxt, w, b, d_pre, d_post, syn, linear))
                continue
            k = _kind(node)
            w2, b2, dpre2, dpost2, syn2, lin2 = w, b, d_pre, d_post, syn, linear
            if k == "Delay":
                steps = np.rint(_f64(node.delay) / dt).astype(np.int64)
                if w is None:
                    dpre2 = d_pre + steps
                else:
                    dpost2 = d_post + steps
            elif k in ("Affine", "Linear"):
                m = np.asarray(node.weight, np.float64)
                if m.ndim != 2:
                    raise ConfigError(f"from_nir: node {nxt!r}.weight", m.shape,
                                      "a 2-D [n_out, n_in] matrix")
                if w is not None and np.any(d_post != d_post.flat[0]):
                    raise ConfigError(f"from_nir: node {nxt!r}", "non-uniform Delay between "
                                      "two Affine/Linear nodes", "uniform delays there")
                off = int(d_post.flat[0]) if w is not None else 0
                w2 = m if w is None else m @ w
                bb = _f64(node.bias) if k == "Affine" else np.zeros(m.shape[0])
                b2 = bb if w is None else m @ b + bb
                dpre2 = d_pre + off
                dpost2 = np.zeros(m.shape[0], np.int64)
                lin2 = nxt
            elif k == "Scale":
                s = _f64(node.scale)
                w2 = np.diag(s) if w is None else s[:, None] * w
                b2 = np.zeros_like(s) if w is None else s * b
                if w is None:
                    dpost2 = np.zeros(len(s), np.int64)
            elif role == "synapse":
                if syn is not None:
                    raise ConfigError(f"from_nir: node {nxt!r}", "two LI synapses in a row",
                                      "at most one LI between two neuron nodes")
                syn2 = nxt
            walk(src, nxt, w2, b2, dpre2, dpost2, syn2, lin2, depth + 1)

    for k, role in roles.items():
        if role in ("input", "neuron", "readout"):
            n = int(np.prod(graph.nodes[k].output_type["output"]))
            walk(k, k, None, np.zeros(n), np.zeros(n, np.int64), np.zeros(n, np.int64),
                 None, None, 0)
    return paths


def from_nir(
    graph_or_path: nir.NIRGraph | str | os.PathLike,
    dt: float | None = None,
    *,
    method: str | None = None,
    use_metadata: bool = True,
    seed: int = 0,
) -> NIRImport:
    """Import a NIR graph as a neurorl network (the discretisation is the module docstring's).

    Args:
        graph_or_path: a ``nir.NIRGraph`` or a file written by ``nir.write``.
        dt: time step in the graph's time units (seconds, the NIR standard's, unless
            ``graph.metadata["time_unit"]`` says otherwise; default ``graph.metadata["dt"]`` if
            present, else 1e-3). The imported network's times are in ms (neurorl's unit).
        method: "euler" (``alpha = 1 - dt/tau``, the forward-Euler step of snnTorch, Norse,
            Spyx, sinabs and rockpool) or "exact" (``alpha = exp(-dt/tau)``, exact for inputs held
            over a step). Default: ``graph.metadata["neurorl_method"]`` (files from ``to_nir``),
            else "euler".
        use_metadata: restore neurorl's own parameters from nodes written by ``to_nir`` (exact
            round trip, including subtractive reset, ALIF and refractoriness).
        seed: PRNG seed of ``net.init`` (weights come from the graph; the seed only matters for
            random initial membranes restored from metadata).

    Returns:
        A :class:`NIRImport` (``net``, ``state``, ``inputs``, ``outputs``, ``latency``,
        ``run(inputs)``).

    Raises:
        ConfigError: an unsupported node type (naming the node and the supported ones), a
            non-spiking node feeding a neuron it cannot be a synapse of, bad time constants.
    """
    graph = _flatten(_read_graph(graph_or_path))
    gmeta = graph.metadata or {}
    # a file of nir <= 1.0.4 (sinabs, rockpool, write_nir(nir_version="1.0.4")): its LIF /
    # CubaLIF / IF reset by subtracting v_threshold (that schema has no v_reset)
    version = (_file_version(graph_or_path) if isinstance(graph_or_path, (str, os.PathLike))
               else None) or _text(gmeta.get("nir_version", ""))
    subtract = _is_release(version) and _old_schema(version, "from_nir: file version")
    if "neurorl_nodes" in gmeta:  # node metadata moved to the graph (earlier neurorl files)
        for name, m in json.loads(_text(gmeta["neurorl_nodes"])).items():
            if name in graph.nodes:
                graph.nodes[name].metadata = {**(graph.nodes[name].metadata or {}),
                                              "neurorl": m}
    unit = _text(gmeta.get("time_unit", "s"))
    if unit not in TIME_UNITS:
        raise ConfigError("from_nir: graph.metadata['time_unit']", unit,
                          f"one of {list(TIME_UNITS)}", closest(unit, list(TIME_UNITS)))
    to_ms = TIME_UNITS[unit]
    if dt is None:
        dt = float(np.asarray(gmeta.get("dt", 1.0 / to_ms)))
    if not (isinstance(dt, (int, float, np.floating)) and math.isfinite(dt) and dt > 0):
        raise ConfigError("from_nir.dt", dt, f"a time step > 0 in the graph's time unit ({unit})")
    dt = float(dt)
    if method is None:
        method = _text(gmeta.get("neurorl_method", "euler"))
    if method not in METHODS:
        raise ConfigError("from_nir.method", method, f"one of {list(METHODS)}",
                          closest(str(method), METHODS))
    nodes = graph.nodes
    succ: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in graph.edges:
        succ[a].append(b)
    roles: dict[str, str] = {}
    for name, node in nodes.items():
        k = _kind(node)
        if k not in SUPPORTED_NODES:
            raise ConfigError(f"from_nir: node {name!r}", k,
                              f"a supported NIR node type: {list(SUPPORTED_NODES)}",
                              closest(k, SUPPORTED_NODES))
        if k == "Input":
            roles[name] = "input"
        elif k == "Output":
            roles[name] = "output"
        elif k in SPIKING_NODES:
            roles[name] = "neuron"
        elif k in EDGE_NODES:
            roles[name] = "edge"
        else:  # LI / I / CubaLI: a readout, or (LI) an exponential synapse between neurons
            outs = [_kind(nodes[s]) for s in succ[name]]
            if outs and all(o == "Output" for o in outs):
                roles[name] = "readout"
            elif k == "LI" and outs and all(o in SPIKING_NODES for o in outs):
                roles[name] = "synapse"
            else:
                raise ConfigError(f"from_nir: node {name!r} ({k})", f"feeds {outs}",
                                  "a non-spiking node may only feed Output nodes (or, for LI "
                                  "with v_leak = 0, spiking neuron nodes as a synapse)")
    paths = _trace_paths(graph, dt, roles)

    # groups
    settings: dict[str, dict[str, Any]] = {}
    for name, role in roles.items():
        if role not in ("neuron", "readout"):
            continue
        meta = _meta(nodes[name]) if use_metadata else None
        s = _meta_group(name, nodes[name], meta, dt * to_ms) if meta and "model" in meta else None
        settings[name] = s or _generic_group(name, nodes[name], dt, method, to_ms, subtract)
    fed_by_input = {p.tgt for p in paths if roles[p.src] == "input"}
    for p in paths:
        if roles[p.tgt] in ("neuron", "readout") and roles[p.src] == "readout":
            raise ConfigError(f"from_nir: node {p.src!r}", "a readout feeding a neuron",
                              "spiking sources only")
    biases = {k: np.asarray(s["bias"], np.float64) for k, s in settings.items()}
    conns: list[tuple] = []
    input_paths = []
    lags: list[tuple[str, str, int]] = []
    for p in paths:
        if roles[p.tgt] == "output":
            if p.w is not None or np.any(p.d_pre):
                raise ConfigError(f"from_nir: node {p.tgt!r} (Output)", f"fed through edge nodes "
                                  f"from {p.src!r}", "an Output fed directly by a neuron node")
            continue
        st = settings[p.tgt]
        n_src = int(np.prod(nodes[p.src].output_type["output"]))
        w = np.eye(n_src) if p.w is None else p.w
        if w.shape != (st["n"], n_src):
            raise ShapeError(f"from_nir: path {p.src!r} -> {p.tgt!r}", (st["n"], n_src), w.shape)
        scale = np.asarray(st["scale"], np.float64)
        synapse, tau_syn, lin_meta = "delta", None, None
        if p.linear is not None:
            lin_meta = _meta(nodes[p.linear]) if use_metadata else None
        if p.syn is not None:
            li = nodes[p.syn]
            tau = _f64(li.tau)
            if np.any(_f64(li.v_leak) != 0) or np.any(tau != tau[0]) or np.any(p.b != 0):
                raise ConfigError(f"from_nir: node {p.syn!r} (LI synapse)", "v_leak != 0, "
                                  "per-neuron tau or an Affine bias before it",
                                  "v_leak = 0, one tau, no bias (neurorl's exponential synapse)")
            beta, tau_eff = _alpha(tau[:1], dt, method, f"from_nir: node {p.syn!r}.tau")
            synapse, tau_syn = "exponential", float(tau_eff[0]) * to_ms
            if lin_meta and lin_meta.get("synapse") == "exponential":
                tau_syn = float(lin_meta["tau_syn"])
            else:
                scale = scale * (1.0 - beta[0]) * _f64(li.r)
        d = (p.d_pre[None, :] + p.d_post[:, None]).T  # [n_pre, n_post] steps
        if roles[p.src] == "input":
            input_paths.append((p.src, p.tgt, (w * scale[:, None]).astype(np.float32),
                                p.d_pre.copy(), p.d_post.copy()))
            biases[p.tgt] = biases[p.tgt] + scale * p.b
            continue
        biases[p.tgt] = biases[p.tgt] + scale * p.b
        lags.append((p.src, p.tgt))
        delay = d + 1  # every neurorl hop takes one step more than a same-step simulator's
        delay = int(delay.flat[0]) if np.all(delay == delay.flat[0]) else delay.astype(np.int32)
        wt = (w * scale[:, None]).T.astype(np.float32) if np.any(scale != 1) else w.T.astype(
            np.float32)
        cname = lin_meta.get("connection") if lin_meta else None
        sign = lin_meta.get("sign") if lin_meta else None
        conns.append((p.src, p.tgt, wt, delay, synapse, tau_syn, cname, sign))

    groups: dict[str, NeuronGroup] = {}
    for name, s in settings.items():
        groups[name] = NeuronGroup(s["n"], s["model"], s["params"], name=name,
                                   bias=np.asarray(biases[name], np.float32), v_init=s["v_init"],
                                   sign=s["sign"], input=True if name in fed_by_input else None)
    names = [c[6] for c in conns]
    connections = []
    for src, tgt, wt, delay, synapse, tau_syn, cname, sign in conns:
        connections.append(Connection(
            groups[src], groups[tgt], "all_to_all", weight=wt, delay=delay, synapse=synapse,
            tau_syn=tau_syn, sign=sign, storage="dense",
            name=cname if cname and names.count(cname) == 1 else None))
    monitors, outputs = [], {}
    for name, role in roles.items():
        if role != "output":
            continue
        feeders = [p.src for p in paths if p.tgt == name]
        if len(feeders) != 1:
            raise ConfigError(f"from_nir: node {name!r} (Output)", f"fed by {feeders}",
                              "exactly one neuron node")
        g = groups[feeders[0]]
        if settings[feeders[0]]["spiking"]:
            monitors.append(SpikeMonitor(g, name=name))
            outputs[name] = "spikes"
        else:
            monitors.append(PotentialMonitor(g, name=name))
            outputs[name] = "v"
    if not groups:
        raise ConfigError("from_nir.graph", "no neuron nodes", f"at least one of "
                          f"{list(SPIKING_NODES + READOUT_NODES)}")
    net = Network(list(groups.values()), connections, monitors).compile()
    state = net.init(jax.random.PRNGKey(seed))
    neurons = dict(state["neurons"])
    for name, s in settings.items():
        if s["i_syn0"] is not None and np.any(s["i_syn0"] != 0):
            neurons[name] = neurons[name].replace(i_syn=jnp.asarray(s["i_syn0"], jnp.float32))
    state = {**state, "neurons": neurons}

    # lag of each group behind a same-step simulator (None where paths disagree)
    lag = _hop_lags(list(groups), lags, sorted(fed_by_input))
    latency = {o: lag.get([p.src for p in paths if p.tgt == o][0]) for o in outputs}
    inputs = {k: int(np.prod(nodes[k].output_type["output"])) for k, r in roles.items()
              if r == "input"}
    return NIRImport(net, state, inputs, outputs, latency, tuple(input_paths))
