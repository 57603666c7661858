"""The probe set's training loss (Eq. 4) does not depend on the model's BatchNorm mode."""

import numpy as np
import pytest
import torch

from server.probe import probe_loss, probe_set
from task.data import load_dataset
from task.models import build_model


def test_probe_set_is_a_seeded_sample_of_distinct_training_examples():
    x, y = np.arange(100.0)[:, None], np.arange(100)
    px, py = probe_set(x, y, 30, seed=4)
    assert len(np.unique(py)) == 30 and np.array_equal(px[:, 0], py)
    assert np.array_equal(probe_set(x, y, 30, seed=4)[1], py)
    assert len(probe_set(x, y, 500, seed=4)[1]) == 100


def test_probe_loss_is_the_same_whatever_the_batchnorm_mode_and_leaves_the_model_alone():
    torch.manual_seed(0)
    data = load_dataset("digits")
    model = build_model("cnn", data.num_classes, data.in_channels, data.image_size)
    x, y = probe_set(data.x_train, data.y_train, 256, seed=0)
    device = torch.device("cpu")
    with torch.no_grad():  # running statistics far from the probe's
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.fill_(3.0)
    running = {k: v.clone() for k, v in model.state_dict().items()}
    losses = []
    for mode in (True, False):
        model.train(mode)
        losses.append(probe_loss(model, x, y, device))
        assert model.training is mode
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in running.items())
