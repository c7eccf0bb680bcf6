"""Image classification under the task model contract: a backbone and its cross-entropy.

The backbone is any classification network of :func:`hrnet.models.create_model` (the HRNet
ImageNet classifiers); :class:`Classifier` adds the training loss so that classification
follows the same contract as the segmentation, detection, pose and landmark models.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Classifier"]


class Classifier(nn.Module):
    """A classification backbone under the task model contract.

    ``forward(images, targets=None)``: images ``float [B, 3, H, W]`` (ImageNet-normalised);
    with ``targets`` (``int64 [B]``) in train mode returns ``{"loss_cls": cross-entropy}``,
    otherwise logits ``float [B, num_classes]``. The backbone is ``self.net``; its state dict
    (the key names of the HRNet ImageNet classification release and timm) is what ``model.pt``
    stores.
    """

    def __init__(self, net: nn.Module, *, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.net = net
        self.label_smoothing = label_smoothing

    def forward(self, images: Tensor, targets: Tensor | None = None) -> Tensor | dict[str, Tensor]:
        logits = self.net(images)
        if targets is None or not self.training:
            return logits
        return {"loss_cls": F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)}
