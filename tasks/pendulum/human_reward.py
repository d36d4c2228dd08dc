import torch


def compute_reward(
    pole_angle: torch.Tensor, angular_velocity: torch.Tensor, action: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Gymnasium's hand-designed cost: angle from upright, spin and torque, all penalised."""
    angle_cost = pole_angle**2
    spin_cost = 0.1 * angular_velocity**2
    torque_cost = 0.001 * action[:, 0] ** 2
    total = -(angle_cost + spin_cost + torque_cost)
    return total, {"angle_cost": -angle_cost, "spin_cost": -spin_cost, "torque_cost": -torque_cost}
