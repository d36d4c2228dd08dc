"""Imports os and runs a shell command: the static check refuses it."""

# expect: check_failed
# message: import of `os` is not allowed
import os

import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    os.system("touch /tmp/eureka_hostile_canary/eureka_pwned")
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
