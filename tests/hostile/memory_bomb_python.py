"""Allocates 512 MiB bytes objects up to 24 GiB (calloc: never touched): MemoryError."""

# expect: crashed|killed_resource
# message: MemoryError
# guard: memory
import torch

_keep: list[bytes] = []


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    for _ in range(48):
        _keep.append(bytes(512 << 20))
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
