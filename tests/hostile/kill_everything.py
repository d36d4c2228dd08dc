"""kill(-1, SIGKILL): every process it may signal but itself. Inside the PID namespace that
is only the sandbox's own processes, so nothing outside is touched: the worker process that
measures F (its parent, of its uid: the candidate gets no result, only a message), not the
namespace's init."""

# expect: ok|crashed|killed_resource
# guard: pidns
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    o = torch.os
    # safety guard for the machine running the tests: only inside a fresh PID namespace
    if o.getpid() < 50 and o.getppid() in (1, 2):  # PID 2: the worker that forked it
        o.kill(-1, 9)
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
