"""Greedy non-maximum suppression with rotated BEV IoU."""
from __future__ import annotations

import numpy as np
import torch

from ..rotated_iou import rotated_iou

__all__ = ["rotated_nms"]


def rotated_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, pre_max: int = 4096, post_max: int = 500) -> torch.Tensor:
    """Indices of the kept lidar boxes (N, 7), best first; boxes overlapping a kept one by more than the threshold go."""
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True)[:pre_max]
    bev = boxes[order][:, [0, 1, 3, 4, 6]].detach().cpu().double().numpy()
    alive = np.ones(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if not alive[i]:
            continue
        keep.append(i)
        if len(keep) >= post_max:
            break
        rest = np.nonzero(alive[i + 1:])[0] + i + 1
        if len(rest):
            iou = rotated_iou(bev[i:i + 1], bev[rest])[0]
            alive[rest[iou > iou_threshold]] = False
    return order[torch.as_tensor(keep, dtype=torch.long, device=order.device)]
