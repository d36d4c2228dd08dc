"""InvertedDoublePendulum's success signal: the tip is above the failure line."""

import torch


def success_signal(tip_height: torch.Tensor) -> torch.Tensor:
    return (tip_height > 1.0).float()
