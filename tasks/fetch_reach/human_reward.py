import torch


def compute_reward(
    goal_distance: torch.Tensor, action: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Minus the distance to the goal, minus a small cost on the commanded motion."""
    reach = -goal_distance
    control = -0.01 * (action[:, :3] ** 2).sum(dim=1)
    return reach + control, {"reach": reach, "control": control}
