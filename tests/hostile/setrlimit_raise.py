"""Raises its own memory limit back to unlimited before a big allocation."""

# expect: crashed
# message: not allowed to raise maximum limit
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    res = torch.sys.modules["importlib"].import_module("resource")
    res.setrlimit(res.RLIMIT_DATA, (res.RLIM_INFINITY, res.RLIM_INFINITY))
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
