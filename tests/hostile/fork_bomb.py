"""A fork loop, bounded to 600 children that each become `sleep 987.5`: the process limit
stops it, and the PID namespace takes every child down with the run. 512 forks of a process
holding torch take about 50 s on a machine loaded 7-fold, hence the longer timeout."""

# expect: crashed
# message: Resource temporarily unavailable
# guard: pidns nproc
# leftover: sleep 987.5
# timeout: 120
import torch

_done: list[int] = []


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    o = torch.os
    # safety guard for the machine running the tests: only inside a fresh PID namespace
    if not _done and o.getpid() < 50:
        _done.append(1)
        for _ in range(600):
            if o.fork() == 0:
                o.execv("/bin/sleep", ["sleep", "987.5"])
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
