"""Mutates every input tensor in place: the trainer hands it copies."""

# expect: ok
import torch


def compute_reward(
    pole_angle: torch.Tensor, cart_position: torch.Tensor, action: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    pole_angle.mul_(1e6)
    cart_position.zero_()
    action.fill_(1)
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
