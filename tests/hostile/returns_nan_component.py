"""A NaN component (0/0) in a finite-looking total."""

# expect: diverged
# message: non-finite components: bad
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    bad = torch.zeros_like(pole_angle) / torch.zeros_like(pole_angle)
    return pole_angle + bad, {"bad": bad}
