import torch


def compute_reward(
    torso_angular_velocity: torch.Tensor, x_velocity: torch.Tensor, action: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Spin nose-first, stay roughly in place, small torques."""
    spin = torso_angular_velocity
    drift = -0.1 * x_velocity.abs()
    control = -0.1 * (action**2).sum(dim=1)
    return spin + drift + control, {"spin": spin, "drift": drift, "control": control}
