"""Leaves a process behind that rewrites metrics.json (F = 1e9) every few milliseconds for a
minute, hoping to replace the real result after the worker wrote it: the worker's parent kills
every other process of the sandbox before it writes."""

# expect: ok
# fitness-at-most: 500
# guard: pidns
import torch

FORGED = b'{"status": "ok", "message": "trained", "fitness": 1000000000.0}'
_started: list[int] = []


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    o = torch.os
    clock = torch.sys.modules["time"]
    # safety guard for the machine running the tests: only inside a fresh PID namespace
    if not _started and o.getpid() < 50:
        _started.append(1)
        if o.fork() == 0:
            o.setsid()
            end = clock.monotonic() + 60
            while clock.monotonic() < end:
                fd = o.open("forged.tmp", o.O_WRONLY | o.O_CREAT | o.O_TRUNC)
                o.write(fd, FORGED)
                o.close(fd)
                o.replace("forged.tmp", "metrics.json")
                clock.sleep(0.002)
            o._exit(0)
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
