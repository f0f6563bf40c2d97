"""The light segmentation networks LALE is weighed against, written in plain PyTorch.

TopFormer, SeaFormer, EfficientViT-Seg and UNetFormer, each a typed configuration and one
registration line (``family="frontier"``). Their authors' code is not imported: every network is
built here from its paper and its published configuration, offline, and takes any band count and
any input size. How each compares with its paper's parameter and MAC counts: docs/baselines.md.
"""

from lale.models.frontier import efficientvit_seg, seaformer, topformer, unetformer  # noqa: F401
