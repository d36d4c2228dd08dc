import torch


def compute_reward(
    fingertip_to_object: torch.Tensor, object_to_goal: torch.Tensor, action: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Bring the fingertip to the cylinder, the cylinder to the goal, with small torques."""
    reach = -0.5 * fingertip_to_object
    push = -1.0 * object_to_goal
    control = -0.01 * (action**2).sum(dim=1)
    return reach + push + control, {"reach": reach, "push": push, "control": control}
