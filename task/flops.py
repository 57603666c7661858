"""Computation workload of one training sample and of one model update (Eqs. (9), (12), (28))."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional
from torch.utils.flop_counter import FlopCounterMode, conv_backward_flop

# Samples in the batch the FLOPs are counted on; counts are linear in the batch, and two
# samples keep batch normalisation valid on layers whose output is 1x1.
_COUNT_BATCH = 2


def _grouped_conv_backward_flop(
    grad_out_shape: list[int],
    x_shape: list[int],
    w_shape: list[int],
    bias: list[int] | None,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    transposed: bool,
    output_padding: list[int],
    groups: int,
    output_mask: list[bool],
    out_shape: list[list[int]] | None = None,
) -> int:
    """Torch's convolution-backward count with the weight-gradient term divided by ``groups``.

    torch 2.14 counts the weight gradient of a grouped convolution as if it were dense,
    ``groups`` times too many FLOPs (64x for a 64-channel depthwise layer of MobileNetV2).
    """
    count = conv_backward_flop.__wrapped__
    args = (grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed)
    args += (output_padding, groups)
    grad_input = count(*args, [output_mask[0], False], out_shape=out_shape)
    grad_weight = count(*args, [False, output_mask[1]], out_shape=out_shape)
    return grad_input + grad_weight // groups


def parameter_count(model: nn.Module) -> int:
    """Count the trainable parameters p (Sec. II-B), one gradient element each."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def parameter_shapes(model: nn.Module) -> list[tuple[int, ...]]:
    """Return the shapes of the trainable parameters, the tensors of a gradient."""
    return [tuple(p.shape) for p in model.parameters() if p.requires_grad]


def training_flops_per_sample(model: nn.Module, input_shape: tuple[int, int, int]) -> float:
    """FLOPs of one forward and backward pass per sample, the workload behind C in Eq. (9).

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix multiplications and
    convolutions, 2 FLOPs per multiply-add; grouped-convolution backward corrected) on a
    copy of ``model`` on the ``meta`` device (shapes only, nothing computed) in train mode
    with a cross-entropy loss, so ``model`` itself is untouched.

    Parameters
    ----------
    model
        The network; its output size gives the number of classes.
    input_shape
        ``(channels, height, width)`` of one sample.
    """
    probe = copy.deepcopy(model).to("meta").train()
    x = torch.zeros(_COUNT_BATCH, *input_shape, device="meta")
    target = torch.zeros(_COUNT_BATCH, dtype=torch.long, device="meta")
    fix = {torch.ops.aten.convolution_backward: _grouped_conv_backward_flop}
    with FlopCounterMode(display=False, custom_mapping=fix) as counter:
        functional.cross_entropy(probe(x), target).backward()
    return counter.get_total_flops() / _COUNT_BATCH


def update_flops(model: nn.Module) -> float:
    """FLOPs of the local model update of Eq. (2): a multiply and a subtract per parameter."""
    return 2.0 * parameter_count(model)
