"""A sweep checks every member (compiled group) with the host-side checks of ``neurorl validate``
-- the chip's structural limits included -- before running any: a member a chip refuses stops
the sweep at once, with every failing member named and nothing written or trained; the shipped
sweeps pass those checks for every member; ``neurorl report`` names the groups a sweep
directory lacks."""

import json
from pathlib import Path

import pytest
import yaml

from neurorl.errors import ConfigError, SweepMembersError
from neurorl.experiment import runner
from neurorl.experiment.cli import main
from neurorl.experiment.reporting import missing_groups, report

ROOT = Path(__file__).resolve().parents[2]

# eprop_ac: an input neuron's fan-out is n_rec, a hidden neuron's n_rec - 1 (recurrent, no
# self-connection) + 3 (readout); xylo allows max_fan_out=64: n_rec=70 and 80 do not fit, 8 does
PROGRAM = {
    "name": "tiny",
    "env": {"id": "CartPole-v1"},
    "agent": {"name": "eprop_ac", "substeps": 2, "hyper": {"n_rec": 70, "n_rf": 3}},
    "hardware": {"chip": "float", "off_chip_learning": True},
    "training": {"steps": 200, "n_envs": 2, "n_seeds": 1, "chunk_steps": 200},
    "logging": {"wandb": "disabled", "progress": False},
}


def write_sweep(tmp_path: Path, parameters: dict) -> Path:
    (tmp_path / "prog.yaml").write_text(yaml.safe_dump(PROGRAM))
    sweep = {"program": "prog.yaml", "method": "grid", "parameters": parameters}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


@pytest.mark.parametrize("launcher", ["local", "ray"])
def test_member_over_a_chip_limit_is_refused_before_any_group_runs(
    tmp_path, capsys, monkeypatch, launcher
):
    # float first: before, the float group ran (and wrote group-000/) before xylo's failed
    monkeypatch.chdir(tmp_path)
    path = write_sweep(tmp_path, {"hardware.chip": {"values": ["float", "xylo"]},
                                  "training.seed": {"values": [0, 1]}})
    out = tmp_path / "out"
    rc = main(["sweep", str(path), "--out", str(out), "--wandb", "disabled", "--no-progress",
               "--launcher", launcher])
    err = capsys.readouterr().err
    assert rc == 2
    assert not out.exists()  # no sweep.json, no group directory, nothing trained
    assert not list(tmp_path.rglob("summary.json"))
    assert "Traceback" not in err
    assert "1 of 2 group(s) cannot run" in err
    assert "group-001 (chip=xylo; seed 0, 1)" in err  # the member's settings
    assert "[change agent.hyper.n_rec=70]" in err  # the field behind the group's size
    assert "max_fan_out=64" in err
    assert "chip=float" not in err


def test_every_failing_member_is_named_at_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_sweep(tmp_path, {"hardware.chip": {"value": "xylo"},
                                  "agent.hyper.n_rec": {"values": [8, 70, 80]}})
    built: dict = {}
    with pytest.raises(SweepMembersError) as e:
        runner.load_sweep(path, built=built)
    assert built == {}  # nothing runs: the n_rec=8 group's build is not kept
    msg = str(e.value)
    assert "2 of 3 group(s) cannot run" in msg
    assert [f for _, f, _ in e.value.failures] == ["agent.hyper.n_rec=70", "agent.hyper.n_rec=80"]
    assert "group-001 (n_rec=70; seed 0) [change agent.hyper.n_rec=70]" in msg
    assert "group-002 (n_rec=80; seed 0) [change agent.hyper.n_rec=80]" in msg
    assert msg.count("max_fan_out=64") == 2
    assert "n_rec=8;" not in msg
    assert isinstance(e.value, ConfigError)  # the CLI's exit 2, one error


def test_resume_checks_every_group_before_going_on(tmp_path, capsys, monkeypatch):
    """A sweep directory written before the up-front check (its xylo group cannot run):
    ``neurorl resume`` names it before running the float group, instead of failing after."""
    monkeypatch.chdir(tmp_path)
    members = [{"hardware.chip": c, "training.seed": 0} for c in ("float", "xylo")]
    groups = runner.sweep_groups(PROGRAM, members)
    for g in groups:
        g["label"] = f"chip={g['overrides']['hardware.chip']}"
    out = tmp_path / "old-sweep"
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps(
        {"sweep": "experiments/sweeps/bad.yaml", "members": members, "groups": groups}))
    (out / "config.yaml").write_text(yaml.safe_dump(PROGRAM))
    rc = main(["resume", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "group-001 (chip=xylo; seed 0) [change agent.hyper.n_rec=70]" in err
    assert not list(out.glob("group-*"))


def test_shipped_chips_sweep_fits_every_chip_it_lists():
    """Every member of experiments/sweeps/chips.yaml passes the host-side checks (no training):
    before, the xylo member's hidden neurons had fan-out 66 > xylo's max_fan_out=64."""
    path = ROOT / "experiments" / "sweeps" / "chips.yaml"
    chips = yaml.safe_load(path.read_text())["parameters"]["hardware.chip"]["values"]
    _, _, groups = runner.load_sweep(path)  # raises SweepMembersError otherwise
    assert sorted(g["overrides"]["hardware.chip"] for g in groups) == sorted(chips)
    assert "xylo" in chips


def test_report_names_the_missing_groups(tmp_path):
    groups = [{"overrides": {}, "seeds": [0], "members": [0], "label": f"chip={c}"}
              for c in ("float", "xylo", "pcm")]
    (tmp_path / "sweep.json").write_text(json.dumps({"sweep": "chips.yaml", "groups": groups}))
    (tmp_path / "group-000").mkdir()
    (tmp_path / "group-000" / "summary.json").write_text("{}")
    (tmp_path / "group-001").mkdir()  # started, never finished
    assert missing_groups(tmp_path) == ["group-001 (chip=xylo)", "group-002 (chip=pcm)"]
    (tmp_path / "group-000" / "summary.json").unlink()
    with pytest.raises(ConfigError, match=r"missing 3 group\(s\).*group-002 \(chip=pcm\)"):
        report(tmp_path)


def test_a_rule_the_chip_cannot_learn_names_off_chip_learning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_sweep(tmp_path, {"hardware.chip": {"values": ["loihi2", "xylo"]},
                                  "hardware.off_chip_learning": {"value": False},
                                  "agent.hyper.n_rec": {"value": 8}})
    with pytest.raises(SweepMembersError) as e:
        runner.load_sweep(path)
    assert [f for _, f, _ in e.value.failures] == ["hardware.off_chip_learning=false"]
    assert "group-001 (chip=xylo; seed 0)" in str(e.value)  # loihi2 learns e-prop on chip


def _fits(tmp_path, parameters: dict, n_seeds: int = 1) -> Path:
    """A sweep whose every group fits (n_rec 8 on the float simulator)."""
    prog = {**PROGRAM, "agent": {**PROGRAM["agent"], "hyper": {"n_rec": 8, "n_rf": 3}},
            "training": {**PROGRAM["training"], "n_seeds": n_seeds}}
    (tmp_path / "prog.yaml").write_text(yaml.safe_dump(prog))
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump({"program": "prog.yaml", "method": "grid",
                                    "parameters": parameters}))
    return path


def test_sweep_builds_each_group_once_after_checking_all(tmp_path, monkeypatch, capsys):
    """The up-front check's build of each group is the one its run uses: two groups, two
    builds, both before the first group runs (the check still comes first); and a program
    with n_seeds 3 whose sweep lists its seeds gets no n_seeds note."""
    monkeypatch.chdir(tmp_path)
    path = _fits(tmp_path, {"agent.hyper.lr": {"values": [0.01, 0.02]},
                            "training.seed": {"values": [0, 1]}}, n_seeds=3)
    events: list[str] = []
    build, run = runner.build, runner._run_experiment

    def counted_build(cfg, **kw):
        events.append(f"build lr={cfg.agent.hyper['lr']}")
        return build(cfg, **kw)

    def counted_run(cfg, run_dir, **kw):
        events.append(f"run lr={cfg.agent.hyper['lr']} prebuilt={kw['train'] is not None}")
        return run(cfg, run_dir, **kw)

    monkeypatch.setattr(runner, "build", counted_build)
    monkeypatch.setattr(runner, "_run_experiment", counted_run)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--wandb", "disabled",
                 "--no-progress"]) == 0
    assert events == ["build lr=0.01", "build lr=0.02", "run lr=0.01 prebuilt=True",
                      "run lr=0.02 prebuilt=True"]
    assert len(list(out.glob("group-*/summary.json"))) == 2
    assert "n_seeds" not in capsys.readouterr().out  # the seeds are listed: no note


def test_kept_builds_are_capped_and_skip_auto_engine_scales(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _fits(tmp_path, {"agent.hyper.lr": {"values": [0.01, 0.02, 0.03]}})
    monkeypatch.setattr(runner, "KEEP_BUILT", 2)
    built: dict = {}
    runner.load_sweep(path, built=built)
    assert sorted(built) == [0, 1]  # the third group is built again when it runs
    from neurorl.experiment import config as C

    cfg = C.from_dict(PROGRAM)
    assert runner._reusable_build(cfg)
    auto = C.from_dict(PROGRAM, {"hardware.chip": "loihi2", "hardware.off_chip_learning": False,
                                 "hardware.engine": {"trace_scale": "auto"}})
    assert not runner._reusable_build(auto)  # its run calibrates: not the check's build


def test_sweep_note_on_n_seeds_only_where_the_sweep_names_no_seeds(tmp_path, monkeypatch,
                                                                     capsys):
    from neurorl.experiment.sweep import seeds_note

    prog = {"training": {"n_seeds": 3}}
    assert "training.n_seeds: 3" in seeds_note(prog, "p.yaml", [{"agent.hyper.lr": 0.1}])
    assert seeds_note(prog, "p.yaml", [{"training.seed": 0}, {"training.seed": 1}]) is None
    assert seeds_note(prog, "p.yaml", [{"training.n_seeds": 1}]) is None  # written out
    assert "n_seeds: 3" in seeds_note(prog, "p.yaml", [{"training.seed": 0}, {}])  # one lacks
    assert seeds_note({"training": {"n_seeds": 1}}, "p.yaml", [{}]) is None
    # the sweep command: no seeds listed -> the note, before any group runs
    monkeypatch.chdir(tmp_path)
    path = _fits(tmp_path, {"agent.hyper.lr": {"values": [0.01]}}, n_seeds=3)

    class Stop(Exception):
        pass

    def stop(*a, **k):
        raise Stop

    monkeypatch.setattr(runner, "_run_groups", stop)
    with pytest.raises(Stop):
        main(["sweep", str(path), "--out", str(tmp_path / "out"), "--no-progress"])
    assert "prog.yaml has training.n_seeds: 3;" in capsys.readouterr().out
