"""Every bad input of ``bad_inputs.py`` is answered clearly, and generated bad configs and API
inputs only ever raise a NeurorlError with a message (hypothesis, from the schema)."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurorl.errors import NeurorlError
from neurorl.experiment import config as C

from .bad_inputs import BASE, cases, classify

# the one input whose fix lives outside this branch's files (train.py's train()/init(), being
# rewritten by the lead): neurorl.errors.check_key is ready for it. Strict: it fails once fixed.
ELSEWHERE: set[str] = set()


def _params():
    why = "train(key) checks its key in train.py (lead's rewrite): neurorl.errors.check_key"
    return [
        pytest.param(c, id=c.name,
                     marks=[pytest.mark.xfail(strict=True, reason=why)] if c.name in ELSEWHERE
                     else [])
        for c in cases()
    ]


@pytest.mark.slow
@pytest.mark.parametrize("case", _params())
def test_bad_input_gets_a_clear_answer(case):
    outcome, message = classify(case)
    assert outcome == "clear", message


# ----------------------------------------------------------------------------------------------
# property tests: invalid configs generated from the schema
# ----------------------------------------------------------------------------------------------


def _leaf_paths(model, prefix=()):
    """Every field path of the schema (sections recursed; lists of models as index 0)."""
    for name, f in model.model_fields.items():
        sub = C._find_model(f.annotation)
        path = (*prefix, name)
        if sub is not None and name not in ("schedule",):
            yield from _leaf_paths(sub, (*path, "0") if "list" in str(f.annotation) else path)
        yield path


PATHS = [".".join(p) for p in _leaf_paths(C.ExperimentConfig)]
SECTIONS = ["", "env", "agent", "agent.hyper", "training", "logging", "hardware", "shifts",
            "env.params"]

BAD_VALUES = st.one_of(
    st.just(math.nan), st.just(math.inf), st.just(-math.inf), st.integers(-10**12, -1),
    st.just(0), st.just(10**15), st.floats(-1e300, -1e-300), st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=3),
                                                               st.integers(), max_size=2),
    st.none(), st.booleans(), st.just("../../etc"), st.just([1, ""]),
)


def _must_be_clear(overrides):
    """Validate (and build, when the schema accepts it): a NeurorlError with a message or ok."""
    from neurorl.experiment.runner import build

    try:
        cfg = C.from_dict(BASE, overrides)
        build(cfg)
    except NeurorlError as e:
        assert str(e).strip()
        return
    # anything else propagates and fails the test


SETTINGS = settings(max_examples=80, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
@SETTINGS
@given(path=st.sampled_from(PATHS), value=BAD_VALUES)
def test_generated_bad_values_raise_neurorl_errors(path, value):
    _must_be_clear({path: value})


@pytest.mark.slow
@SETTINGS
@given(section=st.sampled_from(SECTIONS), key=st.text(min_size=1, max_size=10), value=BAD_VALUES)
def test_generated_unknown_keys_raise_neurorl_errors(section, key, value):
    _must_be_clear({f"{section}.{key}" if section else key: value})


@pytest.mark.slow
@SETTINGS
@given(raw=st.text(max_size=12), path=st.sampled_from(PATHS))
def test_generated_set_strings_raise_neurorl_errors(raw, path):
    from neurorl.experiment.runner import build

    try:
        build(C.from_dict(BASE, [f"{path}={raw}"]))
    except NeurorlError as e:
        assert str(e).strip()


API_FIELDS = {
    "n_steps": BAD_VALUES, "n_envs": BAD_VALUES, "substeps": BAD_VALUES, "n_seeds": BAD_VALUES,
    "obs_range": st.one_of(BAD_VALUES, st.tuples(st.floats(allow_nan=True))),
    "agent_kwargs": st.one_of(BAD_VALUES, st.dictionaries(st.sampled_from(
        ["lr", "n_rec", "in_gain", "tau_mem", "lrr", "gamma"]), BAD_VALUES, max_size=2)),
    "env_kwargs": st.one_of(BAD_VALUES, st.dictionaries(st.sampled_from(
        ["length", "masspole", "lenght"]), BAD_VALUES, max_size=2)),
    "shifts": st.one_of(BAD_VALUES, st.dictionaries(st.sampled_from(
        ["params", "param", "tasks", "obs", "reward"]), BAD_VALUES, max_size=2)),
    "agent": BAD_VALUES, "env_id": BAD_VALUES, "chip": BAD_VALUES,
}


@pytest.mark.slow
@SETTINGS
@given(data=st.data())
def test_generated_bad_train_configs_raise_neurorl_errors(data):
    from neurorl.experiment.train import TrainConfig, validate

    field = data.draw(st.sampled_from(sorted(API_FIELDS)))
    value = data.draw(API_FIELDS[field])
    kw = {"n_steps": 64, "n_envs": 2, "agent_kwargs": {"n_rec": 4}, field: value}
    try:
        validate(TrainConfig(**kw))
    except NeurorlError as e:
        assert str(e).strip()
