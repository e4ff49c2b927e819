"""A missing optional dependency (an extra of pyproject.toml) is one clear line naming the extra
to install -- a ConfigError, exit code 2 from the CLI -- never a traceback ending in
``ModuleNotFoundError`` or gymnasium's ``DependencyNotInstalled``.

Absence is simulated with ``sys.modules[name] = None`` (then ``import name`` raises ImportError),
so these tests hold whether or not the dependency is installed here."""

import sys

import numpy as np
import pytest

from neurorl.errors import ConfigError, import_optional
from neurorl.experiment import runner
from neurorl.experiment.cli import main
from neurorl.experiment.config import from_dict
from tests.experiment.tiny import tiny_config

TINY = tiny_config(steps=200, n_envs=2, n_seeds=1, chunk_steps=200)


def absent(monkeypatch, *names: str) -> None:
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("optional") / "run"
    runner.run_experiment(from_dict(TINY), out, progress=False)
    return out


@pytest.mark.parametrize("missing", [("pygame",), ("imageio", "imageio.v3")])
def test_eval_video_without_render_extra_is_one_line_exit_2(run_dir, capsys, monkeypatch,
                                                             missing):
    absent(monkeypatch, *missing)
    rc = main(["eval", str(run_dir), "--episodes", "1", "--video"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("neurorl: error: --video")
    assert f"{missing[-1]} installed" in err and 'pip install "neurorl[render]"' in err
    assert "Traceback" not in err
    assert not (run_dir / "eval").exists()  # refused before any episode ran


def test_run_nest_without_nest_names_the_interop_extra(monkeypatch):
    from neurorl.core import Connection, Network, NeuronGroup
    from neurorl.hardware.pynn import run_nest, run_pynn

    a = NeuronGroup(2, "LIF", {"dt": 0.1}, name="a", bias=np.ones(2, np.float32))
    b = NeuronGroup(2, "LIF", {"dt": 0.1}, name="b")
    net = Network(a, b, Connection(a, b, weight=np.ones((2, 2), np.float32))).compile()
    absent(monkeypatch, "nest", "pyNN", "pyNN.nest")
    with pytest.raises(ConfigError, match=r'run_nest: .*nest installed \(pip install '
                                          r'"neurorl\[interop\]"') as e:
        run_nest(net, steps=5)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r'run_pynn.sim: .*pyNN.nest installed \(pip install '
                                          r'"neurorl\[interop\]"'):
        run_pynn(net, steps=5)


def test_renderer_without_pygame_names_the_render_extra(monkeypatch):
    from neurorl.envs.render import ClassicRenderer

    absent(monkeypatch, "pygame")
    with pytest.raises(ConfigError, match=r'pygame installed \(pip install "neurorl\[render\]"'):
        ClassicRenderer("CartPole-v1", "rgb_array")


def test_event_datasets_without_tonic_name_the_events_extra(monkeypatch):
    from neurorl.data import events

    absent(monkeypatch, "tonic")
    with pytest.raises(ConfigError, match=r'tonic installed \(pip install "neurorl\[events\]"'):
        events._tonic()


def test_import_optional_returns_the_module_or_one_line():
    assert import_optional("json", "render", "x") is sys.modules["json"]
    with pytest.raises(ConfigError) as e:
        import_optional("no_such_module_here", "interop", "field", "value")
    assert e.value.field == "field" and e.value.value == "value"
    assert str(e.value) == ("field: got 'value'; allowed: no_such_module_here installed (pip "
                            "install \"neurorl[interop]\"; import said: No module named "
                            "'no_such_module_here')")


def test_box2d_env_without_box2d_names_the_box2d_extra(monkeypatch):
    from neurorl.envs.bridge import check_gymnasium_id

    for name in [m for m in sys.modules if m.startswith("gymnasium.envs.box2d")]:
        monkeypatch.delitem(sys.modules, name)  # imported already: would not re-import Box2D
    absent(monkeypatch, "Box2D")
    with pytest.raises(ConfigError, match=r'env.id: .*; pip install "neurorl\[box2d\]"\)$'):
        check_gymnasium_id("gymnasium:LunarLander-v3")


def test_gymnax_env_without_gymnax_names_the_gymnax_extra(monkeypatch):
    """gymnax_env.import_gymnax is import_optional's message: the env id, the extra's name and
    its install command."""
    from neurorl.envs.gymnax_env import GymnaxEnv, import_gymnax, to_gymnax

    absent(monkeypatch, "gymnax")
    with pytest.raises(ConfigError) as e:
        GymnaxEnv("Catch-bsuite")
    msg = str(e.value)
    assert msg.startswith("env.id: got 'gymnax:Catch-bsuite'; allowed: gymnax installed")
    assert 'pip install "neurorl[gymnax]"' in msg and "\n" not in msg
    from neurorl.envs.cartpole import CartPole

    with pytest.raises(ConfigError, match=r'^to_gymnax: .*pip install "neurorl\[gymnax\]"'):
        to_gymnax(CartPole())
    with pytest.raises(ConfigError, match=r"^env\.id: got 'gymnax:\.\.\.'"):
        import_gymnax()


def test_ray_launcher_without_ray_is_import_optionals_message(monkeypatch):
    from neurorl.experiment.launch_ray import import_ray

    absent(monkeypatch, "ray")
    with pytest.raises(ConfigError) as e:
        import_ray()
    assert str(e.value).startswith("--launcher: got 'ray'; allowed: ray installed (pip install "
                                   "\"neurorl[ray]\"; import said:")
