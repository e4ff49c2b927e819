"""Hardware constraints applied after every weight update, inside the jitted loop.

Each constraint exists twice:

* a pure projection ``project_*(weights, ...) -> weights`` (idempotent: projecting twice changes
  nothing), and
* an ``optax.GradientTransformation`` to be placed **last** in an ``optax.chain``. It needs
  ``params``: it turns ``updates`` into ``project(params + updates) - params`` so that
  ``optax.apply_updates(params, updates)`` lands on the projected weights. Float32 caveat:
  ``params + (q - params)`` equals ``q`` exactly when the grid step is a power of two and
  ``params`` is on the grid (Loihi, Loihi 2, Xylo with weights initialised by the projection);
  otherwise it can be one ulp of ``|params|`` off (e.g. step 1/255), which the next update's
  projection removes. Projected values themselves are always exactly on the grid; apply
  ``chip_projection(chip)`` after ``apply_updates`` when bit-exact weights are needed.

Weights are ``[n_pre, n_post]`` (pre-major, ``current_post = pre_spikes @ W``); transformations
accept any pytree of such matrices and apply the projection leaf by leaf.

References:
    nengo-loihi ``builder/discretize.py`` (weight grid, shared exponent); Merolla et al. 2014,
    Science 345:668 (TrueNorth axon types); Gupta et al. 2015, ICML (stochastic rounding,
    unbiased: E[round(x)] = x); Loihi / Lava fixed-point state (``proc/lif/models.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from neurorl.errors import ConfigError, ShapeError, UnsupportedOnChipError
from neurorl.hardware.chips import ChipSpec, get_chip

Array = jax.Array
Projection = Callable[..., Any]

# ---------------------------------------------------------------------------------------------
# Grid helpers (host side)
# ---------------------------------------------------------------------------------------------


class WeightGrid(NamedTuple):
    """A uniform symmetric weight grid: values ``k * step`` with ``lo <= k * step <= hi``."""

    step: float  # grid spacing in model units
    lo: float  # smallest weight (``-levels * step`` or 0 for unsigned)
    hi: float  # largest weight (``levels * step``)


def weight_grid(chip: ChipSpec | str, w_max: float = 1.0) -> WeightGrid | None:
    """Grid of a chip's weights for a projection whose largest magnitude is ``w_max``.

    With a shared exponent (Loihi ``wgtExp``, Lava ``weight_exp``, Xylo bit shift) the step is
    rounded *up* to a power of two, so the range may exceed ``w_max`` by less than a factor 2
    (nengo-loihi ``discretize.py`` chooses the exponent the same way).

    Args:
        chip: chip preset or name.
        w_max: largest weight magnitude in model units (> 0).

    Returns:
        The grid, or ``None`` for an unquantized chip (float reference).
    """
    chip = get_chip(chip)
    if not (isinstance(w_max, int | float) and math.isfinite(w_max) and w_max > 0):
        raise ConfigError("w_max", w_max, "a finite float > 0")
    levels = chip.weight_levels
    if levels is None:
        return None
    step = float(w_max) / levels
    if chip.shared_exponent:
        step = 2.0 ** math.ceil(math.log2(step))
    hi = levels * step
    lo = -hi if chip.weight_signed else 0.0
    return WeightGrid(step, lo, hi)


# ---------------------------------------------------------------------------------------------
# Pure projections
# ---------------------------------------------------------------------------------------------


def project_clip(w: Array, lo: float, hi: float) -> Array:
    """Clip weights into ``[lo, hi]``."""
    return jnp.clip(w, lo, hi)


def project_quantize(
    w: Array, step: float, lo: float, hi: float, key: Array | None = None
) -> Array:
    """Round weights onto the grid ``k * step`` inside ``[lo, hi]``.

    Deterministic rounding is round-half-to-even (``jnp.round``); with ``key``, stochastic
    rounding ``floor(w / step + u)``, ``u ~ U[0, 1)``, which is unbiased:
    ``E[q(w)] = w`` for ``w`` inside the range (Gupta et al. 2015, eq. 2). Clipping happens
    before rounding so in-range expectation is exact, and the grid is symmetric so rounding
    never flips a sign.

    Args:
        w: weights (any shape), float32.
        step: grid spacing (> 0).
        lo: lowest allowed weight (a grid point).
        hi: highest allowed weight (a grid point).
        key: PRNG key for stochastic rounding, or ``None`` for deterministic rounding.

    Returns:
        Weights on the grid, same shape and dtype.
    """
    x = jnp.clip(w, lo, hi) / step
    if key is None:
        k = jnp.round(x)
    else:
        k = jnp.floor(x + jax.random.uniform(key, x.shape, x.dtype))
    k = jnp.clip(k, round(lo / step), round(hi / step))
    return (k * step).astype(w.dtype)


def fan_in_mask(w: Array, k: int) -> Array:
    """Mask keeping the ``k`` largest ``|w|`` inputs of every post neuron (column).

    Args:
        w: weights ``[n_pre, n_post]``.
        k: inputs kept per post neuron (``k >= n_pre`` keeps everything).

    Returns:
        float32 mask ``[n_pre, n_post]`` with at most ``k`` ones per column (ties broken by
        lower pre index, as ``jax.lax.top_k``).
    """
    if w.ndim != 2:
        raise ShapeError("fan_in_mask weights", "[n_pre, n_post]", tuple(w.shape))
    n_pre, n_post = w.shape
    if k >= n_pre:
        return jnp.ones_like(w)
    _, idx = jax.lax.top_k(jnp.abs(w).T, k)  # [n_post, k]
    mask_t = jnp.zeros((n_post, n_pre), w.dtype).at[jnp.arange(n_post)[:, None], idx].set(1.0)
    return mask_t.T


def project_fan_in(w: Array, k: int | None = None, mask: Array | None = None) -> Array:
    """Zero all but the allowed inputs per post neuron: a fixed ``mask`` or the top-``k`` by abs."""
    if mask is None:
        if k is None:
            raise ConfigError("fan_in", None, "either k (int) or a mask")
        mask = fan_in_mask(w, k)
    return w * mask


def project_dale(w: Array, signs: Array) -> Array:
    """Dale's law: row ``i`` (pre neuron) keeps sign ``signs[i]`` (+1 exc, -1 inh); others -> 0."""
    s = jnp.asarray(signs, w.dtype)[:, None]
    return jnp.where(s > 0, jnp.maximum(w, 0.0), jnp.minimum(w, 0.0))


def project_shared_types(
    w: Array,
    axon_types: Array,
    n_types: int = 4,
    grid: WeightGrid | None = None,
) -> Array:
    """TrueNorth-style shared weight types (Merolla et al. 2014).

    Each pre neuron (axon) ``i`` has a type ``g_i in {0..n_types-1}``; each post neuron ``j``
    stores one signed integer weight ``W_j[g]`` per type, and the effective synapse is
    ``w_ij = W_j[g_i]`` (the crossbar bit is modelled by a zero weight: a synapse whose weight is
    exactly 0 stays 0). The projection is the least-squares fit: per post neuron and type, the
    mean of the nonzero weights of that type, rounded onto ``grid``.

    Args:
        w: weights ``[n_pre, n_post]``.
        axon_types: int array ``[n_pre]`` of types.
        n_types: number of types (4 on TrueNorth).
        grid: integer weight grid for ``W_j[g]``; ``None`` keeps float values.

    Returns:
        Weights ``[n_pre, n_post]`` with at most ``n_types`` distinct nonzero values per column.
    """
    onehot = jax.nn.one_hot(axon_types, n_types, dtype=w.dtype)  # [n_pre, n_types]
    connected = (w != 0).astype(w.dtype)
    sums = onehot.T @ w  # [n_types, n_post]
    counts = onehot.T @ connected
    per_type = sums / jnp.maximum(counts, 1.0)
    if grid is not None:
        per_type = project_quantize(per_type, *grid)
    return (onehot @ per_type) * connected


def fixed_point(
    x: Array, bits: int, frac_bits: int, mode: str = "saturate", rounding: str = "nearest"
) -> Array:
    """Represent ``x`` as a ``bits``-bit two's complement number with ``frac_bits`` fraction bits.

    The integer code is ``q = round(x * 2^frac_bits)``; outside ``[-2^(bits-1), 2^(bits-1) - 1]``
    it either saturates (clips; Loihi ``v``, Xylo) or wraps around modulo ``2^bits`` (two's
    complement overflow; Loihi ``u``). Returns ``q / 2^frac_bits`` as float32. Exact while
    ``|x| * 2^frac_bits < 2^24`` (float32 mantissa).

    Args:
        x: state values (any shape).
        bits: total width including sign (2..31).
        frac_bits: fractional bits (0 <= frac_bits < bits).
        mode: ``"saturate"`` or ``"wrap"``.
        rounding: ``"nearest"`` or ``"floor"`` (arithmetic right shift, as on Loihi).
    """
    if not (isinstance(bits, int) and 2 <= bits <= 31):
        raise ConfigError("fixed_point.bits", bits, "an int in 2..31")
    if not (isinstance(frac_bits, int) and 0 <= frac_bits < bits):
        raise ConfigError("fixed_point.frac_bits", frac_bits, f"an int in 0..{bits - 1}")
    if mode not in ("saturate", "wrap"):
        raise ConfigError("fixed_point.mode", mode, "'saturate' or 'wrap'")
    if rounding not in ("nearest", "floor"):
        raise ConfigError("fixed_point.rounding", rounding, "'nearest' or 'floor'")
    scale = 2.0**frac_bits
    q = x * scale
    q = jnp.round(q) if rounding == "nearest" else jnp.floor(q)
    half = 2.0 ** (bits - 1)
    if mode == "saturate":
        q = jnp.clip(q, -half, half - 1.0)
    else:
        q = q - 2.0 * half * jnp.floor((q + half) / (2.0 * half))
    return (q / scale).astype(jnp.asarray(x).dtype)


def state_projection(
    chip: ChipSpec | str, frac_bits: int | None = None, which: str = "membrane"
) -> Callable[[Array], Array]:
    """Fixed-point projection of a neuron / trace state for ``chip`` (identity if float/analog).

    Default ``frac_bits`` leave 4 integer bits (sign + range +-8 in units of the threshold,
    ``v_th = 1``): a modelling choice, the chip only fixes the total width.
    """
    chip = get_chip(chip)
    if which not in ("membrane", "trace"):
        raise ConfigError("state_projection.which", which, "'membrane' or 'trace'")
    bits = chip.membrane_bits if which == "membrane" else chip.trace_bits
    if bits is None:
        return lambda x: x
    fb = max(bits - 4, 0) if frac_bits is None else frac_bits
    mode = chip.membrane_overflow if which == "membrane" else "saturate"
    return lambda x: fixed_point(x, bits, fb, mode)


# ---------------------------------------------------------------------------------------------
# GradientTransformations
# ---------------------------------------------------------------------------------------------


class ProjectionState(NamedTuple):
    """State of a projection transformation: a PRNG key (stochastic rounding) or an empty array."""

    key: Array


def _leaves_like(tree: Any, value: Any) -> list[Any]:
    # A per-leaf argument (mask, signs, types) may be one array for all leaves or a matching tree.
    n = len(jax.tree_util.tree_leaves(tree))
    if value is None or isinstance(value, jax.Array | np.ndarray):
        return [value] * n
    leaves = jax.tree_util.tree_leaves(value)
    if len(leaves) != n:
        raise ShapeError("per-leaf constraint argument", f"{n} leaves", f"{len(leaves)} leaves")
    return leaves


def projection_transform(
    project: Callable[[Array, Array | None, Any], Array],
    key: Array | None = None,
    extra: Any = None,
) -> optax.GradientTransformation:
    """Wrap ``project(w, key_or_None, extra_leaf) -> w`` as a GradientTransformation (put last).

    ``update(updates, state, params)`` returns ``project(params + updates) - params``. With ``key``
    the state carries the key and splits it once per update (and per leaf), so stochastic
    rounding draws fresh noise every step without host involvement.
    """

    def init_fn(params: Any) -> ProjectionState:
        del params
        return ProjectionState(jnp.zeros((0,), jnp.uint32) if key is None else key)

    def update_fn(updates: Any, state: ProjectionState, params: Any = None):
        if params is None:
            raise ValueError("a hardware constraint needs params: call tx.update(g, s, params)")
        leaves, treedef = jax.tree_util.tree_flatten(params)
        u_leaves = treedef.flatten_up_to(updates)
        extras = _leaves_like(params, extra)
        if key is None:
            keys, new_state = [None] * len(leaves), state
        else:
            ks = jax.random.split(state.key, len(leaves) + 1)
            keys, new_state = list(ks[1:]), ProjectionState(ks[0])
        out = [
            project(p + u, k, e) - p
            for p, u, k, e in zip(leaves, u_leaves, keys, extras, strict=True)
        ]
        return treedef.unflatten(out), new_state

    return optax.GradientTransformation(init_fn, update_fn)


def clip_to_range(lo: float, hi: float) -> optax.GradientTransformation:
    """Keep weights in ``[lo, hi]`` after the update."""
    return projection_transform(lambda w, k, e: project_clip(w, lo, hi))


def quantize(
    step: float, lo: float, hi: float, stochastic: bool = False, key: Array | None = None
) -> optax.GradientTransformation:
    """Keep weights on the grid ``k * step`` in ``[lo, hi]``; stochastic rounding needs ``key``."""
    if stochastic and key is None:
        raise ConfigError("quantize.key", None, "a PRNG key when stochastic=True")
    return projection_transform(
        lambda w, k, e: project_quantize(w, step, lo, hi, k), key if stochastic else None
    )


def fan_in(k: int | None = None, mask: Any = None) -> optax.GradientTransformation:
    """Limit inputs per post neuron with a fixed ``mask`` (array or tree) or the top-``k`` ``|w|``.

    With ``k`` the mask is recomputed from the updated weights every step (dynamic pruning, still
    idempotent); pass ``mask=fan_in_mask(w0, k)`` to freeze the synapses allocated at mapping time.
    """
    if k is None and mask is None:
        raise ConfigError("fan_in", None, "either k (int) or a mask")
    return projection_transform(lambda w, key, m: project_fan_in(w, k, m), extra=mask)


def dale_signs(signs: Any) -> optax.GradientTransformation:
    """Keep every pre neuron's outgoing weights at its sign (+1 exc, -1 inh; array or tree)."""
    return projection_transform(lambda w, k, s: project_dale(w, s), extra=signs)


def shared_weight_types(
    axon_types: Any, n_types: int = 4, grid: WeightGrid | None = None
) -> optax.GradientTransformation:
    """TrueNorth shared weight types as a transformation (see :func:`project_shared_types`)."""
    return projection_transform(
        lambda w, k, t: project_shared_types(w, t, n_types, grid), extra=axon_types
    )


# ---------------------------------------------------------------------------------------------
# Chip composition
# ---------------------------------------------------------------------------------------------


def chip_projection(
    chip: ChipSpec | str,
    w_max: float = 1.0,
    *,
    stochastic: bool = False,
    mask: Any = None,
    signs: Any = None,
    axon_types: Any = None,
) -> Callable[..., Any]:
    """Compose a chip's weight constraints into one pure projection ``project(weights, key=None)``.

    Order: fan-in mask -> Dale signs -> shared types or quantisation (which also clips). Each
    step keeps the previous ones' invariants (zeros stay zero, the grid is symmetric so signs
    survive rounding), so the composition is idempotent for deterministic rounding.

    Args:
        chip: chip preset or name.
        w_max: largest weight magnitude in model units (sets the grid, see :func:`weight_grid`).
        stochastic: stochastic rounding (then ``project`` needs ``key``).
        mask: fixed fan-in mask (array or tree); default top-``max_fan_in`` by ``|w|``.
        signs: optional Dale signs per pre neuron; unsigned chips imply all +1.
        axon_types: axon types ``[n_pre]`` for chips with ``weight_types`` (default ``i % types``).

    Returns:
        ``project(weights, key=None) -> weights`` over a pytree of ``[n_pre, n_post]`` matrices.
    """
    chip = get_chip(chip)
    grid = weight_grid(chip, w_max)

    def project_leaf(w: Array, key: Array | None, m: Any, s: Any, t: Any) -> Array:
        if m is not None:
            w = project_fan_in(w, mask=m)
        elif chip.max_fan_in is not None:
            w = project_fan_in(w, k=chip.max_fan_in)
        if s is not None:
            w = project_dale(w, s)
        if chip.weight_types:
            types = t if t is not None else jnp.arange(w.shape[0]) % chip.weight_types
            w = project_shared_types(w, types, chip.weight_types, grid)
        elif grid is not None:
            w = project_quantize(w, grid.step, grid.lo, grid.hi, key)
        return w

    def project(weights: Any, key: Array | None = None) -> Any:
        if stochastic and key is None and grid is not None:
            raise ConfigError("chip_projection.key", None, "a PRNG key when stochastic=True")
        leaves, treedef = jax.tree_util.tree_flatten(weights)
        keys = (
            [None] * len(leaves)
            if (key is None or not stochastic)
            else list(jax.random.split(key, len(leaves)))
        )
        ms, ss, ts = (_leaves_like(weights, a) for a in (mask, signs, axon_types))
        out = [
            project_leaf(w, k, m, s, t)
            for w, k, m, s, t in zip(leaves, keys, ms, ss, ts, strict=True)
        ]
        return treedef.unflatten(out)

    return project


def chip_constraint(
    chip: ChipSpec | str,
    w_max: float = 1.0,
    *,
    stochastic: bool = False,
    key: Array | None = None,
    mask: Any = None,
    signs: Any = None,
    axon_types: Any = None,
) -> optax.GradientTransformation:
    """A chip's weight constraints as one GradientTransformation, to be placed last in a chain.

    Example::

        tx = optax.chain(optax.sgd(lr), chip_constraint("loihi2", w_max=1.0))
        updates, opt_state = tx.update(grads, opt_state, weights)
        weights = optax.apply_updates(weights, updates)   # on Loihi 2's 8-bit grid

    Args: see :func:`chip_projection`; ``key`` seeds stochastic rounding (split every update).
    """
    if stochastic and key is None:
        raise ConfigError("chip_constraint.key", None, "a PRNG key when stochastic=True")
    project = chip_projection(
        chip, w_max, stochastic=stochastic, mask=mask, signs=signs, axon_types=axon_types
    )

    def init_fn(params: Any) -> ProjectionState:
        del params
        return ProjectionState(key if stochastic else jnp.zeros((0,), jnp.uint32))

    def update_fn(updates: Any, state: ProjectionState, params: Any = None):
        if params is None:
            raise ValueError("a hardware constraint needs params: call tx.update(g, s, params)")
        if stochastic:
            new_key, sub = jax.random.split(state.key)
            state = ProjectionState(new_key)
        else:
            sub = None
        target = jax.tree_util.tree_map(lambda p, u: p + u, params, updates)
        projected = project(target, sub)
        return jax.tree_util.tree_map(lambda q, p: q - p, projected, params), state

    return optax.GradientTransformation(init_fn, update_fn)


def require_on_chip_learning(chip: ChipSpec | str, rule: str, off_chip: bool = False) -> None:
    """Raise ``UnsupportedOnChipError`` if ``rule`` cannot run on ``chip`` (unless ``off_chip``).

    The message names the keys a user writes to learn off-chip instead: the YAML key
    ``hardware.off_chip_learning`` and the Python arguments ``compile(..., off_chip_learning=True)``
    / ``TrainConfig(off_chip_learning=True)``, and the chips that can run the rule on chip.
    """
    chip = get_chip(chip)
    if off_chip or chip.supports_learning(rule):
        return
    from neurorl.hardware.chips import CHIPS

    supported = ", ".join(chip.on_chip_learning) or "none"
    able = [n for n, c in CHIPS.items() if n != "float" and c.supports_learning(rule)]
    raise UnsupportedOnChipError(
        f"chip {chip.name!r} cannot run plasticity rule {rule!r} on chip (its on_chip_learning: "
        f"{supported}). Learn off-chip (the host keeps float weights, the chip runs their "
        "projection): set `hardware.off_chip_learning: true` in the experiment YAML, or pass "
        "off_chip_learning=True in Python (Network.compile(backend=..., off_chip_learning=True) "
        f"or TrainConfig(off_chip_learning=True)); or choose a chip that learns {rule!r} on "
        f"chip: {', '.join(able) or 'none'}"
    )
