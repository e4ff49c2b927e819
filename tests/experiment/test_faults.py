"""Nothing silent, nothing lost (issue 14): numeric faults, hostile files, locks, Ctrl-C, seeds.

Every run here is tiny (CartPole, n_rec 8, a few hundred env steps) and goes through the real
runner / command line; nothing of neurorl is mocked.
"""

import json
import os
import pickle
import shutil
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from neurorl import errors as E
from neurorl.envs import ENVS
from neurorl.envs.cartpole import CartPole
from neurorl.experiment import runner
from neurorl.experiment.checkpoint import CHECKPOINT_NAME, load_checkpoint
from neurorl.experiment.cli import main
from neurorl.experiment.config import agent_defaults, from_dict

pytestmark = pytest.mark.slow  # each test compiles and runs a real (tiny) experiment

SMALL = {"eprop_ac": {"n_rec": 8, "n_rf": 3}, "bptt_ac": {"n_rec": 8, "n_rf": 3},
         "rstdp": {"n_rf": 3, "pop": 2}, "reference": {"n_rf": 3, "n_hidden": 8},
         "td_ac": {"n_place": 2, "n_critic": 4, "pop": 2}}
AGENTS = ["eprop_ac", "bptt_ac", "rstdp", "reference", "td_ac"]
# each agent's input gain hyperparameter (rstdp's and td_ac's spikes are regular: their noise
# current instead)
GAIN = {"eprop_ac": "in_gain", "bptt_ac": "in_gain", "rstdp": "noise_std", "reference": "gain",
        "td_ac": "noise_std"}


def tiny(agent="eprop_ac", steps=512, chunk=256, n_seeds=1, **hyper):
    return {
        "name": "tiny",
        "env": {"id": "CartPole-v1"},
        "agent": {"name": agent, "substeps": 2, "hyper": {**SMALL[agent], **hyper}},
        "training": {"steps": steps, "n_envs": 8, "n_seeds": n_seeds, "chunk_steps": chunk,
                     "episode_window": 5},
        "logging": {"wandb": "disabled", "progress": False},
    }


def strict_load(path):
    """json.load that refuses NaN/Infinity (what every other JSON parser does)."""

    def bad(x):
        raise ValueError(f"non-standard JSON constant {x} in {path}")

    with open(path) as f:
        return json.load(f, parse_constant=bad)


def cli_run(cfg, tmp_path, capsys, *extra):
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    rc = main(["run", str(p), "--out", str(out), "--no-progress", "--wandb", "disabled", *extra])
    return rc, capsys.readouterr().err, out


# ----------------------------------------------------------------------------------------------
# numeric faults, per agent
# ----------------------------------------------------------------------------------------------

# an input gain (rstdp: exploration noise current) that overflows float32 in the membrane
OVERFLOW = {a: {GAIN[a]: 3e38} for a in AGENTS}


def assert_strict_run_dir(out):
    summary = strict_load(out / "summary.json")
    strict_load(out / "members.json")
    for line in (out / "episodes.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda x: pytest.fail(f"bare {x} in episodes.jsonl"))
    return summary


@pytest.mark.parametrize("agent", AGENTS)
def test_overflowing_input_stops_with_exit_3_and_strict_json(agent, tmp_path, capsys):
    rc, err, out = cli_run(tiny(agent, **OVERFLOW[agent]), tmp_path, capsys)
    assert rc == E.EXIT_NON_FINITE == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "non-finite" in lines[0] and "env step" in lines[0], err
    assert "Traceback" not in err
    summary = assert_strict_run_dir(out)
    assert summary["status"] == "non_finite"
    assert summary["fault"]["member"] == 0 and summary["fault"]["env_step"] <= 256


@pytest.mark.parametrize("agent", AGENTS)
def test_nan_input_gain_is_refused_before_the_run(agent, tmp_path, capsys):
    key = GAIN[agent]
    rc, err, out = cli_run(tiny(agent), tmp_path, capsys, "--set", f"agent.hyper.{key}=.nan")
    assert rc == E.EXIT_USER_ERROR
    assert f"agent.hyper.{key}: got nan; allowed: a finite number" in err
    assert not out.exists()


class NanSensorCartPole(CartPole):
    """CartPole seen through a sensor whose gain is NaN from the 5th step of an episode: a NaN
    input gain that no config validation can see (it appears only while the run is going)."""

    id = "NanSensorCartPole-v1"

    def step_env(self, key, state, action, params):
        obs, new, reward, term, trunc, info = super().step_env(key, state, action, params)
        gain = jnp.where(new.time >= 5, jnp.nan, 1.0).astype(jnp.float32)
        return obs * gain, new, reward, term, trunc, info


@pytest.mark.parametrize("agent", AGENTS)
def test_nan_input_gain_at_runtime_stops_with_exit_3(agent, tmp_path, capsys, monkeypatch):
    # the runtime path of a NaN input gain (a user's env, registered from Python): the run
    # stops with the numeric-fault code, names the quantity and step, points at the inputs
    monkeypatch.setitem(ENVS, NanSensorCartPole.id, NanSensorCartPole)
    cfg = tiny(agent)
    cfg["env"] = {"id": NanSensorCartPole.id}
    cfg["agent"]["obs_range"] = [2.4, 3.0, 0.21, 3.0]  # a user's env names its encoder bounds
    rc, err, out = cli_run(cfg, tmp_path, capsys)
    assert rc == E.EXIT_NON_FINITE, err
    line = err.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in err
    assert "non-finite" in line and "env step" in line
    assert "observations became non-finite" in line and "input gain" in line
    summary = assert_strict_run_dir(out)
    assert summary["status"] == "non_finite"
    assert summary["fault"]["env_step"] <= 256 and summary["fault"]["checkpoint_env_step"] == 0
    assert "observations" in summary["fault"]["likely_cause"]


@pytest.mark.parametrize("agent", AGENTS)
def test_lr_1e3_diverges_and_stops(agent, tmp_path, capsys):
    # issue 14: lr=1e3 drove the e-prop weight norm to 7.6e5 and ended with rc 0; the clipping
    # rules (rstdp, reference, td_ac) stay finite but pin their weights at +-w_max
    rc, err, out = cli_run(tiny(agent, lr=1e3), tmp_path, capsys)
    assert rc == E.EXIT_NON_FINITE, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    if agent in ("eprop_ac", "bptt_ac"):
        assert "diverging weights" in err and "training.max_weight_growth = 1000" in err
    else:
        assert "saturated weights" in err and "training.max_saturation = 0.25" in err
        assert "clip bound +-1" in err
    assert "env step" in err
    default_lr = agent_defaults(agent)["lr"]
    assert f"agent.hyper.lr = 1000 is too large (default {default_lr:g})" in err
    summary = assert_strict_run_dir(out)
    assert summary["status"] == "non_finite"
    assert summary["fault"]["quantity"].startswith(("diverging", "saturated"))
    assert "learning rate" in summary["fault"]["likely_cause"]
    # the last good checkpoint (if any chunk was good) is loadable and finite
    if summary["fault"]["checkpoint_env_step"] > 0:
        state, _ = load_checkpoint(out)
        assert all(np.all(np.isfinite(v)) for v in state.values()
                   if np.issubdtype(np.asarray(v).dtype, np.floating))


@pytest.mark.parametrize("agent", ["rstdp", "reference", "td_ac"])
def test_default_runs_stay_far_from_the_divergence_limits(agent, tmp_path):
    # the criteria never fire on healthy runs: with default hyperparameters the peak weight
    # growth and saturation stay an order of magnitude below the limits (tiny networks here;
    # every other test's default run of eprop_ac / bptt_ac would stop if growth fired;
    # quickstart-sized runs of every agent: benchmarks/numeric_health.py)
    cfg = tiny(agent, steps=2048, chunk=512)
    cfg["agent"]["hyper"] = dict(SMALL[agent])
    s = runner.run_experiment(from_dict(cfg), tmp_path / "run", progress=False,
                              wandb_mode="disabled")
    assert s["status"] == "finished"
    num = strict_load(tmp_path / "run" / "summary.json")["numeric"]
    assert max(num["peak_weight_growth"]) < num["max_weight_growth_limit"] / 10
    assert max(num["peak_saturation"]) < num["max_saturation_limit"] / 10


def test_fault_in_a_later_chunk_keeps_the_last_good_checkpoint(tmp_path, capsys):
    # rewards scaled by 3e38 from env step 256: chunk 1 is fine and checkpointed, chunk 2's
    # returns (and then the critic) overflow
    cfg = tiny()
    cfg["shifts"] = {"reward": [{"kind": "scale", "factor": 3e38, "start": 256}]}
    rc, err, out = cli_run(cfg, tmp_path, capsys)
    assert rc == E.EXIT_NON_FINITE, err
    summary = strict_load(out / "summary.json")
    assert summary["fault"]["checkpoint_env_step"] == 256 and summary["fault"]["env_step"] > 256
    assert json.loads((out / "checkpoint.json").read_text())["env_steps"] == 256
    _, meta = load_checkpoint(out)
    assert meta["env_steps"] == 256
    # nothing of the faulty chunk was logged
    assert all(json.loads(x)["env_step"] <= 256
               for x in (out / "episodes.jsonl").read_text().splitlines())


# ----------------------------------------------------------------------------------------------
# seeds: member i of a group == a single run with seed i
# ----------------------------------------------------------------------------------------------


def test_sweep_members_0_1_2_equal_single_runs_in_initial_state_and_keys():
    group = runner.build(from_dict(tiny(n_seeds=3)))
    rs_g = group.init(runner.member_keys(0, 3))
    for i in range(3):
        single_cfg = from_dict(tiny(n_seeds=1), {"training.seed": i})
        single = runner.build(single_cfg)
        rs_1 = single.init(runner.member_keys(single_cfg.training.seed, 1))
        for a, b in zip(jax.tree.leaves(rs_g), jax.tree.leaves(rs_1), strict=True):
            if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
                a, b = jax.random.key_data(a), jax.random.key_data(b)
            np.testing.assert_array_equal(np.asarray(a)[i], np.asarray(b)[0])


def test_sweep_group_members_match_single_runs_end_to_end(tmp_path):
    # the whole run through the runner: member i of the vmapped group and the single run with
    # seed i log the same episodes (on this CPU; float batching may reorder reductions elsewhere)
    g = runner.run_experiment(from_dict(tiny(n_seeds=3, steps=256)), tmp_path / "g",
                              progress=False, wandb_mode="disabled")
    assert g["status"] == "finished"
    group_eps = [json.loads(x) for x in (tmp_path / "g" / "episodes.jsonl").read_text().splitlines()
                 ]
    s = runner.run_experiment(from_dict(tiny(steps=256), {"training.seed": 2}), tmp_path / "s2",
                              progress=False, wandb_mode="disabled")
    assert s["status"] == "finished"
    single = [json.loads(x) for x in (tmp_path / "s2" / "episodes.jsonl").read_text().splitlines()]
    mine = [{**e, "member": 0} for e in group_eps if e["member"] == 2]
    assert [(e["env_step"], e["return"], e["env"]) for e in mine] == [
        (e["env_step"], e["return"], e["env"]) for e in single
    ]


# ----------------------------------------------------------------------------------------------
# checkpoints: never unpickled, verified, of this config
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stopped_run_once(tmp_path_factory):
    """One run stopped after its first chunk (compiled and run once per module and worker)."""
    cfg = from_dict(tiny())
    run = tmp_path_factory.mktemp("stopped") / "part"
    assert runner.run_experiment(cfg, run, progress=False, wandb_mode="disabled",
                                 stop_after_chunks=1) == {"stopped_at": 256}
    return run


@pytest.fixture
def stopped_run(stopped_run_once, tmp_path):
    """A fresh copy of the stopped run for each test (they corrupt, edit or resume it)."""
    run = tmp_path / "part"
    shutil.copytree(stopped_run_once, run)
    return run


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_crafted_pickle_checkpoint_is_refused_and_never_executed(stopped_run, capsys,
                                                                  monkeypatch):
    monkeypatch.chdir(stopped_run)
    (stopped_run / CHECKPOINT_NAME).unlink()
    (stopped_run / "checkpoint.pkl").write_bytes(pickle.dumps(_Boom()))
    rc = main(["resume", str(stopped_run), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == E.EXIT_USER_ERROR and "pickle" in err and "not loaded" in err
    assert not (stopped_run / "PWNED").exists()


def test_crafted_npz_with_pickled_object_is_refused(stopped_run, capsys, monkeypatch):
    monkeypatch.chdir(stopped_run)
    np.savez(stopped_run / CHECKPOINT_NAME, __meta__=np.array([_Boom()], dtype=object))
    rc = main(["resume", str(stopped_run), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == E.EXIT_USER_ERROR and "checkpoint" in err and "not loaded" in err
    assert not (stopped_run / "PWNED").exists()


def test_corrupted_checkpoint_is_refused_and_logs_untouched(stopped_run, capsys):
    episodes = (stopped_run / "episodes.jsonl").read_bytes()
    data = bytearray((stopped_run / CHECKPOINT_NAME).read_bytes())
    mid = len(data) // 2
    # 64 bytes in the middle inverted (issue 14); writing zeros was a no-op once the middle of
    # the file held zero-filled state (adam moments, traces), so the test corrupted nothing
    data[mid : mid + 64] = bytes(x ^ 0xFF for x in data[mid : mid + 64])
    assert bytes(data) != (stopped_run / CHECKPOINT_NAME).read_bytes()
    (stopped_run / CHECKPOINT_NAME).write_bytes(bytes(data))
    rc = main(["resume", str(stopped_run), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == E.EXIT_USER_ERROR and "checkpoint" in err and "not loaded" in err, err
    assert (stopped_run / "episodes.jsonl").read_bytes() == episodes


def test_flipped_bit_in_an_array_fails_the_checksum(stopped_run):
    import zipfile

    src = stopped_run / CHECKPOINT_NAME
    dst = stopped_run / "copy.npz"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            raw = zin.read(item.filename)
            if item.filename == "leaf_00000.npy":
                raw = raw[:-1] + bytes([raw[-1] ^ 1])  # a valid zip whose array changed
            zout.writestr(item, raw)
    shutil.move(dst, src)
    with pytest.raises(E.CheckpointError, match="checksum mismatch"):
        load_checkpoint(stopped_run)


def test_checkpoint_of_another_config_is_refused_before_logs_are_truncated(
    stopped_run, tmp_path, capsys
):
    other = tmp_path / "other"
    runner.run_experiment(from_dict(tiny(n_rec=16)), other, progress=False,
                          wandb_mode="disabled", stop_after_chunks=1)
    with open(stopped_run / "episodes.jsonl", "a") as f:  # lines after the checkpoint
        f.write(json.dumps({"member": 0, "env_step": 999, "return": 1.0}) + "\n")
    before = (stopped_run / "episodes.jsonl").read_bytes()
    shutil.copy(other / CHECKPOINT_NAME, stopped_run / CHECKPOINT_NAME)
    rc = main(["resume", str(stopped_run), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == E.EXIT_USER_ERROR and "another config" in err, err
    assert (stopped_run / "episodes.jsonl").read_bytes() == before


def test_changed_config_yaml_is_refused_before_logs_are_truncated(stopped_run, capsys):
    before = (stopped_run / "episodes.jsonl").read_bytes()
    cfg = yaml.safe_load((stopped_run / "config.yaml").read_text())
    cfg["agent"]["hyper"]["lr"] = 0.5  # same shapes, other numbers
    (stopped_run / "config.yaml").write_text(yaml.safe_dump(cfg))
    rc = main(["resume", str(stopped_run), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == E.EXIT_USER_ERROR and "another config" in err, err
    assert (stopped_run / "episodes.jsonl").read_bytes() == before


def test_resume_removes_orphan_temp_files_and_finishes(stopped_run, capsys):
    orphan = stopped_run / f".{CHECKPOINT_NAME}.abc123.tmp"
    orphan.write_bytes(b"half a checkpoint")
    assert main(["resume", str(stopped_run), "--no-progress"]) == 0
    assert not orphan.exists()
    assert strict_load(stopped_run / "summary.json")["status"] == "finished"


# ----------------------------------------------------------------------------------------------
# files: lock, read-only / full filesystem
# ----------------------------------------------------------------------------------------------


def test_second_writer_of_a_run_directory_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    with runner._RunLock(run):
        rc, err, _ = cli_run(tiny(), tmp_path, capsys)
    assert rc == E.EXIT_LOCKED and "in use by another neurorl process" in err
    assert str(os.getpid()) in err
    assert not (run / "episodes.jsonl").exists()


def test_unwritable_run_directory_is_one_clear_line(tmp_path, capsys):
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(tiny()))
    rc = main(["run", str(p), "--out", "/sys/neurorl-test-run", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == E.EXIT_FILESYSTEM and "Traceback" not in err
    assert "/sys/neurorl-test-run" in err and len(err.strip().splitlines()) == 1


def test_disk_full_message_names_the_cause():
    import errno

    fd = os.open("/dev/full", os.O_WRONLY)
    try:
        with pytest.raises(OSError) as e:
            os.write(fd, b"x" * 16)
    finally:
        os.close(fd)
    assert e.value.errno == errno.ENOSPC
    e.value.filename = "runs/x/checkpoint.npz"
    msg = runner.file_error_message(e.value)
    assert "runs/x/checkpoint.npz" in msg and "disk is full" in msg


# ----------------------------------------------------------------------------------------------
# Ctrl-C
# ----------------------------------------------------------------------------------------------


def test_ctrl_c_prints_one_line_with_the_resume_command(tmp_path, capsys):
    import _thread
    import signal

    # a test run started in the background of a non-interactive shell inherits SIGINT ignored,
    # and then interrupt_main() does nothing (the run finished with rc 0): give this test the
    # disposition of an interactive terminal, where Ctrl-C raises KeyboardInterrupt
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _ctrl_c_run(tmp_path, capsys, _thread)
    finally:
        signal.signal(signal.SIGINT, previous)


def _ctrl_c_run(tmp_path, capsys, _thread):
    cfg = tiny(steps=8192, chunk=256)
    out = tmp_path / "run"

    def interrupt_after_first_checkpoint():
        # up to 10 min: the first chunk (compile included) can take over a minute under load
        for _ in range(60000):
            if (out / "checkpoint.json").exists():
                _thread.interrupt_main()  # what Ctrl-C does: KeyboardInterrupt in the main thread
                return
            time.sleep(0.01)

    threading.Thread(target=interrupt_after_first_checkpoint, daemon=True).start()
    rc, err, _ = cli_run(cfg, tmp_path, capsys)
    assert rc == E.EXIT_INTERRUPTED == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "interrupted at env step" in lines[0]
    assert f"neurorl resume {out}" in lines[0]
    # and the command it prints resumes the run to the end
    assert main(["resume", str(out), "--no-progress"]) == 0
    assert strict_load(out / "summary.json")["status"] == "finished"
