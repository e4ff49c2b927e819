"""Connection rules and weight initialisers for the N-HAL network front end.

A connection rule builds the *structure* of a projection on the host, once, at compile time:
an edge list ``(pre_idx, post_idx)`` of int32 numpy arrays. The structure fixes the shapes of
everything that is traced (edge count, fan-in), so it is sampled with a numpy seed when the network
is compiled; the *weights* are sampled with a JAX key in ``CompiledNetwork.init(key)``, so a new key
or new weights never recompile.

Rules (``CONNECTIVITY``):

* ``all_to_all``      every pre to every post (optionally without self-connections).
* ``one_to_one``      pre i -> post i (needs n_pre == n_post).
* ``probabilistic``   each pair independently with probability ``p`` (Bernoulli / Erdos-Renyi;
                      the edge count is Binomial(n_pre n_post, p)); as in Brian2's
                      ``Synapses.connect(p=...)`` and the Vogels & Abbott (2005) CUBA network.
* ``fixed_fan_in``    every post neuron gets exactly ``k`` distinct pre neurons, drawn uniformly
                      without replacement (NEST's ``fixed_indegree``).
* ``fixed_fan_out``   every pre neuron projects to exactly ``k`` distinct post neurons (NEST's
                      ``fixed_outdegree``; Izhikevich 2007's network).

Weight initialisers (``WEIGHT_INITS``): ``constant(value)``, ``uniform(low, high)``,
``normal(mean, std)``, ``lognormal(mean, sigma)`` (of the underlying normal), ``glorot``
(normal with std sqrt(2 / (fan_in + fan_out)), Glorot & Bengio 2010). Each is
``init(key, shape, fan_in, fan_out)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from neurorl.errors import ConfigError, closest, lookup

Array = jax.Array
Edges = tuple[np.ndarray, np.ndarray]


def _check_kwargs(rule: str, kw: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for k in kw:
        if k not in allowed:
            raise ConfigError(
                f"Connection({rule}).{k}", kw[k], f"one of {list(allowed)}", closest(k, allowed)
            )


def all_to_all(
    rng: np.random.Generator, n_pre: int, n_post: int, allow_self: bool = True
) -> Edges:
    """Every pre neuron to every post neuron; ``allow_self=False`` drops i -> i (same group)."""
    pre, post = np.meshgrid(np.arange(n_pre), np.arange(n_post), indexing="ij")
    pre, post = pre.ravel(), post.ravel()
    if not allow_self:
        keep = pre != post
        pre, post = pre[keep], post[keep]
    return pre.astype(np.int32), post.astype(np.int32)


def one_to_one(rng: np.random.Generator, n_pre: int, n_post: int) -> Edges:
    """Pre neuron i to post neuron i."""
    if n_pre != n_post:
        raise ConfigError(
            "Connection(one_to_one)", (n_pre, n_post), "source and target of the same size"
        )
    idx = np.arange(n_pre, dtype=np.int32)
    return idx, idx.copy()


def probabilistic(
    rng: np.random.Generator, n_pre: int, n_post: int, p: float = 0.1, allow_self: bool = True
) -> Edges:
    """Each (pre, post) pair independently with probability ``p`` (Bernoulli connectivity).

    Memory stays O(edges + n_post), not O(n_pre n_post). Up to ``_ROW_LOOP_MAX`` pairs it is
    sampled row by row (for each pre neuron Binomial(n_post, p) targets drawn without
    replacement; kept so that every seeded network up to that size keeps its structure); above,
    vectorised by geometric skips over the ``n_pre n_post`` pairs (:func:`bernoulli_pairs`:
    2.4 s CPU for the 32 M synapses of a 100x CUBA network, the row loop ~6.8 s). Both give
    exactly the distribution of n_pre n_post independent Bernoulli trials.
    """
    p = float(p)
    if not 0.0 <= p <= 1.0 or np.isnan(p):
        raise ConfigError("Connection(probabilistic).p", p, "a probability in [0, 1]")
    if n_pre * n_post > _ROW_LOOP_MAX:
        pre, post = bernoulli_pairs(rng, n_pre, n_post, p)
        if not allow_self:
            keep = pre != post
            pre, post = pre[keep], post[keep]
        return pre, post
    counts = rng.binomial(n_post, p, size=n_pre)
    pres, posts = [], []
    for i, c in enumerate(counts):
        if c == 0:
            continue
        tgt = rng.choice(n_post, size=c, replace=False) if c < n_post else np.arange(n_post)
        pres.append(np.full(c, i, np.int32))
        posts.append(np.sort(tgt).astype(np.int32))
    if not pres:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    pre, post = np.concatenate(pres), np.concatenate(posts)
    if not allow_self:
        keep = pre != post
        pre, post = pre[keep], post[keep]
    return pre, post


_ROW_LOOP_MAX = 50_000_000  # pairs up to which probabilistic() keeps its row-by-row stream


def bernoulli_pairs(rng: np.random.Generator, n_pre: int, n_post: int, p: float) -> Edges:
    """Each of the ``n_pre n_post`` pairs independently with probability ``p``, vectorised.

    The gaps between successive successes of a Bernoulli(p) sequence are i.i.d.
    Geometric(p) (support 1, 2, ...), so the flat indices of the edges are the cumulative sums
    of geometric draws minus one, drawn in chunks until they pass ``n_pre n_post`` (Devroye
    1986, Non-Uniform Random Variate Generation, Ch. X.2; Batagelj & Brandes 2005, Efficient
    generation of large random networks, Phys. Rev. E 71:036113). Work and memory O(edges).

    Returns:
        ``(pre, post)`` int32, sorted by pre then post.
    """
    n = int(n_pre) * int(n_post)
    if p <= 0.0 or n == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    if p >= 1.0:
        flat = np.arange(n, dtype=np.int64)
    else:
        chunks, last = [], -1
        while last < n:
            left = (n - 1 - last) * p
            m = int(left + 6.0 * np.sqrt(left + 1.0) + 16)
            pos = last + np.cumsum(rng.geometric(p, size=m).astype(np.int64))
            chunks.append(pos)
            last = int(pos[-1])
        flat = np.concatenate(chunks)
        flat = flat[flat < n]
    return (flat // n_post).astype(np.int32), (flat % n_post).astype(np.int32)


def fixed_fan_in(rng: np.random.Generator, n_pre: int, n_post: int, k: int = 10) -> Edges:
    """Every post neuron receives exactly ``k`` distinct, uniformly drawn pre neurons."""
    if int(k) != k or not 0 <= k <= n_pre:
        raise ConfigError("Connection(fixed_fan_in).k", k, f"an integer in [0, n_pre={n_pre}]")
    k = int(k)
    # argsort of uniform noise per row = a random k-subset without replacement, vectorised
    if n_pre * n_post <= 50_000_000:
        pre = np.argsort(rng.random((n_post, n_pre)), axis=1)[:, :k]
    else:
        pre = np.stack([rng.choice(n_pre, size=k, replace=False) for _ in range(n_post)])
    post = np.repeat(np.arange(n_post), k)
    return pre.ravel().astype(np.int32), post.astype(np.int32)


def fixed_fan_out(rng: np.random.Generator, n_pre: int, n_post: int, k: int = 10,
                  allow_self: bool = True) -> Edges:
    """Every pre neuron projects to exactly ``k`` distinct, uniformly drawn post neurons (NEST's
    ``fixed_outdegree`` without multapses); ``allow_self=False`` excludes i -> i (same group)."""
    pool = n_post - (0 if allow_self or n_pre > n_post else 1)
    if int(k) != k or not 0 <= k <= pool:
        raise ConfigError("Connection(fixed_fan_out).k", k, f"an integer in [0, {pool}]")
    k = int(k)
    noise = rng.random((n_pre, n_post))
    if not allow_self:
        d = np.arange(min(n_pre, n_post))
        noise[d, d] = np.inf  # never among the k smallest
    post = np.sort(np.argsort(noise, axis=1)[:, :k], axis=1)
    pre = np.repeat(np.arange(n_pre), k)
    return pre.astype(np.int32), post.ravel().astype(np.int32)


CONNECTIVITY: dict[str, Callable[..., Edges]] = {
    "all_to_all": all_to_all,
    "one_to_one": one_to_one,
    "probabilistic": probabilistic,
    "fixed_fan_in": fixed_fan_in,
    "fixed_fan_out": fixed_fan_out,
}

_RULE_KWARGS = {
    "all_to_all": ("allow_self",),
    "one_to_one": (),
    "probabilistic": ("p", "allow_self"),
    "fixed_fan_in": ("k",),
    "fixed_fan_out": ("k", "allow_self"),
}


def validate_rule(rule: str, kwargs: dict[str, Any]) -> str:
    """Host check of a rule name and its keyword arguments; returns the canonical name."""
    fn = lookup(CONNECTIVITY, rule, "connection rule", field="Connection.rule")
    name = fn.__name__
    _check_kwargs(name, kwargs, _RULE_KWARGS[name])
    if name == "probabilistic" and "p" in kwargs:
        p = float(kwargs["p"])
        if not 0.0 <= p <= 1.0 or np.isnan(p):
            raise ConfigError("Connection(probabilistic).p", kwargs["p"], "a probability in [0, 1]")
    if (name == "fixed_fan_in" and "k" in kwargs
            and (int(kwargs["k"]) != kwargs["k"] or kwargs["k"] < 0)):
        raise ConfigError("Connection(fixed_fan_in).k", kwargs["k"], "an integer >= 0")
    return name


def build_edges(rule: str, seed: int, n_pre: int, n_post: int, **kwargs: Any) -> Edges:
    """Edges ``(pre_idx, post_idx)`` of ``rule`` between groups of size n_pre and n_post."""
    name = validate_rule(rule, kwargs)
    return CONNECTIVITY[name](np.random.default_rng(seed), n_pre, n_post, **kwargs)


# ----------------------------------------------------------------------------------------------
# Weight initialisers: init(key, shape, fan_in, fan_out) -> float32 array
# ----------------------------------------------------------------------------------------------


def constant(value: float = 1.0) -> Callable[..., Array]:
    """All weights equal ``value``."""
    return lambda key, shape, fan_in, fan_out: jnp.full(shape, value, jnp.float32)


def uniform(low: float = 0.0, high: float = 1.0) -> Callable[..., Array]:
    """Weights ~ U[low, high)."""
    if high < low:
        raise ConfigError("weight.uniform.high", high, f"a number >= low ({low})")
    return lambda key, shape, fan_in, fan_out: jax.random.uniform(
        key, shape, jnp.float32, low, high
    )


def normal(mean: float = 0.0, std: float = 1.0) -> Callable[..., Array]:
    """Weights ~ N(mean, std^2)."""
    if std < 0:
        raise ConfigError("weight.normal.std", std, "a number >= 0")
    return lambda key, shape, fan_in, fan_out: mean + std * jax.random.normal(
        key, shape, jnp.float32
    )


def lognormal(mean: float = 0.0, sigma: float = 1.0) -> Callable[..., Array]:
    """Weights = exp(N(mean, sigma^2)) (positive; heavy-tailed cortical weights)."""
    if sigma < 0:
        raise ConfigError("weight.lognormal.sigma", sigma, "a number >= 0")
    return lambda key, shape, fan_in, fan_out: jnp.exp(
        mean + sigma * jax.random.normal(key, shape, jnp.float32)
    )


def glorot(gain: float = 1.0) -> Callable[..., Array]:
    """Normal with std = gain sqrt(2 / (fan_in + fan_out)) (Glorot & Bengio 2010, Eq. 12, normal
    form)."""
    return lambda key, shape, fan_in, fan_out: gain * jnp.sqrt(
        2.0 / max(fan_in + fan_out, 1)
    ) * jax.random.normal(key, shape, jnp.float32)


WEIGHT_INITS: dict[str, Callable[..., Callable[..., Array]]] = {
    "constant": constant,
    "uniform": uniform,
    "normal": normal,
    "lognormal": lognormal,
    "glorot": glorot,
}


def make_weight_init(weight: Any) -> Callable[..., Array]:
    """Normalise a weight spec into ``init(key, shape, fan_in, fan_out)``.

    Accepted: a number (constant), a name (``"normal"``), a dict ``{"init": name, **hyper}``, a
    callable ``init(key, shape, fan_in, fan_out)``, or an array (a dense ``[n_pre, n_post]`` matrix
    or one value per edge) -- arrays are handled by the network, not here.
    """
    if isinstance(weight, (int, float)) and not isinstance(weight, bool):
        if np.isnan(weight):
            raise ConfigError("Connection.weight", weight, "a finite number")
        return constant(float(weight))
    if isinstance(weight, str):
        return lookup(WEIGHT_INITS, weight, "weight initialiser", field="Connection.weight")()
    if isinstance(weight, dict):
        kw = dict(weight)
        name = kw.pop("init", None)
        if name is None:
            raise ConfigError("Connection.weight", weight, "a dict with key 'init' naming "
                              f"one of {sorted(WEIGHT_INITS)}")
        factory = lookup(WEIGHT_INITS, name, "weight initialiser", field="Connection.weight.init")
        try:
            return factory(**kw)
        except TypeError as e:
            raise ConfigError(f"Connection.weight({name})", kw,
                              f"valid keyword arguments ({e})") from e
    if callable(weight):
        return weight
    raise ConfigError(
        "Connection.weight", weight, "a number, an initialiser name/dict, a callable or an array"
    )
