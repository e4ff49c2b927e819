"""Export what a run trained: the network of one seed, with its learned weights, to NIR.

    neurorl export runs/cartpole-eprop-... --to nir [--seed 1] [--out agent.nir]

Python: ``export_run(run_dir, seed=None, to="nir")`` or, for a state in hand,
``agent_network(train, runner_state, member)`` -> ``(CompiledNetwork, state)`` and then
:func:`neurorl.hardware.nir.to_nir`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
import yaml

from neurorl.errors import ConfigError

FORMATS = ("nir",)


def agent_network(train: Any, runner_state: Any, member: int = 0) -> tuple[Any, dict]:
    """The compiled network of an agent and a network state holding member ``member``'s learned
    weights (``runner_state`` as returned by ``make_train``: leading seed axis)."""
    import jax

    rt = getattr(train.agent, "runtime", None)
    if rt is None:
        raise ConfigError("agent", train.agent.name, "an agent built on an N-HAL network")
    n = int(jax.tree.leaves(runner_state.agent_state)[0].shape[0])
    if not 0 <= member < n:
        raise ConfigError("member", member, f"a member index in [0, {n - 1}]")
    one = jax.tree.map(lambda x: x[member], runner_state.agent_state)
    net = rt.net
    state = dict(net.init(jax.random.key(0)))
    state["weights"] = {k: jax.numpy.asarray(v) for k, v in train.agent.weights(one).items()}
    return net, state


def export_run(run_dir: str | Path, *, seed: int | None = None, to: str = "nir",
               out: str | Path | None = None, **nir_options: Any) -> Path:
    """Write the trained network of one seed of a run directory.

    Args:
        run_dir: a run directory (``config.yaml`` and a checkpoint).
        seed: the seed to export (``training.seed + i`` of member i); default the first.
        to: ``"nir"``.
        out: output path (default ``RUN_DIR/export/seed<seed>.nir``).
        **nir_options: passed to :func:`neurorl.hardware.nir.to_nir`: ``nir_version="1.0.4"``
            (for sinabs / rockpool, which pin nir <= 1.0.4), ``recurrent="subgraph"`` (the
            nested form snnTorch 1.0 imports correctly), ``outputs=["hidden"]`` with
            ``prune=True`` (drop groups that feed no output, e.g. the LI readout snnTorch cannot
            map).

    Returns:
        The written file.

    Raises:
        ConfigError: not a run directory, no checkpoint, an unknown seed or format.
    """
    from neurorl.experiment import config as C
    from neurorl.experiment.checkpoint import has_checkpoint, load_checkpoint
    from neurorl.experiment.runner import build

    run_dir = Path(run_dir)
    if to not in FORMATS:
        from neurorl.errors import closest

        raise ConfigError("--to", to, f"one of {list(FORMATS)}", closest(str(to), FORMATS))
    if not (run_dir / "config.yaml").exists():
        raise ConfigError("RUN_DIR", str(run_dir), "a run directory with config.yaml")
    if not has_checkpoint(run_dir):
        raise ConfigError("RUN_DIR", str(run_dir), "a run with a checkpoint (run it first)")
    cfg = C.from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))
    seeds = [cfg.training.seed + i for i in range(cfg.training.n_seeds)]
    members = run_dir / "members.json"
    if members.exists():
        ms = json.loads(members.read_text())
        seeds = [int(m.get("seed", s)) for m, s in zip(ms, seeds, strict=False)] or seeds
    seed = seeds[0] if seed is None else int(seed)
    if seed not in seeds:
        raise ConfigError("--seed", seed, f"one of the run's seeds {seeds}")
    train = build(cfg, calibration=False)  # a state template: no calibration run
    from neurorl.experiment.runner import member_keys

    template = jax.eval_shape(train.init, member_keys(cfg.training.seed, cfg.training.n_seeds))
    rs, _ = load_checkpoint(run_dir, template)
    net, state = agent_network(train, rs, seeds.index(seed))
    out = Path(out) if out is not None else run_dir / "export" / f"seed{seed}.nir"
    out.parent.mkdir(parents=True, exist_ok=True)
    from neurorl.hardware.nir import write_nir

    write_nir(out, net, state, **nir_options)
    meta = {"run_dir": str(run_dir), "seed": seed, "agent": cfg.agent.name,
            "groups": {g: int(grp.n) for g, grp in net.groups.items()},
            "nir_options": nir_options,
            "connections": {c: list(np.shape(w)) for c, w in state["weights"].items()}}
    (out.parent / (out.stem + ".json")).write_text(json.dumps(meta, indent=2))
    return out


__all__ = ["agent_network", "export_run"]
