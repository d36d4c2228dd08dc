import torch


def compute_reward(
    tip_x: torch.Tensor,
    tip_height: torch.Tensor,
    lower_pole_angular_velocity: torch.Tensor,
    upper_pole_angular_velocity: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Gymnasium's hand-designed reward: alive bonus, minus tip distance from upright, minus spin."""
    alive = 10.0 * (tip_height > 1.0).float()
    distance = -(0.01 * tip_x**2 + (tip_height - 2.0) ** 2)
    spin = -(1e-3 * lower_pole_angular_velocity**2 + 5e-3 * upper_pole_angular_velocity**2)
    total = alive + distance + spin
    return total, {"alive": alive, "distance": distance, "spin": spin}
