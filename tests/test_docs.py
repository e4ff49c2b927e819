"""The documentation site builds without a warning (``mkdocs build --strict``: broken links,
missing pages and docstrings mkdocstrings cannot parse are errors), and every tutorial runs as
written: its Python blocks, in order, in one namespace, in a scratch directory."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.md"))


def _nav_files(nav) -> list[str]:
    out = []
    for item in nav:
        for value in item.values() if isinstance(item, dict) else [item]:
            out += _nav_files(value) if isinstance(value, list) else [value]
    return out


def _mkdocs_config() -> dict:
    class Loader(yaml.SafeLoader):  # mkdocs.yml may hold !!python/name tags; none here
        pass

    return yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)


def test_every_tutorial_is_in_the_nav_and_the_custom_agent_slot_is_named():
    nav = _nav_files(_mkdocs_config()["nav"])
    for t in TUTORIALS:
        assert f"tutorials/{t.name}" in nav, t.name
    assert {
        "tutorials/quickstart.md",
        "tutorials/shifts.md",
        "tutorials/chips.md",
        "tutorials/nir.md",
    } <= set(nav)
    assert "architecture.md" in nav  # the contributors' map stays in the site
    text = (ROOT / "mkdocs.yml").read_text()
    assert "custom agent from the primitives" in text.lower()


@pytest.mark.slow  # imports every module for the API reference: ~30-60 s
def test_mkdocs_build_strict_passes(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "WARNING" not in res.stderr
    # the API reference is generated from the docstrings
    api = (site / "api" / "experiment" / "index.html").read_text()
    assert "make_train" in api and "one jitted" in api.lower()
    assert (site / "tutorials" / "quickstart" / "index.html").exists()


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.slow  # each tutorial compiles one to three short training runs
@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_runs_as_written(path, tmp_path, monkeypatch, capsys):
    blocks = python_blocks(path)
    assert blocks, f"{path.name} has no Python blocks"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"tutorial_{path.stem}"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{path.name}[block {i}]", "exec"), namespace)
        except Exception as e:  # name the block that failed
            raise AssertionError(f"{path.name}, Python block {i} failed: {e!r}") from e
    assert capsys.readouterr().out.strip()  # the tutorial shows something
