"""An unknown hyperparameter is answered with the agent's name for it: by meaning when the user
wrote another library's name (``learning_rate`` -> ``lr``), by spelling for a typo, and never
with a key the agent does not have."""

import pytest

from neurorl.agents import (
    AGENTS,
    bptt_ac,
    eprop_ac,
    make_agent,
    reference,
    rstdp_agent,
    spec_from_env,
    td_ac,
)
from neurorl.envs import make
from neurorl.errors import HYPER_SYNONYMS, ConfigError, closest, closest_hyper
from neurorl.experiment.config import from_dict

DEFAULTS = {"eprop_ac": eprop_ac.DEFAULTS, "bptt_ac": bptt_ac.DEFAULTS,
            "rstdp": rstdp_agent.DEFAULTS, "td_ac": td_ac.DEFAULTS,
            "reference": reference.DEFAULTS}


def _suggestion(agent, key):
    env, params = make("CartPole-v1")
    with pytest.raises(ConfigError) as e:
        make_agent(agent, spec_from_env(env, params, n_envs=1, substeps=2), **{key: 0.5})
    assert e.value.field == f"agent.{agent}.{key}" and e.value.value == 0.5
    return e.value.suggestion


@pytest.mark.parametrize("agent, key, want", [
    ("eprop_ac", "learning rate", "lr"),
    ("eprop_ac", "learning_rate", "lr"),
    ("eprop_ac", "learningRate", "lr"),
    ("eprop_ac", "alpha", "lr"),
    ("eprop_ac", "discount", "gamma"),
    ("eprop_ac", "ent_coef", "c_ent"),
    ("eprop_ac", "vf_coef", "c_v"),
    ("eprop_ac", "gae_lambda", "lam"),  # eprop_ac's trace decay is lam
    ("eprop_ac", "hidden_size", "n_rec"),
    ("eprop_ac", "threshold", "v_th"),
    ("bptt_ac", "trace_decay", "gae_lambda"),  # bptt_ac's is gae_lambda
    ("bptt_ac", "lambda", "gae_lambda"),
    ("bptt_ac", "clip_range", "clip_eps"),
    ("bptt_ac", "entropy_coef", "c_ent"),
    ("bptt_ac", "value_coef", "c_v"),
    ("bptt_ac", "update_epochs", "epochs"),
    ("rstdp", "discount_factor", "gamma"),
    ("rstdp", "critic_lr", "lr_critic"),
    ("rstdp", "tau_m", "tau_mem"),
    ("rstdp", "tau_eligibility", "tau_e"),
    ("td_ac", "taum", "tau_mem"),
    ("td_ac", "v_thresh", "v_th"),
    ("td_ac", "tau_e", "tau_kappa"),  # rstdp's name of the eligibility time constant
    ("td_ac", "discount", "tau_r"),  # td_ac discounts by tau_r (gamma = 1 - 1/tau_r)
    ("reference", "hidden_size", "n_hidden"),  # not n_rec: the reference agent has n_hidden
    ("reference", "learning_rate", "lr"),
])
def test_other_libraries_names_suggest_the_agents_own(agent, key, want):
    assert want in DEFAULTS[agent]
    assert _suggestion(agent, key) == want


@pytest.mark.parametrize("agent, typo, want", [
    ("eprop_ac", "n_recc", "n_rec"),
    ("eprop_ac", "tau_mme", "tau_mem"),
    ("rstdp", "lr_critc", "lr_critic"),
    ("bptt_ac", "clip_esp", "clip_eps"),
    ("td_ac", "tau_kapa", "tau_kappa"),
])
def test_a_typo_still_gets_the_closest_spelling(agent, typo, want):
    assert _suggestion(agent, typo) == want


def test_every_synonym_suggests_only_keys_the_agent_has():
    assert set(DEFAULTS) == set(AGENTS)
    for agent, defaults in DEFAULTS.items():
        for spelling, targets in HYPER_SYNONYMS.items():
            got = closest_hyper(spelling, defaults)
            assert got is None or got in defaults, (agent, spelling, got)
            have = [t for t in targets if t in defaults]
            if spelling not in defaults and have:  # the first target the agent has
                assert got == have[0], (agent, spelling, got)
    # every target of the table is some agent's hyperparameter (no dead entries)
    every = set().union(*map(set, DEFAULTS.values()))
    assert {t for ts in HYPER_SYNONYMS.values() for t in ts} <= every


def test_the_config_schema_suggests_by_meaning_too():
    base = {"name": "t", "env": {"id": "CartPole-v1"},
            "agent": {"name": "eprop_ac", "substeps": 2, "hyper": {"learning rate": 0.01}},
            "training": {"steps": 64, "n_envs": 2, "chunk_steps": 32},
            "logging": {"wandb": "disabled"}}
    with pytest.raises(ConfigError) as e:
        from_dict(base, {})
    assert e.value.field == "agent.hyper.learning rate" and e.value.suggestion == "lr"
    with pytest.raises(ConfigError, match=r"agent.hyper.clip_range.*Did you mean 'clip_eps'"):
        from_dict({**base, "agent": {"name": "bptt_ac", "hyper": {"clip_range": 0.2}}}, {})


def test_plain_closest_is_unchanged_without_the_table():
    # other registries (env fields, sweep keys) keep the spelling-only match
    assert closest("learning_rate", ["lr", "learning_rates"]) == "learning_rates"
    assert closest("discount", ["gamma", "dt"]) == "dt"  # by spelling only
    assert closest("discount", ["gamma", "dt"], HYPER_SYNONYMS) == "gamma"
