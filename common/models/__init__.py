"""Models shared by the papers: CIFAR ResNets, a small CNN, MLP / logistic regression, a tiny GPT."""

from common.models.cnn import SmallCNN, small_cnn
from common.models.gpt import GPT, GPTConfig
from common.models.mlp import linear, mlp
from common.models.resnet import CifarResNet, resnet, resnet20, small_resnet

__all__ = [
    "GPT", "CifarResNet", "GPTConfig", "SmallCNN", "linear", "mlp", "resnet", "resnet20", "small_cnn",
    "small_resnet",
]
