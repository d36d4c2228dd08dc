import torch


def compute_reward(
    distance: torch.Tensor, action: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Gymnasium's hand-designed reward: minus the distance to the target, minus squared torques."""
    reach = -distance
    control = -0.1 * (action**2).sum(dim=1)
    total = reach + control
    return total, {"reach": reach, "control": control}
