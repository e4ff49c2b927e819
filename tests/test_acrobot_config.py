"""``neurorl run experiments/acrobot_eprop.yaml`` trains what benchmarks/learning.py's
``eprop_acrobot`` case measured: the same env, agent, effective hyperparameters (after the
agent's defaults), budget, parallel envs and substeps."""

from pathlib import Path

from benchmarks.learning import CASES
from neurorl.agents.eprop_ac import DEFAULTS
from neurorl.experiment.config import load_config
from neurorl.experiment.runner import train_config

ROOT = Path(__file__).resolve().parents[1]


def test_acrobot_yaml_is_the_benchmark_case():
    yaml_cfg = train_config(load_config(ROOT / "experiments" / "acrobot_eprop.yaml"))
    case, _, _ = CASES["eprop_acrobot"]
    assert {**DEFAULTS, **yaml_cfg.agent_kwargs} == {**DEFAULTS, **case.agent_kwargs}
    for f in ("env_id", "agent", "n_steps", "n_envs", "substeps", "n_seeds", "obs_range"):
        assert getattr(yaml_cfg, f) == getattr(case, f), f
