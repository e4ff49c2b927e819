"""Smoke tests of ``benchmarks/continual.py``: every row's adaptation goes through the same
metric code, the PPO baseline follows the task sequence, bad overrides get clear errors.

The full benchmark runs minutes; these check its pieces on hand-made episodes and a few PPO
updates. No timing is asserted.
"""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.errors import ConfigError
from tests.bench_modules import load_benchmark


@pytest.fixture(scope="module")
def continual():
    return load_benchmark("continual")


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


def _shift_cfg(continual, per_task):
    from neurorl.experiment import config as C

    base, n, own, names = continual._sequence({"config": "lifelong_cartpole_shifts.yaml"})
    shifts = continual._rescaled_shifts(base["shifts"], own, per_task)
    return C.from_dict({**base, "shifts": shifts}, {"training.steps": per_task * n}), n, names


def test_shift_sequence_tasks_are_the_training_env_frozen(continual):
    """Each task's frozen condition steps exactly like the training ShiftedEnv inside that task
    (same key -> same obs, reward, done), and the sequence's shifts are what its YAML says."""
    from neurorl.envs import make
    from neurorl.envs import shifts as S
    from neurorl.experiment.shiftspec import build_shifted_env

    per_task = 800  # 100 steps per env (8 envs)
    cfg, n, names = _shift_cfg(continual, per_task)
    assert n == 5 and names[1] == "swapped"
    tc = continual.task_conditions(cfg, per_task)
    assert tc["col"] == [0, 1, 2, 3, 0]  # the first task comes back as the same condition
    assert tc["env_kwargs"][0] == {} and tc["env_kwargs"][2] == pytest.approx(
        {"gravity": 19.6, "masscart": 2.0, "force_mag": 15.0})
    env, base = make("CartPole-v1")
    train_env = build_shifted_env(env, cfg.shifts.model_dump(mode="python"), 8, 4)
    fixed_env = S.ShiftedEnv(env)
    key = jax.random.key(3)
    for k in range(n):
        cond = tc["conds"][tc["col"][k]]
        _, st_train = train_env.reset(key, train_env.default_params(base))
        _, st_fixed = fixed_env.reset(key, cond)
        t = k * 100 + 37  # per-env step inside task k
        st_train = st_train.replace(t=jnp.asarray(t, jnp.int32))
        for a in (0, 1, 1, 0, 1):
            out_t = train_env.step(key, st_train, a, train_env.default_params(base))
            out_f = fixed_env.step(key, st_fixed, a, cond)
            for x, y in zip(out_t[:1] + out_t[2:5], out_f[:1] + out_f[2:5], strict=True):
                np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
            st_train = out_t[1]
            st_fixed = out_f[1]
    # what the YAML says: task 1 swaps the two actions, task 3 permutes all four sensors
    sh = tc["conds"][1].shifts
    assert int(sh.action[0].apply(jnp.int32(5), None, jnp.int32(0))) == 1
    obs = jnp.arange(4.0)
    perm, _ = tc["conds"][3].shifts.obs[0].apply(jnp.int32(5), None, (), obs)
    assert sorted(np.asarray(perm).tolist()) == [0, 1, 2, 3]
    assert all(np.asarray(perm) != np.asarray(obs))  # every sensor moves
    same, _ = tc["conds"][0].shifts.obs[0].apply(jnp.int32(5), None, (), obs)
    np.testing.assert_array_equal(np.asarray(same), np.asarray(obs))


def test_shift_windows_move_with_the_task_boundaries(continual):
    from neurorl.envs import shifts as S

    sh = {"tasks": {"tasks": [{}, {}, {}], "steps_per_task": 100},
          "action": [{"kind": "remap", "mapping": [1, 0], "start": 100, "end": 200}],
          "obs": [{"kind": "permute", "start": 200}]}
    out = continual._rescaled_shifts(sh, 100, 640)
    assert out["tasks"]["steps_per_task"] == 640
    assert (out["action"][0]["start"], out["action"][0]["end"]) == (640, 1280)
    assert out["obs"][0]["start"] == 1280 and out["obs"][0].get("end") is None
    assert sh["action"][0]["start"] == 100  # the config itself is not changed
    with pytest.raises(ConfigError, match=r"shifts.action\[0\].end"):
        continual._rescaled_shifts({**sh, "action": [{**sh["action"][0], "end": 150}]}, 100, 640)
    with pytest.raises(ConfigError, match="shifts.params"):
        continual._rescaled_shifts({**sh, "params": [{"field": "length", "schedule": 1.0}]},
                                   100, 640)
    with pytest.raises(ConfigError, match="random"):
        continual._freeze(S.random(0.0, 1.0, 10), 3)
    with pytest.raises(ConfigError, match="config"):
        continual._config_path({"config": "lifelong_nothing.yaml"})


def test_a_shift_inside_a_task_is_refused(continual):
    from neurorl.experiment import config as C

    base, n, own, _ = continual._sequence({"config": "lifelong_cartpole_shifts.yaml"})
    shifts = continual._rescaled_shifts(base["shifts"], own, 800)
    shifts["action"][0]["start"] = 1200  # half-way through task 1
    cfg = C.from_dict({**base, "shifts": shifts}, {"training.steps": 800 * n})
    with pytest.raises(ConfigError, match="task boundaries"):
        continual.task_conditions(cfg, 800)


def test_ppo_runs_on_the_shifted_env(continual):
    """PPO gets the same ShiftedEnv conditions: with actions swapped, a policy that always picks
    action 0 pushes right, so the cart drifts the other way."""
    from benchmarks.common import make_ppo, make_ppo_evaluate
    from neurorl.envs import make
    from neurorl.envs import shifts as S

    cfg, n, _ = _shift_cfg(continual, 800)
    tc = continual.task_conditions(cfg, 800)
    senv = S.ShiftedEnv(make("CartPole-v1")[0])
    init, update, per_update = make_ppo("CartPole-v1", env=senv, params=tc["conds"][1],
                                        n_envs=2, n_steps=32, minibatches=2)
    st = jax.jit(init)(jax.random.key(0))
    st, m = jax.jit(update)(st)
    assert float(st["params"].shifts.action[0].active.values[0]) == 1.0
    assert np.asarray(m["done"]).shape == (32, 2)
    ev = make_ppo_evaluate("CartPole-v1", 20, n_envs=2, env=senv)
    out = ev(jax.tree.map(lambda x: x[None], st), S.stack(tc["conds"]), jax.random.key(1))
    assert out.shape == (4, 1) and bool(jnp.all(out > 0))
    with pytest.raises(ValueError, match="params"):
        make_ppo("CartPole-v1", env=senv)
    # the swap itself: action 0 (push left) moves the cart right under task 1
    for d, sign in ((0, -1.0), (1, 1.0)):
        obs, es = senv.reset(jax.random.key(0), tc["conds"][d])
        for _ in range(5):
            obs, es, *_ = senv.step(jax.random.key(1), es, 0, tc["conds"][d])
        assert sign * float(obs[1]) > 0.5  # cart velocity


def test_markdown_shows_the_frozen_policy_on_the_new_task(continual):
    budget = {"evals_per_task": 1, "k": 1, "steps_per_task": 1000, "seeds": 1, "seed0": 0,
              "eval_steps": 10}
    r_rand = np.array([20.0] * 4)
    eps = [_episodes([[100] * 10] * 4)]
    perf = np.array([[[0.9, 0.1, 0.8, 0.9], [0.2, 0.8, 0.1, 0.2], [0.3, 0.3, 0.7, 0.05],
                      [0.9, 0.2, 0.1, 0.9]]])  # [S, T_eval, tasks]
    row = continual._metrics("eprop_ac", budget, perf, None, None, eps, 1000, 1, r_rand, None)
    # before switch i the last evaluation is row i; the new task is column i + 1
    assert [s["frozen_on_new_median"] for s in row["switches"]] == [0.1, 0.1, 0.05]
    row.update(hyper={}, energy_per_step_j=None, spikes_per_step=None, wall_s={"total": 1.0})
    row["backward_transfer"] = row.get("backward_transfer")
    result = {"budget": budget, "rows": [row], "config": "experiments/x.yaml",
              "energy_chip": "loihi2", "wall_s": 1.0, "machine": {},
              "task_names": ["a", "b", "c", "a again"], "title": "a test sequence"}
    md = continual.markdown(result)
    assert md.startswith("# Continual: a test sequence")
    assert "| eprop_ac | 1,000 | 1 (b) | 0.10 |" in md and "| 3 (a again) | 0.05 |" in md
    # results written before the column existed: the same number from perf_median
    for s in row["switches"]:
        s.pop("frozen_on_new_median")
    row["perf_median"] = perf[0].tolist()
    assert "| eprop_ac | 1,000 | 1 (b) | 0.10 |" in continual.markdown(result)


def test_common_bar_asks_every_rule_for_the_same_return(continual):
    # rule "hi" learned task 0 to 200 and comes back to 150 after the switch: its own 90% bar
    # (20 + 0.9 x 180 = 182) is never met; rule "lo" had 100 and comes back to 100 (own bar
    # 92: met at once). The common bar is the largest of BARS <= 0.9 x min(200, 100) = 90,
    # i.e. 50: both reach it, "hi" after its first two short episodes.
    budget = {"evals_per_task": 1, "k": 1, "steps_per_task": 1000, "seeds": 1, "seed0": 0,
              "eval_steps": 10}
    r_rand = np.array([20.0, 20.0])
    hi = [_episodes([[200] * 5, [20] * 2 + [160] * 6])]
    lo = [_episodes([[100] * 10, [100] * 10])]
    rows = []
    for rule, eps in (("eprop_ac", hi), ("ppo", lo)):
        row = continual._metrics(rule, budget, None, None, None, eps, 1000, 1, r_rand, None)
        row.update(hyper={}, energy_per_step_j=None, spikes_per_step=None,
                   wall_s={"total": 1.0})
        rows.append(row)
    hi_sw, lo_sw = rows[0]["switches"][0], rows[1]["switches"][0]
    assert hi_sw["steps_median"] is None and lo_sw["steps_median"] == 0.0  # own-level bars
    assert continual.common_bars(rows) == [50]
    # "hi": windows of 5 episodes (the pre-switch count); (20+20+3x160)/5 = 104 >= 50 already
    # -> the first window starts at the switch; a bar of 150: (5 x 160)/5 from episode 3, at
    # step 40 (two episodes of 20)
    assert hi_sw["steps_to_bar_median"]["50"] == 0.0
    assert hi_sw["steps_to_bar_median"]["150"] == 40.0
    assert hi_sw["steps_to_bar_median"]["200"] is None and hi_sw["reached_bar"]["200"] == 0
    result = {"budget": budget, "rows": rows, "config": "experiments/x.yaml",
              "energy_chip": "loihi2", "wall_s": 1.0, "machine": {},
              "task_names": ["a", "b"], "title": "a test sequence"}
    md = continual.markdown(result)
    assert "| switch to | common bar | eprop_ac | ppo |" in md
    assert "| 1 (b) | 50 | 0 (1/1) | 0 (1/1) |" in md


def test_common_bar_leaves_out_a_rule_with_nothing_to_recover(continual):
    # a rule that collapsed below the random return before the switch (R-STDP's 10 on the shift
    # sequence) would otherwise pull the common bar below every meaningful return
    budget = {"evals_per_task": 1, "k": 1}
    r_rand = np.array([20.0, 20.0])
    row_ok = continual._metrics("eprop_ac", budget, None, None, None,
                                [_episodes([[200] * 5, [200] * 5])], 1000, 1, r_rand, None)
    row_dead = continual._metrics("rstdp", budget, None, None, None,
                                  [_episodes([[10] * 100, [10] * 100])], 1000, 1, r_rand, None)
    assert continual.common_bars([row_ok, row_dead]) == [150]  # 0.9 x 200 = 180 -> 150
    assert continual.common_bars([row_dead]) == [None]


def _bar_row(rule, per_seed_steps, pre=200.0, bar=150, n_bars=(50, 100, 150)):
    """A results row with one switch: per seed, the env steps to ``bar`` (None: never)."""
    reached = [s for s in per_seed_steps if s is not None]
    return {
        "rule": rule, "seeds": len(per_seed_steps), "random_policy_return": [20.0, 20.0],
        "switches": [{"to_task": 1, "pre_level_median": pre,
                      "steps_to_bar_median": {str(b): float(np.median(reached)) if reached
                                              else None for b in n_bars},
                      "reached_bar": {str(b): len(reached) for b in n_bars}}],
        "per_seed": [{"adaptation": [{"steps_to_bar": {str(bar): s}}]} for s in per_seed_steps],
    }


def test_rank_test_table_says_faster_slower_or_neither(continual):
    # common bar: 0.9 x 200 = 180 -> 150. e-prop's seeds all before BPTT's -> faster at the
    # smallest attainable p (1/252); against PPO interleaved -> neither; R-STDP never -> slower
    rows = [_bar_row("rstdp", [None] * 5),
            _bar_row("eprop_ac", [100.0, 200.0, 300.0, 400.0, 500.0]),
            _bar_row("bptt_ac", [600.0, 700.0, 800.0, 900.0, 1000.0]),
            _bar_row("ppo", [150.0, 250.0, 350.0, 450.0, None])]
    md = "\n".join(continual._rank_test_table(rows, ["a", "b"]))
    assert ("| switch to | common bar | rstdp vs bptt_ac | rstdp vs ppo | eprop_ac vs bptt_ac"
            " | eprop_ac vs ppo |") in md
    line = next(x for x in md.splitlines() if x.startswith("| 1 (b) | 150 |"))
    cells = [c.strip() for c in line.strip("|").split("|")][2:]
    assert cells[0].startswith("slower (1.000, 0.004)")
    assert cells[1].startswith("slower")  # PPO reached with 4 of 5
    assert cells[2] == "faster (0.004, 1.000)"
    assert cells[3].startswith("~")
    assert "smallest attainable p is 0.004" in md
    # a rule with nothing to recover is not compared; no baseline: no table
    rows[0]["switches"][0]["pre_level_median"] = 10.0
    line = next(x for x in continual._rank_test_table(rows, None) if x.startswith("| 1 | 150"))
    assert line.split("|")[3].strip() == "n/a"
    assert continual._rank_test_table(rows[:2], None) == []
    one = [_bar_row("eprop_ac", [100.0]), _bar_row("bptt_ac", [600.0])]
    assert "| 1 | 150 | too few seeds |" in continual._rank_test_table(one, None)
