"""The e-prop actor-critic's opt-in tools for the harder tasks (issue 17): potential-based reward
shaping, running reward normalisation, an exploration floor and an optimistic critic init."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.agents import make_agent, spec_from_env
from neurorl.agents.eprop_ac import DEFAULTS
from neurorl.envs import make
from neurorl.errors import ConfigError
from neurorl.experiment.config import check_hyper_values

SMALL = dict(n_rec=8, n_alif=2, n_rf=3)


def _run(agent, env, params, rewards_of, n, key=0):
    """n act/env/learn steps on an auto-resetting env; ``rewards_of(r, obs, next_obs, term,
    trunc)`` gives the rewards the agent learns from. Returns the states after each learn."""
    B = agent.spec.n_envs
    key = jax.random.key(key)
    k0, key = jax.random.split(key)
    obs, es = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k0, B), params)
    state = agent.init(jax.random.key(1))
    act, learn = jax.jit(agent.act), jax.jit(agent.learn)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    states = []
    for _ in range(n):
        key, ka, ke = jax.random.split(key, 3)
        a, state = act(state, obs, ka)
        nobs, es, r, term, trunc, _ = step(jax.random.split(ke, B), es, a, params)
        state = learn(state, rewards_of(r, obs, nobs, term, trunc), term, trunc)
        states.append(state)
        obs = nobs
    return states


def _energy(o):
    """MountainCar mechanical energy / 0.0025 from [position, velocity] (numpy, by hand)."""
    o = np.asarray(o, np.float64)
    return (0.5 * o[:, 1] ** 2 + 0.0025 * np.sin(3 * o[:, 0]) / 3) / 0.0025


@pytest.mark.parametrize("env_id", ["MountainCar-v0", "MountainCarContinuous-v0"])
def test_shaping_equals_the_shaped_reward_of_ng_et_al(env_id):
    # short episodes so that truncations (and their resets) happen inside the run; the same
    # potential serves both cars (same hill, gravity 0.0025, observation [position, velocity])
    env, params = make(env_id, max_steps_in_episode=4)
    spec = spec_from_env(env, params, n_envs=3, substeps=2)
    scale, gamma = 7.0, DEFAULTS["gamma"]
    shaped = make_agent("eprop_ac", spec, shaping="mountain_car_energy", shaping_scale=scale,
                        lr=1e-2, **SMALL)
    plain = make_agent("eprop_ac", spec, lr=1e-2, **SMALL)

    def ng(r, obs, nobs, term, trunc):
        # r + gamma Phi(s') - Phi(s), Phi(terminal) = 0; a truncated s' is unseen by the agent
        # (the next obs is a reset), so Phi(s) stands in for it
        phi, phi_n = scale * _energy(obs), scale * _energy(nobs)
        phi_n = np.where(np.asarray(trunc) & ~np.asarray(term), phi, phi_n)
        phi_n = np.where(np.asarray(term), 0.0, phi_n)
        return jnp.asarray(np.asarray(r) + gamma * phi_n - phi, jnp.float32)

    a = _run(shaped, env, params, lambda r, *_: r, 11)
    b = _run(plain, env, params, ng, 11)
    assert bool(np.any([np.any(np.asarray(s.trunc_prev)) for s in a]))  # truncations happened
    for sa, sb in zip(a, b, strict=True):
        for c in sa.weights:
            np.testing.assert_allclose(np.asarray(sa.weights[c]), np.asarray(sb.weights[c]),
                                       rtol=2e-4, atol=1e-6)
    # the shaping moved the weights (the comparison is not between two idle agents)
    c = plain.runtime.net.connections
    u = _run(plain, env, params, lambda r, *_: r, 11)[-1]
    assert max(float(np.abs(np.asarray(u.weights[n]) - np.asarray(a[-1].weights[n])).max())
               for n in c) > 1e-4


def test_reward_norm_divides_by_the_std_of_every_discounted_return_so_far():
    env, params = make("Pendulum-v1", max_steps_in_episode=5)
    spec = spec_from_env(env, params, n_envs=2, substeps=2)
    gamma, scale = DEFAULTS["gamma"], 0.5
    agent = make_agent("eprop_ac", spec, reward_norm=True, reward_scale=scale, **SMALL)
    raw = []
    states = _run(agent, env, params, lambda r, *_: (raw.append(np.asarray(r)), r)[1], 12)
    ret, history = np.zeros(2), []
    for t, s in enumerate(states):
        ret = gamma * ret + scale * raw[t]
        history.append(ret.copy())
        want = scale * raw[t] / np.sqrt(np.var(np.concatenate(history)) + 1e-8)
        np.testing.assert_allclose(np.asarray(s.r_prev), want, rtol=1e-4)
        ret = np.where(np.asarray(s.reset_next), 0.0, ret)
    assert np.any([np.any(np.asarray(s.reset_next)) for s in states])


def test_std_floor_and_optimistic_value_init():
    env, params = make("Pendulum-v1")
    spec = spec_from_env(env, params, n_envs=2, substeps=2)
    agent = make_agent("eprop_ac", spec, log_std0=-3.0, std_min=0.25, v_init=2.0, **SMALL)
    s0 = agent.init(jax.random.key(0))
    np.testing.assert_allclose(np.asarray(s0.params["b_out"]), [0.0, 2.0])
    s = _run(agent, env, params, lambda r, *_: r, 2)[-1]
    np.testing.assert_allclose(np.asarray(s.params["log_std"]), [np.log(0.25)], rtol=1e-6)
    # the defaults leave both alone
    d = make_agent("eprop_ac", spec, log_std0=-3.0, **SMALL)
    np.testing.assert_allclose(np.asarray(d.init(jax.random.key(0)).params["b_out"]), [0, 0])
    s = _run(d, env, params, lambda r, *_: r, 2)[-1]
    assert float(s.params["log_std"][0]) < np.log(0.25)


def test_bad_options_are_named():
    env, params = make("MountainCar-v0")
    spec = spec_from_env(env, params)
    with pytest.raises(ConfigError, match="mountain_car_energy"):
        make_agent("eprop_ac", spec, shaping="mountain_car_energi")
    cp, cpp = make("CartPole-v1")
    with pytest.raises(ConfigError, match="2-dimensional|needs 2"):
        make_agent("eprop_ac", spec_from_env(cp, cpp), shaping="mountain_car_energy")
    with pytest.raises(ConfigError, match="reward_norm"):
        make_agent("eprop_ac", spec, reward_norm=1)
    with pytest.raises(ConfigError, match="std_min"):
        make_agent("eprop_ac", spec, std_min=-0.1)
    # the experiment schema checks them by their defaults' kinds
    for bad in ({"reward_norm": "yes"}, {"shaping": 3}, {"shaping_scale": -1.0},
                {"v_init": float("nan")}):
        with pytest.raises(ConfigError, match="agent.hyper." + next(iter(bad))):
            check_hyper_values("eprop_ac", bad, "agent.hyper")
