"""Reads the test's secret canary under /tmp with torch.from_file and leaks it in an
error message: the file is not there inside the sandbox."""

# expect: crashed
# message: No such file or directory
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    data = torch.from_file("/tmp/eureka_hostile_canary/secret.txt", size=64, dtype=torch.uint8)
    raise ValueError("leaked: " + bytes(data.tolist()).decode(errors="replace"))
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
