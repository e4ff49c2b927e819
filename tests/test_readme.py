"""The README is executable: every Python block runs as written (the CLI lines run in
tests/experiment/test_readme_cli.py)."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_blocks():
    assert len(python_blocks()) >= 3


@pytest.mark.slow
def test_readme_python_blocks_run_in_order(tmp_path, monkeypatch, capsys):
    """The blocks run as written, one after the other in one namespace (as a reader pastes
    them into one session), in a scratch directory (some write files)."""
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copytree(README.parent / "experiments", tmp_path / "experiments")
    import importlib.util

    ns: dict = {}
    for i, block in enumerate(python_blocks()):
        if "neurorl.hardware.pynn" in block and importlib.util.find_spec("nest") is None:
            # the NEST/PyNN lines need the [interop] extra (tests/hardware/test_pynn.py runs
            # them there); the NIR lines of that block still run
            block = "\n".join(ln for ln in block.splitlines()
                              if "pynn" not in ln and "run_nest" not in ln)
        exec(compile(block, f"README.md[python block {i}]", "exec"), ns)
    assert capsys.readouterr().out.strip()


def test_readme_api_block_stays_active_within_bounds(capsys):
    """The N-HAL block ("The API in a few lines"), run as written (same numbers, 1000 steps):
    its STDP has hard bounds, the weights stay in [w_min, w_max] and the hidden layer still
    fires in the last 200 steps (unbounded additive STDP silenced it after ~40 steps)."""
    import numpy as np

    block = next(b for b in python_blocks() if "nr.LearningRule(conn, \"STDP\"" in b)
    ns: dict = {}
    exec(compile(block, "README.md[API block]", "exec"), ns)
    capsys.readouterr()
    rule = ns["net"].rules[0]
    assert rule.params.get("hard_bounds") is True
    lo, hi = rule.params["w_min"], rule.params["w_max"]
    z = np.asarray(ns["records"][ns["mon"].name])
    assert z.shape == (1000, 50)
    assert z[-200:].sum() > 0 and (z[-200:].sum(0) > 0).mean() > 0.5
    mask = np.asarray(ns["model"].structure[ns["conn"].name]["mask"]) != 0
    w = np.asarray(ns["state"]["weights"][ns["conn"].name])
    assert mask.sum() > 500 and (w[~mask] == 0).all()
    assert w[mask].min() >= np.float32(lo) and w[mask].max() <= np.float32(hi)
    assert w[mask].min() < w[mask].max()  # it learned (not stuck at one bound)
