"""`neurorl resume` of a run a numeric fault stopped *after* a checkpoint: an unchanged resume
would replay the same steps (same config, same PRNG keys, same chunk boundaries) into the same
fault, so it is refused (exit 3) with where and why the run stopped; `--set` changes what caused
it and goes on from the checkpoint's weights, recorded in summary.json's config_changes.

The fault is real: R-STDP with lr 0.05 on a tiny CartPole network pins 27 % of its weights at
the clip bound by env step 512 (limit training.max_saturation = 0.25), after the first chunk
(env step 256) was good and checkpointed. Nothing of neurorl is mocked.
"""

import json
import shutil

import pytest
import yaml

from neurorl import errors as E
from neurorl.experiment import runner
from neurorl.experiment.checkpoint import CHECKPOINT_NAME, checkpoint_meta
from neurorl.experiment.cli import main
from neurorl.experiment.config import from_dict
from neurorl.experiment.logging import read_jsonl

pytestmark = pytest.mark.slow  # real tiny runs (one compile per config)

CFG = {
    "name": "tiny",
    "env": {"id": "CartPole-v1"},
    "agent": {"name": "rstdp", "substeps": 2, "hyper": {"n_rf": 3, "pop": 2, "lr": 0.05}},
    "training": {"steps": 1024, "n_envs": 8, "chunk_steps": 256, "episode_window": 5},
    "logging": {"wandb": "disabled", "progress": False},
}


@pytest.fixture(scope="module")
def faulted(tmp_path_factory):
    d = tmp_path_factory.mktemp("faulted")
    p = d / "cfg.yaml"
    p.write_text(yaml.safe_dump(CFG))
    out = d / "run"
    assert main(["run", str(p), "--out", str(out), "--no-progress", "--wandb", "disabled"]) == 3
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "non_finite"
    assert s["fault"]["checkpoint_env_step"] == 256 and s["fault"]["env_step"] == 512
    assert s["fault"]["quantity"].startswith("saturated weights")
    return out


@pytest.fixture
def run(faulted, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(faulted, d)
    return d


def _files(d):
    return {p.name: p.read_bytes() for p in d.iterdir() if p.is_file() and p.name != ".lock"}


def test_unchanged_resume_refuses_with_where_why_and_how(run, capsys):
    before = _files(run)
    fault = json.loads((run / "summary.json").read_text())["fault"]
    capsys.readouterr()
    rc = main(["resume", str(run), "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == E.EXIT_NON_FINITE == 3
    line = err.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in err and "already finished" not in out
    assert "stopped at env step 512 (member 0) because of saturated weights" in line
    assert "its last checkpoint is at env step 256" in line
    assert "replays into the same fault" in line
    assert fault["likely_cause"] in line  # the hint the run recorded (the learning rate)
    assert f"neurorl resume {run} --set agent.hyper.lr=0.005" in line  # a tenth of the run's
    assert "--force" in line
    assert _files(run) == before  # nothing rewritten, no log truncated
    with pytest.raises(E.RunStoppedError, match="replays into the same fault"):
        runner.run_experiment(from_dict(CFG), run, progress=False, wandb_mode="disabled",
                              resume=True)


def test_force_replays_the_same_fault(run, capsys):
    # what the refusal claims: the same config from the same checkpoint faults at the same step
    first = json.loads((run / "summary.json").read_text())["fault"]
    assert main(["resume", str(run), "--no-progress", "--force"]) == 3
    again = json.loads((run / "summary.json").read_text())
    assert again["fault"]["env_step"] == first["env_step"] == 512
    assert again["fault"]["quantity"] == first["quantity"]
    assert again["config_changes"][-1]["forced"] is True
    assert again["config_changes"][-1]["set"] == {}
    # and it is refused again without --force
    assert main(["resume", str(run), "--no-progress"]) == 3


def test_resume_with_a_smaller_lr_goes_on_from_the_checkpoint(faulted, run, capsys):
    head = [e for e in read_jsonl(faulted / "episodes.jsonl")]
    capsys.readouterr()
    assert main(["resume", str(run), "--no-progress", "--set", "agent.hyper.lr=3e-4"]) == 0
    out = capsys.readouterr().out
    assert "resuming" in out and "from env step 256 with agent.hyper.lr: 0.05 -> 0.0003" in out
    s = json.loads((run / "summary.json").read_text())
    assert s["status"] == "finished" and "fault" not in s
    (change,) = s["config_changes"]
    assert change["env_step"] == 256 and change["chunk"] == 1 and change["forced"] is False
    assert change["set"] == {"agent.hyper.lr": {"from": 0.05, "to": 0.0003}}
    assert change["after_fault"]["env_step"] == 512
    assert change["after_fault"]["quantity"].startswith("saturated weights")
    assert yaml.safe_load((run / "config.yaml").read_text())["agent"]["hyper"]["lr"] == 3e-4
    meta = checkpoint_meta(run)
    assert meta["env_steps"] == 1024
    assert meta["config_sha256"] == runner.config_fingerprint(from_dict(CFG, {
        "agent.hyper.lr": 3e-4}))
    eps = read_jsonl(run / "episodes.jsonl")
    # the checkpoint's part is kept as it was, the rest is new (past the old fault at 512)
    assert [e for e in eps if e["env_step"] <= 256] == head
    assert max(e["env_step"] for e in eps) > 512
    report = (run / "report.md").read_text()
    assert "resumed at env step 256 after a numeric fault with agent.hyper.lr: 0.05 -> 0.0003" \
        in report
    # a finished run: resume has nothing to do, and nothing to change
    assert main(["resume", str(run), "--no-progress"]) == 0
    assert main(["resume", str(run), "--no-progress", "--set", "agent.hyper.lr=1e-4"]) == 2


def test_a_changed_resume_that_is_interrupted_resumes_plainly(run, capsys):
    new = from_dict(CFG, {"agent.hyper.lr": 3e-4})
    stopped = runner.run_experiment(new, run, progress=False, wandb_mode="disabled",
                                    resume=True, previous=from_dict(CFG), stop_after_chunks=2)
    assert stopped == {"stopped_at": 512}
    # summary.json still holds the old fault, but the checkpoint went on under the change:
    # a plain resume (e.g. after Ctrl-C) is no replay and goes on
    assert json.loads((run / "summary.json").read_text())["status"] == "non_finite"
    assert runner.faulted_checkpoint_error(run) is None
    assert main(["resume", str(run), "--no-progress"]) == 0
    s = json.loads((run / "summary.json").read_text())
    assert s["status"] == "finished" and len(s["config_changes"]) == 1


def test_bad_changes_are_one_clear_line_and_touch_nothing(run, capsys):
    before = _files(run)
    cases = [
        ("training.steps=5", "--set training.steps: got 5; allowed: on resume only agent.hyper"),
        ("agent.hyper.lr=-1", "agent.hyper.lr"),
        ("agent.hyper.lrr=1e-4", "Did you mean 'lr'"),
        ("env.id=Acrobot-v1", "--set env.id"),
        # changes the shapes of the state the checkpoint holds
        ("agent.hyper.pop=3", "changes the shape of the state"),
        # only sets the initial weights, which the checkpoint replaces
        ("agent.hyper.w_init=0.3", "only sets the initial state"),
    ]
    for item, match in cases:
        capsys.readouterr()
        assert main(["resume", str(run), "--no-progress", "--set", item]) == 2, item
        err = capsys.readouterr().err
        assert match in err and len(err.strip().splitlines()) == 1, (item, err)
        assert _files(run) == before, item
    # an override equal to the run's value changes nothing: still refused as a replay
    assert main(["resume", str(run), "--no-progress", "--set", "agent.hyper.lr=0.05"]) == 3


def test_summary_without_the_config_fingerprint_still_refuses_and_resumes(run, capsys):
    # a summary.json written before fault.config_sha256 existed (older neurorl)
    s = json.loads((run / "summary.json").read_text())
    del s["fault"]["config_sha256"]
    (run / "summary.json").write_text(json.dumps(s))
    assert isinstance(runner.faulted_checkpoint_error(run), E.RunStoppedError)
    assert main(["resume", str(run), "--no-progress"]) == 3
    assert (run / CHECKPOINT_NAME).exists()
    assert main(["resume", str(run), "--no-progress", "--set", "agent.hyper.lr=3e-4"]) == 0
    assert json.loads((run / "summary.json").read_text())["status"] == "finished"


class _Killed(BaseException):
    """A kill between two writes (BaseException: nothing in the runner catches it)."""


def _resume_killed_at_config_yaml(run, monkeypatch):
    """``neurorl resume RUN --set agent.hyper.lr=3e-4``, killed when it writes config.yaml."""
    real = runner.atomic_write_text

    def write(path, text, *a, **kw):
        if str(path).endswith("config.yaml"):
            raise _Killed(path)
        return real(path, text, *a, **kw)

    monkeypatch.setattr(runner, "atomic_write_text", write)
    with pytest.raises(_Killed):
        main(["resume", str(run), "--no-progress", "--set", "agent.hyper.lr=3e-4"])
    monkeypatch.undo()


def test_a_kill_between_the_restamp_and_config_yaml_is_completed_by_the_next_resume(
        run, capsys, monkeypatch):
    # the changed resume re-stamps the checkpoint first; a kill before config.yaml is rewritten
    # leaves the old config.yaml beside a checkpoint of the new config
    _resume_killed_at_config_yaml(run, monkeypatch)
    assert yaml.safe_load((run / "config.yaml").read_text())["agent"]["hyper"]["lr"] == 0.05
    new = from_dict(CFG, {"agent.hyper.lr": 3e-4})
    assert checkpoint_meta(run)["config_sha256"] == runner.config_fingerprint(new)
    assert runner.load_run_config(run) == new
    capsys.readouterr()
    assert main(["resume", str(run), "--no-progress"]) == 0
    assert "completing the change" in capsys.readouterr().out
    s = json.loads((run / "summary.json").read_text())
    assert s["status"] == "finished" and len(s["config_changes"]) == 1
    assert s["config_changes"][0]["set"] == {"agent.hyper.lr": {"from": 0.05, "to": 0.0003}}
    assert yaml.safe_load((run / "config.yaml").read_text())["agent"]["hyper"]["lr"] == 3e-4


def test_a_hand_edited_config_beside_an_interrupted_change_is_still_refused(
        run, capsys, monkeypatch):
    _resume_killed_at_config_yaml(run, monkeypatch)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["agent"]["hyper"]["lr"] = 1e-3  # neither the old nor the recorded change's value
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert runner.load_run_config(run) == from_dict(cfg)  # not "completed" into another config
    before = _files(run)
    capsys.readouterr()
    assert main(["resume", str(run), "--no-progress"]) != 0
    assert "written by another config" in capsys.readouterr().err
    assert _files(run) == before
