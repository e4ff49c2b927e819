"""Reliability and usability faults a newcomer found (second round): a finished run recompiled
on resume, closing lines that did not say where summary.json is, `neurorl list` cutting
descriptions, sweep seeds that differed between `neurorl sweep` and `wandb agent`, energy
without its parts, description-file errors, mis-cased registry names kept as typed."""

import json
import re
from contextlib import contextmanager

import pytest
import yaml

from neurorl.experiment import cli, runner
from neurorl.experiment.cli import main
from neurorl.experiment.config import from_dict

from .tiny import tiny_config

TINY = tiny_config(steps=400, n_envs=4, n_seeds=1, chunk_steps=200, episode_window=5)


@contextmanager
def count_jax_work():
    """Count jaxpr traces and XLA compilations (jax.monitoring's events; no timing)."""
    from jax import monitoring

    trace_event = "/jax/core/compile/jaxpr_trace_duration"  # jax's own event names
    compile_event = "/jax/core/compile/backend_compile_duration"
    seen = {"trace": 0, "compile": 0}
    active = [True]

    def listener(event, _duration, **_kw):
        if not active[0]:
            return
        if event == trace_event:
            seen["trace"] += 1
        elif event == compile_event:
            seen["compile"] += 1

    monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        active[0] = False


# ----------------------------------------------------------------------------------------------
# a finished run is reported on resume without building or compiling anything
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    runner.run_experiment(from_dict(TINY), out, progress=False, wandb_mode="disabled")
    return out


def test_resuming_a_finished_run_reports_it_without_tracing_or_compiling(finished_run, capsys):
    summary = (finished_run / "summary.json").read_text()
    assert (finished_run / "checkpoint.npz").exists()  # the case that used to rebuild the run
    with count_jax_work() as seen:
        assert main(["resume", str(finished_run), "--no-progress"]) == 0
    assert seen == {"trace": 0, "compile": 0}
    out = capsys.readouterr().out
    assert "run already finished" in out and "summary.json" in out
    assert (finished_run / "summary.json").read_text() == summary  # nothing rewritten
    # the Python API's resume takes the same path
    with count_jax_work() as seen:
        got = runner.run_experiment(from_dict(TINY), finished_run, progress=False,
                                    wandb_mode="disabled", resume=True)
    assert seen == {"trace": 0, "compile": 0} and got == json.loads(summary)


def test_an_unfinished_run_is_not_mistaken_for_a_finished_one(finished_run, tmp_path):
    cfg = from_dict(TINY)
    assert runner.finished_summary(finished_run, cfg) is not None
    # more steps asked for than the checkpoint has done: not finished
    assert runner.finished_summary(finished_run, from_dict(TINY, {"training.steps": 800})) is None
    # a run stopped by a numeric fault is not finished
    d = tmp_path / "faulted"
    d.mkdir()
    s = json.loads((finished_run / "summary.json").read_text())
    (d / "summary.json").write_text(json.dumps({**s, "status": "non_finite"}))
    assert runner.finished_summary(d, cfg) is None
    # an interrupted run (checkpoint before the last step) resumes and does compile
    part = tmp_path / "part"
    assert runner.run_experiment(cfg, part, progress=False, wandb_mode="disabled",
                                 stop_after_chunks=1) == {"stopped_at": 200}
    assert runner.finished_summary(part, cfg) is None
    with count_jax_work() as seen:
        runner.run_experiment(cfg, part, progress=False, wandb_mode="disabled", resume=True)
    assert seen["compile"] > 0  # the counter sees the work a real resume does
    assert runner.finished_summary(part, cfg) is not None


# ----------------------------------------------------------------------------------------------
# the closing lines say where summary.json and the other files are
# ----------------------------------------------------------------------------------------------


def test_a_runs_closing_lines_name_summary_json_and_the_other_files(tmp_path, capsys):
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump({**TINY, "training": {**TINY["training"], "steps": 200}}))
    out = tmp_path / "run"
    assert main(["run", str(p), "--out", str(out), "--no-progress", "--wandb", "disabled"]) == 0
    lines = capsys.readouterr().out.rstrip().splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("files in "))
    closing = "\n".join(lines[start:])
    for name in ("summary.json", "episodes.jsonl", "chunks.jsonl", "checkpoint.npz",
                 "config.yaml", "report.md", "plots/"):
        assert str(out / name) in closing, name
    # the report of the same directory ends the same way
    assert main(["report", str(out)]) == 0
    assert str(out / "summary.json") in capsys.readouterr().out


def test_run_files_of_a_sweep_directory_point_at_the_groups_summaries(tmp_path):
    from neurorl.experiment.reporting import run_files

    for g in ("group-000", "group-001"):
        (tmp_path / g).mkdir()
        (tmp_path / g / "summary.json").write_text("{}")
    (tmp_path / "sweep.json").write_text("{}")
    files = dict(run_files(tmp_path))
    assert str(tmp_path / "group-*" / "summary.json") in files
    assert "(2)" in files[str(tmp_path / "group-*" / "summary.json")]
    assert str(tmp_path / "sweep.json") in files
    assert run_files(tmp_path / "missing") == []


# ----------------------------------------------------------------------------------------------
# neurorl list shows every description and parameter whole
# ----------------------------------------------------------------------------------------------


def _columns(text: str) -> list[str]:
    """Each table column's cell text over all rows, box characters and whitespace removed."""
    cols: list[str] = []
    for line in text.splitlines():
        if not line.startswith("│"):
            continue
        cells = line.split("│")[1:-1]
        cols += [""] * (len(cells) - len(cols))
        for i, c in enumerate(cells):
            cols[i] += re.sub(r"\s+", "", c)
    return cols


@pytest.mark.parametrize("width", [80, 120])
def test_list_wraps_every_cell_and_cuts_none(width, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", str(width))
    regs = cli._registries()
    longest = ("", "")
    for what, fn in regs.items():
        rows = fn()
        assert cli.main(["list", what]) == 0
        text = capsys.readouterr().out
        assert "…" not in text
        cols = _columns(text)
        for row in rows:
            cells = row if what in cli._PARAM_COLUMN else row[:2]
            for i, cell in enumerate(cells):
                assert re.sub(r"\s+", "", str(cell)) in cols[i], (what, row[0], i)
            if len(row[1]) > len(longest[1]):
                longest = (what, row[1])
    assert len(longest[1]) > width  # the longest description had to wrap, and is whole


def test_the_report_tables_on_a_terminal_wrap_a_long_label_too(monkeypatch, capsys):
    from neurorl.experiment.reporting import print_table

    monkeypatch.setenv("COLUMNS", "60")
    label = "agent=eprop_ac,lr=0.0003,n_rec=128,substeps=5,chip=loihi2_onchip"
    print_table("t", ["label", "final return", "IQM"], [[label, "475.0", "470.1"]],
                terminal=True)
    text = capsys.readouterr().out
    assert "…" not in text and label in "".join(_columns(text))


def test_list_descriptions_are_whole_first_paragraphs_of_the_docstrings():
    from neurorl.core.connectivity import CONNECTIVITY

    rows = {name: desc for name, desc, _ in cli._registries()["connectivity"]()}
    doc = CONNECTIVITY["fixed_fan_out"].__doc__.strip().split("\n\n")[0]
    assert rows["fixed_fan_out"] == " ".join(x.strip() for x in doc.splitlines())
    assert rows["fixed_fan_out"].count("(") == rows["fixed_fan_out"].count(")")  # not cut
    assert cli._summary("One line.\n\n    More.") == "One line."
    assert cli._summary("Wraps onto\n    a second line.\n\n  Body") == "Wraps onto a second line."
    assert cli._summary(None) == ""


# ----------------------------------------------------------------------------------------------
# a sweep member runs the same seeds under `neurorl sweep` and under `wandb agent`
# ----------------------------------------------------------------------------------------------


def _sweep_files(tmp_path, program: dict, params: dict) -> tuple:
    prog = tmp_path / "program.yaml"
    prog.write_text(yaml.safe_dump(program))
    sweep = {"program": str(prog), "command": ["neurorl", "run", "${program}", "${args}"],
             "method": "grid", "metric": {"name": "final_return", "goal": "maximize"},
             "parameters": params}
    sw = tmp_path / "sweep.yaml"
    sw.write_text(yaml.safe_dump(sweep))
    return prog, sw, sweep


def _agent_config(prog, member: dict, monkeypatch):
    """The config `neurorl run` builds when a wandb agent starts it with this member."""

    monkeypatch.setenv("WANDB_SWEEP_ID", "sweep0")
    argv = [f"--{k}={v}" for k, v in member.items()]  # how wandb's agent writes ${args}
    args = cli._parse(cli.build_parser(), ["run", str(prog), *argv])
    try:
        return runner._load_experiment(args.config, args.overrides, "run")
    finally:
        monkeypatch.delenv("WANDB_SWEEP_ID")


@pytest.mark.parametrize(
    "program_training, params",
    [
        ({"n_seeds": 3, "seed": 7}, {"agent.hyper.lr": {"values": [0.001, 0.01]}}),  # no seeds
        ({"n_seeds": 3}, {"agent.hyper.lr": {"values": [0.001]}}),  # no seed in the program
        ({"n_seeds": 1, "seed": 2}, {"training.steps": {"value": 400}}),
        ({"n_seeds": 4}, {"training.seed": {"values": [5, 6]}}),  # seeds listed
    ],
)
def test_local_sweep_and_wandb_agent_run_a_member_with_the_same_seeds(
        program_training, params, tmp_path, monkeypatch, capsys):
    from neurorl.experiment.sweep import member_seeds

    program = {**TINY, "training": {**TINY["training"], **program_training}}
    prog, sw, sweep = _sweep_files(tmp_path, program, params)
    base, members, groups = runner.load_sweep(sw)
    for g in groups:
        local = runner.group_config(base, g)
        for i, seed in zip(g["members"], g["seeds"], strict=True):
            agent = _agent_config(prog, members[i], monkeypatch)
            want = member_seeds(program, members[i])
            assert agent.training.seed == seed == want["training.seed"]
            assert agent.training.n_seeds == want["training.n_seeds"] == 1
            # the agent's member is the local group's member i: same config but the seed axis
            a, b = (json.loads(json.dumps(c.model_dump(mode="json"))) for c in (agent, local))
            for d in (a, b):
                d["training"].pop("seed"), d["training"].pop("n_seeds")
            assert a == b
        assert local.training.n_seeds == len(g["seeds"])
        assert local.training.seed == g["seeds"][0]
    expected = [program_training.get("seed", 0)] if "training.seed" not in params else [5, 6]
    assert sorted(s for g in groups for s in g["seeds"]) == sorted(
        expected * (len(members) // len(expected)))
    note = "note:" in capsys.readouterr().err
    # the replaced n_seeds is said, unless the sweep lists the seeds (then it says nothing new)
    assert note == (program_training["n_seeds"] != 1 and "training.seed" not in params)


def test_a_sweep_member_with_more_than_one_seed_is_refused_both_ways(tmp_path, monkeypatch):
    from neurorl.errors import ConfigError

    prog, sw, _ = _sweep_files(tmp_path, TINY, {"training.n_seeds": {"value": 3}})
    with pytest.raises(ConfigError) as e:
        runner.load_sweep(sw)
    assert e.value.field == "sweep.parameters.training.n_seeds"
    assert "training.seed" in e.value.allowed
    with pytest.raises(ConfigError) as e2:
        _agent_config(prog, {"training.n_seeds": 3}, monkeypatch)
    assert e2.value.field == e.value.field
    # the shipped sweeps' explicit `training.n_seeds: {value: 1}` is what both run
    prog, sw, _ = _sweep_files(tmp_path, TINY, {"training.n_seeds": {"value": 1},
                                                "training.seed": {"values": [0, 1]}})
    base, members, groups = runner.load_sweep(sw)
    assert [g["seeds"] for g in groups] == [[0, 1]]
    assert _agent_config(prog, members[1], monkeypatch).training.n_seeds == 1
    # outside wandb agent, neurorl run keeps the program's n_seeds
    args = cli._parse(cli.build_parser(), ["run", str(prog)])
    three = {**TINY, "training": {**TINY["training"], "n_seeds": 3}}
    prog.write_text(yaml.safe_dump(three))
    assert runner._load_experiment(args.config, args.overrides, "run").training.n_seeds == 3


# ----------------------------------------------------------------------------------------------
# a registered name written in another case is normalised where the config is validated
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, written, canonical",
    [
        ("env.id", "cartpole-v1", "CartPole-v1"),  # the newcomer's
        ("env.id", "CARTPOLE-V1", "CartPole-v1"),
        ("env.id", "mountaincarcontinuous-v0", "MountainCarContinuous-v0"),
        ("env.id", "gymnasium:cartpole-v1", "gymnasium:CartPole-v1"),
        ("agent.name", "EProp_AC", "eprop_ac"),
        ("hardware.chip", "Loihi2", "loihi2"),
    ],
)
def test_a_mis_cased_registered_name_becomes_the_registered_one_everywhere(
        field, written, canonical):
    from neurorl.experiment.config import canonical_name, to_dict

    assert canonical_name(field, written) == canonical
    cfg = from_dict(TINY, {field: written})
    section, key = field.split(".")
    assert to_dict(cfg)[section][key] == canonical  # config.yaml, summary.json, wandb config
    assert canonical_name(field, canonical) == canonical


def test_a_mis_cased_env_id_in_a_sweep_gives_canonical_labels_and_member_names(tmp_path):
    prog, sw, _ = _sweep_files(tmp_path, TINY,
                               {"env.id": {"values": ["cartpole-v1", "acrobot-v1"]}})
    base, members, groups = runner.load_sweep(sw)
    assert [m["env.id"] for m in members] == ["CartPole-v1", "Acrobot-v1"]
    assert [g["label"] for g in groups] == ["id=CartPole-v1", "id=Acrobot-v1"]
    assert [runner.group_config(base, g).env.id for g in groups] == ["CartPole-v1", "Acrobot-v1"]
    # a whole env section swept
    prog, sw, _ = _sweep_files(tmp_path, TINY, {"env": {"values": [{"id": "pendulum-v1"}]}})
    _, members, _ = runner.load_sweep(sw)
    assert members[0]["env"] == {"id": "Pendulum-v1"}


@pytest.mark.parametrize("written, suggestion",
                         [("cartpole", "CartPole-v1"), ("CartPol-v1", "CartPole-v1"),
                          ("gymnasium:cartpol-v1", "gymnasium:CartPole-v1")])
def test_a_name_that_is_not_a_case_variant_is_still_refused_with_the_closest(written,
                                                                              suggestion):
    from neurorl.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        from_dict(TINY, {"env.id": written})
    assert e.value.field == "env.id" and e.value.value == written
    assert e.value.suggestion == suggestion


# ----------------------------------------------------------------------------------------------
# summary.json splits the energy per step into its parts and says which constants were missing
# ----------------------------------------------------------------------------------------------


def test_chunk_records_carry_the_energy_models_parts_which_sum_to_the_total():
    import numpy as np

    from neurorl.hardware.energy import ActivityCounts, energy

    T, S, B = 3, 2, 2
    rng = np.random.default_rng(0)
    metrics = {"done": np.zeros((T, S, B), bool), "episode_return": np.zeros((T, S, B)),
               "episode_length": np.zeros((T, S, B), int),
               "spikes": rng.uniform(0, 5, (T, S)), "synops": rng.uniform(10, 50, (T, S)),
               "weight_norm": np.ones((T, S))}
    efn = lambda syn: runner.energy_breakdown_per_step("loihi2", syn, 20, 5, 100)  # noqa: E731
    _, chunks = runner.chunk_records(metrics, 0, B, energy_fn=efn)
    for s, c in enumerate(chunks):
        parts = c["energy_parts_j"]
        assert set(parts) == {"synaptic", "neuron", "learning", "static"}
        assert sum(parts.values()) == pytest.approx(c["energy_per_step_j"], rel=1e-12)
        # the hardware model's own numbers, term by term (not recomputed another way)
        syn = float(metrics["synops"][:, s].mean())
        e = energy(ActivityCounts(synops_ac=syn, neuron_updates=100.0,
                                  active_neuron_updates=100.0, learning_updates=100.0,
                                  steps=5.0), "loihi2")
        assert parts == pytest.approx(
            {k: float(getattr(e, k)) for k in parts}, rel=1e-12)
        assert c["energy_per_step_j"] == runner.energy_per_step("loihi2", syn, 20, 5, 100)
        assert c["energy_missing"] == ["step_time_s"]  # loihi2's static power needs a step time
    # a plain float energy function (the older API) still works, without parts
    _, chunks = runner.chunk_records(metrics, 0, B, energy_fn=lambda syn: 1e-9)
    assert chunks[0]["energy_per_step_j"] == 1e-9 and "energy_parts_j" not in chunks[0]


def test_energy_model_info_names_missing_and_assumed_constants():
    info = runner.energy_model_info("loihi2", ["step_time_s"], None)
    assert info["missing"] == ["step_time_s"]
    assert set(info["assumed"]) == {"e_synop_pj", "e_neuron_pj", "e_neuron_idle_pj",
                                    "e_learn_pj", "static_power_w"}
    assert info["assumed"]["e_synop_pj"] == info["constants"]["e_synop_pj"] == 23.6
    assert runner.energy_model_info("loihi", [], None)["assumed"] == {}
    assert runner.energy_model_info("float", [], None)["has_energy_model"] is False


@pytest.mark.slow
def test_a_runs_summary_splits_energy_per_step_and_names_the_missing_constants(tmp_path):
    # spinnaker: no located e_neuron_pj / e_learn_pj (counted 0, named), e_synop_pj unverified
    cfg = from_dict(TINY, {"hardware.chip": "spinnaker", "training.steps": 200})
    out = tmp_path / "run"
    summary = runner.run_experiment(cfg, out, progress=False, wandb_mode="disabled")
    assert json.loads((out / "summary.json").read_text()) == summary
    model = summary["energy_model"]
    assert model["chip"] == "spinnaker" and "e_neuron_pj" in model["missing"]
    assert model["assumed"] == {"e_synop_pj": 8000.0}
    assert model["counts"].startswith("the compiled network's counts")
    for m in summary["members"]:
        parts = m["energy_parts_per_step_j"]
        assert sum(parts.values()) == pytest.approx(m["energy_per_step_j"], rel=1e-9)
        assert parts["neuron"] == 0.0  # not located: 0 and named, never invented
        assert parts["synaptic"] > 0 and parts["static"] > 0


@pytest.mark.slow
def test_resuming_a_finished_sweep_compiles_nothing(tmp_path, capsys):
    prog, sw, _ = _sweep_files(
        tmp_path, {**TINY, "training": {**TINY["training"], "steps": 200}},
        {"training.seed": {"values": [0, 1]}})
    out = tmp_path / "sweep"
    assert main(["sweep", str(sw), "--out", str(out), "--no-progress", "--wandb",
                 "disabled"]) == 0
    assert (out / "group-000" / "checkpoint.npz").exists()
    assert str(out / "group-*" / "summary.json") in capsys.readouterr().out
    with count_jax_work() as seen:
        assert main(["resume", str(out), "--no-progress"]) == 0
    assert seen == {"trace": 0, "compile": 0}


@pytest.mark.parametrize(
    "section, written, valid",
    [
        (("training",), "n seeds", "n_seeds"),
        (("training",), "chunk-steps", "chunk_steps"),
        (("hardware",), "off chip learning", "off_chip_learning"),
        (("agent", "hyper"), "n rec", "n_rec"),
        (("env", "params"), "x threshold", "x_threshold"),
    ],
)
def test_a_config_key_with_spaces_or_hyphens_is_named_as_written_with_its_valid_key(
        section, written, valid):
    from neurorl.errors import ConfigError

    tree = json.loads(json.dumps(TINY))
    node = tree
    for k in section:
        node = node.setdefault(k, {})
    node[written] = 2
    with pytest.raises(ConfigError) as e:
        from_dict(tree)
    assert e.value.field == ".".join((*section, written)) and e.value.suggestion == valid


def test_the_gymnasium_env_classes_take_a_case_variant_as_the_registered_id():
    """lookup accepted `cartpole-v1`, then the render metadata looked the typed id up in
    gymnasium and failed with `render: got 'cartpole-v1'`; now the registered id is used."""
    import gymnasium

    from neurorl.envs.gym_registration import NeurorlGymEnv, NeurorlVectorEnv

    fps = gymnasium.make("CartPole-v1").metadata["render_fps"]
    env = NeurorlGymEnv("cartpole-v1")
    assert env.name == "CartPole-v1" and env.metadata["render_fps"] == fps
    env.reset(seed=0)
    assert env.step(0)[1] == 1.0
    vec = NeurorlVectorEnv(2, "CARTPOLE-V1")
    assert vec.name == "CartPole-v1" and vec.metadata["render_fps"] == fps


def test_run_files_name_the_plots_that_were_drawn(tmp_path):
    """The closing lines list the plots the run drew (a single-label run has no compare.png),
    not every plot a run may draw."""
    from neurorl.experiment.reporting import run_files

    (tmp_path / "plots").mkdir()
    for f in ("lifelong.png", "lifelong.csv"):
        (tmp_path / "plots" / f).write_text("")
    what = dict(run_files(tmp_path))[str(tmp_path / "plots") + "/"]
    assert what == "lifelong.csv, lifelong.png"
    assert "compare.png" not in what
