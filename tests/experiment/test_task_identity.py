"""Which episodes of a lifelong run belong to the same task: every shift that defines a task
(task-list parameters, observation / action / reward windows, param-shift phases) counts, so a
task that shares physics with another but remaps actions or permutes sensors is a task of its
own, and a return to an earlier task is recognised as one."""

from pathlib import Path

import numpy as np
import pytest

from neurorl.experiment import runner
from neurorl.experiment.config import from_dict, load_config
from neurorl.experiment.logging import read_jsonl
from neurorl.experiment.shiftspec import task_identity

from .tiny import tiny_config

ROOT = Path(__file__).resolve().parents[2]
NORMAL = {"gravity": 9.8, "masscart": 1.0, "force_mag": 10.0}
TINY = tiny_config("tiny-tasks", steps=600, n_envs=4, n_seeds=1, chunk_steps=600,
                   episode_window=3)


def _ids(cfg, n_per_segment, segments):
    """Synthetic episodes: ``n_per_segment`` per ``(task_id, first env_step, last env_step)``."""
    tids, steps = [], []
    for tid, lo, hi in segments:
        tids += [tid] * n_per_segment
        steps += list(np.linspace(lo, hi, n_per_segment).astype(int))
    return runner._same_task_ids(np.array(tids), np.array(steps), cfg)


def _visit_tasks(ids):
    return [int(ids[0])] + [int(b) for a, b in zip(ids[:-1], ids[1:], strict=True) if a != b]


# ----------------------------------------------------------------------------------------------
# end to end: summary.json's visits
# ----------------------------------------------------------------------------------------------


def test_reported_lifelong_cartpole_shifts_has_five_visits_and_returns_to_normal(tmp_path):
    """The shipped YAML, shortened: normal -> swapped -> heavy -> permuted -> normal again.

    The old summary keyed tasks by physics only and saw visits [0, 2, 0] (normal + swapped and
    permuted + normal again merged)."""
    cfg = load_config(
        ROOT / "experiments" / "lifelong_cartpole_shifts.yaml",
        [
            "shifts.tasks.steps_per_task=400",
            "training.steps=2000",
            "shifts.action.0.start=400",
            "shifts.action.0.end=800",
            "shifts.obs.0.start=1200",
            "shifts.obs.0.end=1600",
            "training.n_seeds=1",
            "training.chunk_steps=1000",
            "training.episode_window=3",
            "agent.substeps=2",
            "agent.hyper.n_rec=8",
            "logging.wandb=disabled",
        ],
    )
    summary = runner.run_experiment(cfg, tmp_path, progress=False, wandb_mode="disabled")
    tasks = summary["members"][0]["tasks"]
    visits = tasks["visits"]
    assert [v["task"] for v in visits] == [0, 1, 2, 3, 0]
    eps = sorted(
        (e for e in read_jsonl(tmp_path / "episodes.jsonl") if e["member"] == 0),
        key=lambda e: e["env_step"],
    )
    # each visit is exactly the episodes the trainer logged with that task_id
    logged = [sum(e["task_id"] == k for e in eps) for k in range(5)]
    assert [v["episodes"] for v in visits] == logged
    # the return is compared with the first visit of "normal", nothing else
    assert set(tasks["forgetting_on_return"]) == {"0"}
    assert tasks["forgetting_on_return"]["0"] == pytest.approx(
        visits[0]["end_return"] - visits[4]["end_return"]
    )
    assert tasks["drop_on_return"]["0"] == pytest.approx(
        visits[0]["end_return"] - visits[4]["start_return"]
    )
    assert set(tasks["transfer_on_return"]) == {"0"}


@pytest.mark.parametrize(
    "shifts, expected",
    [
        # normal -> left/right swapped -> normal, no task list: three visits, the return seen
        ({"action": [{"kind": "remap", "mapping": [1, 0], "start": 200, "end": 400}]}, [0, 1, 0]),
        # a task list of equal physics; only the sensor permutation tells task 1 apart
        (
            {
                "tasks": {"tasks": [NORMAL, NORMAL, NORMAL], "steps_per_task": 200},
                "obs": [{"kind": "permute", "seed": 1, "start": 200, "end": 400}],
            },
            [0, 1, 0],
        ),
        # physics only, as before: short -> long -> short again
        (
            {"tasks": {"tasks": [{"length": 0.5}, {"length": 1.0}, {"length": 0.5}],
                       "steps_per_task": 200}},
            [0, 1, 0],
        ),
    ],
    ids=["action-window-only", "obs-window-on-equal-physics", "physics-only"],
)
def test_summary_visits_follow_every_shift(tmp_path, shifts, expected):
    cfg = from_dict({**TINY, "shifts": shifts})
    summary = runner.run_experiment(cfg, tmp_path, progress=False, wandb_mode="disabled")
    tasks = summary["members"][0]["tasks"]
    assert [v["task"] for v in tasks["visits"]] == expected
    assert set(tasks["forgetting_on_return"]) == {"0"}


def test_host_loop_summary_tells_a_swap_on_equal_physics_apart(tmp_path):
    """The gymnasium host loop logs the same task_id and shares the summary: equal physics,
    actions swapped on task 1 -> visits 0, 1, 0 (the old summary: one merged visit)."""
    a = {"force_mag": 10.0}
    cfg = from_dict(
        {
            **TINY,
            "env": {"id": "gymnasium:CartPole-v1"},
            "agent": {**TINY["agent"], "obs_range": [2.4, 3.0, 0.21, 3.0]},
            "shifts": {
                "tasks": {"tasks": [a, a, a], "steps_per_task": 200},
                "action": [{"kind": "remap", "mapping": [1, 0], "start": 200, "end": 400}],
            },
        }
    )
    summary = runner.run_experiment(cfg, tmp_path, progress=False, wandb_mode="disabled")
    tasks = summary["members"][0]["tasks"]
    assert [v["task"] for v in tasks["visits"]] == [0, 1, 0]
    assert set(tasks["forgetting_on_return"]) == {"0"}


# ----------------------------------------------------------------------------------------------
# the identity itself, on synthetic episodes (no training)
# ----------------------------------------------------------------------------------------------


def test_same_physics_different_action_mapping_are_different_tasks_and_returns_are_matched():
    # A, A swapped, B (heavy), A permuted, A, A swapped again: the second swap returns to task 1
    heavy = {"gravity": 19.6, "masscart": 2.0, "force_mag": 15.0}
    cfg = from_dict(
        TINY,
        {
            "training.steps": 2400,
            "shifts.tasks": {"tasks": [NORMAL, NORMAL, heavy, NORMAL, NORMAL, NORMAL],
                             "steps_per_task": 400},
            "shifts.action": [
                {"kind": "remap", "mapping": [1, 0], "start": 400, "end": 800},
                {"kind": "remap", "mapping": [1, 0], "start": 2000},
            ],
            "shifts.obs": [{"kind": "permute", "seed": 1, "start": 1200, "end": 1600}],
        },
    )
    segs = [(k, 400 * k + 8, 400 * (k + 1)) for k in range(6)]
    assert _visit_tasks(_ids(cfg, 5, segs)) == [0, 1, 2, 3, 0, 1]


def test_obs_only_windows_cycle_between_two_tasks():
    # noise on and off twice, no task list: clean, noisy, clean, noisy
    noise = {"kind": "gaussian_noise", "std": 0.1}
    cfg = from_dict(
        TINY,
        {
            "training.steps": 1600,
            "shifts.obs": [{**noise, "start": 400, "end": 800}, {**noise, "start": 1200}],
        },
    )
    ids = _ids(cfg, 4, [(0, 8, 400), (0, 408, 800), (0, 808, 1200), (0, 1208, 1600)])
    assert _visit_tasks(ids) == [0, 1, 0, 1]
    out = runner._task_metrics(np.arange(ids.size, dtype=float), ids, 2)
    assert set(out["forgetting_on_return"]) == {"0", "1"}


def test_cycling_task_list_with_a_swap_on_one_pass_only():
    # tasks A B cycle; actions swapped during the second pass of A only: A B A' B A B
    cfg = from_dict(
        TINY,
        {
            "training.steps": 2400,
            "shifts.tasks": {"tasks": [{"length": 0.5}, {"length": 1.0}], "steps_per_task": 400,
                             "cycle": True},
            "shifts.action": [{"kind": "remap", "mapping": [1, 0], "start": 800, "end": 1200}],
        },
    )
    segs = [(k % 2, 400 * k + 8, 400 * (k + 1)) for k in range(6)]
    # A' (tid 0 again, but swapped) is a task of its own: the next unused id after the list
    assert _visit_tasks(_ids(cfg, 3, segs)) == [0, 1, 2, 1, 0, 1]


def test_window_inside_a_task_splits_it_and_windows_match_the_trainers_per_env_steps():
    # noise from the middle of task 1 to the middle of task 2, n_envs 4
    cfg = from_dict(
        TINY,
        {
            "training.steps": 1200,
            "shifts.tasks": {"tasks": [{"length": 0.5}, {"length": 1.0}, {"length": 0.5}],
                             "steps_per_task": 400},
            "shifts.obs": [{"kind": "gaussian_noise", "std": 0.1, "start": 600, "end": 1000}],
        },
    )
    segs = [(0, 8, 400), (1, 404, 600), (1, 604, 800), (2, 804, 1000), (2, 1004, 1200)]
    # task 1 clean, task 1 noisy (id 1 is taken: the next unused, 3), entry 2 (task 0's physics)
    # noisy (a new task: its own index 2), then clean: a return to task 0
    assert _visit_tasks(_ids(cfg, 3, segs)) == [0, 1, 3, 2, 0]
    shifts = {"obs": [{"kind": "gaussian_noise", "std": 0.1, "start": 600, "end": 1000}]}
    # the episode ending at env_step 604 had its last transition at per-env step 150 = 600 // 4
    assert task_identity(shifts, 604 // 4 - 1, 4)[2] != ()
    assert task_identity(shifts, 600 // 4 - 1, 4)[2] == ()
    assert task_identity(shifts, 1000 // 4 - 1, 4)[2] != ()
    assert task_identity(shifts, 1004 // 4 - 1, 4)[2] == ()


def test_param_schedules_abrupt_counts_by_value_gradual_ramp_apart_cyclic_is_background():
    abrupt = {"field": "length", "schedule": {"kind": "abrupt", "values": [0.5, 1.0, 0.5],
                                              "steps": [400, 800]}}
    cfg = from_dict(TINY, {"training.steps": 1200, "shifts.params": [abrupt]})
    segs = [(0, 8, 400), (0, 408, 800), (0, 808, 1200)]
    assert _visit_tasks(_ids(cfg, 3, segs)) == [0, 1, 0]
    gradual = {"field": "length", "schedule": {"kind": "gradual", "start": 0.5, "end": 1.0,
                                               "t0": 400, "t1": 800}}
    cfg = from_dict(TINY, {"training.steps": 1200, "shifts.params": [gradual]})
    assert _visit_tasks(_ids(cfg, 3, segs)) == [0, 1, 2]
    cyclic = {"field": "length", "schedule": {"kind": "cyclic", "low": 0.5, "high": 1.0,
                                              "period": 200}}
    cfg = from_dict(
        TINY,
        {"training.steps": 1200, "shifts.params": [cyclic],
         "shifts.reward": [{"kind": "flip", "start": 400, "end": 800}]},
    )
    assert _visit_tasks(_ids(cfg, 3, segs)) == [0, 1, 0]
