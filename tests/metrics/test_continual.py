"""Continual metrics on hand-made curves; every expected number is computed by hand in a comment."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.errors import ConfigError, ShapeError
from neurorl.metrics import continual as cm

# Two tasks, 3 evaluations each, columns = tasks.
PERF = np.array(
    [
        [0.1, 0.0],
        [0.5, 0.0],
        [0.7, 0.1],  # end of task 0's training window
        [0.6, 0.2],
        [0.4, 0.6],
        [0.2, 0.8],  # end of the sequence
    ]
)
BASELINE = np.array([[0.1, 0.0], [0.4, 0.3], [0.7, 0.6]])  # single-task from-scratch runs


def test_average_performance_mean_of_last_k():
    # last 2 evals: task0 (0.4+0.2)/2 = 0.3, task1 (0.6+0.8)/2 = 0.7 -> mean 0.5
    assert cm.average_performance(PERF, k=2) == pytest.approx(0.5, abs=1e-12)
    # k=1: (0.2 + 0.8)/2
    assert cm.average_performance(PERF, k=1) == pytest.approx(0.5, abs=1e-12)
    # k=3: task0 (0.6+0.4+0.2)/3=0.4, task1 (0.2+0.6+0.8)/3=0.5333 -> 0.46667
    assert cm.average_performance(PERF, k=3) == pytest.approx((0.4 + 1.6 / 3) / 2, abs=1e-12)


def test_forgetting_continual_world():
    # task0: end of own window (0.5+0.7)/2 = 0.6, end of run (0.4+0.2)/2 = 0.3 -> 0.3
    # task1: its window ends the run -> 0
    f = cm.forgetting(PERF, evals_per_task=3, k=2)
    np.testing.assert_allclose(f, [0.3, 0.0], atol=1e-12)
    assert f.mean() == pytest.approx(0.15)


def test_forward_transfer_auc_normalised():
    # AUC_0 = mean(0.1, 0.5, 0.7) = 0.43333, AUC_1 = mean(0.2, 0.6, 0.8) = 0.53333
    np.testing.assert_allclose(cm.task_auc(PERF, 3), [1.3 / 3, 1.6 / 3], atol=1e-12)
    # baselines 0.4, 0.3 -> FT_0 = 0.03333/0.6 = 0.055556, FT_1 = 0.23333/0.7 = 0.333333
    ft = cm.forward_transfer(PERF, BASELINE, evals_per_task=3)
    np.testing.assert_allclose(ft, [1 / 18, 1 / 3], atol=1e-12)
    # precomputed baseline AUCs give the same
    np.testing.assert_allclose(cm.forward_transfer(PERF, [0.4, 0.3], 3), ft, atol=1e-12)
    # a perfect baseline leaves nothing to transfer -> nan, not a division error
    assert np.isnan(cm.forward_transfer(PERF, [1.0, 0.3], 3)[0])


def test_layout_errors_are_for_people():
    with pytest.raises(ShapeError, match="perf"):
        cm.forgetting(PERF, evals_per_task=4)
    with pytest.raises(ConfigError, match="k"):
        cm.forgetting(PERF, evals_per_task=3, k=4)
    with pytest.raises(ShapeError):
        cm.average_performance(np.zeros(5))


R = np.array([[0.8, 0.1, 0.2], [0.6, 0.9, 0.3], [0.5, 0.7, 0.95]])
B = np.array([0.1, 0.05, 0.1])


def test_gem_metrics():
    # ACC = (0.5 + 0.7 + 0.95)/3
    assert cm.gem_accuracy(R) == pytest.approx(2.15 / 3)
    # BWT = ((0.5-0.8) + (0.7-0.9))/2 = -0.25
    assert cm.gem_backward_transfer(R) == pytest.approx(-0.25)
    # FWT = ((R01 - b1) + (R12 - b2))/2 = (0.05 + 0.2)/2
    assert cm.gem_forward_transfer(R, B) == pytest.approx(0.125)
    # the transposed matrix (a classic indexing slip) gives different numbers
    assert cm.gem_backward_transfer(R.T) != pytest.approx(-0.25)
    with pytest.raises(ShapeError):
        cm.gem_forward_transfer(R, B[:2])


def test_adaptation_time_positive_returns():
    returns = [50, 50, 90, 100, 110, 20, 60, 100, 110, 100]
    lengths = [9, 9, 10, 10, 10, 5, 8, 12, 15, 20]
    res = cm.adaptation_time(returns, shift_episode=5, window=3, lengths=lengths)
    # P_pre = mean(90, 100, 110) = 100; bar = 90
    assert res.pre_level == pytest.approx(100.0)
    assert res.threshold == pytest.approx(90.0)
    # MA (post-shift only, <= 3): 20, 40, 60, (60+100+110)/3 = 90 -> tau = 4 episodes
    assert res.tau_episodes == 4 and not res.censored
    assert res.tau_steps == 5 + 8 + 12 + 15
    assert res.drop == pytest.approx(80.0)
    # deficits (100-R)_+ = 80, 40, 0, 0, 0
    assert res.recovery_area == pytest.approx(120.0)
    assert res.recovery_area_steps == pytest.approx(80 * 5 + 40 * 8)
    # theta = 1 needs MA >= 100: k=5 MA = (100+110+100)/3 = 103.3 -> tau = 5
    assert cm.adaptation_time(returns, 5, window=3, theta=1.0).tau_episodes == 5


def test_adaptation_time_chip_time_and_energy():
    # pre-shift level 100 (bar 90); post-shift MA: 40, 60, 90 -> tau = 3 episodes
    returns = [100, 100, 100, 40, 80, 150, 150]
    lengths = [100, 100, 100, 40, 80, 150, 150]
    # energy per env step differs per episode (chunks differ), so the sum must weight each
    # post-shift episode by its own length; the pre-shift and fourth episodes must not count
    step_energy = [9.0, 9.0, 9.0, 1e-6, 2e-6, 3e-6, 7.0]
    res = cm.adaptation_time(
        returns, 3, window=3, lengths=lengths, chip_step_s=0.005, step_energy=step_energy
    )
    assert res.tau_episodes == 3 and res.tau_steps == 40 + 80 + 150
    assert res.tau_chip_s == pytest.approx(270 * 5 * 1e-3)  # 5 substeps x 1 ms
    assert res.energy_j == pytest.approx(40 * 1e-6 + 80 * 2e-6 + 150 * 3e-6)
    # a lower fraction recovers earlier and costs less: theta 0.5 -> bar 50, MA 40, 60 -> tau 2
    low = cm.adaptation_time(
        returns,
        3,
        window=3,
        theta=0.5,
        lengths=lengths,
        chip_step_s=0.005,
        step_energy=step_energy,
    )
    assert low.tau_steps == 120 and low.tau_chip_s == pytest.approx(0.6)
    assert low.energy_j == pytest.approx(40e-6 + 160e-6)
    # without the inputs the fields stay None; never recovered -> inf
    assert cm.adaptation_time(returns, 3, window=3, lengths=lengths).energy_j is None
    cens = cm.adaptation_time(
        [100, 100, 100, 10, 20],
        3,
        window=3,
        lengths=[1] * 5,
        chip_step_s=0.005,
        step_energy=[1.0] * 5,
    )
    assert cens.censored and math.isinf(cens.tau_chip_s) and math.isinf(cens.energy_j)


def test_adaptation_time_chip_inputs_are_checked():
    returns = [100, 100, 100, 95]
    with pytest.raises(ConfigError, match="lengths"):
        cm.adaptation_time(returns, 3, window=3, chip_step_s=0.005)
    with pytest.raises(ConfigError, match="chip_step_s"):
        cm.adaptation_time(returns, 3, window=3, lengths=[1] * 4, chip_step_s=0.0)
    with pytest.raises(ShapeError):
        cm.adaptation_time(returns, 3, window=3, lengths=[1] * 4, step_energy=[1.0] * 3)
    with pytest.raises(ConfigError, match="step_energy"):
        cm.adaptation_time(returns, 3, window=3, lengths=[1] * 4, step_energy=[1.0, -1, 1, 1])


def test_adaptation_time_censored():
    returns = [100, 100, 100, 10, 20, 30, 40]
    res = cm.adaptation_time(returns, 3, window=3, lengths=[1] * 7)
    assert res.censored and math.isinf(res.tau_episodes) and math.isinf(res.tau_steps)
    assert res.drop == pytest.approx(90.0)
    assert res.recovery_area == pytest.approx(90 + 80 + 70 + 60)


def test_adaptation_time_negative_returns_need_reference():
    # Acrobot-like: returns are negative, random policy ~ -500
    returns = [-100, -100, -100, -500, -300, -150, -120, -100]
    with pytest.raises(ConfigError, match="reference_min"):
        cm.adaptation_time(returns, 3, window=3)
    res = cm.adaptation_time(returns, 3, window=3, reference_min=-500.0)
    # bar = -500 + 0.9 * (-100 + 500) = -140
    assert res.threshold == pytest.approx(-140.0)
    # MA: -500, -400, -316.7, (-300-150-120)/3 = -190, (-150-120-100)/3 = -123.3 -> tau = 5
    assert res.tau_episodes == 5
    assert res.drop == pytest.approx(400.0)


def test_adaptation_time_absolute_target_and_multiple_shifts():
    returns = [500, 500, 100, 480, 490, 500, 200, 300, 400]
    # CartPole threshold 475 instead of theta * P_pre; shifts at 2 and 6
    res = cm.adaptation_times(returns, [2, 6], window=2, target=475.0)
    # shift 1: post = 100, 480, 490, 500 (ends at the next shift): MA 100, 290, 485 -> tau 3
    assert res[0].tau_episodes == 3
    # shift 2: pre = mean(490, 500) = 495; post = 200, 300, 400: MA 200, 250, 350 -> censored
    assert res[1].censored and res[1].pre_level == pytest.approx(495.0)
    with pytest.raises(ConfigError, match="shift_episode"):
        cm.adaptation_time(returns, 1, window=2)


def test_episode_returns_from_steps():
    rewards = [1, 1, 1, 1, 1, 2, 2]
    dones = [0, 0, 1, 0, 1, 0, 0]
    rets, lens, marks = cm.episode_returns(rewards, dones, step_marks=[2, 3, 4, 5])
    np.testing.assert_array_equal(rets, [3, 2])  # trailing unfinished episode dropped
    np.testing.assert_array_equal(lens, [3, 2])
    # episodes cover steps 0-2 and 3-4: a mark maps to the episode containing it
    assert marks == [0, 1, 1, 2]
    rets, lens, marks = cm.episode_returns([1.0, 1.0], [0, 0], step_marks=[1])
    assert rets.shape == (0,) and lens.shape == (0,) and marks == [0]


def test_normalise_returns():
    np.testing.assert_allclose(cm.normalise_returns([-500, -100, 0], -500, 0), [0, 0.8, 1])
    with pytest.raises(ConfigError):
        cm.normalise_returns([1.0], 3.0, 3.0)


def test_effective_rank_hand_values():
    # diag(3, 1): p = (0.75, 0.25), H = -(0.75 ln 0.75 + 0.25 ln 0.25) = 0.562335
    assert float(cm.effective_rank(jnp.diag(jnp.array([3.0, 1.0])))) == pytest.approx(
        1.7547654, rel=1e-5
    )
    assert float(cm.effective_rank(jnp.eye(4))) == pytest.approx(4.0, rel=1e-5)
    rank_one = np.outer([1.0, 2.0, 3.0], [1.0, -1.0, 0.5, 2.0])
    assert float(cm.effective_rank(rank_one)) == pytest.approx(1.0, rel=1e-4)
    assert float(cm.effective_rank(jnp.zeros((3, 2)))) == 0.0
    # invariant under a rotation (singular values unchanged)
    c, s = np.cos(0.3), np.sin(0.3)
    rot = np.array([[c, -s], [s, c]])
    assert float(cm.effective_rank(rot @ np.diag([3.0, 1.0]))) == pytest.approx(1.7547654, rel=1e-5)


def test_silent_fraction_and_weight_change_under_jit_vmap():
    spikes = jnp.array([[0, 1, 0, 0], [0, 1, 0, 1]], dtype=jnp.float32)
    assert float(cm.silent_fraction(spikes)) == pytest.approx(0.5)
    batch = jnp.stack([spikes, jnp.ones_like(spikes), jnp.zeros_like(spikes)], axis=1)  # [T, B, N]
    out = jax.jit(jax.vmap(cm.silent_fraction, in_axes=1))(batch)
    np.testing.assert_allclose(np.asarray(out), [0.5, 0.0, 1.0])

    before = {"a": jnp.array([[1.0, 2.0]]), "b": jnp.array([0.0])}
    after = {"a": jnp.array([[1.0, 4.0]]), "b": jnp.array([1.0])}
    # sqrt(2^2 + 1^2) = sqrt(5); ||before|| = sqrt(1 + 4) -> relative 1
    assert float(cm.weight_change(before, after)) == pytest.approx(math.sqrt(5.0), rel=1e-6)
    assert float(cm.weight_change(before, after, relative=True)) == pytest.approx(1.0, rel=1e-6)


def test_weight_magnitude():
    # |1| + |-2| + |0| + |3| = 6 over 4 weights
    tree = {"a": jnp.array([[1.0, -2.0]]), "b": jnp.array([0.0, 3.0])}
    assert float(cm.weight_magnitude(tree)) == pytest.approx(1.5)


def test_bootstrap_ci_hand_case():
    # two seeds 0 and 1: a resampled mean is 0, 0.5, 1 w.p. 1/4, 1/2, 1/4, so the 5 % and 95 %
    # quantiles of 4000 resamples are 0 and 1
    mean, lo, hi = cm.bootstrap_ci([0.0, 1.0])
    assert (float(mean), float(lo), float(hi)) == (0.5, 0.0, 1.0)
    # identical seeds: the interval collapses; per-task arrays keep their shape
    mean, lo, hi = cm.bootstrap_ci(np.full((5, 3), 0.25))
    np.testing.assert_allclose([mean, lo, hi], np.full((3, 3), 0.25))
    # same seed, same interval; the interval covers the mean
    vals = np.random.default_rng(1).random(8)
    a, b = cm.bootstrap_ci(vals, seed=3), cm.bootstrap_ci(vals, seed=3)
    assert a[1] == b[1] and a[2] == b[2] and a[1] < a[0] < a[2]


def test_accepts_jax_arrays():
    assert cm.average_performance(jnp.asarray(PERF), k=2) == pytest.approx(0.5)
    np.testing.assert_allclose(cm.forgetting(jnp.asarray(PERF), 3, k=2), [0.3, 0.0], atol=1e-6)


def test_performance_matrix_and_backward_transfer():
    r = cm.performance_matrix(PERF, 3, k=2)
    # after task 0 (evals 1-2): task0 (0.5+0.7)/2, task1 (0.0+0.1)/2; after task 1: 0.3, 0.7
    np.testing.assert_allclose(r, [[0.6, 0.05], [0.3, 0.7]], atol=1e-12)
    # BWT = R[1,0] - R[0,0] = -0.3 = minus the forgetting of task 0
    assert cm.backward_transfer(PERF, 3, k=2) == pytest.approx(-0.3)
    summary = cm.continual_summary(PERF, 3, k=2, baseline_perf=BASELINE, random_init=[0.0, 0.0])
    assert summary == pytest.approx(
        {
            "average_performance": 0.5,
            "forgetting": 0.15,
            "backward_transfer": -0.3,
            "gem_forward_transfer": 0.05,  # R[0, 1] - b_1
            "forward_transfer": (1 / 18 + 1 / 3) / 2,
        }
    )


def test_shift_segments_leave_out_episodes_straddling_a_shift():
    from neurorl.metrics.continual import shift_segments

    # 2 envs; (end step, length): started at end - 2 * length
    ends = np.array([40, 60, 110, 130, 200, 260, 320])
    lens = np.array([20, 30, 30, 10, 40, 20, 20])  # starts 0, 0, 50, 110, 120, 220, 280
    (pre1, post1), (pre2, post2) = shift_segments(ends, lens, 2, [100, 250])
    np.testing.assert_array_equal(pre1, [0, 1])  # ended by 100
    np.testing.assert_array_equal(post1, [3, 4])  # started >= 100, ended by 250 (2 straddles)
    np.testing.assert_array_equal(pre2, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(post2, [6])  # episode 5 started at 220 < 250
    assert shift_segments(ends, lens, 2, []) == []


def test_adaptation_experience_steps_full_window_from_episode_starts():
    # pre-shift level mean(100, 100, 100) = 100, bar = 90 (reference_min 0)
    returns = [100, 100, 100, 40, 95, 95, 85, 100]
    starts = [0, 100, 200, 300, 340, 435, 530, 615]  # env-step clock of each episode's start
    res = cm.adaptation_time(returns, 3, window=3, start_steps=starts, shift_step=300)
    # full post-shift windows of 3: (40+95+95)/3 = 76.7, (95+95+85)/3 = 91.7 >= 90 -> the window
    # of episodes 4, 5, 6, whose earliest start is 340: 340 - 300 = 40 env steps of experience
    assert res.experience_steps == pytest.approx(40.0)
    # the partial moving average (tau_episodes) is unchanged: 40, 67.5, 76.7, 91.7 -> 4
    assert res.tau_episodes == 4
    # a window whose episodes ended out of start order (parallel envs): the earliest start counts
    res2 = cm.adaptation_time(
        returns, 3, window=3, start_steps=[0, 100, 200, 300, 340, 320, 530, 615], shift_step=300
    )
    assert res2.experience_steps == pytest.approx(20.0)
    # without start_steps the field stays None
    assert cm.adaptation_time(returns, 3, window=3).experience_steps is None


def test_adaptation_experience_steps_removes_the_old_biases():
    # 1) a single lucky episode is not a recovery: post-shift 100, 10, 10, ... never averages 90
    lucky = cm.adaptation_time(
        [100] * 3 + [100, 10, 10, 10],
        3, window=3, lengths=[1] * 7, start_steps=[0, 1, 2, 3, 4, 5, 6], shift_step=3,
    )
    assert lucky.tau_episodes == 1  # the partial moving average counted it
    assert math.isinf(lucky.experience_steps)
    # 2) episode length: an agent at 500 that keeps 500 and one at 30 that keeps 30 both needed
    # no adaptation (0 steps); counted through the recovered episode itself (tau_steps) the good
    # agent looked 500/30 times slower
    good = cm.adaptation_time([500.0] * 6, 3, window=3, lengths=[500] * 6,
                              start_steps=[0, 500, 1000, 1500, 2000, 2500], shift_step=1500)
    weak = cm.adaptation_time([30.0] * 6, 3, window=3, lengths=[30] * 6,
                              start_steps=[0, 30, 60, 90, 120, 150], shift_step=90)
    assert good.tau_steps == 500 and weak.tau_steps == 30
    assert good.experience_steps == 0.0 and weak.experience_steps == 0.0
    # 3) the bar is above the reference (random) return: pre 100, r_min 20 -> 20 + 0.9 * 80 = 92
    ref = cm.adaptation_time([100] * 3 + [91, 91, 91, 93, 93, 93], 3, window=3,
                             reference_min=20.0, start_steps=list(range(0, 90, 10)), shift_step=30)
    assert ref.threshold == pytest.approx(92.0)
    # windows: 91, 91.67, 92.33 -> the third, episodes 5..7 start at 50: 20 steps
    assert ref.experience_steps == pytest.approx(20.0)


def test_adaptation_experience_steps_inputs_are_checked():
    with pytest.raises(ConfigError, match="shift_step"):
        cm.adaptation_time([100] * 4, 3, window=3, start_steps=[0, 1, 2, 3])
    with pytest.raises(ShapeError):
        cm.adaptation_time([100] * 4, 3, window=3, start_steps=[0, 1, 2], shift_step=3)
    # fewer post-shift episodes than a window: not recovered (censored), not an error
    short = cm.adaptation_time([100] * 4, 3, window=3, start_steps=[0, 1, 2, 3], shift_step=3)
    assert math.isinf(short.experience_steps)
    # adaptation_times: one shift step per shift
    res = cm.adaptation_times([100, 100, 100, 100, 100, 100], [2, 4], shift_steps=[20, 40],
                              window=2, start_steps=[0, 10, 20, 30, 40, 50])
    assert [r.experience_steps for r in res] == [0.0, 0.0]
    with pytest.raises(ConfigError, match="shift_steps"):
        cm.adaptation_times([100] * 6, [2, 4], shift_steps=[20], window=2,
                            start_steps=[0] * 6)
