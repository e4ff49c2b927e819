"""Evaluate a trained run: ``load_policy(run_dir)`` acts without learning; ``neurorl eval``.

::

    from neurorl.experiment.eval import load_policy
    policy = load_policy("runs/cartpole-...", greedy=True)   # member 0 of the run
    env = policy.make_env()                                  # gymnasium.Env of the run's env
    obs, _ = env.reset(seed=0)
    policy.reset()                                           # fresh membrane state per episode
    action = policy.act(obs)                                 # numpy in, numpy out

The policy is the run's agent (same spec, hyperparameters, ``agent.network`` and chip: built by
the trainer's :func:`~neurorl.experiment.train.make_chip_agent`, so a chip run is evaluated on
the chip's neurons, and off-chip learning's float shadow weights act through the chip's
projection as in training) with the checkpoint's *shared*
state -- weights, biases, learned noise scale -- and fresh per-env state (membranes, traces):
``act`` only, never ``learn`` / ``update``, so weights are frozen. ``reset()`` restores the fresh
per-env state (the agent's own ``learn`` would do it at an episode end, but ``learn`` also
learns). Which leaves are shared is read off the agent itself: leaves whose shape does not depend
on ``n_envs``.

``greedy=True`` replaces sampling by the mode of the policy: the argmax of the readout logits
(discrete) or the readout mean (continuous, clipped to the action bounds) for the actor-critics
(``eprop_ac``, ``bptt_ac``), read from the readout state the agent's ``act`` leaves behind; for
``rstdp`` the exploration noise current is set to zero (``noise_std=0``), so the action is the
argmax of the populations' spike-count vote. This reads agent internals (the readout ``u`` and
``b_out``) through the agent's network runtime (``agent.runtime.output_value``).

Evaluation runs on a Gymnasium env of the run's env (``neurorl/<id>`` for the built-in envs, the
Gymnasium id of a host run, gymnax's ``GymnaxToGymWrapper`` for a gymnax env) without the
run's shifts (``shifts=`` in :meth:`Policy.make_env` to evaluate under them). ``--video`` saves
gymnasium's rgb frames with imageio (GIF; MP4 with imageio-ffmpeg).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import yaml

from neurorl.errors import ConfigError, import_optional
from neurorl.experiment import config as C


def _member_state(state: Any, member: int) -> Any:
    ast = state["agent_state"] if isinstance(state, dict) else state.agent_state
    n = jax.tree.leaves(ast)[0].shape[0]
    if not 0 <= member < n:
        raise ConfigError("member", member, f"an integer in [0, {n}) (the run's seeds)")
    return jax.tree.map(lambda x: jnp.asarray(x[member]), ast)


def _load_state(cfg: C.ExperimentConfig, run_dir: Path, load_checkpoint: Any) -> Any:
    """The run's last checkpoint, verified against this config's state structure."""
    from neurorl.experiment.runner import build, member_keys

    # a state template (a gymnasium:<Id> run's HostTrainer has init too): no calibration run
    train = build(cfg, check_memory=False, calibration=False)
    keys = member_keys(cfg.training.seed, cfg.training.n_seeds)
    return load_checkpoint(run_dir, jax.eval_shape(train.init, keys))[0]


def _run_config(run_dir: Path) -> C.ExperimentConfig:
    if not (run_dir / "config.yaml").exists():
        raise ConfigError("RUN_DIR", str(run_dir), "a run directory with config.yaml")
    return C.from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))


@dataclasses.dataclass
class Policy:
    """A frozen agent acting on one environment (numpy observations in, actions out).

    Attributes:
        agent: the Agent (built with ``n_envs=1``).
        state: its current state (trained shared leaves, per-env leaves of this episode).
        cfg: the run's experiment config.
        greedy: mode of the policy instead of a sample.
        member: which seed of the run.
    """

    agent: Any
    state: Any
    cfg: C.ExperimentConfig
    greedy: bool
    member: int
    _fresh: Any
    _shared: Any
    _act: Any
    _key: jax.Array
    _encode: Any
    _decode: Any

    def reset(self) -> None:
        """Fresh per-env state (membranes, traces) for a new episode; weights kept."""
        self.state = jax.tree.map(
            lambda sh, cur, new: cur if sh else new, self._shared, self.state, self._fresh
        )

    def act(self, obs: Any) -> Any:
        """The action for one observation (no learning)."""
        x = jnp.asarray(self._encode(obs), jnp.float32).reshape(1, -1)
        self._key, k = jax.random.split(self._key)
        action, self.state = self._act(self.state, x, k)
        return self._decode(np.asarray(action)[0])

    __call__ = act

    def make_env(self, render_mode: str | None = None, shifts: Any = None) -> Any:
        """A ``gymnasium.Env`` of the run's env (params as in the run, no shifts by default)."""
        return make_eval_env(self.cfg, render_mode=render_mode, shifts=shifts)


def make_eval_env(
    cfg: C.ExperimentConfig, render_mode: str | None = None, shifts: Any = None
) -> Any:
    """The Gymnasium env evaluation runs on (see the module docstring)."""
    import gymnasium

    import neurorl.envs  # noqa: F401 - registers neurorl/<id>

    env_id, params = cfg.env.id, dict(cfg.env.params)
    if env_id.startswith("gymnasium:"):
        from neurorl.envs.bridge import check_gymnasium_id

        if shifts:
            raise ConfigError("shifts", shifts, "None for a gymnasium: env (host shifts)")
        return gymnasium.make(check_gymnasium_id(env_id), render_mode=render_mode, **params)
    if env_id.startswith("gymnax:"):
        from gymnax.wrappers.gym import GymnaxToGymWrapper

        from neurorl.envs import make

        if render_mode is not None:
            raise ConfigError("--video", env_id, "an env with a renderer (not a gymnax: env)")
        if shifts:
            raise ConfigError("shifts", shifts, "None for a gymnax: env")
        env, p = make(env_id, **params)
        return GymnaxToGymWrapper(env.gymnax_env, p)
    return gymnasium.make(f"neurorl/{env_id}", render_mode=render_mode, shifts=shifts, **params)


def _spec(cfg: C.ExperimentConfig) -> Any:
    from neurorl.agents import spec_from_env

    if cfg.env.id.startswith("gymnasium:"):
        from neurorl.envs.bridge import GymBridge
        from neurorl.experiment.host_train import agent_spec

        return agent_spec(cfg, GymBridge(make_eval_env(cfg)), 1)
    from neurorl.envs import make

    env, params = make(cfg.env.id, **dict(cfg.env.params))
    obs_range = None if cfg.agent.obs_range is None else tuple(cfg.agent.obs_range)
    return spec_from_env(env, params, 1, cfg.agent.substeps, obs_range)


def _greedy_act(agent: Any, spec: Any) -> Any:
    """``act`` followed by the policy's mode read from the readout (see the module docstring)."""
    n_act = spec.n_actions
    low = jnp.asarray(spec.action_low, jnp.float32) if not spec.discrete else None
    high = jnp.asarray(spec.action_high, jnp.float32) if not spec.discrete else None

    def act(state, obs, key):
        _, state = agent.act(state, obs, key)
        # the readout group of the agent's network after the env step, plus the decoder's bias
        out = agent.runtime.output_value(state.dyn) + state.params["b_out"][None, :]
        head = out[:, :n_act]
        if spec.discrete:
            return jnp.argmax(head, axis=-1).astype(jnp.int32), state
        return jnp.clip(head, low, high), state

    return act


# hyperparameters that split the env axis of a batch update (they must divide n_envs)
_MINIBATCH_KEYS = {"bptt_ac": ("n_minibatches",), "eprop_ac": ("replay_minibatches",)}


def load_policy(
    run_dir: str | Path, *, member: int = 0, greedy: bool = False, seed: int = 0
) -> Policy:
    """A trained run's agent, frozen, acting on one env (act only, no learning).

    Args:
        run_dir: a run directory (``config.yaml`` and a checkpoint), or a sweep group's.
        member: which of the run's seeds (``0 .. n_seeds - 1``).
        greedy: act with the policy's mode (see the module docstring) instead of sampling.
        seed: PRNG seed of the policy's sampling / spiking noise.

    Returns:
        A :class:`Policy`.

    Raises:
        ConfigError: not a run directory, no checkpoint, an unknown member.
    """
    from neurorl.envs.bridge import encode_observation
    from neurorl.experiment.checkpoint import has_checkpoint, load_checkpoint
    from neurorl.experiment.runner import train_config
    from neurorl.experiment.train import ChipConstraints, make_chip_agent

    run_dir = Path(run_dir)
    cfg = _run_config(run_dir)
    if not has_checkpoint(run_dir):
        raise ConfigError("RUN_DIR", str(run_dir), "a run directory with a checkpoint")
    state = _load_state(cfg, run_dir, load_checkpoint)
    trained = _member_state(state, member)
    spec = _spec(cfg)
    hyper = dict(cfg.agent.hyper)
    # the policy plays one env: a batch update's split of the env axis (which must divide
    # n_envs) never runs, and no state shape depends on it
    hyper.update({k: 1 for k in _MINIBATCH_KEYS.get(cfg.agent.name, ())})
    if greedy and cfg.agent.name == "rstdp":
        hyper["noise_std"] = 0.0
    if greedy and cfg.agent.name not in ("eprop_ac", "bptt_ac", "rstdp"):
        raise ConfigError("greedy", cfg.agent.name, "an agent with a known readout")
    # the run's agent as its trainer built it: its agent.network, and on a chip the network
    # compiled for the chip (membrane precision, device noise; no learning engine: nothing learns)
    tc = dataclasses.replace(train_config(cfg, 1), agent_kwargs=hyper, chip_engine=None)
    agent = make_chip_agent(tc, spec)
    k0 = jax.random.key(seed)
    fresh = agent.init(k0)
    two = make_chip_agent(tc, dataclasses.replace(spec, n_envs=2))
    shapes2 = jax.eval_shape(two.init, k0)
    shared = jax.tree.map(lambda a, b: a.shape == b.shape, fresh, shapes2)
    if jax.tree.structure(trained) != jax.tree.structure(fresh):
        raise ConfigError(
            "checkpoint", str(run_dir), f"an {cfg.agent.name} state of this run's config"
        )
    state0 = jax.tree.map(lambda sh, tr, fr: tr if sh else fr, shared, trained, fresh)
    # off-chip learning kept float shadow weights: the chip acts with their projection, as in
    # training (on-chip learning's weights are on the grid already; float: unchanged)
    state0, _ = ChipConstraints(tc, agent).before_act(state0)
    act = jax.jit(_greedy_act(agent, spec) if greedy and cfg.agent.name != "rstdp" else agent.act)

    gym_env = make_eval_env(cfg)
    obs_space, act_shape = gym_env.observation_space, gym_env.action_space.shape
    gym_env.close()

    def decode(a: np.ndarray) -> Any:
        if spec.discrete:
            return int(a)
        return np.asarray(a, np.float32).reshape(act_shape)

    return Policy(
        agent=agent,
        state=state0,
        cfg=cfg,
        greedy=greedy,
        member=member,
        _fresh=fresh,
        _shared=shared,
        _act=act,
        _key=jax.random.fold_in(k0, 1),
        _encode=lambda o: encode_observation(obs_space, np.asarray(o)),
        _decode=decode,
    )


def save_video(frames: list[np.ndarray], path: str | Path, fps: int) -> Path:
    """Write rgb frames as a GIF (or MP4 with imageio-ffmpeg) with imageio."""
    iio = import_optional("imageio.v3", "render", "--video", str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        iio.imwrite(path, np.stack(frames), duration=1000.0 / fps, loop=0)
    else:
        iio.imwrite(path, np.stack(frames), fps=fps)
    return path


def evaluate(
    run_dir: str | Path,
    *,
    seed: int = 0,
    episodes: int = 10,
    greedy: bool = False,
    member: int = 0,
    video: bool = False,
    video_format: str = "gif",
    max_steps: int | None = None,
) -> dict[str, Any]:
    """Run ``episodes`` episodes of a trained run's frozen policy; write ``eval/`` results.

    Episode ``i`` is reset with seed ``seed + i``. With ``video``, the first episode's frames
    (gymnasium's renderer) go to ``RUN_DIR/eval/member{m}-seed{seed}.{gif,mp4}``.

    Returns:
        ``{"returns", "lengths", "mean_return", "std_return", ...}`` (also written as JSON).
    """
    if not isinstance(episodes, int) or episodes < 1:
        raise ConfigError("--episodes", episodes, "an integer >= 1")
    if video_format not in ("gif", "mp4"):
        raise ConfigError("--video-format", video_format, "'gif' or 'mp4'")
    if video:  # gymnasium's renderers need pygame, the file imageio: checked before any work
        for module in ("pygame", "imageio.v3"):
            import_optional(module, "render", "--video", True)
    run_dir = Path(run_dir)
    policy = load_policy(run_dir, member=member, greedy=greedy, seed=seed)
    env = policy.make_env(render_mode="rgb_array" if video else None)
    fps = int(env.metadata.get("render_fps", 30))
    returns, lengths, frames = [], [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        policy.reset()
        total, n, done = 0.0, 0, False
        if video and i == 0:
            frames.append(env.render())
        while not done:
            obs, r, te, tr, _ = env.step(policy.act(obs))
            total += float(r)
            n += 1
            done = bool(te) or bool(tr) or (max_steps is not None and n >= max_steps)
            if video and i == 0:
                frames.append(env.render())
        returns.append(total)
        lengths.append(n)
    env.close()
    out = {
        "run_dir": str(run_dir),
        "env": policy.cfg.env.id,
        "agent": policy.cfg.agent.name,
        "member": member,
        "seed": seed,
        "greedy": greedy,
        "episodes": episodes,
        "returns": returns,
        "lengths": lengths,
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
    }
    edir = run_dir / "eval"
    stem = f"member{member}-seed{seed}{'-greedy' if greedy else ''}"
    if video:
        out["video"] = str(save_video(frames, edir / f"{stem}.{video_format}", fps))
    edir.mkdir(parents=True, exist_ok=True)
    (edir / f"{stem}.json").write_text(json.dumps(out, indent=2))
    return out


__all__ = ["Policy", "evaluate", "load_policy", "make_eval_env", "save_video"]
