"""The classic escape through object.__subclasses__(): refused statically."""

# expect: check_failed
# message: dunder attribute `__class__` is not allowed
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            cls.__init__.__globals__["system"]("touch /tmp/eureka_hostile_canary/eureka_pwned")
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
