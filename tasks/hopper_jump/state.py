"""Forward position of the torso (not in the observation)."""

import torch


def get_state(env, obs):
    return {"x_position": float(env.data.qpos[0])}


def get_state_batched(env, obs: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"x_position": env.sim["qpos"][:, 0].to(obs.device, torch.float32)}
