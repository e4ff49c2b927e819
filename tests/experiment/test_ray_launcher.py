"""``neurorl sweep --launcher ray`` on a local Ray instance writes what the local sweep writes.

The `test` extra installs Ray, so the README test command runs it; without Ray it is skipped.
"""

import json
import sys

import pytest
import yaml

from neurorl.experiment.cli import main
from neurorl.experiment.logging import read_jsonl

# rstdp compiles fastest; 2 groups (two lr values) x 2 vmapped seeds, 2 chunks each
BASE = {
    "name": "tiny-ray",
    "env": {"id": "CartPole-v1"},
    "agent": {"name": "rstdp", "substeps": 2, "hyper": {"n_rf": 3}},
    "training": {"steps": 200, "n_envs": 4, "n_seeds": 1, "chunk_steps": 100, "episode_window": 5},
    "logging": {"wandb": "disabled", "progress": False},
}
SWEEP = {
    "method": "grid",
    "base": "base.yaml",
    "parameters": {
        "agent.hyper.lr": {"values": [0.01, 0.05]},
        "training.seed": {"values": [0, 1]},
    },
}


@pytest.fixture
def sweep_file(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    p = tmp_path / "sw.yaml"
    p.write_text(yaml.safe_dump(SWEEP))
    return p


def _files(d):
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())


@pytest.mark.slow  # 2 local compiles, Ray start, 2 worker compiles: 109 s on a busy 2-core box
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # Ray's fork+exec of its processes
def test_ray_sweep_writes_the_same_outputs_as_the_local_sweep(sweep_file, tmp_path, capsys):
    ray = pytest.importorskip("ray")
    # a third group with lr 1e3, which pins R-STDP's weights at the clip bound in the first
    # chunk: a numeric fault
    sweep = yaml.safe_load(sweep_file.read_text())
    sweep["parameters"]["agent.hyper.lr"]["values"].append(1e3)
    sweep_file.write_text(yaml.safe_dump(sweep))
    local, remote = tmp_path / "local", tmp_path / "ray"
    args = ["sweep", str(sweep_file), "--no-progress", "--wandb", "disabled"]
    # a group a numeric fault stops: both launchers run the others, keep its directory (the
    # fault, for resume --retry-faulted) and exit 3
    assert main([*args, "--out", str(local)]) == 3
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        assert main([*args, "--out", str(remote), "--launcher", "ray"]) == 3
    finally:
        ray.shutdown()
    out = capsys.readouterr().out
    assert "ray: 3 group(s) dispatched" in out and "[3/3]" in out
    assert "ray: group 2 (" in out and "stopped on" in out
    groups = sorted(p.name for p in local.glob("group-*"))
    assert groups == ["group-000", "group-001", "group-002"]
    assert sorted(p.name for p in remote.glob("group-*")) == groups
    for g in groups:
        assert _files(local / g) == _files(remote / g)
        for name in ("config.yaml", "members.json", "summary.json"):
            assert (local / g / name).read_text() == (remote / g / name).read_text(), (g, name)
        for name in ("episodes.jsonl", "chunks.jsonl"):
            a, b = read_jsonl(local / g / name), read_jsonl(remote / g / name)
            for r in a + b:
                r.pop("steps_per_s", None)  # wall-clock throughput
            assert a == b, (g, name)
        summary = json.loads((remote / g / "summary.json").read_text())
        if g == "group-002":  # lr 1e3
            assert summary["status"] == "non_finite"
            assert summary["fault"]["quantity"].startswith("saturated weights")
            continue
        assert [m["episodes"] for m in summary["members"]] == [
            sum(e["member"] == i for e in read_jsonl(remote / g / "episodes.jsonl"))
            for i in range(2)
        ]
        assert all(m["final_return"] > 0 for m in summary["members"])
    assert (remote / "report.md").read_text() == (local / "report.md").read_text()
    assert (remote / "plots" / "compare.png").exists()
    assert not list(remote.glob(".group-*"))  # no partial unpacks left


def test_ray_launcher_without_ray_names_the_extra(sweep_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    out = tmp_path / "out"
    args = ["sweep", str(sweep_file), "--out", str(out), "--launcher", "ray", "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert 'pip install "neurorl[ray]"' in err and "--launcher" in err
    assert "Traceback" not in err and not out.exists()


def test_sweep_set_overrides_every_member_and_labels_name_what_varies(sweep_file):
    from neurorl.experiment.runner import load_sweep

    _, members, groups = load_sweep(sweep_file, ["training.steps=400", "agent.hyper.n_rf=4"])
    assert len(members) == 4 and all(m["training.steps"] == 400 for m in members)
    assert [g["label"] for g in groups] == ["lr=0.01", "lr=0.05"]
    assert all(g["overrides"]["agent.hyper.n_rf"] == 4 for g in groups)


def test_group_directories_travel_packed_with_links_resolved(tmp_path):
    from neurorl.experiment.launch_ray import pack_dir, unpack_dir

    src, outside = tmp_path / "src", tmp_path / "outside.log"
    (src / "wandb" / "logs").mkdir(parents=True)
    (src / "summary.json").write_text("{}")
    (src / "wandb" / "run.wandb").write_bytes(b"\x00\x01")
    outside.write_text("core log")
    # wandb links its core log to a cache file by absolute path; a link may also dangle
    (src / "wandb" / "logs" / "debug-core.log").symlink_to(outside.resolve())
    (src / "wandb" / "logs" / "gone.log").symlink_to(tmp_path / "missing")
    dest = tmp_path / "out" / "group-000"
    dest.mkdir(parents=True)
    (dest / "stale.txt").write_text("from an earlier attempt")
    unpack_dir(pack_dir(src), dest)
    assert _files(dest) == ["summary.json", "wandb/logs/debug-core.log", "wandb/run.wandb"]
    assert (dest / "wandb" / "run.wandb").read_bytes() == b"\x00\x01"
    log = dest / "wandb" / "logs" / "debug-core.log"
    assert not log.is_symlink() and log.read_text() == "core log"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["group-000"]  # no partial left
