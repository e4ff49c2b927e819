"""The README's CLI block runs as written, the way a newcomer types it after the install command:
in a shell, from a checkout (here a scratch folder with the repository's ``experiments/`` and the
test run's virtual environment as ``.venv``), line by line, each line succeeding."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_cli_lines() -> list[str]:
    """The lines of the README's bash blocks that use ``neurorl`` without ``.venv/bin/`` (the two
    leading install commands are run by CI itself), plus the activation line before them."""
    text = (ROOT / "README.md").read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            cmd = line.split("  #")[0].strip()
            if cmd.startswith("neurorl ") or cmd.startswith("source .venv/bin/activate"):
                lines.append(cmd)
    return lines


def test_the_readme_block_activates_the_environment_before_using_neurorl():
    lines = readme_cli_lines()
    assert lines[0] == "source .venv/bin/activate"
    assert len(lines) >= 8 and all(line.startswith("neurorl ") for line in lines[1:])
    assert any(line.startswith("neurorl demo") for line in lines)


@pytest.mark.slow  # one short run, one short 3-rule sweep, the demo: ~2-4 min on 2 busy cores
def test_readme_cli_lines_run_as_written(tmp_path):
    venv = Path(sys.prefix)
    if not (venv / "bin" / "activate").exists():
        pytest.skip("the tests do not run from a virtual environment (README: .venv)")
    (tmp_path / ".venv").symlink_to(venv)
    (tmp_path / "experiments").symlink_to(ROOT / "experiments")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(JAX_PLATFORMS="cpu", WANDB_MODE="offline", WANDB_SILENT="true")
    lines = readme_cli_lines()
    script = "set -euo pipefail\n" + "\n".join(lines) + "\n"
    res = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout
    assert "valid (" in out
    assert (tmp_path / "runs" / "eprop-short" / "summary.json").exists()
    # run, resume (of the finished run) and report each write the report
    assert out.count("report: runs/eprop-short/plots/lifelong.png") == 3
    assert (tmp_path / "runs" / "rules-short" / "report.md").exists()
    assert "| rstdp |" in out and "| eprop_ac |" in out and "| bptt_ac |" in out
    assert (tmp_path / "runs" / "demo" / "raster.png").exists()
    assert "loihi2" in out
