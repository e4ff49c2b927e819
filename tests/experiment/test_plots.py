"""Plots read at a glance for any data: no overlapping tick labels, sensible ranges, one smoothing.

Each figure type is rendered for one agent, for a sweep (3 rules x 5 seeds) and for a chip run
(energies from a few chips, or synaptic events in a narrow range when there is no energy model),
including the data that once made ``return_vs_energy.png`` unreadable (x ticks 1.03e4, 1.035e4,
... smeared together; a y axis spanning 297.1-297.7). Overlap is measured with matplotlib's own
label extents after drawing.
"""

import numpy as np
import pytest

from neurorl.experiment import plots


def _episodes(labels, n_seeds, steps=40_000, seed=0, level=None):
    """Synthetic CartPole-like learning curves: member i of label j rises to a label's level."""
    rng = np.random.default_rng(seed)
    eps, lab = [], {}
    m = 0
    for j, label in enumerate(labels):
        for _ in range(n_seeds):
            lab[m] = label
            t = 0
            while True:
                t += int(rng.integers(40, 400))
                if t > steps:
                    break
                top = level if level is not None else 150 + 100 * j
                r = float(np.clip(top * t / steps + rng.normal(0, 20), 8, 500))
                eps.append({"member": m, "env_step": t, "return": r})
            m += 1
    return eps, lab


CASES = {
    "one agent": (["eprop_ac"], 2, None),
    "sweep": (["rstdp", "eprop_ac", "bptt_ac"], 5, None),
    "chip run": (["float", "loihi2", "xylo", "truenorth", "pcm"], 3, None),
    "flat": (["eprop_ac"], 3, 297.4),
}


def _energy_points(case):
    labels, n, _ = CASES[case]
    rng = np.random.default_rng(1)
    pts = []
    for j, label in enumerate(labels):
        for _ in range(n):
            pts.append(
                {
                    "label": label,
                    # chips span decades of energy; one agent a narrow range
                    "energy_per_step_j": float(10.0 ** (-9 + 1.5 * j) * rng.uniform(1.0, 1.05)),
                    "synops_per_step": float(rng.uniform(1.03e4, 1.035e4)),
                    "final_return": float(297.1 + rng.uniform(0, 0.6)),
                }
            )
    return pts


def _assert_readable(fig):
    assert plots.tick_label_overlaps(fig) == []
    # a scale to read on each axis direction (panels sharing an axis label it once)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    for name in ("xaxis", "yaxis"):
        counts = [len(plots._drawn_tick_labels(getattr(ax, name))) for ax in axes]
        assert max(counts) >= 2, (name, counts)


@pytest.mark.parametrize("case", list(CASES))
def test_lifelong_and_compare_have_no_overlapping_tick_labels(case):
    labels, n, level = CASES[case]
    eps, lab = _episodes(labels, n, steps=400_000, level=level)
    fig = plots.lifelong_figure(eps, lab, 50, boundaries=[100_000, 200_000], threshold=475)
    _assert_readable(fig)
    assert "mean of the last 50 episodes" in fig.axes[0].get_ylabel()  # the smoothing, stated
    fig = plots.compare_figure(eps, lab, 50, boundaries=[100_000])
    _assert_readable(fig)
    assert "mean of the last 50 episodes" in fig.texts[0].get_text()


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("x", ["energy_per_step_j", "synops_per_step"])
def test_return_vs_energy_is_readable_with_a_sensible_range(case, x):
    pts = _energy_points(case)
    unit = "J" if x == "energy_per_step_j" else ""
    fig = plots.energy_figure(pts, x=x, unit=unit, window=100)
    _assert_readable(fig)
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    # final returns 297.1-297.7: the axis shows them as the nearly equal values they are
    ys = np.array([p["final_return"] for p in pts])
    assert hi - lo >= 0.2 * ys.max() * (1 - 1e-9) and lo <= ys.min() and ys.max() <= hi
    xlo, xhi = ax.get_xlim()
    xs = np.array([p[x] for p in pts])
    assert xlo <= xs.min() and xs.max() <= xhi
    if x == "synops_per_step":  # 1.03e4..1.035e4: linear, a span of at least 20% of the value
        assert ax.get_xscale() == "linear" and xhi - xlo >= 0.2 * xs.max() * (1 - 1e-9)
    elif xs.max() / xs.min() > 10:  # decades of energy between chips: log
        assert ax.get_xscale() == "log"


def test_padded_range_keeps_wide_data_and_widens_narrow_data():
    assert plots.padded_range([0.0, 100.0], 10.0) == pytest.approx((-5.0, 105.0))
    lo, hi = plots.padded_range([297.1, 297.7], 59.5)
    assert hi - lo == pytest.approx(59.5) and lo < 297.1 and hi > 297.7
    assert plots.padded_range([np.nan], 1.0) == (0.0, 1.0)


def test_the_overlap_check_detects_overlapping_labels():
    plt = plots._plt()
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_xlim(0, 1)
    ax.set_xticks(np.linspace(0, 1, 30))
    ax.set_xticklabels([f"{v:.6f}" for v in np.linspace(0, 1, 30)])
    assert plots.tick_label_overlaps(fig)  # the check can fail
    plots._declutter(fig)
    assert plots.tick_label_overlaps(fig) == []
    plt.close(fig)


def test_curve_ends_at_the_mean_of_the_last_window_episodes():
    eps, lab = _episodes(["a"], 3, steps=20_000)
    grid, curves = plots.group_curves(eps, lab, 7)
    for m in range(3):
        rets = [e["return"] for e in sorted(eps, key=lambda e: e["env_step"]) if e["member"] == m]
        assert curves["a"][m, -1] == pytest.approx(np.mean(rets[-7:]))
    assert grid[-1] == max(e["env_step"] for e in eps)
