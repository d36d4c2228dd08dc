"""kill(-1, SIGKILL): every process it may signal but itself. Inside the PID namespace that
is only the sandbox's own processes, so nothing outside is touched; running as an unprivileged uid, it
may signal none of them (ESRCH, so the reward raises and the candidate crashes)."""

# expect: ok|crashed
# guard: pidns
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    o = torch.os
    # safety guard for the machine running the tests: only inside a fresh PID namespace
    if o.getpid() < 50 and o.getppid() == 1:
        o.kill(-1, 9)
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
