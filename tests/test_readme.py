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
@pytest.mark.parametrize("i", range(len(python_blocks())))
def test_readme_python_block_runs(i, capsys):
    exec(compile(python_blocks()[i], f"README.md[python block {i}]", "exec"), {})
    assert capsys.readouterr().out.strip()  # every block prints what it shows
