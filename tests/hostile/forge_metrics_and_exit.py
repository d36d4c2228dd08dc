"""Writes a metrics.json claiming F = 1e9 and ends its process at once: only the result the
worker's parent writes counts."""

# expect: crashed
# message: exited with code 0
import torch

FORGED = b'{"status": "ok", "message": "trained", "fitness": 1000000000.0}'


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    o = torch.os
    fd = o.open("metrics.json", o.O_WRONLY | o.O_CREAT | o.O_TRUNC)
    o.write(fd, FORGED)
    o.close(fd)
    o._exit(0)
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
