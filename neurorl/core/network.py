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
2. synapse: ``"delta"`` adds ``W^T s`` to the target current; ``"exponential"`` keeps a current
   ``i <- exp(-dt / tau_syn) i + W^T s`` per connection (current-based exponential synapse, as in
   the CUBA model of Vogels & Abbott 2005) and adds ``i``;
3. every group steps its neuron model with current = external input + bias + synaptic currents;
4. learning rules accumulate (pre = the arriving spikes, post = the new spikes) and update the
   weights through an optax optimizer, then Dale's sign, the structural mask and the backend's
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

Structure (edges, masks, per-synapse delays) is sampled on the host with a numpy seed at compile
time -- it fixes the traced shapes. Weights are sampled in ``init(key)``; new keys, weights,
inputs or neuron parameters never trigger a recompilation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from neurorl.core import connectivity as cx
from neurorl.core.monitors import Monitor, PotentialMonitor, SpikeMonitor
from neurorl.core.neurons import NeuronModel, get_neuron, make_params
from neurorl.errors import ConfigError, ShapeError, closest, lookup

Array = jax.Array

SIGNS = {"excitatory": 1.0, "inhibitory": -1.0, None: 0.0}
SYNAPSES = ("delta", "exponential")
STORAGES = ("auto", "dense", "sparse")
SIMULATOR_BACKENDS = ("jax", "float")
_DENSE_MAX = 65_536  # entries of a dense matrix before "auto" considers sparse storage
_DENSE_MIN_DENSITY = 0.1  # above this density a masked matmul beats the padded gather


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
        self.model = get_neuron(model) if isinstance(model, str) else model
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
        delay: transmission delay in steps (int >= 1, per connection), an int array
            ``[n_pre, n_post]`` (per synapse), or ``(low, high)`` for per-synapse delays drawn
            uniformly from ``low..high`` at compile time.
        sign: "excitatory" / "inhibitory" keeps the weights' sign (Dale's law); default: the
            source group's sign.
        storage: "auto", "dense" or "sparse" (see module docstring).
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
        self.seed = seed
        self._name = name

    def _check_delay(self, delay: Any) -> Any:
        if isinstance(delay, (int, np.integer)) and not isinstance(delay, bool):
            if delay < 1:
                raise ConfigError("Connection.delay", delay, "an integer number of steps >= 1")
            return int(delay)
        if isinstance(delay, tuple) and len(delay) == 2:
            lo, hi = delay
            if int(lo) != lo or int(hi) != hi or lo < 1 or hi < lo:
                raise ConfigError("Connection.delay", delay, "(low, high) integers, 1 <= low <= high")
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


class LearningRule:
    """Plasticity on one connection: a rule from ``neurorl.plasticity.RULES`` plus an optimizer.

    Args:
        connection: the plastic Connection (stored dense, per-connection delay).
        rule: rule name ("stdp", "rstdp", "eprop", ...) or a ``PlasticityRule`` NamedTuple.
        params: keyword arguments of the rule factory.
        optimizer: an optax GradientTransformation following the rule's -Delta w
            (default ``optax.sgd(1.0)``: w <- w + Delta w).
        name: key in state["rules"] and in ``run(..., modulators={name: [T]})``.
    """

    def __init__(
        self,
        connection: Connection,
        rule: Any = "stdp",
        params: Mapping[str, Any] | None = None,
        *,
        optimizer: optax.GradientTransformation | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(connection, Connection):
            raise ConfigError("LearningRule.connection", connection, "a Connection")
        self.connection = connection
        params = dict(params or {})
        if isinstance(rule, str):
            try:
                from neurorl.plasticity import RULES
            except ImportError:  # pragma: no cover - plasticity package missing
                RULES = {}
            factory = lookup(RULES, rule, "plasticity rule", field="LearningRule.rule")
            try:
                self.rule = factory(**params)
            except TypeError as e:
                raise ConfigError(f"LearningRule({rule}).params", params, f"valid arguments ({e})")
            self.rule_name = rule.lower()
        else:
            self.rule, self.rule_name = rule, getattr(rule, "name", "custom")
        if not isinstance(connection.delay, int):
            raise ConfigError("LearningRule.connection.delay", "per-synapse",
                              "a single delay per connection for plastic connections")
        self.optimizer = optimizer if optimizer is not None else optax.sgd(1.0)
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

    def add(self, *objects: Any) -> Network:
        """Add objects (or iterables of objects); returns self for chaining."""
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
        return self

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
        w_max: float = 1.0,
    ) -> CompiledNetwork:
        """Validate everything on the host, build the structure and return a CompiledNetwork.

        Args:
            backend: "jax" / "float" (unconstrained simulator) or a chip name from
                ``neurorl.hardware.CHIPS`` (then weights are projected on the chip's grid).
            seed: numpy seed for connectivity structure and per-synapse delays.
            project: optional ``project(W) -> W`` applied to dense weights at init and after
                every plasticity update (overrides the chip's projection).
            w_max: weight magnitude mapped to the chip's largest level (chip backends).
        """
        backends = available_backends()
        if not isinstance(backend, str) or backend.lower() not in [b.lower() for b in backends]:
            raise ConfigError("Network.compile.backend", backend,
                              f"one of {backends}", closest(str(backend), backends))
        backend = next(b for b in backends if b.lower() == backend.lower())
        self._validate()
        if not self.groups:
            raise ConfigError("Network.groups", [], "at least one NeuronGroup")
        if project is None and backend not in SIMULATOR_BACKENDS:
            from neurorl.hardware.constraints import chip_projection

            chip_project = chip_projection(backend, w_max)
            project = lambda w: chip_project(w)  # noqa: E731
        return CompiledNetwork(self, backend, seed, project)


def _stable_seed(seed: int, i: int) -> int:
    return int(np.random.SeedSequence([seed, i]).generate_state(1)[0])


class CompiledNetwork:
    """The simulator of a Network: pure, jitted ``init``, ``step`` and ``run``.

    Attributes:
        params: pytree of traced parameters: ``{"neurons": {group: params}, "bias": {group: b}}``.
        structure: pytree of static-shaped int arrays (edges, delays, masks) passed to the jitted
            functions as arguments (not baked-in constants).
        project: the weight projection hook (identity for the "jax" backend).
        input_groups: names of the groups that take external input, in order.
    """

    def __init__(self, net: Network, backend: str, seed: int, project: Callable | None) -> None:
        self.backend = backend
        self.project = project
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
        self.dt = float(np.asarray(net.groups[0].params.dt)) if hasattr(net.groups[0].params, "dt") else 1.0

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
                    delay_e = rng.integers(c.delay[0], c.delay[1] + 1, size=len(pre)).astype(np.int32)
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
            self.structure[c.name] = s
            self._conf[c.name] = dict(
                storage=storage, pre=pre, post=post, slot=slot_of, n_edges=len(pre),
                per_synapse_delay=delay_e is not None,
                sign=SIGNS[c.effective_sign],
            )
        self.params = {
            "neurons": {n: g.params for n, g in self.groups.items()},
            "bias": {n: jnp.asarray(g.bias, jnp.float32) for n, g in self.groups.items()},
            "tau_syn": {n: jnp.asarray(c.tau_syn if c.tau_syn else 1.0, jnp.float32)
                        for n, c in self.connections.items()},
        }
        self._init_jit = jax.jit(self._init)
        self._step_jit = jax.jit(self._step)
        self._run_jit = jax.jit(self._run, static_argnames="steps")

    # ------------------------------------------------------------------ info
    def n_synapses(self) -> dict[str, int]:
        """Edge count per connection."""
        return {n: c["n_edges"] for n, c in self._conf.items()}

    def storage(self) -> dict[str, str]:
        """"dense" or "sparse" per connection."""
        return {n: c["storage"] for n, c in self._conf.items()}

    def dense_weights(self, state: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Weights of every connection as dense ``[n_pre, n_post]`` numpy arrays (0 = no synapse)."""
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
        if self.project is not None and self._conf[name]["storage"] == "dense":
            w = self.project(w) * self.structure_mask(name)
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
            rules[n] = {"rule": r.rule.init(w), "opt": r.optimizer.init(w)}
        return {"neurons": neurons, "history": history, "syn": syn, "weights": weights,
                "rules": rules, "t": jnp.zeros((), jnp.int32)}

    def _step(self, params: Any, structure: Any, state: Any, ext: Any, mods: Any):
        drive = {n: params["bias"][n] + ext.get(n, 0.0) for n in self.groups}
        arriving = {}
        new_syn = {}
        for n, c in self.connections.items():
            conf, s, w = self._conf[n], structure[n], state["weights"][n]
            hist = state["history"][c.source.name]
            if conf["per_synapse_delay"]:
                if conf["storage"] == "dense":
                    a = hist[s["delay"] - 1, jnp.arange(c.source.n)[:, None]]  # [n_pre, n_post]
                    cur = jnp.sum(a * w, axis=0)
                else:
                    a = hist[s["delay"] - 1, s["idx"]]  # [n_post, k_max]
                    cur = jnp.sum(a * w, axis=1)
            else:
                a = hist[c.delay - 1]
                arriving[n] = a
                if conf["storage"] == "dense":
                    cur = a @ w
                else:
                    cur = jnp.sum(a[s["idx"]] * w, axis=1)
            if c.synapse == "exponential":
                dt = jnp.asarray(getattr(params["neurons"][c.target.name], "dt", 1.0), jnp.float32)
                cur = jnp.exp(-dt / params["tau_syn"][n]) * state["syn"][n] + cur
                new_syn[n] = cur
            drive[c.target.name] = drive[c.target.name] + cur
        neurons, spikes = {}, {}
        for n, g in self.groups.items():
            z, ns = g.model.step(params["neurons"][n], state["neurons"][n], drive[n])
            neurons[n], spikes[n] = ns, z
        history = {n: jnp.concatenate([spikes[n][None], state["history"][n][:-1]], axis=0)
                   for n in self.groups}
        weights = dict(state["weights"])
        rules = {}
        for n, r in self.rules.items():
            c = r.connection
            cn = c.name
            rs = r.rule.accumulate(state["rules"][n]["rule"], arriving[cn], spikes[c.target.name],
                                   neurons[c.target.name])
            grads, rs = r.rule.update(rs, mods[n], weights[cn])
            updates, opt = r.optimizer.update(grads, state["rules"][n]["opt"], weights[cn])
            w = optax.apply_updates(weights[cn], updates)
            w = self._dale(cn, w) * structure[cn]["mask"]
            weights[cn] = self._project(cn, w)
            rules[n] = {"rule": rs, "opt": opt}
        new_state = {"neurons": neurons, "history": history, "syn": new_syn, "weights": weights,
                     "rules": rules, "t": state["t"] + 1}
        out = {}
        for n, m in self.monitors.items():
            out[n] = spikes[m.group.name] if isinstance(m, SpikeMonitor) else getattr(
                neurons[m.group.name], m.field)
        return new_state, out

    def _run(self, params: Any, structure: Any, state: Any, ext: Any, mods: Any, steps: int):
        def body(st, xs):
            e, m = xs
            return self._step(params, structure, st, e, m)

        return jax.lax.scan(body, state, (ext, mods), length=steps)

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
                raise ConfigError(f"inputs[{g!r}]", g, f"an input group, one of {self.input_groups}",
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

    def _check_mods(self, modulators: Any, T: int | None) -> dict[str, Array]:
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
        for n in self.rules:
            m = modulators.get(n, 1.0)
            shape = tuple(np.shape(m))
            if T is not None and shape not in ((), (T,)):
                raise ShapeError(f"modulators[{n!r}]", f"() or ({T},)", shape)
            m = jnp.asarray(m, jnp.float32)
            if T is not None:
                m = jnp.broadcast_to(m, (T,))
            out[n] = m
        return out

    # ------------------------------------------------------------------ public API
    def init(self, key: Array) -> dict[str, Any]:
        """Initial state of one network (weights, neuron states, spike ring buffers, traces)."""
        return self._init_jit(self.params, self.structure, key)

    def step(self, state: Any, inputs: Any = None, modulators: Any = None) -> tuple[Any, dict]:
        """One time step. ``inputs``: dict group -> [n] (or an array for a single input group);
        ``modulators``: dict rule -> scalar (default 1.0). Returns (state, monitor values)."""
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
        ext, T = self._check_inputs(inputs, time_major=True, steps=steps)
        mods = self._check_mods(modulators, T)
        return self._run_jit(self.params, self.structure, state, ext, mods, steps=T)

    def __repr__(self) -> str:
        return (f"CompiledNetwork(backend={self.backend!r}, groups={list(self.groups)}, "
                f"connections={self.storage()})")
