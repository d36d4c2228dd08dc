"""Writes next to the test's canary under /tmp with torch.save: /tmp is a private tmpfs."""

# expect: crashed
# message: eureka_hostile_canary
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    torch.save(pole_angle, "/tmp/eureka_hostile_canary/eureka_pwned.pt")
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
