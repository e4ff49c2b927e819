"""Distribution shifts: schedule values against hand-computed numbers, reproducibility, composition
order, observation-shift statistics, task sequences, and compile counts (one compile per scan over
a whole schedule and per vmap over shift conditions)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.envs import make
from neurorl.envs import shifts as S
from neurorl.errors import ConfigError, ShapeError

KEY = jax.random.PRNGKey(0)


def values(schedule, ts, key=KEY):
    """Schedule evaluated at many steps in one jitted vmap."""
    f = jax.jit(jax.vmap(lambda t: schedule(t, key)))
    return np.asarray(f(jnp.asarray(ts, jnp.int32)))


# --------------------------------------------------------------------------- schedules


def test_constant_and_abrupt_hand_values():
    np.testing.assert_allclose(values(S.constant(0.7), [0, 5, 10**6]), [0.7] * 3, rtol=1e-7)
    s = S.abrupt([0.5, 1.0, 0.25], [100, 250])
    np.testing.assert_allclose(
        values(s, [0, 99, 100, 101, 249, 250, 10**7]), [0.5, 0.5, 1.0, 1.0, 1.0, 0.25, 0.25]
    )
    w = S.window(10, 20, value=3.0)
    np.testing.assert_allclose(values(w, [9, 10, 19, 20]), [0, 3, 3, 0])


def test_gradual_linear_and_cosine_hand_values():
    lin = S.gradual(0.5, 1.5, 100, 300)
    # u = (t - 100) / 200
    np.testing.assert_allclose(
        values(lin, [0, 100, 150, 200, 300, 1000]), [0.5, 0.5, 0.75, 1.0, 1.5, 1.5], rtol=1e-6
    )
    cos = S.gradual(0.5, 1.5, 100, 300, kind="cosine")
    t = np.array([100, 150, 200, 250, 300])
    want = 0.5 + 1.0 * 0.5 * (1 - np.cos(np.pi * (t - 100) / 200))
    np.testing.assert_allclose(values(cos, t), want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(values(cos, [150]), [0.5 + 0.5 * (1 - math.sqrt(0.5))], rtol=1e-6)


def test_cyclic_hand_values():
    sine = S.cyclic(1.0, 3.0, period=100)
    np.testing.assert_allclose(
        values(sine, [0, 25, 50, 75, 100, 150]), [1, 2, 3, 2, 1, 3], atol=1e-5
    )
    sq = S.cyclic(1.0, 3.0, period=100, kind="square")
    np.testing.assert_allclose(values(sq, [0, 49, 50, 99, 100]), [1, 1, 3, 3, 1])
    tri = S.cyclic(0.0, 1.0, period=40, phase=10, kind="triangle")
    # x = ((t + 10) / 40) mod 1; u = 1 - |2x - 1|
    np.testing.assert_allclose(values(tri, [0, 10, 20, 30]), [0.5, 1.0, 0.5, 0.0], atol=1e-6)


def test_random_reproducible_constant_within_interval_and_in_range():
    s = S.random(0.25, 2.0, every=50)
    t = np.arange(0, 500)
    a, b = values(s, t), values(s, t)
    np.testing.assert_array_equal(a, b)  # same key -> same sequence
    per = a.reshape(10, 50)
    assert np.all(per == per[:, :1])  # constant within each interval
    assert len(np.unique(per[:, 0])) == 10  # a new value each interval
    assert np.all((a >= 0.25) & (a <= 2.0))
    # hand-computed: interval i draws uniform(fold_in(key, i))
    u3 = float(jax.random.uniform(jax.random.fold_in(KEY, 3), (), jnp.float32))
    np.testing.assert_allclose(a[150], 0.25 + 1.75 * u3, rtol=1e-6)
    other = values(s, t, key=jax.random.PRNGKey(1))
    assert not np.allclose(a, other)
    lg = values(S.random(0.1, 10.0, every=1, log=True), np.arange(2000))
    assert np.all((lg >= 0.1 - 1e-6) & (lg <= 10.0 + 1e-5))
    assert abs(np.mean(np.log10(lg))) < 0.1  # log-uniform: log10 ~ U(-1, 1)


def test_schedule_spec_and_bad_values():
    s = S.as_schedule({"kind": "abrupt", "values": [1, 2], "steps": [5]})
    np.testing.assert_allclose(values(s, [4, 5]), [1, 2])
    with pytest.raises(ConfigError, match="gradual"):
        S.as_schedule({"kind": "gradul", "start": 0, "end": 1, "t0": 0, "t1": 1})
    with pytest.raises(ConfigError, match="len"):
        S.abrupt([1, 2, 3], [5])
    with pytest.raises(ConfigError, match="increasing"):
        S.abrupt([1, 2, 3], [5, 5])
    with pytest.raises(ConfigError):
        S.gradual(0, 1, 10, 10)
    with pytest.raises(ConfigError):
        S.cyclic(0, 1, period=0)
    with pytest.raises(ConfigError):
        S.random(0, 1, every=0)


# --------------------------------------------------------------------------- param shifts


def test_field_typo_caught_on_host_with_closest_name():
    env, _ = make("CartPole-v1")
    with pytest.raises(ConfigError, match="Did you mean 'length'"):
        S.param_shift("lenght", 1.0).bind(env)
    with pytest.raises(ConfigError, match="Did you mean 'masspole'"):
        S.make_shift(env, {"field": "mass_pole", "schedule": 0.2})
    with pytest.raises(ConfigError, match="length"):
        S.make_shift(
            env, [{"field": "gravity", "schedule": 9.0}, {"field": "lenght", "schedule": 1}]
        )
    with pytest.raises(ConfigError, match="static"):
        S.param_shift("kinematics_integrator", 1.0).bind(env)
    with pytest.raises(ConfigError, match="Did you mean 'length'"):
        S.task_sequence(env, [{"length": 0.5}, {"lenth": 1.0}], 10)
    with pytest.raises(ConfigError, match="length"):
        S.task_sequence(env, [{"length": 0.5}, {"length": -1.0}], 10)
    with pytest.raises(ConfigError, match="scale"):
        S.param_shift("length", 1.0, mode="scael")


def test_param_shift_modes_and_composition_order():
    env, p = make("CartPole-v1")
    t = jnp.asarray(0, jnp.int32)
    set_ = S.param_shift("length", 2.0).bind(env)
    scale = S.param_shift("length", 3.0, mode="scale").bind(env)
    add = S.param_shift("length", 0.1, mode="add").bind(env)
    f = jax.jit(lambda sh: sh(t, KEY, p).length)
    assert float(f(set_)) == pytest.approx(2.0)
    assert float(f(scale)) == pytest.approx(1.5)
    assert float(f(add)) == pytest.approx(0.6)
    # order matters: set then scale = 6; scale then set = 2; scale then add = 1.6
    assert float(f(S.compose(set_, scale))) == pytest.approx(6.0)
    assert float(f(S.compose(scale, set_))) == pytest.approx(2.0)
    assert float(f(S.compose(scale, add))) == pytest.approx(1.6)
    # several fields at once; others untouched; dtypes preserved
    both = S.make_shift(
        env,
        [
            {
                "field": "gravity",
                "schedule": {"kind": "abrupt", "values": [9.8, 3.7], "steps": [10]},
            },
            {"field": "max_steps_in_episode", "schedule": 200},
        ],
    )
    q = jax.jit(lambda t: both(t, KEY, p))(jnp.asarray(10, jnp.int32))
    assert float(q.gravity) == pytest.approx(3.7)
    assert int(q.max_steps_in_episode) == 200 and q.max_steps_in_episode.dtype == jnp.int32
    assert float(q.length) == pytest.approx(0.5) and q.gravity.dtype == jnp.float32


def test_task_sequence_ids_params_and_cycling():
    env, p = make("CartPole-v1")
    seq = S.task_sequence(
        env,
        [{"length": 0.5}, {"length": 1.0}, {"length": 0.25}, {"length": 0.5, "gravity": 5.0}],
        [100, 200, 100, 100],
    )
    ts = jnp.asarray([0, 99, 100, 299, 300, 399, 400, 499, 500, 10_000], jnp.int32)
    f = jax.jit(jax.vmap(lambda t: (seq.task_id(t), seq(t, KEY, p))))
    tid, q = f(ts)
    np.testing.assert_array_equal(tid, [0, 0, 1, 1, 2, 2, 3, 3, 3, 3])
    np.testing.assert_allclose(q.length, [0.5, 0.5, 1, 1, 0.25, 0.25, 0.5, 0.5, 0.5, 0.5])
    # a field named by only some tasks falls back to the base value in the others
    np.testing.assert_allclose(q.gravity, [9.8] * 6 + [5.0] * 4, rtol=1e-6)
    cyc = S.task_sequence(env, [{"length": 0.5}, {"length": 1.0}], 10, cycle=True)
    tid = jax.jit(jax.vmap(cyc.task_id))(jnp.arange(45, dtype=jnp.int32))
    np.testing.assert_array_equal(tid, np.tile(np.repeat([0, 1], 10), 3)[:45])


# --------------------------------------------------------------------------- obs / action / reward


def _apply_obs(shift, obs_dim, n, key=KEY, obs=None):
    """Run an obs shift for n steps in a scan; returns the [n, obs_dim] outputs."""
    state = shift.init(key, obs_dim)
    obs = jnp.zeros((obs_dim,), jnp.float32) if obs is None else obs

    def body(s, tk):
        t, k = tk
        o, s = shift.apply(t, k, s, obs)
        return s, o

    keys = jax.random.split(key, n)
    return np.asarray(
        jax.jit(lambda s: jax.lax.scan(body, s, (jnp.arange(n, dtype=jnp.int32), keys))[1])(state)
    )


def test_gaussian_noise_statistics_and_window():
    out = _apply_obs(S.gaussian_noise(0.3, start=100), 4, 4100)
    assert np.all(out[:100] == 0)  # inactive before t0
    x = out[100:]
    # 16000 samples: std error of the mean 0.3 / sqrt(16000) = 0.0024
    assert abs(x.mean()) < 0.01
    assert abs(x.std() - 0.3) < 0.01
    assert abs(np.corrcoef(x[:, 0], x[:, 1])[0, 1]) < 0.05  # independent dims


def test_sensor_drift_is_random_walk_with_step_std():
    out = _apply_obs(S.sensor_drift(0.02), 3, 3000)
    inc = np.diff(out, axis=0)
    assert abs(inc.std() - 0.02) < 0.001 and abs(inc.mean()) < 0.001
    # increments uncorrelated in time (a walk, not noise around zero)
    assert abs(np.corrcoef(inc[:-1, 0], inc[1:, 0])[0, 1]) < 0.06
    # variance grows linearly: over 64 independent walks Var(b_T) ~ T step_std^2
    keys = jax.random.split(KEY, 64)
    walks = jax.jit(jax.vmap(lambda k: _walk_end(k)))(keys)
    assert 0.5 < np.var(np.asarray(walks)) / (400 * 0.02**2) < 1.6


def _walk_end(key):
    sh = S.sensor_drift(0.02)
    s = sh.init(key, 1)

    def body(s, tk):
        o, s = sh.apply(tk[0], tk[1], s, jnp.zeros((1,), jnp.float32))
        return s, None

    s, _ = jax.lax.scan(body, s, (jnp.arange(400, dtype=jnp.int32), jax.random.split(key, 400)))
    return s[0]


def test_dead_sensors_and_permutation():
    obs = jnp.asarray([1.0, 2.0, 3.0, 4.0])
    out = _apply_obs(S.dead_sensors([1, 3], 4, start=2), 4, 4, obs=obs)
    np.testing.assert_array_equal(out, [[1, 2, 3, 4], [1, 2, 3, 4], [1, 0, 3, 0], [1, 0, 3, 0]])
    perm = S.permute_obs(obs_dim=4, key=jax.random.PRNGKey(3), start=1, end=3)
    p = np.asarray(perm.perm)
    assert sorted(p.tolist()) == [0, 1, 2, 3] and not np.array_equal(p, np.arange(4))
    out = _apply_obs(perm, 4, 4, obs=obs)
    np.testing.assert_array_equal(out[[0, 3]], [[1, 2, 3, 4]] * 2)
    np.testing.assert_array_equal(out[1], np.asarray(obs)[p])
    with pytest.raises(ConfigError, match="permutation"):
        S.permute_obs([0, 0, 1, 2])
    with pytest.raises(ConfigError):
        S.dead_sensors([4], 4)


def test_action_and_reward_shifts():
    t = jnp.asarray([0, 9, 10, 11], jnp.int32)
    swap = S.remap_actions([1, 0], start=10)
    a = jax.vmap(lambda t: swap.apply(t, KEY, jnp.asarray(1)))(t)
    np.testing.assert_array_equal(a, [1, 1, 0, 0])
    inv = S.invert_actions(start=10, end=11)
    a = jax.vmap(lambda t: inv.apply(t, KEY, jnp.asarray([0.5])))(t)
    np.testing.assert_allclose(a[:, 0], [0.5, 0.5, -0.5, 0.5])
    sc = S.scale_actions(S.gradual(1.0, 0.0, 0, 10))
    np.testing.assert_allclose(
        jax.vmap(lambda t: sc.apply(t, KEY, 2.0))(t), [2.0, 0.2, 0.0, 0.0], atol=1e-6
    )
    flip = S.flip_reward(start=10)
    np.testing.assert_allclose(
        jax.vmap(lambda t: flip.apply(t, KEY, jnp.float32(1.0)))(t), [1, 1, -1, -1]
    )
    half = S.scale_reward(0.5)
    assert float(half.apply(t[0], KEY, jnp.float32(4.0))) == 2.0


# --------------------------------------------------------------------------- ShiftedEnv, compiles


def _scan_env(senv, n):
    def run(key, sp):
        obs, st = senv.reset(key, sp)

        def body(c, k):
            obs, st = c
            a = senv.action_space().sample(k)
            obs, st, r, te, tr, info = senv.step(k, st, a, sp)
            return (obs, st), (obs, r, te | tr, info["t"], info["task_id"], info["params"].length)

        _, out = jax.lax.scan(body, (obs, st), jax.random.split(key, n))
        return out

    return jax.jit(run)


def test_shifted_env_param_schedule_matches_unshifted_env_at_each_step():
    """The shifted transition equals the raw env stepped with hand-shifted params."""
    env, p = make("CartPole-v1")
    senv = S.ShiftedEnv(env, param=S.param_shift("length", S.abrupt([0.5, 1.5], [7])))
    sp = senv.default_params()
    obs, st = senv.reset(KEY, sp)
    raw = wrong = st.env_state
    for t in range(12):
        k = jax.random.fold_in(KEY, t)
        obs, st, *_ = senv.step(k, st, 1, sp)
        key_env = jax.random.split(k, 4)[0]
        _, raw, *_ = env.step(key_env, raw, 1, p.replace(length=jnp.float32(0.5 if t < 7 else 1.5)))
        np.testing.assert_allclose(obs, env.get_obs(raw), rtol=1e-6)
        _, wrong, *_ = env.step(key_env, wrong, 1, p)  # never shifted: must diverge
    assert int(st.t) == 12
    assert not np.allclose(env.get_obs(wrong), obs, rtol=1e-4)


@pytest.mark.slow
def test_scan_over_schedule_compiles_once_and_vmaps_8_conditions_once():
    env, p = make("CartPole-v1")
    seq = S.task_sequence(
        env, [{"length": 0.5}, {"length": 1.0}, {"length": 0.25}, {"length": 0.5}], 50
    )
    senv = S.ShiftedEnv(
        env, param=seq, obs=[S.gaussian_noise(0.05, start=20)], reward=[S.flip_reward(150)]
    )
    run = _scan_env(senv, 220)
    obs, r, done, t, tid, length = map(np.asarray, run(KEY, senv.default_params()))
    assert run._cache_size() == 1
    np.testing.assert_array_equal(t, np.arange(1, 221))
    np.testing.assert_array_equal(tid[[0, 49, 50, 199, 219]], [0, 0, 1, 3, 3])
    np.testing.assert_allclose(length[[0, 60, 120, 180]], [0.5, 1.0, 0.25, 0.5])
    np.testing.assert_array_equal(r[[0, 149, 150, 219]], [1, 1, -1, -1])
    # new values, same structure: no recompile
    seq2 = S.task_sequence(
        env, [{"length": 2.0}, {"length": 1.0}, {"length": 0.3}, {"length": 0.9}], 10
    )
    senv2 = S.ShiftedEnv(
        env, param=seq2, obs=[S.gaussian_noise(0.5, start=3)], reward=[S.flip_reward(7)]
    )
    run(KEY, senv2.default_params())
    assert run._cache_size() == 1

    # 8 shift conditions stacked and vmapped: one compile
    lengths = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0]
    conds = [
        S.ShiftedEnv(
            env,
            param=S.param_shift("length", S.abrupt([0.5, L], [100])),
            obs=[S.gaussian_noise(0.01 * i)],
        ).default_params()
        for i, L in enumerate(lengths)
    ]
    senv8 = S.ShiftedEnv(
        env, param=S.param_shift("length", S.abrupt([0.5, 1.0], [100])), obs=[S.gaussian_noise(0.0)]
    )
    run8 = _scan_env(senv8, 120)
    vm = jax.jit(jax.vmap(run8, in_axes=(None, 0)))
    out = [np.asarray(x) for x in vm(KEY, S.stack(conds))]
    assert vm._cache_size() == 1
    np.testing.assert_allclose(out[5][:, 110], lengths)
    np.testing.assert_allclose(out[5][:, 10], [0.5] * 8)
    vm(jax.random.PRNGKey(5), S.stack(conds[::-1]))
    assert vm._cache_size() == 1


def test_shifted_env_validates_shifts_against_env():
    env, _ = make("CartPole-v1")
    with pytest.raises(ConfigError, match="Did you mean 'length'"):
        S.ShiftedEnv(env, param={"field": "lenght", "schedule": 1.0})
    with pytest.raises(ShapeError):
        S.ShiftedEnv(env, obs=[S.dead_sensors([0], 3)])
    with pytest.raises(ConfigError, match="remap_actions"):
        S.ShiftedEnv(env, action=[S.invert_actions()])
    with pytest.raises(ShapeError):
        S.ShiftedEnv(env, action=[S.remap_actions([0, 1, 2])])
    penv, _ = make("Pendulum-v1")
    with pytest.raises(ConfigError, match="scale_actions"):
        S.ShiftedEnv(penv, action=[S.remap_actions([1, 0])])


def test_inverted_pendulum_actions_reach_env():
    """Inverting the torque on Pendulum gives the transition of the negated action."""
    env, p = make("Pendulum-v1")
    senv = S.ShiftedEnv(env, action=[S.invert_actions()])
    sp = senv.default_params()
    _, st = senv.reset(KEY, sp)
    k = jax.random.PRNGKey(2)
    o1, *_ = senv.step(k, st, jnp.asarray([1.5]), sp)
    o2, *_ = env.step(jax.random.split(k, 4)[0], st.env_state, jnp.asarray([-1.5]), p)
    np.testing.assert_allclose(o1, o2, rtol=1e-6)


def test_random_param_shift_in_env_uses_run_key_and_composes_with_log_wrapper():
    """Random shift inside ShiftedEnv: constant within each interval, equal to the schedule
    evaluated with the run's shift key; the wrapper stack LogWrapper(ShiftedEnv) just works."""
    from neurorl.envs.wrappers import LogWrapper

    env, p = make("CartPole-v1")
    shift = S.param_shift("gravity", S.random(0.5, 2.0, every=5), mode="scale")
    senv = LogWrapper(S.ShiftedEnv(env, param=shift))
    sp = senv.default_params()

    def run(key):
        obs, st = senv.reset(key, sp)

        def body(st, k):
            _, st, r, te, tr, info = senv.step(k, st, 0, sp)
            return st, (info["params"].gravity, info["timestep"])

        st, out = jax.lax.scan(body, st, jax.random.split(key, 20))
        return st, out

    st, (g, ts) = jax.jit(run)(KEY)
    g = np.asarray(g).reshape(4, 5)
    assert np.all(g == g[:, :1]) and len(np.unique(g[:, 0])) == 4
    shift_key = st.env_state.shift_key
    want = [9.8 * float(shift.schedule(jnp.int32(5 * i), shift_key)) for i in range(4)]
    np.testing.assert_allclose(g[:, 0], want, rtol=1e-6)
    np.testing.assert_array_equal(ts, np.arange(1, 21))
