"""The memory estimate of a simulation, the memory available, and the refusal of a run too big."""

import subprocess
import sys

import pytest
from support.usage import fails_up_front

from cli import memory, simulate
from cli.memory import GB, dataset_bytes, estimate, model_footprint
from cli.preflight import preflight
from task.config import resolve_run_config
from task.flops import parameter_count
from task.models import build_model


@pytest.fixture(scope="module")
def cifar_cnn():
    return model_footprint("cnn", "synthetic-cifar")


def test_the_footprint_counts_the_models_parameters_and_statistics(cifar_cnn):
    model = build_model("cnn", 10, 3, 32)
    assert cifar_cnn.parameters == parameter_count(model)
    buffers = sum(t.numel() * 4 for t in model.buffers())
    assert cifar_cnn.reply_bytes(32) == 4 * cifar_cnn.parameters + buffers
    assert cifar_cnn.reply_bytes(8) == cifar_cnn.parameters + buffers
    assert cifar_cnn.state_bytes == sum(t.numel() * 4 for t in model.state_dict().values())


def test_saved_activations_grow_with_the_image_not_with_the_weights():
    digits, cifar = model_footprint("cnn", "digits"), model_footprint("cnn", "synthetic-cifar")
    # 32x32x3 images against 8x8x1: the first layer's output alone is 16 times larger.
    assert cifar.largest_output_bytes_per_sample == 16 * digits.largest_output_bytes_per_sample
    assert cifar.activation_bytes_per_sample > 10 * digits.activation_bytes_per_sample
    # Per example: far below the 2.2 MB of weights that autograd also keeps, once a batch.
    assert cifar.activation_bytes_per_sample < cifar.state_bytes


def test_each_device_adds_its_reply_and_each_actor_a_process(cifar_cnn):
    config = resolve_run_config({"dataset": "synthetic-cifar"})
    data = dataset_bytes("synthetic-cifar", None)
    one = estimate(config, 100, 2, cifar_cnn, data, 32)
    more = estimate(config, 101, 2, cifar_cnn, data, 32)
    fewer_shards = 2 * data * memory.CACHED_SHARDS * (1 / 100 - 1 / 101)
    per_device = cifar_cnn.reply_bytes(32) + memory.DEVICE_BYTES
    assert more.total - one.total == pytest.approx(per_device - fewer_shards)
    third = estimate(config, 100, 3, cifar_cnn, data, 32)
    shards = data * memory.CACHED_SHARDS / 100  # the shards an actor keeps loaded
    per_actor = memory.ACTOR_PROCESS_BYTES + shards + memory.MODEL_COPIES * cifar_cnn.state_bytes
    activations = cifar_cnn.activation_bytes_per_sample * config["max-batch"]
    assert third.total - one.total == pytest.approx(per_actor + activations)
    coarse = estimate(config, 100, 2, cifar_cnn, data, 4)
    assert one.messages - coarse.messages == pytest.approx(100 * cifar_cnn.parameters * 28 / 8)


def test_the_description_sums_to_the_total(cifar_cnn):
    needed = estimate(resolve_run_config({}), 1000, 2, cifar_cnn, 0, 32)
    text = needed.describe()
    assert text.startswith(f"about {needed.total / GB:.1f} GB (2 Ray actors; processes ")
    listed = text[text.index(";") + 2 : -1].split(", ")
    parts = [float(part.rsplit(" ", 1)[1]) for part in listed]
    assert sum(parts) == pytest.approx(needed.total / GB, abs=0.25)


def test_available_memory_is_meminfo_or_the_cgroup_limit_left(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   10000000 kB\n")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    monkeypatch.setattr(memory, "MEMINFO", meminfo)
    monkeypatch.setattr(memory, "CGROUP_MEMORY", cgroup)
    assert memory.available_bytes() == 10_000_000 * 1024  # no cgroup files
    (cgroup / "memory.max").write_text("max\n")
    (cgroup / "memory.current").write_text("1000\n")
    assert memory.available_bytes() == 10_000_000 * 1024
    (cgroup / "memory.max").write_text(f"{4 * 1024**3}\n")
    (cgroup / "memory.current").write_text(f"{1024**3}\n")
    assert memory.available_bytes() == 3 * 1024**3


def test_a_run_above_the_memory_available_is_refused_with_its_estimate(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(simulate, "available_bytes", lambda: 2.0 * GB)
    monkeypatch.setattr(simulate, "simulation_actors", lambda cpus_per_client: 2)
    message = fails_up_front(["--clients", "50", "--rounds", "1"], tmp_path, capsys)
    needed = preflight(resolve_run_config({"min-nodes": 50}), 50, 2)
    assert message.startswith(f"--clients: 50 devices need {needed.describe()}, ")
    assert message.endswith(
        "more than the 2.0 GB available; use fewer devices, or --no-memory-check"
    )


def test_the_checks_run_in_a_child_when_this_process_has_no_torch(tmp_path):
    """``feel`` itself then never imports torch, and a child's error comes back as it was."""
    script = (
        "import sys\n"
        "from cli.preflight import preflight\n"
        "from task.config import resolve_run_config\n"
        "from task.errors import ConfigError\n"
        "needed = preflight(resolve_run_config({}), 6, 2)\n"
        "try:\n"
        "    preflight(resolve_run_config({'min-devices': 7}), 6, 2)\n"
        "except ConfigError as exc:\n"
        "    print(exc.field, exc.message)\n"
        "print(round(needed.total / 1e9, 1), 'torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == [
        "min-devices 7 exceeds the 6 devices of the run",
        f"{preflight(resolve_run_config({}), 6, 2).total / 1e9:.1f} False",
    ]
