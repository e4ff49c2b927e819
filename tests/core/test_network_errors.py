"""User mistakes raise clear neurorl errors on the host, before anything is traced."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurorl.core import Connection, LearningRule, Network, NeuronGroup, SpikeMonitor
from neurorl.errors import ConfigError, ShapeError


def _small():
    a = NeuronGroup(4, "LIF", name="a")
    b = NeuronGroup(3, "LIF", name="b")
    c = Connection(a, b, "all_to_all", weight=0.5)
    return a, b, c


def test_unknown_model_rule_backend_closest_name():
    with pytest.raises(ConfigError, match="Did you mean 'LIF'"):
        NeuronGroup(10, "LIFF")
    a, b, _ = _small()
    with pytest.raises(ConfigError, match="Did you mean 'probabilistic'"):
        Connection(a, b, "probabilistik", p=0.1)
    with pytest.raises(ConfigError, match="Did you mean 'exponential'"):
        Connection(a, b, synapse="exponental", tau_syn=5.0)
    with pytest.raises(ConfigError, match="Did you mean 'excitatory'"):
        NeuronGroup(3, sign="excitatroy")
    net = Network(*_small())
    with pytest.raises(ConfigError, match=r"backend.*Did you mean 'jax'"):
        net.compile(backend="jaxx")
    with pytest.raises(ConfigError, match="tau_mem"):  # unknown params key -> closest field
        NeuronGroup(3, "LIF", {"tau_mme": 10.0})


def test_negative_time_constants_and_bad_sizes():
    with pytest.raises(ConfigError, match="tau_mem"):
        NeuronGroup(10, "LIF", {"tau_mem": -5.0})
    a, b, _ = _small()
    with pytest.raises(ConfigError, match="tau_syn"):
        Connection(a, b, synapse="exponential", tau_syn=-1.0)
    with pytest.raises(ConfigError, match="NeuronGroup.n"):
        NeuronGroup(0)
    with pytest.raises(ConfigError, match="delay"):
        Connection(a, b, delay=-1)
    with pytest.raises(ConfigError, match="recurrent"):  # same-step self-loop has no order
        Connection(a, a, delay=0)


@pytest.mark.parametrize("p", [-0.1, 1.01, float("nan")])
def test_p_outside_unit_interval(p):
    a, b, _ = _small()
    with pytest.raises(ConfigError, match=r"probabilistic\)\.p"):
        Connection(a, b, "probabilistic", p=p)


def test_groups_not_in_network():
    a, b, c = _small()
    with pytest.raises(ConfigError, match=r"Connection\(a->b\)\.target.*added to this network"):
        Network(a, c).compile()
    with pytest.raises(ConfigError, match="SpikeMonitor.group"):
        Network(a, SpikeMonitor(b)).compile()


def test_input_shape_and_nan_errors_before_tracing():
    a, b, c = _small()
    cn = Network(a, b, c, SpikeMonitor(b)).compile()
    s = cn.init(jax.random.PRNGKey(0))
    n_compiles = cn._run_jit._cache_size()
    with pytest.raises(ShapeError, match=r"expected shape \(T=T, 4\), got \(10, 5\)"):
        cn.run(s, np.zeros((10, 5), np.float32))
    with pytest.raises(ShapeError, match=r"expected shape \(4,\), got \(3,\)"):
        cn.step(s, np.zeros(3, np.float32))
    x = np.zeros((10, 4), np.float32)
    x[3, 2] = np.nan
    with pytest.raises(ConfigError, match=r"NaN/inf at index \[3, 2\]"):
        cn.run(s, x)
    with pytest.raises(ConfigError, match="Did you mean 'a'"):
        cn.run(s, {"A_": np.zeros((10, 4))})
    with pytest.raises(ConfigError, match="an input group"):
        cn.run(s, {"b": np.zeros((10, 3))})
    with pytest.raises(ConfigError, match="run.steps"):
        cn.run(s)
    assert cn._run_jit._cache_size() == n_compiles  # nothing was traced
    # under vmap (tracers) the NaN check is skipped but shapes are still checked per instance
    _, rec = jax.vmap(cn.run)(jax.vmap(cn.init)(jax.random.split(jax.random.PRNGKey(0), 2)),
                              jnp.ones((2, 5, 4)))
    assert rec["spikes_b"].shape == (2, 5, 3)


def test_weight_and_delay_array_shapes():
    a, b, _ = _small()
    with pytest.raises(ShapeError, match=r"Connection.weight: expected shape \(4, 3\)"):
        Connection(a, b, weight=np.ones((3, 4)))
    with pytest.raises(ShapeError, match="Connection.delay"):
        Connection(a, b, delay=np.ones((4, 4), np.int32))
    with pytest.raises(ConfigError, match="weight"):
        Connection(a, b, weight={"init": "gauss"})


def test_chip_backend_errors_name_what_the_user_writes():
    """compile(backend=chip) checks the chip on the host and says which key to change."""
    from neurorl.core import LearningRule
    from neurorl.errors import ChipCapacityError, UnsupportedOnChipError

    a, b = NeuronGroup(300, "LIF", name="a"), NeuronGroup(2, "LIF", name="b")
    c = Connection(a, b, weight=0.1)
    with pytest.raises(ChipCapacityError, match=r"'b' neuron 0 \(core 1\) has fan-in 300 through "
                                                r"'a->b'; truenorth allows max_fan_in=256"):
        Network(a, b, c).compile(backend="truenorth")
    a, b, c = _small()
    net = Network(a, b, c, LearningRule(c, "stdp"))
    with pytest.raises(UnsupportedOnChipError) as err:
        net.compile(backend="truenorth")
    assert "hardware.off_chip_learning: true" in str(err.value)  # the YAML key (issue 19)
    assert "compile(backend=..., off_chip_learning=True)" in str(err.value)  # the Python one
    assert "off_chip=True" not in str(err.value)  # the old hint named a key that does not exist
    net.compile(backend="truenorth", off_chip_learning=True)
    with pytest.raises(ConfigError, match=r"w_max.*Did you mean 'a->b'"):
        net.compile(backend="loihi2", w_max={"a->c": 0.5})
    with pytest.raises(ConfigError, match="w_max"):
        net.compile(backend="loihi2", w_max=float("nan"))


def test_run_refuses_complex_inputs_and_another_networks_state():
    """Silently accepted before: the imaginary part was dropped, and another network's state
    ran with its own shapes."""
    a, b, c = _small()
    net = Network(a, b, c).compile()
    s = net.init(jax.random.PRNGKey(0))
    x = np.ones((5, 4))
    with pytest.raises(ConfigError, match="complex"):
        net.run(s, {"a": x * (1 + 1j)})
    a2, b2 = NeuronGroup(6, "LIF", name="a"), NeuronGroup(3, "LIF", name="b")
    other = Network(a2, b2, Connection(a2, b2, weight=0.5)).compile()
    with pytest.raises(ShapeError, match="another network"):
        net.run(other.init(jax.random.PRNGKey(0)), {"a": x})
    with pytest.raises(ShapeError, match="another network"):
        net.step(other.init(jax.random.PRNGKey(0)), {"a": x[0]})
    with pytest.raises(ConfigError, match="state"):
        net.run({"v": 1.0}, {"a": x})
    net.run(s, {"a": x})  # its own state still runs


@pytest.mark.parametrize("written, suggestion", [("STPD", "stdp"), ("rstpd", "rstdp"),
                                                 ("e-prop", "eprop")])
def test_a_misspelt_rule_name_lists_the_rules_and_the_closest(written, suggestion):
    *_, c = _small()
    with pytest.raises(ConfigError) as e:
        LearningRule(c, written, {"a_plus": 0.01})
    assert e.value.field == "LearningRule.rule" and e.value.value == written
    assert all(r in e.value.allowed for r in ("eprop", "rstdp", "stdp"))
    assert e.value.suggestion == suggestion


@pytest.mark.parametrize("params, field, suggestion", [
    ({"a_plsu": 0.1}, "LearningRule(stdp).params.a_plsu", "a_plus"),
    ({"a_ltp": 0.1}, "LearningRule(stdp).params.a_ltp", "a_plus"),  # another library's name
    ({"xyz": 1}, "LearningRule(stdp).params.xyz", None),
])
def test_an_unknown_rule_parameter_lists_the_rules_parameters(params, field, suggestion):
    *_, c = _small()  # was: "valid arguments (stdp() got an unexpected keyword argument ...)"
    with pytest.raises(ConfigError) as e:
        LearningRule(c, "stdp", params)
    assert e.value.field == field and e.value.suggestion == suggestion
    assert "a_plus" in e.value.allowed and "tau_minus" in e.value.allowed


@pytest.mark.parametrize("rule", [3, None, b"stdp"])
def test_a_rule_that_is_neither_a_name_nor_a_rule_is_refused(rule):
    *_, c = _small()
    with pytest.raises(ConfigError, match=r"LearningRule\.rule.*'eprop', 'rstdp', 'stdp'"):
        LearningRule(c, rule)


@pytest.mark.parametrize("model", [3, None])
def test_a_neuron_model_that_is_neither_a_name_nor_a_model_is_refused(model):
    with pytest.raises(ConfigError) as e:  # was: AttributeError deep in make_params
        NeuronGroup(3, model)
    assert e.value.field == "NeuronGroup.model" and "Izhikevich" in e.value.allowed
    with pytest.raises(ConfigError) as e:
        NeuronGroup(3, "LIFF")
    assert e.value.field == "NeuronGroup.model" and e.value.suggestion == "LIF"
