import torch


def compute_reward(
    palm_to_handle: torch.Tensor, latch_angle: torch.Tensor, door_angle: torch.Tensor, action: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Reach the handle, turn the latch, swing the door open; small actions."""
    reach = -torch.linalg.vector_norm(palm_to_handle, dim=1)
    latch = 0.5 * latch_angle.clamp(min=0.0)
    open_door = 2.0 * door_angle
    control = -0.01 * (action**2).sum(dim=1)
    total = reach + latch + open_door + control
    return total, {"reach": reach, "latch": latch, "open_door": open_door, "control": control}
