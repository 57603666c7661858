"""The DNN models of Sec. VI: a small CNN and torchvision networks adapted to small images."""

from __future__ import annotations

from types import ModuleType

from torch import nn

from task.errors import ConfigError
from task.names import MODEL_NAMES

# torchvision's MobileNetV2 stages (expansion t, channels c, repeats n, stride s) with the
# stride of the 24-channel stage set to 1, as in the usual CIFAR adaptation: with a stride-1
# stem a 32x32 input ends at 4x4 instead of 1x1.
_MOBILENETV2_SMALL_IMAGE_STAGES = [
    [1, 16, 1, 1],
    [6, 24, 2, 1],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
]


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


def _cnn(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """Two conv-BN-ReLU-maxpool blocks (32, 64 channels) and a 128-unit hidden layer."""
    side = image_size // 4
    return nn.Sequential(
        _conv_block(in_channels, 32),
        _conv_block(32, 64),
        nn.Flatten(),
        nn.Linear(64 * side * side, 128),
        nn.ReLU(inplace=True),
        nn.Linear(128, num_classes),
    )


def _torchvision_models() -> ModuleType:
    """Return ``torchvision.models``, imported on first use.

    The CNN does without it: in deployment every message starts a fresh ClientApp process,
    and importing torchvision would be most of a CNN device's work there.
    """
    from torchvision import models

    return models


def _stem(in_channels: int, out_channels: int) -> nn.Conv2d:
    """Return a 3x3 stride-1 stem convolution to replace the ImageNet 7x7 stride-2 one."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)


def _resnet18(num_classes: int, in_channels: int) -> nn.Module:
    model = _torchvision_models().resnet18(weights=None, num_classes=num_classes)
    model.conv1 = _stem(in_channels, 64)
    model.maxpool = nn.Identity()
    return model


def _densenet121(num_classes: int, in_channels: int) -> nn.Module:
    model = _torchvision_models().densenet121(weights=None, num_classes=num_classes)
    model.features.conv0 = _stem(in_channels, 64)
    model.features.pool0 = nn.Identity()
    return model


def _mobilenetv2(num_classes: int, in_channels: int) -> nn.Module:
    model = _torchvision_models().MobileNetV2(
        num_classes=num_classes, inverted_residual_setting=_MOBILENETV2_SMALL_IMAGE_STAGES
    )
    model.features[0][0] = _stem(in_channels, 32)
    return model


def build_model(name: str, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """Build a freshly initialised model (no pretrained weights, nothing downloaded).

    Parameters
    ----------
    name
        One of :data:`MODEL_NAMES`.
    num_classes, in_channels, image_size
        Output classes and the (square) input shape, e.g. 10, 1, 8 for digits and
        10, 3, 32 for CIFAR-10.

    Raises
    ------
    ConfigError
        For an unknown ``name`` (field ``model``).
    """
    if name == "cnn":
        return _cnn(num_classes, in_channels, image_size)
    builders = {"resnet18": _resnet18, "densenet121": _densenet121, "mobilenetv2": _mobilenetv2}
    if name not in builders:
        raise ConfigError.unknown_choice("model", name, MODEL_NAMES)
    return builders[name](num_classes, in_channels)
