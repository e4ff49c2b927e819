"""Checkpoints are atomic and round-trip PRNG keys; JSONL logs truncate on resume; wandb offline
run directories are real (wandb is not mocked)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.experiment.checkpoint import (
    atomic_write_bytes,
    has_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from neurorl.experiment.logging import JsonlWriter, RunLogger, read_jsonl

from .wandb_reader import summarize


def test_checkpoint_roundtrip_with_typed_and_raw_keys(tmp_path):
    state = {
        "w": jnp.arange(6.0).reshape(2, 3),
        "key": jax.random.key(3),
        "raw_key": jax.random.PRNGKey(4),
        "step": jnp.int32(7),
        "nested": (jnp.ones(2, jnp.bool_),),
    }
    save_checkpoint(tmp_path, state, {"env_steps": 10})
    assert has_checkpoint(tmp_path)
    loaded, meta = load_checkpoint(tmp_path, state)
    assert meta == {"env_steps": 10}
    assert json.loads((tmp_path / "checkpoint.json").read_text()) == {"env_steps": 10}
    np.testing.assert_array_equal(loaded["w"], state["w"])
    # the restored typed key draws the same numbers as the original
    np.testing.assert_array_equal(
        jax.random.uniform(loaded["key"], (3,)), jax.random.uniform(state["key"], (3,))
    )
    np.testing.assert_array_equal(loaded["raw_key"], state["raw_key"])
    assert loaded["nested"][0].dtype == jnp.bool_


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new-and-longer")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temp file left behind


def test_jsonl_truncate_to_checkpoint_position(tmp_path):
    w = JsonlWriter(tmp_path / "e.jsonl")
    w.write_many([{"i": i} for i in range(5)])
    assert w.count() == 5
    w.truncate_to(3)
    assert [r["i"] for r in read_jsonl(tmp_path / "e.jsonl")] == [0, 1, 2]


def test_wandb_offline_run_directory_has_expected_keys(tmp_path):
    members = [
        {
            "name": "eprop-s0",
            "job_type": "eprop",
            "config": {"agent": {"name": "eprop"}, "seed": 0},
        },
        {
            "name": "eprop-s1",
            "job_type": "eprop",
            "config": {"agent": {"name": "eprop"}, "seed": 1},
        },
    ]
    logger = RunLogger(tmp_path, members=members, group="test-exp", wandb_mode="offline")
    episodes = [
        {"member": m, "env_step": 10 * (i + 1), "return": float(i + m), "length": 10, "task_id": 0}
        for m in range(2)
        for i in range(3)
    ]
    logger.log(episodes, [{"member": 0, "env_step": 30, "steps_per_s": 100.0}])
    logger.log_task_switches([(20, 1)])
    logger.finish([{"final_return": 2.0}, {"final_return": 3.0}])
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 2
    seen = {}
    for run in runs:
        datastore = list(run.glob("run-*.wandb"))
        assert datastore and datastore[0].stat().st_size > 0
        config, summary, history, meta = summarize(datastore[0])
        seen[meta.display_name] = (config, summary, history, meta)
    assert set(seen) == {"eprop-s0", "eprop-s1"}
    config, summary, history, meta = seen["eprop-s1"]
    assert meta.run_group == "test-exp" and meta.job_type == "eprop"
    assert config["seed"] == 1 and config["agent"] == {"name": "eprop"}
    assert summary["final_return"] == 3.0
    returns = [(h["env_step"], h["episode/return"]) for h in history if "episode/return" in h]
    assert returns == [(10, 1.0), (20, 2.0), (30, 3.0)]
    assert any(h.get("task/switch") == 1 and h["env_step"] == 20 for h in history)
    assert len(read_jsonl(tmp_path / "episodes.jsonl")) == 6
