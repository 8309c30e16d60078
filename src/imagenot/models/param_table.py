"""Parameter counts of every registered model, so `imagenot models` lists the zoo without importing torch or
building each model (building vit_h_14 or efficientnet_b7, even on the meta device, takes
about a second on 2 cores).

`PARAMS[name] = (parameters with a 1000-class head, parameters per extra class)`; the second number is the
head's in_features + 1, so the count for any head size is exact. Measured with torchvision 0.29 by
building each model on the meta device; tests/models re-check every entry against a real build.
"""

from __future__ import annotations

PARAMS: dict[str, tuple[int, int]] = {
    "alexnet": (61100840, 4097),
    "alexnet_s32": (495208, 257),
    "alexnet_s64": (496936, 257),
    "convnext_base": (88591464, 1025),
    "convnext_large": (197767336, 1537),
    "convnext_s32": (397432, 129),
    "convnext_s64": (398008, 129),
    "convnext_small": (50223688, 769),
    "convnext_tiny": (28589128, 769),
    "densenet121": (7978856, 1025),
    "densenet161": (28681000, 2209),
    "densenet169": (14149480, 1665),
    "densenet201": (20013928, 1921),
    "densenet_s32": (208005, 106),
    "densenet_s64": (208005, 106),
    "efficientnet_b0": (5288548, 1281),
    "efficientnet_b1": (7794184, 1281),
    "efficientnet_b2": (9109994, 1409),
    "efficientnet_b3": (12233232, 1537),
    "efficientnet_b4": (19341616, 1793),
    "efficientnet_b5": (30389784, 2049),
    "efficientnet_b6": (43040704, 2305),
    "efficientnet_b7": (66347960, 2561),
    "efficientnet_s32": (468300, 321),
    "efficientnet_s64": (468300, 321),
    "efficientnet_v2_l": (118515272, 1281),
    "efficientnet_v2_m": (54139356, 1281),
    "efficientnet_v2_s": (21458488, 1281),
    "googlenet": (6624904, 1025),
    "inception_v3": (23834568, 2049),
    "mobilenet_v2": (3504872, 1281),
    "mobilenet_v3_large": (5483032, 1281),
    "mobilenet_v3_small": (2542856, 1025),
    "resnet101": (44549160, 2049),
    "resnet152": (60192808, 2049),
    "resnet18": (11689512, 513),
    "resnet34": (21797672, 513),
    "resnet50": (25557032, 2049),
    "resnet_s32": (233712, 65),
    "resnet_s64": (233712, 65),
    "vgg11": (132863336, 4097),
    "vgg11_bn": (132868840, 4097),
    "vgg13": (133047848, 4097),
    "vgg13_bn": (133053736, 4097),
    "vgg16": (138357544, 4097),
    "vgg16_bn": (138365992, 4097),
    "vgg19": (143667240, 4097),
    "vgg19_bn": (143678248, 4097),
    "vgg_s32": (282568, 129),
    "vgg_s64": (283168, 129),
    "vit_b_16": (86567656, 769),
    "vit_b_32": (88224232, 769),
    "vit_h_14": (632045800, 1281),
    "vit_l_16": (304326632, 1025),
    "vit_l_32": (306535400, 1025),
}
