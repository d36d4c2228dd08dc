import torch


def compute_reward(
    tip_height: torch.Tensor, prev_tip_height: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Gymnasium's -1 per step until success, plus progress of the tip towards the line."""
    time_cost = -torch.ones_like(tip_height)
    climb = 2.0 * (tip_height - prev_tip_height)
    goal = (tip_height > 1.0).float() * 10.0
    total = time_cost + climb + goal
    return total, {"time_cost": time_cost, "climb": climb, "goal": goal}
