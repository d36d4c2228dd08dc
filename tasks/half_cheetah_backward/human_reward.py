import torch


def compute_reward(
    x_velocity: torch.Tensor, torso_angle: torch.Tensor, action: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Backward velocity, a penalty for flipping over, minus control cost."""
    backward = -x_velocity
    flipped = -2.0 * (torso_angle.abs() > 1.5).float()
    control = -0.1 * (action**2).sum(dim=1)
    return backward + flipped + control, {"backward": backward, "flipped": flipped, "control": control}
