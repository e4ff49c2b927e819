"""N-HAL: a declarative spiking-network front end compiled to a pure JAX simulator.

The primitives follow the N-HAL proposal (seed 000; DESIGN.md section 3)::

    exc = NeuronGroup(3200, "LIF", {"tau_mem": 20.0}, sign="excitatory")
    inh = NeuronGroup(800, "LIF", sign="inhibitory")
    c = Connection(exc, inh, rule="probabilistic", p=0.02, weight=0.5, delay=1,
                   synapse="exponential", tau_syn=5.0)
    stdp = LearningRule(c, "stdp", {...})
    net = Network(exc, inh, c, stdp, SpikeMonitor(exc), PotentialMonitor(inh))
    cnet = net.compile(backend="jax")              # or a chip name from hardware.CHIPS
    state = cnet.init(key)                          # jax.vmap(cnet.init)(keys) for many networks
    state, out = cnet.step(state, inputs_t)         # one time step
    state, records = cnet.run(state, inputs)        # lax.scan over inputs [T, n]

Time step semantics (one call of ``step``, all groups updated synchronously):

1. every connection reads the spikes its source emitted ``delay`` steps ago (``delay >= 1``: a
   spike emitted at step t reaches its targets at step t + delay, as in Brian2 where ``on_pre``
   effects enter the next state update) from a ring buffer of past spikes kept per source group;
   ``delay = 0`` delivers the source's output of this same step (feed-forward stages: encoder
   -> hidden -> readout): groups are stepped in the order of their delay-0 edges, which must
   form no cycle;
2. synapse: ``"delta"`` adds ``W^T s`` to the target current; ``"exponential"`` keeps a current
   ``i <- exp(-dt / tau_syn) i + W^T s`` per connection (current-based exponential synapse, as in
   the CUBA model of Vogels & Abbott 2005) and adds ``i``;
3. every group steps its neuron model with current = external input + bias + synaptic currents;
4. learning rules accumulate (pre = the arriving spikes, post = the new spikes) and update the
   weights through an optax optimizer, then the rule's hard bounds (``PlasticityRule.bounds``,
   e.g. ``stdp(hard_bounds=True)``), Dale's sign, the structural mask and the backend's
   ``project`` are applied (optax descent sign: the rule returns -Delta w).

Storage: a connection is ``"dense"`` (a masked ``[n_pre, n_post]`` matrix, ``current = s @ W``)
or ``"sparse"``: a padded fan-in index matrix (ELLPACK format) ``idx [n_post, k_max]`` of
presynaptic indices with weights ``w [n_post, k_max]`` (padding slots have weight 0 and stay 0),
``current = sum_k w[:, k] s[idx[:, k]]``. Connection rules build edge lists on the host, which are
packed row by row; the padded matrix represents every rule (probabilistic connectivity's variable
in-degree costs only the padding up to the largest in-degree, ~+40 % at 64 inputs) and per-synapse
delays (``delay [n_post, k_max]``). We chose it over an edge list with ``segment_sum`` because a
gather + row reduction has no scatter: it vmaps over independent networks as a batched gather
(a batched scatter-add measured 2.5x slower than sequential runs on CPU for CUBA) and maps to
GPUs without atomics. ``storage="auto"`` picks dense for small or dense projections (a matmul is
fastest there) and sparse when the dense matrix would exceed 65,536 entries at density < 10%
(a batched masked matvec of a p = 0.02 projection was 6x slower than the gather under vmap).
Plastic connections are dense, because learning rules work on ``[n_pre, n_post]`` weights.

Two simulators share these building blocks: ``step``/``run`` advance all groups synchronously
and let every rule update the weights at every step (with ``modulators``); ``simulate(weights,
dyn, traces, inputs[T])`` keeps the weights fixed for T steps and is staged -- one ``lax.scan``
per strongly connected stage of the connection graph, the currents from earlier stages computed
for all T steps in one product, rules accumulating their traces once per block
(``accumulate_block``). Agents run every env step's K substeps through ``simulate``; the two
give identical results (tests/core/test_network.py).

Structure (edges, masks, per-synapse delays) is sampled on the host with a numpy seed at compile
time -- it fixes the traced shapes. Weights are sampled in ``init(key)``; new keys, weights,
inputs or neuron parameters never trigger a recompilation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from neurorl.core import connectivity as cx
from neurorl.core import propagation as prop
from neurorl.core.monitors import Monitor, SpikeMonitor
from neurorl.core.neurons import NEURONS, NeuronModel, decay, get_neuron, make_params
from neurorl.errors import ConfigError, ShapeError, closest, closest_hyper, lookup

Array = jax.Array

SIGNS = {"excitatory": 1.0, "inhibitory": -1.0, None: 0.0}
SYNAPSES = ("delta", "exponential")
STORAGES = ("auto", "dense", "sparse")
SIMULATOR_BACKENDS = ("jax", "float")
_DENSE_MAX = 65_536  # entries of a dense matrix before "auto" considers sparse storage
_DENSE_MIN_DENSITY = 0.1  # above this density a masked matmul beats the padded gather


class NeuronView:
    """What a learning rule sees of its postsynaptic group: the model, its parameters and its
    state (attribute access falls through to the state: ``view.v``, ``view.thr``).

    ``view.psi`` is the model's pseudo-derivative (Bellec et al. 2020, Eq. 6), ``view.decay`` its
    membrane decay ``exp(-dt / tau_mem)``. In a staged simulation the state has a leading time
    axis ``[T, n]``.
    """

    __slots__ = ("model", "params", "state")

    def __init__(self, model: NeuronModel, params: Any, state: Any) -> None:
        self.model, self.params, self.state = model, params, state

    def __getattr__(self, name: str) -> Any:
        return getattr(self.state, name)

    @property
    def psi(self) -> Array:
        return self.model.pseudo_derivative(self.params, self.state)


def available_backends() -> list[str]:
    """Backend names: the unconstrained simulator plus the chips of ``neurorl.hardware.CHIPS``."""
    names = list(SIMULATOR_BACKENDS)
    try:
        from neurorl.hardware.chips import CHIPS

        names += [c for c in CHIPS if c not in names]
    except Exception:  # hardware package not importable: simulator only
        pass
    return names


def _check_sign(field: str, sign: Any) -> Any:
    if sign not in SIGNS:
        allowed = ["excitatory", "inhibitory", None]
        raise ConfigError(field, sign, f"one of {allowed}", closest(str(sign), allowed[:2]))
    return sign


class NeuronGroup:
    """A population of ``n`` neurons of one model.

    Args:
        n: number of neurons (> 0).
        model: a name from ``neurons.NEURONS`` ("LIF", "ALIF", "CubaLIF", "Izhikevich") or a
            ``NeuronModel``.
        params: None, a dict of parameter overrides, or the model's params dataclass.
        name: key of this group in inputs/state (default ``group<i>`` by order in the network).
        bias: constant external current added every step (model current units; scalar or [n]).
        v_init: initial membrane: None (the model's), a number, or ``(low, high)`` for a uniform
            draw per neuron from ``init(key)``.
        sign: "excitatory" / "inhibitory" -- Dale's law for every outgoing connection.
        input: mark this group as receiving external inputs. If no group is marked, groups
            without incoming connections are the input groups.
    """

    def __init__(
        self,
        n: int,
        model: str | NeuronModel = "LIF",
        params: Any = None,
        *,
        name: str | None = None,
        bias: Any = 0.0,
        v_init: Any = None,
        sign: str | None = None,
        input: bool | None = None,
    ) -> None:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
            raise ConfigError("NeuronGroup.n", n, "an integer > 0")
        self.n = int(n)
        if isinstance(model, str):
            model = get_neuron(model, field="NeuronGroup.model")
        elif not isinstance(model, NeuronModel):
            raise ConfigError("NeuronGroup.model", model,
                              f"a neuron model name, one of {sorted(NEURONS)}, or a NeuronModel")
        self.model = model
        self.params = make_params(self.model, params)
        self._name = name
        b = np.asarray(bias, np.float32)
        if b.shape not in ((), (self.n,)):
            raise ShapeError(f"NeuronGroup({name}).bias", f"() or ({self.n},)", b.shape)
        self.bias = bias
        if v_init is not None and not isinstance(v_init, (int, float)):
            if not (isinstance(v_init, (tuple, list)) and len(v_init) == 2):
                raise ConfigError("NeuronGroup.v_init", v_init, "None, a number or (low, high)")
        self.v_init = v_init
        self.sign = _check_sign("NeuronGroup.sign", sign)
        self.input = input

    @property
    def name(self) -> str:
        return self._name or f"group{id(self) % 10000}"

    def __repr__(self) -> str:
        return f"NeuronGroup({self.n}, {self.model.name!r}, name={self.name!r})"


class Connection:
    """A projection from ``source`` to ``target`` (weights ``[n_pre, n_post]``, pre-major).

    Args:
        source: the presynaptic NeuronGroup.
        target: the postsynaptic NeuronGroup (may be ``source``: recurrent).
        rule: a name from ``connectivity.CONNECTIVITY``; its arguments (``p``, ``k``,
            ``allow_self``) are passed as keywords.
        synapse: "delta" (instant current jump) or "exponential" (decaying current, ``tau_syn`` ms).
        tau_syn: synaptic time constant (ms) for ``synapse="exponential"``.
        weight: a number, an initialiser name or ``{"init": name, **hyper}``, a callable
            ``init(key, shape, fan_in, fan_out)``, or an array (dense ``[n_pre, n_post]``).
        delay: transmission delay in steps (int >= 0, per connection; 0 = the source's spikes of
            this step, for feed-forward stages: input -> hidden -> readout), an int array
            ``[n_pre, n_post]`` (per synapse), or ``(low, high)`` for per-synapse delays drawn
            uniformly from ``low..high`` at compile time.
        sign: "excitatory" / "inhibitory" keeps the weights' sign (Dale's law); default: the
            source group's sign.
        storage: "auto", "dense" or "sparse" (see module docstring).
        propagation: "auto", "dense", "gather" or "event": how arriving spikes become currents
            (``neurorl.core.propagation``): "event" touches only the outgoing synapses of the
            neurons that spiked. "auto": dense storage -> "dense", sparse storage from a spiking
            source -> "event" when cheaper than gathering every synapse, else "gather".
        event_capacity: spikes per step the event list holds (int, or a fraction of the
            source); a step with more takes the clock-driven path (same result). Default: 4x
            ``rate_hz``'s expected spikes, or 5 % of the source.
        rate_hz: expected firing rate of the source (Hz), sizes the event list.
        seed: numpy seed of the structure (default: derived from the compile seed).
        name: key in state["weights"] (default ``"<source>-><target>"``).
    """

    def __init__(
        self,
        source: NeuronGroup,
        target: NeuronGroup,
        rule: str = "all_to_all",
        *,
        synapse: str = "delta",
        tau_syn: float | None = None,
        weight: Any = 1.0,
        delay: Any = 1,
        sign: str | None = None,
        storage: str = "auto",
        propagation: str = "auto",
        event_capacity: Any = None,
        rate_hz: float | None = None,
        seed: int | None = None,
        name: str | None = None,
        **rule_kwargs: Any,
    ) -> None:
        for f, g in (("source", source), ("target", target)):
            if not isinstance(g, NeuronGroup):
                raise ConfigError(f"Connection.{f}", g, "a NeuronGroup")
        self.source, self.target = source, target
        self.rule = cx.validate_rule(rule, rule_kwargs)
        self.rule_kwargs = rule_kwargs
        if isinstance(synapse, dict):
            synapse = dict(synapse)
            tau_syn = synapse.pop("tau_syn", synapse.pop("tau", tau_syn))
            synapse = synapse.pop("model", "delta")
        if synapse not in SYNAPSES:
            raise ConfigError("Connection.synapse", synapse, f"one of {list(SYNAPSES)}",
                              closest(str(synapse), SYNAPSES))
        if synapse == "exponential":
            if tau_syn is None or not float(tau_syn) > 0:
                raise ConfigError("Connection.tau_syn", tau_syn, "a time constant > 0 (ms)")
        self.synapse, self.tau_syn = synapse, tau_syn
        self.weight = weight
        if not isinstance(weight, (np.ndarray, jax.Array)):
            self._weight_init = cx.make_weight_init(weight)
        else:
            w = np.asarray(weight)
            if w.shape != (source.n, target.n):
                raise ShapeError("Connection.weight", (source.n, target.n), w.shape)
            if np.isnan(w).any():
                raise ConfigError("Connection.weight", "array with NaN", "finite values")
            self._weight_init = None
        self.delay = self._check_delay(delay)
        self.sign = _check_sign("Connection.sign", sign)
        if storage not in STORAGES:
            raise ConfigError("Connection.storage", storage, f"one of {list(STORAGES)}",
                              closest(str(storage), STORAGES))
        self.storage = storage
        self.propagation = prop.check_propagation(propagation)
        self.event_capacity = prop.check_capacity(event_capacity)
        if rate_hz is not None and not (isinstance(rate_hz, (int, float)) and rate_hz > 0):
            raise ConfigError("Connection.rate_hz", rate_hz, "None or a rate > 0 (Hz)")
        self.rate_hz = rate_hz
        self.seed = seed
        self._name = name

    def _check_delay(self, delay: Any) -> Any:
        if isinstance(delay, (int, np.integer)) and not isinstance(delay, bool):
            if delay < 0:
                raise ConfigError("Connection.delay", delay, "an integer number of steps >= 0 "
                                  "(0: same step, feed-forward)")
            if delay == 0 and self.source is self.target:
                raise ConfigError("Connection.delay", 0, "a delay >= 1 for a recurrent "
                                  f"connection ({self.source.name} -> itself)")
            return int(delay)
        if isinstance(delay, tuple) and len(delay) == 2:
            lo, hi = delay
            if int(lo) != lo or int(hi) != hi or lo < 1 or hi < lo:
                raise ConfigError("Connection.delay", delay,
                                  "(low, high) integers, 1 <= low <= high")
            return (int(lo), int(hi))
        d = np.asarray(delay)
        if d.ndim == 2:
            if d.shape != (self.source.n, self.target.n):
                raise ShapeError("Connection.delay", (self.source.n, self.target.n), d.shape)
            if not np.issubdtype(d.dtype, np.integer) or d.min() < 1:
                raise ConfigError("Connection.delay", "array", "integers >= 1 (steps)")
            return d.astype(np.int32)
        raise ConfigError("Connection.delay", delay, "an int >= 1, (low, high) or an int array "
                          "[n_pre, n_post]")

    @property
    def effective_sign(self) -> Any:
        return self.sign if self.sign is not None else self.source.sign

    @property
    def name(self) -> str:
        return self._name or f"{self.source.name}->{self.target.name}"

    def __repr__(self) -> str:
        return f"Connection({self.source.name!r} -> {self.target.name!r}, rule={self.rule!r})"


def check_rule_params(rule: str, factory: Any, params: Mapping[str, Any],
                      field: str | None = None, hint: Any = None) -> None:
    """Each key of ``params`` is an argument of the rule factory; an unknown one is a
    ConfigError ``<field>.<key>`` (default field ``LearningRule(<rule>).params``; the YAML
    description passes its path) listing the rule's parameters and the closest (other
    libraries' names read as :func:`neurorl.errors.closest_hyper` does), plus ``hint(key)``."""
    import inspect

    sig = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values()):
        return
    names = [n for n, p in sig.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    field = f"LearningRule({rule}).params" if field is None else field
    for k, v in params.items():
        if k not in names:
            raise ConfigError(f"{field}.{k}", v,
                              f"one of the {rule} parameters {names}{hint(k) if hint else ''}",
                              closest_hyper(str(k), names))


class LearningRule:
    """Plasticity on one connection: a rule from ``neurorl.plasticity.RULES`` plus an optimizer.

    Args:
        connection: the plastic Connection (stored dense, per-connection delay).
        rule: rule name ("stdp", "rstdp", "eprop", ...) or a ``PlasticityRule`` NamedTuple.
        params: keyword arguments of the rule factory.
        optimizer: an optax GradientTransformation following the rule's -Delta w
            (default ``optax.sgd(1.0)``: w <- w + Delta w).
        name: key in state["rules"] and in ``run(..., modulators={name: [T]})``.
        event_driven: ``"auto"``, True or False: ``step`` / ``run`` keep the rule's traces
            lazily and change only the synapses of the neurons that spiked (Morrison, Diesmann
            & Gerstner 2008; ``neurorl.plasticity.stdp.stdp_event``, ``rstdp.rstdp_event``),
            with the result of the clock-driven rule. ``"auto"``: when the connection's
            propagation is ``"event"`` and the rule (stdp, rstdp), the optimizer (the default)
            and the backend (no weight projection) allow it. ``simulate`` keeps clock rules.
    """

    def __init__(
        self,
        connection: Connection,
        rule: Any = "stdp",
        params: Mapping[str, Any] | None = None,
        *,
        optimizer: optax.GradientTransformation | None = None,
        name: str | None = None,
        event_driven: Any = "auto",
    ) -> None:
        if not isinstance(connection, Connection):
            raise ConfigError("LearningRule.connection", connection, "a Connection")
        self.connection = connection
        params = dict(params or {})
        self.params = params
        if event_driven not in ("auto", True, False):
            raise ConfigError("LearningRule.event_driven", event_driven, "'auto', True or False")
        self.event_driven = event_driven
        if isinstance(rule, str):
            try:
                from neurorl.plasticity import RULES
            except ImportError:  # pragma: no cover - plasticity package missing
                RULES = {}
            factory = lookup(RULES, rule, "plasticity rule", field="LearningRule.rule")
            check_rule_params(rule, factory, params)
            try:
                self.rule = factory(**params)
            except TypeError as e:
                raise ConfigError(f"LearningRule({rule}).params", params,
                                  f"valid arguments ({e})") from e
            self.rule_name = rule.lower()
        elif not (hasattr(rule, "init") and hasattr(rule, "update")):
            try:
                from neurorl.plasticity import RULES
            except ImportError:  # pragma: no cover - plasticity package missing
                RULES = {}
            raise ConfigError("LearningRule.rule", rule, "a plasticity rule name, one of "
                              f"{sorted(RULES)}, or a PlasticityRule")
        else:
            self.rule, self.rule_name = rule, getattr(rule, "name", "custom")
        if not isinstance(connection.delay, int):
            raise ConfigError("LearningRule.connection.delay", "per-synapse",
                              "a single delay per connection for plastic connections")
        self.optimizer = optimizer if optimizer is not None else optax.sgd(1.0)
        self.default_optimizer = optimizer is None
        self._name = name

    @property
    def name(self) -> str:
        return self._name or f"{self.rule_name}:{self.connection.name}"


class Network:
    """A container of groups, connections, learning rules and monitors.

    ``Network(g1, g2, conn, mon)``, ``Network([g1, g2, ...])`` or ``net = Network(); net.add(...)``.
    """

    def __init__(self, *objects: Any) -> None:
        self.groups: list[NeuronGroup] = []
        self.connections: list[Connection] = []
        self.rules: list[LearningRule] = []
        self.monitors: list[Monitor] = []
        self.add(*objects)

    def add(self, *objects: Any) -> Any:
        """Add groups, connections, rules, monitors (or iterables of them).

        Returns:
            The object added (``inp = net.add(NeuronGroup(...))``), a tuple when several were
            given.
        """
        for obj in objects:
            if isinstance(obj, NeuronGroup):
                self.groups.append(obj)
            elif isinstance(obj, Connection):
                self.connections.append(obj)
            elif isinstance(obj, LearningRule):
                self.rules.append(obj)
            elif isinstance(obj, Monitor):
                self.monitors.append(obj)
            elif isinstance(obj, Iterable) and not isinstance(obj, str):
                self.add(*obj)
            else:
                raise ConfigError("Network.add", obj, "NeuronGroup, Connection, LearningRule, "
                                  "SpikeMonitor or PotentialMonitor objects")
        return objects[0] if len(objects) == 1 else objects

    def _assign_names(self) -> None:
        for i, g in enumerate(self.groups):
            if g._name is None:
                g._name = f"group{i}"
        seen: dict[str, int] = {}
        for c in self.connections:
            if c._name is None:
                base = f"{c.source.name}->{c.target.name}"
                seen[base] = seen.get(base, 0) + 1
                c._name = base if seen[base] == 1 else f"{base}#{seen[base]}"

    def _validate(self) -> None:
        self._assign_names()
        ids = {id(g) for g in self.groups}
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ConfigError("Network.groups", dup, "unique group names")
        if len({id(g) for g in self.groups}) != len(self.groups):
            raise ConfigError("Network.groups", "a group added twice", "each group once")
        for c in self.connections:
            for end, g in (("source", c.source), ("target", c.target)):
                if id(g) not in ids:
                    raise ConfigError(f"Connection({c.name}).{end}", g.name,
                                      f"a group added to this network {names}")
        cids = {id(c) for c in self.connections}
        for r in self.rules:
            if id(r.connection) not in cids:
                raise ConfigError(f"LearningRule({r.name}).connection", r.connection.name,
                                  "a connection added to this network")
        for m in self.monitors:
            if id(m.group) not in ids:
                raise ConfigError(f"{type(m).__name__}.group", m.group.name,
                                  f"a group added to this network {names}")
        mnames = [m.name for m in self.monitors]
        if len(set(mnames)) != len(mnames):
            raise ConfigError("Network.monitors", mnames, "unique monitor names")
        plastic = [r.connection.name for r in self.rules]
        if len(set(plastic)) != len(plastic):
            raise ConfigError("Network.rules", plastic, "at most one learning rule per connection")

    def compile(
        self,
        backend: str = "jax",
        *,
        seed: int = 0,
        project: Callable[[Array], Array] | None = None,
        w_max: Any = 1.0,
        off_chip_learning: bool = False,
        state_precision: bool = True,
        engine: Mapping[str, Any] | None = None,
        stop_z_gradients: bool = False,
    ) -> CompiledNetwork:
        """Validate everything on the host, build the structure and return a CompiledNetwork.

        A chip backend (``neurorl.hardware.backends``) enforces the chip's limits here, before
        anything is traced: on-chip learning of every rule, fan-in, fan-out, synapse memory and
        cores (the neurons are placed with ``hardware.mapping``); its weight grid is applied at
        init and after every learning update, its membrane width after every neuron step.

        Args:
            backend: "jax" / "float" (unconstrained simulator) or a chip name from
                ``neurorl.hardware.CHIPS``.
            seed: numpy seed for connectivity structure and per-synapse delays.
            project: optional ``project(W) -> W`` applied to dense weights at init and after
                every plasticity update (replaces the chip's weight projection).
            w_max: chip backends: weight magnitude mapped to the chip's largest level -- a
                float, a mapping connection name -> float, or "auto" (2 x max|w_init| per
                connection).
            off_chip_learning: chip backends: the rules learn on the host (float shadow weights
                in the optimizer state; the network runs on their projection). Needed for rules
                the chip cannot run (YAML: ``hardware.off_chip_learning: true``).
            state_precision: chip backends: apply the chip's membrane width to ``v``.
            engine: chip backends learning on chip: fields of the chip's learning engine to
                change, e.g. ``{"trace_scale": 6.0, "tag_scale": 1.0}`` (YAML:
                ``hardware.engine``).
            stop_z_gradients: no gradient through the spikes that delayed (``delay >= 1``)
                connections deliver -- the recurrent synapses in the usual wiring, where the
                feed-forward path is delay 0. ``jax.grad`` of a loss through ``simulate`` then
                keeps each neuron's own state dependence (membrane leak, threshold adaptation,
                the readout's filter) and drops the paths through other neurons' earlier
                spikes: with symmetric feedback that is e-prop's gradient instead of BPTT's
                (Bellec et al. 2020, Methods; ``stop_z_gradients`` of their code). The forward
                pass is unchanged.

        Raises:
            ConfigError: unknown backend (closest name), invalid network or ``w_max``.
            UnsupportedOnChipError: a rule the chip cannot learn on chip, learning not off-chip.
            ChipCapacityError: the network exceeds one of the chip's limits (names group, core,
                limit and the amount over).
        """
        from neurorl.hardware.backends import make_backend

        hardware = make_backend(backend, off_chip_learning=off_chip_learning, w_max=w_max,
                                state_precision=state_precision, engine=engine)
        self._validate()
        if not self.groups:
            raise ConfigError("Network.groups", [], "at least one NeuronGroup")
        hardware.check_rules(self.rules)
        if project is not None:
            user_project = project
            project = lambda w, name=None: user_project(w)  # noqa: E731
        if not isinstance(stop_z_gradients, (bool, np.bool_)):
            raise ConfigError("compile.stop_z_gradients", stop_z_gradients, "true or false")
        return CompiledNetwork(self, hardware.name, seed, project, hardware=hardware,
                               stop_z_gradients=bool(stop_z_gradients))


def _group_dt(g: NeuronGroup) -> float:
    return float(np.asarray(g.params.dt)) if hasattr(g.params, "dt") else 1.0


def _stable_seed(seed: int, i: int) -> int:
    return int(np.random.SeedSequence([seed, i]).generate_state(1)[0])


class CompiledNetwork:
    """The simulator of a Network: pure, jitted ``init``, ``step`` and ``run``.

    Attributes:
        params: pytree of traced parameters: ``{"neurons": {group: params}, "bias": {group: b}}``.
        structure: pytree of static-shaped int arrays (edges, delays, masks) passed to the jitted
            functions as arguments (not baked-in constants).
        project: the weight projection hook ``project(w, name=None)`` (None for "jax").
        hardware: the backend (``neurorl.hardware.backends``): limits, projections, counts and
            energy (``hardware.counts(records)``, ``hardware.energy(counts)``).
        mapping: the chip placement (``MappingReport``; None for the simulator).
        input_groups: names of the groups that take external input, in order.
    """

    def __init__(
        self, net: Network, backend: str, seed: int, project: Callable | None,
        hardware: Any = None, stop_z_gradients: bool = False,
    ) -> None:
        self.backend = backend
        self.stop_z_gradients = stop_z_gradients  # static: read while tracing
        self.groups = {g.name: g for g in net.groups}
        self.connections = {c.name: c for c in net.connections}
        self.rules = {r.name: r for r in net.rules}
        self.monitors = {m.name: m for m in net.monitors}
        plastic = {r.connection.name for r in net.rules}
        marked = [g.name for g in net.groups if g.input]
        if marked:
            self.input_groups = marked
        else:
            has_in = {c.target.name for c in net.connections}
            self.input_groups = [g.name for g in net.groups if g.name not in has_in]
        p0 = net.groups[0].params
        self.dt = float(np.asarray(p0.dt)) if hasattr(p0, "dt") else 1.0

        # host-side structure
        self.structure: dict[str, dict[str, Any]] = {}
        self._conf: dict[str, dict[str, Any]] = {}
        self.max_delay = {g: 1 for g in self.groups}
        for i, c in enumerate(net.connections):
            cseed = c.seed if c.seed is not None else _stable_seed(seed, i)
            rng = np.random.default_rng(cseed)
            pre, post = cx.CONNECTIVITY[c.rule](rng, c.source.n, c.target.n, **c.rule_kwargs)
            n_full = c.source.n * c.target.n
            storage = c.storage
            if c.name in plastic:
                storage = "dense"
            elif storage == "auto":
                dense = n_full <= _DENSE_MAX or len(pre) > _DENSE_MIN_DENSITY * n_full
                storage = "dense" if dense else "sparse"
            if isinstance(c.delay, int):
                delay_e, dmax = None, c.delay
            else:
                if isinstance(c.delay, tuple):
                    delay_e = rng.integers(c.delay[0], c.delay[1] + 1,
                                           size=len(pre)).astype(np.int32)
                else:
                    delay_e = c.delay[pre, post]
                dmax = int(delay_e.max()) if len(delay_e) else 1
            self.max_delay[c.source.name] = max(self.max_delay[c.source.name], dmax)
            s: dict[str, Any] = {}
            slot_of = None
            if storage == "dense":
                mask = np.zeros((c.source.n, c.target.n), np.float32)
                mask[pre, post] = 1.0
                s["mask"] = jnp.asarray(mask)
                if delay_e is not None:
                    d = np.ones((c.source.n, c.target.n), np.int32)
                    d[pre, post] = delay_e
                    s["delay"] = jnp.asarray(d)
            else:
                # ELLPACK packing: slot of each edge within its target's row
                order = np.lexsort((pre, post))
                indeg = np.bincount(post, minlength=c.target.n)
                k_max = max(int(indeg.max()) if len(pre) else 0, 1)
                starts = np.concatenate([[0], np.cumsum(indeg)[:-1]])
                slot = np.empty(len(pre), np.int64)
                slot[order] = np.arange(len(pre)) - starts[post[order]]
                idx = np.zeros((c.target.n, k_max), np.int32)
                valid = np.zeros((c.target.n, k_max), np.float32)
                idx[post, slot] = pre
                valid[post, slot] = 1.0
                s["idx"], s["valid"] = jnp.asarray(idx), jnp.asarray(valid)
                if delay_e is not None:
                    d = np.ones((c.target.n, k_max), np.int32)
                    d[post, slot] = delay_e
                    s["delay"] = jnp.asarray(d)
                slot_of = slot
            fanout = (int(np.bincount(pre, minlength=c.source.n).max()) if len(pre) else 1)
            capacity = prop.resolve_capacity(c.event_capacity, c.source.n, c.rate_hz,
                                             _group_dt(c.source))
            path = prop.choose(c.propagation, storage, c.source.model.name, c.source.n,
                               c.target.n, len(pre), capacity, fanout, c.name in plastic)
            if path == "event" and (storage == "sparse" or delay_e is not None):
                pos = (post * s["idx"].shape[1] + slot_of if storage == "sparse"
                       else pre * c.target.n + post)
                tables = prop.fanout_tables(pre, post, pos, c.source.n, c.target.n, delay_e)
                s.update({k: jnp.asarray(v) for k, v in tables.items()})
            self.structure[c.name] = s
            self._conf[c.name] = dict(
                storage=storage, pre=pre, post=post, slot=slot_of, n_edges=len(pre),
                per_synapse_delay=delay_e is not None,
                sign=SIGNS[c.effective_sign], propagation=path, capacity=capacity,
            )
        # backend: chip limits checked on the host (ChipCapacityError / UnsupportedOnChipError),
        # then its hooks: weight projection, membrane precision, on-chip / off-chip learning
        if hardware is None:
            from neurorl.hardware.backends import make_backend

            hardware = make_backend(backend)
        self.hardware = hardware
        self.mapping = hardware.check(self)
        if project is None and hardware.projects:
            project = hardware.project_weights
            self.groups, self.rules = hardware.adapt(self.groups, self.rules)
        self.project = project
        self._event = self._event_rules()
        self.params = {
            "neurons": {n: g.params for n, g in self.groups.items()},
            "bias": {n: jnp.asarray(g.bias, jnp.float32) for n, g in self.groups.items()},
            "tau_syn": {n: jnp.asarray(c.tau_syn if c.tau_syn else 1.0, jnp.float32)
                        for n, c in self.connections.items()},
        }
        self._schedule(net)
        self._constrain_hook = None  # set by neurorl.core.partition while tracing a sharded run
        self._init_jit = jax.jit(self._init)
        self._step_jit = jax.jit(self._step)
        self._run_jit = jax.jit(self._run, static_argnames="steps")
        self._simulate_jit = jax.jit(self._simulate, static_argnames="steps")

    def _event_rules(self) -> dict[str, Any]:
        """Rules run event-driven by ``step`` / ``run``: ``{rule: (EventRule, cap_pre,
        cap_post)}`` (see ``LearningRule.event_driven``)."""
        from neurorl.plasticity.rstdp import rstdp_event
        from neurorl.plasticity.stdp import stdp_event

        factories = {"stdp": stdp_event, "rstdp": rstdp_event}
        out = {}
        for n, r in self.rules.items():
            c, conf = r.connection, self._conf[r.connection.name]
            why = None
            if r.rule_name not in factories or not isinstance(r.rule_name, str):
                why = "a rule with an event-driven form ('stdp', 'rstdp')"
            elif not getattr(r, "default_optimizer", False):
                why = "the default optimizer (event-driven steps apply Delta w: optax.sgd(1.0))"
            elif self.project is not None:
                why = "a backend without weight projection (the simulator, no project=...)"
            if r.event_driven is True and why is not None:
                raise ConfigError(f"LearningRule({n}).event_driven", True, why, False)
            if r.event_driven is True or (r.event_driven == "auto" and why is None
                                          and conf["propagation"] == "event"):
                cap_post = prop.resolve_capacity(c.event_capacity, c.target.n, c.rate_hz,
                                                 _group_dt(c.target))
                out[n] = (factories[r.rule_name](**r.params), conf["capacity"], cap_post)
        return out

    def plasticity(self) -> dict[str, str]:
        """``"event"`` or ``"clock"`` per learning rule (how ``step`` / ``run`` update it)."""
        return {n: "event" if n in self._event else "clock" for n in self.rules}

    def _schedule(self, net: Network) -> None:
        """Update order within a step (delay-0 edges: source before target) and the stages of
        the staged simulator (strongly connected components of the connection graph, in
        topological order; a per-synapse-delay connection keeps its two ends in one stage)."""
        names = list(self.groups)
        idx = {g: i for i, g in enumerate(names)}
        self._in_conns = {g: [] for g in names}
        self._ff_in = {g: [] for g in names}
        for n, c in self.connections.items():
            self._in_conns[c.target.name].append(n)
            if isinstance(c.delay, int) and c.delay == 0:
                self._ff_in[c.target.name].append(n)
        # feed-forward order of delay-0 edges (Kahn); a cycle of them has no order
        indeg = {g: len({self.connections[n].source.name for n in self._ff_in[g]}) for g in names}
        succ = {g: set() for g in names}
        for g in names:
            for n in self._ff_in[g]:
                succ[self.connections[n].source.name].add(g)
        ready = [g for g in names if indeg[g] == 0]
        order = []
        while ready:
            g = ready.pop(0)
            order.append(g)
            for t in sorted(succ[g], key=idx.get):
                indeg[t] -= 1
                if indeg[t] == 0:
                    ready.append(t)
        if len(order) != len(names):
            cyc = [g for g in names if g not in order]
            raise ConfigError("Connection.delay", 0, "delay-0 connections that form no cycle "
                              f"(groups {cyc} feed each other within one step; give one of "
                              "those connections delay >= 1)")
        self.order = order
        # strongly connected components by mutual reachability (networks have few groups)
        n = len(names)
        reach = np.eye(n, dtype=bool)
        for name, c in self.connections.items():
            a, b = idx[c.source.name], idx[c.target.name]
            reach[a, b] = True
            if self._conf[name]["per_synapse_delay"]:
                reach[b, a] = True
        for k in range(n):
            reach |= reach[:, [k]] & reach[[k], :]
        comp, stages = {}, []
        for g in order:
            if g in comp:
                continue
            members = [h for h in order if reach[idx[g], idx[h]] and reach[idx[h], idx[g]]]
            for h in members:
                comp[h] = len(stages)
            stages.append(members)
        # topological order of the components (a component after everything that reaches it)
        stage_order = sorted(range(len(stages)), key=lambda i: (
            sum(reach[idx[h], idx[stages[i][0]]] for h in names), i))
        self.stages = [stages[i] for i in stage_order]
        self._plastic = {r.connection.name for r in net.rules}
        self._keep_states = ({r.connection.target.name for r in net.rules}
                             | {m.group.name for m in net.monitors
                                if not isinstance(m, SpikeMonitor)})

    # ------------------------------------------------------------------ info
    def n_synapses(self) -> dict[str, int]:
        """Edge count per connection."""
        return {n: c["n_edges"] for n, c in self._conf.items()}

    def storage(self) -> dict[str, str]:
        """"dense" or "sparse" per connection."""
        return {n: c["storage"] for n, c in self._conf.items()}

    def propagation(self) -> dict[str, str]:
        """The propagation path of every connection ("dense", "gather" or "event"; see
        ``neurorl.core.propagation``) and, for "event", its spike-list capacity."""
        return {n: c["propagation"] + (f"[{c['capacity']}]" if c["propagation"] == "event"
                                       else "") for n, c in self._conf.items()}

    def dense_weights(self, state: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Weights of every connection as dense ``[n_pre, n_post]`` numpy arrays (0 = no
        synapse)."""
        out = {}
        for n, c in self.connections.items():
            w = np.asarray(state["weights"][n])
            if self._conf[n]["storage"] == "sparse":
                conf = self._conf[n]
                dense = np.zeros((c.source.n, c.target.n), np.float32)
                dense[conf["pre"], conf["post"]] = w[conf["post"], conf["slot"]]
                w = dense
            out[n] = w
        return out

    def delays(self) -> dict[str, np.ndarray]:
        """Delay in steps of every synapse as dense ``[n_pre, n_post]`` int arrays (0 = none)."""
        out = {}
        for n, c in self.connections.items():
            conf, s = self._conf[n], self.structure[n]
            d = np.zeros((c.source.n, c.target.n), np.int32)
            if conf["per_synapse_delay"]:
                dd = np.asarray(s["delay"])
                d[conf["pre"], conf["post"]] = (
                    dd[conf["post"], conf["slot"]] if conf["storage"] == "sparse"
                    else dd[conf["pre"], conf["post"]])
            else:
                d[conf["pre"], conf["post"]] = c.delay
            out[n] = d
        return out

    # ------------------------------------------------------------------ pure functions
    def _dale(self, name: str, w: Array) -> Array:
        sign = self._conf[name]["sign"]
        if sign > 0:
            return jnp.maximum(w, 0.0)
        if sign < 0:
            return jnp.minimum(w, 0.0)
        return w

    def _project(self, name: str, w: Array) -> Array:
        """The weight projection hook (init and after every learning update): the backend's
        grid on every connection, a user ``project`` on dense ones."""
        if self.project is None:
            return w
        if self._conf[name]["storage"] == "dense":
            return self.project(w, name) * self.structure_mask(name)
        if self.project == self.hardware.project_weights:
            return self.project(w, name) * self.structure[name]["valid"]
        return w

    def structure_mask(self, name: str) -> Array:
        return self.structure[name]["mask"]

    def _init(self, params: Any, structure: Any, key: Array) -> dict[str, Any]:
        k_w, k_v = jax.random.split(key)
        neurons = {}
        for i, (n, g) in enumerate(self.groups.items()):
            st = g.model.init(params["neurons"][n], g.n)
            if g.v_init is not None:
                if isinstance(g.v_init, (tuple, list)):
                    v = jax.random.uniform(jax.random.fold_in(k_v, i), (g.n,), jnp.float32,
                                           g.v_init[0], g.v_init[1])
                else:
                    v = jnp.full((g.n,), g.v_init, jnp.float32)
                st = st.replace(v=v)
            neurons[n] = st
        weights, syn = {}, {}
        for i, (n, c) in enumerate(self.connections.items()):
            conf, s = self._conf[n], structure[n]
            k = jax.random.fold_in(k_w, i)
            fan_in = max(conf["n_edges"] / c.target.n, 1.0)
            fan_out = max(conf["n_edges"] / c.source.n, 1.0)
            if c._weight_init is None:
                wd = jnp.asarray(c.weight, jnp.float32)
                w = (wd * s["mask"] if conf["storage"] == "dense"
                     else wd[s["idx"], jnp.arange(c.target.n)[:, None]] * s["valid"])
            elif conf["storage"] == "dense":
                w = c._weight_init(k, (c.source.n, c.target.n), fan_in, fan_out) * s["mask"]
            else:
                w = c._weight_init(k, s["idx"].shape, fan_in, fan_out) * s["valid"]
            w = jnp.asarray(w, jnp.float32)
            if conf["sign"] != 0:  # Dale: the sign is the group's, the magnitude the init's
                w = conf["sign"] * jnp.abs(w)
            weights[n] = self._project(n, w)
            if c.synapse == "exponential":
                syn[n] = jnp.zeros((c.target.n,), jnp.float32)
        history = {n: jnp.zeros((self.max_delay[n], g.n), jnp.float32)
                   for n, g in self.groups.items()}
        rules = {}
        for n, r in self.rules.items():
            w = weights[r.connection.name]
            rs = self._event[n][0].init(w) if n in self._event else r.rule.init(w)
            rules[n] = {"rule": rs, "opt": r.optimizer.init(w)}
        return {"neurons": neurons, "history": history, "syn": syn, "weights": weights,
                "rules": rules, "t": jnp.zeros((), jnp.int32)}

    # ---- building blocks shared by the step-by-step and the staged simulators
    def _current(self, name: str, a: Array, w: Array, s: Any, lists: Any = None,
                 key: Any = None) -> Array:
        """Synaptic current into the target from arriving spikes ``a`` (``[..., n_pre]``); one
        step of an event-driven connection (``a`` is ``[n_pre]``) propagates its events.
        ``lists`` caches the spike count of ``a`` under ``key`` for the other connections of
        the same source and delay."""
        conf = self._conf[name]
        if conf["propagation"] == "event" and a.ndim == 1:
            count = None
            if lists is not None:
                if key not in lists:
                    lists[key] = jnp.sum(a != 0)
                count = lists[key]
            return self._event_current(name, a, w, s, count)
        return self._clock_current(name, a, w, s)

    def _clock_current(self, name: str, a: Array, w: Array, s: Any) -> Array:
        if self._conf[name]["storage"] == "dense":
            return a @ w
        g = a[..., s["idx"]]  # [..., n_post, k_max]
        return jnp.sum(g * w.reshape((1,) * (g.ndim - 2) + w.shape), axis=-1)

    def _event_current(self, name: str, a: Array, w: Array, s: Any, count: Any = None
                       ) -> Array:
        conf, n_post = self._conf[name], self.connections[name].target.n
        fallback = lambda: self._clock_current(name, a, w, s)  # noqa: E731
        if conf["storage"] == "dense":
            return prop.event_current_dense(a, w, conf["capacity"], fallback, count)
        return prop.event_current(a, w.reshape(-1), s["ev_post"][0], s["ev_pos"][0], n_post,
                                  conf["capacity"], fallback, count)

    def _event_delayed(self, name: str, s: Any, w: Array, hist: Array, fallback: Any) -> Array:
        """Per-synapse delays, event-driven: slice d of the fan-out tables (synapses of delay
        d + 1) is indexed by the spikes emitted d + 1 steps ago; any overflow -> ``fallback``."""
        conf, n_post = self._conf[name], self.connections[name].target.n
        n_slices, cap = s["ev_post"].shape[0], conf["capacity"]
        lists = [prop.spike_list(hist[d], cap) for d in range(n_slices)]
        fits = jnp.all(jnp.stack([f for _, f in lists]))

        def events() -> Array:
            w_flat, out = w.reshape(-1), jnp.zeros((n_post,), w.dtype)
            for d, (idx, _) in enumerate(lists):
                a_pad = jnp.concatenate([hist[d], jnp.zeros((1,), hist.dtype)])
                tgt = s["ev_post"][d][idx]
                val = w_flat[s["ev_pos"][d][idx]] * a_pad[idx][:, None]
                out = out.at[tgt.reshape(-1)].add(val.reshape(-1), mode="drop")
            return out

        return jax.lax.cond(fits, events, fallback)

    def _delayed_current(self, name: str, s: Any, w: Array, hist: Array, lists: Any = None
                         ) -> tuple[Array, Any]:
        """Current of a delayed connection read from its source's ring buffer; also the
        arriving spike vector (None for per-synapse delays)."""
        c, conf = self.connections[name], self._conf[name]
        if self.stop_z_gradients:
            hist = jax.lax.stop_gradient(hist)
        if conf["per_synapse_delay"]:
            def clock() -> Array:
                if conf["storage"] == "dense":
                    a = hist[s["delay"] - 1, jnp.arange(c.source.n)[:, None]]  # [n_pre, n_post]
                    return jnp.sum(a * w, axis=0)
                a = hist[s["delay"] - 1, s["idx"]]  # [n_post, k_max]
                return jnp.sum(a * w, axis=1)

            if conf["propagation"] == "event":
                return self._event_delayed(name, s, w, hist, clock), None
            return clock(), None
        a = hist[c.delay - 1]
        return self._current(name, a, w, s, lists, (c.source.name, c.delay)), a

    def _syn_decay(self, params: Any, name: str) -> Array:
        c = self.connections[name]
        dt = jnp.asarray(getattr(params["neurons"][c.target.name], "dt", 1.0), jnp.float32)
        return jnp.exp(-dt / params["tau_syn"][name])

    def _advance(self, params: Any, structure: Any, weights: Any, dyn: Any, ext: Any,
                 groups: Any = None, drive0: Any = None):
        """One synchronous step of ``groups`` (default all) with fixed weights.

        Connections with delay >= 1 read the ring buffers; delay-0 connections deliver the spikes
        their source emitted in this same step (groups are stepped in feed-forward order).
        ``drive0`` (staged simulation): precomputed drive per group, replacing bias + input.

        Returns:
            ``(dyn, spikes, arriving)``; ``arriving[conn]`` is the presynaptic vector each
            single-delay connection delivered (the ``pre`` of its learning rule).
        """
        order = self.order if groups is None else [g for g in self.order if g in groups]
        inside = set(order)
        if drive0 is None:
            drive = {n: params["bias"][n] + ext.get(n, 0.0) for n in order}
        else:
            drive = dict(drive0)
        conns = [n for n, c in self.connections.items()
                 if c.source.name in inside and c.target.name in inside]
        arriving, new_syn, neurons, spikes, lists = {}, {}, {}, {}, {}

        def deliver(n: str, cur: Array) -> None:
            c = self.connections[n]
            if c.synapse == "exponential":
                cur = self._syn_decay(params, n) * dyn["syn"][n] + cur
                new_syn[n] = cur
            drive[c.target.name] = drive[c.target.name] + cur

        for n in conns:
            if n not in self._ff_in[self.connections[n].target.name]:
                cur, a = self._delayed_current(n, structure[n], weights[n],
                                               dyn["history"][self.connections[n].source.name],
                                               lists)
                if a is not None:
                    arriving[n] = a
                deliver(n, cur)
        for g in order:
            for n in self._ff_in[g]:
                if n in conns:
                    a = spikes[self.connections[n].source.name]
                    arriving[n] = a
                    deliver(n, self._current(n, a, weights[n], structure[n], lists,
                                             (self.connections[n].source.name, 0)))
            grp = self.groups[g]
            z, ns = grp.model.step(params["neurons"][g], dyn["neurons"][g], drive[g])
            if self._constrain_hook is not None:  # sharded: the spike exchange of this step
                z = self._constrain_hook(z, "spikes")
            neurons[g], spikes[g] = ns, z
        history = {g: jnp.concatenate([spikes[g][None], dyn["history"][g][:-1]], axis=0)
                   for g in order}
        syn = {n: new_syn.get(n, v) for n, v in dyn["syn"].items() if n in conns}
        return ({"neurons": neurons, "history": history, "syn": syn, "t": dyn["t"] + 1},
                spikes, arriving)

    def _view(self, params: Any, group: str, state: Any) -> NeuronView:
        g = self.groups[group]
        return NeuronView(g.model, params["neurons"][group], state)

    def _apply(self, structure: Any, weights: Any, opt: Any, grads: Any) -> tuple[Any, Any]:
        """Optimizer step per rule, then the rule's hard bounds (``PlasticityRule.bounds``),
        Dale's sign, the structural mask and the projection."""
        weights, new_opt = dict(weights), {}
        for n, r in self.rules.items():
            if n not in grads:  # event-driven: updated in its own step
                continue
            cn = r.connection.name
            updates, new_opt[n] = r.optimizer.update(grads[n], opt[n], weights[cn])
            w = optax.apply_updates(weights[cn], updates)
            bounds = getattr(r.rule, "bounds", None)  # hard bounds (stdp(hard_bounds=True))
            if bounds is not None:
                w = jnp.clip(w, *bounds)
            w = self._dale(cn, w) * structure[cn]["mask"]
            weights[cn] = self._project(cn, w)
        return weights, new_opt

    def _rule_grads(self, traces: Any, weights: Any, mods: Any) -> tuple[Any, Any]:
        grads, new = {}, {}
        for n, r in self.rules.items():
            if n in self._event:
                continue
            cn = r.connection.name
            g, new[n] = r.rule.update(traces[n], mods[n], weights[cn])
            grads[n] = g * self.structure[cn]["mask"]  # no synapse, no update
        return grads, new

    def _step(self, params: Any, structure: Any, state: Any, ext: Any, mods: Any):
        dyn = {k: state[k] for k in ("neurons", "history", "syn", "t")}
        dyn, spikes, arriving = self._advance(params, structure, state["weights"], dyn, ext)
        traces = {}
        for n, r in self.rules.items():
            if n in self._event:
                continue
            c = r.connection
            view = self._view(params, c.target.name, dyn["neurons"][c.target.name])
            traces[n] = r.rule.accumulate(state["rules"][n]["rule"], arriving[c.name],
                                          spikes[c.target.name], view)
        weights = state["weights"]
        if self.rules:
            grads, traces = self._rule_grads(traces, weights, mods)
            opt = {n: state["rules"][n]["opt"] for n in self.rules}
            weights, opt = self._apply(structure, weights, opt, grads)
            weights = dict(weights)
            for n, (er, cap_pre, cap_post) in self._event.items():  # event-driven plasticity
                c = self.rules[n].connection
                traces[n], weights[c.name] = er.step(
                    state["rules"][n]["rule"], weights[c.name], arriving[c.name],
                    spikes[c.target.name], mods[n], state["t"], structure[c.name]["mask"],
                    lambda w, cn=c.name: self._dale(cn, w), cap_pre, cap_post)
            rules = {n: {"rule": traces[n], "opt": opt.get(n, state["rules"][n]["opt"])}
                     for n in self.rules}
        else:
            rules = {}
        new_state = {**dyn, "weights": weights, "rules": rules}
        out = {}
        for n, m in self.monitors.items():
            out[n] = spikes[m.group.name] if isinstance(m, SpikeMonitor) else getattr(
                dyn["neurons"][m.group.name], m.field)
        return new_state, out

    def _run(self, params: Any, structure: Any, state: Any, ext: Any, mods: Any, steps: int):
        def body(st, xs):
            e, m = xs
            return self._step(params, structure, st, e, m)

        return jax.lax.scan(body, state, (ext, mods), length=steps)

    # ---- the staged simulator (fixed weights): one scan per strongly connected stage
    def _sequence_from(self, hist: Array, seq: Array, delay: int) -> Array:
        """What a connection of ``delay`` steps delivers at each of the T steps, given the
        source's ring buffer before them (``hist[h]`` = spikes h+1 steps ago) and its T new
        outputs ``seq``."""
        if delay == 0:
            return seq
        T, H = seq.shape[0], hist.shape[0]
        full = jnp.concatenate([hist[::-1], seq], axis=0)  # oldest first, [H + T, n]
        return jax.lax.dynamic_slice_in_dim(full, H - delay, T, axis=0)

    def _simulate(self, params: Any, structure: Any, weights: Any, dyn: Any, traces: Any,
                  ext: Any, steps: int):
        T = steps
        seqs: dict[str, Array] = {}  # group -> outputs [T, n]
        states: dict[str, Any] = {}  # group -> neuron states [T, ...] (rule targets, monitors)
        arrive: dict[str, Array] = {}  # plastic connection -> pre [T, n_pre]
        last_neurons, last_syn = {}, {}
        keep = self._keep_states
        for stage in self.stages:
            inside = set(stage)
            drive = {}
            for g in stage:
                d = jnp.broadcast_to(params["bias"][g] + ext.get(g, jnp.zeros((T, 1))),
                                     (T, self.groups[g].n))
                for n in self._in_conns[g]:
                    c = self.connections[n]
                    if c.source.name in inside:
                        continue
                    a = self._sequence_from(dyn["history"][c.source.name], seqs[c.source.name],
                                            c.delay)
                    if n in self._plastic:
                        arrive[n] = a
                    cur = self._current(n, a, weights[n], structure[n])
                    if c.synapse == "exponential":
                        dec = self._syn_decay(params, n)
                        last, cur = jax.lax.scan(lambda i, x, dec=dec: (dec * i + x, dec * i + x),
                                                 dyn["syn"][n], cur)
                        last_syn[n] = last
                    d = d + cur
                drive[g] = d
            g0 = stage[0]
            if (len(stage) == 1 and self.groups[g0].model.name == "Input"
                    and not any(self.connections[n].source.name == g0
                                for n in self._in_conns[g0])):
                # a relay needs no scan: its outputs are its drive
                seqs[g0] = drive[g0]
                st = type(dyn["neurons"][g0])(v=drive[g0], z=drive[g0])
                last_neurons[g0] = jax.tree.map(lambda x: x[-1], st)
                if g0 in keep:
                    states[g0] = st
                continue
            if (len(stage) == 1 and self.groups[g0].model.name == "LI" and T <= 1024
                    and not any(self.connections[n].source.name == g0
                                for n in self._in_conns[g0])):
                # a leaky readout is a linear filter: v_t = sum_s kappa^(t-s) I_s + kappa^t v_0
                kappa = decay(params["neurons"][g0])
                e = np.arange(T)[:, None] - np.arange(T)[None, :]
                A = jnp.where(e >= 0, kappa ** np.maximum(e, 0), 0.0)
                pw = kappa ** jnp.arange(1, T + 1, dtype=jnp.float32)
                v = A @ drive[g0] + pw[:, None] * dyn["neurons"][g0].v[None, :]
                st = type(dyn["neurons"][g0])(v=v, z=jnp.zeros_like(v))
                seqs[g0] = st.z
                last_neurons[g0] = jax.tree.map(lambda x: x[-1], st)
                if g0 in keep:
                    states[g0] = st
                continue
            sub = {"neurons": {g: dyn["neurons"][g] for g in stage},
                   "history": {g: dyn["history"][g] for g in stage},
                   "syn": {n: v for n, v in dyn["syn"].items()
                           if self.connections[n].source.name in inside
                           and self.connections[n].target.name in inside},
                   "t": dyn["t"]}
            plastic_inside = [n for n in self._plastic
                              if self.connections[n].source.name in inside
                              and self.connections[n].target.name in inside]

            def body(carry, drive_t, stage=stage, plastic_inside=plastic_inside):
                carry, spikes, arriving = self._advance(params, structure, weights, carry, None,
                                                        groups=stage, drive0=drive_t)
                out = {"z": spikes, "a": {n: arriving[n] for n in plastic_inside},
                       "s": {g: carry["neurons"][g] for g in stage if g in keep}}
                return carry, out

            sub, out = jax.lax.scan(body, sub, drive, length=T)
            for g in stage:
                seqs[g] = out["z"][g]
                last_neurons[g] = sub["neurons"][g]
            states.update(out["s"])
            arrive.update(out["a"])
            last_syn.update(sub["syn"])
        history = {}
        for g, h in dyn["history"].items():
            H = h.shape[0]
            full = jnp.concatenate([h[::-1], seqs[g]], axis=0)
            history[g] = full[::-1][:H]
        new_dyn = {"neurons": last_neurons, "history": history,
                   "syn": {n: last_syn.get(n, v) for n, v in dyn["syn"].items()},
                   "t": dyn["t"] + T}
        new_traces = {}
        for n, r in self.rules.items():
            c = r.connection
            pre, post = arrive[c.name], seqs[c.target.name]
            view = self._view(params, c.target.name, states[c.target.name])
            if r.rule.accumulate_block is not None:
                new_traces[n] = r.rule.accumulate_block(traces[n], pre, post, view)
            else:
                def acc(rs, xs, r=r, tgt=c.target.name):
                    p, q, st = xs
                    return r.rule.accumulate(rs, p, q, self._view(params, tgt, st)), None

                new_traces[n] = jax.lax.scan(acc, traces[n], (pre, post, states[c.target.name]))[0]
        records = {}
        for n, m in self.monitors.items():
            g = m.group.name
            records[n] = seqs[g] if isinstance(m, SpikeMonitor) else getattr(states[g], m.field)
        counts = {g: jnp.sum(seqs[g], axis=0) for g in self.groups
                  if self.groups[g].model.name != "LI"}
        return new_dyn, new_traces, records, counts

    # ---- public pure functions for agents and training loops (vmap / jit freely)
    @staticmethod
    def dynamic(state: Mapping[str, Any]) -> dict[str, Any]:
        """The per-instance part of a state: neurons, spike ring buffers, synaptic currents,
        time (no weights, no rule states) -- what each of several environments sharing one set
        of weights keeps."""
        return {k: state[k] for k in ("neurons", "history", "syn", "t")}

    @staticmethod
    def traces(state: Mapping[str, Any]) -> dict[str, Any]:
        """Rule states (eligibility traces) by rule name."""
        return {n: r["rule"] for n, r in state["rules"].items()}

    @staticmethod
    def optimizer_states(state: Mapping[str, Any]) -> dict[str, Any]:
        """Optimizer states by rule name."""
        return {n: r["opt"] for n, r in state["rules"].items()}

    def simulate(self, weights: Any, dyn: Any, traces: Any, inputs: Any = None, *,
                 steps: int | None = None) -> tuple[Any, Any, dict, dict]:
        """Simulate T steps with fixed weights; learning rules only accumulate their traces.

        The network is cut into stages (strongly connected groups of neuron groups, in
        feed-forward order): each stage is one ``lax.scan`` over the T steps, and the currents a
        stage receives from earlier stages are computed for all T steps in one matrix product.
        Rules with an ``accumulate_block`` (STDP, R-STDP, e-prop on LIF/LI targets) update
        their traces once for the T steps (a rank-T product instead of T rank-1 updates).
        The result equals T calls of the step-by-step simulator (tested).

        Args:
            weights: dict connection -> weights (``state["weights"]``).
            dyn: ``CompiledNetwork.dynamic(state)``.
            traces: ``CompiledNetwork.traces(state)``.
            inputs: dict input group -> ``[T, n]`` (or one array for a single input group).
            steps: T when there are no inputs.

        Returns:
            ``(dyn, traces, records, counts)``: records dict monitor -> ``[T, n]``; counts
            dict group -> outputs per neuron ``[n]`` summed over the T steps (spike counts;
            for an Input group the summed drive; leaky readouts have none).

        Raises:
            ShapeError / ConfigError: inputs of the wrong shape or group.
        """
        self._clock_only("simulate")
        ext, T = self._check_inputs(inputs, time_major=True, steps=steps)
        return self._simulate_jit(self.params, self.structure, weights, dyn, traces, ext,
                                  steps=T)

    def rule_updates(self, weights: Any, traces: Any, modulators: Any = None
                     ) -> tuple[dict, dict]:
        """``rule.update`` of every rule: ``(grads, traces)`` with ``grads[rule] = -Delta w``.

        Args:
            modulators: dict rule -> third factor: a scalar (reward, TD error) or one value per
                postsynaptic neuron ``[n_post]`` (e-prop's learning signal L_j).
        """
        self._clock_only("rule_updates")
        mods = self._check_mods(modulators, None, per_post=True)
        return self._rule_grads(traces, weights, mods)

    def _clock_only(self, what: str) -> None:
        if self._event:
            n = next(iter(self._event))
            raise ConfigError(f"LearningRule({n}).event_driven", True, f"False for {what}() "
                              "(it accumulates clock-driven traces with fixed weights; event-"
                              "driven rules learn in step / run)", False)

    def constrain(self, weights: Any, project: bool = True) -> dict[str, Array]:
        """Dale's sign, the structural mask and (``project``) the backend's deterministic
        projection of every connection's weights (what ``apply_updates`` does after its
        optimizer step); for recipes that run their own optimizer on the network's weights.
        ``make_train`` passes ``project=False`` through ``NetworkRuntime.project_updates`` and
        rounds on the chip itself (stochastic rounding on chip, float shadow weights off chip)."""
        out = dict(weights)
        for n in weights:
            w = weights[n]
            if self._conf[n]["storage"] == "dense":
                w = self._dale(n, w) * self.structure[n]["mask"]
            out[n] = self._project(n, w) if project else w
        return out

    def out_degrees(self) -> dict[str, np.ndarray]:
        """Outgoing synapses of each presynaptic neuron, per connection (``[n_pre]``, host)."""
        return {n: np.bincount(c["pre"], minlength=self.connections[n].source.n)
                for n, c in self._conf.items()}

    def apply_updates(self, weights: Any, opt_states: Any, grads: Any) -> tuple[dict, dict]:
        """Each rule's optimizer on its ``grads`` (-Delta w), then Dale's sign, the structural
        mask and the backend's projection. Returns ``(weights, opt_states)``."""
        return self._apply(self.structure, weights, opt_states, grads)

    # ------------------------------------------------------------------ host-side validation
    def _check_inputs(self, inputs: Any, time_major: bool, steps: int | None) -> tuple[dict, int]:
        if inputs is None:
            inputs = {}
        elif not isinstance(inputs, Mapping):
            if len(self.input_groups) != 1:
                raise ConfigError("inputs", type(inputs).__name__,
                                  f"a dict group-name -> array for the input groups "
                                  f"{self.input_groups}")
            inputs = {self.input_groups[0]: inputs}
        out, T = {}, None
        for g, x in inputs.items():
            if g not in self.input_groups:
                raise ConfigError(f"inputs[{g!r}]", g,
                                  f"an input group, one of {self.input_groups}",
                                  closest(str(g), self.input_groups))
            n = self.groups[g].n
            shape = tuple(np.shape(x))
            if time_major:
                if len(shape) != 2 or shape[1] != n or (T is not None and shape[0] != T):
                    raise ShapeError(f"inputs[{g!r}]", f"(T={T if T else 'T'}, {n})", shape)
                T = shape[0]
            elif shape != (n,):
                raise ShapeError(f"inputs[{g!r}]", (n,), shape)
            if not isinstance(x, jax.core.Tracer):
                arr = np.asarray(x)
                if np.iscomplexobj(arr):
                    raise ConfigError(f"inputs[{g!r}]", "complex values", "real currents or "
                                      "spikes (the imaginary part would be dropped)")
                if not np.all(np.isfinite(arr)):
                    bad = np.argwhere(~np.isfinite(arr))[0].tolist()
                    raise ConfigError(f"inputs[{g!r}]", f"NaN/inf at index {bad}", "finite values")
            out[g] = jnp.asarray(x, jnp.float32)
        if time_major:
            if T is None:
                if steps is None:
                    raise ConfigError("run.steps", None, "the number of steps when no inputs "
                                      "are given")
                T = int(steps)
            elif steps is not None and steps != T:
                raise ShapeError("inputs (time axis)", f"T = steps = {steps}", T)
        return out, T or 0

    def _check_mods(self, modulators: Any, T: int | None, per_post: bool = True
                    ) -> dict[str, Array]:
        if modulators is None:
            modulators = {}
        elif not isinstance(modulators, Mapping):
            if len(self.rules) != 1:
                raise ConfigError("modulators", type(modulators).__name__,
                                  f"a dict rule-name -> array for the rules {list(self.rules)}")
            modulators = {next(iter(self.rules)): modulators}
        out = {}
        for n in modulators:
            if n not in self.rules:
                raise ConfigError(f"modulators[{n!r}]", n, f"one of {list(self.rules)}",
                                  closest(str(n), list(self.rules)))
        for n, r in self.rules.items():
            m = modulators.get(n, 1.0)
            shape = tuple(np.shape(m))
            n_post = r.connection.target.n
            if T is not None:
                ok = ((), (T,), (T, n_post)) if per_post else ((), (T,))
                if shape not in ok:
                    raise ShapeError(f"modulators[{n!r}]", " or ".join(map(str, ok)), shape)
            elif shape not in ((), (n_post,)):
                raise ShapeError(f"modulators[{n!r}]", f"() or ({n_post},)", shape)
            if not isinstance(m, jax.core.Tracer):
                arr = np.asarray(m)
                if np.iscomplexobj(arr) or not np.all(np.isfinite(arr)):
                    raise ConfigError(f"modulators[{n!r}]", "complex or non-finite values",
                                      "finite real values")
            m = jnp.asarray(m, jnp.float32)
            if T is not None and m.ndim < 1:
                m = jnp.broadcast_to(m, (T,))
            out[n] = m
        return out

    # ------------------------------------------------------------------ public API
    def init(self, key: Array) -> dict[str, Any]:
        """Initial state of one network (weights, neuron states, spike ring buffers, traces)."""
        return self._init_jit(self.params, self.structure, key)

    def _check_state(self, state: Any, what: str = "state") -> None:
        """The state must be this network's (same groups, connections, rules and shapes):
        another network's state would run silently with its own shapes."""
        if not isinstance(state, Mapping) or "weights" not in state or "neurons" not in state:
            raise ConfigError(what, type(state).__name__,
                              "this network's state (from its init(key) or a previous run)")
        if not hasattr(self, "_state_shapes"):
            self._state_shapes = jax.eval_shape(self.init, jax.random.key(0))
        want = jax.tree_util.tree_flatten_with_path(self._state_shapes)[0]
        got = jax.tree_util.tree_flatten_with_path(state)[0]
        if len(want) != len(got):
            raise ConfigError(what, f"{len(got)} arrays", f"this network's state "
                              f"({len(want)} arrays): a state of another network?")
        for (pw, w), (pg, g) in zip(want, got, strict=True):
            if pw != pg or tuple(np.shape(g)) != tuple(w.shape):
                raise ShapeError(f"{what}{jax.tree_util.keystr(pg)} (another network's state?)",
                                 tuple(w.shape), tuple(np.shape(g)))

    def step(self, state: Any, inputs: Any = None, modulators: Any = None) -> tuple[Any, dict]:
        """One time step. ``inputs``: dict group -> [n] (or an array for a single input group);
        ``modulators``: dict rule -> scalar (default 1.0). Returns (state, monitor values)."""
        self._check_state(state)
        ext, _ = self._check_inputs(inputs, time_major=False, steps=None)
        mods = self._check_mods(modulators, None)
        return self._step_jit(self.params, self.structure, state, ext, mods)

    def run(
        self,
        state: Any,
        inputs: Any = None,
        *,
        steps: int | None = None,
        modulators: Any = None,
    ) -> tuple[Any, dict[str, Array]]:
        """Simulate ``T`` steps in a ``lax.scan``.

        Args:
            state: from ``init`` (or a previous run).
            inputs: external currents: dict group -> [T, n], or an array [T, n] when there is a
                single input group; None with ``steps=T`` for an autonomous network.
            steps: number of steps when there are no inputs.
            modulators: dict rule-name -> [T] (or scalar) third factor per step (reward, TD error)
                for three-factor rules; default 1.0 (plain STDP).

        Returns:
            ``(state, records)`` with records: dict monitor-name -> [T, n].
        """
        self._check_state(state)
        ext, T = self._check_inputs(inputs, time_major=True, steps=steps)
        mods = self._check_mods(modulators, T)
        return self._run_jit(self.params, self.structure, state, ext, mods, steps=T)

    def __repr__(self) -> str:
        return (f"CompiledNetwork(backend={self.backend!r}, groups={list(self.groups)}, "
                f"connections={self.storage()})")
