"""Errors for people.

Every user mistake raises a subclass of :class:`NeurorlError` that names what is wrong (the field
path or argument), the bad value, what is allowed, and -- for misspelt names -- the closest valid
name. These are raised *before* anything is traced by JAX so that a user never sees a deep XLA
traceback for a typo.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any


class NeurorlError(Exception):
    """Base class of all neurorl errors meant for users."""


class ConfigError(NeurorlError, ValueError):
    """A configuration value, name or parameter is invalid.

    Args:
        field: dotted path of the offending field (e.g. ``"agent.rule.lr"``).
        value: the value that was given.
        allowed: a human description of what is allowed (e.g. ``"a float > 0"``).
        suggestion: optional closest valid name (or a valid value to use instead), or a list or
            tuple of several close names best first (as
            :func:`closest_names` gives them), shown as "Did you mean 'a'?" / "Did you mean
            'a' or 'b'?".

    Attributes:
        suggestion: the best suggestion (a name) or None.
        suggestions: every suggestion, best first (a tuple; pass it on when re-raising under
            another field so that none is lost).
    """

    def __init__(self, field: str, value: Any, allowed: str,
                 suggestion: Any = None) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        if suggestion is None:
            names: tuple[str, ...] = ()
        elif isinstance(suggestion, (list, tuple)):  # several close names, best first
            names = tuple(dict.fromkeys(suggestion))
        else:  # one name, or a valid value to use instead (False, a number)
            names = (suggestion,)
        self.suggestions = names
        self.suggestion = names[0] if names else None
        msg = f"{field}: got {value!r}; allowed: {allowed}"
        if names:
            quoted = [repr(n) for n in names]
            said = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
            msg += f". Did you mean {said}?"
        super().__init__(msg)


class UnknownKeywordError(ConfigError, TypeError):
    """An unknown keyword argument of a config class (``TrainConfig(n_step=...)``): names the
    keyword (``TrainConfig.n_step``), the value, the valid fields and the closest. Also a
    ``TypeError``, what Python raises for an unknown keyword, so ``except TypeError`` still
    catches it."""


def checked_keywords(cls: type) -> type:
    """Class decorator for a dataclass: an unknown keyword argument of its constructor (or of
    ``dataclasses.replace``) raises :class:`UnknownKeywordError` instead of Python's bare
    ``TypeError: __init__() got an unexpected keyword argument``.

    Apply it above ``@dataclasses.dataclass``. Positional arguments and missing fields are left
    to the dataclass's own ``__init__``.
    """
    import dataclasses
    import functools

    init = cls.__init__
    names = [f.name for f in dataclasses.fields(cls) if f.init]

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        for k in kwargs:
            if k not in names:
                raise UnknownKeywordError(f"{cls.__name__}.{k}", kwargs[k],
                                          f"a field of {cls.__name__}, one of {names}",
                                          closest(str(k), names))
        init(self, *args, **kwargs)

    cls.__init__ = __init__
    return cls


class SweepMembersError(ConfigError):
    """Sweep members (compiled groups) that the host-side checks refuse, all named at once
    before any group runs: one line per group with its settings, the field to change where
    known, and the error.

    Args:
        sweep: the sweep file's name.
        n_groups: how many groups were checked.
        failures: ``(group, field or None, message)`` per failing group; ``group`` names its
            directory, label and seeds.
    """

    def __init__(self, sweep: str, n_groups: int,
                 failures: list[tuple[str, str | None, str]]) -> None:
        self.failures = list(failures)
        self.field = failures[0][1] or "sweep"
        self.value = sweep
        self.allowed = "every member valid"
        self.suggestion = None
        self.suggestions = ()
        lines = [f"sweep {sweep}: {len(failures)} of {n_groups} group(s) cannot run; nothing "
                 "was run (fix them or drop them from the sweep):"]
        for where, field, msg in failures:
            change = f" [change {field}]" if field else ""
            lines.append(f"  {where}{change}: {msg}")
        NeurorlError.__init__(self, "\n".join(lines))


class ShapeError(NeurorlError, ValueError):
    """An array has the wrong shape; names what was expected and what was received."""

    def __init__(self, what: str, expected: Any, got: Any) -> None:
        self.what = what
        self.expected = expected
        self.got = got
        super().__init__(f"{what}: expected shape {expected}, got {got}")


class ChipCapacityError(NeurorlError):
    """A network does not fit on a chip; the message names the group/core and by how much."""


class UnsupportedOnChipError(NeurorlError):
    """A feature (e.g. on-chip plasticity) is not supported by the selected chip."""


def is_finite_number(value: object) -> bool:
    """True for a finite real number given as a number (not a bool, not a string); for the
    host-side checks of hyperparameters before they reach a trace."""
    import math
    import numbers

    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(float(value)))


def _separators(name: str) -> str:
    """``name`` lower-cased with runs of spaces, hyphens and underscores as one underscore."""
    return re.sub(r"[\s_\-]+", "_", name.strip().lower())


def _squashed(name: str) -> str:
    """``name`` lower-cased without spaces, hyphens and underscores: ``learning rate``,
    ``learning_rate``, ``learningRate`` and ``Learning-Rate`` are all ``learningrate``."""
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


def _synonym_table(groups: Mapping[tuple[str, ...], tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {}
    for names, targets in groups.items():
        for n in names:
            table[_squashed(n)] = table.get(_squashed(n), ()) + targets
    return table


# What other libraries and papers call neurorl's hyperparameters (PyTorch/optax ``learning_rate``,
# Stable-Baselines3 ``ent_coef`` / ``vf_coef`` / ``gae_lambda`` / ``clip_range``, CleanRL
# ``clip_coef`` / ``update_epochs``, snnTorch / Norse / NEST membrane and threshold names, ...):
# spelling -> the neurorl names it may mean, in order of preference. Spellings are compared
# squashed (case, spaces, hyphens and underscores ignored); a target is suggested only where it
# is one of the valid names (:func:`closest_hyper`), so an agent never hears of a key it lacks.
HYPER_SYNONYMS: dict[str, tuple[str, ...]] = _synonym_table({
    ("learning_rate", "alpha", "eta", "step_size", "lr_actor", "actor_lr", "policy_lr",
     "learning_rate_actor"): ("lr",),
    # (eprop_ac and bptt_ac train actor and critic with one lr)
    ("critic_lr", "value_lr", "lr_value", "lr_v", "critic_learning_rate",
     "learning_rate_critic", "value_learning_rate", "eta_critic", "alpha_critic"):
        ("lr_critic", "lr"),
    # (td_ac discounts by the time constant tau_r: gamma = 1 - 1 / tau_r)
    ("discount", "discount_factor", "discount_rate", "gamma"): ("gamma", "tau_r"),
    ("lambda", "lmbda", "td_lambda", "trace_decay", "trace_lambda", "eligibility_decay"):
        ("lam", "gae_lambda"),
    ("gae_lambda", "gae_lam", "lambda_gae"): ("gae_lambda", "lam"),
    ("entropy_coef", "ent_coef", "entropy_coeff", "entropy_cost", "entropy_weight",
     "entropy_beta", "entropy_bonus", "beta_entropy", "c_entropy", "c_h"): ("c_ent",),
    ("vf_coef", "value_coef", "value_coeff", "value_loss_coef", "vf_loss_coeff", "value_cost",
     "value_weight", "critic_coef", "baseline_cost", "c_value", "c_vf"): ("c_v",),
    ("clip_range", "clip_coef", "clip_param", "clip_ratio", "clip_epsilon", "eps_clip",
     "epsilon_clip", "ppo_clip", "clip"): ("clip_eps",),
    ("grad_clip", "clip_grad_norm", "gradient_clip", "max_norm", "grad_norm_clip",
     "clip_grad", "max_gradient_norm"): ("max_grad_norm",),
    ("n_epochs", "num_epochs", "ppo_epochs", "update_epochs", "epochs_per_update",
     "noptepochs"): ("epochs",),
    ("num_minibatches", "n_minibatch", "nminibatches", "minibatches", "num_mini_batch"):
        ("n_minibatches",),
    ("rollout_length", "rollout_len", "unroll_length", "n_rollout_steps", "horizon"):
        ("rollout",),
    ("adam_epsilon", "adam_eps", "optimizer_eps"): ("adam_eps",),
    ("eps", "epsilon"): ("adam_eps", "clip_eps"),
    ("tau_m", "taum", "tau_membrane", "membrane_tau", "membrane_time_constant", "tau_v",
     "tau_mem_ms", "taumem"): ("tau_mem",),
    ("threshold", "thresh", "v_thresh", "v_threshold", "vth", "threshold_voltage", "theta",
     "v_thr", "firing_threshold"): ("v_th",),
    ("n_hidden", "hidden_size", "num_hidden", "hidden_units", "n_hid", "hidden_dim",
     "n_recurrent", "num_recurrent", "n_neurons", "num_neurons", "units"): ("n_rec", "n_hidden"),
    ("n_adaptive", "num_alif", "n_adapt", "num_adaptive"): ("n_alif",),
    ("tau_a", "tau_adaptation", "adaptation_time_constant", "tau_adp"): ("tau_adapt",),
    ("tau_readout", "tau_output", "readout_tau", "tau_o"): ("tau_out",),
    ("tau_eligibility", "tau_elig", "tau_e", "tau_c", "eligibility_time_constant",
     "tau_kappa"): ("tau_e", "tau_elig", "tau_kappa"),
    ("tau_pre", "tau_stdp_pre", "tau_plus"): ("tau_plus", "tau_trace", "tau_eps"),
    ("tau_post", "tau_stdp_post", "tau_minus"): ("tau_minus", "tau_trace"),
    ("a_ltp", "a_pre", "ltp_amplitude", "a_plus"): ("a_plus",),
    ("a_ltd", "a_post", "ltd_amplitude", "a_minus"): ("a_minus",),
    ("wmax", "weight_max", "max_weight", "w_clip", "weight_clip"): ("w_max",),
    ("noise", "noise_sigma", "noise_level", "exploration_noise", "sigma_noise"): ("noise_std",),
    ("reward_scaling", "scale_reward", "reward_scale_factor"): ("reward_scale",),
    ("n_receptive_fields", "num_rf", "rf_per_dim", "n_fields"): ("n_rf",),
    ("surrogate_dampening", "dampening", "gamma_pseudo", "pseudo_derivative_gamma"):
        ("gamma_pd",),
})


def closest(name: str, choices: Iterable[str],
            synonyms: Mapping[str, tuple[str, ...]] | None = None) -> str | None:
    """Closest valid name to ``name`` among ``choices`` (case-insensitive), or ``None``.

    Args:
        name: what the user wrote.
        choices: the valid names.
        synonyms: optional table of other spellings (squashed: lower case, no spaces, hyphens
            or underscores; see :data:`HYPER_SYNONYMS`) -> the names they may mean, in order of
            preference; the first of those that is among ``choices`` wins over the spelling
            match, the others are never suggested.

    Returns:
        The choice ``name`` differs from only by case or separators; else a synonym's target
        in ``choices``; else the most similar choice by spelling (difflib ratio >= 0.4); else
        None.
    """
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if name.lower() in lowered:
        return lowered[name.lower()]
    # a key written with spaces or hyphens for underscores (`tau mem`, `n-seeds`): that key
    sep = {_separators(c): c for c in choices}
    if _separators(name) in sep:
        return sep[_separators(name)]
    if synonyms:  # a name from another library (`learning rate` for `lr`), if this one has it
        for target in synonyms.get(_squashed(name), ()):
            if target in choices:
                return target
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.4)
    return lowered[hits[0]] if hits else None


def _edits(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) that turn ``a`` into ``b``; a
    digit written for a letter or a letter for a digit costs two (``loih2`` is nearer
    ``loihi2`` than ``loihi``; ``loihi3`` is as near ``loihi2`` as ``loihi``)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            x, y = a[i - 1], b[j - 1]
            sub = 0 if x == y else (1 if x.isdigit() == y.isdigit() else 2)
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + sub)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def closest_names(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The valid names close to ``name``, best first (at most ``n``), for a registry name.

    A name that differs only by case or separators is the one answer (as :func:`closest`).
    Otherwise the choices :func:`closest` would consider (difflib ratio >= 0.4) that are
    nearly as similar as the most similar one (ratio within 0.15 of it), ranked by fewest
    edits, then by the same length (a changed character before a dropped one), then by ratio:
    ``loihi3`` -> ``['loihi2', 'loihi']``; a clear winner stays alone (``LIFF`` -> ``['LIF']``).

    Args:
        name: what the user wrote.
        choices: the valid names.
        n: the most names returned.

    Returns:
        A list of names in ``choices``, possibly empty.
    """
    choices = list(choices)
    if not isinstance(name, str):
        return []
    one = closest(name, choices)
    if one is None:
        return []
    low = name.lower()
    if one.lower() == low or _separators(one) == _separators(name):
        return [one]
    lowered = {c.lower(): c for c in choices}
    ratio = {c: difflib.SequenceMatcher(None, low, c).ratio() for c in lowered}
    best = max(ratio.values())
    near = [c for c in lowered if ratio[c] >= max(0.4, best - 0.15)]
    near.sort(key=lambda c: (_edits(low, c), abs(len(c) - len(low)), -ratio[c]))
    return [lowered[c] for c in near[:n]]


def closest_hyper(name: str, defaults: Iterable[str]) -> str | None:
    """Closest hyperparameter of an agent to ``name``, reading other libraries' names for it.

    ``learning_rate`` / ``learning rate`` / ``learningRate`` / ``alpha`` -> ``lr``,
    ``discount`` -> ``gamma``, ``ent_coef`` -> ``c_ent``, ``clip_range`` -> ``clip_eps``,
    ``tau_m`` -> ``tau_mem``, ``hidden_size`` -> ``n_rec`` ... (:data:`HYPER_SYNONYMS`), but
    only to a name the agent has; a typo gets the closest spelling.

    Args:
        name: the unknown hyperparameter name as written.
        defaults: the agent's hyperparameter names (its ``DEFAULTS``).

    Returns:
        A name in ``defaults``, or None.
    """
    return closest(name, defaults, HYPER_SYNONYMS)


def lookup(registry: Mapping[str, Any], name: str, kind: str, field: str | None = None) -> Any:
    """Fetch ``name`` from a registry dict, case-insensitively, with a clear error otherwise.

    Args:
        registry: a plain ``dict`` mapping names to entries.
        name: the requested name.
        kind: what the registry holds, for the message (e.g. ``"neuron model"``).
        field: optional field path to name in the error (defaults to ``kind``).

    Returns:
        The registry entry.

    Raises:
        ConfigError: when the name is not registered; lists the available names and the
            close ones (:func:`closest_names`: ``loihi3`` -> "Did you mean 'loihi2' or
            'loihi'?").
    """
    if not isinstance(name, str):
        raise ConfigError(field or kind, name, f"a {kind} name, one of {sorted(registry)}")
    if name in registry:
        return registry[name]
    lowered = {k.lower(): k for k in registry}
    if name.lower() in lowered:
        return registry[lowered[name.lower()]]
    raise ConfigError(
        field or kind,
        name,
        f"one of the registered {kind} names {sorted(registry)}",
        closest_names(name, registry),
    )


def import_optional(module: str, extra: str, field: str, value: Any = None) -> Any:
    """Import an optional dependency, or raise a one-line ConfigError naming the extra.

    The optional extras of ``pyproject.toml`` (``render``: pygame, imageio; ``interop``: NEST,
    PyNN; ``events``: tonic; ``ray``; ``gymnax``; ``box2d``) are imported only where they are
    used; a missing one is then a :class:`ConfigError`, exit code 2 from the CLI, instead of a
    traceback ending in ``ModuleNotFoundError`` (or gymnasium's ``DependencyNotInstalled``).

    Args:
        module: the module to import (``"pygame"``, ``"nest"``, ``"pyNN.nest"``).
        extra: the extra of ``pyproject.toml`` that installs it (``"render"``, ``"interop"``).
        field: what needs it, for the message (``"--video"``, ``"run_nest"``).
        value: the value given there (default: ``module``).

    Returns:
        The imported module.

    Raises:
        ConfigError: ``field: got value; allowed: <module> installed (pip install
            "neurorl[<extra>]"; import said: ...)``.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        said = (str(e).splitlines() or [type(e).__name__])[0]
        raise ConfigError(
            field, module if value is None else value,
            f'{module} installed (pip install "neurorl[{extra}]"; import said: {said})',
        ) from None


# Exit codes of the ``neurorl`` command line (documented in docs/architecture.md).
EXIT_OK = 0
EXIT_USER_ERROR = 2  # a bad config, argument, file or checkpoint (NeurorlError)
EXIT_NON_FINITE = 3  # a numeric fault: NaN/inf weight, state, obs or return; diverged weights
EXIT_FILESYSTEM = 4  # the filesystem refused a read or write (read-only, full, permissions)
EXIT_LOCKED = 5  # another process holds the run directory's lock
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), after the last checkpoint was kept


class CheckpointError(NeurorlError):
    """A checkpoint is missing, damaged, crafted, of an old format or of another config."""


class NumericFaultError(NeurorlError):
    """A run stopped on a numeric fault (non-finite numbers or diverging weights)."""


class RunStoppedError(NumericFaultError):
    """Resume of a run that a numeric fault stopped: before its first checkpoint (nothing to
    resume), or after one with nothing changed (it would replay into the same fault). Names the
    env step, the quantity, the likely cause and how to go on (``--set``, a new run,
    ``--force``). Exit status 3."""


class NonFiniteError(NumericFaultError):
    """A run produced a non-finite number or diverged; names the quantity, member, step and cause.

    Divergence criteria (``training`` section): the weight norm above ``max_weight_growth`` x its
    initial norm, or (rules that clip to ``+-w_max``) at least ``max_saturation`` of the weights
    pinned at the bound.

    Attributes:
        quantity: what became non-finite (``"weights"``, ``"agent state ..."``, ``"return"``).
        member: the member (seed index) where it was first seen.
        env_step: the first env step (per member, total over its envs) where it was seen.
        checkpoint_step: env steps of the last good checkpoint kept on disk.
        hint: the likely cause (e.g. the learning rate, with its value).
    """

    def __init__(
        self, quantity: str, member: int, env_step: int, checkpoint_step: int, where: str = "",
        hint: str | None = None,
    ) -> None:
        self.quantity = quantity
        self.member = member
        self.env_step = env_step
        self.checkpoint_step = checkpoint_step
        self.hint = hint or (
            "Lower the learning rate or check the inputs (e.g. agent.hyper.in_gain)."
        )
        what = quantity if quantity.startswith(("diverg", "saturat")) else f"non-finite {quantity}"
        kept = (f"keeps its last good checkpoint (env step {checkpoint_step})" if checkpoint_step
                else "has no checkpoint (it stopped in its first chunk: nothing to resume)")
        super().__init__(
            f"{what} in member {member} at env step {env_step}{where}; the run stopped and "
            f"{kept}. {self.hint}"
        )


class RunLockedError(NeurorlError):
    """Another process is writing the same run directory."""


class RunFileError(NeurorlError):
    """The filesystem refused a read or write (read-only, full, permission denied)."""


class RunInterrupted(NeurorlError):
    """Ctrl-C during a run: where it stopped and the command that resumes it."""


def check_key(key: object, name: str = "key") -> None:
    """A JAX PRNG key (``jax.random.key(seed)``), not a raw int or array of ints.

    Raises:
        ConfigError: naming what was given and how to make a key.
    """
    import jax
    import numpy as np

    ok = isinstance(key, jax.Array) and (
        jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
        or (key.dtype == np.uint32 and key.shape[-1:] == (2,))
    )
    if not ok:
        raise ConfigError(
            name,
            key if np.ndim(key) == 0 else f"{type(key).__name__} of shape {np.shape(key)}",
            "a JAX PRNG key, e.g. jax.random.key(0) (or a batch jax.vmap(jax.random.key)(seeds))",
        )
