"""The builtins module from torch.sys.modules, then its exec: no import, no forbidden name,
no dunder attribute anywhere."""

# expect: ok|crashed
import torch

_done: list[int] = []


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    if not _done:
        _done.append(1)
        b = torch.sys.modules["builtins"]
        b.exec("import os; os.system('touch /tmp/eureka_pwned $HOME/../eureka_pwned')")
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
