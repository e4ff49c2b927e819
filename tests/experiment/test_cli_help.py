"""``neurorl --help`` and ``neurorl COMMAND --help`` describe every command and argument, with
examples; ``neurorl demo`` writes where it says."""

import argparse

import pytest

from neurorl.experiment.cli import DEMO_OUT, build_parser, main


def _subparsers(parser):
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action


def test_every_argument_of_every_command_has_a_description():
    parser = build_parser()
    sub = _subparsers(parser)
    helps = {c.dest: c.help for c in sub._choices_actions}
    assert set(helps) == set(sub.choices)
    missing = []
    for name, p in sub.choices.items():
        if not (helps[name] and p.description and "examples:" in (p.epilog or "")):
            missing.append(f"{name}: description/help/examples")
        if f"neurorl {name}" not in (p.epilog or ""):
            missing.append(f"{name}: no example of itself")
        for a in p._actions:
            if isinstance(a, argparse._HelpAction):
                continue
            if not a.help or a.help == argparse.SUPPRESS or len(a.help) < 10:
                missing.append(f"{name} {a.option_strings or a.dest}")
    for a in parser._actions:
        if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and not a.help:
            missing.append(f"neurorl {a.option_strings}")
    assert missing == []


@pytest.mark.parametrize("cmd", ["run", "validate", "sweep", "resume", "report", "list", "demo"])
def test_help_prints_description_arguments_and_examples(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and f"neurorl {cmd}" in text
    p = _subparsers(build_parser()).choices[cmd]
    for a in p._actions:
        if a.help and not isinstance(a, argparse._HelpAction):
            assert a.help.split()[0] in text


def test_demo_writes_where_it_says_by_default_under_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--steps", "50"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / DEMO_OUT).exists() and str(DEMO_OUT) in out
    assert DEMO_OUT.parts[0] == "runs" and list(tmp_path.glob("*.png")) == []
    target = tmp_path / "elsewhere" / "r.png"
    assert main(["demo", "--steps", "50", "--out", str(target)]) == 0
    assert target.exists() and str(target) in capsys.readouterr().out


def test_python_dash_m_neurorl_is_the_cli():
    """``python -m neurorl`` runs the same CLI as the ``neurorl`` script (exit codes too)."""
    import subprocess
    import sys

    ok = subprocess.run([sys.executable, "-m", "neurorl", "list", "chips"], capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0 and "loihi2" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "neurorl", "validate", "no/such.yaml"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
