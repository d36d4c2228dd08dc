import torch


def compute_reward(
    torso_angular_velocity: torch.Tensor,
    distance_from_start: torch.Tensor,
    torso_height: torch.Tensor,
    action: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Yaw rate counter-clockwise, stay near the start, stay up, small torques."""
    turn = torso_angular_velocity[:, 2]
    stay = -1.0 * distance_from_start
    alive = ((torso_height > 0.2) & (torso_height < 1.0)).float()
    control = -0.5 * (action**2).sum(dim=1)
    return turn + stay + alive + control, {"turn": turn, "stay": stay, "alive": alive, "control": control}
