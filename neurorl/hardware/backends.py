"""Compile targets of N-HAL networks: the unconstrained simulator and one backend per chip.

``Network.compile(backend=name)`` builds a backend with :func:`make_backend` and hands it to the
``CompiledNetwork``, which calls it at three points and nowhere else:

1. **before the structure is built** -- ``check_rules(rules)``: every attached ``LearningRule``
   must be runnable on the chip (``ChipSpec.on_chip_learning``) unless learning is explicitly
   off-chip (``compile(..., off_chip_learning=True)``, YAML ``hardware.off_chip_learning``);
   otherwise ``UnsupportedOnChipError``;
2. **after the structure is built** (connectivity sampled on the host) -- ``check(cnet)``: places
   the neurons on cores with :func:`neurorl.hardware.mapping.check_placement` and raises
   ``ChipCapacityError`` for fan-in, fan-out, synapse memory or core count over the chip's limit
   (naming group, neuron, core, the ``ChipSpec`` field and the amount over); it also records what
   counting and projecting need (per-connection grids, fan-outs, layouts);
3. **hooks** -- ``project_weights(w, name)`` is the network's weight projection (the chip's grid,
   per connection, dense or sparse storage), applied at init and after every learning update;
   ``adapt(groups, rules)`` returns the groups with the chip's membrane precision in their neuron
   step and the rules with the chip's learning engine appended to their optimizer: stochastic
   rounding onto the grid when learning on chip (Gupta et al. 2015; unbiased, so updates smaller
   than half a grid step survive on average), or float shadow weights kept in the optimizer state
   when learning off chip (the host learns in float; the network always runs on the projection).

Energy comes from the compiled network's own counts: :meth:`Backend.step_counts` reads the
spikes of the step that produced a state (``state["history"][g][0]``), :meth:`Backend.counts`
takes spike records ``[..., n]`` per group; both give :class:`NetworkCounts` -- spikes per group,
synaptic events per connection (spikes x the source neuron's fan-out in that connection, counted
when the spike is emitted), neuron updates per group (every neuron of every group, every step),
active neuron updates (neurons that received >= 1 event) and learning updates (every synapse of
every plastic connection once per learning epoch of ``learning_epoch`` steps, on chip only;
crossbars count programming pulses in the engine state, ``EngineState.ops``) -- and
:meth:`Backend.energy` prices them with the chip's constants
(:func:`neurorl.hardware.energy.energy`).

References:
    Davies et al. 2018, IEEE Micro 38(1), Table 2 (per-event energy terms); Gupta et al. 2015,
    ICML (stochastic rounding); nengo-loihi ``builder/discretize.py`` (per-projection weight
    scale); Merolla et al. 2014, Science 345:668 (TrueNorth fan-in, axon types).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from neurorl.errors import ConfigError, closest
from neurorl.hardware.chips import CHIPS, ChipSpec, get_chip
from neurorl.hardware.constraints import (
    ProjectionState,
    WeightGrid,
    fixed_point,
    project_quantize,
    project_shared_types,
    require_on_chip_learning,
    weight_grid,
)
from neurorl.hardware.energy import ActivityCounts, EnergyBreakdown, energy
from neurorl.hardware.learning_engine import (
    AUTO,
    ENGINES,
    LearningEngine,
    commit_weights,
    engine_for,
    engine_with,
    on_engine,
    split_auto,
)
from neurorl.hardware.mapping import MappingReport, check_placement, compiled_fan, connection_fan

Array = jax.Array

SIMULATORS = ("jax", "float")
AUTO_W_SCALE = 2.0  # w_max="auto": grid covers 2 x max|w_init| (as TrainConfig.chip_w_scale)


@flax.struct.dataclass
class NetworkCounts:
    """Activity of a compiled network, per group and per connection (arrays ``[...]`` per step).

    Attributes:
        spikes: group -> spikes emitted.
        synaptic_events: connection -> synaptic events (each spike x its fan-out there).
        neuron_updates: group -> neuron state updates (the group's size per step).
        active_neuron_updates: group -> updates of neurons that received >= 1 event.
        learning_updates: connection -> on-chip synaptic learning updates.
        steps: time steps counted.
    """

    spikes: dict[str, Array]
    synaptic_events: dict[str, Array]
    neuron_updates: dict[str, Array]
    active_neuron_updates: dict[str, Array]
    learning_updates: dict[str, Array]
    steps: Array

    def __add__(self, other: NetworkCounts) -> NetworkCounts:
        return jax.tree_util.tree_map(lambda a, b: a + b, self, other)

    def activity(self) -> ActivityCounts:
        """Totals over groups and connections as :class:`ActivityCounts` (energy's input)."""

        def tot(d: dict[str, Array]) -> Array:
            vals = list(d.values())
            return sum(vals[1:], vals[0]) if vals else 0.0 * self.steps

        return ActivityCounts(
            synops_ac=tot(self.synaptic_events),
            neuron_updates=tot(self.neuron_updates),
            active_neuron_updates=tot(self.active_neuron_updates),
            learning_updates=tot(self.learning_updates),
            steps=self.steps,
        )


@flax.struct.dataclass
class EngineState:
    """State of on-chip learning on one connection (``ChipBackend.learn_init``).

    Attributes:
        key: PRNG key of the engine's rounding / pulse noise.
        ops: synaptic learning updates so far (every synapse of the connection per epoch on a
            digital engine; programming pulses on a crossbar) -- priced by ``e_learn_pj``.
        t: chip time of the last update, s (memristor drift).
        devices: the crossbar's :class:`~neurorl.hardware.memristor.PulseState`, else ``None``.
    """

    key: Array
    ops: Array
    t: Array
    devices: Any = None


@flax.struct.dataclass
class ShadowState:
    """Optimizer state of off-chip learning: the host's float weights of connection ``name``."""

    weights: Array
    name: str = flax.struct.field(pytree_node=False, default="")


def _weights_hash(w: Array) -> Array:
    """A uint32 hash of a weight matrix (seeds per-network rounding noise; traceable)."""
    bits = jax.lax.bitcast_convert_type(jnp.asarray(w, jnp.float32), jnp.uint32).reshape(-1)
    mult = (jnp.arange(bits.shape[0], dtype=jnp.uint32) * jnp.uint32(2654435761)) | jnp.uint32(1)
    return jnp.sum(bits * mult, dtype=jnp.uint32)


class Backend:
    """The unconstrained simulator (``"jax"``, ``"float"``): no limits, identity projections.

    A backend is built per compiled network (``Network.compile`` does it); ``check`` binds it to
    that network. Chip backends are :class:`ChipBackend`.

    Attributes:
        name: backend name.
        chip: the ``ChipSpec`` (the float reference for the simulator: no energy constants).
        off_chip_learning: learning runs on the host (only meaningful for chips).
        mapping: the ``MappingReport`` of the bound network (chips), else ``None``.
    """

    projects = False

    def __init__(self, name: str = "jax", *, off_chip_learning: bool = False) -> None:
        self.name = name
        self.chip: ChipSpec = CHIPS["float"]
        self.off_chip_learning = bool(off_chip_learning)
        self.engine: LearningEngine = ENGINES["float"]
        self.learning_epoch = 1  # steps per learning epoch (make_train: the env step's substeps)
        self.mapping: MappingReport | None = None
        self._info: dict[str, Any] | None = None

    # ------------------------------------------------------------------ limits
    @property
    def on_chip(self) -> bool:
        """Whether the attached rules learn where the network runs (not ``off_chip_learning``)."""
        return not self.off_chip_learning

    def supports_learning(self, rule: Any) -> bool:
        """Whether ``rule`` (a name or ``LearningRule``) can learn on this backend's chip."""
        return self.chip.supports_learning(_rule_name(rule))

    def check_rules(self, rules: Any) -> None:
        """Raise ``UnsupportedOnChipError`` for a rule the chip cannot run (host side)."""

    def check(self, cnet: Any) -> MappingReport | None:
        """Check the compiled network against the chip's limits and bind to it (host side).

        Args:
            cnet: a ``CompiledNetwork`` whose structure is built.

        Returns:
            The ``MappingReport`` (chips) or ``None`` (simulator).

        Raises:
            ChipCapacityError: a limit of the chip is exceeded (chips).
        """
        self._bind(cnet)
        return None

    def _bind(self, cnet: Any) -> None:
        conns = {}
        for name, c in cnet.connections.items():
            s = cnet.structure[name]
            _, fan_out = connection_fan(cnet, name)
            conns[name] = dict(
                source=c.source.name, target=c.target.name,
                fan_out=jnp.asarray(fan_out, jnp.float32),
                mask=s.get("mask"), idx=s.get("idx"), valid=s.get("valid"),
                n_edges=int(np.sum(np.asarray(s["mask"] if "mask" in s else s["valid"]) != 0)),
                sign={"excitatory": 1.0, "inhibitory": -1.0}.get(c.effective_sign, 0.0),
            )
        self._info = dict(
            groups={g: grp.n for g, grp in cnet.groups.items()},
            conns=conns,
            plastic={r.connection.name for r in cnet.rules.values()},
            spike_monitors={m.name: m.group.name for m in cnet.monitors.values()
                            if getattr(m, "kind", None) == "spikes"},
        )

    # ------------------------------------------------------------------ projections
    def project_weights(self, w: Array, name: str | None = None, key: Array | None = None) -> Array:
        """Weights on the backend's grid (identity for the simulator)."""
        return w

    def project_state(self, x: Array, which: str = "membrane", scale: Any = 1.0) -> Array:
        """Neuron / trace state at the backend's precision (identity for the simulator)."""
        return x

    def adapt(self, groups: dict[str, Any], rules: dict[str, Any]) -> tuple[dict, dict]:
        """Groups and rules as the compiled network runs them (unchanged for the simulator)."""
        return groups, rules

    def float_weights(self, state: Mapping[str, Any]) -> dict[str, Array]:
        """Weights the host learns on: the float shadow where learning is off-chip, else the
        state's weights (which are what the network runs on)."""
        out = dict(state["weights"])
        for r in state.get("rules", {}).values():
            for leaf in jax.tree_util.tree_leaves(
                r.get("opt"), is_leaf=lambda x: isinstance(x, ShadowState)
            ):
                if isinstance(leaf, ShadowState):
                    out[leaf.name] = leaf.weights
        return out

    # ------------------------------------------------------------------ counts and energy
    def _require_bound(self) -> dict[str, Any]:
        if self._info is None:
            raise ConfigError("backend", self.name, "a backend bound by Network.compile "
                              "(use the compiled network's .hardware)")
        return self._info

    def counts(self, spikes: Mapping[str, Any]) -> NetworkCounts:
        """Counts from spike records of every group (jittable).

        Args:
            spikes: group name (or SpikeMonitor name) -> spikes ``[..., n]`` (e.g. ``[T, n]``
                monitor records, or ``[n]`` for one step). Every group must be present.

        Returns:
            ``NetworkCounts`` with arrays of the leading shape ``[...]``.

        Raises:
            ConfigError: a group's spikes are missing or have the wrong size.
        """
        info = self._require_bound()
        by_group: dict[str, Array] = {}
        for k, v in spikes.items():
            g = info["spike_monitors"].get(k, k)
            if g not in info["groups"]:
                raise ConfigError(f"counts.spikes[{k!r}]", k,
                                  f"a group of {sorted(info['groups'])}",
                                  closest(str(k), list(info["groups"])))
            by_group[g] = jnp.asarray(v, jnp.float32)
        missing = [g for g in info["groups"] if g not in by_group]
        if missing:
            raise ConfigError("counts.spikes", sorted(by_group), f"spikes of every group; missing "
                              f"{missing} (add a SpikeMonitor for each group)")
        lead = None
        for g, s in by_group.items():
            if s.shape[-1:] != (info["groups"][g],) or (lead is not None and s.shape[:-1] != lead):
                raise ConfigError(f"counts.spikes[{g!r}]", tuple(s.shape),
                                  f"[..., {info['groups'][g]}] with the same leading shape")
            lead = s.shape[:-1]
        return self._counts(by_group, lead)

    def step_counts(self, state: Mapping[str, Any]) -> NetworkCounts:
        """Counts of the step that produced ``state`` (its spikes are ``history[g][0]``).

        Jittable; accumulate them over a scan of ``step`` (``a + b``) for a run's total.
        """
        info = self._require_bound()
        spikes = {g: state["history"][g][0] for g in info["groups"]}
        return self._counts(spikes, ())

    def _counts(self, spikes: dict[str, Array], lead: tuple) -> NetworkCounts:
        info = self._info
        ones = jnp.ones(lead, jnp.float32)
        events, received = {}, {g: jnp.zeros(lead + (n,), jnp.float32)
                                for g, n in info["groups"].items()}
        for name, c in info["conns"].items():
            s = spikes[c["source"]]
            events[name] = s @ c["fan_out"]
            if c["mask"] is not None:
                arr = s @ c["mask"]
            else:
                arr = jnp.sum(s[..., c["idx"]] * c["valid"], axis=-1)
            received[c["target"]] = received[c["target"]] + arr
        # on chip every synapse of a plastic connection is updated once per learning epoch
        # (learning_epoch steps); crossbars price programming pulses instead (EngineState.ops)
        per = (0.0 if not self.on_chip or self.engine.kind == "pulses"
               else 1.0 / max(int(self.learning_epoch), 1))
        learn = {name: ones * float(info["conns"][name]["n_edges"]) * per
                 for name in sorted(info["plastic"])}
        return NetworkCounts(
            spikes={g: jnp.sum(s, axis=-1) for g, s in spikes.items()},
            synaptic_events=events,
            neuron_updates={g: ones * float(n) for g, n in info["groups"].items()},
            active_neuron_updates={g: jnp.sum(r > 0, axis=-1).astype(jnp.float32)
                                   for g, r in received.items()},
            learning_updates=learn,
            steps=ones,
        )

    def energy(self, counts: NetworkCounts | ActivityCounts, **kw: Any) -> EnergyBreakdown:
        """Joules of ``counts`` on the chip (:func:`neurorl.hardware.energy.energy`; per step
        when the counts are per step)."""
        if isinstance(counts, NetworkCounts):
            counts = counts.activity()
        return energy(counts, self.chip, **kw)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, off_chip_learning={self.off_chip_learning})"


class ChipBackend(Backend):
    """A chip from ``neurorl.hardware.CHIPS`` as a compile target (limits, grids, energy).

    Args:
        chip: chip name or ``ChipSpec``.
        off_chip_learning: the rules learn on the host (float shadow weights); the network runs
            on their projection. Required for rules the chip cannot run on chip.
        w_max: weight magnitude mapped to the chip's largest level: a float for every
            connection, a mapping connection name -> float, or ``"auto"``
            (``2 x max|w_init|`` per connection, sampled on the host; 1.0 where that is 0), like
            a per-projection weight exponent.
        state_precision: apply the chip's membrane width (``ChipSpec.membrane_bits``) to every
            group's ``v`` after each neuron step (fixed point in units of the group's threshold).
        engine: on-chip learning: fields of the chip's learning engine to change
            (:func:`~neurorl.hardware.learning_engine.engine_with`, e.g. the trace and tag
            scales); None: the chip's own engine.
    """

    projects = True

    def __init__(
        self,
        chip: str | ChipSpec,
        *,
        off_chip_learning: bool = False,
        w_max: Any = 1.0,
        state_precision: bool = True,
        engine: Mapping[str, Any] | None = None,
    ) -> None:
        spec = get_chip(chip)
        super().__init__(spec.name, off_chip_learning=off_chip_learning)
        self.chip = spec
        if not (w_max == "auto" or isinstance(w_max, Mapping) or _positive(w_max)):
            raise ConfigError("Network.compile.w_max", w_max,
                              "a float > 0, a mapping connection -> float > 0, or 'auto'")
        if isinstance(w_max, Mapping):
            for k, v in w_max.items():
                if not _positive(v):
                    raise ConfigError(f"Network.compile.w_max[{k!r}]", v, "a float > 0")
        self.w_max = w_max
        self.state_precision = bool(state_precision)
        self._engine_fields = dict(engine or {})
        if self._engine_fields:
            if off_chip_learning:
                raise ConfigError("Network.compile.engine", self._engine_fields,
                                  "None with off_chip_learning (the host learns in float)")
            engine_with(spec.name, self._engine_fields, field="Network.compile.engine")
            _, auto, _ = split_auto(self._engine_fields, "Network.compile.engine")
            if auto:  # a backend has no env to calibrate with
                raise ConfigError(f"Network.compile.engine.{auto[0]}", AUTO,
                                  "a number ('auto' scales are calibrated by make_train and "
                                  "the experiment runner: neurorl.hardware.calibrate)")
        self.engine = ENGINES["float"] if off_chip_learning else (
            self._engine(ENGINES.get(spec.name, ENGINES["float"])))
        self._grids: dict[str | None, WeightGrid | None] = {
            None: weight_grid(spec, w_max if _positive(w_max) else 1.0)}

    def check_rules(self, rules: Any) -> None:
        """Raise ``UnsupportedOnChipError`` for a rule the chip cannot run, unless off-chip."""
        for r in rules:
            require_on_chip_learning(self.chip, _rule_name(r), self.off_chip_learning)
            if not self.off_chip_learning:
                self.engine = self._engine(engine_for(self.chip, _rule_name(r)))

    def _engine(self, eng: Any) -> Any:
        """``eng`` with the compile call's engine fields changed."""
        return eng.replace(**self._engine_fields) if self._engine_fields else eng

    def check(self, cnet: Any) -> MappingReport:
        """Place the network on the chip's cores and check every limit; bind to ``cnet``.

        Raises:
            ChipCapacityError: fan-in, fan-out, synapse memory or core count over the limit.
            UnsupportedOnChipError: a rule the chip cannot learn on chip, learning not off-chip.
            ConfigError: ``w_max`` names a connection the network does not have.
        """
        self.check_rules(cnet.rules.values())
        fan_in, fan_out, into, out_of = compiled_fan(cnet)
        groups = {g: grp.n for g, grp in cnet.groups.items()}
        self.mapping = check_placement(groups, fan_in, fan_out, self.chip, into=into, out_of=out_of)
        self._bind(cnet)
        names = list(cnet.connections)
        if isinstance(self.w_max, Mapping):
            for k in self.w_max:
                if k not in cnet.connections:
                    raise ConfigError(f"Network.compile.w_max[{k!r}]", k,
                                      f"a connection of this network {names}", closest(k, names))
        for name in names:
            if isinstance(self.w_max, Mapping):
                wm = float(self.w_max.get(name, 1.0))
            elif self.w_max == "auto":
                m = _initial_magnitude(cnet, name)
                wm = AUTO_W_SCALE * m if m > 0 else 1.0
            else:
                wm = float(self.w_max)
            self._grids[name] = weight_grid(self.chip, wm)
        return self.mapping

    def grid(self, name: str | None = None) -> WeightGrid | None:
        """The weight grid of connection ``name`` (``None``: the default ``w_max`` grid)."""
        return self._grids.get(name, self._grids[None])

    def project_weights(self, w: Array, name: str | None = None, key: Array | None = None) -> Array:
        """Weights of connection ``name`` on the chip's grid (dense or sparse storage).

        Deterministic round-half-to-even without ``key``, stochastic rounding with it
        (:func:`neurorl.hardware.constraints.project_quantize`); chips with shared weight types
        (TrueNorth) fit one weight per post neuron and axon type (``i % weight_types``), with
        ``[n_post, k_max]`` sparse storage mapped through its index matrix. Zeros stay zero.
        """
        grid = self.grid(name)
        if self.chip.weight_types:
            conn = (self._info or {}).get("conns", {}).get(name) if name is not None else None
            if conn is not None and conn["idx"] is not None:
                return _shared_types_sparse(w, conn["idx"], self.chip.weight_types, grid)
            types = jnp.arange(w.shape[0]) % self.chip.weight_types
            return project_shared_types(w, types, self.chip.weight_types, grid)
        if grid is None:
            return w
        return project_quantize(w, grid.step, grid.lo, grid.hi, key)

    def project_state(self, x: Array, which: str = "membrane", scale: Any = 1.0) -> Array:
        """State ``x`` as the chip's fixed point number (identity where the width is not set).

        ``x / scale`` is stored in ``membrane_bits`` (or ``trace_bits``; at most 31, beyond
        float32's precision anyway) two's complement bits
        with 4 integer bits (range +-8 in units of ``scale``, the group's threshold),
        saturating or wrapping as ``ChipSpec.membrane_overflow`` says
        (:func:`neurorl.hardware.constraints.fixed_point`).
        """
        if which not in ("membrane", "trace"):
            raise ConfigError("project_state.which", which, "'membrane' or 'trace'",
                              closest(str(which), ["membrane", "trace"]))
        bits = self.chip.membrane_bits if which == "membrane" else self.chip.trace_bits
        if bits is None:
            return x
        bits = min(bits, 31)  # float32 state holds no more (fixed_point's range)
        mode = self.chip.membrane_overflow if which == "membrane" else "saturate"
        return fixed_point(x / scale, bits, max(bits - 4, 0), mode) * scale

    def adapt(self, groups: dict[str, Any], rules: dict[str, Any]) -> tuple[dict, dict]:
        """Groups with the chip's membrane precision; rules with the chip's learning engine."""
        if self.state_precision and self.chip.membrane_bits is not None:
            groups = {n: self._precise_group(g) for n, g in groups.items()}
        out = {}
        for i, (n, r) in enumerate(rules.items()):
            r2 = copy.copy(r)
            cn = r.connection.name
            tail = self._shadow(cn) if self.off_chip_learning else self._engine_tail(cn, i)
            r2.optimizer = optax.chain(r.optimizer, tail)
            if not self.off_chip_learning:
                r2.rule = on_engine(r.rule, self.engine, salt=i)
            out[n] = r2
        return groups, out

    def _precise_group(self, g: Any) -> Any:
        model = g.model
        step = model.step
        project = self.project_state

        def precise_step(params: Any, state: Any, current: Array) -> tuple[Array, Any]:
            z, ns = step(params, state, current)
            if not hasattr(ns, "v"):  # a custom model without a membrane field
                return z, ns
            scale = getattr(params, "v_th", None)
            if scale is None:
                scale = jnp.abs(getattr(params, "v_peak", 1.0))
            return z, ns.replace(v=project(ns.v, "membrane", scale))

        g2 = copy.copy(g)
        g2.model = model._replace(step=precise_step)
        return g2

    # ------------------------------------------------------------------ the learning engine
    def _w_scale(self, name: str | None) -> float:
        """Weight of device unit 1.0 on a crossbar: the connection's grid range over the
        device's upper bound (PCM pair: +-hi; RRAM: the negative bound maps to -hi)."""
        from neurorl.hardware.memristor import get_pulse_device

        dev = get_pulse_device(self.chip.device)
        hi = self.grid(name).hi
        return hi / (dev.g_hi if dev.pair else abs(dev.g_lo))

    def learn_init(self, w: Array, name: str | None = None, key: Array | None = None
                   ) -> EngineState:
        """Engine state for learning connection ``name`` on chip from weights ``w`` (crossbars:
        fresh devices with their variability, programmed to ``w``)."""
        key = jax.random.PRNGKey(0) if key is None else key
        k0, k1 = jax.random.split(key)
        zero = jnp.zeros((), jnp.float32)
        devices = None
        if self.engine.kind == "pulses":
            from neurorl.hardware.memristor import get_pulse_device, pulse_init

            dev = get_pulse_device(self.chip.device)
            u = jnp.asarray(w, jnp.float32) / self._w_scale(name)
            g0 = (jnp.stack([jnp.maximum(u, 0.0), jnp.maximum(-u, 0.0)]) if dev.pair
                  else jnp.stack([u, jnp.zeros_like(u)]))
            devices = pulse_init(k1, tuple(jnp.shape(w)), dev, g0)
        return EngineState(k0, zero, zero, devices)

    def learn_commit(self, w_old: Array, w_new: Array, name: str | None, state: EngineState
                     ) -> tuple[Array, EngineState]:
        """One learning epoch on the chip: the rule asked to move ``w_old`` to ``w_new``.

        Digital engines (Loihi, SpiNNaker, BrainScaleS-2): the change through the engine's
        accumulator onto the connection's grid (:func:`~neurorl.hardware.learning_engine.
        commit_weights`: stochastic rounding on Loihi). Crossbars: programming pulses
        (:func:`~neurorl.hardware.memristor.pulse_update`) and the devices read back (drift,
        read noise). Counts the learning operations for energy.

        Returns:
            ``(weights as the chip holds them, new state)``.
        """
        key, k1, k2 = jax.random.split(state.key, 3)
        dt = self.learning_epoch * self.chip.dt_ms * 1e-3
        t = state.t + dt
        if self.engine.kind == "pulses":
            from neurorl.hardware.memristor import pulse_read, pulse_update

            scale = self._w_scale(name)
            before = state.devices.total_pulses
            devices = pulse_update(state.devices, w_new - w_old, k1, t, self.chip.device, scale)
            w = pulse_read(devices, t, self.chip.device, scale, k2)
            ops = state.ops + (devices.total_pulses - before)
            return w, EngineState(key, ops, t, devices)
        grid = self.grid(name)
        if grid is None:
            return w_new, state.replace(key=key, t=t)
        w = commit_weights(w_old, w_new, grid.step, self.engine, grid.lo, grid.hi, k1)
        conn = (self._info or {}).get("conns", {}).get(name)
        n = float(conn["n_edges"]) if conn is not None else float(np.size(w_old))
        return w, EngineState(key, state.ops + n, t, state.devices)

    def _engine_tail(self, name: str, i: int) -> optax.GradientTransformation:
        """On-chip learning as the last transformation of a rule's optimizer."""

        def init_fn(params: Array) -> EngineState:
            return self.learn_init(params, name, jax.random.fold_in(jax.random.PRNGKey(i),
                                                                    _weights_hash(params)))

        def update_fn(updates: Array, state: EngineState, params: Array | None = None):
            if params is None:
                raise ConfigError("on-chip learning update", None, "params (the weights)")
            w, state = self.learn_commit(params, params + updates, name, state)
            return w - params, state

        return optax.GradientTransformation(init_fn, update_fn)

    def _stochastic(self, name: str, i: int) -> optax.GradientTransformation:
        """On-chip learning: the updated weights rounded stochastically onto the grid."""

        def init_fn(params: Array) -> ProjectionState:
            return ProjectionState(jax.random.fold_in(jax.random.PRNGKey(i), _weights_hash(params)))

        def update_fn(updates: Array, state: ProjectionState, params: Array | None = None):
            if params is None:
                raise ConfigError("on-chip learning update", None, "params (the weights)")
            key, sub = jax.random.split(state.key)
            q = self.project_weights(params + updates, name, sub)
            return q - params, ProjectionState(key)

        return optax.GradientTransformation(init_fn, update_fn)

    def _shadow(self, name: str) -> optax.GradientTransformation:
        """Off-chip learning: float shadow weights in the optimizer state; the chip's copy is
        their deterministic projection (Dale's sign and the structure kept on the shadow)."""

        def init_fn(params: Array) -> ShadowState:
            return ShadowState(params, name)

        def update_fn(updates: Array, state: ShadowState, params: Array | None = None):
            if params is None:
                raise ConfigError("off-chip learning update", None, "params (the weights)")
            c = self._require_bound()["conns"][name]
            s = state.weights + updates
            if c["sign"] > 0:
                s = jnp.maximum(s, 0.0)
            elif c["sign"] < 0:
                s = jnp.minimum(s, 0.0)
            if c["mask"] is not None:
                s = s * c["mask"]
            q = self.project_weights(s, name)
            return q - params, ShadowState(s, name)

        return optax.GradientTransformation(init_fn, update_fn)


# -------------------------------------------------------------------------------------------------


def _positive(x: Any) -> bool:
    return (isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
            and x > 0)


def _rule_name(rule: Any) -> str:
    if isinstance(rule, str):
        return rule
    return str(getattr(rule, "rule_name", getattr(rule, "name", "custom")))


def _initial_magnitude(cnet: Any, name: str) -> float:
    """max |w| of connection ``name``'s initial weights, sampled on the host (key 0)."""
    c, s = cnet.connections[name], cnet.structure[name]
    keep = np.asarray(s["mask"] if "mask" in s else s["valid"])
    if c._weight_init is None:
        w = np.asarray(c.weight, np.float32)
        if "mask" not in s:
            w = w[np.asarray(s["idx"]), np.arange(c.target.n)[:, None]]
    else:
        n_edges = max(int(keep.sum()), 1)
        fan_in = max(n_edges / c.target.n, 1.0)
        fan_out = max(n_edges / c.source.n, 1.0)
        w = np.asarray(c._weight_init(jax.random.PRNGKey(0), keep.shape, fan_in, fan_out))
    return float(np.max(np.abs(w * keep), initial=0.0))


def _shared_types_sparse(w: Array, idx: Array, n_types: int, grid: WeightGrid | None) -> Array:
    """TrueNorth shared types on sparse storage ``w [n_post, k_max]`` (pre index ``idx``)."""
    types = jnp.asarray(idx) % n_types  # [n_post, k_max]: type of each slot's axon
    onehot = jax.nn.one_hot(types, n_types, dtype=w.dtype)  # [n_post, k_max, T]
    connected = (w != 0).astype(w.dtype)
    sums = jnp.einsum("pk,pkt->pt", w, onehot)
    counts = jnp.einsum("pk,pkt->pt", connected, onehot)
    per_type = sums / jnp.maximum(counts, 1.0)
    if grid is not None:
        per_type = project_quantize(per_type, *grid)
    return jnp.take_along_axis(per_type, types, axis=1) * connected


def backend_names() -> list[str]:
    """Every name ``compile(backend=...)`` accepts: the simulators and the chips."""
    return list(SIMULATORS) + [c for c in CHIPS if c not in SIMULATORS]


def make_backend(
    name: str | ChipSpec,
    *,
    off_chip_learning: bool = False,
    w_max: Any = 1.0,
    state_precision: bool = True,
    engine: Mapping[str, Any] | None = None,
) -> Backend:
    """The backend ``compile(backend=name)`` targets.

    Args:
        name: ``"jax"`` / ``"float"`` (the unconstrained simulator), a chip name from
            ``neurorl.hardware.CHIPS`` (case-insensitive) or a ``ChipSpec``.
        off_chip_learning: rules learn on the host (see :class:`ChipBackend`).
        w_max: weight scale of the chip grids (see :class:`ChipBackend`).
        state_precision: apply the chip's membrane width (see :class:`ChipBackend`).
        engine: learning-engine fields to change (see :class:`ChipBackend`; chips only).

    Returns:
        A :class:`Backend` (simulator) or :class:`ChipBackend`.

    Raises:
        ConfigError: unknown name (with the closest valid one) or bad ``w_max``.
    """
    if isinstance(name, ChipSpec):
        return ChipBackend(name, off_chip_learning=off_chip_learning, w_max=w_max,
                           state_precision=state_precision, engine=engine)
    names = backend_names()
    if not isinstance(name, str) or name.lower() not in [b.lower() for b in names]:
        raise ConfigError("Network.compile.backend", name, f"one of {names}",
                          closest(str(name), names))
    name = next(b for b in names if b.lower() == name.lower())
    if name in SIMULATORS:
        if engine:
            raise ConfigError("Network.compile.engine", dict(engine),
                              "None on a simulator (only a chip has a learning engine)")
        return Backend(name, off_chip_learning=off_chip_learning)
    return ChipBackend(name, off_chip_learning=off_chip_learning, w_max=w_max,
                       state_precision=state_precision, engine=engine)
