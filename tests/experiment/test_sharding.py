"""The member (seed) axis sharded over 4 forced host devices equals the single-device run.

The sharded runs happen in a subprocess: ``--xla_force_host_platform_device_count`` must be set
before jax is imported, and this process already has one CPU device. The subprocess writes its
results to an ``.npz``; this process runs the same seeds on its single device and compares.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from neurorl.experiment.train import TrainConfig, make_train

pytestmark = pytest.mark.slow  # three compiles (two in a subprocess), about 35 s of CPU

# rstdp compiles fastest of the agents; 2 chunks of 25 iterations of 4 envs
CFG = {
    "env_id": "CartPole-v1",
    "agent": "rstdp",
    "agent_kwargs": {"n_rf": 3},
    "n_steps": 200,
    "n_envs": 4,
    "substeps": 2,
}
CHUNK = 100
N_KEYS = 5

SHARDED = textwrap.dedent(
    """
    import json, os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax, numpy as np
    from jax.sharding import NamedSharding
    from neurorl.experiment.checkpoint import load_checkpoint, save_checkpoint
    from neurorl.experiment.sharding import member_layout
    from neurorl.experiment.train import TrainConfig, make_train

    cfg = json.loads(sys.argv[1])
    chunk, n_keys, out = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    devs = jax.devices()
    assert len(devs) == 4, devs
    layouts = {n: member_layout(n) for n in range(1, 9)}
    info = {"layouts": {n: [l.n_devices, l.padded] for n, l in layouts.items()}}
    keys = jax.random.split(jax.random.key(0), n_keys)
    res = {}

    def host(tree):
        is_key = lambda x: jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
        return [np.asarray(jax.random.key_data(x) if is_key(x) else x)
                for x in jax.tree.leaves(tree)]

    def spec(x):
        sh = x.sharding
        assert isinstance(sh, NamedSharding), sh
        return [list(sh.spec), sorted(d.id for d in sh.device_set),
                sorted({tuple(s.data.shape) for s in x.addressable_shards})]

    for n in (4, n_keys):  # 4 members: one per device; 5: 3 devices x 2, one padded copy
        train = make_train(TrainConfig(**cfg, n_seeds=n))
        rs = train.init(keys[:n])
        rs, m1 = train.run_chunk(rs, chunk)
        # through a checkpoint (host arrays) and back onto the mesh, as `neurorl resume` does
        save_checkpoint(out + f"-ckpt{n}", rs, {})
        rs, _ = load_checkpoint(out + f"-ckpt{n}", rs)
        rs, m2 = train.run_chunk(rs, chunk)
        info[n] = {"key": spec(rs.key), "weights": spec(jax.tree.leaves(rs.agent_state)[0]),
                   "reward": spec(m2["reward"]),
                   "layout": [train.layout.n_devices, train.layout.padded]}
        for c, m in enumerate((m1, m2)):
            for name, x in m.items():
                res[f"m{n}_{c}_{name}"] = np.asarray(x)
        for i, x in enumerate(host(rs)):
            res[f"s{n}_{i}"] = x
    np.savez(out + ".npz", **res)
    with open(out + ".json", "w") as f:
        json.dump(info, f)
    """
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(sharded subprocess results, single-device results); the two run concurrently."""
    out = str(tmp_path_factory.mktemp("sharded") / "res")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SHARDED, json.dumps(CFG), str(CHUNK), str(N_KEYS), out],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # the same 5 seeds (same keys) on one device of this process, unsharded (importing
        # train may have given this process one host device per core)
        train = make_train(TrainConfig(**CFG, n_seeds=N_KEYS), devices=jax.devices()[:1])
        assert not train.layout.sharded
        rs = train.init(jax.random.split(jax.random.key(0), N_KEYS))
        rs, m1 = train.run_chunk(rs, CHUNK)
        rs, m2 = train.run_chunk(rs, CHUNK)
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-4000:]
    with open(out + ".json") as f:
        info = json.load(f)
    return (info, dict(np.load(out + ".npz"))), ((m1, m2), rs)


@pytest.fixture(scope="module")
def sharded(runs):
    return runs[0]


@pytest.fixture(scope="module")
def single(runs):
    return runs[1]


def _host(tree):
    return [
        np.asarray(jax.random.key_data(x))
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
        else np.asarray(x)
        for x in jax.tree.leaves(tree)
    ]


def test_layout_uses_fewest_devices_for_the_lowest_per_device_count(sharded):
    info, _ = sharded
    # members -> [devices used, members inside the chunk after padding]
    assert info["layouts"] == {
        "1": [1, 1],
        "2": [2, 2],
        "3": [3, 3],
        "4": [4, 4],
        "5": [3, 6],
        "6": [3, 6],
        "7": [4, 8],
        "8": [4, 8],
    }


def test_member_axis_is_sharded_over_the_four_devices(sharded):
    info, _ = sharded
    assert info["4"]["layout"] == [4, 4]
    # keys and weights [S, ...] on P("members"), metrics [T, S, ...] on P(None, "members")
    for name, spec_want, member_dim in (
        ("key", ["members"], 0),
        ("weights", ["members"], 0),
        ("reward", [None, "members"], 1),
    ):
        spec, devices, shard_shapes = info["4"][name]
        assert spec == spec_want, name
        assert devices == [0, 1, 2, 3], name
        assert len(shard_shapes) == 1 and shard_shapes[0][member_dim] == 1, name  # 1 per device
    # 5 members: 3 devices x 2 inside the chunk; outside it the 5 are replicated over the mesh
    assert info["5"]["layout"] == [3, 6]
    spec, devices, shard_shapes = info["5"]["reward"]
    assert spec == [] and devices == [0, 1, 2] and shard_shapes[0][1] == 5


def _same(actual, desired, what):
    """Integers, booleans and keys exactly; floats to float32 rounding (XLA's CPU code for a
    batch of 1 or 2 members per device may sum in another order than for 5 on one device)."""
    if np.issubdtype(desired.dtype, np.floating):
        np.testing.assert_allclose(actual, desired, rtol=1e-5, atol=1e-7, err_msg=what)
    else:
        np.testing.assert_array_equal(actual, desired, err_msg=what)


@pytest.mark.parametrize("n", [4, N_KEYS])
def test_sharded_results_equal_the_single_device_run(sharded, single, n):
    _, res = sharded
    metrics, state = single
    for c, m in enumerate(metrics):  # metrics [T, S, ...]: the first n seeds
        assert {k for k in res if k.startswith(f"m{n}_{c}_")} == {f"m{n}_{c}_{k}" for k in m}
        for name, x in m.items():
            _same(res[f"m{n}_{c}_{name}"], np.asarray(x)[:, :n], name)
        # episodes: where they end, their returns and lengths, exactly
        for name in ("done", "episode_return", "episode_length"):
            np.testing.assert_array_equal(res[f"m{n}_{c}_{name}"], np.asarray(m[name])[:, :n])
        assert np.asarray(m["done"]).any()
    s = _host(state)
    assert len(s) == sum(k.startswith(f"s{n}_") for k in res)
    for i, x in enumerate(s):  # runner state [S, ...], keys included
        _same(res[f"s{n}_{i}"], x[:n], f"state leaf {i}")
    # the seeds learned different weights (the comparison is not between copies)
    w = s[[i for i, x in enumerate(s) if x.dtype == np.float32 and x.ndim >= 3][0]]
    assert not np.allclose(w[0], w[1])
