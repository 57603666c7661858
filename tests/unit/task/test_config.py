import math
import tomllib

import pytest
from support.paths import ROOT

from task.config import DEFAULTS, KEYS, resolve_run_config
from task.errors import ConfigError


def test_pyproject_run_config_mirrors_the_defaults():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    table = pyproject["tool"]["flwr"]["app"]["config"]
    assert list(table) == list(DEFAULTS)
    assert {k: (v, type(v)) for k, v in table.items()} == {
        k: (v, type(v)) for k, v in DEFAULTS.items()
    }


def test_defaults_resolve_to_themselves():
    assert resolve_run_config({}) == DEFAULTS


def test_every_key_has_help_and_its_own_option():
    assert all(key.help and key.name == name for name, key in KEYS.items())
    options = [key.option for key in KEYS.values() if not key.derived]
    assert len(set(options)) == len(options) and KEYS["num-server-rounds"].option == "--rounds"
    assert [name for name, key in KEYS.items() if key.derived] == ["min-nodes", "resume"]


def test_bounds_and_choices_fit_the_type_and_hold_the_default():
    for key in KEYS.values():
        if key.choices:
            assert key.kind is str and key.default in key.choices
        if key.low is not None or key.above is not None:
            assert key.kind in (int, float) and not key.path
            key.check_range(key.default)


def test_ints_are_accepted_for_floats():
    config = resolve_run_config({"learning-rate": 1, "scheme": "full"})
    assert config["learning-rate"] == 1.0 and isinstance(config["learning-rate"], float)
    assert config["scheme"] == "full"


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [("fading", "TRUE", True), ("fading", "false", False), ("seed", "7", 7),
     ("learning-rate", "0.5", 0.5), ("model", "resnet18", "resnet18")],
)  # fmt: skip
def test_parse_reads_the_keys_type(name, text, value):
    parsed = KEYS[name].parse(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [("fading", "yes", "expected true or false, got 'yes'"), ("seed", "1.5", "expected int"),
     ("frame-s", "short", "expected float, got 'short'")],
)  # fmt: skip
def test_parse_names_the_key(name, text, message):
    with pytest.raises(ConfigError, match=message) as info:
        KEYS[name].parse(text)
    assert info.value.field == name


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ({"num-server-rounds": 0}, "num-server-rounds", "must be >= 1, got 0"),
        ({"learning-rate": -0.1}, "learning-rate", "must be > 0"),
        ({"gradient-bits": 33}, "gradient-bits", "between 1 and 32"),
        ({"inject-faults": 1.5}, "inject-faults", "must be between 0 and 1, got 1.5"),
        ({"min-batch": 9, "max-batch": 8}, "min-batch", "exceeds max-batch 8"),
        ({"model": "vgg"}, "model", "unknown model 'vgg'"),
        ({"dataset": "svhn"}, "dataset", "unknown dataset 'svhn'"),
        ({"partition": "pathological"}, "partition", "unknown partition"),
        ({"scenario": "tpu"}, "scenario", "unknown scenario"),
        ({"fading": 1}, "fading", "expected bool, got 1"),
        ({"seed": "1"}, "seed", "expected int"),
        ({"tx-power-dbm": math.inf}, "tx-power-dbm", "must be a finite number"),
        ({"rounds": 3}, "rounds", "unknown run-config key"),
    ],
)
def test_bad_values_name_the_key(override, field, message):
    with pytest.raises(ConfigError, match=message) as info:
        resolve_run_config(override)
    assert info.value.field == field
