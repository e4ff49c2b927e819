"""Errors of the agent.network description (neurorl.agents.description), as a user writes it:
keys with spaces or hyphens, size expressions, a rule name where a list of rules is expected.
Every error is one ConfigError naming the path as written, the value, what is allowed and the
closest valid name."""

import copy
from pathlib import Path

import pytest
import yaml

from neurorl.agents.base import AgentSpec
from neurorl.agents.description import _size, network_from_config
from neurorl.errors import ConfigError, closest

ROOT = Path(__file__).resolve().parents[2]
NET = yaml.safe_load((ROOT / "experiments/custom_network.yaml").read_text())["agent"]["network"]
SPEC = AgentSpec(obs_dim=4, obs_low=(-1.0,) * 4, obs_high=(1.0,) * 4, discrete=True,
                 n_actions=2, n_envs=2, substeps=5)
NAMES = {"encoder": 32, "n_actions": 2, "obs_dim": 4}


def build(edit):
    d = copy.deepcopy(NET)
    edit(d)
    return network_from_config(d, SPEC)


def error(edit) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        build(edit)
    assert e.value.__cause__ is None or not isinstance(e.value.__cause__, ConfigError)
    assert str(e.value).count("allowed:") == 1  # one message, not one nested in another
    return e.value


def test_the_shipped_description_builds():
    net = build(lambda d: None)
    assert {g.name: g.n for g in net.network.groups}["readout"] == 3  # n_actions + 1


@pytest.mark.parametrize(
    "where, valid, written, value",
    [
        (lambda d: d["groups"][1], "model", "neuron model", "LIF"),  # the newcomer's
        (lambda d: d["groups"][1], "v_init", "v-init", 0.0),
        (lambda d: d["connections"][2], "allow_self", "allow self", False),
        (lambda d: d["connections"][2], "allow_self", "allow-self", False),
        (lambda d: d, "spiking_input", "spiking input", True),
        (lambda d: d["groups"][1]["params"], "tau_mem", "tau mem", 10.0),
    ],
)
def test_a_key_with_a_space_or_hyphen_names_the_key_as_written_and_the_valid_one(
        where, valid, written, value):
    def edit(d):
        m = where(d)
        m.pop(valid, None)
        m[written] = value

    e = error(edit)
    assert e.field.startswith("agent.network.") and e.field.endswith(f".{written}")
    assert e.value == value and e.suggestion == valid


@pytest.mark.parametrize(
    "edit, field, value, suggestion",
    [
        # the newcomer's `--set agent.network.groups.1.model=LIFF` (was `...groups.1.neuron model`)
        (lambda d: d["groups"][1].update(model="LIFF"), "groups.1.model", "LIFF", "LIF"),
        (lambda d: d["groups"][2].update(model="alf"), "groups.2.model", "alf", "ALIF"),
        (lambda d: d["groups"][1].update(model=3), "groups.1.model", 3, None),
        # a params value the params class refuses (was `groups.1.surrogate` / `groups.1.tau_mem`)
        (lambda d: d["groups"][1]["params"].update(surrogate="triangel"),
         "groups.1.params.surrogate", "triangel", "triangle"),
        (lambda d: d["groups"][1]["params"].update(tau_mem=-1.0),
         "groups.1.params.tau_mem", -1.0, None),
        (lambda d: d["groups"][1]["params"].update(reset="zer"), "groups.1.params.reset",
         "zer", "zero"),
    ],
)
def test_a_group_error_names_the_config_path_of_the_key(edit, field, value, suggestion):
    e = error(edit)
    assert e.field == f"agent.network.{field}" and e.value == value
    assert e.suggestion == suggestion


def test_rule_params_keys_are_checked_with_the_closest_name():
    e = error(lambda d: d.update(rules={"rule": "eprop", "params": {"tau out": 5.0}}))
    assert e.field == "agent.network.rules.params.tau out" and e.suggestion == "tau_out"
    assert "underscores" in e.allowed
    e = error(lambda d: d.update(rules=[{"connection": "obs->exc", "rule": "eprop",
                                         "params": {"tau_outt": 5.0}}]))
    assert e.field == "agent.network.rules.0.params.tau_outt" and e.suggestion == "tau_out"


def test_closest_reads_spaces_and_hyphens_as_underscores():
    assert closest("tau mem", ["tau_mem", "v_th"]) == "tau_mem"
    assert closest("n-seeds", ["seed", "n_seeds"]) == "n_seeds"
    assert closest("Off Chip Learning", ["chip", "off_chip_learning"]) == "off_chip_learning"
    assert closest("cartpole v1", ["CartPole-v1", "Acrobot-v1"]) == "CartPole-v1"


@pytest.mark.parametrize(
    "value, n",
    [(8, 8), ("encoder", 32), ("n_actions * 10", 20), ("n_actions*10+1", 21),
     ("obs_dim * n_actions", 8), ("n_actions * 10 - 1", 19), ("(n_actions + 1) * 10", 30),
     (" 3 ", 3)],
)
def test_sizes_are_whole_numbers_or_expressions_of_the_names(value, n):
    assert _size("f", value, NAMES) == n


@pytest.mark.parametrize(
    "value, why, suggestion",
    [
        ("n_action*10", "'n_action' is not one of the names", "n_actions"),  # the newcomer's
        ("n_actoins + 1", "'n_actoins' is not one of the names", "n_actions"),
        ("n_actions ** 2", "operator '**'", None),
        ("n_actions / 2", "operator '/'", None),
        ("n_actions *", "not a complete expression", None),
        ("n_actions * 2.5", "2.5 is not a whole number", None),
        ("len(encoder)", "is not a number, a name", None),
        ("__import__('os')", "is not a number, a name", None),
        (4.5, "a size is a whole number", None),
        (48.0, "write 48", None),
        (True, "true/false", None),
        ("n_actions - 2", "a size > 0 (this is 0 here)", None),
        (-3, "a size > 0 (this is -3 here)", None),
        ([4], "a list is not a size", None),
    ],
)
def test_a_bad_size_is_one_message_naming_field_value_and_what_is_allowed(value, why,
                                                                          suggestion):
    with pytest.raises(ConfigError) as e:
        _size("agent.network.groups.1.n", value, NAMES)
    err = e.value
    assert err.field == "agent.network.groups.1.n" and err.value == value
    assert why in err.allowed and str(err).count("allowed:") == 1
    assert "n_actions (= 2)" in err.allowed and "+, -, *" in err.allowed
    assert err.suggestion == suggestion


def test_the_size_error_reaches_the_user_under_the_group_path():
    e = error(lambda d: d["groups"][1].update(n="n_action*10"))
    assert e.field == "agent.network.groups.1.n" and e.value == "n_action*10"
    assert e.suggestion == "n_actions"


def test_one_rule_name_for_every_connection_is_reported_where_it_was_written():
    assert len(build(lambda d: d.update(rules="eprop")).network.rules) == 7
    e = error(lambda d: d.update(rules="eprp"))  # was reported as rules.0.rule
    assert e.field == "agent.network.rules" and e.suggestion == "eprop"
    e = error(lambda d: d.update(rules={"rule": "eprp"}))
    assert e.field == "agent.network.rules.rule" and e.suggestion == "eprop"
    e = error(lambda d: d.update(rules=[{"connection": "obs->exc", "rule": "eprp"}]))
    assert e.field == "agent.network.rules.0.rule" and e.suggestion == "eprop"


@pytest.mark.parametrize("written", [["eprop"], ["eprp"], ["eprop", "stdp"]])
def test_a_list_of_rule_names_explains_the_two_forms(written):
    e = error(lambda d: d.update(rules=written))
    assert e.field == "agent.network.rules.0" and e.value == written[0]
    assert "{connection: NAME, rule: RULE}" in e.allowed and "obs->exc" in e.allowed
    assert "`rules: eprop` without a list" in e.allowed


def test_rules_of_another_type_say_which_forms_exist():
    e = error(lambda d: d.update(rules=3))
    assert e.field == "agent.network.rules" and "`rules: eprop`" in e.allowed
