"""Shared by the detector tests: the two-image toy batch and the overfit check."""

from __future__ import annotations

import torch
from torchvision.ops import box_iou

OVERFIT_STEPS = 50
OVERFIT_LR = 1e-3


def two_box_batch(
    *, masks: bool = False, semantic: bool = False
) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Two 64x64 images with one bright box each (labels 1 and 2); with ``masks`` each target
    also has its box filled as an instance mask, with ``semantic`` a ``semantic`` map too: the
    box's label inside it, 0 outside."""
    images = [torch.full((3, 64, 64), 0.2), torch.full((3, 64, 64), 0.2)]
    images[0][:, 12:50, 10:40] = 0.9
    images[1][:, 5:30, 30:60] = 0.6
    targets = [
        {"boxes": torch.tensor([[10.0, 12.0, 40.0, 50.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.tensor([[30.0, 5.0, 60.0, 30.0]]), "labels": torch.tensor([2])},
    ]
    if masks:
        for t in targets:
            x0, y0, x1, y1 = t["boxes"][0].int().tolist()
            t["masks"] = torch.zeros(1, 64, 64, dtype=torch.uint8)
            t["masks"][0, y0:y1, x0:x1] = 1
            if semantic:
                t["semantic"] = t["masks"][0] * t["labels"][0].to(torch.uint8)
    return images, targets


def mask_iou(pred: torch.Tensor, truth: torch.Tensor) -> float:
    pred, truth = pred > 0.5, truth.bool()
    return ((pred & truth).sum() / (pred | truth).sum()).item()


def assert_overfits(model: torch.nn.Module, *, masks: bool = False) -> None:
    """:data:`OVERFIT_STEPS` Adam steps on :func:`two_box_batch`, every loss finite; then the top
    detection of each image has the right label and box IoU > 0.5 (and mask IoU > 0.5)."""
    images, targets = two_box_batch(masks=masks, semantic=masks)
    opt = torch.optim.Adam(model.parameters(), lr=OVERFIT_LR)
    model.train()
    for _ in range(OVERFIT_STEPS):
        losses = model(images, targets)
        assert all(torch.isfinite(v) for v in losses.values())
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model(images)
    for pred, target in zip(out, targets):
        assert len(pred["labels"]) > 0, "no detection above the score threshold"
        assert pred["labels"][0] == target["labels"][0]
        assert box_iou(pred["boxes"][:1], target["boxes"]).item() > 0.5
        if masks:
            assert mask_iou(pred["masks"][0, 0], target["masks"][0]) > 0.5
