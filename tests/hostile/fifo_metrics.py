"""Plants metrics.json as a FIFO and dies: an orchestrator writing it would block forever."""

# expect: crashed
# message: exited with code 3
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    o = torch.os
    o.mkfifo("metrics.json")
    o._exit(3)
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
