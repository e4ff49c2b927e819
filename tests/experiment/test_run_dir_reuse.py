"""``neurorl run --out DIR`` into a directory that already holds a run: refused (exit 2) with
what is there and the ways on, nothing touched; ``--overwrite`` replaces it (after every check
passed), keeping files that are not a run's."""

import json

import yaml

from neurorl.experiment import runner
from neurorl.experiment.cli import main
from neurorl.experiment.config import from_dict

from .tiny import tiny_config

TINY = tiny_config(steps=400, n_envs=4, n_seeds=1, chunk_steps=200, episode_window=5)


def _run(cfg_path, out, *extra):
    return main(["run", str(cfg_path), "--out", str(out), "--no-progress", *extra])


def _snapshot(d):
    return {p.name: p.read_bytes() for p in d.iterdir() if p.is_file() and p.name != ".lock"}


def test_interrupted_run_is_not_overwritten_and_still_resumes(tmp_path, capsys):
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    assert runner.run_experiment(from_dict(TINY), out, progress=False, wandb_mode="disabled",
                                 stop_after_chunks=1) == {"stopped_at": 200}
    before = _snapshot(out)
    capsys.readouterr()
    assert _run(cfg_path, out, "--set", "training.steps=200") == 2
    err = capsys.readouterr().err
    assert "--out" in err and "checkpoint at env step 200" in err
    assert f"neurorl resume {out}" in err and "--overwrite" in err
    assert "Traceback" not in err
    assert _snapshot(out) == before  # the checkpoint and the logs untouched
    assert main(["resume", str(out), "--no-progress"]) == 0
    assert json.loads((out / "summary.json").read_text())["status"] == "finished"


def test_finished_run_refused_then_replaced_with_overwrite(tmp_path, capsys):
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    assert _run(cfg_path, out) == 0
    (out / "notes.txt").write_text("mine")  # not a run's file: kept by --overwrite
    before = _snapshot(out)
    capsys.readouterr()
    assert _run(cfg_path, out, "--set", "training.steps=200") == 2
    err = capsys.readouterr().err
    assert "finished run" in err and "--overwrite" in err
    assert _snapshot(out) == before
    # --overwrite with a config that fails its checks: refused before anything is removed
    assert _run(cfg_path, out, "--overwrite", "--set", "agent.hyper.n_recc=4") == 2
    assert _snapshot(out) == before
    assert _run(cfg_path, out, "--overwrite", "--set", "training.steps=200") == 0
    assert "--overwrite: removed the earlier run's" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert yaml.safe_load((out / "config.yaml").read_text())["training"]["steps"] == 200
    assert max(json.loads(line)["env_step"]
               for line in (out / "episodes.jsonl").read_text().splitlines()) <= 200
    assert (out / "notes.txt").read_text() == "mine"


def test_directories_without_a_run_are_used(tmp_path):
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump({**TINY, "training": {**TINY["training"],
                                                             "steps": 200}}))
    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.csv").write_text("1,2\n")
    assert runner.existing_run_error(tmp_path / "absent") is None
    assert runner.existing_run_error(empty) is None
    assert runner.existing_run_error(other) is None
    assert _run(cfg_path, empty) == 0
    assert _run(cfg_path, other) == 0
    assert (other / "data.csv").read_text() == "1,2\n"
    # a directory with only a run's leftovers (no checkpoint, no summary) is still a run's
    leftovers = tmp_path / "left"
    leftovers.mkdir()
    (leftovers / "episodes.jsonl").write_text("")
    e = runner.existing_run_error(leftovers)
    assert e is not None and "episodes.jsonl" in str(e)
