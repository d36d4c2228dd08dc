import torch


def compute_reward(
    pole_angle: torch.Tensor,
    pole_angular_velocity: torch.Tensor,
    cart_position: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Hand-written shaped reward: stay alive, keep the pole upright and the cart centred."""
    alive = torch.ones_like(pole_angle)
    upright = 1.0 - (pole_angle / 0.2095).clamp(-1.0, 1.0) ** 2
    centred = 1.0 - (cart_position / 2.4).clamp(-1.0, 1.0) ** 2
    calm = -0.01 * pole_angular_velocity**2
    total = alive + 0.5 * upright + 0.3 * centred + calm
    return total, {"alive": alive, "upright": upright, "centred": centred, "calm": calm}
