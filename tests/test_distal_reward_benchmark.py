"""The full-size distal reward benchmark (benchmarks/distal_reward.py) follows the paper's code.

Izhikevich (2007) daspnet conventions, one ms per step: a spike enters its targets' current in the
next step's integration (the paper detects it at the start of that step); LTP reads the pre
trace one ms back at a post spike (+0.1 * 0.95^(dt-1), dt >= 1); LTD reads the post trace now at
a pre spike (-0.15 * 0.95^(-dt), dt <= 0); a reward (DA += 0.5)
follows an n1 -> n2 pairing within 20 ms by 1-3 s. Forced spikes in a silent network (no thalamic
noise) check each convention; the event-driven update is checked against the all-synapse form.
The learning effect itself is the benchmark's result (results/distal_reward.md) and, at small
size, tests/plasticity/test_rstdp_learning.py::test_distal_reward_small.
"""

import numpy as np
import pytest

from benchmarks import distal_reward as dr


@pytest.fixture(scope="module")
def net():
    return dr.build(0)


def _set(v, n, value):
    v = v.copy()
    v[n] = value
    return v


def _silent_run(net, spikes: dict[int, list[int]], steps: int):
    """Run ``steps`` ms with zero noise, forcing neuron n to spike at the steps in spikes[n]."""
    st = dr.init_state(net, 0)
    zero = np.zeros(dr.N)
    fired_log = []
    for t in range(steps):
        for n, times in spikes.items():
            if t in times:
                st["neurons"] = st["neurons"].replace(v=_set(st["neurons"].v, n, 30.0))
        fired_log.append(dr.step(net, st, zero, update_weights=False))
    return st, fired_log


def test_sparse_events_match_dense(net):
    rng = np.random.default_rng(3)
    for p in (0.001, 0.01, 0.05):
        mask = rng.random(dr.N) < p
        mask[0] = True
        s = net["s"].copy()
        s[: dr.N_E] = rng.random((dr.N_E, dr.M)) * dr.SM
        sd = rng.normal(size=(dr.N + 1, dr.M))
        x = np.append(rng.random(dr.N) * 0.1, 0.0)
        x_prev = np.append(rng.random(dr.N) * 0.1, 0.0)
        cur_d, sd_d = dr.dense_events(net, mask, s, sd, x, x_prev)
        sd_s = sd.copy()
        cur_s = dr.sparse_events(net, np.flatnonzero(mask), s, sd_s, x, x_prev)
        np.testing.assert_allclose(cur_s, cur_d, atol=1e-12)
        np.testing.assert_allclose(sd_s[: dr.N], sd_d[: dr.N], atol=1e-12)


@pytest.mark.parametrize("dt", [-5, -1, 0, 1, 2, 7])
def test_stdp_window_of_the_chosen_synapse(net, dt):
    n2 = net["n2"]
    t_pre = 10
    st, fired = _silent_run(net, {0: [t_pre], n2: [t_pre + dt]}, 30)
    assert [sorted(f) for f in fired if f.size] == (
        [sorted({0, n2})] if dt == 0 else [[0], [n2]] if dt > 0 else [[n2], [0]]
    )
    expected = 0.1 * 0.95 ** (dt - 1) if dt >= 1 else -0.15 * 0.95 ** (-dt)
    np.testing.assert_allclose(st["sd"][0, net["m0"]], expected, rtol=1e-12)


def test_spike_enters_current_in_the_next_step(net):
    n2 = net["n2"]
    st = dr.init_state(net, 0)
    st["s"][0, net["m0"]] = 4.0
    quiet = dr.init_state(net, 0)
    st["neurons"] = st["neurons"].replace(v=_set(st["neurons"].v, 0, 30.0))
    assert list(dr.step(net, st, np.zeros(dr.N), False)) == [0]
    dr.step(net, quiet, np.zeros(dr.N), False)
    np.testing.assert_allclose(st["syn"][n2], 4.0)
    v_before = st["neurons"].v[n2]
    np.testing.assert_allclose(v_before, quiet["neurons"].v[n2])
    dr.step(net, st, np.zeros(dr.N), False)
    dr.step(net, quiet, np.zeros(dr.N), False)
    # two half steps of 0.5 * I each: the 4 pA input raises v by 4 (to first order)
    assert 3.0 < st["neurons"].v[n2] - quiet["neurons"].v[n2] < 5.0


def test_reference_neurons_are_core_neurons_izhikevich_under_numpy(net, monkeypatch):
    """The reference writes no neuron equation: each ms is one core/neurons.py Izhikevich step
    run by numpy on all 1,000 neurons (per-neuron a and d)."""
    from neurorl.core import neurons

    calls = []
    real = neurons.Izhikevich.step

    def spy(params, state, current, xp=None):
        calls.append((xp, current.shape))
        return real(params, state, current, xp=xp)

    monkeypatch.setattr(dr, "Izhikevich", neurons.Izhikevich._replace(step=spy))
    st = dr.init_state(net, 0)
    for _ in range(3):
        dr.step(net, st, np.zeros(dr.N), False)
    assert calls == [(np, (dr.N,))] * 3
    np.testing.assert_array_equal(net["izh"].a[: dr.N_E], 0.02)
    np.testing.assert_array_equal(net["izh"].d[dr.N_E :], 2.0)


def test_both_models_draw_the_same_connectivity(net):
    """The reference's target table and the library network's connections are one structure."""
    model, n2 = dr.library_network(0)
    cnet = model.compile(backend="jax", seed=0)
    assert n2 == net["n2"] and net["post"][0, net["m0"]] == n2
    w = cnet.dense_weights(cnet.init(__import__("jax").random.key(0)))
    ee, ei, ie = (np.asarray(cnet.structure_mask(c), bool) if c != "ie" else w["ie"] != 0
                  for c in ("ee", "ei", "ie"))
    for i in (0, 5, dr.N_E - 1):
        assert sorted(net["post"][i]) == sorted(
            list(np.flatnonzero(ee[i])) + list(dr.N_E + np.flatnonzero(ei[i])))
    for i in (0, dr.N_I - 1):
        assert sorted(net["post"][dr.N_E + i]) == sorted(np.flatnonzero(ie[i]))
    assert np.asarray(w["ee"])[0, n2] == 0.0 and np.asarray(w["ie"]).min() == -1.0
    assert ee.sum(1).tolist() == [dr.K_EE] * dr.N_E and not ee.diagonal().any()


@pytest.mark.parametrize("lag, rewarded", [(5, True), (19, True), (20, False), (0, False)])
def test_reward_follows_pairing_by_one_to_three_seconds(net, lag, rewarded):
    n2 = net["n2"]
    st = dr.init_state(net, 0)
    zero = np.zeros(dr.N)
    da = []
    for t in range(3100):
        if t == 50:
            st["neurons"] = st["neurons"].replace(v=_set(st["neurons"].v, 0, 30.0))
        if t == 50 + lag:
            st["neurons"] = st["neurons"].replace(v=_set(st["neurons"].v, n2, 30.0))
        dr.step(net, st, zero, update_weights=False)
        da.append(st["da"])
    jumps = np.flatnonzero(np.diff(da) > 0.4) + 1
    if rewarded:
        assert st["n_rewards"] == 1 and len(jumps) == 1
        assert 50 + lag + 1001 <= jumps[0] <= 50 + lag + 3000
        np.testing.assert_allclose(da[jumps[0]] - 0.995 * da[jumps[0] - 1], dr.DA_PULSE)
    else:
        assert st["n_rewards"] == 0 and len(jumps) == 0


def test_weight_update_every_ten_ms_uses_dopamine(net):
    st = dr.init_state(net, 0)
    st["sd"][:] = 0.0
    st["sd"][5, 3] = 1.0
    st["sd"][dr.N_E + 1, 0] = 1.0  # inhibitory synapses are not plastic
    st["da"] = 0.3
    w0 = st["s"].copy()
    dr.step(net, st, np.zeros(dr.N), update_weights=True)
    np.testing.assert_allclose(st["s"][5, 3], w0[5, 3] + dr.TONIC_DA + 0.3 * 0.995)
    assert st["s"][dr.N_E + 1, 0] == w0[dr.N_E + 1, 0] == -1.0
    np.testing.assert_allclose(st["sd"][5, 3], 0.99)
    st["sd"][5, 3] = 100.0
    dr.step(net, st, np.zeros(dr.N), update_weights=True)
    assert st["s"][5, 3] == dr.SM


@pytest.mark.slow
def test_library_model_runs_the_network_the_reference_runs():
    """Two seconds of the library model (N-HAL Izhikevich groups + rstdp, jitted) beside the
    reference on the same connectivity: the same network activity (~1.2 Hz, as the paper's
    spontaneous rate), the chosen synapse still at 0 before any reward, every other excitatory
    weight in [0, 4] and near its start."""
    lib = dr.simulate_library(2, 0, every=1)
    ref = dr.simulate(2, 0, every=1)
    for run in (lib, ref):
        assert 0.8 < run["rate_hz"] < 2.0, run["rate_hz"]
    assert abs(lib["rate_hz"] - ref["rate_hz"]) < 0.15 * ref["rate_hz"]
    if lib["rewards"] == 0:
        assert lib["chosen_final"] == 0.0
    assert 0.9 < lib["others_mean"] <= 1.0 and lib["others_p99"] <= dr.SM
