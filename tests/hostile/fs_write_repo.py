"""Creates a file in the repository (found through sys.path): read-only."""

# expect: crashed
# message: Read-only file system
import torch


def _repo() -> str:
    for entry in torch.sys.path:
        if entry and torch.os.path.isdir(torch.os.path.join(entry, "tests", "hostile")):
            return entry
    return "/nonexistent"


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    o = torch.os
    target = o.path.join(_repo(), "tests", "hostile", "_canary", "eureka_pwned")
    fd = o.open(target, o.O_CREAT | o.O_WRONLY, 0o644)
    o.write(fd, b"pwned")
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
