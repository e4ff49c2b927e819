"""Evaluation: ``load_policy`` acts with the checkpoint's weights and never learns, ``--greedy`` is
the policy's mode, ``neurorl eval`` is reproducible per seed and saves gymnasium's frames as a
video."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from neurorl.errors import ConfigError
from neurorl.experiment import runner
from neurorl.experiment.checkpoint import load_checkpoint
from neurorl.experiment.cli import main
from neurorl.experiment.config import from_dict
from neurorl.experiment.eval import evaluate, load_policy

from .tiny import tiny_config

TINY = tiny_config(steps=400, n_envs=4, n_seeds=2, chunk_steps=200)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "run"
    runner.run_experiment(from_dict(TINY), out, progress=False)
    return out


def _play(pol, steps):
    """Act ``steps`` env steps with the policy on its env (seed 0), fresh state per episode."""
    env = pol.make_env()
    obs, _ = env.reset(seed=0)
    pol.reset()
    for _ in range(steps):
        obs, _, te, tr, _ = env.step(pol.act(obs))
        if te or tr:
            obs, _ = env.reset()
            pol.reset()


def _weights(state):
    w = {k: np.asarray(v) for k, v in state.weights.items()}
    return {**w, "w": w["recurrent"], "b_out": np.asarray(state.params["b_out"])}


def test_policy_has_the_checkpoint_weights_and_never_learns(run_dir):
    cfg = from_dict(TINY)
    train = runner.build(cfg)
    template = jax.eval_shape(train.init, runner.member_keys(cfg.training.seed,
                                                            cfg.training.n_seeds))
    state, _ = load_checkpoint(run_dir, template)
    trained = jax.tree.map(lambda x: np.asarray(x[1]), state.agent_state)
    pol = load_policy(run_dir, member=1)
    before = _weights(pol.state)
    for k, v in _weights(trained).items():
        np.testing.assert_array_equal(before[k], v)
    _play(pol, 50)
    for k, v in _weights(pol.state).items():
        np.testing.assert_array_equal(v, before[k])
    # member 0 is a different network
    assert not np.array_equal(_weights(load_policy(run_dir, member=0).state)["w"], before["w"])
    with pytest.raises(ConfigError, match="member"):
        load_policy(run_dir, member=2)


def test_reset_restores_fresh_per_env_state(run_dir):
    pol = load_policy(run_dir)
    fresh = jax.tree.map(np.asarray, pol.state.dyn)
    pol.act(np.zeros(4, np.float32) + 0.1)
    moved = jax.tree.map(np.asarray, pol.state.dyn)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(jax.tree.leaves(fresh), jax.tree.leaves(moved), strict=True)
    )
    pol.reset()
    for a, b in zip(jax.tree.leaves(fresh), jax.tree.leaves(pol.state.dyn), strict=True):
        np.testing.assert_array_equal(a, np.asarray(b))


def test_greedy_is_the_mode_of_the_sampled_policy(run_dir):
    obs = np.array([0.02, -0.1, 0.03, 0.2], np.float32)
    sampled = load_policy(run_dir)
    greedy = load_policy(run_dir, greedy=True)
    # separate the two logits so the mode is unambiguous but sampling still varies
    for p in (sampled, greedy):
        p.state = p.state.replace(params={**p.state.params,
                                          "b_out": p.state.params["b_out"].at[0].add(1.5)})
    s0, g0 = sampled.state, greedy.state
    draws, modes = [], []
    for i in range(200):
        sampled.state, sampled._key = s0, jax.random.key(i)
        greedy.state, greedy._key = g0, jax.random.key(i)
        draws.append(sampled.act(obs))
        modes.append(greedy.act(obs))
    counts = np.bincount(draws, minlength=2)
    assert len(set(modes)) == 1 and counts.min() > 0  # greedy ignores the key; sampling doesn't
    assert modes[0] == int(np.argmax(counts))
    # and it is the argmax of the readout the agent computed
    out = greedy.state.dyn["neurons"]["readout"].v + greedy.state.params["b_out"][None, :]
    assert modes[0] == int(jnp.argmax(out[0, :2]))


def test_cli_eval_is_reproducible_and_saves_a_video(run_dir, capsys):
    pytest.importorskip("pygame")
    iio = pytest.importorskip("imageio.v3")
    assert main(["eval", str(run_dir), "--episodes", "3", "--seed", "5", "--video"]) == 0
    assert "over 3 episodes" in capsys.readouterr().out
    res = json.loads((run_dir / "eval" / "member0-seed5.json").read_text())
    again = evaluate(run_dir, seed=5, episodes=3)
    assert res["returns"] == again["returns"] and len(res["returns"]) == 3
    assert all(r == n for r, n in zip(res["returns"], res["lengths"], strict=True))
    frames = iio.imread(res["video"])  # GIF: [frames, H, W, C]
    # (the GIF writer merges consecutive identical frames into one longer frame)
    assert 1 < frames.shape[0] <= res["lengths"][0] + 1 and frames.shape[1:3] == (400, 600)
    # the first frame is gymnasium's frame of the episode's initial state
    import gymnasium

    import neurorl.envs  # noqa: F401

    ours = gymnasium.make("neurorl/CartPole-v1").unwrapped
    ours.reset(seed=5)
    theirs = gymnasium.make("CartPole-v1", render_mode="rgb_array").unwrapped
    theirs.reset(seed=5)
    theirs.state = np.asarray(ours._s, np.float64)
    np.testing.assert_array_equal(frames[0][..., :3], theirs.render())
    assert main(["eval", str(run_dir), "--episodes", "0"]) == 2


def test_eval_errors(tmp_path):
    with pytest.raises(ConfigError, match="RUN_DIR"):
        load_policy(tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(TINY))
    with pytest.raises(ConfigError, match="checkpoint"):
        load_policy(tmp_path)


@pytest.mark.slow
def test_rstdp_greedy_is_deterministic(tmp_path):
    cfg = {**TINY, "agent": {"name": "rstdp", "substeps": 2}, "training": {
        "steps": 200, "n_envs": 4, "chunk_steps": 200}}  # fmt: skip
    runner.run_experiment(from_dict(cfg), tmp_path / "r", progress=False)
    a = evaluate(tmp_path / "r", seed=1, episodes=2, greedy=True)
    pol = load_policy(tmp_path / "r", greedy=True, seed=9)  # another noise key: same actions
    env = pol.make_env()
    obs, _ = env.reset(seed=1)
    pol.reset()
    n, done = 0, False
    while not done:
        obs, _, te, tr, _ = env.step(pol.act(obs))
        n, done = n + 1, te or tr
    assert n == a["lengths"][0]


def _trained_weights(cfg, out):
    """Run ``cfg`` (one seed) into ``out``; the checkpoint's weights of that seed."""
    runner.run_experiment(cfg, out, progress=False)
    train = runner.build(cfg)
    template = jax.eval_shape(train.init, runner.member_keys(cfg.training.seed, 1))
    state, _ = load_checkpoint(out, template)
    return train.agent.weights(jax.tree.map(lambda x: x[0], state.agent_state))


@pytest.mark.parametrize("off_chip", [False, True])
def test_policy_of_a_chip_run_runs_on_the_chip(tmp_path, off_chip):
    """A run trained on Loihi 2 is evaluated on Loihi 2's network (the trainer's own
    make_chip_agent), not the float one; with off-chip learning the checkpoint holds float
    shadow weights and the policy acts with their deterministic projection onto the chip's
    grid, as training did (the backend's deterministic projection); on-chip learning's weights are
    on the grid already and are kept as they are."""
    over = {"hardware.chip": "loihi2", "hardware.off_chip_learning": off_chip,
            "training.n_seeds": 1, "training.steps": 200, "training.chunk_steps": 200}
    cfg = from_dict(TINY, over)
    out = tmp_path / "chip"
    stored = _trained_weights(cfg, out)
    pol = load_policy(out)
    hw = pol.agent.runtime.net.hardware
    assert hw.name == "loihi2"
    used = pol.agent.weights(pol.state)
    off_grid = 0
    for n, w in stored.items():
        step = hw.grid(n).step
        a = np.asarray(used[n]) / step
        assert np.allclose(a, np.round(a), atol=1e-3), n  # the policy's weights: on the grid
        s = np.asarray(w) / step
        want = np.asarray(hw.project_weights(w, n)) / step if off_chip else s
        np.testing.assert_allclose(a, want, atol=1e-3)
        off_grid += int(not np.allclose(s, np.round(s), atol=1e-3))
    assert (off_grid > 0) == off_chip  # shadow weights are float; on-chip ones on the grid
    _play(pol, 20)


def test_policy_of_a_run_with_its_own_network_uses_that_network(tmp_path):
    """A run of a user-written N-HAL network (experiments/custom_network.yaml: E/I groups of 48
    and 16) is evaluated with that network and its trained weights (the policy was built from
    the recipe's default network, whose state did not match the checkpoint)."""
    from pathlib import Path

    from neurorl.experiment.config import load_config

    path = Path(__file__).resolve().parents[2] / "experiments" / "custom_network.yaml"
    cfg = load_config(path, ["training.steps=200", "training.n_seeds=1", "training.n_envs=4",
                             "training.chunk_steps=200", "logging.wandb=disabled"])
    out = tmp_path / "custom"
    stored = _trained_weights(cfg, out)
    pol = load_policy(out)
    groups = pol.agent.runtime.net.groups
    assert groups["exc"].n == 48 and groups["inh"].n == 16
    used = pol.agent.weights(pol.state)
    assert set(used) == set(stored)
    for n in stored:
        np.testing.assert_array_equal(np.asarray(used[n]), np.asarray(stored[n]))
