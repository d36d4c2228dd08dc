"""eval of an __import__ string: refused statically."""

# expect: check_failed
# message: `eval` is not allowed
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    eval("__import__('os').system('touch /tmp/eureka_hostile_canary/eureka_pwned')")
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
