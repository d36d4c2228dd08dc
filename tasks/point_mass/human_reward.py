import torch


def compute_reward(
    goal_distance: torch.Tensor,
    prev_goal_distance: torch.Tensor,
    obstacle_distance: torch.Tensor,
    action: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Progress towards the goal, a bonus for reaching it, and a penalty for hugging the obstacle."""
    progress = 10.0 * (prev_goal_distance - goal_distance)
    reached = 10.0 * (goal_distance < 0.15).float()
    clearance = -0.5 * torch.exp(-obstacle_distance / 0.1)
    effort = -0.01 * (action**2).sum(dim=1)
    total = progress + reached + clearance + effort
    return total, {"progress": progress, "reached": reached, "clearance": clearance, "effort": effort}
