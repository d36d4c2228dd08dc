import torch


def compute_reward(
    torso_height: torch.Tensor, z_velocity: torch.Tensor, x_position: torch.Tensor, action: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Stay alive, push the torso up, stay near the start, small torques."""
    alive = torch.ones_like(torso_height)
    height = 5.0 * (torso_height - 1.25).clamp(min=0.0)
    upward = 0.5 * z_velocity.clamp(min=0.0)
    stay = -1.0 * x_position.abs()
    control = -0.001 * (action**2).sum(dim=1)
    total = alive + height + upward + stay + control
    return total, {"alive": alive, "height": height, "upward": upward, "stay": stay, "control": control}
