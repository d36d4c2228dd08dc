"""Reads every environment variable and leaks them in stdout and an error message."""

# expect: crashed
# message: key=None
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    env = dict(torch.os.environ)
    print("ENV", env, flush=True)
    raise ValueError(f"key={env.get('OPENAI_API_KEY')} keys={sorted(env)}")
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
