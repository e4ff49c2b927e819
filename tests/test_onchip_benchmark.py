"""Pieces of ``benchmarks/onchip.py`` that run in seconds: the ``/ float`` ratio per env and
rule family, the tables per env, the earlier R-STDP rows in their own section, and the merge of
rows run one process at a time. The training itself runs in the benchmark (minutes)."""

import json

import pytest

from tests.bench_modules import load_benchmark


@pytest.fixture(scope="module")
def onchip():
    return load_benchmark("onchip")


def _row(label, agent, chip, final, env_id="CartPole-v1"):
    return {"condition": label, "agent": agent, "chip": chip, "off_chip_learning": False,
            "env_id": env_id, "steps": 1000, "seeds": 2, "engine": None,
            "final_return_per_seed": [final, final], "final_return_median": final,
            "energy_inference_per_step_j": None, "energy_learning_per_step_j": None,
            "adaptation_steps": [None, None], "adaptation_steps_median": None,
            "adaptation_chip_time_s_median": None, "adaptation_energy_j_median": None,
            "recovered": "0/2", "device_writes_per_seed": None, "max_pulses_per_device": None,
            "worn_out_devices": None, "curves": [], "wall_s": 1.0}


def test_ratios_per_env_and_rule_family(onchip, tmp_path):
    rows = [_row("eprop/float", "eprop_ac", "float", 400.0),
            _row("eprop/loihi2 on-chip", "eprop_ac", "loihi2", 360.0),
            _row("rstdp-place/float", "rstdp", "float", 300.0),
            _row("rstdp-place/loihi2 on-chip", "rstdp", "loihi2", 150.0),
            _row("rstdp/float", "rstdp", "float", 250.0),
            _row("rstdp/loihi2 on-chip", "rstdp", "loihi2", 125.0),
            _row("eprop/float", "eprop_ac", "float", -120.0, "MountainCar-v0"),
            _row("eprop/loihi2 on-chip", "eprop_ac", "loihi2", -136.0, "MountainCar-v0")]
    onchip._write(rows, {}, str(tmp_path))
    rel = {(r["env_id"], r["condition"]): r["relative_to_float"] for r in rows}
    assert rel[("CartPole-v1", "eprop/loihi2 on-chip")] == pytest.approx(0.9)
    # each R-STDP encoding against its own float row
    assert rel[("CartPole-v1", "rstdp-place/loihi2 on-chip")] == pytest.approx(0.5)
    assert rel[("CartPole-v1", "rstdp/loihi2 on-chip")] == pytest.approx(0.5)
    # MountainCar: the fraction of the float return above -200 ((-136 + 200) / (-120 + 200))
    assert rel[("MountainCar-v0", "eprop/loihi2 on-chip")] == pytest.approx(0.8)
    md = (tmp_path / "onchip.md").read_text()
    cart, acro = md.index("## CartPole-v1"), md.index("## MountainCar-v0")
    legacy = md.index("## Earlier R-STDP rows")
    assert cart < acro < legacy
    assert "| rstdp/loihi2 on-chip |" in md[legacy:] and "| rstdp/" not in md[:legacy]
    assert json.loads((tmp_path / "onchip.json").read_text())["rows"][0]["env_id"]


def test_conditions_per_env(onchip):
    assert {c[1] for c in onchip.env_conditions("MountainCar-v0")} == {"eprop_ac"}
    assert {c[1] for c in onchip.env_conditions("CartPole-v1")} == {"eprop_ac", "rstdp"}
    assert onchip.relative(-200.0, -120.0, -200.0) == 0.0
    assert onchip.relative(1.0, 0.0, 0.0) is None  # no ratio to a zero reference


def test_named_conditions_include_the_legacy_rows_and_refuse_unknown_names(onchip):
    legacy = [c[0] for c in onchip.LEGACY_CONDITIONS]
    assert not set(legacy) & {c[0] for c in onchip.env_conditions("CartPole-v1")}
    assert [c[0] for c in onchip.env_conditions("CartPole-v1", legacy[:2])] == legacy[:2]
    assert [c[0] for c in onchip.env_conditions("CartPole-v1", ["eprop/float", legacy[0]])] \
        == ["eprop/float", legacy[0]]
    assert onchip.env_conditions("MountainCar-v0", [legacy[0]]) == []  # R-STDP: CartPole only
    onchip.check_conditions([legacy[0], "eprop/float"], list(onchip.ENVS))
    with pytest.raises(SystemExit, match="Did you mean 'rstdp/float'"):
        onchip.check_conditions(["rstdp/flaot"], list(onchip.ENVS))
    with pytest.raises(SystemExit, match="not a condition on MountainCar-v0"):
        onchip.check_conditions([legacy[0]], ["MountainCar-v0"])
