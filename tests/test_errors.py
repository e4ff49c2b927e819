"""neurorl.errors: the message of a ConfigError and the suggestion helpers."""

import pytest

from neurorl.errors import ConfigError, closest, closest_names, lookup


def test_one_two_and_three_suggestions_read_as_a_question():
    assert str(ConfigError("f", 1, "x", "a")).endswith("Did you mean 'a'?")
    assert str(ConfigError("f", 1, "x", ["a", "b"])).endswith("Did you mean 'a' or 'b'?")
    assert str(ConfigError("f", 1, "x", ("a", "b", "c"))).endswith(
        "Did you mean 'a', 'b' or 'c'?")
    assert "Did you mean" not in str(ConfigError("f", 1, "x", []))
    e = ConfigError("f", 1, "x", ["a", "b"])
    assert e.suggestion == "a" and e.suggestions == ("a", "b")
    assert ConfigError("f", 1, "x").suggestions == ()


def test_re_raising_under_another_field_keeps_every_suggestion():
    e = ConfigError("chip", "loihi3", "x", ["loihi2", "loihi"])
    again = ConfigError(f"hardware.{e.field}", e.value, e.allowed, e.suggestions)
    assert again.suggestions == ("loihi2", "loihi")


@pytest.mark.parametrize("name, choices, expected", [
    ("loihi3", ["loihi", "loihi2", "xylo"], ["loihi2", "loihi"]),
    ("Off-Chip", ["off_chip", "chip"], ["off_chip"]),  # case / separators: the one answer
    ("LIFF", ["LIF", "ALIF", "Izhikevich"], ["LIF", "ALIF"]),
    ("qqq", ["LIF", "ALIF"], []),
])
def test_closest_names_ranks_the_near_ones(name, choices, expected):
    assert closest_names(name, choices) == expected
    assert closest_names(name, choices, n=1) == expected[:1]


def test_lookup_names_the_close_entries_and_closest_keeps_one():
    reg = {"loihi": 1, "loihi2": 2, "xylo": 3}
    with pytest.raises(ConfigError) as e:
        lookup(reg, "loihi3", "chip", field="hardware.chip")
    assert e.value.field == "hardware.chip" and e.value.suggestions == ("loihi2", "loihi")
    assert closest("loihi3", reg) == "loihi"  # keys' suggestions are unchanged: one name
