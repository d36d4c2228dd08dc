"""importlib to load socket: refused statically."""

# expect: check_failed
# message: import of `importlib` is not allowed
import importlib

import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    importlib.import_module("socket").create_connection(("1.1.1.1", 80), timeout=2)
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
