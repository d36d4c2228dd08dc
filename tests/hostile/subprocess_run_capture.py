"""subprocess.run through importlib, output leaked in an error message (`id` runs as an
unprivileged uid: one of the sandbox's pool, 65280-65533, or nobody's, 65534)."""

# expect: crashed
# message: uid=65
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    sp = torch.sys.modules["importlib"].import_module("subprocess")
    out = sp.run(
        ["sh", "-c", "id; env; ls -a /root /home /tmp; cat /tmp/eureka_hostile_canary/secret.txt"],
        capture_output=True,
        text=True,
    )
    raise ValueError((out.stdout + out.stderr).replace("\n", " | "))
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
