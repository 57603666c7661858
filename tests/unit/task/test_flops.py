import pytest
import torch
from torch import nn

from task.flops import parameter_count, training_flops_per_sample, update_flops
from task.models import build_model


def test_linear_layer_flops_are_exact():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    # forward 2*12*5 per sample; backward: weight grad 2*12*5 (no input grad for the input)
    assert training_flops_per_sample(model, (1, 3, 4)) == 2 * 2 * 12 * 5


@pytest.mark.parametrize("groups", [1, 4, 16])
def test_grouped_conv_backward_costs_twice_the_forward(groups):
    conv = nn.Sequential(nn.Identity(), nn.Conv2d(16, 16, 3, padding=1, groups=groups))
    with_input_grad = nn.Sequential(nn.Conv2d(16, 16, 1, bias=False), conv, nn.Flatten())
    dense_1x1 = 2 * 16 * 16 * 64
    forward = 2 * 16 * (16 // groups) * 9 * 64
    total = training_flops_per_sample(
        nn.Sequential(with_input_grad, nn.Linear(16 * 64, 1, bias=False)), (16, 8, 8)
    )
    linear = 2 * 16 * 64
    # 1x1 conv: forward + weight grad; grouped conv: forward + input grad + weight grad; linear:
    # forward + input grad + weight grad.
    assert total == 2 * dense_1x1 + 3 * forward + 3 * linear


def test_counting_leaves_the_model_untouched():
    model = build_model("cnn", 10, 1, 8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    training_flops_per_sample(model, (1, 8, 8))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_flops_grow_with_the_model():
    with torch.device("meta"):  # skip weight initialisation: counting needs shapes only
        models = {
            n: build_model(n, 10, 3, 32) for n in ("cnn", "mobilenetv2", "resnet18", "densenet121")
        }
    flops = {name: training_flops_per_sample(model, (3, 32, 32)) for name, model in models.items()}
    assert 0 < flops["cnn"] < flops["mobilenetv2"] < flops["resnet18"] < flops["densenet121"]
    # ResNet-18 on 32x32: about 0.56 G multiply-adds forward, x2 FLOPs, x3 forward + backward.
    assert flops["resnet18"] == pytest.approx(3.33e9, rel=0.02)


def test_update_costs_two_flops_per_parameter():
    model = build_model("cnn", 10, 1, 8)
    assert update_flops(model) == 2 * parameter_count(model) == 2 * 53_098
