"""One run, one final return: the terminal table, the plot data, summary.json, report.md and the
wandb summary all give the mean return of the last ``training.episode_window`` episodes.

Also: the printed output when stdout is not a terminal (one full line per chunk, "compiling ..."
before the first), sweep output named by what varies, and the group table over seeds.
"""

import csv
import json

import numpy as np
import pytest
import yaml

from neurorl.experiment import reporting
from neurorl.experiment.cli import main
from neurorl.experiment.logging import read_jsonl

from .wandb_reader import summarize

TINY = {
    "name": "tiny",
    "env": {"id": "CartPole-v1"},
    "agent": {"name": "rstdp", "substeps": 2, "hyper": {"n_rf": 3}},
    "training": {
        "steps": 800,
        "n_envs": 4,
        "n_seeds": 2,
        "chunk_steps": 400,
        "episode_window": 7,  # not the plots' old fixed 20, nor the default 100
        "threshold": 475,
    },
    "logging": {"wandb": "offline", "progress": True},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("consistency")
    cfg = d / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = d / "run"
    capture = d / "stdout.txt"
    import contextlib
    import io

    buf = io.StringIO()  # not a terminal: the plain line-per-chunk form
    with contextlib.redirect_stdout(buf):
        assert main(["run", str(cfg), "--out", str(out)]) == 0
    capture.write_text(buf.getvalue())
    return out, buf.getvalue()


def _last_window_means(out, window):
    eps = read_jsonl(out / "episodes.jsonl")
    means = []
    for m in sorted({e["member"] for e in eps}):
        rets = [e["return"] for e in sorted(eps, key=lambda e: e["env_step"]) if e["member"] == m]
        means.append(float(np.mean(rets[-window:])))
    return means


def test_final_return_is_the_same_in_summary_plot_data_table_and_wandb(run):
    out, stdout = run
    W = TINY["training"]["episode_window"]
    expected = _last_window_means(out, W)  # computed here from the raw episode log
    summary = json.loads((out / "summary.json").read_text())
    finals = [m["final_return"] for m in summary["members"]]
    assert finals == pytest.approx(expected, abs=1e-9)
    assert all(m["episode_window"] == W for m in summary["members"])

    # plot data: each member's curve ends at its final return; the CSV's median at their median
    from neurorl.experiment import plots

    data = reporting.collect(out)
    grid, curves = plots.group_curves(data["episodes"], data["labels"], W)
    assert curves["rstdp"][:, -1] == pytest.approx(finals, abs=1e-9)
    rows = list(csv.DictReader((out / "plots" / "lifelong.csv").open()))
    last = rows[-1]
    assert last["label"] == "rstdp" and float(last["env_step"]) == pytest.approx(grid[-1])
    assert float(last["median"]) == pytest.approx(np.median(finals), abs=1e-9)

    # report.md and the printed tables: the same numbers, to one decimal
    table = (out / "report.md").read_text()
    for f in finals:
        assert f"| {f:.1f} |" in table
        assert f"| {f:.1f} |" in stdout
    assert f"| {np.median(finals):.1f} |" in table and f"| {np.median(finals):.1f} |" in stdout
    assert f"last {W} episodes" in table and f"last {W} episodes" in stdout

    # the wandb summary of each seed's offline run
    got = {}
    for r in sorted((out / "wandb").glob("offline-run-*")):
        _, s, _, meta = summarize(next(r.glob("run-*.wandb")))
        got[meta.display_name] = (s["final_return"], s["episode_window"])
    assert len(got) == 2
    for m in summary["members"]:
        assert got[m["name"]] == (pytest.approx(m["final_return"], abs=1e-9), W)


def test_output_to_a_file_is_one_full_line_per_chunk(run):
    out, stdout = run
    lines = stdout.splitlines()
    i = next(i for i, line in enumerate(lines) if "compiling ..." in line)
    progress = [line for line in lines if line.startswith("tiny: ") and "env steps (" in line]
    assert i < lines.index(progress[0])  # "compiling ..." comes before the first chunk's line
    assert len(progress) == 2  # 800 steps in chunks of 400
    chunks = read_jsonl(out / "chunks.jsonl")
    for line, step in zip(progress, (400, 800), strict=True):
        assert f"{step:,}/800 env steps" in line and "steps/s" in line and "elapsed" in line
        assert "…" not in line and "..." not in line  # nothing cut to fit a width
        rets = [c["mean_return"] for c in chunks if c["env_step"] == step]
        assert f"return {np.median(rets):.1f}" in line
    assert "includes compilation" in progress[0]
    # the tables print as full markdown rows, not squeezed to 80 columns
    assert any(line.startswith("| tiny-s0 |") and line.count("|") == 10 for line in lines)
    assert max(len(line) for line in lines) > 80


def test_seed_stats_median_iqr_and_iqm_with_bootstrap_interval():
    x = [10.0, 20.0, 30.0, 40.0, 1000.0]
    st = reporting.seed_stats(x)
    assert st["median"] == 30.0 and (st["q25"], st["q75"]) == (20.0, 40.0)
    # IQM of 5 values: trim int(0.25 * 5) = 1 from each end, mean of the middle 3 (rliable)
    assert st["iqm"] == pytest.approx(30.0)
    lo, hi = st["iqm_ci"]
    assert lo <= st["iqm"] <= hi and lo >= 10.0 and hi <= 1000.0
    assert reporting.seed_stats(x)["iqm_ci"] == st["iqm_ci"]  # seeded
    # against a by-hand numpy percentile bootstrap of the IQM (many resamples: the two agree to
    # the resampling noise)
    rng = np.random.default_rng(1)
    xs = np.sort(rng.choice(np.asarray(x), size=(20000, 5), replace=True), axis=1)
    boot = xs[:, 1:4].mean(axis=1)
    ref = np.percentile(boot, [2.5, 97.5])
    assert (lo, hi) == pytest.approx(tuple(ref), abs=12.0)
    assert reporting.seed_stats([1.0, 2.0])["iqm_ci"] is None
    assert reporting.seed_stats([5.0, 5.0, 5.0])["iqm_ci"] == (5.0, 5.0)


def _brute_force_u_test(x, y):
    """Mann-Whitney by hand: midranks of the pooled values (inf last), U of the first group,
    and its exact null by enumerating every split of the pooled values."""
    import itertools

    pooled = np.asarray(list(x) + list(y), dtype=float)
    order = np.argsort(pooled, kind="stable")
    ranks = np.empty(pooled.size)
    i = 0
    while i < pooled.size:  # midranks of ties
        j = i
        while j + 1 < pooled.size and pooled[order[j + 1]] == pooled[order[i]]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    n = len(x)
    u = lambda idx: ranks[list(idx)].sum() - n * (n + 1) / 2.0
    u_obs = u(range(n))
    null = np.array([u(c) for c in itertools.combinations(range(pooled.size), n)])
    return u_obs, float(np.mean(null <= u_obs + 1e-9)), float(np.mean(null >= u_obs - 1e-9))


@pytest.mark.parametrize("x, y", [
    ([1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 10.0]),           # separated: p = 1/252
    ([2808.0, 4992.0, 3512.0, 4584.0, 4128.0],
     [1416.0, 1880.0, 1032.0, 3568.0, 2088.0]),                         # one inversion
    ([1.0, None, 3.0, None, 5.0], [6.0, 7.0, None, 9.0, 10.0]),          # never = inf, tied
    ([None] * 5, [None] * 5),                                            # nobody got there
    ([0.0, 0.0, 400.0, 1000.0], [0.0, 500.0, 500.0, 700.0, 900.0, None]),  # ties, 4 vs 6
])
def test_rank_test_is_the_exact_mann_whitney_test(x, y):
    from scipy.stats import mannwhitneyu

    t = reporting.rank_test(x, y)
    inf = lambda v: [np.inf if e is None else e for e in v]
    u, p_less, p_greater = _brute_force_u_test(inf(x), inf(y))
    assert t["u"] == pytest.approx(u)
    assert t["p_less"] == pytest.approx(p_less) and t["p_greater"] == pytest.approx(p_greater)
    assert (t["n_x"], t["n_y"]) == (len(x), len(y))
    if len(set(inf(x)) | set(inf(y))) == len(x) + len(y):  # no ties: scipy's exact test agrees
        assert t["p_less"] == pytest.approx(
            mannwhitneyu(x, y, alternative="less", method="exact").pvalue)


@pytest.mark.parametrize("n_x, n_y, shift", [(20, 20, 0.6), (12, 12, 0.0), (11, 30, 1.0)])
def test_rank_test_of_many_seeds_samples_the_null_and_agrees_with_the_normal_approximation(
        n_x, n_y, shift):
    # 20 vs 20 seeds has 1.4e11 splits: enumerating them exhausted memory (the continual
    # benchmark's --combine on 20 tuning seeds was killed); beyond EXACT_SPLITS the null is
    # sampled, so the p-values match scipy's tie-corrected normal approximation (accurate at
    # these sizes) within the sampling error, with failed seeds (None) tied at the top
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(n_x + n_y)
    x = list(rng.normal(0.0, 1.0, n_x).round(1)) + [None] * 2
    y = list(rng.normal(shift, 1.0, n_y).round(1)) + [None] * 3
    t = reporting.rank_test(x, y)
    assert t["method"].startswith("monte carlo")
    inf = lambda v: [np.inf if e is None else e for e in v]
    for alt in ("less", "greater"):
        ref = mannwhitneyu(inf(x), inf(y), alternative=alt, method="asymptotic").pvalue
        assert t["p_" + alt] == pytest.approx(ref, abs=0.01)
    assert t == reporting.rank_test(x, y)  # seeded: the same p-values every time


def test_rank_test_enumerates_up_to_ten_seeds_a_side():
    assert reporting.rank_test(list(range(10)), list(range(5, 15)))["method"] == "exact"
    assert reporting.rank_test(list(range(11)), list(range(5, 16)))["method"] != "exact"


def test_rank_test_with_fewer_than_two_values_in_a_group_has_no_p_value():
    assert reporting.rank_test([], [1.0, 2.0])["p_less"] is None
    assert reporting.rank_test([1.0], [2.0, 3.0])["p_greater"] is None


def test_iqm_matches_a_numpy_interquartile_mean():
    rng = np.random.default_rng(3)
    for n in (4, 8, 12, 20):
        x = rng.normal(100, 30, n)
        k = int(0.25 * n)
        assert reporting.iqm(x) == pytest.approx(np.sort(x)[k : n - k].mean())


def test_sweep_names_progress_by_what_varies_and_ends_with_a_group_table(tmp_path, capsys):
    base = {**TINY, "training": {**TINY["training"], "n_seeds": 1, "steps": 400}}
    base["logging"] = {"wandb": "disabled", "progress": True}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    sweep = tmp_path / "sw.yaml"
    sweep.write_text(
        yaml.safe_dump(
            {
                "method": "grid",
                "base": "base.yaml",
                "parameters": {
                    "agent.hyper.lr": {"values": [0.0001, 0.0003]},
                    "training.seed": {"values": [0, 1, 2]},
                },
            }
        )
    )
    out = tmp_path / "sweep"
    assert main(["sweep", str(sweep), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "sw: lr=0.0001: compiling ..." in text and "sw: lr=0.0003: 400/400 env steps" in text
    assert "-g0" not in text and "-g1" not in text
    table = [line for line in text.splitlines() if line.startswith("| lr=")]
    assert len(table) == 2 and all("| 3 |" in line for line in table)  # 3 seeds per group
    data = reporting.collect(out)
    stats = reporting.group_stats(data["summaries"])
    for label, st in stats.items():
        finals = [s["final_return"] for s in data["summaries"] if s["label"] == label]
        assert st["median"] == pytest.approx(np.median(finals))
        assert f"| {label} | 3 | {np.median(finals):.1f} |" in text
    assert (out / "plots" / "compare.png").exists()  # two labels: one panel each


def test_one_agent_gets_no_duplicate_compare_panel(run):
    out, _ = run
    assert (out / "plots" / "lifelong.png").exists()
    assert not (out / "plots" / "compare.png").exists()


def test_run_on_a_sweep_file_points_to_neurorl_sweep(tmp_path, capsys):
    sweep = tmp_path / "sw.yaml"
    sweep.write_text(yaml.safe_dump({"method": "grid", "base": "b.yaml", "parameters": {}}))
    for cmd in ("run", "validate"):
        assert main([cmd, str(sweep)]) == 2
        err = capsys.readouterr().err
        assert f"neurorl sweep {sweep}" in err and "Did you mean" not in err


def test_terminal_bar_says_compiling_until_the_first_chunk(monkeypatch):
    import contextlib
    import io

    from neurorl.experiment.progress import RunProgress

    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    monkeypatch.setenv("COLUMNS", "160")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        with RunProgress("sw: agent=rstdp", 800, seeds=2, window=7) as bar:
            assert bar.terminal
            first = buf.getvalue()
            bar.update(400, 1234.0, 21.5)
    text = buf.getvalue()
    assert "compiling ..." in first and "sw: agent=rstdp" in first
    assert "1,234 steps/s" in text and "return 21.5" in text
    assert text.index("compiling ...") < text.index("1,234 steps/s")
