"""Core mapping: cores used, fan-in / fan-out / capacity errors that name the culprit."""

import numpy as np
import pytest

from neurorl.errors import ChipCapacityError, UnsupportedOnChipError
from neurorl.hardware.mapping import map_network


def test_groups_fill_cores_in_order_by_neurons_per_core():
    groups = {"in": 100, "hid": 600}
    mask = np.ones((100, 600))
    rep = map_network(groups, [("in", "hid", mask)], "truenorth")  # 256 neurons per core
    # 700 neurons in order: core 0 = in[0:100] + hid[0:156], core 1 = hid[156:412], core 2 rest
    assert rep.cores_used == 3 == -(-700 // 256)
    assert [(c.group, c.start, c.neurons, c.core) for c in rep.cores] == [
        ("in", 0, 100, 0), ("hid", 0, 156, 0), ("hid", 156, 256, 1), ("hid", 412, 188, 2)]
    assert rep.max_fan_in == {"in": 0, "hid": 100} and rep.max_fan_out["in"] == 600
    assert rep.cores[2].synapse_bits == 256 * 100 * 1  # binary crossbar bits
    assert rep.core_of("hid", 155) == 0 and rep.core_of("hid", 156) == 1


def test_fan_in_over_the_limit_names_group_neuron_and_excess():
    mask = np.zeros((300, 4))
    mask[:, 2] = 1  # neuron 2 receives 300 inputs
    msg = r"'out' neuron 2 \(core 1\) has fan-in 300.*max_fan_in=256 \(over by 44"
    with pytest.raises(ChipCapacityError, match=msg):
        map_network({"in": 300, "out": 4}, [("in", "out", mask)], "truenorth")
    map_network({"in": 300, "out": 4}, [("in", "out", mask)], "loihi")  # no per-neuron cap


def test_fan_out_and_core_count_limits():
    with pytest.raises(ChipCapacityError, match="fan-out 100.*xylo allows max_fan_out=64"):
        map_network({"a": 2, "b": 100}, [("a", "b", np.ones((2, 100)))], "xylo")
    with pytest.raises(ChipCapacityError, match="over by"):
        map_network({"big": 5 * 256}, [], "dynapse")  # 4 cores of 256


def test_synapse_memory_splits_blocks_until_they_fit():
    # Loihi: 1024 neurons and 2^20 synapse bits per core; 9-bit weights. A neuron with 200
    # inputs needs 1800 bits, so a core holds floor(2^20 / 1800) = 582 of them.
    rep = map_network({"a": 200, "b": 1024}, [("a", "b", np.ones((200, 1024)))], "loihi")
    assert [(c.group, c.neurons, c.core) for c in rep.cores] == [
        ("a", 200, 0), ("b", 582, 0), ("b", 442, 1)]
    assert all(sum(b.synapse_bits for b in rep.cores if b.core == k) <= 2**20 for k in (0, 1))
    # BrainScaleS-2 is one core of 512 neurons x 256 rows: full, and fits exactly.
    conns = [("a", "b", np.ones((256, 512)))]
    rep = map_network({"a": 256, "b": 512}, conns, "brainscales2", external=["a"])
    assert rep.cores_used == 1 and rep.cores[0].synapse_bits == 256 * 512 * 7
    msg = r"needs 2 cores, brainscales2 has cores=1 \(over by 1"
    with pytest.raises(ChipCapacityError, match=msg):
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
    assert [(c.group, c.neurons, c.core) for c in rep.cores] == [
        ("a", 10, 0), ("b", 246, 0), ("b", 54, 1)]
    assert rep.max_fan_in["b"] == 10 and rep.max_fan_out["a"] == 300
