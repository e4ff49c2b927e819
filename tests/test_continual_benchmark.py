"""Smoke tests of ``benchmarks/continual.py``: every row's adaptation goes through the same
metric code, the PPO baseline follows the task sequence, bad overrides get clear errors.

The full benchmark runs minutes; these check its pieces on hand-made episodes and a few PPO
updates. No timing is asserted.
"""

import importlib.util
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.errors import ConfigError

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def continual():
    spec = importlib.util.spec_from_file_location("_test_bench_continual", BENCH / "continual.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _episodes(rets_per_task, length_of=lambda r: int(r), n_envs=1):
    """One env playing episodes back to back; each task's block is exactly 1000 steps."""
    eps, t = [], 0
    for block in rets_per_task:
        start = t
        for r in block:
            ln = length_of(r)
            t += ln * n_envs
            eps.append((t, float(r), ln, 1e-6))
        assert t - start == 1000, t - start
        t = start + 1000
    return eps


def test_adaptation_rows_share_one_definition(continual):
    budget = {"evals_per_task": 1, "k": 1}
    r_rand = np.array([20.0, 20.0, 20.0, 20.0])
    # task 0: ten episodes of 100; task 1: 50, 50 then nine of 100;
    # task 2 and 3: ten of 100 (no adaptation needed)
    # (task 1's block: 50 + 50 + 9 x 100 = 1000 steps)
    blocks = [[100] * 10, [50, 50] + [100] * 9, [100] * 10, [100] * 10]
    eps = [_episodes(blocks)]
    row = continual._metrics("x", budget, None, None, None, eps, 1000, 1, r_rand, 0.005)
    sw = row["switches"]
    # switch 1: windows of 10 post-switch episodes: (50+50+8*100)/10 = 90 < 20 + 0.9*80 = 92;
    # (50 + 9*100)/10 = 95 >= 92 -> the window starts with the second episode, at step 50
    assert sw[0]["steps_per_seed"] == [50.0]
    assert sw[0]["chip_time_s_median"] == pytest.approx(50 * 0.005)
    assert sw[1]["steps_per_seed"] == [0.0] and sw[2]["steps_per_seed"] == [0.0]
    assert [s["recovered"] for s in sw] == [1, 1, 1]
    # a seed that never recovers counts as infinite in the median: 2 of 3 censored -> None
    bad = [[100] * 10, [20] * 50, [100] * 10, [100] * 10]
    eps3 = [_episodes(blocks), _episodes(bad), _episodes(bad)]
    row3 = continual._metrics("x", budget, None, None, None, eps3, 1000, 1, r_rand, None)
    assert row3["switches"][0]["steps_median"] is None
    assert row3["switches"][0]["recovered"] == 1
    assert row3["switches"][0]["chip_time_s_median"] is None  # no chip for a non-spiking row
    # the plot curve: 100 bins of 40 steps, the median return of the episodes ending in each
    # (none ends in the first two bins; the first ends at step 100)
    c = row3["curve"]
    assert len(c["step"]) == 100 and c["median"][:3] == [None, None, 100.0]


def test_ppo_follows_the_task_sequence(continual):
    from benchmarks.common import make_ppo, make_ppo_evaluate
    from neurorl.envs import make

    init, update, per_update = make_ppo("CartPole-v1", {"length": 1.0}, n_envs=2, n_steps=64,
                                        minibatches=2)
    assert per_update == 128
    st = jax.jit(init)(jax.random.key(0))
    assert float(st["params"].length) == 1.0
    st = {**st, "params": make("CartPole-v1", length=0.25)[1]}
    st, m = jax.jit(update)(st)
    assert float(st["params"].length) == 0.25  # the swapped task stays in the state
    done, ret, ln = (np.asarray(m[k]) for k in ("done", "episode_return", "episode_length"))
    assert done.shape == (64, 2) and done.any()
    # CartPole pays 1 per step: a finished episode's return is its length
    np.testing.assert_allclose(ret[done], ln[done])
    ev = make_ppo_evaluate("CartPole-v1", 50, n_envs=2)
    conds = jax.tree.map(lambda *x: jnp.stack(x), *[make("CartPole-v1", length=v)[1]
                                                    for v in (0.5, 1.0)])
    states = jax.tree.map(lambda x: x[None], st)
    out = ev(states, conds, jax.random.key(1))
    assert out.shape == (2, 1) and bool(jnp.all(out > 0))


def test_overrides_are_checked(continual):
    assert continual._parse_hyper(["eprop_ac.lr=3e-4", "rstdp.lr=1e-4"]) == {
        "eprop_ac": {"lr": 3e-4}, "rstdp": {"lr": 1e-4}}
    with pytest.raises(ConfigError, match="hyper"):
        continual._parse_hyper(["lr=3e-4"])
    with pytest.raises(ConfigError, match="rules"):
        continual.main(rules=["eprop"], out="/nonexistent")


def test_combine_merges_runs_in_rule_order(continual, tmp_path):
    import json

    budget = {"steps_per_task": 1000, "seeds": 1, "evals_per_task": 1, "eval_steps": 10, "k": 1,
              "seed0": 0, "evaluate": False}
    r_rand = np.array([20.0] * 4)
    eps = [_episodes([[100] * 10] * 4)]
    paths = []
    for rule in ("ppo", "rstdp"):  # written in the wrong order on purpose
        row = continual._metrics(rule, budget, None, None, None, eps, 1000, 1, r_rand, None)
        row["hyper"] = {}
        res = {"benchmark": "continual", "config": "experiments/x.yaml", "budget":
               {**budget, "episodes_dir": f"/tmp/{rule}"}, "energy_chip": "loihi2",
               "wall_s": 1.0, "machine": {}, "provenance": {"commit": "abc",
                                                            "neurorl_uncommitted": []},
               "rows": [row]}
        p = tmp_path / f"{rule}.json"
        p.write_text(json.dumps(res))
        paths.append(p)
    out = continual.combine(paths, tmp_path / "out")
    assert [r["rule"] for r in out["rows"]] == ["rstdp", "ppo"]
    md = (tmp_path / "out" / "continual.md").read_text()
    assert md.index("| rstdp |") < md.index("| ppo |") and "seeds 0-0" in md
    bad = json.loads(paths[1].read_text())
    bad["budget"]["steps_per_task"] = 2000
    paths[1].write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="combine"):
        continual.combine(paths, tmp_path / "out2")
