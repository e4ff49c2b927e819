"""Decoders against numpy references: spike count, population vote, leaky readout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.decoding import (
    DECODERS,
    get_decoder,
    leaky_readout,
    population_vote,
    spike_count,
    to_box,
)
from neurorl.errors import ConfigError, ShapeError


def test_spike_count_and_ties_are_deterministic():
    rng = np.random.default_rng(0)
    s = (rng.random((64, 10, 3)) < 0.3).astype(np.float32)
    got = np.asarray(jax.jit(jax.vmap(spike_count))(s))
    np.testing.assert_array_equal(got, np.argmax(s.sum(1), axis=1))
    tie = np.zeros((5, 3), np.float32)
    tie[0, 1] = tie[1, 2] = 1.0
    assert int(spike_count(tie)) == 1  # tie between 1 and 2 -> lowest index
    assert int(spike_count(np.zeros((5, 3), np.float32))) == 0


def test_population_vote_matches_numpy():
    rng = np.random.default_rng(1)
    s = (rng.random((32, 6, 12)) < 0.4).astype(np.float32)
    got = np.asarray(jax.vmap(lambda x: population_vote(x, 3))(s))
    want = np.argmax(s.sum(1).reshape(32, 3, 4).sum(-1), axis=1)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ConfigError):
        population_vote(jnp.asarray(s[0]), 5)


def test_leaky_readout_matches_numpy_loop_and_wrong_kappa_is_caught():
    rng = np.random.default_rng(2)
    z = (rng.random((7, 5)) < 0.5).astype(np.float32)
    w = rng.normal(size=(5, 3)).astype(np.float32)
    b = rng.normal(size=3).astype(np.float32)
    y0 = rng.normal(size=3).astype(np.float32)
    kappa = np.exp(-1 / 2.0)
    u, ys_want = y0.copy(), []
    for t in range(7):
        u = kappa * u + z[t] @ w
        ys_want.append(u + b)
    uk, ys = jax.jit(leaky_readout)(z, w, b, y0, kappa)
    np.testing.assert_allclose(np.asarray(ys), np.array(ys_want), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(uk), u, rtol=1e-5, atol=1e-5)
    _, ys_bad = leaky_readout(z, w, b, y0, np.exp(-1 / 3.0))
    assert not np.allclose(np.asarray(ys_bad), np.array(ys_want), atol=1e-3)
    with pytest.raises(ShapeError):
        leaky_readout(z[0], w, b, y0, kappa)


def test_to_box_and_registry():
    y = jnp.array([-50.0, 0.0, 50.0])
    np.testing.assert_allclose(np.asarray(to_box(y, -2.0, 2.0)), [-2.0, 0.0, 2.0], atol=1e-6)
    assert get_decoder("spike_count") is spike_count
    assert set(DECODERS) == {"spike_count", "population_vote", "leaky_readout"}
    with pytest.raises(ConfigError, match="population_vote"):
        get_decoder("population_vot")
