import tomllib
from pathlib import Path

import pytest

from server.config import DEFAULTS, resolve_run_config
from task.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_pyproject_run_config_mirrors_the_defaults():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["flwr"]["app"]["config"] == DEFAULTS


def test_defaults_resolve_to_themselves():
    assert resolve_run_config({}) == DEFAULTS


def test_ints_are_accepted_for_floats():
    config = resolve_run_config({"learning-rate": 1, "scheme": "full"})
    assert config["learning-rate"] == 1.0 and isinstance(config["learning-rate"], float)
    assert config["scheme"] == "full"


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ({"num-server-rounds": 0}, "num-server-rounds", "must be >= 1, got 0"),
        ({"learning-rate": -0.1}, "learning-rate", "must be > 0"),
        ({"gradient-bits": 33}, "gradient-bits", "between 1 and 32"),
        ({"min-batch": 9, "max-batch": 8}, "min-batch", "exceeds max-batch 8"),
        ({"model": "vgg"}, "model", "unknown model 'vgg'"),
        ({"dataset": "mnist"}, "dataset", "unknown dataset 'mnist'"),
        ({"partition": "pathological"}, "partition", "unknown partition"),
        ({"scenario": "tpu"}, "scenario", "unknown scenario"),
        ({"fading": 1}, "fading", "expected bool, got 1"),
        ({"seed": "1"}, "seed", "expected int"),
        ({"rounds": 3}, "rounds", "unknown run-config key"),
    ],
)
def test_bad_values_name_the_key(override, field, message):
    with pytest.raises(ConfigError, match=message) as info:
        resolve_run_config(override)
    assert info.value.field == field
