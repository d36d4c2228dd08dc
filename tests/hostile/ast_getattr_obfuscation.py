"""getattr with a computed name to reach torch.os: refused statically."""

# expect: check_failed
# message: `getattr` is not allowed
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    mod = getattr(torch, "o" + "s")
    mod.system("touch /tmp/eureka_hostile_canary/eureka_pwned")
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
