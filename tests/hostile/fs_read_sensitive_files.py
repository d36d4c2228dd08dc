"""Reads the usual secrets (shadow, ssh keys, shell history, cloud credentials) and
reports whatever it got in its error message."""

# expect: crashed
# message: /etc/shadow:Permission denied
import torch

TARGETS = [
    "/etc/shadow",
    "/root/.ssh/id_rsa",
    "/root/.bash_history",
    "/root/.aws/credentials",
    "/root/.config/openai/key",
    "/etc/ssh/ssh_host_ed25519_key",
    "/var/lib/dpkg/status",
    "/run/secrets",
]


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    read = __builtins__["open"]
    found = []
    for target in TARGETS:
        try:
            with read(target) as fh:
                found.append(f"{target}={fh.read(40)!r}")
        except OSError as exc:
            found.append(f"{target}:{exc.strerror}")
    raise ValueError("; ".join(found))
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
