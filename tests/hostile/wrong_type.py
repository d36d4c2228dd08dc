"""Returns strings instead of tensors."""

# expect: check_failed
# message: must be a torch.Tensor
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    return "a lot", {"fun": "yes"}
