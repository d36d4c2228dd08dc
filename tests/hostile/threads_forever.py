"""Starts a thread that never ends, hoping the worker can never exit: the training process
leaves with os._exit once its result is written, which ends the thread (before, the timeout did)."""

# expect: ok
# timeout: 12
import torch

_started: list[object] = []


def _forever() -> None:
    while True:
        torch.sys.modules["time"].sleep(0.5)


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    if not _started:
        thread = torch.sys.modules["threading"].Thread(target=_forever)
        thread.start()
        _started.append(thread)
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
