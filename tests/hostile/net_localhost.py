"""Connects to a port on 127.0.0.1 where the test listens: the sandbox has its own,
empty loopback, so the connection is refused and the test's server sees nothing."""

# expect: crashed
# message: Connection refused
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    sock = torch.sys.modules["importlib"].import_module("socket")
    conn = sock.create_connection(("127.0.0.1", 47391), timeout=3)
    conn.sendall(b"stolen")
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
