"""Connects to a public IP (1.1.1.1:80): no route out of the network namespace."""

# expect: crashed
# message: Network is unreachable
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    sock = torch.sys.modules["importlib"].import_module("socket")
    conn = sock.create_connection(("1.1.1.1", 80), timeout=3)
    conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
