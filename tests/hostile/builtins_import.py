"""__builtins__['__import__'] (a subscript, not an attribute) to get os: passes the
static check; the OS layer contains what it does."""

# expect: crashed
# message: No such file or directory
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    o = __builtins__["__import__"]("o" + "s")
    o.system("echo pwned > /tmp/eureka_pwned")
    print(o.listdir("/tmp/eureka_hostile_canary"))
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
