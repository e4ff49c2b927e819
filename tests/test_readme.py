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
