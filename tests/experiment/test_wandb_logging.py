"""wandb as its users read it: task switches when they happen, flat summary metrics, plots as
images, and offline runs that stay exactly consistent with the JSONL logs across SIGKILL and
``neurorl resume`` (same run ids, every row once). wandb is real; its offline datastores are read
with tests/experiment/wandb_reader.py."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from neurorl.experiment import runner
from neurorl.experiment.cli import main
from neurorl.experiment.config import from_dict
from neurorl.experiment.logging import flat_summary, history_rows, read_jsonl

from .wandb_reader import summarize

SHIFT_AT = (300, 500)  # one boundary inside chunk 2 (200..400), one inside chunk 3 (400..600)
TINY = {
    "name": "tinyw",
    "env": {"id": "CartPole-v1"},
    "agent": {"name": "eprop_ac", "substeps": 2, "hyper": {"n_rec": 8, "n_rf": 3}},
    "shifts": {
        "params": [
            {
                "field": "length",
                "schedule": {"kind": "abrupt", "values": [0.5, 1.0, 0.5], "steps": list(SHIFT_AT)},
            }
        ]
    },
    "training": {"steps": 800, "n_envs": 4, "n_seeds": 2, "chunk_steps": 200, "episode_window": 5},
    "logging": {"wandb": "offline", "progress": False},
}


def offline_runs(run_dir: Path) -> dict[str, tuple]:
    """run id -> (config, summary, history, run record) of every offline run wandb would sync."""
    out = {}
    for d in sorted((run_dir / "wandb").glob("offline-run-*")):
        (store,) = d.glob("run-*.wandb")
        out[d.name.rsplit("-", 1)[1]] = summarize(store)
    return out


def check_rows_match_jsonl(run_dir: Path, n_members: int) -> dict[str, tuple]:
    """Each member's wandb history is exactly its JSONL records (plus switch and plot rows), each
    once, on wandb steps 0, 1, 2, ... with env_step never going back."""
    runs = offline_runs(run_dir)
    assert len(runs) == n_members  # one directory per run id: nothing duplicated on `wandb sync`
    members = json.loads((run_dir / "members.json").read_text())
    episodes = read_jsonl(run_dir / "episodes.jsonl")
    chunks = read_jsonl(run_dir / "chunks.jsonl")
    by_name = {r[3].display_name: r for r in runs.values()}
    for m, desc in enumerate(members):
        _, _, history, _ = by_name[desc["name"]]
        assert [h["_step"] for h in history] == list(range(len(history)))
        steps = [h["env_step"] for h in history]
        assert steps == sorted(steps)
        got_eps = [
            (h["env_step"], h["episode/return"], h["episode/length"])
            for h in history
            if "episode/return" in h
        ]
        want_eps = [(e["env_step"], e["return"], e["length"]) for e in episodes if e["member"] == m]
        assert got_eps == want_eps
        got_chunks = [
            (h["env_step"], h["chunk/weight_norm"]) for h in history if "chunk/weight_norm" in h
        ]
        want_chunks = [(c["env_step"], c["weight_norm"]) for c in chunks if c["member"] == m]
        assert got_chunks == want_chunks
        switches = [(h["env_step"], h["task/id"]) for h in history if "task/switch" in h]
        assert switches == [(b, i + 1) for i, b in enumerate(SHIFT_AT)]
    return runs


def test_history_rows_order_is_the_same_live_and_replayed():
    eps = [{"env_step": s, "return": float(s)} for s in (100, 200, 200, 300, 400)]
    chunks = [{"env_step": 200, "weight_norm": 1.0}, {"env_step": 400, "weight_norm": 2.0}]
    switches = [(200, 1), (250, 2)]
    replayed = history_rows(eps, chunks, switches)
    live = history_rows(eps[:3], chunks[:1], []) + history_rows(eps[3:], chunks[1:], switches)
    assert replayed == live
    kinds = [next(k.split("/")[0] for k in r if k != "env_step") for r in replayed]
    # a switch at a chunk's end comes after that chunk's rows, an episode ending at a switch
    # step before it
    assert kinds == ["episode"] * 3 + ["chunk", "task", "task", "episode", "episode", "chunk"]


def test_flat_summary_has_no_nested_values():
    member = {
        "final_return": 20.0,
        "energy_per_step_j": 1e-9,
        "adaptation": [
            {"shift_step": 300, "steps": 40, "episodes": 2, "energy_j": None, "censored": False},
            {"shift_step": 500, "steps": None, "episodes": None, "censored": True},
        ],
        "tasks": {"visits": [{"task": 0, "end_return": 9.0}], "forgetting_on_return": {"0": 3.0}},
    }
    flat = flat_summary(member)
    assert not any(isinstance(v, (dict, list)) for v in flat.values())
    assert flat["adaptation/0/steps"] == 40 and "adaptation/1/steps" not in flat
    assert flat["adaptation/mean_steps"] == 40.0 and flat["adaptation/censored_shifts"] == 1
    assert flat["tasks/forgetting_on_return/0"] == 3.0 and flat["forgetting_on_return/mean"] == 3.0
    assert flat["tasks/visits/0/end_return"] == 9.0 and flat["energy_per_step_j"] == 1e-9


def test_switches_flat_summary_and_plots_in_the_offline_run(tmp_path):
    cfg = from_dict(TINY)
    summary = runner.run_experiment(cfg, tmp_path, progress=False)
    runs = offline_runs(tmp_path)
    assert len(runs) == 2
    for _, wsummary, history, meta in runs.values():
        # the switches sit where they happened, between the rows before and after them
        steps = [h["env_step"] for h in history]
        assert steps == sorted(steps)
        at = [i for i, h in enumerate(history) if "task/switch" in h]
        assert [history[i]["env_step"] for i in at] == [300, 500]
        for i, b in zip(at, (300, 500), strict=True):
            assert all(h["env_step"] <= b for h in history[:i])
            assert all(h["env_step"] >= b for h in history[i + 1 :])
        # flat summary metrics (adaptation per shift, energy, final return): nothing nested
        user = {k: v for k, v in wsummary.items() if not k.startswith("_") and "/" in k}
        assert not any(isinstance(v, (dict, list)) for v in user.values())
        mine = next(m for m in summary["members"] if m["name"] == meta.display_name)
        assert mine["adaptation"][0]["shift_step"] == 300
        flat = flat_summary(mine)
        assert "adaptation/0/shift_step" in flat and "final_return" in flat
        for k, v in flat.items():
            assert wsummary[k] == (pytest.approx(v) if isinstance(v, float) else v), k
        # the report's plots as wandb images, their files in the run
        images = {k.split("/")[1] for k in wsummary if k.startswith("plots/")}
        assert {"lifelong"} <= images  # compare.png only with two labels or more (issue 19)
        assert wsummary["plots/lifelong/_type"] == "image-file"
    media = list((tmp_path / "wandb").glob("offline-run-*/files/media/images/plots/*.png"))
    assert len(media) >= 4


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from neurorl.experiment import runner
    from neurorl.experiment.cli import main

    real, calls = runner.save_checkpoint, [0]

    def save(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(sys.argv[1]):  # a chunk logged (JSONL and wandb), not checkpointed
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    runner.save_checkpoint = save
    main(sys.argv[2:] + ["--no-progress"])
    """
)


def killed(at_save: int, *argv: str, cache: Path) -> None:
    """Run ``neurorl ARGV`` in a fresh process, SIGKILLed when it is about to write its
    ``at_save``-th checkpoint (after that chunk's records were logged). The processes share a
    JAX compilation cache so only the first one compiles."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "WANDB_SILENT": "true"}
    env["JAX_COMPILATION_CACHE_DIR"] = str(cache)
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env.pop("WANDB_MODE", None)  # the config's mode (offline) applies
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(at_save), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def run_ids(run_dir: Path) -> set[str]:
    return {d.name.rsplit("-", 1)[1] for d in (run_dir / "wandb").glob("offline-run-*")}


@pytest.mark.slow
def test_offline_runs_are_exactly_the_logs_after_sigkills_and_resumes(tmp_path):
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(TINY))
    run_dir, cache = tmp_path / "run", tmp_path / "jax-cache"
    # killed before its first checkpoint: the resume starts over, and the killed attempt's wandb
    # runs must not be synced beside the new ones
    killed(1, "run", str(cfg_path), "--out", str(run_dir), cache=cache)
    first = run_ids(run_dir)
    assert len(first) == 2
    # that resume is killed with chunk 3 (and the switch at 500) logged past checkpoint 2
    killed(3, "resume", str(run_dir), cache=cache)
    ids = run_ids(run_dir)
    assert len(ids) == 2 and not ids & first
    assert len(read_jsonl(run_dir / "chunks.jsonl")) == 6
    # the next resume is killed too, with chunk 4 logged past checkpoint 3
    killed(2, "resume", str(run_dir), cache=cache)
    assert run_ids(run_dir) == ids and len(read_jsonl(run_dir / "chunks.jsonl")) == 8
    assert main(["resume", str(run_dir), "--no-progress"]) == 0
    runs = check_rows_match_jsonl(run_dir, n_members=2)
    assert set(runs) == ids  # the same wandb run ids continued, one directory each
    assert not (run_dir / "wandb" / "superseded").exists()
    assert len(read_jsonl(run_dir / "chunks.jsonl")) == 8  # 4 chunks x 2 members, once each
