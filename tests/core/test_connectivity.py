"""Connectivity statistics against their distributions (binomial bounds, exact fan-in)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy import stats

from neurorl.core import connectivity as cx
from neurorl.errors import ConfigError


def test_probabilistic_edge_count_within_binomial_bounds():
    n_pre, n_post, p = 300, 200, 0.05
    counts = []
    for seed in range(5):
        pre, post = cx.build_edges("probabilistic", seed, n_pre, n_post, p=p)
        counts.append(len(pre))
        # no duplicate pairs, indices in range
        assert len(set(zip(pre.tolist(), post.tolist(), strict=True))) == len(pre)
        assert pre.max() < n_pre and post.max() < n_post
    lo, hi = stats.binom.ppf([1e-4, 1 - 1e-4], n_pre * n_post, p)
    assert all(lo <= c <= hi for c in counts), (counts, lo, hi)
    # in-degrees follow Binomial(n_pre, p): mean and variance
    pre, post = cx.build_edges("probabilistic", 11, n_pre, n_post, p=p)
    indeg = np.bincount(post, minlength=n_post)
    assert abs(indeg.mean() - n_pre * p) < 4 * np.sqrt(n_pre * p * (1 - p) / n_post)
    assert 0.6 < indeg.var() / (n_pre * p * (1 - p)) < 1.5


def test_probabilistic_p_edge_cases_and_wrong_p_caught():
    assert len(cx.build_edges("probabilistic", 0, 10, 10, p=0.0)[0]) == 0
    assert len(cx.build_edges("probabilistic", 0, 10, 10, p=1.0)[0]) == 100
    # a generator that silently used p/2 would fall outside the bounds used above
    pre, _ = cx.build_edges("probabilistic", 0, 300, 200, p=0.025)
    lo, _ = stats.binom.ppf([1e-4, 1 - 1e-4], 300 * 200, 0.05)
    assert len(pre) < lo
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="probability"):
            cx.build_edges("probabilistic", 0, 10, 10, p=bad)


def test_fixed_fan_in_exact_k_distinct_sources():
    pre, post = cx.build_edges("fixed_fan_in", 3, 50, 40, k=7)
    indeg = np.bincount(post, minlength=40)
    assert (indeg == 7).all()
    for j in range(40):
        src = pre[post == j]
        assert len(np.unique(src)) == 7 and src.max() < 50
    # uniform over sources: every source used about 40 * 7 / 50 times
    outdeg = np.bincount(pre, minlength=50)
    assert stats.chisquare(outdeg).pvalue > 1e-4
    with pytest.raises(ConfigError, match=r"fixed_fan_in\)\.k"):
        cx.build_edges("fixed_fan_in", 0, 5, 5, k=6)


def test_all_to_all_and_one_to_one():
    pre, post = cx.build_edges("all_to_all", 0, 4, 3)
    assert len(pre) == 12 and set(zip(pre.tolist(), post.tolist(), strict=True)) == {
        (i, j) for i in range(4) for j in range(3)
    }
    pre, post = cx.build_edges("all_to_all", 0, 4, 4, allow_self=False)
    assert len(pre) == 12 and (pre != post).all()
    pre, post = cx.build_edges("one_to_one", 0, 5, 5)
    np.testing.assert_array_equal(pre, post)
    with pytest.raises(ConfigError, match="same size"):
        cx.build_edges("one_to_one", 0, 5, 6)


def test_unknown_rule_and_kwarg_name_closest():
    with pytest.raises(ConfigError, match="probabilistic"):
        cx.build_edges("probabilistc", 0, 5, 5, p=0.1)
    with pytest.raises(ConfigError, match="'k'"):
        cx.validate_rule("fixed_fan_in", {"kk": 3})


def test_weight_initialisers_moments():
    key = jax.random.PRNGKey(0)
    shape = (200, 100)
    w = cx.make_weight_init({"init": "normal", "mean": 0.5, "std": 0.1})(key, shape, 200, 100)
    assert abs(float(w.mean()) - 0.5) < 0.005 and abs(float(w.std()) - 0.1) < 0.005
    w = cx.make_weight_init({"init": "uniform", "low": -1.0, "high": 2.0})(key, shape, 1, 1)
    assert float(w.min()) >= -1.0 and float(w.max()) < 2.0 and abs(float(w.mean()) - 0.5) < 0.03
    w = cx.make_weight_init(0.25)(key, (3,), 1, 1)
    np.testing.assert_array_equal(np.asarray(w), 0.25)
    w = cx.make_weight_init("glorot")(key, shape, 200, 100)
    assert abs(float(w.std()) - np.sqrt(2 / 300)) < 0.003
    w = cx.make_weight_init({"init": "lognormal", "mean": 0.0, "sigma": 0.5})(key, shape, 1, 1)
    assert float(w.min()) > 0 and abs(float(np.log(w).std()) - 0.5) < 0.01
    with pytest.raises(ConfigError, match="normal"):
        cx.make_weight_init("normall")
    with pytest.raises(ConfigError, match="std"):
        cx.make_weight_init({"init": "normal", "std": -1.0})


def test_fixed_fan_out_exact_out_degree_distinct_targets_no_self():
    from neurorl.core.connectivity import build_edges

    pre, post = build_edges("fixed_fan_out", 3, 50, 50, k=7, allow_self=False)
    assert np.bincount(pre, minlength=50).tolist() == [7] * 50
    assert not np.any(pre == post)
    assert len(set(zip(pre.tolist(), post.tolist(), strict=True))) == len(pre)  # no multapses
    # every post neuron is reachable: the draw is uniform (in-degrees spread around 7)
    indeg = np.bincount(post, minlength=50)
    assert indeg.min() >= 1 and 4 < indeg.mean() < 10
    pre2, post2 = build_edges("fixed_fan_out", 3, 50, 50, k=7, allow_self=False)
    np.testing.assert_array_equal(post, post2)  # the seed fixes the structure


def test_fixed_fan_out_k_too_large_is_a_clear_error():
    from neurorl.core.connectivity import build_edges

    with pytest.raises(ConfigError, match="fixed_fan_out"):
        build_edges("fixed_fan_out", 0, 10, 10, k=10, allow_self=False)


def test_vectorised_bernoulli_pairs_distribution():
    """The geometric-skip sampler (large probabilistic projections) against Bernoulli trials:
    edge count within Binomial bounds, no duplicates, in/out-degrees Binomial (mean, variance,
    chi-square of the degree histogram), pairs uniform over the index space."""
    n_pre, n_post, p = 400, 300, 0.03
    counts = []
    for seed in range(5):
        pre, post = cx.bernoulli_pairs(np.random.default_rng(seed), n_pre, n_post, p)
        counts.append(len(pre))
        flat = pre.astype(np.int64) * n_post + post
        assert (np.diff(flat) > 0).all()  # sorted, no duplicates
        assert pre.max() < n_pre and post.max() < n_post and pre.min() >= 0
    lo, hi = stats.binom.ppf([1e-4, 1 - 1e-4], n_pre * n_post, p)
    assert all(lo <= c <= hi for c in counts), (counts, lo, hi)
    pre, post = cx.bernoulli_pairs(np.random.default_rng(11), 2000, 2000, 0.01)
    for deg, n_other in ((np.bincount(post, minlength=2000), 2000),
                         (np.bincount(pre, minlength=2000), 2000)):
        mean, var = n_other * 0.01, n_other * 0.01 * 0.99
        assert abs(deg.mean() - mean) < 4 * np.sqrt(var / 2000)
        assert 0.85 < deg.var() / var < 1.15
        ks = np.arange(0, 45)
        expected = stats.binom.pmf(ks, n_other, 0.01) * 2000
        observed = np.bincount(np.minimum(deg, 44), minlength=45)[:45]
        keep = expected > 5
        chi2 = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
        assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-4
    # flat positions uniform: KS against U(0, 1)
    flat = (pre.astype(np.int64) * 2000 + post) / (2000 * 2000)
    assert stats.kstest(flat, "uniform").pvalue > 1e-4
    # a sampler with p/2 would fail the count bounds
    half = len(cx.bernoulli_pairs(np.random.default_rng(0), n_pre, n_post, p / 2)[0])
    assert half < lo
    assert len(cx.bernoulli_pairs(np.random.default_rng(0), 7, 9, 1.0)[0]) == 63
    assert len(cx.bernoulli_pairs(np.random.default_rng(0), 7, 9, 0.0)[0]) == 0


def test_probabilistic_large_uses_vectorised_sampler_without_self():
    n = 8000  # 6.4e7 pairs > the row-loop limit
    pre, post = cx.build_edges("probabilistic", 3, n, n, p=0.001, allow_self=False)
    assert not (pre == post).any()
    lo, hi = stats.binom.ppf([1e-4, 1 - 1e-4], n * n - n, 0.001)
    assert lo <= len(pre) <= hi
