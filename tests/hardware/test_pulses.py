"""Learning by programming pulses on memristive devices (issue 16): the soft-bounds pulse model
against its per-pulse recursion, asymmetry, bounds, endurance, drift, and aihwkit's own
SoftBounds device for the same pulse sequence (skipped when aihwkit is not installed)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.hardware import memristor as M


def _noiseless(name="rram", **kw):
    return M.get_pulse_device(name).replace(dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0,
                                            w_min_dtod=0.0, dw_min_std=0.0, **kw)


def _per_pulse(g, seq, dw, up_down, hi, lo):
    """aihwkit SoftBoundsDevice (no noise), one pulse at a time (a slow numpy loop)."""
    out = []
    for s in seq:
        if s > 0:
            g = g + dw * (1 + up_down) * (1 - g / hi)
        elif s < 0:
            g = g - dw * (1 - up_down) * (1 - g / lo)
        g = min(max(g, lo), hi)
        out.append(g)
    return np.array(out)


def test_closed_form_equals_pulse_by_pulse_and_is_bounded():
    dev = _noiseless(up_down=0.2)
    st = M.pulse_init(jax.random.PRNGKey(0), (1,), dev)
    g = st.g[0]
    seq = [1] * 300 + [-1] * 500
    ref = _per_pulse(0.0, seq, dev.dw_min, 0.2, dev.g_hi, dev.g_lo)
    # the same sequence in blocks of 100 pulses (the closed form) ends where single pulses do
    for k in range(3):
        g = M.pulse_step(g, jnp.array([100.0]), jnp.array([0.0]), st.dw_up[0], st.dw_down[0],
                         st.g_hi[0], st.g_lo[0], 0.0, None)
        np.testing.assert_allclose(float(g[0]), ref[100 * k + 99], rtol=1e-4)
    for k in range(5):
        g = M.pulse_step(g, jnp.array([0.0]), jnp.array([100.0]), st.dw_up[0], st.dw_down[0],
                         st.g_hi[0], st.g_lo[0], 0.0, None)
        np.testing.assert_allclose(float(g[0]), ref[300 + 100 * k + 99], rtol=1e-4, atol=1e-6)
    # nonlinear: steps shrink towards the bound; asymmetric: up steps larger than down
    d = np.diff(np.concatenate([[0.0], ref[:300]]))
    np.testing.assert_allclose(d[-1] / d[0], 1 - ref[298] / dev.g_hi, rtol=1e-6)
    assert d[0] > 1.5 * d[-1] > 0
    down = -np.diff(ref[299:])
    # asymmetric: at the same g an up step is 1.2 dw_min (1 - g/hi), a down step 0.8 dw_min
    # (1 - g/lo)
    g = ref[299]
    np.testing.assert_allclose(down[0], 0.8 * dev.dw_min * (1 - g / dev.g_lo), rtol=1e-6)
    up_here = 1.2 * dev.dw_min * (1 - g / dev.g_hi)
    assert abs(up_here - down[0]) > 0.1 * dev.dw_min
    assert ref.max() < dev.g_hi and ref.min() > dev.g_lo


def test_pulse_update_moves_weights_as_asked_on_average_and_counts_pulses():
    dev = M.get_pulse_device("rram")
    shape = (2000,)
    st = M.pulse_init(jax.random.PRNGKey(1), shape, dev)
    scale = 1.0 / 0.75
    w0 = M.pulse_read(st, 0.0, dev, scale)
    st2 = M.pulse_update(st, jnp.full(shape, 0.01), jax.random.PRNGKey(2), 1.0, dev, scale)
    w1 = M.pulse_read(st2, 1.0, dev, scale)
    # unbiased pulse counts: mean change ~ the request (device spread and c2c noise around it)
    assert abs(float(jnp.mean(w1 - w0)) - 0.01) < 0.002
    assert float(st2.total_pulses) == float(jnp.sum(st2.pulses)) > 0
    assert float(jnp.std(w1 - w0)) > 0  # cycle-to-cycle + device-to-device variability


def test_endurance_freezes_worn_devices():
    dev = _noiseless("rram", endurance=5.0)
    st = M.pulse_init(jax.random.PRNGKey(0), (3,), dev)
    for i in range(10):
        st = M.pulse_update(st, jnp.full((3,), 0.05), jax.random.PRNGKey(i), float(i), dev,
                            1.0)
    g_worn = st.g
    st = M.pulse_update(st, jnp.full((3,), 0.05), jax.random.PRNGKey(99), 20.0, dev, 1.0)
    np.testing.assert_array_equal(st.g, g_worn)
    assert int(M.worn_out(st, dev)) == 3


def test_pcm_pair_is_set_only_with_refresh_and_drifts():
    dev = M.get_pulse_device("pcm").replace(dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0,
                                            dw_min_std=0.0)
    st = M.pulse_init(jax.random.PRNGKey(0), (1,), dev)
    # depression of a pair = SET pulses on G-: both conductances only grow until a refresh
    st = M.pulse_update(st, jnp.array([0.05]), jax.random.PRNGKey(1), 0.0, dev, 1.0)
    st = M.pulse_update(st, jnp.array([-0.02]), jax.random.PRNGKey(2), 0.0, dev, 1.0)
    assert float(st.g[0, 0]) > 0 and float(st.g[1, 0]) > 0
    for i in range(200):  # up and down: both devices climb until the pair is refreshed
        d = 0.05 if i % 2 == 0 else -0.04
        st = M.pulse_update(st, jnp.array([d]), jax.random.PRNGKey(3 + i), 0.0, dev, 1.0)
        assert float(jnp.max(st.g)) <= dev.g_hi
    assert float(st.refreshes) >= 1
    w_before = float(M.pulse_read(st, 0.0, dev, 1.0)[0])
    assert w_before > 0  # net potentiation survived the refreshes
    # drift: a read long after the last pulse is lower (power law, aihwkit PCM exponents)
    st = M.pulse_init(jax.random.PRNGKey(5), (1,), dev)
    st = M.pulse_update(st, jnp.array([0.3]), jax.random.PRNGKey(6), 0.0, dev, 1.0)
    w_now = float(M.pulse_read(st, 0.0, dev, 1.0)[0])
    w_late = float(M.pulse_read(st, 1e4, dev, 1.0)[0])
    nu = float(st.nu[0, 0])
    assert nu > 0  # mu_nu in [0.049, 0.1] plus a per-device spread (aihwkit PCM fit)
    np.testing.assert_allclose(w_late, w_now * (1e4 / 20.0) ** (-nu), rtol=1e-5)
    assert 0 < w_late < w_now


@pytest.mark.slow
def test_same_pulse_sequence_as_aihwkit_soft_bounds():
    """aihwkit 1.2 SoftBoundsReferenceDevice (ReRamSBPreset constants, noise off) and ours give
    the same conductance trajectory for one pulse sequence."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("aihwkit")
    from aihwkit.simulator.configs import SingleRPUConfig, SoftBoundsDevice
    from aihwkit.simulator.parameters.enums import PulseType
    from aihwkit.simulator.tiles.analog import AnalogTile

    dev_ours = _noiseless("rram", up_down=0.1)
    cfg = SingleRPUConfig(device=SoftBoundsDevice(
        dw_min=dev_ours.dw_min, up_down=0.1, w_max=dev_ours.g_hi, w_min=dev_ours.g_lo,
        dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0, dw_min_std=0.0,
        write_noise_std=0.0))
    cfg.update.pulse_type = PulseType.DETERMINISTIC_IMPLICIT
    cfg.update.desired_bl = 1
    cfg.update.update_bl_management = False
    cfg.update.update_management = False
    tile = AnalogTile(1, 1, cfg)
    tile.set_learning_rate(dev_ours.dw_min)
    tile.set_weights(torch.zeros((1, 1)))
    seq = [1] * 150 + [-1] * 250
    traj = []
    for s in seq:
        # one pulse of sign s: x = 1, d = -s (aihwkit descends: w -= lr * d x)
        tile.update(torch.ones((1, 1)), torch.full((1, 1), -float(s)))
        traj.append(float(tile.get_weights()[0][0, 0]))
    ours = _per_pulse(0.0, seq, dev_ours.dw_min, 0.1, dev_ours.g_hi, dev_ours.g_lo)
    np.testing.assert_allclose(traj, ours, atol=2e-3)
