"""Sweep expansion in the wandb sweep schema: counts, order, distributions, errors."""

import numpy as np
import pytest

from neurorl.errors import ConfigError
from neurorl.experiment.sweep import expand_sweep, flatten_parameters


def test_grid_is_cartesian_product_in_written_order():
    sweep = {
        "method": "grid",
        "parameters": {
            "agent.name": {"values": ["rstdp", "eprop", "bptt"]},
            "training.seed": {"values": [0, 1, 2, 3, 4]},
            "agent.n_hidden": {"value": 64},
        },
    }
    members = expand_sweep(sweep)
    assert len(members) == 15
    assert members[0] == {"agent.name": "rstdp", "training.seed": 0, "agent.n_hidden": 64}
    assert members[5] == {"agent.name": "eprop", "training.seed": 0, "agent.n_hidden": 64}
    assert [m["training.seed"] for m in members[:5]] == [0, 1, 2, 3, 4]


def test_nested_parameters_flatten_to_dotted_paths():
    flat = flatten_parameters(
        {"agent": {"parameters": {"rule": {"parameters": {"lr": {"value": 1}}}}}}
    )
    assert flat == {"agent.rule.lr": {"value": 1}}


def test_grid_int_uniform_enumerates_and_run_cap_truncates():
    sweep = {"method": "grid", "run_cap": 3, "parameters": {"x": {"min": 1, "max": 5}}}
    assert [m["x"] for m in expand_sweep(sweep)] == [1, 2, 3]


def test_random_sweep_count_bounds_and_reproducibility():
    sweep = {
        "method": "random",
        "count": 200,
        "parameters": {
            "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2},
            "n": {"distribution": "int_uniform", "min": 2, "max": 4},
            "rule": {"values": ["a", "b"]},
            "u": {"min": 0.0, "max": 1.0},
        },
    }
    a, b = expand_sweep(sweep, seed=3), expand_sweep(sweep, seed=3)
    assert a == b and len(a) == 200
    lr = np.array([m["lr"] for m in a])
    assert lr.min() >= 1e-4 and lr.max() <= 1e-2
    # log-uniform: about half the mass below the geometric midpoint 1e-3
    assert 0.35 < np.mean(lr < 1e-3) < 0.65
    assert {m["n"] for m in a} == {2, 3, 4}
    assert {m["rule"] for m in a} == {"a", "b"}
    assert all(0.0 <= m["u"] <= 1.0 for m in a)


@pytest.mark.parametrize(
    "sweep, match",
    [
        ({"method": "bayes", "parameters": {}}, "needs a server"),
        ({"method": "gird", "parameters": {}}, "Did you mean 'grid'"),
        ({"method": "grid", "paramters": {}}, "Did you mean 'parameters'"),
        ({"method": "random", "parameters": {"x": {"values": [1]}}}, "sweep.count"),
        (
            {"method": "grid", "parameters": {"x": {"min": 0.0, "max": 1.0}}},
            "only works with method 'random'",
        ),
        (
            {"method": "random", "count": 1, "parameters": {"x": {"distribution": "unifrom"}}},
            "Did you mean 'uniform'",
        ),
    ],
)
def test_bad_sweeps_have_clear_errors(sweep, match):
    with pytest.raises(ConfigError, match=match):
        expand_sweep(sweep)
