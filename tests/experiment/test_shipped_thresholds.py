"""Every shipped config states CartPole's (and every env's) "solved" threshold the same way:
``training.threshold`` is gymnasium's ``reward_threshold`` of the env id."""

from pathlib import Path

import gymnasium
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_threshold_is_gymnasiums_reward_threshold_and_says_so(path):
    cfg = yaml.safe_load(path.read_text())
    env_id = cfg["env"]["id"]
    spec_threshold = gymnasium.spec(env_id).reward_threshold
    # an env gymnasium gives no threshold (Pendulum-v1) gets none in its config either
    assert cfg["training"].get("threshold") == spec_threshold
    assert "gymnasium's reward_threshold" in path.read_text()  # the convention, written down


def test_every_config_is_checked():
    assert len(CONFIGS) >= 7
