import torch


def compute_reward(
    gripper_to_object: torch.Tensor, object_to_goal: torch.Tensor, action: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Move the gripper to the block and the block to the goal."""
    reach = -0.5 * gripper_to_object
    push = -1.0 * object_to_goal
    control = -0.01 * (action[:, :3] ** 2).sum(dim=1)
    return reach + push + control, {"reach": reach, "push": push, "control": control}
