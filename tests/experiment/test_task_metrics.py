"""Per-visit task metrics of a lifelong run (forgetting, drop, AUC transfer) on hand-made curves."""

import numpy as np
import pytest

from neurorl.experiment.runner import _task_metrics, has_energy_model

# task 0 (4 episodes), task 1 (4), task 0 again (4); CartPole-like: length == return
RETS = np.array([10, 20, 30, 40, 5, 5, 5, 5, 20, 40, 40, 40], dtype=float)
TIDS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0])


def test_visits_forgetting_drop_and_auc_transfer_by_hand():
    out = _task_metrics(RETS, TIDS, 2, lengths=RETS, reference_min=0.0, reference_max=40.0)
    v = out["visits"]
    assert [(x["task"], x["episodes"]) for x in v] == [(0, 4), (1, 4), (0, 4)]
    assert [x["start_return"] for x in v] == [15.0, 5.0, 30.0]
    assert [x["end_return"] for x in v] == [35.0, 5.0, 40.0]
    # AUC over env steps: normalised returns weighted by episode length
    assert v[0]["auc"] == pytest.approx((0.25 * 10 + 0.5 * 20 + 0.75 * 30 + 1.0 * 40) / 100)
    assert v[1]["auc"] == pytest.approx(5 / 40)
    assert v[2]["auc"] == pytest.approx((0.5 * 20 + 1.0 * 120) / 140)
    assert out["forgetting_on_return"] == {"0": -5.0}  # 35 at the end of task 0, 40 at the end
    assert out["drop_on_return"] == {"0": 5.0}  # 35 before the switch, 30 on coming back
    assert out["transfer_on_return"]["0"] == pytest.approx((130 / 140 - 0.75) / (1 - 0.75))


def test_transfer_needs_a_reference_and_room_to_improve():
    out = _task_metrics(RETS, TIDS, 2)
    assert "transfer_on_return" not in out and "auc" not in out["visits"][0]
    solved = np.array([50, 50, 5, 5, 50, 50], dtype=float)  # first visit already at the top
    out = _task_metrics(solved, np.array([0, 0, 1, 1, 0, 0]), 2, reference_max=40.0)
    assert out["visits"][0]["auc"] == 1.0  # clipped at the reference maximum
    assert out["transfer_on_return"] == {"0": None}


def test_float_reference_has_no_energy_model():
    assert not has_energy_model("float")
    assert has_energy_model("loihi")
