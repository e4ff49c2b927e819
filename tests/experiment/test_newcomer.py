"""What a newcomer hit using neurorl from its README and `--help` alone: hyperparameters that
`neurorl list` did not show, a key written twice in a YAML file that silently lost its first value,
pydantic's wording in config errors, `kill` (SIGTERM) ending a run without a word, help text that
named files and keys that no longer exist, and a sweep command given an experiment config."""

import inspect
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neurorl.errors import ConfigError, RunInterrupted
from neurorl.experiment import cli
from neurorl.experiment.config import agent_defaults, from_dict, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_list_shows_the_parameters_a_config_may_set_with_their_defaults(capsys):
    regs = cli._registries()
    agents = {name: params for name, _, params in regs["agents"]()}
    for key in agent_defaults("eprop_ac"):
        assert f"{key}=" in agents["eprop_ac"]
    assert f"lr={agent_defaults('eprop_ac')['lr']}" in agents["eprop_ac"]
    from neurorl.plasticity import RULES

    rules = {name: params for name, _, params in regs["rules"]()}
    for p in inspect.signature(RULES["rstdp"]).parameters.values():
        assert f"{p.name}={p.default!r}" in rules["rstdp"]
    envs = {name: params for name, _, params in regs["envs"]()}
    assert "length=0.5" in envs["CartPole-v1"] and "gravity=9.8" in envs["CartPole-v1"]
    neurons = {name: params for name, _, params in regs["neurons"]()}
    assert "tau_mem=20.0" in neurons["LIF"] and "reset='subtract'" in neurons["LIF"]
    assert cli.main(["list", "agents"]) == 0
    out = capsys.readouterr().out
    assert "agent.hyper" in out and "eprop_ac" in out


def test_help_names_the_files_and_keys_that_exist(capsys):
    for cmd in ("run", "sweep"):
        with pytest.raises(SystemExit):
            cli.main([cmd, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "checkpoint.npz" in text and ".pkl" not in text  # checkpoints are never pickles
    assert "`program:`" in text and "`base:`" not in text  # the shipped sweeps use program
    assert "training.seed" in text and "training.n_seeds is replaced" in text


def test_a_key_written_twice_in_a_yaml_file_is_an_error_not_a_silent_override(tmp_path):
    f = tmp_path / "dup.yaml"
    f.write_text(
        "agent:\n  name: rstdp\n  hyper: {lr: 0.1}\n  substeps: 5\n  hyper: {}\n"
        "training: {steps: 64, n_envs: 8}\n"
    )
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert e.value.field == "agent.hyper" and "lines 3 and 5" in str(e.value)
    f.write_text(
        "shifts:\n  params:\n    - field: length\n      schedule: {kind: abrupt, values: [0.5, 1],"
        " steps: [32], steps: [16]}\ntraining: {steps: 64, n_envs: 8}\n"
    )
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert e.value.field == "shifts.params.0.schedule.steps"
    # the same key in different sections is fine
    f.write_text("env: {id: CartPole-v1}\nagent: {name: rstdp}\ntraining: {steps: 64, n_envs: 8}\n")
    assert load_config(f).agent.name == "rstdp"


@pytest.mark.parametrize(
    "override, allowed",
    [
        ("training.steps=-5", "a whole number >= 1"),
        ("agent.substeps=0", "a whole number >= 1"),
        ("training.n_seeds=two", "a whole number"),
        ("training.adaptation_fraction=2", "a number <= 1.0"),
        ("training.max_weight_growth=0.5", "a number > 1.0"),
        ("env.params=3", "a mapping"),
    ],
)
def test_config_errors_say_what_is_allowed_in_a_configs_words(override, allowed):
    with pytest.raises(ConfigError) as e:
        from_dict({"training": {"n_envs": 8}}, [override])
    assert e.value.field == override.split("=")[0]
    assert e.value.allowed.startswith(allowed) and "Input should" not in str(e.value)


def test_an_unquoted_off_is_explained_not_shown_as_a_mystery_false():
    with pytest.raises(ConfigError) as e:
        from_dict({}, ["logging.wandb=off"])  # YAML 1.1: off -> False
    assert e.value.value is False and "unquoted off/on/no/yes" in e.value.allowed
    assert "'disabled'" in e.value.allowed


def test_sigterm_stops_a_command_like_ctrl_c_and_says_so(capsys):
    before = signal.getsignal(signal.SIGTERM)

    class Args:
        @staticmethod
        def func(_):
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler interrupts this
            except KeyboardInterrupt:  # what the runner does with Ctrl-C
                raise RunInterrupted("interrupted; resume with: neurorl resume runs/x") from None
            return 0

    assert cli._run_command(Args()) == cli.EXIT_TERMINATED == 143
    err = capsys.readouterr().err
    assert "neurorl resume runs/x" in err and "SIGTERM" in err
    assert signal.getsignal(signal.SIGTERM) == before  # restored after the command


def test_sweep_given_an_experiment_config_points_to_neurorl_run():
    from neurorl.experiment.runner import load_sweep

    path = ROOT / "experiments" / "quickstart.yaml"
    with pytest.raises(ConfigError) as e:
        load_sweep(path)
    assert f"run it with `neurorl run {path}`" in str(e.value)


def test_export_prints_what_nir_could_not_say(tmp_path, capsys):
    import jax

    import neurorl as nr
    from neurorl.hardware.nir import write_nir

    a = nr.NeuronGroup(4, "LIF", {"reset": "subtract"}, name="input")
    b = nr.NeuronGroup(3, "LIF", {"reset": "subtract"}, name="output")
    model = nr.Network(a, b, nr.Connection(a, b, weight=0.5)).compile(backend="jax")
    path = tmp_path / "net.nir"
    graph = write_nir(path, model, model.init(jax.random.key(0)))
    cli._print_nir_lossy(path)
    out = capsys.readouterr().out
    assert "approximated in NIR" in out
    assert "reset='subtract'" in out and graph.metadata["neurorl_lossy"]


@pytest.mark.slow  # one short run stopped by SIGTERM after its first chunk: ~15-30 s
def test_kill_stops_a_real_run_with_its_checkpoint_and_the_resume_command(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "WANDB_MODE": "disabled"}
    p = subprocess.Popen(
        [sys.executable, "-m", "neurorl.experiment.cli", "run",
         str(ROOT / "experiments" / "quickstart.yaml"), "--out", str(run_dir),
         "--wandb", "disabled", "--set", "training.steps=80000", "--set",
         "training.chunk_steps=800", "--set", "training.n_seeds=1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    lines = []
    for line in p.stdout:
        lines.append(line)
        if "env steps (" in line:  # the first chunk is done: stop the run
            p.send_signal(signal.SIGTERM)
            break
    out = "".join(lines) + p.stdout.read()
    assert p.wait(timeout=120) == 143, out
    assert "stopped by SIGTERM" in out and f"neurorl resume {run_dir}" in out
    assert (run_dir / "checkpoint.npz").exists() and not (run_dir / "summary.json").exists()
