import pytest
import torch

from task.errors import ConfigError
from task.flops import parameter_count
from task.models import MODEL_NAMES, build_model


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize(("channels", "size"), [(3, 32), (1, 8)])
def test_models_map_a_batch_to_class_logits(name, channels, size):
    with torch.device("meta"):  # shapes only: a real DenseNet forward takes seconds on 2 cores
        model = build_model(name, num_classes=7, in_channels=channels, image_size=size)
        out = model.train()(torch.zeros(2, channels, size, size))
    assert out.shape == (2, 7)


def test_cnn_computes_finite_logits():
    model = build_model("cnn", 10, 1, 8).eval()
    with torch.no_grad():
        out = model(torch.randn(5, 1, 8, 8))
    assert out.shape == (5, 10) and torch.isfinite(out).all()


def test_cnn_is_small_and_sized_by_the_input():
    # conv 1->32 (288) + BN (64) + conv 32->64 (18432) + BN (128) + fc 256->128 + fc 128->10
    assert parameter_count(build_model("cnn", 10, 1, 8)) == 53_098
    assert parameter_count(build_model("cnn", 10, 3, 32)) == 545_194


def test_resnet18_has_the_cifar_parameter_count():
    # 3x3 stride-1 stem, no max-pool: the standard CIFAR ResNet-18 has 11,173,962 parameters.
    with torch.device("meta"):
        model = build_model("resnet18", 10, 3, 32)
    assert parameter_count(model) == 11_173_962
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)


def test_models_are_freshly_initialised():
    a, b = build_model("cnn", 10, 1, 8), build_model("cnn", 10, 1, 8)
    assert not torch.equal(a[0][0].weight, b[0][0].weight)


def test_unknown_model_names_the_field_and_value():
    with pytest.raises(ConfigError, match=r"^model: unknown model 'vgg'"):
        build_model("vgg", 10, 3, 32)
