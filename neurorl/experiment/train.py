"""``make_train(config) -> train(key)``: env + spiking agent + online learning as ONE jitted scan.

PureJaxRL style: the whole run is a ``lax.scan`` over environment steps, vmapped over seeds; the
agent serves ``n_envs`` parallel environments that share its weights (vmapped inside the agent).
Nothing inside talks to the host. For long runs the same code is exposed in chunks::

    train = make_train(TrainConfig(env_id="CartPole-v1", agent="eprop_ac", n_steps=100_000))
    out = train(jax.random.key(0))            # {"runner_state", "metrics"}, metrics [T, S, ...]
    rs = train.init(jax.random.key(0))         # runner state, leading seed axis S
    rs, metrics = train.run_chunk(rs, 10_000)  # 10_000 env steps per seed (n_envs divides it)

Per-step metrics (leading axes ``[T, S]``, ``T = steps // n_envs``; env axis ``B`` last):
``reward [T,S,B]``, ``done [T,S,B]``, ``episode_return [T,S,B]`` and ``episode_length`` (the
finished episode's return/length where ``done``, else 0), ``spikes [T,S,B]`` and
``synops [T,S,B]`` (per env step), ``weight_norm [T,S]`` (L2 norm of all learnable weights).

The config is a frozen dataclass; values derived from it come from functions
(:func:`n_iterations`), never by mutating it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from neurorl.agents import AGENTS, make_agent, spec_from_env
from neurorl.envs import make
from neurorl.errors import ConfigError, checked_keywords, lookup
from neurorl.experiment.sharding import (
    MEMBER_AXIS,
    enable_host_devices,
    member_block,
    member_layout,
    pad_members,
    unpad_members,
)
from neurorl.experiment.shiftspec import build_shifted_env, is_empty

Array = jax.Array

# one CPU host device per core, if jax has not started yet (see neurorl.experiment.sharding)
enable_host_devices()


@checked_keywords
@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run (per seed), plain and frozen.

    Every field is checked by :func:`validate` before anything is built (a ``ConfigError``
    naming the field, e.g. ``agent_kwargs.lr`` or ``shifts.param`` with the closest name).
    Seeds: ``train.init(key)`` with one key splits it into ``n_seeds`` keys; to make member *i*
    identical to a single run with seed ``s + i`` pass one key per member,
    ``jax.vmap(jax.random.key)(jnp.arange(s, s + n_seeds))``, as the experiment runner does.

    Attributes:
        env_id: environment id, e.g. ``"CartPole-v1"``.
        agent: agent name in ``neurorl.agents.AGENTS`` (``"eprop_ac"``, ``"bptt_ac"``,
            ``"rstdp"``).
        agent_kwargs: agent hyperparameters (see each agent's ``DEFAULTS``).
        env_kwargs: EnvParams overrides passed to ``neurorl.envs.make``.
        n_steps: total env steps per seed, summed over the parallel envs.
        n_envs: parallel envs per agent (sharing its weights).
        substeps: K network substeps per env step.
        n_seeds: independent runs, vmapped.
        obs_range: symmetric encoder range per obs dimension (None: the agent default).
        shifts: the ``shifts`` section of an experiment config (param shifts, task sequence,
            obs/action/reward shifts; step counts in total env steps), or None.
        chip: a chip name from ``neurorl.hardware.CHIPS``: its weight constraints are applied to
            the agent's weights after every update (None or "float": unconstrained).
        off_chip_learning: the rule runs off-chip (host), only the weights live on the chip;
            otherwise a chip without on-chip support for the rule is an error.
        chip_w_scale: each weight matrix's grid covers ``chip_w_scale x max|w_init|`` (a
            per-projection scale, like Loihi's weight exponent).
        chip_device: on-chip learning on a crossbar (``pcm``, ``rram``): fields of the chip's
            pulsed-device model to change (:class:`~neurorl.hardware.memristor.PulseDeviceSpec`),
            e.g. ``{"update": "mixed_precision"}`` (accumulate-then-program, Nandakumar et al.
            2020) or one non-ideality such as ``{"up_down": 0.3}``; None: the preset.
        chip_engine: on-chip learning on a chip with a learning engine (Loihi, Loihi 2,
            SpiNNaker, BrainScaleS-2): fields of its
            :class:`~neurorl.hardware.learning_engine.LearningEngine` to change, e.g. the
            codes per unit ``{"trace_scale": 6.0, "tag_scale": 1.0}`` (R-STDP's eligibilities
            saturate Loihi's default 9-bit tag scale); the scales may be ``"auto"`` (with an
            optional ``calibration_steps``: calibrated by a float run first,
            :mod:`neurorl.hardware.calibrate`); None: the chip's engine.
        network: the agent's network when not the recipe's own: an
            :class:`~neurorl.agents.AgentNetwork`, a function ``spec -> AgentNetwork`` (a
            Python recipe) or the YAML mapping of ``agent.network``; ``agent`` then names the
            learning recipe that trains it (``"eprop_ac"``, ``"rstdp"``, ``"bptt_ac"``).
        context: contextual inference (``agent.context``): settings of
            :func:`neurorl.agents.context.with_context`, e.g. ``{"n_contexts": 4}`` (a store of
            weight sets chosen by forward-model prediction errors); None: the plain agent.
    """

    env_id: str = "CartPole-v1"
    agent: str = "eprop_ac"
    agent_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    env_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    n_steps: int = 100_000
    n_envs: int = 8
    substeps: int = 5
    n_seeds: int = 1
    obs_range: tuple[float, ...] | None = None
    shifts: Mapping[str, Any] | None = None
    chip: str | None = None
    off_chip_learning: bool = False
    chip_w_scale: float = 2.0
    network: Any = None
    chip_device: Mapping[str, Any] | None = None
    chip_engine: Mapping[str, Any] | None = None
    context: Mapping[str, Any] | None = None


def n_iterations(cfg: TrainConfig, n_steps: int | None = None) -> int:
    """Scan length: env steps per seed divided by the parallel envs."""
    return (cfg.n_steps if n_steps is None else n_steps) // cfg.n_envs


def validate(cfg: TrainConfig) -> None:
    """Host-side checks, before any trace (ConfigError naming the TrainConfig field).

    Checks the sizes, the agent / chip / env names, ``agent_kwargs`` by their defaults' kinds
    (known name, finite, >= 0 where the default is, whole numbers for sizes), ``env_kwargs``
    (the env's physical checks), ``obs_range`` (one or ``obs_dim`` positive half-widths) and
    ``shifts`` (the experiment schema's keys, with the closest name for a typo such as
    ``"param"``; steps inside ``n_steps``; physically valid values).

    Raises:
        ConfigError: the first problem, named by its TrainConfig field (``agent_kwargs.lr``).
    """
    for name in ("n_steps", "n_envs", "substeps", "n_seeds"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(name, v, "an integer >= 1")
    if cfg.n_steps % cfg.n_envs:
        raise ConfigError("n_steps", cfg.n_steps, f"a multiple of n_envs={cfg.n_envs}")
    lookup(AGENTS, cfg.agent, "agent", field="agent")
    validate_chip(cfg)
    from neurorl.experiment import config as C
    from neurorl.experiment.shiftspec import check_shifts

    if not isinstance(cfg.agent_kwargs, Mapping):
        raise ConfigError("agent_kwargs", cfg.agent_kwargs, "a dict of hyperparameters")
    if not isinstance(cfg.env_kwargs, Mapping):
        raise ConfigError("env_kwargs", cfg.env_kwargs, "a dict of env parameters")
    C.check_hyper_values(cfg.agent, dict(cfg.agent_kwargs), "agent_kwargs")
    params = C.check_env_params(cfg.env_id, dict(cfg.env_kwargs), "env_kwargs")
    C.check_obs_range(cfg.env_id, cfg.obs_range, "obs_range", params)
    if cfg.shifts is not None:
        if not isinstance(cfg.shifts, Mapping):
            raise ConfigError("shifts", cfg.shifts, "a dict like an experiment's shifts section")
        try:
            shifts = C.ShiftsSection.model_validate(dict(cfg.shifts)).model_dump(mode="python")
        except C.ValidationError as e:
            err = C._from_validation_error(e, root=C.ShiftsSection)
            raise ConfigError(
                "shifts." + str(err.field), err.value, err.allowed, err.suggestions
            ) from None
        check_shifts(
            shifts,
            cfg.env_id,
            dict(cfg.env_kwargs),
            total_steps=cfg.n_steps,
            n_envs=cfg.n_envs,
            steps_name="n_steps",
            envs_name="n_envs",
        )


def auto_engine_scales(engine: Mapping[str, Any] | None) -> bool:
    """Whether a chip learning engine's settings (``hardware.engine``) leave a scale to
    ``"auto"``, i.e. to a calibration by a float run of this trainer
    (:func:`neurorl.hardware.calibrate.calibrate_train_config`)."""
    return bool(engine) and "auto" in dict(engine).values()


def validate_chip(cfg: TrainConfig) -> None:
    """The chip fields of ``cfg`` (``chip``, ``chip_w_scale``, ``chip_device``,
    ``chip_engine``) and ``context`` (its settings, and no context on a chip): the part of
    :func:`validate` that does not depend on the env, which the host loop
    (:mod:`neurorl.experiment.host_train`) runs too.

    Raises:
        ConfigError: named by its TrainConfig field.
    """
    if cfg.chip is not None:
        from neurorl.hardware.chips import CHIPS

        lookup(CHIPS, cfg.chip, "chip", field="chip")
        if not cfg.chip_w_scale > 0:
            raise ConfigError("chip_w_scale", cfg.chip_w_scale, "a float > 0")
    if cfg.chip_device is not None:
        _chip_device(cfg)
    if cfg.chip_engine is not None:
        _chip_engine(cfg)
    if cfg.context is not None:
        from neurorl.agents.context import check_context

        check_context(cfg.context, cfg.agent)
        if cfg.chip is not None:
            raise ConfigError("agent.context", dict(cfg.context), "no context on a chip (the "
                              "stored weight sets are not held to the chip's grid yet): "
                              f"hardware.chip float, not {cfg.chip!r}")


# learning rule each agent runs, for the chip's on-chip learning check
AGENT_RULES = {"eprop_ac": "eprop", "bptt_ac": "bptt", "rstdp": "rstdp", "reference": "rstdp",
               "td_ac": "rstdp"}


def replace_weights(agent: Any, state: Any, new_weights: Any) -> Any:
    """Put ``new_weights`` (same structure as ``agent.weights(state)``) back into ``state``.

    Agents return their learnable weights as leaves *of the state itself*, so they are found by
    identity (this holds under tracing too: attribute access returns the same tracer).
    """
    old = jax.tree.leaves(agent.weights(state))
    new = jax.tree.leaves(new_weights)
    by_id = {id(o): n for o, n in zip(old, new, strict=True)}
    leaves, treedef = jax.tree_util.tree_flatten(state)
    found = len({id(x) for x in leaves} & set(by_id))  # an array held twice is one weight
    if found != len(old):
        raise ConfigError(
            "agent.weights",
            agent.name,
            "a weights(state) that returns the state's own weight arrays (not copies)",
        )
    return treedef.unflatten([by_id.get(id(x), x) for x in leaves])


def make_projection(cfg: TrainConfig, agent: Any) -> Callable[..., Any] | None:
    """The chip's weight projection ``project(weights, key=None)`` for this agent, or None.

    Off-chip learning (the host trains, the chip runs): deterministic rounding of float shadow
    weights. On-chip learning: stochastic rounding (unbiased), as chips' learning engines do --
    deterministic rounding would erase every update smaller than half a grid step.
    """
    if cfg.chip is None or cfg.chip == "float":
        return None
    from neurorl.hardware.constraints import chip_projection, require_on_chip_learning

    require_on_chip_learning(
        cfg.chip, AGENT_RULES.get(agent.name, agent.name), cfg.off_chip_learning
    )
    w0 = agent.weights(agent.init(jax.random.key(0)))
    stochastic = not cfg.off_chip_learning
    rt = getattr(agent, "runtime", None)
    hw = getattr(getattr(rt, "net", None), "hardware", None)
    if (hw is not None and getattr(hw, "projects", False) and isinstance(w0, dict)
            and set(w0) <= set(rt.net.connections) and cfg.chip_w_scale == 2.0):
        # the compiled network's backend: its per-connection grids (w_max="auto")

        def project_net(weights: Any, key: Array | None = None) -> Any:
            names = sorted(weights)
            keys = ([None] * len(names) if key is None or not stochastic
                    else list(jax.random.split(key, len(names))))
            return {n: hw.project_weights(weights[n], n, k)
                    for n, k in zip(names, keys, strict=True)}

        return project_net
    leaves, treedef = jax.tree_util.tree_flatten(w0)
    projs = [
        chip_projection(
            cfg.chip,
            w_max=max(float(jnp.max(jnp.abs(w))), 1e-6) * cfg.chip_w_scale,
            stochastic=stochastic,
        )
        for w in leaves
    ]

    def project(weights: Any, key: Array | None = None) -> Any:
        ws = jax.tree.leaves(weights)
        keys = [None] * len(ws) if key is None else list(jax.random.split(key, len(ws)))
        return treedef.unflatten(
            [p(w, k if stochastic else None) for p, w, k in zip(projs, ws, keys, strict=True)]
        )

    return project


class ChipLearning:
    """On-chip learning of an agent's network through its backend's learning engine.

    The compiled network's backend (:class:`neurorl.hardware.backends.ChipBackend`) owns the
    learning-time rounding: :meth:`init` programs the initial weights (engine state per
    connection: rounding key, learning-operation count, crossbar devices) and :meth:`commit`
    turns the change a recipe asked for in one env step (``w_before -> w_after``) into what the
    chip does with it (Loihi: the 15-bit accumulator and stochastic rounding; crossbars:
    programming pulses and the devices read back). ``make_train`` only hands the weights over.
    """

    def __init__(self, hw: Any, names: list[str], epoch: int) -> None:
        self.hw, self.names = hw, sorted(names)
        hw.learning_epoch = int(epoch)

    def init(self, weights: dict[str, Array], key: Array) -> tuple[dict[str, Array], dict]:
        """Weights as first programmed on the chip and the engine states."""
        keys = jax.random.split(key, len(self.names))
        states = {n: self.hw.learn_init(weights[n], n, k)
                  for n, k in zip(self.names, keys, strict=True)}
        out = dict(weights)
        for n in self.names:
            if states[n].devices is not None:
                from neurorl.hardware.memristor import pulse_read

                out[n] = pulse_read(states[n].devices, 0.0, self.hw.chip.device,
                                    self.hw._w_scale(n))
            else:
                out[n] = self.hw.project_weights(weights[n], n)
        return out, states

    def commit(self, before: dict[str, Array], after: dict[str, Array], states: dict
               ) -> tuple[dict[str, Array], dict]:
        """One learning epoch on the chip for every plastic connection."""
        out, new = dict(after), {}
        for n in self.names:
            out[n], new[n] = self.hw.learn_commit(before[n], after[n], n, states[n])
        return out, new

    @staticmethod
    def ops(states: dict) -> Array:
        """Learning operations so far (synaptic updates or programming pulses)."""
        return sum(s.ops for s in states.values())


def _chip_device(cfg: TrainConfig) -> Any:
    """The crossbar's pulsed-device model with ``cfg.chip_device``'s changes (ConfigError: not
    a crossbar learning on chip, or an unknown field / invalid value)."""
    from neurorl.hardware.chips import get_chip
    from neurorl.hardware.memristor import PULSE_DEVICES, pulse_device_with

    spec = None if cfg.chip in (None, "float") else get_chip(cfg.chip)
    if spec is None or spec.device not in PULSE_DEVICES or cfg.off_chip_learning:
        raise ConfigError("chip_device", dict(cfg.chip_device),
                          "only with on-chip learning on a crossbar chip "
                          f"({', '.join(sorted(PULSE_DEVICES))}); chip is {cfg.chip!r}"
                          + (", off_chip_learning is on" if cfg.off_chip_learning else ""))
    if not isinstance(cfg.chip_device, Mapping):
        raise ConfigError("chip_device", cfg.chip_device, "a dict of device fields")
    return pulse_device_with(spec.device, cfg.chip_device, field="chip_device")


def _chip_engine(cfg: TrainConfig) -> Any:
    """The chip's learning engine with ``cfg.chip_engine``'s changes (ConfigError: no chip
    learning on chip, or an unknown field / invalid value)."""
    from neurorl.hardware.learning_engine import engine_with

    if cfg.chip in (None, "float") or cfg.off_chip_learning:
        raise ConfigError("chip_engine", cfg.chip_engine,
                          "only with on-chip learning on a chip with a learning engine; chip "
                          f"is {cfg.chip!r}"
                          + (", off_chip_learning is on" if cfg.off_chip_learning else ""))
    return engine_with(str(cfg.chip), cfg.chip_engine, field="chip_engine")


def make_chip_learning(cfg: TrainConfig, agent: Any) -> ChipLearning | None:
    """The backend's on-chip learning for this agent, or None (float, off-chip learning, or an
    agent whose weights are not its compiled network's connections: then ``make_projection``)."""
    if cfg.chip is None or cfg.chip == "float" or cfg.off_chip_learning:
        return None
    rt = getattr(agent, "runtime", None)
    hw = getattr(getattr(rt, "net", None), "hardware", None)
    if hw is None or not getattr(hw, "projects", False) or cfg.chip_w_scale != 2.0:
        return None
    w0 = agent.weights(agent.init(jax.random.key(0)))
    if not isinstance(w0, dict) or not set(w0) <= set(rt.net.connections):
        return None
    from neurorl.hardware.constraints import require_on_chip_learning

    require_on_chip_learning(cfg.chip, AGENT_RULES.get(agent.name, agent.name), False)
    if cfg.chip_device is not None:  # the crossbar learns through the changed device model
        hw.chip = dataclasses.replace(hw.chip, device=_chip_device(cfg))
    return ChipLearning(hw, list(w0), cfg.substeps)


def make_chip_agent(cfg: TrainConfig, spec: Any) -> Any:
    """The agent of ``cfg`` for ``spec``, its network compiled for ``cfg.chip`` (float: as is).

    The agent's network is compiled for the chip: fan-in, cores, capacity and on-chip learning
    are checked there (ChipCapacityError / UnsupportedOnChipError), its neurons run at the
    chip's membrane precision and its counts give the energy; the weight grid covers
    ``chip_w_scale x max|w_init|`` per connection. The learning-time rounding is
    :class:`ChipConstraints`' (stochastic on chip, float shadow weights off chip), so the
    recipes' own projection is turned off (their constrain keeps Dale's sign and the mask).
    Shared by :func:`make_train` and the host loop (:func:`~neurorl.experiment.host_train.
    build_host`).
    """
    chip = None if cfg.chip in (None, "float") else cfg.chip
    hyper = dict(cfg.agent_kwargs)
    if chip is not None:
        w_max = "auto" if cfg.chip_w_scale == 2.0 else None
        hyper.update(backend=chip, compile_kwargs={
            "off_chip_learning": cfg.off_chip_learning,
            **({"w_max": w_max} if w_max else {}),
            **({"engine": dict(cfg.chip_engine)} if cfg.chip_engine else {})})
    agent = make_agent(cfg.agent, spec, network=cfg.network, **hyper)
    if chip is not None and agent.runtime is not None:
        agent.runtime.project_updates = False
    if cfg.context is not None:
        from neurorl.agents.context import with_context

        agent = with_context(agent, **dict(cfg.context))
    return agent


class ChipConstraints:
    """What a chip does to an agent's weights during training, per env step and per update.

    One object for both trainers (:func:`make_train`'s scan and the host loop of
    :mod:`neurorl.experiment.host_train`), so the two apply the same constraints in the same
    order. Per env step: :meth:`before_act` (off-chip learning: act with the projection of the
    float shadow weights), the agent acts and learns, :meth:`after_learn` (off-chip: the
    learned change back onto the shadow; on-chip: stochastic rounding onto the grid, or the
    backend's learning engine for a rule without batch update); per batch update
    :meth:`after_update`; at init :meth:`init`. Everything is a no-op for ``float``.

    Attributes:
        learning: the backend's on-chip learning (:class:`ChipLearning`), or None.
        project: the chip's weight projection (:func:`make_projection`), or None.
        shadow: off-chip learning with float shadow weights.
    """

    def __init__(self, cfg: TrainConfig, agent: Any) -> None:
        self.agent = agent
        self.learning = make_chip_learning(cfg, agent)
        self.project = None if self.learning is not None else make_projection(cfg, agent)
        self.shadow = self.project is not None and cfg.off_chip_learning

    @property
    def active(self) -> bool:
        """Whether anything is constrained (not ``float``)."""
        return self.learning is not None or self.project is not None

    def _replace(self, ast: Any, w: Any) -> Any:
        return replace_weights(self.agent, ast, w)

    def constrain(self, ast: Any, key: Array) -> Any:
        """On-chip learning: the weights themselves live on the grid (stochastic rounding)."""
        if self.project is None or self.shadow:
            return ast
        return self._replace(ast, self.project(self.agent.weights(ast), key))

    def init(self, ast0: Any, k_agent: Array) -> tuple[Any, Any]:
        """The initial agent state on the chip and the engine state (None without one)."""
        est = None
        if self.learning is not None:
            w, est = self.learning.init(self.agent.weights(ast0), jax.random.fold_in(k_agent, 7))
            ast0 = self._replace(ast0, w)
        return self.constrain(ast0, k_agent), est

    def before_act(self, ast: Any) -> tuple[Any, Any]:
        """The state to act (and then learn) with, and what :meth:`after_learn` needs of the
        state before: ``(shadow weights, their projection, weights before)`` (Nones where
        unused)."""
        w = self.agent.weights(ast) if (self.shadow or self.learning is not None) else None
        if not self.shadow:
            return ast, (None, None, w)
        q = self.project(w)
        return self._replace(ast, q), (w, q, None)

    def after_act(self, ast: Any, carry: Any) -> Any:
        """The state to keep between env steps: off chip, the shadow weights back in place of
        their projection (the host loop acts and learns in separate calls; it views the state
        again with :meth:`before_act` before ``learn``: the projection is deterministic)."""
        return self._replace(ast, carry[0]) if self.shadow else ast

    def after_learn(self, ast: Any, carry: Any, est: Any, key: Array) -> tuple[Any, Any]:
        """After ``agent.learn``: the learned change onto the float shadow weights (off chip),
        or the weights onto the grid / through the chip's learning engine (on chip)."""
        shadow_w, q, before = carry
        if self.shadow:
            new = jax.tree.map(lambda s, w, qq: s + (w - qq), shadow_w, self.agent.weights(ast), q)
            ast = self._replace(ast, new)
        else:
            ast = self.constrain(ast, key)
        if self.learning is not None and self.agent.update is None:
            ast, est = self.learn_on_chip(ast, before, est)
        return ast, est

    def after_update(self, ast: Any, before: Any, est: Any, key: Array) -> tuple[Any, Any]:
        """After a batch ``agent.update`` (``before``: the weights it started from)."""
        return self.learn_on_chip(self.constrain(ast, key), before, est)

    def learn_on_chip(self, ast: Any, before: Any, est: Any) -> tuple[Any, Any]:
        """The recipe's update (``before -> agent.weights(ast)``) through the chip's engine."""
        if self.learning is None:
            return ast, est
        w, est = self.learning.commit(before, self.agent.weights(ast), est)
        return self._replace(ast, w), est

    def metrics(self, est: Any) -> dict[str, Array]:
        """Per-step metrics of the chip: cumulative ``learning_ops`` when it learns on chip."""
        return {} if self.learning is None else {"learning_ops": ChipLearning.ops(est)}


@struct.dataclass
class RunnerState:
    """Scan carry for ONE seed (train vmaps it to a leading seed axis)."""

    agent_state: Any
    env_state: Any
    env_params: Any
    obs: Array
    ep_return: Array
    ep_length: Array
    key: Array
    t: Array
    engine: Any = None  # on-chip learning: the backend's engine state per connection


def make_train(
    cfg: TrainConfig, *, devices: Sequence[Any] | None = None, block: int | str | None = "auto",
    calibration_seed: int = 0, calibration: bool | Mapping[str, Any] = True,
    probe: Callable[[Any], dict[str, Array]] | None = None,
) -> Callable[[Array], dict[str, Any]]:
    """Build the jitted training function for ``cfg``.

    How the seeds (members) run, chosen automatically (:mod:`neurorl.experiment.sharding`):

    * with more than one device (GPUs, or one CPU host device per core, which importing this
      module requests) the seed axis is sharded over a ``Mesh``: the runner state lives sharded
      between chunks, each device runs its seeds, and the results equal the single-device run;
    * on each device the seeds are vmapped; when their state outgrows the cache budget
      (``sharding.CACHE_BYTES``, e.g. more than ~64 reference agents) they run in
      cache-resident blocks, ``jax.lax.map(..., batch_size=block)``, each block scanning all
      its env steps (same results, fewer DRAM round trips);
    * inside each env step the network simulator fuses the K substeps (feed-forward stages for
      all K at once, block eligibility updates).

    Args:
        cfg: the run configuration (never mutated).
        devices: devices for the seed axis (default ``jax.devices()``; one device: unsharded).
        block: members per cache-resident block: ``"auto"`` (the rule above), an int, or None
            (one vmap over all members).
        calibration_seed: ``chip_engine`` scales set to ``"auto"`` are calibrated first by a
            separate float run keyed from this seed
            (:func:`~neurorl.hardware.calibrate.calibrate_train_config`; the runner passes
            ``training.seed``); ``train.config`` then holds the chosen scales and
            ``train.calibration`` what they came from.
        calibration: ``True``: calibrate ``"auto"`` scales as above; a mapping: the record of
            an earlier calibration (``train.calibration``, a checkpoint's or ``summary.json``'s
            ``engine_calibration``): its ``trace_scale`` / ``tag_scale`` replace ``"auto"``
            without a calibration run (a resumed run keeps the scales it started with);
            ``False``: builds that never train (``neurorl validate``, state templates) take
            the chip's default scales for ``"auto"`` and run nothing.
        probe: ``agent_state -> {name: scalar}`` added to the per-step metrics as
            ``engine_range/<name>`` (the calibration run's trace ranges).

    Returns:
        ``train(key) -> {"runner_state", "metrics"}`` (jitted, vmapped over ``cfg.n_seeds``),
        with attributes ``train.init(key) -> runner_state``,
        ``train.run_chunk(runner_state, n_steps) -> (runner_state, metrics)`` and
        ``train.agent`` / ``train.env`` / ``train.layout`` (the member layout).

    Raises:
        ConfigError: for an invalid config, unknown env / agent / hyperparameter (host side).
    """
    validate(cfg)
    record: dict[str, Any] = {}
    if auto_engine_scales(cfg.chip_engine):
        from neurorl.hardware.calibrate import calibrate_train_config, recorded_scales

        if calibration is True:
            cfg, record = calibrate_train_config(cfg, calibration_seed)
        else:
            cfg, record = recorded_scales(cfg, calibration or None)
    layout = member_layout(cfg.n_seeds, devices)
    env, env_params = make(cfg.env_id, **dict(cfg.env_kwargs))
    spec = spec_from_env(env, env_params, cfg.n_envs, cfg.substeps, cfg.obs_range)
    agent = make_chip_agent(cfg, spec)
    B = cfg.n_envs
    shifted = not is_empty(cfg.shifts)
    if shifted:
        env = build_shifted_env(env, cfg.shifts, B, spec.obs_dim)
        env_params = env.default_params(env_params)
    chip = ChipConstraints(cfg, agent)

    def init_one(key: Array) -> RunnerState:
        k_agent, k_env, k_run = jax.random.split(key, 3)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(k_env, B), env_params
        )
        zf = jnp.zeros((B,), jnp.float32)
        ast0, est = chip.init(agent.init(k_agent), k_agent)
        return RunnerState(
            ast0,
            env_state,
            env_params,
            obs,
            zf,
            jnp.zeros((B,), jnp.int32),
            k_run,
            jnp.zeros((), jnp.int32),
            est,
        )

    def step_one(rs: RunnerState, _: None) -> tuple[RunnerState, dict[str, Array]]:
        key, k_act, k_env = jax.random.split(rs.key, 3)
        ast, carry = chip.before_act(rs.agent_state)
        action, ast = agent.act(ast, rs.obs, k_act)
        obs, env_state, reward, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_env, B), rs.env_state, action, rs.env_params
        )
        reward = reward.astype(jnp.float32)
        ast = agent.learn(ast, reward, term, trunc)
        ast, est = chip.after_learn(ast, carry, rs.engine, jax.random.fold_in(k_act, 1))
        done = term | trunc
        ep_return = rs.ep_return + reward
        ep_length = rs.ep_length + 1
        w = agent.weights(ast)
        wnorm = jnp.sqrt(sum(jnp.sum(x * x) for x in jax.tree.leaves(w)))
        metrics = {
            "reward": reward,
            "done": done,
            "episode_return": jnp.where(done, ep_return, 0.0),
            "episode_length": jnp.where(done, ep_length, 0),
            "spikes": ast.stats.spikes,
            "synops": ast.stats.synops,
            "weight_norm": wnorm,
        }
        if shifted:
            metrics["task_id"] = info["task_id"]
        if agent.diagnostics is not None:  # e.g. the context in use (agent.context)
            metrics.update(agent.diagnostics(ast))
        metrics.update(chip.metrics(est))  # on-chip learning: cumulative learning_ops
        if probe is not None:
            metrics.update({f"engine_range/{k}": v for k, v in probe(ast).items()})
        rs = RunnerState(
            ast,
            env_state,
            rs.env_params,
            obs,
            jnp.where(done, 0.0, ep_return),
            jnp.where(done, 0, ep_length),
            key,
            rs.t + 1,
            est,
        )
        return rs, metrics

    U = agent.update_every if agent.update is not None else 1
    if n_iterations(cfg) % U:
        raise ConfigError(
            "n_steps", cfg.n_steps, f"a multiple of n_envs x the agent's update window = {B * U}"
        )

    def window(rs: RunnerState, _: None) -> tuple[RunnerState, dict[str, Array]]:
        rs, metrics = jax.lax.scan(step_one, rs, None, length=U)
        key, k_upd = jax.random.split(rs.key)
        before = agent.weights(rs.agent_state)
        ast, est = chip.after_update(agent.update(rs.agent_state, rs.obs, k_upd), before,
                                     rs.engine, jax.random.fold_in(k_upd, 1))
        return rs.replace(agent_state=ast, key=key, engine=est), metrics

    def run_one(rs: RunnerState, n_iter: int) -> tuple[RunnerState, dict[str, Array]]:
        if U == 1 and agent.update is None:
            return jax.lax.scan(step_one, rs, None, length=n_iter)
        # batch-update agents: an outer scan over windows keeps the update out of a cond
        rs, m = jax.lax.scan(window, rs, None, length=n_iter // U)
        return rs, jax.tree.map(lambda x: x.reshape((n_iter,) + x.shape[2:]), m)

    per_device = layout.padded // layout.n_devices
    if block == "auto":
        shapes = jax.eval_shape(init_one, jax.random.key(0))
        nbytes = sum(int(np.prod(x.shape)) * _itemsize(x.dtype) for x in jax.tree.leaves(shapes))
        mblock = member_block(per_device, nbytes)
    elif block is None or (isinstance(block, int) and block >= per_device):
        mblock = None
    elif isinstance(block, int) and not isinstance(block, bool) and block >= 1:
        mblock = block
    else:
        raise ConfigError("block", block, "'auto', None or an integer >= 1")

    def _run_impl(rs: RunnerState, n_iter: int) -> tuple[RunnerState, dict[str, Array]]:
        one = lambda r: run_one(r, n_iter)  # noqa: E731
        S = jax.tree.leaves(rs)[0].shape[0]
        if mblock is None or S <= mblock:
            return jax.vmap(one, out_axes=(0, 1))(rs)
        # cache-resident blocks (members are independent: same results as one vmap)
        rs, m = jax.lax.map(one, rs, batch_size=mblock)
        return rs, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), m)

    def _run_sharded(rs: RunnerState, n_iter: int) -> tuple[RunnerState, dict[str, Array]]:
        """Each device blocks its own members (``shard_map``: the block size is per device)."""
        spec = jax.sharding.PartitionSpec(MEMBER_AXIS)
        mspec = jax.sharding.PartitionSpec(None, MEMBER_AXIS)
        return jax.shard_map(lambda r: _run_impl(r, n_iter), mesh=layout.mesh, in_specs=spec,
                             out_specs=(spec, mspec), check_vma=False)(rs)

    def _run_members(rs: RunnerState, n_iter: int) -> tuple[RunnerState, dict[str, Array]]:
        """The vmapped chunk; on a mesh, padded to ``layout.padded`` members and sharded."""
        if not layout.sharded:
            return _run_impl(rs, n_iter)
        rs = jax.lax.with_sharding_constraint(pad_members(rs, layout), layout.spec(0))
        rs, m = _run_sharded(rs, n_iter) if mblock is not None else _run_impl(rs, n_iter)
        rs = jax.lax.with_sharding_constraint(rs, layout.spec(0))
        m = jax.lax.with_sharding_constraint(m, layout.spec(1))
        return unpad_members(rs, layout), unpad_members(m, layout, 1)

    def _out(shardings: Any) -> dict[str, Any]:
        """``out_shardings`` for jit on a mesh; nothing on one device (the unsharded path)."""
        return {"out_shardings": shardings} if layout.sharded else {}

    st_sh = layout.state_sharding if layout.sharded else None
    m_sh = layout.metrics_sharding if layout.sharded else None
    _init = jax.jit(lambda keys: jax.vmap(init_one)(keys), **_out(st_sh))

    def init(key: Array) -> RunnerState:
        """Runner state for ``n_seeds`` runs: one key (split) or a batch of ``n_seeds`` keys."""
        from neurorl.errors import check_key

        check_key(key)
        keys = key if key.ndim == 1 else jax.random.split(key, cfg.n_seeds)
        if keys.shape != (cfg.n_seeds,):
            raise ConfigError("keys", tuple(keys.shape), f"one key or {cfg.n_seeds} keys")
        return _init(keys)

    _run = jax.jit(_run_members, static_argnums=1, **_out((st_sh, m_sh)))

    def run_chunk(rs: RunnerState, n_steps: int) -> tuple[RunnerState, dict[str, Array]]:
        if not isinstance(n_steps, int) or n_steps < B * U or n_steps % (B * U):
            raise ConfigError(
                "n_steps", n_steps, f"a positive multiple of n_envs x update_every = {B * U}"
            )
        if layout.sharded:  # a restored checkpoint (host arrays) goes onto the mesh
            rs = jax.device_put(rs, st_sh)
        return _run(rs, n_steps // B)

    def _train_impl(key: Array) -> dict[str, Any]:
        rs = jax.vmap(init_one)(jax.random.split(key, cfg.n_seeds))
        rs, metrics = _run_members(rs, n_iterations(cfg))
        return {"runner_state": rs, "metrics": metrics}

    _train = jax.jit(_train_impl, **_out({"runner_state": st_sh, "metrics": m_sh}))

    def train(key: Array) -> dict[str, Any]:
        from neurorl.errors import check_key

        check_key(key)  # train(0) is a clear error, not a deep jax one
        return _train(key)

    train.init = init  # type: ignore[attr-defined]
    train.run_chunk = run_chunk  # type: ignore[attr-defined]
    train.agent = agent  # type: ignore[attr-defined]
    train.env = env  # type: ignore[attr-defined]
    train.config = cfg  # type: ignore[attr-defined]
    train.calibration = record  # type: ignore[attr-defined]
    train.layout = layout  # type: ignore[attr-defined]
    train.block = mblock  # type: ignore[attr-defined]
    train.jitted = _train  # type: ignore[attr-defined]
    return train


def _itemsize(dtype: Any) -> int:
    try:
        return int(np.dtype(dtype).itemsize)
    except TypeError:  # PRNG key arrays
        return 8


__all__ = [
    "ChipConstraints",
    "RunnerState",
    "TrainConfig",
    "make_chip_agent",
    "make_train",
    "n_iterations",
    "validate",
    "validate_chip",
]
