"""Contextual inference: one agent, a store of learned weight sets, and forward models that say
which set the world calls for (MOSAIC; COIN).

``with_context(agent, n_contexts=...)`` wraps any agent that names its learned state fields
(:attr:`~neurorl.agents.base.Agent.learned`: weights, optimizer moments, neuromodulatory
averages) into an agent with ``n_contexts`` copies of them. Each context ``k`` also owns a
linear forward model ``W_k`` that predicts the change of the observation from the last
observation and action, ``obs_{t+1} - obs_t ~ [obs_t, a_t] @ W_k`` (one-hot ``a_t`` for
discrete actions; continuous ones with a bias), fitted online by recursive least squares (a
delta rule with an inverse-covariance gain: local to each model). Every env step the agent

1. scores every context in use by its normalised prediction error on the transitions it just
   saw (mean over its ``n_envs`` environments, each dimension divided by the running mean
   square of that dimension's change), filtered with time constant ``err_tau`` env steps;
2. switches to the context with the smallest error when it beats the active one by the factor
   ``switch_ratio`` (hysteresis): the active context's learned fields go back to the store and
   the chosen one's come out (the per-env carries -- membrane potentials, traces, rollouts --
   stay: they belong to the episodes, not to a context). This is inference, not learning: it
   runs in ``act`` and so also in a frozen evaluation;
3. in ``learn`` (training only), fits the active context's forward model to the transitions,
   and **recruits** a new context when every context in use has predicted badly for
   ``spawn_patience`` consecutive steps (error above ``spawn_ratio`` times the active context's
   settled error, and above ``spawn_floor``): the new context starts as a copy of the active
   one's weights (so it adapts as the plain agent would) and with a forward model started from
   the active one's with a fresh gain, while the old one is stored as it was before the
   surprise began (nothing it learned from the displacing world stays). The forward model
   learns only while its context predicts within that bound, so a shift cannot overwrite the
   model that detects it. When all ``n_contexts`` are in use nothing is recruited: the best
   stored context acts and learns (and is overwritten by the new world).

The state holds ``n_contexts`` copies of the learned fields (memory: ``n_contexts`` x the
agent's weights and optimizer state). ``agent.diagnostics`` reports ``context`` (in use),
``contexts_used`` and ``context_switches`` (cumulative) every env step; the trainers log them.

The wrapped agent learns with its own rule unchanged (e-prop stays local; the context signal is
a top-down gate choosing which synaptic weights are in use, as in context-dependent gating,
Masse et al. 2018). With one context the wrapper is the plain agent (tested).

Where a task returns (the first task of a lifelong sequence coming back), the agent recognises
it by its forward model and acts with the weights it had learned for it: no relearning and no
forgetting, without being told the task (task-free; no task label is read anywhere).

References:
    Wolpert & Kawato (1998). Multiple paired forward and inverse models for motor control.
    Neural Networks 11:1317-1329; Haruno, Wolpert & Kawato (2001). MOSAIC model for
    sensorimotor learning and control. Neural Computation 13:2201-2220 (responsibility of each
    module from its forward model's prediction error).
    Heald, Lengyel & Wolpert (2021). Contextual inference underlies the learning of
    sensorimotor repertoires. Nature 600:489-493 (COIN: memories created, recalled and updated
    by inferred context; new contexts recruited when none explains the observations).
    Masse, Grant & Freedman (2018). Alleviating catastrophic forgetting using context-dependent
    gating and synaptic stabilization. PNAS 115:E10467-E10475.
    Haykin (2002). Adaptive Filter Theory, 4th ed., ch. 9 (exponentially weighted RLS).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from neurorl.agents.base import Agent, check_hyper, positive
from neurorl.errors import ConfigError

Array = jax.Array

DEFAULTS: dict[str, Any] = {
    "n_contexts": 4,  # contexts in the store (1: the plain agent)
    "err_tau": 2.0,  # env steps: filter of the prediction errors that choose the context
    "switch_ratio": 2.0,  # switch when another context's error is this many times smaller
    "spawn_ratio": 8.0,  # recruit when every error exceeds this x the active's settled error
    "spawn_floor": 0.005,  # ... and this absolute normalised error
    "spawn_patience": 10,  # ... for this many consecutive env steps
    "settle_tau": 500.0,  # env steps: the active context's settled error (slow filter)
    # RLS forgetting factor: 1 = every transition of the context weighs alike (each context's
    # dynamics are taken as stationary: a change is a new context). Below 1, directions the
    # data do not excite wind up (P grows as lambda^-t): keep it near 1
    "rls_forget": 1.0,
    "rls_delta": 100.0,  # initial inverse covariance P = delta * I of a fresh forward model
    "scale_tau": 1000.0,  # env steps: running mean square of each observation change
    "warmup": 100,  # env steps a new forward model fits unconditionally (no recruiting yet)
}


@struct.dataclass
class ContextState:
    """State of a context-wrapped agent.

    Attributes:
        inner: the wrapped agent's state (its learned fields those of the active context).
        store: the learned fields of every context, stacked ``[K, ...]`` (the active context's
            entry is stale while it is active; written back when it is left).
        model_w: ``[K, d_in, obs_dim]`` forward models (``d_in = obs_dim + n_a``, + 1 bias
            for continuous actions).
        model_p: ``[K, d_in, d_in]`` their RLS inverse covariances.
        err: ``[K]`` filtered normalised prediction errors (dimensionless).
        settled: ``[K]`` slow filter of each context's own error while active.
        scale: ``[obs_dim]`` running mean square of the observation changes.
        active: int32, the context in use; n_used: int32, contexts recruited so far.
        surprise: int32, consecutive steps every context predicted badly.
        age: ``[K]`` int32, env steps each context's forward model has been fitted.
        steps: int32, env steps with transitions seen (the scale's running average).
        prev_x: ``[B, d_in]`` the last regressor ``[obs, a]``; prev_obs: ``[B, obs_dim]``.
        valid: ``[B]`` bool, the last regressor belongs to the episode still running.
        trans_x / trans_y / trans_ok: the transition seen by the last ``act`` (for ``learn``).
        kept: the active context's learned fields as they were before the current run of
            surprised steps (what goes back to the store when a new context is recruited:
            the old context keeps nothing it learned from the world that displaced it).
        reset_next: ``[B]`` the wrapped agent's episode-end flag (mirrored; the frozen
            evaluation sets it).
        switches: int32, context switches so far (a diagnostic).
    """

    inner: Any
    store: Any
    model_w: Array
    model_p: Array
    err: Array
    settled: Array
    scale: Array
    active: Array
    n_used: Array
    surprise: Array
    age: Array
    steps: Array
    prev_x: Array
    prev_obs: Array
    valid: Array
    trans_x: Array
    trans_y: Array
    trans_ok: Array
    kept: Any
    reset_next: Array
    switches: Array

    @property
    def stats(self) -> Any:
        """The wrapped agent's activity of the last env step."""
        return self.inner.stats


def _get(state: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: getattr(state, f) for f in fields}


def check_context(context: Any, agent_name: str) -> dict[str, Any]:
    """Validate ``agent.context`` (host side): the merged settings.

    Raises:
        ConfigError: not a mapping, an unknown key (closest named), a value out of range.
    """
    if not isinstance(context, Mapping):
        raise ConfigError("agent.context", context, "a mapping such as {n_contexts: 4}")
    h = check_hyper("context", context, DEFAULTS, "context settings")
    n = h["n_contexts"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError("agent.context.n_contexts", n, "an integer >= 1")
    for k in ("spawn_patience", "warmup"):
        v = h[k]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"agent.context.{k}", v, "an integer >= 1")
    positive("context", **{k: h[k] for k in ("spawn_floor", "rls_delta")})
    # ratios >= 1; time constants >= 1 env step (a filter's step 1 / tau stays <= 1)
    for k in ("switch_ratio", "spawn_ratio", "err_tau", "settle_tau", "scale_tau"):
        v = h[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 1:
            raise ConfigError(f"agent.context.{k}", v, "a number >= 1")
    lam = h["rls_forget"]
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0 < lam <= 1:
        raise ConfigError("agent.context.rls_forget", lam, "a number in (0, 1]")
    return h


def rls_update(w: Array, p: Array, x: Array, y: Array, ok: Array, lam: float = 1.0
               ) -> tuple[Array, Array]:
    """Exponentially weighted recursive least squares over a batch, one row at a time.

    For each row ``i`` with ``ok[i]``: ``k = P x / (lam + x' P x)``, ``W += k (y - x' W)``,
    ``P = (P - k x' P) / lam`` (Haykin 2002, Table 9.1). With ``lam = 1`` and ``P0 = delta I``
    the result is the ridge regression of all rows seen, ``(X'X + I / delta)^-1 (X'Y + W0 /
    delta)``.

    Args:
        w: ``[d_in, d_out]`` weights; p: ``[d_in, d_in]`` inverse covariance.
        x: ``[B, d_in]`` regressors; y: ``[B, d_out]`` targets; ok: ``[B]`` rows to use.
        lam: forgetting factor in (0, 1].

    Returns:
        ``(w, p)`` after the rows.
    """

    def one(carry, inp):
        w, p = carry
        xi, yi, oi = inp
        px = p @ xi
        k = px / (lam + xi @ px)
        w2 = w + jnp.outer(k, yi - xi @ w)
        p2 = (p - jnp.outer(k, px)) / lam
        p2 = 0.5 * (p2 + p2.T)
        return (jnp.where(oi, w2, w), jnp.where(oi, p2, p)), None

    return jax.lax.scan(one, (w, p), (x, y, ok))[0]


def with_context(agent: Agent, **context: Any) -> Agent:
    """``agent`` with a store of ``n_contexts`` weight sets chosen by contextual inference.

    Args:
        agent: an agent whose :attr:`~neurorl.agents.base.Agent.learned` names its learned
            state fields (``eprop_ac``, ``bptt_ac``).
        context: settings, see :data:`DEFAULTS`.

    Returns:
        An :class:`Agent` with the same name, spec, update schedule and runtime whose state is a
        :class:`ContextState`; ``weights(state)`` are the active context's weights.

    Raises:
        ConfigError: an agent without named learned fields, or invalid settings (host side).
    """
    h = check_context(context, agent.name)
    if not agent.learned:
        raise ConfigError("agent.context", f"with agent {agent.name!r}",
                          "an agent whose weights can be stored per context: eprop_ac or "
                          "bptt_ac (or none: remove agent.context)")
    spec = agent.spec
    K, B, D = h["n_contexts"], spec.n_envs, spec.obs_dim
    n_a = spec.n_actions
    # discrete: the one-hot action is the intercept (a bias column beside it would never be
    # excited apart from it); continuous: action and a bias
    d_in = D + n_a + (0 if spec.discrete else 1)
    fields = agent.learned
    a_err = 1.0 / float(h["err_tau"])
    a_set = 1.0 / float(h["settle_tau"])
    a_sc = 1.0 / float(h["scale_tau"])
    lam = float(h["rls_forget"])

    def regressor(obs: Array, action: Array) -> Array:
        if spec.discrete:
            return jnp.concatenate([obs.astype(jnp.float32),
                                    jax.nn.one_hot(action, n_a, dtype=jnp.float32)], 1)
        a = jnp.reshape(action, (B, n_a)).astype(jnp.float32)
        return jnp.concatenate([obs.astype(jnp.float32), a, jnp.ones((B, 1), jnp.float32)], 1)

    def init(key: Array) -> ContextState:
        inner = agent.init(key)
        store = jax.tree.map(lambda x: jnp.broadcast_to(x, (K,) + jnp.shape(x)),
                             _get(inner, fields))
        eye = jnp.eye(d_in, dtype=jnp.float32) * float(h["rls_delta"])
        return ContextState(
            inner=inner, store=store,
            model_w=jnp.zeros((K, d_in, D), jnp.float32),
            model_p=jnp.broadcast_to(eye, (K, d_in, d_in)),
            err=jnp.zeros((K,), jnp.float32), settled=jnp.zeros((K,), jnp.float32),
            scale=jnp.ones((D,), jnp.float32),
            active=jnp.zeros((), jnp.int32), n_used=jnp.ones((), jnp.int32),
            surprise=jnp.zeros((), jnp.int32), age=jnp.zeros((K,), jnp.int32),
            steps=jnp.zeros((), jnp.int32),
            prev_x=jnp.zeros((B, d_in), jnp.float32), prev_obs=jnp.zeros((B, D), jnp.float32),
            valid=jnp.zeros((B,), bool),
            trans_x=jnp.zeros((B, d_in), jnp.float32), trans_y=jnp.zeros((B, D), jnp.float32),
            trans_ok=jnp.zeros((B,), bool), kept=_get(inner, fields),
            reset_next=inner.reset_next, switches=jnp.zeros((), jnp.int32))

    def swap(state: ContextState, to: Array, go: Array) -> ContextState:
        """Store the active context's learned fields, take out context ``to``'s (``to`` is the
        active one unless ``go``: then the same values come back out). No ``lax.cond``: under
        vmap over seeds a cond selects between two whole states, store included, every step;
        this writes and reads one copy."""
        cur = _get(state.inner, fields)
        store = jax.tree.map(lambda s, c: s.at[state.active].set(c), state.store, cur)
        new = jax.tree.map(lambda s: s[to], store)
        kept = jax.tree.map(lambda n, k: jnp.where(go, n, k), new, state.kept)
        return state.replace(inner=state.inner.replace(**new), store=store, active=to,
                             kept=kept, switches=state.switches + go.astype(jnp.int32))

    def act(state: ContextState, obs: Array, key: Array) -> tuple[Array, ContextState]:
        y = obs.astype(jnp.float32) - state.prev_obs
        ok = state.valid & ~state.reset_next
        n_ok = jnp.sum(ok)
        pred = jnp.einsum("bi,kid->kbd", state.prev_x, state.model_w)
        se = (y[None] - pred) ** 2 / (state.scale + 1e-8)[None, None, :]
        se = jnp.where(jnp.broadcast_to(ok[None, :, None], se.shape), se, 0.0)
        e = jnp.sum(se, axis=(1, 2)) / jnp.maximum(n_ok * D, 1)
        err = jnp.where(n_ok > 0, state.err + a_err * (e - state.err), state.err)
        used = jnp.arange(K) < state.n_used
        best = jnp.argmin(jnp.where(used, err, jnp.inf)).astype(jnp.int32)
        go = (n_ok > 0) & (err[best] * h["switch_ratio"] < err[state.active])
        state = state.replace(err=err, trans_x=state.prev_x, trans_y=y, trans_ok=ok)
        state = swap(state, jnp.where(go, best, state.active), go)
        inner = state.inner.replace(reset_next=state.reset_next)
        action, inner = agent.act(inner, obs, key)
        return action, state.replace(inner=inner, prev_x=regressor(obs, action),
                                     prev_obs=obs.astype(jnp.float32),
                                     valid=jnp.ones((B,), bool))

    def learn(state: ContextState, reward: Array, terminated: Array, truncated: Array
              ) -> ContextState:
        ok = state.trans_ok
        n_ok = jnp.sum(ok)
        y2 = jnp.sum(jnp.where(jnp.broadcast_to(ok[:, None], state.trans_y.shape),
                             state.trans_y ** 2, 0.0), 0) / jnp.maximum(n_ok, 1)
        # running mean square of the changes: an average over the first steps, then a filter
        a = jnp.maximum(a_sc, 1.0 / (state.steps + 1).astype(jnp.float32))
        scale = jnp.where(n_ok > 0, state.scale + a * (y2 - state.scale), state.scale)
        c = state.active
        e_c = state.err[c]
        young = state.age[c] < h["warmup"]
        bound = jnp.maximum(h["spawn_ratio"] * state.settled[c], h["spawn_floor"])
        used = jnp.arange(K) < state.n_used
        all_bad = jnp.all(jnp.where(used, state.err > bound, True)) & (n_ok > 0) & ~young
        surprise = jnp.where(all_bad, state.surprise + 1, 0)
        # before this step's learning: the weights to keep if the surprise turns out a new world
        kept = jax.tree.map(lambda k, x: jnp.where(all_bad, k, x), state.kept,
                            _get(state.inner, fields))
        inner = agent.learn(state.inner, reward, terminated, truncated)
        # the model of the active context learns only while it explains the world (or is new)
        fit = ((e_c <= bound) | young) & (n_ok > 0)
        w, p = rls_update(state.model_w[c], state.model_p[c], state.trans_x,
                          state.trans_y, ok & fit, lam)
        a_c = jnp.maximum(a_set, 1.0 / (state.age[c] + 1).astype(jnp.float32))
        settled = state.settled.at[c].set(
            jnp.where(fit, state.settled[c] + a_c * (e_c - state.settled[c]),
                      state.settled[c]))
        state = state.replace(inner=inner, scale=scale, surprise=surprise, settled=settled,
                              kept=kept,
                              model_w=state.model_w.at[c].set(w),
                              model_p=state.model_p.at[c].set(p),
                              age=state.age.at[c].add(fit.astype(jnp.int32)),
                              steps=state.steps + (n_ok > 0),
                              reset_next=inner.reset_next,
                              valid=state.valid & ~(terminated | truncated))

        # recruiting a context (written without lax.cond, as swap): at slot ``new`` a forward
        # model with the active one's as prior and a fresh (large) gain, the active weights
        # (the new context starts from them), while the active context is stored as it was
        # before the surprise began; without a recruit every write below puts back what is there
        spawn = (surprise >= h["spawn_patience"]) & (state.n_used < K)
        new = jnp.where(spawn, jnp.minimum(state.n_used, K - 1), c)
        eye = jnp.eye(d_in, dtype=jnp.float32) * float(h["rls_delta"])
        cur = _get(state.inner, fields)
        store = jax.tree.map(lambda st, x, k: st.at[c].set(jnp.where(spawn, k, x)),
                             state.store, cur, state.kept)
        store = jax.tree.map(lambda st, x: st.at[new].set(x), store, cur)
        return state.replace(
            store=store,
            model_w=state.model_w.at[new].set(state.model_w[c]),
            model_p=state.model_p.at[new].set(jnp.where(spawn, eye, state.model_p[c])),
            age=state.age.at[new].set(jnp.where(spawn, 0, state.age[c])),
            err=state.err.at[new].set(state.err[c]),
            settled=state.settled.at[new].set(jnp.where(spawn, state.err[c], state.settled[c])),
            n_used=state.n_used + spawn.astype(jnp.int32),
            surprise=jnp.where(spawn, 0, state.surprise), active=new,
            kept=jax.tree.map(lambda x, k: jnp.where(spawn, x, k), cur, state.kept),
            switches=state.switches + spawn.astype(jnp.int32))

    update = None
    if agent.update is not None:
        def update(state: ContextState, obs: Array, key: Array) -> ContextState:
            return state.replace(inner=agent.update(state.inner, obs, key))

    def weights(state: ContextState) -> Any:
        return agent.weights(state.inner)

    def diagnostics(state: ContextState) -> dict[str, Array]:
        return {"context": state.active, "contexts_used": state.n_used,
                "context_switches": state.switches}

    return agent._replace(init=init, act=act, learn=learn, weights=weights, update=update,
                          diagnostics=diagnostics)


__all__ = ["DEFAULTS", "ContextState", "check_context", "rls_update", "with_context"]
