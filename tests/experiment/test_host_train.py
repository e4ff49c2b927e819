"""``env: {id: gymnasium:<Id>}``: the host loop drives the jitted agent with the jitted runner's
logs, checkpoints, resume and summary; host-side shifts; clear errors for what cannot run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from neurorl.errors import ConfigError
from neurorl.experiment import runner
from neurorl.experiment.cli import main
from neurorl.experiment.config import from_dict
from neurorl.experiment.host_train import build_host
from neurorl.experiment.logging import read_jsonl

HOST = {
    "name": "host",
    "env": {"id": "gymnasium:CartPole-v1"},
    "agent": {
        "name": "eprop_ac",
        "substeps": 2,
        "obs_range": [2.4, 3.0, 0.21, 3.0],
        "hyper": {"n_rec": 8, "n_rf": 3},
    },
    "training": {"steps": 192, "n_envs": 4, "n_seeds": 2, "chunk_steps": 64, "episode_window": 5},
    "logging": {"wandb": "disabled", "progress": False},
}


def _cfg(**over):
    return from_dict(HOST, over)


@pytest.mark.slow
def test_host_run_writes_the_same_run_directory_as_the_jitted_runner(tmp_path):
    p = tmp_path / "host.yaml"
    p.write_text(yaml.safe_dump(HOST))
    out = tmp_path / "run"
    assert main(["validate", str(p)]) == 0
    assert main(["run", str(p), "--out", str(out), "--no-progress", "--wandb", "disabled"]) == 0
    for name in ("config.yaml", "episodes.jsonl", "chunks.jsonl", "summary.json", "report.md"):
        assert (out / name).exists(), name
    eps = read_jsonl(out / "episodes.jsonl")
    assert {e["member"] for e in eps} == {0, 1} and {e["env"] for e in eps} <= {0, 1, 2, 3}
    # CartPole: +1 per step, so every finished episode's return is its length
    assert eps and all(e["return"] == e["length"] >= 1 for e in eps)
    assert all(0 < e["env_step"] <= 192 and e["env_step"] % 4 == 0 for e in eps)
    chunks = read_jsonl(out / "chunks.jsonl")
    assert [c["env_step"] for c in chunks if c["member"] == 0] == [64, 128, 192]
    assert all(c["spikes_per_step"] > 0 and c["weight_norm"] > 0 for c in chunks)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env"] == "gymnasium:CartPole-v1"
    assert [m["episodes"] for m in summary["members"]] == [
        sum(e["member"] == m for e in eps) for m in (0, 1)
    ]


@pytest.mark.slow
def test_host_episode_lengths_are_gymnasiums(tmp_path):
    """Episode bookkeeping against an independent count: with n_envs=1 the steps between two
    finished episodes of one member are exactly the later episode's length."""
    cfg = _cfg(**{"training.n_envs": 1, "training.n_seeds": 1, "training.steps": 150,
                  "training.chunk_steps": 50})  # fmt: skip
    runner.run_experiment(cfg, tmp_path / "r", progress=False)
    eps = read_jsonl(tmp_path / "r" / "episodes.jsonl")
    steps = [0] + [e["env_step"] for e in eps]
    assert [b - a for a, b in zip(steps, steps[1:], strict=False)] == [e["length"] for e in eps]


def _records(run_dir):
    """Every record of a run but its wall-clock speed."""
    return {
        f: [{k: v for k, v in r.items() if k != "steps_per_s"} for r in read_jsonl(run_dir / f)]
        for f in ("episodes.jsonl", "chunks.jsonl")
    }


@pytest.mark.slow
@pytest.mark.parametrize("env", ["gymnasium:CartPole-v1", "gymnasium:FrozenLake-v1"])
def test_host_kill_and_resume_equals_the_uninterrupted_run(tmp_path, env):
    """The envs' episodes and RNG streams continue through the checkpoint (a JSON snapshot of
    the envs, no pickle): a killed and resumed run logs exactly the uninterrupted run's records.
    (Before, a resume re-seeded the envs and restarted their episodes.)"""
    over = {"env.id": env}
    if "FrozenLake" in env:  # slippery: the env's own RNG decides every move
        over.update({"agent.obs_range": None, "training.steps": 256})
    cfg = _cfg(**over)
    whole = runner.run_experiment(cfg, tmp_path / "whole", progress=False)
    out = tmp_path / "r"
    assert runner.run_experiment(cfg, out, progress=False, stop_after_chunks=1) == {
        "stopped_at": 64
    }
    meta = json.loads((out / "checkpoint.json").read_text())
    assert meta["host"]["envs"]["exact"] and meta["host"]["t"] == 16
    assert not (out / "checkpoint.pkl").exists()
    summary = runner.run_experiment(cfg, out, progress=False, resume=True)
    got, want = _records(out), _records(tmp_path / "whole")
    assert len(want["episodes.jsonl"]) > 4
    assert got == want
    assert summary["members"] == whole["members"]


def test_env_snapshot_restores_state_and_rng_of_fresh_envs():
    """EnvSnapshots against gymnasium itself: a fresh vector env restored from a snapshot steps
    exactly as the original from there on; static tables stay out of the snapshot."""
    from neurorl.experiment.host_train import EnvSnapshots, make_vector_env

    cfg = from_dict(HOST, {"env.id": "gymnasium:FrozenLake-v1", "agent.obs_range": None})
    a, b = make_vector_env(cfg, 3), make_vector_env(cfg, 3)
    snaps_a = EnvSnapshots(a)
    a.reset(seed=[4, 5, 6])
    rng = np.random.default_rng(0)
    for _ in range(7):
        a.step(rng.integers(0, 4, 3))
    snap = json.loads(json.dumps(snaps_a.snapshot(), allow_nan=False))  # strict JSON
    assert snap["exact"]
    assert all("P" not in layer for layer in snap["layers"])  # unchanged since construction
    EnvSnapshots(b).restore(snap)
    acts = rng.integers(0, 4, (40, 3))
    got_a = [a.step(x)[:4] for x in acts]
    got_b = [b.step(x)[:4] for x in acts]
    for x, y in zip(got_a, got_b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)
    # the test can fail: a fresh env reset with the same seeds, without the snapshot, differs
    c = make_vector_env(cfg, 3)
    c.reset(seed=[4, 5, 6])
    got_c = [c.step(x)[0] for x in acts]
    assert any(not np.array_equal(x[0], y) for x, y in zip(got_a, got_c, strict=True))
    assert EnvSnapshots(make_vector_env(cfg, 3)).fits(snap)
    assert not EnvSnapshots(make_vector_env(cfg, 2)).fits(snap)


@pytest.mark.slow
def test_host_run_holds_the_run_directory_lock(tmp_path, capsys):
    from neurorl.errors import RunLockedError

    out = tmp_path / "r"
    out.mkdir()
    with runner._RunLock(out), pytest.raises(RunLockedError, match="in use"):
        runner.run_experiment(_cfg(), out, progress=False)
    assert not (out / "episodes.jsonl").exists()


def _strict_load(path):
    return json.loads(path.read_text(), parse_constant=lambda x: pytest.fail(f"bare {x}"))


@pytest.mark.slow
def test_host_run_stops_on_non_finite_with_strict_json(tmp_path):
    from neurorl.errors import NonFiniteError

    cfg = _cfg(**{"agent.hyper": {"n_rec": 8, "n_rf": 3, "in_gain": 3e38},
                  "training.n_seeds": 1})
    out = tmp_path / "r"
    with pytest.raises(NonFiniteError, match="non-finite"):
        runner.run_experiment(cfg, out, progress=False)
    summary = _strict_load(out / "summary.json")
    assert summary["status"] == "non_finite" and summary["fault"]["env_step"] <= 192
    for line in (out / "episodes.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda x: pytest.fail(f"bare {x} in episodes.jsonl"))


@pytest.mark.slow
def test_host_reward_shift_and_attribute_shift(tmp_path):
    cfg = _cfg(
        **{
            "training.n_seeds": 1,
            "shifts": {
                "reward": [{"kind": "scale", "factor": 2.0, "start": 96}],
                "params": [
                    {
                        "field": "force_mag",
                        "mode": "scale",
                        "schedule": {"kind": "abrupt", "values": [1.0, 1.5], "steps": [96]},
                    }
                ],
            },
        }
    )
    tr = build_host(cfg)
    vals = tr.shifts.values_for(0, 48, __import__("jax").random.key(0))
    assert vals[23]["force_mag"] == pytest.approx(10.0) and vals[24]["force_mag"] == 15.0
    runner.run_experiment(cfg, tmp_path / "r", progress=False)
    eps = read_jsonl(tmp_path / "r" / "episodes.jsonl")
    # episodes that started after the reward shift (step 96) pay 2 per step
    late = [e for e in eps if e["env_step"] - 4 * e["length"] >= 96]
    early = [e for e in eps if e["env_step"] <= 96]
    assert late and early
    assert all(e["return"] == 2 * e["length"] for e in late)
    assert all(e["return"] == e["length"] for e in early)


def test_host_errors_are_clear():
    with pytest.raises(ConfigError, match="gymnasium:CartPole-v1"):
        from_dict(HOST, {"env.id": "gymnasium:CartPol-v1"})
    with pytest.raises(ConfigError, match="agent.obs_range"):
        build_host(from_dict(HOST, {"agent.obs_range": None}))
    with pytest.raises(ConfigError, match="force_mag"):
        build_host(_cfg(**{"shifts": {"params": [{"field": "force_mgn", "schedule": 1.0}]}}))
    with pytest.raises(ConfigError, match="env.params"):
        build_host(_cfg(**{"env.params": {"not_a_kwarg": 1.0}}))


@pytest.mark.slow
def test_toy_text_env_one_hot_observations(tmp_path):
    cfg = from_dict(
        {
            **HOST,
            "env": {"id": "gymnasium:FrozenLake-v1", "params": {"is_slippery": 0}},
            "agent": {"name": "eprop_ac", "substeps": 2, "hyper": {"n_rec": 8}},
        }
    )
    tr = build_host(cfg)
    assert tr.bridge.obs_dim == 16 and tr.agent.spec.obs_low == (0.0,) * 16
    runner.run_experiment(cfg, tmp_path / "r", progress=False)
    eps = read_jsonl(tmp_path / "r" / "episodes.jsonl")
    assert eps and all(e["return"] in (0.0, 1.0) for e in eps)
    assert np.all([e["length"] >= 6 or e["return"] == 0.0 for e in eps])  # 6 steps to the goal


# ---------------------------------------------------------------------------- chips
CHIP = {"hardware.chip": "loihi2", "agent.hyper": {"n_rec": 8, "n_rf": 3, "lr": 1e-3}}


def _on_grid(w, grid):
    a = np.asarray(w) / grid.step
    return np.allclose(a, np.round(a), atol=1e-3)


def _both(**over):
    """The same agent on the same chip, built for the jitted trainer (the JAX CartPole-v1) and
    for the host loop (gymnasium's CartPole-v1), with the same member keys."""
    import jax
    import jax.numpy as jnp

    jit = runner.build(_cfg(**{"env.id": "CartPole-v1", **CHIP, **over}))
    host = build_host(_cfg(**{**CHIP, **over}))
    keys = jax.vmap(jax.random.key)(jnp.arange(2))
    return jit, host, jit.init(keys), host.init(keys)


@pytest.mark.slow
def test_host_chip_is_the_jitted_trainers_chip():
    """Reference: the host loop holds the agent to the chip exactly as make_train does. The two
    loops draw their env and action randomness differently (JAX env keys vs gymnasium's
    np_random; one jitted call per env step), so their trajectories differ and no run of either
    -- float or chip -- reproduces the other's returns; what is shared is checked exactly: the
    compiled network (grids per connection), the chip-programmed initial weights from the same
    keys (stochastic rounding / the learning engine's programming), the per-step metrics
    (learning_ops of the engine), the energy model, and after training every weight on the grid
    with the engine's operation count moving the same way."""
    import jax

    from neurorl.experiment.runner import network_energy_fn

    jit, host, rj, rh = _both()
    hw_j, hw_h = jit.agent.runtime.net.hardware, host.agent.runtime.net.hardware
    one = lambda tr, rs: tr.agent.weights(jax.tree.map(lambda x: x[1], rs.agent_state))  # noqa: E731
    w_j, w_h = one(jit, rj), one(host, rh)
    assert set(w_j) == set(w_h)
    for n in w_j:
        assert hw_j.grid(n) == hw_h.grid(n), n
        np.testing.assert_array_equal(np.asarray(w_j[n]), np.asarray(w_h[n]), err_msg=n)
        assert _on_grid(w_h[n], hw_h.grid(n)), n
    # the engine's state: the same structure, the same initial values
    assert jax.tree.structure(rj.engine) == jax.tree.structure(rh.engine)
    for a, b in zip(jax.tree.leaves(rj.engine), jax.tree.leaves(rh.engine), strict=True):
        if not jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    ej, eh = network_energy_fn(jit, 2), network_energy_fn(host, 2)
    assert ej(123.0).total == eh(123.0).total > 0
    rj, mj = jit.run_chunk(rj, 64)
    rh, mh = host.run_chunk(rh, 64)
    assert set(mh) == set(mj) - {"reward"} and "learning_ops" in mh
    assert np.shape(mh["learning_ops"]) == np.shape(mj["learning_ops"]) == (16, 2)
    assert np.all(np.diff(np.asarray(mh["learning_ops"]), axis=0) >= 0)
    assert np.asarray(mh["learning_ops"])[-1].min() > 0
    for tr, rs, w0 in ((jit, rj, w_j), (host, rh, w_h)):
        w1 = one(tr, rs)
        for n in w1:
            assert _on_grid(w1[n], hw_h.grid(n)), n
        assert any(not np.array_equal(w0[n], w1[n]) for n in w1), "learning moved the weights"


@pytest.mark.slow
def test_host_weights_lie_on_the_chip_grid():
    """After host-loop training on Loihi 2 every weight is a multiple of its connection's grid
    step (8-bit signed); the float host run, from the same keys, leaves the grid (so this
    fails if the chip is not applied). Off-chip learning keeps float shadow weights in the state
    but acts with their projection."""
    import jax
    import jax.numpy as jnp

    keys = jax.vmap(jax.random.key)(jnp.arange(2))
    hw = None
    for over, want in (({}, True), ({"hardware.off_chip_learning": True}, False),
                       ({"hardware.chip": "float"}, False)):
        tr = build_host(_cfg(**{**CHIP, **over}))
        hw = hw or tr.agent.runtime.net.hardware  # the first: the on-chip Loihi 2 network
        rs, _ = tr.run_chunk(tr.init(keys), 128)
        w = tr.agent.weights(jax.tree.map(lambda x: x[0], rs.agent_state))
        for n in w:
            assert np.unique(np.asarray(w[n])).size <= 255 or not want
            assert _on_grid(w[n], hw.grid(n)) == want, (over, n)


@pytest.mark.slow
def test_host_chip_run_logs_energy_and_resumes_exactly(tmp_path):
    """A host run on a chip logs the energy per env step as a jitted run does, and its engine
    state goes through the checkpoint: kill and resume equals the uninterrupted run."""
    cfg = _cfg(**CHIP)
    whole = runner.run_experiment(cfg, tmp_path / "whole", progress=False)
    chunks = read_jsonl(tmp_path / "whole" / "chunks.jsonl")
    assert chunks and all(c["energy_per_step_j"] > 0 for c in chunks)
    assert whole["energy_model"]["chip"] == "loihi2"
    out = tmp_path / "r"
    runner.run_experiment(cfg, out, progress=False, stop_after_chunks=1)
    runner.run_experiment(cfg, out, progress=False, resume=True)
    assert _records(out) == _records(tmp_path / "whole")


def test_host_chip_errors_are_clear():
    from neurorl.errors import UnsupportedOnChipError

    # as in the jitted trainer: e-prop cannot learn on TrueNorth
    with pytest.raises(UnsupportedOnChipError, match="truenorth"):
        build_host(_cfg(**{"hardware.chip": "truenorth"}))
    # engine scales calibrated by a float run of the jitted trainer: not for a Gymnasium env
    with pytest.raises(ConfigError, match="hardware.engine.*auto"):
        build_host(_cfg(**{**CHIP, "hardware.engine": {"trace_scale": "auto"}}))
    # the chip's fields are checked and named by their YAML path
    with pytest.raises(ConfigError, match="hardware.device"):
        build_host(_cfg(**{**CHIP, "hardware.device": {"update": "mixed_precision"}}))
