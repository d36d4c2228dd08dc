"""Returns a complex tensor."""

# expect: check_failed
# message: real-valued tensor
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    total = torch.complex(pole_angle, pole_angle)
    return total, {}
