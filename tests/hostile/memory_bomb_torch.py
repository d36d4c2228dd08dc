"""Allocates 1 GiB tensors up to 24 GiB (reserved, never touched): the memory limit
(8 GiB) refuses the allocation long before."""

# expect: crashed|killed_resource
# message: allocate
# guard: memory
import torch

_keep: list[torch.Tensor] = []


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    for _ in range(24):
        _keep.append(torch.empty(1 << 30, dtype=torch.uint8))
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
