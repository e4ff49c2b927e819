"""Tiki-Taka's transfer reads of the fast device A are counted and priced: every
``transfer_every``-th update reads ``n_reads_per_transfer`` lines of A (aihwkit
``TransferCompound``), one crossbar multiply-accumulate per weight read, priced with the
crossbar's ``e_synop_pj`` (PCM: 28,065 GOPS/W, Ambrogio et al. 2018) in the learning term --
against hand counts, on the device directly and from a tiny `neurorl run` on the PCM chip."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from neurorl.hardware import memristor as M
from neurorl.hardware.chips import get_chip
from neurorl.hardware.energy import ActivityCounts, energy


def _device(**kw):
    base = dict(dw_min=0.01, dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0,
                dw_min_std=0.0, read_noise=0.0, drift=False, update="tiki_taka")
    base.update(kw)
    return M.get_pulse_device("rram").replace(**base)


def _hand_count(n_updates, every, n_reads, shape, columns):
    """The algorithm's loop: after update i, a transfer when i % every == 0, reading
    min(n_reads, lines) lines of A, each line `cells` weights."""
    lines = shape[0] if columns else shape[-1]
    cells = int(np.prod(shape)) // lines
    reads = 0
    for i in range(1, n_updates + 1):
        if every > 0 and i % every == 0:
            reads += min(n_reads, lines) * cells
    return reads


@pytest.mark.parametrize("every,n_reads,columns", [
    (3, 2, True),    # 2 input lines of 3 weights per transfer
    (3, 2, False),   # 2 output lines of 5 weights
    (1, 7, True),    # more reads than lines: capped at the 5 lines (aihwkit does)
    (4, 1, False),
    (0, 1, True),    # transfer_every 0: never
])
def test_transfer_reads_equal_the_hand_count(every, n_reads, columns):
    dev = _device(transfer_every=every, n_reads_per_transfer=n_reads, transfer_columns=columns)
    shape = (5, 3)
    state = M.pulse_init(jax.random.key(0), shape, dev)
    upd = jax.jit(lambda s, d, k: M.pulse_update(s, d, k, 0.0, dev, 1.0))
    keys = jax.random.split(jax.random.key(1), 10)
    for i in range(10):
        assert float(M.transfer_reads(state, dev)) == _hand_count(i, every, n_reads, shape,
                                                                  columns)
        state = upd(state, 0.05 * jnp.ones(shape), keys[i])
    assert int(state.n_updates) == 10
    assert float(M.transfer_reads(state, dev)) == _hand_count(10, every, n_reads, shape, columns)


def test_other_schemes_read_nothing():
    for update in ("calibrated", "stochastic", "mixed_precision"):
        dev = _device(update=update)
        state = M.pulse_update(M.pulse_init(jax.random.key(0), (4, 2), dev), jnp.ones((4, 2)),
                               jax.random.key(1), 0.0, dev, 1.0)
        assert float(M.transfer_reads(state, dev)) == 0.0


def test_reads_are_priced_as_crossbar_macs_in_the_learning_term():
    pcm = get_chip("pcm")
    e = energy(ActivityCounts(transfer_reads=1e6), pcm)
    assert float(e.learning) == pytest.approx(1e6 * pcm.e_synop_pj * 1e-12)
    assert pcm.e_synop_pj == pytest.approx(1e12 / 28065e9)  # Ambrogio 2018, 28,065 GOPS/W
    assert float(e.total) == pytest.approx(float(e.learning))
    both = energy(ActivityCounts(learning_updates=10.0, transfer_reads=1e6), pcm)
    assert float(both.learning) == pytest.approx(10 * pcm.e_learn_pj * 1e-12
                                                 + 1e6 * pcm.e_synop_pj * 1e-12)
    # a chip without a per-MAC constant names it as missing instead of inventing one
    assert "e_synop_pj" in energy(ActivityCounts(transfer_reads=5.0), "dynapse").missing
    assert energy(ActivityCounts(), pcm).missing == ()


@pytest.mark.slow
def test_a_tiny_tiki_taka_run_counts_reads_and_pulses_and_prices_them(tmp_path):
    """R-STDP on the PCM crossbar with Tiki-Taka (transfer every 2nd update, 3 lines per
    transfer): the run's chunk records hold the transfer reads and pulses per env step, which
    add up to the hand count and to the engine's pulse counter, and its learning energy is
    their price."""
    from neurorl.experiment import runner
    from neurorl.experiment.checkpoint import load_checkpoint
    from neurorl.experiment.cli import main
    from neurorl.experiment.config import from_dict
    from neurorl.experiment.logging import read_jsonl

    cfg = {
        "name": "tt", "env": {"id": "CartPole-v1"},
        "agent": {"name": "rstdp", "substeps": 2, "hyper": {"n_rf": 3, "pop": 2}},
        "hardware": {"chip": "pcm", "device": {"update": "tiki_taka", "transfer_every": 2,
                                               "n_reads_per_transfer": 3}},
        "training": {"steps": 512, "n_envs": 8, "chunk_steps": 256, "episode_window": 5},
        "logging": {"wandb": "disabled", "progress": False},
    }
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["run", str(p), "--out", str(out), "--no-progress", "--wandb", "disabled"]) == 0
    chunks = read_jsonl(out / "chunks.jsonl")
    assert [c["env_step"] for c in chunks] == [256, 512]
    # the plastic connections' weight shapes, from the run's own state
    c = from_dict(cfg)
    train = runner.build(c)
    shapes = jax.eval_shape(train.init, runner.member_keys(0, 1)).engine
    shapes = {n: tuple(s.devices.g.shape[2:]) for n, s in shapes.items()}
    assert shapes and all(len(s) == 2 for s in shapes.values())
    updates = 512 // 8  # one learning update per env time step (8 envs share the weights)
    hand = sum(_hand_count(updates, 2, 3, s, True) for s in shapes.values())
    # per chunk: 16 transfers of min(3, n_pre) input lines of n_post weights, per connection
    per_chunk = sum(_hand_count(256 // 8, 2, 3, s, True) for s in shapes.values())
    assert [ch["transfer_reads_per_step"] * 256 for ch in chunks] == pytest.approx(
        [per_chunk, per_chunk])
    assert sum(ch["transfer_reads_per_step"] * 256 for ch in chunks) == pytest.approx(hand)
    assert hand > 0
    # pulses: the engine's counter (both devices) at the end, from the checkpoint
    state, _ = load_checkpoint(out)
    ops = sum(float(np.sum(v)) for k, v in state.items() if k.endswith(".ops"))
    assert ops > 0
    assert sum(ch["learning_pulses_per_step"] * 256 for ch in chunks) == pytest.approx(ops)
    pcm = get_chip("pcm")
    for ch in chunks:  # learning energy: the pulses and the reads, each at its constant
        want = (ch["learning_pulses_per_step"] * pcm.e_learn_pj
                + ch["transfer_reads_per_step"] * pcm.e_synop_pj) * 1e-12
        assert ch["energy_parts_j"]["learning"] == pytest.approx(want, rel=1e-6)
    s = json.loads((out / "summary.json").read_text())
    m = s["members"][0]
    assert m["transfer_reads_per_step"] == pytest.approx(hand / 512)
    assert "Tiki-Taka transfers" in s["energy_model"]["counts"]
