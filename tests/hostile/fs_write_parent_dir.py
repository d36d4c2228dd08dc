"""Writes into the directory that holds its run directory (other runs): not there to write to."""

# expect: crashed
# message: Permission denied
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    torch.save(pole_angle, "../eureka_pwned.pt")
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
