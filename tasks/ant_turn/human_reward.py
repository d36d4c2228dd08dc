import torch


def compute_reward(
    torso_angular_velocity: torch.Tensor,
    distance_from_start: torch.Tensor,
    torso_height: torch.Tensor,
    action: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Yaw rate counter-clockwise, stay up, stay near the start, small torques."""
    turn = torso_angular_velocity[:, 2]
    alive = ((torso_height > 0.2) & (torso_height < 1.0)).float()
    stay = -1.0 * distance_from_start
    control = -0.05 * (action**2).sum(dim=1)
    return turn + alive + stay + control, {"turn": turn, "alive": alive, "stay": stay, "control": control}
