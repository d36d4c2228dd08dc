import torch


def compute_reward(
    torso_velocity: torch.Tensor, torso_height: torch.Tensor, action: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Gymnasium's hand-designed reward: forward velocity, a healthy bonus, minus control cost."""
    forward = torso_velocity[:, 0]
    healthy = ((torso_height >= 0.2) & (torso_height <= 1.0)).float()
    control = -0.5 * (action**2).sum(dim=1)
    return forward + healthy + control, {"forward": forward, "healthy": healthy, "control": control}
