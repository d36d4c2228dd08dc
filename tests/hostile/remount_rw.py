"""Tries to remount / read-write and to gain root in a new user namespace, then writes. Its
three shell commands took 30 s on a machine loaded 7-fold, hence the longer timeout."""

# expect: ok|crashed
# timeout: 90
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
        target = torch.os.path.join(_repo(), "tests", "hostile", "_canary", "eureka_pwned")
        torch.os.system(
            f"mount -o remount,rw / 2>/dev/null; touch {target}; "
            f"unshare -r sh -c 'mount -o remount,rw / ; touch {target}' 2>/dev/null"
        )
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
