"""Constraint contracts over every chip, plus reference checks of each projection."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurorl.errors import ConfigError
from neurorl.hardware.chips import CHIPS
from neurorl.hardware.constraints import (
    chip_constraint,
    chip_projection,
    clip_to_range,
    dale_signs,
    fan_in,
    fan_in_mask,
    fixed_point,
    project_quantize,
    project_shared_types,
    quantize,
    shared_weight_types,
    weight_grid,
)

N_PRE, N_POST, STEPS = 300, 8, 4  # n_pre above every chip's fan-in cap (256, 64)


def on_grid(w, grid):
    """Every weight is k * step with integer k and inside [lo, hi], up to float32 rounding.

    (optax.apply_updates computes params + (projected - params) in float32, which may land an
    ulp of |params| (<= 2 here) off the grid point; the projection itself is exact.) The
    tolerance, 4 ulp(2.0) = 1e-6, stays far below half the finest step (SpiNNaker, 1.5e-5).
    """
    w = np.asarray(w, np.float32)
    step = np.float32(grid.step)  # the float32 grid the projection computes on
    k = np.round(w / step)
    ulp = 4 * np.spacing(np.float32(2.0))
    assert ulp < step / 8
    in_range = (w >= np.float32(grid.lo) - ulp) & (w <= np.float32(grid.hi) + ulp)
    return bool(np.all(np.abs(w - k * step) <= ulp) and np.all(in_range))


def run_chain(chip, data_key, w0, n_steps=STEPS, lr=0.3, **kw):
    """Random updates through one jitted optax chain with the chip constraint last."""
    tx = optax.chain(optax.sgd(lr), chip_constraint(chip, **kw))
    step = jax.jit(lambda w, s, g: tx.update(g, s, w))
    w, s, ws = w0, tx.init(w0), []
    for k in jax.random.split(data_key, n_steps):
        u, s = step(w, s, jax.random.normal(k, w.shape))
        w = optax.apply_updates(w, u)
        ws.append(w)
    assert step._cache_size() == 1  # new values every step, one compilation
    return w, jnp.stack(ws)


@pytest.mark.parametrize("name", sorted(CHIPS))
def test_chip_contract_on_grid_in_range_fan_in_idempotent(name):
    chip = CHIPS[name]
    key = jax.random.key(0)
    project = chip_projection(name)
    # Weights start on the chip (projected at mapping time), then learn with random updates.
    w0 = project(0.4 * jax.random.normal(jax.random.key(1), (N_PRE, N_POST)))
    w, ws = run_chain(name, key, w0)
    grid = weight_grid(chip, 1.0)
    assert bool(jnp.all(jnp.isfinite(ws)))
    for wt in np.asarray(ws):
        if grid is not None:
            assert on_grid(wt, grid), name
        if chip.max_fan_in is not None:
            assert int((wt != 0).sum(0).max()) <= chip.max_fan_in
        if chip.weight_types:
            codes = np.round(wt / np.float32(grid.step)).astype(int)
            for j in range(N_POST):
                assert len(set(codes[:, j][codes[:, j] != 0].tolist())) <= chip.weight_types
        if grid is not None and chip.shared_exponent:
            # Power-of-two steps, params already on the grid: params + updates is exact.
            np.testing.assert_array_equal(np.asarray(chip_projection(name)(wt)), wt)
    # Idempotence: the projection is exact; re-applying changes nothing.
    once = project(w)
    np.testing.assert_array_equal(np.asarray(project(once)), np.asarray(once))
    np.testing.assert_allclose(np.asarray(once), np.asarray(w), atol=1e-6)
    # A zero gradient on projected weights produces exactly zero updates.
    tx = chip_constraint(name)
    u, _ = tx.update(jnp.zeros_like(once), tx.init(once), once)
    assert float(jnp.abs(u).max()) == 0.0


def test_contract_can_fail_without_the_constraint():
    # The on-grid check is not vacuous: plain sgd leaves Loihi 2's grid at once.
    w0 = chip_projection("loihi2")(0.4 * jax.random.normal(jax.random.key(1), (20, 5)))
    g = jax.random.normal(jax.random.key(2), w0.shape)
    w = optax.apply_updates(w0, optax.sgd(0.3).update(g, optax.sgd(0.3).init(w0), w0)[0])
    assert not on_grid(w, weight_grid("loihi2", 1.0))


def test_stochastic_chain_is_on_grid_and_draws_fresh_noise():
    w0 = 0.4 * jax.random.normal(jax.random.key(1), (N_PRE, N_POST))
    w, ws = run_chain("loihi2", jax.random.key(3), w0, stochastic=True, key=jax.random.key(4))
    grid = weight_grid("loihi2", 1.0)
    assert all(on_grid(x, grid) for x in np.asarray(ws))
    # Same gradient twice: the split key gives different roundings.
    tx = chip_constraint("loihi2", stochastic=True, key=jax.random.key(5))
    s = tx.init(w0)
    g = jnp.full(w0.shape, 0.003)
    u1, s = tx.update(g, s, w0)
    u2, s = tx.update(g, s, w0)
    assert bool(jnp.any(u1 != u2))
    with pytest.raises(ConfigError):
        chip_constraint("loihi2", stochastic=True)


def test_stochastic_rounding_is_unbiased():
    step = 0.25
    w = jnp.linspace(-0.9, 0.9, 37)
    # 4000 independent roundings of each value: one draw over a tiled array.
    q = project_quantize(jnp.tile(w, (4000, 1)), step, -1.0, 1.0, jax.random.key(0))
    assert bool(jnp.all(jnp.abs(q / step - jnp.round(q / step)) < 1e-6))
    # Each rounding has std <= step / 2; the mean over 4000 has std <= step / (2 sqrt(4000)).
    bound = 5 * step / (2 * np.sqrt(4000))
    np.testing.assert_allclose(np.asarray(q.mean(0)), np.asarray(w), atol=bound)
    # Deterministic rounding is biased for the same inputs (the test can fail).
    det = project_quantize(w, step, -1.0, 1.0)
    assert float(jnp.abs(det - w).max()) > bound


def test_elementary_transforms_in_a_jitted_chain():
    w = 0.5 * jax.random.normal(jax.random.key(0), (40, 6))
    g = jax.random.normal(jax.random.key(1), w.shape)
    signs = jnp.where(jnp.arange(40) < 30, 1.0, -1.0)
    w = jnp.abs(w) * signs[:, None]
    mask = fan_in_mask(w, 5)
    tx = optax.chain(
        optax.sgd(1.0),
        fan_in(mask=mask),
        dale_signs(signs),
        quantize(0.1, -0.5, 0.5),
        clip_to_range(-0.5, 0.5),
    )
    step = jax.jit(lambda w, s, g: tx.update(g, s, w))
    u, s = step(w, tx.init(w), g)
    w1 = np.asarray(optax.apply_updates(w, u))
    assert (np.count_nonzero(w1, axis=0) <= 5).all()
    assert (w1[:30] >= 0).all() and (w1[30:] <= 0).all()
    assert np.abs(w1).max() <= 0.5 + 1e-6
    np.testing.assert_allclose(w1 / 0.1, np.round(w1 / 0.1), atol=1e-4)
    # New values, same shapes: no recompilation.
    step(w + 1.0, s, -g)
    assert step._cache_size() == 1


def test_no_recompile_when_only_weight_values_change():
    tx = chip_constraint("xylo")
    f = jax.jit(lambda w, s, g: tx.update(g, s, w))
    w = jnp.zeros((10, 4))
    s = tx.init(w)
    for i in range(3):
        f(w + i, s, jnp.full(w.shape, 0.1 * i))
    assert f._cache_size() == 1


def test_fan_in_mask_matches_numpy_argsort():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(50, 7)).astype(np.float32)
    mask = np.asarray(fan_in_mask(jnp.asarray(w), 6))
    ref = np.zeros_like(w)
    for j in range(7):
        ref[np.argsort(-np.abs(w[:, j]), kind="stable")[:6], j] = 1.0
    np.testing.assert_array_equal(mask, ref)
    assert np.asarray(fan_in_mask(jnp.asarray(w), 80)).all()


def test_truenorth_shared_types_equal_per_type_mean_on_integer_grid():
    rng = np.random.default_rng(1)
    w = rng.normal(scale=0.3, size=(24, 5)).astype(np.float32)
    w[rng.random(w.shape) < 0.3] = 0.0  # absent crossbar bits stay absent
    types = np.arange(24) % 4
    grid = weight_grid("truenorth", 1.0)
    out = np.asarray(project_shared_types(jnp.asarray(w), jnp.asarray(types), 4, grid))
    for j in range(5):
        for g in range(4):
            rows = (types == g) & (w[:, j] != 0)
            if rows.any():
                mean = w[rows, j].mean()
                expect = np.clip(np.round(mean / grid.step), -255, 255) * grid.step
                np.testing.assert_allclose(out[rows, j], expect, rtol=1e-6)
            np.testing.assert_array_equal(out[(types == g) & (w[:, j] == 0), j], 0.0)
    # As a transform last in a chain: params + updates land on the same structure.
    tx = optax.chain(optax.sgd(1.0), shared_weight_types(jnp.asarray(types), 4, grid))
    u, _ = tx.update(jnp.zeros_like(w), tx.init(w), jnp.asarray(w))
    np.testing.assert_allclose(np.asarray(optax.apply_updates(w, u)), out, atol=1e-6)


def _fixed_point_numpy(x, bits, frac, mode):
    q = np.round(np.asarray(x, np.float64) * 2**frac).astype(np.int64)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if mode == "saturate":
        q = np.clip(q, lo, hi)
    else:  # two's complement: keep the low `bits` bits, reinterpret as signed
        q = q & (2**bits - 1)
        q = np.where(q > hi, q - 2**bits, q)
    return q / 2**frac


@pytest.mark.parametrize("mode", ["saturate", "wrap"])
def test_fixed_point_saturate_vs_wrap(mode):
    x = np.linspace(-20.0, 20.0, 801).astype(np.float32)
    got = np.asarray(fixed_point(jnp.asarray(x), 8, 3, mode))
    np.testing.assert_array_equal(got, _fixed_point_numpy(x, 8, 3, mode))
    # Hand examples, 8 bits with 3 fractional bits: range [-16, 15.875].
    big = np.asarray(fixed_point(jnp.asarray([16.0, -16.125, 15.875]), 8, 3, mode))
    if mode == "saturate":
        np.testing.assert_array_equal(big, [15.875, -16.0, 15.875])
    else:
        np.testing.assert_array_equal(big, [-16.0, 15.875, 15.875])
    with pytest.raises(ConfigError):
        fixed_point(jnp.asarray(x), 8, 8, mode)
