"""The sweep files against wandb's own sweep machinery: the validator `wandb sweep` runs (the
``sweeps`` package's JSON schema, wandb's ``[sweeps]`` extra), its grid search, the command-line
arguments `wandb agent` builds, and a real ``wandb.wandb_agent.Agent`` starting one member offline
(no server: the run command it would receive is made by wandb's local grid search)."""

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from neurorl.experiment.cli import _parse as parse_cli
from neurorl.experiment.cli import build_parser
from neurorl.experiment.config import parse_override
from neurorl.experiment.runner import load_sweep
from neurorl.experiment.sweep import expand_sweep

from .wandb_reader import summarize

sweeps = pytest.importorskip("sweeps")  # wandb[sweeps]; the test extra installs it
from wandb.sdk.launch.sweeps import utils as wandb_sweep_utils  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SWEEP_FILES = sorted((ROOT / "experiments" / "sweeps").glob("*.yaml"))


def wandb_grid(config: dict) -> list[dict]:
    """Every member wandb's own grid search (the local controller's engine) proposes."""
    runs = []
    while (run := sweeps.next_run(config, runs)) is not None:
        run.state = sweeps.RunState.finished
        runs.append(run)
    return [{k: v["value"] for k, v in r.config.items()} for r in runs]


def canonical(members: list[dict]) -> list[str]:
    return sorted(json.dumps(m, sort_keys=True) for m in members)


def test_there_are_sweep_files():
    assert len(SWEEP_FILES) >= 2


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.name)
def test_wandbs_validator_accepts_the_sweep_file(path):
    config = yaml.safe_load(path.read_text())
    assert sweeps.schema_violations_from_proposed_config(config) == []
    sweeps.SweepConfig(config)  # what `wandb sweep --controller` builds; raises on violations
    assert {"program", "command", "metric"} <= set(config)
    assert (ROOT / config["program"]).is_file()  # relative to the repo root, where agents run
    assert "${args}" in config["command"] and "${program}" in config["command"]
    assert config["metric"]["name"] == "final_return"


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.name)
def test_local_expansion_is_wandbs_grid(path, monkeypatch):
    config = yaml.safe_load(path.read_text())
    assert canonical(expand_sweep(config)) == canonical(wandb_grid(config))
    monkeypatch.chdir(path.parent)  # `program` is also found from the sweep file's directory
    base, members, _ = load_sweep(path)
    assert base == yaml.safe_load((ROOT / config["program"]).read_text())
    assert canonical(members) == canonical(wandb_grid(config))


def agent_argv(sweep: dict, args: dict) -> list[str]:
    """The command line `wandb agent` builds from a sweep's `command` for a run with ``args``
    (wandb's own functions; the macro loop is Agent._command_run's)."""
    command = wandb_sweep_utils.create_sweep_command(list(sweep["command"]))
    run_vars = wandb_sweep_utils.create_sweep_command_args({"args": args})
    run_vars["program"] = [sweep["program"]]
    out = []
    for c in command:
        out += (run_vars.get(c[2:-1]) or []) if c.startswith("${") else [c]
    return out


value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**9), 10**9)
    | st.floats(allow_nan=False, allow_infinity=False, width=64)
    | st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
        lambda s: s not in ("null", "true", "false", "yes", "no", "on", "off", "none", "nan", "inf")
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,6}", fullmatch=True), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None)
@given(
    values=st.dictionaries(
        st.from_regex(r"[a-z]{1,5}(\.[a-z]{1,5}){0,2}", fullmatch=True),
        value,
        min_size=1,
        max_size=4,
    )
)
def test_cli_reads_back_every_value_wandb_agent_passes(values):
    sweep = {"program": "exp.yaml", "command": ["neurorl", "run", "${program}", "${args}"]}
    argv = agent_argv(sweep, {k: {"value": v} for k, v in values.items()})
    assert argv[:3] == ["neurorl", "run", "exp.yaml"]
    args = parse_cli(build_parser(), argv[1:] + ["--set", "extra=1"])
    assert args.config == "exp.yaml"
    got = dict(parse_override(o) for o in args.overrides)
    assert got == {**values, "extra": 1}
    assert list(got)[-1] == "extra"  # --set comes after the agent's values (it wins)


@pytest.mark.slow
def test_a_wandb_agent_runs_one_member_offline(tmp_path, monkeypatch):
    """wandb's Agent starts the first grid member of rules.yaml (shortened) with exactly the
    command line it builds from the file's `command`; the member runs as one offline wandb run
    with the agent's run id, the sweep parameters in its config and the sweep metric in its
    summary."""
    from wandb import wandb_agent

    sweep = yaml.safe_load((ROOT / "experiments/sweeps/rules.yaml").read_text())
    sweep["program"] = str(ROOT / sweep["program"])  # the test runs in tmp_path
    sweep["parameters"]["training.steps"] = {"value": 400}
    sweep["parameters"]["training.chunk_steps"] = {"value": 200}
    assert sweeps.schema_violations_from_proposed_config(sweep) == []
    member = sweeps.next_run(sweep, [])  # what the sweep controller would hand the agent
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SWEEP_ID", "sweep0")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for var in ("WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH"):  # the agent sets them
        monkeypatch.setenv(var, "")
    agent = wandb_agent.Agent(api=None, queue=None, sweep_id="sweep0")
    agent._sweep_command = sweep["command"]
    agent._command_run(
        {"type": "run", "run_id": "member0", "program": sweep["program"], "args": member.config}
    )
    proc = agent._run_processes["member0"]
    assert proc.wait(timeout=600) == 0
    # the command line wandb built is the file's command with the member's --name=value args
    args = {k: v["value"] for k, v in member.config.items()}
    assert args["agent"]["name"] == "rstdp" and args["training.seed"] == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["agent"]["name"] == "rstdp" and cfg["training"]["steps"] == 400
    assert cfg["training"]["seed"] == 0 and cfg["training"]["n_seeds"] == 1
    (wdir,) = (run_dir / "wandb").glob("offline-run-*")
    config, summary, history, run = summarize(next(wdir.glob("run-*.wandb")))
    assert run.run_id == "member0" and wdir.name.endswith("-member0")
    assert config["training.seed"] == 0 and config["agent"]["name"] == "rstdp"
    assert isinstance(summary[sweep["metric"]["name"]], float)  # the sweep's metric, flat
    assert any("episode/return" in h for h in history)
