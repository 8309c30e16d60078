"""The networks behind the small-input variants (see `imagenot.models.small` for what each keeps)."""

from __future__ import annotations

import logging

import torch
import torch.nn as nn

log = logging.getLogger(__name__)


def _stem_stride(input_size_class: int) -> int:
    return 1 if input_size_class == 32 else 2


# -- AlexNet ---------------------------------------------------------------------------------------------
class _SmallAlexNet(nn.Module):
    """torchvision AlexNet's forward (features -> avgpool -> classifier) over miniature parts.

    Built directly rather than by shrinking `torchvision.models.AlexNet()`, whose constructor would first
    allocate and initialise its 58M-parameter head.
    """

    def __init__(self, features: nn.Module, pool: int, width: int, hidden: int, num_classes: int,
                 dropout: float) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(width * pool * pool, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
        # He initialisation: with PyTorch's default (uniform, gain 1/sqrt(3)) eight ReLU layers without
        # normalisation shrink the signal so much that SGD sat at chance for 4 epochs on Fashion-MNIST
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.classifier[-1].weight, 0, 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torchvision.models import AlexNet

        return AlexNet.forward(self, x)  # type: ignore[arg-type]


def alexnet_small(num_classes: int, design: int = 32, dropout: float = 0.5) -> nn.Module:
    """AlexNet in miniature: a large strided first kernel (5x5/2 at 32 px, 7x7/4 at 64 px, as AlexNet's
    11x11/4 at 224), overlapping 3x3/2 max-pooling, five ReLU convs without BN, 3-layer FC head with dropout."""
    k1, s1 = (5, 2) if design == 32 else (7, 4)
    features = nn.Sequential(
        nn.Conv2d(3, 24, kernel_size=k1, stride=s1, padding=k1 // 2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        nn.Conv2d(24, 48, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        nn.Conv2d(48, 64, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(64, 64, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(64, 48, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )
    return _SmallAlexNet(features, pool=2, width=48, hidden=256, num_classes=num_classes, dropout=dropout)


# -- VGG ---------------------------------------------------------------------------------------------------
class _SmallVGG(nn.Module):
    """torchvision's VGG forward over `make_layers(cfg)`, without its 120M-parameter 7x7x512 head."""

    def __init__(self, cfg: list[int | str], num_classes: int, dropout: float) -> None:
        from torchvision.models.vgg import make_layers

        super().__init__()
        self.features = make_layers(cfg, batch_norm=True)
        width = int([c for c in cfg if c != "M"][-1])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(
            nn.Linear(width, 128),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(128, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torchvision.models.vgg import VGG

        return VGG.forward(self, x)  # type: ignore[arg-type]


def vgg_small(num_classes: int, design: int = 32, dropout: float = 0.5) -> nn.Module:
    """VGG-11's configuration (BN variant) at an eighth of its width: five stages of stacked 3x3 convs and 2x2
    max-pooling (at 64 px one more 8-channel stage in front), then a small FC head."""
    cfg: list[int | str] = [8, "M", 16, "M", 32, 32, "M", 64, 64, "M", 64, 64, "M"]
    if design == 64:
        cfg = [8, "M", *cfg]
    return _SmallVGG(cfg, num_classes, dropout)


# -- ResNet ------------------------------------------------------------------------------------------------
class _SmallResNet(nn.Module):
    """A CIFAR-style ResNet out of torchvision's `BasicBlock`: a 3x3 conv stem without max-pooling, then
    stages of residual blocks (each stage halves the resolution and widens), global pooling and one FC."""

    def __init__(self, stem_width: int, widths: tuple[int, ...], blocks: tuple[int, ...], num_classes: int,
                 stem_stride: int) -> None:
        from torchvision.models.resnet import BasicBlock

        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_width, 3, stride=stem_stride, padding=1, bias=False),
            nn.BatchNorm2d(stem_width),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        inplanes = stem_width
        for w, n in zip(widths, blocks):
            for j in range(n):
                stride = 2 if j == 0 else 1
                down = None
                if stride != 1 or inplanes != w:
                    down = nn.Sequential(nn.Conv2d(inplanes, w, 1, stride=stride, bias=False), nn.BatchNorm2d(w))
                layers.append(BasicBlock(inplanes, w, stride, down))
                inplanes = w
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def resnet_small(num_classes: int, design: int = 32) -> nn.Module:
    """An 8-channel 3x3 stem (stride 2 at 64 px), then three stages of 1, 2, 2 BasicBlocks at widths 16, 32,
    64 (a ResNet-12 at the CIFAR ResNets' widths): residual learning with BN, at 16x16, 8x8 and 4x4 for 32 px."""
    return _SmallResNet(8, (16, 32, 64), (1, 2, 2), num_classes, _stem_stride(design))


# -- DenseNet ----------------------------------------------------------------------------------------------
def densenet_small(num_classes: int, design: int = 32, drop_rate: float = 0.0) -> nn.Module:
    """torchvision DenseNet-BC (bottleneck dense layers, compression 0.5 transitions) with growth 12 (the
    CIFAR DenseNet-BC's) and
    blocks (1, 2, 4, 6); its 7x7/2 conv + 3x3/2 max-pool stem becomes a 3x3 conv (stride 2 at 64 px) and a
    2x2 max-pool, so the first dense block sees 16x16 maps."""
    from torchvision.models import DenseNet

    init = 16
    model = DenseNet(
        growth_rate=12, block_config=(1, 2, 4, 6), num_init_features=init, bn_size=4, drop_rate=drop_rate,
        num_classes=num_classes,
    )
    model.features.conv0 = nn.Conv2d(3, init, kernel_size=3, stride=_stem_stride(design), padding=1, bias=False)
    nn.init.kaiming_normal_(model.features.conv0.weight)
    model.features.pool0 = nn.MaxPool2d(kernel_size=2, stride=2)
    return model


# -- EfficientNet ------------------------------------------------------------------------------------------
def efficientnet_small(num_classes: int, design: int = 32, dropout: float = 0.2) -> nn.Module:
    """torchvision EfficientNet over a shortened B0-like MBConv list (expansion 4-6, squeeze-excitation, SiLU,
    3x3 and 5x5 depthwise kernels, at half of B0's widths up to a 320-channel head conv). The stem keeps full
    resolution (stride 1 at 32 px, 2 at 64 px) and the first MBConv downsamples: B0's five stride-2 steps would
    leave 1x1 maps at 32 px."""
    from torchvision.models.efficientnet import EfficientNet, MBConvConfig

    setting = [
        MBConvConfig(1, 3, 2, 8, 8, 1),
        MBConvConfig(4, 3, 2, 8, 12, 1),
        MBConvConfig(4, 5, 2, 12, 24, 2),
        MBConvConfig(6, 3, 1, 24, 48, 2),
        MBConvConfig(6, 5, 2, 48, 80, 1),
    ]
    model = EfficientNet(setting, dropout=dropout, stochastic_depth_prob=0.0, num_classes=num_classes,
                         last_channel=320)
    stem = model.features[0]
    stem[0].stride = (_stem_stride(design),) * 2  # torchvision's stem has stride 2: keep 32 px at 32
    return model


# -- ConvNeXt ----------------------------------------------------------------------------------------------
def convnext_small(num_classes: int, design: int = 32, stochastic_depth_prob: float = 0.0) -> nn.Module:
    """torchvision ConvNeXt (depthwise 7x7, LayerNorm, 4x inverted bottleneck, GELU, layer scale) with stages
    of widths 16-128 and depths (1, 1, 2, 1), and a 2x2 (4x4 at 64 px) patchify stem instead of 4x4."""
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    setting = [
        CNBlockConfig(16, 32, 1),
        CNBlockConfig(32, 64, 1),
        CNBlockConfig(64, 128, 2),
        CNBlockConfig(128, None, 1),
    ]
    model = ConvNeXt(setting, stochastic_depth_prob=stochastic_depth_prob, num_classes=num_classes)
    patch = 2 if design == 32 else 4
    conv = nn.Conv2d(3, 16, kernel_size=patch, stride=patch)
    nn.init.trunc_normal_(conv.weight, std=0.02)
    nn.init.zeros_(conv.bias)
    model.features[0][0] = conv
    return model
