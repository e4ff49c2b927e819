"""Reports of a finished run or sweep: plots, ``report.md`` and the tables printed at the end.

One number, one definition: a member's *final return* is the mean return of its last
``training.episode_window`` episodes (``summary.json``'s ``final_return``, also in the wandb
summary), and the return curves use the same window, so a curve ends where the table says.
Members are grouped by their label -- what the sweep varies (``agent=rstdp``), or the agent of a
single run -- and each group is summarised over its seeds by the median and interquartile range,
and by the interquartile mean (IQM) with a 95% percentile-bootstrap interval, the aggregate
Agarwal et al. recommend for few runs.

References:
    Agarwal, Schwarzer, Castro, Courville, Bellemare, "Deep Reinforcement Learning at the Edge of
    the Statistical Precipice", NeurIPS 2021 (IQM; bootstrap confidence intervals; rliable).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from neurorl.errors import ConfigError
from neurorl.experiment.checkpoint import atomic_write_text

# ----------------------------------------------------------------------------------------------
# statistics over seeds
# ----------------------------------------------------------------------------------------------


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: the mean of the middle 50% (``scipy.stats.trim_mean(x, 0.25)``, as
    rliable computes it)."""
    from scipy.stats import trim_mean

    return float(trim_mean(np.asarray(values, dtype=float), 0.25))


def seed_stats(
    values: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Median, quartiles and IQM (with a percentile-bootstrap interval) of per-seed values.

    Args:
        values: one value per seed (e.g. final returns).
        confidence: the bootstrap interval's coverage.
        n_resamples: bootstrap resamples (seeded: the same values give the same interval).
        seed: the bootstrap's random seed.

    Returns:
        ``{"n", "median", "q25", "q75", "iqm", "iqm_ci"}``; ``iqm_ci`` is ``None`` with fewer
        than 3 seeds (a bootstrap of 1 or 2 values says nothing).

    References:
        Agarwal et al., NeurIPS 2021 (IQM with stratified bootstrap intervals; with one task the
        stratified bootstrap is the plain one).
    """
    from scipy.stats import bootstrap, trim_mean

    x = np.asarray([v for v in values if v is not None], dtype=float)
    if x.size == 0:
        return {"n": 0, "median": None, "q25": None, "q75": None, "iqm": None, "iqm_ci": None}
    out: dict[str, Any] = {
        "n": int(x.size),
        "median": float(np.median(x)),
        "q25": float(np.percentile(x, 25)),
        "q75": float(np.percentile(x, 75)),
        "iqm": iqm(x),
        "iqm_ci": None,
    }
    if x.size >= 3:
        if np.all(x == x[0]):
            out["iqm_ci"] = (float(x[0]), float(x[0]))
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scipy's note on few distinct values
                res = bootstrap(
                    (x,),
                    lambda s, axis: trim_mean(s, 0.25, axis=axis),
                    vectorized=True,
                    n_resamples=n_resamples,
                    confidence_level=confidence,
                    method="percentile",
                    rng=np.random.default_rng(seed),
                )
            ci = res.confidence_interval
            out["iqm_ci"] = (float(ci.low), float(ci.high))
    return out


# the largest number of splits rank_test enumerates (C(n_x + n_y, n_x)): 10 vs 10 seeds is
# 184,756; beyond it (12 vs 12: 2.7 million, 20 vs 20: 1.4e11, which exhausts memory) the null
# distribution is sampled instead
EXACT_SPLITS = 200_000
MC_RESAMPLES = 99_999


def rank_test(x: Sequence[float | None], y: Sequence[float | None],
              seed: int = 0) -> dict[str, Any]:
    """One-sided Mann-Whitney U tests of two groups of per-seed values (exact for few seeds).

    For per-seed measures where a seed can fail (adaptation steps, steps to a threshold): a seed
    given as ``None`` or ``inf`` never got there and ranks above every finite value (ties among
    them share a rank). The null distribution of U is enumerated over every split of the pooled
    values (``scipy.stats.permutation_test`` with ``n_resamples=inf``: 252 splits for 5 vs 5,
    so the smallest attainable p-value is 1/252 = 0.004), exact with ties, no normal
    approximation -- as long as there are at most ``EXACT_SPLITS`` (200,000) splits, i.e. up
    to 10 vs 10 seeds. Larger groups draw ``MC_RESAMPLES`` (99,999) random splits from a
    generator seeded with ``seed`` (scipy's p-value (k + 1) / (n + 1), never below the
    exact one by more than the sampling error, ~0.002 at p = 0.05), because enumerating 20 vs
    20 seeds' 1.4e11 splits does not fit in memory.

    Args:
        x: per-seed values of the first group (e.g. a local rule's adaptation steps).
        y: per-seed values of the second group (e.g. the baseline's).

    Returns:
        ``{"u", "p_less", "p_greater", "n_x", "n_y", "method"}``: U of ``x`` (pairs with
        ``x < y`` plus half the ties), the p-value that ``x`` tends to be smaller than ``y``
        and that it tends to be larger; both ``None`` when a group has fewer than 2 values
        (scipy's permutation test needs two per group; one seed against one says nothing
        anyway); ``method``: ``"exact"`` or ``"monte carlo (99999 splits)"``.

    References:
        Mann & Whitney (1947). Ann. Math. Statist. 18:50-60. Agarwal et al. (2021), Deep RL at
        the edge of the statistical precipice, NeurIPS (report uncertainty over few seeds).
    """
    from scipy.stats import mannwhitneyu, permutation_test

    def arr(v: Sequence[float | None]) -> np.ndarray:
        return np.asarray([np.inf if e is None else float(e) for e in v], dtype=float)

    a, b = arr(x), arr(y)
    out: dict[str, Any] = {"u": None, "p_less": None, "p_greater": None,
                           "n_x": int(a.size), "n_y": int(b.size)}
    if a.size < 2 or b.size < 2:
        return out

    def u_stat(s: np.ndarray, t: np.ndarray, axis: int = -1) -> np.ndarray:
        return mannwhitneyu(s, t, axis=axis, method="asymptotic").statistic

    out["u"] = float(u_stat(a, b))
    exact = math.comb(a.size + b.size, a.size) <= EXACT_SPLITS
    out["method"] = "exact" if exact else f"monte carlo ({MC_RESAMPLES} splits)"
    for alt, key in (("less", "p_less"), ("greater", "p_greater")):
        res = permutation_test((a, b), u_stat, permutation_type="independent",
                               vectorized=True, alternative=alt,
                               n_resamples=np.inf if exact else MC_RESAMPLES,
                               rng=np.random.default_rng(seed))
        out[key] = float(res.pvalue)
    return out


# ----------------------------------------------------------------------------------------------
# tables
# ----------------------------------------------------------------------------------------------


def _fmt(x, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


MEMBER_COLUMNS = (
    "member",
    "label",
    "chip",
    "episodes",
    "final return",
    "best rolling",
    "steps to threshold",
    "spikes/step",
    "energy/step (J)",
)


def member_rows(summaries: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """One row per member (seed): the columns of :data:`MEMBER_COLUMNS`."""
    return [
        [
            str(s["name"]),
            str(s.get("label") or s.get("agent") or ""),
            str(s.get("chip", "")),
            str(s.get("episodes", "")),
            _fmt(s.get("final_return")),
            _fmt(s.get("best_rolling_return")),
            str(s.get("steps_to_threshold") or "-"),
            _fmt(s.get("spikes_per_step")),
            _fmt(s.get("energy_per_step_j"), ".3g"),
        ]
        for s in summaries
    ]


GROUP_COLUMNS = (
    "label",
    "seeds",
    "final return: median",
    "IQR",
    "IQM [95% CI]",
    "reached threshold",
    "steps to threshold (median)",
    "energy/step (J, median)",
)


def group_stats(summaries: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per label, in first-seen order: :func:`seed_stats` of the final returns, how many seeds
    reached the threshold, the median steps to it (over those that did) and the median energy."""
    by: dict[str, list[Mapping[str, Any]]] = {}
    for s in summaries:
        by.setdefault(str(s.get("label") or s.get("agent")), []).append(s)
    out = {}
    for label, ms in by.items():
        st = seed_stats([m.get("final_return") for m in ms])
        hits = [m["steps_to_threshold"] for m in ms if m.get("steps_to_threshold") is not None]
        energy = [m["energy_per_step_j"] for m in ms if m.get("energy_per_step_j") is not None]
        st.update(
            seeds=len(ms),
            reached=len(hits),
            steps_to_threshold=float(np.median(hits)) if hits else None,
            energy_per_step_j=float(np.median(energy)) if energy else None,
        )
        out[label] = st
    return out


def group_rows(stats: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """The rows of :data:`GROUP_COLUMNS` from :func:`group_stats`."""
    rows = []
    for label, st in stats.items():
        ci = st["iqm_ci"]
        rows.append(
            [
                label,
                str(st["seeds"]),
                _fmt(st["median"]),
                "-" if st["q25"] is None else f"{st['q25']:.1f} to {st['q75']:.1f}",
                _fmt(st["iqm"]) + ("" if ci is None else f" [{ci[0]:.1f}, {ci[1]:.1f}]"),
                f"{st['reached']}/{st['seeds']}",
                "-" if st["steps_to_threshold"] is None else f"{st['steps_to_threshold']:.0f}",
                _fmt(st["energy_per_step_j"], ".3g"),
            ]
        )
    return rows


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A markdown table: text columns left-aligned, the rest right-aligned."""
    left = {"member", "label", "chip"}
    out = ["| " + " | ".join(columns) + " |"]
    out.append("|" + "|".join("---" if c in left else "---:" for c in columns) + "|")
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], terminal: bool | None = None
) -> None:
    """A rich table on a terminal; the markdown table in full otherwise (no width to fit)."""
    from rich.console import Console

    console = Console()
    if terminal is None:
        terminal = console.is_terminal
    if not terminal:
        print("\n".join([title, *markdown_table(columns, rows)]), flush=True)
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title))
    for c in columns:
        table.add_column(escape(c), justify="left" if c in ("member", "label", "chip") else "right",
                         overflow="fold")  # wrap a long label, never cut it
    for r in rows:
        table.add_row(*(escape(x) for x in r))
    console.print(table)


# ----------------------------------------------------------------------------------------------
# a run or sweep directory -> plots and report.md
# ----------------------------------------------------------------------------------------------


def collect(run_dir: str | Path) -> dict[str, Any]:
    """Everything the report draws from a run or sweep directory (members renumbered globally).

    Returns:
        ``{"episodes", "labels" (member -> label), "windows" (member -> episode_window),
        "summaries", "boundaries", "threshold"}``.
    """
    from neurorl.experiment.logging import read_jsonl

    run_dir = Path(run_dir)
    dirs = sorted(p for p in run_dir.glob("group-*") if p.is_dir()) or [run_dir]
    episodes, labels, windows, summaries, bounds, threshold = [], {}, {}, [], [], None
    notes: list[dict[str, Any]] = []  # runs a numeric fault stopped, or resumed with a change
    offset = 0
    for d in dirs:
        if not (d / "summary.json").exists():
            continue
        summary = json.loads((d / "summary.json").read_text())
        cfg = yaml.safe_load((d / "config.yaml").read_text())
        training = cfg.get("training", {})
        threshold = training.get("threshold", threshold)
        bounds = summary.get("boundaries", bounds)
        for e in read_jsonl(d / "episodes.jsonl"):
            episodes.append({**e, "member": e["member"] + offset})
        for m in summary["members"]:
            i = m["member"] + offset
            labels[i] = m.get("label") or summary["agent"]
            windows[i] = int(m.get("episode_window") or training.get("episode_window", 100))
            summaries.append(
                {
                    **m,
                    "member": i,
                    "agent": summary["agent"],
                    "chip": summary["chip"],
                    "run_name": summary.get("name"),
                }
            )
        offset += len(summary["members"])
        if summary.get("status") == "non_finite" or summary.get("config_changes"):
            notes.append({"dir": d.name if d != run_dir else None,
                          "label": next((m.get("label") for m in summary["members"]), None)
                          or summary.get("agent"),
                          "status": summary.get("status"), "fault": summary.get("fault") or {},
                          "config_changes": summary.get("config_changes") or []})
    return {
        "episodes": episodes,
        "labels": labels,
        "windows": windows,
        "summaries": summaries,
        "boundaries": bounds,
        "threshold": threshold,
        "faults": notes,
        "missing": missing_groups(run_dir),
    }


def missing_groups(run_dir: str | Path) -> list[str]:
    """The groups of a sweep directory (``sweep.json``) without a ``summary.json`` -- never run,
    still running, or stopped by an error -- as ``group-NNN (label)``; ``[]`` for a run."""
    run_dir = Path(run_dir)
    try:
        groups = json.loads((run_dir / "sweep.json").read_text()).get("groups") or []
    except (OSError, ValueError):
        return []
    return [f"group-{gi:03d} ({g.get('label') or 'base'})" for gi, g in enumerate(groups)
            if not (run_dir / f"group-{gi:03d}" / "summary.json").exists()]


def missing_line(missing: Sequence[str], run_dir: str | Path) -> str:
    """The line that says which sweep groups a report leaves out and how to run them."""
    return (f"missing {len(missing)} group(s), not in the tables: {', '.join(missing)}; "
            f"`neurorl resume {run_dir}` runs them")


def fault_lines(notes: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per run (sweep group) a numeric fault stopped, and per change a resume made
    (``summary.json``: ``status``, ``fault``, ``config_changes``), for ``report.md`` and the
    console: a sweep's table must not pass over a group that did not finish."""
    out = []
    for n in notes:
        where = f"{n['dir']} ({n['label']})" if n.get("dir") else str(n["label"])
        for c in n["config_changes"]:
            what = ", ".join(f"{k}: {v.get('from')!r} -> {v.get('to')!r}"
                             for k, v in (c.get("set") or {}).items()) or "unchanged (--force)"
            after = " after a numeric fault" if c.get("after_fault") is not None else ""
            out.append(f"- {where}: resumed at env step {c.get('env_step', 0):,}{after} with "
                       f"{what}")
        if n["status"] == "non_finite":
            f = n["fault"]
            q = str(f.get("quantity") or "non-finite values")
            step, ck = f.get("env_step"), f.get("checkpoint_env_step")
            at = f" at env step {step:,}" if isinstance(step, int) else ""
            kept = (f"last checkpoint at env step {ck:,}" if isinstance(ck, int) and ck > 0
                    else "no checkpoint")
            out.append(f"- {where}: STOPPED{at} by {q} ({kept}); its final returns are of the "
                       "steps before the fault. `neurorl resume` does not rerun it unchanged "
                       "(it would replay the fault): `--retry-faulted --set KEY=VALUE` for a "
                       "sweep, `--set KEY=VALUE` for a run")
    return out


def _task_names(run_dir: Path, n_boundaries: int) -> list[str] | None:
    """Names of the task sequence's tasks (``shifts.tasks.names``, else ``task i: params``)."""
    cfgs = sorted(run_dir.glob("group-*/config.yaml")) or [run_dir / "config.yaml"]
    if not cfgs[0].exists():
        return None
    tasks = (yaml.safe_load(cfgs[0].read_text()).get("shifts") or {}).get("tasks")
    if not tasks:
        return None
    names = tasks.get("names") or [
        f"task {i}: " + ", ".join(f"{k}={v:g}" for k, v in t.items())
        for i, t in enumerate(tasks["tasks"])
    ]
    n = n_boundaries + 1  # a cycling sequence repeats its names
    return [names[i % len(names)] for i in range(n)]


def _title(summaries: Sequence[Mapping[str, Any]], run_dir: Path) -> str:
    """``<run name>: <agents>`` for a run, ``sweep <file name>: <agents>`` for a sweep (the
    directory's name is left out: the same sweep run elsewhere gets the same report)."""
    agents = ", ".join(dict.fromkeys(str(s["agent"]) for s in summaries))
    if (run_dir / "sweep.json").exists():
        sweep = json.loads((run_dir / "sweep.json").read_text()).get("sweep", run_dir.name)
        return f"sweep {Path(str(sweep)).stem}: {agents}"
    names = {s.get("run_name") for s in summaries} - {None}
    return f"{names.pop() if len(names) == 1 else run_dir.name}: {agents}"


def _window(windows: Mapping[int, int]) -> int | Mapping[int, int]:
    ws = set(windows.values())
    return ws.pop() if len(ws) == 1 else dict(windows)


def report(run_dir: str | Path, *, quiet: bool = False) -> dict[str, Path]:
    """Draw a run's or sweep's plots and write ``report.md``.

    Writes ``plots/lifelong.png`` (median and IQR over seeds per label, shifts marked),
    ``plots/lifelong.csv`` (the curves' data), ``plots/compare.png`` (one panel per label; only
    with two labels or more), ``plots/return_vs_energy.png`` (or synaptic events per step for a
    chip without an energy model) and ``report.md`` (the member and group tables).

    Args:
        run_dir: a finished run or sweep directory.
        quiet: do not print the written paths.

    Returns:
        ``{"lifelong", "curves", "rules", "energy", "table"}`` -> path, for what was written.

    Raises:
        ConfigError: ``run_dir`` holds no finished run (no ``summary.json``).
    """
    from neurorl.experiment import plots

    run_dir = Path(run_dir)
    data = collect(run_dir)
    episodes, labels, summaries = data["episodes"], data["labels"], data["summaries"]
    bounds = data["boundaries"]
    if not summaries:
        missing = f" ({missing_line(data['missing'], run_dir)})" if data["missing"] else ""
        raise ConfigError(
            "RUN_DIR", str(run_dir), f"a finished run or sweep directory (summary.json){missing}"
        )
    window = _window(data["windows"])
    out: dict[str, Path] = {}
    pd = run_dir / "plots"
    if episodes:
        out["lifelong"] = plots.plot_lifelong(
            pd / "lifelong.png",
            episodes,
            labels,
            window,
            bounds,
            task_names=_task_names(run_dir, len(bounds)),
            title=_title(summaries, run_dir),
            threshold=data["threshold"],
        )
        grid, curves = plots.group_curves(episodes, labels, window)
        out["curves"] = plots.write_curves_csv(pd / "lifelong.csv", grid, curves)
        if len(set(labels.values())) > 1:
            out["rules"] = plots.plot_rules_side_by_side(
                pd / "compare.png", episodes, labels, window, bounds
            )
        else:  # one label: the lifelong plot already is the one panel
            (pd / "compare.png").unlink(missing_ok=True)
    pts = [
        {
            "label": s["label"],
            "energy_per_step_j": s.get("energy_per_step_j"),
            "synops_per_step": s.get("synops_per_step"),
            "final_return": s.get("final_return"),
        }
        for s in summaries
        if s.get("final_return") is not None
    ]
    w_text = window if isinstance(window, int) else None
    if pts and all((p["energy_per_step_j"] or 0) > 0 for p in pts):
        out["energy"] = plots.plot_return_vs_energy(pd / "return_vs_energy.png", pts, window=w_text)
    elif pts and all(p["synops_per_step"] is not None for p in pts):
        # no energy model (the float reference): synaptic events per step, what energy scales with
        chips = sorted({s["chip"] for s in summaries})
        out["energy"] = plots.plot_return_vs_energy(
            pd / "return_vs_energy.png",
            pts,
            x="synops_per_step",
            unit="",
            xlabel=f"synaptic events per env step (chip {', '.join(chips)}: no energy model)",
            window=w_text,
        )
    stats = group_stats(summaries)
    w_note = (
        f"{window} episodes" if isinstance(window, int) else "each run's training.episode_window"
    )
    lines = [
        f"# {_title(summaries, run_dir)}",
        "",
        f"Final return: mean return of the last {w_note} (training.episode_window), the value "
        "the curves in plots/ end at.",
        "",
        "## By label (over seeds)",
        "",
        *markdown_table(GROUP_COLUMNS, group_rows(stats)),
        "",
        "IQM: interquartile mean over seeds, with a 95% percentile-bootstrap interval "
        "(3 seeds or more; Agarwal et al. 2021).",
        "",
        "## Members",
        "",
        *markdown_table(MEMBER_COLUMNS, member_rows(summaries)),
    ]
    notes = fault_lines(data["faults"])
    if notes:
        lines += ["", "## Numeric faults and resume changes", "", *notes]
    if data["missing"]:
        lines += ["", "## Missing groups", "", missing_line(data["missing"], run_dir)]
    atomic_write_text(run_dir / "report.md", "\n".join(lines) + "\n")
    out["table"] = run_dir / "report.md"
    if not quiet:
        print(f"report: {', '.join(str(p) for p in out.values())}")
    return out


def print_report_tables(run_dir: str | Path, *, members: bool = True) -> None:
    """Print a finished run's or sweep's tables: the members (optional) and the label groups."""
    data = collect(run_dir)
    summaries = data["summaries"]
    if not summaries:
        return
    window = _window(data["windows"])
    w = f"last {window} episodes" if isinstance(window, int) else "last episode_window episodes"
    title = _title(summaries, Path(run_dir))
    if members:
        print_table(
            f"{title} (final return: mean of the {w})", MEMBER_COLUMNS, member_rows(summaries)
        )
    print_table(
        f"{title}: by label over seeds (final return: mean of the {w})",
        GROUP_COLUMNS,
        group_rows(group_stats(summaries)),
    )
    notes = fault_lines(data["faults"])
    if notes:
        print("\n".join(["numeric faults and resume changes:", *notes]), flush=True)
    if data["missing"]:
        print(missing_line(data["missing"], run_dir), flush=True)


#: what each file a run or sweep directory may hold is, in the order the closing lines name them
RUN_FILES = (
    ("summary.json", "final return, steps to threshold, energy per step and its parts, "
                     "adaptation, status per member"),
    ("report.md", "the tables above"),
    ("plots", "lifelong.png, lifelong.csv, return_vs_energy.png, compare.png"),
    ("episodes.jsonl", "one line per finished episode"),
    ("chunks.jsonl", "one line per chunk (steps/s, spikes, energy)"),
    ("config.yaml", "the resolved config"),
    ("members.json", "the seeds (members) and their names"),
    ("checkpoint.npz", "the last checkpoint (neurorl resume)"),
    ("sweep.json", "the sweep's members and compiled groups"),
    ("wandb", "wandb's run directories (wandb sync)"),
)


def run_files(run_dir: str | Path) -> list[tuple[str, str]]:
    """The files a finished run or sweep directory holds, with what each is.

    Args:
        run_dir: a run directory, or a sweep directory (``group-NNN/`` run directories inside).

    Returns:
        ``[(path, what)]`` for the files that exist; in a sweep directory the groups' summaries
        are one entry ``group-*/summary.json``.
    """
    run_dir = Path(run_dir)
    out = []
    groups = sorted(p for p in run_dir.glob("group-*") if (p / "summary.json").exists())
    if groups:
        out.append((str(run_dir / "group-*" / "summary.json"),
                    f"one summary per compiled group ({len(groups)}): " + RUN_FILES[0][1]))
    for name, what in RUN_FILES:
        p = run_dir / name
        if p.exists():
            if name == "plots":  # the plots this run drew (compare.png only with two labels)
                what = ", ".join(sorted(f.name for f in p.iterdir() if f.is_file())) or what
            out.append((str(p) + ("/" if p.is_dir() else ""), what))
    return out


def print_run_files(run_dir: str | Path) -> None:
    """The closing lines of a run, resume, sweep or report: where its summary and files are."""
    files = run_files(run_dir)
    if not files:
        return
    width = max(len(p) for p, _ in files)
    print(f"files in {run_dir}:", flush=True)
    for p, what in files:
        print(f"  {p:<{width}}  {what}", flush=True)
