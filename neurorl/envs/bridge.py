"""Host-loop bridge: a jitted agent acting on any ``gymnasium.Env`` (or vector env) step by step.

The JAX environments in :mod:`neurorl.envs` run inside ``lax.scan``; everything else (Atari,
MuJoCo, a lab robot behind a Gymnasium interface) runs on the host. :class:`GymBridge` converts
between the two so that the *same* agent function -- e.g. a jitted ``act(params, obs, key)`` --
drives both:

* observations become flat float32 ``jax.Array`` s: a ``Discrete(n)`` observation is one-hot
  encoded (length ``n``), a ``Box`` is flattened (``MultiBinary`` / ``MultiDiscrete`` are
  flattened / one-hot concatenated); a vector env gives ``[num_envs, obs_dim]``;
* actions come back from JAX and are checked on the host before Gymnasium sees them: a
  discrete action must be an integer scalar (``[num_envs]`` for a vector env) in range, a
  continuous action must have the space's shape; anything else raises a
  :class:`~neurorl.errors.ConfigError` / :class:`~neurorl.errors.ShapeError` that says what was
  expected.

Vector envs follow Gymnasium 1.x semantics (default ``AutoresetMode.NEXT_STEP``: the step after
a done resets that sub-env and ignores its action); the bridge passes them through unchanged.

References:
    Towers et al. (2024). Gymnasium: A Standard Interface for Reinforcement Learning
    Environments. arXiv:2407.17032.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces as gspaces

from neurorl.errors import ConfigError, ShapeError

Array = jax.Array


def _flat_dim(space: gspaces.Space) -> int:
    if isinstance(space, gspaces.Discrete):
        return int(space.n)
    if isinstance(space, gspaces.Box):
        return int(np.prod(space.shape))
    if isinstance(space, gspaces.MultiBinary):
        return int(np.prod(space.shape))
    if isinstance(space, gspaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    raise ConfigError(
        "bridge.observation_space",
        space,
        "Discrete, Box, MultiBinary or MultiDiscrete (flatten Dict/Tuple spaces with "
        "gymnasium.wrappers.FlattenObservation first)",
    )


def encode_observation(space: gspaces.Space, obs: Any, batch: int | None = None) -> np.ndarray:
    """Flat float32 encoding of ``obs`` from ``space`` (one observation, or ``batch`` of them).

    Args:
        space: the single-env observation space.
        obs: a Gymnasium observation (batched along axis 0 if ``batch`` is given).
        batch: number of sub-envs of a vector env, or ``None``.

    Returns:
        ``[obs_dim]`` or ``[batch, obs_dim]`` float32.
    """
    lead = () if batch is None else (batch,)
    if isinstance(space, gspaces.Discrete):
        idx = np.asarray(obs, dtype=np.int64) - int(space.start)
        return np.eye(int(space.n), dtype=np.float32)[idx].reshape(lead + (int(space.n),))
    if isinstance(space, (gspaces.Box, gspaces.MultiBinary)):
        return np.asarray(obs, dtype=np.float32).reshape(lead + (-1,))
    if isinstance(space, gspaces.MultiDiscrete):
        o = np.asarray(obs, dtype=np.int64).reshape(lead + (-1,)) - space.start.reshape(-1)
        parts = [
            np.eye(int(n), dtype=np.float32)[o[..., i]]
            for i, n in enumerate(space.nvec.reshape(-1))
        ]
        return np.concatenate(parts, axis=-1)
    _flat_dim(space)  # raises the ConfigError
    raise AssertionError


GYMNASIUM_PREFIX = "gymnasium:"


def check_gymnasium_id(env_id: str, field: str = "env.id") -> str:
    """The Gymnasium id inside ``"gymnasium:<Id>"``, checked against Gymnasium's registry.

    A ``module:Id`` form (``gymnasium:my_pkg:MyEnv-v0``) imports ``module`` first, as
    ``gymnasium.make`` does.

    Raises:
        ConfigError: not registered (with the closest registered id).
    """
    from neurorl.errors import closest

    name = env_id[len(GYMNASIUM_PREFIX) :] if env_id.startswith(GYMNASIUM_PREFIX) else env_id
    gid = name
    if ":" in name:
        import importlib

        mod, gid = name.split(":", 1)
        try:
            importlib.import_module(mod)
        except ImportError as e:
            raise ConfigError(field, env_id, f"an importable module before ':' ({e})") from None
    if gid not in gymnasium.registry:
        ids = list(gymnasium.registry)
        near = closest(gid, ids)
        raise ConfigError(
            field,
            env_id,
            "gymnasium:<Id> with a registered Gymnasium id (e.g. gymnasium:FrozenLake-v1)",
            None if near is None else GYMNASIUM_PREFIX + near,
        )
    try:  # envs whose dependencies are missing (Box2D, MuJoCo) fail here with their advice
        gymnasium.envs.registration.load_env_creator(gymnasium.spec(gid).entry_point)
    except Exception as e:  # noqa: BLE001 - gymnasium's DependencyNotInstalled and friends
        said = (str(e).splitlines() or [type(e).__name__])[0]
        extra = ('; pip install "neurorl[box2d]"' if "box2d" in f"{gid} {said}".lower()
                 and isinstance(e, (ImportError, gymnasium.error.DependencyNotInstalled)) else "")
        raise ConfigError(field, env_id,
                          f"an env whose dependencies are installed ({said}{extra})") from None
    return name


class GymBridge:
    """Adapter from a ``gymnasium.Env`` / ``gymnasium.vector.VectorEnv`` to JAX arrays.

    Args:
        env: a Gymnasium env, a vector env, or an id for ``gymnasium.make``.
        **make_kwargs: passed to ``gymnasium.make`` when ``env`` is an id.

    Attributes:
        env: the Gymnasium env.
        is_vector: whether ``env`` is a vector env.
        num_envs: number of sub-envs (1 for a single env).
        obs_dim: length of the flat observation.
        discrete: whether the action space is ``Discrete``.
        n_actions: number of discrete actions (``None`` for continuous).
        action_shape: shape of one continuous action (``()`` for discrete).
    """

    def __init__(
        self, env: gymnasium.Env | gymnasium.vector.VectorEnv | str, **make_kwargs: Any
    ) -> None:
        if isinstance(env, str):
            env = gymnasium.make(env, **make_kwargs)
        if not isinstance(env, (gymnasium.Env, gymnasium.vector.VectorEnv)):
            raise ConfigError(
                "bridge.env", env, "a gymnasium.Env, a gymnasium VectorEnv or an env id"
            )
        self.env = env
        self.is_vector = isinstance(env, gymnasium.vector.VectorEnv)
        self.num_envs = int(env.num_envs) if self.is_vector else 1
        self.single_observation_space = (
            env.single_observation_space if self.is_vector else env.observation_space
        )
        self.single_action_space = env.single_action_space if self.is_vector else env.action_space
        self.obs_dim = _flat_dim(self.single_observation_space)
        a = self.single_action_space
        if isinstance(a, gspaces.Discrete):
            self.discrete, self.n_actions, self.action_shape = True, int(a.n), ()
        elif isinstance(a, gspaces.Box):
            self.discrete, self.n_actions, self.action_shape = False, None, tuple(a.shape)
        else:
            raise ConfigError("bridge.action_space", a, "Discrete or Box")

    # ------------------------------------------------------------------ conversions
    def encode(self, obs: Any) -> Array:
        """Gymnasium observation -> flat float32 ``jax.Array`` (``[num_envs, obs_dim]``: vector)."""
        return jnp.asarray(
            encode_observation(
                self.single_observation_space, obs, self.num_envs if self.is_vector else None
            )
        )

    def encode_np(self, obs: Any) -> np.ndarray:
        """:meth:`encode` as a numpy array (no device transfer; the host loop's hot path)."""
        return encode_observation(
            self.single_observation_space, obs, self.num_envs if self.is_vector else None
        )

    def decode_action(self, action: Any) -> Any:
        """JAX / numpy / Python action -> what Gymnasium expects, with host-side checks.

        Raises:
            ShapeError: wrong shape (names the expected one).
            ConfigError: a float where an integer action is expected, or an action out of range.
        """
        a = np.asarray(action)
        lead = (self.num_envs,) if self.is_vector else ()
        if self.discrete:
            if a.shape != lead:
                raise ShapeError("discrete action", lead, a.shape)
            if not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
                raise ConfigError(
                    "action",
                    action,
                    f"an integer action in [0, {self.n_actions}) (got dtype {a.dtype})",
                )
            if np.any(a < 0) or np.any(a >= self.n_actions):
                raise ConfigError("action", action, f"integers in [0, {self.n_actions})")
            start = int(self.single_action_space.start)
            return a.astype(np.int64) + start if self.is_vector else int(a) + start
        want = lead + self.action_shape
        if a.shape != want:
            raise ShapeError("continuous action", want, a.shape)
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise ConfigError("action", action, f"a real-valued array of shape {want}")
        return a.astype(self.single_action_space.dtype)

    # ------------------------------------------------------------------ API
    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[Array, dict]:
        """Reset; returns the encoded observation and Gymnasium's info dict."""
        obs, info = self.env.reset(seed=seed, options=options)
        return self.encode(obs), info

    def step(self, action: Any) -> tuple[Array, Array, Array, Array, dict]:
        """One env step: ``(obs, reward, terminated, truncated, info)`` as float32 / bool arrays."""
        obs, reward, terminated, truncated, info = self.env.step(self.decode_action(action))
        return (
            self.encode(obs),
            jnp.asarray(reward, jnp.float32),
            jnp.asarray(terminated, bool),
            jnp.asarray(truncated, bool),
            info,
        )

    def close(self) -> None:
        self.env.close()

    def __repr__(self) -> str:
        return f"GymBridge({self.env!r}, obs_dim={self.obs_dim})"


def rollout(
    bridge: GymBridge,
    act: Callable[[Any, Array, Array], Any],
    params: Any,
    key: Array,
    n_steps: int,
    seed: int | None = None,
    reset_on_done: bool = True,
) -> dict[str, np.ndarray]:
    """Host loop: ``act(params, obs, key) -> action`` (typically jitted) for ``n_steps`` steps.

    A single env is reset when an episode ends (if ``reset_on_done``); a vector env resets its
    sub-envs itself.

    Returns:
        Time-first arrays: ``obs`` [T, ...] (observation the action was chosen on), ``action``,
        ``reward``, ``terminated``, ``truncated``.
    """
    obs, _ = bridge.reset(seed=seed)
    out: dict[str, list] = {k: [] for k in ("obs", "action", "reward", "terminated", "truncated")}
    for _ in range(n_steps):
        key, k = jax.random.split(key)
        action = act(params, obs, k)
        nobs, r, te, tr, _ = bridge.step(action)
        for name, v in zip(out, (obs, action, r, te, tr), strict=True):
            out[name].append(np.asarray(v))
        obs = nobs
        if reset_on_done and not bridge.is_vector and bool(te | tr):
            obs, _ = bridge.reset()
    return {k: np.stack(v) for k, v in out.items()}


__all__ = ["GymBridge", "check_gymnasium_id", "encode_observation", "rollout"]
