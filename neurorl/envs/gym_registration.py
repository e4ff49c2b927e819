"""Gymnasium registration: ``gymnasium.make("neurorl/CartPole-v1", length=1.0)`` and ``make_vec``.

:class:`NeurorlGymEnv` is a ``gymnasium.Env`` around one neurorl environment, as Gymnasium's users
expect it:

* **specs as gymnasium's**: ``max_episode_steps``, ``reward_threshold`` and ``nondeterministic``
  are copied from gymnasium's own spec of the same id (CartPole-v1: 500 / 475.0), so
  ``gymnasium.make`` adds the same ``TimeLimit``. The env also truncates itself at
  ``params.max_steps_in_episode`` (a *shorter* limit passed as a param is honoured; to lengthen
  episodes pass ``max_episode_steps=`` to ``gymnasium.make`` as well, as with gymnasium's envs);
* **fast single-env stepping**: without shifts, resets and steps run on the host twins of
  :mod:`neurorl.envs.numpy_twins` (checked step for step against the JAX env); a reset draws
  from the seeded ``np_random`` exactly as gymnasium's env does, so a seed gives gymnasium's
  initial state (rounded to float32). ``backend="jax"`` resets and steps the jitted JAX env
  instead (initial states drawn with a JAX key taken from ``np_random``);
* **rendering** (``render_mode="rgb_array"`` / ``"human"``) through gymnasium's own
  classic-control renderers (:mod:`neurorl.envs.render`);
* **post-termination**: stepping an env that already returned ``terminated=True`` warns once
  (gymnasium's message, via ``gymnasium.logger``) and gives reward 0, as gymnasium's CartPole;
* **shifts**: ``gymnasium.make(id, shifts={...})`` takes the ``shifts`` section of an experiment
  config (``params``/``tasks``/``obs``/``action``/``reward``; step counts in env steps of this
  env, never reset by episodes) and steps the jitted :class:`~neurorl.envs.shifts.ShiftedEnv`;
* **gymnax tool compatibility**: ``env.name`` and ``env.num_actions``.

:class:`NeurorlVectorEnv` is the ``vector_entry_point``: ``gymnasium.make_vec(id, num_envs=N)``
steps all N envs in ONE jitted, vmapped call (auto-reset in the same step, gymnasium's
``AutoresetMode.SAME_STEP``: the returned observation of a finished sub-env is the first of its
next episode, ``info["final_obs"]`` / ``info["_final_obs"]`` hold the terminal one).

Params are overridable with ``params=`` (an EnvParams instance) and/or keyword arguments naming
EnvParams fields; everything is validated on the host before anything is traced.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from neurorl.envs import spaces
from neurorl.envs.numpy_twins import TWINS, host_params
from neurorl.errors import ConfigError, ShapeError, lookup

NAMESPACE = "neurorl"
ENTRY_POINT = "neurorl.envs.gym_registration:NeurorlGymEnv"
VECTOR_ENTRY_POINT = "neurorl.envs.gym_registration:NeurorlVectorEnv"
POST_TERMINATION_WARNING = (
    "You are calling 'step()' even though this environment has already returned terminated = "
    "True. You should always call 'reset()' once you receive 'terminated = True' -- any further "
    "steps are undefined behavior."
)


@functools.cache
def _jitted(env_cls: type) -> tuple[Any, Any]:
    """Jitted ``reset`` and ``step_env`` of one shared instance per env class, so every
    ``gymnasium.make`` of the same id reuses the compiled functions (params are traced)."""
    env = env_cls()
    return jax.jit(env.reset), jax.jit(env.step_env)


def _build_params(env_cls: type, params: Any, overrides: dict[str, Any]) -> Any:
    if params is None:
        return env_cls.params_cls.create(**overrides)
    if not isinstance(params, env_cls.params_cls):
        raise ConfigError(
            "params", type(params).__name__, f"a {env_cls.params_cls.__name__} instance"
        )
    if overrides:
        env_cls.params_cls.check_field_names(overrides)
        params = params.replace(**overrides)
    return params.validate().cast()


def _validated_shifts(shifts: Any) -> dict[str, Any]:
    """The ``shifts`` section of an experiment config, validated by the config schema."""
    from pydantic import ValidationError

    from neurorl.experiment import config as C

    if not isinstance(shifts, dict):
        raise ConfigError("shifts", shifts, "a dict like the 'shifts' section of an experiment")
    try:
        return C.ShiftsSection.model_validate(shifts).model_dump(mode="json")
    except ValidationError as e:
        err = C._from_validation_error(e)
        raise ConfigError(f"shifts.{err.field}", err.value, err.allowed, err.suggestions) from None


def _state_floats(state: Any) -> list[float]:
    """The float fields of a JAX env state (dataclass order, ``time`` excluded)."""
    return [float(getattr(state, f.name)) for f in dataclasses.fields(state)][:-1]


class NeurorlGymEnv(gymnasium.Env):
    """A neurorl environment behind the ``gymnasium.Env`` API (numpy in, numpy out).

    Args:
        env_id: neurorl env id, e.g. ``"CartPole-v1"``.
        params: optional EnvParams instance of that env.
        render_mode: ``None``, ``"rgb_array"`` or ``"human"`` (gymnasium's renderers).
        shifts: optional ``shifts`` section of an experiment config (dict).
        backend: ``"auto"`` (host twin without shifts, else JAX), ``"numpy"`` or ``"jax"``.
        **param_overrides: EnvParams fields to change (applied on top of ``params``).

    Raises:
        ConfigError: unknown env id / field, invalid params or shifts, or a render mode.
    """

    metadata: dict[str, Any] = {"render_modes": ["human", "rgb_array"], "render_fps": 50}

    def __init__(
        self,
        env_id: str,
        params: Any = None,
        render_mode: str | None = None,
        shifts: dict[str, Any] | None = None,
        backend: str = "auto",
        **param_overrides: Any,
    ) -> None:
        from neurorl.envs import ENVS
        from neurorl.envs.render import render_fps

        env_cls = lookup(ENVS, env_id, "environment", field="env_id")
        if render_mode not in (None, "rgb_array", "human"):
            raise ConfigError("render_mode", render_mode, "None, 'rgb_array' or 'human'")
        if backend not in ("auto", "numpy", "jax"):
            raise ConfigError("backend", backend, "'auto', 'numpy' or 'jax'")
        self.params = _build_params(env_cls, params, param_overrides)
        self.render_mode = render_mode
        # a case variant (cartpole-v1) was accepted by lookup: use the registered id from here on
        self.metadata = {**type(self).metadata, "render_fps": render_fps(env_cls.id)}
        self.jax_env = env_cls()
        self._obs_space = self.jax_env.observation_space(self.params)
        self._act_space = self.jax_env.action_space(self.params)
        self.observation_space = self._obs_space.to_gymnasium()
        self.action_space = self._act_space.to_gymnasium()
        self._discrete = isinstance(self._act_space, spaces.Discrete)
        self._reset_fn, self._step_fn = _jitted(env_cls)
        self._shifted = None
        if shifts:
            from neurorl.experiment.shiftspec import build_shifted_env, is_empty

            shifts = _validated_shifts(shifts)
            if not is_empty(shifts):
                obs_dim = int(np.prod(self._obs_space.shape))
                self._shifted = build_shifted_env(self.jax_env, shifts, 1, obs_dim)
                self._sparams = self._shifted.default_params(self.params)
                self._shifted_fns = _shifted_jitted(self._shifted)
        if backend == "numpy" and self._shifted is not None:
            raise ConfigError("backend", backend, "'jax' or 'auto' for a shifted env")
        self.backend = "jax" if (backend == "jax" or self._shifted is not None) else "numpy"
        self._twin = TWINS[env_cls.id] if self.backend == "numpy" else None
        self._p = host_params(self.params)
        self._renderer = None
        self._key: jax.Array | None = None
        self._state: Any = None  # JAX state (jax backend)
        self._s: list[float] | None = None  # float fields (numpy backend)
        self._t = 0
        self._last_action: Any = None
        self._steps_beyond_terminated: int | None = None

    # --------------------------------------------------------------------------- gymnax compat
    @property
    def name(self) -> str:
        """The env id (gymnax's ``env.name``)."""
        return self.jax_env.id

    @property
    def num_actions(self) -> int:
        """Number of discrete actions, or the continuous action dimension (gymnax's)."""
        return self.jax_env.num_actions

    # ----------------------------------------------------------------------------------- API
    def _check_action(self, action: Any) -> Any:
        space = self._act_space
        if self._discrete:  # fast path: what action_space.sample() and agents give
            t = type(action)
            if (t is int or t is np.int64 or t is np.int32) and 0 <= action < space.n:
                return int(action)
        elif (
            type(action) is np.ndarray
            and action.dtype == np.float32
            and action.shape == space.shape
            and np.isfinite(action).all()
        ):
            return action
        if isinstance(action, jax.Array):  # e.g. from a jitted agent
            action = np.asarray(action)
        if self._discrete:
            if isinstance(action, bool | np.bool_) or not (
                isinstance(action, int | np.integer)
                or (
                    isinstance(action, np.ndarray)
                    and action.shape == ()
                    and np.issubdtype(action.dtype, np.integer)
                )
            ):
                raise ConfigError(
                    "action", action, f"an integer in [0, {space.n}) for {self.jax_env.id}"
                )
            a = int(action)
            if not 0 <= a < space.n:
                raise ConfigError("action", a, f"an integer in [0, {space.n})")
            return a
        try:
            arr = np.asarray(action)
        except Exception:  # noqa: BLE001 - anything not array-like is a type error for the user
            arr = None
        if (
            arr is None
            or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer))
            or np.issubdtype(arr.dtype, np.bool_)
        ):
            raise ConfigError(
                "action", action, f"a float array of shape {space.shape} for {self.jax_env.id}"
            )
        if arr.shape != space.shape:
            raise ShapeError(f"action of {self.jax_env.id}", space.shape, arr.shape)
        if not np.all(np.isfinite(arr)):
            raise ConfigError("action", action, "finite values")
        return arr.astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset; the JAX key comes from gymnasium's (seeded) ``np_random``.

        A shifted env keeps its global step (the shift schedules' clock) across episodes; a
        ``seed`` restarts it at 0 with a new shift key.
        """
        super().reset(seed=seed)
        if options:
            raise ConfigError(
                "options", options, "None (change the reset distribution through params)"
            )
        self._t = 0
        self._last_action = None
        self._steps_beyond_terminated = None
        if self._twin is None:
            self._key = jax.random.key(int(self.np_random.integers(0, 2**31 - 1)))
            self._key, k = jax.random.split(self._key)
        if self._shifted is not None:
            full, soft = self._shifted_fns
            if seed is not None or self._state is None:
                obs, self._state = full(k, self._sparams)
            else:
                obs, self._state = soft(k, self._state, self._sparams)
        elif self._twin is not None:
            self._s = self._twin.reset(self.np_random, self._p)
            obs = self._twin.obs(self._s)
        else:
            obs, self._state = self._reset_fn(k, self.params)
        if self.render_mode == "human":
            self.render()
        return np.asarray(obs, dtype=np.float32), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One transition (no auto-reset: call ``reset`` after an episode ends)."""
        if self._s is None and self._state is None:
            raise ConfigError("step", "called before reset", "call reset() first")
        a = self._check_action(action)
        self._last_action = a
        info: dict[str, Any] = {}
        if self._twin is not None:
            self._s, reward, terminated = self._twin.step(self._s, a, self._p)
            self._t += 1
            obs = self._twin.obs(self._s)
            truncated = self._t >= self._p.max_steps_in_episode
        else:
            self._key, k = jax.random.split(self._key)
            if self._shifted is not None:
                obs, self._state, r, te, tr, jinfo = self._shifted_fns_step(k, a)
                # the env auto-reset inside; gymnasium's user sees the terminal observation
                obs = jinfo["final_obs"]
                info["task_id"] = int(jinfo["task_id"])
            else:
                obs, self._state, r, te, tr, _ = self._step_fn(k, self._state, a, self.params)
            reward, terminated, truncated = float(r), bool(te), bool(tr)
            obs = np.asarray(obs, dtype=np.float32)
        if terminated:
            if self._steps_beyond_terminated is None:
                self._steps_beyond_terminated = 0
            else:
                if self._steps_beyond_terminated == 0:
                    gymnasium.logger.warn(POST_TERMINATION_WARNING)
                self._steps_beyond_terminated += 1
                reward = 0.0
        if self.render_mode == "human":
            self.render()
        return obs, float(reward), bool(terminated), bool(truncated), info

    def _shifted_fns_step(self, key: jax.Array, action: Any) -> Any:
        return _shifted_step(self._shifted)(key, self._state, action, self._sparams)

    def _render_view(self) -> tuple[list[float], Any]:
        """(state float fields, params in effect) for the renderer."""
        if self._twin is not None:
            return self._s, self._p
        if self._shifted is not None:
            st = self._state
            p_now = self._shifted.current_params(st, self._sparams)
            return _state_floats(st.env_state), jax.device_get(p_now)
        return _state_floats(self._state), self.params

    def render(self) -> np.ndarray | None:
        """Gymnasium's frame of the current state (``rgb_array``), or draw it (``human``)."""
        if self.render_mode is None:
            gymnasium.logger.warn(
                "You are calling render method without specifying any render mode. "
                "You can specify the render_mode at initialization, "
                f'e.g. gymnasium.make("{NAMESPACE}/{self.name}", render_mode="rgb_array")'
            )
            return None
        if self._s is None and self._state is None:
            raise ConfigError("render", "called before reset", "call reset() first")
        if self._renderer is None:
            from neurorl.envs.render import ClassicRenderer

            self._renderer = ClassicRenderer(self.jax_env.id, self.render_mode)
        s, p = self._render_view()
        return self._renderer.render(s, p, self._last_action)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    @property
    def state(self) -> Any:
        """The current JAX env state (a flax.struct dataclass; ``ShiftedState`` when shifted)."""
        if self._twin is not None and self._s is not None:
            return self._state_from_floats(self._s, self._t)
        return self._state

    def _state_from_floats(self, s: list[float], t: int) -> Any:
        _, proto = self._reset_fn(jax.random.key(0), self.params)
        names = [f.name for f in dataclasses.fields(proto)]
        vals = [jnp.float32(x) for x in s] + [jnp.int32(t)]
        return type(proto)(**dict(zip(names, vals, strict=True)))


@functools.cache
def _shifted_step(shifted: Any) -> Any:
    return jax.jit(shifted.step)


def _shifted_jitted(shifted: Any) -> tuple[Any, Any]:
    """Jitted full reset (global step 0) and soft reset (new episode, global step kept)."""

    def soft(key, st, sp):
        p_t = sp.shifts.param(st.t, st.shift_key, sp.base)
        k_env, k_obs = jax.random.split(key)
        obs, env_state = shifted.env.reset(k_env, p_t)
        obs, obs_states = shifted._obs(st.t, k_obs, st.obs_states, obs, sp.shifts)
        return obs, st.replace(env_state=env_state, obs_states=obs_states)

    return jax.jit(shifted.reset), jax.jit(soft)


class NeurorlVectorEnv(VectorEnv):
    """``num_envs`` copies of a neurorl env stepped in ONE jitted, vmapped call.

    The ``vector_entry_point`` of every ``neurorl/<id>``: ``gymnasium.make_vec(id, num_envs=N)``.
    Auto-reset is gymnasium's ``AutoresetMode.SAME_STEP``.

    Args:
        num_envs: number of sub-envs.
        env_id: neurorl env id.
        max_episode_steps: episode limit (``make_vec`` passes the spec's); sets
            ``params.max_steps_in_episode`` unless that is given explicitly.
        params: optional EnvParams instance.
        shifts: optional ``shifts`` section of an experiment config (step counts in total env
            steps over the ``num_envs`` sub-envs, as in an experiment).
        render_mode: ``None`` or ``"rgb_array"`` (a list of frames, one per sub-env).
        **param_overrides: EnvParams fields to change.
    """

    metadata: dict[str, Any] = {
        "render_modes": ["rgb_array"],
        "render_fps": 50,
        "autoreset_mode": AutoresetMode.SAME_STEP,
    }

    def __init__(
        self,
        num_envs: int,
        env_id: str,
        max_episode_steps: int | None = None,
        params: Any = None,
        shifts: dict[str, Any] | None = None,
        render_mode: str | None = None,
        **param_overrides: Any,
    ) -> None:
        from neurorl.envs import ENVS
        from neurorl.envs.render import render_fps

        env_cls = lookup(ENVS, env_id, "environment", field="env_id")
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ConfigError("num_envs", num_envs, "an integer >= 1")
        if render_mode not in (None, "rgb_array"):
            raise ConfigError("render_mode", render_mode, "None or 'rgb_array' for a vector env")
        if max_episode_steps is not None and "max_steps_in_episode" not in param_overrides:
            param_overrides["max_steps_in_episode"] = int(max_episode_steps)
        self.params = _build_params(env_cls, params, param_overrides)
        self.num_envs = num_envs
        self.render_mode = render_mode
        # a case variant (cartpole-v1) was accepted by lookup: use the registered id from here on
        self.metadata = {**type(self).metadata, "render_fps": render_fps(env_cls.id)}
        self.jax_env = env_cls()
        obs_space = self.jax_env.observation_space(self.params)
        act_space = self.jax_env.action_space(self.params)
        self._discrete = isinstance(act_space, spaces.Discrete)
        self._n = getattr(act_space, "n", None)
        self._act_shape = tuple(act_space.shape)
        self.single_observation_space = obs_space.to_gymnasium()
        self.single_action_space = act_space.to_gymnasium()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        env: Any = self.jax_env
        env_params: Any = self.params
        self._shifted = False
        if shifts:
            from neurorl.experiment.shiftspec import build_shifted_env, is_empty

            shifts = _validated_shifts(shifts)
            if not is_empty(shifts):
                obs_dim = int(np.prod(obs_space.shape))
                env = build_shifted_env(self.jax_env, shifts, num_envs, obs_dim)
                env_params = env.default_params(self.params)
                self._shifted = True
        self._env, self._env_params = env, env_params
        B = num_envs

        def reset(key, p):
            obs, st = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, B), p)
            return obs, st

        def step(key, st, action, p):
            key, sub = jax.random.split(key)
            obs, st, r, te, tr, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(sub, B), st, action, p
            )
            extra = {"final_obs": info["final_obs"]}
            if "task_id" in info:
                extra["task_id"] = info["task_id"]
            return key, obs, st, r.astype(jnp.float32), te, tr, extra

        self._reset_fn = jax.jit(reset)
        self._step_fn = jax.jit(step)
        self._key: jax.Array | None = None
        self._state: Any = None
        self._renderers: list[Any] | None = None

    @property
    def name(self) -> str:
        return self.jax_env.id

    @property
    def num_actions(self) -> int:
        return self.jax_env.num_actions

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all sub-envs (one seed for the whole batch)."""
        if isinstance(seed, list | tuple):
            seed = seed[0] if seed else None
        super().reset(seed=seed)
        if options:
            raise ConfigError("options", options, "None")
        k = jax.random.key(int(self.np_random.integers(0, 2**31 - 1)))
        self._key, k = jax.random.split(k)
        obs, self._state = self._reset_fn(k, self._env_params)
        return np.asarray(obs, np.float32), {}

    def _check_actions(self, actions: Any) -> np.ndarray:
        a = np.asarray(actions)
        want = (self.num_envs,) + self._act_shape
        if a.shape != want:
            raise ShapeError(f"actions of {self.num_envs} x {self.jax_env.id}", want, a.shape)
        if self._discrete:
            if not np.issubdtype(a.dtype, np.integer):
                raise ConfigError("actions", actions, f"integers in [0, {self._n})")
            if np.any(a < 0) or np.any(a >= self._n):
                raise ConfigError("actions", actions, f"integers in [0, {self._n})")
            return a.astype(np.int32)
        if not np.all(np.isfinite(a)):
            raise ConfigError("actions", actions, "finite values")
        return a.astype(np.float32)

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-env in one jitted call (same-step auto-reset)."""
        if self._state is None:
            raise ConfigError("step", "called before reset", "call reset() first")
        a = self._check_actions(actions)
        self._key, obs, self._state, r, te, tr, extra = self._step_fn(
            self._key, self._state, a, self._env_params
        )
        obs, r, te, tr, extra = jax.device_get((obs, r, te, tr, extra))
        done = np.logical_or(te, tr)
        info: dict[str, Any] = {"final_obs": extra["final_obs"], "_final_obs": done}
        if "task_id" in extra:
            info["task_id"] = extra["task_id"]
        return obs, r, te, tr, info

    def render(self) -> list[np.ndarray] | None:
        """One gymnasium frame per sub-env (``rgb_array``)."""
        if self.render_mode is None:
            gymnasium.logger.warn("render() called on a vector env made without render_mode")
            return None
        from neurorl.envs.render import ClassicRenderer

        if self._renderers is None:
            self._renderers = [
                ClassicRenderer(self.jax_env.id, self.render_mode) for _ in range(self.num_envs)
            ]
        st = jax.device_get(self._state)
        inner = st.env_state if self._shifted else st
        frames = []
        for i, r in enumerate(self._renderers):
            one = jax.tree.map(lambda x, i=i: x[i], inner)
            frames.append(r.render(_state_floats(one), jax.device_get(self.params)))
        return frames

    def close_extras(self, **kwargs: Any) -> None:
        for r in self._renderers or []:
            r.close()
        self._renderers = None


def register_envs() -> list[str]:
    """Register ``neurorl/<id>`` for every env in ``ENVS`` with Gymnasium (idempotent).

    Spec fields (``max_episode_steps``, ``reward_threshold``, ``nondeterministic``) are
    gymnasium's own for the same id; ``vector_entry_point`` is :class:`NeurorlVectorEnv`.

    Returns:
        The gymnasium ids.
    """
    from neurorl.envs import ENVS

    ids = []
    for env_id in ENVS:
        gid = f"{NAMESPACE}/{env_id}"
        ids.append(gid)
        if gid in gymnasium.registry:
            continue
        theirs = gymnasium.spec(env_id)
        gymnasium.register(
            id=gid,
            entry_point=ENTRY_POINT,
            vector_entry_point=VECTOR_ENTRY_POINT,
            kwargs={"env_id": env_id},
            max_episode_steps=theirs.max_episode_steps,
            reward_threshold=theirs.reward_threshold,
            nondeterministic=theirs.nondeterministic,
        )
    return ids
