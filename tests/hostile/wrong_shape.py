"""Returns one value per state dimension instead of one per environment."""

# expect: check_failed
# message: must have shape [N] = [
import torch


def compute_reward(
    pole_angle: torch.Tensor, cart_position: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    total = torch.stack([pole_angle, cart_position, pole_angle], dim=1)
    return total, {}
