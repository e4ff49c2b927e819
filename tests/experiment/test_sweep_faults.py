"""A sweep whose groups a numeric fault stops: the other groups still run, the sweep says which
groups stopped (console, report.md) and exits 3; `neurorl resume` names them and does not rerun
them unchanged (that would replay the fault); `--retry-faulted --set ...` goes on with them (from
the checkpoint a group kept, or afresh without one), recorded in each group's config_changes.

Real tiny sweep over R-STDP's learning rate on CartPole: 3e-5 (the default) finishes; 0.05
saturates its weights at env step 512 after a good, checkpointed chunk; 1e3 saturates them in
the first chunk (no checkpoint).
"""

import json

import pytest
import yaml

from neurorl.experiment.cli import main
from neurorl.experiment.logging import read_jsonl

pytestmark = pytest.mark.slow  # three tiny groups, each compiled

BASE = {
    "name": "tiny",
    "env": {"id": "CartPole-v1"},
    "agent": {"name": "rstdp", "substeps": 2, "hyper": {"n_rf": 3, "pop": 2}},
    "training": {"steps": 768, "n_envs": 8, "chunk_steps": 256, "episode_window": 5},
    "logging": {"wandb": "disabled", "progress": False},
}


def _summary(out, gi):
    return json.loads((out / f"group-{gi:03d}" / "summary.json").read_text())


def _group_of(out, lr):
    meta = json.loads((out / "sweep.json").read_text())
    return next(i for i, g in enumerate(meta["groups"]) if g["overrides"]["agent.hyper.lr"] == lr)


def test_sweep_names_faulted_groups_and_retries_them_on_request(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    sweep = tmp_path / "sw.yaml"
    sweep.write_text(yaml.safe_dump({
        "method": "grid", "program": "base.yaml",
        "parameters": {"agent.hyper.lr": {"values": [3e-5, 0.05, 1000.0]}},
    }))
    out = tmp_path / "sweep"
    rc = main(["sweep", str(sweep), "--out", str(out), "--no-progress", "--wandb", "disabled"])
    console = capsys.readouterr().out
    assert rc == 3  # some groups did not finish ...
    ok, late, early = (_group_of(out, lr) for lr in (3e-5, 0.05, 1000.0))
    assert _summary(out, ok)["status"] == "finished"  # ... but every group ran
    assert _summary(out, late)["fault"]["checkpoint_env_step"] == 256
    assert _summary(out, early)["fault"]["checkpoint_env_step"] == 0
    assert f"group-{late:03d} (lr=0.05) stopped: saturated weights" in console
    assert f"group-{early:03d} (lr=1000.0) stopped: saturated weights" in console
    assert "2 of 3 group(s) stopped on a numeric fault" in console
    report = (out / "report.md").read_text()
    assert f"group-{late:03d} (lr=0.05): STOPPED at env step 512" in report
    assert "last checkpoint at env step 256" in report
    assert f"group-{early:03d} (lr=1000.0): STOPPED" in report and "no checkpoint" in report
    assert f"group-{ok:03d}" not in report.split("## Numeric faults")[1]

    # a plain resume: names them, reruns nothing, still exit 3
    before = {gi: (out / f"group-{gi:03d}" / "summary.json").read_bytes() for gi in (late, early)}
    rc = main(["resume", str(out), "--no-progress"])
    console = capsys.readouterr().out
    assert rc == 3
    assert (f"sweep: group-{late:03d} (lr=0.05): stopped at env step 512 by saturated weights"
            in console)
    assert "checkpoint at env step 256: not rerun (the same config replays the same fault)" \
        in console
    assert f"group-{early:03d} (lr=1000.0): stopped" in console and "no checkpoint" in console
    assert f"neurorl resume {out} --retry-faulted --set agent.hyper.KEY=VALUE" in console
    assert "numeric faults and resume changes:" in console  # the table's notes
    for gi, b in before.items():
        assert (out / f"group-{gi:03d}" / "summary.json").read_bytes() == b

    # retry needs a change (or --force); --set alone on a sweep needs --retry-faulted
    assert main(["resume", str(out), "--no-progress", "--retry-faulted"]) == 2
    assert "--retry-faulted: got True" in capsys.readouterr().err
    assert main(["resume", str(out), "--no-progress", "--set", "agent.hyper.lr=3e-4"]) == 2
    assert "only with --retry-faulted" in capsys.readouterr().err
    assert main(["resume", str(out), "--no-progress", "--retry-faulted", "--set",
                 "training.n_envs=4"]) == 2

    # retry with a smaller learning rate: both go on and finish
    rc = main(["resume", str(out), "--no-progress", "--retry-faulted",
               "--set", "agent.hyper.lr=3e-4"])
    console = capsys.readouterr().out
    assert rc == 0, console
    s = _summary(out, late)
    assert s["status"] == "finished"
    (c,) = s["config_changes"]
    assert c["env_step"] == 256 and c["set"]["agent.hyper.lr"] == {"from": 0.05, "to": 3e-4}
    assert c["after_fault"]["env_step"] == 512
    s = _summary(out, early)
    assert s["status"] == "finished"
    (c,) = s["config_changes"]
    assert c["env_step"] == 0 and c["set"]["agent.hyper.lr"] == {"from": 1000.0, "to": 3e-4}
    assert c["after_fault"]["checkpoint_env_step"] == 0
    eps = read_jsonl(out / f"group-{early:03d}" / "episodes.jsonl")
    assert max(e["env_step"] for e in eps) > 512  # afresh, all the way
    report = (out / "report.md").read_text()
    assert "STOPPED" not in report
    assert (f"group-{late:03d} (lr=0.05): resumed at env step 256 after a numeric fault with "
            "agent.hyper.lr: 0.05 -> 0.0003") in report
    assert f"group-{early:03d} (lr=1000.0): resumed at env step 0 after a numeric fault" \
        in report
    # finished now: a further resume runs nothing
    assert main(["resume", str(out), "--no-progress"]) == 0
