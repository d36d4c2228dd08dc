"""object.__subclasses__() reached through __builtins__['getattr'] to find os.system
without importing anything: passes the static check."""

# expect: ok|crashed
import torch

_done: list[int] = []


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    if not _done:
        _done.append(1)
        g = __builtins__["getattr"]
        for cls in g(object, "__subcl" + "asses__")():
            if g(cls, "__name__") == "_wrap_close":
                system = g(g(cls, "__init__"), "__glo" + "bals__")["system"]
                system("touch /tmp/eureka_pwned /tmp/eureka_hostile_canary/eureka_pwned")
                break
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
