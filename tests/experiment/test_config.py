"""Bad configs are rejected before anything compiles, each with its exact, clear message."""

from pathlib import Path

import pytest

from neurorl.errors import ConfigError
from neurorl.experiment.config import from_dict, load_config, parse_override

BASE = {
    "name": "t",
    "env": {"id": "CartPole-v1"},
    "agent": {"name": "eprop_ac", "substeps": 2, "hyper": {"n_rec": 8}},
    "training": {"steps": 64, "n_envs": 2, "chunk_steps": 32},
    "logging": {"wandb": "disabled"},
}


def bad(overrides):
    with pytest.raises(ConfigError) as e:
        from_dict(BASE, overrides)
    return str(e.value)


@pytest.mark.parametrize(
    "overrides, message",
    [
        # unknown keys, with the closest valid name
        (
            {"agent.substep": 3},
            "agent.substep: got 3; allowed: one of the keys ['name', 'substeps', 'obs_range', "
            "'hyper', 'network', 'context']. Did you mean 'substeps'?",
        ),
        ({"trainig.steps": 3}, "trainig: got {'steps': 3}; allowed: one of the keys"),
        # wrong types
        (
            {"training.steps": "many"},
            "training.steps: got 'many'; allowed: a whole number",
        ),
        (
            {"env.params.length": "long"},
            "env.params.length: got 'long'; allowed: a number",
        ),
        # out of range
        (
            {"training.n_envs": 0},
            "training.n_envs: got 0; allowed: a whole number >= 1",
        ),
        (
            {"agent.substeps": -2},
            "agent.substeps: got -2; allowed: a whole number >= 1",
        ),
        # typos in registry names
        (
            {"env.id": "CartPol-v1"},
            "env.id: got 'CartPol-v1'; allowed: one of the registered environment names",
        ),
        (
            {"agent.name": "eprop"},
            "agent.name: got 'eprop'; allowed: one of the registered agent names",
        ),
        (
            {"hardware.chip": "loihi3"},
            "hardware.chip: got 'loihi3'; allowed: one of the registered chip names",
        ),
        # literal choices
        (
            {"logging.wandb": "ofline"},
            "logging.wandb: got 'ofline'; allowed: one of ['offline', 'online', 'disabled']. "
            "Did you mean 'offline'?",
        ),
        (
            {"shifts.params": [{"field": "length", "schedule": {"kind": "abruptt"}}]},
            "Did you mean 'abrupt'?",
        ),
        # cross-field constraints
        (
            {"training.steps": 63},
            "training.steps: got 63; allowed: a multiple of training.n_envs=2",
        ),
        (
            {"training.chunk_steps": 33},
            "training.chunk_steps: got 33; allowed: a multiple of training.n_envs=2",
        ),
    ],
)
def test_bad_config_messages(overrides, message):
    assert message in bad(overrides)


def test_suggestions_name_the_closest_registry_entry():
    assert "Did you mean 'CartPole-v1'" in bad({"env.id": "CartPol-v1"})
    assert "Did you mean 'eprop_ac'" in bad({"agent.name": "eprop"})
    # both Loihis, the same-length one first (was "Did you mean 'loihi'?" alone)
    assert "Did you mean 'loihi2' or 'loihi'?" in bad({"hardware.chip": "loihi3"})


def test_host_side_checks_of_agent_hyper_env_params_and_shift_fields():
    from neurorl.experiment.runner import build

    with pytest.raises(ConfigError, match=r"agent.hyper.n_recc.*Did you mean 'n_rec'"):
        build(from_dict(BASE, {"agent.hyper.n_recc": 8}))
    with pytest.raises(ConfigError, match=r"masspole"):
        build(from_dict(BASE, {"env.params.masspole": -1.0}))
    with pytest.raises(ConfigError, match=r"Did you mean 'length'"):
        build(from_dict(BASE, {"shifts.params": [{"field": "lenght", "schedule": 1.0}]}))


def test_overrides_are_parsed_as_yaml_scalars():
    assert parse_override("agent.hyper.lr=1e-3") == ("agent.hyper.lr", 1e-3)
    assert parse_override("logging.progress=false") == ("logging.progress", False)
    assert parse_override("agent.obs_range=[1, 2]") == ("agent.obs_range", [1, 2])
    cfg = from_dict(BASE, ["agent.hyper.lr=0.002", "training.n_seeds=3"])
    assert cfg.agent.hyper["lr"] == 0.002 and cfg.training.n_seeds == 3
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("agent.hyper.lr")


def test_config_is_frozen():
    cfg = from_dict(BASE)
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="frozen"):
        cfg.training.steps = 5


SHIPPED = sorted((Path(__file__).resolve().parents[2] / "experiments").glob("*.yaml"))


def test_the_shipped_experiment_configs_are_found():
    assert len(SHIPPED) >= 6


# one test per file (was one loop of ~40 s): the xdist workers share them out
@pytest.mark.parametrize("f", SHIPPED, ids=lambda f: f.name)
def test_shipped_experiment_configs_validate(f):
    from neurorl.experiment.runner import build

    build(load_config(f))  # every shipped config validates end to end (no trace)


def test_set_reaches_list_entries_by_index():
    base = {**BASE, "training": {"steps": 640, "n_envs": 2, "chunk_steps": 320},
            "shifts": {"params": [{"field": "length",
                                   "schedule": {"kind": "abrupt", "values": [0.5, 1.0],
                                                "steps": [100]}}]}}
    for key in ("shifts.params.0.schedule.steps", "shifts.params[0].schedule.steps"):
        cfg = from_dict(base, [f"{key}=[200]"])
        assert cfg.shifts.params[0].schedule.steps == [200]
    cfg = from_dict(base, ["shifts.params.0.schedule.values.1=2.0"])
    assert cfg.shifts.params[0].schedule.values == [0.5, 2.0]
    with pytest.raises(ConfigError, match=r"shifts.params\[1\]: got \[200\]; allowed: an index in"):
        from_dict(base, ["shifts.params.1.schedule.steps=[200]"])
    with pytest.raises(ConfigError, match=r"shifts.params is a list: index it"):
        from_dict(base, ["shifts.params.first.schedule=1.0"])


def test_empty_file_and_directory_are_config_errors(tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match="the file is empty"):
        load_config(tmp_path / "empty.yaml")
    with pytest.raises(ConfigError, match="not a directory"):
        load_config(tmp_path)


def test_unparsable_set_value_names_its_key():
    with pytest.raises(ConfigError, match=r"--set training.steps: got '\[1,'; allowed: a YAML"):
        parse_override("training.steps=[1,")


def test_shift_steps_outside_the_run_are_errors():
    ab = {"kind": "abrupt", "values": [0.5, 1.0], "steps": [10_000_000]}
    with pytest.raises(ConfigError, match=r"shifts.params\[0\].schedule.steps\[0\]: got 10000000"
                       r"; allowed: a step inside the run, < training.steps = 64"):
        from_dict(BASE, {"shifts.params": [{"field": "length", "schedule": ab}]})
    with pytest.raises(ConfigError, match="task 1 would start at env step 100000"):
        from_dict(BASE, {"shifts.tasks": {"tasks": [{"length": 0.5}, {"length": 1.0}],
                                          "steps_per_task": 100000}})
