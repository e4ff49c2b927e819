"""The runner end to end on tiny configs: CLI run/report, kill-and-resume equality, sweep
grouping."""

import json

import pytest
import yaml

from neurorl.errors import ConfigError
from neurorl.experiment import runner
from neurorl.experiment.cli import main
from neurorl.experiment.config import from_dict
from neurorl.experiment.logging import read_jsonl

from .tiny import assert_same_checkpoint, tiny_config

TINY = tiny_config(steps=600, n_envs=4, n_seeds=2, chunk_steps=200, episode_window=5)


@pytest.fixture
def tiny_yaml(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(TINY))
    return p


def test_cli_run_writes_a_complete_run_directory(tiny_yaml, tmp_path):
    out = tmp_path / "run"
    assert main(["validate", str(tiny_yaml)]) == 0
    assert (
        main(["run", str(tiny_yaml), "--out", str(out), "--no-progress", "--wandb", "disabled"])
        == 0
    )
    for name in (
        "config.yaml",
        "episodes.jsonl",
        "chunks.jsonl",
        "checkpoint.npz",
        "summary.json",
        "report.md",
        "plots/lifelong.png",
        "plots/lifelong.csv",
    ):
        assert (out / name).exists(), name
    assert not (out / "plots" / "compare.png").exists()  # one agent: lifelong.png is the panel
    episodes = read_jsonl(out / "episodes.jsonl")
    assert {e["member"] for e in episodes} == {0, 1}
    assert all(0 < e["env_step"] <= 600 for e in episodes)
    assert all(
        e["length"] >= 1 and e["return"] == e["length"] for e in episodes
    )  # CartPole: +1 per step
    chunks = read_jsonl(out / "chunks.jsonl")
    assert len(chunks) == 3 * 2 and [c["env_step"] for c in chunks[::2]] == [200, 400, 600]
    summary = json.loads((out / "summary.json").read_text())
    assert [m["episodes"] for m in summary["members"]] == [
        sum(e["member"] == m for e in episodes) for m in (0, 1)
    ]
    # --set overrides reach the run, and report re-draws from the directory alone
    assert main(["report", str(out)]) == 0


def test_cli_errors_are_one_clear_line(tiny_yaml, capsys):
    assert main(["run", str(tiny_yaml), "--set", "agent.nmae=x"]) == 2
    err = capsys.readouterr().err
    assert "agent.nmae" in err and "Did you mean 'name'" in err and "Traceback" not in err


def test_kill_and_resume_gives_exactly_the_uninterrupted_results(tmp_path):
    cfg = from_dict(TINY)
    full, part = tmp_path / "full", tmp_path / "part"
    runner.run_experiment(cfg, full, progress=False, wandb_mode="disabled")
    stopped = runner.run_experiment(
        cfg, part, progress=False, wandb_mode="disabled", stop_after_chunks=1
    )
    assert stopped == {"stopped_at": 200}
    # a crash after the checkpoint may leave extra log lines: resume must drop them
    with open(part / "episodes.jsonl", "a") as f:
        f.write(json.dumps({"member": 0, "env_step": 999, "return": -1.0}) + "\n")
    assert main(["resume", str(part), "--no-progress"]) == 0
    a, b = read_jsonl(full / "episodes.jsonl"), read_jsonl(part / "episodes.jsonl")
    assert len(a) == len(b) and a == b
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (full, part))
    assert sa["members"] == sb["members"]
    assert_same_checkpoint(full, part)


def test_sweep_expansion_counts_and_vmapped_grouping():
    members = [
        {"agent.name": a, "training.seed": s}
        for a in ("rstdp", "eprop_ac", "bptt_ac")
        for s in range(5)
    ]
    groups = runner.sweep_groups({}, members)
    assert len(groups) == 3  # one compiled, seed-vmapped function per rule
    assert all(g["seeds"] == [0, 1, 2, 3, 4] for g in groups)
    assert sorted(i for g in groups for i in g["members"]) == list(range(15))
    # non-consecutive seeds split into separate vmapped groups; other values never share a group
    groups = runner.sweep_groups({}, [{"x": 1, "training.seed": s} for s in (0, 1, 5)] + [{"x": 2}])
    assert sorted(len(g["members"]) for g in groups) == [1, 1, 2]


def test_cli_sweep_runs_groups_and_reports(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(
        yaml.safe_dump({**TINY, "training": {**TINY["training"], "n_seeds": 1, "steps": 200}})
    )
    sweep = tmp_path / "sw.yaml"
    sweep.write_text(
        yaml.safe_dump(
            {
                "method": "grid",
                "base": "base.yaml",
                "parameters": {
                    "agent.hyper.lr": {"values": [1e-4, 1e-3]},
                    "training.seed": {"values": [0, 1]},
                },
            }
        )
    )
    out = tmp_path / "sweep"
    assert (
        main(["sweep", str(sweep), "--out", str(out), "--no-progress", "--wandb", "disabled"]) == 0
    )
    groups = sorted(out.glob("group-*"))
    assert len(groups) == 2
    for g in groups:
        assert len(json.loads((g / "summary.json").read_text())["members"]) == 2  # 2 seeds vmapped
    assert (out / "plots" / "compare.png").exists() and (out / "report.md").exists()
    table = (out / "report.md").read_text()
    assert "lr=0.0001" in table and "lr=0.001" in table


def test_wandb_offline_run_per_member(tmp_path):
    from .wandb_reader import summarize

    cfg = from_dict(TINY, {"training.steps": 200, "logging.wandb": "offline"})
    runner.run_experiment(cfg, tmp_path, progress=False)
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 2  # one wandb run per seed
    config, summary, history, meta = summarize(next(runs[0].glob("run-*.wandb")))
    assert meta.run_group == "tiny" and meta.job_type == "eprop_ac"
    assert config["agent"]["name"] == "eprop_ac"
    assert "final_return" in summary and "episodes" in summary
    assert any("episode/return" in h and "env_step" in h for h in history)


def test_summary_has_adaptation_time_per_shift(tmp_path):
    cfg = from_dict(
        TINY,
        {
            "training.n_seeds": 1,
            "shifts.params": [
                {
                    "field": "length",
                    "schedule": {"kind": "abrupt", "values": [0.5, 1.0], "steps": [300]},
                }
            ],
        },
    )
    summary = runner.run_experiment(cfg, tmp_path, progress=False, wandb_mode="disabled")
    assert summary["boundaries"] == [300]
    (adapt,) = summary["members"][0]["adaptation"]
    assert adapt["shift_step"] == 300 and set(adapt) >= {"episodes", "steps", "censored", "drop"}
    assert adapt["censored"] or adapt["episodes"] >= 1


def test_adaptation_in_chip_time_and_energy(tmp_path):
    # Loihi 2 energy model; a tiny recovery fraction so the first post-shift episode recovers
    cfg = from_dict(
        TINY,
        {
            "training.n_seeds": 1,
            "training.adaptation_fraction": 0.01,
            "hardware.chip": "loihi2",
            "hardware.off_chip_learning": True,
            "shifts.params": [
                {
                    "field": "length",
                    "schedule": {"kind": "abrupt", "values": [0.5, 1.0], "steps": [300]},
                }
            ],
        },
    )
    summary = runner.run_experiment(cfg, tmp_path, progress=False, wandb_mode="disabled")
    (adapt,) = summary["members"][0]["adaptation"]
    eps = sorted(read_jsonl(tmp_path / "episodes.jsonl"), key=lambda e: e["env_step"])
    # the first episode played wholly after the shift (an episode straddling it is not counted:
    # it started at env_step - length * n_envs)
    n_envs = cfg.training.n_envs
    first_post = next(e for e in eps if e["env_step"] - e["length"] * n_envs >= 300)
    assert adapt["episodes"] == 1 and adapt["fraction"] == 0.01
    assert adapt["steps"] == first_post["length"]
    # chip time = env steps x 2 substeps x Loihi 2's 1 ms step
    assert adapt["chip_time_s"] == pytest.approx(first_post["length"] * 2 * 1e-3)
    # energy = the episode's length x the energy per env step logged with it (> 0 on Loihi 2)
    assert first_post["energy_per_step_j"] > 0
    assert adapt["energy_j"] == pytest.approx(
        first_post["length"] * first_post["energy_per_step_j"]
    )
    with pytest.raises(ConfigError, match="adaptation_fraction"):
        from_dict(TINY, {"training.adaptation_fraction": 1.5})


@pytest.mark.parametrize("off_chip", [True, False])
def test_energy_per_step_comes_from_the_compiled_networks_counts(tmp_path, off_chip):
    """Logged energy per env step = Loihi 2's constants x the compiled network's counts: every
    group's neurons (obs relay 12 + hidden 8 + readout 3) x 2 substeps, the measured synaptic
    events, and on-chip learning updates (176 plastic synapses, once per learning epoch = env
    step) only when the rules learn on the chip."""
    from neurorl.hardware.chips import get_chip
    from neurorl.hardware.energy import ActivityCounts, energy

    cfg = from_dict(TINY, {"training.n_seeds": 1, "training.steps": 200,
                           "hardware.chip": "loihi2", "hardware.off_chip_learning": off_chip})
    runner.run_experiment(cfg, tmp_path, progress=False, wandb_mode="disabled")
    chunks = read_jsonl(tmp_path / "chunks.jsonl")
    assert chunks
    chip, k = get_chip("loihi2"), 2
    static = energy(ActivityCounts(steps=float(k)), chip).total  # the chip's idle power share
    # on chip: one synaptic update per plastic synapse per learning epoch (= the env step's
    # k substeps, make_train's ChipLearning)
    learn = 0.0 if off_chip else chip.e_learn_pj * 1e-12 * (12 * 8 + 8 * 7 + 8 * 3)
    for c in chunks:
        assert c["synops_per_step"] > 0
        expected = (chip.e_synop_pj * 1e-12 * c["synops_per_step"]
                    + chip.e_neuron_pj * 1e-12 * (12 + 8 + 3) * k + learn + static)
        assert c["energy_per_step_j"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("remaining, chunk, unit, total, last, fix", [
    (500, 200, 4, 500, 100, "a multiple of 200 (e.g. 400 or 600) or training.chunk_steps to 100"),
    (200000, 30000, 8, 200000, 20000, "(e.g. 180000 or 210000) or training.chunk_steps to 25000"),
    (300, 200, 4, 500, 100, "(e.g. 400 or 600)"),  # resumed at 200 of 500
])
def test_an_uneven_last_chunk_is_named_with_how_to_avoid_its_compile(remaining, chunk, unit,
                                                                     total, last, fix):
    note = runner.uneven_last_chunk_note(remaining, chunk, unit, total)
    assert note.startswith(f"note: the last chunk is {last} env steps")
    assert "compiles a second program" in note and fix in note


@pytest.mark.parametrize("remaining, chunk", [(600, 200), (200, 200), (150, 200), (0, 200)])
def test_equal_chunks_or_a_single_one_need_no_note(remaining, chunk):
    assert runner.uneven_last_chunk_note(remaining, chunk, 4, 600) is None


def test_a_run_with_an_uneven_last_chunk_says_so_once(tmp_path, capsys):
    """Was silent: the last chunk's second compile looked like a hang."""
    cfg = from_dict({**TINY, "training": {**TINY["training"], "steps": 504, "n_seeds": 1}})
    runner.run_experiment(cfg, tmp_path / "run", progress=False)
    out = capsys.readouterr().out
    assert out.count("note: the last chunk is 104 env steps") == 1
    assert "training.chunk_steps to 168 (it divides 504)" in out
    chunks = read_jsonl(tmp_path / "run" / "chunks.jsonl")
    assert max(c["env_step"] for c in chunks) == 504
