"""CartPole's success signal: the pole is within 12 degrees of vertical and the cart on the track."""

import torch


def success_signal(pole_angle: torch.Tensor, cart_position: torch.Tensor) -> torch.Tensor:
    return ((pole_angle.abs() < 0.2095) & (cart_position.abs() < 2.4)).float()
