"""The hardware benchmark gives a chip whose limits the default network exceeds a network that
fits (and says so in its row), and leaves the others on the default network."""


import pytest

from neurorl.errors import ChipCapacityError
from neurorl.experiment import config as C
from neurorl.experiment.train import TrainConfig, make_train
from tests.bench_modules import load_benchmark


@pytest.fixture(scope="module")
def hw():
    return load_benchmark("hardware")


@pytest.fixture(scope="module")
def base(hw):
    return C.load_yaml(hw.ROOT / "experiments" / "hardware_loihi2.yaml")


def test_xylo_gets_the_largest_network_under_its_fan_out(hw, base):
    hyper, note = hw.fitting_hyper("xylo", base)
    # fan-out of a hidden neuron = (n_rec - 1) recurrent + 3 readout targets <= 64
    assert hyper["n_rec"] == 62
    assert "max_fan_out" in note and "default 64" in note
    with pytest.raises(ChipCapacityError):  # the default really does not fit
        make_train(TrainConfig("CartPole-v1", "eprop_ac", {"n_rec": 63}, n_steps=8, n_envs=8,
                               substeps=5, n_seeds=1, chip="xylo", off_chip_learning=True))


@pytest.mark.parametrize("chip", ["float", "loihi2"])
def test_chips_that_fit_the_default_keep_it(hw, base, chip):
    assert hw.fitting_hyper(chip, base) == ({}, None)
