"""CIFAR ResNets, the small CNN, MLP and logistic regression: shapes, sizes, validation, init."""

import math

import pytest
import torch
from torch import nn

from common.models import linear, mlp, resnet, resnet20, small_cnn, small_resnet


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("in_channels,side", [(1, 28), (3, 32)])
def test_resnet20_output_shape(in_channels, side):
    model = resnet20(num_classes=10, in_channels=in_channels).eval()
    assert model(torch.randn(2, in_channels, side, side)).shape == (2, 10)


def test_resnet20_has_the_papers_parameter_count():
    # He et al. 2016, Table 6: ResNet-20 has 0.27M parameters (option A shortcuts add none).
    assert n_params(resnet20()) == 269_722
    # bearpaw's 1x1-conv projection shortcuts add two convs and two BNs.
    assert n_params(resnet20(shortcut="B")) == 269_722 + 16 * 32 + 32 * 64 + 2 * (32 + 64)


@pytest.mark.parametrize("depth,blocks", [(8, 1), (20, 3), (32, 5), (56, 9)])
def test_resnet_depth_sets_blocks_per_stage(depth, blocks):
    model = resnet(depth, num_classes=5, in_channels=1, width=4)
    assert [len(stage) for stage in (model.layer1, model.layer2, model.layer3)] == [blocks] * 3
    assert model(torch.randn(1, 1, 28, 28)).shape == (1, 5)


def test_small_resnet_is_resnet8():
    model = small_resnet(num_classes=10, in_channels=1)
    assert len(model.layer1) == len(model.layer2) == len(model.layer3) == 1
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("depth", [0, 2, 7, 9, 21, 20.0])
def test_resnet_rejects_depths_that_are_not_6n_plus_2(depth):
    with pytest.raises(ValueError, match="depth"):
        resnet(depth)


def test_resnet_rejects_bad_arguments():
    with pytest.raises(ValueError, match="width"):
        resnet(20, width=0)
    with pytest.raises(ValueError, match="shortcut"):
        resnet(20, shortcut="C")


def test_resnet_widths_and_kaiming_init():
    torch.manual_seed(0)
    model = resnet20()
    assert [model.layer1[0].conv1.out_channels, model.layer2[0].conv1.out_channels,
            model.layer3[0].conv1.out_channels] == [16, 32, 64]
    w = model.layer3[1].conv1.weight  # 64 x 64 x 3 x 3, fan_out = 9 * 64
    assert w.std().item() == pytest.approx(math.sqrt(2 / (9 * 64)), rel=0.05)
    assert torch.all(model.layer3[1].bn1.weight == 1) and torch.all(model.layer3[1].bn1.bias == 0)


@pytest.mark.parametrize("in_channels,side", [(1, 28), (3, 32)])
def test_small_cnn_shapes(in_channels, side):
    model = small_cnn(num_classes=10, in_channels=in_channels, image_size=side)
    assert model(torch.randn(3, in_channels, side, side)).shape == (3, 10)


def test_small_cnn_rejects_bad_image_size():
    with pytest.raises(ValueError, match="image_size"):
        small_cnn(image_size=30)


def test_mlp_and_linear_shapes_and_sizes():
    model = mlp(28 * 28, [64, 32], 10)
    assert model(torch.randn(4, 1, 28, 28)).shape == (4, 10)
    assert n_params(model) == (784 * 64 + 64) + (64 * 32 + 32) + (32 * 10 + 10)
    logreg = linear(20, 3)
    assert logreg(torch.randn(5, 20)).shape == (5, 3)
    assert n_params(logreg) == 20 * 3 + 3


@pytest.mark.parametrize("kwargs", [{"in_features": 0}, {"num_classes": 0}, {"hidden": [8, 0]}])
def test_mlp_rejects_non_positive_sizes(kwargs):
    args = {"in_features": 4, "hidden": [8], "num_classes": 2} | kwargs
    with pytest.raises(ValueError):
        mlp(**args)


def test_vgg11_shapes_and_parameter_count():
    import pytest
    import torch

    from common.models.vgg import vgg

    model = vgg("vgg11", num_classes=10, in_channels=1)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    n = sum(p.numel() for p in model.parameters())
    assert 9.2e6 < n < 9.3e6  # CIFAR VGG11-BN: 9.23M parameters (3 input channels: 9.23M as well, +1.2k)
    with pytest.raises(ValueError, match="32x32"):
        model(torch.randn(1, 1, 28, 28))
    with pytest.raises(ValueError, match="unknown VGG"):
        vgg("vgg12")
