"""Continual-learning metrics: performance, forgetting, transfer, adaptation time, plasticity loss.

All functions are host-side post-processing of evaluation curves (numpy in, numpy / Python
floats out; jax arrays are accepted and converted). The plasticity-loss indicators
(:func:`silent_fraction`, :func:`weight_change`, :func:`effective_rank`) are written with
``jax.numpy`` so they also run inside ``jit`` / ``vmap`` on one network's arrays.

Conventions:
    * ``perf[t, j]`` is the performance of task ``j`` at evaluation ``t`` (time-first). Task ``i``
      (0-based) is trained during evaluations ``[i * evals_per_task, (i + 1) * evals_per_task)``.
    * Performance should be normalised to ``[0, 1]`` (success rate, or a return normalised with
      :func:`normalise_returns`) for the Continual World transfer formula to be meaningful.

Negative returns (the choice that matters for Acrobot-v1 / Pendulum-v1 / MountainCar-v0):
    "Recover 90 % of the pre-shift level" is ill-defined for a negative level (90 % of -100 is
    -90, a *higher* bar). Every return-based metric here therefore measures returns *above a
    reference minimum* ``reference_min`` (e.g. the mean return of a uniformly random policy, or
    the worst possible return -max_steps): a level ``P`` becomes ``P - reference_min`` >= 0 and
    the criterion reads ``MA - r_min >= theta * (P_pre - r_min)``. With ``reference_min=None``
    the raw returns are used (``r_min = 0``), which is only allowed when the pre-shift level is
    positive; otherwise a :class:`~neurorl.errors.ConfigError` asks for ``reference_min``.

References:
    Wołczyk, Zając, Pascanu, Kuciński & Miłoś, "Continual World: A Robotic Benchmark For
    Continual Reinforcement Learning", NeurIPS 2021 (average performance, forgetting, forward
    transfer; ``continualworld/results_processing/tables.py``).
    Lopez-Paz & Ranzato, "Gradient Episodic Memory for Continual Learning", NeurIPS 2017
    (ACC, BWT, FWT from the matrix R).
    Dohare et al., "Loss of plasticity in deep continual learning", Nature 632, 2024 (dead
    units, weight magnitude, effective rank).
    Roy & Vetterli, "The effective rank: a measure of effective dimensionality", EUSIPCO 2007.
    Taylor & Stone, "Transfer Learning for RL Domains: A Survey", JMLR 10, 2009
    (time-to-threshold, area metrics).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neurorl.errors import ConfigError, ShapeError

Array = Any

__all__ = [
    "AdaptationResult",
    "adaptation_time",
    "adaptation_times",
    "average_performance",
    "backward_transfer",
    "bootstrap_ci",
    "continual_summary",
    "effective_rank",
    "episode_returns",
    "forgetting",
    "forward_transfer",
    "gem_accuracy",
    "gem_backward_transfer",
    "gem_forward_transfer",
    "mean_last",
    "normalise_returns",
    "performance_matrix",
    "silent_fraction",
    "task_auc",
    "weight_change",
    "weight_magnitude",
]


# --------------------------------------------------------------------------------------------
# host-side validation helpers


def _as_2d(perf: Array, name: str) -> np.ndarray:
    arr = np.asarray(perf, dtype=np.float64)
    if arr.ndim != 2:
        raise ShapeError(name, "[T_eval, N_tasks]", arr.shape)
    return arr


def _positive_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(field, value, "an integer >= 1")
    return int(value)


def _check_layout(perf: np.ndarray, evals_per_task: int, k: int) -> int:
    n_tasks = perf.shape[1]
    if perf.shape[0] != n_tasks * evals_per_task:
        raise ShapeError(
            "perf (evaluations x tasks)",
            f"[N_tasks * evals_per_task, N_tasks] = [{n_tasks * evals_per_task}, {n_tasks}]",
            perf.shape,
        )
    if k > evals_per_task:
        raise ConfigError("k", k, f"an integer in [1, evals_per_task={evals_per_task}]")
    return n_tasks


# --------------------------------------------------------------------------------------------
# normalisation


def normalise_returns(returns: Array, reference_min: float, reference_max: float) -> np.ndarray:
    """Affine map of returns onto ``[0, 1]``-ish performance: ``(R - r_min) / (r_max - r_min)``.

    Use the return of a random policy (or the worst possible return) as ``reference_min`` and
    the solved threshold / maximum return as ``reference_max`` (e.g. CartPole-v1: 0 / 500 is not
    right for a random policy, which gets ~22; Acrobot-v1: -500 / 0). Values are not clipped,
    so a policy worse than the reference gives a negative number.

    Args:
        returns: episode returns, any shape.
        reference_min: return mapped to 0.
        reference_max: return mapped to 1; must differ from ``reference_min``.

    Returns:
        float64 array of the same shape.
    """
    if not np.isfinite(reference_min) or not np.isfinite(reference_max):
        raise ConfigError("reference_min/max", (reference_min, reference_max), "finite floats")
    if reference_max == reference_min:
        raise ConfigError(
            "reference_max", reference_max, f"a value != reference_min={reference_min}"
        )
    return (np.asarray(returns, dtype=np.float64) - reference_min) / (reference_max - reference_min)


def mean_last(curve: Array, k: int = 5, axis: int = 0) -> np.ndarray:
    """Mean of the last ``k`` entries along ``axis`` (Continual World smooths every p this way)."""
    k = _positive_int(k, "k")
    arr = np.asarray(curve, dtype=np.float64)
    if arr.shape[axis] < k:
        raise ConfigError("k", k, f"at most the curve length {arr.shape[axis]}")
    return np.take(arr, np.arange(arr.shape[axis] - k, arr.shape[axis]), axis=axis).mean(axis=axis)


# --------------------------------------------------------------------------------------------
# Continual World (Wołczyk et al. 2021)


def average_performance(perf: Array, k: int = 5) -> float:
    """Continual World average performance ``P(T) = (1/N) sum_i p_i(T)``.

    ``p_i(T)`` is the mean of the last ``k`` evaluations of task ``i`` at the end of the sequence.

    Args:
        perf: ``[T_eval, N_tasks]`` performance of every task at every evaluation.
        k: number of final evaluations averaged (5 in Continual World).

    Returns:
        The average performance (float).
    """
    perf = _as_2d(perf, "perf")
    return float(mean_last(perf, k, axis=0).mean())


def forgetting(perf: Array, evals_per_task: int, k: int = 5) -> np.ndarray:
    """Continual World forgetting per task ``F_i = p_i(i Delta) - p_i(T)``.

    ``p_i(i Delta)`` is the mean of the last ``k`` evaluations of task ``i`` while task ``i`` is the
    one being trained; ``p_i(T)`` is the mean of its last ``k`` evaluations of the whole run. As in
    ``tables.py`` of Continual World, the reported scalar is the mean over *all* tasks (the last
    task's forgetting is 0 by construction); take ``forgetting(...).mean()``. Positive = forgot.

    Args:
        perf: ``[N_tasks * evals_per_task, N_tasks]`` performance curves.
        evals_per_task: evaluations per task (``Delta`` in evaluations).
        k: evaluations averaged at each end point.

    Returns:
        ``[N_tasks]`` float64 array of per-task forgetting.
    """
    perf = _as_2d(perf, "perf")
    evals_per_task = _positive_int(evals_per_task, "evals_per_task")
    k = _positive_int(k, "k")
    n = _check_layout(perf, evals_per_task, k)
    at_end_of_own = np.array(
        [perf[(i + 1) * evals_per_task - k : (i + 1) * evals_per_task, i].mean() for i in range(n)]
    )
    return at_end_of_own - mean_last(perf, k, axis=0)


def task_auc(perf: Array, evals_per_task: int) -> np.ndarray:
    """``AUC_i = (1/Delta) int_{(i-1)Delta}^{i Delta} p_i(t) dt`` as the mean of the evaluations of
    task ``i`` inside its own training window (the discrete form used in Continual World).

    Args:
        perf: ``[N_tasks * evals_per_task, N_tasks]`` curves of a continual run, or
            ``[evals_per_task, N_tasks]`` single-task from-scratch curves (column i = task i).
        evals_per_task: evaluations per task.

    Returns:
        ``[N_tasks]`` AUCs.
    """
    perf = _as_2d(perf, "perf")
    evals_per_task = _positive_int(evals_per_task, "evals_per_task")
    n = perf.shape[1]
    if perf.shape[0] == evals_per_task:  # single-task baselines: one window per column
        return perf.mean(axis=0)
    _check_layout(perf, evals_per_task, 1)
    return np.array(
        [perf[i * evals_per_task : (i + 1) * evals_per_task, i].mean() for i in range(n)]
    )


def forward_transfer(perf: Array, baseline_perf: Array, evals_per_task: int) -> np.ndarray:
    """Continual World normalised forward transfer ``FT_i = (AUC_i - AUC_i^b) / (1 - AUC_i^b)``.

    ``AUC_i^b`` is the AUC of a from-scratch single-task run on task ``i``. Requires performance
    normalised so that 1 is the best possible value; ``FT_i`` is ``nan`` when ``AUC_i^b == 1``
    (nothing left to transfer). Report ``np.nanmean`` over tasks.

    Args:
        perf: ``[N_tasks * evals_per_task, N_tasks]`` continual-run curves.
        baseline_perf: ``[evals_per_task, N_tasks]`` single-task curves (column i = task i from
            scratch), or ``[N_tasks]`` precomputed baseline AUCs.
        evals_per_task: evaluations per task.

    Returns:
        ``[N_tasks]`` forward transfer per task.
    """
    auc = task_auc(perf, evals_per_task)
    base = np.asarray(baseline_perf, dtype=np.float64)
    if base.ndim == 1:
        auc_b = base
    else:
        if base.shape != (evals_per_task, auc.shape[0]):
            raise ShapeError("baseline_perf", (evals_per_task, auc.shape[0]), base.shape)
        auc_b = base.mean(axis=0)
    if auc_b.shape != auc.shape:
        raise ShapeError("baseline AUCs", auc.shape, auc_b.shape)
    denom = 1.0 - auc_b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom != 0.0, (auc - auc_b) / np.where(denom != 0.0, denom, 1.0), np.nan)


def performance_matrix(perf: Array, evals_per_task: int, k: int = 5) -> np.ndarray:
    """GEM's ``R[i, j]`` from Continual-World-style curves: performance on task ``j`` at the end of
    task ``i``'s training, each the mean of the last ``k`` evaluations of task ``i``'s window.

    Args:
        perf: ``[N_tasks * evals_per_task, N_tasks]`` curves.
        evals_per_task: evaluations per task.
        k: evaluations averaged.

    Returns:
        ``[N_tasks, N_tasks]`` matrix (rows: after training task i; columns: evaluated task j).
    """
    perf = _as_2d(perf, "perf")
    evals_per_task = _positive_int(evals_per_task, "evals_per_task")
    k = _positive_int(k, "k")
    n = _check_layout(perf, evals_per_task, k)
    return np.stack(
        [
            perf[(i + 1) * evals_per_task - k : (i + 1) * evals_per_task].mean(axis=0)
            for i in range(n)
        ]
    )


def backward_transfer(perf: Array, evals_per_task: int, k: int = 5) -> float:
    """Backward transfer from curves: GEM's ``BWT`` on :func:`performance_matrix`.

    ``BWT = 1/(N-1) sum_{i<N-1} (p_i(T) - p_i(i Delta))`` with Continual World's smoothed end
    points, i.e. minus the mean forgetting over the first ``N - 1`` tasks. Negative = forgetting.
    """
    return gem_backward_transfer(performance_matrix(perf, evals_per_task, k))


def continual_summary(
    perf: Array,
    evals_per_task: int,
    *,
    k: int = 5,
    baseline_perf: Array | None = None,
    random_init: Array | None = None,
) -> dict[str, float]:
    """All sequence-level metrics of one run as plain floats (for a wandb summary / JSON report).

    Keys: ``average_performance``, ``forgetting`` (mean over tasks), ``backward_transfer``
    (needs >= 2 tasks), ``forward_transfer`` (nan-mean; only with ``baseline_perf``) and
    ``gem_forward_transfer`` (only with ``random_init``).
    """
    perf = _as_2d(perf, "perf")
    out = {
        "average_performance": average_performance(perf, k),
        "forgetting": float(forgetting(perf, evals_per_task, k).mean()),
    }
    r = performance_matrix(perf, evals_per_task, k)
    if r.shape[0] >= 2:
        out["backward_transfer"] = gem_backward_transfer(r)
        if random_init is not None:
            out["gem_forward_transfer"] = gem_forward_transfer(r, random_init)
    if baseline_perf is not None:
        ft = forward_transfer(perf, baseline_perf, evals_per_task)
        out["forward_transfer"] = float(np.nanmean(ft)) if np.any(np.isfinite(ft)) else math.nan
    return out


def bootstrap_ci(
    values: Array,
    *,
    num_bootstrap: int = 4000,
    confidence: float = 0.9,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds with a percentile-bootstrap confidence interval (Continual World protocol).

    Seeds are resampled with replacement ``num_bootstrap`` times; the interval is the
    ``(1 - confidence) / 2`` and ``1 - (1 - confidence) / 2`` quantiles (midpoint interpolation) of
    the resampled means, as in Continual World's ``BootstrapCI`` (4000 samples, 90 %).

    Args:
        values: ``[S, ...]`` one metric value (or array of values) per seed.
        num_bootstrap: bootstrap resamples.
        confidence: coverage in ``(0, 1)``.
        seed: seed of the resampling (same seed, same interval).

    Returns:
        ``(mean, lower, upper)`` arrays shaped ``values.shape[1:]``.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim < 1 or v.shape[0] < 1:
        raise ShapeError("values", "[S, ...] with S >= 1 seeds", v.shape)
    num_bootstrap = _positive_int(num_bootstrap, "num_bootstrap")
    if not 0.0 < confidence < 1.0:
        raise ConfigError("confidence", confidence, "a float in (0, 1), e.g. 0.9")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.shape[0], size=(num_bootstrap, v.shape[0]))
    means = v[idx].mean(axis=1)  # [num_bootstrap, ...]
    alpha = (1.0 - confidence) / 2.0
    lo = np.quantile(means, alpha, axis=0, method="midpoint")
    hi = np.quantile(means, 1.0 - alpha, axis=0, method="midpoint")
    return v.mean(axis=0), lo, hi


# --------------------------------------------------------------------------------------------
# GEM (Lopez-Paz & Ranzato 2017)


def _square(r: Array) -> np.ndarray:
    r = np.asarray(r, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] != r.shape[1]:
        raise ShapeError("R (performance on task j after training task i)", "[N, N]", r.shape)
    return r


def gem_accuracy(r: Array) -> float:
    """``ACC = (1/N) sum_i R[N-1, i]``: mean final performance over tasks (GEM eq. ACC)."""
    r = _square(r)
    return float(r[-1].mean())


def gem_backward_transfer(r: Array) -> float:
    """``BWT = 1/(N-1) sum_{i<N-1} (R[N-1, i] - R[i, i])``; negative BWT means forgetting.

    Args:
        r: ``[N, N]`` with ``R[i, j]`` the performance on task ``j`` after training task ``i``.
    """
    r = _square(r)
    n = r.shape[0]
    if n < 2:
        raise ShapeError("R", "[N, N] with N >= 2", r.shape)
    return float(np.mean(r[-1, :-1] - np.diag(r)[:-1]))


def gem_forward_transfer(r: Array, random_init: Array) -> float:
    """``FWT = 1/(N-1) sum_{i>=1} (R[i-1, i] - b_i)``, ``b_i`` = performance on task ``i`` at random
    initialisation (0-based indices).

    Args:
        r: ``[N, N]`` performance matrix.
        random_init: ``[N]`` performance of the randomly initialised model on each task.
    """
    r = _square(r)
    n = r.shape[0]
    b = np.asarray(random_init, dtype=np.float64)
    if b.shape != (n,):
        raise ShapeError("random_init", (n,), b.shape)
    if n < 2:
        raise ShapeError("R", "[N, N] with N >= 2", r.shape)
    return float(np.mean(np.array([r[i - 1, i] - b[i] for i in range(1, n)])))


# --------------------------------------------------------------------------------------------
# adaptation time after a shift (operational proposal, see module docstring)


class AdaptationResult(NamedTuple):
    """Adaptation to one shift.

    Attributes:
        tau_episodes: number of post-shift episodes until (and including) the first one at which
            the trailing moving average reaches ``theta`` of the pre-shift level (1 = recovered at
            once); ``math.inf`` when never recovered (then ``censored`` is True).
        tau_steps: environment steps from the shift to the end of that episode (``math.inf`` if
            censored; ``None`` when no episode lengths were given).
        censored: True when the level was not recovered within the post-shift segment
            (right-censored: the true tau is larger than the segment length).
        pre_level: ``P_pre``, mean raw return over the last ``window`` pre-shift episodes.
        drop: ``P_pre - min(post-shift returns)`` (raw return units; > 0 means a drop).
        recovery_area: ``sum_e (P_pre - R_e)_+`` over post-shift episodes, in return x episodes.
        recovery_area_steps: the same weighted by episode length (return x steps) or ``None``.
        threshold: the raw-return level that counted as recovered,
            ``r_min + theta * (P_pre - r_min)``.
        tau_chip_s: chip time of ``tau_steps``: ``tau_steps * chip_step_s`` seconds, where
            ``chip_step_s = substeps * dt`` is the chip time of one env step (``math.inf`` if
            censored; ``None`` without ``lengths`` or ``chip_step_s``).
        energy_j: energy spent from the shift until recovery, ``sum_e length_e * E_e`` over the
            same ``tau`` post-shift episodes, ``E_e`` the energy per env step during episode
            ``e`` (``math.inf`` if censored; ``None`` without ``lengths`` or ``step_energy``).
        experience_steps: env steps of experience the agent needed after the shift before it
            played at the recovered level: the first *full* window of ``window`` consecutive
            post-shift episodes whose mean reaches ``threshold``, measured from ``shift_step``
            to the earliest start among those episodes (0 = no adaptation was needed;
            ``math.inf`` when no full window reaches it; ``None`` without ``start_steps``).
            Unlike ``tau_steps`` it does not count the recovered episodes themselves (which
            made an agent with long, good episodes look slow) and no single lucky episode
            counts as recovery.
    """

    tau_episodes: float
    tau_steps: float | None
    censored: bool
    pre_level: float
    drop: float
    recovery_area: float
    recovery_area_steps: float | None
    threshold: float
    tau_chip_s: float | None = None
    energy_j: float | None = None
    experience_steps: float | None = None


def adaptation_time(
    returns: Array,
    shift_episode: int,
    *,
    window: int = 10,
    theta: float = 0.9,
    reference_min: float | None = None,
    target: float | None = None,
    lengths: Array | None = None,
    end_episode: int | None = None,
    chip_step_s: float | None = None,
    step_energy: Array | None = None,
    start_steps: Array | None = None,
    shift_step: float | None = None,
) -> AdaptationResult:
    """Time to recover after a shift: ``tau = min{k : MA_W(k) - r_min >= theta (P_pre - r_min)}``.

    ``P_pre`` is the mean return of the ``window`` episodes before the shift (episodes
    ``shift_episode - window .. shift_episode - 1``). ``MA_W(k)`` is the trailing mean of the
    *post-shift* returns of episodes ``1..k`` after the shift, over at most ``window`` of them
    (pre-shift episodes never count, so an agent cannot "recover" on its old returns). ``k`` is
    1-based: ``tau = 1`` means the first post-shift episode already met the bar.

    Args:
        returns: ``[E]`` episode returns in order.
        shift_episode: index of the first episode played under the shifted dynamics.
        window: ``W``, episodes in the pre-shift mean and the moving average.
        theta: fraction of the pre-shift level (above ``reference_min``) that counts as recovered.
        reference_min: return of a reference-worst policy (e.g. random) that maps to 0; required
            when the pre-shift level is <= 0 (negative-return tasks). See module docstring.
        target: an absolute return threshold instead of ``theta * P_pre`` (e.g. 475 for
            CartPole-v1); overrides ``theta``.
        lengths: optional ``[E]`` episode lengths in steps, for ``tau_steps``.
        end_episode: episode index where the post-shift segment ends (exclusive; e.g. the next
            shift). Defaults to ``E``.
        chip_step_s: chip time of one env step in seconds, ``substeps * dt`` (e.g. 5 substeps of
            Loihi 2's 1 ms step: 0.005), for ``tau_chip_s``; needs ``lengths``. This is the time
            one network instance needs to play those env steps one after another.
        step_energy: ``[E]`` energy per env step in joules during each episode (the chip energy
            model's per-step figure logged with each episode), for ``energy_j``; needs
            ``lengths``.
        start_steps: ``[E]`` env-step clock at which each episode started (total env steps
            over parallel envs, the clock of ``shift_step``), for ``experience_steps``.
        shift_step: the env-step clock of the shift; needed with ``start_steps``.

    Returns:
        An :class:`AdaptationResult`.

    Example:
        Three pre-shift episodes of return 100 (bar 90), post-shift returns 40, 80, 150 with
        lengths 40, 80, 150 and 1e-6 J per step: the moving average reaches 90 at the third
        post-shift episode, so ``tau_steps = 270``, ``tau_chip_s = 270 * 0.005 = 1.35`` s with
        ``chip_step_s=0.005``, and ``energy_j = 270e-6`` J.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise ShapeError("returns", "[E] episode returns", r.shape)
    window = _positive_int(window, "window")
    end = r.shape[0] if end_episode is None else int(end_episode)
    if not (window <= shift_episode < end <= r.shape[0]):
        raise ConfigError(
            "shift_episode",
            shift_episode,
            f"an episode index with at least window={window} episodes before it and one after "
            f"(segment end {end}, {r.shape[0]} episodes)",
        )
    if not 0.0 < theta <= 1.0 and target is None:
        raise ConfigError("theta", theta, "a float in (0, 1]")
    pre = float(r[shift_episode - window : shift_episode].mean())
    if target is not None:
        threshold = float(target)
    else:
        if reference_min is None:
            if pre <= 0.0:
                raise ConfigError(
                    "reference_min",
                    None,
                    f"a reference return (e.g. a random policy's) since the pre-shift level {pre} "
                    "is <= 0 and 'theta * level' is undefined for negative returns",
                )
            r_min = 0.0
        else:
            r_min = float(reference_min)
        threshold = r_min + theta * (pre - r_min)

    post = r[shift_episode:end]
    csum = np.concatenate([[0.0], np.cumsum(post)])
    ks = np.arange(1, post.shape[0] + 1)
    lo = np.maximum(ks - window, 0)
    moving = (csum[ks] - csum[lo]) / (ks - lo)
    # Tolerance so that a moving average equal to the bar by hand arithmetic is not lost to
    # float rounding in the cumulative sum.
    hit = np.nonzero(moving >= threshold - 1e-9 * max(1.0, abs(threshold)))[0]
    censored = hit.size == 0
    tau = math.inf if censored else float(hit[0] + 1)

    deficit = np.maximum(pre - post, 0.0)
    if (chip_step_s is not None or step_energy is not None) and lengths is None:
        raise ConfigError(
            "lengths", None, "episode lengths in env steps (needed for chip time and energy)"
        )
    tau_steps = area_steps = tau_chip = energy_j = None
    if lengths is not None:
        ln = np.asarray(lengths, dtype=np.float64)
        if ln.shape != r.shape:
            raise ShapeError("lengths", r.shape, ln.shape)
        post_len = ln[shift_episode:end]
        tau_steps = math.inf if censored else float(post_len[: int(tau)].sum())
        area_steps = float((deficit * post_len).sum())
        if chip_step_s is not None:
            if not (math.isfinite(chip_step_s) and chip_step_s > 0):
                raise ConfigError("chip_step_s", chip_step_s, "a float > 0 (seconds per env step)")
            tau_chip = math.inf if censored else tau_steps * float(chip_step_s)
        if step_energy is not None:
            en = np.asarray(step_energy, dtype=np.float64)
            if en.shape != r.shape:
                raise ShapeError("step_energy", r.shape, en.shape)
            if not np.all(np.isfinite(en) & (en >= 0)):
                raise ConfigError("step_energy", "non-finite or negative", "energies >= 0 J")
            post_en = en[shift_episode:end]
            n = 0 if censored else int(tau)
            energy_j = math.inf if censored else float((post_len[:n] * post_en[:n]).sum())
    experience = None
    if start_steps is not None:
        if shift_step is None:
            raise ConfigError("shift_step", None, "the env-step clock of the shift (with "
                              "start_steps)")
        st = np.asarray(start_steps, dtype=np.float64)
        if st.shape != r.shape:
            raise ShapeError("start_steps", r.shape, st.shape)
        experience = math.inf
        if post.shape[0] >= window:
            full = (csum[window:] - csum[:-window]) / window  # mean of post episodes j..j+W-1
            ok = np.nonzero(full >= threshold - 1e-9 * max(1.0, abs(threshold)))[0]
            if ok.size:
                j = int(ok[0])
                first = float(st[shift_episode + j : shift_episode + j + window].min())
                experience = max(first - float(shift_step), 0.0)
    return AdaptationResult(
        experience_steps=experience,
        tau_episodes=tau,
        tau_steps=tau_steps,
        censored=censored,
        pre_level=pre,
        drop=float(pre - post.min()),
        recovery_area=float(deficit.sum()),
        recovery_area_steps=area_steps,
        threshold=threshold,
        tau_chip_s=tau_chip,
        energy_j=energy_j,
    )


def adaptation_times(
    returns: Array,
    shift_episodes: Sequence[int],
    shift_steps: Sequence[float] | None = None,
    **kwargs: Any,
) -> list[AdaptationResult]:
    """:func:`adaptation_time` for every shift; each post-shift segment ends at the next shift.

    ``shift_steps`` (one env-step clock per shift) goes with ``start_steps`` in ``kwargs``.
    """
    shifts = [int(s) for s in shift_episodes]
    if sorted(shifts) != shifts:
        raise ConfigError("shift_episodes", shift_episodes, "increasing episode indices")
    if shift_steps is not None and len(shift_steps) != len(shifts):
        raise ConfigError("shift_steps", shift_steps, f"{len(shifts)} env steps, one per shift")
    ends = shifts[1:] + [None]
    steps = list(shift_steps) if shift_steps is not None else [None] * len(shifts)
    return [
        adaptation_time(returns, s, end_episode=e, shift_step=t, **kwargs)
        for s, e, t in zip(shifts, ends, steps, strict=True)
    ]


def shift_segments(
    end_steps: Array, lengths: Array, n_envs: int, boundaries: Sequence[int]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pre- and post-shift episode indices for each shift boundary of a multi-env run.

    An episode of length ``L`` that ended at total env step ``S`` (summed over ``n_envs``
    parallel envs) started at ``S - L * n_envs``. Pre-shift: episodes that ended by the
    boundary. Post-shift: episodes that *started* at or after it and ended by the next boundary
    (each segment's drop and recovery are its own). Episodes straddling the boundary count on
    neither side: with ``n_envs`` envs the first ``n_envs`` episodes to end after a shift were
    mostly played before it.

    Returns:
        ``[(pre_idx, post_idx), ...]``, one pair per boundary; feed
        ``returns[concat(pre, post)]`` with ``shift_episode = len(pre)`` to
        :func:`adaptation_time`.
    """
    ends = np.asarray(end_steps)
    starts = ends - np.asarray(lengths) * int(n_envs)
    bounds = [int(b) for b in boundaries]
    out = []
    for b, nxt in zip(bounds, [*bounds[1:], None][: len(bounds)], strict=True):
        post = (starts >= b) if nxt is None else (starts >= b) & (ends <= nxt)
        out.append((np.nonzero(ends <= b)[0], np.nonzero(post)[0]))
    return out


def episode_returns(
    rewards: Array, dones: Array, step_marks: Sequence[int] = ()
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Episode returns and lengths from a per-step reward stream (the training scan's output).

    Args:
        rewards: ``[T]`` rewards.
        dones: ``[T]`` bool, True on the last step of an episode (terminated or truncated).
            A trailing unfinished episode is dropped.
        step_marks: env-step indices (e.g. shift times ``t_s``) to convert into episode indices:
            the episode that contains the mark (the first one ending at or after it), so that the
            pre-shift episodes saw no shifted step and the straddling episode counts as
            post-shift. A mark after the last finished episode maps to ``E``.

    Returns:
        ``(returns [E], lengths [E], episode_marks)``.
    """
    rw = np.asarray(rewards, dtype=np.float64)
    dn = np.asarray(dones).astype(bool)
    if rw.ndim != 1 or dn.shape != rw.shape:
        raise ShapeError("rewards/dones", "[T] and [T]", (rw.shape, dn.shape))
    ends = np.nonzero(dn)[0]
    csum = np.concatenate([[0.0], np.cumsum(rw)])
    starts = np.concatenate([[0], ends[:-1] + 1])[: ends.shape[0]].astype(int)
    rets = csum[ends + 1] - csum[starts]
    lens = (ends + 1 - starts).astype(np.int64)
    marks = [int(np.searchsorted(ends, m, side="left")) for m in step_marks]
    return rets, lens, marks


# --------------------------------------------------------------------------------------------
# plasticity-loss indicators (jax.numpy: usable inside jit / vmap for one network)


def silent_fraction(spikes: Array) -> jax.Array:
    """Fraction of neurons that never spiked in the window (the spiking "dead unit" rate).

    Dohare et al. (2024) and Abbas et al. (2023) track the fraction of dead (never-active) ReLU
    units as a loss-of-plasticity diagnostic; for spiking neurons the analogue is a neuron with
    zero spikes over the whole recording.

    Args:
        spikes: ``[T, N]`` spikes (or any activity, nonzero = active) of one network's layer.

    Returns:
        Scalar float32 in ``[0, 1]``.
    """
    if jnp.ndim(spikes) != 2:
        raise ShapeError("spikes", "[T, N]", jnp.shape(spikes))
    active = jnp.any(jnp.asarray(spikes) != 0, axis=0)
    return 1.0 - jnp.mean(active.astype(jnp.float32))


def weight_change(before: Any, after: Any, relative: bool = False) -> jax.Array:
    """Frobenius norm of the weight change ``||W_after - W_before||`` over all leaves of a pytree.

    Shrinking weight changes under a constant learning rate signal loss of plasticity; growing
    weight magnitude is the other Dohare et al. (2024) indicator (use ``before = 0``-tree).

    Args:
        before: weights (array or pytree).
        after: weights with the same structure.
        relative: divide by ``||W_before||`` (``inf`` if that is 0 and the change is not).

    Returns:
        Scalar float32.
    """

    def sq_norm(tree: Any) -> jax.Array:
        leaves = jax.tree.leaves(jax.tree.map(lambda a: jnp.sum(jnp.square(jnp.asarray(a))), tree))
        return sum(leaves, jnp.float32(0.0))

    change = jnp.sqrt(
        sq_norm(jax.tree.map(lambda a, b: jnp.asarray(b) - jnp.asarray(a), before, after))
    )
    if not relative:
        return change
    norm = jnp.sqrt(sq_norm(before))
    return change / norm


def weight_magnitude(weights: Any) -> jax.Array:
    """Mean absolute weight over all leaves of a pytree (Dohare et al. 2024 track its growth)."""
    leaves = [jnp.asarray(w) for w in jax.tree.leaves(weights)]
    if not leaves:
        raise ConfigError("weights", weights, "an array or a non-empty pytree of arrays")
    total = sum(jnp.sum(jnp.abs(w)) for w in leaves)
    return total / jnp.float32(sum(int(np.prod(w.shape)) for w in leaves))


def effective_rank(features: Array) -> jax.Array:
    """Effective rank ``exp(H(p))`` with ``p = sigma / ||sigma||_1`` (Roy & Vetterli 2007).

    ``sigma`` are the singular values of the feature matrix; ``H`` is the Shannon entropy in nats
    with ``0 log 0 = 0``. Ranges from 1 (rank one) to ``min(M, N)`` (all singular values equal).
    Dohare et al. (2024) use it on a layer's representation ``[samples, units]``.

    Args:
        features: ``[M, N]`` matrix (e.g. spike counts of N neurons over M inputs, or a weight
            matrix).

    Returns:
        Scalar float32 (0 for the all-zero matrix).
    """
    if jnp.ndim(features) != 2:
        raise ShapeError("features", "[M, N]", jnp.shape(features))
    s = jnp.linalg.svd(jnp.asarray(features, dtype=jnp.float32), compute_uv=False)
    total = jnp.sum(s)
    p = s / jnp.where(total > 0, total, 1.0)
    h = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))
    return jnp.where(total > 0, jnp.exp(h), 0.0)
