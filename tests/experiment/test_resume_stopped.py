"""`neurorl resume` of a run that a numeric fault stopped before its first checkpoint says so
(exit 3), instead of "run already finished"; a real tiny run is driven to non-finite values."""

import contextlib
import io
import json
import shutil

import numpy as np
import pytest
import yaml

from neurorl import errors as E
from neurorl.experiment import runner
from neurorl.experiment.checkpoint import has_checkpoint, save_checkpoint
from neurorl.experiment.cli import main
from neurorl.experiment.config import from_dict

pytestmark = pytest.mark.slow  # one real (tiny) run, compiled once

# eprop_ac on CartPole with an input gain that overflows float32 in the membrane: the first
# chunk's numbers become non-finite, so the run stops before any checkpoint is written
CFG = {
    "name": "tiny",
    "env": {"id": "CartPole-v1"},
    "agent": {"name": "eprop_ac", "substeps": 2, "hyper": {"n_rec": 8, "n_rf": 3,
                                                           "in_gain": 3e38}},
    "training": {"steps": 512, "n_envs": 8, "chunk_steps": 256, "episode_window": 5},
    "logging": {"wandb": "disabled", "progress": False},
}


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("stopped")
    p = d / "cfg.yaml"
    p.write_text(yaml.safe_dump(CFG))
    out = d / "run"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["run", str(p), "--out", str(out), "--no-progress", "--wandb", "disabled"])
    assert rc == E.EXIT_NON_FINITE
    (out.parent / "run.err").write_text(err.getvalue())
    return out


def test_the_run_itself_says_it_has_no_checkpoint(stopped_run):
    # the run's own error for a fault in the first chunk: not "keeps its last good checkpoint
    # (env step 0)", which does not exist
    err = (stopped_run.parent / "run.err").read_text()
    assert "non-finite" in err and "has no checkpoint" in err, err
    assert "last good checkpoint" not in err
    assert "last good checkpoint (env step 256)" in str(E.NonFiniteError("x", 0, 300, 256))


def test_resume_of_a_run_stopped_before_its_first_checkpoint_says_why(stopped_run, capsys):
    summary = json.loads((stopped_run / "summary.json").read_text())
    assert summary["status"] == "non_finite" and not has_checkpoint(stopped_run)
    fault = summary["fault"]
    assert fault["checkpoint_env_step"] == 0 and fault["env_step"] <= 256
    capsys.readouterr()
    rc = main(["resume", str(stopped_run), "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == E.EXIT_NON_FINITE == 3
    assert "already finished" not in out + err and "Traceback" not in err
    line = err.strip()
    assert len(line.splitlines()) == 1
    assert f"stopped at env step {fault['env_step']:,} (member 0)" in line
    assert f"because of non-finite values in {fault['quantity']}" in line
    assert "no checkpoint to resume from" in line
    assert fault["likely_cause"] in line  # what to change, as the run recorded it
    assert f"neurorl run {stopped_run / 'config.yaml'} --set" in line
    # nothing was rewritten
    assert json.loads((stopped_run / "summary.json").read_text()) == summary
    # the Python API's resume refuses the same way
    with pytest.raises(E.RunStoppedError, match="no checkpoint to resume from"):
        runner.run_experiment(from_dict(CFG), stopped_run, progress=False,
                              wandb_mode="disabled", resume=True)


def test_a_stop_on_diverging_weights_is_named_as_such(stopped_run, tmp_path, capsys):
    d = tmp_path / "diverged"
    shutil.copytree(stopped_run, d)
    s = json.loads((d / "summary.json").read_text())
    s["fault"]["quantity"] = "diverging weights: norm 1.2e+06 x its initial value"
    (d / "summary.json").write_text(json.dumps(s))
    assert main(["resume", str(d), "--no-progress"]) == E.EXIT_NON_FINITE
    err = capsys.readouterr().err
    assert "because of diverging weights: norm 1.2e+06" in err and "non-finite values" not in err


def test_other_runs_are_not_taken_for_stopped_ones(stopped_run, tmp_path):
    assert isinstance(runner.stopped_run_error(stopped_run), E.RunStoppedError)
    # a finished run, a run without summary.json (killed in its first chunk: starts afresh)
    d = tmp_path / "finished"
    shutil.copytree(stopped_run, d)
    s = json.loads((d / "summary.json").read_text())
    (d / "summary.json").write_text(json.dumps({**s, "status": "finished"}))
    assert runner.stopped_run_error(d) is None
    (d / "summary.json").unlink()
    assert runner.stopped_run_error(d) is None
    # a faulted run that kept a checkpoint (a good chunk before the fault) resumes from it
    k = tmp_path / "kept"
    shutil.copytree(stopped_run, k)
    save_checkpoint(k, {"w": np.zeros(2, np.float32)}, {"env_steps": 256})
    assert runner.stopped_run_error(k) is None
