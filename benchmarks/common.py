"""Shared helpers for benchmarks: describe the machine, write JSON + a markdown table, the
online last-100 metric, and the non-spiking PPO baseline (:func:`make_ppo`; run by
``benchmarks/ppo_baseline.py`` for the learning table and by ``benchmarks/continual.py``).

PPO: clipped PPO with GAE (Schulman et al. 2017), the PureJaxRL layout (Lu et al. 2022):
separate actor and critic MLPs 64x64 tanh, orthogonal init, Adam with a CONSTANT learning rate
(as the local rules get), gradient-norm clip 0.5. Truncated episodes (CartPole's 500-step
limit) bootstrap from the value of ``info["final_obs"]``; terminated ones from 0.

References:
    Schulman, Wolski, Dhariwal, Radford & Klimov (2017). Proximal policy optimization
    algorithms. arXiv:1707.06347.
    Lu, Kuba, Letcher, Metz, Schroeder de Witt & Foerster (2022). Discovered policy
    optimisation (PureJaxRL's ppo.py). NeurIPS.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

# ``run_all.py --out DIR`` sets NEURORL_BENCH_RESULTS for benchmarks it runs as subprocesses
RESULTS = Path(
    os.environ.get("NEURORL_BENCH_RESULTS") or Path(__file__).resolve().parent / "results"
)


def machine() -> dict[str, Any]:
    """CPU model (from /proc/cpuinfo), core counts, load average, accelerator, Python / jax /
    numpy / gymnasium versions."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }
    try:
        info["loadavg_1_5_15"] = [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        pass
    try:
        import jax
        import numpy as np

        info["jax"] = jax.__version__
        info["jax_backend"] = jax.default_backend()
        info["numpy"] = np.__version__
        info["jax_devices"] = [str(d) for d in jax.devices()]
    except Exception:  # pragma: no cover - benchmarks without jax
        pass
    try:
        from importlib.metadata import version

        info["gymnasium"] = version("gymnasium")
    except Exception:  # gymnasium is optional
        pass
    return info


def provenance() -> dict[str, Any]:
    """The git commit the benchmark ran on and the library files that differed from it."""
    import subprocess

    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = [ln[3:] for ln in git("status", "--porcelain", "--", "neurorl").splitlines()]
    commit = git("rev-parse", "--short", "HEAD").strip()
    return {"commit": commit or None, "neurorl_uncommitted": dirty}


def provenance_line(prov: dict[str, Any]) -> str:
    """:func:`provenance` as one markdown sentence for a results section."""
    dirty = ", ".join(prov["neurorl_uncommitted"]) or "none"
    return f"Code: commit {prov['commit']}; uncommitted library files: {dirty}."


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A GitHub markdown table from a list of dicts with the same keys."""
    if not rows:
        return ""
    keys = list(rows[0])
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |")
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_results(
    name: str,
    result: dict[str, Any],
    rows: list[dict[str, Any]],
    notes: str = "",
    out: Path | str | None = None,
    markdown: str | None = None,
) -> tuple[Path, Path]:
    """Write ``<out>/<name>.json`` (everything) and ``<out>/<name>.md`` (table + machine);
    ``out`` defaults to :data:`RESULTS`. ``markdown``: a benchmark's own report section, written
    as the ``.md`` instead of the generic table of ``rows``."""
    folder = Path(out) if out is not None else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    js = folder / f"{name}.json"
    md = folder / f"{name}.md"
    js.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if markdown is not None:
        md.write_text(markdown)
        return js, md
    m = result.get("machine", {})
    text = [f"# {name}", "", markdown_table(rows), ""]
    if notes:
        text += [notes, ""]
    text += ["Machine: " + ", ".join(f"{k}={v}" for k, v in m.items()), ""]
    md.write_text("\n".join(text))
    return js, md


def record_episodes(returns: list[list[float]], peak: list[float], reach: list[Any], s: int,
                    done: Any, episode_return: Any, step0: int, n_envs: int,
                    threshold: float | None) -> None:
    """Add one seed's finished episodes of a chunk to the online last-100 metric (in place).

    ``done`` and ``episode_return`` are ``[T, n_envs]`` for seed ``s``; an episode ending at
    chunk step ``t`` counts as reached at env step ``step0 + (t + 1) * n_envs``. ``peak[s]`` is the
    best last-100 mean so far and ``reach[s]`` the first env step at which it reached
    ``threshold`` (None until then).
    """
    import numpy as np

    for t, b in zip(*np.nonzero(done), strict=False):
        returns[s].append(float(episode_return[t, b]))
        if len(returns[s]) >= 100:
            m100 = float(np.mean(returns[s][-100:]))
            peak[s] = max(peak[s], m100)
            if threshold is not None and reach[s] is None and m100 >= threshold:
                reach[s] = step0 + (int(t) + 1) * n_envs


# 16 envs x 128 steps per update, 4 epochs x 4 minibatches, constant lr 2.5e-3 (the rejax
# CartPole settings quoted in issue 17, except the epoch / minibatch counts, PureJaxRL's);
# no entropy bonus: on seeds 100-104 (200k steps) the median seed reached 475 at 159k without
# it and at 168k with 0.01
PPO_DEFAULTS: dict[str, Any] = {
    "n_envs": 16, "n_steps": 128, "epochs": 4, "minibatches": 4, "lr": 2.5e-3,
    "gamma": 0.99, "gae_lambda": 0.95, "clip": 0.2, "c_ent": 0.0, "c_v": 0.5,
    "max_grad_norm": 0.5, "hidden": 64,
}


def _mlp(key: jax.Array, sizes: list[int], last_scale: float) -> list[dict[str, jax.Array]]:
    init = jax.nn.initializers.orthogonal
    keys = jax.random.split(key, len(sizes) - 1)
    return [{"w": init(np.sqrt(2.0) if i < len(sizes) - 2 else last_scale)(k, (a, b)),
             "b": jnp.zeros((b,))}
            for i, (k, a, b) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True))]


def _apply(layers: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
    for i, lyr in enumerate(layers):
        x = x @ lyr["w"]
        x = x + jnp.broadcast_to(lyr["b"], x.shape)  # explicit: rank promotion may raise
        if i < len(layers) - 1:
            x = jnp.tanh(x)
    return x


class Transition(NamedTuple):
    obs: jax.Array
    action: jax.Array
    logp: jax.Array
    value: jax.Array
    reward: jax.Array
    done: jax.Array
    next_value: jax.Array  # bootstrap value of the transition's successor (0 if terminated)


def make_ppo(env_id: str = "CartPole-v1", env_kwargs: dict[str, Any] | None = None,
             *, env: Any = None, params: Any = None, **hyper: Any):
    """Build ``(init, update)`` for PPO on a discrete-action env (pure functions of one seed).

    The env parameters live in the state (``state["params"]``), so a task sequence swaps them
    between updates (``benchmarks/continual.py``).

    Args:
        env_id: a neurorl env id with discrete actions.
        env_kwargs: keyword arguments of ``neurorl.envs.make`` (e.g. ``{"length": 1.0}``).
        env: an env object with the same API to use instead (e.g. a ``ShiftedEnv``, whose
            ``ShiftedParams`` then live in the state); needs ``params``.
        params: the initial params of ``env``.
        hyper: ``PPO_DEFAULTS`` keys.

    Returns:
        ``init(key) -> state``, ``update(state) -> (state, metrics)`` and the env steps of one
        update (``n_envs * n_steps``); metrics hold per-step ``done``, ``episode_return`` and
        ``episode_length`` ``[n_steps, n_envs]``.

    Raises:
        ValueError: unknown hyperparameter or a continuous-action env.
    """
    from neurorl.envs import make

    bad = set(hyper) - set(PPO_DEFAULTS)
    if bad:
        raise ValueError(f"unknown PPO hyperparameters {sorted(bad)}; allowed {list(PPO_DEFAULTS)}")
    h = {**PPO_DEFAULTS, **hyper}
    if env is None:
        env, params = make(env_id, **dict(env_kwargs or {}))
    elif params is None:
        raise ValueError("make_ppo(env=...) needs the env's params too")
    space = env.action_space(params)
    if not hasattr(space, "n"):
        raise ValueError(f"{env_id}: the PPO baseline here is for discrete actions")
    n_act, n_obs = int(space.n), int(np.prod(env.observation_space(params).shape))
    E, S = int(h["n_envs"]), int(h["n_steps"])
    tx = optax.chain(optax.clip_by_global_norm(h["max_grad_norm"]), optax.adam(h["lr"], eps=1e-5))

    def init(key: jax.Array) -> dict[str, Any]:
        ka, kc, ke, key = jax.random.split(key, 4)
        net = {"pi": _mlp(ka, [n_obs, h["hidden"], h["hidden"], n_act], 0.01),
               "v": _mlp(kc, [n_obs, h["hidden"], h["hidden"], 1], 1.0)}
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(ke, E), params)
        return {"net": net, "opt": tx.init(net), "obs": obs, "env": env_state, "key": key,
                "ret": jnp.zeros((E,)), "len": jnp.zeros((E,), jnp.int32), "params": params}

    def value(net: Any, obs: jax.Array) -> jax.Array:
        return _apply(net["v"], obs)[..., 0]

    def env_step(carry, _):
        net, obs, env_state, ret, ln, key, prm = carry
        key, ka, ks = jax.random.split(key, 3)
        logits = _apply(net["pi"], obs)
        action = jax.random.categorical(ka, logits)
        logp = jax.nn.log_softmax(logits)[jnp.arange(E), action]
        v = value(net, obs)
        obs2, env_state, r, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(ks, E), env_state, action, prm)
        done = term | trunc
        v_next = jnp.where(term, 0.0, value(net, info["final_obs"]))
        ret, ln = ret + r, ln + 1
        out = (Transition(obs, action, logp, v, r, done, v_next), ret, ln, done)
        return (net, obs2, env_state, jnp.where(done, 0.0, ret), jnp.where(done, 0, ln), key,
                prm), out

    def loss_fn(net, batch: Transition, adv: jax.Array, target: jax.Array):
        logits = _apply(net["pi"], batch.obs)
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, batch.action[:, None], axis=1)[:, 0]
        ratio = jnp.exp(logp - batch.logp)
        a = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg = -jnp.minimum(ratio * a, jnp.clip(ratio, 1 - h["clip"], 1 + h["clip"]) * a).mean()
        v = value(net, batch.obs)
        v_clip = batch.value + jnp.clip(v - batch.value, -h["clip"], h["clip"])
        vl = 0.5 * jnp.maximum((v - target) ** 2, (v_clip - target) ** 2).mean()
        ent = -(jnp.exp(logp_all) * logp_all).sum(-1).mean()
        return pg + h["c_v"] * vl - h["c_ent"] * ent

    def update(state: dict[str, Any]):
        carry = (state["net"], state["obs"], state["env"], state["ret"], state["len"],
                 state["key"], state["params"])
        (net, obs, env_state, ret, ln, key, _), (tr, ep_ret, ep_len, done) = jax.lax.scan(
            env_step, carry, None, length=S)

        def gae(next_adv, t: Transition):
            delta = t.reward + h["gamma"] * t.next_value - t.value
            adv = delta + h["gamma"] * h["gae_lambda"] * (1.0 - t.done) * next_adv
            return adv, adv

        _, adv = jax.lax.scan(gae, jnp.zeros((E,)), tr, reverse=True)
        target = adv + tr.value
        flat = lambda x: x.reshape((S * E,) + x.shape[2:])  # noqa: E731
        data = (jax.tree.map(flat, tr), flat(adv), flat(target))
        mb = S * E // int(h["minibatches"])

        def epoch(c, _):
            net, opt, key = c
            key, kp = jax.random.split(key)
            perm = jax.random.permutation(kp, S * E)
            shuf = jax.tree.map(lambda x: x[perm].reshape((-1, mb) + x.shape[1:]), data)

            def minibatch(c2, b):
                net, opt = c2
                g = jax.grad(loss_fn)(net, *b)
                upd, opt = tx.update(g, opt, net)
                return (optax.apply_updates(net, upd), opt), None

            (net, opt), _ = jax.lax.scan(minibatch, (net, opt), shuf)
            return (net, opt, key), None

        (net, opt, key), _ = jax.lax.scan(epoch, (net, state["opt"], key), None,
                                          length=int(h["epochs"]))
        new = {"net": net, "opt": opt, "obs": obs, "env": env_state, "key": key, "ret": ret,
               "len": ln, "params": state["params"]}
        return new, {"done": done, "episode_return": ep_ret, "episode_length": ep_len}

    return init, update, E * S




def make_ppo_evaluate(env_id: str, n_iter: int, n_envs: int = 8,
                      env_kwargs: dict[str, Any] | None = None, env: Any = None):
    """``evaluate(states[S], params[C], key) -> mean return [C, S]`` of the frozen PPO policy.

    The PPO counterpart of ``benchmarks.robustness.make_evaluate`` (same protocol: sampled
    actions, ``n_iter`` steps of ``n_envs`` fresh envs, the mean return of the finished
    episodes; an env that finished none counts its running return). ``params`` are env
    parameters stacked along a leading condition axis (one pytree structure); ``env`` an env
    object to use instead of ``make(env_id)`` (e.g. a ``ShiftedEnv``, conditions then
    ``ShiftedParams``).
    """
    from neurorl.envs import make

    if env is None:
        env, _ = make(env_id, **dict(env_kwargs or {}))
    B = int(n_envs)

    def one(state: dict[str, Any], params: Any, key: jax.Array):
        k_reset, k_run = jax.random.split(key)
        obs, es = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, B), params)

        def step(carry, _):
            es, obs, ep, k = carry
            k, ka, ke = jax.random.split(k, 3)
            action = jax.random.categorical(ka, _apply(state["net"]["pi"], obs))
            obs, es, r, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(ke, B), es, action, params)
            done = term | trunc
            ep = ep + r
            return (es, obs, jnp.where(done, 0.0, ep), k), (jnp.where(done, ep, 0.0), done)

        (_, _, running, _), (fin, done) = jax.lax.scan(
            step, (es, obs, jnp.zeros((B,)), k_run), None, length=int(n_iter))
        none = jnp.sum(done, axis=0) == 0
        total = jnp.sum(fin) + jnp.sum(jnp.where(none, running, 0.0))
        return total / (jnp.sum(done) + jnp.sum(none))

    jitted = jax.jit(jax.vmap(jax.vmap(one, in_axes=(0, None, 0)), in_axes=(None, 0, None)))

    def evaluate(states: dict[str, Any], conditions: Any, key: jax.Array) -> jax.Array:
        n_seeds = jax.tree.leaves(states["net"])[0].shape[0]
        return jitted(states, conditions, jax.random.split(key, n_seeds))

    return evaluate
