"""Returns infinite rewards."""

# expect: diverged
# message: NaN or infinite
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    boom = torch.full_like(pole_angle, float("inf"))
    return boom, {"boom": boom}
