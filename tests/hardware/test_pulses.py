"""Learning by programming pulses on memristive devices (issue 16): the soft-bounds pulse model
against its per-pulse recursion, asymmetry, bounds, endurance, drift, and aihwkit's own
SoftBounds, ConstantStep and PCM (ExpStep) devices for the same pulse sequence (skipped when
aihwkit is not installed; ``bash benchmarks/aihwkit_check.sh`` builds a side venv with aihwkit
1.1.0 on torch 2.10.0 and runs them)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.errors import ConfigError
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


@pytest.mark.parametrize("name", ["pcm", "pcm_softbounds"])
def test_pcm_pair_is_set_only_with_refresh_and_drifts(name):
    dev = M.get_pulse_device(name).replace(dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0,
                                           dw_min_std=0.0)
    st = M.pulse_init(jax.random.PRNGKey(0), (1,), dev)
    # depression of a pair = SET pulses on G-: both conductances only grow until a refresh.
    # Requests of 1.5 first steps (one step from 0: 28 dw_min on the ExpStep "pcm", dw_min on
    # soft bounds) are 1 or 2 pulses each, never 0
    first = float(M._step_scale(0.0, True, 1.0, 0.0, dev.nonlinearity, dev.exp_step))
    step0 = dev.dw_min * first
    st = M.pulse_update(st, jnp.array([1.5 * step0]), jax.random.PRNGKey(1), 0.0, dev, 1.0)
    st = M.pulse_update(st, jnp.array([-1.5 * step0]), jax.random.PRNGKey(2), 0.0, dev, 1.0)
    assert float(st.g[0, 0]) > 0 and float(st.g[1, 0]) > 0
    # compiled once for the 200 updates (run eagerly, op by op, they were ~80% of this test's CPU)
    update = jax.jit(M.pulse_update, static_argnums=(4, 5))
    for i in range(200):  # up and down: both devices climb until the pair is refreshed
        d = 0.05 if i % 2 == 0 else -0.04
        st = update(st, jnp.array([d]), jax.random.PRNGKey(3 + i), 0.0, dev, 1.0)
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


def test_pcm_is_the_exp_step_device_and_softbounds_the_older_one():
    """``pcm`` (the PCM chip's device) has aihwkit PCMPresetDevice's ExpStep shape: the first
    SET pulse from 0 is 28 dw_min (1 - A_up = 28.235, clipped by nothing), and a SET train
    reaches 0.87 of g_hi in well under 100 pulses. ``pcm_softbounds`` is the same device with
    the soft-bounds shape it had before (first step dw_min; hundreds of pulses to 0.87);
    ``pcm_expstep`` names ``pcm``."""
    pcm, soft = M.get_pulse_device("pcm"), M.get_pulse_device("pcm_softbounds")
    assert M.get_pulse_device("pcm_expstep") is pcm
    assert soft.exp_step is None and soft.nonlinearity == 1.0
    assert dataclasses.replace(soft, name="pcm", exp_step=pcm.exp_step) == pcm
    seq = [1] * 600
    exp = _exp_step_loop(0.0, seq, pcm.dw_min, pcm.exp_step, pcm.g_hi, pcm.g_lo)
    sb = _per_pulse(0.0, seq, soft.dw_min, 0.0, soft.g_hi, -1e-9)
    np.testing.assert_allclose(exp[0], pcm.dw_min * (1 + 27.235), rtol=1e-6)
    np.testing.assert_allclose(sb[0], soft.dw_min, rtol=1e-6)
    assert 40 < int(np.argmax(exp >= 0.87)) < 100 and int(np.argmax(sb >= 0.87)) > 350
    # the chip's preset programs one pulse's worth of both shapes the same way through
    # pulse_update (noise off): the first pulse from 0
    for dev, first in ((pcm, exp[0]), (soft, sb[0])):
        dev = dev.replace(dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, dw_min_std=0.0,
                          update="stochastic")
        st = M.pulse_init(jax.random.PRNGKey(0), (1,), dev)
        st = M.pulse_update(st, jnp.array([dev.dw_min]), jax.random.PRNGKey(1), 0.0, dev, 1.0)
        np.testing.assert_allclose(float(st.g[0, 0]), first, rtol=1e-5)


def _set_zero(tile, torch):
    """Zero the tile's weight; a torch whose C++ ABI is not the one aihwkit's ``rpu_base`` was
    built against rejects every tensor here (a clear failure, not a wrong trajectory)."""
    try:
        tile.set_weights(torch.zeros((1, 1)))
    except RuntimeError as e:
        pytest.fail(f"aihwkit's rpu_base does not accept torch {torch.__version__}'s tensors "
                    f"({e}): aihwkit 1.1.0's wheels need torch 2.10.0; "
                    "bash benchmarks/aihwkit_check.sh builds such a venv")


def _aihwkit_trajectory(device_cls, dev, seq):
    """aihwkit's own tile, one pulse per update, for our device ``dev`` (noise off).

    Our ``up_down = b`` means steps ``dw_min (1 + b)`` up and ``dw_min (1 - b)`` down; aihwkit's
    ``up_down = a > 0`` means ``dw_min`` up and ``dw_min (1 - a)`` down (``PulsedDevice::
    populate``: ``up_bias = min(a, 0)``, ``down_bias = -max(a, 0)``). So our (dw_min, b >= 0)
    is aihwkit's (dw_min (1 + b), 2 b / (1 + b)).
    """
    b = dev.up_down
    dw = dev.dw_min * (1 + b)
    kw = dict(dw_min=dw, up_down=2 * b / (1 + b), w_max=dev.g_hi, w_min=dev.g_lo,
              dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0, dw_min_std=0.0)
    if "write_noise_std" in {f.name for f in dataclasses.fields(device_cls)}:
        kw["write_noise_std"] = 0.0  # SoftBounds has it (default 0); ConstantStep does not
    return _aihwkit_run(device_cls(**kw), seq, lr=dw)


def _ours_trajectory(dev, seq):
    """Our device, one ``pulse_update`` per pulse (open-loop stochastic scheme: a request of
    exactly one nominal step is one pulse)."""
    st = M.pulse_init(jax.random.PRNGKey(0), (1,), dev)
    update = jax.jit(M.pulse_update, static_argnums=(4,))
    out = []
    for i, s in enumerate(seq):
        st = update(st, jnp.array([s * dev.dw_min]), jax.random.PRNGKey(i), 0.0, dev, 1.0)
        assert float(st.pulses[0, 0]) == i + 1
        out.append(float(st.g[0, 0]))
    return np.array(out)


@pytest.mark.slow
def test_same_pulse_sequence_as_aihwkit_soft_bounds():
    """aihwkit's SoftBoundsDevice (ReRamSBPreset bounds and step, asymmetric, noise off) and
    ours give the same conductance trajectory for one pulse sequence: the closed form, the
    slow loop of the per-pulse rule, and ``pulse_update`` one pulse at a time. (aihwkit 1.2.0
    is source-only on the index; 1.1.0 has a cp311 wheel and the same device update code:
    ``rpu_pulsed_device.cpp`` populate and ``rpu_linearstep_device.cpp`` / ``rpu_constantstep_
    device.cpp`` update are unchanged from v1.1.0 to 1.2.0.) Run with aihwkit:
    ``bash benchmarks/aihwkit_check.sh`` (a side venv: aihwkit 1.1.0 on torch 2.10.0)."""
    pytest.importorskip("aihwkit")
    from aihwkit.simulator.configs import SoftBoundsDevice

    dev = _noiseless("rram", up_down=0.1, update="stochastic")
    seq = [1] * 150 + [-1] * 250 + [1, -1] * 50
    traj = _aihwkit_trajectory(SoftBoundsDevice, dev, seq)
    ours = _per_pulse(0.0, seq, dev.dw_min, 0.1, dev.g_hi, dev.g_lo)
    assert np.ptp(traj) > 0.1  # the sequence moves the device well into its nonlinear range
    np.testing.assert_allclose(traj, ours, atol=1e-5)
    np.testing.assert_allclose(_ours_trajectory(dev, seq), traj, atol=1e-5)


@pytest.mark.slow
def test_same_pulse_sequence_as_aihwkit_constant_step():
    """aihwkit's ConstantStepDevice and ours (``nonlinearity=0``), asymmetric, noise off, with
    enough pulses to hit both bounds (clipping). Run with ``bash benchmarks/aihwkit_check.sh``."""
    pytest.importorskip("aihwkit")
    from aihwkit.simulator.configs import ConstantStepDevice

    dev = _noiseless("rram", up_down=0.25, nonlinearity=0.0, dw_min=0.02, update="stochastic")
    seq = [1] * 80 + [-1] * 150 + [1, 1, -1] * 20
    traj = _aihwkit_trajectory(ConstantStepDevice, dev, seq)
    assert traj.max() == pytest.approx(dev.g_hi) and traj.min() == pytest.approx(dev.g_lo)
    np.testing.assert_allclose(_ours_trajectory(dev, seq), traj, atol=1e-5)


def _exp_step_loop(g, seq, dw, exp_step, hi, lo):
    """aihwkit ExpStepDevice ``update_once`` (rpu_expstep_device.cpp, no noise), one pulse at a
    time (a slow numpy loop)."""
    a, b, a_up, a_down, gam_up, gam_down = exp_step
    out = []
    for s in seq:
        z = 2 * a * g / (hi - lo) + b
        if s > 0:
            g = g + dw * max(1 - a_up * np.exp(gam_up * z), 0.0)
        elif s < 0:
            g = g - dw * max(1 - a_down * np.exp(-gam_down * z), 0.0)
        g = min(max(g, lo), hi)
        out.append(g)
    return np.array(out)


def test_exp_step_pulses_equal_the_per_pulse_loop():
    """The ExpStep shape (aihwkit's PCM preset): n pulses in one update = n single pulses = the
    C++ rule as a numpy loop; the first SET pulses are the large ones."""
    dev = M.get_pulse_device("pcm").replace(dw_min_dtod=0.0, up_down_dtod=0.0,
                                            w_max_dtod=0.0, dw_min_std=0.0)
    ref = _exp_step_loop(0.0, [1] * 48, dev.dw_min, dev.exp_step, dev.g_hi, dev.g_lo)
    g = jnp.zeros((1,))
    for k in range(3):
        g = M.pulse_step(g, jnp.array([16.0]), jnp.array([0.0]), dev.dw_min, dev.dw_min,
                         dev.g_hi, dev.g_lo, 0.0, None, exp_step=dev.exp_step)
        np.testing.assert_allclose(float(g[0]), ref[16 * k + 15], rtol=1e-5)
    assert ref[0] > 20 * dev.dw_min and np.diff(ref)[-1] < 0.2 * ref[0]
    # calibrated counts use the exp step at the present g: a request of one first step = 1 pulse
    st = M.pulse_init(jax.random.PRNGKey(0), (1,), dev.replace(update="calibrated"))
    st = M.pulse_update(st, jnp.array([float(ref[0])]), jax.random.PRNGKey(1), 0.0,
                        dev.replace(update="calibrated"), 1.0)
    assert float(st.pulses[0, 0]) == 1.0
    np.testing.assert_allclose(float(st.g[0, 0]), ref[0], rtol=1e-5)
    # a config's list becomes the hashable tuple; a wrong length is a ConfigError
    assert M.pulse_device_with("pcm", {"exp_step": list(dev.exp_step)}).exp_step == dev.exp_step
    with pytest.raises(ConfigError, match="exp_step"):
        M.pulse_device_with("pcm", {"exp_step": [1.0, 2.0]})


def _aihwkit_run(device, seq, lr=1.0):
    """aihwkit's tile with ``device``, one pulse per update (bit length 1 caps the count)."""
    torch = pytest.importorskip("torch")
    from aihwkit.simulator.configs import SingleRPUConfig
    from aihwkit.simulator.parameters.enums import PulseType
    from aihwkit.simulator.tiles.analog import AnalogTile

    cfg = SingleRPUConfig(device=device)
    cfg.update.pulse_type = PulseType.DETERMINISTIC_IMPLICIT
    cfg.update.desired_bl = 1
    cfg.update.update_bl_management = False
    cfg.update.update_management = False
    tile = AnalogTile(1, 1, cfg)
    tile.set_learning_rate(lr)
    _set_zero(tile, torch)
    traj = []
    for s in seq:
        # one pulse of sign s: x = 1, d = -s (aihwkit descends: w -= lr * d x)
        tile.update(torch.ones((1, 1)), torch.full((1, 1), -float(s)))
        traj.append(float(tile.get_weights()[0][0, 0]))
    return np.array(traj)


@pytest.mark.slow
def test_same_pulse_sequence_as_aihwkit_pcm_exp_step():
    """aihwkit's PCMPresetDevice (ExpStep, noise off) and our ``pcm`` preset: the same
    constants (range 2.0 there, 1.0 here), and the same G+ trajectory for a SET train that
    saturates the device (our pair, one ``pulse_update`` per pulse). Then a bidirectional
    ExpStepDevice with aihwkit's default shape (up and down pulses, both bounds). Run with
    ``bash benchmarks/aihwkit_check.sh``."""
    pytest.importorskip("aihwkit")
    from aihwkit.simulator.configs import ExpStepDevice
    from aihwkit.simulator.presets.devices import PCMPresetDevice

    off = dict(dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0,
               dw_min_std=0.0)
    pcm = PCMPresetDevice(dw_min_std_add=0.0, dw_min_std_slope=0.0, reset_dtod=0.0, **off)
    dev = M.get_pulse_device("pcm").replace(**{k: v for k, v in off.items()
                                               if k != "w_min_dtod"},
                                            update="stochastic")
    scale = (pcm.w_max - pcm.w_min) / (dev.g_hi - dev.g_lo)
    assert dev.exp_step == (pcm.a, pcm.b, pcm.A_up, pcm.A_down, pcm.gamma_up, pcm.gamma_down)
    assert dev.dw_min * scale == pytest.approx(pcm.dw_min) and pcm.up_down == dev.up_down == 0
    seq = [1] * 130
    traj = _aihwkit_run(pcm, seq) / scale
    assert traj[0] > 0.1 and traj[-1] == pytest.approx(dev.g_hi)  # big first step; saturates
    st = M.pulse_init(jax.random.PRNGKey(0), (1,), dev)
    update = jax.jit(M.pulse_update, static_argnums=(4,))
    ours = []
    for i in range(len(seq)):
        st = update(st, jnp.array([dev.dw_min]), jax.random.PRNGKey(i), 0.0, dev, 1.0)
        ours.append(float(st.g[0, 0]))
    assert float(st.refreshes) == 0 and float(st.g[1, 0]) == 0.0
    np.testing.assert_allclose(ours, traj, atol=1e-5)

    es = ExpStepDevice(w_max=1.0, w_min=-1.0, dw_min=0.01, **off)
    shape = (es.a, es.b, es.A_up, es.A_down, es.gamma_up, es.gamma_down)
    dev2 = _noiseless("rram", g_hi=1.0, g_lo=-1.0, dw_min=0.01, exp_step=shape,
                      update="stochastic")
    seq = [1] * 150 + [-1] * 300 + [1, 1, -1] * 30
    traj = _aihwkit_run(es, seq)
    np.testing.assert_allclose(traj, _exp_step_loop(0.0, seq, 0.01, shape, 1.0, -1.0),
                               atol=1e-5)
    assert traj.max() > 0.5 and traj.min() < -0.5
    np.testing.assert_allclose(_ours_trajectory(dev2, seq), traj, atol=1e-5)
