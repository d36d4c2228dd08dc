import torch


def compute_reward(
    position: torch.Tensor,
    velocity: torch.Tensor,
    prev_position: torch.Tensor,
    prev_velocity: torch.Tensor,
    action: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Reward gains in mechanical energy (speed plus height), a bonus at the flag, a small effort cost."""

    def energy(pos: torch.Tensor, vel: torch.Tensor) -> torch.Tensor:
        # kinetic plus potential energy of the car under the environment's own dynamics
        return 0.5 * vel**2 + (0.0025 / 3.0) * torch.sin(3.0 * pos)

    energy_gain = 1000.0 * (energy(position, velocity) - energy(prev_position, prev_velocity))
    at_flag = (position >= 0.45).float() * 10.0
    effort = -0.01 * action[:, 0] ** 2
    total = energy_gain + at_flag + effort
    return total, {"energy_gain": energy_gain, "at_flag": at_flag, "effort": effort}
