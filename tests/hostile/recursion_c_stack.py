"""Lifts the recursion limit and recurses through C (map) until the C stack overflows
(a segfault, bounded by the 8 MB stack)."""

# expect: crashed
# message: worker exited
import torch


def _deeper(n: int) -> list[object]:
    return list(map(_deeper, [n + 1]))


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    torch.sys.setrecursionlimit(10**8)
    _deeper(0)
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
