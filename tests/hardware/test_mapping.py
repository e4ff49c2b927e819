"""Core mapping: cores used, fan-in / fan-out / capacity errors that name the culprit."""

import numpy as np
import pytest

from neurorl.errors import ChipCapacityError, UnsupportedOnChipError
from neurorl.hardware.mapping import map_network


def test_groups_split_into_cores_by_neurons_per_core():
    groups = {"in": 100, "hid": 600}
    mask = np.ones((100, 600))
    rep = map_network(groups, [("in", "hid", mask)], "truenorth")  # 256 neurons per core
    assert rep.cores_used == 1 + 3  # 100 -> 1 core, 600 -> 256 + 256 + 88
    assert [c.neurons for c in rep.cores if c.group == "hid"] == [256, 256, 88]
    assert rep.max_fan_in == {"in": 0, "hid": 100} and rep.max_fan_out["in"] == 600
    assert rep.cores[1].synapse_bits == 256 * 100 * 1  # binary crossbar bits


def test_fan_in_over_the_limit_names_group_neuron_and_excess():
    mask = np.zeros((300, 4))
    mask[:, 2] = 1  # neuron 2 receives 300 inputs
    with pytest.raises(ChipCapacityError, match=r"'out' neuron 2 has fan-in 300.*over by 44"):
        map_network({"in": 300, "out": 4}, [("in", "out", mask)], "truenorth")
    map_network({"in": 300, "out": 4}, [("in", "out", mask)], "loihi")  # no per-neuron cap


def test_fan_out_and_core_count_limits():
    with pytest.raises(ChipCapacityError, match="fan-out 100 > xylo limit 64"):
        map_network({"a": 2, "b": 100}, [("a", "b", np.ones((2, 100)))], "xylo")
    with pytest.raises(ChipCapacityError, match="over by"):
        map_network({"big": 5 * 256}, [], "dynapse")  # 4 cores of 256


def test_synapse_memory_splits_blocks_until_they_fit():
    # Loihi: 1024 neurons and 2^20 synapse bits per core; 9-bit weights -> 116508 synapses.
    # 1024 neurons x 200 inputs = 204800 synapses: split into two blocks of 512.
    rep = map_network({"a": 200, "b": 1024}, [("a", "b", np.ones((200, 1024)))], "loihi")
    assert [c.neurons for c in rep.cores if c.group == "b"] == [512, 512]
    assert all(c.synapse_bits <= 2**20 for c in rep.cores)
    # BrainScaleS-2 is one core of 512 neurons x 256 rows: full, and fits exactly.
    conns = [("a", "b", np.ones((256, 512)))]
    rep = map_network({"a": 256, "b": 512}, conns, "brainscales2", external=["a"])
    assert rep.cores_used == 1 and rep.cores[0].synapse_bits == 256 * 512 * 7
    with pytest.raises(ChipCapacityError, match="brainscales2 has 1"):
        map_network({"a": 256, "b": 512}, conns, "brainscales2")


def test_plasticity_on_a_chip_without_learning_is_an_error():
    with pytest.raises(UnsupportedOnChipError):
        map_network({"a": 2}, [], "truenorth", rules=[("rstdp", False)])
    map_network({"a": 2}, [], "truenorth", rules=[("rstdp", True)])
    map_network({"a": 2}, [], "loihi", rules=[("rstdp", False)])


def test_map_compiled_network():
    from neurorl.core.network import Connection, Network, NeuronGroup
    from neurorl.hardware.mapping import map_compiled

    a, b = NeuronGroup(10, "LIF", name="a"), NeuronGroup(300, "LIF", name="b")
    cnet = Network(a, b, Connection(a, b, "all_to_all")).compile(backend="truenorth")
    rep = map_compiled(cnet, "truenorth")
    assert [(c.group, c.neurons) for c in rep.cores] == [("a", 10), ("b", 256), ("b", 44)]
    assert rep.max_fan_in["b"] == 10 and rep.max_fan_out["a"] == 300
