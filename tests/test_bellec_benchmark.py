"""Smoke test of ``benchmarks/bellec.py`` (Bellec et al. 2020's pattern-generation and
evidence-accumulation tasks, e-prop vs BPTT) at tiny size, and its evidence-accumulation data."""

import json

import jax
import numpy as np
import pytest

from tests.bench_modules import load_benchmark


@pytest.fixture(scope="module")
def bellec():
    return load_benchmark("bellec")


@pytest.fixture(scope="module")
def tiny_run(bellec, tmp_path_factory):
    out = tmp_path_factory.mktemp("bellec")
    res = bellec.main(["--seeds", "0", "1", "--iters-reg", "40", "--iters-ea", "3", "--batch",
                       "2", "--delay", "20", "--n-rec", "12", "--rules", "eprop", "bptt",
                       "--out", str(out)])
    return res, out


@pytest.mark.slow
def test_writes_results_and_plots(tiny_run):
    res, out = tiny_run
    data = json.loads((out / "bellec.json").read_text())
    assert {(r["task"], r["rule"]) for r in data["rows"]} == {
        (t, r) for t in ("pattern_generation", "evidence_accumulation") for r in ("eprop", "bptt")}
    md = (out / "bellec.md").read_text()
    assert "pattern_generation" in md and "evidence_accumulation" in md
    for f in res["plots"]:
        assert (out / f).stat().st_size > 1000


@pytest.mark.slow
def test_rules_start_from_the_same_network_and_data(tiny_run):
    """e-prop and BPTT of one seed share initial weights, inputs and targets: the metric of the
    first iteration (before any update) is the same for both rules."""
    res, _ = tiny_run
    for task, curves in res["curves"].items():
        a = np.asarray(curves["eprop"]["metric"])[:, 0]
        b = np.asarray(curves["bptt"]["metric"])[:, 0]
        np.testing.assert_allclose(a, b, rtol=1e-4, err_msg=task)
        assert np.all(np.isfinite(np.asarray(curves["eprop"]["metric"])))


@pytest.mark.slow
def test_both_rules_reduce_the_pattern_error(tiny_run):
    res, _ = tiny_run
    for rule in ("eprop", "bptt"):
        m = np.asarray(res["curves"]["pattern_generation"][rule]["metric"])  # [seeds, iters]
        assert np.all(m[:, -5:].mean(1) < 0.8 * m[:, 0]), (rule, m[:, 0], m[:, -5:].mean(1))


def test_evidence_batch_encodes_the_majority_side(bellec):
    task = bellec.evidence_task(iters=1, batch=32, delay=100)
    x, label, onehot = map(np.asarray, bellec.evidence_batch(task, jax.random.PRNGKey(0), 32))
    T = task.steps
    assert x.shape == (32, T, 40) and set(np.unique(x)) <= {0.0, 1.0}
    left, right = x[:, :, 0:10].sum((1, 2)), x[:, :, 10:20].sum((1, 2))
    # 40 Hz x 100 ms x 10 neurons = 40 expected spikes per cue: the counts decide the label
    assert np.mean((right > left) == (label == 1)) > 0.9
    assert 0 < label.mean() < 1
    recall = x[:, :, 20:30]
    assert recall[:, : T - task.recall].sum() == 0 and recall[:, T - task.recall:].mean() > 0.02
    assert 0.005 < x[:, :, 30:40].mean() < 0.015  # 10 Hz background
    np.testing.assert_array_equal(onehot[:, 0].argmax(-1), label)


@pytest.mark.slow
def test_bptt_gradient_is_bounded_and_aligned_with_eprop(bellec):
    """The benchmark's BPTT (the reset's gradient kept, as the paper's) on a small
    evidence-accumulation network over 1350 steps: its gradient has e-prop's scale and direction.
    With the reset detached it explodes (norm tens to thousands of times e-prop's, direction
    unrelated): why the benchmark's BPTT learned nothing before (plasticity/bptt.py)."""
    import dataclasses

    from neurorl.plasticity import bptt
    from neurorl.plasticity.eprop import supervised_grads

    task = bellec.evidence_task(iters=1, batch=2, delay=300, n_rec=30, c_reg=0.0)
    assert not task.detach_reset  # the benchmark's default
    c = bellec.step_weights(task)
    w = bellec.init_weights(task, jax.random.PRNGKey(0))
    x, _, tb = bellec.evidence_batch(task, jax.random.PRNGKey(1), 2)
    net = bellec.build(task, eprop=True)
    s0 = net.init(jax.random.PRNGKey(0))
    ge = jax.vmap(lambda xi, ti: supervised_grads(
        net, dict(s0, weights=w), {"in": xi}, ti, readout="out", loss="cross_entropy",
        step_weights=c)[0])(x, tb)
    ge = {net.rules[n].connection.name: np.asarray(v.mean(0)).ravel() for n, v in ge.items()}
    for detach in (False, True):
        t = dataclasses.replace(task, detach_reset=detach)
        nb = bellec.build(t, eprop=False)
        sb = nb.init(jax.random.PRNGKey(0))
        gb = jax.vmap(lambda xi, ti, t=t, nb=nb, sb=sb: bptt.value_and_grads(
            nb, lambda r: bellec._loss(t, r["y"], ti, c), w, sb, {"in": xi})[1])(x, tb)
        for k in ("in", "rec"):
            a, b = np.asarray(gb[k].mean(0)).ravel(), ge[k]
            ratio = np.linalg.norm(a) / np.linalg.norm(b)
            cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
            if detach:
                assert ratio > 20 and cos < 0.3, (k, ratio, cos)
            else:
                assert 0.1 < ratio < 3 and cos > 0.5, (k, ratio, cos)
