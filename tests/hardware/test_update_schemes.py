"""How a requested weight change becomes programming pulses (issue 16, co-design): the
accumulate-then-program scheme against a slow numpy loop of Nandakumar et al. 2020's equations,
the open-loop stochastic scheme's unbiased nominal pulse count, the constant-step device, and the
``hardware.device`` option of an experiment config."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.errors import ConfigError
from neurorl.hardware import memristor as M


def _device(**kw):
    base = dict(dw_min=0.01, up_down=0.2, g_hi=1.0, g_lo=-1.0, dw_min_dtod=0.0,
                up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0, dw_min_std=0.0,
                read_noise=0.0, drift=False, max_pulses=5)
    base.update(kw)
    return M.get_pulse_device("rram").replace(**base)


def _mixed_precision_loop(deltas, dev, w_scale, pair=False):
    """Nandakumar et al. 2020 (Algorithm 1), one synapse, one pulse at a time (numpy).

    chi <- chi + dW;  p = floor(|chi| / eps) (at most max_pulses);  apply p pulses of
    sign(chi);  chi <- chi - sign(chi) p eps. A pulse moves the device by
    dw (1 +- up_down) (1 - nl g / bound), clipped to the bounds (aihwkit per-pulse rule); a pair
    SETs G+ for chi >= 0, G- otherwise.
    """
    nl = dev.nonlinearity
    chi, gp, gn = 0.0, 0.0, 0.0
    out = []
    for dW in deltas:
        chi += dW / w_scale
        s = 1.0 if chi >= 0 else -1.0
        p = min(int(np.floor(abs(chi) / dev.dw_min)), dev.max_pulses)
        for _ in range(p):
            if pair:
                if s > 0:
                    gp = min(gp + dev.dw_min * (1 + dev.up_down) * (1 - nl * gp / dev.g_hi),
                             dev.g_hi)
                else:
                    gn = min(gn + dev.dw_min * (1 + dev.up_down) * (1 - nl * gn / dev.g_hi),
                             dev.g_hi)
            elif s > 0:
                gp = min(gp + dev.dw_min * (1 + dev.up_down) * (1 - nl * gp / dev.g_hi),
                         dev.g_hi)
            else:
                gp = max(gp - dev.dw_min * (1 - dev.up_down) * (1 - nl * gp / dev.g_lo),
                         dev.g_lo)
        chi -= s * p * dev.dw_min
        out.append((gp - gn if pair else gp, chi, p))
    return np.array(out)


@pytest.mark.parametrize("nl", [0.0, 1.0])
@pytest.mark.parametrize("pair", [False, True])
def test_mixed_precision_equals_the_papers_loop(nl, pair):
    extra = dict(pair=True, g_lo=0.0, refresh_at=1.0) if pair else {}
    dev = _device(update="mixed_precision", nonlinearity=nl, **extra)
    w_scale = 0.5
    rng = np.random.default_rng(0)
    # noisy small updates of both signs plus a drift: most cancel in chi before any pulse
    deltas = (rng.normal(0.0, 0.004, 400) + 0.0015).astype(np.float32)
    ref = _mixed_precision_loop(deltas, dev, w_scale, pair)
    st = M.pulse_init(jax.random.PRNGKey(0), (1,), dev)
    w, chi, n = [], [], []
    for i, d in enumerate(deltas):
        before = float(st.total_pulses)
        st = M.pulse_update(st, jnp.array([d]), jax.random.PRNGKey(i), 0.0, dev, w_scale)
        w.append(float(M.pulse_read(st, 0.0, dev, 1.0)[0]))
        chi.append(float(st.chi[0]))
        n.append(float(st.total_pulses) - before)
    np.testing.assert_allclose(n, ref[:, 2])
    np.testing.assert_allclose(chi, ref[:, 1], atol=2e-5)
    np.testing.assert_allclose(w, ref[:, 0], rtol=1e-4, atol=1e-5)
    assert np.all(np.abs(ref[:, 1]) < dev.dw_min * (dev.max_pulses + 1))
    # the point of the scheme: far fewer pulses than updates (opposite updates cancel)
    assert ref[:, 2].sum() < 0.5 * len(deltas)


def test_stochastic_scheme_counts_nominal_steps_unbiased_and_ignores_the_device():
    """Open loop: E[pulses] = |dW| / (w_scale dw_min) whatever the device's own step is; the
    weight then moves by the device's asymmetric step, not by the request."""
    dev = _device(update="stochastic", up_down=0.3, max_pulses=100, nonlinearity=0.0)
    shape = (20000,)
    st = M.pulse_init(jax.random.PRNGKey(1), shape, dev)
    delta = jnp.full(shape, 2.3 * dev.dw_min)  # w_scale 1
    new = M.pulse_update(st, delta, jax.random.PRNGKey(2), 0.0, dev, 1.0)
    n = np.asarray(new.pulses[0])
    assert set(np.unique(n)) == {2.0, 3.0}
    assert n.mean() == pytest.approx(2.3, abs=0.02)
    # constant step (nonlinearity 0): each up pulse is dw_min (1 + up_down)
    np.testing.assert_allclose(np.asarray(new.g[0]), n * dev.dw_min * 1.3, rtol=1e-5)
    # calibrated: the count uses the device's own up step, so the mean change is the request
    cal = M.pulse_update(st, delta, jax.random.PRNGKey(2), 0.0, dev.replace(update="calibrated"),
                         1.0)
    assert float(np.mean(cal.g[0])) == pytest.approx(2.3 * dev.dw_min, rel=0.02)


def test_constant_step_device_steps_linearly_then_clips():
    dev = _device(nonlinearity=0.0, up_down=0.0, dw_min=0.3)
    st = M.pulse_init(jax.random.PRNGKey(0), (1,), dev)
    g = M.pulse_step(st.g[0], jnp.array([2.0]), jnp.array([0.0]), st.dw_up[0], st.dw_down[0],
                     st.g_hi[0], st.g_lo[0], 0.0, None, 0.0)
    assert float(g[0]) == pytest.approx(0.6)
    g = M.pulse_step(g, jnp.array([5.0]), jnp.array([0.0]), st.dw_up[0], st.dw_down[0],
                     st.g_hi[0], st.g_lo[0], 0.0, None, 0.0)
    assert float(g[0]) == pytest.approx(1.0)  # clipped at g_hi


def test_fixed_drift_exponent_and_onset():
    dev = _device(drift=True, drift_nu=0.05, drift_t0=1e-3)
    st = M.pulse_init(jax.random.PRNGKey(0), (3,), dev, jnp.array([[0.5, -0.5, 0.2], [0, 0, 0]]))
    np.testing.assert_allclose(np.asarray(M.pulse_read(st, 1e-3, dev, 1.0)), [0.5, -0.5, 0.2])
    np.testing.assert_allclose(np.asarray(M.pulse_read(st, 10.0, dev, 1.0)),
                               np.array([0.5, -0.5, 0.2]) * (10.0 / 1e-3) ** -0.05, rtol=1e-5)


def test_device_overrides_name_the_field():
    dev = M.pulse_device_with("rram", {"update": "mixed_precision", "up_down": 0.3})
    assert dev.update == "mixed_precision" and dev.up_down == 0.3 and dev.g_max_us == 40.0
    with pytest.raises(ConfigError, match="hardware.device.up_dwn.*up_down"):
        M.pulse_device_with("rram", {"up_dwn": 0.3})
    with pytest.raises(ConfigError, match="mixed_precision"):
        M.pulse_device_with("pcm", {"update": "mixed-precision"})
    with pytest.raises(ConfigError, match="hardware.device"):
        M.pulse_device_with("pcm", {"up_down": 1.5})


def test_chip_device_only_on_a_crossbar_learning_on_chip():
    from neurorl.experiment.train import TrainConfig, validate

    validate(TrainConfig(agent="rstdp", chip="rram", chip_device={"update": "mixed_precision"}))
    for chip, off in (("loihi2", False), (None, False), ("pcm", True)):
        with pytest.raises(ConfigError, match="chip_device"):
            validate(TrainConfig(agent="rstdp", chip=chip, off_chip_learning=off,
                                 chip_device={"update": "mixed_precision"}))
    with pytest.raises(ConfigError, match="chip_device.updat.*update"):
        validate(TrainConfig(agent="rstdp", chip="pcm", chip_device={"updat": "stochastic"}))


def test_experiment_config_reaches_the_crossbar():
    from neurorl.experiment import config as C
    from neurorl.experiment.runner import train_config

    cfg = C.ExperimentConfig.model_validate(
        {"agent": {"name": "rstdp"}, "hardware": {"chip": "pcm",
                                                  "device": {"update": "mixed_precision"}}})
    assert dict(train_config(cfg).chip_device) == {"update": "mixed_precision"}


@pytest.mark.slow
def test_rram_rstdp_learns_with_mixed_precision():
    from neurorl.experiment.train import TrainConfig, make_train

    cfg = TrainConfig(env_id="CartPole-v1", agent="rstdp", n_envs=4, n_seeds=1, n_steps=4 * 25,
                      chip="rram", substeps=5, chip_device={"update": "mixed_precision"})
    train = make_train(cfg)
    out = train(jax.random.key(0))
    dev = train.agent.runtime.net.hardware.chip.device
    assert dev.update == "mixed_precision"
    es = out["runner_state"].engine
    chi = np.concatenate([np.asarray(s.devices.chi).ravel() for s in es.values()])
    assert np.any(chi != 0)  # requests below a step wait in the accumulator
    pulses = sum(float(np.sum(s.devices.pulses)) for s in es.values())
    assert pulses == pytest.approx(float(np.asarray(out["metrics"]["learning_ops"])[-1, 0]))
