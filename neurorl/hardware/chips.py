"""Neuromorphic chip profiles (``ChipSpec``) with cited constants.

Every number carries its source in a comment, tagged as in ``shared/references/hardware.md``:
``[V]`` read in a public repo or page, ``[3P]`` quoted by third-party code from the primary,
``[M]`` from memory / unverified, ``[proxy]`` not located for this chip and borrowed from a
named related source. Every field whose value is ``[M]``, ``[proxy]`` or a modelling choice is
listed in the preset's ``unverified`` tuple, which ``neurorl list chips`` shows.

Conventions (modelling choices, documented once here):

* Weights are float32 in *model units*; a chip's weights lie on a uniform symmetric grid
  ``k * step`` with integer ``|k| <= weight_levels`` and ``step = w_max / weight_levels``.
  Signed chips drop the extra most-negative two's-complement code so the grid is symmetric
  (rounding then never changes a sign). ``w_max`` is chosen per projection by the user
  (default 1.0); chips with a shared exponent (Loihi ``wgtExp``, Lava ``weight_exp``, Xylo
  per-layer bit shift) restrict ``step`` to a power of two.
* Memristive crossbars store ``w = (G+ - G-) / g_max * w_max`` on a differential pair whose
  devices each have ``device_levels`` programmable levels.
* Energy constants are per event in pJ, static power in W; ``energy_scope="all-in"`` means the
  per-event figure already includes neuron updates and static power (TrueNorth's 26 pJ) and no
  other term may be added on top (hardware.md section 1b).
* ``None`` means "no limit" for capacities and "not located" for energy constants; the energy
  model reports missing terms instead of inventing them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from neurorl.errors import ConfigError, checked_keywords, lookup

# Rule names (neurorl.plasticity.RULES) a chip can run on-chip; "*" = any rule (software cores).
ANY_RULE = "*"


@checked_keywords
@dataclasses.dataclass(frozen=True)
class ChipSpec:
    """Static description of one neuromorphic chip (all fields static, hashable).

    Attributes:
        name: registry name (lower case).
        description: one line for ``neurorl list chips``.
        weight_bits: total weight bits including the sign bit when ``weight_signed``; ``None`` for
            unconstrained float weights or for crossbars (then ``device_levels`` sets the grid).
        weight_signed: whether one synapse can hold both signs.
        shared_exponent: a per-projection power-of-two scale (grid step restricted to 2^e).
        weight_types: TrueNorth-style shared weight types (each axon has one of ``weight_types``
            types, each neuron one integer weight per type); 0 = one weight per synapse.
        device: ``"pcm"`` / ``"rram"`` for memristive crossbars, else ``None``.
        device_levels: programmable conductance levels per device (differential pair).
        max_fan_in: hard limit of inputs per neuron, ``None`` = no per-neuron cap.
        max_fan_out: hard limit of outputs per neuron, ``None`` = no cap.
        neurons_per_core: neurons per core.
        synapse_memory_bits_per_core: synapse memory per core in bits.
        cores: neuron cores per chip.
        membrane_bits: membrane state width in bits (two's complement), ``None`` = float/analog.
        membrane_overflow: ``"saturate"`` or ``"wrap"`` (two's complement wrap-around).
        trace_bits: plasticity trace width in bits, ``None`` = float/analog/none.
        dt_ms: model time step in ms the chip is run with (biological time).
        step_time_s: wall-clock time of one step in s (for static energy); ``None`` = not located.
        on_chip_learning: rule names runnable on chip; ``("*",)`` = any; ``()`` = none.
        e_synop_pj: energy per synaptic operation, pJ.
        e_neuron_pj: energy per (active) neuron update, pJ.
        e_neuron_idle_pj: energy per inactive neuron update, pJ (``None`` = same as active).
        e_learn_pj: energy per synaptic learning update, pJ.
        static_power_w: static / idle power of the whole chip, W.
        energy_scope: ``"per-term"`` or ``"all-in"`` (see module docstring).
        unverified: names of fields whose values are unverified ([M], [proxy] or a choice).
    """

    name: str
    description: str
    weight_bits: int | None = None
    weight_signed: bool = True
    shared_exponent: bool = False
    weight_types: int = 0
    device: str | None = None
    device_levels: int | None = None
    max_fan_in: int | None = None
    max_fan_out: int | None = None
    neurons_per_core: int | None = None
    synapse_memory_bits_per_core: int | None = None
    cores: int | None = None
    membrane_bits: int | None = None
    membrane_overflow: str = "saturate"
    trace_bits: int | None = None
    dt_ms: float = 1.0
    step_time_s: float | None = None
    on_chip_learning: tuple[str, ...] = ()
    e_synop_pj: float | None = None
    e_neuron_pj: float | None = None
    e_neuron_idle_pj: float | None = None
    e_learn_pj: float | None = None
    static_power_w: float | None = None
    energy_scope: str = "per-term"
    unverified: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Host-side validation so a malformed custom chip fails here, not inside a trace.
        if self.membrane_overflow not in ("saturate", "wrap"):
            raise ConfigError(
                f"chip.{self.name}.membrane_overflow",
                self.membrane_overflow,
                "'saturate' or 'wrap'",
            )
        if self.energy_scope not in ("per-term", "all-in"):
            raise ConfigError(
                f"chip.{self.name}.energy_scope", self.energy_scope, "'per-term' or 'all-in'"
            )
        if self.weight_bits is not None and self.weight_bits < (2 if self.weight_signed else 1):
            raise ConfigError(
                f"chip.{self.name}.weight_bits", self.weight_bits, ">= 2 (signed) or >= 1"
            )
        if self.device is not None and (self.device_levels is None or self.device_levels < 2):
            raise ConfigError(
                f"chip.{self.name}.device_levels", self.device_levels, "an int >= 2 for a crossbar"
            )
        fields = {f.name for f in dataclasses.fields(self)}
        for u in self.unverified:
            if u not in fields:
                raise ConfigError(
                    f"chip.{self.name}.unverified", u, f"field names {sorted(fields)}"
                )

    @property
    def quantized(self) -> bool:
        """Whether weights live on a finite grid (False only for the float reference)."""
        return self.weight_bits is not None or self.device is not None

    @property
    def weight_levels(self) -> int | None:
        """Largest integer weight code ``K``: weights are ``k * step`` with ``|k| <= K``.

        Signed b-bit: ``2^(b-1) - 1`` (symmetric grid); unsigned: ``2^b - 1``; a differential
        pair of devices with L levels: ``L - 1``. ``None`` for float.
        """
        if self.device is not None:
            return int(self.device_levels) - 1
        if self.weight_bits is None:
            return None
        if self.weight_signed:
            return 2 ** (self.weight_bits - 1) - 1
        return 2**self.weight_bits - 1

    @property
    def storage_bits(self) -> int:
        """Bits one stored synaptic weight occupies (for memory footprints); float -> 32."""
        if self.weight_types:
            # Crossbar: 1 bit per synapse; the per-neuron type weights live in neuron memory.
            return 1
        if self.weight_bits is not None:
            return int(self.weight_bits)
        if self.device is not None:
            # Two devices per weight; count the bits needed to address the levels of each.
            return 2 * max(1, (int(self.device_levels) - 1).bit_length())
        return 32

    def supports_learning(self, rule: str) -> bool:
        """Whether rule ``rule`` can run on chip."""
        return ANY_RULE in self.on_chip_learning or rule.lower() in self.on_chip_learning


# ---------------------------------------------------------------------------------------------
# Presets. Sources: hardware.md section 1 (tags copied from there).
# ---------------------------------------------------------------------------------------------

FLOAT = ChipSpec(
    name="float",
    description="Unconstrained float32 reference (no grid, no limits, no energy model)",
    on_chip_learning=(ANY_RULE,),
)

LOIHI = ChipSpec(
    name="loihi",
    description="Intel Loihi (Davies 2018): 9-bit signed weights w/ shared exponent, 128 cores",
    # 8 magnitude bits + sign, +-255, scaled by 2^(6+wgtExp) per projection
    # (nengo-loihi block.py, builder/discretize.py) [V]; Davies "1-9 bits incl. sign" [3P].
    weight_bits=9,
    weight_signed=True,
    shared_exponent=True,
    max_fan_in=None,  # no per-neuron cap; <=4096 input axons per core (nxsdk_objects.py) [V]
    max_fan_out=None,  # <=4096 output axons per core [V]
    neurons_per_core=1024,  # [V]
    synapse_memory_bits_per_core=128 * 1024 * 8,  # 128 KiB synapse memory per core [V]
    cores=128,  # [V]
    membrane_bits=24,  # u, v 24-bit signed (lava proc/lif/models.py) [V]
    membrane_overflow="saturate",  # v saturates (u, the current, wraps) [V]
    trace_bits=7,  # traces 7 bits (+8 fractional) (lava magma learning constants) [V]
    dt_ms=1.0,  # algorithmic time step; 1 ms of model time per step is our convention
    step_time_s=None,  # wall time per algorithmic step depends on activity: not located
    on_chip_learning=("stdp", "rstdp"),  # sum-of-products microcode: STDP, reward/tag rules [V]
    e_synop_pj=23.6,  # Davies 2018 Table 2, pre-silicon SPICE, a minimum, SOP only [3P]
    e_neuron_pj=81.0,  # active neuron update [3P]
    e_neuron_idle_pj=52.0,  # inactive neuron update [3P]
    e_learn_pj=120.0,  # per pairwise-STDP synaptic update [3P]
    static_power_w=0.029,  # idle power 29 mW (Blouw 2019, arXiv:1812.01739) [V]
    unverified=("dt_ms",),
)

LOIHI2 = ChipSpec(
    name="loihi2",
    description="Intel Loihi 2: 8-bit signed weights w/ shared weight_exp, 128 cores x 8192",
    weight_bits=8,  # Lava Dense num_weight_bits default 8 (proc/dense/process.py) [V]
    weight_signed=True,
    shared_exponent=True,  # Lava Dense weight_exp [V]
    max_fan_in=None,  # no cap; 120 M synapses per chip [V pages]
    max_fan_out=None,
    neurons_per_core=8192,  # 8192 x 128 = 1,048,576 [V]
    synapse_memory_bits_per_core=128 * 1024 * 8,  # 128 KB flexible SRAM per core [V pages]
    cores=128,  # [V]
    membrane_bits=24,  # Lava bit_accurate_loihi LIF: as Loihi [V]
    membrane_overflow="saturate",  # as Loihi [V]
    trace_bits=7,  # Lava learning constants, as Loihi [V]
    dt_ms=1.0,  # algorithmic; our convention
    step_time_s=None,  # not located
    # Programmable three-factor rules [V]; that our e-prop fits the microcode is our assumption.
    on_chip_learning=("stdp", "rstdp", "eprop"),
    # No per-op energy was located for Loihi 2 (hardware.md section 6): Loihi values as proxies.
    e_synop_pj=23.6,  # [proxy: Loihi]
    e_neuron_pj=81.0,  # [proxy: Loihi]
    e_neuron_idle_pj=52.0,  # [proxy: Loihi]
    e_learn_pj=120.0,  # [proxy: Loihi]
    static_power_w=0.029,  # [proxy: Loihi idle]
    unverified=(
        "dt_ms",
        "on_chip_learning",
        "e_synop_pj",
        "e_neuron_pj",
        "e_neuron_idle_pj",
        "e_learn_pj",
        "static_power_w",
    ),
)

TRUENORTH = ChipSpec(
    name="truenorth",
    description="IBM TrueNorth (Merolla 2014): 4 shared axon types, fan-in 256, 26 pJ/event",
    weight_bits=9,  # each neuron holds 4 signed weights; 9-bit [M]
    weight_signed=True,
    weight_types=4,  # crossbar stores 1 bit; 4-type axon index selects the weight [3P]
    max_fan_in=256,  # 256 x 256 crossbar per core [3P]
    max_fan_out=None,  # one axon target per neuron on chip; modelled as no cap
    neurons_per_core=256,  # [3P]
    synapse_memory_bits_per_core=256 * 256,  # 64k binary synapses per core [3P]
    cores=4096,  # [3P]
    membrane_bits=20,  # ~20-bit [M]
    membrane_overflow="saturate",  # [M] (choice)
    trace_bits=None,  # no on-chip learning
    dt_ms=1.0,  # 1 ms tick [3P]
    step_time_s=1e-3,  # real time: one tick per ms [3P]
    on_chip_learning=(),  # none [3P]
    e_synop_pj=26.0,  # 26 pJ per synaptic event, all-in: 72 mW, 0.775 V, 20 Hz, 128 syn [3P]
    e_neuron_pj=0.0,  # included in the all-in 26 pJ (never add on top, hardware.md 1b)
    e_neuron_idle_pj=0.0,  # included in the all-in 26 pJ
    e_learn_pj=None,  # no on-chip learning
    static_power_w=0.0,  # included in the all-in 26 pJ (65 mW typical [M] not added)
    energy_scope="all-in",
    unverified=("weight_bits", "membrane_bits", "membrane_overflow", "max_fan_out"),
)

SPINNAKER = ChipSpec(
    name="spinnaker",
    description="SpiNNaker 1 (Furber 2014): ARM cores, 16-bit software weights, real time 1 ms",
    weight_bits=16,  # sPyNNaker 16-bit weights [3P]
    weight_signed=True,  # sign from separate exc/inh synapse types; modelled as signed
    max_fan_in=None,  # synapse rows in SDRAM; fan-in costs time, not capacity [3P]
    max_fan_out=None,
    neurons_per_core=1000,  # ~1000/core is a real-time budget, not a capacity [3P]
    synapse_memory_bits_per_core=None,  # SDRAM-backed
    cores=16,  # 18 ARM968 cores, 16 usable [3P]
    membrane_bits=32,  # s16.15 [3P]
    membrane_overflow="saturate",  # ISO C accum arithmetic saturates [M]
    trace_bits=16,  # software STDP traces [M]
    dt_ms=1.0,  # 1 ms real time [V]
    step_time_s=1e-3,  # [V]
    on_chip_learning=(ANY_RULE,),  # STDP in software on ARM cores [3P]
    e_synop_pj=8000.0,  # 8 nJ incremental per synaptic event (Stromatias 2013) [M]
    e_neuron_pj=None,  # not located
    e_learn_pj=None,  # not located
    static_power_w=1.0,  # ~1 W per chip [V]
    unverified=("weight_bits", "membrane_overflow", "trace_bits", "e_synop_pj"),
)

SPINNAKER2 = ChipSpec(
    name="spinnaker2",
    description="SpiNNaker 2 (Hoeppner 2021): 152 Cortex-M4F PEs, 8-bit MAC array, 22 nm",
    weight_bits=8,  # 8-bit MAC array [V]
    weight_signed=True,
    max_fan_in=None,  # no cap (software)
    max_fan_out=None,
    neurons_per_core=None,  # software-defined
    synapse_memory_bits_per_core=128 * 1024 * 8,  # 128 kB SRAM per PE [M]
    cores=152,  # [V]
    membrane_bits=32,  # software-defined; float32 / s16.15 by choice [M]
    membrane_overflow="saturate",
    trace_bits=None,  # software-defined
    dt_ms=1.0,  # software timestep
    step_time_s=1e-3,  # real-time convention (choice)
    on_chip_learning=(ANY_RULE,),  # software [3P]
    # No per-op energy located (hardware.md section 6): all energy constants missing.
    unverified=(
        "synapse_memory_bits_per_core",
        "membrane_bits",
        "step_time_s",
    ),
)

BRAINSCALES2 = ChipSpec(
    name="brainscales2",
    description="BrainScaleS-2 (Pehle 2022): analog AdEx, 6-bit weights, 1000x accelerated",
    weight_bits=7,  # 6-bit magnitude, sign set by row [V] -> 7 bits incl. sign
    weight_signed=True,
    max_fan_in=256,  # 256 synapse rows per neuron [3P]; neuron merging raises it [M]
    max_fan_out=None,
    neurons_per_core=512,  # 512 AdEx neurons [3P]
    # 131k synapses [3P] x (6-bit magnitude + row sign), counted at 7 bits per stored weight
    synapse_memory_bits_per_core=131072 * 7,
    cores=1,  # [3P]
    membrane_bits=8,  # analog, read through an 8-bit ADC [V]
    membrane_overflow="saturate",  # ADC clips
    trace_bits=8,  # correlation sensors read via 8-bit ADC [V]
    dt_ms=1.0,  # biological-time step of our model
    step_time_s=1e-6,  # ~1000x faster than biology: 1 ms of model time in 1 us [3P]
    on_chip_learning=(ANY_RULE,),  # 2 SIMD plasticity processors run arbitrary rules [3P/M]
    # No per-op energy located. All-in power proxy: 192 uJ per 276 us ECG sample on BSS-2
    # mobile (Stradmann 2022) [V] -> 0.70 W; charged as static power.
    static_power_w=192e-6 / 276e-6,  # [proxy: all-in power, Stradmann 2022]
    energy_scope="all-in",
    unverified=("trace_bits", "on_chip_learning", "static_power_w"),
)

DYNAPSE = ChipSpec(
    name="dynapse",
    description="DYNAP-SE (Moradi 2018): analog, fan-in 64 CAM, 4 shared synapse biases/core",
    # 2-bit synapse type selects one of 4 shared per-core analog biases [3P]; modelled as a
    # ternary grid {-w, 0, +w} (exc/inh with fast/slow biases of equal amplitude) -- a choice.
    weight_bits=2,
    weight_signed=True,
    max_fan_in=64,  # 64 CAM entries per neuron [3P]
    max_fan_out=None,
    neurons_per_core=256,  # [3P]
    synapse_memory_bits_per_core=256 * 64 * 12,  # 64 CAM words/neuron, ~12 bit each [M]
    cores=4,  # [3P]
    membrane_bits=None,  # analog
    trace_bits=None,
    dt_ms=1.0,  # continuous time; our model's step
    step_time_s=1e-3,  # real time
    on_chip_learning=(),  # none [3P]
    unverified=("weight_bits", "synapse_memory_bits_per_core"),
)

XYLO = ChipSpec(
    name="xylo",
    description="SynSense Xylo Audio 2: 8-bit weights + per-layer shift, int16 state, fan-out 64",
    weight_bits=8,  # 8-bit input, recurrent and output weights (rockpool xylo-overview) [V]
    weight_signed=True,
    shared_exponent=True,  # per-layer bit-shift [V]
    max_fan_in=None,
    max_fan_out=64,  # fan-out max 64 [V]
    neurons_per_core=1000,  # 16 in -> 1000 hidden -> 8 out [V]
    synapse_memory_bits_per_core=None,  # not located
    cores=1,  # [V]
    membrane_bits=16,  # Vmem, Isyn int16 [V]
    membrane_overflow="saturate",  # rockpool XyloSim clips to int16 [M]
    trace_bits=None,  # no learning
    dt_ms=1.0,  # synchronous dt, user-set [V]; 1 ms convention
    step_time_s=1e-3,  # real time convention
    on_chip_learning=(),  # none [3P]
    # Per-op energy not located; all-in power 291 uW during KWS ("Aloha", 6.6 uJ/inf) [V].
    static_power_w=291e-6,  # [V] all-in power, charged as static
    energy_scope="all-in",
    unverified=("membrane_overflow", "step_time_s"),
)

PCM = ChipSpec(
    name="pcm",
    description="PCM crossbar (aihwkit PCM model, Nandakumar 2019): differential pairs, drift",
    device="pcm",  # g_max 25 uS, noise and drift in neurorl.hardware.memristor [V aihwkit]
    device_levels=16,  # analog; 16 reliably programmable levels per device [M]
    weight_signed=True,  # differential pair (Ambrogio 2018) [V]
    max_fan_in=None,  # crossbar rows; array size is a mapping choice
    cores=None,
    membrane_bits=None,  # digital periphery, float here
    dt_ms=1.0,
    step_time_s=None,
    on_chip_learning=(ANY_RULE,),  # in-situ updates by programming pulses (Ambrogio 2018) [V]
    # 28,065 GOPS/W (Ambrogio 2018, calculated) [V] -> 1/28065e9 J = 0.0356 pJ per op.
    e_synop_pj=1e12 / 28065e9,
    e_learn_pj=10.0,  # 1-100 pJ per RESET pulse [M]
    unverified=("device_levels", "e_learn_pj"),
)

RRAM = ChipSpec(
    name="rram",
    description="RRAM crossbar (aihwkit ReRAM model, NeuRRAM Wan 2022): 4-bit signed weights",
    device="rram",  # g_max 40 uS [V aihwkit]
    device_levels=8,  # 4-bit weights (Wan 2022) [V] -> +-7 on a pair of 8-level devices
    weight_signed=True,
    max_fan_in=None,
    cores=48,  # 48 cores [M]
    membrane_bits=None,
    dt_ms=1.0,
    step_time_s=None,
    on_chip_learning=(ANY_RULE,),  # in-situ programming (Prezioso 2015) [V]
    e_synop_pj=1e12 / 28065e9,  # [proxy: Ambrogio 2018 PCM efficiency]
    e_learn_pj=1.0,  # 0.1-10 pJ per pulse [M]
    unverified=("cores", "e_synop_pj", "e_learn_pj"),
)

CHIPS: dict[str, ChipSpec] = {
    c.name: c
    for c in (
        LOIHI,
        LOIHI2,
        TRUENORTH,
        SPINNAKER,
        SPINNAKER2,
        BRAINSCALES2,
        DYNAPSE,
        XYLO,
        PCM,
        RRAM,
        FLOAT,
    )
}


def get_chip(name: str | ChipSpec) -> ChipSpec:
    """Look up a chip preset by name (case-insensitive); a ``ChipSpec`` is returned unchanged.

    Raises:
        ConfigError: for an unknown name, naming the closest registered chip.
    """
    if isinstance(name, ChipSpec):
        return name
    return lookup(CHIPS, name, "chip")


def describe_chips() -> list[dict[str, Any]]:
    """One row per registered chip for tables (``neurorl list chips``, docs)."""
    rows = []
    for key, c in CHIPS.items():
        rows.append(
            {
                "name": key,
                "description": c.description,
                "weights": (
                    "float32"
                    if not c.quantized
                    else f"{c.device} pair, {c.device_levels} levels"
                    if c.device
                    else f"{c.weight_bits}-bit {'signed' if c.weight_signed else 'unsigned'}"
                    + (" + shared exp" if c.shared_exponent else "")
                    + (f", {c.weight_types} shared types" if c.weight_types else "")
                ),
                "max_fan_in": c.max_fan_in,
                "max_fan_out": c.max_fan_out,
                "neurons_per_core": c.neurons_per_core,
                "cores": c.cores,
                "membrane_bits": c.membrane_bits,
                "on_chip_learning": ",".join(c.on_chip_learning) or "none",
                "e_synop_pj": c.e_synop_pj,
                "energy_scope": c.energy_scope,
                "unverified": ",".join(c.unverified),
            }
        )
    return rows
