"""Encoders against slow numpy references (PopSAN / Bohte Gaussian RFs, rate, direct)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.encoding import ENCODERS, direct, gaussian_rf, get_encoder, rate
from neurorl.errors import ConfigError, ShapeError

R = np.array([2.4, 3.0, 0.21, 3.0])


def np_gaussian_rf(obs, low, high, n, width):
    out = []
    for i in range(len(obs)):
        sigma = width * (high[i] - low[i]) / (n - 1)
        for k in range(n):
            mu = low[i] + k * (high[i] - low[i]) / (n - 1)
            out.append(np.exp(-0.5 * ((obs[i] - mu) / sigma) ** 2))
    return np.array(out)


def test_gaussian_rf_current_matches_numpy_and_reference_agent():
    enc = gaussian_rf(-R, R, n_per_dim=10, substeps=10, gain=0.5)
    obs = np.array([0.3, -1.2, 0.05, 2.9], np.float32)
    got = np.asarray(jax.jit(enc.encode)(obs, None))
    want = 0.5 * np_gaussian_rf(obs, -R, R, 10, 1.0)
    assert got.shape == (10, 40)
    np.testing.assert_allclose(got, np.broadcast_to(want, (10, 40)), rtol=1e-5, atol=1e-7)
    # reference-agent sigma 2r/9 equals one centre spacing
    np.testing.assert_allclose(2 * R / 9, (2 * R) / (10 - 1))


def test_gaussian_rf_wrong_width_is_caught():
    enc = gaussian_rf(-R, R, n_per_dim=10, substeps=1, width=1.5)
    obs = np.array([0.3, -1.2, 0.05, 2.9], np.float32)
    got = np.asarray(enc.encode(obs, None))[0]
    assert not np.allclose(got, np_gaussian_rf(obs, -R, R, 10, 1.0), atol=1e-3)


def test_gaussian_rf_regular_matches_numpy_loop():
    enc = gaussian_rf(-R, R, n_per_dim=5, substeps=7, mode="regular")
    obs = np.array([0.5, 0.0, -0.1, 1.0], np.float32)
    a = np_gaussian_rf(obs, -R, R, 5, 1.0).astype(np.float32)
    v = np.zeros_like(a)
    want = []
    for _ in range(7):
        v = v + a
        s = (v > 0.999).astype(np.float32)
        v = v - s
        want.append(s)
    np.testing.assert_array_equal(np.asarray(enc.encode(obs, None)), np.array(want))


def test_poisson_modes_have_the_right_rates():
    obs = np.array([0.5, 0.0, -0.1, 1.0], np.float32)
    enc = gaussian_rf(-R, R, n_per_dim=5, substeps=4000, mode="poisson", p_max=0.8)
    s = np.asarray(enc.encode(obs, jax.random.key(0)))
    p = 0.8 * np_gaussian_rf(obs, -R, R, 5, 1.0)
    np.testing.assert_allclose(s.mean(0), p, atol=4 * np.sqrt(0.25 / 4000))
    enc = rate(-R, R, substeps=4000, p_max=0.5)
    s = np.asarray(enc.encode(obs, jax.random.key(1)))
    x = obs / R
    p = 0.5 * np.concatenate([np.clip(x, 0, 1), np.clip(-x, 0, 1)])
    assert s.shape == (4000, 8)
    np.testing.assert_allclose(s.mean(0), p, atol=4 * np.sqrt(0.25 / 4000))
    assert set(np.unique(s)) <= {0.0, 1.0}


def test_direct_and_registry_and_errors():
    enc = get_encoder("direct", scale=R, obs_dim=4, substeps=3, gain=2.0)
    obs = np.array([0.5, 0.0, -0.1, 1.0], np.float32)
    np.testing.assert_allclose(np.asarray(enc.encode(obs, None)), np.tile(2 * obs / R, (3, 1)),
                               rtol=1e-6)
    assert set(ENCODERS) == {"gaussian_rf", "rate", "direct"}
    with pytest.raises(ConfigError, match="gaussian_rf"):
        get_encoder("gausian_rf")
    with pytest.raises(ConfigError):
        gaussian_rf(R, -R)
    with pytest.raises(ConfigError, match="current"):
        gaussian_rf(-R, R, mode="curent")
    with pytest.raises(ShapeError):
        direct(1.0, 4).encode(jnp.zeros(3), None)
