"""Plants metrics.json as a symlink to the test's secret canary and dies, hoping the
orchestrator reads (or overwrites) the canary: links are removed after every run."""

# expect: crashed
# message: exited with code 3
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    o = torch.os
    o.symlink("/tmp/eureka_hostile_canary/secret.txt", "metrics.json")
    o.symlink("/tmp/eureka_hostile_canary/secret.txt", "progress.json")
    o._exit(3)
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
