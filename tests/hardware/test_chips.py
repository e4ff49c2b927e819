"""Chip registry: presets, lookup errors, table helper, validation of custom chips."""

import dataclasses

import pytest

from neurorl.errors import ConfigError, UnsupportedOnChipError
from neurorl.hardware.chips import CHIPS, ChipSpec, describe_chips, get_chip
from neurorl.hardware.constraints import require_on_chip_learning, weight_grid

REQUIRED = [
    "loihi",
    "loihi2",
    "truenorth",
    "spinnaker",
    "spinnaker2",
    "brainscales2",
    "dynapse",
    "xylo",
    "pcm",
    "rram",
    "float",
]


def test_registry_has_every_required_chip():
    assert set(REQUIRED) <= set(CHIPS)
    for k, c in CHIPS.items():
        assert k == c.name == k.lower()
        assert c.description


@pytest.mark.parametrize("name", sorted(CHIPS))
def test_presets_are_frozen_hashable_and_unverified_names_fields(name):
    chip = CHIPS[name]
    hash(chip)  # static: usable as a jit static argument
    with pytest.raises(dataclasses.FrozenInstanceError):
        chip.weight_bits = 3  # type: ignore[misc]
    fields = {f.name for f in dataclasses.fields(ChipSpec)}
    assert set(chip.unverified) <= fields


def test_cited_constants_from_the_reference():
    # hardware.md section 1: values that other code depends on.
    assert CHIPS["truenorth"].max_fan_in == 256
    assert CHIPS["truenorth"].e_synop_pj == 26.0 and CHIPS["truenorth"].energy_scope == "all-in"
    assert CHIPS["truenorth"].weight_types == 4
    assert CHIPS["dynapse"].max_fan_in == 64
    assert CHIPS["xylo"].max_fan_out == 64 and CHIPS["xylo"].membrane_bits == 16
    assert CHIPS["loihi"].weight_levels == 255  # 8 magnitude bits + sign
    assert CHIPS["loihi"].e_synop_pj == 23.6 and CHIPS["loihi"].e_learn_pj == 120.0
    assert CHIPS["loihi2"].weight_levels == 127
    assert CHIPS["brainscales2"].weight_levels == 63  # 6-bit magnitude, sign by row
    assert CHIPS["rram"].weight_levels == 7  # 4-bit signed weight
    assert CHIPS["float"].weight_levels is None and not CHIPS["float"].quantized
    # Proxies are flagged, not hidden.
    assert "e_synop_pj" in CHIPS["loihi2"].unverified


def test_get_chip_is_case_insensitive_and_suggests_closest():
    assert get_chip("Loihi2") is CHIPS["loihi2"]
    assert get_chip(CHIPS["xylo"]) is CHIPS["xylo"]
    with pytest.raises(ConfigError) as e:
        get_chip("truenorht")
    assert e.value.suggestion == "truenorth"


@pytest.mark.parametrize("written, suggestions", [
    ("loihi3", ("loihi2", "loihi")),  # the newcomer's: was "Did you mean 'loihi'?" alone
    ("loih2", ("loihi2", "loihi")),
    ("spinnaker3", ("spinnaker2", "spinnaker")),
    ("spinaker", ("spinnaker", "spinnaker2")),
    ("truenorht", ("truenorth",)),  # a clear winner stays alone
])
def test_an_unknown_chip_lists_the_close_chips_best_first(written, suggestions):
    with pytest.raises(ConfigError) as e:
        get_chip(written)
    assert e.value.suggestions == suggestions and e.value.suggestion == suggestions[0]
    said = " or ".join(repr(s) for s in suggestions)
    assert str(e.value).endswith(f"Did you mean {said}?")


def test_describe_chips_rows_and_cli_listing_show_unverified():
    rows = describe_chips()
    assert [r["name"] for r in rows] == list(CHIPS)
    assert "unverified" in rows[0] and "weights" in rows[0]
    from neurorl.experiment.cli import _registries

    listed = {name: desc for name, desc, _params in _registries()["chips"]()}
    assert "unverified" in listed["loihi2"]
    assert set(listed) == set(CHIPS)


@pytest.mark.parametrize("kw, suggestion", [({"n_core": 3}, "cores"),
                                             ({"weight_bit": 4}, "weight_bits")])
def test_an_unknown_chip_spec_field_is_a_config_error(kw, suggestion):
    for make in (lambda: ChipSpec(name="mine", **kw),
                 lambda: dataclasses.replace(CHIPS["loihi2"], **kw)):
        with pytest.raises(ConfigError) as e:  # was a bare TypeError
            make()
        assert isinstance(e.value, TypeError) and e.value.suggestion == suggestion
        assert e.value.field == f"ChipSpec.{next(iter(kw))}" and "max_fan_in" in e.value.allowed


def test_custom_chip_validation_is_host_side():
    with pytest.raises(ConfigError):
        ChipSpec(name="x", description="", membrane_overflow="clamp")
    with pytest.raises(ConfigError):
        ChipSpec(name="x", description="", unverified=("not_a_field",))
    with pytest.raises(ConfigError):
        ChipSpec(name="x", description="", device="pcm", device_levels=1)
    with pytest.raises(ConfigError):
        weight_grid("loihi", w_max=-1.0)


def test_shared_exponent_rounds_step_to_power_of_two():
    g = weight_grid("loihi2", w_max=1.0)
    assert g.step == 2.0**-6 and g.hi >= 1.0 and g.hi == 127 * g.step
    g = weight_grid("truenorth", w_max=0.5)
    assert g.step == pytest.approx(0.5 / 255) and g.hi == pytest.approx(0.5)


def test_on_chip_learning_check():
    require_on_chip_learning("loihi", "rstdp")
    require_on_chip_learning("spinnaker", "eprop")  # software cores run any rule
    require_on_chip_learning("truenorth", "eprop", off_chip=True)
    with pytest.raises(UnsupportedOnChipError, match="truenorth"):
        require_on_chip_learning("truenorth", "eprop")
