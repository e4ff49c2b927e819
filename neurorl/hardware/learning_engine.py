"""On-chip learning engines: where and at which precision a chip learns when learning is on chip.

A chip backend (:mod:`neurorl.hardware.backends`) compiled with ``off_chip_learning=False`` runs
its rules on the chip's learning engine (:func:`engine_for`):

* **Loihi / Loihi 2 sum-of-products engine** (``kind="sop"``). Widths from Lava's fixed-point
  learning model (lava ``src/lava/magma/core/learning/constants.py``; hardware.md 1a [V]):
  traces x1, x2, y1, y2, y3 are 7-bit unsigned integers (``W_TRACE = 7``) whose impulses carry
  8 fractional bits that are added by stochastic rounding, and whose decay is stochastically
  rounded (lava ``model/py/connection.py`` ``_decay_trace`` / ``_add_impulse``); weights are 8
  magnitude bits (8u / 9s, ``W_WEIGHTS_U = 8``) with the connection's shared exponent; tags are
  8u / 9s (``W_TAG_1_U = 8``); additive constants 8 bits; the synaptic-change accumulator has 15
  bits + sign (``W_ACCUMULATOR_U = 15``), and a weight is updated once per learning epoch
  (at most ``2^6 - 1`` steps, the 6-bit epoch field) as lava does it: ``w << 7`` (accumulator
  units), plus the sum of products, saturated, stochastically rounded to a multiple of ``2^7``,
  ``>> 7`` and clipped to the weight width (``_apply_learning_rules``,
  ``_stochastic_round_synaptic_variable``). :func:`sum_of_products` evaluates the microcode's
  ``dz = sum_i S_i prod_j (V_ij + C_ij)`` in integers; R-STDP is the tag rule
  ``dt = A+ x1 y0 - A- y1 x0 - t/tau_c`` with the weight rule ``dw = S r t``.
  **e-prop on this engine** keeps e-prop's presynaptic trace (a 7-bit trace), its
  pseudo-derivative (a 7-bit post trace y: Loihi 2's microcoded neurons can emit it as a graded
  value) and its eligibility ``ebar`` (a 9-bit signed tag); the learning signal ``L_j`` is the
  third factor (a 7-bit trace or graded spike per post neuron). What the engine **cannot**
  express of our ``eprop_ac`` recipe: Adam's per-synapse moment estimates (the engine has one
  weight, two tags and a delay per synapse; on chip the update is plain ``lr L ebar``), the
  TD(lambda) filter of the tags across env steps (a second tag, possible) and the average over
  B parallel envs (one chip runs one env). These stay in the recipe (float) and are reported
  as such; the traces, tags and weights the rule keeps are on the grid.
* **SpiNNaker / SpiNNaker 2** (``kind="fixed_point"``): plasticity is software on the ARM cores;
  sPyNNaker keeps STDP traces and weights in 16-bit fixed point (s16.15 accum state, 16-bit
  weights) [3P]. Traces are rounded to nearest on an s16.15 grid every step; the weight to the
  chip's grid.
* **BrainScaleS-2 PPU** (``kind="ppu"``): the plasticity processors read the analog causal /
  anti-causal correlation sensors through the 8-bit ADC (Pehle 2022 [V]) and write 6-bit
  weights. The sensors are noisy analog circuits: each trace read carries a relative Gaussian
  error (``trace_noise``; 2 % is our assumption [M]) before the 8-bit conversion.
* **Memristive crossbars (PCM, RRAM)** (``kind="pulses"``): the weight change is applied as
  programming pulses to the devices of a differential pair (:mod:`neurorl.hardware.memristor`,
  :func:`~neurorl.hardware.memristor.pulse_update`): nonlinear (soft-bounded), asymmetric,
  bounded, with cycle-to-cycle and device-to-device variability and finite endurance.
* **TrueNorth, DYNAP-SE, Xylo, Speck** have no learning engine: on-chip learning raises
  ``UnsupportedOnChipError`` naming the chip and the rule (``engine_for`` and ``check_rules``).

Stochastic rounding inside a rule's ``accumulate`` needs random bits but the rule interface has no
key: the engine seeds them from a hash of the new state (a deterministic pseudo-random sequence
per network, like the chip's LFSR). Lava's reference model draws one random number per epoch;
we draw one per synapse (both are unbiased; per synapse has less correlated error).

References:
    Davies et al. 2018, IEEE Micro 38(1):82 (Loihi learning engine, sum-of-products rules);
    lava-nc/lava ``magma/core/learning/constants.py`` and ``model/py/connection.py``
    (bit-accurate widths and rounding); Orchard et al. 2021, SiPS (Loihi 2 three-factor rules,
    graded third factors); Gupta et al. 2015, ICML (stochastic rounding); Pehle et al. 2022,
    Front. Neurosci. 16:795876 (BrainScaleS-2 PPU, correlation sensors, 6-bit weights);
    Furber et al. 2014, Proc. IEEE 102:652 and sPyNNaker (software STDP, fixed point);
    Bellec et al. 2020, Nat. Commun. 11:3625 (e-prop).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from neurorl.errors import ConfigError, UnsupportedOnChipError
from neurorl.hardware.chips import ChipSpec, get_chip

Array = jax.Array

# Lava fixed-point learning widths (lava magma/core/learning/constants.py) [V]
W_TRACE = 7  # x1, x2, y1, y2, y3
W_TRACE_FRAC = 8  # fractional bits of a trace impulse (added by stochastic rounding)
W_WEIGHTS_U = 8  # weights 8u / 9s
W_TAG_U = 8  # tag_1 8u / 9s
W_CONST = 8  # additive constants C_ij
W_S_MANT = 4  # mantissa bits of a product's scale factor S_i
W_ACCUMULATOR_U = 15  # accumulator 15 + sign
W_EPOCH = 6  # learning epoch field: at most 2^6 - 1 steps


@dataclasses.dataclass(frozen=True)
class LearningEngine:
    """Static description of a chip's learning engine (host constants).

    Attributes:
        name: the chip it belongs to.
        kind: ``"sop"`` (Loihi microcode), ``"fixed_point"`` (software on ARM cores),
            ``"ppu"`` (BrainScaleS-2 plasticity processor), ``"pulses"`` (memristive
            programming), ``"float"`` (the simulator).
        trace_bits: unsigned integer bits of a trace (``None``: float traces).
        trace_frac_bits: fractional bits of traces (Loihi: of the impulse only; the stored
            trace is an integer); SpiNNaker s16.15: 15.
        trace_scale: trace codes per unit of our traces (one spike adds 1.0 to a trace), so a
            Loihi trace saturates at ``(2^7 - 1) / trace_scale`` spikes. A mapping choice, like
            the impulse value a Lava user picks.
        tag_bits: signed tag width incl. sign (Loihi 9); ``None``: float eligibilities.
        tag_scale: tag codes per unit of eligibility (choice, like the trace scale).
        accumulator_bits: magnitude bits of the synaptic-change accumulator (Loihi 15).
        max_epoch: longest learning epoch in steps (Loihi: 2^6 - 1).
        stochastic: stochastic rounding of traces and weights (Loihi), else round to nearest.
        trace_noise: relative Gaussian error of each analog trace read (BrainScaleS-2).
        unverified: fields whose values are assumptions ([M] or a choice).
    """

    name: str
    kind: str
    trace_bits: int | None = None
    trace_frac_bits: int = 0
    trace_scale: float = 1.0
    tag_bits: int | None = None
    tag_scale: float = 1.0
    accumulator_bits: int | None = None
    max_epoch: int | None = None
    stochastic: bool = True
    trace_noise: float = 0.0
    unverified: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("sop", "fixed_point", "ppu", "pulses", "float"):
            raise ConfigError("engine.kind", self.kind,
                              "'sop', 'fixed_point', 'ppu', 'pulses' or 'float'")
        for f in ("trace_bits", "tag_bits", "accumulator_bits"):
            v = getattr(self, f)
            if v is not None and not (isinstance(v, int) and v >= 1):
                raise ConfigError(f"engine.{f}", v, "an int >= 1 or None")
        if not (self.trace_scale > 0 and self.tag_scale > 0 and self.trace_noise >= 0):
            raise ConfigError("engine", (self.trace_scale, self.tag_scale, self.trace_noise),
                              "trace_scale > 0, tag_scale > 0, trace_noise >= 0")

    def replace(self, **kw: Any) -> LearningEngine:
        """A copy with some fields changed (e.g. a width sweep: ``replace(trace_bits=5)``)."""
        return dataclasses.replace(self, **kw)


# Loihi trace: 7-bit integer codes, 16 codes per spike -> saturates at 7.9 spikes of trace (a
# choice: the impulse a Lava user sets); tags: 9-bit signed, 16 codes per unit of eligibility
# (range +-15.9).
_LOIHI = dict(kind="sop", trace_bits=W_TRACE, trace_frac_bits=W_TRACE_FRAC, trace_scale=16.0,
              tag_bits=W_TAG_U + 1, tag_scale=16.0, accumulator_bits=W_ACCUMULATOR_U,
              max_epoch=2**W_EPOCH - 1, stochastic=True,
              unverified=("trace_scale", "tag_scale"))

ENGINES: dict[str, LearningEngine] = {
    "loihi": LearningEngine("loihi", **_LOIHI),
    "loihi2": LearningEngine("loihi2", **_LOIHI),
    # sPyNNaker: s16.15 accum state, 16-bit weights [3P]; traces in the same format [M]
    "spinnaker": LearningEngine("spinnaker", "fixed_point", trace_bits=16, trace_frac_bits=15,
                                trace_scale=1.0, tag_bits=32, tag_scale=2.0**15,
                                stochastic=False, unverified=("trace_bits", "tag_bits")),
    # SpiNNaker 2: software on Cortex-M4F; fixed point as SpiNNaker 1 assumed [M]
    "spinnaker2": LearningEngine("spinnaker2", "fixed_point", trace_bits=16, trace_frac_bits=15,
                                 trace_scale=1.0, tag_bits=32, tag_scale=2.0**15,
                                 stochastic=False,
                                 unverified=("trace_bits", "trace_frac_bits", "tag_bits")),
    # BrainScaleS-2: correlation sensors read by an 8-bit ADC [V]; 2 % analog read error [M];
    # the PPU's SIMD units compute in 8-bit fractional saturating arithmetic [M]
    "brainscales2": LearningEngine("brainscales2", "ppu", trace_bits=8, trace_scale=32.0,
                                   tag_bits=8, tag_scale=32.0, stochastic=False,
                                   trace_noise=0.02,
                                   unverified=("trace_scale", "tag_bits", "tag_scale",
                                               "trace_noise")),
    "pcm": LearningEngine("pcm", "pulses"),
    "rram": LearningEngine("rram", "pulses"),
    "float": LearningEngine("float", "float", stochastic=False),
}


def engine_for(chip: str | ChipSpec, rule: str = "any") -> LearningEngine:
    """The learning engine of ``chip``; chips without one refuse with the rule named.

    Args:
        chip: chip name or ``ChipSpec``.
        rule: the rule that would learn on chip (named in the error).

    Returns:
        The chip's :class:`LearningEngine` (a custom ``ChipSpec`` that can learn on chip and
        has no preset engine gets a float engine: only its weight grid applies).

    Raises:
        UnsupportedOnChipError: the chip has no on-chip learning (TrueNorth, DYNAP-SE, Xylo,
            Speck) or cannot run ``rule``; the message names chip and rule.
    """
    spec = get_chip(chip)
    if not spec.on_chip_learning or (rule != "any" and not spec.supports_learning(rule)):
        from neurorl.hardware.constraints import require_on_chip_learning

        require_on_chip_learning(spec, rule if rule != "any" else "any rule", False)
        raise UnsupportedOnChipError(f"chip {spec.name!r} has no on-chip learning engine "
                                     f"for rule {rule!r}")
    return ENGINES.get(spec.name, ENGINES["float"])


# fields an experiment may change (``hardware.engine``); name and kind identify the engine
ENGINE_FIELDS = ("trace_bits", "trace_frac_bits", "trace_scale", "tag_bits", "tag_scale",
                 "accumulator_bits", "max_epoch", "stochastic", "trace_noise")
# ``hardware.engine: {trace_scale: auto, tag_scale: auto}``: the scales calibrated from the
# ranges the rule's traces / tags reach in a float run (neurorl.hardware.calibrate)
AUTO = "auto"
AUTO_FIELDS = ("trace_scale", "tag_scale")
CALIBRATION_STEPS = "calibration_steps"  # env steps of the float calibration run
DEFAULT_CALIBRATION_STEPS = 2000


def split_auto(overrides: Any, field: str = "hardware.engine"
               ) -> tuple[dict[str, Any], tuple[str, ...], int | None]:
    """Split an experiment's engine overrides into fixed fields, ``"auto"`` scale fields and the
    calibration length.

    Args:
        overrides: the ``hardware.engine`` mapping (or None).
        field: the config path named in errors.

    Returns:
        ``(fixed, auto, steps)``: the overrides without the auto scales and without
        ``calibration_steps``; the scale fields set to ``"auto"`` (in :data:`AUTO_FIELDS`
        order); the calibration env steps (:data:`DEFAULT_CALIBRATION_STEPS` when a scale is
        auto and none is given; None without an auto scale).

    Raises:
        ConfigError: ``"auto"`` on a field other than the scales, ``calibration_steps`` not a
            positive int, or ``calibration_steps`` without an auto scale.
    """
    if not overrides:
        return {}, (), None
    if not isinstance(overrides, Mapping):
        raise ConfigError(field, overrides, "a mapping of engine fields")
    fixed = {k: v for k, v in overrides.items() if k != CALIBRATION_STEPS}
    for k, v in fixed.items():
        if isinstance(v, str) and v == AUTO and k not in AUTO_FIELDS:
            raise ConfigError(f"{field}.{k}", v,
                              f"a value ('auto' only for {', '.join(AUTO_FIELDS)})")
    auto = tuple(k for k in AUTO_FIELDS if isinstance(fixed.get(k), str) and fixed[k] == AUTO)
    for k in auto:
        del fixed[k]
    if CALIBRATION_STEPS not in overrides:
        return fixed, auto, DEFAULT_CALIBRATION_STEPS if auto else None
    steps = overrides[CALIBRATION_STEPS]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"{field}.{CALIBRATION_STEPS}", steps, "an integer >= 1 (env steps)")
    if not auto:
        raise ConfigError(f"{field}.{CALIBRATION_STEPS}", steps,
                          f"only with a scale set to 'auto' ({', '.join(AUTO_FIELDS)})")
    return fixed, auto, steps


def largest_codes(engine: LearningEngine) -> tuple[float, float]:
    """The largest trace and tag codes the engine stores (what :func:`quantize_trace` and
    :func:`quantize_tag` saturate at, in codes): Loihi ``2^7 - 1`` and ``2^8 - 1``."""
    if engine.trace_bits is None:
        trace = float("inf")
    elif engine.kind == "fixed_point":
        trace = 2.0 ** (engine.trace_bits - 1) - 2.0**-engine.trace_frac_bits
    else:
        trace = 2.0**engine.trace_bits - 1.0
    tag = float("inf") if engine.tag_bits is None else 2.0 ** (engine.tag_bits - 1) - 1.0
    return trace, tag


def engine_with(chip: str, overrides: dict[str, Any] | None,
                field: str = "hardware.engine") -> LearningEngine:
    """The learning engine of ``chip`` with some fields changed (an experiment's
    ``hardware.engine``), e.g. ``{"trace_scale": 6.0, "tag_scale": 1.0}``: the codes per unit
    of trace and of eligibility, a mapping choice like the impulse a Lava user sets, fitted to
    a rule's ranges (``benchmarks/results/onchip_sweep.md``).

    Args:
        chip: a chip with an on-chip learning engine.
        overrides: field -> value (:data:`ENGINE_FIELDS`); the scales may be ``"auto"``
            (with an optional ``calibration_steps``, :func:`split_auto`): they are then left
            at the chip's values here and calibrated by :mod:`neurorl.hardware.calibrate`.
        field: the config path named in errors.

    Returns:
        The changed :class:`LearningEngine` (the chip's own for no overrides).

    Raises:
        ConfigError: an unknown field (with the closest valid name), an invalid value, or a
            chip without a learning engine of its own.
    """
    from neurorl.errors import closest

    if chip not in ENGINES or chip == "float":
        raise ConfigError(field, dict(overrides or {}),
                          "a chip with an on-chip learning engine: "
                          + ", ".join(sorted(k for k in ENGINES if k != "float")),
                          suggestion=closest(str(chip), [k for k in ENGINES if k != "float"]))
    eng = ENGINES[chip]
    if not overrides:
        return eng
    if not isinstance(overrides, Mapping):
        raise ConfigError(field, overrides, "a mapping of engine fields")
    allowed = list(ENGINE_FIELDS) + [CALIBRATION_STEPS]
    for k in overrides:
        if k not in allowed:
            raise ConfigError(f"{field}.{k}", overrides[k], ", ".join(allowed),
                              suggestion=closest(str(k), allowed))
    # "auto" scales are checked here and resolved by neurorl.hardware.calibrate; until then
    # the chip's own scales stand in
    overrides, _, _ = split_auto(dict(overrides), field)
    try:
        return eng.replace(**overrides)
    except ConfigError as e:
        raise ConfigError(field, dict(overrides), str(e)) from None
    except TypeError as e:
        raise ConfigError(field, dict(overrides), f"values of the right types ({e})") from None


@contextlib.contextmanager
def engine_override(chip: str, **fields: Any) -> Iterator[LearningEngine]:
    """Temporarily change a chip's engine (width sweeps): backends built inside the ``with``
    block use ``ENGINES[chip].replace(**fields)``."""
    old = ENGINES[chip]
    ENGINES[chip] = engine_with(chip, fields, field="engine_override") if fields else old
    try:
        yield ENGINES[chip]
    finally:
        ENGINES[chip] = old


# ---------------------------------------------------------------------------------------------
# integer arithmetic of the engine


def stochastic_round(x: Array, key: Array | None) -> Array:
    """``floor(x) + [u < frac(x)]`` with ``u ~ U[0, 1)`` (lava ``stochastic_round``); nearest
    (half to even) without a key. Unbiased: ``E[round(x)] = x``."""
    if key is None:
        return jnp.round(x)
    fl = jnp.floor(x)
    return fl + (jax.random.uniform(key, jnp.shape(x)) < (x - fl)).astype(x.dtype)


def state_key(x: Array, salt: int = 0) -> Array:
    """A PRNG key derived from the bits of ``x`` (random bits for rounding inside a rule's
    ``accumulate``, which has no key; deterministic per state like the chip's LFSR)."""
    bits = jax.lax.bitcast_convert_type(jnp.asarray(x, jnp.float32), jnp.uint32).reshape(-1)
    mult = (jnp.arange(bits.shape[0], dtype=jnp.uint32) * jnp.uint32(2654435761)) | jnp.uint32(1)
    h = jnp.sum(bits * mult, dtype=jnp.uint32)
    return jax.random.fold_in(jax.random.PRNGKey(salt), h)


def quantize_trace(x: Array, engine: LearningEngine, key: Array | None = None) -> Array:
    """A non-negative trace as the engine stores it: ``trace_bits`` unsigned integer codes of
    ``1 / trace_scale`` (Loihi: 7 bits, stochastic rounding of the fractional part), saturating;
    the analog read error of BrainScaleS-2 first. Identity for float engines."""
    if engine.trace_bits is None:
        return x
    codes = x * engine.trace_scale
    if engine.trace_noise and key is not None:
        key, sub = jax.random.split(key)
        codes = codes * (1.0 + engine.trace_noise * jax.random.normal(sub, jnp.shape(x)))
    if engine.kind == "fixed_point":  # fractional bits kept, round to nearest
        q = 2.0**engine.trace_frac_bits
        top = 2.0 ** (engine.trace_bits - 1)
        return jnp.clip(jnp.round(codes * q) / q, -top, top - 1.0 / q) / engine.trace_scale
    top = 2.0**engine.trace_bits - 1.0
    r = stochastic_round(codes, key if engine.stochastic else None)
    return jnp.clip(r, 0.0, top) / engine.trace_scale


def quantize_tag(x: Array, engine: LearningEngine, key: Array | None = None) -> Array:
    """A signed eligibility / tag as a ``tag_bits`` two's-complement integer of
    ``1 / tag_scale`` (Loihi: 9 bits, symmetric +-255), saturating."""
    if engine.tag_bits is None:
        return x
    top = 2.0 ** (engine.tag_bits - 1) - 1.0
    r = stochastic_round(x * engine.tag_scale, key if engine.stochastic else None)
    return jnp.clip(r, -top, top) / engine.tag_scale


def sum_of_products(terms: Sequence[tuple[int, int, Sequence[tuple[str, int]]]],
                    variables: dict[str, Any]) -> np.ndarray:
    """Loihi's learning microcode ``dz = sum_i S_i prod_j (V_ij + C_ij)`` in integers.

    Args:
        terms: one ``(mantissa, exponent, factors)`` per product: the scale
            ``S_i = mantissa * 2^exponent`` (mantissa a signed ``W_S_MANT``-bit integer),
            factors ``(variable name, constant C_ij)`` with ``|C_ij| < 2^W_CONST``.
        variables: integer arrays (broadcastable): traces ``x1, x2, y1, y2, y3`` (7-bit),
            dependencies ``x0, y0`` (0/1), synaptic variables ``w, t, d``, reward ``r``.

    Returns:
        ``dz`` as int64 in accumulator units, saturated to ``+-(2^15 - 1)``; a negative
        exponent shifts right with floor (arithmetic shift), as the chip does.

    Raises:
        ConfigError: a constant or mantissa wider than the microcode's fields, or an unknown
            variable.
    """
    acc = None
    for mant, exp, factors in terms:
        if not abs(int(mant)) < 2**W_S_MANT:
            raise ConfigError("sum_of_products.mantissa", mant,
                              f"a {W_S_MANT}-bit magnitude with a sign")
        prod = np.int64(mant)
        for name, c in factors:
            if name not in variables:
                raise ConfigError("sum_of_products.variable", name, sorted(variables))
            if abs(int(c)) >= 2**W_CONST:
                raise ConfigError("sum_of_products.constant", c, f"|C| < 2^{W_CONST}")
            prod = prod * (np.asarray(variables[name], np.int64) + int(c))
        prod = prod << exp if exp >= 0 else prod >> (-exp)
        acc = prod if acc is None else acc + prod
    top = 2**W_ACCUMULATOR_U - 1
    return np.clip(np.asarray(acc, np.int64), -top, top)


def sop_apply(w_codes: np.ndarray, dz: np.ndarray, rand: np.ndarray, signed: bool = True,
              bits_u: int = W_WEIGHTS_U) -> np.ndarray:
    """Lava's fixed-point weight update of one epoch (host reference, integers).

    ``w << s`` (``s = 16 - 9 = 7``: accumulator units), ``+ dz``, stochastic rounding to a
    multiple of ``2^(15 - 8)`` with the uniform numbers ``rand``, ``>> s``, clipped to 9s
    (``+-255``) or 8u. (lava ``_apply_learning_rules``.)
    """
    s = (W_ACCUMULATOR_U + 1) - (bits_u + 1)
    acc = np.asarray(w_codes, np.int64) * 2**s + np.asarray(dz, np.int64)
    unit = 2 ** (W_ACCUMULATOR_U - bits_u)
    q = acc / unit
    fl = np.floor(q)
    r = (fl + (np.asarray(rand) < (q - fl))).astype(np.int64) * unit
    out = r // 2**s
    top = 2**bits_u - 1
    return np.clip(out, -top if signed else 0, top)


def commit_weights(w_old: Array, w_new: Array, step: Array | float, engine: LearningEngine,
                   lo: Array | float, hi: Array | float, key: Array | None) -> Array:
    """Apply a learning update on the engine: the change the rule asks for, ``w_new - w_old``,
    in accumulator units (``2^7`` per weight LSB ``step``), saturated to the 15-bit + sign
    accumulator, added to the stored weight, stochastically rounded to the weight grid and
    clipped to ``[lo, hi]`` (lava's epoch update, :func:`sop_apply`, in float units). Fixed
    point / PPU engines round to nearest. Weights stay exactly on ``k * step``."""
    step = jnp.asarray(step, jnp.float32)
    dw = (w_new - w_old) / step
    if engine.accumulator_bits is not None:
        shift = 2.0 ** (engine.accumulator_bits - W_WEIGHTS_U)  # accumulator units per LSB
        top = (2.0**engine.accumulator_bits - 1.0) / shift
        dw = jnp.clip(dw, -top, top)
    k = stochastic_round(jnp.round(w_old / step) + dw, key if engine.stochastic else None)
    return jnp.clip(k * step, lo, hi)


def trace_fields(state: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(unsigned trace fields, signed tag fields) of a rule state, by the rules' field names:
    STDP / R-STDP ``x_pre, y_post`` are traces, ``eligibility, ltp, ltd`` tags; e-prop ``p`` and
    ``psi`` are traces (pre trace, post pseudo-derivative), ``ebar, eps_a`` tags."""
    names = ({f.name for f in dataclasses.fields(state)} if dataclasses.is_dataclass(state)
             else set())
    traces = tuple(n for n in ("x_pre", "y_post", "p", "psi") if n in names)
    tags = tuple(n for n in ("eligibility", "ltp", "ltd", "ebar", "eps_a") if n in names)
    return traces, tags


def quantize_rule_state(state: Any, engine: LearningEngine, salt: int = 0) -> Any:
    """Every trace and tag field of a rule state at the engine's widths (others unchanged)."""
    traces, tags = trace_fields(state)
    if not traces and not tags or engine.kind in ("float", "pulses"):
        return state
    out = {}
    for i, n in enumerate(traces + tags):
        x = getattr(state, n)
        key = state_key(x, salt * 131 + i) if (engine.stochastic or engine.trace_noise) else None
        out[n] = (quantize_trace(x, engine, key) if n in traces
                  else quantize_tag(x, engine, key))
    return state.replace(**out)


def on_engine(rule: Any, engine: LearningEngine, salt: int = 0) -> Any:
    """A ``PlasticityRule`` whose traces and tags live at the engine's widths after every step.

    Loihi updates and rounds its traces every time step, so the rule's block form (which would
    round once per block) is dropped: the simulator scans ``accumulate`` step by step.
    """
    if engine.kind in ("float", "pulses"):
        return rule
    acc = rule.accumulate

    def accumulate(state: Any, pre: Array, post: Array, view: Any = None) -> Any:
        return quantize_rule_state(acc(state, pre, post, view), engine, salt)

    def init(w: Array) -> Any:
        return quantize_rule_state(rule.init(w), engine, salt)

    return rule._replace(init=init, accumulate=accumulate, accumulate_block=None)
