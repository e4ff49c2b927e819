"""Supervised event-data classification (``task: classification``) on an N-HAL network.

Network (``neurorl.core.network``), compiled for any backend (``"float"`` or a chip name)::

    input (n_in, LIF relay: v = I, spikes iff I > 0.5) --W_in--> hidden (LIF/ALIF, n_hidden)
        [--W_rec--> hidden] --W_out--> readout (LIF that never fires: a leaky integrator,
        v_t = kappa v_{t-1} + z_{t-1} W_out, kappa = exp(-dt / tau_out); PotentialMonitor on v)

Each sample ``x [T, n_in]`` starts from the blank network state (membranes, traces and spike
buffers zero) and keeps the learned weights. The class scores are the readout membranes; the
prediction is ``argmax_k mean_{t >= t0} v_t[k]`` and the loss is the per-step softmax cross
entropy over ``t >= t0`` (``t0 = readout.window_start * T``), averaged over those steps.

**e-prop** (Bellec et al. 2020, online, one sample at a time): the library's ``"eprop"``
LearningRule sits on W_in (and W_rec) and forms the eligibility traces ``ebar_ji`` during the
run; its modulator is the learning signal ``L_j^t = sum_k B_jk err_k^{t+1}`` with
``err = softmax(v) - onehot(y)`` (the readout sees hidden spikes one step later, delay 1) and
``B = W_out`` (symmetric) or a fixed random matrix (``feedback: random``). The rule's optimizer
is ``optax.MultiSteps(adam, T)``: the per-step gradients ``L ebar`` are summed over the sample
and applied once at its end, so the weights are fixed within a sample and the signal computed
from a first (non-learning) pass of the same sample is exactly the one the rule needs; the
readout follows e-prop's ``dE/dW_out = sum_t zbar_t err_{t+1}`` (``zbar`` the kappa-filtered
hidden spikes). **BPTT**: ``jax.grad`` of the same loss through ``CompiledNetwork.run`` (surrogate
spike derivatives of the neuron models), minibatches by ``jax.vmap``, adam.

Chip backends: the N-HAL projects W_in / W_rec onto the chip's weight grid at init and after
every rule update (its on-chip learning engine: stochastic rounding); e-prop's W_out update is
rounded stochastically onto the same grid by this module (unbiased, so adam steps below half a
grid step still move it on average), and BPTT trains float master weights through a projected
forward pass (straight-through).

Relies on the N-HAL's public API: ``Network``, ``NeuronGroup``, ``Connection``,
``LearningRule(rule="eprop", optimizer=...)``, ``SpikeMonitor``, ``PotentialMonitor``,
``compile(backend)``, ``init``, ``run(state, inputs, modulators=...)``, ``project``, and the state
layout ``state["weights"][conn]``, ``state["rules"][rule] = {"rule", "opt"}``. Per-post-neuron
modulators ``[T, n_post]`` (the learning signal) go through ``run``.

References:
    Bellec et al., "A solution to the learning dilemma for recurrent networks of spiking
    neurons", Nat. Commun. 11:3625, 2020 (e-prop, Eqs. 4, 28; readout filter kappa).
    Neftci, Mostafa & Zenke, "Surrogate gradient learning in spiking neural networks", IEEE
    Signal Process. Mag. 36(6), 2019 (BPTT with surrogate gradients).
    Lopez-Paz & Ranzato, GEM, NeurIPS 2017 (ACC / BWT of the task matrix R).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from neurorl.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


# ----------------------------------------------------------------------------------------------
# schema
# ----------------------------------------------------------------------------------------------


class SyntheticSpec(_Strict):
    """``dataset.synthetic``: the jittered spike-pattern task (:mod:`neurorl.data.synthetic`)."""

    n_classes: int = Field(4, ge=2)
    n_inputs: int = Field(40, ge=1)
    n_train: int = Field(200, ge=1)
    n_test: int = Field(100, ge=1)
    rate: float = Field(0.05, ge=0, le=1)
    jitter: int = Field(2, ge=0)
    drop: float = Field(0.1, ge=0, le=1)
    noise: float = Field(0.005, ge=0, le=1)


class DatasetSection(_Strict):
    """``dataset``: which data and how events become ``[T, n]`` arrays (tonic transforms)."""

    name: Literal["synthetic", "nmnist", "dvsgesture", "shd"] = "synthetic"
    root: str = "~/neurorl-data"
    n_time_bins: int = Field(50, ge=1)
    time_window_us: float | None = Field(None, gt=0)
    spatial_factor: float = Field(1.0, gt=0, le=1)
    denoise_us: float | None = Field(None, gt=0)
    binary: bool = True
    limit_train: int | None = Field(None, ge=1)
    limit_test: int | None = Field(None, ge=1)
    synthetic: SyntheticSpec = Field(default_factory=SyntheticSpec)


class EncoderSection(_Strict):
    """``encoder``: events -> input currents of the relay group (``gain * x``)."""

    kind: Literal["events"] = "events"
    gain: float = Field(1.0, gt=0)


class ReadoutSection(_Strict):
    """``readout``: leaky-integrator readout and loss window."""

    kind: Literal["leaky"] = "leaky"
    tau_out: float = Field(20.0, gt=0)
    window_start: float = Field(0.0, ge=0, lt=1)


class ModelSection(_Strict):
    """``model``: the hidden layer."""

    n_hidden: int = Field(64, ge=1)
    neuron: Literal["LIF", "ALIF"] = "LIF"
    tau_mem: float = Field(20.0, gt=0)
    v_th: float = Field(1.0, gt=0)
    beta: float = Field(0.0, ge=0)
    tau_adapt: float = Field(200.0, gt=0)
    recurrent: bool = False
    w_scale: float = Field(2.0, gt=0)


class LearningSection(_Strict):
    """``learning``: rule, optimizer and epochs."""

    rule: Literal["eprop", "bptt"] = "eprop"
    lr: float = Field(2e-3, gt=0)
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(16, ge=1)
    feedback: Literal["symmetric", "random"] = "symmetric"
    gamma_pd: float = Field(0.3, gt=0)


class EventShiftSpec(_Strict):
    """One sensor shift (:mod:`neurorl.data.shifts`); ``schedule`` over training samples."""

    kind: Literal["event_dropout", "hot_pixels", "polarity_flip", "time_jitter"]
    schedule: dict[str, Any] | float = 0.0
    fraction: float = Field(0.01, gt=0, le=1)
    max_bins: int = Field(2, ge=1)
    seed: int = 0
    at_test: bool = True


class ContinualSection(_Strict):
    """``continual``: a sequence of tasks over the same dataset.

    ``class_incremental``: the classes split into ``n_tasks`` groups in label order, trained one
    after the other; ``domain_incremental``: every task has all classes, task ``i`` seen through
    ``domains[i]`` (a list of event shifts at constant severity).
    """

    mode: Literal["none", "class_incremental", "domain_incremental"] = "none"
    n_tasks: int = Field(2, ge=2)
    domains: list[list[EventShiftSpec]] = Field(default_factory=list)


class HardwareSection(_Strict):
    chip: str = "float"
    w_max: float = Field(1.0, gt=0)


class TrainingSection(_Strict):
    seed: int = Field(0, ge=0)
    threshold: float | None = Field(None, ge=0, le=1)


# ``logging``: the experiment configs' section (dir, wandb mode -- offline by default --,
# project, group, progress), so a classification run logs to wandb as a control run does
from neurorl.experiment.config import LoggingSection  # noqa: E402


class ClassificationConfig(_Strict):
    """A classification experiment (``task: classification``); frozen after validation."""

    task: Literal["classification"] = "classification"
    name: str = "classification"
    description: str = ""
    dataset: DatasetSection = Field(default_factory=DatasetSection)
    encoder: EncoderSection = Field(default_factory=EncoderSection)
    readout: ReadoutSection = Field(default_factory=ReadoutSection)
    model: ModelSection = Field(default_factory=ModelSection)
    learning: LearningSection = Field(default_factory=LearningSection)
    shifts: list[EventShiftSpec] = Field(default_factory=list)
    continual: ContinualSection = Field(default_factory=ContinualSection)
    hardware: HardwareSection = Field(default_factory=HardwareSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    logging: LoggingSection = Field(default_factory=LoggingSection)


def is_classification(tree: Mapping[str, Any]) -> bool:
    """Whether a raw config dict asks for this task type."""
    return isinstance(tree, Mapping) and tree.get("task") == "classification"


def validate(tree: Mapping[str, Any]) -> ClassificationConfig:
    """Validate a (merged) config dict into a :class:`ClassificationConfig`.

    Raises:
        ConfigError: with the field path, value, what is allowed and the closest name.
    """
    from neurorl.envs.shifts import as_schedule
    from neurorl.errors import lookup
    from neurorl.hardware.chips import CHIPS

    try:
        cfg = ClassificationConfig.model_validate(dict(tree))
    except ValidationError as e:
        err = e.errors()[0]
        path, allowed, suggestion = _describe(err)
        raise ConfigError(path, err.get("input"), allowed, suggestion) from None
    lookup(CHIPS, cfg.hardware.chip, "chip", field="hardware.chip")
    c = cfg.continual
    if c.mode == "class_incremental" and cfg.dataset.name == "synthetic" \
            and c.n_tasks > cfg.dataset.synthetic.n_classes:
        raise ConfigError("continual.n_tasks", c.n_tasks,
                          f"at most dataset.synthetic.n_classes={cfg.dataset.synthetic.n_classes}")
    if c.mode == "domain_incremental" and len(c.domains) != c.n_tasks:
        raise ConfigError("continual.domains", len(c.domains),
                          f"one list of shifts per task (continual.n_tasks={c.n_tasks})")
    if cfg.dataset.name in ("shd", "synthetic") and cfg.dataset.denoise_us is not None:
        raise ConfigError("dataset.denoise_us", cfg.dataset.denoise_us,
                          f"null for {cfg.dataset.name} (tonic's Denoise needs x and y)")
    specs = [(f"shifts[{i}]", s) for i, s in enumerate(cfg.shifts)]
    specs += [(f"continual.domains[{d}][{i}]", s) for d, dom in enumerate(c.domains)
              for i, s in enumerate(dom)]
    for where, s in specs:  # schedules are checked here, before anything compiles
        try:
            as_schedule(s.schedule)
        except ConfigError as e:
            raise ConfigError(f"{where}.{e.field}", e.value, e.allowed, e.suggestions) from None
    return cfg


def _describe(err: Mapping[str, Any]) -> tuple[str, str, str | None]:
    from neurorl.errors import closest

    loc = [p for p in err["loc"] if not (isinstance(p, str) and (
        p[:1].isupper() or p in ("float", "int", "str", "bool") or p.startswith("dict[")))]
    path = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
    if err["type"] == "extra_forbidden":
        model: Any = ClassificationConfig
        for part in loc[:-1]:
            if isinstance(part, int):
                continue
            f = model.model_fields.get(part) if model else None
            model = _find_model(f.annotation) if f else None
        fields = list(model.model_fields) if model else []
        return path, f"one of the keys {fields}", closest(str(loc[-1]), fields)
    if err["type"] == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        choices = [c.strip().strip("'") for c in expected.replace(" or ", ",").split(",")
                   if c.strip()]
        return path, f"one of {choices}", closest(str(err.get("input")), choices)
    return path or "config", err["msg"], None


def _find_model(ann: Any) -> Any:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        m = _find_model(arg)
        if m is not None:
            return m
    return None


def to_dict(cfg: ClassificationConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="json")


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------


def load_data(cfg: ClassificationConfig):
    """``(train, test)`` :class:`~neurorl.data.EventData` for the config's dataset."""
    from neurorl.data import BinSpec, load, spike_patterns

    d = cfg.dataset
    if d.name == "synthetic":
        s = d.synthetic
        return spike_patterns(n_classes=s.n_classes, n_inputs=s.n_inputs,
                              n_time_bins=d.n_time_bins, n_train=s.n_train, n_test=s.n_test,
                              rate=s.rate, jitter=s.jitter, drop=s.drop, noise=s.noise,
                              seed=cfg.training.seed)
    spec = BinSpec(n_time_bins=d.n_time_bins, time_window_us=d.time_window_us,
                   spatial_factor=d.spatial_factor, denoise_us=d.denoise_us, binary=d.binary)
    return (load(d.name, d.root, "train", spec=spec, limit=d.limit_train),
            load(d.name, d.root, "test", spec=spec, limit=d.limit_test))


def make_shifts(specs: Sequence[EventShiftSpec], n: int) -> tuple:
    from neurorl.data.shifts import event_shift

    return tuple(event_shift(s.kind, s.schedule, n, fraction=s.fraction, max_bins=s.max_bins,
                             seed=s.seed) for s in specs)


# ----------------------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------------------

IN, HID, OUT = "input", "hidden", "readout"
C_IN, C_REC, C_OUT = f"{IN}->{HID}", f"{HID}->{HID}", f"{HID}->{OUT}"
R_IN, R_REC = "eprop_in", "eprop_rec"
M_IN, M_HID, M_OUT = "spikes_input", "spikes_hidden", "v_readout"


@dataclasses.dataclass
class EventModel:
    """A compiled classification network and what training needs to know about it.

    Attributes:
        cnet: the :class:`~neurorl.core.network.CompiledNetwork`.
        n_in, n_hidden, n_out, T: sizes.
        kappa: readout decay ``exp(-dt / tau_out)``.
        t0: first step of the loss / decision window.
        trainable: names of the learned connections.
        rules: e-prop rule name per plastic connection (empty for BPTT).
    """

    cnet: Any
    n_in: int
    n_hidden: int
    n_out: int
    T: int
    kappa: float
    t0: int
    trainable: tuple[str, ...]
    rules: dict[str, str]
    gain: float
    feedback: str


def build_model(cfg: ClassificationConfig, n_in: int, n_out: int, T: int,
                rule_optimizer: Any = None) -> EventModel:
    """Build and compile the N-HAL network of the config (see module docstring).

    Args:
        cfg: validated config.
        n_in, n_out, T: input channels, classes, time bins.
        rule_optimizer: optax transformation of the e-prop rules (default
            ``optax.MultiSteps(optax.adam(lr), every_k_schedule=T)``: one update per sample).
    """
    import optax

    from neurorl.core.monitors import PotentialMonitor, SpikeMonitor
    from neurorl.core.network import Connection, LearningRule, Network, NeuronGroup

    m, lr = cfg.model, cfg.learning
    inp = NeuronGroup(n_in, "LIF", {"tau_mem": 1e-3, "v_th": 0.5, "reset": "zero"}, name=IN,
                      input=True)
    # the e-prop pseudo-derivative is the hidden group's surrogate: triangle with gamma_pd
    hid_params = {"tau_mem": m.tau_mem, "v_th": m.v_th, "surrogate": "triangle",
                  "surrogate_hyper": (("gamma", float(cfg.learning.gamma_pd)),)}
    if m.neuron == "ALIF":
        hid_params.update(beta=m.beta, tau_adapt=m.tau_adapt)
    hid = NeuronGroup(m.n_hidden, m.neuron, hid_params, name=HID)
    out = NeuronGroup(n_out, "LIF", {"tau_mem": cfg.readout.tau_out, "v_th": 1e9}, name=OUT)
    conns = {C_IN: Connection(inp, hid, weight=0.0, name=C_IN)}
    if m.recurrent:
        # no autapses (Bellec et al. 2020: W_rec's diagonal is disconnected); the structural
        # mask keeps e-prop's and BPTT's updates off the diagonal
        conns[C_REC] = Connection(hid, hid, "all_to_all", allow_self=False, weight=0.0,
                                  name=C_REC)
    conns[C_OUT] = Connection(hid, out, weight=0.0, name=C_OUT)
    objs: list[Any] = [inp, hid, out, *conns.values(), SpikeMonitor(inp, name=M_IN),
                       SpikeMonitor(hid, name=M_HID), PotentialMonitor(out, name=M_OUT)]
    rules: dict[str, str] = {}
    if lr.rule == "eprop":
        # the rule reads psi, the decays and ALIF's adaptation from the hidden group itself
        eparams = {"tau_out": cfg.readout.tau_out}
        plastic = [(C_IN, R_IN)] + ([(C_REC, R_REC)] if m.recurrent else [])
        for cname, rname in plastic:
            tx = rule_optimizer or optax.MultiSteps(optax.adam(lr.lr), every_k_schedule=T)
            objs.append(LearningRule(conns[cname], "eprop", eparams, optimizer=tx, name=rname))
            rules[cname] = rname
    # state_precision=False: the readout is a non-spiking integrator (v_th = 1e9) that a chip
    # leaves to its host; the chip's membrane width in units of v_th would erase it
    cnet = Network(*objs).compile(backend=cfg.hardware.chip, seed=cfg.training.seed,
                                  w_max=cfg.hardware.w_max, state_precision=False)
    trainable = tuple(conns)
    return EventModel(cnet, n_in, m.n_hidden, n_out, T, math.exp(-1.0 / cfg.readout.tau_out),
                      int(cfg.readout.window_start * T), trainable, rules, cfg.encoder.gain,
                      lr.feedback)


def init_weights(model: EventModel, key: Any, w_scale: float) -> dict[str, Any]:
    """Initial weights ``N(0, w_scale^2 / n_pre)``; W_rec without autapses, W_out ``1/n_hidden``."""
    import jax
    import jax.numpy as jnp

    ks = jax.random.split(key, 3)
    w = {C_IN: jax.random.normal(ks[0], (model.n_in, model.n_hidden)) * w_scale
         / jnp.sqrt(model.n_in),
         C_OUT: jax.random.normal(ks[2], (model.n_hidden, model.n_out)) / model.n_hidden}
    if C_REC in model.trainable:
        w[C_REC] = (jax.random.normal(ks[1], (model.n_hidden, model.n_hidden)) * 0.5
                    / jnp.sqrt(model.n_hidden) * (1.0 - jnp.eye(model.n_hidden)))
    return {k: _project(model, jnp.asarray(v, jnp.float32)) for k, v in w.items()}


def _project(model: EventModel, w: Any, key: Any = None) -> Any:
    """``w`` on the chip's weight grid (identity on float): round-half-to-even, or unbiased
    stochastic rounding with ``key`` -- the chip's on-chip learning engine (Gupta et al. 2015),
    which keeps updates smaller than half a grid step alive on average."""
    if model.cnet.project is None:
        return w
    return model.cnet.project(w) if key is None else model.cnet.project(w, None, key)


class Trainer:
    """Jitted e-prop / BPTT updates and evaluation for one :class:`EventModel`."""

    CHUNK = 512  # e-prop samples per jitted scan (bounds device memory on the real datasets)

    def __init__(self, model: EventModel, cfg: ClassificationConfig, key: Any) -> None:
        import jax
        import optax

        self.model, self.cfg = model, cfg
        k_init, k_w, k_b = jax.random.split(key, 3)
        self.blank = model.cnet.init(k_init)
        self.tx = optax.adam(cfg.learning.lr)
        w = init_weights(model, k_w, cfg.model.w_scale)
        self.B = jax.random.normal(k_b, (model.n_hidden, model.n_out)) / math.sqrt(model.n_hidden)
        if cfg.learning.rule == "eprop":
            st = self._fresh(self.blank, w)
            self.state = {"net": st, "opt_out": self.tx.init(w[C_OUT])}
        else:
            self.state = {"w": w, "opt": self.tx.init(w)}
        self._eprop_epoch = jax.jit(self._eprop_epoch_impl)
        self._bptt_step = jax.jit(self._bptt_step_impl)
        self._eval = jax.jit(jax.vmap(self._eval_one, in_axes=(None, 0, None, 0, None)))

    # ---------------------------------------------------------------- shared
    def _fresh(self, state: Any, weights: Mapping[str, Any]) -> Any:
        """Blank neurons / traces / buffers, the given weights and the rules' optimizer states."""
        new = dict(self.blank)
        new["weights"] = {**self.blank["weights"], **weights}
        new["rules"] = {r: {"rule": self.blank["rules"][r]["rule"],
                            "opt": state["rules"][r]["opt"]} for r in self.blank["rules"]}
        return new

    def weights(self) -> dict[str, Any]:
        return dict(self.state["net"]["weights"]) if "net" in self.state else dict(self.state["w"])

    def _forward(self, weights: Any, x: Any):
        st = self._fresh(self.blank, weights)
        mods = {r: 0.0 for r in self.model.rules.values()}
        _, rec = self.model.cnet.run(st, x * self.model.gain, modulators=mods or None)
        return rec

    def _ce(self, v: Any, y: Any):
        import jax
        import jax.numpy as jnp

        logp = jax.nn.log_softmax(v[self.model.t0:], axis=-1)
        return -jnp.mean(logp[:, y])

    @staticmethod
    def _shift(x: Any, t: Any, key: Any, shifts: tuple):
        from neurorl.data.shifts import apply_shifts

        return apply_shifts(shifts, x, t, key) if shifts else x

    # ---------------------------------------------------------------- e-prop
    def _eprop_sample(self, carry: Any, inp: Any):
        import jax
        import jax.numpy as jnp
        import optax

        m = self.model
        state, opt_out, t, shifts = carry
        x, y, key = inp
        x = self._shift(x, t, key, shifts) * m.gain
        net = self._fresh(state, state["weights"])
        zero = {r: 0.0 for r in m.rules.values()}
        _, rec = m.cnet.run(net, x, modulators=zero)
        v = rec[M_OUT]
        window = (jnp.arange(m.T) >= m.t0).astype(jnp.float32) / (m.T - m.t0)
        err = (jax.nn.softmax(v, axis=-1) - jax.nn.one_hot(y, m.n_out)[None, :]) * window[:, None]
        err_next = jnp.concatenate([err[1:], jnp.zeros((1, m.n_out))], axis=0)
        w_out = state["weights"][C_OUT]
        B = w_out if m.feedback == "symmetric" else self.B
        L = err_next @ B.T  # [T, n_hidden]
        net, _ = m.cnet.run(net, x, modulators={r: L for r in m.rules.values()})

        def filt(zb, z):
            zb = m.kappa * zb + z
            return zb, zb

        _, zbar = jax.lax.scan(filt, jnp.zeros((m.n_hidden,)), rec[M_HID])
        g_out = zbar.T @ err_next
        upd, opt_out = self.tx.update(g_out, opt_out, w_out)
        # on a chip the readout learns like the rules on W_in: stochastic rounding onto the grid
        # (deterministic rounding dropped every adam step below half a grid step, so on 8-bit
        # Loihi 2 W_out never changed)
        w_new = _project(m, optax.apply_updates(w_out, upd), jax.random.fold_in(key, 1))
        net["weights"] = {**net["weights"], C_OUT: w_new}
        loss = self._ce(v, y)
        correct = jnp.argmax(v[m.t0:].mean(0)) == y
        return (net, opt_out, t + 1, shifts), (loss, correct)

    def _eprop_epoch_impl(self, state: Any, xs: Any, ys: Any, t0: Any, key: Any, shifts: tuple):
        import jax

        keys = jax.random.split(key, xs.shape[0])
        (net, opt, _, _), (loss, corr) = jax.lax.scan(
            self._eprop_sample, (state["net"], state["opt_out"], t0, shifts), (xs, ys, keys))
        return {"net": net, "opt_out": opt}, loss.mean(), corr.mean()

    # ---------------------------------------------------------------- BPTT
    def _bptt_loss(self, w: Any, x: Any, y: Any, t: Any, key: Any, shifts: tuple):
        import jax
        import jax.numpy as jnp

        m = self.model
        fw = {k: v + jax.lax.stop_gradient(_project(m, v) - v) for k, v in w.items()}
        rec = self._forward(fw, self._shift(x, t, key, shifts))
        v = rec[M_OUT]
        return self._ce(v, y), jnp.argmax(v[m.t0:].mean(0)) == y

    def _bptt_step_impl(self, state: Any, xb: Any, yb: Any, t: Any, key: Any, shifts: tuple):
        import jax
        import optax

        keys = jax.random.split(key, xb.shape[0])
        ts = t + jax.numpy.arange(xb.shape[0])

        def batch_loss(w):
            loss, corr = jax.vmap(self._bptt_loss, in_axes=(None, 0, 0, 0, 0, None))(
                w, xb, yb, ts, keys, shifts)
            return loss.mean(), corr.mean()

        from neurorl.plasticity.bptt import mask_grads

        (loss, acc), g = jax.value_and_grad(batch_loss, has_aux=True)(state["w"])
        g = mask_grads(self.model.cnet, g)  # no step on a synapse the network lacks
        upd, opt = self.tx.update(g, state["opt"], state["w"])
        return {"w": optax.apply_updates(state["w"], upd), "opt": opt}, loss, acc

    # ---------------------------------------------------------------- public
    def train_epoch(self, xs: np.ndarray, ys: np.ndarray, t_start: int, key: Any,
                    order_seed: int, shifts: tuple = ()) -> dict[str, float]:
        """One pass over ``xs [N, T, n]`` in a seeded random order; returns loss and accuracy.

        ``shifts``: :class:`~neurorl.data.shifts.EventShift` s applied to each training sample at
        its sample counter (``t_start`` + position in the epoch).
        """
        import jax
        import jax.numpy as jnp

        order = np.random.default_rng(order_seed).permutation(len(xs))
        if self.cfg.learning.rule == "eprop":  # scans of <= CHUNK samples (memory), same result
            losses, accs, ns = [], [], []
            for i in range(0, len(order), self.CHUNK):
                idx = order[i:i + self.CHUNK]
                self.state, loss, acc = self._eprop_epoch(
                    self.state, jnp.asarray(np.asarray(xs[idx], np.float32)),
                    jnp.asarray(np.asarray(ys[idx], np.int32)), jnp.int32(t_start + i),
                    jax.random.fold_in(key, i), tuple(shifts))
                losses.append(float(loss))
                accs.append(float(acc))
                ns.append(len(idx))
            return {"loss": float(np.average(losses, weights=ns)),
                    "train_accuracy": float(np.average(accs, weights=ns))}
        xs, ys = np.asarray(xs[order], np.float32), np.asarray(ys[order], np.int32)
        bs = self.cfg.learning.batch_size
        losses, accs, ns = [], [], []
        for i in range(0, len(xs), bs):
            self.state, loss, acc = self._bptt_step(
                self.state, jnp.asarray(xs[i:i + bs]), jnp.asarray(ys[i:i + bs]),
                jnp.int32(t_start + i), jax.random.fold_in(key, i), tuple(shifts))
            losses.append(float(loss))
            accs.append(float(acc))
            ns.append(len(xs[i:i + bs]))
        return {"loss": float(np.average(losses, weights=ns)),
                "train_accuracy": float(np.average(accs, weights=ns))}

    def _eval_one(self, weights: Any, x: Any, t: Any, key: Any, shifts: tuple):
        import jax.numpy as jnp

        rec = self._forward(weights, self._shift(x, t, key, shifts))
        v = rec[M_OUT]
        return {"pred": jnp.argmax(v[self.model.t0:].mean(0)), "hidden": rec[M_HID],
                "input": rec[M_IN]}

    def evaluate(self, xs: np.ndarray, ys: np.ndarray, *, t: int = 0, seed: int = 0,
                 chunk: int = 256, details: bool = False, shifts: tuple = ()) -> dict[str, Any]:
        """Test accuracy (and, with ``details``, the neuromorphic metrics) at training sample ``t``
        under ``shifts`` (evaluated at severity of sample ``t``).

        Metrics per inference (one sample): spikes (hidden layer), activation sparsity of the
        input relay and hidden spikes (NeuroBench definition), synaptic operations (effective
        ACs of W_in, W_rec, W_out; dense count), latency to first spike (bins, mean over
        samples of the earliest hidden spike), spikes per correct inference, and energy per
        inference on every chip with an energy model (:mod:`neurorl.hardware.energy`).
        """
        import jax
        import jax.numpy as jnp

        from neurorl.metrics import neuromorphic as NM

        m = self.model
        w = {k: _project(m, v) for k, v in self.weights().items()}
        correct, spikes, first, syn, dense, nz, tot = [], [], [], [], 0.0, 0.0, 0.0
        for i in range(0, len(xs), chunk):
            xb = jnp.asarray(np.asarray(xs[i:i + chunk], np.float32))
            keys = jax.random.split(jax.random.key(seed + i), xb.shape[0])
            out = self._eval(w, xb, jnp.int32(t), keys, tuple(shifts))
            pred = np.asarray(out["pred"])
            correct.append(pred == np.asarray(ys[i:i + chunk]))
            if details:
                h, s_in = out["hidden"], out["input"]
                spikes.append(np.asarray(h.sum((1, 2))))
                fs = jax.vmap(NM.first_spike_latency)(h)  # [B, n_hidden]
                first.append(np.asarray(fs.min(1)))
                nz += float(jnp.count_nonzero(h) + jnp.count_nonzero(s_in))
                tot += float(h.size + s_in.size)
                pairs = [(s_in, w[C_IN]), (h, w[C_OUT])]
                if C_REC in w:
                    pairs.append((jnp.concatenate([jnp.zeros_like(h[:, :1]), h[:, :-1]], 1),
                                  w[C_REC]))
                ops = [jax.vmap(NM.synaptic_operations, in_axes=(0, None))(a, b) for a, b in pairs]
                syn.append(np.asarray(sum(o.acs + o.macs for o in ops)))
                dense += float(sum(o.dense.sum() for o in ops))
        corr = np.concatenate(correct)
        res: dict[str, Any] = {"accuracy": float(corr.mean())}
        if details:
            sp = np.concatenate(spikes)
            fl = np.concatenate(first)
            n_s = len(corr)
            res.update(
                spikes_per_inference=float(sp.mean()),
                spikes_per_correct_inference=(float(sp.sum() / corr.sum()) if corr.sum()
                                              else None),
                activation_sparsity=1.0 - nz / max(tot, 1.0),
                synops_per_inference=float(np.concatenate(syn).mean()),
                dense_synops_per_inference=dense / n_s,
                first_spike_latency_bins=(float(fl[np.isfinite(fl)].mean())
                                          if np.isfinite(fl).any() else None),
                energy_per_inference_j=energy_per_inference(
                    float(np.concatenate(syn).mean()), m.n_hidden + m.n_out + m.n_in, m.T))
        return res


def energy_per_inference(synops: float, neurons: int, steps: int) -> dict[str, float]:
    """Joules per inference on every chip with an energy model: ``synops`` accumulates, ``neurons
    x steps`` neuron updates and ``steps`` chip steps of static power (no learning on chip)."""
    from neurorl.hardware.chips import CHIPS
    from neurorl.hardware.energy import ActivityCounts, energy

    out = {}
    for name, chip in CHIPS.items():
        if not any(getattr(chip, f, None) is not None
                   for f in ("e_synop_pj", "e_neuron_pj", "e_learn_pj", "static_power_w")):
            continue
        counts = ActivityCounts(synops_ac=float(synops), neuron_updates=float(neurons * steps),
                                active_neuron_updates=float(neurons * steps),
                                learning_updates=0.0, steps=float(steps))
        out[name] = float(energy(counts, name).total)
    return out


# ----------------------------------------------------------------------------------------------
# experiment
# ----------------------------------------------------------------------------------------------


def _tasks(cfg: ClassificationConfig, train, test) -> list[dict[str, Any]]:
    """Task list: ``{"name", "train_idx", "test_idx", "shifts"}`` (one task without continual)."""
    c = cfg.continual
    all_tr, all_te = np.arange(len(train)), np.arange(len(test))
    if c.mode == "none":
        return [{"name": "all", "train_idx": all_tr, "test_idx": all_te, "shifts": cfg.shifts}]
    if c.mode == "class_incremental":
        groups = np.array_split(np.arange(train.n_classes), c.n_tasks)
        return [{"name": f"classes {g.min()}-{g.max()}",
                 "train_idx": all_tr[np.isin(train.y, g)], "test_idx": all_te[np.isin(test.y, g)],
                 "shifts": cfg.shifts} for g in groups]
    return [{"name": f"domain {i}", "train_idx": all_tr, "test_idx": all_te,
             "shifts": list(cfg.shifts) + list(d)} for i, d in enumerate(c.domains)]


def run_classification(cfg: ClassificationConfig, run_dir: str | Path, *,
                       progress: bool = True, data: Any = None,
                       wandb_mode: str | None = None) -> dict[str, Any]:
    """Train and evaluate one classification config into ``run_dir``; returns the summary.

    Writes ``config.yaml``, ``chunks.jsonl`` (one line per epoch: task, epoch, samples seen,
    loss, train / test accuracy, seconds) and ``summary.json`` (final accuracy and metrics per
    inference, per-task accuracy matrix and GEM ACC / BWT for continual runs). Unless the wandb
    mode is ``disabled``, one wandb run (offline by default, under ``run_dir/wandb``) gets
    each epoch's line as ``chunk/<key>`` with the training samples seen as its ``env_step``
    axis, and the summary as flat summary metrics -- through the logging layer's
    :class:`~neurorl.experiment.logging.RunLogger`, as a control run.

    Args:
        cfg: validated config.
        run_dir: output directory (created).
        progress: print one line per epoch.
        data: optional ``(train, test)`` EventData (default: :func:`load_data`).
        wandb_mode: override ``cfg.logging.wandb`` (``offline``, ``online``, ``disabled``).
    """
    import jax
    import yaml

    from neurorl.experiment.logging import JsonlWriter, RunLogger
    from neurorl.metrics.continual import gem_accuracy, gem_backward_transfer

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    train, test = data if data is not None else load_data(cfg)
    model = build_model(cfg, train.n_inputs, train.n_classes, train.n_time_bins)
    tasks = _tasks(cfg, train, test)
    key = jax.random.key(cfg.training.seed)
    log = JsonlWriter(run_dir / "chunks.jsonl")
    log.truncate_to(0)
    logger = RunLogger(
        run_dir, members=[{"name": cfg.name, "job_type": cfg.learning.rule,
                           "config": to_dict(cfg)}],
        group=cfg.logging.group or cfg.name, wandb_mode=wandb_mode or cfg.logging.wandb,
        project=cfg.logging.project, jsonl=False)
    R = np.zeros((len(tasks), len(tasks)))
    t_seen = 0
    trainer = Trainer(model, cfg, jax.random.fold_in(key, 0))

    def test_shifts(task):  # the shifts a test sample of this task sees
        return make_shifts([s for s in task["shifts"] if s.at_test], train.n_inputs)

    for i, task in enumerate(tasks):
        shifts = make_shifts(task["shifts"], train.n_inputs)
        xs, ys = train.x[task["train_idx"]], train.y[task["train_idx"]]
        for ep in range(cfg.learning.epochs):
            t0 = time.perf_counter()
            rec = trainer.train_epoch(xs, ys, t_seen, jax.random.fold_in(key, 1000 * i + ep + 1),
                                      order_seed=cfg.training.seed * 10007 + 101 * i + ep,
                                      shifts=shifts)
            t_seen += len(xs)
            te = trainer.evaluate(test.x[task["test_idx"]], test.y[task["test_idx"]], t=t_seen,
                                  shifts=test_shifts(task))
            rec.update(task=i, epoch=ep, samples=t_seen, test_accuracy=te["accuracy"],
                       seconds=time.perf_counter() - t0)
            log.write_many([rec])
            logger.log([], [{**rec, "member": 0, "env_step": t_seen}])
            if progress and cfg.logging.progress:
                print(f"[{cfg.name}] task {i} epoch {ep}: loss {rec['loss']:.3f} train "
                      f"{rec['train_accuracy']:.3f} test {rec['test_accuracy']:.3f}", flush=True)
        for j, other in enumerate(tasks):
            R[i, j] = trainer.evaluate(test.x[other["test_idx"]], test.y[other["test_idx"]],
                                       t=t_seen, shifts=test_shifts(other))["accuracy"]
    final = trainer.evaluate(test.x, test.y, t=t_seen, details=True,
                             shifts=test_shifts(tasks[-1]))
    summary: dict[str, Any] = {
        "name": cfg.name, "task": "classification", "dataset": cfg.dataset.name,
        "rule": cfg.learning.rule, "chip": cfg.hardware.chip, "samples": t_seen,
        "n_train": len(train), "n_test": len(test), "n_inputs": train.n_inputs,
        "n_time_bins": train.n_time_bins, "n_classes": train.n_classes,
        "clipped_fraction_train": train.clipped_fraction,
        "saturation_train": train.saturation, **final,
        "threshold": cfg.training.threshold,
        "reached_threshold": (None if cfg.training.threshold is None
                              else final["accuracy"] >= cfg.training.threshold),
    }
    if len(tasks) > 1:
        summary["continual"] = {"mode": cfg.continual.mode, "tasks": [t["name"] for t in tasks],
                                "R": R.tolist(), "gem_accuracy": gem_accuracy(R),
                                "gem_backward_transfer": gem_backward_transfer(R)}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=_json))
    logger.finish([summary])
    return summary


def _json(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return str(x)


def print_summary(summary: Mapping[str, Any]) -> None:
    """A rich table of the summary (as ``neurorl run`` prints for control tasks)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{summary['name']}: {summary['rule']} on {summary['dataset']} "
                    f"(chip {summary['chip']})")
    for col in ("test accuracy", "spikes/inference", "synops/inference", "sparsity",
                "first spike (bins)", "energy/inference (J, loihi)"):
        t.add_column(col)
    e = (summary.get("energy_per_inference_j") or {}).get("loihi")

    def f(x, spec=".3f"):
        return "-" if x is None else format(x, spec)

    t.add_row(f(summary["accuracy"]), f(summary.get("spikes_per_inference"), ".1f"),
              f(summary.get("synops_per_inference"), ".0f"),
              f(summary.get("activation_sparsity")), f(summary.get("first_spike_latency_bins"),
                                                      ".1f"), f(e, ".3g"))
    Console().print(t)
    if "continual" in summary:
        c = summary["continual"]
        print(f"continual ({c['mode']}): ACC {c['gem_accuracy']:.3f}  "
              f"BWT {c['gem_backward_transfer']:+.3f}")


def cmd_run(cfg: ClassificationConfig, out: str | None, progress: bool = True,
            overwrite: bool = False, wandb_mode: str | None = None) -> int:
    """``neurorl run`` for a classification config (``--out`` into a directory that holds a
    run: refused unless ``overwrite``, which first removes that run's files; ``wandb_mode``:
    ``--wandb``, overriding ``logging.wandb``)."""
    from neurorl.experiment.runner import clear_run_files, existing_run_error

    run_dir = Path(out) if out else Path(cfg.logging.dir) / (
        f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if not overwrite and (err := existing_run_error(run_dir)) is not None:
        raise err
    if overwrite:
        clear_run_files(run_dir)
    print(f"run directory: {run_dir}")
    summary = run_classification(cfg, run_dir, progress=progress, wandb_mode=wandb_mode)
    print_summary(summary)
    from neurorl.experiment.reporting import print_run_files

    print_run_files(run_dir)  # the closing lines name summary.json and the other files
    return 0


def cmd_validate(cfg: ClassificationConfig, path: str) -> int:
    """``neurorl validate`` for a classification config."""
    print(f"{path}: valid (classification: {cfg.learning.rule} on {cfg.dataset.name}, "
          f"{cfg.learning.epochs} epoch(s), chip {cfg.hardware.chip})")
    return 0
