import torch


def compute_reward(
    goal_distance: torch.Tensor, action: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Minus the distance to the goal, a bonus on reaching it."""
    approach = -goal_distance
    reached = 10.0 * (goal_distance <= 0.45).float()
    return approach + reached, {"approach": approach, "reached": reached}
