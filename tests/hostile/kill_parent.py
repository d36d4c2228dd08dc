"""SIGKILLs its parent process and SIGTERMs PID 1: inside the PID namespace the parent is the
worker process that measures F (killed: the candidate gets no result, only a message) and PID 1
the namespace's init (root: not permitted for the unprivileged uid it runs as; otherwise
ignored); the orchestrator is out of reach."""

# expect: ok|crashed|killed_resource
# guard: pidns
import torch

_done: list[int] = []


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    o = torch.os
    # safety guard for the machine running the tests: only inside a fresh PID namespace
    if not _done and o.getpid() < 50:
        _done.append(1)
        o.kill(o.getppid(), 9)
        o.kill(1, 15)
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
