"""Prints 1 MiB lines up to 1 GiB: the log stops at the 512 MiB file-size limit."""

# expect: crashed|killed_resource
# message: file-size limit
# guard: fsize
import torch

LINE = "spam " * 209715


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    for _ in range(1024):
        print(LINE)
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
