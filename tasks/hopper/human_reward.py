import torch


def compute_reward(
    x_velocity: torch.Tensor,
    torso_height: torch.Tensor,
    torso_angle: torch.Tensor,
    action: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Gymnasium's hand-designed reward: forward velocity, a healthy bonus, minus control cost."""
    forward = x_velocity
    healthy = ((torso_height > 0.7) & (torso_angle.abs() < 0.2)).float()
    control = -1e-3 * (action**2).sum(dim=1)
    total = forward + healthy + control
    return total, {"forward": forward, "healthy": healthy, "control": control}
