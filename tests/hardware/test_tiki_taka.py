"""Tiki-Taka (Gokmen & Haensch 2020) as an update scheme of the pulsed memristive devices:
the scheme against a float64 numpy loop of its equations (aihwkit ``TransferCompound``
semantics), the symmetric-point property it exists for, IBM aihwkit's own TransferCompound
tile (skipped without aihwkit; ``bash benchmarks/aihwkit_check.sh`` runs it in a side venv),
its config errors, and a short on-chip training run with a checkpoint round trip."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.errors import ConfigError
from neurorl.hardware import memristor as M


def _device(**kw):
    base = dict(dw_min=0.01, up_down=0.2, g_hi=1.0, g_lo=-1.0, dw_min_dtod=0.0,
                up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0, dw_min_std=0.0,
                read_noise=0.0, drift=False, max_pulses=20, nonlinearity=1.0,
                deterministic_pulses=True, update="tiki_taka")
    base.update(kw)
    return M.get_pulse_device("rram").replace(**base)


def _pulses(g, n, up, dev, hi, lo):
    """n soft-bounds pulses one at a time (aihwkit per-pulse rule), clipped after each."""
    nl = dev.nonlinearity
    for _ in range(int(n)):
        if up:
            g = min(g + dev.dw_min * (1 + dev.up_down) * (1 - nl * g / hi), hi)
        else:
            g = max(g - dev.dw_min * (1 - dev.up_down) * (1 - nl * g / lo), lo)
    return g


def _tiki_taka_loop(deltas, dev, w_scale, g0):
    """Tiki-Taka v1 (Gokmen & Haensch 2020, Algorithm 1, as aihwkit's TransferCompound with
    two devices), float64, one synapse and one pulse at a time.

    A <- A + pulses(fast_lr * dW)  (open loop: round(|x| / dw_min) pulses, at most max_pulses)
    n <- n + 1;  if n % transfer_every == 0: for the next n_reads_per_transfer lines l
    (wrapping): C[l] <- C[l] + pulses(transfer_lr * A[l])
    W = w_scale (gamma A + C).  Pair devices: x >= 0 SETs G+, x < 0 SETs G- (no refresh).
    """
    shape = deltas.shape[1:]
    pair = dev.pair
    lo = 0.0 if pair else dev.g_lo
    A = np.zeros((2, *shape))
    C = np.zeros((2, *shape))
    C[0] = np.maximum(g0, 0) if pair else g0
    if pair:
        C[1] = np.maximum(-g0, 0)
    axis = 0 if dev.transfer_columns else len(shape) - 1
    n_lines = shape[axis]
    k = min(dev.n_reads_per_transfer, n_lines)
    n, nxt, total = 0, 0, 0

    def write(G, x, idx):
        nonlocal total
        p = min(np.floor(abs(x) / dev.dw_min + 0.5), dev.max_pulses)
        total += p
        if pair:
            j = 0 if x >= 0 else 1
            G[(j, *idx)] = _pulses(G[(j, *idx)], p, True, dev, dev.g_hi, lo)
        else:
            G[(0, *idx)] = _pulses(G[(0, *idx)], p, x >= 0, dev, dev.g_hi, lo)

    def value(G):
        return G[0] - G[1] if pair else G[0]

    out = []
    for dW in deltas:
        for idx in np.ndindex(*shape):
            write(A, dev.fast_lr * dW[idx] / w_scale, idx)
        n += 1
        if dev.transfer_every and n % dev.transfer_every == 0:
            a = value(A)
            for line in (nxt + np.arange(k)) % n_lines:
                for idx in np.ndindex(*shape):
                    if idx[axis] == line:
                        write(C, dev.transfer_lr * a[idx], idx)
            nxt = (nxt + k) % n_lines
        out.append((w_scale * (dev.gamma * value(A) + value(C)), n, nxt, total))
    return out


@pytest.mark.parametrize("kw", [
    dict(),
    dict(transfer_columns=False, gamma=0.3, fast_lr=1.5, nonlinearity=0.0, up_down=-0.1),
    dict(pair=True, g_lo=0.0, refresh_at=1.0, transfer_lr=0.6),
], ids=["columns", "rows-gamma-constant-step", "pcm-pair"])
def test_tiki_taka_equals_the_papers_loop(kw):
    """A 3 x 4 tile, asymmetric soft-bounds (or constant-step) devices, noise off, pulse counts
    rounded to nearest: our scheme equals the numpy loop step by step (weights, update counter,
    next line, pulses of both devices)."""
    dev = _device(**{"transfer_every": 2, "n_reads_per_transfer": 2, "transfer_lr": 0.8, **kw})
    w_scale = 0.5
    rng = np.random.default_rng(0)
    shape = (3, 4)
    # requests of whole nominal steps on A (exact counts), drifting so that A and C move
    steps = rng.integers(-4, 6, (60, *shape)).astype(np.float64)
    deltas = steps * dev.dw_min * w_scale / dev.fast_lr
    g0 = rng.uniform(-0.3, 0.3, shape)
    if dev.pair:
        g0 = np.abs(g0)
    ref = _tiki_taka_loop(deltas, dev, w_scale, g0)
    g0_ours = (jnp.stack([jnp.maximum(g0, 0), jnp.maximum(-g0, 0)]) if dev.pair
               else jnp.stack([jnp.asarray(g0), jnp.zeros(shape)])).astype(jnp.float32)
    st = M.pulse_init(jax.random.PRNGKey(0), shape, dev, g0_ours)
    update = jax.jit(M.pulse_update, static_argnums=(4, 5))
    moved = 0.0
    for i, d in enumerate(deltas):
        st = update(st, jnp.asarray(d, jnp.float32), jax.random.PRNGKey(i), 0.0, dev, w_scale)
        w_ref, n, nxt, total = ref[i]
        np.testing.assert_allclose(np.asarray(M.pulse_read(st, 0.0, dev, w_scale)), w_ref,
                                   rtol=1e-4, atol=2e-5)
        assert (int(st.n_updates), int(st.next_slice), float(st.total_pulses)) == (n, nxt, total)
        moved = max(moved, float(np.max(np.abs(w_ref - w_scale * g0))))
    assert float(st.total_pulses) == float(jnp.sum(st.pulses) + jnp.sum(st.fast.pulses))
    assert float(jnp.sum(st.pulses)) > 0 and moved > 0.05  # C was written, the weights moved


def _soft_bounds(update, **kw):
    """A bidirectional soft-bounds device, up and down steps equal only at 0: its symmetric
    point (aihwkit SoftBoundsDevice, ``up_down=0``), noise off."""
    return M.get_pulse_device("rram").replace(
        dw_min=0.01, up_down=0.0, g_hi=1.0, g_lo=-1.0, dw_min_dtod=0.0, up_down_dtod=0.0,
        w_max_dtod=0.0, w_min_dtod=0.0, dw_min_std=0.0, read_noise=0.0, nonlinearity=1.0,
        max_pulses=50, update=update, **kw)


def _train(dev, steps, lr, sigma, target, w0):
    """``steps`` updates ``-lr (w - target) + sigma dw_min xi`` (a quadratic loss's gradient plus
    zero-mean noise) on 1000 synapses; returns the mean and spread of the final weights."""
    w = np.asarray(_train_jit(dev, steps, lr, sigma, target, w0))
    return float(w.mean()), float(w.std())


@functools.partial(jax.jit, static_argnums=(0, 1))
def _train_jit(dev, steps, lr, sigma, target, w0):
    shape = (10, 100)
    g0 = jnp.stack([jnp.full(shape, w0), jnp.zeros(shape)])
    st = M.pulse_init(jax.random.PRNGKey(0), shape, dev, g0)

    def body(st, k):
        k1, k2 = jax.random.split(k)
        w = M.pulse_read(st, 0.0, dev, 1.0)
        delta = -lr * (w - target) + sigma * dev.dw_min * jax.random.normal(k1, shape)
        return M.pulse_update(st, delta, k2, 0.0, dev, 1.0), None

    st, _ = jax.lax.scan(body, st, jax.random.split(jax.random.PRNGKey(1), steps))
    return M.pulse_read(st, 0.0, dev, 1.0)


@pytest.mark.slow
def test_tiki_taka_keeps_the_weight_off_the_symmetric_point():
    """Gokmen & Haensch 2020's point: on an asymmetric device (soft bounds: up and down steps
    equal only at the symmetric point 0) zero-mean gradient noise makes plain SGD drift towards
    the symmetric point, so it settles far from the loss's minimum (0.5); with Tiki-Taka the
    noise hits the fast device A, whose symmetric point is the zero of the gradient, and C
    settles near the minimum. Measured (1000 synapses, 2000 updates, noise 3 dw_min, lr 0.02,
    transfer_lr 0.05, seeds fixed): plain 0.23 +- 0.10, Tiki-Taka 0.44 +- 0.06, noiseless plain
    0.50; pure noise from the minimum: plain 0.006, Tiki-Taka 0.17 (C drifts too -- its transfer
    pulses meet the same soft bounds -- but slower).
    """
    plain, _ = _train(_soft_bounds("stochastic"), 2000, 0.02, 3.0, 0.5, 0.0)
    tt, tt_sd = _train(_soft_bounds("tiki_taka", transfer_lr=0.05), 2000, 0.02, 3.0, 0.5, 0.0)
    assert plain < 0.3  # pulled most of the way back to the symmetric point
    assert tt > 0.4 and tt_sd < 0.08  # near the minimum
    # without the noise both reach the minimum (the drift above is the noise's doing)
    quiet, _ = _train(_soft_bounds("stochastic"), 2000, 0.02, 0.0, 0.5, 0.0)
    assert quiet == pytest.approx(0.5, abs=0.01)
    # pure zero-mean noise from the minimum: plain forgets it, Tiki-Taka's C holds it longer
    plain0, _ = _train(_soft_bounds("stochastic"), 2000, 0.0, 3.0, 0.5, 0.5)
    tt0, _ = _train(_soft_bounds("tiki_taka", transfer_lr=0.05), 2000, 0.0, 3.0, 0.5, 0.5)
    assert abs(plain0) < 0.05 and tt0 > 0.12


def test_tiki_taka_state_and_read():
    """C holds the programmed weight, A starts at 0; the read is gamma A + C; the transfer
    counter and the next line are scalars; transfer_every 0 never transfers; worn_out and the
    pulse total cover both devices."""
    dev = _device(gamma=0.5, transfer_every=3)
    g0 = jnp.stack([jnp.full((4, 2), 0.2), jnp.zeros((4, 2))])
    st = M.pulse_init(jax.random.PRNGKey(0), (4, 2), dev, g0)
    assert st.fast is not None and float(jnp.abs(st.fast.g).max()) == 0.0
    np.testing.assert_allclose(np.asarray(M.pulse_read(st, 0.0, dev, 2.0)), 0.4)
    st = M.pulse_update(st, jnp.full((4, 2), 0.02), jax.random.PRNGKey(1), 0.0, dev, 1.0)
    a = np.asarray(st.fast.g[0])
    assert np.all(a > 0) and float(jnp.sum(st.pulses)) == 0  # no transfer before the 3rd
    np.testing.assert_allclose(np.asarray(M.pulse_read(st, 0.0, dev, 1.0)), 0.2 + 0.5 * a,
                               rtol=1e-6)
    never = dev.replace(transfer_every=0)
    s2 = M.pulse_init(jax.random.PRNGKey(0), (4, 2), never, g0)
    for i in range(5):
        s2 = M.pulse_update(s2, jnp.full((4, 2), 0.02), jax.random.PRNGKey(i), 0.0, never, 1.0)
    assert float(jnp.sum(s2.pulses)) == 0 and int(s2.n_updates) == 5
    worn = dev.replace(endurance=2.0)
    s3 = M.pulse_init(jax.random.PRNGKey(0), (4, 2), worn)
    s3 = M.pulse_update(s3, jnp.full((4, 2), 0.05), jax.random.PRNGKey(0), 0.0, worn, 1.0)
    # 5 pulses on each of A's 8 bidirectional devices (endurance 2), none yet on C
    assert int(M.worn_out(s3, worn)) == 8 and float(jnp.sum(s3.pulses)) == 0
    assert float(s3.total_pulses) == 40


def test_tiki_taka_config_errors_name_the_field():
    dev = M.pulse_device_with("pcm", {"update": "tiki_taka", "transfer_every": 5,
                                      "transfer_lr": 0.1})
    assert (dev.update, dev.transfer_every, dev.transfer_lr) == ("tiki_taka", 5, 0.1)
    with pytest.raises(ConfigError, match="tiki_taka"):
        M.pulse_device_with("pcm", {"update": "tiki-taka"})
    with pytest.raises(ConfigError, match="hardware.device.transfer_every.*int >= 0"):
        M.pulse_device_with("rram", {"update": "tiki_taka", "transfer_every": -1})
    with pytest.raises(ConfigError, match="hardware.device.transfer_every"):
        M.pulse_device_with("rram", {"update": "tiki_taka", "transfer_every": 2.5})
    with pytest.raises(ConfigError, match="hardware.device.n_reads_per_transfer"):
        M.pulse_device_with("rram", {"update": "tiki_taka", "n_reads_per_transfer": 0})
    with pytest.raises(ConfigError, match="hardware.device.transfer_lr.*> 0"):
        M.pulse_device_with("rram", {"update": "tiki_taka", "transfer_lr": 0.0})
    with pytest.raises(ConfigError, match="hardware.device.gamma"):
        M.pulse_device_with("rram", {"update": "tiki_taka", "gamma": float("nan")})
    with pytest.raises(ConfigError, match="hardware.device.transfer_columns"):
        M.pulse_device_with("rram", {"update": "tiki_taka", "transfer_columns": "yes"})
    with pytest.raises(ConfigError, match="hardware.device.transfer_evry.*transfer_every"):
        M.pulse_device_with("rram", {"update": "tiki_taka", "transfer_evry": 2})
    # a Tiki-Taka parameter without the scheme would be silently ignored: refused
    with pytest.raises(ConfigError, match="hardware.device.transfer_lr.*only with"):
        M.pulse_device_with("rram", {"update": "stochastic", "transfer_lr": 0.1})


def test_tiki_taka_config_reaches_the_crossbar():
    from neurorl.experiment import config as C
    from neurorl.experiment.runner import train_config
    from neurorl.experiment.train import TrainConfig, validate

    cfg = C.ExperimentConfig.model_validate(
        {"agent": {"name": "rstdp"},
         "hardware": {"chip": "pcm", "device": {"update": "tiki_taka", "transfer_lr": 0.2}}})
    tc = train_config(cfg)
    assert dict(tc.chip_device) == {"update": "tiki_taka", "transfer_lr": 0.2}
    validate(tc)
    with pytest.raises(ConfigError, match="chip_device.n_reads_per_transfer"):
        validate(TrainConfig(agent="rstdp", chip="pcm",
                             chip_device={"update": "tiki_taka", "n_reads_per_transfer": -2}))


@pytest.mark.slow
def test_tiki_taka_trains_on_chip_and_checkpoints_both_devices(tmp_path):
    """R-STDP on the PCM crossbar with Tiki-Taka through make_train (a few env steps): both
    devices get pulses, learning_ops counts both, and a checkpoint round trip keeps A, C and
    the transfer counters."""
    from neurorl.experiment.checkpoint import load_checkpoint, save_checkpoint
    from neurorl.experiment.train import TrainConfig, make_train

    cfg = TrainConfig(env_id="CartPole-v1", agent="rstdp", n_envs=4, n_seeds=1, n_steps=4 * 25,
                      chip="pcm", substeps=5,
                      chip_device={"update": "tiki_taka", "transfer_lr": 0.5})
    train = make_train(cfg)
    out = train(jax.random.key(0))
    assert train.agent.runtime.net.hardware.chip.device.update == "tiki_taka"
    es = out["runner_state"].engine
    slow = sum(float(np.sum(s.devices.pulses)) for s in es.values())
    fast = sum(float(np.sum(s.devices.fast.pulses)) for s in es.values())
    assert fast > 0 and slow > 0
    assert slow + fast == pytest.approx(float(np.asarray(out["metrics"]["learning_ops"])[-1, 0]))
    assert all(int(np.asarray(s.devices.n_updates).ravel()[0]) == 25 for s in es.values())
    save_checkpoint(tmp_path, out["runner_state"], {"step": 1})
    back, _ = load_checkpoint(tmp_path, out["runner_state"])
    for n, s in es.items():
        b = back.engine[n].devices
        np.testing.assert_array_equal(np.asarray(b.fast.g), np.asarray(s.devices.fast.g))
        np.testing.assert_array_equal(np.asarray(b.g), np.asarray(s.devices.g))
        np.testing.assert_array_equal(np.asarray(b.next_slice), np.asarray(s.devices.next_slice))
        np.testing.assert_array_equal(np.asarray(b.fast.pulses),
                                      np.asarray(s.devices.fast.pulses))


@pytest.mark.slow
def test_same_trajectory_as_aihwkit_transfer_compound():
    """IBM aihwkit's own ``TransferCompound`` tile (two SoftBounds devices, asymmetric, noise
    off, perfect transfer reads, deterministic pulse counts: ``PulseType.DETERMINISTIC_IMPLICIT``
    with bit-length management off) and ours give the same weights ``gamma A + C`` after each
    of 80 rank-one updates of a 3 x 5 tile (transfer every 2nd update, 2 columns per transfer,
    wrapping). Mapping: our ``(dw_min, up_down=b)`` is aihwkit's ``(dw_min (1 + b), 2 b / (1 +
    b))`` (tests/hardware/test_pulses.py), so aihwkit's counts ``round(|x d| lr / dw)`` equal ours
    ``round(|dW| / dw_min)`` with ``lr = dw_min (1 + b)`` and ``transfer_lr (1 + b)``;
    aihwkit's ``W[out, in]`` is our ``w[in, out]`` (its columns are our first axis). Run with
    ``bash benchmarks/aihwkit_check.sh`` (aihwkit 1.1.0; there ``fast_lr`` is A's absolute
    learning rate)."""
    pytest.importorskip("aihwkit")
    torch = pytest.importorskip("torch")
    from aihwkit.simulator.configs import SoftBoundsDevice, TransferCompound, UnitCellRPUConfig
    from aihwkit.simulator.parameters import IOParameters, UpdateParameters
    from aihwkit.simulator.parameters.enums import PulseType
    from aihwkit.simulator.tiles.analog import AnalogTile

    b, dw, tlr, gamma = 0.2, 0.01, 0.5, 0.3
    n_in, n_out = 5, 3
    dev = _device(up_down=b, dw_min=dw, transfer_every=2, n_reads_per_transfer=2,
                  transfer_lr=tlr, gamma=gamma, max_pulses=100)
    dw_ai = dw * (1 + b)

    def det(bl):
        return UpdateParameters(pulse_type=PulseType.DETERMINISTIC_IMPLICIT, desired_bl=bl,
                                update_bl_management=False, update_management=False)

    sb = SoftBoundsDevice(dw_min=dw_ai, up_down=2 * b / (1 + b), w_max=1.0, w_min=-1.0,
                          dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0,
                          dw_min_std=0.0, write_noise_std=0.0)
    cell = TransferCompound(unit_cell_devices=[sb, sb], gamma=gamma, transfer_every=2,
                            n_reads_per_transfer=2, transfer_columns=True, fast_lr=dw_ai,
                            transfer_lr=tlr * (1 + b), scale_transfer_lr=False,
                            transfer_forward=IOParameters(is_perfect=True),
                            transfer_update=det(100))
    cfg = UnitCellRPUConfig(device=cell)
    cfg.update = det(31)
    tile = AnalogTile(n_out, n_in, cfg)
    tile.set_learning_rate(1.0)
    rng = np.random.default_rng(3)
    w0 = rng.uniform(-0.3, 0.3, (n_out, n_in)).astype(np.float32)
    try:
        tile.set_weights(torch.from_numpy(w0))
    except RuntimeError as e:
        pytest.fail(f"aihwkit's rpu_base does not accept torch {torch.__version__}'s tensors "
                    f"({e}): bash benchmarks/aihwkit_check.sh builds a matching venv")
    np.testing.assert_allclose(tile.get_weights()[0].numpy(), w0, atol=1e-6)

    st = M.pulse_init(jax.random.PRNGKey(0), (n_in, n_out), dev,
                      jnp.stack([jnp.asarray(w0.T), jnp.zeros((n_in, n_out))]))
    update = jax.jit(M.pulse_update, static_argnums=(4, 5))
    dev_max, moved = 0.0, 0.0
    for i in range(80):
        # a rank-one update x d^T with whole pulse counts |x d| (x in {-1, 0, 1}, |d| <= 4),
        # biased upwards so that A and C move into their nonlinear range
        x = rng.integers(-1, 2, n_in).astype(np.float32)
        d = rng.integers(-4, 3, n_out).astype(np.float32)
        tile.update(torch.from_numpy(x[None]), torch.from_numpy(d[None]))  # W -= lr d x^T
        delta = -np.outer(x, d) * dw  # our w[in, out]: the same pulses
        st = update(st, jnp.asarray(delta), jax.random.PRNGKey(i), 0.0, dev, 1.0)
        theirs = tile.get_weights()[0].numpy().T
        ours = np.asarray(M.pulse_read(st, 0.0, dev, 1.0))
        dev_max = max(dev_max, float(np.max(np.abs(ours - theirs))))
        moved = max(moved, float(np.max(np.abs(theirs - w0.T))))
    print(f"max |ours - aihwkit| over 80 updates: {dev_max:.2e} (weights moved up to {moved:.2f})")
    assert moved > 0.1  # the transfers moved C well into its nonlinear range
    assert dev_max < 1e-5
