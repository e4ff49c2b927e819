"""Bad inputs a new user tries, and how neurorl answers each: clear / unclear / silent / traceback.

Run ``python -m tests.experiment.bad_inputs`` for the counts (issue 14 asks for them before and
after); ``tests/experiment/test_bad_inputs.py`` asserts every case is answered clearly.

Each case is a bad input with the substrings a clear answer must contain (the field path as the
user wrote it, and the value where it is short). Classification:

* ``clear``: a :class:`~neurorl.errors.NeurorlError` (exit code 2 on the CLI) whose message holds
  every expected substring, and no run directory was created;
* ``unclear``: a NeurorlError that misses one of them (or came after the run directory existed);
* ``silent``: accepted (exit code 0) -- every case here is a mistake;
* ``traceback``: any other exception.
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BASE: dict[str, Any] = {
    "name": "bad",
    "env": {"id": "CartPole-v1"},
    "agent": {"name": "eprop_ac", "substeps": 2, "hyper": {"n_rec": 8, "n_rf": 3}},
    "training": {"steps": 640, "n_envs": 8, "chunk_steps": 320},
    "logging": {"wandb": "disabled", "progress": False},
}


@dataclass
class Case:
    """One bad input: ``kind`` is ``"cli"`` (``argv`` after writing ``yaml`` to CONFIG) or
    ``"api"`` (``fn`` is called)."""

    name: str
    expect: tuple[str, ...]
    kind: str = "cli"
    yaml_text: str | None = None  # raw YAML (None: BASE with `sets` applied via --set)
    sets: tuple[str, ...] = ()
    command: str = "validate"
    config_is_dir: bool = False
    fn: Callable[[], Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _with(**sections: Any) -> str:
    tree = yaml.safe_load(yaml.safe_dump(BASE))
    for dotted, value in sections.items():
        node = tree
        parts = dotted.split("__")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return yaml.safe_dump(tree)


def _api_cases() -> list[Case]:
    def tc_shift_typo():
        from neurorl.experiment.train import TrainConfig, make_train

        make_train(TrainConfig(n_steps=64, n_envs=2, shifts={"param": [{"field": "length"}]}))

    def tc_obs_range():
        from neurorl.experiment.train import TrainConfig, make_train

        make_train(TrainConfig(n_steps=64, n_envs=2, obs_range=(1.0, 2.0)))

    def tc_nan_steps():
        from neurorl.experiment.train import TrainConfig, make_train

        make_train(TrainConfig(n_steps=64, n_envs=2, agent_kwargs={"lr": float("nan")}))

    def train_int_key():
        from neurorl.experiment.train import TrainConfig, make_train

        t = make_train(
            TrainConfig(n_steps=16, n_envs=2, substeps=1, agent_kwargs={"n_rec": 4, "n_rf": 2})
        )
        t(0)

    def tc_shift_steps_beyond():
        from neurorl.experiment.train import TrainConfig, make_train

        make_train(
            TrainConfig(
                n_steps=64,
                n_envs=2,
                shifts={"params": [{"field": "length", "schedule": {"kind": "abrupt",
                                                                     "values": [0.5, 1.0],
                                                                     "steps": [10_000_000]}}]},
            )
        )

    return [
        Case("api: TrainConfig(shifts={'param': ...})", ("shifts.param", "params"), "api",
             fn=tc_shift_typo),
        Case("api: TrainConfig(obs_range=(1., 2.))", ("obs_range", "4"), "api", fn=tc_obs_range),
        Case("api: agent_kwargs lr=nan", ("lr", "nan"), "api", fn=tc_nan_steps),
        Case("api: train(0) raw int key", ("key",), "api", fn=train_int_key),
        Case("api: shift step beyond n_steps", ("steps", "10000000"), "api",
             fn=tc_shift_steps_beyond),
    ]


def cases() -> list[Case]:
    """Every bad input tried (one or more per fault class of issue 14)."""
    ab = {"kind": "abrupt", "values": [0.5, 1.0], "steps": [320]}
    c = [
        # --- files ------------------------------------------------------------------------
        Case("empty YAML file", ("config", "empty"), yaml_text=""),
        Case("YAML with only a comment", ("config", "empty"), yaml_text="# nothing\n"),
        Case("config path is a directory", ("config", "directory"), config_is_dir=True),
        Case("YAML list at top level", ("config", "mapping"), yaml_text="- 1\n- 2\n"),
        Case("YAML syntax error", ("config", "YAML"), yaml_text="training: {steps: [1,\n"),
        # --- unknown keys / typos ---------------------------------------------------------
        Case("typo top-level key", ("trainig", "training"), sets=("trainig.steps=640",)),
        Case("typo agent key", ("agent.substep", "substeps"), sets=("agent.substep=2",)),
        Case("typo hyper name", ("agent.hyper.n_recc", "n_rec"), sets=("agent.hyper.n_recc=8",)),
        Case("typo in shifts.tasks", ("shifts.tasks.step_per_task", "steps_per_task"),
             yaml_text=_with(shifts__tasks={"tasks": [{"length": 0.5}], "step_per_task": 320})),
        Case("typo in a task's param", ("shifts.tasks", "lenght", "length"),
             yaml_text=_with(shifts__tasks={"tasks": [{"lenght": 0.5}], "steps_per_task": 320})),
        Case("typo in shift field", ("shifts.params[0]", "lenght", "length"),
             yaml_text=_with(shifts__params=[{"field": "lenght", "schedule": 1.0}])),
        Case("typo in shifts section name", ("shifts.param", "params"),
             yaml_text=_with(shifts__param=[{"field": "length", "schedule": 1.0}])),
        Case("typo in env param", ("env.params.lenght", "length"),
             sets=("env.params.lenght=1.0",)),
        Case("typo schedule kind", ("abruptt", "abrupt"),
             yaml_text=_with(shifts__params=[{"field": "length",
                                              "schedule": {**ab, "kind": "abruptt"}}])),
        # --- wrong types / unparsable values ----------------------------------------------
        Case("--set unparsable YAML", ("training.steps", "[1,"), sets=("training.steps=[1,",)),
        Case("--set unparsable flow map", ("agent.hyper", "{lr:"), sets=("agent.hyper={lr: ",)),
        Case("--set without =", ("--set", "training.steps"), sets=("training.steps",)),
        Case("--set through a scalar", ("training.steps.x", "training.steps"),
             sets=("training.steps.x=3",)),
        Case("--set index out of range", ("shifts.params[3]", "3"),
             yaml_text=_with(shifts__params=[{"field": "length", "schedule": 1.0}]),
             sets=("shifts.params.3.schedule=2.0",)),
        Case("steps a string", ("training.steps", "many"), sets=("training.steps=many",)),
        Case("obs_range wrong length", ("agent.obs_range", "4"), sets=("agent.obs_range=[1, 2]",)),
        Case("obs_range not numbers", ("agent.obs_range",), sets=("agent.obs_range=abc",)),
        Case("obs_range negative", ("agent.obs_range",), sets=("agent.obs_range=[1,1,-1,1]",)),
        Case("hyper not a mapping", ("agent.hyper", "5"), sets=("agent.hyper=5",)),
        # --- numbers out of range / non-finite --------------------------------------------
        Case("threshold nan", ("training.threshold", "nan"), sets=("training.threshold=.nan",)),
        Case("threshold inf", ("training.threshold", "inf"), sets=("training.threshold=.inf",)),
        Case("max_saturation above 1", ("training.max_saturation", "1.5"),
             sets=("training.max_saturation=1.5",)),
        Case("max_saturation nan", ("training.max_saturation", "nan"),
             sets=("training.max_saturation=.nan",)),
        Case("max_weight_growth 1 (every run)", ("training.max_weight_growth", "1"),
             sets=("training.max_weight_growth=1",)),
        Case("lr inf", ("agent.hyper.lr", "inf"), sets=("agent.hyper.lr=.inf",)),
        Case("lr nan", ("agent.hyper.lr", "nan"), sets=("agent.hyper.lr=.nan",)),
        Case("lr negative", ("agent.hyper.lr", "-0.1"), sets=("agent.hyper.lr=-0.1",)),
        Case("in_gain nan", ("agent.hyper.in_gain", "nan"), sets=("agent.hyper.in_gain=.nan",)),
        Case("tau_mem negative", ("agent.hyper.tau_mem", "-5"), sets=("agent.hyper.tau_mem=-5",)),
        Case("gamma > 1", ("agent.hyper.gamma", "1.5"), sets=("agent.hyper.gamma=1.5",)),
        Case("n_rec fractional", ("agent.hyper.n_rec", "8.5"), sets=("agent.hyper.n_rec=8.5",)),
        Case("n_rec zero", ("agent.hyper.n_rec", "0"), sets=("agent.hyper.n_rec=0",)),
        Case("n_alif > n_rec", ("agent.hyper.n_alif", "9"), sets=("agent.hyper.n_alif=9",)),
        Case("adam_eps negative", ("agent.hyper.adam_eps", "-1"),
             sets=("agent.hyper.adam_eps=-1",)),
        Case("max_grad_norm inf", ("agent.hyper.max_grad_norm", "inf"),
             sets=("agent.hyper.max_grad_norm=.inf",)),
        Case("lr_decay_steps negative", ("agent.hyper.lr_decay_steps", "-3"),
             sets=("agent.hyper.lr_decay_steps=-3",)),
        Case("bptt n_minibatches", ("agent.hyper.n_minibatches", "3"),
             sets=("agent.name=bptt_ac", "agent.hyper={n_minibatches: 3}")),
        Case("rstdp bad modulator", ("agent.hyper.modulator", "tdd"),
             sets=("agent.name=rstdp", "agent.hyper={modulator: tdd}")),
        Case("rstdp unknown hyper run_cap", ("agent.hyper.run_cap", "-1"),
             sets=("agent.name=rstdp", "agent.hyper={run_cap: -1}")),
        Case("td_ac bad encoding", ("agent.hyper.encoding", "grid", "'place' or 'rf'"),
             sets=("agent.name=td_ac", "agent.hyper={encoding: grid}")),
        Case("td_ac tau_r below 1", ("agent.hyper.tau_r", "0.5"),
             sets=("agent.name=td_ac", "agent.hyper={tau_r: 0.5}")),
        Case("td_ac typo lr_critc", ("agent.hyper.lr_critc", "lr_critic"),
             sets=("agent.name=td_ac", "agent.hyper={lr_critc: 0.1}")),
        Case("td_ac place grid too large", ("agent.hyper.n_place", "20", "at most 11"),
             sets=("agent.name=td_ac", "agent.hyper={n_place: 20}")),
        Case("td_ac continuous actions", ("agent.name", "td_ac", "discrete"),
             sets=("agent.name=td_ac", "agent.hyper={}", "env.id=Pendulum-v1")),
        # td_ac learns with the rstdp rule: the chip's refusal names that rule, not the agent
        Case("td_ac on a chip without learning", ("truenorth", "'rstdp'", "off_chip_learning"),
             sets=("agent.name=td_ac", "agent.hyper={n_place: 2, n_critic: 4, pop: 2}",
                   "hardware.chip=truenorth")),
        Case("adaptation_fraction 0", ("training.adaptation_fraction", "0"),
             sets=("training.adaptation_fraction=0",)),
        Case("seed negative", ("training.seed", "-1"), sets=("training.seed=-1",)),
        Case("steps not multiple of n_envs", ("training.steps", "641"),
             sets=("training.steps=641",)),
        Case("chunk not multiple", ("training.chunk_steps", "100"),
             sets=("training.chunk_steps=100",)),
        Case("env param negative", ("env.params.masspole", "-1"),
             sets=("env.params.masspole=-1",)),
        Case("env param nan", ("env.params.length", "nan"), sets=("env.params.length=.nan",)),
        # --- shifts ------------------------------------------------------------------------
        Case("abrupt step beyond the run", ("shifts.params[0].schedule.steps", "10000000", "640"),
             yaml_text=_with(shifts__params=[{"field": "length",
                                              "schedule": {**ab, "steps": [10_000_000]}}])),
        Case("task boundaries beyond the run", ("shifts.tasks.steps_per_task", "640"),
             yaml_text=_with(shifts__tasks={"tasks": [{"length": 0.5}, {"length": 1.0}],
                                            "steps_per_task": 100_000})),
        Case("obs shift start beyond the run", ("shifts.obs[0].start", "5000"),
             yaml_text=_with(shifts__obs=[{"kind": "gaussian_noise", "std": 0.1,
                                           "start": 5000}])),
        Case("pole length -1 (set)", ("shifts.params[0]", "-1"),
             yaml_text=_with(shifts__params=[{"field": "length",
                                              "schedule": {**ab, "values": [0.5, -1.0]}}])),
        Case("pole length -1 in a task", ("shifts.tasks", "length", "-1"),
             yaml_text=_with(shifts__tasks={"tasks": [{"length": -1.0}], "steps_per_task": 320})),
        Case("scale mode to negative", ("shifts.params[0]", "-2"),
             yaml_text=_with(shifts__params=[{"field": "masspole", "mode": "scale",
                                              "schedule": -2.0}])),
        Case("noise std -1", ("shifts.obs[0].std", "-1"),
             yaml_text=_with(shifts__obs=[{"kind": "gaussian_noise", "std": -1.0}])),
        Case("drift step_std nan", ("shifts.obs[0].step_std", "nan"),
             yaml_text=_with(shifts__obs=[{"kind": "sensor_drift", "step_std": float("nan")}])),
        Case("dead sensor dim out of range", ("shifts.obs[0].dims", "7"),
             yaml_text=_with(shifts__obs=[{"kind": "dead_sensors", "dims": [7]}])),
        Case("obs shift end before start", ("shifts.obs[0].end", "100"),
             yaml_text=_with(shifts__obs=[{"kind": "gaussian_noise", "std": 0.1, "start": 200,
                                           "end": 100}])),
        Case("action remap wrong length", ("shifts.action[0].mapping", "[0]"),
             yaml_text=_with(shifts__action=[{"kind": "remap", "mapping": [0]}])),
        Case("reward scale nan", ("shifts.reward[0].factor", "nan"),
             yaml_text=_with(shifts__reward=[{"kind": "scale", "factor": float("nan")}])),
        Case("cyclic period written 4 (per-env 0)", ("shifts.params[0].schedule.period", "4"),
             yaml_text=_with(shifts__params=[{"field": "length", "schedule": {
                 "kind": "cyclic", "low": 0.4, "high": 0.6, "period": 4}}])),
        Case("abrupt steps not increasing", ("shifts.params[0].schedule.steps", "[320, 160]"),
             yaml_text=_with(shifts__params=[{"field": "length", "schedule": {
                 "kind": "abrupt", "values": [0.5, 1.0, 0.7], "steps": [320, 160]}}])),
        Case("abrupt missing values", ("shifts.params[0].schedule", "values"),
             yaml_text=_with(shifts__params=[{"field": "length", "schedule": {
                 "kind": "abrupt", "steps": [320]}}])),
        Case("gradual t1 < t0", ("shifts.params[0].schedule.t1", "100"),
             yaml_text=_with(shifts__params=[{"field": "length", "schedule": {
                 "kind": "gradual", "start": 0.5, "end": 1.0, "t0": 320, "t1": 100}}])),
        Case("task steps list wrong length", ("shifts.tasks.steps_per_task",),
             yaml_text=_with(shifts__tasks={"tasks": [{"length": 0.5}, {"length": 1.0}],
                                            "steps_per_task": [320]})),
        # --- names and files ---------------------------------------------------------------
        Case("name leaves logging.dir", ("name", "../x"), sets=("name=../x",)),
        Case("name absolute path", ("name", "/tmp/x"), sets=("name=/tmp/x",)),
        Case("name empty", ("name",), sets=("name=''",)),
        # --- memory ------------------------------------------------------------------------
        Case("n_rec 200000 cannot fit", ("GiB", "n_rec"), sets=("agent.hyper.n_rec=200000",)),
        Case("n_envs 65536 x 4096 seeds", ("GiB",),
             sets=("training.n_envs=65536", "training.n_seeds=4096", "training.steps=655360",
                   "training.chunk_steps=655360")),
        # --- errors after the run directory exists -------------------------------------------
        Case("run: bad hyper (dir must not exist)", ("agent.hyper.n_alif",), command="run",
             sets=("agent.hyper.n_alif=99",)),
        Case("run: shift typo (dir must not exist)", ("lenght",), command="run",
             yaml_text=_with(shifts__params=[{"field": "lenght", "schedule": 1.0}])),
    ]
    return c + _api_cases()


def classify(case: Case) -> tuple[str, str]:
    """Run one case; ``(outcome, message)``."""
    from neurorl.errors import NeurorlError
    from neurorl.experiment.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        tmp_p = Path(tmp)
        out_dir = tmp_p / "run"
        if case.kind == "api":
            try:
                case.fn()
            except NeurorlError as e:
                msg = str(e)
                ok = all(s in msg for s in case.expect)
                return ("clear" if ok else "unclear"), msg
            except Exception as e:  # noqa: BLE001
                return "traceback", f"{type(e).__name__}: {e}"[:300]
            return "silent", ""
        cfg = tmp_p / "cfg.yaml"
        if case.config_is_dir:
            cfg = tmp_p / "a_dir"
            cfg.mkdir()
        else:
            cfg.write_text(case.yaml_text if case.yaml_text is not None else yaml.safe_dump(BASE))
        argv = [case.command, str(cfg)]
        for s in case.sets:
            argv += ["--set", s]
        if case.command == "run":
            argv += ["--out", str(out_dir), "--no-progress", "--wandb", "disabled"]
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                rc = main(argv)
        except SystemExit as e:  # argparse
            rc = e.code
        except Exception as e:  # noqa: BLE001
            tb = traceback.format_exception_only(type(e), e)[-1].strip()
            return "traceback", tb[:300]
        msg = err.getvalue().strip()
        if rc == 0:
            return "silent", ""
        if "Traceback" in msg:
            return "traceback", msg[-300:]
        ok = all(s in msg for s in case.expect) and not out_dir.exists()
        return ("clear" if ok else "unclear"), msg


def main() -> int:
    rows = []
    counts: dict[str, int] = {}
    import os

    skip_memory = os.environ.get("BAD_INPUTS_SKIP_MEMORY") == "1"  # unsafe on code without a check
    for case in cases():
        if skip_memory and "GiB" in case.expect:
            continue
        outcome, msg = classify(case)
        counts[outcome] = counts.get(outcome, 0) + 1
        rows.append((case.name, outcome, msg.replace("\n", " ")[:160]))
    for name, outcome, msg in rows:
        print(f"{outcome:9s} | {name:45s} | {msg}")
    total = sum(counts.values())
    print(
        f"\ntried {total}: "
        + ", ".join(f"{k} {counts.get(k, 0)}" for k in ("clear", "unclear", "silent", "traceback"))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
